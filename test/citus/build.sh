#!/usr/bin/env bash
# test/citus/build.sh — build and install Citus for the scale-out tests (test/integration/70_citus.sh).
#
# Citus is not packaged by Debian 12, so its release source is kept beside the repository
# (../shared/vendor/citus, see its README.md; CITUS_VENDOR=DIR overrides).  As root: installs the
# Debian packages the build needs, unpacks the source into a scratch folder, applies the PG 15.20
# header patch when the installed headers need it, builds without LLVM bitcode and installs into
# the PostgreSQL of /usr/lib/postgresql/15 — or, when PG_TREE=DIR is set, into that private copy
# of the server (DESTDIR=DIR, as `PG_TREE=DIR make test` does for our own extension).
# Does nothing when citus.so of this version is already installed there.
#
# Exit status 0: Citus is installed.  Otherwise the last line of stderr says why not (the runner
# then reports the Citus tests as skipped with that reason); a failed build's log is kept.
set -u
version=13.2.2
here=$(cd "$(dirname "$0")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
dest=${PG_TREE:-}
fail() { echo "citus: $*" >&2; exit 1; }

[ -x "$PG_CONFIG" ] || fail "$PG_CONFIG not found (postgresql-server-dev-15 missing)"
[ -z "$dest" ] || "$here/test/pg-tree.sh" "$dest" >/dev/null || fail "test/pg-tree.sh $dest failed"
pkglibdir=$dest$("$PG_CONFIG" --pkglibdir)
sharedir=$dest$("$PG_CONFIG" --sharedir)

installed() {
    [ -f "$pkglibdir/citus.so" ] && [ -f "$sharedir/extension/citus.control" ] &&
        grep -aq "Citus $version" "$pkglibdir/citus.so"
}
installed && exit 0
vendor=${CITUS_VENDOR:-}
if [ -z "$vendor" ]; then
    for d in "$here/../shared/vendor/citus" /work/shared/vendor/citus; do
        [ -f "$d/citus-$version.tar.gz" ] && { vendor=$d; break; }
    done
fi
[ -n "$vendor" ] && [ -f "$vendor/citus-$version.tar.gz" ] ||
    fail "source citus-$version.tar.gz not found (looked in ../shared/vendor/citus; set CITUS_VENDOR)"
[ "$(id -u)" = 0 ] || fail "citus.so $version is not installed in ${dest:-the system} and only root can build it"

# one build at a time per target (make test of two worktrees may share a PG_TREE)
mkdir -p "$pkglibdir"
exec 8>"$pkglibdir/.citus-build.lock"
flock 8
installed && exit 0
log=$(mktemp "${TMPDIR:-/tmp}/citus-build.XXXXXX.log")

pkgs=(libkrb5-dev liblz4-dev libzstd-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1 ||
      { apt-get update -qq >>"$log" 2>&1 &&
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1; }; } ||
        fail "could not install ${missing[*]} with apt-get (see $log)"
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/citus-build.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
tar xzf "$vendor/citus-$version.tar.gz" -C "$scratch" || fail "could not unpack citus-$version.tar.gz"
cd "$scratch/citus-$version" || fail "citus-$version/ missing in the archive"
if grep -q have_createdb_privilege "$("$PG_CONFIG" --includedir-server)/commands/dbcommands.h"; then
    patch -s -p1 <"$vendor/pg15-exported-have_createdb_privilege.patch" >>"$log" 2>&1 ||
        fail "the have_createdb_privilege patch did not apply (see $log)"
fi
start=$(date +%s)
{ ./configure --without-libcurl PG_CONFIG="$PG_CONFIG" &&
  make -j2 with_llvm=no &&
  make install with_llvm=no ${dest:+DESTDIR="$dest"}; } >>"$log" 2>&1 ||
    fail "build failed (see $log: $(grep -m1 -iE 'error' "$log" | cut -c1-160))"
installed || fail "installed, but citus.so $version not found in $pkglibdir"
rm -f "$log"
chmod -R a+rX "$pkglibdir" "$sharedir/extension"
echo "citus $version built and installed into ${dest:-the system} in $(( $(date +%s) - start ))s" >&2
