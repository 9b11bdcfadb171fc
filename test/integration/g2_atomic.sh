#!/usr/bin/env bash
# G2 atomic: all storage writes of a call commit, or none; a failed call leaves no trace.
#  - a call that writes 20 keys, a table row, an alarm, a send and a socket message and
#    then fails leaves none of them (and a caught error inside the handler undoes only its
#    own block);
#  - the same call that succeeds leaves all of them;
#  - under load (16 clients sharing 20 objects), kill -9 of the whole server: afterwards every
#    object has all 20 keys of a call with one value, or none of them: no call is half applied.
source "$TEST_ROOT/test/lib.sh"
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sql "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_durable_objects" >/dev/null
sql "CREATE TABLE IF NOT EXISTS g2_rows (id text, n int);
CREATE OR REPLACE FUNCTION g2_atomic(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
DECLARE
    n int := coalesce(durable.get('n')::int, 0) + 1;
BEGIN
    CASE method
    WHEN 'write', 'write_fail' THEN
        FOR i IN 1 .. 20 LOOP
            PERFORM durable.put('k' || lpad(i::text, 2, '0'), to_jsonb(n));
        END LOOP;
        PERFORM durable.put('n', to_jsonb(n));
        INSERT INTO g2_rows VALUES (id, n);
        PERFORM durable.set_alarm(now() + interval '1 hour', 'later');
        PERFORM durable.send('g2_atomic', id || '-sent', 'noop');
        PERFORM durable.broadcast(jsonb_build_object('n', n));
        IF method = 'write_fail' THEN
            RAISE EXCEPTION 'failing after all writes' USING ERRCODE = 'P0042';
        END IF;
        RETURN to_jsonb(n);
    WHEN 'caught' THEN
        PERFORM durable.put('before', 'true');
        BEGIN
            PERFORM durable.put('inside', 'true');
            RAISE EXCEPTION 'undo the block' USING ERRCODE = 'P0042';
        EXCEPTION WHEN SQLSTATE 'P0042' THEN
            NULL;
        END;
        PERFORM durable.put('after', 'true');
        RETURN 'true';
    WHEN 'noop' THEN
        PERFORM durable.put('noop', 'true');
        RETURN 'true';
    WHEN 'state' THEN
        RETURN jsonb_build_object(
            'keys', (SELECT count(*) FROM durable.list(prefix => 'k')),
            'values', (SELECT count(DISTINCT value) FROM durable.list(prefix => 'k')),
            'alarm', durable.get_alarm('later') IS NOT NULL,
            'keys_set', (SELECT jsonb_agg(key ORDER BY key) FROM durable.list()));
    END CASE;
END
\$\$;
SELECT durable.define_class('g2_atomic', 'g2_atomic');" >/dev/null

state() { sql "SELECT durable.call('g2_atomic', '$1', 'state')"; }
run=$(date +%s%N)

# --- a failed call leaves no trace
sql_try "SELECT durable.call('g2_atomic', 'fail-$run', 'write_fail')" >"$tmp/fail.out"
check "G2: the failing call failed (P0042)" grep -q "failing after all writes" "$tmp/fail.out"
st=$(state "fail-$run")
check "G2: a failed call wrote no key ($st)" [ "$(echo "$st" | jq -r .keys_set)" = null ]
check "G2: a failed call set no alarm" [ "$(echo "$st" | jq -r .alarm)" = false ]
check "G2: a failed call's table row was rolled back" \
    [ "$(sql "SELECT count(*) FROM g2_rows WHERE id = 'fail-$run'")" = 0 ]
sleep 0.5
check "G2: a failed call's send never ran" \
    [ "$(sql "SELECT count(*) FROM durable._storage WHERE class = 'g2_atomic' AND id = 'fail-$run-sent'")" = 0 ]
check "G2: a failed call's send is not queued" \
    [ "$(sql "SELECT count(*) FROM durable._outbox WHERE id = 'fail-$run-sent'")" = 0 ]

# --- the same call that succeeds leaves all of it
sql "SELECT durable.call('g2_atomic', 'ok-$run', 'write')" >/dev/null
st=$(state "ok-$run")
check "G2: a successful call wrote its 20 keys with one value ($st)" \
    [ "$(echo "$st" | jq -r '.keys, .values' | tr '\n' ' ')" = "20 1 " ]
check "G2: ... and its alarm" [ "$(echo "$st" | jq -r .alarm)" = true ]
check "G2: ... and its table row" [ "$(sql "SELECT count(*) FROM g2_rows WHERE id = 'ok-$run'")" = 1 ]
check "G2: ... and its send ran" wait_for \
    "SELECT count(*) = 1 FROM durable._storage WHERE class = 'g2_atomic' AND id = 'ok-$run-sent'" 20

# --- a caught error undoes its own block only
sql "SELECT durable.call('g2_atomic', 'caught-$run', 'caught')" >/dev/null
check "G2: an error caught in the handler undid only its block" \
    [ "$(state "caught-$run" | jq -c .keys_set)" = '["after","before"]' ]

# --- kill -9 under load: no call half applied
client() {
    local i=0
    while [ ! -e "$tmp/stop" ] && [ $i -lt 400 ]; do
        psql -X -q -At -c "SELECT durable.call('g2_atomic', 'crash-$run-$1-' || ($i % 5), 'write')" \
            >/dev/null 2>&1 || break
        i=$((i + 1))
    done
}
# 16 clients, four to a group of 5 objects: the objects' calls queue, batch and move between hosts
for c in $(seq 1 16); do client "$((c % 4))" & done
sleep 2
cluster_kill9
touch "$tmp/stop"
wait
cluster_start
wait_hosts 30
torn=$(sql "SELECT count(*) FROM (SELECT id FROM durable._storage
            WHERE class = 'g2_atomic' AND id LIKE 'crash-$run-%' AND key LIKE 'k%'
            GROUP BY id HAVING count(*) <> 20 OR count(DISTINCT value) <> 1) t")
objects=$(sql "SELECT count(DISTINCT id) FROM durable._storage WHERE class = 'g2_atomic' AND id LIKE 'crash-$run-%'")
check "G2: after kill -9 under load, every object has all 20 keys of one call ($objects objects, $torn torn)" \
    [ "$torn" = 0 ] && [ "$objects" -gt 0 ]
check "G2: each object's counter matches its keys" [ "$(sql "SELECT count(*) FROM (
    SELECT id FROM durable._storage WHERE class = 'g2_atomic' AND id LIKE 'crash-$run-%'
       AND id NOT LIKE '%-sent' GROUP BY id HAVING count(DISTINCT value) FILTER (WHERE key LIKE 'k%' OR key = 'n') <> 1) t")" = 0 ]

sql "SELECT durable.drop_class('g2_atomic', true); DROP FUNCTION g2_atomic(text, text, jsonb); DROP TABLE g2_rows" >/dev/null
