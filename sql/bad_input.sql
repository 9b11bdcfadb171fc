-- bad input of SPEC §6 that applies to SQL: each row gets a clear error
-- unknown class: 42704, names the class
SELECT durable.call('no_such_class', 'x', 'get'); \echo :LAST_ERROR_SQLSTATE
-- bad class names: 22023
SELECT durable.call('Counter', 'x', 'get'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('1abc', 'x', 'get'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('', 'x', 'get'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call(repeat('a', 64), 'x', 'get'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('bad-name', 'counter'); \echo :LAST_ERROR_SQLSTATE
-- empty or >512-byte id: 22023
SELECT durable.call('counter', '', 'get'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('counter', repeat('x', 513), 'get'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('counter', repeat('é', 257), 'get'); \echo :LAST_ERROR_SQLSTATE
-- NULL where a value is needed: 22004
SELECT durable.call(NULL, 'x', 'get'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('counter', NULL, 'get'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('counter', 'x', NULL); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('counter', 'x', 'get', NULL); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('c', NULL); \echo :LAST_ERROR_SQLSTATE
-- reserved and empty method names
SELECT durable.call('counter', 'x', '$connect'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('counter', 'x', ''); \echo :LAST_ERROR_SQLSTATE
-- payload over durable.max_message_bytes: 54000 (argument, result, stored value)
SHOW durable.max_message_bytes;
SELECT durable.call('counter', 'x', 'echo', jsonb_build_object('s', repeat('x', 1024 * 1024))); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('kv', 'big', 'put', jsonb_build_object('key', 'k', 'value', repeat('x', 600 * 1024)));
SELECT durable.call('kv', 'big', 'put', jsonb_build_object('key', 'k2', 'value', repeat('x', 600 * 1024)));
SELECT durable.call('kv', 'big', 'list'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('kv', 'big', 'put_big', '{"n": 1048576}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('kv', 'big', 'keys');
SELECT durable.call('kv', 'big', 'put_many', jsonb_build_object('entries', jsonb_build_object('k', repeat('x', 1025 * 1024)))); \echo :LAST_ERROR_SQLSTATE
-- keys: NULL 22004, empty or >2048 bytes 22023, NULL value 22004
SELECT durable.call('kv', 'k', 'get', '{}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('kv', 'k', 'get', '{"key": ""}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('kv', 'k', 'get', format('{"key": "%s"}', repeat('k', 2049))::jsonb); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('kv', 'k', 'put', '{"key": "a"}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('kv', 'k', 'get_many', '{"keys": ["a", ""]}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('kv', 'k', 'put_many', '{"entries": [1, 2]}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('kv', 'k', 'list', '{"max": -1}'); \echo :LAST_ERROR_SQLSTATE
-- storage functions outside a handler: 55000
SELECT durable.get('a'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.put('a', '1'); \echo :LAST_ERROR_SQLSTATE
SELECT * FROM durable.list(); \echo :LAST_ERROR_SQLSTATE
SELECT durable.delete_all(); \echo :LAST_ERROR_SQLSTATE
-- a handler called directly (not through durable.call) has no object either
SELECT kv('x', 'get', '{"key": "a"}'); \echo :LAST_ERROR_SQLSTATE
-- bad handlers and options
CREATE FUNCTION wrong_sig(id text, method text) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT durable.define_class('w', 'wrong_sig'); \echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION wrong_ret(id text, method text, args jsonb) RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$;
SELECT durable.define_class('w', 'wrong_ret'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('w', 'counter', '{"websocket": "yes"}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('w', 'counter', '{"durability": "sometimes"}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('w', 'counter', '{"colour": "blue"}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('w', 'counter', '[]'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('w', 'counter', '{"auto_response": {"request": "ping"}}'); \echo :LAST_ERROR_SQLSTATE
-- retain: events 0 to 100000, seconds 1 to 2^31-1, whole numbers, nothing else
SELECT durable.define_class('w', 'counter', '{"retain": {"events": -1}}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('w', 'counter', '{"retain": {"events": 1.5}}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('w', 'counter', '{"retain": {"events": 100001}}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('w', 'counter', '{"retain": {"events": "5"}}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('w', 'counter', '{"retain": {"seconds": 0}}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('w', 'counter', '{"retain": {"seconds": 2147483648}}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('w', 'counter', '{"retain": {"evnts": 5}}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('w', 'counter', '{"retain": 5}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.define_class('w', 'counter', '{"retain": {"events": 0, "seconds": 60}}');
SELECT durable.drop_class('w');
-- a string literal is JSON for broadcast and socket_send (not ambiguous with their bytea variants)
SELECT durable.broadcast('{"a": 1}'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.broadcast('\x00ff'::bytea); \echo :LAST_ERROR_SQLSTATE
SELECT durable.socket_send(1, '{"a": 1}'); \echo :LAST_ERROR_SQLSTATE
-- durable.events: bad arguments
SELECT * FROM durable.events('no_such_class', 'x'); \echo :LAST_ERROR_SQLSTATE
SELECT * FROM durable.events(NULL, 'x'); \echo :LAST_ERROR_SQLSTATE
SELECT * FROM durable.events('counter', 'nothing yet');
SELECT durable.define_class('w', 'counter', '{"websocket": true, "http": false, "durability": "async", "auto_response": {"request": "ping", "response": "pong"}}');
SELECT name, websocket, http, durability, auto_response FROM durable.classes WHERE name = 'w';
SELECT durable.drop_class('w');
SELECT durable.drop_class('w'); \echo :LAST_ERROR_SQLSTATE
-- ids, keys and values are data, never SQL: nothing was dropped above
SELECT count(*) > 0 AS storage_intact FROM durable._storage;
-- a handler whose function was dropped
CREATE FUNCTION gone(id text, method text, args jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '1'::jsonb $$;
SELECT durable.define_class('gone', 'gone');
DROP FUNCTION gone(text, text, jsonb);
SELECT durable.call('gone', 'x', 'get'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.drop_class('gone');
