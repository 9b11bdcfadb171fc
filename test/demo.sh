#!/usr/bin/env bash
# test/demo.sh — what `make demo` runs: a throw-away cluster with the extension and the
# examples, until Ctrl-C.  As root it installs what is missing, builds and installs first,
# then runs the cluster as the unprivileged `postgres` OS user.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
port=${DEMO_PORT:-5488}

if [ "$(id -u)" = 0 ]; then
    test/install-deps.sh
    make -s -j2 >/dev/null
    make -s install >/dev/null
    dir=$(mktemp -d /tmp/durable-demo.XXXXXX)
    cp -r examples test "$dir/"
    chmod 755 "$dir"
    chown -R postgres: "$dir"
    exec runuser -u postgres -- env DEMO_DIR="$dir" DEMO_PORT="$port" "$dir/test/demo.sh"
fi

dir=${DEMO_DIR:-$(mktemp -d /tmp/durable-demo.XXXXXX)}
[ -d "$dir/examples" ] || cp -r "$here/examples" "$here/test" "$dir/"
source "$dir/test/lib.sh"
cluster_init "$dir/cluster" "$port" "durable.port = ${DEMO_GATEWAY_PORT:-7432}"
cluster_start
trap 'echo; echo "stopping the demo cluster"; cluster_stop; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM
wait_hosts 30
sql "CREATE EXTENSION pg_durable_objects" >/dev/null
for f in "$dir"/examples/*.sql; do
    psql -X -q -v ON_ERROR_STOP=1 -f "$f" >/dev/null
done
sql "SELECT durable.call('counter', 'demo', 'increment')" >/dev/null

cat <<MSG

pg_durable_objects demo is running (PostgreSQL on port $port, socket in $PGHOST;
gateway on http://127.0.0.1:$DURABLE_PORT/ with /healthz and /metrics).
Connect with:

    runuser -u postgres -- psql -h $PGHOST -p $port postgres

and try:

    SELECT durable.call('counter', 'demo', 'increment');
    SELECT durable.call('counter', 'demo', 'increment', '{"by": 10}');
    SELECT * FROM durable.objects;
    SELECT * FROM durable.hosts;

Press Ctrl-C to stop.
MSG
while true; do sleep 3600; done
