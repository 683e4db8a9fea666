#!/usr/bin/env python3
"""Generates the W8 dataset (Parquet scan + filter + aggregate) deterministically, streaming.

    python bench/w8-gen.py OUT_DIR                  # the full set: 100,000,000 rows, about 1 GiB
    python bench/w8-gen.py OUT_DIR --rows 2000000   # a small one (tests)

Row i (0-based, i < rows) is
    key   = splitmix64(i) % 1_000_000                      (Parquet INT64; see --key-type)
    value = (splitmix64(i ^ 0xABCDEF) % 1_000_000) / 100.0  (DOUBLE, 0.00 .. 9999.99)
    tag   = TAGS[i % 16]                                    (BYTE_ARRAY string, dictionary-encoded)
split in order into --files files `part-00000.parquet` ... (rows divided as evenly as possible,
earlier files taking the remainder), each in --row-groups row groups, Snappy. Writes
`_expected.json` beside them (a leading `_` so Spark does not take it for data) with the answer
of the W8 job, computed while generating:

    SELECT key, sum(value), count(*) FROM w8 WHERE value > 5000.0 GROUP BY key
    keys        = number of result rows
    total_count = sum of count
    total_cents = sum over keys of round(100 * sum(value))
    checksum    = sum over keys of ((key % 65536) + 1) * round(100 * sum(value)) + count
                  (fits in i64)

round(100 * sum) makes the figures independent of the order in which an engine adds the doubles
(each value is a whole number of cents; the sums stay far inside f64's exact range at that scale).

Needs pyarrow and numpy (make-fixtures.sh's venv plus numpy: `pip install numpy==2.4.6`).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_ROWS = 100_000_000
TAGS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliett", "kilo", "lima", "mike", "november", "oscar", "papa"]
NKEYS = 1_000_000
CHUNK = 1 << 20  # rows generated per step (bounded memory)


def splitmix64(x):
    """Vectorised splitmix64 over a uint64 array (wrapping arithmetic)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def rows_of(start, stop, key_type):
    i = np.arange(start, stop, dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = splitmix64(i) % np.uint64(NKEYS)
        cents = splitmix64(i ^ np.uint64(0xABCDEF)) % np.uint64(1_000_000)
        value = cents.astype(np.float64) / 100.0
    tag_idx = (i % np.uint64(16)).astype(np.int32)
    return key, value, tag_idx


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--row-groups", type=int, default=4, help="row groups per file")
    ap.add_argument("--key-type", choices=["int64", "uint64"], default="int64",
                    help="int64 (default) so Spark reads a bigint; uint64 is Parquet INT64 "
                         "with UINT_64, which Spark reads as decimal(20,0)")
    a = ap.parse_args()

    os.makedirs(a.out, exist_ok=True)
    key_pa = pa.int64() if a.key_type == "int64" else pa.uint64()
    schema = pa.schema([pa.field("key", key_pa, nullable=False),
                        pa.field("value", pa.float64(), nullable=False),
                        pa.field("tag", pa.string(), nullable=False)])
    tags = pa.array(TAGS, pa.string())
    sums = np.zeros(NKEYS, dtype=np.float64)
    counts = np.zeros(NKEYS, dtype=np.int64)
    t0 = time.time()
    base, extra = divmod(a.rows, a.files)
    start = 0
    files = []
    for f in range(a.files):
        n = base + (1 if f < extra else 0)
        name = f"part-{f:05d}.parquet"
        path = os.path.join(a.out, name)
        rg_base, rg_extra = divmod(n, a.row_groups)
        with pq.ParquetWriter(path, schema, compression="snappy", use_dictionary=["tag"],
                              write_statistics=True) as w:
            for g in range(a.row_groups):
                gn = rg_base + (1 if g < rg_extra else 0)
                cols = {"key": [], "value": [], "tag": []}
                for s in range(start, start + gn, CHUNK):
                    e = min(s + CHUNK, start + gn)
                    key, value, tag_idx = rows_of(s, e, a.key_type)
                    m = value > 5000.0
                    # bincount adds in row order; the figures below are order-independent anyway.
                    sums += np.bincount(key[m].astype(np.int64), weights=value[m], minlength=NKEYS)
                    counts += np.bincount(key[m].astype(np.int64), minlength=NKEYS)
                    keys = key.astype(np.int64) if a.key_type == "int64" else key
                    cols["key"].append(pa.array(keys, key_pa))
                    cols["value"].append(pa.array(value, pa.float64()))
                    cols["tag"].append(tags.take(pa.array(tag_idx)))
                if gn:
                    t = pa.table({k: pa.chunked_array(v, schema.field(k).type)
                                  for k, v in cols.items()}, schema=schema)
                    w.write_table(t, row_group_size=gn)
                start += gn
        files.append({"name": name, "rows": n, "bytes": os.path.getsize(path)})
        print(f"w8-gen: {name}: {n} rows, {files[-1]['bytes']} bytes ({time.time() - t0:.1f} s)",
              file=sys.stderr)

    cents = np.round(sums * 100.0).astype(np.int64)
    present = counts > 0
    keys = np.nonzero(present)[0]
    checksum = (sum(int((k % 65536) + 1) * int(c) for k, c in zip(keys, cents[present]))
                + int(counts.sum()))
    assert checksum < 2**63, "checksum must fit in a signed 64-bit integer"
    total = sum(x["bytes"] for x in files)
    expected = {
        "rows": a.rows, "files": files, "total_bytes": total, "key_type": a.key_type,
        "row_groups_per_file": a.row_groups, "filter": "value > 5000.0",
        "keys": int(present.sum()), "total_count": int(counts.sum()),
        "total_cents": int(cents.sum()),
        "checksum": checksum,
    }
    with open(os.path.join(a.out, "_expected.json"), "w") as fh:
        json.dump(expected, fh, indent=1)
        fh.write("\n")
    print(json.dumps({k: v for k, v in expected.items() if k != "files"}))


if __name__ == "__main__":
    main()
