-- calls: results, errors, atomicity of a failing call (G2), redefinition
SELECT durable.call('counter', 'c1', 'inc');
SELECT durable.call('counter', 'c1', 'inc', '{"by": 41}');
SELECT durable.call('counter', 'c1', 'get');
SELECT durable.call('counter', 'c2', 'get');                 -- another object: own state
SELECT durable.call('counter', 'c1', 'echo', '{"a": [1, "two", null, {"b": true}]}');
SELECT durable.call('counter', 'c1', 'null') IS NULL AS sql_null;
-- a handler error reaches the caller with its SQLSTATE, message, detail and hint
SELECT durable.call('counter', 'c1', 'fail'); \echo :LAST_ERROR_SQLSTATE
-- the failed call left no trace (its put of -1 was rolled back)
SELECT durable.call('counter', 'c1', 'get');
-- the error can be caught like any other
DO $$
BEGIN
    PERFORM durable.call('counter', 'c1', 'fail');
EXCEPTION WHEN SQLSTATE 'P0042' THEN
    RAISE NOTICE 'caught: %', SQLERRM;
END
$$;
-- a call commits on its own: the caller rolling back does not undo it
BEGIN;
SELECT durable.call('counter', 'c3', 'inc');
ROLLBACK;
SELECT durable.call('counter', 'c3', 'get');
-- calls of one session run in order (G5)
SELECT string_agg(durable.call('counter', 'c4', 'inc')::text, ',' ORDER BY g) FROM generate_series(1, 10) g;
-- any id of 1..512 bytes, any characters
SELECT durable.call('counter', repeat('x', 512), 'inc');
SELECT durable.call('counter', 'ünï/cödé ''"; DROP TABLE x; --', 'inc');
SELECT durable.call('counter', E'tab\tnewline\n', 'whoami');
-- new_id: 32 lower-case hex characters, different each time
SELECT durable.new_id() ~ '^[0-9a-f]{32}$' AS hex, durable.new_id() <> durable.new_id() AS fresh;
SELECT durable.call('counter', durable.new_id(), 'get');
-- redefining a class switches its handler for the next call
CREATE FUNCTION counter_v2(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT jsonb_build_object('v2', method) $$;
SELECT durable.define_class('counter', 'counter_v2');
SELECT durable.call('counter', 'c1', 'get');
SELECT durable.define_class('counter', 'counter');
SELECT durable.call('counter', 'c1', 'get');
-- a handler written in SQL works too
SELECT durable.define_class('v2', 'counter_v2', '{"durability": "async"}');
SELECT durable.call('v2', 'x', 'hello');
SELECT durable.drop_class('v2');
-- drop_class refuses while objects have storage, unless drop_data
CREATE FUNCTION tmp_handler(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$ BEGIN PERFORM durable.put('k', args); RETURN args; END $$;
SELECT durable.define_class('tmp', 'tmp_handler');
SELECT durable.call('tmp', 'o', 'set', '{"x": 1}');
SELECT durable.drop_class('tmp'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.drop_class('tmp', drop_data => true);
SELECT count(*) FROM durable._storage WHERE class = 'tmp';
SELECT durable.call('tmp', 'o', 'set'); \echo :LAST_ERROR_SQLSTATE
