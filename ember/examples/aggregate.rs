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
//! floating-point value with Rust's `{}`.

use ember::prelude::*;
use ember::rdd::{CsvOptions, JsonOptions, ParquetOptions};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

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

/// The key and value of a row, when neither is null.
fn pick(row: &Row, key: &str, value: &str) -> Option<(String, Sum)> {
    Some((key_text(row.get(key)?)?, number(row.get(value)?)?))
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

    // Without `move`, `func!` clones `key` and `value` into each arm's function (where they
    // are references, as in any `Fn` closure).
    let sums = match format_of(&path)? {
        "parquet" => {
            let opts = ParquetOptions {
                columns: vec![key.clone(), value.clone()],
                ..ParquetOptions::default()
            };
            ctx.parquet_file::<Row>(&path, opts)?
                .flat_map(func!(|row: Row| pick(&row, key, value)))
                .reduce_by_key(add, None)
                .collect()?
        }
        // CSV fields are text, as Spark reads them without `inferSchema` (`007` stays `007`).
        // `multi_line`: DuckDB, Polars and pyarrow quote line breaks inside fields, which
        // line-split reading would cut into two malformed records (each file is one task).
        "csv" => ctx
            .csv_file::<BTreeMap<String, String>>(
                &path,
                CsvOptions {
                    multi_line: true,
                    ..CsvOptions::with_header()
                },
            )?
            .map(|fields| {
                fields
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect::<Row>()
            })
            .flat_map(func!(|row: Row| pick(&row, key, value)))
            .reduce_by_key(add, None)
            .collect()?,
        _ => ctx
            .json_lines::<Row>(&path, JsonOptions::default())?
            .flat_map(func!(|row: Row| pick(&row, key, value)))
            .reduce_by_key(add, None)
            .collect()?,
    };
    let mut sums = sums;
    sums.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (k, s) in sums {
        match s {
            Sum::Int(i) => out.push_str(&format!("{k}\t{i}\n")),
            Sum::Float(f) => out.push_str(&format!("{k}\t{f}\n")),
        }
    }
    print!("{out}");
    ctx.stop();
    Ok(())
}
