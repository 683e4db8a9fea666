#!/usr/bin/env python3
"""Writes the data-source fixtures of testdata/data/ and their expected contents (expected.json).

Run through make-fixtures.sh, which makes the venv with the pinned pyarrow, duckdb and polars.
Every file name says which tool wrote it: `<dataset>.<tool>[.<variant>].<ext>` (`hand` = the
bytes are spelled out in this script). Output is deterministic: running it twice gives the same
bytes (checked by `make-fixtures.sh --check`).

Before writing expected.json every Parquet file is read back with pyarrow and with DuckDB, every
CSV with Python's csv module and every JSON-lines file with Python's json, and compared with the
canonical rows defined below; any difference stops the script. So expected.json holds what the
files contain, not merely what the writers were asked to write.

Usage: python make-fixtures.py [OUT_DIR]   (default: the directory of this script)
"""
import bz2
import csv
import datetime as dt
import decimal
import gzip
import io
import json
import os
import re
import shutil
import struct
import sys
from decimal import Decimal

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.json  # noqa: F401 (pa.json)
import pyarrow.parquet as pq

OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
UTC = dt.timezone.utc
FILES = {}  # file name -> description written to expected.json
MASK64 = (1 << 64) - 1


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def path(name):
    p = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def fail(msg):
    sys.exit(f"make-fixtures: {msg}")


# ---------------------------------------------------------------------------------------------
# Canonical data
# ---------------------------------------------------------------------------------------------

# The `people` dataset: one column per type, a null in every nullable column (row 7 is null
# everywhere but `id`), strings that need CSV quoting, negative/pre-epoch values and extremes.
PEOPLE_SCHEMA = pa.schema([
    pa.field("id", pa.int64(), nullable=False),
    pa.field("age", pa.int32()),
    pa.field("score", pa.float64()),
    pa.field("active", pa.bool_()),
    pa.field("name", pa.string()),
    pa.field("city", pa.string()),          # few distinct values: dictionary-encoded by default
    pa.field("big", pa.int64()),
    pa.field("address", pa.struct([pa.field("street", pa.string()), pa.field("zip", pa.int32())])),
    pa.field("tags", pa.list_(pa.string())),
    pa.field("lucky", pa.list_(pa.int64())),
    pa.field("birth", pa.date32()),
    pa.field("ts_us", pa.timestamp("us")),
    pa.field("ts_ms", pa.timestamp("ms")),
    pa.field("ts_us_utc", pa.timestamp("us", tz="UTC")),
    pa.field("ts_ms_paris", pa.timestamp("ms", tz="Europe/Paris")),
    pa.field("price", pa.decimal128(10, 2)),
    pa.field("amount", pa.decimal128(38, 10)),
])


def ts(s, tz=None):
    d = dt.datetime.fromisoformat(s)
    return d.replace(tzinfo=tz) if tz else d


PEOPLE_ROWS = [
    dict(id=1, age=34, score=87.5, active=True, name="Alice", city="Paris", big=9007199254740993,
         address=dict(street="1 Rue de Rivoli", zip=75001), tags=["admin", "dev"], lucky=[7, 13],
         birth=dt.date(1991, 4, 12), ts_us=ts("2025-11-03T12:34:56.123456"), ts_ms=ts("2025-11-03T12:34:56.123"),
         ts_us_utc=ts("2025-11-03T12:34:56.123456", UTC), ts_ms_paris=ts("2025-11-03T11:34:56.123", UTC),
         price=Decimal("19.99"), amount=Decimal("1234567890.0123456789")),
    dict(id=2, age=None, score=0.1, active=False, name="Bob, Jr.", city="London", big=-1,
         address=dict(street=None, zip=12345), tags=[], lucky=[],
         birth=dt.date(1969, 12, 31), ts_us=ts("1969-12-31T23:59:59.999999"), ts_ms=ts("1969-12-31T23:59:59.999"),
         ts_us_utc=ts("1970-01-01T00:00:00", UTC), ts_ms_paris=ts("2025-06-30T22:00:00", UTC),
         price=Decimal("-0.50"), amount=Decimal("-0.0000000001")),
    dict(id=3, age=-7, score=-2.25, active=None, name='Say "hi"', city="Paris", big=9223372036854775807,
         address=None, tags=["x", None, "z"], lucky=[None, -1],
         birth=None, ts_us=None, ts_ms=ts("2000-02-29T00:00:00"),
         ts_us_utc=ts("2000-02-29T23:59:59.000001", UTC), ts_ms_paris=None,
         price=Decimal("99999999.99"), amount=Decimal("9999999999999999999999999999.9999999999")),
    dict(id=4, age=2147483647, score=None, active=True, name="Line1\nLine2", city="Berlin", big=-9223372036854775808,
         address=dict(street="Unter den Linden 5", zip=None), tags=None, lucky=[9223372036854775807],
         birth=dt.date(2000, 1, 1), ts_us=ts("2025-01-01T00:00:00"), ts_ms=None,
         ts_us_utc=None, ts_ms_paris=ts("2024-12-31T23:00:00", UTC),
         price=Decimal("0.00"), amount=None),
    dict(id=5, age=-2147483648, score=1e300, active=False, name="semi;colon\ttab", city=None, big=0,
         address=dict(street="", zip=0), tags=[""], lucky=None,
         birth=dt.date(1900, 1, 1), ts_us=ts("1900-01-01T00:00:00"), ts_ms=ts("2262-04-11T23:47:16.854"),
         ts_us_utc=ts("2262-04-11T23:47:16.854775", UTC), ts_ms_paris=ts("1950-06-01T00:00:00", UTC),
         price=None, amount=Decimal("-9999999999999999999999999999.9999999999")),
    dict(id=6, age=0, score=-0.0, active=True, name="naïve café ☕ 日本", city="London", big=42,
         address=dict(street="221B Baker St", zip=10001), tags=["ünï", "日本"], lucky=[0],
         birth=dt.date(2024, 2, 29), ts_us=ts("2024-02-29T12:00:00.000001"), ts_ms=ts("2024-02-29T12:00:00.001"),
         ts_us_utc=ts("2024-02-29T12:00:00", UTC), ts_ms_paris=ts("2024-03-31T01:00:00", UTC),
         price=Decimal("-99999999.99"), amount=Decimal("0E-10")),
    dict(id=7, age=None, score=None, active=None, name="", city="", big=None,
         address=dict(street=None, zip=None), tags=[None], lucky=[None],
         birth=None, ts_us=None, ts_ms=None, ts_us_utc=None, ts_ms_paris=None, price=None, amount=None),
    dict(id=8, **{f.name: None for f in PEOPLE_SCHEMA if f.name != "id"}),
]
# Columns a CSV can hold (no nested types); the tz-aware ones are left out of CSV because each
# writer spells offsets differently, which a separate fixture does not need to test.
FLAT = ["id", "age", "score", "active", "name", "city", "big", "birth", "ts_us", "ts_ms", "price", "amount"]


def people_table():
    return pa.Table.from_pylist(PEOPLE_ROWS, schema=PEOPLE_SCHEMA)


def numbers_rows(n=1000):
    """`numbers`: n rows for the multi-row-group file; label repeats (16 values), value exact in binary."""
    return [dict(id=i, value=(splitmix64(i) % 100000) / 8.0, label=f"label-{i % 16:02d}") for i in range(n)]


NUMBERS_SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("value", pa.float64()),
                            pa.field("label", pa.string())])

SALES_PARTS = [(2024, 12), (2025, 1), (2025, 11)]
PRODUCTS = ["apple", "banana", "cherry", "date"]


def sales_rows():
    rows, n = [], 0
    for year, month in SALES_PARTS:
        for j in range(4):
            rows.append(dict(id=n, product=PRODUCTS[(n * 3) % 4], qty=(n % 5) + 1, price=float(n) + 0.25,
                             year=year, month=month))
            n += 1
    return rows


SALES_SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("product", pa.string()),
                          pa.field("qty", pa.int32()), pa.field("price", pa.float64())])

CATEGORY_ROWS = [dict(id=i, color=[None, "red", "green", "blue", "red"][i % 5]) for i in range(10)]

LINES = [f"{i:04d} " + " ".join(f"w{splitmix64(i * 8 + k) % 1000}" for k in range(1 + i % 9)) for i in range(600)]
LINES[3] = "naïve café — 日本語 ☕"
LINES[4] = ""
LINES[5] = "tab\tseparated\tline"
TEXT = ("\n".join(LINES) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------------------------
# JSON normalisation (the conventions of expected.json)
# ---------------------------------------------------------------------------------------------

def jval(v, t):
    """Python value of arrow type t -> expected.json value."""
    if v is None:
        return None
    if pa.types.is_decimal(t):
        return format(Decimal(v).quantize(Decimal(1).scaleb(-t.scale)), "f")
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        digits = {"s": 0, "ms": 3, "us": 6, "ns": 9}[t.unit]
        s = v.strftime("%Y-%m-%dT%H:%M:%S")
        if digits:
            s += "." + f"{v.microsecond:06d}"[:digits] if digits <= 6 else "." + f"{v.microsecond:06d}000"
        return s + ("Z" if t.tz is not None else "")
    if pa.types.is_date(t):
        return v.isoformat()
    if pa.types.is_struct(t):
        return {f.name: jval(v.get(f.name), f.type) for f in t}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return [jval(x, t.value_type) for x in v]
    if pa.types.is_dictionary(t):
        return jval(v, t.value_type)
    if pa.types.is_floating(t):
        return float(v)
    return v


def jrows(rows, schema):
    return [{f.name: jval(r.get(f.name), f.type) for f in schema} for r in rows]


def type_str(t):
    return str(t)


def schema_json(schema):
    return [{"name": f.name, "type": type_str(f.type), "nullable": f.nullable} for f in schema]


def float_key(v):
    """-0.0 and 0.0 compare equal in Python; make the sign count."""
    return repr(v) if isinstance(v, float) else v


def deep_eq(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(deep_eq(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(deep_eq(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and float_key(a) == float_key(b)


def check_same(what, got, want):
    if not deep_eq(got, want):
        for i, (g, w) in enumerate(zip(got, want)):
            if not deep_eq(g, w):
                fail(f"{what}: row {i} differs:\n  got  {g}\n  want {w}")
        fail(f"{what}: {len(got)} rows, want {len(want)}")


# ---------------------------------------------------------------------------------------------
# Parquet
# ---------------------------------------------------------------------------------------------

def parquet_info(p):
    md = pq.ParquetFile(p).metadata
    cols = {}
    for rg in range(md.num_row_groups):
        for c in range(md.num_columns):
            col = md.row_group(rg).column(c)
            e = cols.setdefault(col.path_in_schema, {"physical_type": col.physical_type, "compression": set(),
                                                     "encodings": set()})
            e["compression"].add(col.compression)
            e["encodings"].update(col.encodings)
    sch = md.schema
    logical = {sch.column(i).path: str(sch.column(i).logical_type) for i in range(md.num_columns)}
    return {
        "created_by": md.created_by,
        "num_rows": md.num_rows,
        "row_groups": [md.row_group(i).num_rows for i in range(md.num_row_groups)],
        "arrow_schema_in_footer": b"ARROW:schema" in (md.metadata or {}),
        "columns": {k: {"physical_type": v["physical_type"], "logical_type": logical[k],
                        "compression": sorted(v["compression"]), "encodings": sorted(v["encodings"])}
                    for k, v in cols.items()},
    }


def duck_rows(sql_from):
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    cur = con.execute(f"SELECT * FROM {sql_from}")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    con.close()
    return rows


def check_parquet(name, want_rows, schema, order_by="id"):
    """Reads a Parquet file with pyarrow and DuckDB; both must give want_rows (canonical)."""
    p = path(name)
    t = pq.read_table(p)
    got = jrows(t.sort_by(order_by).to_pylist(), t.schema)
    # Formatted with the types the file has (a writer may have widened ms to us): same instants.
    want = jrows(want_rows, t.schema)
    check_same(f"{name} (pyarrow)", got, want)
    drows = duck_rows(f"read_parquet('{p}') ORDER BY {order_by}")
    check_same(f"{name} (duckdb)", jrows(drows, t.schema), want)
    return t.schema, want


def add_parquet(name, writer, dataset, rows, schema, note, order_by="id"):
    read_schema, want = check_parquet(name, rows, schema, order_by)
    FILES[name] = {"format": "parquet", "writer": writer, "dataset": dataset, "note": note,
                   "schema_as_read_by_pyarrow": schema_json(read_schema),
                   "schema_as_read_by_spark": spark_schema(name),
                   "parquet": parquet_info(path(name)), "rows": want}


def spark_schema(name):
    r = SPARK_RESULTS.get("parquet schemas", {}).get(name)
    return None if r is None else (r["rows"] if r["ok"] else {"error": r["error"]})


def write_parquet_fixtures():
    t = people_table()
    common = dict(write_statistics=True, data_page_version="1.0")
    pq.write_table(t, path("people.pyarrow.parquet"), compression="snappy", use_dictionary=True, **common)
    add_parquet("people.pyarrow.parquet", "pyarrow", "people", PEOPLE_ROWS, PEOPLE_SCHEMA,
                "Snappy; dictionary encoding on (pyarrow use_dictionary=True, the default); one row group")
    pq.write_table(t, path("people.pyarrow.plain.parquet"), compression="snappy", use_dictionary=False, **common)
    add_parquet("people.pyarrow.plain.parquet", "pyarrow", "people", PEOPLE_ROWS, PEOPLE_SCHEMA,
                "Snappy; use_dictionary=False: every column PLAIN-encoded")
    pq.write_table(t, path("people.pyarrow.zstd.parquet"), compression="zstd", compression_level=3, **common)
    add_parquet("people.pyarrow.zstd.parquet", "pyarrow", "people", PEOPLE_ROWS, PEOPLE_SCHEMA, "Zstd level 3")
    pq.write_table(t, path("people.pyarrow.uncompressed.parquet"), compression="none", **common)
    add_parquet("people.pyarrow.uncompressed.parquet", "pyarrow", "people", PEOPLE_ROWS, PEOPLE_SCHEMA,
                "UNCOMPRESSED")
    pq.write_table(t, path("people.pyarrow.v2.parquet"), compression="snappy", data_page_version="2.0",
                   store_decimal_as_integer=True)
    add_parquet("people.pyarrow.v2.parquet", "pyarrow", "people", PEOPLE_ROWS, PEOPLE_SCHEMA,
                "Snappy; data page V2; decimals stored as INT32/INT64 where the precision allows "
                "(store_decimal_as_integer=True)")

    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.register("people", t)
    con.execute(f"COPY (SELECT * FROM people ORDER BY id) TO '{path('people.duckdb.parquet')}' "
                "(FORMAT parquet, COMPRESSION snappy)")
    con.close()
    add_parquet("people.duckdb.parquet", "duckdb", "people", PEOPLE_ROWS, PEOPLE_SCHEMA,
                "DuckDB COPY ... (FORMAT parquet, COMPRESSION snappy). DuckDB keeps no time-zone name: "
                "ts_ms_paris is read back as a UTC timestamp (same instants); see schema_as_read_by_pyarrow")

    pl.from_arrow(t).write_parquet(path("people.polars.parquet"), compression="zstd", statistics=True)
    add_parquet("people.polars.parquet", "polars", "people", PEOPLE_ROWS, PEOPLE_SCHEMA,
                "polars write_parquet (zstd, polars' default codec)")

    # Several row groups: 1000 rows, row_group_size=250 -> 4 row groups; data pages of ~1 KiB.
    nrows = numbers_rows()
    nt = pa.Table.from_pylist(nrows, schema=NUMBERS_SCHEMA)
    pq.write_table(nt, path("numbers.pyarrow.rowgroups.parquet"), row_group_size=250, data_page_size=1024,
                   compression="snappy")
    add_parquet("numbers.pyarrow.rowgroups.parquet", "pyarrow", "numbers", nrows, NUMBERS_SCHEMA,
                "1000 rows in 4 row groups of 250 (row_group_size=250), several data pages each; "
                "value = (splitmix64(id) % 100000) / 8.0, label = 'label-%02d' % (id % 16)")

    # An Arrow dictionary column: arrow-rs gives back Dictionary(Int32, Utf8), not Utf8, because
    # the footer's ARROW:schema says so.
    ct = pa.Table.from_pylist(CATEGORY_ROWS, schema=pa.schema([
        pa.field("id", pa.int64(), nullable=False), pa.field("color", pa.dictionary(pa.int32(), pa.string()))]))
    pq.write_table(ct, path("categories.pyarrow.parquet"))
    FILES["categories.pyarrow.parquet"] = {
        "format": "parquet", "writer": "pyarrow", "dataset": "categories",
        "note": "color is an Arrow dictionary<int32, string> column: readers that honour the footer's "
                "ARROW:schema (arrow-rs, pyarrow) return a dictionary array; Spark and DuckDB a plain string",
        "schema_as_read_by_spark": spark_schema("categories.pyarrow.parquet"),
        "schema_as_read_by_pyarrow": schema_json(pq.read_schema(path("categories.pyarrow.parquet"))),
        "parquet": parquet_info(path("categories.pyarrow.parquet"))}
    check_same("categories.pyarrow.parquet", [{k: (str(v) if k == "color" and v is not None else v)
                                               for k, v in r.items()}
                                              for r in pq.read_table(path("categories.pyarrow.parquet")).to_pylist()],
               CATEGORY_ROWS)

    # Zero rows, schema only.
    pq.write_table(people_table().slice(0, 0), path("empty.pyarrow.parquet"))
    add_parquet("empty.pyarrow.parquet", "pyarrow", "empty", [], PEOPLE_SCHEMA,
                "people's schema, 0 rows (one row group of 0 rows or none, as pyarrow writes it)")

    # Corrupt files: a valid header ("PAR1" + column chunks), footer cut off or lying.
    good = open(path("people.pyarrow.parquet"), "rb").read()
    footer_len = struct.unpack("<I", good[-8:-4])[0]
    cut = len(good) - 8 - footer_len // 2
    open(path("corrupt-truncated.pyarrow.parquet"), "wb").write(good[:cut])
    FILES["corrupt-truncated.pyarrow.parquet"] = {
        "format": "parquet", "writer": "pyarrow (then truncated by this script)", "dataset": None,
        "expect_error": True,
        "note": f"people.pyarrow.parquet cut to its first {cut} of {len(good)} bytes: starts with PAR1, ends in the "
                "middle of the Thrift footer, so it has no trailing footer length + PAR1 magic. Readers must fail",
        "arrow_rs_error": "Parquet error: Invalid Parquet file. Corrupt footer (parquet 60.2.0)"}
    bad = bytearray(good)
    bad[-8:-4] = struct.pack("<I", len(good) * 2)
    open(path("corrupt-footerlen.pyarrow.parquet"), "wb").write(bytes(bad))
    FILES["corrupt-footerlen.pyarrow.parquet"] = {
        "format": "parquet", "writer": "pyarrow (then patched by this script)", "dataset": None,
        "expect_error": True,
        "note": "people.pyarrow.parquet with the footer length (4 bytes before the trailing PAR1) set to twice "
                "the file size: magic bytes at both ends are right, the footer cannot be located",
        "arrow_rs_error": f"EOF: Parquet file too small. Size is {len(good)} but need {len(good) * 2 + 8} (parquet 60.2.0)",
        "arrow_rs_async_error": f"EOF: file size of {len(good)} is less than footer + metadata {len(good) * 2 + 8} "
                                "(parquet 60.2.0, ParquetObjectReader)"}
    for n in ("corrupt-truncated.pyarrow.parquet", "corrupt-footerlen.pyarrow.parquet"):
        try:
            pq.read_table(path(n))
        except Exception as e:  # noqa: BLE001 - any error is what we want
            FILES[n]["pyarrow_error"] = str(e).splitlines()[0].replace(path(n), n)
        else:
            fail(f"{n}: pyarrow read it without an error")
        FILES[n]["spark_error"] = spark_schema(n)


def write_partitioned():
    rows = sales_rows()
    root = path("sales")
    shutil.rmtree(root, ignore_errors=True)
    t = pa.Table.from_pylist(rows, schema=SALES_SCHEMA.append(pa.field("year", pa.int32()))
                             .append(pa.field("month", pa.int32())))
    part = pads.partitioning(pa.schema([("year", pa.int32()), ("month", pa.int32())]), flavor="hive")
    pads.write_dataset(t, root, format="parquet", partitioning=part, basename_template="part-{i}.parquet",
                       existing_data_behavior="delete_matching")
    open(os.path.join(root, "_SUCCESS"), "wb").close()
    files = sorted(os.path.relpath(os.path.join(d, f), OUT) for d, _, fs in os.walk(root) for f in fs)
    for f in files:
        if f.endswith(".parquet"):
            names = pq.read_schema(path(f)).names
            if "year" in names or "month" in names:
                fail(f"{f}: partition column inside the file")
    # Read back as a hive dataset (pyarrow and duckdb) and compare.
    got = pads.dataset(root, format="parquet", partitioning="hive",
                       exclude_invalid_files=True).to_table().sort_by("id").to_pylist()
    check_same("sales (pyarrow.dataset)", got, rows)
    drows = duck_rows(f"read_parquet('{root}/*/*/*.parquet', hive_partitioning=true) ORDER BY id")
    check_same("sales (duckdb)", [{k: (int(v) if k in ("year", "month") else v) for k, v in r.items()}
                                  for r in drows], rows)
    FILES["sales/"] = {
        "format": "parquet (hive-partitioned directory)", "writer": "pyarrow.dataset.write_dataset", "dataset": "sales",
        "files": files,
        "note": "partition columns year, month appear only in the directory names (year=2025/month=11, month not "
                "zero-padded); the files hold id, product, qty, price. _SUCCESS is an empty marker file, as Spark "
                "writes it: readers must skip names starting with '_' or '.'. Expected rows list the partition "
                "columns last (Spark's order), typed int32 (Spark's partition type inference gives IntegerType)",
        "file_schema": schema_json(SALES_SCHEMA),
        "spark_reads": SPARK_RESULTS.get("sales/"),
        "rows_by_file": {f: [r for r in jrows(rows, SALES_SCHEMA)
                             if f.startswith(f"sales/year={r_y}/month={r_m}/")]
                         for f in files if f.endswith(".parquet")
                         for r_y, r_m in [tuple(int(x.split("=")[1]) for x in f.split("/")[1:3])]},
    }


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------

def raw_csv(p, delimiter=","):
    with open(p, newline="", encoding="utf-8") as f:
        return [r for r in csv.reader(f, delimiter=delimiter, quotechar='"', doublequote=True, strict=True)]


def flat_schema():
    return pa.schema([PEOPLE_SCHEMA.field(c) for c in FLAT])


def csv_typed_check(name, delimiter):
    """Parse a people CSV back with pyarrow.csv using the declared types; must equal canonical."""
    sch = flat_schema()
    t = pacsv.read_csv(path(name), parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                       convert_options=pacsv.ConvertOptions(column_types=sch, strings_can_be_null=True, null_values=[""],
                                                            quoted_strings_can_be_null=False))
    got = jrows(t.to_pylist(), sch)
    want = jrows([{c: r[c] for c in FLAT} for r in PEOPLE_ROWS], sch)
    # CSV cannot tell an empty string from null: the writers used here all write null as an empty
    # unquoted field and "" as a quoted empty field ("").
    check_same(f"{name} (pyarrow.csv)", got, want)


def add_csv(name, writer, delimiter, note):
    csv_typed_check(name, delimiter)
    FILES[name] = {"format": "csv", "writer": writer, "dataset": "people (flat columns)", "delimiter": delimiter,
                   "header": True, "note": note, "typed_schema": schema_json(flat_schema()),
                   "raw_records": raw_csv(path(name), delimiter),
                   "rows": jrows([{c: r[c] for c in FLAT} for r in PEOPLE_ROWS], flat_schema())}


def write_csv_fixtures():
    t = people_table().select(FLAT)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.register("people", t)
    con.execute(f"COPY (SELECT * FROM people ORDER BY id) TO '{path('people.duckdb.csv')}' (HEADER, DELIMITER ',')")
    con.execute(f"COPY (SELECT * FROM people ORDER BY id) TO '{path('people.duckdb.semicolon.csv')}' "
                "(HEADER, DELIMITER ';')")
    con.close()
    add_csv("people.duckdb.csv", "duckdb", ",",
            "RFC 4180 quoting: fields with the delimiter, a quote (doubled) or a newline are quoted; null is an "
            "empty field, an empty string is \"\"")
    add_csv("people.duckdb.semicolon.csv", "duckdb", ";", "same rows, ';' as delimiter (so 'Bob, Jr.' is unquoted)")
    pl.from_arrow(t).write_csv(path("people.polars.tab.tsv"), separator="\t", include_header=True)
    add_csv("people.polars.tab.tsv", "polars", "\t", "same rows, tab-separated; polars' own timestamp/decimal "
            "spelling (see raw_records)")
    pl.from_arrow(t).write_csv(path("people.polars.csv"), include_header=True)
    add_csv("people.polars.csv", "polars", ",", "same rows, comma-separated")
    pacsv.write_csv(t, path("people.pyarrow.csv"))
    add_csv("people.pyarrow.csv", "pyarrow", ",",
            "same rows by pyarrow.csv.write_csv: header names and every non-null string quoted, "
            "null an empty unquoted field, timestamps with a space")

    # Hand-written: every quoting case spelled out, CRLF line ends, a trailing line without newline.
    quoting = (b'id,text,note\r\n'
               b'1,plain,no quotes\r\n'
               b'2,"with, comma","quoted"\r\n'
               b'3,"with ""quotes""",doubled quotes\r\n'
               b'4,"multi\r\nline",CRLF inside quotes\r\n'
               b'5,"multi\nline",LF inside quotes\r\n'
               b'6,,empty unquoted\r\n'
               b'7,"",empty quoted\r\n'
               b'8, spaced ,leading and trailing spaces kept\r\n'
               b'9,last,no newline at end')
    open(path("quoting.hand.csv"), "wb").write(quoting)
    raw = raw_csv(path("quoting.hand.csv"))
    FILES["quoting.hand.csv"] = {
        "format": "csv", "writer": "hand", "delimiter": ",", "header": True,
        "note": "RFC 4180 cases, CRLF record ends, no newline after the last record. raw_records is the RFC 4180 "
                "reading (Rust: csv::ReaderBuilder defaults; doubled quotes unescaped, CRLF inside quotes kept). "
                "Spark differs (spark_reads): its default escape character is backslash, so a doubled quote is NOT "
                "unescaped unless .option(\"escape\", \"\\\"\"); with multiLine=true a quoted CRLF becomes \\n; "
                "both an empty unquoted and an empty quoted field read as null; without multiLine a quoted "
                "newline splits the record",
        "spark_reads": SPARK_RESULTS.get("quoting.hand.csv"),
        "raw_records": raw}

    # Malformed rows for the parse modes. Schema given to the reader: id int, name string, amount double.
    malformed = (b"id,name,amount\n"
                 b"1,ok,1.5\n"
                 b"2,too few\n"
                 b"3,too,many,fields\n"
                 b"4,bad number,abc\n"
                 b"5,ok again,2.5\n"
                 b"x6,bad id,3.5\n")
    open(path("malformed.hand.csv"), "wb").write(malformed)
    FILES["malformed.hand.csv"] = {
        "format": "csv", "writer": "hand", "delimiter": ",", "header": True,
        "typed_schema": [{"name": "id", "type": "int32", "nullable": True},
                         {"name": "name", "type": "string", "nullable": True},
                         {"name": "amount", "type": "double", "nullable": True}],
        "raw_records": raw_csv(path("malformed.hand.csv")),
        "note": "rows 2 (2 fields) and 3 (4 fields) have the wrong field count, rows 4 and x6 an unparsable "
                "number. spark_modes gives what Spark itself returns for each parse mode (spark-check.py): a wrong "
                "field count IS malformed (DROPMALFORMED drops it, FAILFAST fails on it); PERMISSIVE keeps every "
                "row, fills missing fields and unparsable ones with null, drops extra fields, and puts the raw line "
                "in _corrupt_record when the schema has that column",
        "spark_modes": SPARK_RESULTS.get("malformed.hand.csv"),
    }


# ---------------------------------------------------------------------------------------------
# JSON lines
# ---------------------------------------------------------------------------------------------

def raw_jsonl(p):
    with open(p, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_json_fixtures():
    t = people_table()
    pl.from_arrow(t).write_ndjson(path("people.polars.ndjson"))
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.register("people", t)
    con.execute(f"COPY (SELECT * FROM people ORDER BY id) TO '{path('people.duckdb.ndjson')}' (FORMAT json)")
    con.close()
    for name, writer in (("people.polars.ndjson", "polars"), ("people.duckdb.ndjson", "duckdb")):
        raw = raw_jsonl(path(name))
        if [r["id"] for r in raw] != [r["id"] for r in PEOPLE_ROWS]:
            fail(f"{name}: ids differ")
        # Typed read-back through the canonical schema must give the canonical rows.
        typed = [json_typed(json.loads(line, parse_float=Decimal), pa.struct(list(PEOPLE_SCHEMA)))
                 for line in open(path(name), encoding="utf-8") if line.strip()]
        want = jrows(PEOPLE_ROWS, PEOPLE_SCHEMA)
        check_same(f"{name} (typed)", typed, want)
        FILES[name] = {"format": "jsonl", "writer": writer, "dataset": "people",
                       "note": JSON_NOTES[writer],
                       "lines": open(path(name), encoding="utf-8").read().splitlines(),
                       "typed_schema": schema_json(PEOPLE_SCHEMA), "rows": want}

    events = [
        {"id": 1, "user": {"name": "ann", "langs": ["en", "fr"]}, "score": 1.5, "ok": True, "tags": ["a"]},
        {"id": 2, "user": {"name": None, "langs": []}, "score": None, "ok": False, "tags": []},
        {"id": 3, "user": None, "score": 3, "ok": None, "tags": None},
        {"id": 4, "score": -0.25, "extra": {"deep": {"deeper": [1, [2, 3], {"k": "v"}]}}},
        {"id": 5, "user": {"name": "bo\u00e9 \"q\"\n", "langs": [None]}, "score": 1e21, "ok": True, "tags": ["x", "y"]},
    ]
    good = "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events)
    open(path("events.hand.jsonl"), "w", encoding="utf-8").write(good)
    FILES["events.hand.jsonl"] = {
        "format": "jsonl", "writer": "hand (json.dumps)", "raw_objects": raw_jsonl(path("events.hand.jsonl")),
        "note": "nested objects, arrays (nested, empty, with null), missing keys (row 4 has no user/ok/tags, "
                "row 1-3,5 no extra), an integer in a double column (row 3), 1e21"}
    lines = good.splitlines(keepends=True)
    bad = lines[:2] + ['{"id": 99, "user": {"name": "unterminated"\n'] + lines[2:]
    open(path("events.hand.malformed.jsonl"), "w", encoding="utf-8").write("".join(bad))
    FILES["events.hand.malformed.jsonl"] = {
        "format": "jsonl", "writer": "hand",
        "note": "events.hand.jsonl with line 3 (1-based) not valid JSON (unterminated object). spark_modes gives "
                "Spark's result per mode with the schema id long, user struct<name string, langs array<string>>, "
                "score double, ok boolean, tags array<string>, _corrupt_record string",
        "malformed_line_numbers": [3],
        "spark_modes": SPARK_RESULTS.get("events.hand.malformed.jsonl")}


JSON_NOTES = {
    "polars": "decimals as JSON strings (\"19.99\"); naive timestamps as \"2025-11-03 12:34:56.123456\" (space, "
              "no zone); tz-aware ones as RFC 3339 with the column's zone offset (\"2025-11-03T12:34:56.123+01:00\"); "
              "dates \"1991-04-12\"; null as null",
    "duckdb": "decimals as JSON *numbers* with the scale's digits dropped when zero (19.99, -0.5, "
              "1234567890.0123456789: parse with serde_json's arbitrary_precision or as text, not via f64); "
              "timestamps as \"2025-11-03 12:34:56.123456\", tz-aware ones with a bare hour offset "
              "\"2025-11-03 12:34:56.123456+00\" (not RFC 3339); dates \"1991-04-12\"; null as null",
}


def parse_ts_text(s):
    """'2025-11-03 12:34:56.1+00' (DuckDB) or RFC 3339 (polars) -> datetime."""
    s = s.replace(" ", "T", 1)
    if re.search(r"[+-]\d\d$", s):
        s += ":00"
    return dt.datetime.fromisoformat(s)


def json_typed(v, t):
    """A JSON value (floats parsed as Decimal) -> expected.json value of arrow type t."""
    if v is None:
        return None
    if pa.types.is_struct(t):
        return {f.name: json_typed(v.get(f.name), f.type) for f in t}
    if pa.types.is_list(t):
        return [json_typed(x, t.value_type) for x in v]
    if pa.types.is_decimal(t):
        return jval(Decimal(str(v)), t)
    if pa.types.is_timestamp(t):
        return jval(parse_ts_text(v), t)
    if pa.types.is_date(t):
        return dt.date.fromisoformat(v).isoformat()
    if pa.types.is_floating(t):
        return float(v)
    return v


# ---------------------------------------------------------------------------------------------
# Compressed and odd text
# ---------------------------------------------------------------------------------------------

def hadoop_lz4(data, block=4096):
    """Hadoop's Lz4Codec stream (BlockCompressorStream), as Spark writes and reads `.lz4` text:
    per block: BE u32 uncompressed length, then chunks of BE u32 compressed length + a raw LZ4 block
    until that many bytes are produced. The first block here is written as Hadoop does for a single
    write larger than its buffer: one length, several chunks. No magic, no checksum, no end mark."""
    codec = pa.Codec("lz4_raw")
    out = io.BytesIO()

    def chunk(b):
        c = codec.compress(b, asbytes=True)
        out.write(struct.pack(">I", len(c)))
        out.write(c)

    first = data[:3 * block]
    out.write(struct.pack(">I", len(first)))
    for i in range(0, len(first), block):
        chunk(first[i:i + block])
    for i in range(len(first), len(data), block):
        b = data[i:i + block]
        out.write(struct.pack(">I", len(b)))
        chunk(b)
    return out.getvalue()


def compress_arrow(codec, data):
    class Keep(io.BytesIO):
        def close(self):  # CompressedOutputStream closes its sink; keep the bytes readable
            self.kept = self.getvalue()
            super().close()
    buf = Keep()
    with pa.CompressedOutputStream(buf, codec) as s:
        s.write(data)
    return buf.kept


def write_text_fixtures():
    open(path("lines.python.txt"), "wb").write(TEXT)
    gz = gzip.compress(TEXT, compresslevel=6, mtime=0)
    open(path("lines.python.txt.gz"), "wb").write(gz)
    half = TEXT.index(b"\n", len(TEXT) // 2) + 1
    multi = gzip.compress(TEXT[:half], mtime=0) + gzip.compress(TEXT[half:], mtime=0)
    open(path("lines.python.multimember.txt.gz"), "wb").write(multi)
    open(path("lines.python.truncated.txt.gz"), "wb").write(gz[: len(gz) * 2 // 3])
    open(path("lines.python.txt.bz2"), "wb").write(bz2.compress(TEXT, 9))
    zst = compress_arrow("zstd", TEXT)
    open(path("lines.pyarrow.txt.zst"), "wb").write(zst)
    frame = compress_arrow("lz4", TEXT)
    open(path("lines.pyarrow-frame.txt.lz4"), "wb").write(frame)
    hadoop = hadoop_lz4(TEXT)
    open(path("lines.pyarrow-hadoop.txt.lz4"), "wb").write(hadoop)
    # Self-checks of the bytes.
    assert gzip.decompress(multi) == TEXT and bz2.decompress(open(path("lines.python.txt.bz2"), "rb").read()) == TEXT
    assert frame[:4] == b"\x04\x22\x4d\x18" and zst[:4] == b"\x28\xb5\x2f\xfd"
    assert pa.decompress(frame[0:0] + frame, len(TEXT), codec="lz4", asbytes=True) == TEXT
    assert hadoop_lz4_decode(hadoop) == TEXT
    try:
        gzip.decompress(open(path("lines.python.truncated.txt.gz"), "rb").read())
        fail("truncated gzip decoded")
    except EOFError:
        pass
    lines_j = [line for line in TEXT.decode("utf-8").split("\n")][:-1]
    FILES["lines.python.txt"] = {"format": "text", "writer": "python", "lines": lines_j,
                                 "note": "600 lines, '\\n' ends, UTF-8; line 4 (0-based 3) non-ASCII, line 5 empty"}
    for name, writer, note in [
        ("lines.python.txt.gz", "python gzip (mtime=0)", "one gzip member"),
        ("lines.python.multimember.txt.gz", "python gzip",
         "two gzip members concatenated (as `cat a.gz b.gz`, pigz, bgzip): a decoder must read every member "
         "(Rust: flate2::read::MultiGzDecoder, not GzDecoder, which stops after the first)"),
        ("lines.python.txt.bz2", "python bz2", "one bzip2 stream"),
        ("lines.pyarrow.txt.zst", "pyarrow CompressedOutputStream('zstd')", "zstd frame format (magic 28 B5 2F FD)"),
        ("lines.pyarrow-frame.txt.lz4", "pyarrow CompressedOutputStream('lz4')",
         "LZ4 *frame* format (magic 04 22 4D 18), what the `lz4` CLI writes; Spark's textFile cannot read it "
         "(Hadoop's Lz4Codec expects the Hadoop block format): see spark_reads"),
        ("lines.pyarrow-hadoop.txt.lz4", "this script (pyarrow's raw LZ4 block codec in Hadoop's framing)",
         "Hadoop Lz4Codec (BlockCompressorStream) format: [BE u32 raw length][BE u32 compressed length][LZ4 "
         "block]...; the first block has three chunks. This is what Spark writes and reads for `.lz4` text"),
    ]:
        FILES[name] = {"format": "text", "writer": writer, "same_lines_as": "lines.python.txt", "note": note,
                       "spark_reads": SPARK_RESULTS.get(name)}
    # Written by spark-check.py (not by this script), so it is read from beside this script.
    spark_lz4 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lines.spark-hadoop.txt.lz4")
    if os.path.exists(spark_lz4):
        if hadoop_lz4_decode(open(spark_lz4, "rb").read()) != TEXT:
            fail("lines.spark-hadoop.txt.lz4 does not decode as Hadoop Lz4Codec framing to lines.python.txt")
        FILES["lines.spark-hadoop.txt.lz4"] = {
            "format": "text", "writer": "Spark 4.3.0 saveAsTextFile with org.apache.hadoop.io.compress.Lz4Codec "
                                        "(spark-check.py)", "same_lines_as": "lines.python.txt",
            "note": "the real thing: Hadoop Lz4Codec output; decoded here with the framing described for "
                    "lines.pyarrow-hadoop.txt.lz4 (one block: the file is smaller than the 256 KiB buffer)",
            "spark_reads": SPARK_RESULTS.get("lines.spark-hadoop.txt.lz4")}
    FILES["lines.python.truncated.txt.gz"] = {
        "format": "text", "writer": "python gzip, then cut to 2/3 of its bytes", "expect_error": True,
        "note": "a gzip stream with no end (no trailer): decoders must report an error (Python: EOFError; "
                "flate2: UnexpectedEof; Spark: java.io.EOFException 'Unexpected end of input stream'), not a "
                "short read that looks like success", "spark_reads": SPARK_RESULTS.get("lines.python.truncated.txt.gz")}

    bad = (b"valid line\n"
           b"caf\xe9 latin-1 byte\n"
           b"\xff\xfe stray bytes\n"
           b"truncated multibyte \xe6\x97\n"
           b"ok \xe2\x98\x95 after\n")
    open(path("invalid-utf8.hand.txt"), "wb").write(bad)
    FILES["invalid-utf8.hand.txt"] = {
        "format": "text", "writer": "hand", "lines_hex": [line.hex() for line in bad.split(b"\n")[:-1]],
        "lines_lossy": [line.decode("utf-8", "replace") for line in bad.split(b"\n")[:-1]],
        "note": "lines 2-4 are not UTF-8. lines_lossy = Rust String::from_utf8_lossy per line (U+FFFD per maximal "
                "invalid subsequence). Spark's textFile decodes with Hadoop Text.toString, see spark_reads",
        "spark_reads": SPARK_RESULTS.get("invalid-utf8.hand.txt")}


def lz4_block_decode(src):
    """A raw LZ4 block (no length, no frame) -> bytes; written out here to check the framing independently."""
    out, i = bytearray(), 0
    while True:
        token = src[i]; i += 1
        lit = token >> 4
        if lit == 15:
            while True:
                x = src[i]; i += 1; lit += x
                if x != 255:
                    break
        out += src[i:i + lit]; i += lit
        if i >= len(src):
            return bytes(out)
        off = src[i] | (src[i + 1] << 8); i += 2
        mlen = token & 15
        if mlen == 15:
            while True:
                x = src[i]; i += 1; mlen += x
                if x != 255:
                    break
        for _ in range(mlen + 4):
            out.append(out[-off])


def hadoop_lz4_decode(b):
    out, i = bytearray(), 0
    while i < len(b):
        (raw_len,) = struct.unpack(">I", b[i:i + 4]); i += 4
        got = 0
        while got < raw_len:
            (clen,) = struct.unpack(">I", b[i:i + 4]); i += 4
            piece = lz4_block_decode(b[i:i + clen])
            out += piece; got += len(piece); i += clen
    return bytes(out)


# ---------------------------------------------------------------------------------------------

SPARK_RESULTS = {}


def dump_json(v, ind=0):
    """Indented JSON with every row (an object or array inside an array) on one line."""
    pad = " " * ind
    if isinstance(v, dict) and v:
        items = [f'{pad} {json.dumps(k, ensure_ascii=False)}: {dump_json(x, ind + 1).lstrip()}' for k, x in v.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(v, list) and v and all(isinstance(x, (dict, list)) for x in v):
        items = [pad + " " + json.dumps(x, ensure_ascii=False) for x in v]
        return pad + "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return pad + json.dumps(v, ensure_ascii=False)


def main():
    os.makedirs(OUT, exist_ok=True)
    decimal.getcontext().prec = 60
    sr = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spark-results.json")
    if os.path.exists(sr):
        SPARK_RESULTS.update(json.load(open(sr)))
    write_parquet_fixtures()
    write_partitioned()
    write_csv_fixtures()
    write_json_fixtures()
    write_text_fixtures()
    expected = {
        "about": "Expected contents of the fixtures in this directory; written by make-fixtures.py. See README.md "
                 "for the conventions (decimals as strings, timestamps as ISO strings, 'Z' for tz-aware ones).",
        "writers": {"pyarrow": pa.__version__, "duckdb": duckdb.__version__, "polars": pl.__version__,
                    "python": sys.version.split()[0]},
        "datasets": {
            "people": {"schema": schema_json(PEOPLE_SCHEMA), "rows": jrows(PEOPLE_ROWS, PEOPLE_SCHEMA)},
            "numbers": {"schema": schema_json(NUMBERS_SCHEMA),
                        "rule": "id = 0..999, value = (splitmix64(id) % 100000) / 8.0, label = 'label-%02d' % (id % 16); "
                                "rows: see files['numbers.pyarrow.rowgroups.parquet']"},
            "categories": {"schema": [{"name": "id", "type": "int64", "nullable": False},
                                      {"name": "color", "type": "dictionary<values=string, indices=int32>",
                                       "nullable": True}], "rows": CATEGORY_ROWS},
            "empty": {"schema": schema_json(PEOPLE_SCHEMA), "rows": []},
            "sales": {"schema": schema_json(SALES_SCHEMA) + [{"name": "year", "type": "int32", "nullable": False},
                                                             {"name": "month", "type": "int32", "nullable": False}],
                      "rows": sales_rows()},
            "people (flat columns)": {"schema": schema_json(flat_schema()),
                                      "rows": jrows([{c: r[c] for c in FLAT} for r in PEOPLE_ROWS], flat_schema())},
        },
        "files": dict(sorted(FILES.items())),
    }
    with open(path("expected.json"), "w", encoding="utf-8") as f:
        f.write(dump_json(expected) + "\n")
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(OUT) for n in ns)
    print(f"make-fixtures: {len(FILES)} fixtures (+ expected.json) in {OUT}, {total} bytes in all")


if __name__ == "__main__":
    main()
