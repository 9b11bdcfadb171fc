#!/usr/bin/env bash
# The JavaScript client (clients/js) with Node's test runner against the running cluster:
# clients/js/test/*.test.mjs (calls, errors that stop, resume, gaps, binary, the packed
# tarball), one file and one test at a time (a test restarts the gateway, another sets
# durable.max_sockets).
source "$TEST_ROOT/test/lib.sh"
set -u
export DURABLE_PORT PGHOST PGPORT PGDATA TEST_ROOT
sql "CREATE EXTENSION IF NOT EXISTS pg_durable_objects" >/dev/null 2>&1
wait_gateway 30 >/dev/null
cd "$TEST_ROOT/clients/js" || exit 1
timeout 300 node --test --test-concurrency=1 --test-reporter=tap test/*.test.mjs 2>&1 |
    sed -n 's/^ok [0-9]* - /ok - /p; s/^not ok [0-9]* - /not ok - /p; s/^\(# .*\)$/\1/p; s/^\(  *\(error\|expected\|actual\|location\|stack\|message\):.*\)$/\1/p' |
    sed 's/^\(# Subtest: .*\)$//' | grep -v '^$'
status=${PIPESTATUS[0]}
[ "$status" = 0 ] || not_ok "node tests of the JavaScript client exited with status $status"
# the gateway was restarted by tests: leave it serving
wait_gateway 30 >/dev/null
