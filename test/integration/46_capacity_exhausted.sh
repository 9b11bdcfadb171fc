#!/usr/bin/env bash
# Capacity exhausted: when every host is busy with slow calls, a caller gets 53400 after a
# bounded wait (durable.call_timeout), never a hang, and service recovers.
# A second cluster with durable.max_hosts = 2, durable.hosts = 1, durable.call_timeout = 3s:
# two 2.4 s calls fill both host slots (the owner's home host and one extra host), two more
# wait behind them (each starts within 3 s).  Then
#   a) three callers of other objects of that owner, queued behind those (so that no host is
#      free for them before 4.8 s), get 53400 "could not start within durable.call_timeout"
#      after ~3 s, and their calls never ran;
#   b) a caller of another class owner, for whom no host slot is free, gets 53400 too;
#   c) the slow calls all succeed, and afterwards calls of both owners succeed again.
source "$TEST_ROOT/test/lib.sh"
set -u

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }

TIMEOUT_MS=3000    # durable.call_timeout
SLOW=2.4           # seconds each slow call sleeps: below the call_timeout, and two of them in a
                   # row (4.8 s) end well after the callers' call_timeout (those callers queue
                   # within 1.8 s of the first slow call, even on a slow machine)

(
    cap_dir="$tmp/cap"
    mkdir -p "$cap_dir"
    cluster_init "$cap_dir" $((PGPORT + 7)) "durable.max_hosts = 2" "durable.hosts = 1" \
        "durable.call_timeout = '${TIMEOUT_MS}ms'" "durable.listen_address = ''" && cluster_start || exit 1
    trap 'cluster_stop; rm -rf "$tmp"' EXIT

    # bg NAME SQL: run SQL in the background (as application_name it46_NAME), output in
    # $tmp/NAME.out, end time (ms) in $tmp/NAME.end; sets $bg_pid
    bg() {
        (
            PGAPPNAME=it46_$1 psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$2" \
                >"$tmp/$1.out" 2>&1
            echo $? >"$tmp/$1.rc"
            ms >"$tmp/$1.end"
        ) &
        bg_pid=$!
    }
    # wait_pids LIMIT_MS PID...: wait for all; false (and kill them) if any outlives LIMIT_MS
    wait_pids() {
        local limit=$1 t0 p
        shift
        t0=$(ms)
        for p in "$@"; do
            while kill -0 "$p" 2>/dev/null; do
                if [ $(($(ms) - t0)) -gt "$limit" ]; then
                    kill "$@" 2>/dev/null
                    return 1
                fi
                sleep 0.02
            done
        done
        return 0
    }
    hosts_sleeping() {
        wait_for "SELECT count(*) >= $1 FROM pg_stat_activity
                  WHERE backend_type = 'pg_durable_objects host' AND wait_event = 'PgSleep'" 10
    }

    sql "SET client_min_messages = warning; CREATE EXTENSION pg_durable_objects;
         CREATE ROLE it46_other;
         CREATE SCHEMA it46_o AUTHORIZATION it46_other;
         CREATE FUNCTION it46_h(id text, method text, args jsonb) RETURNS jsonb
         LANGUAGE plpgsql AS \$\$
         DECLARE
             n bigint;
         BEGIN
             IF method = 'sleep' THEN
                 PERFORM pg_sleep((args->>'s')::float);
                 PERFORM durable.put('slept', 'true');
                 RETURN 'true';
             END IF;
             n := coalesce(durable.get('n')::bigint, 0) + 1;
             PERFORM durable.put('n', to_jsonb(n));
             RETURN to_jsonb(n);
         END \$\$;
         SELECT durable.define_class('it46', 'it46_h');" >/dev/null || exit 1
    psql -X -q -At -v ON_ERROR_STOP=1 -c "SET ROLE it46_other" -c "
         CREATE FUNCTION it46_o.h(id text, method text, args jsonb) RETURNS jsonb
         LANGUAGE plpgsql AS \$\$
         DECLARE
             n bigint;
         BEGIN
             n := coalesce(durable.get('n')::bigint, 0) + 1;
             PERFORM durable.put('n', to_jsonb(n));
             RETURN to_jsonb(n);
         END \$\$;
         SELECT durable.define_class('it46_other', 'it46_o.h');" >/dev/null || exit 1

    # the owner's home host is up
    check "setup: a first call succeeds" [ "$(sql_try "SELECT durable.call('it46', 'warm', 'inc')")" = 1 ]

    # --- fill both host slots, and queue two more slow calls behind them ----------------------
    t_fill=$(ms)
    bg s1 "SELECT durable.call('it46', 's1', 'sleep', '{\"s\": $SLOW}')"; s1=$bg_pid
    hosts_sleeping 1
    check "fill: the first slow call sleeps in the home host" [ $? = 0 ]
    bg s2 "SELECT durable.call('it46', 's2', 'sleep', '{\"s\": $SLOW}')"; s2=$bg_pid
    hosts_sleeping 2
    check "fill: the second slow call sleeps in an extra host" [ $? = 0 ]
    sleep 0.1    # both hosts now count as busy (durable.busy_threshold is 50 ms)
    bg s3 "SELECT durable.call('it46', 's3', 'sleep', '{\"s\": $SLOW}')"; s3=$bg_pid
    bg s4 "SELECT durable.call('it46', 's4', 'sleep', '{\"s\": $SLOW}')"; s4=$bg_pid
    wait_for "SELECT coalesce(sum(queue_depth), 0) = 2 FROM durable.hosts" 5
    queued=$?

    # --- a) callers of the same owner ------------------------------------------------------------
    t_x=$(ms)
    xs=()
    for i in 1 2 3; do
        bg x$i "SELECT durable.call('it46', 'x$i', 'inc')"; xs+=($bg_pid)
    done
    # --- b) a caller of another owner: no host slot for it at all
    bg y "SELECT durable.call('it46_other', 'y', 'inc')"; y=$bg_pid
    check "fill: two more slow calls waited in a host's queue" [ "$queued" = 0 ]
    is_hosts=$(sql "SELECT count(*) || ' hosts, ' || count(*) FILTER (WHERE busy_ms > 50) || ' busy'
                    FROM durable.hosts")
    check "fill: every host slot is taken and busy ($is_hosts)" [ "$is_hosts" = "2 hosts, 2 busy" ]
    wait_pids 10000 "${xs[@]}" "$y"
    check "a, b) no caller hangs: all four ended within 10 s" [ $? = 0 ]
    # the callers must have queued before 2 slow calls minus the call_timeout, else a host
    # could free up for them in time and nothing would be proved
    d=$((t_x - t_fill)) window=$(awk -v s=$SLOW -v t=$TIMEOUT_MS 'BEGIN {printf "%d", 2 * s * 1000 - t - 200}')
    check "a) the callers queued ${d} ms after the first slow call began (< ${window} ms: no host frees up for them in time)" \
        [ "$d" -lt "$window" ]
    for n in x1 x2 x3 y; do
        took=$(($(cat "$tmp/$n.end" 2>/dev/null || echo 0) - t_x))
        out=$(cat "$tmp/$n.out" 2>/dev/null)
        case $n in
            y) what="b) caller of another owner" re="no durable host is free|could not start within durable\.call_timeout" ;;
            *) what="a) caller $n" re="could not start within durable\.call_timeout \($TIMEOUT_MS ms\)" ;;
        esac
        if [ "$(sqlstate "$out")" = 53400 ] && grep -qE "$re" <<<"$out"; then
            ok "$what gets 53400 ($(sed -n 's/^ERROR: *53400: //p' <<<"$out" | head -1))"
        else
            not_ok "$what gets 53400" "after $took ms: $(head -c 300 <<<"$out" | tr '\n' ' ')"
        fi
        if [ "$took" -ge $((TIMEOUT_MS - 100)) ] && [ "$took" -le $((TIMEOUT_MS + 1500)) ]; then
            ok "$what: after a bounded wait of ${took} ms (call_timeout $TIMEOUT_MS ms, limit $((TIMEOUT_MS + 1500)) ms)"
        else
            not_ok "$what: after a bounded wait of $((TIMEOUT_MS - 100))..$((TIMEOUT_MS + 1500)) ms" "took $took ms"
        fi
    done

    # --- c) the slow calls succeed; service recovers ----------------------------------------------
    wait_pids 15000 "$s1" "$s2" "$s3" "$s4"
    check "c) the slow calls all ended within 15 s" [ $? = 0 ]
    for n in s1 s2 s3 s4; do
        out=$(cat "$tmp/$n.out" 2>/dev/null)
        took=$(($(cat "$tmp/$n.end" 2>/dev/null || echo 0) - t_fill))
        if [ "$out" = true ]; then ok "c) slow call $n succeeded (ended ${took} ms after the first began)"
        else not_ok "c) slow call $n succeeded" "$(head -c 300 <<<"$out" | tr '\n' ' ')"; fi
    done
    for i in 1 2 3; do
        got=$(sql_try "SELECT durable.call('it46', 'x$i', 'inc')")
        check "c) object x$i answers again, and its refused call never ran (inc -> $got)" [ "$got" = 1 ]
    done
    # both slots still belong to the first owner's idle hosts: one of them must make room (a
    # second try: the first may meet a host that is just leaving)
    t0=$(ms)
    got=$(sql_try "SELECT durable.call('it46_other', 'y', 'inc')")
    [ "$got" = 1 ] || got=$(sql_try "SELECT durable.call('it46_other', 'y', 'inc')")
    check "c) the other owner's object answers again, its refused call never ran (inc -> $got, $(($(ms) - t0)) ms)" \
        [ "$got" = 1 ]
    t0=$(ms)
    got=$(sql_try "SELECT count(*) FROM generate_series(1, 20) i WHERE durable.call('it46', 'z' || i, 'inc') = '1'")
    check "c) 20 fresh objects answer at once ($(($(ms) - t0)) ms)" [ "$got" = 20 ]
    n_slept=$(sql "SELECT count(*) FROM durable._storage WHERE class = 'it46' AND key = 'slept'")
    check "c) each slow call's write was kept ($n_slept of 4)" [ "$n_slept" = 4 ]
    if grep -qE 'PANIC|server process .* was terminated|terminated by signal' "$cap_dir/server.log"; then
        not_ok "no process crashed" "$(grep -E 'PANIC|terminated' "$cap_dir/server.log" | head -3)"
    else
        ok "no process crashed"
    fi
) || not_ok "the second cluster (max_hosts = 2) starts" "$(tail -5 "$tmp/cap/server.log" 2>/dev/null)"
