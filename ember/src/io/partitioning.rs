//! Hive-style partitioned directories (`sales/year=2025/month=11/part-0.parquet`), as Spark's
//! `PartitioningUtils` reads and writes them: the partition columns' values live only in the
//! directory names, escaped like Hive's `FileUtils.escapePathName`, with
//! `__HIVE_DEFAULT_PARTITION__` for null.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{EmberError, Result};
use crate::io::store::{FileStatus, FileStore};

/// The directory name of a null partition value (Hive's, which Spark uses).
pub const DEFAULT_PARTITION_NAME: &str = "__HIVE_DEFAULT_PARTITION__";

/// The partition columns of one file: `(column, value)` in directory order; `None` is null.
pub type PartitionValues = Arc<Vec<(String, Option<String>)>>;

/// A file of a dataset with the partition values of its directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetFile {
    /// The file and its size.
    pub status: FileStatus,
    /// Its partition values (empty outside a partitioned directory).
    pub partition: PartitionValues,
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.')
}

/// `column=value` of a directory name, the value unescaped.
fn parse_dir_name(name: &str) -> Option<(String, Option<String>)> {
    let (col, value) = name.split_once('=')?;
    if col.is_empty() {
        return None;
    }
    let value = if value == DEFAULT_PARTITION_NAME {
        None
    } else {
        Some(unescape_path_name(value))
    };
    Some((unescape_path_name(col), value))
}

/// The files a dataset path names. A directory is walked into its `column=value`
/// subdirectories (other subdirectories and hidden names are skipped, as Spark does), and every
/// file gets the values of the directories above it; all files must have the same partition
/// columns in the same order (Spark's "Conflicting directory structures detected"). A file or a
/// glob gives its files without partition values.
pub fn list_dataset(store: &dyn FileStore, path: &str) -> Result<Vec<DatasetFile>> {
    let local = path.strip_prefix("file://").unwrap_or(path);
    let root = Path::new(local);
    if !store.is_dir(root) {
        return Ok(store
            .list(path)?
            .into_iter()
            .map(|status| DatasetFile {
                status,
                partition: Arc::new(Vec::new()),
            })
            .collect());
    }
    let mut out = Vec::new();
    walk(store, root, &mut Vec::new(), &mut out)?;
    out.sort_by(|a, b| a.status.path.cmp(&b.status.path));
    if let Some(first) = out.first() {
        let columns: Vec<&str> = first.partition.iter().map(|(c, _)| c.as_str()).collect();
        for f in &out {
            let these: Vec<&str> = f.partition.iter().map(|(c, _)| c.as_str()).collect();
            if these != columns {
                return Err(EmberError::BadInput {
                    path: path.to_string(),
                    position: format!("{}", f.status.path.display()),
                    message: format!(
                        "Conflicting directory structures detected: partition columns {columns:?} \
                         and {these:?}"
                    ),
                });
            }
        }
    }
    Ok(out)
}

fn walk(
    store: &dyn FileStore,
    dir: &Path,
    values: &mut Vec<(String, Option<String>)>,
    out: &mut Vec<DatasetFile>,
) -> Result<()> {
    let shared: PartitionValues = Arc::new(values.clone());
    for (path, is_dir, len) in store.list_dir(dir)? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if is_hidden(name) {
            continue;
        }
        if is_dir {
            if let Some(kv) = parse_dir_name(name) {
                values.push(kv);
                walk(store, &path, values, out)?;
                values.pop();
            }
            continue;
        }
        out.push(DatasetFile {
            status: FileStatus { path, len },
            partition: shared.clone(),
        });
    }
    Ok(())
}

/// Hive's `escapePathName`: characters that are unsafe in a path become `%XX`.
pub fn escape_path_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let escape = c.is_control()
            || matches!(
                c,
                '"' | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '\x7F'
                    | '{'
                    | '['
                    | ']'
                    | '^'
            );
        if escape {
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Hive's `unescapePathName`: `%XX` back to the byte it stands for.
pub fn unescape_path_name(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The relative directory of one partition (`year=2025/month=11`).
pub fn partition_dir(values: &[(String, Option<String>)]) -> PathBuf {
    let mut p = PathBuf::new();
    for (col, v) in values {
        let v = v
            .as_deref()
            .map_or_else(|| DEFAULT_PARTITION_NAME.to_string(), escape_path_name);
        p.push(format!("{}={v}", escape_path_name(col)));
    }
    p
}

/// The partition values of a record for the writers' `partition_by`: the named fields of its
/// JSON form, removed from it. Strings are written as they are, other values as JSON text,
/// null (or a missing field) as [`DEFAULT_PARTITION_NAME`].
pub fn take_partition_values(
    record: &mut serde_json::Map<String, serde_json::Value>,
    columns: &[String],
) -> Vec<(String, Option<String>)> {
    columns
        .iter()
        .map(|c| {
            let v = match record.remove(c) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s),
                Some(other) => Some(other.to_string()),
            };
            (c.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::store::LocalStore;

    #[test]
    fn escaping_round_trips() {
        for s in ["plain", "a/b", "x=y", "100%", "sp ace", "é", "a:b?c"] {
            assert_eq!(unescape_path_name(&escape_path_name(s)), s);
        }
        assert_eq!(escape_path_name("a/b"), "a%2Fb");
        assert_eq!(unescape_path_name("%zz"), "%zz");
    }

    #[test]
    fn walks_partition_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for d in [
            "year=2025/month=1",
            "year=2024/month=12",
            "year=2024/month=__HIVE_DEFAULT_PARTITION__",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
            std::fs::write(root.join(d).join("part-0.csv"), "x\n").unwrap();
        }
        std::fs::write(root.join("_SUCCESS"), "").unwrap();
        std::fs::create_dir_all(root.join("not-a-partition")).unwrap();
        std::fs::write(root.join("not-a-partition/f"), "x").unwrap();
        let files = list_dataset(&LocalStore, root.to_str().unwrap()).unwrap();
        let got: Vec<_> = files.iter().map(|f| f.partition.as_ref().clone()).collect();
        let kv = |y: &str, m: Option<&str>| {
            vec![
                ("year".to_string(), Some(y.to_string())),
                ("month".to_string(), m.map(str::to_string)),
            ]
        };
        assert_eq!(
            got,
            [
                kv("2024", Some("12")),
                kv("2024", None),
                kv("2025", Some("1"))
            ]
        );
    }

    #[test]
    fn conflicting_structures_are_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a=1")).unwrap();
        std::fs::write(tmp.path().join("a=1/f"), "x").unwrap();
        std::fs::write(tmp.path().join("g"), "x").unwrap();
        let err = list_dataset(&LocalStore, tmp.path().to_str().unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("Conflicting directory structures"),
            "{err}"
        );
    }
}
