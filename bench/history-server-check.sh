#!/usr/bin/env bash
# Opens event logs with Apache Spark's own History Server and summarises what it shows, so that
# Ember's Spark-format event logs can be checked against Spark's reading of them.
#
#   bench/history-server-check.sh DIR [EXPECTED_DIR]
#
# DIR: a directory of event logs (Spark's spark.eventLog.dir layout: one file per application,
#   e.g. local-1765000000000 or app-20261206070000-0000, optionally .inprogress / a codec suffix).
#   The fixture layout is accepted too: DIR/<app>/eventlog files (testdata/spark), copied into a
#   scratch log directory as <app>.
# Installs Spark's jars like shared/anchors/spark/run.sh (pyspark==4.3.0 from PyPI; see
# bench/spark-env.sh for where), starts org.apache.spark.deploy.history.HistoryServer on a free
# port with spark.history.fs.update.interval=1s, waits (bounded by HS_LIST_TIMEOUT, default 120 s;
# fails loudly) until every event log in DIR is listed, then for each application queries
# applications, jobs, stages, each stage attempt's taskList, executors and allexecutors and prints
# one compact JSON summary per application:
#   {"name","id","completed","jobs":[{jobId,status,numTasks,numCompletedTasks,numFailedTasks}],
#    "stages":[{stageId,attemptId,status,numTasks,numFailedTasks}],"totalTasks","totalFailedTasks",
#    "taskStatuses":{status:count},"executors":[{id,totalTasks,failedTasks,isActive}]}
# (the "id" is printed but never compared). With EXPECTED_DIR (files <name>.json, or
# <name>/history-summary.json as in testdata/spark) each summary is compared with the expected one
# and the script exits non-zero with a unified diff on any mismatch.
#
# Knobs: QUICK=1 only checks that every application is listed and that its jobs and stages carry
#   task counts (no taskList, no comparison; for CI where Java exists).
#   SUMMARY_OUT=dir writes each summary to dir/<name>.json (how the expected files are made).
#   KEEP_LOG=file copies the History Server's log there.
# The History Server is stopped on exit (trap); scratch files are removed; nothing is left running.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 DIR [EXPECTED_DIR]   (DIR: a directory of Spark event logs)" >&2; exit 2
fi
DIR="$(cd "$1" && pwd)"
EXPECTED="${2:-}"
if [ -n "$EXPECTED" ]; then EXPECTED="$(cd "$EXPECTED" && pwd)"; fi
# shellcheck source=bench/spark-env.sh
source "$HERE/spark-env.sh"

SCR="$(mktemp -d "${TMPDIR:-/tmp}/ember-hs-check.XXXXXX")"
cleanup() {
  stop_history_server
  if [ -n "${KEEP_LOG:-}" ] && [ -f "$SCR/history-server.log" ]; then cp "$SCR/history-server.log" "$KEEP_LOG"; fi
  rm -rf "$SCR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOGDIR="$DIR"
if compgen -G "$DIR/*/eventlog" > /dev/null; then
  # fixture layout: DIR/<app>/eventlog
  mkdir "$SCR/logs"
  for f in "$DIR"/*/eventlog; do
    [ -f "$f" ] && cp "$f" "$SCR/logs/$(basename "$(dirname "$f")")"
  done
  LOGDIR="$SCR/logs"
fi
NLOGS="$(find "$LOGDIR" -mindepth 1 -maxdepth 1 ! -name '.*' | wc -l)"
[ "$NLOGS" -gt 0 ] || { echo "no event logs in $DIR" >&2; exit 2; }
echo "History Server (Spark $SPARK_VERSION) on $NLOGS event log(s) in $DIR" >&2

start_history_server "$LOGDIR" "$SCR/history-server.log"
python3 - "$HS_URL" "$LOGDIR" "$SCR/history-server.log" "$EXPECTED" <<'PY'
import difflib, json, os, sys, time, urllib.error, urllib.request

url, logdir, serverlog, expected = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
quick = os.environ.get("QUICK", "") not in ("", "0")
summary_out = os.environ.get("SUMMARY_OUT", "")
files = sorted(f for f in os.listdir(logdir) if not f.startswith("."))


def get(path):
    with urllib.request.urlopen(url + "/api/v1/" + path, timeout=60) as r:
        return json.loads(r.read())


# 1. Wait until every event log is listed (one attempt per log file).
timeout = float(os.environ.get("HS_LIST_TIMEOUT", "120"))
deadline = time.time() + timeout
while True:
    apps = get("applications")
    if sum(len(a["attempts"]) for a in apps) >= len(files):
        break
    if time.time() > deadline:
        print("FAIL: after %.0fs the History Server lists %d application attempt(s) for %d event log(s)"
              % (timeout, sum(len(a["attempts"]) for a in apps), len(files)), file=sys.stderr)
        print("  files: %s" % files, file=sys.stderr)
        print("  listed: %s" % [(a["id"], a["name"]) for a in apps], file=sys.stderr)
        print("  History Server log (WARN/ERROR and exceptions):", file=sys.stderr)
        with open(serverlog, errors="replace") as f:
            lines = [l.rstrip() for l in f if any(k in l for k in ("WARN", "ERROR", "Exception", "\tat ", "Caused by"))]
        for l in lines[-60:]:
            print("    " + l, file=sys.stderr)
        sys.exit(1)
    time.sleep(0.5)


def exec_key(e):
    return (0, 0, e["id"]) if not e["id"].isdigit() else (1, int(e["id"]), "")


problems, passed, failed = [], 0, 0
seen = {}
for app in sorted(apps, key=lambda a: (a["name"], a["id"])):
    name = app["name"]
    if name in seen:
        problems.append("two applications named %r (%s, %s): summaries are keyed by name" % (name, seen[name], app["id"]))
        name = "%s#%s" % (name, app["id"])
    seen[name] = app["id"]
    att = app["attempts"][-1]
    base = "applications/" + app["id"] + ("/" + att["attemptId"] if att.get("attemptId") else "")
    jobs = get(base + "/jobs")
    stages = get(base + "/stages")
    if quick:
        bad = []
        if not jobs: bad.append("no jobs")
        if not stages: bad.append("no stages")
        for j in jobs:
            for k in ("numTasks", "numCompletedTasks", "numFailedTasks", "status"):
                if k not in j: bad.append("job %s lacks %s" % (j.get("jobId"), k))
        for s in stages:
            for k in ("numTasks", "numCompleteTasks", "numFailedTasks", "status"):
                if k not in s: bad.append("stage %s.%s lacks %s" % (s.get("stageId"), s.get("attemptId"), k))
        line = {"name": name, "id": app["id"], "completed": att.get("completed"), "jobs": len(jobs),
                "stages": len(stages), "tasks": sum(s.get("numTasks", 0) for s in stages)}
        print(json.dumps(line, separators=(",", ":")))
        if bad:
            failed += 1
            print("FAIL %s: %s" % (name, "; ".join(bad)), file=sys.stderr)
        else:
            passed += 1
        continue
    statuses = {}
    total = 0
    for s in stages:
        for t in get("%s/stages/%d/%d/taskList?length=1000000" % (base, s["stageId"], s["attemptId"])):
            statuses[t["status"]] = statuses.get(t["status"], 0) + 1
            total += 1
    execs = get(base + "/allexecutors")
    active = {e["id"] for e in get(base + "/executors")}
    summary = {
        "name": app["name"],
        "id": app["id"],
        "completed": att.get("completed"),
        "jobs": [{k: j.get(k) for k in ("jobId", "status", "numTasks", "numCompletedTasks", "numFailedTasks")}
                 for j in sorted(jobs, key=lambda j: j["jobId"])],
        "stages": [{k: s.get(k) for k in ("stageId", "attemptId", "status", "numTasks", "numFailedTasks")}
                   for s in sorted(stages, key=lambda s: (s["stageId"], s["attemptId"]))],
        "totalTasks": total,
        "totalFailedTasks": statuses.get("FAILED", 0),
        "taskStatuses": dict(sorted(statuses.items())),
        "executors": [{"id": e["id"], "totalTasks": e.get("totalTasks"), "failedTasks": e.get("failedTasks"),
                       "isActive": e.get("isActive"), "inExecutorsEndpoint": e["id"] in active}
                      for e in sorted(execs, key=exec_key)],
    }
    print(json.dumps(summary, separators=(",", ":")))
    if summary_out:
        os.makedirs(summary_out, exist_ok=True)
        with open(os.path.join(summary_out, name + ".json"), "w") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
    if expected:
        cands = [os.path.join(expected, name + ".json"), os.path.join(expected, name, "history-summary.json")]
        path = next((c for c in cands if os.path.isfile(c)), None)
        if path is None:
            failed += 1
            print("FAIL %s: no expected summary (looked for %s)" % (name, " or ".join(cands)), file=sys.stderr)
            continue
        with open(path) as f:
            want = json.load(f)
        want.pop("id", None)
        got = dict(summary)
        got.pop("id")
        if want == got:
            passed += 1
            print("ok %s matches %s" % (name, path), file=sys.stderr)
        else:
            failed += 1
            a = json.dumps(want, indent=1, sort_keys=True).splitlines()
            b = json.dumps(got, indent=1, sort_keys=True).splitlines()
            print("FAIL %s differs from %s:" % (name, path), file=sys.stderr)
            for l in difflib.unified_diff(a, b, "expected", "history-server", lineterm="", n=2):
                print("  " + l, file=sys.stderr)
    else:
        passed += 1

for p in problems:
    print("FAIL " + p, file=sys.stderr)
failed += len(problems)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
