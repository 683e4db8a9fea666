//! What a person at the console sees.

pub mod console_progress;
