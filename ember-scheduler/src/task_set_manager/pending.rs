//! The pending lists of a task set (Spark's `PendingTasksByLocality`): which tasks wait for a
//! launch, by where they would rather run.

use rustc_hash::FxHashMap;

use ember_common::{ExecutorId, TaskLocation};

use super::TaskSetManager;

/// Indices of tasks waiting to launch, by where they would like to run (Spark's
/// `PendingTasksByLocality`).
///
/// The lists are stacks: tasks are pushed at the end and taken from the end, so that a failed
/// task, pushed back, is retried soon. A task sits in every list it qualifies for; launching it
/// from one list does not touch the others. Stale entries (launched or finished tasks) are
/// dropped when they reach the end of a list, which keeps every operation O(1) amortised.
#[derive(Debug, Default)]
pub(super) struct PendingTasks {
    pub(super) for_executor: FxHashMap<ExecutorId, Vec<usize>>,
    pub(super) for_host: FxHashMap<String, Vec<usize>>,
    pub(super) no_prefs: Vec<usize>,
    pub(super) all: Vec<usize>,
}

/// Whether a task still needs launching: not succeeded and no attempt running.
#[inline]
pub(super) fn needs_launch(index: usize, successful: &[bool], copies_running: &[u32]) -> bool {
    !successful[index] && copies_running[index] == 0
}

/// Takes the last entry of `list` that may run on the offered executor (`usable`) and should
/// launch (`launchable`), walking from the end (Spark's `dequeueTaskFromList`).
///
/// Entries the executor may not take (excluded there) stay for other executors. Entries it may
/// take that no longer need launching are stale and dropped. Without exclusions every entry is
/// usable, so this pops from the end as a stack does.
pub(super) fn dequeue_from_list(
    list: &mut Vec<usize>,
    usable: impl Fn(usize) -> bool,
    launchable: impl Fn(usize) -> bool,
) -> Option<usize> {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        let index = list[i];
        if !usable(index) {
            continue;
        }
        list.remove(i);
        if launchable(index) {
            return Some(index);
        }
    }
    None
}

/// Whether `list` still holds a task that needs launching, dropping stale entries at its end.
pub(super) fn has_pending(
    list: &mut Vec<usize>,
    successful: &[bool],
    copies_running: &[u32],
) -> bool {
    while let Some(&index) = list.last() {
        if needs_launch(index, successful, copies_running) {
            return true;
        }
        list.pop();
    }
    false
}

/// Whether any list of `map` still holds a task that needs launching. Stops at the first that
/// does (as Spark's `moreTasksToRunIn`), removing the emptied lists it walked past.
pub(super) fn any_pending_in(
    map: &mut FxHashMap<String, Vec<usize>>,
    successful: &[bool],
    copies_running: &[u32],
) -> bool {
    let mut emptied: Vec<String> = Vec::new();
    let mut found = false;
    for (key, list) in map.iter_mut() {
        if has_pending(list, successful, copies_running) {
            found = true;
            break;
        }
        emptied.push(key.clone());
    }
    for key in emptied {
        map.remove(&key);
    }
    found
}

impl TaskSetManager {
    /// Puts a task on every pending list it belongs to (Spark's `addPendingTask`).
    pub(super) fn add_pending_task(&mut self, index: usize) {
        if self.zombie {
            return;
        }
        Self::push_pending(
            &mut self.pending,
            &self.task_set.tasks[index].preferred_locations,
            index,
        );
    }

    /// Puts a task on every list of `pending` its preferences qualify it for.
    pub(super) fn push_pending(pending: &mut PendingTasks, prefs: &[TaskLocation], index: usize) {
        for loc in prefs {
            if let TaskLocation::Executor { executor_id, .. } = loc {
                pending
                    .for_executor
                    .entry(executor_id.clone())
                    .or_default()
                    .push(index);
            }
            pending
                .for_host
                .entry(loc.host().to_string())
                .or_default()
                .push(index);
        }
        if prefs.is_empty() {
            pending.no_prefs.push(index);
        }
        pending.all.push(index);
    }
}
