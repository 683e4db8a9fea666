#!/usr/bin/env bash
# Regenerates the Spark 4.3.0 ground truth in this directory (see README.md):
#
#   bash testdata/spark/make-fixtures.sh [APP...]     # default: wordcount failed-job killed-executor
#
# For each application: runs FixtureApp.java (Spark's Java RDD API, no Python) with event logging
# on and the live UI on port 4040 (or the next free one), captures every /api/v1 path from the live
# UI while a job is running (wordcount only: rest-running/) and once every job is over (rest/),
# copies the event log to <app>/eventlog, then opens it with Spark's History Server and captures
# the same paths again (history/) and the summary of bench/history-server-check.sh
# (<app>/history-summary.json), which it then checks.
# Needs Java 17 (javac) and Python 3 with pip (PyPI); installs pyspark==4.3.0 via
# bench/spark-env.sh. Scratch goes to a mktemp dir under ${SCRATCH:-${TMPDIR:-/tmp}}, removed on
# exit; every JVM started is stopped (by pid) on exit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
APPS=("$@"); [ ${#APPS[@]} -gt 0 ] || APPS=(wordcount failed-job killed-executor)
TIMEOUT="${TIMEOUT:-180}"   # seconds, for every wait
# shellcheck source=../../bench/spark-env.sh
source "$REPO/bench/spark-env.sh"

WORK="$(mktemp -d "${SCRATCH:-${TMPDIR:-/tmp}}/spark-fixtures.XXXXXX")"
APP_PID=
cleanup() {
  local rc=$?
  if [ -n "$APP_PID" ] && kill -0 "$APP_PID" 2>/dev/null; then
    echo "stopping FixtureApp (pid $APP_PID)" >&2
    kill "$APP_PID" 2>/dev/null || true; sleep 2; kill -9 "$APP_PID" 2>/dev/null || true
    wait "$APP_PID" 2>/dev/null || true
  fi
  stop_history_server
  if [ $rc -ne 0 ] && [ -n "${KEEP_WORK_ON_FAILURE:-}" ]; then echo "scratch kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "Spark $SPARK_VERSION jars: $JARS; scratch: $WORK"
mkdir -p "$WORK/classes"
javac -d "$WORK/classes" -cp "$JARS/*" "$HERE/FixtureApp.java"
# local-cluster: its Workers launch executor JVMs with a classpath of $SPARK_HOME/jars (the pyspark
# package has jars/, bin/, sbin/) and need SPARK_SCALA_VERSION (bin/load-spark-env.sh sets it for
# spark-submit; without it: "Cannot find any build directories"). They write executor logs under
# $SPARK_HOME/work, so SPARK_HOME is a scratch dir of links.
mkdir -p "$WORK/spark-home"
for d in bin sbin jars; do ln -s "$SPARK_PKG/$d" "$WORK/spark-home/$d"; done
export SPARK_HOME="$WORK/spark-home" SPARK_SCALA_VERSION=2.13 SPARK_LOCAL_IP=127.0.0.1

# wait_file FILE: waits (bounded) for FILE while the application is alive.
wait_file() {
  local deadline=$((SECONDS + TIMEOUT))
  until [ -e "$1" ]; do
    if ! kill -0 "$APP_PID" 2>/dev/null; then
      echo "FixtureApp exited before $1 appeared; its log:" >&2; tail -40 "$WORK/app.log" >&2; exit 1
    fi
    [ "$SECONDS" -lt "$deadline" ] || { echo "timed out waiting for $1" >&2; tail -40 "$WORK/app.log" >&2; exit 1; }
    sleep 0.1
  done
}

for APP in "${APPS[@]}"; do
  echo "== $APP"
  OUT="$HERE/$APP"
  rm -rf "$OUT" "$WORK/ctl" "$WORK/events"
  mkdir -p "$OUT" "$WORK/ctl" "$WORK/events"
  mkdir -p "$WORK/jvmtmp"
  java "${SPARK_JFLAGS[@]}" -Xmx1g -cp "$JARS/*:$WORK/classes" "-Djava.io.tmpdir=$WORK/jvmtmp" \
    "-Dfixture.ctl=$WORK/ctl" "-Dfixture.eventLogDir=file:$WORK/events" "-Dfixture.timeoutSec=$TIMEOUT" \
    "-Dfixture.input=$HERE/wordcount-input.txt" "-Dfixture.classes=$WORK/classes" \
    FixtureApp "$APP" > "$WORK/app.log" 2>&1 &
  APP_PID=$!
  wait_file "$WORK/ctl/appid"
  UI="$(cat "$WORK/ctl/ui")"; ID="$(cat "$WORK/ctl/appid")"
  echo "application $ID, live UI $UI"
  if [ "$APP" = wordcount ]; then
    wait_file "$WORK/ctl/running"
    python3 "$HERE/capture_rest.py" "$UI" "$ID" "$OUT/rest-running"
    touch "$WORK/ctl/release"
  fi
  wait_file "$WORK/ctl/done"
  python3 "$HERE/capture_rest.py" "$UI" "$ID" "$OUT/rest"
  touch "$WORK/ctl/captured"
  deadline=$((SECONDS + TIMEOUT))
  while kill -0 "$APP_PID" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "FixtureApp did not stop" >&2; exit 1; }
    sleep 0.2
  done
  wait "$APP_PID" || { echo "FixtureApp $APP failed; log:" >&2; tail -40 "$WORK/app.log" >&2; exit 1; }
  APP_PID=
  grep '^FIXTURE' "$WORK/app.log" | sed 's/^/  /'
  LOGS=("$WORK"/events/*)
  [ ${#LOGS[@]} -eq 1 ] && [ -f "${LOGS[0]}" ] || { echo "expected one event log file, got: ${LOGS[*]}" >&2; exit 1; }
  cp "${LOGS[0]}" "$OUT/eventlog"
  echo "event log: $(basename "${LOGS[0]}"), $(wc -c < "$OUT/eventlog") bytes, $(wc -l < "$OUT/eventlog") events"

  start_history_server "$WORK/events" "$WORK/history-server.log"
  deadline=$((SECONDS + TIMEOUT))
  until python3 -c "import json,sys,urllib.request; sys.exit(not any(a['id']==sys.argv[2] for a in json.load(urllib.request.urlopen(sys.argv[1]))))" \
      "$HS_URL/api/v1/applications" "$ID"; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "History Server never listed $ID" >&2; tail -40 "$WORK/history-server.log" >&2; exit 1; }
    sleep 0.3
  done
  python3 "$HERE/capture_rest.py" "$HS_URL" "$ID" "$OUT/history"
  stop_history_server
  # The application id varies run to run; record it and the event log's original file name.
  printf 'app_id\t%s\nevent_log_file\t%s\n' "$ID" "$(basename "${LOGS[0]}")" > "$OUT/run-info.tsv"
done

# History Server summaries of the logs just made, then a check that the checker agrees with them.
mkdir -p "$WORK/summaries"
SUMMARY_OUT="$WORK/summaries" bash "$REPO/bench/history-server-check.sh" "$HERE" > /dev/null
for APP in "${APPS[@]}"; do cp "$WORK/summaries/$APP.json" "$HERE/$APP/history-summary.json"; done
bash "$REPO/bench/history-server-check.sh" "$HERE" "$HERE" > /dev/null
# The minimal event logs (minimize_eventlog.py) must give the very same History Server summaries.
for APP in "${APPS[@]}"; do
  mkdir -p "$HERE/minimal/$APP"
  python3 "$HERE/minimize_eventlog.py" "$HERE/$APP/eventlog" "$HERE/minimal/$APP/eventlog"
done
bash "$REPO/bench/history-server-check.sh" "$HERE/minimal" "$HERE" > /dev/null
echo "fixtures written under $HERE: $(du -sh "$HERE" | cut -f1)"
