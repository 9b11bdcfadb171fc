#!/usr/bin/env bash
# G1 serial: at most one call of an object executes at a time, whatever its source.
# 16 sessions x 100 concurrent increments of one counter (a handler that reads, sleeps and
# writes, so two copies running at once would lose updates) end at exactly 1600, while a
# second object on the other host is hammered at the same time; sends and socket frames to
# one object are serial too (test/ws, 05_chat).
source "$TEST_ROOT/test/lib.sh"
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
psql -X -q -v ON_ERROR_STOP=1 -f "$TEST_ROOT/test/fixtures/concurrency.sql" >/dev/null || exit 1

# --- G1: 16 sessions x 100 increments of one object end at exactly 1600; a second
#     object on the other host is hammered at the same time.
echo "SELECT durable.call('conc', 'g1', 'inc');" >"$tmp/inc.sql"
echo "SELECT durable.call('conc', 'g1-other', 'inc');" >"$tmp/inc2.sql"
pgbench -n -c 16 -j 2 -t 100 -f "$tmp/inc.sql" >"$tmp/g1.log" 2>&1 &
p1=$!
pgbench -n -c 4 -j 1 -t 100 -f "$tmp/inc2.sql" >"$tmp/g1b.log" 2>&1
wait $p1
got=$(sql "SELECT durable.call('conc', 'g1', 'get')")
check "G1: 16 clients x 100 concurrent increments give 1600 (got $got)" [ "$got" = 1600 ]
got=$(sql "SELECT durable.call('conc', 'g1-other', 'get')")
check "G1: the other object counted its own 400 (got $got)" [ "$got" = 400 ]

# calls and sends mixed on one object: 4 sessions x 50 calls and 200 sends in 4 transactions
echo "SELECT durable.call('conc', 'g1-mixed', 'inc');" >"$tmp/mixed.sql"
pgbench -n -c 4 -j 2 -t 50 -f "$tmp/mixed.sql" >"$tmp/mixed.log" 2>&1 &
p1=$!
for i in 1 2 3 4; do
    sql "BEGIN; SELECT durable.send('conc', 'g1-mixed', 'inc') FROM generate_series(1, 50); COMMIT;" >/dev/null
done
wait $p1
check "G1: 200 calls and 200 sends of one object counted 400" \
    wait_for "SELECT durable.call('conc', 'g1-mixed', 'get') = '400'" 30
