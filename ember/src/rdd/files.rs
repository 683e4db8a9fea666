//! Typed file sources and sinks: `Context::csv_file`, `json_lines`, `parquet_file` (RDDs of the
//! job's serde types, read by splits of a dataset's files) and the writers `save_as_csv`,
//! `save_as_json_lines`, `save_as_parquet`, `save_as_text_file_compressed`, all through the
//! output committer. The formats themselves are in `crate::io`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Dependency, Rdd, RddMeta};
use crate::context::Context;
use crate::data::Data;
use crate::error::{EmberError, Result};
use crate::func::Captures;
use crate::io::cloud::HadoopConf;
use crate::io::output_committer::{new_job_token, part_name, TextOutputCommitter};
use crate::io::partitioning::{list_dataset, partition_dir, take_partition_values};
use crate::io::record::{plan_splits, DataSplit, RecordFormat, Records};
use crate::io::store::{is_missing_file, store_with};
use crate::task::{TaskContext, TaskMetrics};

pub use crate::io::column_types::{
    ColumnValueError, Date, Decimal, Micros, Millis, Nanos, Seconds, TimeUnit, Timestamp,
    TimestampNtz,
};
pub use crate::io::compression::Compression;
pub use crate::io::csv::{CsvFormat, CsvOptions};
pub use crate::io::json_lines::{JsonLinesFormat, JsonOptions};
#[cfg(feature = "parquet")]
pub use crate::io::parquet::{ParquetFormat, ParquetOptions};
pub use crate::io::record::ParseMode;
pub use crate::io::text_input::Utf8Decoding;

/// What a read does with files that vanish or cannot be read (Spark's
/// `ember.files.ignoreMissingFiles` / `ember.files.ignoreCorruptFiles`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IgnoreFiles {
    pub(crate) missing: bool,
    pub(crate) corrupt: bool,
}

impl IgnoreFiles {
    pub(crate) fn from_conf(ctx: &Context) -> Result<Self> {
        let conf = ctx.conf();
        Ok(IgnoreFiles {
            missing: conf.get_bool(crate::conf::FILES_IGNORE_MISSING_FILES)?,
            corrupt: conf.get_bool(crate::conf::FILES_IGNORE_CORRUPT_FILES)?,
        })
    }

    /// Whether reading `path` may stop at `e` with a warning instead of failing the task.
    pub(crate) fn skips(&self, path: &Path, e: &EmberError) -> bool {
        if is_missing_file(e) {
            if self.missing {
                tracing::warn!(path = %path.display(), "Skipped missing file: {e}");
                return true;
            }
            return false;
        }
        let corrupt = matches!(e, EmberError::Io { .. } | EmberError::CorruptFile { .. });
        if corrupt && self.corrupt {
            tracing::warn!(
                path = %path.display(),
                "Skipped the rest of the content in the corrupted file: {e}"
            );
            return true;
        }
        false
    }
}

/// The records of a dataset's files in a format `F` (Spark's `FileScanRDD` over one format):
/// one partition per split, planned from the files' sizes on the driver without reading them.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct FileSourceRdd<F: RecordFormat> {
    meta: RddMeta,
    splits: Arc<Vec<DataSplit>>,
    format: F,
    ignore: IgnoreFiles,
}

impl<F: RecordFormat> Clone for FileSourceRdd<F> {
    fn clone(&self) -> Self {
        FileSourceRdd {
            meta: self.meta.clone(),
            splits: self.splits.clone(),
            format: self.format.clone(),
            ignore: self.ignore,
        }
    }
}

impl<F: RecordFormat> FileSourceRdd<F> {
    fn new(
        ctx: &Context,
        name: &'static str,
        path: &str,
        min_partitions: Option<usize>,
        format: F,
    ) -> Result<Self> {
        let ignore = IgnoreFiles::from_conf(ctx)?;
        let store = store_with(path, &HadoopConf::from_pairs(ctx.conf().iter()))?;
        let files = list_dataset(store.as_ref(), path)?;
        let n = min_partitions.unwrap_or(ctx.default_parallelism().min(2));
        let splits = plan_splits(&files, n.max(1), &format);
        Ok(FileSourceRdd {
            meta: RddMeta::new(&ctx.weak_handle(), name),
            splits: Arc::new(splits),
            format,
            ignore,
        })
    }

    /// The splits, in partition order.
    #[cfg(feature = "testing")]
    pub fn splits(&self) -> &[DataSplit] {
        &self.splits
    }
}

/// Iterator over the records of one split: counts input metrics, honours kills, and fails the
/// task on an error unless `ember.files.ignore*` says to skip.
pub struct FileSourceIter<T> {
    records: Option<Records<T>>,
    split: Option<DataSplit>,
    ignore: IgnoreFiles,
    ctx: Arc<TaskContext>,
    count: u64,
}

impl<T> FileSourceIter<T> {
    fn finish(&mut self) {
        if self.records.take().is_some() || self.split.is_some() {
            TaskMetrics::add(&self.ctx.metrics.input_records_read, self.count);
            if let Some(s) = self.split.take() {
                TaskMetrics::add(&self.ctx.metrics.input_bytes_read, s.length);
            }
        }
    }
}

impl<T> Iterator for FileSourceIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        let records = self.records.as_mut()?;
        match records.next() {
            Some(Ok(t)) => {
                self.count += 1;
                if self.count & 1023 == 0 {
                    self.ctx.check_interrupted();
                }
                Some(t)
            }
            Some(Err(e)) => {
                let path = self
                    .split
                    .as_ref()
                    .map(|s| s.path.clone())
                    .unwrap_or_default();
                self.finish();
                if self.ignore.skips(&path, &e) {
                    None
                } else {
                    e.raise()
                }
            }
            None => {
                self.finish();
                None
            }
        }
    }
}

impl<T> Drop for FileSourceIter<T> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl<F: RecordFormat> Rdd for FileSourceRdd<F> {
    type Item = F::Item;
    type Iter = FileSourceIter<F::Item>;
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.splits.len()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        let split = self.splits.get(p).cloned();
        let records = match &split {
            None => None,
            Some(s) => match self.format.open(s) {
                Ok(r) => Some(r),
                Err(e) if self.ignore.skips(&s.path, &e) => None,
                Err(e) => e.raise(),
            },
        };
        FileSourceIter {
            records,
            split,
            ignore: self.ignore,
            ctx: ctx.clone(),
            count: 0,
        }
    }
}

/// The typed file sources of an application.
impl Context {
    /// The records of CSV files (a file, a directory, a glob, or a Hive-partitioned directory
    /// whose partition columns are merged into `T` by name) as an RDD of `T`, split by byte
    /// range like `text_file` (see [`CsvOptions`] for the options and what each parse mode
    /// does with a malformed record).
    pub fn csv_file<T: Data + DeserializeOwned>(
        &self,
        path: &str,
        options: CsvOptions,
    ) -> Result<FileSourceRdd<CsvFormat<T>>> {
        let n = options.min_partitions;
        FileSourceRdd::new(self, "CsvFileRdd", path, n, CsvFormat::new(options))
    }

    /// The records of JSON-lines files (one object per line; paths as
    /// [`csv_file`](Self::csv_file)) as an RDD of `T`, split by byte range like `text_file`.
    pub fn json_lines<T: Data + DeserializeOwned>(
        &self,
        path: &str,
        options: JsonOptions,
    ) -> Result<FileSourceRdd<JsonLinesFormat<T>>> {
        let n = options.min_partitions;
        FileSourceRdd::new(self, "JsonLinesRdd", path, n, JsonLinesFormat::new(options))
    }

    /// The rows of Parquet files (paths as [`csv_file`](Self::csv_file)) as an RDD of `T`,
    /// reading only the columns `T` names. Files are cut into byte ranges like `text_file`, and
    /// a split reads the row groups whose middle byte falls in it (Spark's rule), so a file of
    /// several row groups is read by several tasks.
    #[cfg(feature = "parquet")]
    pub fn parquet_file<T: Data + DeserializeOwned + Serialize>(
        &self,
        path: &str,
        options: ParquetOptions,
    ) -> Result<FileSourceRdd<ParquetFormat<T>>> {
        let n = options.min_partitions;
        FileSourceRdd::new(
            self,
            "ParquetFileRdd",
            path,
            n,
            ParquetFormat::new(options)?,
        )
    }
}

/// How one task writes its records: into files of its attempt directory (`dir`), named after
/// its partition; returns records and bytes written.
pub(crate) trait PartWriter<T>: Data {
    fn write_part(
        &self,
        dir: &Path,
        partition: usize,
        records: &mut dyn Iterator<Item = T>,
    ) -> Result<(u64, u64)>;
}

type FileEncoder = crate::io::compression::Encoder<std::io::BufWriter<std::fs::File>>;

/// Creates `dir/rel/name` (creating `rel`'s directories one level at a time inside `dir`) and a
/// compressing writer on it.
fn create_part(
    dir: &Path,
    rel: &Path,
    name: &str,
    codec: Compression,
) -> Result<(std::path::PathBuf, FileEncoder)> {
    let mut at = dir.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match std::fs::create_dir(&at) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(EmberError::io(&at, e)),
        }
    }
    let path = at.join(name);
    let file = std::fs::File::create(&path).map_err(|e| EmberError::io(&path, e))?;
    crate::metrics::count_file_op(true);
    let enc = codec
        .encoder(std::io::BufWriter::with_capacity(256 << 10, file))
        .map_err(|e| EmberError::io(&path, e))?;
    Ok((path, enc))
}

fn finish_part(path: &Path, enc: FileEncoder) -> Result<u64> {
    let w = enc.finish().map_err(|e| EmberError::io(path, e))?;
    let file = w
        .into_inner()
        .map_err(|e| EmberError::io(path, e.into_error()))?;
    Ok(file.metadata().map(|m| m.len()).unwrap_or(0))
}

/// Whether a task that wrote no record writes an empty file: as Spark's `FileFormatWriter`,
/// only partition 0 of an unpartitioned write does (so that a job with no rows at all still
/// leaves one file, which for Parquet holds the schema); other empty partitions write nothing.
/// A reader then never meets an empty JSON-lines or CSV file among non-empty ones (pyarrow's
/// JSON reader refuses one). The RDD writers (`save_as_text_file`) write every partition's
/// file, as Hadoop's output format does.
fn writes_empty_file(partition: usize, wrote_nothing: bool, partition_by: &[String]) -> bool {
    wrote_nothing && partition == 0 && partition_by.is_empty()
}

/// `save_as_text_file_compressed`: lines, compressed.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct TextWriter(pub(crate) Compression);

impl<T: std::fmt::Display> PartWriter<T> for TextWriter {
    fn write_part(
        &self,
        dir: &Path,
        p: usize,
        records: &mut dyn Iterator<Item = T>,
    ) -> Result<(u64, u64)> {
        let name = format!("{}{}", part_name(p), self.0.extension());
        let (path, mut w) = create_part(dir, Path::new(""), &name, self.0)?;
        let mut n = 0;
        for r in records {
            writeln!(w, "{r}").map_err(|e| EmberError::io(&path, e))?;
            n += 1;
        }
        Ok((n, finish_part(&path, w)?))
    }
}

/// The partition directory of a record under `partition_by` (empty without it).
fn partition_of<T: Serialize>(record: &T, columns: &[String]) -> Result<std::path::PathBuf> {
    if columns.is_empty() {
        return Ok(std::path::PathBuf::new());
    }
    let value = serde_json::to_value(record)
        .map_err(|e| EmberError::Argument(format!("partition_by: {e}")))?;
    let serde_json::Value::Object(mut map) = value else {
        return Err(EmberError::Argument(
            "partition_by needs records that are structs or maps".into(),
        ));
    };
    for c in columns {
        if !map.contains_key(c) {
            return Err(EmberError::Argument(format!(
                "partition_by column {c} is not a field of the records"
            )));
        }
    }
    Ok(partition_dir(&take_partition_values(&mut map, columns)))
}

/// One open output file per partition directory of a task.
struct Outputs {
    files: std::collections::HashMap<std::path::PathBuf, (std::path::PathBuf, FileEncoder)>,
}

impl Outputs {
    fn get(
        &mut self,
        dir: &Path,
        rel: std::path::PathBuf,
        name: &str,
        codec: Compression,
    ) -> Result<&mut (std::path::PathBuf, FileEncoder)> {
        if !self.files.contains_key(&rel) {
            let opened = create_part(dir, &rel, name, codec)?;
            self.files.insert(rel.clone(), opened);
        }
        self.files
            .get_mut(&rel)
            .ok_or_else(|| EmberError::Internal("output file vanished".into()))
    }

    fn finish(self) -> Result<u64> {
        let mut bytes = 0;
        for (_, (path, enc)) in self.files {
            bytes += finish_part(&path, enc)?;
        }
        Ok(bytes)
    }
}

/// A CSV record of a serialized value, with the header's names (csv's own serialization,
/// so nested values are refused the same way).
fn csv_record<T: Serialize>(
    options: &CsvOptions,
    rec: &T,
    header: bool,
) -> Result<Vec<csv::StringRecord>> {
    let bad = |e: &dyn std::fmt::Display| EmberError::Argument(format!("cannot write as CSV: {e}"));
    let mut w = csv::WriterBuilder::new()
        .has_headers(header)
        .delimiter(options.delimiter)
        .from_writer(Vec::new());
    w.serialize(rec).map_err(|e| bad(&e))?;
    let bytes = w.into_inner().map_err(|e| bad(&e))?;
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(options.delimiter)
        .from_reader(bytes.as_slice());
    r.records().map(|x| x.map_err(|e| bad(&e))).collect()
}

/// Stands for an empty string while a record goes through the csv writer, which writes an
/// empty string and a null alike (an empty field). A Unicode noncharacter (reserved for such
/// internal use), so never quoted and, in practice, never in the data (a record holding it
/// writes its empty strings as empty fields).
const EMPTY_MARK: &str = "\u{FDD0}";

/// Which fields of a CSV record are empty strings rather than nulls: Spark writes the first as
/// a quoted empty field `""` (`emptyValue`) and the second as an empty one (`nullValue`), so
/// that a reader that tells them apart (pyarrow, DuckDB, Spark with `nullValue` set) gets back
/// what was written. Only records with an empty field pay for the look at the value.
fn empty_strings<T: Serialize>(
    record: &T,
    header: Option<&csv::StringRecord>,
    row: &csv::StringRecord,
) -> Vec<bool> {
    let none = || vec![false; row.len()];
    if !row.iter().any(str::is_empty) || row.iter().any(|f| f.contains(EMPTY_MARK)) {
        return none();
    }
    let Ok(value) = serde_json::to_value(record) else {
        return none();
    };
    let is_empty_string = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()) == Some("");
    (0..row.len())
        .map(|i| {
            row[i].is_empty()
                && match &value {
                    serde_json::Value::Object(m) => {
                        is_empty_string(header.and_then(|h| h.get(i)).and_then(|n| m.get(n)))
                    }
                    serde_json::Value::Array(a) => is_empty_string(a.get(i)),
                    v => is_empty_string(Some(v)),
                }
        })
        .collect()
}

/// `save_as_csv`.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct CsvWriter(pub(crate) CsvOptions);

impl<T: Serialize> PartWriter<T> for CsvWriter {
    fn write_part(
        &self,
        dir: &Path,
        p: usize,
        records: &mut dyn Iterator<Item = T>,
    ) -> Result<(u64, u64)> {
        let o = &self.0;
        let name = format!("{}.csv{}", part_name(p), o.compression.extension());
        let mut outputs = Outputs {
            files: Default::default(),
        };
        let mut header: Option<csv::StringRecord> = None;
        let mut keep: Vec<usize> = Vec::new();
        let mut n = 0;
        for r in records {
            let rel = partition_of(&r, &o.partition_by)?;
            let recs = csv_record(o, &r, header.is_none())?;
            let (names, row) = match (header.is_none(), recs.as_slice()) {
                (true, [h, row]) => (Some(h.clone()), row.clone()),
                (false, [row]) => (None, row.clone()),
                _ => {
                    return Err(EmberError::Argument(
                        "cannot write as CSV: not one record".into(),
                    ))
                }
            };
            if let Some(h) = names {
                keep = (0..h.len())
                    .filter(|&i| !o.partition_by.iter().any(|c| c == &h[i]))
                    .collect();
                header = Some(h);
            }
            let new_file = !outputs.files.contains_key(&rel);
            let (path, w) = outputs.get(dir, rel, &name, o.compression)?;
            let mut line = Vec::new();
            let empty;
            {
                let mut cw = o.writer(&mut line);
                if new_file && o.header {
                    if let Some(h) = &header {
                        let hs: Vec<&str> = keep.iter().map(|&i| &h[i]).collect();
                        cw.write_record(&hs)
                            .map_err(|e| EmberError::Argument(e.to_string()))?;
                    }
                }
                empty = empty_strings(&r, header.as_ref(), &row);
                let fields: Vec<&str> = keep
                    .iter()
                    .filter_map(|&i| row.get(i).map(|f| if empty[i] { EMPTY_MARK } else { f }))
                    .collect();
                cw.write_record(&fields)
                    .map_err(|e| EmberError::Argument(e.to_string()))?;
                cw.flush().map_err(|e| EmberError::io(&*path, e))?;
            }
            if empty.iter().any(|&e| e) {
                let quoted = String::from_utf8_lossy(&line)
                    .replace(EMPTY_MARK, &format!("{q}{q}", q = o.quote as char));
                line = quoted.into_bytes();
            }
            w.write_all(&line).map_err(|e| EmberError::io(&*path, e))?;
            n += 1;
        }
        if writes_empty_file(p, outputs.files.is_empty(), &o.partition_by) {
            outputs.get(dir, std::path::PathBuf::new(), &name, o.compression)?;
        }
        Ok((n, outputs.finish()?))
    }
}

/// `save_as_json_lines`.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct JsonWriter(pub(crate) JsonOptions);

impl<T: Serialize> PartWriter<T> for JsonWriter {
    fn write_part(
        &self,
        dir: &Path,
        p: usize,
        records: &mut dyn Iterator<Item = T>,
    ) -> Result<(u64, u64)> {
        let o = &self.0;
        let name = format!("{}.json{}", part_name(p), o.compression.extension());
        let mut outputs = Outputs {
            files: Default::default(),
        };
        let mut n = 0;
        for r in records {
            let (rel, line) = if o.partition_by.is_empty() {
                (std::path::PathBuf::new(), serde_json::to_vec(&r))
            } else {
                let value = serde_json::to_value(&r)
                    .map_err(|e| EmberError::Argument(format!("cannot write as JSON: {e}")))?;
                let serde_json::Value::Object(mut map) = value else {
                    return Err(EmberError::Argument(
                        "partition_by needs struct records".into(),
                    ));
                };
                let rel = partition_dir(&take_partition_values(&mut map, &o.partition_by));
                (rel, serde_json::to_vec(&map))
            };
            let line =
                line.map_err(|e| EmberError::Argument(format!("cannot write as JSON: {e}")))?;
            let (path, w) = outputs.get(dir, rel, &name, o.compression)?;
            w.write_all(&line)
                .and_then(|()| w.write_all(b"\n"))
                .map_err(|e| EmberError::io(&*path, e))?;
            n += 1;
        }
        if writes_empty_file(p, outputs.files.is_empty(), &o.partition_by) {
            outputs.get(dir, std::path::PathBuf::new(), &name, o.compression)?;
        }
        Ok((n, outputs.finish()?))
    }
}

/// `save_as_parquet`: one file per partition directory (a task's rows are gathered first:
/// a Parquet file is written whole).
#[cfg(feature = "parquet")]
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ParquetWriter(pub(crate) ParquetOptions);

#[cfg(feature = "parquet")]
impl<T: Data> PartWriter<T> for ParquetWriter {
    fn write_part(
        &self,
        dir: &Path,
        p: usize,
        records: &mut dyn Iterator<Item = T>,
    ) -> Result<(u64, u64)> {
        let cols = &self.0.partition_by;
        let name = format!("{}.parquet", part_name(p));
        let mut groups: Vec<(std::path::PathBuf, Vec<T>)> = Vec::new();
        for r in records {
            let rel = partition_of(&r, cols)?;
            match groups.iter_mut().find(|(d, _)| *d == rel) {
                Some((_, v)) => v.push(r),
                None => groups.push((rel, vec![r])),
            }
        }
        if writes_empty_file(p, groups.is_empty(), cols) {
            groups.push((std::path::PathBuf::new(), Vec::new()));
        }
        let (mut rows, mut bytes) = (0, 0);
        for (rel, recs) in groups {
            let (path, enc) = create_part(dir, &rel, &name, Compression::None)?;
            drop(enc);
            let (r, b) = crate::io::parquet::write_file(&path, &recs, cols)?;
            rows += r;
            bytes += b;
        }
        Ok((rows, bytes))
    }
}

/// Runs a job writing every partition of `rdd` through the output committer: the output path
/// is checked before any task runs (Spark's `checkOutputSpecs`), a failed job leaves nothing.
pub(crate) fn save_with<R, W>(rdd: &R, path: &str, writer: W) -> Result<()>
where
    R: Rdd,
    W: PartWriter<R::Item>,
{
    if crate::io::cloud::is_object_store(path) {
        return save_to_object_store(rdd, path, writer);
    }
    let dir = std::path::PathBuf::from(path);
    let token = new_job_token();
    let committer = TextOutputCommitter::setup_job(&dir, &token)?;
    let job = rdd.context()?.run_job_inner(
        rdd,
        (path.to_string(), token, writer),
        |(path, token, writer): &(String, String, W), ctx, it| {
            let committer = TextOutputCommitter::for_task(Path::new(path), token);
            let mut it = it;
            let written = committer
                .write_task_files(ctx.partition_id, ctx.task_attempt_id, |dir| {
                    writer.write_part(dir, ctx.partition_id, &mut it)
                })
                .and_then(|(records, bytes)| {
                    TaskMetrics::add(&ctx.metrics.output_records_written, records);
                    TaskMetrics::add(&ctx.metrics.output_bytes_written, bytes);
                    committer.commit_task_files(ctx.partition_id, ctx.task_attempt_id)
                });
            if let Err(e) = written {
                committer.abort_task(ctx.partition_id, ctx.task_attempt_id);
                e.raise();
            }
        },
        None,
        Captures::default(),
    );
    match job {
        Ok(_) => committer.commit_job(),
        Err(e) => {
            committer.abort_job();
            Err(e)
        }
    }
}

/// [`save_with`] for an object store: the same writers write each task's files on the
/// executor's local disk, then the object-store committer uploads them (see
/// `crate::io::cloud_committer`). The tasks' results are their attempt ids: job commit completes
/// exactly the uploads of the attempts the scheduler kept.
fn save_to_object_store<R, W>(rdd: &R, path: &str, writer: W) -> Result<()>
where
    R: Rdd,
    W: PartWriter<R::Item>,
{
    use crate::io::cloud::bucket_for;
    use crate::io::cloud_committer::CloudCommitter;
    let context = rdd.context()?;
    let path = path.trim_end_matches('/');
    let token = new_job_token();
    let bucket = bucket_for(path, &HadoopConf::from_pairs(context.conf().iter()))?;
    let committer = CloudCommitter::new(bucket, path, &token)?;
    committer.setup_job()?;
    let job = context.run_job_inner(
        rdd,
        (path.to_string(), token, writer),
        |(path, token, writer): &(String, String, W), ctx, it| {
            let attempt = ctx.task_attempt_id;
            let staging = ctx
                .services()
                .local_dir()
                .join(format!("output-{token}-{attempt}"));
            let mut it = it;
            let written = (|| {
                let conf = ctx.services().hadoop_conf();
                let committer = CloudCommitter::new(bucket_for(path, conf)?, path, token)?;
                std::fs::create_dir_all(&staging).map_err(|e| EmberError::io(&staging, e))?;
                let (records, bytes) = writer.write_part(&staging, ctx.partition_id, &mut it)?;
                TaskMetrics::add(&ctx.metrics.output_records_written, records);
                TaskMetrics::add(&ctx.metrics.output_bytes_written, bytes);
                committer.commit_task(ctx.partition_id, attempt, &staging)
            })();
            if let Err(e) = std::fs::remove_dir_all(&staging) {
                tracing::debug!(dir = %staging.display(), error = %e, "staging not removed");
            }
            if let Err(e) = written {
                e.raise();
            }
            attempt
        },
        None,
        Captures::default(),
    );
    let committed = job.and_then(|winners| committer.commit_job(&winners));
    if committed.is_err() {
        committer.abort_job();
    }
    committed.map(|_| ())
}
