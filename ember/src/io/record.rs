//! What the typed file readers share: the split of a dataset file a task reads, the trait a
//! record format implements, Spark's parse modes, and the partition values merged into records.

use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::data::Data;
use crate::error::Result;
use crate::io::partitioning::DatasetFile;
use crate::io::text_input::{plan_splits_by, LOCAL_FS_BLOCK_SIZE};

/// What a reader does with a record it cannot parse (Spark's `mode` option of the CSV and
/// JSON sources).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ParseMode {
    /// Keep the record with what can be read of it: fields that are missing or do not parse
    /// become `None` (so they must be `Option` fields), extra fields are dropped, and a field
    /// named as the corrupt-record column (`_corrupt_record`), when the type has one, receives
    /// the raw line. A record the type cannot hold that way (a non-`Option` field is missing or
    /// bad) fails the task, naming the file and offset.
    #[default]
    Permissive,
    /// Drop malformed records.
    DropMalformed,
    /// Fail the task on the first malformed record, naming the file and offset.
    FailFast,
}

impl ParseMode {
    /// The mode named as Spark names it (`PERMISSIVE`, `DROPMALFORMED`, `FAILFAST`,
    /// case-insensitive).
    pub fn from_name(name: &str) -> Option<ParseMode> {
        Some(match name.to_ascii_uppercase().as_str() {
            "PERMISSIVE" => ParseMode::Permissive,
            "DROPMALFORMED" => ParseMode::DropMalformed,
            "FAILFAST" => ParseMode::FailFast,
            _ => return None,
        })
    }

    /// Spark's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            ParseMode::Permissive => "PERMISSIVE",
            ParseMode::DropMalformed => "DROPMALFORMED",
            ParseMode::FailFast => "FAILFAST",
        }
    }
}

/// Spark's default name of the column that receives malformed records' text
/// (`spark.sql.columnNameOfCorruptRecord`).
pub const CORRUPT_RECORD_COLUMN: &str = "_corrupt_record";

/// The bytes `[start, start + length)` of one dataset file, with the file's partition values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSplit {
    /// The file.
    pub path: PathBuf,
    /// Offset of the split's first byte.
    pub start: u64,
    /// Number of bytes in the split.
    pub length: u64,
    /// Hive partition values of the file's directory.
    pub partition: Vec<(String, Option<String>)>,
}

impl DataSplit {
    /// The line-reader view of this split.
    pub fn file_split(&self) -> crate::io::text_input::FileSplit {
        crate::io::text_input::FileSplit {
            path: self.path.clone(),
            start: self.start,
            length: self.length,
        }
    }
}

/// The records of one split, each a record or the error that ends the split.
pub type Records<T> = Box<dyn Iterator<Item = Result<T>> + Send>;

/// A file format read into typed records.
pub trait RecordFormat: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {
    /// The record type.
    type Item: Data;
    /// Whether a file may be cut into byte ranges.
    fn splittable(&self, path: &Path) -> bool;
    /// The records of one split (reading starts when the iterator is first advanced or here).
    fn open(&self, split: &DataSplit) -> Result<Records<Self::Item>>;
}

/// Cuts the files of a dataset into splits with `textFile`'s rules (see
/// [`crate::io::text_input::compute_splits`]).
pub fn plan_splits<F: RecordFormat>(
    files: &[DatasetFile],
    min_partitions: usize,
    format: &F,
) -> Vec<DataSplit> {
    let sized: Vec<(PathBuf, u64)> = files
        .iter()
        .map(|f| (f.status.path.clone(), f.status.len))
        .collect();
    let splits = plan_splits_by(&sized, min_partitions, LOCAL_FS_BLOCK_SIZE, |p| {
        format.splittable(p)
    });
    // Splits come out in file order, so each file's partition values are found by walking along.
    let mut out = Vec::with_capacity(splits.len());
    let mut i = 0;
    for s in splits {
        while i < files.len() && files[i].status.path != s.path {
            i += 1;
        }
        let partition = files
            .get(i)
            .map(|f| f.partition.as_ref().clone())
            .unwrap_or_default();
        out.push(DataSplit {
            path: s.path,
            start: s.start,
            length: s.length,
            partition,
        });
    }
    out
}

/// One partition value as the job's type wants it: Spark infers partition columns' types
/// (integers, decimals, else strings); here the field's type decides, and a value that does
/// not parse as it is an error naming the column.
pub struct PartitionValue<'a>(pub Option<&'a str>);

impl<'de> de::Deserializer<'de> for PartitionValue<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, Self::Error> {
        match self.0 {
            None => v.visit_none(),
            Some(s) => {
                if let Ok(i) = s.parse::<i64>() {
                    v.visit_i64(i)
                } else if let Ok(u) = s.parse::<u64>() {
                    v.visit_u64(u)
                } else if let Ok(f) = s.parse::<f64>() {
                    v.visit_f64(f)
                } else if let Ok(b) = s.parse::<bool>() {
                    v.visit_bool(b)
                } else {
                    v.visit_string(s.to_string())
                }
            }
        }
    }
    fn deserialize_option<V: Visitor<'de>>(
        self,
        v: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        match self.0 {
            None => v.visit_none(),
            Some(_) => v.visit_some(self),
        }
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, Self::Error> {
        match self.0 {
            None => v.visit_none(),
            Some(s) => v.visit_string(s.to_string()),
        }
    }
    fn deserialize_string<V: Visitor<'de>>(
        self,
        v: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        self.deserialize_str(v)
    }
    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, Self::Error> {
        self.deserialize_str(v)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 bytes byte_buf unit unit_struct
        newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

impl<'a> IntoDeserializer<'a, de::value::Error> for PartitionValue<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// A record's own fields (from a JSON object) followed by its partition values, deserialized as
/// one map: how partition columns are merged into the job's type.
pub fn deserialize_with_partition<T: DeserializeOwned>(
    fields: serde_json::Map<String, serde_json::Value>,
    partition: &[(String, Option<String>)],
) -> std::result::Result<T, String> {
    use serde::de::value::MapDeserializer;
    enum Either<'a> {
        Json(serde_json::Value),
        Part(Option<&'a str>),
    }
    impl<'de> IntoDeserializer<'de, de::value::Error> for Either<'_> {
        type Deserializer = EitherDe<'de>;
        fn into_deserializer(self) -> EitherDe<'de> {
            match self {
                Either::Json(v) => EitherDe::Json(v, std::marker::PhantomData),
                Either::Part(p) => EitherDe::Part(p.map(str::to_string)),
            }
        }
    }
    enum EitherDe<'de> {
        Json(serde_json::Value, std::marker::PhantomData<&'de ()>),
        Part(Option<String>),
    }
    macro_rules! either {
        ($($m:ident)*) => {$(
            fn $m<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, Self::Error> {
                match self {
                    EitherDe::Json(j, _) => de::Deserializer::$m(j, v).map_err(de::Error::custom),
                    EitherDe::Part(p) => PartitionValue(p.as_deref()).$m(v),
                }
            }
        )*};
    }
    impl<'de> de::Deserializer<'de> for EitherDe<'de> {
        type Error = de::value::Error;
        either! {
            deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
            deserialize_i64 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
            deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string
            deserialize_bytes deserialize_byte_buf deserialize_option deserialize_unit
            deserialize_seq deserialize_map deserialize_identifier deserialize_ignored_any
        }
        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            v: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            self.deserialize_unit(v)
        }
        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            v: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            v.visit_newtype_struct(self)
        }
        fn deserialize_tuple<V: Visitor<'de>>(
            self,
            _len: usize,
            v: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            self.deserialize_seq(v)
        }
        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _len: usize,
            v: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            self.deserialize_seq(v)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            fields: &'static [&'static str],
            v: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            match self {
                EitherDe::Json(j, _) => de::Deserializer::deserialize_struct(j, name, fields, v)
                    .map_err(de::Error::custom),
                EitherDe::Part(p) => PartitionValue(p.as_deref()).deserialize_any(v),
            }
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            v: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            match self {
                EitherDe::Json(j, _) => de::Deserializer::deserialize_enum(j, name, variants, v)
                    .map_err(de::Error::custom),
                EitherDe::Part(p) => PartitionValue(p.as_deref()).deserialize_any(v),
            }
        }
        fn deserialize_i128<V: Visitor<'de>>(
            self,
            v: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            self.deserialize_any(v)
        }
        fn deserialize_u128<V: Visitor<'de>>(
            self,
            v: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            self.deserialize_any(v)
        }
    }
    let entries = fields.into_iter().map(|(k, v)| (k, Either::Json(v))).chain(
        partition
            .iter()
            .map(|(k, v)| (k.clone(), Either::Part(v.as_deref()))),
    );
    let de = MapDeserializer::<_, de::value::Error>::new(entries);
    T::deserialize(de).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Row {
        id: i64,
        name: Option<String>,
        year: i32,
        tag: String,
        month: Option<u8>,
    }

    #[test]
    fn partition_values_merge_into_the_record() {
        let fields: serde_json::Map<_, _> =
            serde_json::from_str(r#"{"id": 7, "name": null}"#).unwrap();
        let part = vec![
            ("year".to_string(), Some("2025".to_string())),
            ("tag".to_string(), Some("2025".to_string())),
            ("month".to_string(), None),
        ];
        let row: Row = deserialize_with_partition(fields, &part).unwrap();
        assert_eq!(
            row,
            Row {
                id: 7,
                name: None,
                year: 2025,
                tag: "2025".into(),
                month: None
            }
        );
        let bad = vec![("year".to_string(), Some("x".to_string()))];
        let fields: serde_json::Map<_, _> = serde_json::from_str(r#"{"id": 7}"#).unwrap();
        assert!(deserialize_with_partition::<Row>(fields, &bad).is_err());
    }

    #[test]
    fn mode_names() {
        assert_eq!(
            ParseMode::from_name("dropMalformed"),
            Some(ParseMode::DropMalformed)
        );
        assert_eq!(ParseMode::FailFast.name(), "FAILFAST");
        assert_eq!(ParseMode::from_name("lenient"), None);
    }
}
