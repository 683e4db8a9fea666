#!/usr/bin/env python3
"""What Apache Spark itself returns for the fixtures whose meaning is Spark's behaviour: CSV and
JSON parse modes (PERMISSIVE / DROPMALFORMED / FAILFAST), which compressed text files
`sc.textFile` can read (`.lz4` frame vs Hadoop block format, `.zst`), invalid UTF-8, the quoting
file, the partitioned `sales/` directory and how Spark types the Parquet files. Writes
spark-results.json beside this script; make-fixtures.py copies it into expected.json.

Needs pyspark and a Java 17+ runtime, which make-fixtures.sh does not install (it is large):

    python3 -m venv /work/scratch/spark-venv && /work/scratch/spark-venv/bin/pip install pyspark==4.3.0
    /work/scratch/spark-venv/bin/python testdata/data/spark-check.py
    bash testdata/data/make-fixtures.sh      # folds the new spark-results.json into expected.json
"""
import datetime as dt
import decimal
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRATCH = os.environ.get("SPARK_CHECK_TMP") or tempfile.mkdtemp(prefix="spark-check-",
                                                                 dir=os.environ.get("TMPDIR", "/work/scratch"))
os.environ["SPARK_LOCAL_DIRS"] = SCRATCH
os.environ.setdefault("PYSPARK_SUBMIT_ARGS", f"--driver-java-options -Djava.io.tmpdir={SCRATCH} pyspark-shell")

from pyspark.sql import SparkSession  # noqa: E402
import pyspark  # noqa: E402


def f(name):
    return os.path.join(HERE, name)


def plain(v):
    """A Spark Row value -> the conventions of expected.json."""
    if v is None:
        return None
    if hasattr(v, "asDict"):
        return {k: plain(x) for k, x in v.asDict().items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def rows(df):
    return [plain(r) for r in df.collect()]


def first_line(e):
    """The innermost Java cause of a Py4J error (or the Python error), one line."""
    j = getattr(e, "java_exception", None)
    if j is not None:
        while j.getCause() is not None:
            j = j.getCause()
        s = j.toString()
    else:
        s = f"{type(e).__name__}: {e}"
    s = s.strip().splitlines()
    return s[0][:300].replace(HERE + "/", "") if s else type(e).__name__


def attempt(fn):
    print(".", end="", file=sys.stderr, flush=True)
    try:
        r = {"ok": True, "rows": fn()}
    except Exception as e:  # noqa: BLE001 - the error is the result
        r = {"ok": False, "error": first_line(e)}
    if os.environ.get("SPARK_CHECK_VERBOSE"):
        print(json.dumps(r)[:300], file=sys.stderr, flush=True)
    return r


def hadoop_blocks(b):
    """[(uncompressed length, [compressed chunk lengths])] of a Hadoop BlockCompressorStream."""
    import struct
    blocks, i = [], 0
    while i < len(b):
        (raw,) = struct.unpack(">I", b[i:i + 4])
        i += 4
        chunks = []
        # One chunk per block unless a single write exceeded the buffer; the chunk lengths are
        # all we need to walk the stream here (decoding is make-fixtures.py's job).
        (clen,) = struct.unpack(">I", b[i:i + 4])
        i += 4 + clen
        chunks.append(clen)
        blocks.append([raw, chunks])
    return blocks


def textfile_in_subprocess(name):
    import subprocess
    p = subprocess.run([sys.executable, __file__, "--textfile", f(name)], capture_output=True, text=True,
                       timeout=600)
    last = [line for line in p.stdout.splitlines() if line.startswith("{")]
    r = json.loads(last[-1]) if last else {"ok": False, "error": f"process exited {p.returncode}"}
    for line in p.stderr.splitlines():
        if "OutOfMemoryError" in line:
            r["task_error"] = line.split(": ", 1)[-1].strip()[:200]
            break
    return r


def textfile_only(p):
    spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    print(json.dumps(attempt(lambda: len(spark.sparkContext.textFile(p).collect()))), flush=True)
    try:
        spark.stop()
    except Exception:  # noqa: BLE001 - the JVM may be gone already
        pass


def main():
    spark = (SparkSession.builder.master("local[1]").appName("ember-fixture-check")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.warehouse.dir", os.path.join(SCRATCH, "warehouse"))
             .config("spark.driver.extraJavaOptions", f"-Djava.io.tmpdir={SCRATCH}")
             .getOrCreate())
    spark.sparkContext.setLogLevel("OFF")
    sc = spark.sparkContext
    out = {"_spark_version": pyspark.__version__,
           "_hadoop_version": sc._jvm.org.apache.hadoop.util.VersionInfo.getVersion(),
           "_session": "local[1], spark.sql.session.timeZone=UTC, default options unless stated"}

    # CSV parse modes.
    schema = "id INT, name STRING, amount DOUBLE"
    res = {}
    for mode in ("PERMISSIVE", "DROPMALFORMED", "FAILFAST"):
        res[mode] = attempt(lambda mode=mode: rows(
            spark.read.option("header", True).option("mode", mode).schema(schema).csv(f("malformed.hand.csv"))))
    res["PERMISSIVE with _corrupt_record"] = attempt(lambda: rows(
        spark.read.option("header", True).option("mode", "PERMISSIVE")
        .schema(schema + ", _corrupt_record STRING").csv(f("malformed.hand.csv"))))
    res["_schema"] = schema
    out["malformed.hand.csv"] = res

    # JSON lines parse modes.
    jschema = ("id BIGINT, user STRUCT<name: STRING, langs: ARRAY<STRING>>, score DOUBLE, ok BOOLEAN, "
               "tags ARRAY<STRING>, _corrupt_record STRING")
    res = {"_schema": jschema}
    for mode in ("PERMISSIVE", "DROPMALFORMED", "FAILFAST"):
        res[mode] = attempt(lambda mode=mode: rows(
            spark.read.option("mode", mode).schema(jschema).json(f("events.hand.malformed.jsonl"))))
    res["PERMISSIVE, schema inferred"] = attempt(lambda: {
        "schema": spark.read.json(f("events.hand.malformed.jsonl")).schema.simpleString(),
        "rows": rows(spark.read.json(f("events.hand.malformed.jsonl")))})
    out["events.hand.malformed.jsonl"] = res

    # CSV quoting, as Spark reads it with multiLine (needed for the quoted newlines).
    out["quoting.hand.csv"] = {
        "multiLine=true": attempt(lambda: rows(spark.read.option("header", True).option("multiLine", True)
                                               .csv(f("quoting.hand.csv")))),
        "multiLine=false": attempt(lambda: rows(spark.read.option("header", True).csv(f("quoting.hand.csv"))))}

    # Text: what sc.textFile gives for each compressed file.
    want = open(f("lines.python.txt"), encoding="utf-8").read().split("\n")[:-1]
    for name in ("lines.python.txt.gz", "lines.python.multimember.txt.gz", "lines.python.txt.bz2",
                 "lines.pyarrow.txt.zst", "lines.pyarrow-frame.txt.lz4", "lines.pyarrow-hadoop.txt.lz4",
                 "lines.python.truncated.txt.gz"):
        if name == "lines.pyarrow-frame.txt.lz4":
            # Takes the JVM down (OutOfMemoryError in the task kills local mode): its own process.
            out[name] = textfile_in_subprocess(name)
            continue
        r = attempt(lambda name=name: sc.textFile(f(name)).collect())
        if r["ok"]:
            got = r.pop("rows")
            r["same_lines_as_lines.python.txt"] = got == want
            r["line_count"] = len(got)
            if got != want:
                r["first_lines"] = got[:3]
        out[name] = r
    # Spark (Hadoop's Lz4Codec) writing .lz4 text: kept as a fixture, and its framing checked.
    wdir = os.path.join(SCRATCH, "lz4-out")
    sc.parallelize(want, 1).saveAsTextFile(wdir, "org.apache.hadoop.io.compress.Lz4Codec")
    part = os.path.join(wdir, "part-00000.lz4")
    data = open(part, "rb").read()
    open(f("lines.spark-hadoop.txt.lz4"), "wb").write(data)
    blocks = hadoop_blocks(data)
    out["lines.spark-hadoop.txt.lz4"] = {
        "ok": True, "written_by": "sc.parallelize(lines, 1).saveAsTextFile(dir, 'org.apache.hadoop.io.compress.Lz4Codec')",
        "part_files": sorted(os.listdir(wdir)), "first_bytes_hex": data[:12].hex(),
        "hadoop_blocks": blocks,
        "read_back_same_lines": sc.textFile(f("lines.spark-hadoop.txt.lz4")).collect() == want}
    out["invalid-utf8.hand.txt"] = attempt(lambda: sc.textFile(f("invalid-utf8.hand.txt")).collect())

    # Partitioned directory and Parquet typing.
    out["sales/"] = attempt(lambda: {"schema": spark.read.parquet(f("sales")).schema.simpleString(),
                                     "rows": rows(spark.read.parquet(f("sales")).orderBy("id"))})
    types = {}
    for name in sorted(os.listdir(HERE)):
        if name.endswith(".parquet"):
            types[name] = attempt(lambda name=name: spark.read.parquet(f(name)).schema.simpleString())
    out["parquet schemas"] = types
    spark.stop()
    with open(f("spark-results.json"), "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    print(f"spark-check: wrote {f('spark-results.json')}")


if __name__ == "__main__":
    try:
        if sys.argv[1:2] == ["--textfile"]:
            textfile_only(sys.argv[2])
        else:
            main()
    finally:
        if not os.environ.get("SPARK_CHECK_TMP"):
            import shutil
            shutil.rmtree(SCRATCH, ignore_errors=True)
    sys.exit(0)
