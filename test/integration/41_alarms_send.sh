#!/usr/bin/env bash
# G8 alarms and G9 send across restarts, crashes and host deaths; a 50 ms alarm tick; backoff.
source "$TEST_ROOT/test/lib.sh"
set -u
tmp=$(mktemp -d)

sql "CREATE EXTENSION IF NOT EXISTS pg_durable_objects" >/dev/null
sql "
CREATE FUNCTION it41(id text, method text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$
DECLARE
    late float8;
BEGIN
    CASE method
    WHEN 'arm' THEN
        PERFORM durable.set_alarm(now() + (args->>'in')::interval, coalesce(args->>'name', 'default'));
        RETURN NULL;
    WHEN 'inc' THEN
        PERFORM pg_sleep(coalesce((args->>'sleep')::float8, 0));
        PERFORM durable.put('n', to_jsonb(coalesce(durable.get('n')::int, 0) + 1));
        RETURN durable.get('n');
    WHEN 'get' THEN
        RETURN jsonb_build_object('n', coalesce(durable.get('n'), '0'), 'fired', coalesce(durable.get('fired'), '0'),
                                  'ticks', coalesce(durable.get('ticks'), '0'), 'early', coalesce(durable.get('early'), '0'),
                                  'max_late_ms', coalesce(durable.get('max_late_ms'), '0'));
    WHEN 'start_ticks' THEN
        PERFORM durable.put('ticking', 'true');
        PERFORM durable.set_alarm(clock_timestamp() + interval '50 ms', 'tick');
        RETURN NULL;
    WHEN 'stop_ticks' THEN
        PERFORM durable.put('ticking', 'false');
        RETURN NULL;
    WHEN '\$alarm' THEN
        IF args->>'name' = 'tick' THEN
            late := extract(epoch FROM clock_timestamp() - (args->>'scheduled_at')::timestamptz) * 1000;
            PERFORM durable.put('ticks', to_jsonb(coalesce(durable.get('ticks')::int, 0) + 1));
            IF late < 0 THEN
                PERFORM durable.put('early', to_jsonb(coalesce(durable.get('early')::int, 0) + 1));
            END IF;
            PERFORM durable.put('max_late_ms', to_jsonb(greatest(coalesce(durable.get('max_late_ms')::float8, 0), late)));
            IF durable.get('ticking') = 'true' THEN
                PERFORM durable.set_alarm((args->>'scheduled_at')::timestamptz + interval '50 ms', 'tick');
            END IF;
        ELSIF args->>'name' = 'bad' THEN
            RAISE EXCEPTION 'bad alarm, attempt %', args->>'attempt';
        ELSE
            PERFORM durable.put('fired', to_jsonb(coalesce(durable.get('fired')::int, 0) + 1));
        END IF;
        RETURN NULL;
    END CASE;
END
\$\$;
SELECT durable.define_class('it41', 'it41');" >/dev/null

get() { sql "SELECT durable.call('it41', '$1', 'get') ->> '$2'"; }
wait_value() {  # object field value [seconds]
    wait_for "SELECT (durable.call('it41', '$1', 'get') ->> '$2') = '$3'" "${4:-20}"
}

# --- G8: an alarm set before a clean restart fires after it, once
sql "SELECT durable.call('it41', 'restart', 'arm', '{\"in\": \"2 seconds\"}')" >/dev/null
cluster_restart
wait_hosts 30
check "G8: alarm set before a restart fired after it" wait_value restart fired 1 20
sleep 0.5
check "G8: ... exactly once" [ "$(get restart fired)" = 1 ]

# --- G8: an alarm that fell due while the server was down (kill -9) fires once when it is back
sql "SELECT durable.call('it41', 'down', 'arm', '{\"in\": \"1 second\"}')" >/dev/null
cluster_kill9
sleep 2
cluster_start
wait_hosts 30
check "G8: alarm due during a crash fired after the restart" wait_value down fired 1 20
sleep 0.5
check "G8: ... exactly once" [ "$(get down fired)" = 1 ]

# --- G9: 300 committed sends, hosts terminated twice while they run: exactly 300 effects
sql "BEGIN; SELECT durable.send('it41', 'sends', 'inc', '{\"sleep\": 0.004}') FROM generate_series(1, 300); COMMIT;" >/dev/null
for round in 1 2; do
    sleep 0.4
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'pg_durable_objects host'" >/dev/null
done
wait_hosts 30
wait_value sends n 300 30
sleep 0.5
check "G9: 300 sends ran exactly once across two host terminations (n=$(get sends n))" [ "$(get sends n)" = 300 ]

# --- G9: the same through kill -9 of the whole server
sql "BEGIN; SELECT durable.send('it41', 'crash', 'inc', '{\"sleep\": 0.004}') FROM generate_series(1, 300); COMMIT;" >/dev/null
sleep 0.5
before=$(get crash n)
cluster_kill9
cluster_start
wait_hosts 30
wait_value crash n 300 30
sleep 0.5
check "G9: 300 sends ran exactly once across kill -9 (n=$(get crash n), $before before the crash)" [ "$(get crash n)" = 300 ]
check "G9: the crash happened mid-way (some but not all sends had run: $before)" [ "$before" -gt 0 ] && [ "$before" -lt 300 ]

# --- G8: a 50 ms tick driven by alarms
sql "SELECT durable.call('it41', 'game', 'start_ticks')" >/dev/null
sleep 2
sql "SELECT durable.call('it41', 'game', 'stop_ticks')" >/dev/null
sleep 0.2
ticks=$(get game ticks)
echo "# 2 s of 50 ms ticks: $ticks ticks, max lateness $(get game max_late_ms) ms"
check "G8: a 50 ms alarm tick runs ~40 times in 2 s ($ticks)" [ "$ticks" -ge 30 ] && [ "$ticks" -le 42 ]
check "G8: no tick fired before its time" [ "$(get game early)" = 0 ]

# --- G8: a failing alarm is retried with growing gaps, then dead-lettered
sql "ALTER SYSTEM SET durable.retry_delay = '200ms'" >/dev/null
sql "ALTER SYSTEM SET durable.max_attempts = 4" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
sql "SELECT durable.call('it41', 'bad', 'arm', '{\"in\": \"0 seconds\", \"name\": \"bad\"}')" >/dev/null
: >"$tmp/attempts"
for i in $(seq 1 100); do
    sql "SELECT attempt || ' ' || extract(epoch FROM at) FROM durable.alarms WHERE id = 'bad'" >>"$tmp/attempts"
    [ "$(sql "SELECT count(*) FROM durable.dead_letters WHERE id = 'bad'")" = 1 ] && break
    sleep 0.05
done
sort -u "$tmp/attempts" | sort -n >"$tmp/uniq"
cat "$tmp/uniq" | sed 's/^/# attempt, next at: /'
gaps=$(awk 'NR > 1 { printf "%d ", ($2 - prev) * 1000 } { prev = $2 }' "$tmp/uniq")
echo "# gaps between attempts (ms): $gaps"
read -r g1 g2 _ <<<"$gaps"
check "G8: retries come with growing gaps ($gaps)" [ -n "${g2:-}" ] && [ "$g2" -gt "$g1" ]
check "G8: after 4 attempts the alarm is a dead letter" [ "$(sql "SELECT attempts FROM durable.dead_letters WHERE id = 'bad'")" = 4 ]
sql "ALTER SYSTEM RESET durable.retry_delay" >/dev/null
sql "ALTER SYSTEM RESET durable.max_attempts" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null

sql "SELECT durable.drop_class('it41', true)" >/dev/null
rm -rf "$tmp"
