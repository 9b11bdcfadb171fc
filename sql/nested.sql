-- calls between objects: same host (inline) and other host; cycles end in 40P01
CREATE FUNCTION relay(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
BEGIN
    CASE method
    WHEN 'pid' THEN
        RETURN to_jsonb(pg_backend_pid());
    WHEN 'inc' THEN
        PERFORM durable.put('n', to_jsonb(coalesce(durable.get('n')::int, 0) + 1));
        RETURN durable.get('n');
    WHEN 'get' THEN
        RETURN coalesce(durable.get('n'), '0');
    WHEN 'call' THEN
        PERFORM durable.put('relayed', 'true');
        r := durable.call('relay', args->>'to', args->>'method', coalesce(args->'args', '{}'));
        IF (args->>'fail_after')::boolean THEN
            RAISE EXCEPTION 'caller fails after its nested call' USING ERRCODE = 'P0043';
        END IF;
        RETURN jsonb_build_object('from', id, 'got', r);
    END CASE;
END
$$;
SELECT durable.define_class('relay', 'relay');
-- find objects on the same host as 'a' and on the other host
CREATE TEMP TABLE placement AS
SELECT 'r' || g AS id, durable.call('relay', 'r' || g, 'pid')::int = durable.call('relay', 'a', 'pid')::int AS same_host
  FROM generate_series(1, 40) g;
SELECT count(*) FILTER (WHERE same_host) > 0 AS have_same, count(*) FILTER (WHERE NOT same_host) > 0 AS have_other
  FROM placement;
SELECT min(id) AS same FROM placement WHERE same_host \gset
SELECT min(id) AS other FROM placement WHERE NOT same_host \gset
SELECT max(id) AS other2 FROM placement WHERE NOT same_host \gset
-- a nested call on the same host and on the other host return the callee's result
SELECT durable.call('relay', 'a', 'call', jsonb_build_object('to', :'same', 'method', 'inc')) -> 'got' AS same_host_result;
SELECT durable.call('relay', 'a', 'call', jsonb_build_object('to', :'other', 'method', 'inc')) -> 'got' AS other_host_result;
-- two levels deep, through the other host and back to a third object
SELECT durable.call('relay', 'a', 'call', jsonb_build_object('to', :'other', 'method', 'call',
         'args', jsonb_build_object('to', 'zz', 'method', 'inc'))) #> '{got,got}' AS two_levels;
-- a chain that comes back to a host and leaves it again: a(A) -> other(B) -> same(A) -> other2(B)
SELECT durable.call('relay', 'a', 'call', jsonb_build_object('to', :'other', 'method', 'call',
         'args', jsonb_build_object('to', :'same', 'method', 'call',
           'args', jsonb_build_object('to', :'other2', 'method', 'inc')))) #> '{got,got,got}' AS four_levels;
-- a cycle ends in 40P01, never a hang: on one object, and across hosts
SELECT durable.call('relay', 'a', 'call', '{"to": "a", "method": "get"}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('relay', 'a', 'call', jsonb_build_object('to', :'other', 'method', 'call',
         'args', jsonb_build_object('to', 'a', 'method', 'get'))); \echo :LAST_ERROR_SQLSTATE
-- the objects of the failed cycles kept no effect of the failed calls
SELECT durable.call('relay', 'a', 'get') AS a_untouched;
-- what is atomic: when the calling call fails after its nested call, a nested call on the same
-- host is rolled back with it; one on another host had already committed
SELECT durable.call('relay', :'same', 'get') AS same_before, durable.call('relay', :'other', 'get') AS other_before;
SELECT durable.call('relay', 'a', 'call', jsonb_build_object('to', :'same', 'method', 'inc', 'fail_after', true)); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('relay', 'a', 'call', jsonb_build_object('to', :'other', 'method', 'inc', 'fail_after', true)); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('relay', :'same', 'get') AS same_after, durable.call('relay', :'other', 'get') AS other_after;
-- a nested call still checks the target: unknown class, bad id
CREATE FUNCTION relay_bad(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$ BEGIN RETURN durable.call(args->>'class', args->>'id', 'get'); END $$;
SELECT durable.define_class('relay_bad', 'relay_bad');
SELECT durable.call('relay_bad', 'x', 'go', '{"class": "nope", "id": "x"}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('relay_bad', 'x', 'go', '{"class": "relay", "id": ""}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.drop_class('relay_bad');
