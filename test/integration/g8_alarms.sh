#!/usr/bin/env bash
# G8 alarms: an alarm fires no earlier than set, its effects commit with its removal (once),
# across a clean restart and across kill -9 (one that fell due while the server was down
# fires once when it is back); a 50 ms tick; a failing alarm retries with growing gaps, then
# lands in durable.dead_letters.
source "$TEST_ROOT/test/lib.sh"
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$TEST_ROOT/test/fixtures/alarms_sends.sh" || exit 1


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

