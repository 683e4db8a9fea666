//! Sort-based shuffle: map tasks write one data file and one index file each; reduce tasks read
//! their block of every map output.
//!
//! On-disk format of a data file: for each reduce partition in order, its block; a block is a
//! sequence of chunks, each `[u32 little-endian length][payload]`, where the payload is an
//! lz4-compressed (with `ember.shuffle.compress`) run of postcard-encoded records. Chunks are
//! independent, so spilled runs are concatenated into the final file without re-encoding.
//! The index file holds `num_partitions + 1` little-endian u64 offsets into the data file.

mod append_only_map;
pub mod block_resolver;
mod combiner;
pub mod external_aggregator;
pub mod external_sorter;
mod map_output_writer;
mod partitioned_buffer;
pub mod reader;
pub mod sort_writer;
pub mod str_table;
#[cfg(test)]
mod test_support;

pub use crate::conf::ShuffleConf;
pub use block_resolver::{data_file, index_file, open_block};
pub use sort_writer::{PairSink, PairSource};
