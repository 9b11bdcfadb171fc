#!/usr/bin/env bash
# Several databases in one cluster (durable.database = 'A, B, nodb, noext'; docs/operations.md).
# A second cluster where A (postgres) and B have the extension, nodb does not exist and noext
# has no extension.  Class it49 has the same name, owner and handler in A and B, and objects
# with the same id; the checks:
#   a) storage, calls, alarms and sends of it49/x in A and in B are separate, and each
#      handler runs in its own database;
#   b) HTTP: plain /objects/... is A, /db/A/... is A, /db/B/... is B, an unlisted name is 404;
#   c) WebSockets and event streams (test/ws/several_databases.mjs): each database's sockets
#      get only its broadcasts, with its own numbers; a resume replays its own stream; the JS
#      client reaches B with objectUrl(..., { database: B });
#   d) a class or role of A cannot be reached from B (SQL, HTTP, the hosts view), and a
#      database not listed refuses durable.call;
#   e) nodb (does not exist): a clear log line, /db/nodb answers 503 with why, nothing
#      crashes; noext: its objects are 404, durable.call is not there;
#   f) DROP EXTENSION in B closes B's sockets (1001) and leaves A serving;
#   g) a list that is not valid (a name twice) stops the server with a clear message.
source "$TEST_ROOT/test/lib.sh"
set -u

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
A=postgres
B=it49_b

(
    dir="$tmp/multi"
    mkdir -p "$dir"
    cluster_init "$dir" $((PGPORT + 9)) "durable.database = '$A, $B ,it49_nodb,it49_noext'" \
        "durable.hosts = 1" && cluster_start || exit 1
    trap 'cluster_stop; rm -rf "$tmp"' EXIT
    sql "CREATE DATABASE $B" && sql "CREATE DATABASE it49_noext" && sql "CREATE DATABASE it49_other" || exit 1
    # the schedulers of B and noext met no database: a restart finds them at once
    cluster_restart || exit 1
    export DURABLE_PORT
    url="http://127.0.0.1:$DURABLE_PORT"
    on() { local db=$1; shift; sql "$@" -d "$db"; }
    on_try() { local db=$1; shift; sql_try "$@" -d "$db"; }
    post() { curl -s --max-time 10 -H 'Content-Type: application/json' -d '{}' "$url$1"; }
    status() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' -d '{}' "$url$1"; }

    sql "CREATE ROLE it49_alice; CREATE ROLE it49_bob" >/dev/null
    for db in $A $B it49_other; do
        on $db "SET client_min_messages = warning; CREATE EXTENSION pg_durable_objects;
            CREATE SCHEMA it49 AUTHORIZATION it49_alice;
            GRANT CREATE ON SCHEMA public TO it49_bob" >/dev/null || exit 1
    done
    for db in $A $B; do
        on $db "SET ROLE it49_alice;
        CREATE FUNCTION it49.h(id text, method text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$
        DECLARE n bigint;
        BEGIN
            CASE method
            WHEN 'inc' THEN
                n := coalesce(durable.get('n')::bigint, 0) + 1;
                PERFORM durable.put('n', to_jsonb(n));
                RETURN jsonb_build_object('n', n, 'db', current_database());
            WHEN 'get' THEN
                RETURN jsonb_build_object('n', coalesce(durable.get('n'), '0'), 'db', current_database(),
                                          'alarmed', durable.get('alarmed'), 'sent', durable.get('sent'));
            WHEN 'arm' THEN
                PERFORM durable.set_alarm(clock_timestamp() + interval '300 ms');
                RETURN 'true';
            WHEN '\$alarm' THEN
                PERFORM durable.put('alarmed', to_jsonb(current_database()));
            WHEN 'mark' THEN
                PERFORM durable.put('sent', to_jsonb(current_database()));
            WHEN 'shout' THEN
                PERFORM durable.broadcast(jsonb_build_object('db', current_database(), 'n', args->'n'));
                RETURN 'true';
            WHEN 'count' THEN
                RETURN to_jsonb((SELECT count(*) FROM durable.sockets()));
            ELSE
                NULL;
            END CASE;
            RETURN NULL;
        END \$\$;
        SELECT durable.define_class('it49', 'it49.h', '{\"websocket\": true, \"http\": true}')" >/dev/null || exit 1
    done
    # a class only A has, of another owner
    on $A "SET ROLE it49_bob;
        CREATE FUNCTION public.it49_only_a(id text, method text, args jsonb) RETURNS jsonb
            LANGUAGE sql AS 'SELECT to_jsonb(current_database())';
        SELECT durable.define_class('it49_only_a', 'public.it49_only_a', '{\"http\": true}')" >/dev/null || exit 1
    wait_gateway 30 || echo "# the gateway did not answer /healthz"
    sleep 1                     # the class directories of both databases

    # --- a) calls, storage, alarms and sends
    for i in 1 2 3; do on $A "SELECT durable.call('it49', 'x', 'inc')" >/dev/null; done
    got_b=$(on $B "SELECT durable.call('it49', 'x', 'inc')")
    is "a) the first call of it49/x in B starts at 1 (3 calls in A): $got_b" \
        "$(echo "$got_b" | jq -c '[.n, .db]')" "[1,\"$B\"]"
    is "a) it49/x in A counted its own 3 calls, in A" \
        "$(on $A "SELECT durable.call('it49', 'x', 'get')" | jq -c '[.n, .db]')" "[3,\"$A\"]"
    is "a) the storage rows of each database hold its own count" \
        "$(on $A "SELECT value FROM durable._storage WHERE class = 'it49' AND id = 'x' AND key = 'n'")/$(on $B "SELECT value FROM durable._storage WHERE class = 'it49' AND id = 'x' AND key = 'n'")" "3/1"
    on $B "SELECT durable.call('it49', 'x', 'arm')" >/dev/null
    on $A "SELECT durable.send('it49', 'x', 'mark', '{}')" >/dev/null
    for _ in $(seq 50); do
        [ "$(on $B "SELECT durable.call('it49', 'x', 'get')->>'alarmed'")" = "$B" ] &&
            [ "$(on $A "SELECT durable.call('it49', 'x', 'get')->>'sent'")" = "$A" ] && break
        sleep 0.1
    done
    is "a) an alarm set in B fired in B" "$(on $B "SELECT durable.call('it49', 'x', 'get')->>'alarmed'")" "$B"
    is "a) ... and not in A" "$(on $A "SELECT durable.call('it49', 'x', 'get')->>'alarmed'")" ""
    is "a) a send made in A ran in A" "$(on $A "SELECT durable.call('it49', 'x', 'get')->>'sent'")" "$A"
    is "a) ... and not in B" "$(on $B "SELECT durable.call('it49', 'x', 'get')->>'sent'")" ""
    is "a) each database's hosts view lists only its own hosts, connected to it" \
        "$(on $A "SELECT count(*) > 0 AND bool_and(pid IN (SELECT pid FROM pg_stat_activity WHERE datname = '$A')) FROM durable.hosts")/$(on $B "SELECT count(*) > 0 AND bool_and(pid IN (SELECT pid FROM pg_stat_activity WHERE datname = '$B')) FROM durable.hosts")" "t/t"
    is "a) one scheduler per database that exists" \
        "$(sql "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_stat_activity WHERE backend_type = 'pg_durable_objects scheduler'")" \
        "it49_b,it49_noext,postgres"

    # --- b) HTTP routing
    is "b) POST /objects/it49/x/get is A's object" "$(post /objects/it49/x/get | jq -c '.result | [.n, .db]')" "[3,\"$A\"]"
    is "b) POST /db/$A/objects/it49/x/get is A's object" "$(post /db/$A/objects/it49/x/get | jq -c '.result | [.n, .db]')" "[3,\"$A\"]"
    is "b) POST /db/$B/objects/it49/x/get is B's object" "$(post /db/$B/objects/it49/x/get | jq -c '.result | [.n, .db]')" "[1,\"$B\"]"
    is "b) POST /db/$B/objects/it49/x/inc runs in B" "$(post /db/$B/objects/it49/x/inc | jq -c '.result | [.n, .db]')" "[2,\"$B\"]"
    is "b) a database durable.database does not list is 404" "$(status /db/it49_other/objects/it49/x/get)" 404
    is "b) ... and so is /db/ with no name" "$(status /db//objects/it49/x/get)" 404
    is "b) a database name percent-encoded is decoded (/db/%70ostgres)" \
        "$(post /db/%70ostgres/objects/it49/x/get | jq -r .result.db)" "$A"

    # --- c) WebSockets, event streams, the JS client
    DB_A=$A DB_B=$B node "$TEST_ROOT/test/ws/several_databases.mjs" sockets 2>&1 |
        grep -E '^(not )?ok - ' || not_ok "c) the WebSocket checks ran"

    # --- d) what one database's classes and roles cannot reach in another
    out=$(on_try $B "SELECT durable.call('it49_only_a', 'x', 'm')")
    check "d) A's class is unknown to durable.call in B ($out)" grep -q 'does not exist' <<<"$out"
    is "d) A's class is 404 under /db/$B" "$(status /db/$B/objects/it49_only_a/x/m)" 404
    is "d) ... and answers under /objects (A)" "$(post /objects/it49_only_a/x/m | jq -r .result)" "$A"
    out=$(on_try $B "SELECT count(*) FROM durable.classes WHERE name = 'it49_only_a'")
    is "d) B's class view does not show A's class" "$out" 0
    out=$(on_try $B "SELECT count(*) FROM durable.hosts WHERE owner = 'it49_bob'::regrole")
    is "d) B's hosts view does not show the host of A's role it49_bob" "$out" 0
    out=$(on_try it49_other "SELECT durable.call('it49', 'x', 'get')")
    check "d) a database not listed refuses durable.call with a clear ERROR ($out)" \
        grep -q 'durable objects run in database' <<<"$out"

    # --- e) a listed database that does not exist, one without the extension
    check "e) the log names the database that does not exist and the setting" \
        grep -q 'scheduler connecting to database "it49_nodb" of durable.database' "$dir/server.log"
    body=$(post /db/it49_nodb/objects/it49/x/get)
    is "e) /db/it49_nodb answers 503" "$(status /db/it49_nodb/objects/it49/x/get)" 503
    check "e) ... saying why ($body)" grep -q 'cannot be connected to' <<<"$body"
    is "e) /db/it49_noext (no extension) answers 404" "$(status /db/it49_noext/objects/it49/x/get)" 404
    out=$(on_try it49_noext "SELECT durable.call('it49', 'x', 'get')")
    check "e) durable.call in it49_noext is an ERROR ($out)" grep -q 'ERROR' <<<"$out"
    check "e) /healthz is ok (the first database serves)" wait_gateway 5
    hz=$(curl -s --max-time 5 "$url/healthz")
    check "e) /healthz names the database it cannot serve" grep -q 'database "it49_nodb": the database cannot be connected to' <<<"$hz"

    # --- f) DROP EXTENSION in B
    DB_A=$A DB_B=$B node "$TEST_ROOT/test/ws/several_databases.mjs" hold >"$tmp/hold.out" 2>&1 &
    hold=$!
    for _ in $(seq 50); do
        [ "$(on $B "SELECT count(*) FROM durable.sockets_all WHERE id = 'held'")" = 1 ] && break
        sleep 0.1
    done
    hosts_a=$(on $A "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM durable.hosts WHERE home IS NOT NULL")
    on $B "DROP EXTENSION pg_durable_objects CASCADE" >/dev/null 2>&1
    wait "$hold"
    is "f) DROP EXTENSION in B closes B's socket with 1001" "$(cat "$tmp/hold.out")" "closed 1001"
    for _ in $(seq 30); do [ "$(status /db/$B/objects/it49/x/get)" = 404 ] && break; sleep 0.1; done
    is "f) B's objects are 404 after the drop" "$(status /db/$B/objects/it49/x/get)" 404
    for _ in $(seq 30); do
        [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_durable_objects host' AND datname = '$B'")" = 0 ] && break
        sleep 0.1
    done
    is "f) B's hosts left" "$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_durable_objects host' AND datname = '$B'")" 0
    is "f) A's home hosts are the same processes ($hosts_a)" \
        "$(on $A "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM durable.hosts WHERE home IS NOT NULL")" "$hosts_a"
    is "f) A still answers over HTTP" "$(post /objects/it49/x/inc | jq -c '.result | [.n, .db]')" "[4,\"$A\"]"
    is "f) A still answers durable.call" "$(on $A "SELECT durable.call('it49', 'x', 'get')->>'n'")" 4
    on $B "SET client_min_messages = warning; CREATE EXTENSION pg_durable_objects;
        SET ROLE it49_alice; SELECT durable.define_class('it49', 'it49.h', '{\"http\": true}')" >/dev/null
    for _ in $(seq 30); do [ "$(status /db/$B/objects/it49/x/get)" = 200 ] && break; sleep 0.1; done
    is "f) B serves again after CREATE EXTENSION: its object starts anew" \
        "$(post /db/$B/objects/it49/x/inc | jq -c '.result | [.n, .db]')" "[1,\"$B\"]"

    if grep -qE 'PANIC|server process .* was terminated|terminated by signal' "$dir/server.log"; then
        not_ok "no process crashed" "$(grep -E 'PANIC|terminated' "$dir/server.log" | head -3)"
    else
        ok "no process crashed"
    fi
) || not_ok "the cluster with several databases starts" "$(tail -5 "$tmp/multi/server.log" 2>/dev/null)"

# --- g) a list that is not valid
(
    dir="$tmp/bad"
    mkdir -p "$dir"
    cluster_init "$dir" $((PGPORT + 10)) "durable.database = 'a, b, a'" "durable.listen_address = ''" || exit 1
    if cluster_start 2>/dev/null; then
        not_ok "g) a database listed twice stops the server"
        cluster_stop
    else
        ok "g) a database listed twice stops the server"
    fi
    check "g) ... with a clear message" grep -q 'invalid value for parameter "durable.database".*' "$dir/server.log"
    check "g) ... that says why" grep -q 'A database is listed twice' "$dir/server.log"
)
