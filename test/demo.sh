#!/usr/bin/env bash
# test/demo.sh — what `make demo` runs: a throw-away cluster with the extension, the three example
# apps and their web pages on http://127.0.0.1:7432/, an IoT simulator feeding the hubs, until
# Ctrl-C.  As root it installs what is missing, builds and installs first, then runs the cluster
# as the unprivileged `postgres` OS user.
#
# Stopped by Ctrl-C or by SIGTERM to it or to its whole process group (as `timeout`, `docker
# stop` or a supervisor do), it stops the cluster and removes its scratch folder.  pg_ctl starts
# the postmaster in a session of its own, so only this script's clean-up can stop it: the
# clean-up ignores further signals, and as root the script becomes the postgres process itself
# (setpriv, not runuser, whose parent would SIGKILL it two seconds into its clean-up).
#
#   DEMO_PORT          PostgreSQL port (Unix socket only, in the scratch folder; default 5488)
#   DEMO_GATEWAY_PORT  the pages and the WebSockets (default 7432)
#   DEMO_SIMULATOR=0   no IoT simulator
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
port=${DEMO_PORT:-5488}
gw=${DEMO_GATEWAY_PORT:-7432}

if [ "$(id -u)" = 0 ]; then
    test/install-deps.sh
    make -s -j2 >/dev/null
    make -s install >/dev/null
    dir=$(mktemp -d /tmp/durable-demo.XXXXXX)
    trap 'rm -rf "$dir"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    cp -r examples test clients "$dir/"
    chmod 755 "$dir"
    chown -R postgres: "$dir"
    trap - EXIT INT TERM
    exec setpriv --reuid=postgres --regid=postgres --init-groups --reset-env \
        env DEMO_DIR="$dir" DEMO_PORT="$port" DEMO_GATEWAY_PORT="$gw" \
        DEMO_SIMULATOR="${DEMO_SIMULATOR:-1}" DEMO_AS_ROOT=1 "$dir/test/demo.sh"
fi

dir=${DEMO_DIR:-$(mktemp -d /tmp/durable-demo.XXXXXX)}
sim=
cleanup() {
    trap - EXIT
    trap '' INT TERM        # a second Ctrl-C or SIGTERM must not cut the clean-up short
    set +e
    echo
    echo "stopping the demo"
    [ -n "$sim" ] && kill "$sim" 2>/dev/null && wait "$sim" 2>/dev/null
    # our postmaster, if it was started (also while pg_ctl start was still waiting for it)
    [ -f "$dir/cluster/data/postmaster.pid" ] &&
        pg_ctl -D "$dir/cluster/data" -w -t 60 -m fast stop >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ -d "$dir/examples" ] || cp -r "$here/examples" "$here/test" "$here/clients" "$dir/"
source "$dir/test/lib.sh"

if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$gw/"; then
    echo "port $gw is in use: stop what listens there, or set DEMO_GATEWAY_PORT" >&2
    exit 1
fi

cluster_init "$dir/cluster" "$port" "durable.port = $gw" "log_min_messages = warning"
# the pages and the JavaScript client they import, served at / by the gateway
cp -r "$dir/examples/web/." "$DURABLE_STATIC/"
cp "$dir/clients/js/durable.js" "$DURABLE_STATIC/"
cluster_start
wait_hosts 30 || echo "warning: the host workers did not all start" >&2
sql "SET client_min_messages = warning; CREATE EXTENSION pg_durable_objects" >/dev/null
for f in counter collab_doc iot_hub game; do
    psql -X -q -v ON_ERROR_STOP=1 -c 'SET client_min_messages = warning' -f "$dir/examples/$f.sql" >/dev/null
done
sql "SELECT durable.call('counter', 'demo', 'increment')" >/dev/null
sql "SELECT durable.call('collab_doc', 'welcome', 'insert', jsonb_build_object('pos', 0, 'text',
    E'Welcome! This text lives in a durable object inside PostgreSQL.\n\nOpen this page in a second window and type in both.\n'))" >/dev/null
wait_gateway 30 || { echo "the gateway did not start; see $dir/cluster/server.log" >&2; tail -20 "$dir/cluster/server.log" >&2; exit 1; }

if [ "${DEMO_SIMULATOR:-1}" != 0 ]; then
    if command -v node >/dev/null 2>&1; then
        node "$dir/examples/iot_simulator.mjs" --url "http://127.0.0.1:$gw" >"$dir/simulator.log" 2>&1 &
        sim=$!
    else
        echo "node is not installed: no IoT simulator (readings can still be sent by SQL or curl)" >&2
    fi
fi

if [ -n "${DEMO_AS_ROOT:-}" ]; then
    psql_line="runuser -u postgres -- psql -h $PGHOST -p $port postgres"
else
    psql_line="psql -h $PGHOST -p $port postgres"
fi
cat <<MSG

pg_durable_objects demo is running.

  Web app          http://127.0.0.1:$gw/
    document       http://127.0.0.1:$gw/doc.html?doc=welcome      (open it in two windows)
    IoT dashboard  http://127.0.0.1:$gw/dashboard.html?site=plant-1  (fed by the simulator${sim:+, pid $sim})
    game           http://127.0.0.1:$gw/game.html?room=arena        (arrow keys; open two windows)
  Gateway          http://127.0.0.1:$gw/healthz  http://127.0.0.1:$gw/metrics
  Your pages       $DURABLE_STATIC  (served at /)

  SQL              $psql_line

    SELECT durable.call('collab_doc', 'welcome', 'get');
    SELECT durable.call('iot_hub', 'plant-1', 'reading', '{"device": "temp-1", "value": 99}');
    SELECT site, device, count(*) FROM iot_alerts
     WHERE at > now() - interval '1 hour' GROUP BY 1, 2 ORDER BY 3 DESC;
    SELECT class, id, keys, sockets FROM durable.objects;

Press Ctrl-C to stop (the cluster and $dir are removed).
MSG
while true; do
    sleep 1 &
    wait $! || true
    if [ -n "$sim" ] && ! kill -0 "$sim" 2>/dev/null; then
        echo "the IoT simulator stopped; see the end of its log:" >&2
        tail -5 "$dir/simulator.log" >&2 || true
        sim=
    fi
done
