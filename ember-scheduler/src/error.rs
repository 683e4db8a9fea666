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

    /// A job was cancelled before it finished. Spark's wording: "Job 3 cancelled " followed by
    /// the reason ("part of cancelled job group g", "because …"; empty for a job cancelled by
    /// its id).
    #[error("Job {job_id} cancelled {reason}")]
    JobCancelled {
        /// The job.
        job_id: JobId,
        /// Who cancelled it and why.
        reason: String,
    },

    /// User code the scheduler called to build the job's stages (a custom RDD's partitions or
    /// dependencies) panicked; the cause is the panic's message. (Spark fails the job with the
    /// exception itself and logs "Creating new stage failed due to exception - job: N".)
    #[error("Creating new stage failed due to exception - job: {job_id}: {cause}")]
    StageCreationFailed {
        /// The job.
        job_id: JobId,
        /// The panic's message.
        cause: String,
    },

    /// The scheduler's event loop itself failed (a bug in Ember): every running job fails with
    /// the panic as the cause and the context stops, as Spark's
    /// `DAGSchedulerEventProcessLoop.onError` does.
    #[error("Job {job_id} cancelled because the scheduler's event loop failed: {cause}")]
    EventLoopFailed {
        /// The job.
        job_id: JobId,
        /// The panic's message.
        cause: String,
    },

    /// A barrier stage needs more tasks at once than the cluster has slots (Spark's
    /// `BarrierJobSlotsNumberCheckFailed`), still after
    /// `ember.scheduler.barrier.maxConcurrentTasksCheck.maxFailures` checks.
    #[error(
        "[SPARK-24819]: Barrier execution mode does not allow run a barrier stage that requires \
         more slots than the total number of slots in the cluster currently. Please init a new \
         cluster with more resources(e.g. CPU, GPU) or repartition the input RDD(s) to reduce \
         the number of slots required to run this barrier stage."
    )]
    BarrierSlotsCheckFailed {
        /// Slots the barrier stage needs (its partitions).
        required: usize,
        /// Tasks the cluster can run at once.
        max: usize,
    },

    /// A barrier stage whose RDD chain Ember cannot run as one barrier (Spark's
    /// `BarrierJobUnsupportedRDDChainException`).
    #[error(
        "[SPARK-24820][SPARK-24821]: Barrier execution mode does not allow the following pattern \
         of RDD chain within a barrier stage:\n1. Ancestor RDDs that have different number of \
         partitions from the resulting RDD (e.g. union()/coalesce()/first()/take()/\
         PartitionPruningRDD). A workaround for first()/take() can be barrierRdd.collect().head \
         (scala) or barrierRdd.collect()[0] (python).\n2. An RDD that depends on multiple \
         barrier RDDs (e.g. barrierRdd1.zip(barrierRdd2))."
    )]
    BarrierUnsupportedRddChain,

    /// A scheduling mode that is neither FIFO nor FAIR.
    #[error("unknown scheduling mode {0:?}: expected FIFO or FAIR")]
    UnknownSchedulingMode(String),
}
