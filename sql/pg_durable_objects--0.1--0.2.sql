/* pg_durable_objects 0.1 -> 0.2: upgrade script. */

\echo Use "ALTER EXTENSION pg_durable_objects UPDATE TO '0.2'" to load this file. \quit

--------------------------------------------------------------------------------
-- A class belongs to the role that defined it, not to whatever function its handler's
-- name resolves to later.  The owner is stored (regrole: pg_dump writes the role's name,
-- so a restore binds it to the same role); a call runs only while the handler's owner is
-- still the class owner (a function dropped and created again by another role, or given
-- away with ALTER FUNCTION ... OWNER TO, leaves the class unusable until its owner or a
-- superuser defines it again).  0.1 classes get their handler's current owner.
--------------------------------------------------------------------------------

ALTER TABLE durable._classes ADD COLUMN owner pg_catalog.regrole;
UPDATE durable._classes c
   SET owner = p.proowner::pg_catalog.regrole
  FROM pg_catalog.pg_proc p
 WHERE p.oid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(c.handler);
COMMENT ON TABLE durable._classes IS
    'Private: one row per class; handler is the qualified signature of its function, owner the role that owns the class (and must own the handler for calls to run)';

--------------------------------------------------------------------------------
-- Every view works for every role (docs/security.md).  A class's handler is stored as
-- text; turning it into a function needs USAGE on the handler's schema, which a role
-- reading the views need not have.  The views look the handler up through this
-- function instead, which runs as the extension's owner and only resolves the name.
--------------------------------------------------------------------------------

CREATE FUNCTION durable._handler_oid(handler text)
RETURNS oid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.to_regprocedure(handler)::pg_catalog.oid $$;
COMMENT ON FUNCTION durable._handler_oid(text) IS
    'Private: the function a class''s stored handler names (NULL if it is gone), looked up whatever schemas the caller may use';

-- durable.classes and durable.objects use it too: they are defined once, below (durable.objects
-- with State migrations, durable.classes with Point-in-time history).

CREATE OR REPLACE VIEW durable.alarms WITH (security_barrier) AS
SELECT a.class, a.id, a.name, a.at, a.scheduled_at, a.attempt, a.last_error
  FROM durable._alarms a
  LEFT JOIN durable._classes c ON c.name OPERATOR(pg_catalog.=) a.class
 WHERE durable._visible(c.owner);

CREATE OR REPLACE VIEW durable.dead_letters WITH (security_barrier) AS
SELECT d.seq, d.kind, d.class, d.id, d.method, d.args, d.attempts, d.last_error, d.failed_at
  FROM durable._dead_letters d
  LEFT JOIN durable._classes c ON c.name OPERATOR(pg_catalog.=) d.class
 WHERE durable._visible(c.owner);

CREATE OR REPLACE VIEW durable.sockets_all WITH (security_barrier) AS
SELECT so.class, so.id, so.socket, so.tags, so.attachment, so.connected_at
  FROM durable._sockets so
  LEFT JOIN durable._classes c ON c.name OPERATOR(pg_catalog.=) so.class
 WHERE so.epoch OPERATOR(pg_catalog.=) durable._gateway_epoch()
   AND durable._visible(c.owner);

--------------------------------------------------------------------------------
-- Hosts belong to class owners and come and go (docs/internals.md, Scheduler): the view
-- shows whose classes each runs, whether it is a home or an extra host, and what it is
-- busy with.  The first seven columns are those of 0.1.
--------------------------------------------------------------------------------

DROP VIEW durable.hosts;
DROP FUNCTION durable._hosts();
CREATE FUNCTION durable._hosts(OUT host integer, OUT pid integer, OUT objects bigint,
                               OUT queue_depth bigint, OUT calls bigint, OUT errors bigint,
                               OUT batches bigint, OUT owner oid, OUT home integer,
                               OUT state text, OUT busy_ms double precision,
                               OUT waiting boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'durable_host_stats'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable._hosts() IS
    'Private: one row per host slot in use, read from shared memory; use the view durable.hosts';

CREATE VIEW durable.hosts AS
SELECT h.host, h.pid, h.owner::pg_catalog.regrole AS owner, h.home, h.state, h.busy_ms,
       h.waiting, h.objects, h.queue_depth, h.calls, h.errors, h.batches
  FROM durable._hosts() h;
COMMENT ON VIEW durable.hosts IS
    'Host workers: the class owner each runs, home number (NULL: an extra host), state, how long its running call has run, whether it waits for another object, objects in memory, queued calls, calls, errors and batches since start';
GRANT SELECT ON durable.hosts TO PUBLIC;

--------------------------------------------------------------------------------
-- Event streams (docs/protocol.md, Resuming): every event an object sends gets the next
-- number of its stream in the call's own transaction; the newest rows are kept for clients
-- that come back (`?since=N`) and for durable.events().  The newest row of an object is
-- never pruned: it carries the stream's position.
--------------------------------------------------------------------------------

CREATE TABLE durable._events (
    class   text COLLATE "C" NOT NULL,
    id      text COLLATE "C" NOT NULL,
    seq     bigint NOT NULL,
    data    jsonb,                  -- a JSON event
    bin     bytea,                  -- a binary event (data is NULL)
    tag     text COLLATE "C",       -- broadcast: only to sockets with this tag
    socket  bigint,                 -- socket_send: to this socket only (never replayed)
    at      timestamptz NOT NULL,   -- when the call made it
    PRIMARY KEY (class, id, seq)
);
COMMENT ON TABLE durable._events IS
    'Private: the retained events of every object (and each object''s newest, which carries its position)';
SELECT pg_catalog.pg_extension_config_dump('durable._events', '');
REVOKE ALL ON durable._events FROM PUBLIC;

CREATE FUNCTION durable.broadcast(message bytea, tag text DEFAULT NULL, exclude bigint DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_broadcast_bytea'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.broadcast(bytea, text, bigint) IS
    'Send bytes as a binary frame to every socket of the current object (with the tag; but exclude) after the call commits';

CREATE FUNCTION durable.socket_send(socket bigint, message bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_socket_send_bytea'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.socket_send(bigint, bytea) IS
    'Send bytes as a binary frame to one socket of the current object after the call commits';

-- With a jsonb and a bytea variant, a string literal would match neither better: these text
-- variants take it as JSON, as 0.1 did (durable.broadcast('{"a": 1}')).
CREATE FUNCTION durable.broadcast(message text, tag text DEFAULT NULL, exclude bigint DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_broadcast_text'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.broadcast(text, text, bigint) IS
    'durable.broadcast(message::jsonb, tag, exclude): a string literal is JSON';

CREATE FUNCTION durable.socket_send(socket bigint, message text)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_socket_send_text'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.socket_send(bigint, text) IS
    'durable.socket_send(socket, message::jsonb): a string literal is JSON';

CREATE FUNCTION durable.events(class text, id text, since bigint DEFAULT 0)
RETURNS TABLE (seq bigint, data jsonb, at timestamptz)
AS 'MODULE_PATHNAME', 'durable_events'
LANGUAGE C STABLE;
COMMENT ON FUNCTION durable.events(text, text, bigint) IS
    'The retained events of object (class, id) after since, oldest first (binary ones as {"binary": base64}); needs EXECUTE on the class handler';

--------------------------------------------------------------------------------
-- Storage visible to its owners (issue 16): every key of the objects of the classes the
-- current role owns (superusers: all), read-only, as committed.
--------------------------------------------------------------------------------

CREATE VIEW durable.storage WITH (security_barrier) AS
SELECT st.class, st.id, st.key, st.value
  FROM durable._storage st
  JOIN durable._classes c ON c.name OPERATOR(pg_catalog.=) st.class
 WHERE durable._visible(c.owner);
COMMENT ON VIEW durable.storage IS
    'Every stored key of the objects of classes the current role owns (superusers: all), as committed; read-only';
GRANT SELECT ON durable.storage TO PUBLIC;

--------------------------------------------------------------------------------
-- State migrations (issue 16)
--
-- A class has a version (option "version", default 1) that may only grow.  An
-- object's version is its row in durable._versions, written only by the host
-- that runs the object: after its lifecycle call $migrate {"from", "to"}
-- returned (in the same transaction), or at its first call when it has no
-- state yet (a new object starts at the class version).  An object with
-- storage and no row is at the class's base_version, the version the class
-- was created with; so while a class stays at its first version no row is
-- written or read.  durable.migrate_all(class) migrates every object that is
-- behind, through the objects' hosts (docs/internals.md, State migrations).
--------------------------------------------------------------------------------

ALTER TABLE durable._classes
    ADD COLUMN base_version integer NOT NULL DEFAULT 1 CHECK (base_version OPERATOR(pg_catalog.>=) 1);
UPDATE durable._classes
   SET base_version = coalesce((options OPERATOR(pg_catalog.->>) 'version')::integer, 1);

CREATE TABLE durable._versions (
    class   text COLLATE "C" NOT NULL,
    id      text COLLATE "C" NOT NULL,
    version integer NOT NULL,
    PRIMARY KEY (class, id)
);
COMMENT ON TABLE durable._versions IS
    'Private: the state version of objects that ran $migrate or were created above their class''s base_version';
SELECT pg_catalog.pg_extension_config_dump('durable._versions', '');
REVOKE ALL ON durable._versions FROM PUBLIC;

CREATE FUNCTION durable.migrate_all(class text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'durable_migrate_all'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION durable.migrate_all(text) IS
    'Run $migrate now on every object of the class that is behind its version (class owner or superuser); returns how many it migrated';

-- durable.classes gets its version column with the history column, below (Point-in-time
-- history): it is defined once.

-- version: the object's row; else the base version if it has storage; else (new) the class's
CREATE OR REPLACE VIEW durable.objects WITH (security_barrier) AS
SELECT o.class, o.id,
       coalesce(s.keys, 0) AS keys,
       coalesce(s.bytes, 0) AS bytes,
       coalesce(k.sockets, 0) AS sockets,
       r.id IS NOT NULL AS in_memory,
       r.last_call_at,
       coalesce(v.version,
                CASE WHEN s.keys IS NOT NULL THEN c.base_version
                     ELSE coalesce((c.options OPERATOR(pg_catalog.->>) 'version')::integer, 1)
                END) AS version
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
  LEFT JOIN durable._versions v
         ON v.class OPERATOR(pg_catalog.=) o.class AND v.id OPERATOR(pg_catalog.=) o.id
  LEFT JOIN durable._classes c ON c.name OPERATOR(pg_catalog.=) o.class
 WHERE durable._visible(c.owner);

--------------------------------------------------------------------------------
-- Point-in-time history per object (issue 16, point 5)
--
-- A class with the option "history" (an interval, '{"history": "7 days"}') keeps
-- every committed change of its objects' storage for that long: one row per key
-- and transaction that changed it, with the value before and after (NULL: the key
-- did not exist), when and by which method.  Rows with key NULL record the
-- object's state version (durable._versions).  The host that runs the object
-- writes them in the transaction that changes the storage, so a call that rolls
-- back leaves none; the owner's first home host prunes rows older than the
-- interval in the background.  history_since is when the class's history became
-- complete: set when history is turned on, moved up when the interval changes.
-- durable.storage_at reads an object's storage as it was; durable.restore puts it
-- back, as a call of the object (docs/internals.md, History).
--------------------------------------------------------------------------------

ALTER TABLE durable._classes ADD COLUMN history_since timestamptz;

CREATE TABLE durable._history (
    seq     bigint GENERATED ALWAYS AS IDENTITY,
    class   text COLLATE "C" NOT NULL,
    id      text COLLATE "C" NOT NULL,
    key     text COLLATE "C",       -- NULL: the object's state version
    old     jsonb,                  -- NULL: the key did not exist
    new     jsonb,                  -- NULL: the key was deleted
    at      timestamptz NOT NULL,   -- when the change was written, in its transaction
    method  text NOT NULL,          -- the call that made it ($restore for a restore)
    PRIMARY KEY (class, id, at, seq)
);
CREATE INDEX ON durable._history (class, at);
COMMENT ON TABLE durable._history IS
    'Private: the changes of the storage of the objects of classes with the option history, kept for that long';
COMMENT ON SEQUENCE durable._history_seq_seq IS 'Private: order of the changes in durable._history';
SELECT pg_catalog.pg_extension_config_dump('durable._history', '');
SELECT pg_catalog.pg_extension_config_dump('durable._history_seq_seq', '');
REVOKE ALL ON durable._history FROM PUBLIC;

CREATE FUNCTION durable.storage_at(class text, id text, at timestamptz)
RETURNS TABLE (key text, value jsonb)
AS 'MODULE_PATHNAME', 'durable_storage_at'
LANGUAGE C STABLE;
COMMENT ON FUNCTION durable.storage_at(text, text, timestamptz) IS
    'The storage of object (class, id) as it was at a time within its class''s history, in key order (class owner or superuser)';

CREATE FUNCTION durable.restore(class text, id text, at timestamptz)
RETURNS integer
AS 'MODULE_PATHNAME', 'durable_restore'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.restore(text, text, timestamptz) IS
    'Put the storage of object (class, id) back as it was at a time within its class''s history, as one call of the object; returns how many keys changed (class owner or superuser)';

CREATE OR REPLACE VIEW durable.classes WITH (security_barrier) AS
SELECT c.name,
       p.oid::pg_catalog.regprocedure AS handler,
       c.owner,
       coalesce((c.options OPERATOR(pg_catalog.->>) 'websocket')::boolean, false) AS websocket,
       coalesce((c.options OPERATOR(pg_catalog.->>) 'http')::boolean, false) AS http,
       coalesce(c.options OPERATOR(pg_catalog.->>) 'durability', 'sync') AS durability,
       c.options OPERATOR(pg_catalog.->) 'auto_response' AS auto_response,
       c.options,
       c.created_at,
       c.updated_at,
       coalesce((c.options OPERATOR(pg_catalog.->>) 'version')::integer, 1) AS version,
       (c.options OPERATOR(pg_catalog.->>) 'history')::pg_catalog.interval AS history
  FROM durable._classes c
  LEFT JOIN pg_catalog.pg_proc p
         ON p.oid OPERATOR(pg_catalog.=) durable._handler_oid(c.handler)
 WHERE durable._visible(c.owner);

--------------------------------------------------------------------------------
-- Scale-out on Citus (issue 17).  durable.distribute(), run once by a superuser on the
-- coordinator, makes every per-object table a distributed table by object id, all
-- co-located (an object's storage, alarms, sends, events, versions and dead letters are
-- in shards on the same node), durable._classes a reference table (a copy on
-- every node), and durable.call/durable.send distributed functions: Citus runs a call
-- made outside a transaction block on the node that holds the object.  Tables whose
-- primary key lacks the id (the outbox, the dead letters) get (id, ...) as their key
-- first: Citus requires the distribution column in every unique constraint.  Running it
-- again changes nothing; tables added by later versions are distributed by the next run.
-- Node-local state stays local on each node: durable._sockets (each node's gateway) and
-- durable._residency (each node's hosts; UNLOGGED, which Citus cannot move by logical
-- replication) are not touched.
-- See docs/scaling.md.
--------------------------------------------------------------------------------

CREATE FUNCTION durable.distribute()
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tab text;
    rel regclass;
    pk record;
    cols text;
    fn text;
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r
             WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
        RAISE EXCEPTION 'permission denied for durable.distribute()'
            USING ERRCODE = '42501',
                  DETAIL = 'Distributing changes the layout of every object''s state on every node.',
                  HINT = 'Run it as a superuser.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e
                    WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'durable.distribute() needs the citus extension'
            USING ERRCODE = '0A000',
                  DETAIL = 'The extension "citus" is not installed in this database.',
                  HINT = 'Set shared_preload_libraries = ''citus,pg_durable_objects'' on every node, restart, CREATE EXTENSION citus on each, add the workers with citus_add_node() on the coordinator, then run durable.distribute() there.';
    END IF;
    IF (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g) OPERATOR(pg_catalog.<>) 0 THEN
        RAISE EXCEPTION 'durable.distribute() must run on the coordinator'
            USING ERRCODE = '0A000',
                  DETAIL = 'This node is a Citus worker.',
                  HINT = 'Connect to the coordinator and run it there.';
    END IF;
    -- the statement trigger of durable._storage goes to its shards (docs/scaling.md)
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);

    IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
                    WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'durable._classes'::pg_catalog.regclass) THEN
        PERFORM pg_catalog.create_reference_table('durable._classes');
    END IF;

    -- _storage first: the others are co-located with it
    FOREACH tab IN ARRAY ARRAY['_storage', '_alarms', '_outbox', '_events', '_history',
                               '_versions', '_dead_letters'] LOOP
        rel := pg_catalog.to_regclass('durable.' OPERATOR(pg_catalog.||) tab);
        CONTINUE WHEN rel IS NULL
            OR EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
                        WHERE p.logicalrelid OPERATOR(pg_catalog.=) rel);
        -- a primary key without the id: (id, its columns) instead
        SELECT c.conname,
               pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord) AS cols,
               bool_or(a.attname OPERATOR(pg_catalog.=) 'id') AS has_id
          INTO pk
          FROM pg_catalog.pg_constraint c
          CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
          JOIN pg_catalog.pg_attribute a
            ON a.attrelid OPERATOR(pg_catalog.=) c.conrelid
           AND a.attnum OPERATOR(pg_catalog.=) k.attnum
         WHERE c.conrelid OPERATOR(pg_catalog.=) rel AND c.contype OPERATOR(pg_catalog.=) 'p'
         GROUP BY c.conname;
        IF FOUND AND NOT pk.has_id THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD PRIMARY KEY (id, %s)',
                                      rel, pk.conname, pk.cols);
        END IF;
        IF tab OPERATOR(pg_catalog.=) '_storage' THEN
            PERFORM pg_catalog.create_distributed_table(rel, 'id');
        ELSE
            PERFORM pg_catalog.create_distributed_table(rel, 'id',
                                                        colocate_with => 'durable._storage');
        END IF;
    END LOOP;

    FOREACH fn IN ARRAY ARRAY['durable.call(text,text,text,jsonb)',
                              'durable.send(text,text,text,jsonb)'] LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_dist_object o
                               WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                                 AND o.objid OPERATOR(pg_catalog.=) fn::pg_catalog.regprocedure
                                 AND o.distribution_argument_index IS NOT NULL);
        PERFORM pg_catalog.create_distributed_function(fn::pg_catalog.regprocedure, '$2',
                                                       colocate_with => 'durable._storage');
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION durable.distribute() FROM PUBLIC;
COMMENT ON FUNCTION durable.distribute() IS
    'Citus: distribute every per-object table by object id (co-located), make durable._classes a reference table and call/send distributed functions; superuser, on the coordinator; running it again is harmless';
