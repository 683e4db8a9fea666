//! Speculative execution within a task set (Spark's `checkSpeculatableTasks`): stragglers get
//! a copy on another host, and the first attempt to succeed has the others killed.

use tracing::{debug, info};

use crate::task_set::SchedulerEvent;

use super::{TaskSetManager, KILLED_BY_OTHER_ATTEMPT};

/// Spark's `MedianHeap.median`: the middle value, or the mean of the two middle values of an
/// even count. `values` must not be empty.
pub(super) fn median(values: &[u64]) -> f64 {
    let mut v = values.to_vec();
    let mid = v.len() / 2;
    let (_, upper, _) = v.select_nth_unstable(mid);
    let upper = *upper as f64;
    if v.len() % 2 == 1 {
        return upper;
    }
    let lower = v[..mid].iter().copied().max().unwrap_or(0) as f64;
    (lower + upper) / 2.0
}

impl TaskSetManager {
    /// Marks running stragglers for a speculative copy (Spark's `checkSpeculatableTasks`); returns
    /// whether any task was newly marked.
    ///
    /// Once `ember.speculation.quantile` of the tasks have succeeded (at least one), a task with
    /// exactly one attempt running, for longer than `max(multiplier × median successful
    /// duration, min_time_to_speculation)`, is marked; the next offer that cannot launch a
    /// regular task may launch its copy. Before that, with
    /// `ember.speculation.task.duration.threshold` set (SPARK-29976), a task set that fits in
    /// one executor's slots has its tasks running longer than the threshold marked: such a
    /// small set may never reach the quantile while one task hangs. A task set of one task is
    /// speculated only that way: it has nothing to compare with.
    pub fn check_speculatable_tasks(&mut self, min_time_to_speculation: u64, now: u64) -> bool {
        let duration_threshold = self
            .config
            .speculation_task_duration_threshold_ms
            .filter(|t| *t > 0);
        if self.zombie
            || self.task_set.barrier
            || (self.num_tasks() == 1 && duration_threshold.is_none())
        {
            return false;
        }
        let min_finished =
            ((self.config.speculation_quantile * self.num_tasks() as f64).floor() as usize).max(1);
        let fits_one_executor =
            self.num_tasks() <= self.config.speculation_executor_slots.max(1) as usize;
        let threshold = if self.successful_durations.len() >= min_finished {
            (self.config.speculation_multiplier * median(&self.successful_durations))
                .max(min_time_to_speculation as f64)
        } else if let (Some(t), true) = (duration_threshold, fits_one_executor) {
            debug!("Tasks taking longer time than provided speculation threshold: {t}");
            t as f64
        } else {
            return false;
        };
        debug!(
            "Task length threshold for speculation in TaskSet {}: {threshold} ms",
            self.id
        );
        let marked: Vec<(usize, String)> = self
            .running
            .iter()
            .filter_map(|tid| self.task_infos.get(tid))
            .filter(|i| {
                !self.successful[i.index]
                    && self.copies_running[i.index] == 1
                    && !self.speculatable[i.index]
                    && now.saturating_sub(i.launch_time_ms) as f64 > threshold
            })
            .map(|i| (i.index, i.host.clone()))
            .collect();
        for (index, host) in &marked {
            self.speculatable[*index] = true;
            self.num_speculatable += 1;
            Self::push_pending(
                &mut self.pending_speculative,
                &self.task_set.tasks[*index].preferred_locations,
                *index,
            );
            info!(
                "Marking task {index} in stage {} (on {host}) as speculatable because it ran more \
                 than {threshold:.0} ms({} speculatable tasks in this taskset now)",
                self.id, self.num_speculatable
            );
        }
        !marked.is_empty()
    }

    /// Asks the executors to kill the running attempts of `winner`'s task other than `winner`.
    pub(super) fn kill_other_attempts(
        &mut self,
        winner: ember_common::TaskId,
        out: &mut Vec<SchedulerEvent>,
    ) {
        let Some(winner) = self.task_infos.get(&winner) else {
            return;
        };
        for &tid in &self.attempts[winner.index] {
            let Some(other) = self.task_infos.get(&tid) else {
                continue;
            };
            if tid == winner.task_id || !other.is_running() {
                continue;
            }
            info!(
                "Killing attempt {} for task {} in stage {} (TID {tid}) on {} as the attempt {} \
                 succeeded on {}",
                other.attempt_number,
                other.index,
                self.id,
                other.host,
                winner.attempt_number,
                winner.host
            );
            self.killed_by_other_attempt.insert(tid);
            out.push(SchedulerEvent::KillTask {
                task_id: tid,
                executor_id: other.executor_id.clone(),
                reason: KILLED_BY_OTHER_ATTEMPT.to_string(),
            });
        }
    }

    /// Drops a task's pending speculative copy (it succeeded, or has no attempt left running).
    pub(super) fn unmark_speculatable(&mut self, index: usize) {
        if self.speculatable[index] {
            self.speculatable[index] = false;
            self.num_speculatable -= 1;
        }
    }
}
