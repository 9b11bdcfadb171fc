#!/usr/bin/env bash
# The JavaScript client (clients/js) with Node's test runner against the running cluster.
source "$TEST_ROOT/test/lib.sh"
set -u
sql "CREATE EXTENSION IF NOT EXISTS pg_durable_objects" >/dev/null 2>&1
wait_gateway 30 >/dev/null
cd "$TEST_ROOT/clients/js" || exit 1
timeout 120 node --test --test-reporter=tap test/ 2>&1 |
    sed -n 's/^ok [0-9]* - /ok - /p; s/^not ok [0-9]* - /not ok - /p; s/^\(# .*\)$/\1/p'
status=${PIPESTATUS[0]}
[ "$status" = 0 ] || not_ok "node tests of the JavaScript client exited with status $status"
# the gateway was restarted by a test: leave it serving
wait_gateway 30 >/dev/null
