#!/usr/bin/env bash
# G6 failure isolation: one failing call never changes the outcome of another call, even in
# the same batch: failing calls interleaved with good ones on the same object, and a call
# whose batch fails at commit (its storage write waits for a row lock past
# durable.call_timeout: the batch's calls are then run again, each alone).
source "$TEST_ROOT/test/lib.sh"
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
psql -X -q -v ON_ERROR_STOP=1 -f "$TEST_ROOT/test/fixtures/concurrency.sql" >/dev/null || exit 1

stats() { sql "SELECT sum(calls)::text || ' ' || sum(batches)::text FROM durable.hosts"; }

# --- G6: failing calls interleaved with good ones on the same object, in shared batches
read -r calls0 batches0 <<<"$(stats)"
echo "SELECT durable.call('conc', 'g6', 'inc');" >"$tmp/good.sql"
echo "SELECT conc_try_fail('g6');" >"$tmp/bad.sql"
pgbench -n -c 8 -j 1 -t 100 -f "$tmp/good.sql" >"$tmp/g6a.log" 2>&1 &
p1=$!
pgbench -n -c 8 -j 1 -t 100 -f "$tmp/bad.sql" >"$tmp/g6b.log" 2>&1
wait $p1
read -r calls1 batches1 <<<"$(stats)"
got=$(sql "SELECT durable.call('conc', 'g6', 'get')")
check "G6: 800 good calls counted despite 800 failing ones on the same object (got $got)" [ "$got" = 800 ]
calls=$((calls1 - calls0)); batches=$((batches1 - batches0))
echo "# $calls calls in $batches batches"
check "G6: calls shared batches ($calls calls, $batches batches)" [ "$batches" -lt "$calls" ]

# --- G6 at commit: a call whose error appears only at COMMIT (its storage write waits for a
#     row lock longer than durable.call_timeout) fails alone; the good call of the same batch
#     commits.  (durable.busy_threshold raised: else the slow call would make 'h' a slow object,
#     whose calls each run alone, and there would be no batch to share.)
sql "SELECT durable.call('conc', 'h', 'commit_bad')" >/dev/null
sql "TRUNCATE g6_log" >/dev/null
sql "ALTER SYSTEM SET durable.call_timeout = '1s'" >/dev/null
sql "ALTER SYSTEM SET durable.busy_threshold = '10s'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
PGAPPNAME=g6lock psql -X -q -At -c "BEGIN" \
    -c "SELECT 1 FROM durable._storage WHERE class = 'conc' AND id = 'h' AND key = 'bad' FOR UPDATE" \
    -c "SELECT pg_sleep(8)" -c "COMMIT" >/dev/null 2>&1 &
locker=$!
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'g6lock' AND query LIKE '%pg_sleep%'" 10
sql "SELECT durable.call('conc', 'h', 'slow', '{\"s\": 0.8}')" >/dev/null &
slow=$!
sleep 0.4
sql_try "SELECT durable.call('conc', 'h', 'inc')" >"$tmp/good.out" &
good=$!
sleep 0.1
psql -X -At -v VERBOSITY=verbose -c "SELECT durable.call('conc', 'h', 'commit_bad', '{\"n\": 1}')" >"$tmp/bad.out" 2>&1 &
bad=$!
wait $slow $good $bad
check "G6: the good call of the batch succeeded ($(cat "$tmp/good.out"))" [ "$(cat "$tmp/good.out")" = 1 ]
check "G6: the call that failed at commit got 55P03" grep -q 55P03 "$tmp/bad.out"
wait $locker
sql "ALTER SYSTEM RESET durable.call_timeout" >/dev/null
sql "ALTER SYSTEM RESET durable.busy_threshold" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
got=$(sql "SELECT count(*) FROM g6_log")
check "G6: the failed call's insert was rolled back" [ "$got" = 0 ]
got=$(sql "SELECT durable.call('conc', 'h', 'get')")
check "G6: the good call's write is there (n=$got)" [ "$got" = 1 ]
got=$(sql "SELECT value FROM durable._storage WHERE class = 'conc' AND id = 'h' AND key = 'bad'")
check "G6: the failed call's storage write was rolled back (bad=$got)" [ "$got" = 0 ]

