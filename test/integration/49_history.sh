#!/usr/bin/env bash
# Point-in-time history per object (issue 16, point 5): class option "history" (an interval),
# durable.storage_at(class, id, at) and durable.restore(class, id, at).  Every committed change
# of a history class's storage is kept with its old and new value, time and method, written in
# the transaction of the change; restore runs as one call of the object (serial with its other
# calls, all keys or none, durable before it returns, no broadcast) and is itself recorded, so
# it can be undone; the hosts prune old rows.  The attacks (who may read or rewind history) come
# first.
source "$TEST_ROOT/test/lib.sh"
set -u

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

now() { sql "SELECT clock_timestamp()"; }
call() { sql "SELECT durable.call('${4:-hist}', '$1', '$2', '${3:-{\}}')"; }
state() {  # state CLASS ID: the object's storage now, as k=v,...
    sql "SELECT coalesce(string_agg(key || '=' || value, ',' ORDER BY key), '') FROM durable.storage
          WHERE class = '$1' AND id = '$2'"
}
state_at() {  # state_at CLASS ID TIME
    sql "SELECT coalesce(string_agg(key || '=' || value, ',' ORDER BY key), '')
           FROM durable.storage_at('$1', '$2', '$3')"
}

sql "SET client_min_messages = warning;
DROP ROLE IF EXISTS hist_owner; DROP ROLE IF EXISTS hist_other; DROP ROLE IF EXISTS hist_rival;
CREATE ROLE hist_owner; CREATE ROLE hist_other; CREATE ROLE hist_rival;
CREATE EXTENSION IF NOT EXISTS pg_durable_objects;
CREATE FUNCTION hist_h(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
DECLARE
    n bigint;
BEGIN
    CASE method
    WHEN 'put' THEN PERFORM durable.put(args->>'k', args->'v'); RETURN NULL;
    WHEN 'del' THEN RETURN to_jsonb(durable.delete(args->>'k'));
    WHEN 'clear' THEN PERFORM durable.delete_all(); RETURN NULL;
    WHEN 'big' THEN PERFORM durable.put('big', to_jsonb(repeat('x', 20000))); RETURN NULL;
    WHEN 'fail' THEN
        PERFORM durable.put('doomed', '1');
        RAISE EXCEPTION 'no' USING ERRCODE = 'P0042';
    WHEN 'inc' THEN
        n := coalesce(durable.get('n')::bigint, 0) + 1;
        PERFORM durable.put('n', to_jsonb(n));
        RETURN to_jsonb(n);
    WHEN 'shout' THEN PERFORM durable.broadcast(args); RETURN NULL;
    WHEN 'sneak' THEN RETURN to_jsonb(durable.restore(args->>'class', args->>'id', now()));
    WHEN 'peek' THEN
        RETURN (SELECT jsonb_object_agg(key, value) FROM durable.storage_at(args->>'class', args->>'id', now()));
    WHEN '\$migrate' THEN
        PERFORM durable.put('migrations', to_jsonb(coalesce(durable.get('migrations')::int, 0) + 1));
        RETURN NULL;
    ELSE
        RAISE EXCEPTION 'unknown method %', method USING ERRCODE = '22023';
    END CASE;
END \$\$;
ALTER FUNCTION hist_h(text, text, jsonb) OWNER TO hist_owner;
GRANT EXECUTE ON FUNCTION hist_h(text, text, jsonb) TO hist_other;
CREATE FUNCTION hist_rival_h(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
BEGIN
    CASE method
    WHEN 'sneak' THEN RETURN to_jsonb(durable.restore(args->>'class', args->>'id', now()));
    WHEN 'put' THEN PERFORM durable.put(args->>'k', args->'v'); RETURN NULL;
    ELSE RETURN NULL;
    END CASE;
END \$\$;
ALTER FUNCTION hist_rival_h(text, text, jsonb) OWNER TO hist_rival;" >/dev/null || exit 1

# --- the option: an interval as text, more than 0; anything else is 22023
for v in '"-1 day"' '"0 seconds"' '"banana"' 5 true '"200 years"' '{"d": 1}' '""'; do
    out=$(as hist_owner "SELECT durable.define_class('hist', 'hist_h', '{\"history\": $v}')")
    is "history $v is refused with 22023" "$(sqlstate "$out")" 22023
done
out=$(as hist_owner "SELECT durable.define_class('hist', 'hist_h', '{\"history\": \"1 hour\", \"http\": true}');
                     SELECT durable.define_class('plain', 'hist_h')")
is "history \"1 hour\" is accepted" "$out" ""
is "durable.classes shows the history interval" \
    "$(as hist_owner "SELECT history FROM durable.classes WHERE name = 'hist'" | tail -1)" "01:00:00"

t0=$(now)
call a put '{"k": "x", "v": 1}' >/dev/null
call a put '{"k": "y", "v": "one"}' >/dev/null
t1=$(now)
call a put '{"k": "x", "v": 2}' >/dev/null
call a put '{"k": "z", "v": [3]}' >/dev/null
t2=$(now)
call a del '{"k": "y"}' >/dev/null
t3=$(now)

# --- attacks first: only the class owner (or a superuser) reads or rewinds an object's past
out=$(as hist_other "SELECT * FROM durable.storage_at('hist', 'a', '$t1')")
is "a role that may call the objects cannot read their history (42501)" "$(sqlstate "$out")" 42501
out=$(as hist_other "SELECT durable.restore('hist', 'a', '$t1')")
is "a role that may call the objects cannot restore them (42501)" "$(sqlstate "$out")" 42501
out=$(as hist_rival "SELECT * FROM durable.storage_at('hist', 'a', '$t1')")
is "another class owner cannot read the history (42501)" "$(sqlstate "$out")" 42501
out=$(as hist_rival "SELECT durable.restore('hist', 'a', '$t1')")
is "another class owner cannot restore (42501)" "$(sqlstate "$out")" 42501
out=$(as hist_other "SELECT count(*) FROM durable._history")
is "no role reads durable._history directly (42501)" "$(sqlstate "$out")" 42501
out=$(as hist_owner "DELETE FROM durable._history")
is "not even the class owner writes durable._history (42501)" "$(sqlstate "$out")" 42501
out=$(as hist_other "SELECT durable.call('hist', 'a', '\$restore', '{\"at\": 0}')")
is "durable.call cannot send a \$restore (22023)" "$(sqlstate "$out")" 22023
out=$(as hist_other "SELECT durable.send('hist', 'a', '\$restore', '{\"at\": 0}')")
is "durable.send cannot queue a \$restore (22023)" "$(sqlstate "$out")" 22023
if wait_gateway 10; then
    code=$(curl -s -o "$tmp/http" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data '{"at": 0}' "http://127.0.0.1:$DURABLE_PORT/objects/hist/a/%24restore")
    is "an HTTP POST cannot reach \$restore (4xx)" "${code:0:1}" 4
else
    not_ok "an HTTP POST cannot reach \$restore (4xx)" "the gateway does not answer"
fi
as hist_rival "SELECT durable.define_class('rival', 'hist_rival_h')" >/dev/null
out=$(psql -X -q -At -v VERBOSITY=verbose \
    -c "SELECT durable.call('rival', 'r', 'sneak', '{\"class\": \"hist\", \"id\": \"a\"}')" 2>&1)
is "a handler cannot restore, not even as a superuser's call (55000)" "$(sqlstate "$out")" 55000
out=$(psql -X -q -At -v VERBOSITY=verbose \
    -c "SELECT durable.call('hist', 'a', 'peek', '{\"class\": \"hist\", \"id\": \"a\"}')" 2>&1)
is "a handler cannot read history, not even its own object's (55000)" "$(sqlstate "$out")" 55000
is "the attacks changed nothing" "$(state hist a)" 'x=2,z=[3]'
is "the owner sees what the history says" \
    "$(as hist_owner "SELECT string_agg(key || '=' || value, ',' ORDER BY key) FROM durable.storage_at('hist', 'a', '$t1')" | tail -1)" \
    'x=1,y="one"'

# --- storage_at
is "storage_at before anything was written: empty" "$(state_at hist a "$t0")" ""
is "storage_at t1" "$(state_at hist a "$t1")" 'x=1,y="one"'
is "storage_at t2" "$(state_at hist a "$t2")" 'x=2,y="one",z=[3]'
is "storage_at t3 (a key deleted)" "$(state_at hist a "$t3")" 'x=2,z=[3]'
is "storage_at now is the storage" "$(state_at hist a "$(now)")" "$(state hist a)"
is "each change is one row with old, new and method" \
    "$(sql "SELECT string_agg(key || ':' || coalesce(old::text, '-') || '>' || coalesce(new::text, '-') || ':' || method, ' ' ORDER BY seq)
              FROM durable._history WHERE class = 'hist' AND id = 'a'")" \
    'x:->1:put y:->"one":put x:1>2:put z:->[3]:put y:"one">-:del'

# --- bad input
out=$(as hist_owner "SELECT * FROM durable.storage_at('hist', 'a', now() - interval '2 hours')")
is "a time before the history window: 22023" "$(sqlstate "$out")" 22023
out=$(as hist_owner "SELECT * FROM durable.storage_at('hist', 'a', '$t0'::timestamptz - interval '1 minute')")
is "a time before history was turned on: 22023" "$(sqlstate "$out")" 22023
out=$(as hist_owner "SELECT * FROM durable.storage_at('hist', 'a', 'infinity')")
is "an infinite time: 22023" "$(sqlstate "$out")" 22023
out=$(as hist_owner "SELECT * FROM durable.storage_at('hist', 'a', NULL)")
is "a NULL time: 22004" "$(sqlstate "$out")" 22004
out=$(as hist_owner "SELECT * FROM durable.storage_at('plain', 'a', now())")
is "a class without history: 55000" "$(sqlstate "$out")" 55000
out=$(as hist_owner "SELECT durable.restore('nosuch', 'a', now())")
is "an unknown class: 42704" "$(sqlstate "$out")" 42704

# --- only committed changes: a call that rolls back leaves no history
before=$(sql "SELECT count(*) FROM durable._history")
call a fail >/dev/null 2>&1
is "a failed call leaves no history row" "$(sql "SELECT count(*) FROM durable._history")" "$before"
call plain1 put '{"k": "x", "v": 1}' plain >/dev/null
call plain1 clear '{}' plain >/dev/null
is "a class without history writes none" "$(sql "SELECT count(*) FROM durable._history")" "$before"

# --- values written through (over 8 kB) and delete_all are recorded too
tb=$(now)
call a big >/dev/null
tc=$(now)
call a clear >/dev/null
is "delete_all is recorded (storage now empty)" "$(state hist a)" ""
is "a written-through value is in the history" \
    "$(sql "SELECT length(value #>> '{}') FROM durable.storage_at('hist', 'a', '$tc') WHERE key = 'big'")" 20000

# --- restore: keys back, keys created later deleted, recorded as a call, undoable
call a put '{"k": "w", "v": "later"}' >/dev/null
tr=$(now)
n=$(as hist_owner "SELECT durable.restore('hist', 'a', '$t2')" | tail -1)
is "restore returns how many keys it changed" "$n" 4
is "restore puts the storage back as it was (w, created later, is gone)" "$(state hist a)" 'x=2,y="one",z=[3]'
is "the restore is recorded as \$restore" \
    "$(sql "SELECT count(*) FROM durable._history WHERE class = 'hist' AND id = 'a' AND method = '\$restore'")" 4
is "a call after the restore sees the restored state" "$(call a del '{"k": "z"}')" true
n=$(sql "SELECT durable.restore('hist', 'a', '$tr')")
is "a restore can be undone (restore to just before it)" "$(state hist a)" 'w="later"'
is "restore to now changes nothing" "$(sql "SELECT durable.restore('hist', 'a', now())")" 0

# --- restore sends nothing to sockets: no event is numbered for it
call a shout '{"hello": 1}' >/dev/null
ev=$(sql "SELECT count(*) FROM durable._events WHERE class = 'hist' AND id = 'a'")
is "the broadcast before it was numbered (an event row)" "$([ "$ev" -gt 0 ] && echo yes)" yes
sql "SELECT durable.restore('hist', 'a', '$t1')" >/dev/null
is "restore broadcasts nothing (no new event)" \
    "$(sql "SELECT count(*) FROM durable._events WHERE class = 'hist' AND id = 'a'")" "$ev"

# --- G1: restores interleaved with increments from 4 sessions; the history stays one chain
call c inc >/dev/null
for s in 1 2 3 4; do
    ( for i in $(seq 1 40); do sql "SELECT durable.call('hist', 'c', 'inc')" >/dev/null || echo fail; done ) \
        >"$tmp/inc$s" 2>&1 &
done
( for i in $(seq 1 15); do
      sql "SELECT durable.restore('hist', 'c', clock_timestamp() - interval '30 milliseconds')" >/dev/null || echo fail
      sleep 0.05
  done ) >"$tmp/restores" 2>&1 &
wait
is "every increment and restore succeeded" "$(cat "$tmp"/inc* "$tmp/restores" | grep -c fail)" 0
is "no change ever saw another's half: each row's old is the previous row's new" \
    "$(sql "SELECT count(*) FROM (SELECT old, lag(new) OVER (ORDER BY seq) AS prev, row_number() OVER (ORDER BY seq) AS r
                                    FROM durable._history WHERE class = 'hist' AND id = 'c' AND key = 'n') h
             WHERE r > 1 AND old IS DISTINCT FROM prev")" 0
is "the last row is the value stored" \
    "$(sql "SELECT new FROM durable._history WHERE class = 'hist' AND id = 'c' AND key = 'n' ORDER BY seq DESC LIMIT 1")" \
    "$(sql "SELECT value FROM durable.storage WHERE class = 'hist' AND id = 'c' AND key = 'n'")"

# --- state versions: a restore to before a migration takes the version back, $migrate runs again
as hist_owner "SELECT durable.define_class('hist', 'hist_h', '{\"history\": \"1 hour\", \"http\": true, \"version\": 2}')" >/dev/null
call m put '{"k": "x", "v": 1}' >/dev/null
as hist_owner "SELECT durable.define_class('hist', 'hist_h', '{\"history\": \"1 hour\", \"http\": true, \"version\": 3}')" >/dev/null
tm=$(now)
call m put '{"k": "x", "v": 2}' >/dev/null
is "the object migrated to 3" "$(sql "SELECT version || ':' || (SELECT value FROM durable.storage WHERE class = 'hist' AND id = 'm' AND key = 'migrations') FROM durable.objects WHERE class = 'hist' AND id = 'm'")" "3:1"
sql "SELECT durable.restore('hist', 'm', '$tm')" >/dev/null
is "restore to before the migration: version 2 again, migration undone" \
    "$(sql "SELECT version FROM durable.objects WHERE class = 'hist' AND id = 'm'"):$(state hist m)" "2:x=1"
call m put '{"k": "y", "v": 1}' >/dev/null
is "the next call runs \$migrate again" "$(state hist m)" "migrations=1,x=1,y=1"

# --- durable before it returns: kill -9 right after a restore of an async class
as hist_owner "SELECT durable.define_class('hasync', 'hist_h', '{\"history\": \"1 hour\", \"durability\": \"async\"}')" >/dev/null
call d put '{"k": "x", "v": 1}' hasync >/dev/null
ta=$(now)
call d put '{"k": "x", "v": 2}' hasync >/dev/null
sql "SELECT durable.restore('hasync', 'd', '$ta')" >/dev/null
cluster_kill9
cluster_start
wait_hosts
is "a restore that returned survives kill -9 (async class)" "$(state hasync d)" 'x=1'

# --- drop_class: history is data; dropping deletes it; a new class of the name sees nothing
call g put '{"k": "secret", "v": 42}' hasync >/dev/null
call g clear '{}' hasync >/dev/null
sql "DELETE FROM durable._storage WHERE class = 'hasync'"
out=$(as hist_owner "SELECT durable.drop_class('hasync')")
is "drop_class refuses while only history is left (2BP01)" "$(sqlstate "$out")" 2BP01
as hist_owner "SELECT durable.drop_class('hasync', drop_data => true)" >/dev/null
is "drop_class with drop_data deletes the history" \
    "$(sql "SELECT count(*) FROM durable._history WHERE class = 'hasync'")" 0
as hist_rival "SELECT durable.define_class('hasync', 'hist_rival_h', '{\"history\": \"1 hour\"}')" >/dev/null
out=$(as hist_rival "SELECT * FROM durable.storage_at('hasync', 'g', '$ta')")
is "a class defined again by another role cannot reach the old history (22023)" "$(sqlstate "$out")" 22023
is "... and its storage_at now shows nothing of it" \
    "$(as hist_rival "SELECT count(*) FROM durable.storage_at('hasync', 'g', now())" | tail -1)" 0

# --- pruning by the hosts; turning history off prunes the rest
as hist_owner "SELECT durable.define_class('short', 'hist_h', '{\"history\": \"2 seconds\"}')" >/dev/null
kept=$(sql "SELECT count(*) FROM durable._history WHERE class = 'hist'")
call p put '{"k": "x", "v": 1}' short >/dev/null
call p put '{"k": "x", "v": 2}' short >/dev/null
is "a short history has its rows at first" "$(sql "SELECT count(*) FROM durable._history WHERE class = 'short'")" 2
if wait_for "SELECT count(*) = 0 FROM durable._history WHERE class = 'short'" 30; then
    ok "the hosts prune rows older than the history"
else
    not_ok "the hosts prune rows older than the history" \
        "$(sql "SELECT count(*) FROM durable._history WHERE class = 'short'") rows"
fi
is "rows within their class's history are kept" \
    "$(sql "SELECT count(*) FROM durable._history WHERE class = 'hist'")" "$kept"
as hist_owner "SELECT durable.define_class('short', 'hist_h', '{\"history\": \"1 hour\"}')" >/dev/null
call p put '{"k": "x", "v": 3}' short >/dev/null
is "a longer history keeps the new row" "$(sql "SELECT count(*) FROM durable._history WHERE class = 'short'")" 1
as hist_owner "SELECT durable.define_class('short', 'hist_h')" >/dev/null
call p put '{"k": "x", "v": 4}' short >/dev/null
if wait_for "SELECT count(*) = 0 FROM durable._history WHERE class = 'short'" 30; then
    ok "history turned off: its rows are pruned"
else
    not_ok "history turned off: its rows are pruned"
fi
out=$(as hist_owner "SELECT * FROM durable.storage_at('short', 'p', now())")
is "storage_at of a class whose history was turned off: 55000" "$(sqlstate "$out")" 55000

# --- pg_dump keeps the history
if pg_dump -a -t durable._history postgres 2>/dev/null | grep -q 'COPY durable._history'; then
    ok "pg_dump keeps durable._history"
else
    not_ok "pg_dump keeps durable._history"
fi

as hist_owner "SELECT durable.drop_class('hist', true); SELECT durable.drop_class('plain', true);
               SELECT durable.drop_class('short', true)" >/dev/null
as hist_rival "SELECT durable.drop_class('rival', true); SELECT durable.drop_class('hasync', true)" >/dev/null
exit 0
