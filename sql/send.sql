-- send: after commit only, exactly once, in order; trigger; retries and dead letters
CREATE SEQUENCE flaky_seq;
CREATE FUNCTION inbox(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    CASE method
    WHEN 'add' THEN
        PERFORM durable.put('log', coalesce(durable.get('log'), '[]') || (args->'v'));
        RETURN NULL;
    WHEN 'log' THEN
        RETURN coalesce(durable.get('log'), '[]');
    WHEN 'forward' THEN
        PERFORM durable.send('inbox', args->>'to', 'add', jsonb_build_object('v', args->'v'));
        IF (args->>'fail')::boolean THEN
            RAISE EXCEPTION 'forward fails after its send' USING ERRCODE = 'P0044';
        END IF;
        RETURN NULL;
    WHEN 'flaky' THEN
        IF nextval('flaky_seq') = 1 THEN
            RAISE EXCEPTION 'first attempt fails' USING ERRCODE = 'P0047';
        END IF;
        PERFORM durable.put('log', coalesce(durable.get('log'), '[]') || (args->'v'));
        RETURN NULL;
    WHEN 'boom' THEN
        RAISE EXCEPTION 'boom %', args->>'v' USING ERRCODE = 'P0045';
    END CASE;
END
$$;
SELECT durable.define_class('inbox', 'inbox');
CREATE FUNCTION wait_log(obj text, want int) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..200 LOOP
        EXIT WHEN jsonb_array_length(durable.call('inbox', obj, 'log')) >= want;
        PERFORM pg_sleep(0.02);
    END LOOP;
    RETURN durable.call('inbox', obj, 'log');
END $$;
-- rolled back: never delivered
BEGIN;
SELECT durable.send('inbox', 's1', 'add', '{"v": "rolled back"}');
ROLLBACK;
-- committed: delivered once, in send order
BEGIN;
SELECT durable.send('inbox', 's1', 'add', jsonb_build_object('v', g)) FROM generate_series(1, 20) g;
COMMIT;
SELECT wait_log('s1', 20);
SELECT pg_sleep(0.3);
SELECT durable.call('inbox', 's1', 'log') = wait_log('s1', 20) AS delivered_once;
-- from a handler: sent when the call commits, not when it fails
SELECT durable.call('inbox', 'f', 'forward', '{"to": "s2", "v": "kept"}');
SELECT durable.call('inbox', 'f', 'forward', '{"to": "s2", "v": "dropped", "fail": true}'); \echo :LAST_ERROR_SQLSTATE
SELECT wait_log('s2', 1);
-- a trigger sends atomically with the row
CREATE TABLE orders (id int PRIMARY KEY, item text);
CREATE FUNCTION orders_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM durable.send('inbox', 'orders', 'add', jsonb_build_object('v', NEW.item));
    RETURN NEW;
END $$;
CREATE TRIGGER orders_notify AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION orders_notify();
INSERT INTO orders VALUES (1, 'tea');
BEGIN;
INSERT INTO orders VALUES (2, 'never');
ROLLBACK;
INSERT INTO orders VALUES (3, 'cake');
SELECT wait_log('orders', 2);
-- bad input fails at send time, not as a dead letter
SELECT durable.send('nope', 'x', 'add'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.send('inbox', '', 'add'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.send('inbox', 'x', NULL); \echo :LAST_ERROR_SQLSTATE
SELECT durable.send('inbox', 'x', '$alarm'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.send('inbox', 'x', 'add', jsonb_build_object('v', repeat('x', 1024 * 1024))); \echo :LAST_ERROR_SQLSTATE
-- a failing send is retried, then lands in dead_letters with its last error
ALTER SYSTEM SET durable.retry_delay = '20ms';
ALTER SYSTEM SET durable.max_attempts = 3;
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT durable.send('inbox', 'd', 'boom', '{"v": 1}');
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXIT WHEN EXISTS (SELECT FROM durable.dead_letters WHERE id = 'd');
        PERFORM pg_sleep(0.02);
    END LOOP;
END
$$;
SELECT kind, class, id, method, args, attempts, last_error FROM durable.dead_letters WHERE id = 'd';
SELECT count(*) AS still_queued FROM durable._outbox WHERE id = 'd';
-- sends to one object keep their order even when the first one needs a retry
BEGIN;
SELECT durable.send('inbox', 'ordered', 'flaky', '{"v": 1}');
SELECT durable.send('inbox', 'ordered', 'add', '{"v": 2}');
SELECT durable.send('inbox', 'ordered', 'add', '{"v": 3}');
COMMIT;
SELECT wait_log('ordered', 3);
-- an alarm whose handler fails is retried the same way
CREATE FUNCTION failing_alarm(id text, method text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF method = 'arm' THEN
        PERFORM durable.set_alarm(now(), 'tick');
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'alarm % attempt %', args->>'name', args->>'attempt' USING ERRCODE = 'P0046';
END $$;
SELECT durable.define_class('failing_alarm', 'failing_alarm');
SELECT durable.call('failing_alarm', 'fa', 'arm');
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXIT WHEN EXISTS (SELECT FROM durable.dead_letters WHERE id = 'fa');
        PERFORM pg_sleep(0.02);
    END LOOP;
END
$$;
SELECT kind, method, args ? 'scheduled_at' AS has_time, args->>'name' AS name, attempts, last_error
  FROM durable.dead_letters WHERE id = 'fa';
SELECT count(*) AS alarms_left FROM durable.alarms WHERE id = 'fa';
ALTER SYSTEM RESET durable.retry_delay;
ALTER SYSTEM RESET durable.max_attempts;
SELECT pg_reload_conf();
