-- calls between objects: of the same owner inline (one process, one transaction); of another
-- owner on that owner's own host (another process); cycles end in 40P01
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
        r := durable.call(coalesce(args->>'class', 'relay'), args->>'to', args->>'method',
                          coalesce(args->'args', '{}'));
        IF (args->>'fail_after')::boolean THEN
            RAISE EXCEPTION 'caller fails after its nested call' USING ERRCODE = 'P0043';
        END IF;
        RETURN jsonb_build_object('from', id, 'got', r);
    END CASE;
END
$$;
SELECT durable.define_class('relay', 'relay');
-- the same handler as a class of another owner: its calls run on that owner's hosts
CREATE ROLE regress_relay_owner;
CREATE FUNCTION relay_other(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE sql AS 'SELECT relay(id, method, args)';
ALTER FUNCTION relay_other(text, text, jsonb) OWNER TO regress_relay_owner;
SET ROLE regress_relay_owner;
SELECT durable.define_class('relay_other', 'relay_other');
RESET ROLE;
-- a callee of the same owner runs in its caller's process; one of another owner never does
SELECT durable.call('relay', 'a', 'call', '{"to": "s1", "method": "pid"}') -> 'got' =
       to_jsonb(durable.call('relay', 'a', 'pid')) AS same_owner_same_process;
SELECT durable.call('relay', 'a', 'call', '{"class": "relay_other", "to": "o1", "method": "pid"}') -> 'got' <>
       to_jsonb(durable.call('relay', 'a', 'pid')) AS other_owner_other_process;
-- a nested call of the same owner and of another owner return the callee's result
SELECT durable.call('relay', 'a', 'call', '{"to": "s1", "method": "inc"}') -> 'got' AS same_owner_result;
SELECT durable.call('relay', 'a', 'call', '{"class": "relay_other", "to": "o1", "method": "inc"}') -> 'got'
    AS other_owner_result;
-- two levels deep, through the other owner's host to a third object
SELECT durable.call('relay', 'a', 'call', '{"class": "relay_other", "to": "o1", "method": "call",
         "args": {"class": "relay_other", "to": "zz", "method": "inc"}}') #> '{got,got}' AS two_levels;
-- a chain that comes back to a host and leaves it again: a -> o1 (other owner) -> s1 -> o2
SELECT durable.call('relay', 'a', 'call', '{"class": "relay_other", "to": "o1", "method": "call",
         "args": {"to": "s1", "method": "call",
           "args": {"class": "relay_other", "to": "o2", "method": "inc"}}}') #> '{got,got,got}' AS four_levels;
-- a cycle ends in 40P01, never a hang: on one object, and across owners' hosts
SELECT durable.call('relay', 'a', 'call', '{"to": "a", "method": "get"}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('relay', 'a', 'call', '{"class": "relay_other", "to": "o1", "method": "call",
         "args": {"to": "a", "method": "get"}}'); \echo :LAST_ERROR_SQLSTATE
-- the objects of the failed cycles kept no effect of the failed calls
SELECT durable.call('relay', 'a', 'get') AS a_untouched;
-- what is atomic: when the calling call fails after its nested call, a nested call of the same
-- owner is rolled back with it; one of another owner had already committed
SELECT durable.call('relay', 's1', 'get') AS same_before, durable.call('relay_other', 'o1', 'get') AS other_before;
SELECT durable.call('relay', 'a', 'call', '{"to": "s1", "method": "inc", "fail_after": true}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('relay', 'a', 'call', '{"class": "relay_other", "to": "o1", "method": "inc", "fail_after": true}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('relay', 's1', 'get') AS same_after, durable.call('relay_other', 'o1', 'get') AS other_after;
-- a nested call still checks the target: unknown class, bad id
CREATE FUNCTION relay_bad(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$ BEGIN RETURN durable.call(args->>'class', args->>'id', 'get'); END $$;
SELECT durable.define_class('relay_bad', 'relay_bad');
SELECT durable.call('relay_bad', 'x', 'go', '{"class": "nope", "id": "x"}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('relay_bad', 'x', 'go', '{"class": "relay", "id": ""}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.drop_class('relay_bad');
SELECT durable.drop_class('relay_other', true);
DROP FUNCTION relay_other(text, text, jsonb);
DROP ROLE regress_relay_owner;
