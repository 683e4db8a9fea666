//! Stages: the parts of a job between shuffle boundaries.

use std::collections::BTreeSet;
use std::sync::Arc;

use ember_common::{JobId, ShuffleId, StageId};

use crate::rdd::{RddBase, ShuffleDependencyBase};
use crate::task::TaskBody;

/// What a stage's tasks produce.
#[derive(Clone)]
pub enum StageKind {
    /// Writes a shuffle for later stages (Spark's `ShuffleMapStage`).
    ShuffleMap {
        /// The shuffle it writes.
        shuffle_id: ShuffleId,
        /// The shuffle's map side.
        dep: Arc<dyn ShuffleDependencyBase>,
        /// What its tasks run.
        body: TaskBody,
    },
    /// Computes an action's values for one job (Spark's `ResultStage`).
    Result {
        /// The job.
        job_id: JobId,
        /// What its tasks run.
        body: TaskBody,
        /// The partitions of the final RDD the job wants, in output order.
        partitions: Vec<usize>,
    },
}

/// One stage and its scheduling state.
pub struct Stage {
    /// The stage's id.
    pub id: StageId,
    /// The last RDD of the stage's narrow pipeline.
    pub rdd: Arc<dyn RddBase>,
    /// What its tasks produce.
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
    /// The attempts that ended in a fetch failure since the stage last succeeded (Spark's
    /// `failedAttemptIds`, cleared on success: SPARK-17644).
    pub failed_attempt_ids: BTreeSet<u32>,
    /// The map output tracker's epoch when each attempt was submitted (Spark's task epoch).
    pub attempt_epochs: std::collections::BTreeMap<u32, u64>,
    /// Tasks in the current attempt (progress bar).
    pub num_tasks: usize,
    /// Tasks of the current attempt that have finished (progress bar).
    pub completed_tasks: usize,
    /// When the current attempt was submitted (scheduler clock, ms).
    pub submitted_at_ms: u64,
    /// "count at wordcount.rs:31"-style description.
    pub name: String,
    /// Its RDD's output is indeterminate (Spark's `Stage.isIndeterminate`): when part of it runs
    /// again it runs in full, and so do the stages that read it.
    pub indeterminate: bool,
    /// Its RDD is a barrier RDD (Spark's `Stage.isBarrier`): all its tasks start together, and
    /// when one fails the whole stage runs again.
    pub barrier: bool,
}

/// "ResultStage 1", "ShuffleMapStage 0": how Spark names a stage (`Stage.toString`).
impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            StageKind::ShuffleMap { .. } => write!(f, "ShuffleMapStage {}", self.id),
            StageKind::Result { .. } => write!(f, "ResultStage {}", self.id),
        }
    }
}

impl Stage {
    /// A stage not yet submitted, needed by no job yet.
    pub fn new(
        id: StageId,
        rdd: Arc<dyn RddBase>,
        kind: StageKind,
        parents: Vec<StageId>,
        first_job_id: JobId,
        name: String,
    ) -> Self {
        Stage {
            id,
            rdd,
            kind,
            parents,
            first_job_id,
            job_ids: BTreeSet::new(),
            next_attempt: 0,
            pending: BTreeSet::new(),
            failed_attempt_ids: BTreeSet::new(),
            attempt_epochs: std::collections::BTreeMap::new(),
            num_tasks: 0,
            completed_tasks: 0,
            submitted_at_ms: 0,
            name,
            indeterminate: false,
            barrier: false,
        }
    }

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
