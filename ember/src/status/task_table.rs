//! A stage's tasks in the UI's store, by task id.

use crate::task::TaskId;

use super::store::Task;

/// A stage's task attempts in task-id order.
///
/// The scheduler numbers attempts as it launches them, so a stage's attempts arrive in
/// increasing id order: an insert is a push at the end and a lookup a binary search. The
/// `BTreeMap` this replaces spent about 450 instructions an insert in W1 (10,000 one-element
/// tasks), a third of the store's work for a task start (callgrind, BENCHMARKS.md).
#[derive(Clone, Debug, Default)]
pub struct TaskTable {
    tasks: Vec<(TaskId, Task)>,
}

impl TaskTable {
    /// Adds an attempt, or replaces the one with its id.
    #[inline]
    pub fn insert(&mut self, id: TaskId, task: Task) {
        if self.tasks.last().is_none_or(|&(last, _)| last < id) {
            self.tasks.push((id, task));
            return;
        }
        match self.position(id) {
            Ok(i) => self.tasks[i].1 = task,
            Err(i) => self.tasks.insert(i, (id, task)),
        }
    }

    /// Makes room for `n` more attempts at once: a stage's table reaches its task count (or
    /// the retention limit) anyway, and growing by doubling copied it several times over.
    pub fn reserve(&mut self, n: usize) {
        self.tasks.reserve(n);
    }

    fn position(&self, id: TaskId) -> Result<usize, usize> {
        self.tasks.binary_search_by_key(&id, |(t, _)| *t)
    }

    /// Attempts looked for among the last launched before a binary search.
    const RECENT: usize = 8;

    /// [`Self::position`] of an attempt that is likely among the last launched: a task's end
    /// is most often that of one launched a few launches ago, since each end frees the slot
    /// the next launch takes.
    fn recent_position(&self, id: TaskId) -> Option<usize> {
        let from = self.tasks.len().saturating_sub(Self::RECENT);
        match self.tasks[from..].iter().rposition(|&(t, _)| t == id) {
            Some(i) => Some(from + i),
            None => self.position(id).ok(),
        }
    }

    /// The attempt with this id, to update.
    pub fn get_mut(&mut self, id: TaskId) -> Option<&mut Task> {
        self.recent_position(id).map(|i| &mut self.tasks[i].1)
    }

    /// Attempts held.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Ids and attempts, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (TaskId, &Task)> {
        self.tasks.iter().map(|(id, t)| (*id, t))
    }

    /// Attempts, in id order.
    pub fn values(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter().map(|(_, t)| t)
    }

    /// Keeps the attempts for which `keep` says so, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(TaskId, &Task) -> bool) {
        self.tasks.retain(|(id, t)| keep(*id, t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::store::tests::task_info;

    fn task(id: TaskId) -> Task {
        Task {
            info: task_info(id, 0),
            error_message: None,
            metrics: None,
        }
    }

    #[test]
    fn attempts_in_any_order_are_kept_in_id_order_and_found() {
        let mut t = TaskTable::default();
        for id in [5, 1, 9, 3, 7, 10, 2] {
            t.insert(id, task(id));
        }
        assert_eq!(t.iter().map(|(id, _)| id).collect::<Vec<_>>(), [1, 2, 3, 5, 7, 9, 10]);
        assert_eq!(t.get_mut(7).map(|x| x.info.task_id), Some(7));
        assert!(t.get_mut(4).is_none());
        t.get_mut(3).unwrap().error_message = Some("lost".into());
        t.insert(3, task(3));
        assert_eq!(t.get_mut(3).unwrap().error_message, None, "replaced");
        assert_eq!(t.len(), 7);
        t.retain(|id, _| id % 2 == 1);
        assert!(!t.is_empty());
        assert_eq!(t.values().map(|x| x.info.task_id).collect::<Vec<_>>(), [1, 3, 5, 7, 9]);
    }

    #[test]
    fn attempts_are_found_among_the_last_launched_and_further_back() {
        let mut t = TaskTable::default();
        for id in (0..100).map(|i| i * 2) {
            t.insert(id, task(id));
        }
        for id in [198, 190, 186, 184, 100, 0] {
            assert_eq!(t.get_mut(id).map(|x| x.info.task_id), Some(id));
        }
        for missing in [199, 185, 101, 1] {
            assert!(t.get_mut(missing).is_none());
        }
        assert!(TaskTable::default().get_mut(0).is_none());
    }
}
