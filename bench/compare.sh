#!/usr/bin/env bash
# Ember beside Apache Spark and the single-machine engines on the reference workloads W1–W7
# (../shared/WORKLOADS.md), on this machine, in one go.
#
#   bash bench/compare.sh            # from the repository root; about 35 minutes on 2 cores
#
# One after another (never overlapping: they share the 2 cores), each under /usr/bin/time -v
# for its peak RSS:
#   1. the Spark anchor, ../shared/anchors/spark/run.sh with SERIALIZERS=kryo (it installs Spark
#      itself, and writes the W3 corpus to $WORK/corpus-w3.txt);
#   2. the single-machine anchors on W3–W7, ../shared/anchors/dataframe/run.sh: DuckDB, Polars
#      and DataFusion through Python, and the hand-written Rust program (rayon + FxHashMap), each
#      limited to 2 threads, on the same corpus;
#   3. cargo build --release -p ember-bench;
#   4. ember-bench --master local[2] (with MIMALLOC_PURGE_DELAY=100, see below);
#   5. ember-bench --master 'local-cluster[2,1,2048]';
#   6. W1 with 1,000,000 tasks in local[2] (one run), for the driver's peak RSS.
# Then prints two markdown tables (against Spark; against the single-machine engines, with every
# ratio) and the performance targets of BENCHMARKS.md, each marked holds / MISSED.
#
# Knobs (environment): RUNS (3), WORKLOADS ("all", or e.g. "W1 W2 W4"), WORK (the anchors'
# scratch: venvs, Spark's jars, the corpus, the Rust build; /tmp/ember-anchor), OUT (logs and
# tables, /tmp/ember-compare), SPARK=0 to skip running Spark and reuse $OUT/spark.log, ANCHORS=0
# the same for the single-machine engines ($OUT/anchors.log), EMBER=0 the same for Ember's runs
# (steps 3–6: only the tables are printed again), MILLION=0 to skip step 6,
# CLUSTER_MASTER (local-cluster[2,1,2048]). `rm -rf "$WORK" "$OUT"` removes everything the
# script wrote.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
SPARK_RUN="${SPARK_RUN:-$REPO/../shared/anchors/spark/run.sh}"
RUNS="${RUNS:-3}"
WORKLOADS="${WORKLOADS:-all}"
OUT="${OUT:-/tmp/ember-compare}"
SPARK="${SPARK:-1}"
CLUSTER_MASTER="${CLUSTER_MASTER:-local-cluster[2,1,2048]}"
ANCHORS="${ANCHORS:-1}"
MILLION="${MILLION:-1}"
EMBER="${EMBER:-1}"
DATAFRAME_RUN="${DATAFRAME_RUN:-$REPO/../shared/anchors/dataframe/run.sh}"
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
# -XX:-UsePerfData: the JVMs would otherwise leave /tmp/hsperfdata_<user> behind.
export JAVA_TOOL_OPTIONS="-XX:-UsePerfData${JAVA_TOOL_OPTIONS:+ $JAVA_TOOL_OPTIONS}"
if [ "$SPARK" != 0 ]; then
  echo "== Spark anchor: $SPARK_RUN (SERIALIZERS=kryo RUNS=$RUNS WORKLOADS=$WORKLOADS)"
  SERIALIZERS=kryo RUNS="$RUNS" WORKLOADS="$WORKLOADS" run_timed spark bash "$SPARK_RUN" \
    || echo "Spark run failed (status $(cat "$OUT/spark.status")): its column will say not available" >&2
else
  echo "== Spark: skipped (SPARK=0), reusing $OUT/spark.log"
fi

# 2. The single-machine engines (W3–W7 only: W1 and W2 measure a scheduler, which they lack).
df_workloads=""
for id in W3 W4 W5 W6 W7; do
  if [ "$WORKLOADS" = all ] || [[ " $WORKLOADS " == *" $id "* ]]; then
    df_workloads="${df_workloads:+$df_workloads,}$id"
  fi
done
if [ "$ANCHORS" != 0 ] && [ -n "$df_workloads" ]; then
  df_args=(RUNS="$RUNS" WORKLOADS="$df_workloads" LOGDIR="$OUT/anchors"
    VENV="$WORK/dataframe-venv" CARGO_TARGET_DIR="$WORK/dataframe-target")
  # The corpus Spark wrote and checked (the same SHA-256 the dataframe harness checks).
  if [ -f "$WORK/corpus-w3.txt" ]; then df_args+=(CORPUS="$WORK/corpus-w3.txt"); fi
  echo "== single-machine anchors: $DATAFRAME_RUN (${df_args[*]})"
  run_timed anchors env "${df_args[@]}" bash "$DATAFRAME_RUN" \
    || echo "the single-machine anchors failed (status $(cat "$OUT/anchors.status")): their columns will say not available" >&2
elif [ "$ANCHORS" = 0 ]; then
  echo "== single-machine anchors: skipped (ANCHORS=0), reusing $OUT/anchors.log"
fi

# 3. Ember's harness.
BIN="$REPO/target/release/ember-bench"
if [ "$EMBER" = 0 ]; then
  echo "== Ember: skipped (EMBER=0), reusing $OUT/ember-*.log"
  BIN=""
elif ! { echo "== cargo build --release -p ember-bench"; (cd "$REPO" && cargo build --release -p ember-bench); }; then
  echo "ember-bench did not build: Ember columns will say not available" >&2
  BIN=""
fi
EMBER_ARGS=(--runs "$RUNS")
# Reuse the corpus Spark just checked (same bytes; ember-bench verifies the SHA-256 again).
if [ -f "$WORK/corpus-w3.txt" ]; then EMBER_ARGS+=(--corpus "$WORK/corpus-w3.txt"); fi
# shellcheck disable=SC2206
EMBER_ARGS+=($WORKLOADS)

# ember-bench links mimalloc. Its default purge delay (1 s) keeps the pages of a workload's freed
# buffers committed into the next one: W5 peaked at 262 MiB that way, against 98 MiB of memory in
# use (MIMALLOC_PURGE_DELAY=0). 100 ms returns them within the workload at no measured cost in
# time; 0 made W6 and W7 30-90 % slower (BENCHMARKS.md). Set it to override.
PURGE_DELAY="${MIMALLOC_PURGE_DELAY:-100}"

# 4./5. Ember on both masters; a failure (e.g. no cluster mode yet) does not stop the script.
for col in local cluster; do
  if [ "$col" = local ]; then master="local[2]"; else master="$CLUSTER_MASTER"; fi
  [ -n "$BIN" ] || continue
  rm -f "$OUT/ember-$col".{log,status,time,wall}  # no stale figures from an earlier run
  echo "== ember-bench --master $master ${EMBER_ARGS[*]}"
  run_timed "ember-$col" env MIMALLOC_PURGE_DELAY="$PURGE_DELAY" "$BIN" --master "$master" \
    "${EMBER_ARGS[@]}" \
    || echo "ember-bench --master $master exited with status $(cat "$OUT/ember-$col.status")" >&2
done

# 6. A job of 1,000,000 one-element tasks: the driver's memory must stay bounded.
if [ "$MILLION" != 0 ] && [ -n "$BIN" ]; then
  rm -f "$OUT/ember-million".{log,status,time,wall}
  echo "== ember-bench --master local[2] --runs 1 --scale 100 W1 (1,000,000 tasks)"
  run_timed ember-million env MIMALLOC_PURGE_DELAY="$PURGE_DELAY" "$BIN" --master "local[2]" \
    --runs 1 --scale 100 W1 \
    || echo "the 1,000,000-task job failed (status $(cat "$OUT/ember-million.status"))" >&2
fi

# ---- the tables
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
# A listener that dropped events did less work than a complete run: say so beside the figures
# (the million-task job's too, whose figure is in the targets below).
for col in local cluster million; do
  f="$OUT/ember-$col.log"
  [ -f "$f" ] && grep -h '^LISTENER_QUEUE .* dropped=[1-9]' "$f" | sed "s/^/WARNING: ember $col: /"
done
[ -f "$OUT/spark.log" ] && grep -q 'SOME SANITY CHECK FAILED' "$OUT/spark.log" && echo "WARNING: Spark had failed sanity checks"
[ -f "$OUT/spark.log" ] && grep -h 'WARNING: machine was busy' "$OUT/spark.log" | sort -u
echo "Ratios above 1 mean Ember is faster."

# ---- against the single-machine engines
# anchor_median ENGINE ID: the median of the dataframe harness's "RESULT ENGINE ID min= median=".
anchor_median() {
  [ -f "$OUT/anchors.log" ] || return 0
  awk -v e="$1" -v id="$2" '$1 == "RESULT" && $2 == e && $3 == id {
      for (i = 4; i <= NF; i++) if ($i ~ /^median=/) { sub(/^median=/, "", $i); print $i; exit } }' "$OUT/anchors.log"
}
minof() { printf '%s\n' "$@" | awk 'NF { if (m == "" || $1 + 0 < m + 0) m = $1 } END { print m }'; }
# le A B FACTOR: "holds" when A <= FACTOR * B, "MISSED" when not, "n/a" without figures.
num() { [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]]; }
le() { if num "$1" && num "$2"; then awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { print (a <= f * b) ? "holds" : "MISSED" }'; else echo "n/a"; fi; }
ge() { if num "$1"; then awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? "holds" : "MISSED" }'; else echo "n/a"; fi; }

DF_IDS=""
for id in W3 W4 W5 W6 W7; do
  if [ "$WORKLOADS" = all ] || [[ " $WORKLOADS " == *" $id "* ]]; then DF_IDS="$DF_IDS $id"; fi
done
TARGETS="$OUT/targets.md"
: > "$TARGETS"
target() { echo "| $1 | $2 | $3 |" >> "$TARGETS"; }
if [ -n "$DF_IDS" ]; then
  {
    echo "| workload | Ember local[2] | Ember $CLUSTER_MASTER | Spark (Kryo) | DuckDB | Polars | DataFusion | hand-written Rust | fastest engine / Ember | Ember / hand-written | cluster / local |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for id in $DF_IDS; do
      l=$(ember_field local "$id" median); c=$(ember_field cluster "$id" median); s=$(spark_median "$id")
      # DuckDB: the faster of its two modes (a query over the Python data, a temp table).
      d=$(minof "$(anchor_median duckdb "$id")" "$(anchor_median duckdb-tbl "$id")")
      p=$(anchor_median polars "$id"); f=$(anchor_median datafusion "$id"); h=$(anchor_median rust-handwritten "$id")
      best=$(minof "$d" "$p" "$f")
      echo "| $id | $(cell "$l") | $(cell "$c") | $(cell "$s") | $(cell "$d") | $(cell "$p") | $(cell "$f") | $(cell "$h") | $(ratio "$best" "$l") | $(ratio "$l" "$h") | $(ratio "$c" "$l") |"
      target "$id local[2] faster than DuckDB, Polars and DataFusion" "$(cell "$l") vs $(cell "$best") ms" "$(le "$l" "$best" 0.99999)"
      case "$id" in W3|W4|W5) lim=2 ;; *) lim=4 ;; esac
      target "$id local[2] within ${lim}x of the hand-written program" "$(ratio "$l" "$h")" "$(le "$l" "$h" "$lim")"
      target "$id $CLUSTER_MASTER within 1.3x of local[2]" "$(ratio "$c" "$l")" "$(le "$c" "$l" 1.3)"
    done
  } > "$OUT/engines.md"
  echo
  echo "## Ember beside the single-machine engines (medians, ms; each engine 2 threads)"
  echo
  cat "$OUT/engines.md"
  [ -f "$OUT/anchors.log" ] && grep -q MISMATCH "$OUT/anchors.log" && echo "WARNING: a single-machine anchor's sanity figure differs from the reference (see $OUT/anchors.log)"
  [ -f "$OUT/anchors.log" ] && grep -h '^PEAKRSS' "$OUT/anchors.log"
  echo "fastest engine / Ember above 1: Ember is faster; Ember / hand-written and cluster / local: lower is better."
fi

# ---- the targets
if [ "$WORKLOADS" = all ] || [[ " $WORKLOADS " == *" W1 "* ]]; then
  t=$(ember_field local W1 tasks_per_s); target "W1 local[2] >= 300,000 tasks/s" "$(cell "$t")" "$(ge "$t" 300000)"
  t=$(ember_field cluster W1 tasks_per_s); target "W1 $CLUSTER_MASTER >= 50,000 tasks/s" "$(cell "$t")" "$(ge "$t" 50000)"
fi
if [ "$WORKLOADS" = all ] || [[ " $WORKLOADS " == *" W2 "* ]]; then
  m=$(ember_field local W2 median); p=$(ember_field local W2 p99_ms); c=$(ember_field cluster W2 median)
  target "W2 local[2] median <= 0.03 ms" "$(cell "$m") ms" "$(le "$m" 0.03 1)"
  target "W2 local[2] p99 <= 0.1 ms" "$(cell "$p") ms" "$(le "$p" 0.1 1)"
  target "W2 $CLUSTER_MASTER median <= 0.1 ms" "$(cell "$c") ms" "$(le "$c" 0.1 1)"
fi
if avail ember-million; then
  t=$(ember_field million W1 tasks_per_s); r=$(peak_mib ember-million)
  target "1,000,000 tasks complete in local[2], driver peak RSS reported" "$r MiB, $(cell "$t") tasks/s" \
    "$(grep -q '^SANITY OK' "$OUT/ember-million.log" && echo holds || echo MISSED)"
fi
if [ "$WORKLOADS" = all ]; then
  r=$(peak_mib ember-local); target "peak RSS of the whole local[2] run <= 228 MiB" "$r MiB" "$(le "$r" 228 1)"
fi
if [ -s "$TARGETS" ]; then
  echo
  echo "## Targets"
  echo
  echo "| target | measured | |"
  echo "|---|---:|---|"
  cat "$TARGETS"
fi
echo
echo "Logs and tables: $OUT"
