#!/usr/bin/env bash
# The example pages in a real browser: Debian's headless chromium driven by playwright-core
# (test/browser, installed by test/install-deps.sh).  Serves examples/web and the JavaScript
# client from the cluster's durable.static_dir under /examples/, loads the examples if 60 has
# not, then test/browser/browser.test.mjs: two editors typing at once show the same text, two
# windows are two participants, an editor resumes after a gateway restart without loading the
# text again, the dashboard sees a reading and an alert arrive, the game page steers a dot, and
# the client in a page stops on an unknown class.  Screenshots of the pages are kept in
# $TEST_ROOT/results/browser-*.png.
source "$TEST_ROOT/test/lib.sh"
set -u

DURABLE_PORT=${DURABLE_PORT:-$(sql "SHOW durable.port")}
static=${DURABLE_STATIC:-$(sql "SHOW durable.static_dir")}
export DURABLE_PORT PGHOST PGPORT PGDATABASE PGDATA TEST_ROOT
[ -n "${PGUSER:-}" ] && export PGUSER
chromium=${CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$chromium" ]; then
    not_ok "chromium is installed at $chromium" "run test/install-deps.sh as root"
    exit 0
fi
if [ ! -d "$TEST_ROOT/test/browser/node_modules/playwright-core" ]; then
    not_ok "playwright-core is installed in test/browser" "run test/install-deps.sh as root"
    exit 0
fi
if [ -z "$static" ] || [ ! -d "$static" ]; then
    not_ok "durable.static_dir is a folder" "got '$static'"
    exit 0
fi

# the pages and the client they import, as make demo serves them (there at /, here at /examples/)
mkdir -p "$static/examples"
cp "$TEST_ROOT"/examples/web/* "$static/examples/"
cp "$TEST_ROOT/clients/js/durable.js" "$static/examples/"

sql "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_durable_objects" >/dev/null
if [ "$(sql "SELECT count(*) FROM durable.classes WHERE name IN ('collab_doc', 'iot_hub', 'game')")" != 3 ]; then
    for f in collab_doc iot_hub game; do
        psql -X -q -v ON_ERROR_STOP=1 -c 'SET client_min_messages = warning' \
            -f "$TEST_ROOT/examples/$f.sql" >/dev/null || not_ok "examples/$f.sql loads"
    done
    sleep 1.5   # the class directory reaches the gateway
fi
wait_gateway 30 >/dev/null || not_ok "the gateway answers /healthz"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$DURABLE_PORT/examples/doc.html")
check "the gateway serves the pages from durable.static_dir (got $code)" [ "$code" = 200 ]

mkdir -p "$TEST_ROOT/results"
export CHROMIUM=$chromium EXAMPLES_PATH=/examples
cd "$TEST_ROOT/test/browser" || exit 1
timeout 300 node --test --test-reporter=tap browser.test.mjs 2>&1 |
    sed -n 's/^ok [0-9]* - /ok - /p; s/^not ok [0-9]* - /not ok - /p; s/^\(# .*\)$/\1/p; s/^\(  *\(error\|expected\|actual\|location\|stack\|message\):.*\)$/\1/p' |
    sed 's/^\(# Subtest: .*\)$//' | grep -v '^$'
status=${PIPESTATUS[0]}
[ "$status" = 0 ] || not_ok "browser tests exited with status $status"
n=$(ls "$TEST_ROOT"/results/browser-*.png 2>/dev/null | wc -l)
check "screenshots kept as test artifacts ($n in $TEST_ROOT/results)" [ "$n" -ge 4 ]
