#!/usr/bin/env bash
# G7 hibernation: an idle object leaves memory (durable.objects, durable.hosts and the
# host's storage cache forget it); its next call loads it again with all its state.  That
# its WebSockets stay open while it hibernates is tested over WebSockets (test/ws,
# 07_hibernation.test.mjs: "G7 hibernation: ...").
source "$TEST_ROOT/test/lib.sh"
set -u

sql "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_durable_objects" >/dev/null
sql "CREATE OR REPLACE FUNCTION g7_counter(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
BEGIN
    IF method = 'inc' THEN
        PERFORM durable.put('n', to_jsonb(coalesce(durable.get('n')::int, 0) + 1));
        PERFORM durable.put('big', to_jsonb(repeat('x', 100)));
    END IF;
    RETURN durable.get('n');
END
\$\$;
SELECT durable.define_class('g7_counter', 'g7_counter');" >/dev/null
obj="hib-$(date +%s%N)"
in_memory() { sql "SELECT coalesce((SELECT in_memory FROM durable.objects WHERE class = 'g7_counter' AND id = '$obj'), false)"; }

for i in 1 2 3; do sql "SELECT durable.call('g7_counter', '$obj', 'inc')" >/dev/null; done
check "G7: a called object is in memory" wait_for \
    "SELECT in_memory FROM durable.objects WHERE class = 'g7_counter' AND id = '$obj'" 10
# only now a short idle_timeout: with it from the start the object could leave memory before
# the hosts' once-a-second residency rows showed it there
sql "ALTER SYSTEM SET durable.idle_timeout = '1s'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
check "G7: an idle object leaves memory after durable.idle_timeout" wait_for \
    "SELECT NOT in_memory FROM durable.objects WHERE class = 'g7_counter' AND id = '$obj'" 15
check "G7: the hosts hold no object then" wait_for "SELECT coalesce(sum(objects), 0) = 0 FROM durable.hosts" 15
sql "ALTER SYSTEM RESET durable.idle_timeout" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
# storage written behind the host's back while it hibernates is what the next call sees:
# the host kept no copy of the hibernated object's storage
sql "UPDATE durable._storage SET value = '41' WHERE class = 'g7_counter' AND id = '$obj' AND key = 'n'" >/dev/null
check "G7: its next call loads it again, with its stored state (n=42)" \
    [ "$(sql "SELECT durable.call('g7_counter', '$obj', 'inc')")" = 42 ]
check "G7: ... and it is in memory again" wait_for \
    "SELECT in_memory FROM durable.objects WHERE class = 'g7_counter' AND id = '$obj'" 10

sql "SELECT durable.drop_class('g7_counter', true); DROP FUNCTION g7_counter(text, text, jsonb)" >/dev/null
