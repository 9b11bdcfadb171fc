#!/usr/bin/env bash
# bench/compare.sh — is figure 1 of one build as fast as another's, beyond the noise of the disk?
#
#   bench/compare.sh OLD_REV [NEW_REV] [ROUNDS]      (as root; NEW_REV defaults to HEAD, ROUNDS to 4)
#   BENCH_PATH=http|ws bench/compare.sh ...           the same through the gateway (figure 6)
#
# One `make bench` per build gives two runs per point, and on this machine the disk (fdatasync
# between 4,000 and 7,500 ops/s from minute to minute) moves a synchronous figure by ±20 % between
# runs, plain SQL included.  This script measures only figure 1's hardest point — durable
# increments on 1,000 objects from 32 pgbench clients against the plain upsert — many times, the
# two builds interleaved: each round installs one build, starts a fresh cluster, runs
# durable/plain pairs (BENCH_REPS, default 3, of BENCH_SECONDS, default 5), then the other build
# (order old-new, new-old, ...).  With BENCH_PATH=http or ws the durable runs are figure 6's
# instead: the C client bench/ws_fanout.c (calls-http, calls-ws) with 32 calls in flight on the
# class bench_counter_web, against the same plain upsert.  Each run's ratio to the plain upsert of the same minute is what
# counts; it prints every run and, per build, the mean ratio and the CPU time per call
# (all cores, from /proc/stat).  Leaves NEW_REV installed.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
old=${1:?usage: bench/compare.sh OLD_REV [NEW_REV] [ROUNDS]}
new=${2:-HEAD}
rounds=${3:-4}
reps=${BENCH_REPS:-3}
secs=${BENCH_SECONDS:-5}
path=${BENCH_PATH:-sql}
case $path in sql|http|ws) ;; *) echo "BENCH_PATH is sql, http or ws"; exit 1 ;; esac
[ "$(id -u)" = 0 ] || { echo "run as root (it installs each build in turn)"; exit 1; }

work=$(mktemp -d /tmp/durable-compare.XXXXXX)
chmod 755 "$work"
trap 'cd "$here" && git worktree remove --force "$work/old" 2>/dev/null; git worktree remove --force "$work/new" 2>/dev/null; rm -rf "$work"' EXIT
for b in old new; do
    rev=$old; [ $b = new ] && rev=$new
    git -C "$here" worktree add --detach -f "$work/$b" "$rev" >/dev/null 2>&1 || { echo "no revision $rev"; exit 1; }
    make -s -C "$work/$b" -j2 >/dev/null 2>&1 || { echo "$rev does not build"; exit 1; }
    echo "$b = $(git -C "$work/$b" rev-parse --short HEAD)"
done
cp "$here/test/lib.sh" "$here/bench/setup.sql" "$work/"
cc -O2 -o "$work/ws_fanout" "$here/bench/ws_fanout.c" || { echo "bench/ws_fanout.c does not build"; exit 1; }
chown -R postgres: "$work"

# one build's runs on a fresh cluster, as the postgres OS user: prints "durable plain cpu_us_d cpu_us_p" per run
cat >"$work/runs.sh" <<'EOF'
set -u
work=$1 reps=$2 secs=$3 path=$4
cd "$work" && source ./lib.sh && export PATH="$PGBIN:$PATH"
rm -rf "$work/cluster"
cluster_init "$work/cluster" $((26000 + RANDOM % 900)) "shared_buffers = 256MB" \
    "checkpoint_timeout = 30min" "max_wal_size = 8GB" >/dev/null || exit 1
cluster_start && wait_for "SELECT count(*) >= 1 FROM pg_stat_activity WHERE backend_type LIKE 'pg_durable_objects %'" 30 || exit 1
psql -X -q -v ON_ERROR_STOP=1 -f setup.sql >/dev/null || exit 1
printf '%s\n' '\set id random(1, 1000)' "SELECT durable.call('bench_counter', 'c' || :id, 'inc');" >durable.sql
printf '%s\n' '\set id random(1, 1000)' \
    "INSERT INTO bench_plain VALUES ('c' || :id, 1) ON CONFLICT (id) DO UPDATE SET n = bench_plain.n + 1;" >plain.sql
sql "SELECT count(durable.call('bench_counter', 'c' || i, 'inc')) FROM generate_series(1, 1000) i" >/dev/null
sql "SELECT count(durable.call('bench_counter_web', 'c' || i, 'inc')) FROM generate_series(1, 1000) i" >/dev/null
wait_gateway 30 || exit 1
sql "INSERT INTO bench_plain SELECT 'c' || i, 1 FROM generate_series(1, 1000) i ON CONFLICT DO NOTHING" >/dev/null
sql "VACUUM ANALYZE" >/dev/null; sql "CHECKPOINT" >/dev/null
pgbench -n -M prepared -T 2 -c 8 -j 2 -f durable.sql >/dev/null 2>&1
pgbench -n -M prepared -T 2 -c 8 -j 2 -f plain.sql >/dev/null 2>&1
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
run() {   # calls/s and CPU µs per call of one pgbench run
    local b0 b1 out
    b0=$(busy)
    out=$(pgbench -n -M prepared -T "$secs" -c 32 -j 2 -f "$1" 2>&1)
    b1=$(busy)
    echo "$out" | awk -v j=$((b1 - b0)) -v hz="$(getconf CLK_TCK)" '/^tps/ {t = $3}
        /^number of transactions actually processed/ {n = $NF} END {printf "%.0f %.0f", t, j * 1e6 / hz / n}'
}
gateway() {   # calls/s and CPU µs per call of one ws_fanout run (figure 6)
    local b0 b1 out
    b0=$(busy)
    out=$(DURABLE_PORT=$DURABLE_PORT ./ws_fanout "calls-$path" --class bench_counter_web --connections 32 \
        --objects 1000 --seconds "$secs" 2>/dev/null | tail -1)
    b1=$(busy)
    # the busy time of the 1 s warm-up and the drain is counted too: per call it is a little high
    echo "$out" | node -e 'let s = ""; process.stdin.on("data", (d) => s += d).on("end", () => {
        const j = JSON.parse(s); const [j0, hz, secs] = process.argv.slice(1).map(Number);
        console.log(Math.round(j.calls_per_s) + " " + Math.round(j0 / hz * 1e6 / (j.calls_per_s * (secs + 1.5))));
    })' "$((b1 - b0))" "$(getconf CLK_TCK)" "$secs"
}
durable() { if [ "$path" = sql ]; then run durable.sql; else gateway; fi; }
for r in $(seq 1 "$reps"); do
    if [ $((r % 2)) = 1 ]; then d=$(durable); p=$(run plain.sql); else p=$(run plain.sql); d=$(durable); fi
    set -- $d $p
    echo "$1 $3 $2 $4"
done
cluster_stop
EOF

for r in $(seq 1 "$rounds"); do
    order="old new"; [ $((r % 2)) = 0 ] && order="new old"
    for b in $order; do
        make -s -C "$work/$b" install >/dev/null || exit 1
        out=$(runuser -u postgres -- bash "$work/runs.sh" "$work" "$reps" "$secs" "$path" 2>&1)
        [ -n "$out" ] && ! grep -qv '^[0-9]' <<<"$out" || { echo "$b round $r failed:"; echo "$out" | tail -5
            tail -5 "$work/cluster/server.log" 2>/dev/null; exit 1; }
        while read -r d p cd cp; do
            echo "$b round $r: durable $d/s plain $p/s ratio $(awk -v d="$d" -v p="$p" 'BEGIN {printf "%.3f", d / p}')" \
                "cpu/call durable $cd us plain $cp us"
        done <<<"$out"
    done
done | tee "$work/runs.log"
echo "== per build (mean over runs; ratio = durable / plain of the same minute)"
for b in old new; do
    grep "^$b " "$work/runs.log" | awk -v b="$b" '{d += $5; p += $7; r += $9; cd += $12; n++}
        END {if (n) printf "%s: %d runs, durable %.0f/s, plain %.0f/s, mean ratio %.3f, cpu/call durable %.0f us\n", b, n, d / n, p / n, r / n, cd / n}'
done
