//! Typed errors. Every variant carries what a user needs to act on it: which key, which task,
//! which file and offset. Errors of the layers below (`std::io`, `ember-net`, the scheduler core,
//! postcard) are kept as the [`std::error::Error::source`] of the variant that wraps them, never
//! flattened into a string.
//!
//! What the user's job did wrong (a bad key, a missing input, a failed task) has a variant of
//! its own; [`EmberError::Internal`] is reserved for what only a bug in Ember can cause.

use std::sync::Arc;

use thiserror::Error;

use ember_net::RpcError;
pub use ember_scheduler::SchedulerError;

use ember_common::{ShuffleId, StageId};

/// The one error type of Ember's public API.
///
/// It is `Clone` because failures travel between threads (a task's failure reason reaches the
/// driver thread that waits on its job) and may be reported to several waiters; that is why an
/// I/O error is held as a [`SharedIoError`].
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
// Each variant's doc says what it means; its fields are named for what they hold.
#[allow(missing_docs)]
pub enum EmberError {
    /// A configuration value that does not parse or is out of range.
    #[error("invalid value {value:?} for configuration key {key}: {reason}")]
    Config {
        key: String,
        value: String,
        reason: String,
    },

    /// A master URL Ember does not understand.
    #[error(
        "invalid master URL {url:?}: {reason} (expected local, local[N], local[*], local[N,F], \
         local-cluster[N,C,MEM] or ember://HOST:PORT)"
    )]
    MasterUrl { url: String, reason: String },

    /// A bad command-line argument.
    #[error("invalid argument: {0}")]
    Argument(String),
    /// An operation was given an argument no job can run with: a partition count of 0, a
    /// `range` step of 0, a negative sampling fraction. The message is Spark's where Spark has
    /// one. A transformation still returns its RDD; every action over it (or over an RDD built
    /// from it) fails with this error before any task runs.
    #[error("invalid argument {argument}: {message}")]
    InvalidArgument {
        /// The operation and the argument, e.g. `coalesce(num_partitions)`.
        argument: String,
        /// What is wrong with it.
        message: String,
    },

    /// A job failed or was cancelled, as the scheduler core decided: Spark's "Job aborted due
    /// to stage failure: …" or "Job N cancelled: …".
    #[error("{0}")]
    Scheduler(#[from] SchedulerError),

    /// An I/O error, with the path it happened on.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: SharedIoError,
    },

    /// The driver cannot listen for executors on its address.
    #[error(
        "I/O error on {addr}: cannot listen for executors ({source}); set ember.driver.host / \
         ember.driver.port"
    )]
    DriverListen {
        addr: String,
        #[source]
        source: SharedIoError,
    },

    /// Input that is not valid UTF-8, with the file and the byte offset of the first bad byte.
    #[error("invalid UTF-8 in {path} at byte offset {offset}")]
    InvalidUtf8 { path: String, offset: u64 },

    /// Input that cannot be read as its format says: a malformed CSV record or JSON line in
    /// `FAILFAST` mode, a record that cannot become the job's type, a corrupt Parquet file.
    /// `position` says where in `path` (`line at byte offset 57`, `row group 2`).
    #[error("{message} (in {path}, {position})")]
    BadInput {
        path: String,
        position: String,
        message: String,
    },

    /// A file that cannot be read at all or past some point (a corrupt Parquet footer or
    /// page); what `ember.files.ignoreCorruptFiles` skips.
    #[error("corrupt file {path}: {message}")]
    CorruptFile { path: String, message: String },

    /// `save_as_text_file` refuses to overwrite.
    #[error("Output directory {0} already exists")]
    OutputExists(String),

    /// A value that failed to encode or decode; `source` is the codec's error when there is one.
    #[error("serialization error: {message}")]
    Serialization {
        message: String,
        #[source]
        source: Option<postcard::Error>,
    },

    /// An input pattern that is not a valid glob (glob's `PatternError`, field by field).
    #[error(
        "invalid argument: invalid glob pattern {pattern:?}: Pattern syntax error near position \
         {position}: {reason}"
    )]
    InvalidGlob {
        pattern: String,
        position: usize,
        reason: &'static str,
    },

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
    #[error(
        "RDD {rdd_id} is persisted at {level}: replication not supported (Ember keeps one copy of \
         each cached partition; persist at the level without the _N suffix)"
    )]
    ReplicationNotSupported { rdd_id: usize, level: String },

    /// An operation that starts jobs, called inside a task (on a copy of an RDD an executor
    /// decoded, which has no application to run jobs in).
    #[error("RDD operations that run jobs can only be called on the driver, not inside a task")]
    NotOnDriver,

    /// A partitioner returned a partition outside `0..partitions`.
    #[error(
        "partitioner returned partition {partition} for a shuffle with {partitions} partitions"
    )]
    InvalidPartition { partition: usize, partitions: usize },

    /// Where a shuffle's map outputs are could not be learned; the reducer reports a fetch
    /// failure, so the map stage runs again.
    #[error("{message}")]
    MapOutputsUnavailable {
        shuffle_id: ShuffleId,
        message: String,
    },

    /// A barrier task's `barrier()` or `all_gather()` failed: Spark's message from the
    /// coordinator (a timeout, mixed sync methods, a stale epoch) or the driver is gone.
    #[error("{message}")]
    BarrierSyncFailed {
        stage_id: StageId,
        stage_attempt_id: u32,
        message: String,
    },

    /// `BarrierTaskContext::get()` outside a task of a barrier stage.
    #[error("BarrierTaskContext is only available in a task of a barrier stage (rdd.barrier())")]
    NotABarrierTask,

    /// A broadcast value that cannot be read here (destroyed, or its pieces cannot be fetched).
    #[error("Failed to get broadcast_{id}: {reason}")]
    BroadcastUnavailable { id: u64, reason: String },

    /// A broadcast read after `destroy` (Spark's message).
    #[error("Attempted to use Broadcast({id}) after it was destroyed")]
    BroadcastDestroyed { id: u64 },

    /// A broadcast read on an executor outside any task, where there is no way to fetch it.
    #[error("Broadcast({id}) read outside a task on an executor")]
    BroadcastOutsideTask { id: u64 },

    /// A network operation failed; `context` says what was being done.
    #[error("{context}: {source}")]
    Network {
        context: String,
        #[source]
        source: RpcError,
    },

    /// The driver refused this executor at registration (another build, or it is stopping).
    #[error("the driver refused this executor: {0}")]
    RegistrationRejected(String),

    /// This executable cannot take part in a cluster (no build id, a dynamically linked Rust
    /// std, Ember in a shared library); the message says how to build it.
    #[error("cannot run in cluster mode: {0}")]
    UnsupportedBuild(String),

    /// A peer broke the driver–executor protocol (Spark's wording where Spark has one).
    #[error("{0}")]
    Protocol(String),

    /// Fewer executors than asked for registered in time (`local-cluster`).
    #[error(
        "only {registered} of {expected} executors registered within {timeout_secs} s \
         (ember.network.timeout)"
    )]
    ExecutorsNotRegistered {
        registered: usize,
        expected: usize,
        timeout_secs: u64,
    },

    /// `add_file`/`add_archive` of a path that does not exist.
    #[error("File {path} does not exist")]
    FileNotFound { path: String },

    /// `add_file` of a directory without `recursive`, or `add_archive` of a directory.
    #[error("Added file {path} is a directory and {}", directory_reason(.archive))]
    AddDirectory { path: String, archive: bool },

    /// `add_file`/`add_archive` of a URL whose scheme Ember cannot fetch.
    #[error(
        "cannot add {url}: the {scheme} scheme is not supported (only local paths and file://, \
         http:// and https:// URLs)"
    )]
    UnsupportedScheme { url: String, scheme: String },

    /// `add_file`/`add_archive` of an http(s) URL that the driver could not download (as
    /// Spark's `addFile`, which fetches it into the driver's root).
    #[error("Failed to fetch {url}: {reason}")]
    UrlFetchFailed { url: String, reason: String },

    /// A name added again with other contents, while `ember.files.overwrite` is false.
    #[error(
        "File {dest} exists and does not match contents of {url} (set ember.files.overwrite to \
         replace it)"
    )]
    FileContentsMismatch { dest: String, url: String },

    /// An executor could not fetch an added file or archive from the driver; the task fails
    /// and is retried.
    #[error("Failed to fetch the added file {name}: {reason}")]
    FileFetchFailed { name: String, reason: String },

    /// An archive entry that would be written outside the unpacking directory (an absolute
    /// path, a `..`, a link that climbs), or of a kind that is not unpacked.
    #[error("Refusing to unpack archive {archive}: entry {entry}: {reason}")]
    UnsafeArchiveEntry {
        archive: String,
        entry: String,
        reason: String,
    },

    /// An archive that cannot be read.
    #[error("cannot unpack archive {archive}: {reason}")]
    Archive { archive: String, reason: String },

    /// Something only a bug in Ember can cause; please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a directory cannot be added (Spark's message for files; archives must be files).
fn directory_reason(archive: &bool) -> &'static str {
    if *archive {
        "an archive must be a file"
    } else {
        "recursive is not turned on."
    }
}

impl EmberError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<std::path::Path>, err: std::io::Error) -> Self {
        EmberError::Io {
            path: path.as_ref().display().to_string(),
            source: SharedIoError(Arc::new(err)),
        }
    }

    /// Wraps a postcard encoding/decoding error.
    pub fn ser(err: postcard::Error) -> Self {
        EmberError::Serialization {
            message: err.to_string(),
            source: Some(err),
        }
    }

    /// A serialization error described by `context`, caused by the postcard error `err`.
    pub fn ser_context(context: impl std::fmt::Display, err: postcard::Error) -> Self {
        EmberError::Serialization {
            message: format!("{context}: {err}"),
            source: Some(err),
        }
    }

    /// A serialization error without a codec error behind it (a value that is not what it should
    /// be).
    pub fn serialization(message: impl Into<String>) -> Self {
        EmberError::Serialization {
            message: message.into(),
            source: None,
        }
    }

    /// A network error while doing `context`.
    pub fn network(context: impl Into<String>, source: RpcError) -> Self {
        EmberError::Network {
            context: context.into(),
            source,
        }
    }

    /// The I/O error behind this error, if it is one (its [`std::io::ErrorKind`] tells what
    /// went wrong: a missing file, a full disk, …).
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            EmberError::Io { source, .. } | EmberError::DriverListen { source, .. } => {
                Some(&source.0)
            }
            _ => None,
        }
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

/// An [`std::io::Error`] shared by the clones of an [`EmberError`] (it is not `Clone` itself).
/// It dereferences to the I/O error, whose [`std::io::ErrorKind`] tells what went wrong, and two
/// compare equal when their kinds and messages do.
#[derive(Debug, Clone)]
pub struct SharedIoError(Arc<std::io::Error>);

impl SharedIoError {
    /// Shares `err`.
    pub fn new(err: std::io::Error) -> Self {
        SharedIoError(Arc::new(err))
    }
}

impl std::ops::Deref for SharedIoError {
    type Target = std::io::Error;
    fn deref(&self) -> &std::io::Error {
        &self.0
    }
}

impl std::fmt::Display for SharedIoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedIoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for SharedIoError {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.to_string() == other.0.to_string()
    }
}

/// Result with [`EmberError`].
pub type Result<T, E = EmberError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn an_io_error_stays_the_source_with_its_kind() {
        let err = EmberError::io(
            "/no/such/file",
            std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        );
        assert_eq!(err.to_string(), "I/O error on /no/such/file: gone");
        assert_eq!(
            err.io_error().map(std::io::Error::kind),
            Some(std::io::ErrorKind::NotFound)
        );
        let source = err.source().expect("the I/O error is the source");
        let io = source
            .downcast_ref::<SharedIoError>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        // Clones share it.
        assert_eq!(
            err.clone().io_error().map(std::io::Error::kind),
            Some(std::io::ErrorKind::NotFound)
        );
    }

    #[test]
    fn lower_layers_errors_are_sources() {
        let job = EmberError::from(SchedulerError::JobAborted("boom".into()));
        assert_eq!(job.to_string(), "Job aborted due to stage failure: boom");
        assert!(job
            .source()
            .and_then(|s| s.downcast_ref::<SchedulerError>())
            .is_some());
        let net = EmberError::network("cannot join the driver at 1.2.3.4:5", RpcError::Closed);
        assert_eq!(
            net.to_string(),
            "cannot join the driver at 1.2.3.4:5: connection closed by the peer"
        );
        assert_eq!(
            net.source().and_then(|s| s.downcast_ref::<RpcError>()),
            Some(&RpcError::Closed)
        );
        let decode = postcard::from_bytes::<String>(&[9]).unwrap_err();
        let ser = EmberError::ser(decode.clone());
        assert_eq!(
            ser.source()
                .and_then(|s| s.downcast_ref::<postcard::Error>()),
            Some(&decode)
        );
    }
}
