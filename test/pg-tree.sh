#!/usr/bin/env bash
# test/pg-tree.sh DEST — a private, relocated copy of the installed PostgreSQL 15 server.
#
# PostgreSQL finds its share/ and lib/ folders relative to its own binary, so a copy of
# /usr/lib/postgresql/15 and /usr/share/postgresql/15 under DEST runs as a separate install:
# `make install DESTDIR=DEST` then puts a build of ours into it without touching the system's.
# Used by `PG_TREE=DIR make test` (several builds tested side by side on one machine) and by
# the upgrade test, which runs a 0.1 build of the extension in such a copy.  Idempotent.
set -eu
dest=${1:?usage: test/pg-tree.sh DEST}
mkdir -p "$dest/usr/lib/postgresql" "$dest/usr/share/postgresql"
if [ ! -x "$dest/usr/lib/postgresql/15/bin/postgres" ]; then
    cp -a /usr/lib/postgresql/15 "$dest/usr/lib/postgresql/"
    cp -a /usr/share/postgresql/15 "$dest/usr/share/postgresql/"
    # a copy made from a system that had ours installed must not carry it along
    rm -f "$dest"/usr/lib/postgresql/15/lib/pg_durable_objects.so \
          "$dest"/usr/share/postgresql/15/extension/pg_durable_objects*
    rm -rf "$dest"/usr/lib/postgresql/15/lib/bitcode/pg_durable_objects*
fi
chmod -R a+rX "$dest"
echo "$dest/usr/lib/postgresql/15/bin"
