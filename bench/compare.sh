#!/usr/bin/env bash
# Spark versus Ember on the reference workloads W1–W7 (../shared/WORKLOADS.md), on this machine.
#
#   bash bench/compare.sh            # from the repository root; about 15 minutes on 2 cores
#
# One after another (never overlapping: they share the 2 cores), each under /usr/bin/time -v
# for its peak RSS:
#   1. the Spark anchor, ../shared/anchors/spark/run.sh with SERIALIZERS=kryo (it installs Spark
#      itself, and writes the W3 corpus to $WORK/corpus-w3.txt);
#   2. cargo build --release -p ember-bench;
#   3. ember-bench --master local[2];
#   4. ember-bench --master 'local-cluster[2,1,2048]' (reported "not available" when the build
#      has no cluster mode yet).
# Then prints a markdown table of the medians and the Spark/Ember ratios (> 1: Ember is faster).
#
# Knobs (environment): RUNS (3), WORKLOADS ("all", or e.g. "W1 W2 W4"), WORK (Spark's scratch
# dir, /tmp/ember-anchor), OUT (logs and table, /tmp/ember-compare), SPARK=0 to skip running
# Spark and reuse $OUT/spark.log from an earlier run, CLUSTER_MASTER (local-cluster[2,1,2048]).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
SPARK_RUN="${SPARK_RUN:-$REPO/../shared/anchors/spark/run.sh}"
RUNS="${RUNS:-3}"
WORKLOADS="${WORKLOADS:-all}"
OUT="${OUT:-/tmp/ember-compare}"
SPARK="${SPARK:-1}"
CLUSTER_MASTER="${CLUSTER_MASTER:-local-cluster[2,1,2048]}"
export WORK="${WORK:-/tmp/ember-anchor}"
mkdir -p "$OUT"

TIME=()
if [ -x /usr/bin/time ]; then TIME=(/usr/bin/time -v); else echo "note: /usr/bin/time missing, peak RSS not measured" >&2; fi

# run_timed NAME CMD...: runs CMD with its output shown and saved to $OUT/NAME.log, the
# /usr/bin/time report in $OUT/NAME.time, the wall time (ms) in $OUT/NAME.wall; returns CMD's status.
run_timed() {
  local name="$1"; shift
  local t0 t1 status
  rm -f "$OUT/$name.time"
  t0=$(date +%s%3N)
  if [ ${#TIME[@]} -gt 0 ]; then
    "${TIME[@]}" -o "$OUT/$name.time" "$@" 2>&1 | tee "$OUT/$name.log"
  else
    "$@" 2>&1 | tee "$OUT/$name.log"
  fi
  status=${PIPESTATUS[0]}
  t1=$(date +%s%3N)
  echo $((t1 - t0)) > "$OUT/$name.wall"
  echo "$status" > "$OUT/$name.status"
  return "$status"
}

# 1. Spark (Kryo: the faster of its two serializers, the one Ember is compared with).
if [ "$SPARK" != 0 ]; then
  echo "== Spark anchor: $SPARK_RUN (SERIALIZERS=kryo RUNS=$RUNS WORKLOADS=$WORKLOADS)"
  SERIALIZERS=kryo RUNS="$RUNS" WORKLOADS="$WORKLOADS" run_timed spark bash "$SPARK_RUN" \
    || echo "Spark run failed (status $(cat "$OUT/spark.status")): its column will say not available" >&2
else
  echo "== Spark: skipped (SPARK=0), reusing $OUT/spark.log"
fi

# 2. Ember's harness.
echo "== cargo build --release -p ember-bench"
BIN="$REPO/target/release/ember-bench"
if ! (cd "$REPO" && cargo build --release -p ember-bench); then
  echo "ember-bench did not build: Ember columns will say not available" >&2
  BIN=""
fi
EMBER_ARGS=(--runs "$RUNS")
# Reuse the corpus Spark just checked (same bytes; ember-bench verifies the SHA-256 again).
if [ -f "$WORK/corpus-w3.txt" ]; then EMBER_ARGS+=(--corpus "$WORK/corpus-w3.txt"); fi
# shellcheck disable=SC2206
EMBER_ARGS+=($WORKLOADS)

# 3./4. Ember on both masters; a failure (e.g. no cluster mode yet) does not stop the script.
for col in local cluster; do
  if [ "$col" = local ]; then master="local[2]"; else master="$CLUSTER_MASTER"; fi
  rm -f "$OUT/ember-$col".{log,status,time,wall}  # no stale figures from an earlier run
  [ -n "$BIN" ] || continue
  echo "== ember-bench --master $master ${EMBER_ARGS[*]}"
  run_timed "ember-$col" "$BIN" --master "$master" "${EMBER_ARGS[@]}" \
    || echo "ember-bench --master $master exited with status $(cat "$OUT/ember-$col.status")" >&2
done

# ---- the table
# spark_median ID: median ms of Spark's SUMMARY row ID (tab-separated; W1 is the N=10,000 row).
spark_median() {
  [ -f "$OUT/spark.log" ] || return 0
  awk -F'\t' -v id="$1" '$1 == id && (id != "W1" || $2 ~ /^N=10000 /) {
      for (i = 3; i <= NF; i++) if ($i ~ /^median=/) { sub(/^median=/, "", $i); print $i; exit } }' "$OUT/spark.log"
}
# ember_field COL ID FIELD: a key=value field of ember-bench's "RESULT ID MASTER ..." line.
ember_field() {
  [ -f "$OUT/ember-$1.log" ] || return 0
  awk -v id="$2" -v f="$3=" '$1 == "RESULT" && $2 == id {
      for (i = 4; i <= NF; i++) if (index($i, f) == 1) { print substr($i, length(f) + 1); exit } }' "$OUT/ember-$1.log"
}
ratio() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; else echo "n/a"; fi; }
cell() { if [ -n "$1" ]; then echo "$1"; else echo "not available"; fi; }
peak_mib() {  # max RSS from /usr/bin/time -v, in MiB
  [ -f "$OUT/$1.time" ] || { echo "n/a"; return; }
  awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024; found = 1 } END { if (!found) print "n/a" }' "$OUT/$1.time"
}
wall_s() { if [ -f "$OUT/$1.wall" ] && [ -f "$OUT/$1.log" ]; then awk '{ printf "%.2f", $1 / 1000 }' "$OUT/$1.wall"; else echo "n/a"; fi; }
# Spark's bench JVM alone (run.sh's "PROCESS serializer=kryo: N ms wall" line), without the
# install, corpus and start-up probe steps around it.
spark_wall_s() {
  local v; v=$(awk '/^PROCESS serializer=kryo:/ { printf "%.2f", $3 / 1000; exit }' "$OUT/spark.log" 2>/dev/null)
  if [ -n "$v" ]; then echo "$v"; else echo "n/a"; fi
}
avail() { [ -f "$OUT/$1.log" ] && grep -q '^RESULT ' "$OUT/$1.log"; }

if [ "$WORKLOADS" = all ]; then IDS="W1 W2 W3 W4 W5 W6 W7"; else IDS="$WORKLOADS"; fi
{
  echo "| workload | Spark (Kryo) median ms | Ember local[2] median ms | ratio Spark/Ember | Ember $CLUSTER_MASTER median ms | ratio Spark/Ember |"
  echo "|---|---:|---:|---:|---:|---:|"
  for id in $IDS; do
    sid="$id"; [ "$id" = W2 ] && sid="W2-median"
    s=$(spark_median "$sid"); l=$(ember_field local "$id" median); c=$(ember_field cluster "$id" median)
    label="$id"; [ "$id" = W2 ] && label="W2 (per-job latency, median)"
    echo "| $label | $(cell "$s") | $(cell "$l") | $(ratio "$s" "$l") | $(cell "$c") | $(ratio "$s" "$c") |"
    if [ "$id" = W2 ]; then
      s=$(spark_median W2-p99); l=$(ember_field local W2 p99_ms); c=$(ember_field cluster W2 p99_ms)
      echo "| W2 (per-job latency, p99) | $(cell "$s") | $(cell "$l") | $(ratio "$s" "$l") | $(cell "$c") | $(ratio "$s" "$c") |"
    fi
  done
  sp=$(peak_mib spark); lp=$(peak_mib ember-local); cp=$(peak_mib ember-cluster)
  avail ember-cluster || cp="not available"
  echo "| peak RSS of the whole run, MiB (/usr/bin/time; Spark: its largest JVM) | $sp | $lp | | $cp | |"
  cw=$(wall_s ember-cluster); avail ember-cluster || cw="not available"
  echo "| whole process wall, s (Spark: its bench JVM) | $(spark_wall_s) | $(wall_s ember-local) | | $cw | |"
} > "$OUT/table.md"

echo
echo "## Spark vs Ember, $(nproc) cores, RUNS=$RUNS ($(date -u +%Y-%m-%dT%H:%MZ))"
echo
cat "$OUT/table.md"
echo
for col in local cluster; do
  f="$OUT/ember-$col.log"
  [ -f "$f" ] && grep -h '^PEAK_RSS_KB' "$f" | sed "s/^/ember $col: /"
  [ -f "$f" ] && grep -q '^SANITY FAIL' "$f" && echo "WARNING: ember $col had failed sanity checks (see $f)"
done
[ -f "$OUT/spark.log" ] && grep -q 'SOME SANITY CHECK FAILED' "$OUT/spark.log" && echo "WARNING: Spark had failed sanity checks"
[ -f "$OUT/spark.log" ] && grep -h 'WARNING: machine was busy' "$OUT/spark.log" | sort -u
echo "Ratios above 1 mean Ember is faster. Logs and table: $OUT"
