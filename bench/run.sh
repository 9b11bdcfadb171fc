#!/usr/bin/env bash
# bench/run.sh — the benchmarks of pg_durable_objects (what `make bench` runs).
#
# As root (CI, a fresh machine): installs missing Debian packages (test/install-deps.sh), builds
# and installs the extension, copies what the benchmarks need to a scratch folder and re-runs
# itself there as the unprivileged `postgres` OS user (initdb refuses root).  As any other user:
# expects the extension installed.
#
# Then: ONE throw-away cluster (shared_buffers 256MB, synchronous_commit on, fsync on) on which
# every figure of issue 6 is measured next to its baseline:
#   1. durable increments from SQL (sync) vs a plain INSERT ... ON CONFLICT upsert (pgbench)
#   2. the same with durability async vs plain SQL with synchronous_commit off
#   3. round trip of an empty call vs SELECT 1 (one session)
#   4. WebSocket: call round trip, fan-out to rooms of 100 and 10,000 sockets, floods, memory
#      per idle socket (bench/ws_bench.mjs; the rooms also with the C client bench/ws_fanout.c)
#   5. alarm lateness
#   6. durable increments through the gateway (HTTP calls, WebSocket call frames; bench/ws_fanout.c)
#      vs the plain upsert by pgbench, sync and async, with a CPU account per call
# and a few tuning knobs (durable.max_batch, durable.cache_size, durable.hosts).  Writes
# bench/results/latest.md and bench/results/latest.json; the raw measurements and the server
# log go to bench/results/tmp/.
#
# Environment: BENCH_SECONDS (seconds per pgbench run, default 5), BENCH_REPS (runs per point,
# default 2, alternating with the baseline: A B B A), BENCH_SOCKETS (the big room, default
# 10000), BENCH_KNOBS=0 (skip the knob runs), BENCH_QUICK=1 (a 3-minute smoke run: 2 s points,
# one run each, a room of 1,000, fewer calls); BENCH_OTHER_LIMIT, BENCH_RERUNS,
# BENCH_THROUGHPUT_RERUNS and BENCH_LATENCY_RERUNS govern the repetition of measurements that
# other work on the machine disturbed (see "Disturbances" below and docs/performance.md).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "${1:-}" != "--inside" ]; then
    cd "$here" || exit 1
    start=$(date +%s)
    if [ "$(id -u)" = 0 ]; then
        echo "== dependencies and build"
        test/install-deps.sh || { echo "test/install-deps.sh failed"; exit 1; }
        if ! { make -s -j2 >/dev/null && make -s install >/dev/null; }; then
            echo "build failed"
            exit 1
        fi
    fi
    work=$(mktemp -d /tmp/durable-bench.XXXXXX)
    mkdir -p "$work/test"
    cp -r bench "$work/"
    rm -rf "$work/bench/results"
    cp test/lib.sh "$work/test/"
    cp -r test/ws "$work/test/"
    { git rev-parse --short HEAD 2>/dev/null || echo unknown; } >"$work/commit.txt"
    [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && echo "(with uncommitted changes)" >>"$work/commit.txt"
    chmod 755 "$work"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres: "$work"
        runuser -u postgres -- "$work/bench/run.sh" --inside "$work"
        rc=$?
    else
        "$work/bench/run.sh" --inside "$work"
        rc=$?
    fi
    if [ -f "$work/out/latest.md" ]; then
        rm -rf bench/results/tmp
        mkdir -p bench/results/tmp
        cp "$work/out/latest.md" "$work/out/latest.json" bench/results/
        cp "$work/out/results.jsonl" "$work/out/machine.json" bench/results/tmp/
        cp "$work/cluster/server.log" bench/results/tmp/ 2>/dev/null
        cp "$work"/raw/*.out "$work"/raw/ws_*.json bench/results/tmp/ 2>/dev/null
    fi
    if [ $rc = 0 ]; then rm -rf "$work"; else echo "(benchmark files and logs kept in $work)" >&2; fi
    echo "== done in $(( $(date +%s) - start )) s"
    if [ -f "$here/bench/results/latest.md" ] && [ $rc = 0 ]; then
        echo "report: $here/bench/results/latest.md (and latest.json)"
    fi
    exit $rc
fi

# ------------------------------------------------------------------------------------------
# inside: the unprivileged OS user, in the scratch folder

work=$2
cd "$work" || exit 1
source test/lib.sh
export PATH="$PGBIN:$PATH"

# the C load generator of the rooms of figure 4 (libc only; cc comes with build-essential)
WS_FANOUT=
if cc -O2 -o "$work/ws_fanout" bench/ws_fanout.c 2>"$work/ws_fanout.log"; then
    WS_FANOUT=$work/ws_fanout
else
    echo "warning: bench/ws_fanout.c did not build, the rooms are measured with the Node client only:"
    head -5 "$work/ws_fanout.log"
fi

T=${BENCH_SECONDS:-5}
REPS=${BENCH_REPS:-2}
BIG=${BENCH_SOCKETS:-10000}
RT_CALLS=10000
WS_CALLS=5000
BROADCASTS=200
FLOOD=3
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    T=${BENCH_SECONDS:-2}
    REPS=${BENCH_REPS:-1}
    BIG=${BENCH_SOCKETS:-1000}
    RT_CALLS=2000
    WS_CALLS=1000
    BROADCASTS=50
    FLOOD=1
fi
out=$work/out
raw=$work/raw
scripts=$work/scripts
results=$out/results.jsonl
mkdir -p "$out" "$raw" "$scripts"
: >"$results"
port=$((26000 + RANDOM % 1000))    # below the kernel's local ports of outgoing connections (32768-)
NCPU=$(nproc)

progress() { echo "[$(date +%H:%M:%S)] $*"; }

finish() {
    [ -n "${PGDATA:-}" ] && cluster_stop
}
trap finish EXIT

# cores busy on the machine while nothing of ours runs: other work makes every figure noisy
jiffies() { awk '/^cpu / {s = 0; for (i = 2; i <= NF; i++) s += $i; print s, $5 + $6, $9}' /proc/stat; }
background_busy() {
    local a b
    a=$(jiffies)
    sleep 3
    b=$(jiffies)
    echo "$a $b" | awk -v n="$NCPU" '{dt = $4 - $1; di = $5 - $2; printf "%.2f", (dt > 0 ? (dt - di) / dt * n : 0)}'
}
M_BACKGROUND=$(background_busy)
progress "background load before the run: $M_BACKGROUND of $NCPU cores busy"
if awk -v b="$M_BACKGROUND" 'BEGIN {exit !(b > 0.25)}'; then
    echo "  warning: the machine is busy with other work; the figures will be noisy"
fi

progress "cluster on port $port"
cluster_init "$work/cluster" "$port" \
    "shared_buffers = 256MB" "synchronous_commit = on" "fsync = on" \
    "durable.max_sockets = 11000" \
    "checkpoint_timeout = 30min" "max_wal_size = 8GB" || exit 1
cluster_start || { tail -40 "$work/cluster/server.log"; exit 1; }
wait_hosts 30 || { echo "host workers did not start"; tail -40 "$work/cluster/server.log"; exit 1; }
wait_gateway 30 || { echo "gateway did not answer"; tail -40 "$work/cluster/server.log"; exit 1; }

HOST_PIDS=
GATEWAY_PID=
find_pids() {
    local pm
    HOST_PIDS=$(sql "SELECT string_agg(pid::text, ' ') FROM durable.hosts WHERE pid IS NOT NULL" 2>/dev/null)
    pm=$(head -1 "$PGDATA/postmaster.pid")
    GATEWAY_PID=$(pgrep -P "$pm" -f 'pg_durable_objects gateway' | head -1)
}

psql -X -q -v ON_ERROR_STOP=1 -f bench/setup.sql >/dev/null || { echo "bench/setup.sql failed"; exit 1; }
find_pids

# ------------------------------------------------------------------------------------------
# machine

progress "machine"
# pg_test_fsync -s 1, stopped once it printed the fdatasync rate (its first 3 s)
stdbuf -oL pg_test_fsync -s 1 -f "$work/cluster/fsync.test" >"$raw/pg_test_fsync.out" 2>&1 &
fsync_pid=$!
for _ in $(seq 1 100); do
    grep -qE '^[[:space:]]+fdatasync.*ops/sec' "$raw/pg_test_fsync.out" && break
    kill -0 "$fsync_pid" 2>/dev/null || break
    sleep 0.1
done
kill "$fsync_pid" 2>/dev/null
wait "$fsync_pid" 2>/dev/null
fsync_line=$(grep -m1 -E '^[[:space:]]+fdatasync.*ops/sec' "$raw/pg_test_fsync.out")
rm -f "$work/cluster/fsync.test"
export M_CPU M_CORES M_RAM M_KERNEL M_FSYNC_OPS M_FSYNC_US M_PG M_LWS M_NODE M_WS M_COMMIT M_SECONDS M_REPS M_BACKGROUND M_BACKGROUND_END
M_CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
M_CORES=$NCPU
M_RAM=$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
M_KERNEL=$(uname -r)
M_FSYNC_OPS=$(echo "$fsync_line" | awk '{print $2}')
M_FSYNC_US=$(echo "$fsync_line" | awk '{print $4}')
M_PG=$(postgres --version)
M_LWS=$(dpkg-query -W -f '${Version}' libwebsockets-dev 2>/dev/null || pkg-config --modversion libwebsockets 2>/dev/null)
M_NODE=$(node --version)
M_WS=$(node -p "require('$work/test/ws/node_modules/ws/package.json').version" 2>/dev/null)
M_COMMIT=$(tr '\n' ' ' <"$work/commit.txt")
M_SECONDS=$T
M_REPS=$REPS
write_machine() {
    node -e '
const e = process.env;
const n = (x) => (x === undefined || x === "" ? null : Number(x));
console.log(JSON.stringify({
    date: new Date().toISOString(), cpu_model: e.M_CPU, cores: n(e.M_CORES), ram_gib: n(e.M_RAM),
    kernel: e.M_KERNEL, fdatasync_ops: n(e.M_FSYNC_OPS), fdatasync_us: n(e.M_FSYNC_US),
    postgres: e.M_PG, lws: e.M_LWS, node: e.M_NODE, ws: e.M_WS, commit: e.M_COMMIT.trim(),
    seconds_per_point: n(e.M_SECONDS), reps: n(e.M_REPS),
    server_log_problems: n(e.M_LOG_PROBLEMS),
    background_busy_before: n(e.M_BACKGROUND), background_busy_after: n(e.M_BACKGROUND_END),
}, null, 2));' >"$out/machine.json"
}
write_machine
progress "$M_CPU, $NCPU cores, $M_RAM GiB; fdatasync ${M_FSYNC_OPS:-?} ops/s; $M_PG; lws $M_LWS"

# ------------------------------------------------------------------------------------------
# pgbench points

# "total_jiffies idle_jiffies steal_jiffies host_jiffies now_ns"
cpu_snap() {
    local h=0 p t
    t=$(awk '/^cpu / {s = 0; for (i = 2; i <= NF; i++) s += $i; print s, $5 + $6, $9}' /proc/stat)
    for p in $HOST_PIDS; do
        [ -r "/proc/$p/stat" ] || continue
        h=$((h + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$t $h $(date +%s%N)"
}

hosts_counters() {
    sql "SELECT coalesce(sum(calls), 0) || ' ' || coalesce(sum(batches), 0) FROM durable.hosts"
}

# Disturbances.  This machine is shared: other processes in the VM (other users' tests) and other
# VMs on the host (CPU steal) can take the cores a measurement needs.  calm_begin/calm_end
# bracket a measurement; calm_end sets CALM_OTHER (cores used by processes that are not ours)
# and CALM_STEAL (cores the hypervisor took) and fails if together they exceed OTHER_LIMIT.  A
# disturbed measurement is thrown away and run again, at most RERUNS times each, and in the whole
# run at most THROUGHPUT_RERUNS times for the pgbench throughput points and LATENCY_RERUNS times
# for the latency measurements (figures 3 to 5), whichever BUDGET names; the report shows both
# figures for every measurement.
OTHER_LIMIT=${BENCH_OTHER_LIMIT:-0.25}
RERUNS=${BENCH_RERUNS:-2}
# shellcheck disable=SC2034  # read through ${!BUDGET}
THROUGHPUT_RERUNS=${BENCH_THROUGHPUT_RERUNS:-8}
# shellcheck disable=SC2034
LATENCY_RERUNS=${BENCH_LATENCY_RERUNS:-6}
BUDGET=THROUGHPUT_RERUNS
CALM_OTHER=0
CALM_STEAL=0
calm_begin() {
    node bench/report.mjs others-snap $$ "$(head -1 "$PGDATA/postmaster.pid")" >"$raw/calm0.json"
    CALM_STAT0=$(jiffies)
}
calm_end() {
    local stat1
    stat1=$(jiffies)
    node bench/report.mjs others-snap $$ "$(head -1 "$PGDATA/postmaster.pid")" >"$raw/calm1.json"
    CALM_OTHER=$(node bench/report.mjs others-cores "$raw/calm0.json" "$raw/calm1.json")
    CALM_STEAL=$(echo "$CALM_STAT0 $stat1" | awk -v n="$NCPU" '{dt = $4 - $1; printf "%.2f", (dt > 0 ? ($6 - $3) / dt * n : 0)}')
    awk -v o="$CALM_OTHER" -v s="$CALM_STEAL" -v l="$OTHER_LIMIT" 'BEGIN {exit !(o + s <= l)}'
}
# again TRY: whether a disturbed measurement may run once more (and say so)
again() {
    if [ "$1" -lt "$RERUNS" ] && [ "${!BUDGET}" -gt 0 ]; then
        printf -v "$BUDGET" '%d' $((${!BUDGET} - 1))
        echo "  (disturbed: other processes $CALM_OTHER cores, steal $CALM_STEAL cores: again)"
        sleep 3
        return 0
    fi
    return 1
}

# rep NAME SCRIPT PGBENCH-ARGS PGOPTIONS: one pgbench run of measurement NAME; its output goes to
# NAME.rK.out, its per-transaction logs to NAME.rK.*, the host counters and CPU use to NAME.extra
rep() {
    local name=$1 script=$2 args=$3 pgopt=$4
    local k h0 h1 c0 c1 try=0
    k=$(( $(find "$raw" -maxdepth 1 -name "$name.r*.out" | wc -l) + 1 ))
    while :; do
        calm_begin
        h0=$(hosts_counters)
        c0=$(cpu_snap)
        # shellcheck disable=SC2086
        PGOPTIONS="$pgopt" pgbench -n -M prepared $args -f "$script" -l --log-prefix="$raw/$name.r$k" \
            >"$raw/$name.r$k.out" 2>&1
        c1=$(cpu_snap)
        h1=$(hosts_counters)
        if ! calm_end && again "$try"; then
            try=$((try + 1))
            find "$raw" -maxdepth 1 -name "$name.r$k*" -delete
            continue
        fi
        break
    done
    # calls batches cores-busy hosts-cores other-cores reruns steal-cores
    echo "$h0 $h1 $c0 $c1" | awk -v ncpu="$NCPU" -v other="$CALM_OTHER" -v try="$try" -v steal="$CALM_STEAL" '{
        dt = $10 - $5; di = $11 - $6; wall = ($14 - $9) / 1e9;
        printf "%d %d %.3f %.3f %.3f %d %.3f\n", $3 - $1, $4 - $2, (dt > 0 ? (dt - di) / dt * ncpu : 0),
               (wall > 0 ? ($13 - $8) / 100 / wall : 0), other, try, steal }' >>"$raw/$name.extra"
}

# record NAME KEY=VALUE...: one measurement from every repetition of NAME, appended to the results
record() {
    local name=$1 f
    local files=()
    shift
    for f in "$raw/$name".r*.out; do
        files+=(--out "$f" --log "${f%.out}")
    done
    node bench/report.mjs point "$@" --extra "$raw/$name.extra" "${files[@]}" | tee -a "$results" |
        node -e 'let s = ""; process.stdin.on("data", (d) => s += d).on("end", () => {
            const r = JSON.parse(s);
            console.log(`  ${process.argv[1].padEnd(44)} ${String(Math.round(r.tps)).padStart(7)}/s ` +
                `${r.tps_reps && r.tps_reps.length > 1 ? "(" + r.tps_reps.map(Math.round).join(", ") + ") " : ""}` +
                `p50 ${r.p50_ms} ms  p99 ${r.p99_ms} ms` +
                (r.avg_batch ? `  batch ${r.avg_batch}` : "") + (r.machine_busy !== undefined ? `  cores busy ${r.machine_busy}` : "") +
                (r.other_cpu ? ` (others ${r.other_cpu})` : "") + (r.steal_cpu ? ` (steal ${r.steal_cpu})` : "") +
                (r.failed ? `  FAILED ${r.failed}` : "") + (r.error ? `  ERROR ${r.error}` : ""));
        });' "$*"
    find "$raw" -maxdepth 1 -name "$name.r*" ! -name '*.out' -delete
}

# point SCRIPT PGBENCH-ARGS PGOPTIONS KEY=VALUE...: REPS runs of one measurement
point() {
    local script=$1 args=$2 pgopt=$3 name r
    shift 3
    name=$(echo "$*" | sed 's/[^A-Za-z0-9]\{1,\}/_/g')
    for ((r = 1; r <= REPS; r++)); do
        rep "$name" "$script" "$args" "$pgopt"
    done
    record "$name" "$@"
}

# pair ARGS SCRIPT_A PGOPT_A KEYS_A SCRIPT_B PGOPT_B KEYS_B: a measurement and its baseline,
# REPS runs each in the order A B B A A B ..., so that a drift of the machine hits both alike
pair() {
    local args=$1 sa=$2 oa=$3 ka=$4 sb=$5 ob=$6 kb=$7 na nb r
    na=$(echo "$ka" | sed 's/[^A-Za-z0-9]\{1,\}/_/g')
    nb=$(echo "$kb" | sed 's/[^A-Za-z0-9]\{1,\}/_/g')
    for ((r = 1; r <= REPS; r++)); do
        if [ $((r % 2)) = 1 ]; then
            rep "$na" "$sa" "$args" "$oa"
            rep "$nb" "$sb" "$args" "$ob"
        else
            rep "$nb" "$sb" "$args" "$ob"
            rep "$na" "$sa" "$args" "$oa"
        fi
    done
    # shellcheck disable=SC2086
    record "$na" $ka
    # shellcheck disable=SC2086
    record "$nb" $kb
}

# durable_1.sql, durable_1000.sql (class bench_counter) and durable_async_*.sql (bench_counter_async)
for script in durable:bench_counter durable_async:bench_counter_async; do
    echo "SELECT durable.call('${script#*:}', 'c1', 'inc');" >"$scripts/${script%%:*}_1.sql"
    printf '%s\n' '\set id random(1, 1000)' \
        "SELECT durable.call('${script#*:}', 'c' || :id, 'inc');" >"$scripts/${script%%:*}_1000.sql"
done
cat >"$scripts/plain_1.sql" <<'SQL'
INSERT INTO bench_plain VALUES ('c1', 1) ON CONFLICT (id) DO UPDATE SET n = bench_plain.n + 1;
SQL
cat >"$scripts/plain_1000.sql" <<'SQL'
\set id random(1, 1000)
INSERT INTO bench_plain VALUES ('c' || :id, 1) ON CONFLICT (id) DO UPDATE SET n = bench_plain.n + 1;
SQL
cat >"$scripts/echo.sql" <<'SQL'
SELECT durable.call('bench_echo', 'e1', 'echo', '{"a": 1}');
SQL
cat >"$scripts/select1.sql" <<'SQL'
SELECT 1;
SQL

# every counter exists before the measurements (updates on both sides)
sql "SELECT count(durable.call('bench_counter', 'c' || i, 'inc')) FROM generate_series(1, 1000) i" >/dev/null
sql "SELECT count(durable.call('bench_counter_async', 'c' || i, 'inc')) FROM generate_series(1, 1000) i" >/dev/null
sql "INSERT INTO bench_plain SELECT 'c' || i, 1 FROM generate_series(1, 1000) i" >/dev/null
sql "VACUUM ANALYZE" >/dev/null
sql "CHECKPOINT" >/dev/null

progress "warm-up"
pgbench -n -M prepared -T 2 -c 8 -j 2 -f "$scripts/durable_1000.sql" >/dev/null 2>&1
pgbench -n -M prepared -T 2 -c 8 -j 2 -f "$scripts/plain_1000.sql" >/dev/null 2>&1

progress "figure 1: durable increments (sync) vs plain upsert, $T s per point"
for objects in 1 1000; do
    for c in 1 8 32; do
        pair "-T $T -c $c -j 2" \
            "$scripts/durable_$objects.sql" "" "fig=1 series=durable objects=$objects clients=$c" \
            "$scripts/plain_$objects.sql" "" "fig=1 series=plain objects=$objects clients=$c"
    done
done
sql "CHECKPOINT" >/dev/null

progress "figure 2: durability async vs plain with synchronous_commit off"
for objects in 1 1000; do
    for c in 1 8 32; do
        pair "-T $T -c $c -j 2" \
            "$scripts/durable_async_$objects.sql" "" "fig=2 series=durable_async objects=$objects clients=$c" \
            "$scripts/plain_$objects.sql" "-c synchronous_commit=off" "fig=2 series=plain_async objects=$objects clients=$c"
    done
done
sql "CHECKPOINT" >/dev/null

# ------------------------------------------------------------------------------------------
progress "figure 6: durable increments through the gateway vs plain upsert, 32 connections, $T s per point"
# the same counter through the gateway: HTTP calls on 32 keep-alive connections, and WebSocket
# call frames on 1,000 sockets (one per object) with 32 calls in flight, by the C client
# (bench/ws_fanout.c calls-http|calls-ws); each run next to a pgbench run of the plain upsert with
# 32 clients (A B B A ...).  calls NAME MODE CLASS: one run, appended to $raw/NAME.jsonl
calls() {
    local name=$1 mode=$2 class=$3 try=0 line
    while :; do
        find_pids
        calm_begin
        line=$(DURABLE_PORT="$DURABLE_PORT" timeout 120 "$WS_FANOUT" "$mode" --class "$class" \
            --connections 32 --objects 1000 --seconds "$T" \
            --gateway-pid "$GATEWAY_PID" --host-pids "${HOST_PIDS// /,}" 2>>"$raw/$name.err" | tail -1)
        wait_for "SELECT sum(queue_depth) = 0 FROM durable.hosts" 60 || echo "  host queues did not drain"
        if ! calm_end && again "$try"; then try=$((try + 1)); continue; fi
        break
    done
    [ -n "$line" ] || line="{\"error\":\"ws_fanout $mode gave no result: $(tail -1 "$raw/$name.err")\"}"
    node bench/report.mjs merge "$line" other_cpu="$CALM_OTHER" steal_cpu="$CALM_STEAL" reruns=$try >>"$raw/$name.jsonl"
}
if [ -n "$WS_FANOUT" ]; then
    for cls in bench_counter_web bench_counter_web_async; do
        sql "SELECT count(durable.call('$cls', 'c' || i, 'inc')) FROM generate_series(1, 1000) i" >/dev/null
    done
    for durability in sync async; do
        cls=bench_counter_web
        pgopt=
        [ $durability = async ] && { cls=bench_counter_web_async; pgopt="-c synchronous_commit=off"; }
        for ((r = 1; r <= REPS; r++)); do
            if [ $((r % 2)) = 1 ]; then
                calls "fig6_http_$durability" calls-http $cls
                calls "fig6_ws_$durability" calls-ws $cls
                rep "fig6_plain_$durability" "$scripts/plain_1000.sql" "-T $T -c 32 -j 2" "$pgopt"
            else
                rep "fig6_plain_$durability" "$scripts/plain_1000.sql" "-T $T -c 32 -j 2" "$pgopt"
                calls "fig6_ws_$durability" calls-ws $cls
                calls "fig6_http_$durability" calls-http $cls
            fi
        done
        for via in http ws; do
            node bench/report.mjs calls "$raw/fig6_${via}_$durability.jsonl" fig=6 series="$via" \
                durability=$durability | tee -a "$results" | cut -c1-160 | sed 's/^/  /'
        done
        record "fig6_plain_$durability" fig=6 series=plain durability=$durability objects=1000 clients=32
    done
    sql "CHECKPOINT" >/dev/null
else
    echo "{\"fig\":6,\"error\":\"bench/ws_fanout.c did not build\"}" >>"$results"
fi

# ------------------------------------------------------------------------------------------
progress "figure 3: empty call round trip, one session ($RT_CALLS calls)"
BUDGET=LATENCY_RERUNS
REPS=1 pair "-c 1 -t $RT_CALLS" \
    "$scripts/echo.sql" "" "fig=3 series=durable clients=1" \
    "$scripts/select1.sql" "" "fig=3 series=select1 clients=1"
in_session() {
    psql -X -q -At -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE bench_rt (us float8);
DO \$\$
DECLARE
    t0 timestamptz;
    us float8[] := '{}';
BEGIN
    FOR i IN 1 .. 200 LOOP
        PERFORM durable.call('bench_echo', 'e1', 'echo', '{"a": 1}');
    END LOOP;
    FOR i IN 1 .. $RT_CALLS LOOP
        t0 := clock_timestamp();
        PERFORM durable.call('bench_echo', 'e1', 'echo', '{"a": 1}');
        us := us || (extract(epoch FROM clock_timestamp() - t0) * 1e6)::float8;
    END LOOP;
    INSERT INTO bench_rt SELECT unnest(us);
END
\$\$;
SELECT json_build_object('n', count(*),
    'p50_ms', round((percentile_disc(0.5) WITHIN GROUP (ORDER BY us) / 1000)::numeric, 4),
    'p99_ms', round((percentile_disc(0.99) WITHIN GROUP (ORDER BY us) / 1000)::numeric, 4),
    'max_ms', round((max(us) / 1000)::numeric, 4),
    'avg_ms', round((avg(us) / 1000)::numeric, 4)) FROM bench_rt;
SQL
}
try=0
while :; do
    calm_begin
    loop=$(in_session)
    if ! calm_end && again "$try"; then try=$((try + 1)); continue; fi
    break
done
if [ -n "$loop" ]; then
    node bench/report.mjs merge "$loop" fig=3 series=in_session clients=1 \
        other_cpu="$CALM_OTHER" steal_cpu="$CALM_STEAL" reruns=$try >>"$results"
    echo "  durable.call in session (DO loop): $loop (others $CALM_OTHER, steal $CALM_STEAL)"
fi

# ------------------------------------------------------------------------------------------
progress "figure 4: WebSocket"
find_pids
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((BIG + 500)) ]; then
    echo "  open-file limit $hard: the big room gets $((hard - 500)) sockets"
    BIG=$((hard - 500))
fi
# ws NAME MAX_RERUNS [--c] ARGS...: one ws_bench.mjs measurement (with --c: one of the C client
# bench/ws_fanout.c, same arguments and output), appended to the results
# fanout_calm FILE: the latency phases (a room's one-broadcast phase, the round trip) last a
# second or two, so the steal averaged over the whole measurement can hide a burst that falls
# into them: look at the steal the client measured during that phase itself
fanout_calm() {
    local steal
    steal=$(tail -1 "$1" | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
        try { const j = JSON.parse(s); const c = j.fanout ? j.fanout.cpu : (j.series === "rtt" ? j.cpu : null);
              console.log(c && c.steal != null ? c.steal : 0); }
        catch { console.log(0); } })')
    if awk -v s="$steal" -v l="$OTHER_LIMIT" 'BEGIN {exit !(s > l)}'; then
        echo "  (steal during the latency phase: $steal cores)"
        return 1
    fi
    return 0
}

ws() {
    local name=$1 max=$2 try=0 line calm gen=(node bench/ws_bench.mjs) client=
    shift 2
    if [ "$1" = --c ]; then
        shift
        gen=("$WS_FANOUT")
        client=',"client":"c"'
        if [ -z "$WS_FANOUT" ]; then
            echo "{\"fig\":4,\"series\":\"$1\"$client,\"error\":\"bench/ws_fanout.c did not build\"}" >>"$results"
            return
        fi
    fi
    while :; do
        calm_begin
        (
            ulimit -n "$(ulimit -Hn)" 2>/dev/null
            WS_MODULE_DIR="$work/test/ws" DURABLE_PORT="$DURABLE_PORT" \
                timeout 300 "${gen[@]}" "$@" --gateway-pid "$GATEWAY_PID" --host-pids "${HOST_PIDS// /,}"
        ) >"$raw/ws_$name.json"
        # the $connect/$close calls of the sockets are done before anything else runs
        wait_for "SELECT sum(queue_depth) = 0 FROM durable.hosts" 60 || echo "  host queues did not drain"
        calm_end; calm=$?
        fanout_calm "$raw/ws_$name.json" || calm=1
        if [ "$calm" != 0 ] && [ "$try" -lt "$max" ] && again "$try"; then try=$((try + 1)); continue; fi
        break
    done
    line=$(tail -1 "$raw/ws_$name.json")
    [ -n "$line" ] || line="{\"fig\":4,\"series\":\"$1\"$client,\"error\":\"ws_bench $name gave no result\"}"
    node bench/report.mjs merge "$line" other_cpu="$CALM_OTHER" steal_cpu="$CALM_STEAL" reruns=$try >>"$results"
    echo "  (others $CALM_OTHER, steal $CALM_STEAL)"
}
ws rtt 2 rtt --calls "$WS_CALLS"
ws floor 2 floor --sockets 100 --calls "$WS_CALLS" --flood-seconds "$FLOOD"
ws room100 2 room --sockets 100 --broadcasts "$BROADCASTS" --flood-seconds "$FLOOD" --inflight 8 --per-call 20
ws room100_c 2 --c room --sockets 100 --broadcasts "$BROADCASTS" --flood-seconds "$FLOOD" --inflight 8 --per-call 20
ws room100_raw 2 room --client raw --sockets 100 --broadcasts "$BROADCASTS" --flood-seconds "$FLOOD" --inflight 8 --per-call 20
ws room_big 0 room --sockets "$BIG" --broadcasts "$BROADCASTS" --flood-seconds "$FLOOD" --inflight 2 --per-call 2
ws room_big_c 0 --c room --sockets "$BIG" --broadcasts "$BROADCASTS" --flood-seconds "$FLOOD" --inflight 2 --per-call 2
# the C client against a trivial C server that it forks: the same phases, the server writes the
# frames of a call to each socket in one write() (one frame per write() in the fan-out)
ws floor_c 2 --c floor --bulk 1 --sockets 100 --broadcasts "$BROADCASTS" --flood-seconds "$FLOOD" --inflight 8 --per-call 20
ws floor_big_c 0 --c floor --bulk 1 --sockets "$BIG" --broadcasts "$BROADCASTS" --flood-seconds "$FLOOD" --inflight 2 --per-call 2

# ------------------------------------------------------------------------------------------
progress "figure 5: 1,000 alarms over 5 s"
alarm_run() {
    sql "TRUNCATE bench_alarm_log" >/dev/null
    # alarm k (0..999) is due 2 s + k * 5 ms from now, on object k % 100
    sql "SELECT count(*) FROM (
           SELECT durable.call('bench_alarm', 'a' || o, 'arm',
                    jsonb_build_object('alarms', jsonb_agg(jsonb_build_array('x' || k,
                        (t0 + make_interval(secs => 2 + k * 0.005))::text) ORDER BY k)))
             FROM (SELECT clock_timestamp() AS t0) s, generate_series(0, 999) k,
                  LATERAL (SELECT k % 100 AS o) x
            GROUP BY o, t0) q" >/dev/null
    sleep 7
    wait_for "SELECT count(*) >= 1000 FROM bench_alarm_log" 20 || echo "  not all alarms ran within 27 s"
}
try=0
while :; do
    calm_begin
    alarm_run
    if ! calm_end && again "$try"; then try=$((try + 1)); continue; fi
    break
done
alarms=$(sql "SELECT json_build_object('ran', count(*), 'retried', count(*) FILTER (WHERE attempt > 1),
    'p50_ms', round((percentile_disc(0.5) WITHIN GROUP (ORDER BY l) )::numeric, 3),
    'p99_ms', round((percentile_disc(0.99) WITHIN GROUP (ORDER BY l))::numeric, 3),
    'max_ms', round(max(l)::numeric, 3), 'min_ms', round(min(l)::numeric, 3))
  FROM (SELECT extract(epoch FROM ran_at - scheduled_at) * 1000 AS l, attempt FROM bench_alarm_log) q")
node bench/report.mjs merge "$alarms" fig=5 alarms=1000 objects=100 spread_s=5 \
    other_cpu="$CALM_OTHER" steal_cpu="$CALM_STEAL" reruns=$try >>"$results"
echo "  lateness: $alarms (others $CALM_OTHER, steal $CALM_STEAL)"

# ------------------------------------------------------------------------------------------
if [ "${BENCH_KNOBS:-1}" != 0 ]; then
    progress "tuning knobs: figure 1 (sync), 32 clients"
    BUDGET=THROUGHPUT_RERUNS
    knob() {
        REPS=1 point "$scripts/durable_$2.sql" "-T $T -c 32 -j 2" "" fig=knob "setting=$1" objects="$2" clients=32
    }
    knob "defaults (hosts 2, max_batch 64)" 1000
    knob "defaults (hosts 2, max_batch 64)" 1
    sql "ALTER SYSTEM SET durable.max_batch = 1" >/dev/null
    sql "SELECT pg_reload_conf()" >/dev/null
    sleep 1
    knob "durable.max_batch = 1" 1000
    knob "durable.max_batch = 1" 1
    sql "ALTER SYSTEM RESET durable.max_batch" >/dev/null
    sql "ALTER SYSTEM SET durable.cache_size = 0" >/dev/null
    sql "SELECT pg_reload_conf()" >/dev/null
    sleep 1
    knob "durable.cache_size = 0 (no storage cache)" 1000
    knob "durable.cache_size = 0 (no storage cache)" 1
    sql "ALTER SYSTEM RESET durable.cache_size" >/dev/null
    sql "SELECT pg_reload_conf()" >/dev/null
    for h in 1 4; do
        sql "ALTER SYSTEM SET durable.hosts = $h" >/dev/null
        cluster_restart
        wait_hosts 30 || echo "  hosts did not start"
        find_pids
        knob "durable.hosts = $h" 1000
    done
    sql "ALTER SYSTEM RESET durable.hosts" >/dev/null
fi

# ------------------------------------------------------------------------------------------
cluster_stop
M_BACKGROUND_END=$(background_busy)
log_problems() {    # ERROR/FATAL/PANIC lines of the server log, but the stops of the knob restarts
    grep -E ' (ERROR|FATAL|PANIC): ' "$work/cluster/server.log" | grep -v 'due to administrator command'
}
M_LOG_PROBLEMS=$(log_problems | wc -l)
export M_LOG_PROBLEMS
write_machine
if [ "$M_LOG_PROBLEMS" != 0 ]; then
    echo "server log: $M_LOG_PROBLEMS ERROR/FATAL/PANIC lines, e.g.:"
    log_problems | head -5
fi
node bench/report.mjs report "$results" "$out/machine.json" "$out" || exit 1
echo
sed -n '/^## Targets/,/targets pass/p' "$out/latest.md"
