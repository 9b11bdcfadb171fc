#!/usr/bin/env bash
# Set-up mistakes and lifecycle: not preloaded, wrong database, DROP/CREATE EXTENSION under
# running hosts, DROP DATABASE, pg_dump/restore of classes and storage, settings reload.
source "$TEST_ROOT/test/lib.sh"
set -u
tmp=$(mktemp -d)

sql "CREATE EXTENSION IF NOT EXISTS pg_durable_objects" >/dev/null
sql "CREATE FUNCTION life(id text, method text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$
BEGIN
    IF method = 'set' THEN PERFORM durable.put(args); END IF;
    RETURN coalesce((SELECT jsonb_object_agg(key, value) FROM durable.list()), '{}');
END \$\$;
SELECT durable.define_class('life', 'life');" >/dev/null

# --- wrong database: a clear error with a hint
sql "CREATE DATABASE life_other" >/dev/null
sql "CREATE EXTENSION pg_durable_objects" -d life_other >/dev/null
out=$(psql -X -At -d life_other -c "SELECT durable.call('life', 'a', 'get')" 2>&1)
echo "$out" | sed 's/^/# /'
check "wrong database: ERROR names the database the hosts serve" grep -q 'durable objects run in database "postgres", not in "life_other"' <<<"$out"
check "wrong database: HINT says what to set" grep -q "HINT:.*durable.database" <<<"$out"

# --- DROP DATABASE is not blocked by the hosts (they are connected elsewhere, and wait on latches)
check "DROP DATABASE of another database completes" timeout 20 psql -X -q -c "DROP DATABASE life_other"

# --- not preloaded: a second cluster without shared_preload_libraries
(
    export PGDATABASE=postgres
    cluster_init "$tmp/plain" $((PGPORT + 1)) "shared_preload_libraries = ''" && cluster_start
    sql "CREATE EXTENSION pg_durable_objects" >/dev/null
    out=$(psql -X -At -c "SELECT durable.call('life', 'a', 'get')" 2>&1)
    echo "$out" | sed 's/^/# /'
    check "not preloaded: ERROR says so" grep -q "not loaded through shared_preload_libraries" <<<"$out"
    check "not preloaded: HINT says what to set" grep -q "HINT:.*shared_preload_libraries" <<<"$out"
    cluster_stop
)

# --- pg_dump keeps every class, object and key; a restore brings them back
sql "SELECT durable.call('life', 'dumped', 'set', '{\"k1\": 1, \"k2\": {\"x\": [true]}}')" >/dev/null
before=$(sql "SELECT string_agg(class || '/' || id || '/' || key || '=' || value::text, ';' ORDER BY class, id, key) FROM durable._storage")
classes_before=$(sql "SELECT string_agg(name || '=' || handler, ';' ORDER BY name) FROM durable._classes")
pg_dump -Fc -f "$tmp/dump" postgres
check "pg_dump of the database succeeds" [ -s "$tmp/dump" ]
sql "CREATE DATABASE life_restored" >/dev/null
pg_restore -d life_restored "$tmp/dump" >"$tmp/restore.log" 2>&1
after=$(sql "SELECT string_agg(class || '/' || id || '/' || key || '=' || value::text, ';' ORDER BY class, id, key) FROM durable._storage" -d life_restored)
classes_after=$(sql "SELECT string_agg(name || '=' || handler, ';' ORDER BY name) FROM durable._classes" -d life_restored)
check "restore brings back every key and value" [ -n "$before" ] && [ "$before" = "$after" ]
check "restore brings back every class" [ -n "$classes_before" ] && [ "$classes_before" = "$classes_after" ]
sql "DROP DATABASE life_restored" >/dev/null

# still_running BEFORE AFTER: every pid of the comma list BEFORE is in AFTER (calls may have
# started more hosts; none may have been restarted)
still_running() {
    local p
    [ -n "$1" ] || return 1
    for p in ${1//,/ }; do [[ ",$2," == *",$p,"* ]] || return 1; done
}

# --- DROP EXTENSION under running hosts, then CREATE again: the open sockets are closed with
# 1001 "extension dropped", the hosts stop serving and leave (returning all their memory), and
# after CREATE EXTENSION new hosts serve
sql "CREATE FUNCTION life_ws(id text, method text, args jsonb) RETURNS jsonb LANGUAGE sql AS \$\$ SELECT NULL::jsonb \$\$;
SELECT durable.define_class('life_ws', 'life_ws', '{\"websocket\": true}')" >/dev/null
wait_for "SELECT true" 5
DURABLE_PORT=$(sql "SHOW durable.port")
node "$TEST_ROOT/test/ws/watch_close.mjs" "ws://127.0.0.1:$DURABLE_PORT/objects/life_ws/room" 3 30 >"$tmp/watch" 2>&1 &
watcher=$!
for _ in $(seq 1 100); do grep -q '^open 3' "$tmp/watch" && break; sleep 0.1; done
check "three sockets are open before DROP EXTENSION" grep -q '^open 3' "$tmp/watch"
hosts_before=$(sql "SELECT string_agg(pid::text, ',' ORDER BY host) FROM durable.hosts")
pg_dump -Fc -n durable -f "$tmp/keep" postgres   # keep the regression suite's data aside
sql "DROP EXTENSION pg_durable_objects CASCADE" >/dev/null 2>&1
wait "$watcher"
sed 's/^/# /' "$tmp/watch"
check "DROP EXTENSION closes every open socket with 1001 \"extension dropped\"" \
    [ "$(grep -c '^close 1001 extension dropped$' "$tmp/watch")" = 3 ]
# gone: every pid of the comma list $1 has exited
gone() {
    local p
    for p in ${1//,/ }; do kill -0 "$p" 2>/dev/null && return 1; done
    return 0
}
for _ in $(seq 1 100); do gone "$hosts_before" && break; sleep 0.1; done
check "after DROP EXTENSION every host leaves within 10 s, returning its memory ($hosts_before)" \
    bash -c "[ -n '$hosts_before' ] && $(declare -f gone); gone '$hosts_before'"
check "the hosts left on their own: none crashed or was terminated" \
    bash -c "! grep -E 'pg_durable_objects host.*(terminated by signal|exited with exit code [1-9])' '$PGDATA/../server.log' | grep -qE '$(sed 's/,/|/g' <<<"$hosts_before")'"
check "after DROP EXTENSION a WebSocket upgrade is refused with 404" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
         -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
         "http://127.0.0.1:$DURABLE_PORT/objects/life_ws/room")" = 404 ]
sql "CREATE EXTENSION pg_durable_objects" >/dev/null
sql "SELECT durable.define_class('life', 'life')" >/dev/null
got=$(sql "SELECT durable.call('life', 'fresh', 'set', '{\"a\": 1}')")
check "after DROP and CREATE EXTENSION calls work again ($got)" [ "$got" = '{"a": 1}' ]

# --- settings are reloaded by the hosts (SIGHUP): max_batch = 1 means one call per batch
sql "ALTER SYSTEM SET durable.max_batch = 1" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
read -r c0 b0 <<<"$(sql "SELECT sum(calls), sum(batches) FROM durable.hosts" -F ' ')"
echo "SELECT durable.call('life', 'batch', 'get');" >"$tmp/get.sql"
pgbench -n -c 8 -j 2 -t 50 -f "$tmp/get.sql" >/dev/null 2>&1
read -r c1 b1 <<<"$(sql "SELECT sum(calls), sum(batches) FROM durable.hosts" -F ' ')"
check "durable.max_batch = 1 after reload: $((c1 - c0)) calls in $((b1 - b0)) batches" \
    [ $((c1 - c0)) = 400 ] && [ $((b1 - b0)) = 400 ]
sql "ALTER SYSTEM RESET durable.max_batch" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null

# --- hibernation (G7) with the storage cache: the object leaves memory, its storage does not
sql "ALTER SYSTEM SET durable.idle_timeout = '1s'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
sql "SELECT durable.call('life', 'sleepy', 'set', '{\"n\": 41}')" >/dev/null
sql "SELECT durable.call('life', 'sleepy', 'set', '{\"n\": 42, \"m\": 1}')" >/dev/null
wait_for "SELECT NOT in_memory FROM durable.objects WHERE class = 'life' AND id = 'sleepy'" 10
check "an idle object hibernates" [ "$(sql "SELECT in_memory FROM durable.objects WHERE class = 'life' AND id = 'sleepy'")" = f ]
got=$(sql "SELECT durable.call('life', 'sleepy', 'get')")
check "after hibernation its storage is all there ($got)" [ "$got" = '{"m": 1, "n": 42}' ]
sql "ALTER SYSTEM RESET durable.idle_timeout" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null

# --- host errors are logged, hosts never restarted by handler errors
pids=$(sql "SELECT string_agg(pid::text, ',' ORDER BY host) FROM durable.hosts")
for i in $(seq 1 20); do sql_try "SELECT durable.call('life', 'e$i', 'set', '[1]')" >/dev/null; done
after=$(sql "SELECT string_agg(pid::text, ',' ORDER BY host) FROM durable.hosts")
check "twenty failing calls did not restart any host ($pids -> $after)" still_running "$pids" "$after"

rm -rf "$tmp"
