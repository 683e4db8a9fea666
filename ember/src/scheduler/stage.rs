//! Stages: the parts of a job between shuffle boundaries.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::rdd::{RddBase, ShuffleDependencyBase};
use crate::task::{JobId, ResultFunc, ShuffleId, ShuffleMapFunc, StageId};

/// What a stage's tasks produce.
#[derive(Clone)]
pub enum StageKind {
    /// Writes a shuffle for later stages (Spark's `ShuffleMapStage`).
    ShuffleMap { shuffle_id: ShuffleId, dep: Arc<dyn ShuffleDependencyBase>, func: Arc<dyn ShuffleMapFunc> },
    /// Computes an action's values for one job (Spark's `ResultStage`).
    Result { job_id: JobId, func: Arc<dyn ResultFunc>, partitions: Vec<usize> },
}

/// One stage and its scheduling state.
pub struct Stage {
    pub id: StageId,
    /// The last RDD of the stage's narrow pipeline.
    pub rdd: Arc<dyn RddBase>,
    pub kind: StageKind,
    /// Stages whose shuffle outputs this one reads.
    pub parents: Vec<StageId>,
    /// The job that created the stage (FIFO priority).
    pub first_job_id: JobId,
    /// Jobs that need this stage.
    pub job_ids: BTreeSet<JobId>,
    /// Attempts so far; the running attempt is `next_attempt - 1`.
    pub next_attempt: u32,
    /// Partitions of the current attempt not yet finished.
    pub pending: BTreeSet<usize>,
    /// Consecutive attempts that ended in a fetch failure.
    pub failed_attempts: u32,
    /// Tasks in the current attempt and how many have finished (progress bar).
    pub num_tasks: usize,
    pub completed_tasks: usize,
    /// When the current attempt was submitted (scheduler clock, ms).
    pub submitted_at_ms: u64,
    /// "count at wordcount.rs:31"-style description.
    pub name: String,
}

impl Stage {
    /// The attempt number of the running (or last) attempt.
    pub fn latest_attempt(&self) -> u32 {
        self.next_attempt.saturating_sub(1)
    }

    /// The shuffle this stage writes, if it is a map stage.
    pub fn shuffle_id(&self) -> Option<ShuffleId> {
        match &self.kind {
            StageKind::ShuffleMap { shuffle_id, .. } => Some(*shuffle_id),
            StageKind::Result { .. } => None,
        }
    }
}
