//! The scheduler core's errors: why a job ended without its results, and configuration values
//! the core cannot accept.

use thiserror::Error;

use ember_common::JobId;

/// An error of the scheduler core. The messages keep Spark's wording, so that what users know
/// and search for still applies.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchedulerError {
    /// A job failed; the message keeps Spark's wording ("Job aborted due to stage failure: …").
    #[error("Job aborted due to stage failure: {0}")]
    JobAborted(String),

    /// A job was cancelled before it finished.
    #[error("Job {job_id} cancelled: {reason}")]
    JobCancelled {
        /// The job.
        job_id: JobId,
        /// Who cancelled it and why.
        reason: String,
    },

    /// A scheduling mode that is neither FIFO nor FAIR.
    #[error("unknown scheduling mode {0:?}: expected FIFO or FAIR")]
    UnknownSchedulingMode(String),
}
