#!/usr/bin/env bash
# A bounded fuzz test of the gateway (issue 13): for FUZZ_SECONDS (25 by default, at most 60)
# test/ws/fuzz.mjs sends random bytes, mutated HTTP requests, mutated and random WebSocket frames
# and hostile JSON from several connections at once, while it checks that /healthz answers
# within a second.  Then: the gateway kept its pid, a normal client works, and the server log
# shows no crashed or restarted process.  The seed is printed; FUZZ_SEED repeats a run.
source "$TEST_ROOT/test/lib.sh"
set -u

DURABLE_PORT=${DURABLE_PORT:-$(sql "SHOW durable.port")}
export DURABLE_PORT PGHOST PGPORT PGDATABASE PGDATA
[ -n "${PGUSER:-}" ] && export PGUSER
seconds=${FUZZ_SECONDS:-25}
[ "$seconds" -le 60 ] || seconds=60
seed=${FUZZ_SEED:-$((RANDOM * 32768 + RANDOM))}

sql "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_durable_objects" >/dev/null
sql "CREATE OR REPLACE FUNCTION it44(id text, method text, args jsonb) RETURNS jsonb
     LANGUAGE plpgsql AS \$\$
     BEGIN
         IF method = '\$message' THEN
             PERFORM durable.put('messages', to_jsonb(coalesce(durable.get('messages')::int, 0) + 1));
         END IF;
         RETURN args;
     END \$\$;
     SELECT durable.define_class('it44', 'it44', '{\"websocket\": true, \"http\": true}')" >/dev/null
wait_gateway 20 || not_ok "the gateway answers before the fuzzing"
sleep 1    # the class directory reaches the gateway

log="$PGDATA/../server.log"
from=$(stat -c %s "$log")
cd "$TEST_ROOT/test/ws" || exit 1
timeout $((seconds + 60)) node fuzz.mjs "$seconds" "$seed" || not_ok "fuzz.mjs ran to its end (status $?)"
cd - >/dev/null || exit 1
crashes=$(tail -c +$((from + 1)) "$log" | grep -cE "terminated by signal|was terminated|PANIC|TRAP|exited with exit code|server process")
check "fuzz: no process crashed or restarted (server log: $crashes lines)" [ "$crashes" = 0 ]
