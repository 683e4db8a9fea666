#!/usr/bin/env python3
"""Checks an output directory written by Ember (Spark's layout: part files + _SUCCESS) by reading
it with DuckDB and with pyarrow and comparing both with the expected rows.

    roundtrip-check.py DIR --expected testdata/data/expected.json#datasets/people
    roundtrip-check.py DIR --expected '{"schema": [...], "rows": [...]}' [--ordered] [--format csv]

DIR must hold `_SUCCESS` (unless --no-success), part files named like Spark's
(`part-00000.parquet`, `part-00000-<uuid>-c000.snappy.parquet`, `part-00001.csv.gz`, ...), and no
`_temporary/` left over; `.crc` side files and other `_`/`.` names are ignored, as Spark does.
The format comes from the part files' extension (.parquet, .csv, .tsv, .json, .jsonl, .ndjson,
optionally followed by .gz/.bz2/.zst) or --format.

--expected is a JSON file (optionally `#path/inside/it`, '/'-separated) or inline JSON: either a
list of rows or an object with "rows" and optionally "schema" ([{"name", "type"}], types spelled
as pyarrow prints them: int64, int32, double, bool, string, date32[day], timestamp[us],
timestamp[ms, tz=UTC], decimal128(10, 2), list<element: int64>, struct<a: string, b: int32>).
For CSV and JSON lines the schema is needed to type the columns (both readers are given it);
for Parquet the file's own types are compared with it unless --loose-types.

Values follow expected.json's conventions (README.md): decimals as strings with `scale` digits,
dates "YYYY-MM-DD", timestamps ISO with the unit's digits and "Z" when tz-aware. Rows compare as a
multiset unless --ordered (then: part files in name order, rows in file order).

Exit status: 0 all readers agree with the expected rows; 1 a mismatch; 2 a layout or usage error.

`roundtrip-check.py --self-test` writes such directories with pyarrow (Parquet in 3 parts, Spark's
long part names, CSV with a .gz part, JSON lines) and broken ones (a row missing, a wrong type, rows
out of order, no _SUCCESS, _temporary left over) and checks the exit status of each.
"""
import argparse
import datetime as dt
import json
import os
import re
import sys
from collections import Counter
import decimal
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

UTC = dt.timezone.utc
decimal.getcontext().prec = 60  # decimal128(38, s) needs more than the default 28 digits
PART_RE = re.compile(r"^part-\d{5}[-.a-zA-Z0-9_]*$")
FORMATS = {".parquet": "parquet", ".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json",
           ".ndjson": "json"}
COMPRESSIONS = (".gz", ".bz2", ".zst", ".snappy", ".lz4")


# ----------------------------------------------------------------------------- types

def parse_type(s):
    """pyarrow's printed type name -> DataType (the subset expected.json uses)."""
    s = s.strip()
    simple = {"int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
              "uint8": pa.uint8(), "uint16": pa.uint16(), "uint32": pa.uint32(), "uint64": pa.uint64(),
              "float": pa.float32(), "double": pa.float64(), "bool": pa.bool_(), "string": pa.string(),
              "large_string": pa.large_string(), "date32[day]": pa.date32(), "date32": pa.date32(),
              "binary": pa.binary()}
    if s in simple:
        return simple[s]
    m = re.fullmatch(r"timestamp\[(s|ms|us|ns)(?:, tz=(.+))?\]", s)
    if m:
        return pa.timestamp(m.group(1), tz=m.group(2))
    m = re.fullmatch(r"decimal128\((\d+), ?(\d+)\)", s)
    if m:
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    m = re.fullmatch(r"(large_)?list<(?:element|item): (.+)>", s)
    if m:
        return (pa.large_list if m.group(1) else pa.list_)(parse_type(m.group(2)))
    m = re.fullmatch(r"struct<(.*)>", s)
    if m:
        return pa.struct([pa.field(n, parse_type(t)) for n, t in split_fields(m.group(1))])
    m = re.fullmatch(r"dictionary<values=(.+), indices=(\w+)(?:, ordered=\d)?>", s)
    if m:
        return pa.dictionary(parse_type(m.group(2)), parse_type(m.group(1)))
    raise ValueError(f"unknown type {s!r}")


def split_fields(s):
    out, depth, start = [], 0, 0
    for i, c in enumerate(s + ","):
        if c in "<(":
            depth += 1
        elif c in ">)":
            depth -= 1
        elif c == "," and depth == 0:
            part = s[start:i].strip()
            if part:
                name, t = part.split(":", 1)
                out.append((name.strip(), t.strip()))
            start = i + 1
    return out


def duck_type(t):
    if pa.types.is_int64(t): return "BIGINT"
    if pa.types.is_int32(t): return "INTEGER"
    if pa.types.is_int16(t): return "SMALLINT"
    if pa.types.is_int8(t): return "TINYINT"
    if pa.types.is_uint64(t): return "UBIGINT"
    if pa.types.is_uint32(t): return "UINTEGER"
    if pa.types.is_float64(t): return "DOUBLE"
    if pa.types.is_float32(t): return "FLOAT"
    if pa.types.is_boolean(t): return "BOOLEAN"
    if pa.types.is_string(t) or pa.types.is_large_string(t): return "VARCHAR"
    if pa.types.is_date32(t): return "DATE"
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            return "TIMESTAMPTZ"
        return {"s": "TIMESTAMP_S", "ms": "TIMESTAMP_MS", "us": "TIMESTAMP", "ns": "TIMESTAMP_NS"}[t.unit]
    if pa.types.is_decimal(t): return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t): return duck_type(t.value_type) + "[]"
    if pa.types.is_struct(t): return "STRUCT(" + ", ".join(f'"{f.name}" {duck_type(f.type)}' for f in t) + ")"
    raise ValueError(f"no DuckDB type for {t}")


# ----------------------------------------------------------------------------- values

def jval(v, t):
    """A Python value read as arrow type t -> expected.json's convention."""
    if v is None:
        return None
    if pa.types.is_dictionary(t):
        return jval(v, t.value_type)
    if pa.types.is_decimal(t):
        return format(Decimal(v).quantize(Decimal(1).scaleb(-t.scale)), "f")
    if pa.types.is_timestamp(t):
        if isinstance(v, str):
            return v
        if v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        digits = {"s": 0, "ms": 3, "us": 6, "ns": 6}[t.unit]
        s = v.strftime("%Y-%m-%dT%H:%M:%S")
        if digits:
            s += "." + f"{v.microsecond:06d}"[:digits]
        return s + ("Z" if t.tz is not None else "")
    if pa.types.is_date(t):
        return v.isoformat() if not isinstance(v, str) else v
    if pa.types.is_struct(t):
        return {f.name: jval(v.get(f.name), f.type) for f in t}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return [jval(x, t.value_type) for x in v]
    if pa.types.is_floating(t):
        return float(v)
    return v


def table_rows(t, types=None):
    """Table -> normalized rows; types (name -> DataType) overrides the formatting type."""
    out = []
    for r in t.to_pylist():
        out.append({f.name: jval(r[f.name], (types or {}).get(f.name, f.type)) for f in t.schema})
    return out


def key(v):
    """A sortable, sign-of-zero-preserving key."""
    return json.dumps(v, sort_keys=True, default=repr, ensure_ascii=False)


def canon(v):
    if isinstance(v, float):
        return ["float", repr(v)]
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    if isinstance(v, list):
        return [canon(x) for x in v]
    return v


# ----------------------------------------------------------------------------- layout

def layout(d, want_success):
    if not os.path.isdir(d):
        raise SystemExit(f"roundtrip-check: {d} is not a directory")
    problems, parts, ignored = [], [], []
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if name == "_temporary":
            problems.append("_temporary/ left over (job not committed, or commit did not clean up)")
        elif name.startswith(("_", ".")):
            ignored.append(name)
        elif os.path.isdir(p):
            problems.append(f"unexpected directory {name}/ (partitioned output is not handled here)")
        elif not PART_RE.match(name):
            problems.append(f"unexpected file {name} (want part-NNNNN...)")
        else:
            parts.append(name)
    if want_success and "_SUCCESS" not in os.listdir(d):
        problems.append("no _SUCCESS marker")
    if not parts:
        problems.append("no part files")
    return parts, ignored, problems


def fmt_of(name):
    base = name
    while base.endswith(COMPRESSIONS):
        base = base[: base.rfind(".")]
    ext = base[base.rfind("."):] if "." in base else ""
    return FORMATS.get(ext)


# ----------------------------------------------------------------------------- readers

def read_pyarrow(paths, fmt, schema, delimiter):
    tables = []
    for p in paths:
        if fmt == "parquet":
            t = pq.read_table(p)
        elif fmt == "csv":
            t = pacsv.read_csv(p, parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                               convert_options=pacsv.ConvertOptions(
                                   column_types=schema, strings_can_be_null=True, null_values=[""],
                                   quoted_strings_can_be_null=False) if schema is not None else None)
        elif schema is None:
            t = pajson.read_json(p)
        else:
            # pyarrow's JSON reader parses timestamps and decimals from strings but not dates:
            # read those as strings, then cast to the schema.
            t = pajson.read_json(p, parse_options=pajson.ParseOptions(explicit_schema=dates_as_strings(schema)))
            t = t.select(schema.names).cast(schema)
        tables.append(t)
    return tables


def dates_as_strings(t):
    if isinstance(t, pa.Schema):
        return pa.schema([pa.field(f.name, dates_as_strings(f.type), f.nullable) for f in t])
    if pa.types.is_date(t):
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, dates_as_strings(f.type), f.nullable) for f in t])
    if pa.types.is_list(t):
        return pa.list_(dates_as_strings(t.value_type))
    return t


def read_duckdb(paths, fmt, schema, delimiter):
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    tables = []
    cols = None
    if schema is not None and fmt != "parquet":
        cols = "{" + ", ".join(f"'{f.name}': '{duck_type(f.type)}'" for f in schema) + "}"
    for p in paths:
        q = p.replace("'", "''")
        if fmt == "parquet":
            sql = f"SELECT * FROM read_parquet('{q}')"
        elif fmt == "csv":
            sep = delimiter.replace("'", "''")
            extra = f", columns={cols}" if cols else ""
            sql = (f"SELECT * FROM read_csv('{q}', header=true, delim='{sep}', quote='\"', escape='\"', "
                   f"allow_quoted_nulls=false{extra})")
        else:
            extra = f", columns={cols}" if cols else ""
            sql = f"SELECT * FROM read_json('{q}', format='newline_delimited'{extra})"
        tables.append(con.sql(sql).to_arrow_table())
    con.close()
    return tables


# ----------------------------------------------------------------------------- main

def load_expected(spec):
    if spec.lstrip().startswith(("{", "[")):
        v = json.loads(spec)
    else:
        path, _, inner = spec.partition("#")
        v = json.load(open(path, encoding="utf-8"))
        for k in filter(None, inner.split("/")):
            v = v[k]
    if isinstance(v, list):
        return None, v
    schema = None
    if v.get("schema") or v.get("typed_schema"):
        schema = pa.schema([pa.field(c["name"], parse_type(c["type"]), c.get("nullable", True))
                            for c in (v.get("schema") or v.get("typed_schema"))])
    return schema, v["rows"]


def from_j(v, t):
    """expected.json value -> Python value of arrow type t (to write test directories)."""
    if v is None:
        return None
    if pa.types.is_decimal(t):
        return Decimal(v)
    if pa.types.is_timestamp(t):
        return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if pa.types.is_date(t):
        return dt.date.fromisoformat(v)
    if pa.types.is_struct(t):
        return {f.name: from_j(v.get(f.name), f.type) for f in t}
    if pa.types.is_list(t):
        return [from_j(x, t.value_type) for x in v]
    return v


def self_test():
    """Writes Spark-layout directories with pyarrow (good and broken) and checks the verdicts."""
    import shutil
    import subprocess
    import tempfile
    here = os.path.dirname(os.path.abspath(__file__))
    exp = os.path.join(here, "expected.json")
    schema, rows = load_expected(exp + "#datasets/people")
    t = pa.Table.from_pylist([{f.name: from_j(r[f.name], f.type) for f in schema} for r in rows], schema=schema)
    flat_schema, _ = load_expected(exp + "#datasets/people (flat columns)")
    flat = t.select(flat_schema.names)
    root = tempfile.mkdtemp(prefix="roundtrip-selftest-")
    cases = []

    def case(name, code, expected, writer, success=True, extra=()):
        d = os.path.join(root, name)
        os.makedirs(d)
        writer(d)
        if success:
            open(os.path.join(d, "_SUCCESS"), "wb").close()
        cases.append((name, code, [d, "--expected", expected, "--show", "0", *extra]))

    try:
        case("parquet-3-parts", 0, exp + "#datasets/people",
             lambda d: [pq.write_table(t.slice(3 * i, 3), f"{d}/part-{i:05d}.parquet") for i in range(3)])
        case("parquet-spark-names", 0, exp + "#datasets/people", lambda d: (
            [pq.write_table(t.slice(4 * i, 4), f"{d}/part-{i:05d}-0f1e2d3c-aaaa-bbbb-cccc-0123456789ab-c000.snappy.parquet")
             for i in range(2)], open(f"{d}/.part-00000.crc", "wb").close()))
        case("parquet-ordered", 0, exp + "#datasets/people",
             lambda d: [pq.write_table(t.slice(4 * i, 4), f"{d}/part-{i:05d}.parquet") for i in range(2)],
             extra=["--ordered"])
        case("parquet-misordered", 1, exp + "#datasets/people",
             lambda d: [pq.write_table(t.slice(4 * (1 - i), 4), f"{d}/part-{i:05d}.parquet") for i in range(2)],
             extra=["--ordered"])
        case("parquet-row-missing", 1, exp + "#datasets/people",
             lambda d: pq.write_table(t.slice(0, 7), f"{d}/part-00000.parquet"))
        case("parquet-wrong-type", 1, exp + "#datasets/people",
             lambda d: pq.write_table(t.set_column(1, "age", t.column("age").cast(pa.int64())),
                                      f"{d}/part-00000.parquet"))
        case("parquet-no-success", 2, exp + "#datasets/people",
             lambda d: pq.write_table(t, f"{d}/part-00000.parquet"), success=False)
        case("parquet-temporary-left", 2, exp + "#datasets/people",
             lambda d: (pq.write_table(t, f"{d}/part-00000.parquet"), os.makedirs(f"{d}/_temporary/0")))
        case("csv-2-parts-gz", 0, exp + "#datasets/people (flat columns)", lambda d: (
            pacsv.write_csv(flat.slice(0, 4), f"{d}/part-00000.csv"),
            write_compressed_csv(flat.slice(4), f"{d}/part-00001.csv.gz")))
        case("csv-value-changed", 1, exp + "#datasets/people (flat columns)", lambda d: pacsv.write_csv(
            flat.set_column(4, "name", pa.array(["x"] * 8)), f"{d}/part-00000.csv"))
        case("jsonl", 0, exp + "#datasets/people", lambda d: open(f"{d}/part-00000.json", "w").write(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)))
        case("jsonl-null-lost", 1, exp + "#datasets/people", lambda d: open(f"{d}/part-00000.json", "w").write(
            "".join(json.dumps({**r, "score": r["score"] if r["id"] != 2 else None}) + "\n" for r in rows)))
        case("parquet-against-inline", 0, json.dumps({"schema": [{"name": "id", "type": "int64"}],
                                                      "rows": [{"id": i} for i in range(1, 9)]}),
             lambda d: pq.write_table(t.select(["id"]), f"{d}/part-00000.parquet"))
        failed = 0
        for name, code, args in cases:
            p = subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True)
            ok = p.returncode == code
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: exit {p.returncode}, want {code}")
            if not ok:
                print("    " + (p.stdout + p.stderr).strip().replace("\n", "\n    "))
        print(f"self-test: {len(cases) - failed} passed, {failed} failed")
        return 1 if failed else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def write_compressed_csv(t, path):
    with pa.CompressedOutputStream(path, "gzip") as s:
        pacsv.write_csv(t, s)


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="roundtrip-check.py --self-test: checks this script on directories it writes")
    ap.add_argument("dir", help="output directory: part-NNNNN... files and _SUCCESS")
    ap.add_argument("--expected", required=True,
                    help="FILE.json, FILE.json#path/inside (e.g. expected.json#datasets/people), or inline JSON")
    ap.add_argument("--format", choices=["parquet", "csv", "json"])
    ap.add_argument("--delimiter", default=None, help="CSV delimiter (default ',' or tab for .tsv)")
    ap.add_argument("--ordered", action="store_true", help="rows must come in part-file order")
    ap.add_argument("--no-success", action="store_true", help="do not require _SUCCESS")
    ap.add_argument("--loose-types", action="store_true", help="Parquet: do not compare column types")
    ap.add_argument("--show", type=int, default=5, help="rows to print per reader")
    a = ap.parse_args()

    parts, ignored, problems = layout(a.dir, not a.no_success)
    print(f"{a.dir}: {len(parts)} part file(s) {parts[:4]}{' ...' if len(parts) > 4 else ''}; ignored {ignored}")
    if problems:
        for p in problems:
            print(f"LAYOUT: {p}")
        return 2
    fmts = {a.format or fmt_of(p) for p in parts}
    if len(fmts) != 1 or None in fmts:
        print(f"LAYOUT: cannot tell one format from the part files ({sorted(map(str, fmts))}); use --format")
        return 2
    fmt = fmts.pop()
    delimiter = a.delimiter or ("\t" if any(".tsv" in p for p in parts) else ",")
    schema, want = load_expected(a.expected)
    if fmt != "parquet" and schema is None:
        print("USAGE: CSV and JSON need a schema in --expected to type the columns")
        return 2
    types = {f.name: f.type for f in schema} if schema is not None else None
    want_n = [canon(r) for r in want]
    paths = [os.path.join(a.dir, p) for p in parts]
    status = 0
    for reader, fn in (("pyarrow", read_pyarrow), ("duckdb", read_duckdb)):
        try:
            tables = fn(paths, fmt, schema, delimiter)
        except Exception as e:  # noqa: BLE001 - report and go on with the other reader
            print(f"[{reader}] READ ERROR: {str(e).splitlines()[0]}")
            status = 1
            continue
        got = [r for t in tables for r in table_rows(t, types)]
        if fmt == "parquet" and schema is not None and not a.loose_types:
            for f in schema:
                for i, t in enumerate(tables):
                    if f.name not in t.schema.names:
                        print(f"[{reader}] {parts[i]}: no column {f.name}")
                        status = 1
                    elif reader == "pyarrow" and not same_type(t.schema.field(f.name).type, f.type):
                        print(f"[{reader}] {parts[i]}: column {f.name} is {t.schema.field(f.name).type}, want {f.type}")
                        status = 1
            extra = {n for t in tables for n in t.schema.names} - set(schema.names)
            if extra:
                print(f"[{reader}] columns not expected: {sorted(extra)}")
                status = 1
        if schema is not None:
            got = [{n: r.get(n) for n in schema.names} for r in got]
        got_n = [canon(r) for r in got]
        if not a.ordered:
            got_n, wn = sorted(got_n, key=key), sorted(want_n, key=key)
        else:
            wn = want_n
        print(f"[{reader}] {len(got)} rows read" + "".join(f"\n    {json.dumps(r, ensure_ascii=False)}"
                                                          for r in got[: a.show]))
        if got_n != wn:
            status = 1
            print(f"[{reader}] MISMATCH: {len(got_n)} rows, want {len(wn)}")
            if a.ordered:
                diffs = [(i, g, w) for i, (g, w) in enumerate(zip(got_n, wn)) if g != w]
                for i, g, w in diffs[:5]:
                    print(f"    row {i}: got  {shown_row(g)}\n    row {i}: want {shown_row(w)}")
            else:
                gc, wc = Counter(map(key, got_n)), Counter(map(key, wn))
                for k in list((wc - gc).elements())[:5]:
                    print(f"    missing:    {shown_row(json.loads(k))}")
                for k in list((gc - wc).elements())[:5]:
                    print(f"    unexpected: {shown_row(json.loads(k))}")
        else:
            print(f"[{reader}] OK: all {len(wn)} rows match")
    print("roundtrip-check: " + ("OK" if status == 0 else "FAILED"))
    return status


def shown_row(r):
    """Undo canon() for printing."""
    def un(v):
        if isinstance(v, list) and len(v) == 2 and v[0] == "float":
            return float(v[1])
        if isinstance(v, list):
            return [un(x) for x in v]
        if isinstance(v, dict):
            return {k: un(x) for k, x in v.items()}
        return v
    return json.dumps(un(r), ensure_ascii=False)


def same_type(got, want):
    """Types equal up to string/list width (large_* from polars-like writers), dictionary encoding,
    and the zone name of a zone-aware timestamp: Parquet's TIMESTAMP type records only that the
    values are UTC instants (isAdjustedToUTC); a zone name survives only in pyarrow's own schema
    metadata, which DuckDB, Spark and Ember do not write."""
    def norm(t):
        if pa.types.is_timestamp(t) and t.tz is not None:
            return pa.timestamp(t.unit, tz="UTC")
        if pa.types.is_dictionary(t):
            return norm(t.value_type)
        if pa.types.is_large_string(t):
            return pa.string()
        if pa.types.is_large_list(t) or pa.types.is_list(t):
            return pa.list_(norm(t.value_type))
        if pa.types.is_struct(t):
            return pa.struct([pa.field(f.name, norm(f.type)) for f in t])
        return t
    return norm(got) == norm(want)


if __name__ == "__main__":
    sys.exit(main())
