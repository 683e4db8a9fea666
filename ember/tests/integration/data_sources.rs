//! Typed data sources end to end: Parquet, CSV, JSON lines and compressed text, read from the
//! committed fixtures of `testdata/data` (written by DuckDB, pyarrow and Polars; their exact
//! contents are in its `expected.json`), written back, and their bad inputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ember::prelude::*;
use ember::rdd::{
    Compression, CsvOptions, Date, Decimal, JsonOptions, Micros, Millis, ParquetOptions, ParseMode,
    Timestamp, TimestampNtz,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::{context, sorted};

/// The two masters of these tests: threads, and executor processes.
const MASTERS: [&str; 2] = ["local[2]", "local-cluster[2,1,1024]"];

fn each_master(mut f: impl FnMut(&Context, &str)) {
    for m in MASTERS {
        let ctx = context(m, &[]);
        f(&ctx, m);
        ctx.stop();
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/data")
        .join(name)
}

fn fixture_s(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Address {
    street: Option<String>,
    zip: Option<i32>,
}

/// The `people` dataset with its dates, timestamps and decimals as text.
type Person = JsonAll<String>;

/// The rows as JSON values, sorted by id, to compare with `expected.json`.
fn as_values<T: Serialize>(rows: &[T]) -> Vec<Value> {
    let mut v: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    v.sort_by_key(|r| r["id"].as_i64());
    v
}

/// Floats compare by bits: `-0.0` is not `0.0`.
fn assert_same(got: &[Value], want: &[Value], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w, "{what}");
        if let (Some(a), Some(b)) = (
            g.get("score").and_then(Value::as_f64),
            w.get("score").and_then(Value::as_f64),
        ) {
            assert_eq!(a.to_bits(), b.to_bits(), "{what}: score of {}", g["id"]);
        }
    }
}

#[test]
fn parquet_files_of_every_writer_read_exactly() {
    let exp = expected();
    let files = [
        "people.pyarrow.parquet",
        "people.pyarrow.plain.parquet",
        "people.pyarrow.zstd.parquet",
        "people.pyarrow.uncompressed.parquet",
        "people.pyarrow.v2.parquet",
        "people.duckdb.parquet",
        "people.polars.parquet",
    ];
    each_master(|ctx, m| {
        for f in files {
            let rows = ctx
                .parquet_file::<Person>(&fixture_s(f), ParquetOptions::default())
                .unwrap()
                .collect()
                .unwrap_or_else(|e| panic!("{m} {f}: {e}"));
            let want = exp["files"][f]["rows"].as_array().unwrap();
            assert_same(&as_values(&rows), want, &format!("{m} {f}"));
        }
        let empty = ctx
            .parquet_file::<Person>(
                &fixture_s("empty.pyarrow.parquet"),
                ParquetOptions::default(),
            )
            .unwrap()
            .count()
            .unwrap();
        assert_eq!(empty, 0, "{m}");
    });
}

#[test]
fn parquet_dates_timestamps_and_decimals_read_typed_and_write_back_as_their_column_types() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let exp = expected();
    let want = exp["files"]["people.pyarrow.parquet"]["rows"]
        .as_array()
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    each_master(|ctx, m| {
        // DuckDB's file holds ts_ms_paris in microseconds: the same instants.
        for f in [
            "people.pyarrow.parquet",
            "people.duckdb.parquet",
            "people.polars.parquet",
        ] {
            let rows = ctx
                .parquet_file::<TypedPerson>(&fixture_s(f), ParquetOptions::default())
                .unwrap()
                .collect()
                .unwrap_or_else(|e| panic!("{m} {f}: {e}"));
            assert_same(&as_values(&rows), want, &format!("{m} {f}"));
        }
        let dir = out.path().join(m.replace(['[', ']', ','], "_"));
        let path = dir.to_str().unwrap();
        ctx.parquet_file::<TypedPerson>(
            &fixture_s("people.pyarrow.parquet"),
            ParquetOptions::default(),
        )
        .unwrap()
        .save_as_parquet(path, ParquetOptions::default())
        .unwrap();
        let back = ctx
            .parquet_file::<TypedPerson>(path, ParquetOptions::default())
            .unwrap()
            .collect()
            .unwrap();
        assert_same(
            &as_values(&back),
            want,
            &format!("{m}: written and read back"),
        );
        let parts: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        assert!(!parts.is_empty(), "{m}");
        for part in parts {
            let file = std::fs::File::open(&part).unwrap();
            let schema = ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .schema()
                .clone();
            let ty = |c: &str| schema.field_with_name(c).unwrap().data_type().to_string();
            let types: Vec<String> = [
                "birth",
                "ts_us",
                "ts_ms",
                "ts_us_utc",
                "ts_ms_paris",
                "price",
                "amount",
            ]
            .map(ty)
            .to_vec();
            assert_eq!(
                types,
                [
                    "Date32",
                    "Timestamp(µs)",
                    "Timestamp(ms)",
                    "Timestamp(µs, \"UTC\")",
                    "Timestamp(ms, \"UTC\")",
                    "Decimal128(10, 2)",
                    "Decimal128(38, 10)",
                ],
                "{m}: {}",
                part.display()
            );
        }
    });
}

#[test]
fn typed_dates_timestamps_and_decimals_are_text_in_json_lines_and_csv() {
    let exp = expected();
    let want = exp["files"]["people.pyarrow.parquet"]["rows"]
        .as_array()
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let ctx = context("local[2]", &[]);
    let typed = ctx
        .parquet_file::<TypedPerson>(
            &fixture_s("people.pyarrow.parquet"),
            ParquetOptions::default(),
        )
        .unwrap();
    let json = out.path().join("json");
    typed
        .save_as_json_lines(json.to_str().unwrap(), JsonOptions::default())
        .unwrap();
    let back = ctx
        .json_lines::<TypedPerson>(json.to_str().unwrap(), JsonOptions::default())
        .unwrap()
        .collect()
        .unwrap();
    assert_same(&as_values(&back), want, "JSON lines");
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Flat {
        id: i64,
        birth: Option<Date>,
        ts_ms_paris: Option<Timestamp<Millis>>,
        amount: Option<Decimal<38, 10>>,
    }
    let csv = out.path().join("csv");
    typed
        .map(|p: TypedPerson| Flat {
            id: p.id,
            birth: p.birth,
            ts_ms_paris: p.ts_ms_paris,
            amount: p.amount,
        })
        .save_as_csv(csv.to_str().unwrap(), CsvOptions::with_header())
        .unwrap();
    let text: String = sorted(
        &ctx.text_file(csv.to_str().unwrap(), None)
            .unwrap()
            .collect()
            .unwrap(),
    )
    .join("\n");
    assert!(
        text.contains("1,1991-04-12,2025-11-03T11:34:56.123Z,1234567890.0123456789"),
        "{text}"
    );
    let flat = ctx
        .csv_file::<Flat>(csv.to_str().unwrap(), CsvOptions::with_header())
        .unwrap()
        .collect()
        .unwrap();
    let got: Vec<Value> = as_values(&flat);
    let want: Vec<Value> = want
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r["id"], "birth": r["birth"], "ts_ms_paris": r["ts_ms_paris"],
                "amount": r["amount"],
            })
        })
        .collect();
    assert_same(&got, &want, "CSV");
    ctx.stop();
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Number {
    id: i64,
    value: Option<f64>,
    label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Color {
    id: i64,
    color: Option<String>,
}

#[test]
fn parquet_row_groups_spread_over_tasks_and_dictionaries_read_as_strings() {
    let exp = expected();
    each_master(|ctx, m| {
        let path = fixture_s("numbers.pyarrow.rowgroups.parquet");
        let opts = ParquetOptions {
            min_partitions: Some(8),
            ..ParquetOptions::default()
        };
        let rdd = ctx.parquet_file::<Number>(&path, opts).unwrap();
        assert!(rdd.num_partitions() >= 4, "{m}: {}", rdd.num_partitions());
        let per_partition = rdd
            .clone()
            .map_partitions(|it| std::iter::once(it.count()))
            .collect()
            .unwrap();
        assert_eq!(
            per_partition.iter().filter(|&&n| n > 0).count(),
            4,
            "{m}: each of the 4 row groups read by exactly one task: {per_partition:?}"
        );
        let rows = rdd.collect().unwrap();
        assert_same(
            &as_values(&rows),
            exp["files"]["numbers.pyarrow.rowgroups.parquet"]["rows"]
                .as_array()
                .unwrap(),
            m,
        );
        // Projection: a type naming fewer columns reads only those.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        struct OnlyLabel {
            label: Option<String>,
        }
        let labels = ctx
            .parquet_file::<OnlyLabel>(&path, ParquetOptions::default())
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(labels[17].label.as_deref(), Some("label-01"));
        let colors = ctx
            .parquet_file::<Color>(
                &fixture_s("categories.pyarrow.parquet"),
                ParquetOptions::default(),
            )
            .unwrap()
            .collect()
            .unwrap();
        assert_same(
            &as_values(&colors),
            exp["datasets"]["categories"]["rows"].as_array().unwrap(),
            m,
        );
    });
}

/// The sales dataset (Hive-partitioned by year and month), shared with `object_store`.
#[derive(Debug, Clone, PartialEq, PartialOrd, Serialize, Deserialize)]
pub(crate) struct Sale {
    pub(crate) id: i64,
    pub(crate) product: Option<String>,
    pub(crate) qty: Option<i32>,
    pub(crate) price: Option<f64>,
    pub(crate) year: i32,
    pub(crate) month: i32,
}

#[test]
fn hive_partitioned_parquet_reads_partition_columns_into_the_type() {
    let exp = expected();
    each_master(|ctx, m| {
        let rows = ctx
            .parquet_file::<Sale>(&fixture_s("sales"), ParquetOptions::default())
            .unwrap()
            .collect()
            .unwrap();
        assert_same(
            &as_values(&rows),
            exp["datasets"]["sales"]["rows"].as_array().unwrap(),
            m,
        );
    });
}

#[test]
fn corrupt_parquet_names_the_file_and_ignore_corrupt_files_skips_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("people.pyarrow.parquet"),
        dir.path().join("a.parquet"),
    )
    .unwrap();
    std::fs::copy(
        fixture("corrupt-truncated.pyarrow.parquet"),
        dir.path().join("b.parquet"),
    )
    .unwrap();
    let path = dir.path().to_str().unwrap();
    for m in MASTERS {
        let ctx = context(m, &[]);
        let err = ctx
            .parquet_file::<Person>(path, ParquetOptions::default())
            .unwrap()
            .collect()
            .unwrap_err()
            .to_string();
        assert!(err.contains("b.parquet"), "{m}: {err}");
        ctx.stop();
        let ctx = context(m, &[("ember.files.ignoreCorruptFiles", "true")]);
        let n = ctx
            .parquet_file::<Person>(path, ParquetOptions::default())
            .unwrap()
            .count()
            .unwrap();
        assert_eq!(n, 8, "{m}: the good file's rows, the corrupt one skipped");
        ctx.stop();
    }
    let footer = context("local[2]", &[]);
    let err = footer
        .parquet_file::<Person>(
            &fixture_s("corrupt-footerlen.pyarrow.parquet"),
            ParquetOptions::default(),
        )
        .unwrap()
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("corrupt-footerlen.pyarrow.parquet"), "{err}");
    footer.stop();
}

/// The flat columns of the people CSV files, with timestamps and decimals as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FlatPerson {
    id: i64,
    age: Option<i32>,
    score: Option<f64>,
    active: Option<bool>,
    name: Option<String>,
    city: Option<String>,
    big: Option<i64>,
}

#[test]
fn csv_files_of_every_writer_read_exactly() {
    let exp = expected();
    let files = [
        ("people.duckdb.csv", b','),
        ("people.polars.csv", b','),
        ("people.pyarrow.csv", b','),
        ("people.duckdb.semicolon.csv", b';'),
        ("people.polars.tab.tsv", b'\t'),
    ];
    each_master(|ctx, m| {
        for (f, delimiter) in files {
            // The files quote a line break inside a field: multi_line reads them as RFC 4180.
            let opts = CsvOptions {
                delimiter,
                multi_line: true,
                escape: None,
                ..CsvOptions::with_header()
            };
            let raw = ctx
                .csv_file::<Vec<String>>(
                    &fixture_s(f),
                    CsvOptions {
                        header: false,
                        ..opts.clone()
                    },
                )
                .unwrap()
                .collect()
                .unwrap();
            let want: Vec<Vec<String>> =
                serde_json::from_value(exp["files"][f]["raw_records"].clone()).unwrap();
            assert_eq!(raw, want, "{m} {f}: raw records");
            let typed = ctx
                .csv_file::<FlatPerson>(&fixture_s(f), opts.clone())
                .unwrap()
                .collect()
                .unwrap();
            let want: Vec<Value> = exp["files"][f]["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let mut full: FlatPerson = serde_json::from_value(r.clone()).unwrap();
                    // An empty string and null are both an empty field: None, as Spark's null.
                    for f in [&mut full.name, &mut full.city] {
                        if f.as_deref() == Some("") {
                            *f = None;
                        }
                    }
                    serde_json::to_value(full).unwrap()
                })
                .collect();
            assert_same(&as_values(&typed), &want, &format!("{m} {f}"));
            // The columns a CSV file holds as text (dates, timestamps, decimals) read into
            // Strings: each field exactly as the writer spelled it, an empty field as None.
            let texts = ctx
                .csv_file::<FlatTexts>(&fixture_s(f), opts)
                .unwrap()
                .collect()
                .unwrap();
            let header = &raw[0];
            let want: Vec<Value> = raw[1..]
                .iter()
                .map(|rec| {
                    let mut row = serde_json::Map::new();
                    for (name, field) in header.iter().zip(rec) {
                        if name == "id" {
                            row.insert(name.clone(), Value::from(field.parse::<i64>().unwrap()));
                        } else if FLAT_TEXTS.contains(&name.as_str()) {
                            let v = (!field.is_empty()).then(|| Value::from(field.clone()));
                            row.insert(name.clone(), v.unwrap_or(Value::Null));
                        }
                    }
                    Value::Object(row)
                })
                .collect();
            assert_same(
                &as_values(&texts),
                &as_sorted(want),
                &format!("{m} {f} texts"),
            );
        }
    });
}

/// The text columns of the people CSV files.
const FLAT_TEXTS: [&str; 5] = ["birth", "ts_us", "ts_ms", "price", "amount"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FlatTexts {
    id: i64,
    birth: Option<String>,
    ts_us: Option<String>,
    ts_ms: Option<String>,
    price: Option<String>,
    amount: Option<String>,
}

fn as_sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|r| r["id"].as_i64());
    v
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Malformed {
    id: Option<i32>,
    name: Option<String>,
    amount: Option<f64>,
}

#[test]
fn malformed_csv_rows_follow_each_parse_mode() {
    let exp = expected();
    let modes = &exp["files"]["malformed.hand.csv"]["spark_modes"];
    let path = fixture_s("malformed.hand.csv");
    each_master(|ctx, m| {
        for (mode, name) in [
            (ParseMode::Permissive, "PERMISSIVE"),
            (ParseMode::DropMalformed, "DROPMALFORMED"),
        ] {
            let rows = ctx
                .csv_file::<Malformed>(
                    &path,
                    CsvOptions {
                        mode,
                        min_partitions: Some(3),
                        ..CsvOptions::with_header()
                    },
                )
                .unwrap()
                .collect()
                .unwrap();
            let want: Vec<Malformed> = serde_json::from_value(modes[name]["rows"].clone()).unwrap();
            assert_eq!(rows, want, "{m} {name} (Spark's rows)");
        }
        let err = ctx
            .csv_file::<Malformed>(
                &path,
                CsvOptions {
                    mode: ParseMode::FailFast,
                    // One split: the first malformed record of the file is the one reported
                    // (with several, whichever split fails first aborts the job).
                    min_partitions: Some(1),
                    ..CsvOptions::with_header()
                },
            )
            .unwrap()
            .collect()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[MALFORMED_CSV_RECORD] Malformed CSV record: 2,too few"),
            "{m}: {err}"
        );
        assert!(
            err.contains("malformed.hand.csv, record at byte offset 24"),
            "{m}: {err}"
        );
    });
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: Option<String>,
    langs: Option<Vec<Option<String>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Event {
    id: Option<i64>,
    user: Option<User>,
    score: Option<f64>,
    ok: Option<bool>,
    tags: Option<Vec<String>>,
    _corrupt_record: Option<String>,
}

/// How a row of the `people` dataset holds its dates, timestamps and decimals.
trait PeopleColumns: Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static {
    type Date: Column;
    type TsUs: Column;
    type TsMs: Column;
    type TsUsUtc: Column;
    type TsMsUtc: Column;
    type Price: Column;
    type Amount: Column;
}

trait Column:
    Clone + std::fmt::Debug + PartialEq + Serialize + serde::de::DeserializeOwned + Send + Sync
{
}
impl<T> Column for T where
    T: Clone + std::fmt::Debug + PartialEq + Serialize + serde::de::DeserializeOwned + Send + Sync
{
}

/// As text (ISO 8601, decimals as the strings Parquet readers give), with decimals as `D`: how
/// a JSON writer spells them.
#[derive(Clone, Debug, PartialEq)]
struct AsText<D>(std::marker::PhantomData<D>);

impl<D: Column + 'static> PeopleColumns for AsText<D> {
    type Date = String;
    type TsUs = String;
    type TsMs = String;
    type TsUsUtc = String;
    type TsMsUtc = String;
    type Price = D;
    type Amount = D;
}

/// In typed fields, which write back as the same Parquet column types.
#[derive(Clone, Debug, PartialEq)]
struct Typed;

impl PeopleColumns for Typed {
    type Date = Date;
    type TsUs = TimestampNtz<Micros>;
    type TsMs = TimestampNtz<Millis>;
    type TsUsUtc = Timestamp<Micros>;
    type TsMsUtc = Timestamp<Millis>;
    type Price = Decimal<10, 2>;
    type Amount = Decimal<38, 10>;
}

/// Every field of the `people` dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
struct People<C: PeopleColumns> {
    id: i64,
    age: Option<i32>,
    score: Option<f64>,
    active: Option<bool>,
    name: Option<String>,
    city: Option<String>,
    big: Option<i64>,
    address: Option<Address>,
    tags: Option<Vec<Option<String>>>,
    lucky: Option<Vec<Option<i64>>>,
    birth: Option<C::Date>,
    ts_us: Option<C::TsUs>,
    ts_ms: Option<C::TsMs>,
    ts_us_utc: Option<C::TsUsUtc>,
    ts_ms_paris: Option<C::TsMsUtc>,
    price: Option<C::Price>,
    amount: Option<C::Amount>,
}

type JsonAll<D> = People<AsText<D>>;

type TypedPerson = People<Typed>;

fn json_all_fields<D>(ctx: &Context, f: &str) -> Vec<Value>
where
    D: ember::data::Data + Serialize + serde::de::DeserializeOwned + std::fmt::Debug + PartialEq,
{
    let rows = ctx
        .json_lines::<JsonAll<D>>(&fixture_s(f), JsonOptions::default())
        .unwrap()
        .collect()
        .unwrap();
    as_values(&rows)
}

#[test]
fn json_lines_read_exactly_and_follow_each_parse_mode() {
    let exp = expected();
    let modes = &exp["files"]["events.hand.malformed.jsonl"]["spark_modes"];
    each_master(|ctx, m| {
        for f in ["people.polars.ndjson", "people.duckdb.ndjson"] {
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
            struct JsonPerson {
                id: i64,
                age: Option<i32>,
                score: Option<f64>,
                active: Option<bool>,
                name: Option<String>,
                city: Option<String>,
                big: Option<i64>,
                address: Option<Address>,
                tags: Option<Vec<Option<String>>>,
                lucky: Option<Vec<Option<i64>>>,
                birth: Option<String>,
            }
            let rows = ctx
                .json_lines::<JsonPerson>(&fixture_s(f), JsonOptions::default())
                .unwrap()
                .collect()
                .unwrap();
            let want: Vec<Value> = exp["files"][f]["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    serde_json::to_value(serde_json::from_value::<JsonPerson>(r.clone()).unwrap())
                        .unwrap()
                })
                .collect();
            assert_same(&as_values(&rows), &want, &format!("{m} {f}"));
            // Every field, the timestamps and decimals too, as the line holds it: timestamps
            // in the writer's own text, decimals as Polars' strings or DuckDB's numbers (read
            // into f64: exact for these values as a double, not as a decimal).
            let all = if f.contains("duckdb") {
                json_all_fields::<f64>(ctx, f)
            } else {
                json_all_fields::<String>(ctx, f)
            };
            let lines: Vec<Value> = exp["files"][f]["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| serde_json::from_str(l.as_str().unwrap()).unwrap())
                .collect();
            assert_same(&all, &as_sorted(lines), &format!("{m} {f} lines"));
        }
        let path = fixture_s("events.hand.malformed.jsonl");
        for (mode, name) in [
            (ParseMode::Permissive, "PERMISSIVE"),
            (ParseMode::DropMalformed, "DROPMALFORMED"),
        ] {
            let opts = JsonOptions {
                mode,
                min_partitions: Some(4),
                ..JsonOptions::default()
            };
            let rows = ctx
                .json_lines::<Event>(&path, opts)
                .unwrap()
                .collect()
                .unwrap();
            let want: Vec<Event> = serde_json::from_value(modes[name]["rows"].clone()).unwrap();
            assert_eq!(rows, want, "{m} {name} (Spark's rows)");
        }
        let opts = JsonOptions {
            mode: ParseMode::FailFast,
            ..JsonOptions::default()
        };
        let err = ctx
            .json_lines::<Event>(&path, opts)
            .unwrap()
            .collect()
            .unwrap_err()
            .to_string();
        assert!(err.contains("Parse Mode: FAILFAST"), "{m}: {err}");
        assert!(
            err.contains("events.hand.malformed.jsonl, line at byte offset 161"),
            "{m}: {err}"
        );
    });
}

#[test]
fn compressed_text_reads_by_extension_and_bad_bytes_follow_hadoop() {
    let exp = expected();
    let lines: Vec<String> =
        serde_json::from_value(exp["files"]["lines.python.txt"]["lines"].clone()).unwrap();
    each_master(|ctx, m| {
        for f in [
            "lines.python.txt.gz",
            "lines.python.multimember.txt.gz",
            "lines.python.txt.bz2",
            "lines.pyarrow.txt.zst",
            "lines.pyarrow-frame.txt.lz4",
            "lines.pyarrow-hadoop.txt.lz4",
            "lines.spark-hadoop.txt.lz4",
        ] {
            let rdd = ctx.text_file(&fixture_s(f), 4).unwrap();
            assert_eq!(rdd.num_partitions(), 1, "{m} {f}: not splittable");
            assert_eq!(rdd.collect().unwrap(), lines, "{m} {f}");
        }
        let lossy: Vec<String> =
            serde_json::from_value(exp["files"]["invalid-utf8.hand.txt"]["lines_lossy"].clone())
                .unwrap();
        let path = fixture_s("invalid-utf8.hand.txt");
        assert_eq!(
            ctx.text_file(&path, None).unwrap().collect().unwrap(),
            lossy,
            "{m}"
        );
        // One split: with two, both tasks fail (bad bytes at 14 and at 64) and which one
        // aborts the stage first is a race.
        let err = ctx
            .text_file(&path, 1)
            .unwrap()
            .strict_utf8()
            .collect()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid UTF-8 in")
                && err.contains("invalid-utf8.hand.txt")
                && err.contains("at byte offset 14"),
            "{m}: {err}"
        );
        let err = ctx
            .text_file(&fixture_s("lines.python.truncated.txt.gz"), None)
            .unwrap()
            .count()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("lines.python.truncated.txt.gz") && err.contains("at byte offset"),
            "{m}: {err}"
        );
    });
    let ctx = context("local[2]", &[("ember.files.ignoreCorruptFiles", "true")]);
    let n = ctx
        .text_file(&fixture_s("lines.python.truncated.txt.gz"), None)
        .unwrap()
        .count()
        .unwrap();
    assert!(
        n < lines.len() as u64,
        "the lines before the damage are kept, then a logged skip"
    );
    ctx.stop();
}

#[test]
fn missing_files_fail_naming_them_or_are_skipped_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    std::fs::write(&a, "{\"id\": 1}\n").unwrap();
    std::fs::write(&b, "{\"id\": 2}\n").unwrap();
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Id {
        id: i64,
    }
    for (ignore, m) in [
        ("false", "local[2]"),
        ("true", "local[2]"),
        ("true", "local-cluster[2,1,1024]"),
    ] {
        let ctx = context(m, &[("ember.files.ignoreMissingFiles", ignore)]);
        let rdd = ctx
            .json_lines::<Id>(dir.path().to_str().unwrap(), JsonOptions::default())
            .unwrap();
        let text = ctx.text_file(dir.path().to_str().unwrap(), None).unwrap();
        std::fs::remove_file(&b).unwrap();
        let got = rdd.collect();
        let got_text = text.collect();
        std::fs::write(&b, "{\"id\": 2}\n").unwrap();
        if ignore == "true" {
            assert_eq!(got.unwrap(), [Id { id: 1 }], "{m}");
            assert_eq!(got_text.unwrap(), ["{\"id\": 1}"], "{m}");
        } else {
            let err = got.unwrap_err().to_string();
            assert!(err.contains("b.jsonl"), "{m}: {err}");
            assert!(got_text.unwrap_err().to_string().contains("b.jsonl"));
        }
        ctx.stop();
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Out {
    id: i64,
    name: Option<String>,
    score: Option<f64>,
    year: i32,
}

fn out_rows() -> Vec<Out> {
    (0..200)
        .map(|i| Out {
            id: i,
            name: (i % 7 != 0).then(|| format!("name \"{i}\", with comma")),
            score: (i % 5 != 0).then_some(i as f64 / 4.0),
            year: 2020 + (i % 3) as i32,
        })
        .collect()
}

fn part_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(part_files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn writers_round_trip_through_the_commit_protocol_with_partition_by() {
    let dir = tempfile::tempdir().unwrap();
    let rows = out_rows();
    each_master(|ctx, m| {
        let tag = m.replace(['[', ']', ','], "_");
        let rdd = ctx.parallelize(rows.clone(), 4);
        // CSV, gzip, header.
        let csv = dir.path().join(format!("csv-{tag}"));
        let opts = CsvOptions {
            compression: Compression::Gzip,
            ..CsvOptions::with_header()
        };
        rdd.save_as_csv(csv.to_str().unwrap(), opts.clone())
            .unwrap();
        assert!(
            csv.join("_SUCCESS").is_file() && csv.join("part-00003.csv.gz").is_file(),
            "{m}"
        );
        let back = ctx
            .csv_file::<Out>(csv.to_str().unwrap(), CsvOptions::with_header())
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(sorted_by_id(back), rows, "{m} csv");
        // The output path is checked before any work: Spark's message.
        let err = rdd
            .save_as_csv(csv.to_str().unwrap(), opts)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Output directory") && err.contains("already exists"),
            "{err}"
        );
        // JSON lines, partitioned by year.
        let json = dir.path().join(format!("json-{tag}"));
        let opts = JsonOptions {
            partition_by: vec!["year".into()],
            ..JsonOptions::default()
        };
        rdd.save_as_json_lines(json.to_str().unwrap(), opts)
            .unwrap();
        assert!(
            json.join("year=2021").join("part-00000.json").is_file(),
            "{m}"
        );
        let first =
            std::fs::read_to_string(json.join("year=2021").join("part-00000.json")).unwrap();
        assert!(
            !first.contains("\"year\""),
            "partition column only in the path: {first}"
        );
        let back = ctx
            .json_lines::<Out>(json.to_str().unwrap(), JsonOptions::default())
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(sorted_by_id(back), rows, "{m} json partitioned");
        // Parquet, partitioned by year.
        let pq = dir.path().join(format!("parquet-{tag}"));
        let opts = ParquetOptions {
            partition_by: vec!["year".into()],
            ..ParquetOptions::default()
        };
        rdd.save_as_parquet(pq.to_str().unwrap(), opts).unwrap();
        let back = ctx
            .parquet_file::<Out>(pq.to_str().unwrap(), ParquetOptions::default())
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(sorted_by_id(back), rows, "{m} parquet partitioned");
        assert!(part_files(&pq)
            .iter()
            .all(|p| !p.to_string_lossy().contains("_temporary")));
        // Compressed text.
        for codec in [
            Compression::Gzip,
            Compression::Bzip2,
            Compression::Zstd,
            Compression::Lz4,
        ] {
            let txt = dir.path().join(format!("text-{tag}-{codec:?}"));
            rdd.clone()
                .map(|r: Out| r.id)
                .save_as_text_file_compressed(txt.to_str().unwrap(), codec)
                .unwrap();
            let ids = ctx
                .text_file(txt.to_str().unwrap(), None)
                .unwrap()
                .map(|l: String| l.parse::<i64>().unwrap())
                .collect()
                .unwrap();
            assert_eq!(sorted(&ids), (0..200).collect::<Vec<_>>(), "{m} {codec:?}");
        }
    });
}

#[test]
fn writers_keep_empty_strings_apart_from_nulls_and_skip_empty_partitions() {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Row {
        id: i64,
        text: Option<String>,
        note: String,
    }
    let rows = vec![
        Row {
            id: 1,
            text: Some(String::new()),
            note: "a, b".into(),
        },
        Row {
            id: 2,
            text: None,
            note: String::new(),
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    each_master(|ctx, m| {
        let tag = m.replace(['[', ']', ','], "_");
        // 4 partitions, 2 rows: partitions 0 and 2 are empty. Only partition 0 writes an empty
        // file (Spark's FileFormatWriter: a job without rows still leaves one file).
        let rdd = ctx.parallelize(rows.clone(), 4);
        let csv = dir.path().join(format!("csv-{tag}"));
        rdd.save_as_csv(csv.to_str().unwrap(), CsvOptions::with_header())
            .unwrap();
        let json = dir.path().join(format!("json-{tag}"));
        rdd.save_as_json_lines(json.to_str().unwrap(), JsonOptions::default())
            .unwrap();
        let pq = dir.path().join(format!("parquet-{tag}"));
        rdd.save_as_parquet(pq.to_str().unwrap(), ParquetOptions::default())
            .unwrap();
        for (out, ext) in [(&csv, "csv"), (&json, "json"), (&pq, "parquet")] {
            let names: Vec<String> = part_files(out)
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            assert_eq!(
                names,
                [
                    "_SUCCESS".to_string(),
                    format!("part-00000.{ext}"),
                    format!("part-00001.{ext}"),
                    format!("part-00003.{ext}")
                ],
                "{m}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(csv.join("part-00000.csv")).unwrap(),
            "",
            "{m}"
        );
        // Spark's `emptyValue` and `nullValue`: "" for an empty string, nothing for null.
        assert_eq!(
            std::fs::read_to_string(csv.join("part-00001.csv")).unwrap(),
            "id,text,note\n1,\"\",\"a, b\"\n",
            "{m}"
        );
        assert_eq!(
            std::fs::read_to_string(csv.join("part-00003.csv")).unwrap(),
            "id,text,note\n2,,\"\"\n",
            "{m}"
        );
        let back = ctx
            .parquet_file::<Row>(pq.to_str().unwrap(), ParquetOptions::default())
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(back, rows, "{m}");
    });
}

fn sorted_by_id(mut v: Vec<Out>) -> Vec<Out> {
    v.sort_by_key(|r| r.id);
    v
}

#[test]
fn a_write_failing_mid_job_leaves_no_output_and_a_retry_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    each_master(|ctx, m| {
        let out = dir
            .path()
            .join(format!("out-{}", m.replace(['[', ']', ','], "_")));
        let s = out.to_str().unwrap();
        let err = ctx
            .parallelize(out_rows(), 8)
            .map(|r: Out| {
                assert!(r.id != 130, "fault while writing partition 5");
                r
            })
            .save_as_parquet(s, ParquetOptions::default())
            .unwrap_err();
        assert!(
            err.to_string().contains("fault while writing"),
            "{m}: {err}"
        );
        assert!(
            !out.exists(),
            "{m}: the failed job left {:?}",
            part_files(&out)
        );
        ctx.parallelize(out_rows(), 8)
            .save_as_parquet(s, ParquetOptions::default())
            .unwrap();
        let n = ctx
            .parquet_file::<Out>(s, ParquetOptions::default())
            .unwrap()
            .count()
            .unwrap();
        assert_eq!(n, 200, "{m}");
    });
}

/// Blocks a write task in the middle of its partition (row 12 of 25, after the first half has
/// gone to the writer) until `gate/go` exists, having announced itself as
/// `gate/started-<pid>-<id>`: how the test kills an executor while its tasks are writing. A task
/// that finds `go` does not wait (the retries).
fn gate_mid_partition(gate: &Path, r: Out) -> Out {
    if r.id % 25 == 12 && !gate.join("go").exists() {
        let me = gate.join(format!("started-{}-{}", std::process::id(), r.id));
        std::fs::write(&me, "").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !gate.join("go").exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the test never opened the gate"
            );
            std::thread::park_timeout(std::time::Duration::from_millis(5));
        }
    }
    r
}

/// The pids of the executors whose tasks are waiting at the gate.
fn gated_pids(gate: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir(gate)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_prefix("started-")?
                .split('-')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    pids.sort();
    pids.dedup();
    pids
}

/// Part files or `_SUCCESS` a reader of `out` would see (anything but `_temporary/`).
fn visible_output(out: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "_temporary")
        .collect();
    names.sort();
    names
}

fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.contains(") Z "),
        Err(_) => true,
    }
}

#[test]
fn an_executor_killed_mid_write_leaves_no_visible_output_and_a_retry_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let wait = |what: &str, mut done: Box<dyn FnMut() -> bool + '_>| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            std::thread::park_timeout(std::time::Duration::from_millis(5));
        }
    };
    // maxFailures 1: the killed executor's task fails the job (the abort path); 4 (Spark's
    // default): the task runs again elsewhere and the job succeeds (the retry path).
    for max_failures in ["1", "4"] {
        for format in ["parquet", "csv"] {
            let what = format!("{format}, ember.task.maxFailures={max_failures}");
            let gate = dir.path().join(format!("gate-{format}-{max_failures}"));
            std::fs::create_dir(&gate).unwrap();
            let out = dir.path().join(format!("out-{format}-{max_failures}"));
            let s = out.to_str().unwrap().to_string();
            let ctx = context(
                "local-cluster[2,1,1024]",
                &[("ember.task.maxFailures", max_failures)],
            );
            let mut all_pids = ctx.executor_pids();
            let save = |ctx: &Context| {
                let g = gate.clone();
                let rdd = ctx
                    .parallelize(out_rows(), 8)
                    .map(func!(move |r: Out| gate_mid_partition(g, r)));
                if format == "parquet" {
                    rdd.save_as_parquet(&s, ParquetOptions::default())
                } else {
                    rdd.save_as_csv(&s, CsvOptions::with_header())
                }
            };
            std::thread::scope(|scope| {
                let job = scope.spawn(|| save(&ctx));
                // Both executors' tasks are writing: their first halves are in the writer.
                wait(&what, Box::new(|| gated_pids(&gate).len() == 2));
                assert_eq!(
                    visible_output(&out),
                    Vec::<String>::new(),
                    "{what}: mid-write"
                );
                let victim = gated_pids(&gate)[0];
                assert!(
                    all_pids.contains(&victim),
                    "{what}: {victim} is an executor"
                );
                let killed = std::process::Command::new("kill")
                    .args(["-9", &victim.to_string()])
                    .status()
                    .unwrap();
                assert!(killed.success(), "{what}");
                wait(&what, Box::new(|| ctx.status().executors_lost == 1));
                std::fs::write(gate.join("go"), "").unwrap();
                let result = job.join().unwrap();
                if max_failures == "1" {
                    let err = result.expect_err(&what).to_string();
                    assert!(err.contains("Job aborted"), "{what}: {err}");
                    assert_eq!(
                        visible_output(&out),
                        Vec::<String>::new(),
                        "{what}: aborted"
                    );
                    assert!(part_files(dir.path()).iter().all(|p| !p.starts_with(&out)));
                    // The same path again, with the replacement executor: the whole output.
                    save(&ctx).unwrap_or_else(|e| panic!("{what}: retry: {e}"));
                } else {
                    result.unwrap_or_else(|e| panic!("{what}: {e}"));
                }
            });
            let mut visible = visible_output(&out);
            assert_eq!(visible.remove(0), "_SUCCESS", "{what}");
            assert_eq!(
                visible.len(),
                8,
                "{what}: one part file per partition: {visible:?}"
            );
            let back: Vec<Out> = if format == "parquet" {
                ctx.parquet_file::<Out>(&s, ParquetOptions::default())
                    .unwrap()
                    .collect()
                    .unwrap()
            } else {
                ctx.csv_file::<Out>(&s, CsvOptions::with_header())
                    .unwrap()
                    .collect()
                    .unwrap()
            };
            assert_eq!(sorted_by_id(back), out_rows(), "{what}: every row once");
            all_pids.extend(ctx.executor_pids());
            ctx.stop();
            wait(
                &what,
                Box::new(|| all_pids.iter().all(|&p| process_gone(p))),
            );
        }
    }
}

#[test]
fn generic_rows_read_every_format() {
    type Row = serde_json::Map<String, Value>;
    let ctx = context("local[2]", &[]);
    let p = ctx
        .parquet_file::<Row>(&fixture_s("sales"), ParquetOptions::default())
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(p.len(), 12);
    assert!(p
        .iter()
        .all(|r| r.contains_key("year") && r.contains_key("product")));
    let j = ctx
        .json_lines::<Row>(&fixture_s("events.hand.jsonl"), JsonOptions::default())
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(j[0]["user"]["langs"][1], "fr");
    let c = ctx
        .csv_file::<BTreeMap<String, String>>(
            &fixture_s("malformed.hand.csv"),
            CsvOptions::with_header(),
        )
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(c[0]["name"], "ok");
    ctx.stop();
}

mod split_properties {
    //! Every record of a CSV or JSON-lines file is read exactly once, whatever the splits.

    use super::*;
    use proptest::prelude::*;

    fn read_all<T: ember::data::Data + serde::de::DeserializeOwned>(
        ctx: &Context,
        path: &str,
        csv: bool,
        parts: usize,
    ) -> Vec<T> {
        if csv {
            ctx.csv_file::<T>(
                path,
                CsvOptions {
                    min_partitions: Some(parts),
                    ..CsvOptions::with_header()
                },
            )
            .unwrap()
            .collect()
            .unwrap()
        } else {
            ctx.json_lines::<T>(
                path,
                JsonOptions {
                    min_partitions: Some(parts),
                    ..JsonOptions::default()
                },
            )
            .unwrap()
            .collect()
            .unwrap()
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rec {
        id: u32,
        text: String,
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn every_record_once(
            texts in proptest::collection::vec("[a-z ,\"é]{0,40}", 0..60),
            parts in 1usize..40,
            crlf in any::<bool>(),
        ) {
            let ctx = context("local[2]", &[]);
            let dir = tempfile::tempdir().unwrap();
            let nl = if crlf { "\r\n" } else { "\n" };
            let recs: Vec<Rec> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| Rec { id: i as u32, text: t.clone() })
                .collect();
            let mut csv = format!("id,text{nl}");
            let mut json = String::new();
            for r in &recs {
                csv.push_str(&format!("{},\"{}\"{nl}", r.id, r.text.replace('"', "\"\"")));
                json.push_str(&serde_json::to_string(r).unwrap());
                json.push_str(nl);
            }
            let cp = dir.path().join("r.csv");
            let jp = dir.path().join("r.jsonl");
            std::fs::write(&cp, csv).unwrap();
            std::fs::write(&jp, json).unwrap();
            let got: Vec<Rec> = read_all(&ctx, cp.to_str().unwrap(), true, parts);
            prop_assert_eq!(&got, &recs);
            let got: Vec<Rec> = read_all(&ctx, jp.to_str().unwrap(), false, parts);
            prop_assert_eq!(&got, &recs);
            ctx.stop();
        }
    }
}

/// What `bench/make-data-fixtures.sh` checks with DuckDB and pyarrow: Ember's writers on the
/// fixtures' datasets, into `$EMBER_ROUNDTRIP_DIR` (ignored: it needs that directory, and the
/// script runs it with `--ignored`).
#[test]
#[ignore]
fn write_datasets_for_the_roundtrip_check() {
    let Ok(dir) = std::env::var("EMBER_ROUNDTRIP_DIR") else {
        panic!("set EMBER_ROUNDTRIP_DIR to the directory to write into");
    };
    let dir = PathBuf::from(dir);
    let ctx = context("local[2]", &[]);
    let people = ctx
        .parquet_file::<Person>(
            &fixture_s("people.pyarrow.parquet"),
            ParquetOptions::default(),
        )
        .unwrap();
    // Typed dates, timestamps and decimals: the Parquet column types come back too.
    ctx.parquet_file::<TypedPerson>(
        &fixture_s("people.pyarrow.parquet"),
        ParquetOptions::default(),
    )
    .unwrap()
    .save_as_parquet(
        dir.join("people-parquet").to_str().unwrap(),
        ParquetOptions::default(),
    )
    .unwrap();
    people
        .save_as_json_lines(
            dir.join("people-json").to_str().unwrap(),
            JsonOptions::default(),
        )
        .unwrap();
    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct FlatText {
        id: i64,
        age: Option<i32>,
        score: Option<f64>,
        active: Option<bool>,
        name: Option<String>,
        city: Option<String>,
        big: Option<i64>,
        birth: Option<String>,
        ts_us: Option<String>,
        ts_ms: Option<String>,
        price: Option<String>,
        amount: Option<String>,
    }
    // From the Parquet file, which keeps an empty string apart from null: a CSV reader (Spark's
    // and Ember's) reads both `""` and an empty field as null.
    ctx.parquet_file::<FlatText>(
        &fixture_s("people.pyarrow.parquet"),
        ParquetOptions::default(),
    )
    .unwrap()
    .save_as_csv(
        dir.join("people-csv").to_str().unwrap(),
        CsvOptions {
            compression: Compression::Gzip,
            ..CsvOptions::with_header()
        },
    )
    .unwrap();
    ctx.parquet_file::<Number>(
        &fixture_s("numbers.pyarrow.rowgroups.parquet"),
        ParquetOptions::default(),
    )
    .unwrap()
    .save_as_parquet(
        dir.join("numbers-parquet").to_str().unwrap(),
        ParquetOptions::default(),
    )
    .unwrap();
    ctx.stop();
}
