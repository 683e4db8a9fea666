//! Sums a value column per key of a Parquet, CSV or JSON-lines dataset.
//!
//! ```text
//! aggregate PATH --key COLUMN --value COLUMN [--master URL] [--conf key=value ...]
//! ```
//! PATH is a file, a directory of files, or a Hive-partitioned directory
//! (`year=2025/month=11/…`, whose partition columns can be the key or the value); the format
//! is chosen by the files' extension: `.parquet`, `.csv` (with a header line), `.json`/`.jsonl`/
//! `.ndjson` (JSON lines), each possibly compressed (`.csv.gz`, …); CSV fields may hold quoted
//! line breaks. Prints `key<TAB>sum` per key, sorted by the key as a string; rows whose key or
//! value is null are skipped. The sum of integers is printed as an integer, a sum with any
//! floating-point value with Rust's `{}`. A `--key` or `--value` column the dataset does not
//! have, or a value that is not a number, fails the program (exit status 1) with a message
//! naming the column and the dataset's columns.

use ember::prelude::*;
use ember::rdd::{CsvOptions, JsonOptions, ParquetOptions};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The generic row: every format reads into a map of column name to value.
type Row = Map<String, Value>;

/// A sum that stays an integer until a floating-point value joins it.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
enum Sum {
    Int(i128),
    Float(f64),
}

fn add(a: Sum, b: Sum) -> Sum {
    match (a, b) {
        (Sum::Int(x), Sum::Int(y)) => Sum::Int(x + y),
        (Sum::Int(x), Sum::Float(y)) | (Sum::Float(y), Sum::Int(x)) => Sum::Float(x as f64 + y),
        (Sum::Float(x), Sum::Float(y)) => Sum::Float(x + y),
    }
}

/// A value as a number: JSON numbers as they are, text (CSV fields, partition values) parsed;
/// `None` for null, empty or non-numeric values.
fn number(v: &Value) -> Option<Sum> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(|i| Sum::Int(i.into()))
            .or_else(|| n.as_u64().map(|u| Sum::Int(u.into())))
            .or_else(|| n.as_f64().map(Sum::Float)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i128>()
                .map(Sum::Int)
                .ok()
                .or_else(|| s.parse::<f64>().ok().map(Sum::Float))
        }
        _ => None,
    }
}

/// A key as text; `None` for null (and the empty field of a CSV file, which is its null).
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The sum of a key's values, or the first value found that is not a number (which fails the
/// program once the job is done: a task cannot end the program with a message).
type Acc = std::result::Result<Sum, String>;

fn add_acc(a: Acc, b: Acc) -> Acc {
    Ok(add(a?, b?))
}

/// The key and value of a row, when neither is null; `Err` holds a value that is not a number.
fn pick(row: &Row, key: &str, value: &str) -> Option<(String, Acc)> {
    let k = key_text(row.get(key)?)?;
    let v = row.get(value)?;
    if is_null(v) {
        return None;
    }
    Some((k, number(v).ok_or_else(|| v.to_string())))
}

/// Null, or the empty (null) field of a CSV file.
fn is_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// Every column name of the rows (JSON lines may differ from line to line: the union, as
/// Spark's schema inference takes it).
fn columns_of<R: Rdd<Item = Row>>(rows: &R) -> Result<BTreeSet<String>> {
    rows.aggregate(
        BTreeSet::new(),
        |mut set: BTreeSet<String>, row: Row| {
            set.extend(row.keys().cloned());
            set
        },
        |mut a: BTreeSet<String>, b: BTreeSet<String>| {
            a.extend(b);
            a
        },
    )
}

/// Spark's error for a column a query names that its input does not have, naming the option
/// and every column of the dataset.
fn unknown_column(option: &str, name: &str, columns: &BTreeSet<String>) -> EmberError {
    let list: Vec<String> = columns.iter().map(|c| format!("`{c}`")).collect();
    EmberError::Argument(format!(
        "{option}: [UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter \
         with name `{name}` cannot be resolved. Did you mean one of the following? [{}].",
        list.join(", ")
    ))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("aggregate: {e}");
        std::process::exit(1);
    }
}

/// The format of a dataset by the extension of its first data file.
fn format_of(path: &str) -> Result<&'static str> {
    fn by_name(name: &str) -> Option<&'static str> {
        let name = name
            .trim_end_matches(".gz")
            .trim_end_matches(".bz2")
            .trim_end_matches(".zst")
            .trim_end_matches(".lz4")
            .trim_end_matches(".deflate");
        if name.ends_with(".parquet") {
            Some("parquet")
        } else if name.ends_with(".csv") {
            Some("csv")
        } else if name.ends_with(".json") || name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            Some("json")
        } else {
            None
        }
    }
    fn find(dir: &std::path::Path) -> Option<&'static str> {
        let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            let p = e.path();
            let found = if p.is_dir() { find(&p) } else { by_name(&name) };
            if found.is_some() {
                return found;
            }
        }
        None
    }
    let p = std::path::Path::new(path);
    let found = if p.is_dir() { find(p) } else { by_name(path) };
    found.ok_or_else(|| {
        EmberError::Argument(format!(
            "cannot tell the format of {path}: expected .parquet, .csv or .json/.jsonl/.ndjson \
             files"
        ))
    })
}

/// What a pass over the rows computes.
enum Job {
    /// The sum of the value column per key.
    Sums,
    /// The names of the dataset's columns.
    Columns,
}

/// What a pass returned.
enum Done {
    Sums(Vec<(String, Acc)>),
    Columns(BTreeSet<String>),
}

/// Runs `job` on the rows of `path`, in the format of its files. `project` names the key and
/// value columns (a Parquet read then reads only those); `None` reads every column.
fn rows(ctx: &Context, path: &str, project: Option<(&str, &str)>, job: Job) -> Result<Done> {
    let (key, value) = project.unwrap_or_default();
    match format_of(path)? {
        "parquet" => {
            let columns = match project {
                Some((k, v)) => vec![k.to_string(), v.to_string()],
                None => Vec::new(),
            };
            let opts = ParquetOptions {
                columns,
                ..ParquetOptions::default()
            };
            run_job(ctx.parquet_file::<Row>(path, opts)?, key, value, job)
        }
        // CSV fields are text, as Spark reads them without `inferSchema` (`007` stays `007`).
        // `multi_line`: DuckDB, Polars and pyarrow quote line breaks inside fields, which
        // line-split reading would cut into two malformed records (each file is one task).
        "csv" => {
            let opts = CsvOptions {
                multi_line: true,
                ..CsvOptions::with_header()
            };
            let rows = ctx
                .csv_file::<BTreeMap<String, String>>(path, opts)?
                .map(|fields| {
                    // A map type gets the reader's PERMISSIVE column (`_corrupt_record`) too:
                    // not a column of the file.
                    fields
                        .into_iter()
                        .filter(|(k, _)| k != "_corrupt_record")
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect::<Row>()
                });
            run_job(rows, key, value, job)
        }
        _ => run_job(
            ctx.json_lines::<Row>(path, JsonOptions::default())?,
            key,
            value,
            job,
        ),
    }
}

fn run_job<R: Rdd<Item = Row>>(rows: R, key: &str, value: &str, job: Job) -> Result<Done> {
    let (key, value) = (key.to_string(), value.to_string());
    Ok(match job {
        Job::Sums => Done::Sums(
            rows.flat_map(func!(move |row: Row| pick(&row, key, value)))
                .reduce_by_key(add_acc, None)
                .collect()?,
        ),
        Job::Columns => Done::Columns(columns_of(&rows)?),
    })
}

fn run() -> Result<()> {
    ember::init_logging();
    let (ctx, args) = Context::from_args("aggregate")?;
    let (mut path, mut key, mut value) = (None, None, None);
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut take = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| EmberError::Argument(format!("{name} needs a value")))
        };
        match flag.as_str() {
            "--key" => key = Some(take("--key")?),
            "--value" => value = Some(take("--value")?),
            f if f.starts_with("--") => {
                return Err(EmberError::Argument(format!("unknown option {f}")))
            }
            _ if path.is_none() => path = Some(arg),
            _ => return Err(EmberError::Argument(format!("unexpected argument {arg:?}"))),
        }
    }
    let usage = || {
        EmberError::Argument(
            "usage: aggregate PATH --key COLUMN --value COLUMN [--master URL] [--conf k=v]".into(),
        )
    };
    let (path, key, value) = (
        path.ok_or_else(usage)?,
        key.ok_or_else(usage)?,
        value.ok_or_else(usage)?,
    );
    // Stopped on failure too: a local-cluster application ends its executors cleanly.
    let result = aggregate(&ctx, &path, &key, &value);
    ctx.stop();
    print!("{}", result?);
    Ok(())
}

/// The program's output: `key<TAB>sum` lines sorted by key.
fn aggregate(ctx: &Context, path: &str, key: &str, value: &str) -> Result<String> {
    let sums = match rows(ctx, path, Some((key, value)), Job::Sums)? {
        Done::Sums(sums) => sums,
        Done::Columns(_) => unreachable!("asked for sums"),
    };
    if sums.is_empty() {
        // Nothing to print: every key or value null, or a column the dataset does not have.
        let Done::Columns(columns) = rows(ctx, path, None, Job::Columns)? else {
            unreachable!("asked for columns")
        };
        let has_rows = !columns.is_empty();
        for (option, name) in [("--key", key), ("--value", value)] {
            if has_rows && !columns.contains(name) {
                return Err(unknown_column(option, name, &columns));
            }
        }
    }
    let mut checked = Vec::with_capacity(sums.len());
    for (k, acc) in sums {
        match acc {
            Ok(s) => checked.push((k, s)),
            Err(bad) => {
                return Err(EmberError::Argument(format!(
                    "--value: the column `{value}` is not numeric: it holds {bad} (key {k:?}); \
                     its values must be numbers, or text that parses as one"
                )))
            }
        }
    }
    let mut sums = checked;
    sums.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (k, s) in sums {
        match s {
            Sum::Int(i) => out.push_str(&format!("{k}\t{i}\n")),
            Sum::Float(f) => out.push_str(&format!("{k}\t{f}\n")),
        }
    }
    Ok(out)
}
