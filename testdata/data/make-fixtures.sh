#!/usr/bin/env bash
# Makes (or checks) the data-source fixtures of this directory.
#
#   bash testdata/data/make-fixtures.sh           # (re)write the fixtures and expected.json here
#   bash testdata/data/make-fixtures.sh --check   # write them to a scratch dir, fail if a byte
#                                                 # differs
#
# Creates a Python venv (VENV, default /work/scratch/data-venv: outside the repository) with the
# pinned writers below from PyPI, then runs make-fixtures.py. The output is deterministic for
# these versions; another version of a writer may change bytes (created_by, page layout) but not
# the rows, which make-fixtures.py checks against its canonical data before writing expected.json.
# spark-results.json (Spark's own reading of some fixtures) is made separately by spark-check.py.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${VENV:-/work/scratch/data-venv}"
PY="${PYTHON:-python3}"
PINS=(pyarrow==26.0.1 duckdb==2.0.1 polars==2.1.0)

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PINNED='import sys, importlib.metadata as m
sys.exit(any(m.version(p.split("==")[0]) != p.split("==")[1] for p in sys.argv[1:]))'
if ! "$VENV/bin/python" -c "$PINNED" "${PINS[@]}" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
fi

if [ "${1:-}" = "--check" ]; then
  out="$(mktemp -d "${TMPDIR:-/tmp}/ember-fixtures.XXXXXX")"
  trap 'rm -rf "$out"' EXIT
  "$VENV/bin/python" "$HERE/make-fixtures.py" "$out"
  # Compare every generated file with the committed one (the scripts themselves are not generated).
  status=0
  while IFS= read -r f; do
    if ! cmp -s "$out/$f" "$HERE/$f"; then echo "differs: $f"; status=1; fi
  done < <(cd "$out" && find . -type f | sed 's|^\./||' | sort)
  [ "$status" = 0 ] && echo "make-fixtures --check: all generated files identical"
  exit "$status"
fi
"$VENV/bin/python" "$HERE/make-fixtures.py" "$HERE"
