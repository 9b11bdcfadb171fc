-- storage: get/put/delete with their array and object overloads, list, delete_all
CREATE FUNCTION kv(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    keys text[] := ARRAY(SELECT jsonb_array_elements_text(coalesce(args->'keys', '[]')));
BEGIN
    CASE method
    WHEN 'get' THEN RETURN durable.get(args->>'key');
    WHEN 'get_many' THEN RETURN durable.get(keys);
    WHEN 'put' THEN PERFORM durable.put(args->>'key', args->'value'); RETURN NULL;
    WHEN 'put_many' THEN PERFORM durable.put(args->'entries'); RETURN NULL;
    WHEN 'delete' THEN RETURN to_jsonb(durable.delete(args->>'key'));
    WHEN 'delete_many' THEN RETURN to_jsonb(durable.delete(keys));
    WHEN 'put_big' THEN PERFORM durable.put('big', to_jsonb(repeat('x', (args->>'n')::int))); RETURN NULL;
    WHEN 'delete_all' THEN PERFORM durable.delete_all(); RETURN NULL;
    WHEN 'list' THEN
        RETURN coalesce((SELECT jsonb_agg(jsonb_build_array(l.key, l.value))
                           FROM durable.list(prefix => args->>'prefix',
                                             start_key => args->>'start',
                                             end_key => args->>'end',
                                             max_keys => (args->>'max')::int,
                                             reverse => coalesce((args->>'reverse')::boolean, false)) l),
                        '[]');
    WHEN 'keys' THEN
        RETURN coalesce((SELECT jsonb_agg(l.key) FROM durable.list() l), '[]');
    END CASE;
END
$$;
SELECT durable.define_class('kv', 'kv');
-- absent key: NULL; JSON null is a value
SELECT durable.call('kv', 's', 'get', '{"key": "a"}') IS NULL AS absent;
SELECT durable.call('kv', 's', 'put', '{"key": "a", "value": null}');
SELECT durable.call('kv', 's', 'get', '{"key": "a"}');
SELECT durable.call('kv', 's', 'put', '{"key": "a", "value": {"deep": [1, 2, 3]}}');
SELECT durable.call('kv', 's', 'get', '{"key": "a"}');
-- put(entries) writes every key; get(keys) returns those present
SELECT durable.call('kv', 's', 'put_many', '{"entries": {"b": 2, "c": "three", "d": [4], "ab": 1.5}}');
SELECT durable.call('kv', 's', 'get_many', '{"keys": ["a", "b", "c", "zz"]}');
SELECT durable.call('kv', 's', 'get_many', '{"keys": ["zz"]}');
-- byte order, not the database's collation
SELECT durable.call('kv', 's', 'put_many', '{"entries": {"B": 0, "é": 0, "a-b": 0, "a_b": 0}}');
SELECT durable.call('kv', 's', 'keys');
-- list with prefix, start (inclusive), end (exclusive), max_keys, reverse
SELECT durable.call('kv', 's', 'list', '{"prefix": "a"}');
SELECT durable.call('kv', 's', 'list', '{"start": "b", "end": "d"}');
SELECT durable.call('kv', 's', 'list', '{"start": "ab", "max": 2}');
SELECT durable.call('kv', 's', 'list', '{"reverse": true, "max": 3}');
SELECT durable.call('kv', 's', 'list', '{"prefix": "a", "reverse": true}');
SELECT durable.call('kv', 's', 'list', '{"prefix": "a", "start": "ab"}');
SELECT durable.call('kv', 's', 'list', '{"prefix": "zz"}');
SELECT durable.call('kv', 's', 'list', '{"max": 0}');
-- delete returns whether the key existed; delete(keys) how many did
SELECT durable.call('kv', 's', 'delete', '{"key": "a"}');
SELECT durable.call('kv', 's', 'delete', '{"key": "a"}');
SELECT durable.call('kv', 's', 'delete_many', '{"keys": ["b", "c", "nope"]}');
SELECT durable.call('kv', 's', 'keys');
-- objects do not see each other's keys
SELECT durable.call('kv', 't', 'keys');
SELECT durable.call('kv', 't', 'put', '{"key": "only-t", "value": 1}');
SELECT durable.call('kv', 's', 'get', '{"key": "only-t"}') IS NULL AS isolated;
-- delete_all removes every key of this object only
SELECT durable.call('kv', 's', 'delete_all');
SELECT durable.call('kv', 's', 'keys');
SELECT durable.call('kv', 't', 'keys');
-- a failing put(entries) writes nothing (bad key in the middle)
SELECT durable.call('kv', 'u', 'put_many', format('{"entries": {"x": 1, "%s": 2}}', repeat('k', 2049))::jsonb);
SELECT durable.call('kv', 'u', 'keys');
-- keys of exactly 1 and 2048 bytes are fine
SELECT durable.call('kv', 'u', 'put', format('{"key": "%s", "value": 1}', repeat('k', 2048))::jsonb);
SELECT durable.call('kv', 'u', 'put', '{"key": "k", "value": 1}');
SELECT jsonb_array_length(durable.call('kv', 'u', 'keys'));
