-- examples/counter.sql — the smallest durable object: a named counter.
--   SELECT durable.call('counter', 'page:/home', 'increment');
--   SELECT durable.call('counter', 'page:/home', 'increment', '{"by": 10}');
--   SELECT durable.call('counter', 'page:/home', 'get');
--   curl -H 'Content-Type: application/json' -d '{"by": 2}' http://127.0.0.1:7432/objects/counter/c1/increment     (http: true)
CREATE FUNCTION counter_handler(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    n bigint := coalesce(durable.get('value')::bigint, 0);
BEGIN
    CASE method
    WHEN 'increment' THEN
        n := n + coalesce((args->>'by')::bigint, 1);
        PERFORM durable.put('value', to_jsonb(n));
    WHEN 'reset' THEN
        n := 0;
        PERFORM durable.delete('value');
    WHEN 'get' THEN
        NULL;
    ELSE
        RAISE EXCEPTION 'counter has no method "%"', method
            USING ERRCODE = '22023', HINT = 'Use increment, reset or get.';
    END CASE;
    RETURN jsonb_build_object('id', id, 'value', n);
END
$$;
SELECT durable.define_class('counter', 'counter_handler', '{"http": true}');
