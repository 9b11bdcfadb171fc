#!/usr/bin/env bash
# Upgrade from the 0.1 release: a cluster runs 0.1 (built from the git history by
# test/old-release.sh, in a private copy of the server), gets classes, objects with state,
# alarms, pending sends and open sockets; then the same data folder is started with this
# build.  Before ALTER EXTENSION ... UPDATE the new library refuses with a clear message and
# nothing crashes; after it every object, alarm and send is there and runs once, sockets
# connect, and the upgraded schema is the one a fresh CREATE EXTENSION makes.
source "$TEST_ROOT/test/lib.sh"
set -u
tmp=$(mktemp -d)
new_path=$PATH
old_bin=${RELEASE_0_1_BIN:-"error: RELEASE_0_1_BIN not set (run through test/run.sh)"}
if [[ $old_bin == error:* ]] || [ ! -x "$old_bin/postgres" ]; then
    not_ok "the 0.1 release is built from the git history" "$old_bin"
    exit 0
fi
ok "the 0.1 release is built from the git history"

export PGDATABASE=postgres
cluster_init "$tmp/c" $((PGPORT + 2)) "durable.hosts = 2" || exit 1
trap 'cluster_stop' EXIT
PATH="$old_bin:$new_path" cluster_start || { tail -20 "$tmp/c/server.log"; exit 1; }
wait_gateway 30 || true

# --- on 0.1: a role's class, 50 objects with state, alarms, sends, sockets
sql "CREATE EXTENSION pg_durable_objects" >/dev/null
check "the old server installs version 0.1" test "$(sql "SELECT extversion FROM pg_extension WHERE extname = 'pg_durable_objects'")" = 0.1
sql "CREATE ROLE up_alice LOGIN; GRANT CREATE ON SCHEMA public TO up_alice" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -U up_alice <<'SQL' >/dev/null || not_ok "the 0.1 class is defined"
CREATE FUNCTION public.up_counter(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    CASE method
    WHEN 'add' THEN
        n := coalesce((durable.get('n'))::bigint, 0) + coalesce((args->>'by')::bigint, 1);
        PERFORM durable.put('n', to_jsonb(n));
        RETURN to_jsonb(n);
    WHEN 'get' THEN
        RETURN jsonb_build_object('n', coalesce(durable.get('n'), '0'),
                                  'fired', coalesce(durable.get('fired'), '0'));
    WHEN 'arm' THEN
        PERFORM durable.set_alarm((args->>'at')::timestamptz);
        RETURN 'true';
    WHEN '$alarm' THEN
        PERFORM durable.put('fired', to_jsonb(coalesce((durable.get('fired'))::int, 0) + 1));
        RETURN NULL;
    WHEN 'shout' THEN
        PERFORM durable.broadcast(jsonb_build_object('shout', args->'text'));
        RETURN 'true';
    ELSE
        RETURN NULL;
    END CASE;
END $$;
SELECT durable.define_class('up_counter', 'public.up_counter', '{"websocket": true, "http": true}');
SQL
# object i holds n = i; objects 1-20 have an alarm 12 s from now
sql "SELECT count(durable.call('up_counter', 'o' || i, 'add', jsonb_build_object('by', i)))
       FROM generate_series(1, 50) i" -U up_alice >/dev/null
sql "SELECT count(durable.call('up_counter', 'o' || i, 'arm',
                               jsonb_build_object('at', now() + interval '12 seconds')))
       FROM generate_series(1, 20) i" -U up_alice >/dev/null
check "0.1: 20 alarms are pending" test "$(sql "SELECT count(*) FROM durable._alarms")" = 20
# three sockets stay open until the old server stops
node "$TEST_ROOT/test/ws/watch_close.mjs" "ws://127.0.0.1:$DURABLE_PORT/objects/up_counter/o1" 3 60 \
    >"$tmp/watch" 2>&1 &
watcher=$!
for _ in $(seq 100); do grep -q '^open 3' "$tmp/watch" && break; sleep 0.1; done
check "0.1: three sockets are open" grep -q '^open 3' "$tmp/watch"
# 2,000 sends to objects s1-s10 in one transaction, and the server stops at once: most are
# still in the outbox when it goes
sql "SELECT count(durable.send('up_counter', 's' || (i % 10 + 1), 'add', '{}'))
       FROM generate_series(1, 2000) i" -U up_alice >/dev/null
PATH="$old_bin:$new_path" cluster_stop
wait $watcher
check "0.1: its sockets are closed when the old server stops" grep -q '^close 10' "$tmp/watch"

# --- the new build on the same data folder, before ALTER EXTENSION ... UPDATE
cluster_start || { tail -20 "$tmp/c/server.log"; exit 1; }
pending=$(sql "SELECT count(*) FROM durable._outbox")
check "sends were still pending when the 0.1 server stopped ($pending)" test "$pending" -gt 0
sleep 2
check "the new library starts on 0.1's data" pg_ctl -D "$PGDATA" status
check "its server still runs 2 s later" sql "SELECT 1"
out=$(psql -X -At -U up_alice -c "SELECT durable.call('up_counter', 'o1', 'get')" 2>&1)
echo "$out" | sed 's/^/# /'
check "a call before the update: ERROR says the installed version is behind the library" \
    grep -q 'extension "pg_durable_objects" is at version 0.1 in database "postgres" but its library is version 0.2' <<<"$out"
check "a call before the update: HINT says to run ALTER EXTENSION ... UPDATE" \
    grep -q 'HINT:  Run ALTER EXTENSION pg_durable_objects UPDATE' <<<"$out"
check "the workers log what to run" \
    grep -q 'WARNING:.*is at version 0.1 in database "postgres" but its library is version 0.2: no object is served here' "$tmp/c/server.log"
check "nothing ran before the update (no send delivered, no alarm fired)" \
    test "$(sql "SELECT count(*) FROM durable._outbox")" = "$pending"
check "no process crashed" bash -c "! grep -qE 'terminated by signal|was terminated' '$tmp/c/server.log'"

# --- the update
check "ALTER EXTENSION pg_durable_objects UPDATE" sql "ALTER EXTENSION pg_durable_objects UPDATE"
check "the extension is at 0.2" test "$(sql "SELECT extversion FROM pg_extension WHERE extname = 'pg_durable_objects'")" = 0.2

# --- after it: nothing lost, everything runs once
wait_for "SELECT NOT EXISTS (SELECT FROM durable._outbox)" 60
check "every pending send ran: the outbox is empty" \
    test "$(sql "SELECT count(*) FROM durable._outbox")" = 0
sends=$(sql "SELECT sum((durable.call('up_counter', 's' || i, 'get')->>'n')::bigint)
               FROM generate_series(1, 10) i" -U up_alice)
check "every send ran exactly once (2000 increments, got $sends)" test "$sends" = 2000
states=$(sql "SELECT count(*) FROM generate_series(11, 50) i
               WHERE (durable.call('up_counter', 'o' || i, 'get')->>'n')::bigint = i" -U up_alice)
check "every object's state survived (40 of 40, got $states)" test "$states" = 40
wait_for "SELECT count(*) = 0 FROM durable._alarms" 60
fired=$(sql "SELECT count(*) FROM generate_series(1, 20) i
              WHERE durable.call('up_counter', 'o' || i, 'get')->'fired' = '1'" -U up_alice)
check "every alarm fired exactly once (20 of 20, got $fired)" test "$fired" = 20
check "durable.classes shows the class with its owner" \
    test "$(sql "SELECT owner || ' ' || version FROM durable.classes WHERE name = 'up_counter'" -U up_alice)" = "up_alice 1"
check "the class owner sees its objects' keys in durable.storage (new in 0.2)" \
    test "$(sql "SELECT count(*) FROM durable.storage WHERE class = 'up_counter' AND key = 'n'" -U up_alice)" = 60
check "no socket of the old server is listed" \
    test "$(sql "SELECT count(*) FROM durable.sockets_all" -U up_alice)" = 0
wait_gateway 30 || true
code=$(curl -s --max-time 10 -o "$tmp/http" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' -d '{"by": 5}' \
    "http://127.0.0.1:$DURABLE_PORT/objects/up_counter/o50/add")
echo "# HTTP $code $(head -c 300 "$tmp/http")"
check "HTTP: a call through the gateway works after the update" grep -qx '{"result": 55}' "$tmp/http"
# a socket connects, and a broadcast made from SQL reaches it
node --input-type=module -e "
import WebSocket from '$TEST_ROOT/test/ws/node_modules/ws/index.js';
const ws = new WebSocket('ws://127.0.0.1:$DURABLE_PORT/objects/up_counter/o2');
setTimeout(() => { console.log('timeout'); process.exit(1); }, 20000);
ws.on('open', () => console.log('open'));
ws.on('message', (m) => { console.log('message ' + m); process.exit(0); });
" >"$tmp/ws" 2>&1 &
client=$!
for _ in $(seq 100); do grep -q '^open' "$tmp/ws" && break; sleep 0.1; done
sql "SELECT durable.call('up_counter', 'o2', 'shout', '{\"text\": \"after\"}')" -U up_alice >/dev/null
wait $client
sed 's/^/# /' "$tmp/ws"
check "WebSocket: a socket connects and gets a broadcast after the update" \
    grep -q '"shout": *"after"' "$tmp/ws"
sql "SELECT durable.define_class('up_counter', 'public.up_counter',
                                 '{\"websocket\": true, \"http\": true, \"version\": 2}')" -U up_alice >/dev/null
sql "SELECT durable.call('up_counter', 'o3', 'get')" -U up_alice >/dev/null
check "0.2 features on upgraded objects: class version 2 migrates o3 on its next call" \
    test "$(sql "SELECT version FROM durable.objects WHERE class = 'up_counter' AND id = 'o3'" -U up_alice)" = 2

# --- the upgraded schema is the one a fresh 0.2 install makes: every member of the extension
# with its definition (columns, constraints, indexes, functions, views, grants, comments)
schema_sql="
WITH members AS (
    SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
     WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'pg_durable_objects'
       AND d.deptype = 'e')
SELECT pg_describe_object(m.classid, m.objid, 0) || ' | ' || coalesce(
         CASE m.classid
           WHEN 'pg_proc'::regclass THEN md5(pg_get_functiondef(m.objid)) || ' ' ||
                coalesce((SELECT proacl::text FROM pg_proc WHERE oid = m.objid), '-')
           WHEN 'pg_class'::regclass THEN (
                SELECT c.relkind::text || ' ' || coalesce(c.relacl::text, '-') || ' ' ||
                       coalesce(md5(pg_get_viewdef(c.oid)), '') || ' ' ||
                       coalesce((SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod)
                                                   || ':' || a.attnotnull || ':' ||
                                                   coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''), ',' ORDER BY a.attname)
                                   FROM pg_attribute a LEFT JOIN pg_attrdef ad
                                     ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') || ' ' ||
                       coalesce((SELECT string_agg(pg_get_constraintdef(k.oid), ',' ORDER BY pg_get_constraintdef(k.oid))
                                   FROM pg_constraint k WHERE k.conrelid = c.oid), '') || ' ' ||
                       coalesce((SELECT string_agg(pg_get_indexdef(i.indexrelid), ',' ORDER BY 1)
                                   FROM pg_index i WHERE i.indrelid = c.oid), '') || ' ' ||
                       coalesce((SELECT string_agg(pg_get_triggerdef(t.oid), ',' ORDER BY 1)
                                   FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal), '')
                  FROM pg_class c WHERE c.oid = m.objid)
           ELSE ''
         END, '') || ' | ' || coalesce(obj_description(m.objid, m.classid::regclass::text), '')
  FROM members m
 ORDER BY 1"
sql "CREATE DATABASE up_fresh" >/dev/null
sql "CREATE EXTENSION pg_durable_objects" -d up_fresh >/dev/null
sql "$schema_sql" >"$tmp/upgraded.txt"
sql "$schema_sql" -d up_fresh >"$tmp/fresh.txt"
echo "# extension members: $(wc -l <"$tmp/fresh.txt") fresh, $(wc -l <"$tmp/upgraded.txt") upgraded"
if [ "$(wc -l <"$tmp/fresh.txt")" -lt 50 ]; then
    not_ok "the upgraded schema equals a fresh 0.2 install" "the listing of the fresh install is too short"
elif diff "$tmp/fresh.txt" "$tmp/upgraded.txt" >"$tmp/schema.diff"; then
    ok "the upgraded schema equals a fresh 0.2 install ($(wc -l <"$tmp/fresh.txt") members compared)"
else
    not_ok "the upgraded schema equals a fresh 0.2 install"
    head -20 "$tmp/schema.diff" | sed 's/^/# /'
fi
check "no process crashed" bash -c "! grep -qE 'terminated by signal|was terminated' '$tmp/c/server.log'"
