#!/usr/bin/env bash
# Opens the web UI of a live Ember application in headless Chromium and checks that its pages
# render without console errors.
#
#   bench/ui-browser-check.sh [SCREENSHOT_DIR]
#
# Installs Debian's `chromium` with apt-get when it is absent and this runs as root; where it is
# still absent, says so and exits 0 (skipped). Builds and starts `ember/examples/ui_demo.rs`
# (local[2], the UI on a free port) on testdata/spark/wordcount-input.txt: a word count whose
# counts stay cached and whose last job waits until its standard input closes, so every page is
# seen live. Then, for the Jobs page (event timeline), a job's page (DAG and stage timeline), the
# Stages page, a stage's page (DAG, summary metrics, task table), Storage, an RDD's page,
# Environment, Executors and the driver's thread dump, it
#   - dumps the DOM (--dump-dom) with console messages logged (--enable-logging=stderr) and fails
#     on any console message or uncaught exception, or on a page without its expected element;
#   - saves a screenshot (SCREENSHOT_DIR, default a scratch directory; 1400x900 PNG).
# The application is stopped (its standard input closed) on exit; scratch files are removed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

browser=""
for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null 2>&1; then browser="$b"; break; fi
done
if [ -z "$browser" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium" >&2
  install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
      >/dev/null 2>&1
  }
  install || { apt-get update >/dev/null 2>&1 && install; } || true
  command -v chromium >/dev/null 2>&1 && browser=chromium
fi
if [ -z "$browser" ]; then
  echo "ui-browser-check: skipped: chromium is absent (and could not be installed)"
  exit 0
fi

SCR="$(mktemp -d "${TMPDIR:-/tmp}/ember-ui-check.XXXXXX")"
SHOTS="${1:-$SCR/shots}"
mkdir -p "$SHOTS"
APP_PID=""
cleanup() {
  exec 3>&- 2>/dev/null || true
  if [ -n "$APP_PID" ]; then wait "$APP_PID" 2>/dev/null || true; fi
  rm -rf "$SCR"
}
trap cleanup EXIT

cargo build -q -p ember --example ui_demo
EXE="$ROOT/target/debug/examples/ui_demo"
[ -x "$EXE" ] || EXE="$(find "$ROOT/target" -path '*/examples/ui_demo' -type f | head -n 1)"
mkfifo "$SCR/stdin"
"$EXE" "$ROOT/testdata/spark/wordcount-input.txt" --master 'local[2]' \
  --conf ember.ui.port=0 --conf ember.ui.showConsoleProgress=false \
  <"$SCR/stdin" >"$SCR/app.out" 2>"$SCR/app.err" &
APP_PID=$!
exec 3>"$SCR/stdin"   # the application runs until this closes

url=""
for _ in $(seq 1 600); do
  url="$(sed -n 's/^UI: \(http:.*\)$/\1/p' "$SCR/app.out")"
  [ -n "$url" ] && break
  if ! kill -0 "$APP_PID" 2>/dev/null; then
    cat "$SCR/app.err" >&2; echo "the application died" >&2; exit 1
  fi
  sleep 0.1
done
[ -n "$url" ] || { echo "the application printed no UI address in 60 s" >&2; exit 1; }
echo "UI at $url"

# The cached RDD's id, from the REST API.
app="$(curl -s "$url/api/v1/applications" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' | head -n 1)"
rdd="$(curl -s "$url/api/v1/applications/$app/storage/rdd" \
  | sed -n 's/^ *"id": *\([0-9]*\).*/\1/p' | head -n 1)"

failed=0
check() { # name path expected-substring
  local name="$1" path="$2" want="$3"
  local flags=(--headless=new --no-sandbox --disable-gpu --hide-scrollbars
               --user-data-dir="$SCR/profile" --enable-logging=stderr --v=0)
  "$browser" "${flags[@]}" --virtual-time-budget=3000 --dump-dom "$url$path" \
    >"$SCR/$name.html" 2>"$SCR/$name.log" || true
  "$browser" "${flags[@]}" --window-size=1400,900 --screenshot="$SHOTS/$name.png" "$url$path" \
    >/dev/null 2>>"$SCR/$name.log" || true
  local errors
  # Chromium logs every console message as INFO:CONSOLE whatever its level; the pages write
  # none, so any is a failure (uncaught exceptions included), as is a resource that failed.
  errors="$(grep -E ':CONSOLE[:(]|Uncaught|Failed to load resource' "$SCR/$name.log" || true)"
  if [ -n "$errors" ]; then
    echo "FAIL $name ($path): console errors:"; echo "$errors"; failed=1
  elif ! grep -q -- "$want" "$SCR/$name.html"; then
    echo "FAIL $name ($path): no '$want' in the rendered page"; failed=1
  elif [ ! -s "$SHOTS/$name.png" ]; then
    echo "FAIL $name ($path): no screenshot"; failed=1
  else
    echo "ok   $name ($path)"
  fi
}
check jobs "/jobs/" 'class="timeline-viz"'
check job "/jobs/job/?id=1" 'class="dag-viz"'
check stages "/stages/" 'activeStagesTable'
check stage "/stages/stage/?id=1&attempt=0" 'class="dag-viz"'
check storage "/storage/" 'storage-by-rdd-table'
check rdd "/storage/rdd/?id=${rdd:-0}" 'rdd-storage-by-block-table'
check environment "/environment/" 'ember-properties-table'
check executors "/executors/" 'threadDump/?executorId=driver'
check threaddump "/executors/threadDump/?executorId=driver" 'thread-dump-table'
echo "screenshots in $SHOTS"
exec 3>&-
wait "$APP_PID"
APP_PID=""
grep -q "groups" "$SCR/app.out" || { echo "the application did not finish its job" >&2; exit 1; }
exit "$failed"
