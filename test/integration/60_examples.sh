#!/usr/bin/env bash
# The example apps (examples/*.sql) on the running cluster, driven by Node clients through the
# JavaScript client (clients/js) and the pages' own OT code (examples/web):
#   collab_doc  5 clients x 20 concurrent edits at overlapping positions converge, no insertion
#               lost; the text loaded once; cursors and presence to the others; reconnect
#               mid-edit; an edit sent twice applied once; a gateway restart resumed without
#               loading the text again; a gap caught up by "since", or by a reload
#   iot_hub     readings by durable.call, durable.send and HTTP POST; the last-1000 cap; the 30%
#               alert rule (and an average of 0); dashboards get reading and alert events
#   game        two players join, inputs move them, ~20 ticks/s, the loop stops when both leave
#   make demo   stopped by SIGTERM to its process group: no postmaster, no scratch folder left
# The node tests are examples/test/*.test.mjs (node:test); this script loads the examples and
# turns node's TAP output into the runner's "ok - ..." / "not ok - ..." lines.
source "$TEST_ROOT/test/lib.sh"
set -u

DURABLE_PORT=${DURABLE_PORT:-$(sql "SHOW durable.port")}
export DURABLE_PORT PGHOST PGPORT PGDATABASE TEST_ROOT
[ -n "${PGUSER:-}" ] && export PGUSER

sql "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_durable_objects" >/dev/null
for f in collab_doc iot_hub game; do
    if out=$(psql -X -q -v ON_ERROR_STOP=1 -c 'SET client_min_messages = warning' \
             -f "$TEST_ROOT/examples/$f.sql" 2>&1 >/dev/null); then
        ok "examples/$f.sql loads"
    else
        not_ok "examples/$f.sql loads" "$out"
    fi
done
# loading again (the files are meant to be re-run after an edit) keeps working
check "examples load twice" psql -X -q -v ON_ERROR_STOP=1 -c 'SET client_min_messages = warning' \
    -f "$TEST_ROOT/examples/collab_doc.sql" -f "$TEST_ROOT/examples/iot_hub.sql" \
    -f "$TEST_ROOT/examples/game.sql" -o /dev/null
check "the classes are defined" [ "$(sql "SELECT string_agg(name || ':' || websocket || ':' || http || ':' || durability, ' ' ORDER BY name)
    FROM durable.classes WHERE name IN ('collab_doc', 'iot_hub', 'game')")" = \
    "collab_doc:true:false:sync game:true:false:async iot_hub:true:true:sync" ]

wait_gateway 30 >/dev/null || not_ok "the gateway answers /healthz"
sleep 1.5   # the class directory reaches the gateway

cd "$TEST_ROOT/examples/test" || exit 1
timeout 300 node --test --test-concurrency=1 --test-reporter=tap ./*.test.mjs 2>&1 |
    sed -n 's/^ok [0-9]* - /ok - /p; s/^not ok [0-9]* - /not ok - /p; s/^\(# .*\)$/\1/p; s/^\(  *\(error\|expected\|actual\|location\|stack\|message\):.*\)$/\1/p' |
    sed 's/^\(# Subtest: .*\)$//' | grep -v '^$'
status=${PIPESTATUS[0]}
[ "$status" = 0 ] || not_ok "node tests of the examples exited with status $status"
# every socket of the tests is gone: no game loop is left running
check "no example alarm is left behind" wait_for \
    "SELECT count(*) = 0 FROM durable.alarms WHERE class = 'game' AND id LIKE 'it60-%'" 10

# make demo (test/demo.sh), stopped by SIGTERM to its whole process group as `timeout`,
# `docker stop` or a supervisor do, once while it runs and once while its cluster starts:
# no postmaster and no scratch folder are left behind
demo_stop() {   # demo_stop NAME READY-TEST: start the demo, wait for READY-TEST, TERM its group
    local name=$1 ready=$2 dir pid i pm=
    dir=$(mktemp -d /tmp/durable-demo-test.XXXXXX)
    DEMO_DIR=$dir DEMO_PORT=$((PGPORT + 300)) DEMO_GATEWAY_PORT=$((DURABLE_PORT + 300)) \
        setsid "$TEST_ROOT/test/demo.sh" >"$TEST_ROOT/results/demo-$name.log" 2>&1 &
    pid=$!
    for i in $(seq 600); do
        eval "$ready" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -f "$dir/cluster/data/postmaster.pid" ] && pm=$(head -1 "$dir/cluster/data/postmaster.pid")
    if [ -z "$pm" ] || ! kill -0 "$pm" 2>/dev/null; then
        not_ok "demo ($name): its postmaster was running before the SIGTERM" "$(tail -3 "$TEST_ROOT/results/demo-$name.log")"
        kill -TERM -- "-$pid" 2>/dev/null
        sleep 5
        rm -rf "$dir"
        return
    fi
    kill -TERM -- "-$pid"
    for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    check "demo ($name): SIGTERM to its process group ends it" bash -c "! kill -0 $pid 2>/dev/null"
    # the postmaster removes its pid file (what pg_ctl stop waits for) just before it exits
    for i in $(seq 50); do kill -0 "$pm" 2>/dev/null || break; sleep 0.1; done
    check "demo ($name): no postmaster left behind" bash -c "! kill -0 $pm 2>/dev/null"
    check "demo ($name): no scratch folder left behind" bash -c "[ ! -e '$dir' ]"
    kill -9 "$pm" 2>/dev/null
    rm -rf "$dir"
}
mkdir -p "$TEST_ROOT/results"
demo_stop running 'grep -q "demo is running" "$TEST_ROOT/results/demo-running.log"'
demo_stop starting 'head -1 "$dir/cluster/data/postmaster.pid" 2>/dev/null | grep -q "^[0-9]"'   # initdb's backends write -pid
