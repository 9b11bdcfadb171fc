-- views: classes, objects, hosts
SELECT name, handler, owner, websocket, http, durability, auto_response
  FROM durable.classes ORDER BY name;
SELECT class, id, keys, bytes > 0 AS has_bytes, sockets
  FROM durable.objects WHERE class = 'counter' AND id IN ('c1', 'c3', 'c4') ORDER BY id;
-- hosts count calls, errors and batches
SELECT count(*) > 0 AS hosts, sum(calls) > 0 AS called, sum(errors) > 0 AS errored,
       sum(batches) > 0 AS batched, sum(queue_depth) AS queued
  FROM durable.hosts;
-- objects called recently are in memory (the hosts write this at most once a second)
SELECT durable.call('counter', 'fresh', 'inc');
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN EXISTS (SELECT FROM durable.objects WHERE class = 'counter' AND id = 'fresh' AND in_memory);
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT in_memory, last_call_at > now() - interval '1 minute' AS recent
  FROM durable.objects WHERE class = 'counter' AND id = 'fresh';
-- the views cannot be written
INSERT INTO durable.hosts VALUES (1); \echo :LAST_ERROR_SQLSTATE
