//! Locality levels of delay scheduling (Spark's `TaskLocality`) and the wait at each level.

use std::fmt;

/// How close a task runs to its data. The order is Spark's: a task set tries the levels from
/// `ProcessLocal` (best) towards `Any` (worst), and "a launch at most at level L" allows every
/// level `<= L`.
///
/// `NoPref` sits between `NodeLocal` and `RackLocal` on purpose: tasks without preferences are
/// handed out right after node-local ones, before anything that would cross racks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskLocality {
    /// The partition is cached in the executor's memory.
    ProcessLocal,
    /// The data is on a disk of the executor's host.
    NodeLocal,
    /// The task has no preferred location.
    NoPref,
    /// The data is on a host of the executor's rack.
    RackLocal,
    /// Anywhere.
    Any,
}

impl TaskLocality {
    /// Every level, best first.
    pub const ALL: [TaskLocality; 5] = [
        TaskLocality::ProcessLocal,
        TaskLocality::NodeLocal,
        TaskLocality::NoPref,
        TaskLocality::RackLocal,
        TaskLocality::Any,
    ];

    /// Whether a search limited to `self` may hand out a task at `level` (Spark's
    /// `TaskLocality.isAllowed(constraint, condition)`).
    #[inline]
    pub fn allows(self, level: TaskLocality) -> bool {
        level <= self
    }

    /// Spark's name of the level, as it appears in logs and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskLocality::ProcessLocal => "PROCESS_LOCAL",
            TaskLocality::NodeLocal => "NODE_LOCAL",
            TaskLocality::NoPref => "NO_PREF",
            TaskLocality::RackLocal => "RACK_LOCAL",
            TaskLocality::Any => "ANY",
        }
    }
}

impl fmt::Display for TaskLocality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long a task set waits at a level for a better-placed offer before it accepts the next
/// level (`ember.locality.wait.process`, `.node`, `.rack`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalityWaits {
    /// The wait at `PROCESS_LOCAL`.
    pub process_ms: u64,
    /// The wait at `NODE_LOCAL`.
    pub node_ms: u64,
    /// The wait at `RACK_LOCAL`.
    pub rack_ms: u64,
}

impl LocalityWaits {
    /// The same wait at every level.
    pub fn uniform(ms: u64) -> Self {
        LocalityWaits {
            process_ms: ms,
            node_ms: ms,
            rack_ms: ms,
        }
    }

    /// The wait at `level`. `NoPref` and `Any` never wait: there is nothing better to wait for
    /// within them (Spark's `getLocalityWait`).
    pub fn wait_ms(&self, level: TaskLocality) -> u64 {
        match level {
            TaskLocality::ProcessLocal => self.process_ms,
            TaskLocality::NodeLocal => self.node_ms,
            TaskLocality::RackLocal => self.rack_ms,
            TaskLocality::NoPref | TaskLocality::Any => 0,
        }
    }
}

impl Default for LocalityWaits {
    /// Spark's default `spark.locality.wait` of 3 s at every level.
    fn default() -> Self {
        LocalityWaits::uniform(3000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_names_are_sparks() {
        let mut sorted = TaskLocality::ALL;
        sorted.sort();
        assert_eq!(sorted, TaskLocality::ALL);
        assert!(TaskLocality::NodeLocal < TaskLocality::NoPref);
        assert!(TaskLocality::NoPref < TaskLocality::RackLocal);
        let names: Vec<String> = TaskLocality::ALL.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            names,
            [
                "PROCESS_LOCAL",
                "NODE_LOCAL",
                "NO_PREF",
                "RACK_LOCAL",
                "ANY"
            ]
        );
    }

    #[test]
    fn allows_every_better_level() {
        assert!(TaskLocality::Any.allows(TaskLocality::ProcessLocal));
        assert!(TaskLocality::NodeLocal.allows(TaskLocality::NodeLocal));
        assert!(!TaskLocality::NodeLocal.allows(TaskLocality::NoPref));
        assert!(!TaskLocality::ProcessLocal.allows(TaskLocality::NodeLocal));
    }

    #[test]
    fn waits_per_level() {
        let w = LocalityWaits {
            process_ms: 1,
            node_ms: 2,
            rack_ms: 3,
        };
        assert_eq!(w.wait_ms(TaskLocality::ProcessLocal), 1);
        assert_eq!(w.wait_ms(TaskLocality::NodeLocal), 2);
        assert_eq!(w.wait_ms(TaskLocality::RackLocal), 3);
        assert_eq!(w.wait_ms(TaskLocality::NoPref), 0);
        assert_eq!(w.wait_ms(TaskLocality::Any), 0);
    }
}
