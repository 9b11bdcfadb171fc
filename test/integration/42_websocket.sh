#!/usr/bin/env bash
# The object routes of the gateway with real clients: WebSocket upgrades (404/403/426/503,
# Origin), $connect/$message/$close, call frames, bad frames, G3 and G5 on sockets, a chat
# room, tags/exclude/socket_send/socket_close/attachments, G7 hibernation and host restarts,
# slow consumers, auto_response, abrupt disconnects, HTTP POST calls and the frame metrics.
#
# The clients are node tests in test/ws/*.test.mjs (node:test and the npm package ws, see
# test/ws/package.json); this script defines their classes, runs them one file at a time and
# turns node's TAP output into the runner's "ok - ..." / "not ok - ..." lines.  WS_TESTS (a
# glob, default *) picks some of the files.
source "$TEST_ROOT/test/lib.sh"
set -u

DURABLE_PORT=${DURABLE_PORT:-$(sql "SHOW durable.port")}
export DURABLE_PORT PGHOST PGPORT PGDATABASE PGDATA TEST_ROOT
[ -n "${PGUSER:-}" ] && export PGUSER

# settings the node tests change (each test restores them; this is the safety net)
settings=(durable.allowed_origins durable.max_sockets durable.max_message_bytes
          durable.socket_buffer_bytes durable.idle_timeout durable.client_area_bytes
          durable.max_receive_bytes durable.slow_consumer_timeout durable.message_area_bytes)
finish() {
    local s
    # (a test that crashed a worker makes the cluster restart: wait for it first)
    wait_for "SELECT true" 30
    for s in "${settings[@]}"; do
        sql "ALTER SYSTEM RESET $s" >/dev/null 2>&1
    done
    sql "SELECT pg_reload_conf()" >/dev/null 2>&1
    wait_hosts 30 || echo "# warning: the host workers are not all running"
    wait_gateway 30 || echo "# warning: the gateway does not answer"
    rm -f "${out:-}"
}
trap finish EXIT

sql "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_durable_objects" >/dev/null

# it42_room: the WebSocket class most tests use.  Storage keys written by the lifecycle
# methods let the tests see what the system passed to them.
sql "
SET client_min_messages = warning;
CREATE OR REPLACE FUNCTION it42_room(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
DECLARE
    q jsonb := args->'query';
    n bigint;
    r jsonb;
BEGIN
    CASE method
    WHEN '\$connect' THEN
        PERFORM durable.put('connect:' || coalesce(q->>'name', ''), args);
        IF q->>'refuse' IS NOT NULL THEN
            RETURN jsonb_build_object('accept', false, 'code', (q->>'refuse')::int,
                                      'reason', coalesce(q->>'reason', 'refused'));
        END IF;
        IF q->>'fail' IS NOT NULL THEN
            RAISE EXCEPTION 'connect failed on purpose' USING ERRCODE = '22023';
        END IF;
        IF q->>'hello' IS NOT NULL THEN
            PERFORM durable.socket_send(durable.socket(),
                jsonb_build_object('hello', q->>'hello', 'socket', durable.socket()));
        END IF;
        IF q->>'sleep' IS NOT NULL THEN
            PERFORM pg_sleep((q->>'sleep')::float8);
        END IF;
        IF q->>'small' IS NOT NULL THEN
            RETURN NULL;    -- accept, no tags, no attachment
        END IF;
        -- (the padding keeps the args of the close call over 127 bytes: see 13_close_args.test.mjs)
        RETURN jsonb_build_object('accept', true,
            'tags', CASE WHEN q->>'tags' IS NULL THEN '[]'::jsonb
                         ELSE to_jsonb(string_to_array(q->>'tags', ',')) END,
            'attachment', jsonb_build_object('name', q->>'name', 'pad', repeat('.', 160)));
    WHEN '\$message' THEN
        n := coalesce(durable.get('messages')::bigint, 0) + 1;
        PERFORM durable.put('messages', to_jsonb(n));
        PERFORM durable.put('message:' || n, args || jsonb_build_object('socket', durable.socket()));
        RETURN NULL;
    WHEN '\$close' THEN
        PERFORM durable.put('close:' || (args->>'socket'), args);
        RETURN NULL;
    WHEN 'echo' THEN
        RETURN args;
    WHEN 'whoami' THEN
        RETURN jsonb_build_object('id', id, 'socket', durable.socket());
    WHEN 'fail' THEN
        RAISE EXCEPTION 'it42 failed: %', coalesce(args->>'why', 'no reason')
            USING ERRCODE = coalesce(args->>'code', '22023');
    WHEN 'get' THEN
        RETURN durable.get(args->>'key');
    WHEN 'keys' THEN
        SELECT jsonb_object_agg(key, value) INTO r FROM durable.list(prefix => args->>'prefix');
        RETURN coalesce(r, '{}');
    WHEN 'say' THEN
        PERFORM durable.broadcast(jsonb_build_object('from', args->'from', 'n', args->'n'));
        RETURN to_jsonb(true);
    WHEN 'bcast' THEN
        PERFORM durable.broadcast(args->'msg', args->>'tag', (args->>'exclude')::bigint);
        RETURN NULL;
    WHEN 'bcast_fail' THEN
        PERFORM durable.broadcast(args->'msg');
        IF durable.socket() IS NOT NULL THEN
            PERFORM durable.socket_send(durable.socket(), args->'msg');
        END IF;
        RAISE EXCEPTION 'after broadcast' USING ERRCODE = '22023';
    WHEN 'bcast_commit_fail' THEN
        -- fails only at commit when a session holds a row lock on its storage key (the
        -- host writes held storage values just before it commits)
        PERFORM durable.broadcast(args->'msg');
        PERFORM durable.put('commit_fail', coalesce(args->'n', '0'));
        RETURN to_jsonb('written'::text);
    WHEN 'bcast_sleep' THEN
        PERFORM durable.broadcast(args->'msg');
        PERFORM pg_sleep((args->>'sleep')::float8);
        RETURN jsonb_build_object('slept', args->'sleep');
    WHEN 'bcast_big' THEN
        FOR i IN 1 .. (args->>'count')::int LOOP
            PERFORM durable.broadcast(jsonb_build_object('i', i, 'pad', repeat('x', (args->>'bytes')::int)));
        END LOOP;
        RETURN to_jsonb((args->>'count')::int);
    WHEN 'send_to' THEN
        PERFORM durable.socket_send((args->>'socket')::bigint, args->'msg');
        RETURN NULL;
    WHEN 'close' THEN
        PERFORM durable.socket_close((args->>'socket')::bigint, (args->>'code')::int, args->>'reason');
        PERFORM durable.put('closed_by_call', args);
        RETURN NULL;
    WHEN 'sockets' THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('socket', s.socket, 'tags', to_jsonb(s.tags),
                                                     'attachment', s.attachment) ORDER BY s.socket), '[]')
          INTO r FROM durable.sockets(args->>'tag') s;
        RETURN r;
    WHEN 'attach' THEN
        PERFORM durable.set_attachment(coalesce((args->>'socket')::bigint, durable.socket()), args->'attachment');
        RETURN NULL;
    WHEN 'inc' THEN
        n := coalesce(durable.get('n')::bigint, 0) + 1;
        PERFORM durable.put('n', to_jsonb(n));
        PERFORM durable.broadcast(jsonb_build_object('n', n));
        RETURN to_jsonb(n);
    WHEN 'sleep' THEN
        PERFORM pg_sleep((args->>'seconds')::float8);
        RETURN jsonb_build_object('slept', args->'seconds', 'bytes', length(args::text));
    ELSE
        RAISE EXCEPTION 'it42_room has no method %', method USING ERRCODE = '22023';
    END CASE;
END
\$\$;
CREATE OR REPLACE FUNCTION it42_plain(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE sql AS 'SELECT args';
CREATE OR REPLACE FUNCTION it42_http(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
BEGIN
    CASE method
    WHEN 'echo' THEN
        RETURN jsonb_build_object('id', id, 'args', args);
    WHEN 'inc' THEN
        PERFORM durable.put('n', to_jsonb(coalesce(durable.get('n')::bigint, 0) + 1));
        RETURN durable.get('n');
    WHEN 'bad' THEN
        RAISE EXCEPTION 'bad argument %', args->>'x' USING ERRCODE = '22023';
    WHEN 'boom' THEN
        RAISE EXCEPTION 'internal trouble' USING ERRCODE = 'XX000';
    ELSE
        RAISE EXCEPTION 'it42_http has no method %', method USING ERRCODE = '22023';
    END CASE;
END
\$\$;
-- it42_auto counts every run of its handler, so a test can tell that none happened
CREATE OR REPLACE FUNCTION it42_auto(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM durable.put('runs', to_jsonb(coalesce(durable.get('runs')::bigint, 0) + 1));
    CASE method
    WHEN '\$connect' THEN
        RETURN jsonb_build_object('attachment', jsonb_build_object('pad', repeat('.', 160)));
    WHEN '\$message' THEN
        PERFORM durable.put('last_message', args);
        RETURN NULL;
    WHEN 'get' THEN
        RETURN durable.get(args->>'key');
    ELSE
        RETURN args;
    END CASE;
END
\$\$;
-- it42_stream: event streams (20_resume, 21_binary): broadcasts JSON or bytes, echoes binary
-- messages back as bytes, and can fail after broadcasting
CREATE OR REPLACE FUNCTION it42_stream(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
DECLARE
    q jsonb := args->'query';
BEGIN
    CASE method
    WHEN '\$connect' THEN
        PERFORM durable.put('connect', args);
        IF q->>'hello' IS NOT NULL THEN
            PERFORM durable.broadcast(jsonb_build_object('hello', q->>'hello'));
        END IF;
        RETURN jsonb_build_object('accept', true, 'tags',
            CASE WHEN q->>'tags' IS NULL THEN '[]'::jsonb ELSE to_jsonb(string_to_array(q->>'tags', ',')) END);
    WHEN '\$message' THEN
        IF args ? 'binary' THEN
            PERFORM durable.socket_send(durable.socket(), decode(args->>'binary', 'base64'));
        ELSE
            PERFORM durable.put('message', args);
        END IF;
        RETURN NULL;
    WHEN 'emit' THEN
        FOR i IN 1 .. coalesce((args->>'count')::int, 1) LOOP
            PERFORM durable.broadcast(jsonb_build_object('n', (args->>'from')::int + i - 1), args->>'tag');
        END LOOP;
        RETURN NULL;
    WHEN 'emit_bytes' THEN
        PERFORM durable.broadcast(decode(args->>'b64', 'base64'), args->>'tag');
        RETURN NULL;
    WHEN 'emit_fail' THEN
        PERFORM durable.broadcast(jsonb_build_object('doomed', true));
        RAISE EXCEPTION 'fails after a broadcast' USING ERRCODE = '22023';
    WHEN 'emit_caught' THEN
        BEGIN
            PERFORM durable.broadcast(jsonb_build_object('caught', true));
            RAISE EXCEPTION 'rolled back' USING ERRCODE = '22023';
        EXCEPTION WHEN invalid_parameter_value THEN
            NULL;
        END;
        PERFORM durable.broadcast(jsonb_build_object('after', true));
        RETURN NULL;
    WHEN 'send_self' THEN
        PERFORM durable.socket_send(durable.socket(), args->'msg');
        RETURN NULL;
    WHEN 'nap' THEN
        PERFORM pg_sleep((args->>'s')::float8);
        RETURN NULL;
    WHEN 'get' THEN
        RETURN durable.get(args->>'key');
    ELSE
        RETURN args;
    END CASE;
END
\$\$;
SELECT durable.define_class('it42_stream', 'it42_stream', '{\"websocket\": true, \"retain\": {\"events\": 10000}}');
SELECT durable.define_class('it42_stream5', 'it42_stream', '{\"websocket\": true, \"retain\": {\"events\": 5}}');
SELECT durable.define_class('it42_room', 'it42_room', '{\"websocket\": true}');
SELECT durable.define_class('it42_plain', 'it42_plain');
SELECT durable.define_class('it42_http', 'it42_http', '{\"http\": true}');
SELECT durable.define_class('it42_auto', 'it42_auto',
    '{\"websocket\": true, \"auto_response\": {\"request\": \"ping\", \"response\": \"pong\"}}');
" >/dev/null || { not_ok "it42 classes are defined"; exit 1; }

wait_gateway 20 || not_ok "gateway answers /healthz before the WebSocket tests"

# node's TAP: top-level results are "ok N - name" / "not ok N - name" at column 0, each followed
# by an indented YAML block; subtests are indented.  Print the results as the runner's lines,
# the errors of failed tests at the end (the runner shows the last lines of a failing script),
# and drop the rest of the noise.
out=$(mktemp)
cd "$TEST_ROOT" || exit 1
# the floods open 1,500 sockets at once
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if node --test-concurrency=1 -e 0 >/dev/null 2>&1; then
    timeout -k 5 300 node --test --test-concurrency=1 --test-reporter=tap test/ws/${WS_TESTS:-*}.test.mjs >"$out" 2>&1
    rc=$?
else
    # an older node without --test-concurrency: one file after the other
    rc=0
    for f in test/ws/${WS_TESTS:-*}.test.mjs; do
        timeout -k 5 60 node --test --test-reporter=tap "$f" >>"$out" 2>&1 || rc=$?
    done
fi
awk '
    /^ok [0-9]+ - /     { sub(/^ok [0-9]+ - /, "");     print "ok - " $0; yaml = 1; next }
    /^not ok [0-9]+ - / { sub(/^not ok [0-9]+ - /, ""); print "not ok - " $0; yaml = 2; skip = 0; n = 0
                          fails = fails "\n# --- " $0; next }
    yaml && /^  \.\.\.$/ { yaml = 0; next }
    yaml == 2 {
        if ($0 ~ /^  [A-Za-z_]+:/) skip = ($0 ~ /^  (stack|duration_ms|location|failureType|type):/)
        if (!skip && $0 !~ /^  ---$/ && n < 30) { fails = fails "\n# " $0; n++ }
        next
    }
    yaml { next }
    /^ / || /^# Subtest: / || /^TAP version/ || /^1\.\.[0-9]+$/ { next }
    /^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) / { summary = summary "\n" $0; next }
    { print "# " $0 }
    END { if (fails != "") print "# failures:" fails; if (summary != "") print substr(summary, 2) }
' "$out"
n=$(grep -cE '^(not )?ok [0-9]+ - ' "$out")
if [ "$n" = 0 ]; then
    not_ok "node WebSocket tests ran" "status $rc, no results"
elif [ $rc = 124 ]; then
    not_ok "node WebSocket tests finished within the time limit"
fi
