#!/usr/bin/env bash
# G9 send: delivered exactly once after the sender commits, never if it rolls back: 300
# committed sends while the hosts are terminated twice, and through kill -9 of the whole
# server; a rolled-back send never runs.
source "$TEST_ROOT/test/lib.sh"
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$TEST_ROOT/test/fixtures/alarms_sends.sh" || exit 1


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

# --- G9: a send whose transaction rolls back never runs
sql "BEGIN; SELECT durable.send('it41', 'rolled', 'inc'); ROLLBACK;" >/dev/null
sql "SELECT durable.send('it41', 'rolled', 'arm', '{\"in\": \"1 hour\"}')" >/dev/null
sql "SELECT durable.send('it41', 'rolled-after', 'inc')" >/dev/null
wait_value rolled-after n 1 20
check "G9: a rolled-back send never ran, a later one of the same object did (n=$(get rolled n))" \
    [ "$(get rolled n)" = 0 ]
