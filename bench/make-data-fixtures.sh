#!/usr/bin/env bash
# The data-source fixtures and the check of what Ember writes, with the Python writers/readers.
#
#   bash bench/make-data-fixtures.sh            # regenerate testdata/data, then the round trip
#   bash bench/make-data-fixtures.sh --check    # fail if regenerating changes a committed byte
#
# 1. testdata/data/make-fixtures.sh makes a venv (VENV, default /work/scratch/data-venv, outside
#    the repository) with pyarrow, duckdb and polars from PyPI and writes the small Parquet, CSV,
#    JSON-lines and compressed-text files of testdata/data with expected.json (committed, so
#    `cargo test` needs no Python).
# 2. Ember writes the fixtures' datasets back (the ignored integration test
#    data_sources::write_datasets_for_the_roundtrip_check, into a scratch directory).
# 3. testdata/data/roundtrip-check.py reads Ember's output with pyarrow and DuckDB and compares
#    every row with expected.json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$ROOT/testdata/data"
export VENV="${VENV:-/work/scratch/data-venv}"

bash "$DATA/make-fixtures.sh" "$@"

out="$(mktemp -d "${TMPDIR:-/tmp}/ember-roundtrip.XXXXXX")"
trap 'rm -rf "$out"' EXIT
(cd "$ROOT" && EMBER_ROUNDTRIP_DIR="$out" cargo test -p ember --test integration -- \
  --ignored --exact data_sources::write_datasets_for_the_roundtrip_check)

check() { "$VENV/bin/python" "$DATA/roundtrip-check.py" "$@"; }
status=0
# Written from typed rows (ember::rdd::{Date, Timestamp, TimestampNtz, Decimal}): the Parquet
# column types compare too.
check "$out/people-parquet" --expected "$DATA/expected.json#datasets/people" || status=1
# datasets/numbers has the schema only; the rows are the fixture file's.
check "$out/numbers-parquet" \
  --expected "$DATA/expected.json#files/numbers.pyarrow.rowgroups.parquet" || status=1
check "$out/people-json" --expected "$DATA/expected.json#datasets/people" || status=1
check "$out/people-csv" --expected "$DATA/expected.json#datasets/people (flat columns)" || status=1
[ "$status" = 0 ] && echo "make-data-fixtures: Ember's output reads back identically"
exit "$status"
