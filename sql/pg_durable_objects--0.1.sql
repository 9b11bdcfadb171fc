/* pg_durable_objects 0.1: install script. Immutable once released. */

\echo Use "CREATE EXTENSION pg_durable_objects" to load this file. \quit

-- The schema "durable" is created by CREATE EXTENSION (control file: schema = durable).
GRANT USAGE ON SCHEMA durable TO PUBLIC;
COMMENT ON SCHEMA durable IS 'pg_durable_objects: classes, objects, their storage and the functions to call them';

--------------------------------------------------------------------------------
-- State tables (private). Only the extension's functions write them.
--------------------------------------------------------------------------------

CREATE TABLE durable._classes (
    name        text COLLATE "C" PRIMARY KEY
                CHECK (name OPERATOR(pg_catalog.~) '^[a-z_][a-z0-9_]{0,62}$'),
    handler     text NOT NULL,
    options     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE durable._classes IS
    'Private: one row per class; handler is the qualified signature of its function (the class owner is the function''s owner)';

CREATE TABLE durable._storage (
    class   text COLLATE "C" NOT NULL,
    id      text COLLATE "C" NOT NULL,
    key     text COLLATE "C" NOT NULL,
    value   jsonb NOT NULL,
    PRIMARY KEY (class, id, key)
);
COMMENT ON TABLE durable._storage IS
    'Private: the key/value storage of every object, keys in byte order';

-- Hosts cache the storage of their objects; a write by anyone else (a restore, a superuser's
-- UPDATE, durable.drop_class) makes them forget it when it commits.
CREATE FUNCTION durable._storage_written() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'durable_storage_written';
CREATE TRIGGER storage_written
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON durable._storage
    FOR EACH STATEMENT EXECUTE FUNCTION durable._storage_written();
REVOKE ALL ON FUNCTION durable._storage_written() FROM PUBLIC;
COMMENT ON FUNCTION durable._storage_written() IS
    'Private: trigger on durable._storage; a write outside the hosts makes them forget their cached storage at commit';

-- Which objects a host currently holds in memory. Transient: rebuilt by the hosts.
CREATE UNLOGGED TABLE durable._residency (
    class         text COLLATE "C" NOT NULL,
    id            text COLLATE "C" NOT NULL,
    host          integer NOT NULL,
    last_call_at  timestamptz NOT NULL,
    PRIMARY KEY (class, id)
);
COMMENT ON TABLE durable._residency IS
    'Private: objects held in host memory (not hibernated), written lazily by the hosts';

-- Named alarms of objects.  shard = hash(class, id); the host with shard % durable.hosts runs them.
CREATE TABLE durable._alarms (
    class         text COLLATE "C" NOT NULL,
    id            text COLLATE "C" NOT NULL,
    name          text COLLATE "C" NOT NULL,
    at            timestamptz NOT NULL,
    scheduled_at  timestamptz NOT NULL,
    attempt       integer NOT NULL DEFAULT 0,
    shard         bigint NOT NULL,
    last_error    jsonb,
    PRIMARY KEY (class, id, name)
);
CREATE INDEX ON durable._alarms (at);
COMMENT ON TABLE durable._alarms IS
    'Private: pending alarms; at is when the next attempt runs, scheduled_at when the alarm was set for';

-- Messages of durable.send(), committed with the sender's transaction, deleted with the
-- transaction of the call that runs them.
CREATE TABLE durable._outbox (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    class         text COLLATE "C" NOT NULL,
    id            text COLLATE "C" NOT NULL,
    method        text NOT NULL,
    args          jsonb NOT NULL,
    shard         bigint NOT NULL,
    attempt       integer NOT NULL DEFAULT 0,
    not_before    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    sent_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_error    jsonb
);
CREATE INDEX ON durable._outbox (not_before);
COMMENT ON TABLE durable._outbox IS
    'Private: sends waiting to run (or to be retried), in send order';

CREATE TABLE durable._dead_letters (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('send', 'alarm')),
    class         text COLLATE "C" NOT NULL,
    id            text COLLATE "C" NOT NULL,
    method        text NOT NULL,
    args          jsonb NOT NULL,
    attempts      integer NOT NULL,
    last_error    jsonb NOT NULL,
    failed_at     timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON SEQUENCE durable._outbox_seq_seq IS 'Private: send order of durable._outbox';
COMMENT ON SEQUENCE durable._dead_letters_seq_seq IS 'Private: numbering of durable._dead_letters';
COMMENT ON TABLE durable._dead_letters IS
    'Private: sends and alarms that failed every attempt, with their last error';

-- Open WebSockets of objects, written by the hosts: $connect inserts, $close deletes.
-- epoch is the start time of the gateway that owns the socket; rows of older gateways are stale.
CREATE UNLOGGED TABLE durable._sockets (
    socket        bigint PRIMARY KEY,
    class         text COLLATE "C" NOT NULL,
    id            text COLLATE "C" NOT NULL,
    tags          text[] NOT NULL DEFAULT '{}',
    attachment    jsonb,
    connected_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    epoch         bigint NOT NULL
);
CREATE INDEX ON durable._sockets (class, id);
COMMENT ON TABLE durable._sockets IS
    'Private: open WebSockets of objects, with their tags and attachment (transient)';

SELECT pg_catalog.pg_extension_config_dump('durable._classes', '');
SELECT pg_catalog.pg_extension_config_dump('durable._storage', '');
SELECT pg_catalog.pg_extension_config_dump('durable._alarms', '');
SELECT pg_catalog.pg_extension_config_dump('durable._outbox', '');
SELECT pg_catalog.pg_extension_config_dump('durable._dead_letters', '');
SELECT pg_catalog.pg_extension_config_dump('durable._outbox_seq_seq', '');
SELECT pg_catalog.pg_extension_config_dump('durable._dead_letters_seq_seq', '');

REVOKE ALL ON durable._classes, durable._storage, durable._residency, durable._alarms,
    durable._outbox, durable._dead_letters, durable._sockets FROM PUBLIC;

--------------------------------------------------------------------------------
-- Administration
--------------------------------------------------------------------------------

CREATE FUNCTION durable.define_class(name text, handler regproc, options jsonb DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'durable_define_class'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.define_class(text, regproc, jsonb) IS
    'Create or replace a class bound to handler(id text, method text, args jsonb) RETURNS jsonb; the caller must own the handler';

CREATE FUNCTION durable.drop_class(name text, drop_data boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_drop_class'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.drop_class(text, boolean) IS
    'Drop a class; refuses while its objects have storage unless drop_data is true';

CREATE FUNCTION durable.new_id()
RETURNS text
AS 'MODULE_PATHNAME', 'durable_new_id'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION durable.new_id() IS
    'A fresh random object id: 128 bits as 32 lower-case hex characters';

--------------------------------------------------------------------------------
-- Calling objects
--------------------------------------------------------------------------------

CREATE FUNCTION durable.call(class text, id text, method text, args jsonb DEFAULT '{}')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'durable_call'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.call(text, text, text, jsonb) IS
    'Run method on object (class, id) in its host, wait until it committed and return its result';

CREATE FUNCTION durable.send(class text, id text, method text, args jsonb DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'durable_send'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.send(text, text, text, jsonb) IS
    'Run method on object (class, id) exactly once after the current transaction commits (never if it rolls back)';

--------------------------------------------------------------------------------
-- Storage, inside an object handler only
--------------------------------------------------------------------------------

CREATE FUNCTION durable.get(key text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'durable_get'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.get(text) IS
    'Value stored under key in the current object, NULL when absent';

CREATE FUNCTION durable.get(keys text[])
RETURNS jsonb
AS 'MODULE_PATHNAME', 'durable_get_many'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.get(text[]) IS
    'JSON object of the given keys that are present in the current object';

CREATE FUNCTION durable.put(key text, value jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_put'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.put(text, jsonb) IS
    'Store value under key in the current object';

CREATE FUNCTION durable.put(entries jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_put_many'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.put(jsonb) IS
    'Store every key of a JSON object in the current object, atomically';

CREATE FUNCTION durable.delete(key text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'durable_delete'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.delete(text) IS
    'Delete key from the current object; true if it existed';

CREATE FUNCTION durable.delete(keys text[])
RETURNS integer
AS 'MODULE_PATHNAME', 'durable_delete_many'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.delete(text[]) IS
    'Delete keys from the current object; returns how many existed';

CREATE FUNCTION durable.list(prefix text DEFAULT NULL, start_key text DEFAULT NULL,
                             end_key text DEFAULT NULL, max_keys integer DEFAULT NULL,
                             reverse boolean DEFAULT false)
RETURNS TABLE (key text, value jsonb)
AS 'MODULE_PATHNAME', 'durable_list'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.list(text, text, text, integer, boolean) IS
    'Keys and values of the current object in byte order (start inclusive, end exclusive)';

CREATE FUNCTION durable.delete_all()
RETURNS void
AS 'MODULE_PATHNAME', 'durable_delete_all'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.delete_all() IS
    'Delete every key of the current object';

CREATE FUNCTION durable.set_alarm(at timestamptz, name text DEFAULT 'default')
RETURNS void
AS 'MODULE_PATHNAME', 'durable_set_alarm'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.set_alarm(timestamptz, text) IS
    'Run $alarm of the current object at the given time; setting a name again replaces it';

CREATE FUNCTION durable.get_alarm(name text DEFAULT 'default')
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'durable_get_alarm'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.get_alarm(text) IS
    'When the named alarm of the current object fires next, NULL when none is set';

CREATE FUNCTION durable.delete_alarm(name text DEFAULT 'default')
RETURNS boolean
AS 'MODULE_PATHNAME', 'durable_delete_alarm'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.delete_alarm(text) IS
    'Cancel the named alarm of the current object; true if it was set';

CREATE FUNCTION durable.socket()
RETURNS bigint
AS 'MODULE_PATHNAME', 'durable_socket'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.socket() IS
    'The socket whose frame started the current call, NULL for other calls';

CREATE FUNCTION durable.sockets(tag text DEFAULT NULL)
RETURNS TABLE (socket bigint, tags text[], attachment jsonb, connected_at timestamptz)
AS 'MODULE_PATHNAME', 'durable_sockets'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.sockets(text) IS
    'Open sockets of the current object (with the tag, when given)';

CREATE FUNCTION durable.broadcast(message jsonb, tag text DEFAULT NULL, exclude bigint DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_broadcast'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.broadcast(jsonb, text, bigint) IS
    'Send message to every socket of the current object (with the tag; but exclude) after the call commits';

CREATE FUNCTION durable.socket_send(socket bigint, message jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_socket_send'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.socket_send(bigint, jsonb) IS
    'Send message to one socket of the current object after the call commits';

CREATE FUNCTION durable.socket_close(socket bigint, code integer DEFAULT 1000, reason text DEFAULT '')
RETURNS void
AS 'MODULE_PATHNAME', 'durable_socket_close'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.socket_close(bigint, integer, text) IS
    'Close a socket of the current object after the call commits';

CREATE FUNCTION durable.set_attachment(socket bigint, attachment jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_set_attachment'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.set_attachment(bigint, jsonb) IS
    'Keep attachment with a socket of the current object while it is open, across hibernation';

CREATE FUNCTION durable._gateway_epoch()
RETURNS bigint
AS 'MODULE_PATHNAME', 'durable_gateway_epoch'
LANGUAGE C STABLE;
COMMENT ON FUNCTION durable._gateway_epoch() IS
    'Private: start time of the running gateway; socket rows of other epochs are stale';

--------------------------------------------------------------------------------
-- Views
--------------------------------------------------------------------------------

CREATE FUNCTION durable._hosts(OUT host integer, OUT pid integer, OUT objects bigint,
                               OUT queue_depth bigint, OUT calls bigint, OUT errors bigint,
                               OUT batches bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'durable_host_stats'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable._hosts() IS
    'Private: one row per host worker, read from shared memory; use the view durable.hosts';

-- Whether the current role may see a class whose handler is owned by owner: it has the
-- privileges of that role, as needed to change the class (superusers have all). NULL owner (handler gone): superusers only.
-- Evaluated with the invoker's identity, so it reads no private table.
CREATE FUNCTION durable._visible(owner oid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN owner IS NULL
                THEN (SELECT r.rolsuper FROM pg_catalog.pg_roles r
                       WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)
                ELSE pg_catalog.pg_has_role(owner, 'USAGE')
           END
$$;
COMMENT ON FUNCTION durable._visible(oid) IS
    'Private: true when the current role has the privileges of a class owner (superusers: always)';

CREATE VIEW durable.classes WITH (security_barrier) AS
SELECT c.name,
       pg_catalog.to_regprocedure(c.handler) AS handler,
       p.proowner::pg_catalog.regrole AS owner,
       coalesce((c.options OPERATOR(pg_catalog.->>) 'websocket')::boolean, false) AS websocket,
       coalesce((c.options OPERATOR(pg_catalog.->>) 'http')::boolean, false) AS http,
       coalesce(c.options OPERATOR(pg_catalog.->>) 'durability', 'sync') AS durability,
       c.options OPERATOR(pg_catalog.->) 'auto_response' AS auto_response,
       c.options,
       c.created_at,
       c.updated_at
  FROM durable._classes c
  LEFT JOIN pg_catalog.pg_proc p
         ON p.oid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(c.handler)
 WHERE durable._visible(p.proowner);
COMMENT ON VIEW durable.classes IS
    'Classes the current role owns (superusers: all), with their handler and options';

CREATE VIEW durable.objects WITH (security_barrier) AS
SELECT o.class, o.id,
       coalesce(s.keys, 0) AS keys,
       coalesce(s.bytes, 0) AS bytes,
       coalesce(k.sockets, 0) AS sockets,
       r.id IS NOT NULL AS in_memory,
       r.last_call_at
  FROM (SELECT st.class, st.id FROM durable._storage st
        UNION
        SELECT re.class, re.id FROM durable._residency re
        UNION
        SELECT so.class, so.id FROM durable._sockets so
         WHERE so.epoch OPERATOR(pg_catalog.=) durable._gateway_epoch()) o
  LEFT JOIN (SELECT st.class, st.id, pg_catalog.count(*) AS keys,
                    pg_catalog.sum(pg_catalog.octet_length(st.key) OPERATOR(pg_catalog.+)
                                   pg_catalog.pg_column_size(st.value))::bigint AS bytes
               FROM durable._storage st
              GROUP BY st.class, st.id) s
         ON s.class OPERATOR(pg_catalog.=) o.class AND s.id OPERATOR(pg_catalog.=) o.id
  LEFT JOIN (SELECT so.class, so.id, pg_catalog.count(*) AS sockets
               FROM durable._sockets so
              WHERE so.epoch OPERATOR(pg_catalog.=) durable._gateway_epoch()
              GROUP BY so.class, so.id) k
         ON k.class OPERATOR(pg_catalog.=) o.class AND k.id OPERATOR(pg_catalog.=) o.id
  LEFT JOIN durable._residency r
         ON r.class OPERATOR(pg_catalog.=) o.class AND r.id OPERATOR(pg_catalog.=) o.id
  LEFT JOIN durable._classes c ON c.name OPERATOR(pg_catalog.=) o.class
  LEFT JOIN pg_catalog.pg_proc p
         ON p.oid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(c.handler)
 WHERE durable._visible(p.proowner);
COMMENT ON VIEW durable.objects IS
    'Objects with storage or in host memory, of classes the current role owns (superusers: all)';

CREATE VIEW durable.hosts AS
SELECT h.host, h.pid, h.objects, h.queue_depth, h.calls, h.errors, h.batches
  FROM durable._hosts() h;
COMMENT ON VIEW durable.hosts IS
    'Host workers: pid (NULL while restarting), objects in memory, queued calls, calls, errors and batches since start';

CREATE VIEW durable.alarms WITH (security_barrier) AS
SELECT a.class, a.id, a.name, a.at, a.scheduled_at, a.attempt, a.last_error
  FROM durable._alarms a
  LEFT JOIN durable._classes c ON c.name OPERATOR(pg_catalog.=) a.class
  LEFT JOIN pg_catalog.pg_proc p
         ON p.oid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(c.handler)
 WHERE durable._visible(p.proowner);
COMMENT ON VIEW durable.alarms IS
    'Pending alarms of classes the current role owns (superusers: all); attempt > 0 means retrying';

CREATE VIEW durable.dead_letters WITH (security_barrier) AS
SELECT d.seq, d.kind, d.class, d.id, d.method, d.args, d.attempts, d.last_error, d.failed_at
  FROM durable._dead_letters d
  LEFT JOIN durable._classes c ON c.name OPERATOR(pg_catalog.=) d.class
  LEFT JOIN pg_catalog.pg_proc p
         ON p.oid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(c.handler)
 WHERE durable._visible(p.proowner);
COMMENT ON VIEW durable.dead_letters IS
    'Sends and alarms of classes the current role owns that failed every attempt, with the last error';

CREATE VIEW durable.sockets_all WITH (security_barrier) AS
SELECT so.class, so.id, so.socket, so.tags, so.attachment, so.connected_at
  FROM durable._sockets so
  LEFT JOIN durable._classes c ON c.name OPERATOR(pg_catalog.=) so.class
  LEFT JOIN pg_catalog.pg_proc p
         ON p.oid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(c.handler)
 WHERE so.epoch OPERATOR(pg_catalog.=) durable._gateway_epoch()
   AND durable._visible(p.proowner);
COMMENT ON VIEW durable.sockets_all IS
    'Every open socket of the classes the current role owns (superusers: all): presence as a table';

GRANT SELECT ON durable.classes, durable.objects, durable.hosts, durable.alarms,
    durable.dead_letters, durable.sockets_all TO PUBLIC;
