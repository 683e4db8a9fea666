#!/usr/bin/env python3
"""Reduces a Spark event log to the minimal events and fields with which Spark 4.3.0's History
Server still shows the same applications, jobs, stages, tasks and executors (the summary of
bench/history-server-check.sh is identical; times, metrics and the environment page are not).

usage: minimize_eventlog.py IN OUT

Found by experiment (README.md, "What the History Server needs"): every line must parse, and a
field that Spark's JsonProtocol reads without a default is required: a line missing one ends the
replay there (everything after it is silently dropped; if that is before ApplicationStart the
application's UI does not load at all). The fields kept below are those required ones plus the
few that change what the summary shows (Attempt, Submission/Completion Time, Failure Reason...).
"""
import json
import sys

# Required in every Task Info (TaskStart and TaskEnd); Attempt and Killed default to 0/false.
TASK_INFO = ["Task ID", "Index", "Attempt", "Launch Time", "Executor ID", "Host", "Locality",
             "Getting Result Time", "Finish Time", "Failed", "Killed"]
# Stage ID, Stage Name, Number of Tasks and RDD Info (may be []) are required; Stage Attempt ID
# defaults to 0; Submission Time decides COMPLETE vs SKIPPED; Failure Reason decides FAILED.
STAGE_INFO = ["Stage ID", "Stage Attempt ID", "Stage Name", "Number of Tasks", "RDD Info",
              "Submission Time", "Completion Time", "Failure Reason"]


def pick(d, keys):
    return {k: d[k] for k in keys if k in d}


def stage_info(s):
    s = pick(s, STAGE_INFO)
    s["RDD Info"] = []
    return s


def minimal(events):
    out = []
    for e in events:
        t = e["Event"][len("SparkListener"):]
        if t == "LogStart":   # optional; if present "Spark Version" is required (else not listed)
            out.append({"Event": e["Event"], "Spark Version": e["Spark Version"]})
        elif t == "ApplicationStart":   # required, with all four fields (else not listed)
            out.append(pick(e, ["Event", "App Name", "App ID", "Timestamp", "User"]))
        elif t == "ApplicationEnd":   # marks the attempt completed
            out.append(pick(e, ["Event", "Timestamp"]))
        elif t == "JobStart":
            o = pick(e, ["Event", "Job ID", "Submission Time", "Stage IDs"])
            o["Stage Infos"] = [stage_info(s) for s in e["Stage Infos"]]
            out.append(o)
        elif t == "JobEnd":
            o = pick(e, ["Event", "Job ID", "Completion Time"])
            r = e["Job Result"]
            o["Job Result"] = {"Result": r["Result"]}
            if "Exception" in r:
                o["Job Result"]["Exception"] = {"Message": r["Exception"].get("Message", "")}
            out.append(o)
        elif t == "StageCompleted":
            out.append({"Event": e["Event"], "Stage Info": stage_info(e["Stage Info"])})
        elif t == "TaskStart":   # required: without it the task never appears, TaskEnd or not
            out.append({"Event": e["Event"], "Stage ID": e["Stage ID"], "Stage Attempt ID": e["Stage Attempt ID"],
                        "Task Info": pick(e["Task Info"], TASK_INFO)})
        elif t == "TaskEnd":   # Task Metrics is optional as a whole
            r = e["Task End Reason"]
            reason = {"Reason": r["Reason"]}
            if r["Reason"] == "ExceptionFailure":
                reason.update(pick(r, ["Class Name", "Description"]))
            elif r["Reason"] == "ExecutorLostFailure":
                reason.update(pick(r, ["Executor ID", "Exit Caused By App", "Loss Reason"]))
            out.append({"Event": e["Event"], "Stage ID": e["Stage ID"], "Stage Attempt ID": e["Stage Attempt ID"],
                        "Task Type": e["Task Type"], "Task End Reason": reason,
                        "Task Info": pick(e["Task Info"], TASK_INFO)})
        elif t == "ExecutorAdded":
            i = e["Executor Info"]
            out.append({"Event": e["Event"], "Timestamp": e["Timestamp"], "Executor ID": e["Executor ID"],
                        "Executor Info": {"Host": i["Host"], "Total Cores": i["Total Cores"], "Log Urls": {}}})
        elif t == "ExecutorRemoved":
            out.append(pick(e, ["Event", "Timestamp", "Executor ID", "Removed Reason"]))
        elif t == "BlockManagerAdded":   # the only trace of the driver in local-cluster/cluster logs
            out.append(pick(e, ["Event", "Block Manager ID", "Maximum Memory", "Timestamp"]))
        # dropped: ResourceProfileAdded, EnvironmentUpdate, StageSubmitted, BlockManagerRemoved,
        # UnpersistRDD and anything else
    return out


def main():
    with open(sys.argv[1]) as f:
        events = [json.loads(line) for line in f]
    with open(sys.argv[2], "w") as f:
        for e in minimal(events):
            f.write(json.dumps(e, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
