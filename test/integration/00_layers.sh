#!/usr/bin/env bash
# The structure of src/: calls between files go one way only, down the layers of
# docs/internals.md (_PG_init; sql/ and gateway/; host/; shared/), and no files refer to each
# other in a circle (test/layers.py draws the references with Universal Ctags).
source "$TEST_ROOT/test/lib.sh"
set -u
python3 "$TEST_ROOT/test/layers.py" "$TEST_ROOT/src"
