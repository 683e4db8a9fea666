//! Reading input files and committing output files.

pub mod output_committer;
pub mod text_input;
