#!/usr/bin/env bash
# State migrations per class (issue 16, point 3): class option "version", lifecycle method
# $migrate {"from", "to"} run once per object, lazily before its next call, or eagerly by
# durable.migrate_all(class); a failing $migrate fails the call that triggered it and is
# tried again by the next; durable.objects shows each object's version.
# The handler counts its own migrations in storage (key "migrations") and keeps a log of
# them ("mlog": from, to, and the counter at that moment); every "inc" records which schema
# version it saw ("seen_<n>"), so the checks can tell whether a call ran before or after the
# migration of its object.
source "$TEST_ROOT/test/lib.sh"
set -u

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT


sql "SET client_min_messages = warning;
DROP ROLE IF EXISTS mig_owner; DROP ROLE IF EXISTS mig_other;
CREATE ROLE mig_owner; CREATE ROLE mig_other;
CREATE EXTENSION IF NOT EXISTS pg_durable_objects;
CREATE TABLE mig_ctl (fail boolean NOT NULL);
INSERT INTO mig_ctl VALUES (false);
ALTER TABLE mig_ctl OWNER TO mig_owner;
CREATE FUNCTION mig_h(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
DECLARE
    n bigint;
BEGIN
    CASE method
    WHEN '\$migrate' THEN
        IF (SELECT fail FROM public.mig_ctl) THEN
            RAISE EXCEPTION 'migration of % refused', id USING ERRCODE = 'P0077';
        END IF;
        PERFORM durable.put('migrations', to_jsonb(coalesce(durable.get('migrations')::int, 0) + 1));
        PERFORM durable.put('schema', args->'to');
        PERFORM durable.put('mlog', coalesce(durable.get('mlog'), '[]')
            || jsonb_build_array(jsonb_build_object('from', args->'from', 'to', args->'to',
                                                    'n', coalesce(durable.get('n'), '0'))));
        RETURN NULL;
    WHEN 'inc' THEN
        n := coalesce(durable.get('n')::bigint, 0) + 1;
        PERFORM durable.put('n', to_jsonb(n));
        PERFORM durable.put('seen_' || lpad(n::text, 6, '0'), coalesce(durable.get('schema'), '0'));
        RETURN jsonb_build_object('n', n, 'schema', coalesce(durable.get('schema'), '0'),
                                  'migrations', coalesce(durable.get('migrations'), '0'));
    WHEN 'dump' THEN
        RETURN (SELECT jsonb_object_agg(key, value) FROM durable.list());
    WHEN 'callother' THEN
        RETURN durable.call('mig', args->>'id', 'inc');
    WHEN 'arm' THEN
        PERFORM durable.set_alarm(now() + interval '2 seconds');
        RETURN 'true';
    WHEN '\$alarm' THEN
        PERFORM durable.put('alarmed', to_jsonb(coalesce(durable.get('alarmed')::int, 0) + 1));
        RETURN NULL;
    WHEN 'forge' THEN
        INSERT INTO durable._versions VALUES ('mig', id, 1000);
        RETURN 'true';
    ELSE
        RAISE EXCEPTION 'unknown method %', method USING ERRCODE = '22023';
    END CASE;
END \$\$;
ALTER FUNCTION mig_h(text, text, jsonb) OWNER TO mig_owner;
CREATE FUNCTION mig_other_h(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE sql AS 'SELECT NULL::jsonb';
ALTER FUNCTION mig_other_h(text, text, jsonb) OWNER TO mig_other;
GRANT EXECUTE ON FUNCTION mig_h(text, text, jsonb) TO mig_other;" >/dev/null || exit 1

define() {  # define VERSION: mig_owner (re)defines class mig at that version
    as mig_owner "SELECT durable.define_class('mig', 'mig_h', '{\"version\": $1}')" >/dev/null
}
call() { sql "SELECT durable.call('mig', '$1', '${2:-inc}', '${3:-{\}}')"; }
field() { sql "SELECT (durable.call('mig', '$1', 'dump'))->>'$2'"; }
version_of() { sql "SELECT version FROM durable.objects WHERE class = 'mig' AND id = '$1'"; }

# --- a class without the option is at version 1; its objects too, nothing runs $migrate
as mig_owner "SELECT durable.define_class('mig', 'mig_h')" >/dev/null
for i in 1 2 3 4 5; do call a$i >/dev/null; done
is "a class without the option is at version 1" \
    "$(sql "SELECT version FROM durable.classes WHERE name = 'mig'")" 1
is "durable.objects shows version 1 for its objects" \
    "$(sql "SELECT string_agg(DISTINCT version::text, ',') FROM durable.objects WHERE class = 'mig'")" 1
is "at the base version no version row is written" "$(sql "SELECT count(*) FROM durable._versions")" 0

# --- lazy: a bump runs nothing at once; each object migrates once, before its next call
define 2 || not_ok "define_class with version 2"
is "after the bump nothing migrated yet (lazy)" \
    "$(sql "SELECT count(*) FROM durable.objects WHERE class = 'mig' AND version = 1")" 5
r=$(call a1)
is "the first call after the bump sees the migrated state" "$(echo "$r" | jq -c '[.schema, .migrations]')" '[2,1]'
r=$(call a1)
is "the next call does not migrate again" "$(echo "$r" | jq -c '[.n, .schema, .migrations]')" '[3,2,1]'
is "\$migrate got {from: 1, to: 2} and ran before the call (counter 1)" \
    "$(sql "SELECT durable.call('mig', 'a1', 'dump')->'mlog'" | jq -c .)" '[{"n":1,"to":2,"from":1}]'
is "durable.objects shows the migrated object at 2, the others at 1" \
    "$(sql "SELECT string_agg(id || '=' || version, ',' ORDER BY id) FROM durable.objects WHERE class = 'mig'")" \
    "a1=2,a2=1,a3=1,a4=1,a5=1"

# --- objects created at version 2 start there without $migrate
r=$(call new1)
is "a new object starts at the class version without \$migrate" \
    "$(echo "$r" | jq -c '[.schema, .migrations]')" '[0,0]'
is "durable.objects shows the new object at 2" "$(version_of new1)" 2

# --- an inline call from another object's handler migrates its target first
r=$(call a1 callother '{"id": "a3"}')
is "an inline (nested) call migrates its object first" "$(echo "$r" | jq -c '[.schema, .migrations]')" '[2,1]'

# --- the version cannot go down, and the same version changes nothing
out=$(as mig_owner "SELECT durable.define_class('mig', 'mig_h', '{\"version\": 1}')")
is "lowering the version is refused with 22023" "$(sqlstate "$out")" 22023
for v in 0 -1 1.5 '"3"'; do
    out=$(as mig_owner "SELECT durable.define_class('mig', 'mig_h', '{\"version\": $v}')")
    is "version $v is refused with 22023" "$(sqlstate "$out")" 22023
done
define 2
r=$(call a1)
is "redefining at the same version migrates nothing" "$(echo "$r" | jq -c '.migrations')" 1

# --- a failing $migrate fails the call that triggered it; the next call tries again
sql "UPDATE mig_ctl SET fail = true"
define 3
out=$(psql -X -q -At -v VERBOSITY=verbose -c "SELECT durable.call('mig', 'a2', 'inc')" 2>&1)
is "a failing \$migrate fails the triggering call with its SQLSTATE" "$(sqlstate "$out")" P0077
out2=$(psql -X -q -At -v VERBOSITY=verbose -c "SELECT durable.call('mig', 'a2', 'inc')" 2>&1)
is "and the next call tries it again (and fails again)" "$(sqlstate "$out2")" P0077
if echo "$out" | grep -q 'migrate of object "a2" of class "mig" from version 1'; then
    ok "the error says which migration failed"
else
    not_ok "the error says which migration failed" "$out"
fi
is "the failed calls did not run and nothing of \$migrate stayed" \
    "$(sql "SELECT string_agg(key || '=' || value, ',' ORDER BY key) FROM durable._storage WHERE class = 'mig' AND id = 'a2'")" \
    "n=1,seen_000001=0"
is "durable.objects still shows the failed object at 1" "$(version_of a2)" 1
sql "UPDATE mig_ctl SET fail = false"
# the dump above ran after fail was cleared: it migrated a2 (from 1 straight to 3)
is "the call after the failures migrated once, from 1 to 3" \
    "$(sql "SELECT durable.call('mig', 'a2', 'dump')->'mlog'" | jq -c '[.[] | [.from, .to]]')" '[[1,3]]'

# --- durable.migrate_all: every object behind, in pages, each once; returns how many
sql "SELECT count(durable.call('mig', 'b' || i, 'inc')) FROM generate_series(1, 2500) i" >/dev/null
behind=$(sql "SELECT count(*) FROM durable.objects WHERE class = 'mig' AND version < 4")
define 4
n=$(as mig_owner "SELECT durable.migrate_all('mig')")
is "migrate_all migrates every object behind and returns how many ($behind)" "$n" "$behind"
is "after migrate_all every object is at 4" \
    "$(sql "SELECT count(*) FROM durable.objects WHERE class = 'mig' AND version <> 4")" 0
is "each object created at 3 ran \$migrate exactly once, from 3 to 4" \
    "$(sql "SELECT count(*) FROM durable._storage WHERE class = 'mig' AND id LIKE 'b%' AND key = 'mlog'
              AND value = jsonb_build_array(jsonb_build_object('from', 3, 'to', 4, 'n', 1))")" 2500
is "a second migrate_all finds nothing to do" "$(as mig_owner "SELECT durable.migrate_all('mig')")" 0
r=$(call b7)
is "a call after migrate_all does not migrate again" "$(echo "$r" | jq -c '.migrations')" 1

# --- many sessions calling while the class is bumped: each object migrates exactly once,
#     and every call sees either the state before its migration or after, never both
for i in $(seq 1 8); do call c$i >/dev/null; done
cat >"$tmp/inc.sql" <<'EOF'
\set i random(1, 8)
SELECT durable.call('mig', 'c' || :i, 'inc');
EOF
pgbench -n -c 16 -j 4 -t 150 -f "$tmp/inc.sql" >"$tmp/pgbench.log" 2>&1 &
bench=$!
sleep 1
# bump, then at once call every object from the same session: each must see version 5
first=$(psql -X -q -At -v ON_ERROR_STOP=1 \
             -c "SELECT durable.define_class('mig', 'mig_h', '{\"version\": 5}')" \
             -c "SELECT string_agg(durable.call('mig', 'c' || i, 'inc')->>'schema', ',') FROM generate_series(1, 8) i" \
             2>&1 | tail -1)
wait $bench
if grep -q "number of transactions actually processed: 2400/2400" "$tmp/pgbench.log"; then
    ok "16 sessions' 2400 calls during the bump all succeeded"
else
    not_ok "16 sessions' 2400 calls during the bump all succeeded" "$(tail -5 "$tmp/pgbench.log")"
fi
is "the first call of every object after the bump sees the migrated state" "$first" "5,5,5,5,5,5,5,5"
is "each of the 8 objects ran \$migrate exactly once (from 4 to 5)" \
    "$(sql "SELECT count(*) FROM durable._storage WHERE class = 'mig' AND id LIKE 'c%' AND key = 'mlog'
              AND jsonb_array_length(value) = 1 AND value->0->>'from' = '4' AND value->0->>'to' = '5'")" 8
# seen_k: the schema call k saw; $migrate ran when the counter was m: calls 2..m saw 0, m+1.. saw 5
bad=$(sql "SELECT count(*) FROM durable._storage s
             JOIN durable._storage l ON l.class = s.class AND l.id = s.id AND l.key = 'mlog'
            WHERE s.class = 'mig' AND s.id LIKE 'c%' AND s.key LIKE 'seen\_%'
              AND (substr(s.key, 6)::int > (l.value->0->>'n')::int) <> (s.value = '5')")
is "every call ran wholly before or wholly after its object's migration" "$bad" 0
is "no increment was lost (G1 with migrations)" \
    "$(sql "SELECT sum((value)::int) FROM durable._storage WHERE class = 'mig' AND id LIKE 'c%' AND key = 'n'")" \
    $((8 + 2400 + 8))

# --- migrate_all while sessions call the same objects: each object still migrates once
define 6
behind=$(sql "SELECT count(*) FROM durable.objects WHERE class = 'mig' AND version < 6")
# the sessions call b1..b1250 (racing migrate_all for them); only migrate_all reaches the rest
printf '%s\n' '\set i random(1, 1250)' "SELECT durable.call('mig', 'b' || :i, 'inc');" >"$tmp/b.sql"
pgbench -n -c 8 -j 2 -T 6 -f "$tmp/b.sql" >"$tmp/pgbench_b.log" 2>&1 &
bench=$!
sleep 0.5
n=$(as mig_owner "SELECT durable.migrate_all('mig')")
wait $bench
once=$(sql "SELECT count(*) FROM durable._storage WHERE class = 'mig' AND key = 'mlog'
              AND (SELECT count(*) FROM jsonb_array_elements(value) e WHERE e->>'to' = '6') = 1")
is "with calls running alongside, every object behind ($behind) migrated to 6 exactly once" "$once" "$behind"
if [ "$n" -ge 1250 ] 2>/dev/null && [ "$n" -le "$behind" ]; then
    ok "migrate_all counted only the objects it migrated itself ($n of $behind)"
else
    not_ok "migrate_all counted only the objects it migrated itself" "$n of $behind"
fi
is "no call failed while migrate_all ran" "$(grep -c 'number of failed transactions: 0' "$tmp/pgbench_b.log")" 1

# --- who may do what
call d1 >/dev/null
call d2 >/dev/null
define 7
out=$(as mig_other "SELECT durable.define_class('mig', 'mig_other_h', '{\"version\": 9}')")
is "another role cannot redefine (bump) the class" "$(sqlstate "$out")" 42501
out=$(as mig_other "SELECT durable.migrate_all('mig')")
is "another role cannot run migrate_all on the class" "$(sqlstate "$out")" 42501
out=$(as mig_other "SELECT durable.call('mig', 'd1', '\$migrate', '{\"from\": 6, \"to\": 7}')")
is "nobody can call \$migrate directly" "$(sqlstate "$out")" 22023
out=$(as mig_other "BEGIN; SELECT durable.send('mig', 'd1', '\$migrate'); COMMIT")
is "nobody can send \$migrate" "$(sqlstate "$out")" 22023
out=$(as mig_other "INSERT INTO durable._versions VALUES ('mig', 'd1', 7)")
is "another role cannot write an object's version" "$(sqlstate "$out")" 42501
is "d1 is still behind after all that" "$(version_of d1)" 6
out=$(psql -X -q -At -v VERBOSITY=verbose -c "SELECT durable.call('mig', 'd1', 'forge')" 2>&1)
is "a handler cannot forge its object's version" "$(sqlstate "$out")" 42501
is "d1 ran \$migrate (before forge) once, from 6 to 7, and is at 7" \
    "$(sql "SELECT durable.call('mig', 'd1', 'dump')->'mlog'" | jq -c '[.[] | select(.to >= 7) | [.from, .to]]') $(version_of d1)" '[[6,7]] 7'
as mig_other "SELECT durable.call('mig', 'd2', 'inc')" >/dev/null
is "another role's call (with EXECUTE) migrates the object, as its owner, once" \
    "$(sql "SELECT durable.call('mig', 'd2', 'dump')->'mlog'" | jq -c '[.[] | select(.to >= 7) | [.from, .to]]')" '[[6,7]]'

# --- an alarm is a call like any other: its object migrates first; a failing $migrate
#     fails the alarm's attempt (retried with backoff), and the retry migrates and runs it
call e1 arm >/dev/null
sql "UPDATE mig_ctl SET fail = true"
define 8
if wait_for "SELECT attempt >= 1 FROM durable.alarms WHERE class = 'mig' AND id = 'e1'" 20; then
    ok "an alarm whose \$migrate fails counts a failed attempt"
else
    not_ok "an alarm whose \$migrate fails counts a failed attempt"
fi
is "its error is the \$migrate's" \
    "$(sql "SELECT last_error->>'code' FROM durable.alarms WHERE class = 'mig' AND id = 'e1'")" P0077
is "the alarm's handler did not run" \
    "$(sql "SELECT count(*) FROM durable._storage WHERE class = 'mig' AND id = 'e1' AND key IN ('alarmed', 'mlog')")" 0
sql "UPDATE mig_ctl SET fail = false"
if wait_for "SELECT NOT EXISTS (SELECT FROM durable.alarms WHERE class = 'mig' AND id = 'e1')" 30; then
    ok "the alarm's retry ran once \$migrate succeeded"
else
    not_ok "the alarm's retry ran once \$migrate succeeded"
fi
is "e1 migrated once (7 to 8) and its alarm ran once" \
    "$(sql "SELECT durable.call('mig', 'e1', 'dump')" | jq -c '[[.mlog[] | [.from, .to]], .alarmed]')" '[[[7,8]],1]'

# --- drop_class forgets the versions; a class created again starts afresh
sql "SELECT durable.drop_class('mig', true)" >/dev/null
is "drop_class deletes the class's version rows" "$(sql "SELECT count(*) FROM durable._versions WHERE class = 'mig'")" 0
define 3
r=$(call a1)
is "a class created at version 3 runs no \$migrate for its objects" "$(echo "$r" | jq -c '.migrations')" 0
sql "SELECT durable.drop_class('mig', true)" >/dev/null
