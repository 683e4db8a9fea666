//! JSON-lines files (Spark's `json` source without `multiLine`): one JSON object per line,
//! split by byte range like text, deserialized into the job's serde type. Blank lines are
//! skipped, as Spark skips them.

use std::marker::PhantomData;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::data::Data;
use crate::error::{EmberError, Result};
use crate::io::compression::Compression;
use crate::io::record::{
    deserialize_with_partition, DataSplit, ParseMode, RecordFormat, Records, CORRUPT_RECORD_COLUMN,
};
use crate::io::text_input::{LineReader, Utf8Decoding};

/// Options of [`json_lines`](crate::context::Context::json_lines) and `save_as_json_lines`,
/// with Spark's names and defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonOptions {
    /// What to do with lines that are not a JSON object of the type (`mode`, default
    /// PERMISSIVE: the record is then what an object holding only the corrupt-record field
    /// gives, so every other field of the type must be an `Option`).
    pub mode: ParseMode,
    /// The field that receives a malformed line in PERMISSIVE mode
    /// (`columnNameOfCorruptRecord`, default `_corrupt_record`).
    pub column_name_of_corrupt_record: String,
    /// Compression of written files (`compression`, default none); readers go by extension.
    pub compression: Compression,
    /// Minimum number of partitions of a read (default: as `text_file`).
    pub min_partitions: Option<usize>,
    /// Columns whose values name the output's `column=value` directories instead of being
    /// written into the files (Spark's `partitionBy`).
    pub partition_by: Vec<String>,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            mode: ParseMode::Permissive,
            column_name_of_corrupt_record: CORRUPT_RECORD_COLUMN.to_string(),
            compression: Compression::None,
            min_partitions: None,
            partition_by: Vec::new(),
        }
    }
}

/// The JSON-lines format of a typed read (an RDD of `T`).
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct JsonLinesFormat<T> {
    options: JsonOptions,
    #[serde(skip)]
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for JsonLinesFormat<T> {
    fn clone(&self) -> Self {
        JsonLinesFormat {
            options: self.options.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> JsonLinesFormat<T> {
    /// The format with these options.
    pub fn new(options: JsonOptions) -> Self {
        JsonLinesFormat {
            options,
            _t: PhantomData,
        }
    }
}

fn parse<T: DeserializeOwned>(
    line: &str,
    partition: &[(String, Option<String>)],
) -> std::result::Result<T, String> {
    if partition.is_empty() {
        return serde_json::from_str(line).map_err(|e| e.to_string());
    }
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).map_err(|e| e.to_string())?;
    deserialize_with_partition(map, partition)
}

/// One line as `T` by the mode's rules; `Ok(None)` when dropped or blank.
pub(crate) fn read_line<T: DeserializeOwned>(
    options: &JsonOptions,
    line: &str,
    partition: &[(String, Option<String>)],
    path: &Path,
    offset: u64,
) -> Result<Option<T>> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let err = match parse::<T>(line, partition) {
        Ok(t) => return Ok(Some(t)),
        Err(e) => e,
    };
    let bad = |message: String| EmberError::BadInput {
        path: path.display().to_string(),
        position: format!("line at byte offset {offset}"),
        message,
    };
    match options.mode {
        ParseMode::DropMalformed => Ok(None),
        ParseMode::FailFast => Err(bad(format!(
            "[MALFORMED_RECORD_IN_PARSING] Malformed records are detected in record parsing: \
             {err}. Parse Mode: FAILFAST"
        ))),
        ParseMode::Permissive => {
            let mut only_corrupt = serde_json::Map::new();
            only_corrupt.insert(
                options.column_name_of_corrupt_record.clone(),
                serde_json::Value::String(line.to_string()),
            );
            deserialize_with_partition(only_corrupt, partition)
                .map(Some)
                .map_err(|e2| {
                    bad(format!(
                        "malformed record ({err}); in PERMISSIVE mode it becomes a record with \
                         only the {} field set, which the record type cannot hold ({e2}): make \
                         its other fields Options or use DROPMALFORMED",
                        options.column_name_of_corrupt_record
                    ))
                })
        }
    }
}

impl<T: Data + DeserializeOwned> RecordFormat for JsonLinesFormat<T> {
    type Item = T;

    fn splittable(&self, path: &Path) -> bool {
        Compression::from_path(path).is_splittable()
    }

    fn open(&self, split: &DataSplit) -> Result<Records<T>> {
        let mut lines = LineReader::try_open_with(split.file_split(), Utf8Decoding::Lossy)?;
        let options = self.options.clone();
        let partition = split.partition.clone();
        let path = split.path.clone();
        let mut done = false;
        Ok(Box::new(std::iter::from_fn(move || loop {
            if done {
                return None;
            }
            let (offset, line) = match lines.try_next_line_at() {
                Ok(Some(l)) => l,
                Ok(None) => return None,
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            };
            match read_line(&options, line, &partition, &path, offset) {
                Ok(Some(t)) => return Some(Ok(t)),
                Ok(None) => continue,
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Ev {
        id: Option<i64>,
        score: Option<f64>,
        _corrupt_record: Option<String>,
    }

    #[test]
    fn modes() {
        let p = Path::new("x.jsonl");
        let o = JsonOptions::default();
        let bad = r#"{"id": 99, "user": {"#;
        let got: Ev = read_line(&o, bad, &[], p, 7).unwrap().unwrap();
        assert_eq!(got.id, None);
        assert_eq!(got._corrupt_record.as_deref(), Some(bad));
        assert_eq!(read_line::<Ev>(&o, "  ", &[], p, 0).unwrap(), None);
        let drop = JsonOptions {
            mode: ParseMode::DropMalformed,
            ..JsonOptions::default()
        };
        assert_eq!(read_line::<Ev>(&drop, bad, &[], p, 7).unwrap(), None);
        let fail = JsonOptions {
            mode: ParseMode::FailFast,
            ..JsonOptions::default()
        };
        let err = read_line::<Ev>(&fail, bad, &[], p, 7)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Parse Mode: FAILFAST"), "{err}");
        assert!(err.contains("x.jsonl, line at byte offset 7"), "{err}");
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Strict {
            id: i64,
        }
        let err = read_line::<Strict>(&o, bad, &[], p, 7)
            .unwrap_err()
            .to_string();
        assert!(err.contains("make its other fields Options"), "{err}");
    }
}
