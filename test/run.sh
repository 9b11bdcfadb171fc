#!/usr/bin/env bash
# test/run.sh — every test of pg_durable_objects (what `make test` runs).
#
# As root (CI, a fresh machine): installs missing Debian packages, builds and installs the
# extension, copies the tests to a scratch folder and re-runs itself there as the unprivileged
# `postgres` OS user (initdb refuses root).  As any other user: expects the extension installed.
#
# Then: one throw-away cluster with shared_preload_libraries for pg_regress (sql/, expected/),
# isolation specs (test/specs/) and the integration tests (test/integration/*.sh, which print
# TAP-style "ok - ..." / "not ok - ..." lines; a script that exits non-zero or prints no
# result counts as failed; "skip - ..." lines count as skipped, e.g. the Citus tests where
# Citus could not be built).  TESTS=REGEX runs only the integration tests it matches;
# PG_TREE=DIR tests against a private copy of the server instead of the system's.  The last line is "N passed, M failed"; the exit status is
# non-zero on any failure.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
# the pgxs folder (pg_config --pgxs names .../pgxs/src/makefiles/pgxs.mk): pg_regress and
# pg_isolation_regress are in its src/test/
PGXS_DIR=$(dirname "$(dirname "$(dirname "$(/usr/lib/postgresql/15/bin/pg_config --pgxs 2>/dev/null || echo /x/y/z)")")")

# old_release VERSION DEST: build a past release for the upgrade test (test/old-release.sh);
# sets RELEASE_<VERSION>_BIN to its server's bin folder, or to "error: why" (the test then
# fails and says why).  Only when the upgrade test is to run.
old_release() {
    local var="RELEASE_${1//./_}_BIN" out
    if [ -n "${TESTS:-}" ] && ! [[ 31_upgrade =~ $TESTS ]]; then
        printf -v "$var" '%s' "error: not built (TESTS=$TESTS)"
    elif out=$(test/old-release.sh "$1" "$2" 2>&1); then
        printf -v "$var" '%s' "$(tail -1 <<<"$out")"
    else
        printf -v "$var" '%s' "error: $(tr '\n' ' ' <<<"$out")"
    fi
}

if [ "${1:-}" != "--inside" ]; then
    cd "$here"
    if [ "$(id -u)" = 0 ]; then
        test/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
        # PG_TREE=DIR: install into a private copy of the server (test/pg-tree.sh) instead of
        # the system's, so builds of several branches can be tested at once on one machine
        destdir=
        if [ -n "${PG_TREE:-}" ]; then
            PGBIN=$(test/pg-tree.sh "$PG_TREE") || { echo "0 passed, 1 failed"; exit 1; }
            export PGBIN
            destdir="DESTDIR=$PG_TREE"
        fi
        if ! { make -s -j2 >/dev/null && make -s install $destdir >/dev/null; }; then
            echo "build failed"
            echo "0 passed, 1 failed"
            exit 1
        fi
        # Citus for the scale-out tests (test/citus/build.sh; skipped when already installed).
        # A machine that cannot build it still runs everything else: the Citus tests then
        # report themselves skipped, with this reason.
        citus_reason=
        if [ -z "${TESTS:-}" ] || [[ 70_citus =~ $TESTS || 71_citus =~ $TESTS || 72_citus =~ $TESTS || 73_citus =~ $TESTS ]]; then
            citus_start=$(date +%s)
            if citus_err=$(test/citus/build.sh 2>&1 >/dev/null); then
                [ -n "$citus_err" ] && echo "$citus_err ($(( $(date +%s) - citus_start ))s)"
            else
                citus_reason=$(echo "$citus_err" | tail -1)
                echo "Citus not available, its tests will be skipped: $citus_reason"
            fi
        fi
        work=$(mktemp -d /tmp/durable-test.XXXXXX)
        cp -r sql expected test "$work/"
        cp -r examples clients src "$work/"
        old_release 0.1 "/tmp/durable-release-0.1"
        chmod 755 "$work"
        chown -R postgres: "$work"
        runuser -u postgres -- env TESTS="${TESTS:-}" WS_TESTS="${WS_TESTS:-}" \
            RELEASE_0_1_BIN="$RELEASE_0_1_BIN" \
            CITUS_SKIP_REASON="$citus_reason" \
            PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}" "$work/test/run.sh" --inside "$work"
        rc=$?
    else
        work=$(mktemp -d /tmp/durable-test.XXXXXX)
        cp -r sql expected test "$work/"
        cp -r examples clients src "$work/"
        old_release 0.1 "${TMPDIR:-/tmp}/durable-release-0.1-$(id -u)"
        RELEASE_0_1_BIN="$RELEASE_0_1_BIN" "$work/test/run.sh" --inside "$work"
        rc=$?
    fi
    if [ $rc = 0 ]; then rm -rf "$work"; else echo "(test files and logs kept in $work)" >&2; fi
    exit $rc
fi

work=$2
cd "$work"
source test/lib.sh
PGXS_DIR=${PGXS_DIR:-/usr/lib/postgresql/15/lib/pgxs}
export TEST_ROOT=$work
# below 32768: the kernel hands out 32768-60999 as the local ports of outgoing connections
# (ip_local_port_range), so a listener there can find its port taken by a client socket of
# some other test (the gateway's port is port + 1000; tests add up to 300 for their clusters)
port=$((20000 + RANDOM % 4000))
passed=0
failed=0
skipped=0
skip_reasons=

count_regress() {    # count "... ok" / "... FAILED" lines of pg_regress output in $1
    local p f
    p=$(grep -cE '\.\.\. ok' "$1")
    f=$(grep -cE '\.\.\. FAILED|failed \(ignored\)' "$1")
    # a run that did not get to its summary (no pg_regress, a missing expected file) fails
    if ! grep -qE '^ *(All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests (failed|passed))' "$1"; then
        echo "   not ok - $(basename "$1" .out) did not finish:"
        tail -5 "$1" | sed 's/^/   | /'
        f=$((f + 1))
    fi
    passed=$((passed + p))
    failed=$((failed + f))
}

echo "== cluster"
cluster_init "$work/cluster" "$port" || { echo "0 passed, 1 failed"; exit 1; }
cluster_start || { cat "$work/cluster/server.log"; echo "0 passed, 1 failed"; exit 1; }
wait_hosts 30 || echo "warning: host workers did not all start"

echo "== pg_regress"
mkdir -p "$work/results/regress"
"$PGXS_DIR/src/test/regress/pg_regress" --inputdir="$work" --outputdir="$work/results/regress" \
    --use-existing --host="$PGHOST" --port="$PGPORT" --dbname=postgres --bindir="$PGBIN" \
    --schedule="$work/test/regress_schedule" >"$work/results/regress.out" 2>&1
cat "$work/results/regress.out" | grep -E '\.\.\.|tests' || true
count_regress "$work/results/regress.out"
[ -f "$work/results/regress/regression.diffs" ] && head -200 "$work/results/regress/regression.diffs"

echo "== isolation"
mkdir -p "$work/results/isolation"
specs=$(cd "$work/test/specs" && ls *.spec 2>/dev/null | sed 's/\.spec$//')
if [ -n "$specs" ]; then
    "$PGXS_DIR/src/test/isolation/pg_isolation_regress" --inputdir="$work/test" \
        --outputdir="$work/results/isolation" --use-existing --host="$PGHOST" --port="$PGPORT" \
        --dbname=postgres --bindir="$PGBIN" $specs >"$work/results/isolation.out" 2>&1
    grep -E '\.\.\.|tests' "$work/results/isolation.out" || true
    count_regress "$work/results/isolation.out"
    [ -f "$work/results/isolation/regression.diffs" ] && head -200 "$work/results/isolation/regression.diffs"
fi

echo "== integration"
for t in "$work"/test/integration/*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    # TESTS=REGEX (a developer's shortcut) runs only the integration tests it matches
    [ -n "${TESTS:-}" ] && ! [[ $name =~ $TESTS ]] && continue
    echo "-- $name"
    start=$(date +%s)
    timeout 600 bash "$t" >"$work/results/$name.out" 2>&1
    rc=$?
    sed 's/^/   /' "$work/results/$name.out" | grep -E '^   (ok|not ok)' || true
    p=$(grep -c '^ok - ' "$work/results/$name.out")
    f=$(grep -c '^not ok - ' "$work/results/$name.out")
    s=$(grep -c '^skip - ' "$work/results/$name.out")
    if [ "$s" != 0 ]; then
        grep '^skip - ' "$work/results/$name.out" | head -3 | sed 's/^/   /'
        skipped=$((skipped + s))
        skip_reasons="$skip_reasons${skip_reasons:+; }$name: $(grep -m1 '^skip - ' "$work/results/$name.out" | sed 's/^skip - [^(]*(\(.*\))$/\1/')"
    fi
    if [ $rc != 0 ] && [ "$f" = 0 ]; then
        f=1
        echo "   not ok - $name exited with status $rc"
    fi
    # a script that reports nothing proved nothing (it crashed, or its checks never ran)
    if [ "$p" = 0 ] && [ "$f" = 0 ] && [ "$s" = 0 ]; then
        f=1
        echo "   not ok - $name printed no result"
    fi
    if [ "$f" != 0 ]; then
        echo "   --- output of $name:"
        tail -40 "$work/results/$name.out" | sed 's/^/   | /'
    fi
    echo "   ($(( $(date +%s) - start ))s)"
    passed=$((passed + p))
    failed=$((failed + f))
    # every test leaves the cluster running; bring it back if one did not
    pg_ctl -D "$PGDATA" status >/dev/null 2>&1 || cluster_start
done

cluster_stop
if [ "$failed" != 0 ]; then
    echo "--- server log (last 60 lines):"
    tail -60 "$work/cluster/server.log"
fi
[ "$skipped" != 0 ] && echo "$skipped skipped ($skip_reasons)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
