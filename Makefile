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
PGFILEDESC = "pg_durable_objects - Durable Objects inside PostgreSQL"

PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers
PG_CPPFLAGS = -I$(srcdir)/src
SHLIB_LINK = -lwebsockets -ljansson
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

# every object depends on every header of ours (they are small)
$(OBJS): $(wildcard src/*/*.h)

.PHONY: test demo bench deps
deps:
	test/install-deps.sh

test:
	test/run.sh

demo:
	test/demo.sh

bench:
	bench/run.sh
