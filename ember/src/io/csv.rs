//! CSV files (Spark's `csv` source) read into and written from the job's serde types.
//!
//! As Spark without `multiLine`, a record is a line: splits are byte ranges cut like text, a
//! record belongs to the split where its line starts, and a quoted field cannot hold a line
//! break (the line ends the record, as in Spark). With `multi_line` a file is one split read
//! as RFC 4180, quoted line breaks included. Fields are matched to the type's fields by the
//! header's names (with `header`) or by position.
//!
//! Differences from Spark, on purpose: a doubled quote inside a quoted field is an escaped
//! quote (RFC 4180, what DuckDB, Polars and pandas write) as well as `\"`, so their files read
//! exactly; Spark's default only knows `\"`. An empty field is `None` for an `Option` field and
//! the empty string for a `String` one (Spark has only null).

use std::io::{Read, Write};
use std::marker::PhantomData;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::data::Data;
use crate::error::{EmberError, Result};
use crate::io::compression::Compression;
use crate::io::record::{DataSplit, ParseMode, RecordFormat, Records, CORRUPT_RECORD_COLUMN};
use crate::io::text_input::{FileSplit, LineReader, Utf8Decoding};

/// Options of [`csv_file`](crate::context::Context::csv_file) and `save_as_csv`, with Spark's
/// names and defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvOptions {
    /// The first line of each file names the columns (Spark's `header`, default false); the
    /// writer writes it.
    pub header: bool,
    /// Field separator (`sep`/`delimiter`, default `,`).
    pub delimiter: u8,
    /// Quote character (`quote`, default `"`).
    pub quote: u8,
    /// Escape character inside quoted fields (`escape`, default `\`).
    pub escape: Option<u8>,
    /// What to do with malformed records (`mode`, default PERMISSIVE).
    pub mode: ParseMode,
    /// Records may span lines inside quotes; each file is then one partition (`multiLine`,
    /// default false).
    pub multi_line: bool,
    /// The field that receives a malformed record's line in PERMISSIVE mode
    /// (`columnNameOfCorruptRecord`, default `_corrupt_record`; needs `header`).
    pub column_name_of_corrupt_record: String,
    /// Compression of written files (`compression`, default none); readers go by extension.
    pub compression: Compression,
    /// Minimum number of partitions of a read (default: as `text_file`).
    pub min_partitions: Option<usize>,
    /// Columns whose values name the output's `column=value` directories instead of being
    /// written into the files (Spark's `partitionBy`).
    pub partition_by: Vec<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            header: false,
            delimiter: b',',
            quote: b'"',
            escape: Some(b'\\'),
            mode: ParseMode::Permissive,
            multi_line: false,
            column_name_of_corrupt_record: CORRUPT_RECORD_COLUMN.to_string(),
            compression: Compression::None,
            min_partitions: None,
            partition_by: Vec::new(),
        }
    }
}

impl CsvOptions {
    /// The defaults with `header` set.
    pub fn with_header() -> Self {
        CsvOptions {
            header: true,
            ..CsvOptions::default()
        }
    }

    fn reader_builder(&self) -> csv::ReaderBuilder {
        let mut b = csv::ReaderBuilder::new();
        b.has_headers(false)
            .delimiter(self.delimiter)
            .quote(self.quote)
            .escape(self.escape)
            .double_quote(true)
            .flexible(true);
        b
    }

    /// A writer of records with these options (RFC 4180 quoting, as Spark's writer with
    /// `escapeQuotes`).
    pub(crate) fn writer<W: Write>(&self, w: W) -> csv::Writer<W> {
        csv::WriterBuilder::new()
            .has_headers(self.header)
            .delimiter(self.delimiter)
            .quote(self.quote)
            .from_writer(w)
    }
}

/// The CSV format of a typed read (an RDD of `T`).
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct CsvFormat<T> {
    options: CsvOptions,
    #[serde(skip)]
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for CsvFormat<T> {
    fn clone(&self) -> Self {
        CsvFormat {
            options: self.options.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> CsvFormat<T> {
    /// The format with these options.
    pub fn new(options: CsvOptions) -> Self {
        CsvFormat {
            options,
            _t: PhantomData,
        }
    }
}

fn malformed(path: &Path, offset: u64, message: String) -> EmberError {
    EmberError::BadInput {
        path: path.display().to_string(),
        position: format!("record at byte offset {offset}"),
        message,
    }
}

/// Turns parsed records into `T` by the mode's rules.
struct Typer<T> {
    options: CsvOptions,
    /// Column names with the partition columns and the corrupt-record column after them
    /// (`None` without a header: by position).
    header: Option<csv::StringRecord>,
    /// Fields the file's records should have (the header's length), when known.
    width: Option<usize>,
    partition: Vec<Option<String>>,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Typer<T> {
    fn new(
        options: &CsvOptions,
        file_header: Option<csv::StringRecord>,
        split: &DataSplit,
    ) -> Self {
        let width = file_header.as_ref().map(|h| h.len());
        let header = file_header.map(|mut h| {
            for (c, _) in &split.partition {
                h.push_field(c);
            }
            h.push_field(&options.column_name_of_corrupt_record);
            h
        });
        Typer {
            options: options.clone(),
            header,
            width,
            partition: split.partition.iter().map(|(_, v)| v.clone()).collect(),
            _t: PhantomData,
        }
    }

    /// The record as `T`; `Ok(None)` when the mode drops it.
    fn record(
        &self,
        mut rec: csv::StringRecord,
        raw: &str,
        path: &Path,
        offset: u64,
    ) -> Result<Option<T>> {
        let wrong_width = self.width.is_some_and(|w| w != rec.len());
        if !wrong_width {
            let attempt = self.finish(rec.clone(), "");
            match attempt {
                Ok(t) => return Ok(Some(t)),
                Err(e) => return self.bad(rec, raw, path, offset, e.to_string()),
            }
        }
        let reason = format!(
            "[MALFORMED_CSV_RECORD] Malformed CSV record: {raw} ({} fields, {} expected)",
            rec.len(),
            self.width.unwrap_or(0)
        );
        if self.options.mode == ParseMode::Permissive {
            rec.truncate(self.width.unwrap_or(rec.len()));
        }
        self.bad(rec, raw, path, offset, reason)
    }

    fn bad(
        &self,
        mut rec: csv::StringRecord,
        raw: &str,
        path: &Path,
        offset: u64,
        reason: String,
    ) -> Result<Option<T>> {
        match self.options.mode {
            ParseMode::DropMalformed => Ok(None),
            ParseMode::FailFast => Err(malformed(
                path,
                offset,
                format!("{reason}. Parse Mode: FAILFAST"),
            )),
            ParseMode::Permissive => {
                // Spark nulls what is missing or does not parse; here each field the
                // deserializer names as bad is emptied (an `Option` field becomes `None`) until
                // the record reads.
                if let Some(w) = self.width {
                    while rec.len() < w {
                        rec.push_field("");
                    }
                }
                for _ in 0..=rec.len() {
                    match self.finish(rec.clone(), raw) {
                        Ok(t) => return Ok(Some(t)),
                        Err(e) => {
                            let field = e
                                .position()
                                .and(None)
                                .or_else(|| match e.kind() {
                                    csv::ErrorKind::Deserialize { err, .. } => err.field(),
                                    _ => None,
                                })
                                .map(|f| f as usize);
                            match field {
                                Some(i) if i < rec.len() && !rec[i].is_empty() => {
                                    let mut fixed = csv::StringRecord::new();
                                    for (j, f) in rec.iter().enumerate() {
                                        fixed.push_field(if j == i { "" } else { f });
                                    }
                                    rec = fixed;
                                }
                                _ => {
                                    return Err(malformed(
                                        path,
                                        offset,
                                        format!(
                                            "{reason}; in PERMISSIVE mode it cannot be read as \
                                             the record type either ({e}): make the field an \
                                             Option or use DROPMALFORMED"
                                        ),
                                    ))
                                }
                            }
                        }
                    }
                }
                Err(malformed(path, offset, reason))
            }
        }
    }

    /// Deserializes `rec` with the partition values and the corrupt-record text appended.
    fn finish(&self, mut rec: csv::StringRecord, corrupt: &str) -> csv::Result<T> {
        match &self.header {
            Some(h) => {
                for v in &self.partition {
                    rec.push_field(v.as_deref().unwrap_or(""));
                }
                rec.push_field(corrupt);
                rec.deserialize(Some(h))
            }
            None => rec.deserialize(None),
        }
    }
}

/// Parses one line as one record.
fn parse_line(builder: &csv::ReaderBuilder, line: &str) -> csv::StringRecord {
    let mut r = builder.from_reader(line.as_bytes());
    let mut rec = csv::StringRecord::new();
    // A line that is not a record (a lone quote) is read as far as it goes; errors here are
    // only I/O errors of a byte slice, which cannot happen.
    if !matches!(r.read_record(&mut rec), Ok(true)) {
        rec.clear();
        rec.push_field("");
    }
    rec
}

/// The header of a file: its first line's fields.
fn read_header(builder: &csv::ReaderBuilder, path: &Path) -> Result<Option<csv::StringRecord>> {
    let mut r = LineReader::try_open_with(
        FileSplit {
            path: path.to_path_buf(),
            start: 0,
            length: 0,
        },
        Utf8Decoding::Lossy,
    )?;
    Ok(r.try_next_line()?.map(|l| parse_line(builder, l)))
}

impl<T: Data + DeserializeOwned> RecordFormat for CsvFormat<T> {
    type Item = T;

    fn splittable(&self, path: &Path) -> bool {
        !self.options.multi_line && Compression::from_path(path).is_splittable()
    }

    fn open(&self, split: &DataSplit) -> Result<Records<T>> {
        let builder = self.options.reader_builder();
        if self.options.multi_line {
            return open_multi_line(&self.options, builder, split);
        }
        let mut lines = LineReader::try_open_with(split.file_split(), Utf8Decoding::Lossy)?;
        let header = if self.options.header {
            if split.start == 0 {
                // The first split of a file holds the header: Spark drops that line there.
                lines.try_next_line()?.map(|l| parse_line(&builder, l))
            } else {
                read_header(&builder, &split.path)?
            }
        } else {
            None
        };
        let typer = Typer::<T>::new(&self.options, header, split);
        let path = split.path.clone();
        let mut done = false;
        Ok(Box::new(std::iter::from_fn(move || loop {
            if done {
                return None;
            }
            let line = match lines.try_next_line() {
                Ok(Some(l)) => l,
                Ok(None) => return None,
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            };
            let rec = parse_line(&builder, line);
            let raw = line.to_string();
            let offset = lines.line_offset();
            match typer.record(rec, &raw, &path, offset) {
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

/// A whole file read as RFC 4180 (quoted line breaks kept): `multi_line`.
fn open_multi_line<T: Data + DeserializeOwned>(
    options: &CsvOptions,
    builder: csv::ReaderBuilder,
    split: &DataSplit,
) -> Result<Records<T>> {
    let store = crate::io::store::store_for(&split.path.to_string_lossy())?;
    let raw = store.open_at(&split.path, 0)?;
    let input: Box<dyn Read + Send> = Compression::from_path(&split.path).decoder(raw);
    let mut reader = builder.from_reader(input);
    let path = split.path.clone();
    let mut header = None;
    let mut done = false;
    let mut first = options.header;
    let mut typer: Option<Typer<T>> = None;
    let options = options.clone();
    let split = split.clone();
    Ok(Box::new(std::iter::from_fn(move || loop {
        if done {
            return None;
        }
        let mut rec = csv::StringRecord::new();
        let offset = reader.position().byte();
        match reader.read_record(&mut rec) {
            Ok(false) => return None,
            Ok(true) => {}
            Err(e) => {
                done = true;
                return Some(Err(malformed(&path, offset, e.to_string())));
            }
        }
        if first {
            first = false;
            header = Some(rec);
            continue;
        }
        let t = typer.get_or_insert_with(|| Typer::new(&options, header.take(), &split));
        let raw: Vec<&str> = rec.iter().collect();
        let raw = raw.join(",");
        match t.record(rec, &raw, &path, offset) {
            Ok(Some(t)) => return Some(Ok(t)),
            Ok(None) => continue,
            Err(e) => {
                done = true;
                return Some(Err(e));
            }
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Row {
        id: Option<i32>,
        name: Option<String>,
        amount: Option<f64>,
        _corrupt_record: Option<String>,
    }

    fn read(text: &str, options: CsvOptions) -> Vec<Result<Row>> {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f.csv");
        std::fs::write(&p, text).unwrap();
        let split = DataSplit {
            path: p,
            start: 0,
            length: text.len() as u64,
            partition: Vec::new(),
        };
        CsvFormat::<Row>::new(options)
            .open(&split)
            .unwrap()
            .collect()
    }

    const MALFORMED: &str = "id,name,amount\n1,ok,1.5\n2,too few\n3,too,many,fields\n\
                             4,bad number,abc\n5,ok again,2.5\nx6,bad id,3.5\n";

    #[test]
    fn permissive_nulls_what_does_not_fit() {
        let rows: Vec<Row> = read(MALFORMED, CsvOptions::with_header())
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        let short: Vec<(Option<i32>, Option<&str>, Option<f64>)> = rows
            .iter()
            .map(|r| (r.id, r.name.as_deref(), r.amount))
            .collect();
        assert_eq!(
            short,
            [
                (Some(1), Some("ok"), Some(1.5)),
                (Some(2), Some("too few"), None),
                (Some(3), Some("too"), None),
                (Some(4), Some("bad number"), None),
                (Some(5), Some("ok again"), Some(2.5)),
                (None, Some("bad id"), Some(3.5)),
            ]
        );
        assert_eq!(rows[0]._corrupt_record, None);
        assert_eq!(rows[1]._corrupt_record.as_deref(), Some("2,too few"));
    }

    #[test]
    fn dropmalformed_and_failfast() {
        let opts = CsvOptions {
            mode: ParseMode::DropMalformed,
            ..CsvOptions::with_header()
        };
        let ids: Vec<Option<i32>> = read(MALFORMED, opts)
            .into_iter()
            .map(|r| r.unwrap().id)
            .collect();
        assert_eq!(ids, [Some(1), Some(5)]);
        let opts = CsvOptions {
            mode: ParseMode::FailFast,
            ..CsvOptions::with_header()
        };
        let got = read(MALFORMED, opts);
        assert_eq!(got.len(), 2, "one row, then the error ends the split");
        let err = got[1].clone().unwrap_err().to_string();
        assert!(
            err.contains("[MALFORMED_CSV_RECORD] Malformed CSV record: 2,too few"),
            "{err}"
        );
        assert!(err.contains("f.csv, record at byte offset 24"), "{err}");
    }

    #[test]
    fn quoted_newline_ends_the_record_without_multi_line() {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        struct T {
            id: String,
            text: Option<String>,
        }
        let text = "id,text\n1,\"multi\nline\"\n2,\"a \"\"q\"\"\"\n";
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("q.csv");
        std::fs::write(&p, text).unwrap();
        let split = DataSplit {
            path: p,
            start: 0,
            length: text.len() as u64,
            partition: Vec::new(),
        };
        let rows: Vec<T> = CsvFormat::<T>::new(CsvOptions::with_header())
            .open(&split)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["1", "line\"", "2"]);
        assert_eq!(rows[2].text.as_deref(), Some("a \"q\""));
        let multi = CsvOptions {
            multi_line: true,
            ..CsvOptions::with_header()
        };
        let rows: Vec<T> = CsvFormat::<T>::new(multi)
            .open(&split)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows[0].text.as_deref(), Some("multi\nline"));
        assert_eq!(rows.len(), 2);
    }
}
