# test/lib.sh — helpers shared by the test runner, the integration tests and make demo/bench.
# Sourced, not run.  Everything here runs as the unprivileged OS user that owns the cluster.
#
#   cluster_init DIR PORT [conf lines...]   initdb + our settings (shared_preload_libraries ...);
#                                           the gateway listens on 127.0.0.1:$DURABLE_PORT
#                                           (PORT + 1000 unless a conf line sets durable.port)
#                                           and serves DIR/static ($DURABLE_STATIC)
#   cluster_start / cluster_stop / cluster_restart / cluster_kill9
#   sql "SELECT ..."                        psql -X -At against $PGDATABASE, stops on error
#   sql_try "SELECT ..."                    same, but returns psql's status and keeps stderr
#   ok NAME / not_ok NAME [why]             TAP-style result lines the runner counts
#   check NAME CMD...                       ok if CMD succeeds
#   wait_for "SQL returning t" [seconds]    poll until true
#   as ROLE "SQL"                           psql with SET ROLE ROLE first: output and errors (verbose)
#   sqlstate "OUTPUT"                       the SQLSTATE of OUTPUT's first "ERROR:  XXXXX:" line, or none
#   is NAME GOT WANT                        ok if GOT equals WANT, else not ok saying both
#   wait_gateway [seconds]                  poll until the gateway answers /healthz with 200

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export PATH="$PGBIN:$PATH"

cluster_init() {
    local dir=$1 port=$2
    shift 2
    export PGDATA="$dir/data" PGHOST="$dir/sock" PGPORT="$port" PGDATABASE=${PGDATABASE:-postgres}
    export PGUSER=${PGUSER:-$(id -un)}
    export DURABLE_PORT=$((port + 1000)) DURABLE_STATIC="$dir/static"
    [ "$DURABLE_PORT" -le 65535 ] || DURABLE_PORT=$((port - 1000))
    mkdir -p "$PGHOST" "$DURABLE_STATIC"
    initdb -D "$PGDATA" -A trust -U "$PGUSER" --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log"; return 1; }
    cat >>"$PGDATA/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$PGHOST'
shared_preload_libraries = 'pg_durable_objects'
durable.database = 'postgres'
max_connections = 120
max_worker_processes = 32
durable.max_hosts = 16
fsync = on
synchronous_commit = on
log_line_prefix = '%m [%p] %b '
log_min_messages = warning
durable.port = $DURABLE_PORT
durable.static_dir = '$DURABLE_STATIC'
CONF
    local line
    for line in "$@"; do
        echo "$line" >>"$PGDATA/postgresql.conf"
        if [[ $line =~ ^[[:space:]]*durable\.port[[:space:]]*=[[:space:]]*\'?([0-9]+) ]]; then
            DURABLE_PORT=${BASH_REMATCH[1]}
        fi
    done
}

cluster_start() {
    pg_ctl -D "$PGDATA" -l "$PGDATA/../server.log" -w -t 60 start >/dev/null
}

cluster_stop() {
    pg_ctl -D "$PGDATA" -w -t 60 -m fast stop >/dev/null 2>&1 || true
}

cluster_restart() {
    cluster_stop
    cluster_start
}

# kill -9 the postmaster and every child: a crash of the whole server
cluster_kill9() {
    local pm
    pm=$(head -1 "$PGDATA/postmaster.pid")
    pkill -9 -P "$pm" 2>/dev/null || true
    kill -9 "$pm" 2>/dev/null || true
    while kill -0 "$pm" 2>/dev/null; do sleep 0.1; done
    sleep 0.5
}

sql() {
    psql -X -q -At -v ON_ERROR_STOP=1 -c "$1" "${@:2}"
}

sql_try() {
    psql -X -q -At -v ON_ERROR_STOP=1 -c "$1" "${@:2}" 2>&1
}

as() {
    psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "SET ROLE $1" -c "$2" 2>&1
}
sqlstate() { echo "$1" | sed -n 's/^\(psql:[^ ]* \)\{0,1\}ERROR: *\([0-9A-Z]\{5\}\):.*/\2/p' | head -1 | grep . || echo none; }
is() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "got '$2', want '$3'"; fi; }

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1${2:+ ($2)}"; }

check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# wait_for SQL [seconds]: poll until SQL returns t
wait_for() {
    local q=$1 limit=${2:-30} i=0
    while [ "$i" -lt $((limit * 10)) ]; do
        [ "$(psql -X -At -c "$q" 2>/dev/null)" = t ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# wait until the scheduler runs (it starts hosts as calls need them)
wait_hosts() {
    wait_for "SELECT count(*) = 1 FROM pg_stat_activity
              WHERE backend_type = 'pg_durable_objects scheduler'" "${1:-30}"
}

# wait until the gateway answers GET /healthz with 200 (plain HTTP; set GATEWAY_URL for https)
wait_gateway() {
    local limit=${1:-30} i=0 url=${GATEWAY_URL:-http://127.0.0.1:$DURABLE_PORT}
    while [ "$i" -lt $((limit * 10)) ]; do
        [ "$(curl -ks -o /dev/null -w '%{http_code}' --max-time 2 "$url/healthz")" = 200 ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
