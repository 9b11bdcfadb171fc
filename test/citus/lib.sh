# test/citus/lib.sh — a Citus cluster of three local PostgreSQL servers for the scale-out tests.
# Sourced after test/lib.sh, not run; as the unprivileged OS user that owns the clusters.
#
#   citus_available                  true when citus.so is installed next to $PGBIN's server;
#                                    else prints why not
#   citus_cluster_start DIR [N]      initdb + start a coordinator and two workers under DIR
#                                    (DIR/coord, DIR/w1, DIR/w2), each with
#                                    shared_preload_libraries = 'citus,pg_durable_objects', its own
#                                    port (TCP on 127.0.0.1, for Citus' connections) and its own
#                                    durable.port; CREATE EXTENSION citus everywhere, the first N
#                                    workers (default 2) added to the coordinator, CREATE EXTENSION
#                                    pg_durable_objects on the coordinator (Citus creates it on the
#                                    workers it knows, and on those added later)
#   citus_add_worker NODE            citus_add_node of a started worker
#   citus_cluster_stop               stop the three (also from an EXIT trap)
#   on NODE SQL                      psql -X -At against NODE (coord, w1, w2), stops on error
#   on_try NODE SQL                  same, returns psql's status and keeps stderr
#   NODE_PORT[NODE], NODE_DURABLE_PORT[NODE], NODE_DIR[NODE]   what each node listens on
#
# It does not touch PGDATA/PGPORT/PGHOST of the runner's own cluster.

CITUS_NODES=(coord w1 w2)
declare -A NODE_PORT NODE_DURABLE_PORT NODE_DIR

citus_available() {
    local lib
    lib=$("$PGBIN/pg_config" --pkglibdir 2>/dev/null)
    # a relocated server (PG_TREE) finds its lib/ next to its bin/
    [ -d "$PGBIN/../lib" ] && lib=$(cd "$PGBIN/../lib" && pwd)
    if [ ! -f "$lib/citus.so" ]; then
        echo "citus.so not installed in $lib${CITUS_SKIP_REASON:+: $CITUS_SKIP_REASON}"
        return 1
    fi
}

# a port and the next two, and their durable.port (+1000), that no socket uses; below the
# kernel's ephemeral ports (32768 and up), which outgoing connections take
citus_free_base() {
    local base i used
    used=$(awk 'FNR > 1 { split($2, a, ":"); print a[2] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null |
           while read -r hex; do [ -n "$hex" ] && echo $((16#$hex)); done)
    for _ in $(seq 50); do
        base=$((24000 + 3 * (RANDOM % 1000)))
        for i in 0 1 2 1000 1001 1002; do
            grep -qx "$((base + i))" <<<"$used" && continue 2
        done
        echo "$base"
        return 0
    done
    return 1
}

# on NODE SQL [psql args...]
on() {
    local node=$1
    shift
    psql -X -q -At -v ON_ERROR_STOP=1 -h "${NODE_DIR[$node]}/sock" -p "${NODE_PORT[$node]}" \
        -d postgres -c "$1" "${@:2}"
}

on_try() {
    local node=$1
    shift
    psql -X -q -At -v ON_ERROR_STOP=1 -h "${NODE_DIR[$node]}/sock" -p "${NODE_PORT[$node]}" \
        -d postgres -c "$1" "${@:2}" 2>&1
}

citus_cluster_start() {
    local dir=$1 add=${2:-2} base i node
    base=$(citus_free_base) || { echo "no free ports for the Citus cluster" >&2; return 1; }
    for i in 0 1 2; do
        node=${CITUS_NODES[$i]}
        NODE_DIR[$node]=$dir/$node
        NODE_PORT[$node]=$((base + i))
        NODE_DURABLE_PORT[$node]=$((base + 1000 + i))
        mkdir -p "${NODE_DIR[$node]}"
        # cluster_init (test/lib.sh) writes our settings; a subshell keeps its exports away
        (cluster_init "${NODE_DIR[$node]}" "${NODE_PORT[$node]}" \
            "shared_preload_libraries = 'citus,pg_durable_objects'" \
            "listen_addresses = '127.0.0.1'" \
            "durable.port = ${NODE_DURABLE_PORT[$node]}" \
            "durable.max_hosts = 8" \
            "max_worker_processes = 40" \
            "max_connections = 100" \
            "wal_level = logical" \
            "citus.shard_count = 8" \
            "citus.log_remote_commands = off" \
            "fsync = off" \
            "log_min_messages = warning") || return 1
        pg_ctl -D "${NODE_DIR[$node]}/data" -l "${NODE_DIR[$node]}/server.log" -w -t 60 start \
            >/dev/null || { tail -20 "${NODE_DIR[$node]}/server.log" >&2; return 1; }
    done
    CITUS_DIR=$dir
    trap citus_cluster_stop EXIT
    for node in "${CITUS_NODES[@]}"; do
        on "$node" "CREATE EXTENSION citus" || return 1
    done
    on coord "SELECT citus_set_coordinator_host('127.0.0.1', ${NODE_PORT[coord]})" >/dev/null ||
        return 1
    for i in $(seq "$add"); do
        citus_add_worker "w$i" || return 1
    done
    on coord "CREATE EXTENSION pg_durable_objects" || return 1
}

citus_add_worker() {
    on coord "SELECT citus_add_node('127.0.0.1', ${NODE_PORT[$1]})" >/dev/null
}

citus_cluster_stop() {
    local node
    for node in "${CITUS_NODES[@]}"; do
        [ -n "${NODE_DIR[$node]:-}" ] && [ -f "${NODE_DIR[$node]}/data/postmaster.pid" ] &&
            pg_ctl -D "${NODE_DIR[$node]}/data" -w -t 30 -m fast stop >/dev/null 2>&1
    done
    return 0
}
