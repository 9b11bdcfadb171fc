#!/usr/bin/env bash
# Security between roles (SPEC §4b, docs/security.md): every call runs with exactly its class
# owner's rights, starts clean and leaves nothing in the host process a later call could meet.
# Hosts are bound to one class owner: the first checks prove that code of two owners never
# shares a process.  Each other check is one attack an ordinary role could try:
#   temporary objects, settings a nested call inherits, cursors, prepared statements, LISTEN,
#   session advisory locks, large objects, sequences, deferred triggers, role and database
#   settings, call_timeout caught away, the class directory filled by one role, views, a
#   handler name taken over by another role, a drop_class holding rows the hosts need, a call
#   leaving a huge write to the batch's commit.
# (The define_class race is test/specs/define_class_race.spec.)
source "$TEST_ROOT/test/lib.sh"
set -u

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
su=$(sql "SELECT current_user")

# as ROLE SQL: run SQL after SET ROLE; prints the result, or the error (with its SQLSTATE)

sql "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_durable_objects"

# --- roles, schemas and handlers ------------------------------------------------------------
sql "SET client_min_messages = warning;
DROP ROLE IF EXISTS it15_mallory; DROP ROLE IF EXISTS it15_alice; DROP ROLE IF EXISTS it15_eve;
CREATE ROLE it15_mallory; CREATE ROLE it15_alice; CREATE ROLE it15_eve;
CREATE SCHEMA it15_m AUTHORIZATION it15_mallory;
CREATE SCHEMA it15_app AUTHORIZATION it15_alice;
CREATE SCHEMA it15_e AUTHORIZATION it15_eve;
CREATE TABLE public.it15_audit (msg text);
" >/dev/null

# mallory: the attacker.  Every method is one attack; 'pid' says which host runs the object.
as it15_mallory "
CREATE FUNCTION it15_m.esc() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    ALTER ROLE it15_mallory SUPERUSER;
    RETURN NEW;
END \$\$;
CREATE FUNCTION it15_m.steal() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    -- runs inside whichever object's call inserts into the shadowing table
    INSERT INTO it15_m.loot VALUES (current_user, durable.get('secret'));
    PERFORM durable.put('secret', '\"overwritten by mallory\"');
    RETURN NEW;
END \$\$;
CREATE TABLE it15_m.loot (who text, what jsonb);
GRANT INSERT ON it15_m.loot TO PUBLIC;
CREATE FUNCTION it15_m.evil_add(int, int) RETURNS int LANGUAGE sql AS 'SELECT 1000';
CREATE OPERATOR it15_m.+ (LEFTARG = int, RIGHTARG = int, FUNCTION = it15_m.evil_add);
CREATE SEQUENCE it15_m.seq;
CREATE FUNCTION it15_m.peek() RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER AS \$\$
BEGIN
    -- a helper alice trusts enough to call; it runs as mallory
    RETURN durable.get('secret');
END \$\$;
GRANT USAGE ON SCHEMA it15_m TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA it15_m TO PUBLIC;
CREATE FUNCTION it15_m.h(id text, method text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$
DECLARE
    c refcursor;
    r jsonb;
    t0 timestamptz;
BEGIN
    CASE method
    WHEN 'pid' THEN
        RETURN to_jsonb(pg_backend_pid());
    WHEN 'plant' THEN
        CREATE TEMP TABLE IF NOT EXISTS it15_audit (msg text);
        GRANT ALL ON pg_temp.it15_audit TO PUBLIC;
        CREATE TRIGGER esc BEFORE INSERT ON pg_temp.it15_audit FOR EACH ROW EXECUTE FUNCTION it15_m.esc();
        RETURN 'true';
    WHEN 'plant_qualified' THEN
        CREATE TABLE pg_temp.vault_log (msg text);
        GRANT ALL ON pg_temp.vault_log TO PUBLIC;
        CREATE TRIGGER steal BEFORE INSERT ON pg_temp.vault_log FOR EACH ROW EXECUTE FUNCTION it15_m.steal();
        RETURN 'true';
    WHEN 'temp_function' THEN
        CREATE FUNCTION pg_temp.it15_f() RETURNS int LANGUAGE sql AS 'SELECT 1';
        RETURN 'true';
    WHEN 'temp_domain' THEN
        CREATE DOMAIN pg_temp.it15_d AS int;
        RETURN 'true';
    WHEN 'temp_sequence' THEN
        CREATE TEMP SEQUENCE it15_s;
        RETURN 'true';
    WHEN 'has_temp' THEN
        RETURN to_jsonb(pg_my_temp_schema() <> 0);
    WHEN 'prepare' THEN
        EXECUTE 'PREPARE it15_p AS SELECT 1';
        RETURN 'true';
    WHEN 'listen' THEN
        EXECUTE 'LISTEN it15_channel';
        RETURN 'true';
    WHEN 'hold' THEN
        EXECUTE 'DECLARE it15_h CURSOR WITH HOLD FOR SELECT 1';
        RETURN 'true';
    WHEN 'fetch' THEN
        c := args->>'cursor';
        FETCH c INTO r;
        RETURN coalesce(r, '\"(no row)\"');
    WHEN 'lock' THEN
        PERFORM pg_advisory_lock(4242);
        RETURN 'true';
    WHEN 'seq' THEN
        RETURN to_jsonb(nextval('it15_m.seq'));
    WHEN 'lastval' THEN
        RETURN to_jsonb(lastval());
    WHEN 'lo_read' THEN
        RETURN to_jsonb(encode(loread((args->>'fd')::int, 100), 'escape'));
    WHEN 'open_cursor_top' THEN
        c := 'it15_top_cursor';
        OPEN c FOR SELECT to_jsonb(s) FROM (SELECT 'a cursor row' AS secret) s;
        RETURN 'true';
    WHEN 'lo' THEN
        r := to_jsonb(lo_from_bytea(0, 'a large object'));
        RETURN to_jsonb(lo_open((r #>> '{}')::oid, 262144));
    WHEN 'sleep' THEN
        PERFORM pg_sleep((args->>'s')::float);
        RETURN 'true';
    WHEN 'settings' THEN
        RETURN jsonb_build_object('search_path', current_setting('search_path'),
                                  'work_mem', current_setting('work_mem'),
                                  'user', current_user);
    WHEN 'set_session' THEN
        SET work_mem = '9MB';
        PERFORM set_config('search_path', 'it15_m, pg_catalog', false);
        RETURN 'true';
    WHEN 'nested' THEN
        -- the caller's settings must not reach the callee
        PERFORM set_config('search_path', 'it15_m, pg_catalog', true);
        PERFORM set_config('work_mem', '5MB', true);
        r := durable.call('it15_vault', args->>'id', args->>'method');
        RETURN jsonb_build_object('callee', r, 'after', jsonb_build_object(
            'search_path', current_setting('search_path'), 'work_mem', current_setting('work_mem')));
    WHEN 'nested_fetch' THEN
        -- a cursor the callee left open must be gone when the caller goes on
        r := durable.call('it15_vault', args->>'id', 'open_cursor');
        c := 'it15_vault_cursor';
        BEGIN
            FETCH c INTO r;
            RETURN jsonb_build_object('fetched', r);
        EXCEPTION WHEN invalid_cursor_name THEN
            RETURN jsonb_build_object('fetched', 'no such cursor');
        END;
    WHEN 'spin' THEN
        -- catch every cancel and go on: durable.call_timeout must still end the call
        PERFORM durable.put('spun', 'true');
        t0 := clock_timestamp();
        WHILE clock_timestamp() < t0 + ((args->>'s')::float * interval '1 second') LOOP
            BEGIN
                PERFORM pg_sleep(0.05);
            EXCEPTION WHEN query_canceled THEN
                BEGIN
                    PERFORM pg_sleep(0.05);
                EXCEPTION WHEN query_canceled THEN
                    NULL;
                END;
            END;
        END LOOP;
        RETURN 'true';
    WHEN 'get' THEN
        RETURN durable.get(args->>'key');
    ELSE
        RAISE EXCEPTION 'unknown method %', method;
    END CASE;
END \$\$;
SELECT durable.define_class('it15_mallory', 'it15_m.h');" >/dev/null

# alice: a victim with a secret, in a schema nobody else may use
as it15_alice "
CREATE TABLE it15_app.vault_log (msg text);
CREATE FUNCTION it15_app.vault(id text, method text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$
DECLARE
    c CURSOR FOR SELECT to_jsonb(s) FROM (SELECT 'alice''s cursor row' AS secret) s;
    lo oid;
    fd int;
BEGIN
    CASE method
    WHEN 'pid' THEN
        RETURN to_jsonb(pg_backend_pid());
    WHEN 'init' THEN
        PERFORM durable.put('secret', '\"alice-only\"');
        RETURN 'true';
    WHEN 'get' THEN
        RETURN durable.get('secret');
    WHEN 'peek' THEN
        RETURN it15_m.peek();
    WHEN 'log' THEN
        -- an unqualified name: alice means her own table (her search_path: \"\$user\", public)
        SET LOCAL search_path = it15_app, public;
        INSERT INTO vault_log VALUES ('opened');
        RETURN 'true';
    WHEN 'add' THEN
        RETURN jsonb_build_object('sum', 1 + 1, 'search_path', current_setting('search_path'),
                                  'work_mem', current_setting('work_mem'), 'user', current_user);
    WHEN 'settings' THEN
        RETURN jsonb_build_object('search_path', current_setting('search_path'),
                                  'work_mem', current_setting('work_mem'),
                                  'timezone', current_setting('TimeZone'), 'user', current_user);
    WHEN 'change_settings' THEN
        SET work_mem = '7MB';
        SET search_path = it15_app;
        RETURN 'true';
    WHEN 'open_cursor' THEN
        c := 'it15_vault_cursor';
        OPEN c;
        RETURN 'true';
    WHEN 'open_cursor_top' THEN
        c := 'it15_top_cursor';
        OPEN c;
        RETURN 'true';
    WHEN 'lo' THEN
        lo := lo_from_bytea(0, 'alice large object');
        fd := lo_open(lo, 262144);
        RETURN to_jsonb(fd);
    ELSE
        RAISE EXCEPTION 'unknown method %', method;
    END CASE;
END \$\$;
SELECT durable.define_class('it15_vault', 'it15_app.vault', '{\"http\": true}');" >/dev/null

# the superuser's own class: its handler writes an unqualified table name
sql "CREATE FUNCTION it15_audit_h(id text, method text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$
BEGIN
    CASE method
    WHEN 'pid' THEN RETURN to_jsonb(pg_backend_pid());
    WHEN 'sleep' THEN PERFORM pg_sleep((args->>'s')::float); RETURN 'true';
    WHEN 'audit' THEN
        INSERT INTO it15_audit VALUES ('audited ' || id);
        RETURN to_jsonb(current_user);
    END CASE;
END \$\$;
SELECT durable.define_class('it15_audit', 'it15_audit_h');" >/dev/null

ids="o1 o2 o3 o4 o5 o6 o7 o8"
host_of() { sql "SELECT durable.call('$1', '$2', 'pid')"; }
pids_of() { local i; for i in $ids; do host_of "$1" "$i"; done | sort -u; }

# --- 0. hosts are bound to one owner ------------------------------------------------------------
mallory_pids=$(pids_of it15_mallory)
alice_pids=$(pids_of it15_vault)
su_pids=$(pids_of it15_audit)
is "mallory's objects never run in a process that runs alice's" \
    "$(comm -12 <(echo "$mallory_pids") <(echo "$alice_pids") | wc -l)" 0
is "mallory's objects never run in a process that runs the superuser's" \
    "$(comm -12 <(echo "$mallory_pids") <(echo "$su_pids") | wc -l)" 0
is "durable.hosts shows each host process with one owner" \
    "$(sql "SELECT count(*) FROM (SELECT pid FROM durable.hosts WHERE pid IS NOT NULL
                                 GROUP BY pid HAVING count(DISTINCT owner) > 1) x")" 0
is "durable.hosts shows mallory's hosts as hers" \
    "$(sql "SELECT count(*) FROM durable.hosts WHERE owner = 'it15_mallory'::regrole
             AND pid IN ($(echo $mallory_pids | tr ' ' ','))")" "$(echo "$mallory_pids" | wc -l)"
# same_m: an object of mallory; same_s, same_m2: two more on its host (for calls in one batch)
same_m=o1; same_a=o1; same_s= ; same_m2=
for s in o2 o3 o4 o5 o6 o7 o8 o9 o10 o11 o12 o13 o14 o15 o16; do
    if [ "$(host_of it15_mallory "$s")" = "$(host_of it15_mallory "$same_m")" ]; then
        if [ -z "$same_s" ]; then same_s=$s; elif [ -z "$same_m2" ]; then same_m2=$s; break; fi
    fi
done
check "setup: two more of mallory's objects on the host of $same_m ($same_s, $same_m2)" \
    [ -n "$same_s" ] && [ -n "$same_m2" ]
for a in $ids; do sql "SELECT durable.call('it15_vault', '$a', 'init')" >/dev/null; done

# --- 1. temporary objects ----------------------------------------------------------------------
# refused_everywhere NAME METHOD: mallory's METHOD fails with 42501 on every object (both hosts)
refused_everywhere() {
    local m out fails=0
    for m in $ids; do
        out=$(as it15_mallory "SELECT durable.call('it15_mallory', '$m', '$2')")
        [ "$(sqlstate "$out")" = 42501 ] || { fails=1; echo "# $2 on $m: $out"; }
    done
    is "$1" "$fails" 0
}
refused_everywhere "temporary table in a handler is refused (42501) on every host" plant
for a in $ids; do sql_try "SELECT durable.call('it15_audit', '$a', 'audit')" >/dev/null; done
is "temp table of another owner is never seen: the superuser's handler wrote public.it15_audit" \
    "$(sql "SELECT count(*) FROM public.it15_audit")" 8
is "temp table of another owner is never seen: mallory did not become superuser" \
    "$(sql "SELECT rolsuper FROM pg_roles WHERE rolname = 'it15_mallory'")" f
refused_everywhere "a table created as pg_temp.name in a handler is refused (42501)" plant_qualified
for a in $ids; do sql_try "SELECT durable.call('it15_vault', '$a', 'log')" >/dev/null; done
is "temp table of another owner is never seen: alice's secret was not read through it" \
    "$(sql "SELECT count(*) FROM it15_m.loot")" 0
is "temp table of another owner is never seen: alice's secret was not overwritten" \
    "$(sql "SELECT count(*) FROM generate_series(1, 8) i WHERE durable.call('it15_vault', 'o' || i, 'get') = '\"alice-only\"'")" 8
is "a SECURITY DEFINER function of another role, called by a handler, cannot read its storage (42501)" \
    "$(sqlstate "$(as it15_alice "SELECT durable.call('it15_vault', 'o1', 'peek')")")" 42501
for what in temp_function temp_domain temp_sequence; do
    out=$(as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', '$what')")
    is "a temporary object ($what) cannot be left in a host (42501)" "$(sqlstate "$out")" 42501
done
is "after the refused temporary objects the host has no temporary schema" \
    "$(as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', 'has_temp')")" false

# --- 2. settings: a nested call starts from its own owner's settings --------------------------
sql "GRANT EXECUTE ON FUNCTION it15_app.vault(text, text, jsonb) TO it15_mallory" >/dev/null
for pair in "$same_a:another owner's host"; do
    a=${pair%%:*}; where=${pair#*:}
    out=$(as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', 'nested', '{\"id\": \"$a\", \"method\": \"add\"}')")
    is "nested call ($where): the caller's operator is not used by the callee" \
        "$(echo "$out" | jq -r '.callee.sum' 2>/dev/null)" 2
    is "nested call ($where): the callee gets its own search_path" \
        "$(echo "$out" | jq -r '.callee.search_path' 2>/dev/null)" '"$user", public'
    is "nested call ($where): the callee gets its own work_mem" \
        "$(echo "$out" | jq -r '.callee.work_mem' 2>/dev/null)" 4MB
    is "nested call ($where): the callee runs as its owner" \
        "$(echo "$out" | jq -r '.callee.user' 2>/dev/null)" it15_alice
    out=$(as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', 'nested', '{\"id\": \"$a\", \"method\": \"change_settings\"}')")
    is "nested call ($where): settings the callee changed end with it" \
        "$(echo "$out" | jq -c -S '.after' 2>/dev/null)" '{"search_path":"it15_m, pg_catalog","work_mem":"5MB"}'
done
as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', 'set_session')" >/dev/null
is "a session-level SET of a handler ends with its call" \
    "$(as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', 'settings')" | jq -c '[.search_path, .work_mem]')" \
    '["\"$user\", public","4MB"]'

# role and database settings, as a fresh session of the owner would have them
sql "ALTER ROLE it15_alice SET work_mem = '3MB'; ALTER DATABASE postgres SET TimeZone = 'Asia/Tokyo';
     ALTER ROLE it15_alice IN DATABASE postgres SET TimeZone = 'America/Lima'" >/dev/null
out=$(sql "SELECT durable.call('it15_vault', '$same_a', 'settings')")
is "ALTER ROLE … SET of the class owner applies to its calls" "$(echo "$out" | jq -r .work_mem)" 3MB
is "ALTER ROLE … IN DATABASE … SET beats the database's setting" "$(echo "$out" | jq -r .timezone)" America/Lima
out=$(as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', 'settings')")
is "another owner's ALTER ROLE … SET does not apply to mallory's calls" "$(echo "$out" | jq -r .work_mem)" 4MB
sql "ALTER ROLE it15_alice IN DATABASE postgres RESET TimeZone" >/dev/null
is "ALTER DATABASE … SET applies to every owner's calls" \
    "$(sql "SELECT durable.call('it15_vault', '$same_a', 'settings')" | jq -r .timezone)" Asia/Tokyo
sql "ALTER ROLE it15_alice RESET work_mem; ALTER DATABASE postgres RESET TimeZone" >/dev/null
is "a removed ALTER ROLE … SET no longer applies" \
    "$(sql "SELECT durable.call('it15_vault', '$same_a', 'settings')" | jq -r .work_mem)" 4MB

# the workers' own role settings are not the owner's: restart the hosts with one set
sql "ALTER ROLE \"$su\" SET work_mem = '11MB'" >/dev/null
old=$(sql "SELECT string_agg(pid::text, ',') FROM durable.hosts")
sql "SELECT pg_terminate_backend(pid) FROM durable.hosts" >/dev/null
wait_for "SELECT count(*) = 0 FROM durable.hosts WHERE pid IN ($old)" 20
is "the settings of the role the hosts connect as do not reach a handler" \
    "$(sql "SELECT durable.call('it15_vault', '$same_a', 'settings')" | jq -r .work_mem)" 4MB
sql "ALTER ROLE \"$su\" RESET work_mem" >/dev/null

# --- 3. cursors, prepared statements, LISTEN, locks, large objects, sequences ---------------
# in_one_batch FIRST_SQL ROLE SECOND_SQL: while a call of mallory sleeps on the host of same_m,
# queue FIRST_SQL (as the superuser), then SECOND_SQL (as ROLE), so that the host runs both calls
# in its next batch (durable.busy_threshold raised so that they wait for it); prints the output
# of SECOND_SQL (FIRST_SQL's goes to $tmp/first.out)
in_one_batch() {
    local sleeper first
    sql "SELECT durable.call('it15_mallory', '$same_s', 'sleep', '{\"s\": 0.8}')" >/dev/null &
    sleeper=$!
    sleep 0.3
    sql_try "$1" >"$tmp/first.out" &
    first=$!
    sleep 0.2
    as "$2" "$3"
    wait $sleeper $first
}
sql "ALTER SYSTEM SET durable.busy_threshold = '10s'" >/dev/null; sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
out=$(in_one_batch "SELECT durable.call('it15_mallory', '$same_m2', 'open_cursor_top')" it15_mallory \
    "SELECT durable.call('it15_mallory', '$same_m', 'fetch', '{\"cursor\": \"it15_top_cursor\"}')")
is "a cursor a call left open is gone for the next call of its batch" "$(sqlstate "$out")" 34000
out=$(in_one_batch "SELECT durable.call('it15_mallory', '$same_m2', 'lo')" it15_mallory \
    "SELECT durable.call('it15_mallory', '$same_m', 'lo_read', '{\"fd\": 0}')")
is "a large object a call opened is closed for the next call of its batch" \
    "$(cat "$tmp/first.out") $(sqlstate "$out")" "0 42704"
is "a cursor a nested callee left open is gone when its caller goes on" \
    "$(as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', 'nested_fetch', '{\"id\": \"$same_a\"}')" | jq -r .fetched)" \
    "no such cursor"
is "a WITH HOLD cursor in a handler is refused (42501)" \
    "$(sqlstate "$(as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', 'hold')")")" 42501
is "PREPARE in a handler is refused (42501)" \
    "$(sqlstate "$(as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', 'prepare')")")" 42501
is "LISTEN in a handler is refused (42501)" \
    "$(sqlstate "$(as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', 'listen')")")" 42501
for m in $ids; do as it15_mallory "SELECT durable.call('it15_mallory', '$m', 'lock')" >/dev/null; done
is "a session advisory lock a handler took ends with its call" \
    "$(sql "SELECT pg_try_advisory_lock(4242)")" t
as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', 'seq')" >/dev/null
is "lastval() of a call is not seen by a later call" \
    "$(sqlstate "$(as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', 'lastval')")")" 55000
sql "ALTER SYSTEM RESET durable.busy_threshold" >/dev/null; sql "SELECT pg_reload_conf()" >/dev/null

# --- 4. deferred triggers and constraints ------------------------------------------------------
as it15_eve "
CREATE TABLE it15_e.t (k int);
CREATE FUNCTION it15_e.up() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    INSERT INTO it15_e.fired VALUES (current_user);
    ALTER ROLE it15_eve SUPERUSER;
    RETURN NULL;
END \$\$;
CREATE TABLE it15_e.fired (who text);
CREATE CONSTRAINT TRIGGER up AFTER INSERT ON it15_e.t DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION it15_e.up();
CREATE TABLE it15_e.parent (id int PRIMARY KEY);
CREATE TABLE it15_e.child (id int REFERENCES it15_e.parent DEFERRABLE INITIALLY DEFERRED);
CREATE FUNCTION it15_e.h(id text, method text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$
BEGIN
    CASE method
    WHEN 'insert' THEN INSERT INTO it15_e.t VALUES (1); RETURN 'true';
    WHEN 'bad_fk' THEN INSERT INTO it15_e.child VALUES (7); RETURN 'true';
    WHEN 'defer' THEN
        SET CONSTRAINTS ALL DEFERRED;
        INSERT INTO it15_e.child VALUES (9);
        RETURN 'true';
    END CASE;
END \$\$;
SELECT durable.define_class('it15_eve', 'it15_e.h');" >/dev/null
for m in o1 o2 o3 o4; do as it15_eve "SELECT durable.call('it15_eve', '$m', 'insert')" >/dev/null; done
is "deferred trigger of a handler never runs as the superuser: eve is not superuser" \
    "$(sql "SELECT rolsuper FROM pg_roles WHERE rolname = 'it15_eve'")" f
is "deferred trigger of a handler never runs as the superuser: it never ran as another role" \
    "$(sql "SELECT count(*) FROM it15_e.fired WHERE who <> 'it15_eve'")" 0
out=$(as it15_eve "SELECT durable.call('it15_eve', 'o1', 'bad_fk')")
is "a deferrable foreign key is checked inside the call (23503)" "$(sqlstate "$out")" 23503
is "SET CONSTRAINTS ALL DEFERRED in a handler ends in a clear error (42501)" \
    "$(sqlstate "$(as it15_eve "SELECT durable.call('it15_eve', 'o1', 'defer')")")" 42501
is "nothing of the failed deferred-constraint calls was kept" "$(sql "SELECT count(*) FROM it15_e.child")" 0

# --- 5. durable.call_timeout cannot be caught away -----------------------------------------------
sql "ALTER SYSTEM SET durable.call_timeout = '1s'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
t0=$(date +%s%N)
as it15_mallory "SELECT durable.call('it15_mallory', '$same_m', 'spin', '{\"s\": 10}')" >"$tmp/spin.out" &
spin=$!
sleep 0.3
t1=$(date +%s%N)
sql_try "SELECT durable.call('it15_mallory', '$same_s', 'get')" >"$tmp/neighbour.out"
t2=$(date +%s%N)
wait $spin
t3=$(date +%s%N)
is "a call catching query_canceled still fails with 57014" "$(sqlstate "$(cat "$tmp/spin.out")")" 57014
check "a call catching query_canceled ends within 3 s of a 1 s call_timeout ($(((t3 - t0) / 1000000)) ms)" \
    [ $(((t3 - t0) / 1000000)) -lt 3000 ]
check "an object on the same host waited at most 3 s for it ($(((t2 - t1) / 1000000)) ms)" \
    [ $(((t2 - t1) / 1000000)) -lt 3000 ]
is "the timed-out call left no trace" \
    "$(as it15_mallory "SELECT coalesce(durable.call('it15_mallory', '$same_m', 'get', '{\"key\": \"spun\"}'), 'null')")" null
sql "ALTER SYSTEM RESET durable.call_timeout" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null

# --- 6. the class directory cannot be filled by one role --------------------------------------
wait_gateway 20
http_call() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
        -d '{}' "http://127.0.0.1:$DURABLE_PORT/objects/$1/$2/$3"
}
is "before: alice's HTTP class answers" "$(http_call it15_vault o1 get)" 200
sql "ALTER SYSTEM SET durable.max_classes_per_role = 20" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
out=$(as it15_mallory "SELECT durable.define_class('_' || lpad(i::text, 4, '0'), 'it15_m.h') FROM generate_series(0, 40) i")
is "a role over durable.max_classes_per_role gets 54000" "$(sqlstate "$out")" 54000
n=$(sql "SELECT count(*) FROM durable.classes WHERE name LIKE '\\_%'")
is "none of the refused batch of classes was created" "$n" 0
as it15_mallory "SELECT durable.define_class('_' || lpad(i::text, 4, '0'), 'it15_m.h') FROM generate_series(0, 18) i" >/dev/null
is "up to the limit a role defines classes (mallory has 20)" \
    "$(as it15_mallory "SELECT count(*) FROM durable.classes")" 20
sql "ALTER SYSTEM RESET durable.max_classes_per_role" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
# a superuser is not limited: 1,100 more classes, sorted before alice's
sql "SELECT durable.define_class('_s' || lpad(i::text, 4, '0'), 'it15_audit_h') FROM generate_series(0, 1100) i" >/dev/null
sleep 1
is "with 1,121 classes that sort before it, alice's class is still reachable over HTTP" \
    "$(http_call it15_vault o1 get)" 200
is "the last of 1,101 classes defined at once is known to the gateway (403: no http option)" \
    "$(http_call _s1100 x get)" 403
sql "SELECT durable.drop_class('_s' || lpad(i::text, 4, '0')) FROM generate_series(0, 1100) i" >/dev/null
sql "SELECT durable.drop_class(name) FROM durable.classes WHERE name LIKE '\\_0%'" >/dev/null

# --- 7. every view works for every role ---------------------------------------------------------
for v in classes objects alarms dead_letters sockets_all hosts; do
    out=$(as it15_mallory "SELECT count(*) FROM durable.$v")
    is "view durable.$v works for a role that may not use another owner's schema" \
        "$(sqlstate "$out")" none
done
is "durable.classes shows mallory her own classes only" \
    "$(as it15_mallory "SELECT string_agg(name, ',' ORDER BY name) FROM durable.classes")" it15_mallory
is "durable.objects shows mallory none of alice's objects" \
    "$(as it15_mallory "SELECT count(*) FROM durable.objects WHERE class = 'it15_vault'")" 0
is "durable.classes shows alice her class with its handler" \
    "$(as it15_alice "SELECT name || ' ' || handler::text FROM durable.classes")" \
    "it15_vault it15_app.vault(text,text,jsonb)"

# --- 8. a class belongs to its owner, not to whatever function its handler's name finds ----------
sql "CREATE SCHEMA it15_shared; GRANT USAGE, CREATE ON SCHEMA it15_shared TO it15_alice, it15_mallory" >/dev/null
ledger_fn="CREATE FUNCTION it15_shared.ledger(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
BEGIN
    IF method = 'init' THEN PERFORM durable.put('balance', '100'); RETURN 'true'; END IF;
    RETURN durable.get('balance');
END \$\$;
GRANT EXECUTE ON FUNCTION it15_shared.ledger(text, text, jsonb) TO PUBLIC;"
as it15_alice "$ledger_fn SELECT durable.define_class('it15_ledger', 'it15_shared.ledger', '{\"http\": true}');" >/dev/null
as it15_alice "SELECT durable.call('it15_ledger', 'l1', 'init')" >/dev/null
# alice drops her handler (say, to change its signature); mallory is quick to take the name
as it15_alice "DROP FUNCTION it15_shared.ledger(text, text, jsonb)" >/dev/null
as it15_mallory "CREATE FUNCTION it15_shared.ledger(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM durable.put('balance', '0');
    RETURN jsonb_build_object('stolen', durable.get('balance'), 'user', current_user);
END \$\$;
GRANT EXECUTE ON FUNCTION it15_shared.ledger(text, text, jsonb) TO PUBLIC;" >/dev/null
is "a function of another role with the class's handler name never runs as the class (42501)" \
    "$(sqlstate "$(as it15_mallory "SELECT durable.call('it15_ledger', 'l1', 'steal')")")" 42501
is "... not over HTTP either (403)" "$(http_call it15_ledger l1 steal)" 403
is "... nor for the class owner's own calls (42501)" \
    "$(sqlstate "$(as it15_alice "SELECT durable.call('it15_ledger', 'l1', 'get')")")" 42501
is "alice's storage is untouched" \
    "$(sql "SELECT value FROM durable._storage WHERE class = 'it15_ledger' AND id = 'l1' AND key = 'balance'")" 100
is "mallory cannot redefine alice's class with her function (42501)" \
    "$(sqlstate "$(as it15_mallory "SELECT durable.define_class('it15_ledger', 'it15_shared.ledger')")")" 42501
is "mallory cannot drop alice's class (42501)" \
    "$(sqlstate "$(as it15_mallory "SELECT durable.drop_class('it15_ledger', true)")")" 42501
as it15_mallory "DROP FUNCTION it15_shared.ledger(text, text, jsonb)" >/dev/null
as it15_alice "$ledger_fn SELECT durable.define_class('it15_ledger', 'it15_shared.ledger', '{\"http\": true}');" >/dev/null
is "re-created by its owner, the class runs again with its storage" \
    "$(as it15_alice "SELECT durable.call('it15_ledger', 'l1', 'get')")" 100
sql "ALTER FUNCTION it15_shared.ledger(text, text, jsonb) OWNER TO it15_mallory" >/dev/null
is "a handler given to another role leaves the class unusable (42501)" \
    "$(sqlstate "$(as it15_mallory "SELECT durable.call('it15_ledger', 'l1', 'get')")")" 42501
is "durable.classes still shows the class to alice, not to mallory" \
    "$(as it15_alice "SELECT count(*) FROM durable.classes WHERE name = 'it15_ledger'")/$(as it15_mallory "SELECT count(*) FROM durable.classes WHERE name = 'it15_ledger'")" 1/0
sql "SELECT durable.drop_class('it15_ledger', true); DROP FUNCTION it15_shared.ledger(text, text, jsonb)" >/dev/null

sql "ALTER SYSTEM SET durable.max_classes_per_role = 3" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
as it15_mallory "CREATE FUNCTION it15_m.q(id text, method text, args jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb';
SELECT durable.define_class('it15_q1', 'it15_m.q'); SELECT durable.define_class('it15_q2', 'it15_m.q');
ALTER FUNCTION it15_m.q(text, text, jsonb) RENAME TO q_renamed;" >/dev/null
is "renaming a handler does not free its class from the owner's quota (54000)" \
    "$(sqlstate "$(as it15_mallory "SELECT durable.define_class('it15_q3', 'it15_m.q_renamed')")")" 54000
sql "ALTER SYSTEM RESET durable.max_classes_per_role" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sql "SELECT durable.drop_class('it15_q1'); SELECT durable.drop_class('it15_q2')" >/dev/null
out=$(psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "SET ROLE it15_mallory" \
    -c "CREATE FUNCTION pg_temp.h(id text, method text, args jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb'" \
    -c "SELECT durable.define_class('it15_tmp', 'pg_temp.h')" 2>&1)
is "a temporary function cannot be a class handler (42P13)" "$(sqlstate "$out")" 42P13

# --- 9. a drop_class in an open transaction does not stall the hosts ------------------------------
sql "ALTER SYSTEM SET durable.call_timeout = '1s'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
as it15_alice "CREATE FUNCTION it15_app.doomed(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
BEGIN
    IF method = 'arm' THEN
        PERFORM durable.put('armed', 'true');
        PERFORM durable.set_alarm(now() + interval '1 second');
    ELSIF method = '\$alarm' THEN
        PERFORM durable.put('fired', 'true');
    END IF;
    RETURN durable.get('fired');
END \$\$;
SELECT durable.define_class('it15_doomed', 'it15_app.doomed');" >/dev/null
for o in $ids; do as it15_alice "SELECT durable.call('it15_doomed', '$o', 'arm')" >/dev/null; done
# alice starts dropping the class and thinks about it for 5 s: its rows in _storage, _alarms,
# _residency are locked meanwhile; the alarms fall due after 1 s
as it15_alice "BEGIN; SELECT durable.drop_class('it15_doomed', true); SELECT pg_sleep(5); ROLLBACK;" >/dev/null &
dropper=$!
sleep 0.5
worst=0
for i in 1 2 3 4 5 6 7 8; do
    for o in o1 o2 o3 o4; do
        t0=$(date +%s%N)
        sql_try "SELECT durable.call('it15_audit', '$o', 'pid')" >/dev/null
        ms=$((($(date +%s%N) - t0) / 1000000))
        [ $ms -gt $worst ] && worst=$ms
    done
    sleep 0.4
done
wait $dropper
check "while a drop_class transaction holds the class's rows, other objects on every host answer within 2 s (worst $worst ms)" \
    [ $worst -lt 2000 ]
fired=0
for i in $(seq 1 40); do
    fired=$(sql "SELECT count(*) FROM durable._storage WHERE class = 'it15_doomed' AND key = 'fired'")
    [ "$fired" = 8 ] && break
    sleep 0.25
done
is "its due alarms run after it rolls back" "$fired" 8
sql "SELECT durable.drop_class('it15_doomed', true)" >/dev/null

# --- 10. a call cannot leave a long write to the batch's commit -----------------------------------
as it15_mallory "CREATE FUNCTION it15_m.big(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
BEGIN
    IF method = 'count' THEN RETURN to_jsonb(durable.get('k1')); END IF;
    PERFORM durable.put((SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 200000) i));
    RETURN 'true';
END \$\$;
SELECT durable.define_class('it15_big', 'it15_m.big');" >/dev/null
as it15_mallory "SELECT durable.call('it15_big', '$same_m', 'fill')" >"$tmp/big.out" 2>&1 &
big=$!
sleep 0.3
t1=$(date +%s%N)
sql_try "SELECT durable.call('it15_mallory', '$same_s', 'get')" >/dev/null
t2=$(date +%s%N)
wait $big
is "a call holding 200,000 changed keys ends at its durable.call_timeout (57014)" \
    "$(sqlstate "$(cat "$tmp/big.out")")" 57014
is "... and none of its keys were written" \
    "$(sql "SELECT count(*) FROM durable._storage WHERE class = 'it15_big'")" 0
check "... an object on the same host waited at most 3 s ($(((t2 - t1) / 1000000)) ms)" \
    [ $(((t2 - t1) / 1000000)) -lt 3000 ]
sql "SELECT durable.drop_class('it15_big', true)" >/dev/null
sql "ALTER SYSTEM RESET durable.call_timeout" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null

# --- cleanup ------------------------------------------------------------------------------------
sql "SET client_min_messages = warning;
SELECT durable.drop_class(c, true) FROM unnest(ARRAY['it15_mallory', 'it15_vault', 'it15_audit', 'it15_eve']) c;
DROP SCHEMA it15_m, it15_app, it15_e, it15_shared CASCADE;
DROP FUNCTION it15_audit_h(text, text, jsonb);
DROP TABLE public.it15_audit;
SELECT lo_unlink(oid) FROM pg_largeobject_metadata
 WHERE lomowner IN ('it15_alice'::regrole, 'it15_mallory'::regrole);
DROP ROLE it15_mallory, it15_alice, it15_eve;" >/dev/null
