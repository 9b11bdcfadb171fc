-- security (SPEC §4b): class owner = handler owner; handlers run as the owner;
-- EXECUTE on the handler gates call; nobody writes the extension's tables directly
CREATE ROLE durable_alice;
CREATE ROLE durable_bob;
CREATE ROLE durable_carol;
CREATE SCHEMA alice AUTHORIZATION durable_alice;
SET ROLE durable_alice;
CREATE FUNCTION alice.vault(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    CASE method
    WHEN 'who' THEN
        RETURN jsonb_build_object('current_user', current_user,
                                  'superuser', (SELECT rolsuper FROM pg_roles WHERE rolname = current_user));
    WHEN 'put' THEN
        PERFORM durable.put('secret', args);
        RETURN durable.get('secret');
    WHEN 'hack' THEN
        INSERT INTO durable._storage VALUES ('counter', 'c1', 'n', '1000');
        RETURN 'null';
    WHEN 'hack_classes' THEN
        UPDATE durable._classes SET handler = 'alice.vault(text,text,jsonb)';
        RETURN 'null';
    WHEN 'shout' THEN
        PERFORM durable.broadcast(args);
        RETURN 'null';
    END CASE;
END
$$;
SELECT durable.define_class('vault', 'alice.vault');
-- the handler runs as its owner, not as the workers' superuser
SELECT durable.call('vault', 'v', 'who'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('vault', 'v', 'put', '{"gold": 1}');
SELECT durable.call('vault', 'v', 'shout', '{"pin": 1234}');
-- even inside a handler, the extension's tables are out of reach
SELECT durable.call('vault', 'v', 'hack'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('vault', 'v', 'hack_classes'); \echo :LAST_ERROR_SQLSTATE
-- the owner sees its class and objects, not others'
SELECT name, owner FROM durable.classes ORDER BY name;
SELECT class, id, keys FROM durable.objects ORDER BY class, id;
-- ... and their storage, read-only
SELECT class, id, key, value FROM durable.storage ORDER BY class, id, key;
UPDATE durable.storage SET value = '0'; \echo :LAST_ERROR_SQLSTATE
-- the owner decides who may call
REVOKE EXECUTE ON FUNCTION alice.vault(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alice.vault(text, text, jsonb) TO durable_carol;
GRANT USAGE ON SCHEMA alice TO durable_bob, durable_carol;
RESET ROLE;
SET ROLE durable_bob;
-- no EXECUTE on the handler: no call, and none of its events
SELECT durable.call('vault', 'v', 'who'); \echo :LAST_ERROR_SQLSTATE
SELECT * FROM durable.events('vault', 'v'); \echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM durable._events; \echo :LAST_ERROR_SQLSTATE
-- not the owner: cannot define a class with someone else's function, redefine or drop a class
SELECT durable.define_class('bobs', 'alice.vault'); \echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION pg_temp.mine(id text, method text, args jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '1'::jsonb $$;
SELECT durable.define_class('vault', 'pg_temp.mine'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.drop_class('vault', true); \echo :LAST_ERROR_SQLSTATE
-- no direct access to the extension's tables
SELECT count(*) FROM durable._storage; \echo :LAST_ERROR_SQLSTATE
INSERT INTO durable._storage VALUES ('vault', 'v', 'secret', '0'); \echo :LAST_ERROR_SQLSTATE
UPDATE durable._classes SET options = '{}'; \echo :LAST_ERROR_SQLSTATE
DELETE FROM durable._residency; \echo :LAST_ERROR_SQLSTATE
-- the views show nothing of other roles' classes
SELECT count(*) AS classes_seen FROM durable.classes;
SELECT count(*) AS objects_seen FROM durable.objects;
SELECT count(*) AS storage_seen FROM durable.storage;
-- storage functions cannot reach an object from outside its handler
SELECT durable.put('secret', '"stolen"'); \echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE durable_carol;
SELECT durable.call('vault', 'v', 'who'); \echo :LAST_ERROR_SQLSTATE
-- EXECUTE: may call, and read the events; not the storage (only the owner's)
SELECT seq, data FROM durable.events('vault', 'v');
SELECT count(*) AS storage_seen FROM durable.storage;
RESET ROLE;
-- the vault still holds what its owner put there
SELECT key, value FROM durable._storage WHERE class = 'vault';
-- a superuser may change any class
SELECT durable.define_class('vault', 'alice.vault', '{"durability": "sync"}');
SELECT name, owner FROM durable.classes WHERE name = 'vault';
-- giving the handler to another role does not give it the class: calls are refused until
-- the owner defines the class again (here: gives the function back)
ALTER FUNCTION alice.vault(text, text, jsonb) OWNER TO durable_carol;
SELECT durable.call('vault', 'v', 'who'); \echo :LAST_ERROR_SQLSTATE
ALTER FUNCTION alice.vault(text, text, jsonb) OWNER TO durable_alice;
-- a handler cannot change who it runs as
SET ROLE durable_alice;
CREATE FUNCTION alice.become(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF method = 'role' THEN
        EXECUTE 'SET ROLE ' || quote_ident(args->>'role');
    ELSE
        EXECUTE 'SET SESSION AUTHORIZATION ' || quote_ident(args->>'role');
    END IF;
    RETURN to_jsonb(current_user);
END
$$;
SELECT durable.define_class('become', 'alice.become');
SELECT durable.call('become', 'b', 'role', '{"role": "durable_alice"}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('become', 'b', 'session', '{"role": "durable_alice"}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.drop_class('become');
RESET ROLE;
-- ids, keys, methods and args are data, never SQL text
CREATE FUNCTION echo_h(id text, method text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM durable.put(args->>'key', to_jsonb(id || ' ' || method));
    RETURN jsonb_build_object('id', id, 'method', method, 'args', args,
                              'stored', durable.get(args->>'key'));
END
$$;
SELECT durable.define_class('echo', 'echo_h');
SELECT durable.call('echo', $$x'); DROP TABLE durable._classes; --$$, $$m'; SELECT 1; --$$,
                    $${"key": "k'); DELETE FROM durable._storage; --", "v": "'; TRUNCATE durable._classes; --"}$$);
SELECT durable.call($$echo'; DROP TABLE durable._classes; --$$, 'x', 'm'); \echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS classes_table_intact FROM durable._classes WHERE name = 'echo';
SELECT key, value FROM durable._storage WHERE class = 'echo' AND id = $$x'); DROP TABLE durable._classes; --$$;
SELECT durable.drop_class('echo', true);
DROP FUNCTION echo_h(text, text, jsonb);
-- defining classes is open to PUBLIC, and an administrator may close it
REVOKE EXECUTE ON FUNCTION durable.define_class(text, regproc, jsonb) FROM PUBLIC;
SET ROLE durable_alice;
SELECT durable.define_class('closed', 'alice.vault'); \echo :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT EXECUTE ON FUNCTION durable.define_class(text, regproc, jsonb) TO PUBLIC;
SET ROLE durable_alice;
SELECT durable.define_class('closed', 'alice.vault');
SELECT durable.drop_class('closed');
RESET ROLE;
SELECT durable.drop_class('vault', true);
DROP SCHEMA alice CASCADE;
DROP FUNCTION pg_temp.mine(text, text, jsonb);
DROP ROLE durable_alice, durable_bob, durable_carol;

