#!/usr/bin/env bash
# W8 (Parquet scan, filter, aggregate; bench/README.md) on Ember, Spark and DuckDB, one after
# another on this machine, each answer checked against the generator's _expected.json, then a
# table of the medians.
#
#   bash bench/w8-compare.sh                  # the full 1 GiB dataset (100,000,000 rows)
#   ROWS=2000000 bash bench/w8-compare.sh     # a small one: checks that everything runs and agrees
#
# Steps: (1) a venv (VENV, default /work/scratch/data-venv, the one of
# testdata/data/make-fixtures.sh) with pyarrow, duckdb and numpy; (2) the dataset in DATA
# (default $WORK/w8-<ROWS>), made by w8-gen.py unless its _expected.json already says ROWS rows;
# (3) ember-bench W8 on local[2] and on CLUSTER_MASTER; (4) Spark 4.3.0 local[2] through the
# anchor's venv ($WORK/venv of ../shared/anchors/spark/run.sh, installed here when missing),
# bench/w8-spark.py; (5) DuckDB, bench/w8.sql through bench/w8-duckdb.py.
# Knobs (environment): ROWS, RUNS (3), WORK (/tmp/ember-anchor, shared with run.sh), DATA,
# OUT (logs and table, /tmp/ember-w8), PROFILE (cargo profile of ember-bench: release),
# CLUSTER_MASTER (local-cluster[2,1,2048]), ENGINES ("ember spark duckdb"), HEAP (8g),
# SPARK_VENV (a venv with pyspark 4.3.0: $WORK/venv), KEEP_DATA=0 to delete the dataset at the
# end.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
ROWS="${ROWS:-100000000}"
RUNS="${RUNS:-3}"
export WORK="${WORK:-/tmp/ember-anchor}"
DATA="${DATA:-$WORK/w8-$ROWS}"
OUT="${OUT:-/tmp/ember-w8}"
PROFILE="${PROFILE:-release}"
CLUSTER_MASTER="${CLUSTER_MASTER:-local-cluster[2,1,2048]}"
ENGINES="${ENGINES:-ember spark duckdb}"
HEAP="${HEAP:-8g}"
VENV="${VENV:-/work/scratch/data-venv}"
SPARK_VERSION=4.3.0
mkdir -p "$OUT" "$WORK"
status=0

# 1. The data venv: the pins of testdata/data/make-fixtures.sh, plus numpy for w8-gen.py.
PINS=(pyarrow==26.0.1 duckdb==2.0.1 numpy==2.4.6)
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -c 'import pyarrow, duckdb, numpy' 2>/dev/null \
  || "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}" || exit 1

# 2. The dataset.
have_rows() { "$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' \
  "$DATA/_expected.json" 2>/dev/null; }
if [ "$(have_rows)" != "$ROWS" ]; then
  rm -rf "$DATA"
  echo "== w8-gen.py $DATA --rows $ROWS"
  "$VENV/bin/python" "$HERE/w8-gen.py" "$DATA" --rows "$ROWS" || exit 1
fi
echo "== data: $DATA ($(du -sh "$DATA" | cut -f1)): $(tr -d '\n ' < "$DATA/_expected.json" \
  | sed 's/"files":\[[^]]*\],//')"

# run NAME CMD...: output shown and kept in $OUT/NAME.log; a failure is reported, not fatal.
run() {
  local name="$1"; shift
  "$@" 2>&1 | tee "$OUT/$name.log"
  local s=${PIPESTATUS[0]}
  if [ "$s" != 0 ]; then echo "w8-compare: $name exited with status $s" >&2; status=1; fi
}

# 3. Ember.
if [[ " $ENGINES " == *" ember "* ]]; then
  dir="$PROFILE"; [ "$PROFILE" = dev ] && dir=debug
  echo "== cargo build --profile $PROFILE -p ember-bench"
  if (cd "$REPO" && cargo build --profile "$PROFILE" -p ember-bench); then
    BIN="$REPO/target/$dir/ember-bench"
    for master in "local[2]" "$CLUSTER_MASTER"; do
      col=ember-local; [ "$master" = "local[2]" ] || col=ember-cluster
      echo "== $col: ember-bench --master $master --runs $RUNS --w8-data $DATA W8"
      run "$col" "$BIN" --master "$master" --runs "$RUNS" --w8-data "$DATA" W8
    done
  else
    echo "w8-compare: ember-bench did not build" >&2; status=1
  fi
fi

# 4. Spark: the pyspark wheel of the anchor (run.sh installs the same into $WORK/venv).
if [[ " $ENGINES " == *" spark "* ]]; then
  SVENV="${SPARK_VENV:-$WORK/venv}"
  if [ ! -x "$SVENV/bin/python" ]; then python3 -m venv "$SVENV"; fi
  "$SVENV/bin/python" -c "import pyspark,sys; sys.exit(pyspark.__version__ != '$SPARK_VERSION')" \
    2>/dev/null || "$SVENV/bin/pip" install --quiet "pyspark==$SPARK_VERSION" || exit 1
  export SPARK_LOCAL_IP=127.0.0.1
  echo "== spark: w8-spark.py $DATA --runs $RUNS --heap $HEAP"
  run spark "$SVENV/bin/python" "$HERE/w8-spark.py" "$DATA" --runs "$RUNS" --heap "$HEAP"
fi

# 5. DuckDB.
if [[ " $ENGINES " == *" duckdb "* ]]; then
  echo "== duckdb: w8-duckdb.py $DATA --runs $RUNS"
  run duckdb "$VENV/bin/python" "$HERE/w8-duckdb.py" "$DATA" --runs "$RUNS"
fi

# The table: medians and the answers, which must be one and the same across engines.
field() {  # LOG FIELD: a key=value field of the log's RESULT W8 line
  [ -f "$OUT/$1.log" ] || return 0
  awk -v f="$2=" '$1 == "RESULT" && $2 == "W8" {
    for (i = 3; i <= NF; i++) if (index($i, f) == 1) { print substr($i, length(f) + 1); exit } }' \
    "$OUT/$1.log"
}
answer() {  # LOG: the answer of its last run
  [ -f "$OUT/$1.log" ] || return 0
  grep -o 'keys=[0-9]* total_count=[0-9]* total_cents=[0-9]* checksum=[0-9]*' "$OUT/$1.log" \
    | tail -1
}
expected="$("$VENV/bin/python" -c 'import json,sys; e=json.load(open(sys.argv[1]));
print(" ".join(f"{k}={e[k]}" for k in ("keys","total_count","total_cents","checksum")))' \
  "$DATA/_expected.json")"
{
  echo "| engine | median ms | MB/s | answer |"
  echo "|---|---:|---:|---|"
  for name in ember-local ember-cluster spark duckdb; do
    [ -f "$OUT/$name.log" ] || continue
    a="$(answer "$name")"
    mark="same as _expected.json"; [ "$a" = "$expected" ] || { mark="DIFFERS: $a"; status=1; }
    echo "| $name | $(field "$name" median) | $(field "$name" mb_per_s) | $mark |"
  done
} > "$OUT/table.md"
echo
echo "## W8, $ROWS rows, $(nproc) cores, RUNS=$RUNS ($(date -u +%Y-%m-%dT%H:%MZ))"
echo "expected: $expected"
echo
cat "$OUT/table.md"
if [ "${KEEP_DATA:-1}" = 0 ]; then rm -rf "$DATA"; fi
echo "Logs and table: $OUT"
exit "$status"
