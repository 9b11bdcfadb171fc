-- bench/setup.sql — classes and tables of `make bench` (bench/run.sh runs it once per cluster).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_durable_objects;

-- Figures 1 and 2: a counter that reads and writes one key.
CREATE FUNCTION bench_counter(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF method = 'inc' THEN
        n := coalesce(durable.get('n')::bigint, 0) + 1;
        PERFORM durable.put('n', to_jsonb(n));
        RETURN to_jsonb(n);
    ELSIF method = 'get' THEN
        RETURN coalesce(durable.get('n'), '0');
    ELSIF left(method, 1) = '$' THEN
        RETURN NULL;            -- $connect accepts; $message, $close: nothing to do
    END IF;
    RAISE EXCEPTION 'bench_counter has no method %', method USING ERRCODE = '22023';
END
$$;
SELECT durable.define_class('bench_counter', 'bench_counter', '{"durability": "sync"}');
SELECT durable.define_class('bench_counter_async', 'bench_counter', '{"durability": "async"}');
-- Figure 6: the same counter through the gateway (HTTP calls and WebSocket call frames)
SELECT durable.define_class('bench_counter_web', 'bench_counter',
                            '{"durability": "sync", "http": true, "websocket": true}');
SELECT durable.define_class('bench_counter_web_async', 'bench_counter',
                            '{"durability": "async", "http": true, "websocket": true}');

-- the baseline of figures 1 and 2: the same increment as one plain upsert
CREATE TABLE bench_plain (id text PRIMARY KEY, n bigint NOT NULL);

-- Figure 3: an empty call (returns its args, touches no storage).
CREATE FUNCTION bench_echo(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    RETURN args;
END
$$;
SELECT durable.define_class('bench_echo', 'bench_echo');

-- Figure 4: a WebSocket room.  echo: the round trip; bcast: args.n broadcasts of args.msg
-- (with its index i) to every socket of the object.
CREATE FUNCTION bench_room(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF method = 'echo' THEN
        RETURN args;
    ELSIF method = 'bcast' THEN
        FOR i IN 1 .. coalesce((args->>'n')::int, 1) LOOP
            PERFORM durable.broadcast(jsonb_build_object('k', args->'k', 'i', i, 'p', args->'p'));
        END LOOP;
        RETURN to_jsonb(coalesce((args->>'n')::int, 1));
    ELSIF method = '$connect' THEN
        RETURN '{"accept": true}';
    ELSIF method IN ('$message', '$close') THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'bench_room has no method %', method USING ERRCODE = '22023';
END
$$;
SELECT durable.define_class('bench_room', 'bench_room', '{"websocket": true}');

-- Figure 5: alarms.  arm: set the alarms args.alarms = [[name, at], ...]; $alarm records
-- how late it ran.
CREATE TABLE bench_alarm_log (
    id text NOT NULL,
    name text NOT NULL,
    scheduled_at timestamptz NOT NULL,
    ran_at timestamptz NOT NULL,
    attempt int NOT NULL
);
CREATE FUNCTION bench_alarm(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    a jsonb;
BEGIN
    IF method = 'arm' THEN
        FOR a IN SELECT * FROM jsonb_array_elements(args->'alarms') LOOP
            PERFORM durable.set_alarm((a->>1)::timestamptz, a->>0);
        END LOOP;
        RETURN to_jsonb(jsonb_array_length(args->'alarms'));
    ELSIF method = '$alarm' THEN
        INSERT INTO bench_alarm_log
        VALUES (id, args->>'name', (args->>'scheduled_at')::timestamptz, clock_timestamp(),
                (args->>'attempt')::int);
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'bench_alarm has no method %', method USING ERRCODE = '22023';
END
$$;
SELECT durable.define_class('bench_alarm', 'bench_alarm');
