#!/usr/bin/env bash
# G1 serial, G5 order, G6 failure isolation — with many parallel clients over a real cluster.
source "$TEST_ROOT/test/lib.sh"
set -u
tmp=$(mktemp -d)

sql "CREATE EXTENSION IF NOT EXISTS pg_durable_objects" >/dev/null
sql "
CREATE TABLE g6_log (n int);
CREATE FUNCTION conc(id text, method text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$
DECLARE
    n bigint;
BEGIN
    CASE method
    WHEN 'inc' THEN
        -- read, yield, write: two copies of this object running at once would lose updates
        n := coalesce(durable.get('n')::bigint, 0);
        PERFORM pg_sleep(0.0005);
        PERFORM durable.put('n', to_jsonb(n + 1));
        RETURN to_jsonb(n + 1);
    WHEN 'get' THEN
        RETURN coalesce(durable.get('n'), '0');
    WHEN 'fail' THEN
        PERFORM durable.put('n', '-1000000');
        RAISE EXCEPTION 'failing on purpose' USING ERRCODE = 'P0042';
    WHEN 'append' THEN
        PERFORM durable.put(args->>'client',
                            coalesce(durable.get(args->>'client'), '[]') || to_jsonb((args->>'n')::int));
        RETURN NULL;
    WHEN 'log' THEN
        RETURN durable.get(args->>'client');
    WHEN 'slow' THEN
        PERFORM pg_sleep((args->>'s')::float);
        RETURN 'true';
    WHEN 'commit_bad' THEN
        -- fails only at commit while a session holds a row lock on its key 'bad': the host
        -- writes held storage values just before it commits
        INSERT INTO g6_log VALUES (1);
        PERFORM durable.put('bad', coalesce(args->'n', '0'));
        RETURN 'true';
    END CASE;
END
\$\$;
CREATE FUNCTION conc_try_fail(id text) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM durable.call('conc', id, 'fail');
EXCEPTION WHEN SQLSTATE 'P0042' THEN
    NULL;
END
\$\$;
SELECT durable.define_class('conc', 'conc');
" >/dev/null

stats() { sql "SELECT sum(calls)::text || ' ' || sum(batches)::text FROM durable.hosts"; }

# --- G1: 16 sessions x 100 increments of one object end at exactly 1600; a second
#     object on the other host is hammered at the same time.
echo "SELECT durable.call('conc', 'g1', 'inc');" >"$tmp/inc.sql"
echo "SELECT durable.call('conc', 'g1-other', 'inc');" >"$tmp/inc2.sql"
pgbench -n -c 16 -j 2 -t 100 -f "$tmp/inc.sql" >"$tmp/g1.log" 2>&1 &
p1=$!
pgbench -n -c 4 -j 1 -t 100 -f "$tmp/inc2.sql" >"$tmp/g1b.log" 2>&1
wait $p1
got=$(sql "SELECT durable.call('conc', 'g1', 'get')")
check "G1: 16 clients x 100 concurrent increments give 1600 (got $got)" [ "$got" = 1600 ]
got=$(sql "SELECT durable.call('conc', 'g1-other', 'get')")
check "G1: the other object counted its own 400 (got $got)" [ "$got" = 400 ]

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
#     commits.
sql "SELECT durable.call('conc', 'h', 'commit_bad')" >/dev/null
sql "TRUNCATE g6_log" >/dev/null
sql "ALTER SYSTEM SET durable.call_timeout = '1s'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
PGAPPNAME=g6lock psql -X -q -At -c "BEGIN" \
    -c "SELECT 1 FROM durable._storage WHERE class = 'conc' AND id = 'h' AND key = 'bad' FOR UPDATE" \
    -c "SELECT pg_sleep(4)" -c "COMMIT" >/dev/null 2>&1 &
locker=$!
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'g6lock' AND query LIKE '%pg_sleep%'" 10
sql "SELECT durable.call('conc', 'h', 'slow', '{\"s\": 0.8}')" >/dev/null &
slow=$!
sleep 0.4
sql_try "SELECT durable.call('conc', 'h', 'inc')" >"$tmp/good.out" &
good=$!
psql -X -At -v VERBOSITY=verbose -c "SELECT durable.call('conc', 'h', 'commit_bad', '{\"n\": 1}')" >"$tmp/bad.out" 2>&1 &
bad=$!
wait $slow $good $bad
check "G6: the good call of the batch succeeded ($(cat "$tmp/good.out"))" [ "$(cat "$tmp/good.out")" = 1 ]
check "G6: the call that failed at commit got 55P03" grep -q 55P03 "$tmp/bad.out"
wait $locker
sql "ALTER SYSTEM RESET durable.call_timeout" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
got=$(sql "SELECT count(*) FROM g6_log")
check "G6: the failed call's insert was rolled back" [ "$got" = 0 ]
got=$(sql "SELECT durable.call('conc', 'h', 'get')")
check "G6: the good call's write is there (n=$got)" [ "$got" = 1 ]
got=$(sql "SELECT value FROM durable._storage WHERE class = 'conc' AND id = 'h' AND key = 'bad'")
check "G6: the failed call's storage write was rolled back (bad=$got)" [ "$got" = 0 ]

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

sql "SELECT durable.drop_class('conc', true); DROP FUNCTION conc_try_fail(text); DROP FUNCTION conc(text, text, jsonb); DROP TABLE g6_log;" >/dev/null
rm -rf "$tmp"
