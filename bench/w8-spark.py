#!/usr/bin/env python3
"""W8 on Apache Spark: Parquet scan, filter, aggregate (bench/README.md), DataFrame API.

    python bench/w8-spark.py DIR [--runs 3] [--master local[2]] [--heap 8g]

Run with the Python of a venv holding pyspark (bench/w8-compare.sh uses the Spark anchor's,
$WORK/venv of ../shared/anchors/spark/run.sh). As the anchor does: local[2], the heap of
run.sh, WARN logging, the UI off, and only the action timed, after the session has started
(one untimed warm-up job first). No Python worker runs: the job is DataFrame operations.
DIR holds part-*.parquet and _expected.json from bench/w8-gen.py; every run's answer is checked
against _expected.json. Output lines: `W8 run N: <ms> ms ...`, `SANITY OK|FAIL ...`, and
`RESULT W8 spark-df <master> min=<ms> median=<ms> mb_per_s=<MB/s>`; exit status 0 only when
every run's answer is right.
"""
import argparse
import json
import os
import statistics
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

HERE = os.path.dirname(os.path.abspath(__file__))
LOG4J = os.path.join(HERE, "..", "..", "shared", "anchors", "spark", "log4j2.properties")


def answer(spark, data):
    agg = (spark.read.parquet(data)
           .where(F.col("value") > 5000.0)
           .groupBy("key")
           .agg(F.sum("value").alias("s"), F.count(F.lit(1)).alias("c")))
    cents = F.round(F.col("s") * 100).cast("long")
    row = agg.agg(F.count(F.lit(1)).alias("keys"), F.sum("c").alias("total_count"),
                  F.sum(cents).alias("total_cents"),
                  F.sum((F.col("key") % 65536 + 1) * cents + F.col("c")).alias("checksum")).first()
    return {k: int(row[k] or 0) for k in ("keys", "total_count", "total_cents", "checksum")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--heap", default="8g")
    a = ap.parse_args()
    with open(os.path.join(a.data, "_expected.json")) as f:
        exp = json.load(f)
    want = {k: exp[k] for k in ("keys", "total_count", "total_cents", "checksum")}
    builder = (SparkSession.builder.master(a.master).appName("w8")
               .config("spark.driver.memory", a.heap)
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "8"))
    if os.path.exists(LOG4J):
        builder = builder.config("spark.driver.extraJavaOptions",
                                 f"-Dlog4j.configurationFile={os.path.abspath(LOG4J)}")
    t0 = time.time()
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    print(f"Spark {spark.version}, master {a.master}, session in {time.time() - t0:.1f} s",
          flush=True)
    spark.range(1000).selectExpr("id % 10 AS k").groupBy("k").count().collect()  # warm-up
    ms, ok = [], True
    for r in range(a.runs):
        t = time.perf_counter()
        got = answer(spark, a.data)
        ms.append((time.perf_counter() - t) * 1e3)
        right = got == want
        ok &= right
        print(f"  W8 run {r + 1}: {ms[-1]:.1f} ms ({exp['total_bytes'] / 1e6 / (ms[-1] / 1e3):.1f}"
              f" MB/s) " + " ".join(f"{k}={v}" for k, v in got.items())
              + ("" if right else " MISMATCH"), flush=True)
    spark.stop()
    print(f"SANITY {'OK' if ok else 'FAIL'} W8: answer equals _expected.json of {a.data} "
          f"({want})")
    med = statistics.median(ms)
    print(f"RESULT W8 spark-df {a.master} min={min(ms):.1f} median={med:.1f} "
          f"mb_per_s={exp['total_bytes'] / 1e6 / (med / 1e3):.1f}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
