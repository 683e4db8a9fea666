//! Typed errors. Every variant carries what a user needs to act on it: which key, which task,
//! which file and offset.

use thiserror::Error;

/// The one error type of Ember's public API.
///
/// It is `Clone` because failures travel between threads (a task's failure reason reaches the
/// driver thread that waits on its job) and may be reported to several waiters.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum EmberError {
    /// A configuration value that does not parse or is out of range.
    #[error("invalid value {value:?} for configuration key {key}: {reason}")]
    Config { key: String, value: String, reason: String },

    /// A master URL Ember does not understand.
    #[error("invalid master URL {url:?}: {reason} (expected local, local[N], local[*], local[N,F], local-cluster[N,C,MEM] or ember://HOST:PORT)")]
    MasterUrl { url: String, reason: String },

    /// A bad command-line argument.
    #[error("invalid argument: {0}")]
    Argument(String),

    /// A job failed; the message keeps Spark's wording ("Job aborted due to stage failure: …").
    #[error("Job aborted due to stage failure: {0}")]
    JobAborted(String),

    /// A job was cancelled before it finished.
    #[error("Job {job_id} cancelled: {reason}")]
    JobCancelled { job_id: usize, reason: String },

    /// An I/O error, with the path it happened on.
    #[error("I/O error on {path}: {message}")]
    Io { path: String, message: String },

    /// Input that is not valid UTF-8, with the file and the byte offset of the first bad byte.
    #[error("invalid UTF-8 in {path} at byte offset {offset}")]
    InvalidUtf8 { path: String, offset: u64 },

    /// `save_as_text_file` refuses to overwrite.
    #[error("Output directory {0} already exists")]
    OutputExists(String),

    /// A value that failed to encode or decode.
    #[error("serialization error: {0}")]
    Serialization(String),

    /// An input path or pattern that matched nothing.
    #[error("Input path does not exist: {0}")]
    InputNotFound(String),

    /// The context was stopped while the operation was pending.
    #[error("the Ember context has been stopped")]
    ContextStopped,

    /// An action on an RDD that has no elements where one is needed (`first`, `reduce`).
    #[error("{0}")]
    EmptyCollection(String),

    /// A storage level asking for more than one copy of each partition (`MEMORY_ONLY_2`, …):
    /// Ember keeps one.
    #[error("RDD {rdd_id} is persisted at {level}: replication not supported (Ember keeps one copy of each cached partition; persist at the level without the _N suffix)")]
    ReplicationNotSupported { rdd_id: usize, level: String },

    /// A failed task's reason, as reported by the executor.
    #[error("{0}")]
    Task(String),
}

impl EmberError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<std::path::Path>, err: std::io::Error) -> Self {
        EmberError::Io { path: path.as_ref().display().to_string(), message: err.to_string() }
    }

    /// Wraps an encoding/decoding error.
    pub fn ser(err: impl std::fmt::Display) -> Self {
        EmberError::Serialization(err.to_string())
    }

    /// Fails the current task with this error.
    ///
    /// Used by data sources whose iterators meet an error mid-stream (a file that vanished,
    /// invalid UTF-8): the task unwinds, the task runner catches the payload and reports it as
    /// the task's failure reason. `resume_unwind` does not run the panic hook, so nothing is
    /// printed twice.
    pub fn raise(self) -> ! {
        std::panic::resume_unwind(Box::new(self))
    }
}

/// Result with [`EmberError`].
pub type Result<T, E = EmberError> = std::result::Result<T, E>;
