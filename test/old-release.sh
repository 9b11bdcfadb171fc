#!/usr/bin/env bash
# test/old-release.sh VERSION DEST — a released version of pg_durable_objects, built from
# this repository's git history and installed into a private copy of the server
# (test/pg-tree.sh) under DEST.  Prints the bin folder of that copy.  The upgrade test
# (31_upgrade) runs the old release there, then the current build on the same data folder.
#
# Kept between runs: a DEST that already holds the library of the release is reused.
set -eu
version=${1:?usage: test/old-release.sh VERSION DEST}
dest=${2:?usage: test/old-release.sh VERSION DEST}
# every release: its version and the commit it was released from (docs/internals.md,
# Releases and upgrades)
case $version in
    0.1) rev=0cbeb55 ;;
    *) echo "old-release: no release $version" >&2; exit 1 ;;
esac
repo=$(cd "$(dirname "$0")/.." && pwd)
bin="$dest/usr/lib/postgresql/15/bin"
if [ -f "$dest/.built-$rev" ] && [ -x "$bin/postgres" ]; then
    echo "$bin"
    exit 0
fi
git -C "$repo" cat-file -e "$rev^{commit}" 2>/dev/null || {
    echo "old-release: commit $rev is not in the git history of $repo (a shallow clone?)" >&2
    exit 1
}
"$repo/test/pg-tree.sh" "$dest" >/dev/null
src=$(mktemp -d /tmp/durable-old-src.XXXXXX)
trap 'rm -rf "$src"' EXIT
git -C "$repo" archive "$rev" | tar -x -C "$src"
# with_llvm=no: no bitcode (several times faster to build; the server does not need it)
make -C "$src" -s -j2 with_llvm=no >"$src/build.log" 2>&1 &&
    make -C "$src" -s install with_llvm=no DESTDIR="$dest" >>"$src/build.log" 2>&1 || {
    tail -20 "$src/build.log" >&2
    exit 1
}
touch "$dest/.built-$rev"
chmod -R a+rX "$dest"
echo "$bin"
