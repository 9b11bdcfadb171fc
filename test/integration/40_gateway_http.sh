#!/usr/bin/env bash
# The gateway's HTTP side: /healthz, /metrics, static files of durable.static_dir, 404, 405,
# 403/404 on /objects for classes without the options, garbage on the socket, SIGHUP/SIGTERM of the
# gateway, its raised open-file limit, and TLS on a second cluster with a self-signed
# certificate.  Uses curl; the cluster (from test/lib.sh) serves $DURABLE_STATIC.
source "$TEST_ROOT/test/lib.sh"
set -u

tmp=$(mktemp -d)
tls_dir=
cleanup() {
    if [ -n "$tls_dir" ] && [ -f "$tls_dir/data/postmaster.pid" ]; then
        pg_ctl -D "$tls_dir/data" -w -t 30 -m immediate stop >/dev/null 2>&1
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

DURABLE_PORT=${DURABLE_PORT:-$(sql "SHOW durable.port")}
static=$(sql "SHOW durable.static_dir")
base=http://127.0.0.1:$DURABLE_PORT

# fetch PATH [curl args...]: body into $tmp/body, headers into $tmp/headers; prints the status
fetch() {
    local path=$1
    shift
    curl -s --max-time 5 -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@" "$base$path"
}
# is NAME [why]: ok if the previous command succeeded
is() { local rc=$?; if [ $rc = 0 ]; then ok "$1"; else not_ok "$1" "${2:-}"; fi; }
# raw REQUEST: send printf-formatted REQUEST on a new connection, print what comes back (3 s at most)
raw() {
    (
        exec 9<>"/dev/tcp/127.0.0.1/$DURABLE_PORT" || exit 1
        printf "$1" >&9
        timeout 3 cat <&9
    ) 2>/dev/null
}
header() { grep -i "^$1:" "$tmp/headers" | head -1 | sed 's/^[^:]*: *//; s/\r$//'; }
gateway_pid() {
    pgrep -P "$(head -1 "$PGDATA/postmaster.pid")" -f 'pg_durable_objects gateway' | head -1
}
# sum of the samples of one metric
metric_sum() {
    curl -s --max-time 5 "$base/metrics" |
        awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { print s + 0 }'
}

# --- health and metrics ----------------------------------------------------------------------
check "gateway answers GET /healthz with 200" wait_gateway 20
port_hex=$(printf '%04X' "$DURABLE_PORT")
others=$(awk -v p=":$port_hex" '$4 == "0A" && substr($2, length($2) - 4) == p && $2 != "0100007F" p' \
    /proc/net/tcp /proc/net/tcp6 | wc -l)
mine=$(awk -v p="0100007F:$port_hex" '$4 == "0A" && $2 == p' /proc/net/tcp | wc -l)
[ "$mine" = 1 ] && [ "$others" = 0 ]
is "gateway listens on 127.0.0.1 only (127.0.0.1: $mine, other addresses: $others)"
code=$(fetch /healthz)
[ "$code" = 200 ] && [ "$(cat "$tmp/body")" = ok ]
is "/healthz: 200 \"ok\" (got $code)"

code=$(fetch /metrics)
[ "$code" = 200 ] && [[ "$(header content-type)" == "text/plain; version=0.0.4"* ]]
is "/metrics: 200, Prometheus text content type"
missing=
for m in durable_calls_total durable_errors_total durable_batches_total durable_queue_depth \
         durable_objects_in_memory durable_sockets_open durable_http_requests_total \
         durable_frames_in_total durable_frames_out_total durable_bytes_in_total \
         durable_bytes_out_total durable_slow_consumer_closes_total; do
    grep -q "^# HELP $m " "$tmp/body" && grep -q "^# TYPE $m \(counter\|gauge\)$" "$tmp/body" &&
        grep -qE "^$m(\{[^}]*\})? [0-9]+$" "$tmp/body" || missing="$missing $m"
done
check "/metrics: every metric has HELP, TYPE and a sample${missing:+ (missing:$missing)}" [ -z "$missing" ]
check "/metrics: queue depth per host, labelled with its owner's oid" \
    grep -qE '^durable_queue_depth\{host="[0-9]+",owner="[0-9]+"\} [0-9]' "$tmp/body"
check "/metrics: no WebSockets open yet" grep -q '^durable_sockets_open 0$' "$tmp/body"
check "/metrics: call latency histogram with buckets, sum and count per host" \
    grep -qE '^durable_call_latency_seconds_bucket\{host="[0-9]+",le="\+Inf"\} [0-9]' "$tmp/body" &&
    grep -qE '^durable_call_latency_seconds_sum\{host="[0-9]+"\} [0-9.]' "$tmp/body" &&
    grep -qE '^durable_call_latency_seconds_count\{host="[0-9]+"\} [0-9]' "$tmp/body" &&
    grep -q '^# TYPE durable_call_latency_seconds histogram$' "$tmp/body"
bad_lines=$(grep -vcE '^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{host="[0-9]+"(,owner="[0-9]+"|,le="[^"]+")?\})? [0-9.]+)$' "$tmp/body")
check "/metrics: every line is in the exposition format ($bad_lines bad)" [ "$bad_lines" = 0 ]

sql "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_durable_objects"
sql "CREATE OR REPLACE FUNCTION it40_counter(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM durable.put('n', to_jsonb(coalesce(durable.get('n')::bigint, 0) + 1));
    RETURN durable.get('n');
END
\$\$"
sql "SELECT durable.define_class('it40_counter', 'it40_counter')" >/dev/null
calls0=$(metric_sum durable_calls_total)
requests0=$(metric_sum durable_http_requests_total)
sql "SELECT durable.call('it40_counter', 'a', 'inc'), durable.call('it40_counter', 'b', 'inc')" >/dev/null
calls1=$(metric_sum durable_calls_total)
requests1=$(metric_sum durable_http_requests_total)
check "/metrics: durable_calls_total grows by the calls made ($calls0 -> $calls1)" \
    [ "$calls1" -ge $((calls0 + 2)) ]
check "/metrics: durable_http_requests_total counts requests ($requests0 -> $requests1)" \
    [ "$requests1" -gt "$requests0" ]

# --- static files ---------------------------------------------------------------------------
if [ -n "$static" ] && [ -d "$static" ]; then
    mkdir -p "$static/css"
    printf '<!doctype html><title>it40</title>\n' >"$static/index.html"
    printf 'console.log("it40");\n' >"$static/app.js"
    printf 'body { color: red; }\n' >"$static/css/site.css"
    printf '{"it40": true}\n' >"$static/data.json"
    printf '<svg xmlns="http://www.w3.org/2000/svg"/>\n' >"$static/logo.svg"
    printf '\x89PNG\r\n\x1a\n' >"$static/logo.png"
    printf 'it40 secret\n' >"$tmp/secret.txt"
    cp "$tmp/secret.txt" "$(dirname "$static")/it40_secret.txt"
    ln -sf "$tmp/secret.txt" "$static/escape.txt"

    code=$(fetch /)
    [ "$code" = 200 ] && [[ "$(header content-type)" == text/html* ]] &&
        cmp -s "$tmp/body" "$static/index.html"
    is "static: / serves index.html as text/html"
    for f in app.js:text/javascript css/site.css:text/css data.json:application/json \
             logo.svg:image/svg+xml logo.png:image/png index.html:text/html; do
        path=${f%%:*} type=${f#*:}
        code=$(fetch "/$path")
        [ "$code" = 200 ] && [[ "$(header content-type)" == "$type"* ]] &&
            cmp -s "$tmp/body" "$static/$path"
        is "static: /$path is $type (got $code $(header content-type))"
    done
    head_reply=$(raw 'HEAD /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | tr -d '\r')
    grep -q '^HTTP/1.1 200' <<<"$head_reply" &&
        grep -qi "^content-length: $(stat -c %s "$static/app.js")$" <<<"$head_reply" &&
        ! grep -q 'it40' <<<"$head_reply"
    is "static: HEAD gives the headers and no body"
    code=$(fetch /no-such-file.js)
    check "static: missing file is 404 (got $code)" [ "$code" = 404 ]
    leaked=
    for p in /../it40_secret.txt /%2e%2e/it40_secret.txt /..%2fit40_secret.txt \
             /css/../../it40_secret.txt /%2e%2e%2fit40_secret.txt /./../it40_secret.txt \
             '/..\it40_secret.txt' /escape.txt; do
        code=$(fetch "$p" --path-as-is)
        if [ "$code" = 200 ] || grep -q 'it40 secret' "$tmp/body"; then leaked="$leaked $p($code)"; fi
    done
    check "static: path traversal and symlinks out of static_dir are refused${leaked:+ (leaked:$leaked)}" \
        [ -z "$leaked" ]
    code=$(fetch /escape.txt)
    check "static: symlink leading outside static_dir is 403 (got $code)" [ "$code" = 403 ]
    rm -f "$(dirname "$static")/it40_secret.txt"
else
    not_ok "static: durable.static_dir is set to an existing folder" "it is '$static'"
fi

# --- other routes ---------------------------------------------------------------------------
code=$(fetch /no/such/route)
check "unknown path: 404 (got $code)" [ "$code" = 404 ]
code=$(fetch /metrics -X POST -d x=1)
[ "$code" = 405 ] && [ "$(header allow)" = "GET, HEAD" ]
is "POST /metrics: 405 with Allow: GET, HEAD (got $code)"
# object routes of a class with neither websocket nor http: refused before anything runs
# (the routes themselves are tested with real clients in 42_websocket.sh)
code=$(fetch /objects/it40_counter/a)
check "GET /objects/... of a class without websocket: 403 (got $code)" [ "$code" = 403 ]
check "GET /objects/...: JSON error with code 42501" \
    grep -q '^{"error": {"code": "42501", "message": ".*"}}$' "$tmp/body"
check "GET /objects/...: content type application/json" [ "$(header content-type)" = application/json ]
code=$(fetch /objects/it40_counter/a/inc -X POST -H 'content-type: application/json' -d '{"x": 1}')
[ "$code" = 403 ] && grep -q '"code": "42501"' "$tmp/body"
is "POST /objects/.../method of a class without http: 403 JSON error (got $code)"
ws_headers=(-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13'
            -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==')
code=$(fetch /objects/it40_counter/a "${ws_headers[@]}")
[ "$code" = 403 ] && grep -q '"code": "42501"' "$tmp/body"
is "WebSocket upgrade of a class without websocket: 403 JSON error, not upgraded (got $code)"
code=$(fetch /objects/no_such_class/a "${ws_headers[@]}")
check "WebSocket upgrade of an unknown class: 404 (got $code)" [ "$code" = 404 ]
code=$(fetch /healthz "${ws_headers[@]}")
check "WebSocket upgrade elsewhere: 404 (got $code)" [ "$code" = 404 ]
code=$(curl -s --max-time 5 -o /dev/null -o /dev/null -o /dev/null -w '%{http_code} %{num_connects},' \
       "$base/healthz" "$base/metrics" "$base/nope")
check "three requests on one keep-alive connection (got $code)" [ "$code" = "200 1,200 0,404 0," ]

# --- garbage on the socket ------------------------------------------------------------------
pid0=$(gateway_pid)
# (each writer in a subshell: the gateway may close first, and SIGPIPE must not end this script)
raw 'GARBAGE\r\n\r\n' >/dev/null
(head -c 65536 /dev/urandom >"/dev/tcp/127.0.0.1/$DURABLE_PORT") 2>/dev/null
raw "GET /$(head -c 20000 /dev/zero | tr '\0' a) HTTP/1.1\r\nHost: x\r\n\r\n" >/dev/null
(
    printf 'GET /healthz HTTP/1.1\r\n'
    for i in $(seq 2000); do printf 'X-H%d: %0100d\r\n' "$i" 0; done
    printf '\r\n'
) 2>/dev/null >"/dev/tcp/127.0.0.1/$DURABLE_PORT"
raw 'GET /healthz HTTP/1.1\r\nContent-Length: -5\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n' >/dev/null
raw 'GET /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n' >/dev/null
exec 7<>"/dev/tcp/127.0.0.1/$DURABLE_PORT"    # a client that sends half a request and waits
printf 'GET /healthz HTTP/1.1\r\nHost: ' >&7
code=$(fetch /healthz)
check "gateway survives garbage and still answers (got $code)" [ "$code" = 200 ]
exec 7>&-
[ -n "$pid0" ] && [ "$(gateway_pid)" = "$pid0" ]
is "gateway did not restart after garbage"

# --- signals, fd limit, healthz with the scheduler down --------------------------------------
gw=$(gateway_pid)
read -r soft hard <<<"$(awk '/^Max open files/ { print $4, $5 }' "/proc/$gw/limits")"
want=$hard
[ "$hard" = unlimited ] || [ "$hard" -gt 1048576 ] && want=1048576
check "gateway raised its open-file soft limit to $want (soft $soft, hard $hard)" [ "$soft" = "$want" ]
check "/metrics shows the open-file limit" grep -q "^durable_gateway_max_fds $soft$" <(curl -s "$base/metrics")

kill -HUP "$gw"
sleep 0.3
[ "$(gateway_pid)" = "$gw" ] && [ "$(fetch /healthz)" = 200 ]
is "SIGHUP: gateway reloads and keeps running"

sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
     WHERE backend_type = 'pg_durable_objects scheduler'" >/dev/null
code=
for i in $(seq 100); do
    code=$(fetch /healthz)
    [ "$code" = 503 ] && break
    sleep 0.01
done
check "/healthz: 503 while the scheduler is down (got $code: $(tr '\n' ' ' <"$tmp/body"))" [ "$code" = 503 ]
check "/healthz: 200 again once the scheduler is back" wait_gateway 15

kill -TERM "$gw"
for i in $(seq 100); do kill -0 "$gw" 2>/dev/null || break; sleep 0.02; done
check "SIGTERM: gateway exits promptly" bash -c "! kill -0 $gw 2>/dev/null"
check "SIGTERM: the postmaster restarts the gateway and it answers again" wait_gateway 15
[ -n "$(gateway_pid)" ] && [ "$(gateway_pid)" != "$gw" ]
is "SIGTERM: the restarted gateway is a new process"

# --- TLS on a second cluster ----------------------------------------------------------------
tls_dir="$tmp/tls"
mkdir -p "$tls_dir"
if openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.pem" >/dev/null 2>&1; then
    chmod 600 "$tls_dir/key.pem"
    (
        cluster_init "$tls_dir" $((PGPORT + 3)) "durable.ssl_cert_file = '$tls_dir/cert.pem'" \
            "durable.ssl_key_file = '$tls_dir/key.pem'" && cluster_start || exit 1
        GATEWAY_URL=https://127.0.0.1:$DURABLE_PORT
        check "TLS: curl -k https://.../healthz is 200" wait_gateway 30
        check "TLS: the certificate verifies with its CA file" \
            [ "$(curl -s --max-time 5 --cacert "$tls_dir/cert.pem" "$GATEWAY_URL/healthz")" = ok ]
        code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$DURABLE_PORT/healthz")
        check "TLS: plain HTTP on the TLS port gets no answer (got $code)" [ "$code" != 200 ]
        head -c 4096 /dev/urandom >"/dev/tcp/127.0.0.1/$DURABLE_PORT" 2>/dev/null
        check "TLS: gateway survives garbage and still answers" \
            [ "$(curl -ks --max-time 5 "$GATEWAY_URL/healthz")" = ok ]
        grep -q 'gateway listening on 127.0.0.1 port [0-9]* (TLS)' "$tls_dir/server.log"
        is "TLS: server log says the gateway listens with TLS"
        # wss://: a WebSocket of an object over TLS, a call answered through it
        sql "CREATE EXTENSION pg_durable_objects" >/dev/null
        sql "CREATE FUNCTION it40_echo(id text, method text, args jsonb) RETURNS jsonb
             LANGUAGE sql AS \$\$ SELECT jsonb_build_object('id', id, 'method', method, 'args', args) \$\$;
             SELECT durable.define_class('it40_echo', 'it40_echo', '{\"websocket\": true}')" >/dev/null
        wait_for "SELECT true" 5 >/dev/null
        sleep 1.5   # host 0 loads the class directory the gateway reads
        reply=$(cd "$TEST_ROOT/test/ws" && timeout 20 node --input-type=module -e "
            import WebSocket from 'ws';
            import { readFileSync } from 'node:fs';
            const ws = new WebSocket('wss://127.0.0.1:$DURABLE_PORT/objects/it40_echo/secure',
                                     { ca: readFileSync('$tls_dir/cert.pem') });
            ws.on('open', () => ws.send(JSON.stringify({type: 'call', id: 1, method: 'hello', args: {x: 1}})));
            ws.on('message', (m) => { console.log(m.toString()); ws.close(); });
            ws.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
        " 2>&1)
        check "TLS: wss:// socket answers a call ($reply)" \
            [ "$reply" = '{"type":"reply","id":1,"result":{"id": "secure", "args": {"x": 1}, "method": "hello"}}' ]
        cluster_stop
    ) || not_ok "TLS: second cluster starts" "$(tail -5 "$tls_dir/server.log" 2>/dev/null)"
else
    not_ok "TLS: openssl makes a self-signed certificate"
fi
