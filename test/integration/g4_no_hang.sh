#!/usr/bin/env bash
# G4 no hang: a caller waiting for a call always ends, promptly and with an error, when
#   a) its statement_timeout fires           d) the call exceeds durable.call_timeout
#   b) it is cancelled (pg_cancel_backend)   e) the server shuts down (pg_ctl stop -m fast)
#   c) the host running the call dies        f) (and a call cancelled while still queued is
#                                               skipped by the host, never run)
# The handler sleeps as long as asked, writing 'started' before and 'slept' after its sleep,
# so that the tests can see which writes survived.
source "$TEST_ROOT/test/lib.sh"
set -u

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run=$(date +%s%N)    # fresh objects on every run

sql "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_durable_objects"
sql "CREATE OR REPLACE FUNCTION it21_sleeper(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
DECLARE
    n bigint;
BEGIN
    CASE method
    WHEN 'sleep' THEN
        PERFORM durable.put('started', 'true');
        PERFORM pg_sleep((args->>'s')::float);
        PERFORM durable.put('slept', 'true');
        RETURN 'true';
    WHEN 'inc' THEN
        n := coalesce(durable.get('n')::bigint, 0) + 1;
        PERFORM durable.put('n', to_jsonb(n));
        RETURN to_jsonb(n);
    WHEN 'state' THEN
        RETURN jsonb_build_object('started', durable.get('started'), 'slept', durable.get('slept'),
                                  'n', durable.get('n'));
    ELSE
        RAISE EXCEPTION 'unknown method %', method;
    END CASE;
END
\$\$"
sql "SELECT durable.define_class('it21_sleeper', 'it21_sleeper')"

# --- helpers -------------------------------------------------------------------------------

ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }

# bg APPNAME OUTFILE SQL...: run psql in the background (one -c per SQL), verbose errors;
# sets $bg_pid
bg() {
    local app=$1 out=$2 args=() s
    shift 2
    for s in "$@"; do args+=(-c "$s"); done
    PGAPPNAME=$app psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose "${args[@]}" >"$out" 2>&1 &
    bg_pid=$!
}

# wait_exit PID LIMIT_MS: wait for background job PID; sets $rc and $took (ms).  Returns 1 (and
# kills the job) if it is still running after LIMIT_MS.
wait_exit() {
    local pid=$1 limit=$2 t0
    t0=$(ms)
    while kill -0 "$pid" 2>/dev/null; do
        if [ $(($(ms) - t0)) -gt "$limit" ]; then
            took=$(($(ms) - t0))
            kill "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            rc=timeout
            return 1
        fi
        sleep 0.02
    done
    wait "$pid"
    rc=$?
    took=$(($(ms) - t0))
    return 0
}

# the caller with application_name $1 is waiting for its reply
caller_waits() {
    wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = '$1'
              AND state = 'active' AND wait_event_type = 'Extension')" 10
}

# some host is running a batch; prints its pid
busy_host() {
    wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
              WHERE backend_type = 'pg_durable_objects host' AND state = 'active'
                AND query = 'durable batch')" 10 || return 1
    sql "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_durable_objects host'
         AND state = 'active' AND query = 'durable batch' LIMIT 1"
}

# no host is running or holding anything (left-over sleeps of earlier cases end)
hosts_idle() {
    wait_for "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity
              WHERE backend_type = 'pg_durable_objects host' AND state = 'active')
              AND (SELECT coalesce(sum(queue_depth), 0) = 0 FROM durable.hosts)" "${1:-30}"
}

state() { sql_try "SELECT durable.call('it21_sleeper', '$1', 'state')"; }

# expect_error NAME OUTFILE SQLSTATE REGEX: the output of a finished caller shows the error
expect_error() {
    local name=$1 out=$2 code=$3 re=$4
    if [ "$rc" != 0 ] && grep -qE "ERROR: +$code: .*($re)" "$out"; then
        ok "$name"
    else
        not_ok "$name" "status $rc, output: $(head -c 300 "$out" | tr '\n' ' ')"
    fi
}

# ended NAME WAIT_STATUS LIMIT_MS: ok if the wait_exit that returned WAIT_STATUS saw the job end
# and $took (ms, measured by the caller from the event) is within LIMIT_MS
ended() {
    local name=$1 ended_ok=$2 limit=$3
    if [ "$ended_ok" = 0 ] && [ "$took" -le "$limit" ]; then ok "$name (${took} ms)"
    elif [ "$ended_ok" = 0 ]; then not_ok "$name" "ended after ${took} ms, limit $limit ms"
    else not_ok "$name" "still waiting after ${took} ms, limit $limit ms"; fi
}

hosts_idle 10 || not_ok "hosts idle at start"

# --- a) statement_timeout --------------------------------------------------------------------
obj=a-$run
t0=$(ms)
bg it21_a "$tmp/a.out" "SET statement_timeout = '500ms'" \
    "SELECT durable.call('it21_sleeper', '$obj', 'sleep', '{\"s\": 3}')"
wait_exit "$bg_pid" 5000; e=$?
took=$(($(ms) - t0))
ended "a) statement_timeout ends the wait" "$e" 5000
if [ "$e" = 0 ] && [ "$took" -le 2000 ]; then ok "a) ... within 2 s of the start (500 ms timeout)"
else not_ok "a) ... within 2 s of the start (500 ms timeout)" "took $took ms"; fi
expect_error "a) error is 57014 statement timeout" "$tmp/a.out" 57014 \
    "canceling statement due to statement timeout"
hosts_idle

# --- b) pg_cancel_backend ---------------------------------------------------------------------
obj=b-$run
bg it21_b "$tmp/b.out" "SELECT durable.call('it21_sleeper', '$obj', 'sleep', '{\"s\": 3}')"
if caller_waits it21_b; then
    t0=$(ms)
    sql "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'it21_b'" >/dev/null
    wait_exit "$bg_pid" 2000; e=$?
    took=$(($(ms) - t0))
    ended "b) pg_cancel_backend ends the wait within 2 s" "$e" 2000
    expect_error "b) error is 57014 canceled by user request" "$tmp/b.out" 57014 \
        "canceling statement due to user request"
else
    not_ok "b) caller seen waiting" "$(cat "$tmp/b.out")"
    wait_exit "$bg_pid" 10000
fi
hosts_idle

# --- c) the host running the call is terminated ----------------------------------------------
obj=c-$run
old_hosts=$(sql "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
                 WHERE backend_type = 'pg_durable_objects host'")
bg it21_c "$tmp/c.out" "SELECT durable.call('it21_sleeper', '$obj', 'sleep', '{\"s\": 10}')"
cpid=$bg_pid
if caller_waits it21_c && hpid=$(busy_host) && [ -n "$hpid" ]; then
    # a second call of the same object queues behind the running one
    bg it21_cq "$tmp/cq.out" "SELECT durable.call('it21_sleeper', '$obj', 'inc')"
    cqpid=$bg_pid
    caller_waits it21_cq || not_ok "c) queued caller seen waiting" "$(cat "$tmp/cq.out")"
    t0=$(ms)
    sql "SELECT pg_terminate_backend($hpid)" >/dev/null
    wait_exit "$cpid" 3000; e=$?
    took=$(($(ms) - t0))
    ended "c) host death ends the wait of the running call within 3 s" "$e" 3000
    expect_error "c) error is 57P01 durable host exited" "$tmp/c.out" 57P01 \
        "durable host ([0-9]+ )?exited"
    wait_exit "$cqpid" 3000; e=$?
    took=$(($(ms) - t0))
    ended "c) host death ends the wait of the queued call within 3 s" "$e" 3000
    expect_error "c) queued call: error is 57P01 durable host exited" "$tmp/cq.out" 57P01 \
        "durable host ([0-9]+ )?exited"
    check "c) hosts come back" wait_hosts 15
    new_hosts=$(sql "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
                     WHERE backend_type = 'pg_durable_objects host'")
    if ! grep -qw "$hpid" <<<"${new_hosts//,/ }"; then
        ok "c) the terminated host was replaced (hosts $old_hosts -> $new_hosts)"
    else
        not_ok "c) the terminated host was replaced" "pid $hpid still a host ($new_hosts)"
    fi
    # 1, not 2: the queued inc was answered with an error and never run, not even by the new host
    check "c) a new call on the object succeeds, the queued one never ran" \
        test "$(sql_try "SELECT durable.call('it21_sleeper', '$obj', 'inc')")" = 1
    s=$(state "$obj")
    check "c) the killed call's writes were rolled back ($s)" \
        test "$s" = '{"n": 1, "slept": null, "started": null}'
else
    not_ok "c) caller seen waiting on a busy host" "$(cat "$tmp/c.out")"
    wait_exit "$cpid" 15000
fi
hosts_idle

# --- d) durable.call_timeout -------------------------------------------------------------------
obj=d-$run
sql "ALTER SYSTEM SET durable.call_timeout = '1s'"
sql "SELECT pg_reload_conf()" >/dev/null
# give the hosts a moment to process SIGHUP (not an assertion: without it the call just runs 5 s
# and the checks below fail)
wait_for "SELECT current_setting('durable.call_timeout') = '1s'" 5
sleep 0.5
t0=$(ms)
bg it21_d "$tmp/d.out" "SELECT durable.call('it21_sleeper', '$obj', 'sleep', '{\"s\": 5}')"
wait_exit "$bg_pid" 8000; e=$?
took=$(($(ms) - t0))
if [ "$e" = 0 ] && [ "$took" -le 3000 ]; then ok "d) durable.call_timeout = 1s ends a 5 s call within 3 s ($took ms)"
else not_ok "d) durable.call_timeout = 1s ends a 5 s call within 3 s" "took $took ms"; fi
if [ "$took" -ge 900 ]; then ok "d) ... but not before the timeout ($took ms)"
else not_ok "d) ... but not before the timeout" "took $took ms"; fi
expect_error "d) error is 57014 mentioning durable.call_timeout" "$tmp/d.out" 57014 \
    "durable\.call_timeout"
s=$(state "$obj")
check "d) the timed-out call's writes were rolled back ($s)" \
    test "$s" = '{"n": null, "slept": null, "started": null}'
sql "ALTER SYSTEM RESET durable.call_timeout"
sql "SELECT pg_reload_conf()" >/dev/null
wait_for "SELECT current_setting('durable.call_timeout') <> '1s'" 5
sleep 0.5
hosts_idle

# --- e) server shutdown --------------------------------------------------------------------------
obj=e-$run
bg it21_e "$tmp/e.out" "SELECT durable.call('it21_sleeper', '$obj', 'sleep', '{\"s\": 20}')"
ebg=$bg_pid
if caller_waits it21_e && busy_host >/dev/null; then
    t0=$(ms)
    pg_ctl -D "$PGDATA" -w -t 30 -m fast stop >"$tmp/e.stop" 2>&1
    stop_rc=$?
    stop_took=$(($(ms) - t0))
    if [ "$stop_rc" = 0 ] && [ "$stop_took" -le 10000 ]; then
        ok "e) pg_ctl stop -m fast completes within 10 s while a call sleeps ($stop_took ms)"
    else
        not_ok "e) pg_ctl stop -m fast completes within 10 s while a call sleeps" \
            "status $stop_rc after $stop_took ms: $(cat "$tmp/e.stop")"
    fi
    wait_exit "$ebg" $((10000 - stop_took > 0 ? 10000 - stop_took : 0)); e=$?
    took=$(($(ms) - t0))
    if [ "$e" = 0 ] && [ "$rc" != 0 ]; then ok "e) the waiting caller ended with an error within 10 s ($took ms, status $rc)"
    else not_ok "e) the waiting caller ended with an error within 10 s" "status $rc after $took ms: $(cat "$tmp/e.out")"; fi
else
    not_ok "e) caller seen waiting on a busy host" "$(cat "$tmp/e.out")"
    pg_ctl -D "$PGDATA" -w -t 60 -m fast stop >/dev/null 2>&1
    wait_exit "$ebg" 30000
fi
pg_ctl -D "$PGDATA" status >/dev/null 2>&1 && cluster_stop
cluster_start || not_ok "e) server restarts"
check "e) hosts come back after the restart" wait_hosts 30
s=$(state "$obj")
check "e) the interrupted call's writes were rolled back ($s)" \
    test "$s" = '{"n": null, "slept": null, "started": null}'

# --- f) a call cancelled while queued is never run --------------------------------------------
obj=f-$run
hosts_idle
bg it21_f1 "$tmp/f1.out" "SELECT durable.call('it21_sleeper', '$obj', 'sleep', '{\"s\": 2}')"
f1=$bg_pid
if caller_waits it21_f1 && busy_host >/dev/null; then
    t0=$(ms)
    out=$(PGAPPNAME=it21_f2 psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose \
            -c "SET statement_timeout = '300ms'" \
            -c "SELECT durable.call('it21_sleeper', '$obj', 'inc')" 2>&1)
    f2rc=$?
    took=$(($(ms) - t0))
    if [ "$f2rc" != 0 ] && grep -qE "ERROR: +57014: canceling statement due to statement timeout" <<<"$out" \
       && [ "$took" -le 1500 ]; then
        ok "f) the queued call's caller was cancelled by its statement_timeout ($took ms)"
    else
        not_ok "f) the queued call's caller was cancelled by its statement_timeout" \
            "status $f2rc after $took ms: $out"
    fi
    wait_exit "$f1" 5000; e=$?
    if [ "$e" = 0 ] && [ "$rc" = 0 ] && [ "$(cat "$tmp/f1.out")" = true ]; then
        ok "f) the running call finished normally"
    else
        not_ok "f) the running call finished normally" "status $rc: $(cat "$tmp/f1.out")"
    fi
    hosts_idle 10
    s=$(state "$obj")
    check "f) the cancelled queued call was skipped ($s)" \
        test "$s" = '{"n": null, "slept": true, "started": true}'
    check "f) the object still takes calls (inc -> 1)" \
        test "$(sql_try "SELECT durable.call('it21_sleeper', '$obj', 'inc')")" = 1
else
    not_ok "f) first caller seen waiting on a busy host" "$(cat "$tmp/f1.out")"
    wait_exit "$f1" 10000
fi

hosts_idle 10 || not_ok "hosts idle at the end"
