//! Delay scheduling within a task set (Spark's `TaskSetManager` locality levels and
//! `getAllowedLocalityLevel`): which levels are worth trying, how long to wait at each, and the
//! search of the pending lists up to an allowed level.

use tracing::debug;

use crate::live_executors::LiveExecutors;
use crate::locality::TaskLocality;

use super::pending::{any_pending_in, dequeue_from_list, has_pending, needs_launch};
use super::TaskSetManager;

impl TaskSetManager {
    /// The levels worth trying given the pending tasks and the live executors (Spark's
    /// `computeValidLocalityLevels`): `ProcessLocal` if a pending task prefers a live executor,
    /// `NodeLocal` if one prefers a host with a live executor, `NoPref` if some task has no
    /// preference, and always `Any`. `RackLocal` never appears: Ember has no rack topology
    /// (Spark's default `getRackForHost` also knows none).
    pub fn compute_valid_locality_levels(&self, live: &LiveExecutors) -> Vec<TaskLocality> {
        let mut levels = Vec::with_capacity(4);
        if self
            .pending
            .for_executor
            .keys()
            .any(|e| live.is_executor_alive(e))
        {
            levels.push(TaskLocality::ProcessLocal);
        }
        if self
            .pending
            .for_host
            .keys()
            .any(|h| live.has_executors_alive_on_host(h))
        {
            levels.push(TaskLocality::NodeLocal);
        }
        if !self.pending.no_prefs.is_empty() {
            levels.push(TaskLocality::NoPref);
        }
        levels.push(TaskLocality::Any);
        debug!(
            "Valid locality levels for TaskSet {}: {:?}",
            self.id, levels
        );
        levels
    }

    /// Recomputes the locality levels after executors came or went (Spark's
    /// `recomputeLocality`), staying at the same level (or the next worse one that remains
    /// valid).
    ///
    /// When levels better than the current one appeared (SPARK-31837), the set moves to the
    /// first new level instead: a task set that fell to `ANY` before its preferred executors
    /// registered would otherwise place its tasks anywhere although they could now run locally.
    /// The wait timer is left as it is, as in Spark.
    pub fn recompute_locality(&mut self, live: &LiveExecutors) {
        if self.zombie {
            return;
        }
        let previous_index = self.current_locality_index;
        let previous_levels = std::mem::take(&mut self.locality_levels);
        let previous = previous_levels[previous_index];
        self.locality_levels = self.compute_valid_locality_levels(live);
        self.locality_waits = self
            .locality_levels
            .iter()
            .map(|l| self.config.locality_waits.wait_ms(*l))
            .collect();
        self.current_locality_index = self.locality_index(previous);
        if self.current_locality_index > previous_index {
            if let Some(&added) = self
                .locality_levels
                .iter()
                .find(|l| !previous_levels.contains(l))
            {
                self.current_locality_index = self.locality_index(added);
            }
        }
    }

    /// Index in the current levels of `locality`, or of the next worse level present (the last
    /// level is `Any`, so this always ends).
    pub(super) fn locality_index(&self, locality: TaskLocality) -> usize {
        let mut i = 0;
        while i + 1 < self.locality_levels.len() && locality > self.locality_levels[i] {
            i += 1;
        }
        i
    }

    /// The worst level delay scheduling allows at `now` (Spark's `getAllowedLocalityLevel`).
    ///
    /// A level with no task left to launch is skipped at once (nothing to wait for, and the
    /// timer restarts). Otherwise we move one level down each time the level's wait has passed
    /// since the timer was last reset; the timer then advances by that wait, so the next
    /// level's wait is measured from when the previous one expired rather than from `now`.
    pub fn get_allowed_locality(&mut self, now: u64) -> TaskLocality {
        while self.current_locality_index + 1 < self.locality_levels.len() {
            let level = self.locality_levels[self.current_locality_index];
            let (succ, copies) = (&self.successful[..], &self.copies_running[..]);
            let more_tasks = match level {
                TaskLocality::ProcessLocal => {
                    any_pending_in(&mut self.pending.for_executor, succ, copies)
                }
                TaskLocality::NodeLocal => any_pending_in(&mut self.pending.for_host, succ, copies),
                TaskLocality::NoPref => has_pending(&mut self.pending.no_prefs, succ, copies),
                TaskLocality::RackLocal | TaskLocality::Any => false,
            };
            let next = self.locality_levels[self.current_locality_index + 1];
            if !more_tasks {
                self.last_locality_wait_reset_ms = now;
                debug!("No tasks for locality level {level}, so moving to locality level {next}");
                self.current_locality_index += 1;
            } else if now.saturating_sub(self.last_locality_wait_reset_ms)
                >= self.locality_waits[self.current_locality_index]
            {
                let wait = self.locality_waits[self.current_locality_index];
                self.last_locality_wait_reset_ms += wait;
                debug!("Moving to {next} after waiting for {wait}ms");
                self.current_locality_index += 1;
            } else {
                return level;
            }
        }
        self.locality_levels[self.current_locality_index]
    }

    /// When delay scheduling will next allow a worse level, if tasks are pending and we are not
    /// already at the worst level. Past times are possible (nothing has been offered since the
    /// wait expired): offer again as soon as cores are free.
    pub fn next_wakeup_ms(&self) -> Option<u64> {
        if self.zombie
            || self.pending_tasks() == 0
            || self.current_locality_index + 1 >= self.locality_levels.len()
        {
            return None;
        }
        Some(
            self.last_locality_wait_reset_ms
                .saturating_add(self.locality_waits[self.current_locality_index]),
        )
    }

    /// Takes the next task that may run on `exec_id`/`host` at `max_locality` or better, with the
    /// level it would run at and whether it is a speculative copy (Spark's `dequeueTask`): a task
    /// waiting for its first (or next) attempt if there is one, else a speculative copy of a
    /// straggler. Tasks without preferences are reported as `ProcessLocal`, as Spark does: they
    /// are as good as local anywhere.
    pub(super) fn dequeue_task(
        &mut self,
        exec_id: &str,
        host: &str,
        max_locality: TaskLocality,
    ) -> Option<(usize, TaskLocality, bool)> {
        if let Some((index, locality)) = self.dequeue_from(exec_id, host, max_locality, false) {
            return Some((index, locality, false));
        }
        if self.num_speculatable == 0 {
            return None;
        }
        let (index, locality) = self.dequeue_from(exec_id, host, max_locality, true)?;
        self.speculatable[index] = false;
        self.num_speculatable -= 1;
        Some((index, locality, true))
    }

    /// Searches the regular or the speculative pending lists (Spark's `dequeueTaskHelper`).
    ///
    /// A task is skipped where `excludeOnFailure` excludes it. A speculative copy also never goes
    /// to an executor or host that already ran an attempt of its task: if the first attempt is
    /// slow because of its machine, a copy there would be slow too.
    fn dequeue_from(
        &mut self,
        exec_id: &str,
        host: &str,
        max_locality: TaskLocality,
        speculative: bool,
    ) -> Option<(usize, TaskLocality)> {
        let (succ, copies, spec) = (
            &self.successful[..],
            &self.copies_running[..],
            &self.speculatable[..],
        );
        let (attempts, infos, excludelist) =
            (&self.attempts, &self.task_infos, self.excludelist.as_ref());
        let usable = |index: usize| {
            let excluded = excludelist.is_some_and(|l| {
                l.is_executor_excluded_for_task(exec_id, index)
                    || l.is_node_excluded_for_task(host, index)
            });
            let ran_here = speculative
                && attempts[index]
                    .iter()
                    .filter_map(|tid| infos.get(tid))
                    .any(|i| i.host == host || i.executor_id == exec_id);
            !excluded && !ran_here
        };
        // A copy is only worth launching while exactly the one slow attempt runs.
        let launchable = |index: usize| {
            if speculative {
                spec[index] && !succ[index] && copies[index] == 1
            } else {
                needs_launch(index, succ, copies)
            }
        };
        let pending = if speculative {
            &mut self.pending_speculative
        } else {
            &mut self.pending
        };
        if let Some(list) = pending.for_executor.get_mut(exec_id) {
            if let Some(i) = dequeue_from_list(list, usable, launchable) {
                return Some((i, TaskLocality::ProcessLocal));
            }
        }
        if max_locality.allows(TaskLocality::NodeLocal) {
            if let Some(list) = pending.for_host.get_mut(host) {
                if let Some(i) = dequeue_from_list(list, usable, launchable) {
                    return Some((i, TaskLocality::NodeLocal));
                }
            }
        }
        if max_locality.allows(TaskLocality::NoPref) {
            if let Some(i) = dequeue_from_list(&mut pending.no_prefs, usable, launchable) {
                return Some((i, TaskLocality::ProcessLocal));
            }
        }
        // RackLocal: no racks are known, so there is no rack list to search.
        if max_locality.allows(TaskLocality::Any) {
            if let Some(i) = dequeue_from_list(&mut pending.all, usable, launchable) {
                return Some((i, TaskLocality::Any));
            }
        }
        None
    }
}
