//! Parquet files read into and written from the job's serde types, with arrow-rs's `parquet`
//! (sync reader and writer) and `serde_arrow` (record batches to structs and back).
//!
//! A read projects the file's top-level columns that `T` names; a split (a byte range, planned
//! like text) reads the row groups whose middle byte lies in it, as Spark's
//! `ParquetFileFormat` does, so row groups are spread over tasks without the driver reading any
//! footer. Column types follow the footer's Arrow schema (`LargeUtf8`, dictionaries, lists,
//! structs); dates, timestamps and decimals read into the typed values of
//! [`column_types`](crate::io::column_types), which write back as the same column types, or into
//! `String` as their text (a zone-aware timestamp as its UTC instant with `Z`); a timestamp
//! reads into `i64` as the raw count of its unit.

use std::fs::File;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, FieldRef, Schema, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression as ParquetCompression;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{ChunkReader, Length};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_arrow::schema::{SchemaLike, TracingOptions};

use crate::data::Data;
use crate::error::{EmberError, Result};
use crate::io::column_types;
use crate::io::record::{DataSplit, RecordFormat, Records};

/// Rows per record batch read (arrow-rs's default).
const BATCH_SIZE: usize = 8192;

/// Options of [`parquet_file`](crate::context::Context::parquet_file) and `save_as_parquet`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParquetOptions {
    /// Minimum number of partitions of a read (default: as `text_file`).
    pub min_partitions: Option<usize>,
    /// The columns to read (plus partition columns); empty: the fields `T`'s `Deserialize`
    /// names, or every column when its fields cannot be traced (a map type such as
    /// `serde_json::Map<String, serde_json::Value>`, the generic row).
    pub columns: Vec<String>,
    /// Columns whose values name the output's `column=value` directories instead of being
    /// written into the files (Spark's `partitionBy`).
    pub partition_by: Vec<String>,
}

/// The Parquet format of a typed read (an RDD of `T`).
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ParquetFormat<T> {
    columns: Vec<String>,
    #[serde(skip)]
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for ParquetFormat<T> {
    fn clone(&self) -> Self {
        ParquetFormat {
            columns: self.columns.clone(),
            _t: PhantomData,
        }
    }
}

/// `T`'s columns and their types, traced from its `Deserialize`, with the column types of
/// [`Date`](crate::io::column_types::Date), timestamps and decimals resolved.
fn traced_fields<T: DeserializeOwned>() -> Result<Vec<FieldRef>> {
    let options = TracingOptions::default().allow_null_fields(true);
    column_types::while_tracing(|| Vec::<FieldRef>::from_type::<T>(options))
        .map(column_types::resolve_markers)
        .map_err(|e| {
            EmberError::Argument(format!(
                "the record type {} cannot be read from Parquet: {e}",
                std::any::type_name::<T>()
            ))
        })
}

impl<T: DeserializeOwned> ParquetFormat<T> {
    /// The format for `T`.
    pub fn new(options: ParquetOptions) -> Result<Self> {
        Ok(ParquetFormat {
            columns: options.columns,
            _t: PhantomData,
        })
    }
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> EmberError {
    EmberError::CorruptFile {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// A constant column of a partition value, typed as `T` wants it (integers, floats, booleans,
/// else strings; null when the value is null or does not parse).
fn partition_column(ty: &DataType, value: Option<&str>, rows: usize) -> ArrayRef {
    use arrow_array::*;
    macro_rules! parsed {
        ($arr:ty, $t:ty) => {
            Arc::new(<$arr>::from(vec![
                value.and_then(|v| v.parse::<$t>().ok());
                rows
            ]))
        };
    }
    match ty {
        DataType::Int8 => parsed!(Int8Array, i8),
        DataType::Int16 => parsed!(Int16Array, i16),
        DataType::Int32 => parsed!(Int32Array, i32),
        DataType::Int64 => parsed!(Int64Array, i64),
        DataType::UInt8 => parsed!(UInt8Array, u8),
        DataType::UInt16 => parsed!(UInt16Array, u16),
        DataType::UInt32 => parsed!(UInt32Array, u32),
        DataType::UInt64 => parsed!(UInt64Array, u64),
        DataType::Float32 => parsed!(Float32Array, f32),
        DataType::Float64 => parsed!(Float64Array, f64),
        DataType::Boolean => parsed!(BooleanArray, bool),
        DataType::LargeUtf8 => Arc::new(LargeStringArray::from(vec![value; rows])),
        _ => Arc::new(StringArray::from(vec![value; rows])),
    }
}

/// serde_arrow reads zone-aware timestamps only in UTC; the instants are the same in any zone.
fn timestamps_in_utc(col: ArrayRef) -> ArrayRef {
    use arrow_array::*;
    let DataType::Timestamp(unit, Some(tz)) = col.data_type() else {
        return col;
    };
    if tz.as_ref() == "UTC" {
        return col;
    }
    macro_rules! utc {
        ($arr:ty) => {
            match col.as_any().downcast_ref::<$arr>() {
                Some(a) => Arc::new(a.clone().with_timezone_utc()) as ArrayRef,
                None => col.clone(),
            }
        };
    }
    match unit {
        TimeUnit::Second => utc!(TimestampSecondArray),
        TimeUnit::Millisecond => utc!(TimestampMillisecondArray),
        TimeUnit::Microsecond => utc!(TimestampMicrosecondArray),
        TimeUnit::Nanosecond => utc!(TimestampNanosecondArray),
    }
}

/// A timestamp as ISO 8601 with the digits of its unit (`2025-11-03T12:34:56.123456`), and
/// `Z` when it is an instant (zone-aware): the text Spark and pyarrow show, in UTC.
fn format_timestamp(v: i64, unit: TimeUnit, utc: bool) -> String {
    use crate::io::column_types::{Micros, Millis, Nanos, Seconds, Timestamp, TimestampNtz};
    macro_rules! text {
        ($u:ty) => {
            if utc {
                Timestamp::<$u>::new(v).to_string()
            } else {
                TimestampNtz::<$u>::new(v).to_string()
            }
        };
    }
    match unit {
        TimeUnit::Second => text!(Seconds),
        TimeUnit::Millisecond => text!(Millis),
        TimeUnit::Microsecond => text!(Micros),
        TimeUnit::Nanosecond => text!(Nanos),
    }
}

/// A timestamp column as text, for a `String` field.
fn timestamps_as_text(col: &ArrayRef) -> Option<ArrayRef> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    let DataType::Timestamp(unit, tz) = col.data_type() else {
        return None;
    };
    let utc = tz.is_some();
    let values: Vec<Option<i64>> = match unit {
        TimeUnit::Second => col.as_primitive::<TimestampSecondType>().iter().collect(),
        TimeUnit::Millisecond => col
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect(),
        TimeUnit::Microsecond => col
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect(),
        TimeUnit::Nanosecond => col
            .as_primitive::<TimestampNanosecondType>()
            .iter()
            .collect(),
    };
    let text: arrow_array::StringArray = values
        .into_iter()
        .map(|v| v.map(|v| format_timestamp(v, *unit, utc)))
        .collect();
    Some(Arc::new(text))
}

impl<T: Data + DeserializeOwned> RecordFormat for ParquetFormat<T> {
    type Item = T;

    fn splittable(&self, _path: &Path) -> bool {
        true
    }

    fn open(&self, split: &DataSplit) -> Result<Records<T>> {
        let path = split.path.clone();
        // `T`'s top-level fields as traced from its `Deserialize`: which columns to read, and
        // the types partition columns take.
        let traced = traced_fields::<T>().unwrap_or_default();
        let file = ParquetSource::open(&path)?;
        crate::metrics::count_file_op(false);
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(&path, e))?;
        let (start, end) = (split.start, split.start.saturating_add(split.length));
        let row_groups: Vec<usize> = builder
            .metadata()
            .row_groups()
            .iter()
            .enumerate()
            .filter(|(_, rg)| {
                let first = rg.columns().first().map_or(0, |c| {
                    c.dictionary_page_offset()
                        .unwrap_or(c.data_page_offset())
                        .max(0) as u64
                });
                let mid = first + rg.compressed_size().max(0) as u64 / 2;
                start <= mid && mid < end
            })
            .map(|(i, _)| i)
            .collect();
        // The split holding offset 0 also answers for a file without row groups.
        if row_groups.is_empty() {
            return Ok(Box::new(std::iter::empty()));
        }
        let wanted: Vec<&str> = if !self.columns.is_empty() {
            self.columns.iter().map(String::as_str).collect()
        } else {
            traced.iter().map(|f| f.name().as_str()).collect()
        };
        let all = wanted.is_empty();
        let arrow_schema = builder.schema().clone();
        let roots: Vec<usize> = arrow_schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| all || wanted.contains(&f.name().as_str()))
            .map(|(i, _)| i)
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .with_row_groups(row_groups)
            .with_batch_size(BATCH_SIZE)
            .build()
            .map_err(|e| corrupt(&path, e))?;
        // Partition columns `T` has, with the type it gives them.
        let partition: Vec<(Field, Option<String>)> = split
            .partition
            .iter()
            .filter_map(|(c, v)| {
                let ty = match traced.iter().find(|f| f.name() == c) {
                    Some(f) => f.data_type().clone(),
                    // An untraceable (generic) row takes every partition column, as text.
                    None if traced.is_empty() => DataType::Utf8,
                    None => return None,
                };
                Some((Field::new(c, ty, true), v.clone()))
            })
            .collect();
        let mut batches = reader;
        let mut rows: std::vec::IntoIter<T> = Vec::new().into_iter();
        let mut done = false;
        let mut batch_no = 0usize;
        Ok(Box::new(std::iter::from_fn(move || loop {
            if let Some(t) = rows.next() {
                return Some(Ok(t));
            }
            if done {
                return None;
            }
            let batch = match batches.next() {
                None => return None,
                Some(Ok(b)) => b,
                Some(Err(e)) => {
                    done = true;
                    return Some(Err(corrupt(&path, format!("batch {batch_no}: {e}"))));
                }
            };
            batch_no += 1;
            let n = batch.num_rows();
            let mut fields: Vec<FieldRef> = Vec::new();
            let mut cols: Vec<ArrayRef> = Vec::new();
            for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
                let wants_text = traced.iter().any(|t| {
                    t.name() == f.name()
                        && matches!(t.data_type(), DataType::Utf8 | DataType::LargeUtf8)
                });
                let c = match wants_text.then(|| timestamps_as_text(c)).flatten() {
                    Some(text) => text,
                    None => timestamps_in_utc(c.clone()),
                };
                fields.push(Arc::new(Field::new(f.name(), c.data_type().clone(), true)));
                cols.push(c);
            }
            for (f, v) in &partition {
                cols.push(partition_column(f.data_type(), v.as_deref(), n));
                fields.push(Arc::new(f.clone()));
            }
            let merged = match RecordBatch::try_new(Arc::new(Schema::new(fields)), cols) {
                Ok(b) => b,
                Err(e) => {
                    done = true;
                    return Some(Err(corrupt(&path, e)));
                }
            };
            match serde_arrow::from_record_batch::<Vec<T>>(&merged) {
                Ok(v) => rows = v.into_iter(),
                Err(e) => {
                    done = true;
                    return Some(Err(EmberError::BadInput {
                        path: path.display().to_string(),
                        position: format!("batch {} of its row groups", batch_no - 1),
                        message: format!(
                            "rows cannot be read as {}: {e}",
                            std::any::type_name::<T>()
                        ),
                    }));
                }
            }
        })))
    }
}

/// Where a Parquet file's bytes come from: a local file, or an object read by ranged GETs (the
/// footer first, then the chunks of the wanted columns of the split's row groups), which keeps
/// arrow-rs's sync reader and avoids its async and object_store features.
enum ParquetSource {
    File(File),
    Object {
        store: crate::io::cloud::ObjectFileStore,
        url: String,
        len: u64,
    },
}

impl ParquetSource {
    fn open(path: &Path) -> Result<Self> {
        let url = path.to_string_lossy();
        if crate::io::cloud::is_object_store(&url) {
            let conf = crate::io::cloud::HadoopConf::of_current_task();
            let store = crate::io::cloud::ObjectFileStore::new(&url, &conf)?;
            // The size first: a missing object is then an I/O error of kind NotFound, which
            // `ember.files.ignoreMissingFiles` recognises, not a corrupt file.
            let len = store.size(&url)?;
            return Ok(ParquetSource::Object {
                store,
                url: url.into_owned(),
                len,
            });
        }
        Ok(ParquetSource::File(
            File::open(path).map_err(|e| EmberError::io(path, e))?,
        ))
    }
}

impl Length for ParquetSource {
    fn len(&self) -> u64 {
        match self {
            ParquetSource::File(f) => f.len(),
            ParquetSource::Object { len, .. } => *len,
        }
    }
}

impl ChunkReader for ParquetSource {
    type T = Box<dyn std::io::Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        match self {
            ParquetSource::File(f) => Ok(Box::new(f.get_read(start)?)),
            ParquetSource::Object { store, url, .. } => store
                .reader(url, start)
                .map(|r| Box::new(r) as Self::T)
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e))),
        }
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        match self {
            ParquetSource::File(f) => f.get_bytes(start, length),
            ParquetSource::Object { store, url, .. } => store
                .read_range(url, start..start.saturating_add(length as u64))
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e))),
        }
    }
}

/// Writes `records` as one Parquet file (snappy, as Spark's default `compression`) at
/// `path`; returns the rows and bytes written.
pub(crate) fn write_file<T: Serialize + DeserializeOwned>(
    path: &Path,
    records: &[T],
    drop_columns: &[String],
) -> Result<(u64, u64)> {
    let fields = match traced_fields::<T>() {
        Ok(f) => f,
        Err(e) if records.is_empty() => return Err(e),
        Err(_) => column_types::while_tracing(|| {
            let options = TracingOptions::default().allow_null_fields(true);
            Vec::<FieldRef>::from_samples(records, options)
        })
        .map(column_types::resolve_markers)
        .map_err(|e| EmberError::Argument(format!("cannot write as Parquet: {e}")))?,
    };
    let batch = serde_arrow::to_record_batch(&fields, &records)
        .map_err(|e| EmberError::Argument(format!("cannot write as Parquet: {e}")))?;
    let keep: Vec<usize> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !drop_columns.contains(f.name()))
        .map(|(i, _)| i)
        .collect();
    let batch = batch
        .project(&keep)
        .map_err(|e| EmberError::Argument(format!("cannot write as Parquet: {e}")))?;
    let file = File::create(path).map_err(|e| EmberError::io(path, e))?;
    crate::metrics::count_file_op(true);
    let props = WriterProperties::builder()
        .set_compression(ParquetCompression::SNAPPY)
        .build();
    let werr = |e: parquet::errors::ParquetError| EmberError::io(path, std::io::Error::other(e));
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(werr)?;
    w.write(&batch).map_err(werr)?;
    let file = w.into_inner().map_err(werr)?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((records.len() as u64, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Row {
        id: i64,
        name: Option<String>,
        tags: Vec<String>,
    }

    #[test]
    fn write_then_read_by_row_group_midpoints() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x.parquet");
        let rows: Vec<Row> = (0..10)
            .map(|i| Row {
                id: i,
                name: (i % 3 != 0).then(|| format!("n{i}")),
                tags: vec!["a".into(); i as usize % 2],
            })
            .collect();
        write_file(&p, &rows, &[]).unwrap();
        let len = std::fs::metadata(&p).unwrap().len();
        let format = ParquetFormat::<Row>::new(ParquetOptions::default()).unwrap();
        let read = |start: u64, length: u64| -> Vec<Row> {
            let split = DataSplit {
                path: p.clone(),
                start,
                length,
                partition: Vec::new(),
            };
            format.open(&split).unwrap().map(|r| r.unwrap()).collect()
        };
        assert_eq!(read(0, len), rows);
        // One row group: exactly one of two halves reads it.
        let (a, b) = (read(0, len / 2), read(len / 2, len - len / 2));
        assert_eq!(a.len() + b.len(), rows.len());
    }

    #[test]
    fn timestamps_format_with_their_unit() {
        assert_eq!(
            format_timestamp(1_762_173_296_123_456, TimeUnit::Microsecond, false),
            "2025-11-03T12:34:56.123456"
        );
        assert_eq!(
            format_timestamp(-1, TimeUnit::Millisecond, true),
            "1969-12-31T23:59:59.999Z"
        );
        assert_eq!(
            format_timestamp(0, TimeUnit::Second, false),
            "1970-01-01T00:00:00"
        );
        let before_1970 = format_timestamp(-2_208_988_800, TimeUnit::Second, false);
        assert_eq!(before_1970, "1900-01-01T00:00:00");
    }

    #[test]
    fn a_truncated_file_is_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("bad.parquet");
        std::fs::write(&p, b"PAR1 not really").unwrap();
        let split = DataSplit {
            path: p,
            start: 0,
            length: 15,
            partition: Vec::new(),
        };
        let err = ParquetFormat::<Row>::new(ParquetOptions::default())
            .unwrap()
            .open(&split)
            .err()
            .unwrap();
        assert!(matches!(err, EmberError::CorruptFile { .. }), "{err}");
    }
}
