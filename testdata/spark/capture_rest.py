#!/usr/bin/env python3
"""Saves every /api/v1 path of one application, as Spark serves it (live UI or History Server).

usage: capture_rest.py BASE_URL APP_ID OUT_DIR

Each response body is saved byte for byte (Spark already pretty-prints its JSON) as
OUT_DIR/<path>.json, the path taken after /api/v1/ with the application id replaced by ID and
"/" by "__" (e.g. applications__ID__stages__1__0__taskList.json). OUT_DIR/index.tsv lists
path, HTTP status and file for every request, including the ones Spark answered with an error.
"""
import json
import os
import sys
import urllib.error
import urllib.request


def main():
    base, app_id, out = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    os.makedirs(out, exist_ok=True)
    index = []

    def get(path):
        url = base + "/api/v1/" + path
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        name = path.replace(app_id, "ID").replace("/", "__")
        fname = name + (".json" if status == 200 else ".error-%d.txt" % status)
        with open(os.path.join(out, fname), "wb") as f:
            f.write(body)
        index.append("%s\t%d\t%s" % (path.replace(app_id, "{id}"), status, fname))
        if status != 200:
            return None
        return json.loads(body)

    apps = get("applications")
    app = next(a for a in apps if a["id"] == app_id)
    get("applications/" + app_id)
    attempt = app["attempts"][-1].get("attemptId")
    p = "applications/" + app_id + ("/" + attempt if attempt else "")
    jobs = get(p + "/jobs") or []
    for j in jobs:
        get("%s/jobs/%d" % (p, j["jobId"]))
    stages = get(p + "/stages") or []
    for sid in sorted({s["stageId"] for s in stages}):
        get("%s/stages/%d" % (p, sid))
    for s in sorted(stages, key=lambda s: (s["stageId"], s["attemptId"])):
        sp = "%s/stages/%d/%d" % (p, s["stageId"], s["attemptId"])
        get(sp)
        get(sp + "/taskList")
        get(sp + "/taskSummary")
    get(p + "/executors")
    get(p + "/allexecutors")
    for r in get(p + "/storage/rdd") or []:
        get("%s/storage/rdd/%d" % (p, r["id"]))
    get(p + "/environment")
    with open(os.path.join(out, "index.tsv"), "w") as f:
        f.write("path\tstatus\tfile\n" + "\n".join(index) + "\n")
    print("captured %d paths from %s into %s (%d not 200)" % (
        len(index), base, out, sum(1 for l in index if "\t200\t" not in l)))


if __name__ == "__main__":
    main()
