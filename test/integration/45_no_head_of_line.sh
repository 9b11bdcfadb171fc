#!/usr/bin/env bash
# No head-of-line blocking: a slow or blocked object never stalls the others.
# a) 8 clients call 100 objects of one class for 5 s (pgbench, per-call latencies logged): the
#    baseline.
# b) The same load while one object of the class runs back-to-back 2 s calls and three others'
#    calls wait on row locks held by an open transaction of another session (three blocked
#    objects, not one: each is one more chance to land in the middle of a host's batch of fast
#    calls).  The fast calls' p99 stays within 2x the baseline (+50 ms of slack for a small,
#    noisy machine), no fast call waits anywhere near as long as a slow call (worst < 1 s),
#    none fails, and the slow and blocked calls succeed, the blocked ones as soon as the locks
#    are released.
# c) The batch case of b) made deterministic: a fast object's send and a blocked object's send,
#    run in one batch of their common home host, fast first: a call to the fast object right
#    after does not wait for the blocked one.
source "$TEST_ROOT/test/lib.sh"
set -u

tmp=$(mktemp -d)
bgpids=()
cleanup() {
    local p
    for p in "${bgpids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
run=$(date +%s%N)    # fresh objects on every run

CLIENTS=8
SECONDS_LOAD=5
SLACK_MS=50
WORST_MS=1000    # half of one slow call

ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }

sql "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_durable_objects" || exit 1
sql "SET client_min_messages = warning;
DROP TABLE IF EXISTS it45_lock;
CREATE TABLE it45_lock (k int PRIMARY KEY, v int);
INSERT INTO it45_lock SELECT k, 0 FROM generate_series(1, 4) k;
CREATE OR REPLACE FUNCTION it45_h(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
DECLARE
    n bigint;
BEGIN
    CASE method
    WHEN 'inc' THEN
        n := coalesce(durable.get('n')::bigint, 0) + 1;
        PERFORM durable.put('n', to_jsonb(n));
        RETURN to_jsonb(n);
    WHEN 'sleep' THEN
        PERFORM pg_sleep((args->>'s')::float);
        n := coalesce(durable.get('n')::bigint, 0) + 1;
        PERFORM durable.put('n', to_jsonb(n));
        RETURN to_jsonb(n);
    WHEN 'locked' THEN
        UPDATE it45_lock SET v = v + 1 WHERE k = (args->>'k')::int;
        PERFORM durable.put('updated', 'true');
        RETURN 'true';
    WHEN 'get' THEN
        RETURN coalesce(durable.get('n'), '0');
    WHEN 'pid' THEN
        RETURN to_jsonb(pg_backend_pid());
    ELSE
        RAISE EXCEPTION 'unknown method %', method;
    END CASE;
END
\$\$;
SELECT durable.define_class('it45', 'it45_h');" >/dev/null || { not_ok "setup"; exit 1; }

cat >"$tmp/fast.sql" <<SQL
\set n random(1, 100)
SELECT durable.call('it45', 'f$run-' || :n, 'inc');
SQL

# warm up: every fast object once, so both phases call objects that exist
sql "SELECT count(durable.call('it45', 'f$run-' || i, 'inc')) FROM generate_series(1, 100) i" \
    >/dev/null || not_ok "warm-up calls succeed"

# load NAME: run the fast load; sets load_rc, load_n (calls), p99 (ms), worst (ms)
load() {
    local name=$1
    mkdir -p "$tmp/$name"
    pgbench -n -c $CLIENTS -j 2 -T $SECONDS_LOAD -f "$tmp/fast.sql" -l \
        --log-prefix="$tmp/$name/log" >"$tmp/$name.out" 2>&1
    load_rc=$?
    cat "$tmp/$name"/log.* 2>/dev/null | awk '{print $3}' | sort -n >"$tmp/$name.lat"
    load_n=$(wc -l <"$tmp/$name.lat")
    if [ "$load_n" -gt 0 ]; then
        p99=$(awk -v n="$load_n" 'NR == int(n * 0.99 + 0.999) {printf "%d", $1 / 1000}' "$tmp/$name.lat")
        worst=$(tail -1 "$tmp/$name.lat" | awk '{printf "%d", $1 / 1000}')
    else
        p99=0 worst=0
    fi
    echo "$load_rc $load_n $p99 $worst" >"$tmp/$name.res"
}

# result NAME: read what load NAME (maybe run in the background) found
result() { read -r load_rc load_n p99 worst <"$tmp/$1.res" || load_rc=missing load_n=0 p99=0 worst=0; }

# load_ok NAME: pgbench ran every client to the end without an error
load_ok() {
    local name=$1 label=$2
    result "$name"
    if [ "$load_rc" = 0 ] && [ "$load_n" -gt 0 ] && ! grep -qiE 'aborted|error' "$tmp/$name.out"; then
        ok "$label: $load_n fast calls by $CLIENTS clients, none failed"
    else
        not_ok "$label: $load_n fast calls by $CLIENTS clients, none failed" \
            "pgbench status $load_rc: $(grep -iE 'aborted|error' "$tmp/$name.out" | head -3 | tr '\n' ' ')"
    fi
}

# --- a) baseline ------------------------------------------------------------------------------
load baseline
load_ok baseline "a) baseline"
p99_base=$p99 worst_base=$worst n_base=$load_n

# --- b) the same load, a slow and three blocked objects joining it after 1 s ------------------
# (joining a running load: their first calls land in hosts busy with fast calls, where a
# long call in the middle of a batch could hold up the calls batched with it)
slow=s$run
t_load=$(ms)
load loaded &
loader=$!
bgpids+=("$loader")
sleep 1

# the other session: locks the row, holds it until $tmp/release exists, then commits
lock_held=$tmp/lock_held
(
    PGAPPNAME=it45_locker psql -X -q -At -v ON_ERROR_STOP=1 >"$tmp/locker.out" 2>&1 <<SQL
BEGIN;
SELECT k FROM it45_lock WHERE k <= 3 ORDER BY k FOR UPDATE;
\\! touch $lock_held
DO \$\$ BEGIN
    WHILE (pg_stat_file('$tmp/release', true)).size IS NULL LOOP PERFORM pg_sleep(0.02); END LOOP;
END \$\$;
COMMIT;
SQL
) &
locker=$!
bgpids+=("$locker")
for i in $(seq 100); do [ -e "$lock_held" ] && break; sleep 0.02; done
check "b) the other session holds the row lock" [ -e "$lock_held" ]

# the slow object: back-to-back 2 s calls until told to stop
(
    i=0
    while [ ! -e "$tmp/stop_slow" ]; do
        i=$((i + 1))
        if out=$(psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose \
                 -c "SELECT durable.call('it45', '$slow', 'sleep', '{\"s\": 2}')" 2>&1) \
           && [ "$out" = "$i" ]; then
            echo "ok $i" >>"$tmp/slow.log"
        else
            echo "fail $i: $out" >>"$tmp/slow.log"
        fi
    done
) &
slower=$!
bgpids+=("$slower")

# the blocked calls: their handler updates a locked row (one each), 150 ms apart
blocked_pids=()
for k in 1 2 3; do
    sleep 0.15
    PGAPPNAME=it45_blocked psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose \
        -c "SELECT durable.call('it45', 'b$run-$k', 'locked', '{\"k\": $k}')" >"$tmp/blocked$k.out" 2>&1 &
    blocked_pids+=($!)
    bgpids+=($!)
done

# all are in effect: three hosts wait on the locks, a host sleeps in the slow call
wait_for "SELECT count(*) = 3 FROM pg_stat_activity WHERE backend_type = 'pg_durable_objects host'
          AND wait_event_type = 'Lock'" 3
check "b) the blocked calls wait for the row locks in three hosts" [ $? = 0 ]
wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'pg_durable_objects host'
          AND wait_event = 'PgSleep')" 3
check "b) the slow call sleeps in a host" [ $? = 0 ]

# the load's time is up: the blocked calls still wait (then the locks are released, so that a
# fast call stuck behind them, if any, ends too and shows in the worst latency below)
sleep_until=$((t_load + SECONDS_LOAD * 1000 + 300))
while [ "$(ms)" -lt "$sleep_until" ]; do sleep 0.05; done
still_blocked=$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_durable_objects host'
                     AND wait_event_type = 'Lock'")
waiting=0
for p in "${blocked_pids[@]}"; do kill -0 "$p" 2>/dev/null && waiting=$((waiting + 1)); done
check "b) the blocked calls were still blocked when the load's time was up ($still_blocked hosts, $waiting callers)" \
    [ "$still_blocked/$waiting" = 3/3 ]

# release the locks: the blocked calls end, with success, promptly
t0=$(ms)
touch "$tmp/release"
for k in 1 2 3; do
    p=${blocked_pids[$((k - 1))]}
    e=timeout
    while [ $(($(ms) - t0)) -lt 5000 ]; do
        if ! kill -0 "$p" 2>/dev/null; then wait "$p"; e=$?; break; fi
        sleep 0.01
    done
    took=$(($(ms) - t0))
    if [ "$e" = 0 ] && [ "$(cat "$tmp/blocked$k.out")" = true ] && [ "$took" -le 3000 ]; then
        ok "b) blocked call $k succeeds once the lock is released (${took} ms after)"
    else
        not_ok "b) blocked call $k succeeds once the lock is released" \
            "status $e after $took ms: $(head -c 300 "$tmp/blocked$k.out" | tr '\n' ' ')"
    fi
done
wait "$locker"
check "b) the locking session committed" [ $? = 0 ]
is_v=$(sql "SELECT string_agg(v::text, ',' ORDER BY k) FROM it45_lock WHERE k <= 3")
check "b) each blocked call's update was applied once (v = $is_v)" [ "$is_v" = 1,1,1 ]

wait "$loader"
load_ok loaded "b) beside a slow and three blocked objects"
p99_slow=$p99 worst_slow=$worst n_slow=$load_n

limit=$((2 * p99_base))
[ $limit -lt $((p99_base + SLACK_MS)) ] && limit=$((p99_base + SLACK_MS))
if [ "$n_base" -gt 0 ] && [ "$n_slow" -gt 0 ] && [ "$p99_slow" -le "$limit" ]; then
    ok "b) p99 of fast calls beside a slow and three blocked objects: ${p99_slow} ms <= ${limit} ms (baseline p99 ${p99_base} ms; worst ${worst_base} / ${worst_slow} ms; ${n_base} / ${n_slow} calls)"
else
    not_ok "b) p99 of fast calls beside a slow and three blocked objects within max(2x, +${SLACK_MS} ms) of the baseline" \
        "p99 ${p99_slow} ms, limit ${limit} ms, baseline ${p99_base} ms; worst ${worst_base} / ${worst_slow} ms; ${n_base} / ${n_slow} calls"
fi

# no fast call waited for the slow or a blocked object: none took even half a slow call
if [ "$n_slow" -gt 0 ] && [ "$worst_slow" -lt $((WORST_MS)) ]; then
    ok "b) no fast call waited for the slow or a blocked object: worst ${worst_slow} ms < ${WORST_MS} ms (baseline worst ${worst_base} ms)"
else
    not_ok "b) no fast call waited for the slow or a blocked object (worst < ${WORST_MS} ms)" \
        "worst ${worst_slow} ms, $(awk '$1 >= 1000000' "$tmp/loaded.lat" | wc -l) fast calls took >= 1 s, baseline worst ${worst_base} ms"
fi

touch "$tmp/stop_slow"
wait "$slower"
n_ok=$(grep -c '^ok' "$tmp/slow.log" 2>/dev/null)
n_fail=$(grep -c '^fail' "$tmp/slow.log" 2>/dev/null)
if [ "$n_ok" -ge 2 ] && [ "$n_fail" = 0 ]; then
    ok "b) the slow object's $n_ok back-to-back 2 s calls all succeeded"
else
    not_ok "b) the slow object's back-to-back 2 s calls all succeeded" \
        "$n_ok ok, $n_fail failed: $(grep '^fail' "$tmp/slow.log" | head -2 | tr '\n' ' ')"
fi

# every fast call counted: the objects' counters add up to the calls made (+100 warm-up)
total=$(sql "SELECT sum(durable.call('it45', 'f$run-' || i, 'get')::bigint) FROM generate_series(1, 100) i")
check "the fast objects counted every call ($total = $n_base + $n_slow + 100)" \
    [ "$total" = $((n_base + n_slow + 100)) ]

# --- c) a blocked call does not hold up the calls that ran before it in its host's batch --------
# Deterministic: two sends committed together, to objects with the same home host, run in one
# batch of that host: first the fast one's, then one that blocks on a row lock.  A call to the
# fast object right after must not wait for the blocked one (it did run; only the batch it ran
# in is not committed).  The lock is released after 4 s at the latest.
sql "SELECT durable.call('it45', 'f$run-1', 'get')" >/dev/null    # hosts are up
fast_c= blocked_c=
declare -A home_of=()
for i in $(seq 1 12); do
    pid=$(sql "SELECT durable.call('it45', 'c$run-$i', 'pid')")
    if [ -n "${home_of[$pid]:-}" ]; then fast_c=${home_of[$pid]} blocked_c=c$run-$i; break; fi
    home_of[$pid]=c$run-$i
done
if [ -z "$fast_c" ]; then
    not_ok "c) two objects with the same home host found" "homes: ${!home_of[*]}"
else
    (
        PGAPPNAME=it45_locker2 psql -X -q -At -v ON_ERROR_STOP=1 >"$tmp/locker2.out" 2>&1 <<SQL
BEGIN;
SELECT k FROM it45_lock WHERE k = 4 FOR UPDATE;
\\! touch $tmp/lock2_held
DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
    WHILE (pg_stat_file('$tmp/release2', true)).size IS NULL
          AND clock_timestamp() < t0 + interval '4 s' LOOP
        PERFORM pg_sleep(0.02);
    END LOOP;
END \$\$;
COMMIT;
SQL
    ) &
    locker2=$!
    bgpids+=("$locker2")
    for i in $(seq 100); do [ -e "$tmp/lock2_held" ] && break; sleep 0.02; done
    sql "BEGIN;
         SELECT durable.send('it45', '$fast_c', 'inc');
         SELECT durable.send('it45', '$blocked_c', 'locked', '{\"k\": 4}');
         COMMIT;" >/dev/null
    wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'pg_durable_objects host'
              AND wait_event_type = 'Lock')" 5
    check "c) the blocked send waits for the row lock in a host" [ $? = 0 ]
    t0=$(ms)
    got=$(sql_try "SELECT durable.call('it45', '$fast_c', 'inc')")
    took=$(($(ms) - t0))
    touch "$tmp/release2"
    if [ "$got" = 2 ] && [ "$took" -lt "$WORST_MS" ]; then
        ok "c) a call to an object whose send ran just before a blocked one answers in ${took} ms (< ${WORST_MS} ms)"
    else
        not_ok "c) a call to an object whose send ran just before a blocked one answers within ${WORST_MS} ms" \
            "got '$got' after ${took} ms (the lock was held until then)"
    fi
    wait "$locker2"
    check "c) the blocked send ran once the lock was released" \
        wait_for "SELECT v = 1 FROM it45_lock WHERE k = 4" 10
fi

# --- cleanup ----------------------------------------------------------------------------------
sql "SET client_min_messages = warning; SELECT durable.drop_class('it45', true);
     DROP FUNCTION it45_h(text, text, jsonb); DROP TABLE it45_lock" >/dev/null
