//! The barrier coordinator (Spark's `BarrierCoordinator`): the driver's side of
//! `BarrierTaskContext.barrier()` and `all_gather()`.
//!
//! Every task of a barrier stage attempt sends one sync request per call; when all the attempt's
//! tasks have asked for the same sync, each gets the messages of all of them, ordered by
//! partition. A plain state machine: the caller hands in each request with a token to answer it
//! by (an RPC's reply, a channel) and carries out the replies it gets back; timeouts come from
//! the time it is given ([`BarrierCoordinator::check_timeouts`] at
//! [`BarrierCoordinator::next_deadline_ms`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use tracing::info;

use ember_common::{StageId, TaskId};

/// Which call a task made (Spark's `RequestMethod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SyncMethod {
    /// `barrier()`.
    Barrier,
    /// `all_gather(message)`.
    AllGather,
}

impl fmt::Display for SyncMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncMethod::Barrier => "BARRIER",
            SyncMethod::AllGather => "ALL_GATHER",
        })
    }
}

/// One task's request to sync (Spark's `RequestToSync`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRequest {
    /// Tasks of the stage attempt, as the task knows it.
    pub num_tasks: usize,
    /// The stage.
    pub stage_id: StageId,
    /// The stage attempt.
    pub stage_attempt_id: u32,
    /// The task attempt asking.
    pub task_attempt_id: TaskId,
    /// How many syncs this task has finished (the epoch it asks to finish).
    pub barrier_epoch: u64,
    /// The task's partition: where its message goes in the answer.
    pub partition_id: usize,
    /// What it shares (empty for `barrier()`).
    pub message: String,
    /// The call.
    pub method: SyncMethod,
}

/// "Stage 1 (Attempt 0)": Spark's `ContextBarrierId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BarrierId {
    /// The stage.
    pub stage_id: StageId,
    /// The stage attempt.
    pub stage_attempt_id: u32,
}

impl fmt::Display for BarrierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Stage {} (Attempt {})",
            self.stage_id, self.stage_attempt_id
        )
    }
}

/// The answer to one requester: every task's message by partition, or why the sync failed.
pub type SyncReply<R> = (R, Result<Vec<String>, String>);

struct BarrierState<R> {
    num_tasks: usize,
    epoch: u64,
    requesters: Vec<R>,
    messages: BTreeMap<usize, String>,
    methods: BTreeSet<SyncMethod>,
    /// When the sync in progress times out (set by its first request).
    deadline_ms: Option<u64>,
}

/// The coordinator's state: one barrier per running barrier stage attempt. `R` is whatever
/// answers a request.
pub struct BarrierCoordinator<R> {
    timeout_ms: u64,
    states: BTreeMap<BarrierId, BarrierState<R>>,
}

impl<R> BarrierCoordinator<R> {
    /// A coordinator whose syncs fail when not every task asked within `timeout_ms`
    /// (`ember.barrier.sync.timeout`).
    pub fn new(timeout_ms: u64) -> Self {
        BarrierCoordinator {
            timeout_ms,
            states: BTreeMap::new(),
        }
    }

    /// Handles one request (Spark's `ContextBarrierState.handleRequest`); returns the replies
    /// now due: none while the sync waits for more tasks, all of them when it completes or
    /// fails.
    pub fn handle_request(
        &mut self,
        request: SyncRequest,
        requester: R,
        now_ms: u64,
    ) -> Vec<SyncReply<R>> {
        let id = BarrierId {
            stage_id: request.stage_id,
            stage_attempt_id: request.stage_attempt_id,
        };
        let task = request.task_attempt_id;
        let state = self.states.entry(id).or_insert_with(|| BarrierState {
            num_tasks: request.num_tasks,
            epoch: 0,
            requesters: Vec::new(),
            messages: BTreeMap::new(),
            methods: BTreeSet::new(),
            deadline_ms: None,
        });
        state.methods.insert(request.method);
        if state.methods.len() > 1 {
            let methods: Vec<String> = state.methods.iter().map(|m| m.to_string()).collect();
            let error = format!(
                "Different barrier sync types found for the sync {id}: {}. Please use the same \
                 barrier sync type within a single sync.",
                methods.join(", ")
            );
            let mut replies: Vec<SyncReply<R>> = state
                .requesters
                .drain(..)
                .map(|r| (r, Err(error.clone())))
                .collect();
            replies.push((requester, Err(error)));
            state.messages.clear();
            state.methods.clear();
            state.deadline_ms = None;
            return replies;
        }
        if request.num_tasks != state.num_tasks {
            let error = format!(
                "requirement failed: Number of tasks of {id} is {} from Task {task}, previously \
                 it was {}.",
                request.num_tasks, state.num_tasks
            );
            return vec![(requester, Err(error))];
        }
        if request.barrier_epoch != state.epoch {
            let error = format!(
                "The request to sync of {id} with barrier epoch {} has already finished. Maybe \
                 task {task} is not properly killed.",
                state.epoch
            );
            return vec![(requester, Err(error))];
        }
        if state.requesters.is_empty() {
            state.deadline_ms = Some(now_ms.saturating_add(self.timeout_ms));
        }
        state.requesters.push(requester);
        state.messages.insert(request.partition_id, request.message);
        info!(
            "Barrier sync epoch {} from {id} received update from Task {task}, current progress: \
             {}/{}.",
            state.epoch,
            state.requesters.len(),
            state.num_tasks
        );
        if state.requesters.len() < state.num_tasks {
            return Vec::new();
        }
        info!(
            "Barrier sync epoch {} from {id} received all updates from tasks, finished \
             successfully.",
            state.epoch
        );
        let messages: Vec<String> = std::mem::take(&mut state.messages).into_values().collect();
        state.epoch += 1;
        state.methods.clear();
        state.deadline_ms = None;
        state
            .requesters
            .drain(..)
            .map(|r| (r, Ok(messages.clone())))
            .collect()
    }

    /// When the earliest sync in progress times out.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.states.values().filter_map(|s| s.deadline_ms).min()
    }

    /// Fails the syncs not complete by their deadline, and forgets their stage attempts (Spark's
    /// `TimerTask` of `ContextBarrierState`).
    pub fn check_timeouts(&mut self, now_ms: u64) -> Vec<SyncReply<R>> {
        let expired: Vec<BarrierId> = self
            .states
            .iter()
            .filter(|(_, s)| s.deadline_ms.is_some_and(|d| d <= now_ms))
            .map(|(id, _)| *id)
            .collect();
        let secs = self.timeout_ms / 1000;
        let mut replies = Vec::new();
        for id in expired {
            if let Some(state) = self.states.remove(&id) {
                let error = format!(
                    "The coordinator didn't get all barrier sync requests for barrier epoch {} \
                     from {id} within {secs} second(s).",
                    state.epoch
                );
                replies.extend(
                    state
                        .requesters
                        .into_iter()
                        .map(|r| (r, Err(error.clone()))),
                );
            }
        }
        replies
    }

    /// A stage attempt ended (Spark's `onStageCompleted`): its state goes, so a stale task that
    /// still asks finds no sync to join. Tasks still waiting are answered with an error rather
    /// than left to hang (Spark kills them; their answer no longer matters).
    pub fn stage_attempt_ended(
        &mut self,
        stage_id: StageId,
        stage_attempt_id: u32,
    ) -> Vec<SyncReply<R>> {
        let id = BarrierId {
            stage_id,
            stage_attempt_id,
        };
        let Some(state) = self.states.remove(&id) else {
            return Vec::new();
        };
        let error = format!(
            "{id} ended before every task asked for barrier epoch {}.",
            state.epoch
        );
        state
            .requesters
            .into_iter()
            .map(|r| (r, Err(error.clone())))
            .collect()
    }

    /// Stage attempts with a barrier in progress or done.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether no stage attempt has a barrier.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(task: TaskId, partition: usize, epoch: u64, method: SyncMethod) -> SyncRequest {
        SyncRequest {
            num_tasks: 2,
            stage_id: 0,
            stage_attempt_id: 0,
            task_attempt_id: task,
            barrier_epoch: epoch,
            partition_id: partition,
            message: format!("m{partition}"),
            method,
        }
    }

    #[test]
    fn all_gather_answers_everyone_in_partition_order_and_moves_the_epoch() {
        let mut c = BarrierCoordinator::new(1000);
        assert!(c
            .handle_request(request(11, 1, 0, SyncMethod::AllGather), "b", 0)
            .is_empty());
        let replies = c.handle_request(request(10, 0, 0, SyncMethod::AllGather), "a", 5);
        let want: Result<Vec<String>, String> = Ok(vec!["m0".into(), "m1".into()]);
        assert_eq!(replies, vec![("b", want.clone()), ("a", want)]);
        assert_eq!(c.next_deadline_ms(), None);
        // Epoch 1: a second sync of the same tasks, then a stale request of epoch 0.
        assert!(c
            .handle_request(request(10, 0, 1, SyncMethod::Barrier), "a", 10)
            .is_empty());
        let stale = c.handle_request(request(12, 1, 0, SyncMethod::Barrier), "old", 11);
        assert_eq!(
            stale,
            vec![(
                "old",
                Err(
                    "The request to sync of Stage 0 (Attempt 0) with barrier epoch 1 has \
                     already finished. Maybe task 12 is not properly killed."
                        .to_string()
                )
            )]
        );
        let replies = c.handle_request(request(11, 1, 1, SyncMethod::Barrier), "b", 12);
        assert_eq!(replies.len(), 2);
        assert!(replies.iter().all(|(_, r)| r.is_ok()));
    }

    #[test]
    fn mixed_methods_fail_every_requester_of_the_sync() {
        let mut c = BarrierCoordinator::new(1000);
        assert!(c
            .handle_request(request(10, 0, 0, SyncMethod::Barrier), "a", 0)
            .is_empty());
        let replies = c.handle_request(request(11, 1, 0, SyncMethod::AllGather), "b", 1);
        let error = "Different barrier sync types found for the sync Stage 0 (Attempt 0): \
                     BARRIER, ALL_GATHER. Please use the same barrier sync type within a single \
                     sync."
            .to_string();
        assert_eq!(replies, vec![("a", Err(error.clone())), ("b", Err(error))]);
        assert_eq!(c.next_deadline_ms(), None);
    }

    #[test]
    fn a_sync_not_complete_within_the_timeout_fails_and_is_forgotten() {
        let mut c = BarrierCoordinator::new(2000);
        assert!(c
            .handle_request(request(10, 0, 0, SyncMethod::Barrier), "a", 100)
            .is_empty());
        assert_eq!(c.next_deadline_ms(), Some(2100));
        assert!(c.check_timeouts(2099).is_empty());
        let replies = c.check_timeouts(2100);
        assert_eq!(
            replies,
            vec![(
                "a",
                Err(
                    "The coordinator didn't get all barrier sync requests for barrier epoch 0 \
                     from Stage 0 (Attempt 0) within 2 second(s)."
                        .to_string()
                )
            )]
        );
        assert!(c.is_empty());
    }

    #[test]
    fn a_wrong_task_count_and_a_finished_stage_attempt_fail_their_requesters() {
        let mut c = BarrierCoordinator::new(1000);
        assert!(c
            .handle_request(request(10, 0, 0, SyncMethod::Barrier), "a", 0)
            .is_empty());
        let mut odd = request(11, 1, 0, SyncMethod::Barrier);
        odd.num_tasks = 3;
        let replies = c.handle_request(odd, "b", 0);
        assert_eq!(replies.len(), 1);
        assert!(replies[0]
            .1
            .as_ref()
            .is_err_and(|e| e.contains("Number of tasks of Stage 0 (Attempt 0) is 3")));
        let ended = c.stage_attempt_ended(0, 0);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].0, "a");
        assert!(c.is_empty());
    }
}
