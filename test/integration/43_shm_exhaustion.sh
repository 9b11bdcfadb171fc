#!/usr/bin/env bash
# A full /dev/shm affects one client, not the gateway (issue 13, finding 7).
#
# The shared message area grows by DSM segments in /dev/shm, and when the operating system
# refuses one, PostgreSQL raises an ERROR that DSA_ALLOC_NO_OOM does not cover; inside an lws
# callback that used to end the gateway, every socket with it.  Here a second cluster runs in a
# private mount namespace whose /dev/shm is a 24 MB tmpfs: `unshare -Urm` (an unprivileged user
# namespace, mapped to this user; the server then runs as the same user id again in a nested one,
# as PostgreSQL refuses to run as root).  One client whose object is busy sends 40 frames of
# 900 kB (its share, durable.client_area_bytes, set high so that /dev/shm fills first): it gets
# Close 1013, while another client keeps working, the gateway keeps its pid, no process crashes,
# and the server log says what happened.  Where user namespaces are not allowed the test says
# so and is skipped.
source "$TEST_ROOT/test/lib.sh"
set -u

if ! unshare -Urm true 2>/dev/null; then
    ok "/dev/shm exhaustion: skipped (unprivileged user namespaces are not allowed here) # SKIP"
    exit 0
fi

dir=$(mktemp -d)
cleanup() {
    [ -f "$dir/data/postmaster.pid" ] && pg_ctl -D "$dir/data" -w -t 30 -m immediate stop >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT

(
    cluster_init "$dir" $((PGPORT + 7)) "durable.client_area_bytes = '256MB'" >/dev/null || exit 1
    # the postmaster (and so every child) lives in the namespace with the small /dev/shm
    unshare -Urm sh -c "mount -t tmpfs -o size=24m,mode=1777 tmpfs /dev/shm &&
        exec unshare --map-user=$(id -u) --map-group=$(id -g) \
            '$PGBIN/pg_ctl' -D '$PGDATA' -l '$dir/server.log' -w -t 60 start" >/dev/null || {
        not_ok "the cluster with a 24 MB /dev/shm starts" "$(tail -5 "$dir/server.log" 2>/dev/null)"
        exit 0
    }
    wait_hosts 30
    sql "CREATE EXTENSION pg_durable_objects" >/dev/null
    sql "CREATE FUNCTION it43(id text, method text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$
         BEGIN
             IF method = 'sleep' THEN PERFORM pg_sleep((args->>'s')::float8); END IF;
             RETURN jsonb_build_object('method', method, 'bytes', length(args::text));
         END \$\$;
         SELECT durable.define_class('it43', 'it43', '{\"websocket\": true}')" >/dev/null
    wait_gateway 30 || not_ok "the gateway of the small-/dev/shm cluster answers"
    gw=$(pgrep -P "$(head -1 "$PGDATA/postmaster.pid")" -f 'pg_durable_objects gateway' | head -1)
    check "the cluster runs with a 24 MB /dev/shm" grep -q "^tmpfs /dev/shm tmpfs .*size=24576k" "/proc/$gw/mounts"

    cd "$TEST_ROOT/test/ws" || exit 1
    DURABLE_PORT=$DURABLE_PORT timeout 120 node --input-type=module -e "
        import { connect, sleep } from './helpers.mjs';
        const line = (ok, name) => console.log((ok ? 'ok - ' : 'not ok - ') + name);
        const busy = await connect('it43', 'hog');
        const hog = await connect('it43', 'hog');
        const other = await connect('it43', 'other');
        const slept = busy.call('sleep', { s: 6 }, { timeout: 60000 });
        await sleep(100);
        const pad = 'x'.repeat(900 * 1024);
        for (let i = 0; i < 40; i++) hog.send({ type: 'call', id: i, method: 'echo', args: { i, pad } });
        const closed = await hog.waitClose(20000).catch(() => null);
        line(closed?.code === 1013, 'the client that filled /dev/shm is closed with 1013 (got ' +
            (closed ? closed.code + ' ' + closed.reason : 'no close') + ')');
        let answered = 0;
        for (let i = 0; i < 5; i++) {
            const r = await other.call('echo', { i }, { timeout: 10000 }).catch(() => null);
            if (r?.type === 'reply') answered++;
        }
        line(answered === 5 && other.closed === null, 'another client keeps working meanwhile (' + answered + ' of 5)');
        line((await slept).type === 'reply' && busy.closed === null, 'the busy call ends normally');
        const late = await connect('it43', 'late').then((c) => c.call('echo', {}), () => null);
        line(late?.type === 'reply', 'a new client is served afterwards');
        process.exit(0);
    " 2>&1
    cd - >/dev/null || exit 1
    gw2=$(pgrep -P "$(head -1 "$PGDATA/postmaster.pid")" -f 'pg_durable_objects gateway' | head -1)
    check "the gateway kept its pid ($gw, now $gw2)" test -n "$gw" -a "$gw" = "$gw2"
    check "the server log says the shared memory could not grow, and that the gateway went on" \
        grep -q "gateway: storing a call in the message area: could not resize shared memory" "$dir/server.log"
    crashes=$(grep -cE "terminated by signal|was terminated|PANIC|exited with exit code" "$dir/server.log")
    check "no process crashed or exited ($crashes lines)" [ "$crashes" = 0 ]
    pg_ctl -D "$PGDATA" -w -t 30 -m fast stop >/dev/null 2>&1
)
