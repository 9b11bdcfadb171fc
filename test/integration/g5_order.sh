#!/usr/bin/env bash
# G5 order: calls from one session to one object run in the order sent (8 sessions x 60
# calls, each session's calls logged by the object); the order of one socket's frames and
# of one object's messages to each socket is tested over WebSockets (test/ws, 05_chat).
source "$TEST_ROOT/test/lib.sh"
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
psql -X -q -v ON_ERROR_STOP=1 -f "$TEST_ROOT/test/fixtures/concurrency.sql" >/dev/null || exit 1

# --- G5: 8 sessions each send 60 calls to one object; each session's calls ran in order
for c in $(seq 1 8); do
    for n in $(seq 1 60); do
        echo "SELECT durable.call('conc', 'g5', 'append', '{\"client\": \"c$c\", \"n\": $n}');"
    done >"$tmp/order$c.sql"
    psql -X -q -f "$tmp/order$c.sql" >/dev/null 2>&1 &
done
wait
want=$(seq -s, 1 60 | sed 's/,/, /g')
bad=0
for c in $(seq 1 8); do
    got=$(sql "SELECT durable.call('conc', 'g5', 'log', '{\"client\": \"c$c\"}')")
    [ "$got" = "[$want]" ] || { bad=1; echo "# client c$c saw $got"; }
done
check "G5: every session's 60 calls ran in the order sent" [ "$bad" = 0 ]

# sends of one transaction to one object run in send order
sql "BEGIN; SELECT durable.send('conc', 'g5-sends', 'append', jsonb_build_object('client', 's', 'n', n))
     FROM generate_series(1, 100) n; COMMIT;" >/dev/null
want=$(seq -s, 1 100 | sed 's/,/, /g')
check "G5: 100 sends of one transaction ran in send order" \
    wait_for "SELECT durable.call('conc', 'g5-sends', 'log', '{\"client\": \"s\"}')::text = '[$want]'" 30
