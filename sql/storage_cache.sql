-- the hosts' storage cache (storage_cache.c): reads of known keys come from memory, writes are
-- held until commit; every result here must be what the table alone would give
SHOW durable.cache_size;
CREATE FUNCTION cached(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    r jsonb;
BEGIN
    CASE method
    WHEN 'get' THEN RETURN durable.get(args->>'key');
    WHEN 'put' THEN PERFORM durable.put(args->>'key', args->'value'); RETURN NULL;
    WHEN 'put_fail' THEN
        -- a failing call's writes and deletes vanish, the earlier calls' stay
        PERFORM durable.put(args->>'key', args->'value');
        PERFORM durable.delete('other');
        RAISE EXCEPTION 'failing after the writes' USING ERRCODE = '22023';
    WHEN 'inner_rollback' THEN
        -- a rolled back block inside a call: its writes vanish, the ones before it stay
        PERFORM durable.put('k', '1');
        BEGIN
            PERFORM durable.put('k', '2');
            PERFORM durable.put('fresh', '"new"');
            PERFORM durable.delete('other');
            RAISE EXCEPTION 'roll back the block';
        EXCEPTION WHEN raise_exception THEN
            NULL;
        END;
        RETURN jsonb_build_object('k', durable.get('k'), 'fresh', durable.get('fresh'),
                                  'other', durable.get('other'));
    WHEN 'put_many_caught' THEN
        -- put(entries) with a bad key after a good one, the error caught: neither is kept
        BEGIN
            PERFORM durable.put(jsonb_build_object('p1', 1, repeat('k', 2049), 2));
        EXCEPTION WHEN invalid_parameter_value THEN
            NULL;
        END;
        RETURN jsonb_build_object('p1', durable.get('p1'));
    WHEN 'write_then_list' THEN
        -- list and get(keys) read the table: they see the writes held so far in this call
        PERFORM durable.put('l1', '1');
        PERFORM durable.put('l2', '2');
        PERFORM durable.delete('l1');
        PERFORM durable.put('l3', '3');
        r := jsonb_build_object('list', (SELECT jsonb_agg(key ORDER BY key) FROM durable.list(prefix => 'l')),
                                'get_many', durable.get(ARRAY['l1', 'l2', 'l3']));
        PERFORM durable.put('l2', '22');
        RETURN r || jsonb_build_object('after', (SELECT jsonb_object_agg(key, value) FROM durable.list(prefix => 'l')));
    WHEN 'count_deletes' THEN
        PERFORM durable.put('d1', '1');
        RETURN to_jsonb(durable.delete(ARRAY['d1', 'd1', 'd2', 'other']));
    WHEN 'big' THEN
        -- values too large to keep in memory are written through, and read back right
        PERFORM durable.put('big', to_jsonb(repeat('b', 20000)));
        n := length(durable.get('big') #>> '{}');
        PERFORM durable.put('big', '"small"');
        r := durable.get('big');
        PERFORM durable.put('big', to_jsonb(repeat('c', 30000)));
        RETURN jsonb_build_object('first', n, 'small', r, 'last', length(durable.get('big') #>> '{}'));
    WHEN 'wipe' THEN
        PERFORM durable.put('w', '1');
        PERFORM durable.delete_all();
        RETURN jsonb_build_object('w', durable.get('w'), 'k', durable.get('k'));
    END CASE;
END
$$;
SELECT durable.define_class('cached', 'cached');

SELECT durable.call('cached', 'a', 'put', '{"key": "k", "value": 10}');
SELECT durable.call('cached', 'a', 'put', '{"key": "other", "value": "o"}');
SELECT durable.call('cached', 'a', 'get', '{"key": "k"}');
SELECT durable.call('cached', 'a', 'put_fail', '{"key": "k", "value": 11}');
SELECT durable.call('cached', 'a', 'get', '{"key": "k"}') AS still_10,
       durable.call('cached', 'a', 'get', '{"key": "other"}') AS other_kept;
SELECT durable.call('cached', 'a', 'inner_rollback');
SELECT durable.call('cached', 'a', 'put_many_caught');
SELECT key, value FROM durable._storage WHERE class = 'cached' AND id = 'a' ORDER BY key;
SELECT durable.call('cached', 'a', 'write_then_list');
SELECT durable.call('cached', 'a', 'count_deletes');
SELECT durable.call('cached', 'a', 'get', '{"key": "other"}') IS NULL AS other_deleted;
SELECT durable.call('cached', 'a', 'big');

-- writes behind the hosts' back (a superuser's UPDATE, DELETE, TRUNCATE) are seen by the next call
UPDATE durable._storage SET value = '99' WHERE class = 'cached' AND id = 'a' AND key = 'k';
SELECT durable.call('cached', 'a', 'get', '{"key": "k"}') AS updated_behind;
DELETE FROM durable._storage WHERE class = 'cached' AND id = 'a' AND key = 'k';
SELECT durable.call('cached', 'a', 'get', '{"key": "k"}') IS NULL AS deleted_behind;
INSERT INTO durable._storage VALUES ('cached', 'a', 'k', '7');
SELECT durable.call('cached', 'a', 'get', '{"key": "k"}') AS inserted_behind;
BEGIN;
UPDATE durable._storage SET value = '8' WHERE class = 'cached' AND id = 'a' AND key = 'k';
ROLLBACK;
SELECT durable.call('cached', 'a', 'get', '{"key": "k"}') AS rolled_back_write_not_seen;
SELECT durable.call('cached', 'a', 'wipe');
SELECT count(*) AS keys_left FROM durable._storage WHERE class = 'cached' AND id = 'a';
SELECT durable.call('cached', 'b', 'put', '{"key": "k", "value": 1}');
SELECT durable.call('cached', 'b', 'get', '{"key": "k"}');
-- as a restore would: TRUNCATE and COPY back (without b's key)
CREATE TEMP TABLE saved AS SELECT * FROM durable._storage WHERE NOT (class = 'cached' AND id = 'b');
BEGIN;
TRUNCATE durable._storage;
INSERT INTO durable._storage SELECT * FROM saved;
COMMIT;
SELECT durable.call('cached', 'b', 'get', '{"key": "k"}') IS NULL AS truncated_behind;
-- the same calls with the cache turned off give the same answers
ALTER SYSTEM SET durable.cache_size = 0;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT durable.call('cached', 'c', 'put', '{"key": "k", "value": 10}');
SELECT durable.call('cached', 'c', 'put', '{"key": "other", "value": "o"}');
SELECT durable.call('cached', 'c', 'put_fail', '{"key": "k", "value": 11}');
SELECT durable.call('cached', 'c', 'get', '{"key": "k"}') AS still_10;
SELECT durable.call('cached', 'c', 'inner_rollback');
SELECT durable.call('cached', 'c', 'write_then_list');
SELECT durable.call('cached', 'c', 'count_deletes');
SELECT durable.call('cached', 'c', 'big');
SELECT durable.call('cached', 'c', 'wipe');
ALTER SYSTEM RESET durable.cache_size;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT durable.call('cached', 'c', 'put', '{"key": "k", "value": 12}');
SELECT durable.call('cached', 'c', 'get', '{"key": "k"}') AS cache_back_on;
SELECT durable.drop_class('cached', drop_data => true);
DROP FUNCTION cached;
