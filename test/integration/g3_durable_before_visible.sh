#!/usr/bin/env bash
# G3 durable before visible: a reply seen means the state survives kill -9 of the whole server.
#
# Several clients increment one counter object in a loop (one psql per call, so each reply is
# written to the client's file only once it has arrived).  While they run, the postmaster and
# all its children are killed with SIGKILL.  After crash recovery the stored counter must be at
# least the highest value any client saw (nothing acknowledged was lost) and at most that plus
# the number of clients (each client had at most one call in flight, which may or may not have
# committed).  Calls must work again after the restart.
source "$TEST_ROOT/test/lib.sh"
set -u

CLIENTS=4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sql "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_durable_objects"
sql "CREATE OR REPLACE FUNCTION it20_counter(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
DECLARE
    n bigint;
BEGIN
    CASE method
    WHEN 'inc' THEN
        n := coalesce(durable.get('n')::bigint, 0) + 1;
        PERFORM durable.put('n', to_jsonb(n));
        RETURN to_jsonb(n);
    WHEN 'get' THEN
        RETURN coalesce(durable.get('n'), '0');
    ELSE
        RAISE EXCEPTION 'unknown method %', method;
    END CASE;
END
\$\$"
sql "SELECT durable.define_class('it20_counter', 'it20_counter')"

obj="kill9-$(date +%s%N)"    # a fresh object on every run
check "counter starts at 0" test "$(sql "SELECT durable.call('it20_counter', '$obj', 'get')")" = 0

client() {    # client N: call inc until told to stop or until the server goes away
    local out=$tmp/client.$1 v
    : >"$out"
    while [ ! -e "$tmp/stop" ]; do
        v=$(psql -X -q -At -v ON_ERROR_STOP=1 \
                 -c "SELECT durable.call('it20_counter', '$obj', 'inc')" 2>>"$tmp/client.$1.err") || break
        echo "$v" >>"$out"     # acknowledged: the reply has reached the client
    done
}

pids=()
for i in $(seq 1 "$CLIENTS"); do
    client "$i" &
    pids+=($!)
done

# let replies accumulate (at least 200, at most 20 s), then crash the whole server
replies() { cat "$tmp"/client.[0-9] 2>/dev/null | wc -l; }
for _ in $(seq 1 200); do
    [ "$(replies)" -ge 200 ] && break
    sleep 0.1
done
before=$(replies)
old_pm=$(head -1 "$PGDATA/postmaster.pid")
cluster_kill9
# no client is started after the crash: they all stop at their first failed call
touch "$tmp/stop"
for p in "${pids[@]}"; do wait "$p"; done

if [ "$before" -ge 20 ]; then ok "clients got replies before the crash ($before)"
else not_ok "clients got replies before the crash" "only $before; see $(cat "$tmp"/client.*.err | head -3)"; fi

check "postmaster is gone after kill -9" bash -c "! kill -0 $old_pm 2>/dev/null"

cluster_start || { not_ok "server restarts after kill -9"; tail -20 "$PGDATA/../server.log"; exit 1; }
new_pm=$(head -1 "$PGDATA/postmaster.pid")
check "server restarted with a new postmaster" test "$new_pm" != "$old_pm"
check "hosts come back after crash recovery" wait_hosts 30

seen=$(cat "$tmp"/client.[0-9] | grep -E '^[0-9]+$' | sort -n)
nseen=$(printf '%s\n' "$seen" | grep -c .)
last=$(printf '%s\n' "$seen" | tail -1)
last=${last:-0}
stored=$(sql "SELECT durable.call('it20_counter', '$obj', 'get')")

# every reply must be a distinct value (serial increments), else the counting below is moot
dups=$(printf '%s\n' "$seen" | uniq -d | head -3 | tr '\n' ' ')
if [ -z "$dups" ]; then ok "every acknowledged increment returned a distinct value ($nseen replies)"
else not_ok "every acknowledged increment returned a distinct value" "duplicates: $dups"; fi

if [ -n "$stored" ] && [ "$stored" -ge "$last" ]; then
    ok "no acknowledged increment was lost (stored $stored >= last acknowledged $last)"
else
    not_ok "no acknowledged increment was lost" "stored '$stored' < last acknowledged $last"
fi
if [ -n "$stored" ] && [ "$stored" -le $((last + CLIENTS)) ]; then
    ok "only in-flight calls may have committed unseen (stored $stored <= $last + $CLIENTS)"
else
    not_ok "only in-flight calls may have committed unseen" "stored '$stored' > $last + $CLIENTS in flight"
fi

after=$(sql_try "SELECT durable.call('it20_counter', '$obj', 'inc')")
if [ "$after" = $((stored + 1)) ]; then ok "calls work after the restart (inc -> $after)"
else not_ok "calls work after the restart" "inc returned '$after', expected $((stored + 1))"; fi
check "get sees the new value" test "$(sql "SELECT durable.call('it20_counter', '$obj', 'get')")" = "$after"
