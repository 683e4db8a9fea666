//! Reading input files and committing output files: where the files of a dataset are
//! (`store`, `partitioning`), how their bytes decode (`compression`), the record formats
//! (`text_input`, `csv`, `json_lines`, `parquet`), the values of typed columns text cannot name
//! (`column_types`), and the commit protocol of every writer (`output_committer`).

pub mod cloud;
pub mod cloud_committer;
pub mod column_types;
pub mod compression;
pub mod csv;
pub mod json_lines;
pub mod output_committer;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod partitioning;
pub mod record;
pub mod store;
pub mod text_input;
