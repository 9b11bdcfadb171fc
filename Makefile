# pg_durable_objects — PGXS build plus the project's own commands.
#
#   make            build pg_durable_objects.so
#   make install    install it into the PostgreSQL found by PG_CONFIG
#   make test       install Debian packages if missing, build, install, run every test
#   make demo       the same set-up, then a cluster with the examples until Ctrl-C
#   make bench      benchmarks; writes bench/results/latest.md

EXTENSION = pg_durable_objects
MODULE_big = pg_durable_objects
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/*/*.c)))
DATA = $(sort $(wildcard sql/pg_durable_objects--*.sql))
# The full script of the current version is built, not written: the last release's full
# script followed by the upgrade script, so every definition exists once and a fresh
# CREATE EXTENSION ends in the schema an ALTER EXTENSION UPDATE reaches (31_upgrade checks).
DATA_built = pg_durable_objects--0.2.sql
PGFILEDESC = "pg_durable_objects - Durable Objects inside PostgreSQL"

PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers
# the SQL version this library is built for: the control file's default_version
DURABLE_LIBRARY_VERSION := $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)
PG_CPPFLAGS = -I$(srcdir)/src -DDURABLE_LIBRARY_VERSION='"$(DURABLE_LIBRARY_VERSION)"'
SHLIB_LINK = -lwebsockets -ljansson -lev
EXTRA_CLEAN = test/results test/tmp_check bench/results/tmp

# Debian's server development package installs its pg_config here.
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
else
all install:
	@echo "PostgreSQL server headers not found; run 'make test' or test/install-deps.sh" >&2
	@exit 1
endif

pg_durable_objects--0.2.sql: sql/pg_durable_objects--0.1.sql sql/pg_durable_objects--0.1--0.2.sql
	{ echo '/* pg_durable_objects 0.2: install script, built by the Makefile from'; \
	  echo '   sql/pg_durable_objects--0.1.sql and sql/pg_durable_objects--0.1--0.2.sql. */'; \
	  echo; \
	  printf '%s\n' '\echo Use "CREATE EXTENSION pg_durable_objects" to load this file. \quit'; \
	  grep -v '^\\echo ' sql/pg_durable_objects--0.1.sql | sed 1d; \
	  grep -v '^\\echo ' sql/pg_durable_objects--0.1--0.2.sql | sed 1d; } >$@

# every object depends on every header of ours (they are small)
$(OBJS): $(wildcard src/*/*.h)
src/shared/catalog.o: $(EXTENSION).control

.PHONY: test demo bench deps
deps:
	test/install-deps.sh

test:
	test/run.sh

demo:
	test/demo.sh

bench:
	bench/run.sh
