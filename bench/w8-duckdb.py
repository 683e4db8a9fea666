#!/usr/bin/env python3
"""W8 on DuckDB: runs bench/w8.sql in DIR (where its `part-*.parquet` glob finds the files).

    python bench/w8-duckdb.py DIR [--runs 3]

Needs duckdb (the venv of testdata/data/make-fixtures.sh). Each run is the query alone, on a
fresh in-memory connection (so no run reuses the previous one's cache), timed from the query to
its result. Every run's answer is checked against DIR/_expected.json. Output lines as
bench/w8-spark.py's: `RESULT W8 duckdb threads=2 min=<ms> median=<ms> mb_per_s=<MB/s>`.
"""
import argparse
import json
import os
import statistics
import sys
import time

import duckdb

SQL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "w8.sql")
FIELDS = ("keys", "total_count", "total_cents", "checksum")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    with open(os.path.join(a.data, "_expected.json")) as f:
        exp = json.load(f)
    want = {k: exp[k] for k in FIELDS}
    with open(SQL) as f:
        sql = f.read()
    os.chdir(a.data)
    print(f"DuckDB {duckdb.__version__}", flush=True)
    ms, ok = [], True
    for r in range(a.runs):
        con = duckdb.connect()
        t = time.perf_counter()
        row = con.execute(sql).fetchall()[-1]
        ms.append((time.perf_counter() - t) * 1e3)
        con.close()
        got = dict(zip(FIELDS, (int(v) for v in row)))
        right = got == want
        ok &= right
        print(f"  W8 run {r + 1}: {ms[-1]:.1f} ms ({exp['total_bytes'] / 1e6 / (ms[-1] / 1e3):.1f}"
              f" MB/s) " + " ".join(f"{k}={v}" for k, v in got.items())
              + ("" if right else " MISMATCH"), flush=True)
    print(f"SANITY {'OK' if ok else 'FAIL'} W8: answer equals _expected.json of {a.data} "
          f"({want})")
    med = statistics.median(ms)
    print(f"RESULT W8 duckdb threads=2 min={min(ms):.1f} median={med:.1f} "
          f"mb_per_s={exp['total_bytes'] / 1e6 / (med / 1e3):.1f}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
