//! Scheduling pools: the order in which task sets are offered resources (Spark's `Pool`,
//! `SchedulingAlgorithm` and `SchedulableBuilder`).
//!
//! In `FIFO` mode the root pool holds the task sets directly and orders them by job, then stage.
//! In `FAIR` mode the root holds named pools (the [`PoolConfig`]s it is given, plus a `default`
//! pool that always exists) and orders the pools by Spark's fair-sharing rule; each pool orders
//! its own task sets by its own mode. Reading the pools from `fairscheduler.xml` is `ember`'s
//! job: this module only ever sees the parsed definitions.
//!
//! The tree holds only task-set keys: the running-task counts the comparators need are asked of
//! the caller when sorting, so nothing has to be kept in step on every launch and finish.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use tracing::{info, warn};

use ember_common::{JobId, StageId};

use crate::error::SchedulerError;

/// The pool every job goes to unless it names another (Spark's `default` pool).
pub const DEFAULT_POOL_NAME: &str = "default";

/// How a pool orders what it holds (`ember.scheduler.mode`, and `<schedulingMode>` of a pool).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SchedulingMode {
    /// First in, first out: lower job id first, then lower stage id.
    #[default]
    Fifo,
    /// Fair sharing by minimum share and weight.
    Fair,
}

impl SchedulingMode {
    /// `FIFO` or `FAIR`, in any case and with surrounding blanks; `None` for anything else.
    pub fn from_name(value: &str) -> Option<Self> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("FIFO") {
            Some(SchedulingMode::Fifo)
        } else if v.eq_ignore_ascii_case("FAIR") {
            Some(SchedulingMode::Fair)
        } else {
            None
        }
    }

    /// `"FIFO"` or `"FAIR"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchedulingMode::Fifo => "FIFO",
            SchedulingMode::Fair => "FAIR",
        }
    }

    /// Orders two schedulables by this mode's rule ([`fifo_cmp`] or [`fair_cmp`]).
    pub fn compare(self, a: &SchedulableStats<'_>, b: &SchedulableStats<'_>) -> Ordering {
        match self {
            SchedulingMode::Fifo => fifo_cmp(a, b),
            SchedulingMode::Fair => fair_cmp(a, b),
        }
    }
}

impl fmt::Display for SchedulingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SchedulingMode {
    type Err = SchedulerError;
    fn from_str(s: &str) -> Result<Self, SchedulerError> {
        Self::from_name(s).ok_or_else(|| SchedulerError::UnknownSchedulingMode(s.to_string()))
    }
}

/// One pool of the allocation file: `<pool name="x">` with its scheduling mode, weight and
/// minimum share (Spark's defaults: FIFO, 1, 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// The pool's name, which jobs choose it by (`ember.scheduler.pool`).
    pub name: String,
    /// How the pool orders its own task sets.
    pub mode: SchedulingMode,
    /// Share of the cluster relative to other pools, once every pool has its minimum share.
    pub weight: u32,
    /// Running tasks this pool is owed before pools above their minimum get more.
    pub min_share: u32,
}

impl PoolConfig {
    /// A pool with Spark's defaults: FIFO, weight 1, minShare 0.
    pub fn new(name: impl Into<String>) -> Self {
        PoolConfig {
            name: name.into(),
            mode: SchedulingMode::Fifo,
            weight: 1,
            min_share: 0,
        }
    }
}

/// What the comparators look at in a pool or task set (Spark's `Schedulable` fields).
///
/// For a task set: its name `TaskSet_<stage>.<attempt>`, priority = job id, its stage, running
/// tasks, minShare 0 and weight 1. For a pool: its name, priority 0, its running tasks (sum over
/// its task sets), minShare and weight from its configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulableStats<'a> {
    /// Breaks FAIR ties.
    pub name: &'a str,
    /// FIFO: the job id (lower first).
    pub priority: JobId,
    /// FIFO: the stage id, after the job.
    pub stage_id: StageId,
    /// Attempts running now.
    pub running_tasks: usize,
    /// FAIR: running tasks owed before others get more.
    pub min_share: u32,
    /// FAIR: relative share.
    pub weight: u32,
}

/// Spark's `FIFOSchedulingAlgorithm`: the earlier job first, then the earlier stage.
pub fn fifo_cmp(a: &SchedulableStats<'_>, b: &SchedulableStats<'_>) -> Ordering {
    a.priority
        .cmp(&b.priority)
        .then(a.stage_id.cmp(&b.stage_id))
}

/// Spark's `FairSchedulingAlgorithm`.
///
/// A schedulable below its minimum share ("needy") goes before one that is not. Among needy
/// ones, the lower running/minShare ratio goes first; among the others, the lower
/// running/weight ratio. Ties go by name.
pub fn fair_cmp(a: &SchedulableStats<'_>, b: &SchedulableStats<'_>) -> Ordering {
    let needy_a = (a.running_tasks as u64) < u64::from(a.min_share);
    let needy_b = (b.running_tasks as u64) < u64::from(b.min_share);
    let by_ratio = match (needy_a, needy_b) {
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        (true, true) => {
            let ra = a.running_tasks as f64 / f64::from(a.min_share.max(1));
            let rb = b.running_tasks as f64 / f64::from(b.min_share.max(1));
            ra.total_cmp(&rb)
        }
        (false, false) => {
            // A weight of 0 gives an infinite (or NaN for 0/0) ratio, as in Spark: such a pool
            // only runs when nothing else wants the cores.
            let ra = a.running_tasks as f64 / f64::from(a.weight);
            let rb = b.running_tasks as f64 / f64::from(b.weight);
            ra.total_cmp(&rb)
        }
    };
    by_ratio.then_with(|| a.name.cmp(b.name))
}

/// Identifies a task set: its stage and stage attempt.
pub type TaskSetKey = (StageId, u32);

/// A named pool of a FAIR root and the task sets it holds, in submission order.
#[derive(Clone, Debug)]
pub struct Pool {
    config: PoolConfig,
    task_sets: Vec<TaskSetKey>,
}

impl Pool {
    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The task sets in this pool, in submission order.
    pub fn task_sets(&self) -> &[TaskSetKey] {
        &self.task_sets
    }
}

/// The root of the pool tree (Spark's root `Pool` with its `SchedulableBuilder`).
#[derive(Clone, Debug)]
pub struct RootPool {
    mode: SchedulingMode,
    /// FAIR mode: the pools, in creation order.
    pools: Vec<Pool>,
    /// FIFO mode: the task sets, in submission order.
    task_sets: Vec<TaskSetKey>,
}

impl RootPool {
    /// Builds the tree. In FAIR mode it has one pool per configuration and a `default` pool
    /// unless the configuration defines one; in FIFO mode pools are not used (as in Spark, whose
    /// FIFO builder ignores the allocation file).
    pub fn new(mode: SchedulingMode, configs: &[PoolConfig]) -> Self {
        let mut root = RootPool {
            mode,
            pools: Vec::new(),
            task_sets: Vec::new(),
        };
        if mode == SchedulingMode::Fair {
            for c in configs {
                if root.pool(&c.name).is_some() {
                    warn!(
                        "Pool {} is configured more than once; keeping the first definition",
                        c.name
                    );
                    continue;
                }
                info!(
                    "Created pool: {}, schedulingMode: {}, minShare: {}, weight: {}",
                    c.name, c.mode, c.min_share, c.weight
                );
                root.pools.push(Pool {
                    config: c.clone(),
                    task_sets: Vec::new(),
                });
            }
            if root.pool(DEFAULT_POOL_NAME).is_none() {
                let c = PoolConfig::new(DEFAULT_POOL_NAME);
                info!(
                    "Created default pool: {}, schedulingMode: {}, minShare: {}, weight: {}",
                    c.name, c.mode, c.min_share, c.weight
                );
                root.pools.push(Pool {
                    config: c,
                    task_sets: Vec::new(),
                });
            }
        }
        root
    }

    /// The root's scheduling mode.
    pub fn mode(&self) -> SchedulingMode {
        self.mode
    }

    /// The pools (empty in FIFO mode).
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// The pool of this name, if it exists.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.config.name == name)
    }

    /// Adds a task set. In FAIR mode it goes to `pool_name` (`default` when empty); a pool that
    /// is not configured is created with the defaults, as Spark does, with a warning.
    pub fn add_task_set(&mut self, key: TaskSetKey, pool_name: &str) {
        if self.mode == SchedulingMode::Fifo {
            self.task_sets.push(key);
            return;
        }
        let name = if pool_name.trim().is_empty() {
            DEFAULT_POOL_NAME
        } else {
            pool_name
        };
        let idx = match self.pools.iter().position(|p| p.config.name == name) {
            Some(i) => i,
            None => {
                warn!(
                    "A job was submitted with scheduler pool {name}, which has not been \
                     configured. This can happen when the file that pools are read from isn't \
                     set, or when that file doesn't contain {name}. Created {name} with default \
                     configuration (schedulingMode: FIFO, minShare: 0, weight: 1)"
                );
                self.pools.push(Pool {
                    config: PoolConfig::new(name),
                    task_sets: Vec::new(),
                });
                self.pools.len() - 1
            }
        };
        self.pools[idx].task_sets.push(key);
        info!(
            "Added task set TaskSet_{}.{} tasks to pool {name}",
            key.0, key.1
        );
    }

    /// Removes a task set wherever it is; whether it was there.
    pub fn remove_task_set(&mut self, key: TaskSetKey) -> bool {
        let list = match self.mode {
            SchedulingMode::Fifo => Some(&mut self.task_sets),
            SchedulingMode::Fair => self
                .pools
                .iter_mut()
                .map(|p| &mut p.task_sets)
                .find(|ts| ts.contains(&key)),
        };
        match list.and_then(|l| l.iter().position(|k| *k == key).map(|i| (l, i))) {
            Some((l, i)) => {
                l.remove(i);
                true
            }
            None => false,
        }
    }

    /// Every task set in the order they are offered resources (Spark's
    /// `getSortedTaskSetQueue`). `stats` describes a task set; pools are described from their
    /// configuration and the sum of their task sets' running tasks. Sorting is stable, so equal
    /// task sets keep their submission order.
    pub fn sorted_task_sets<'a, F>(&self, stats: F) -> Vec<TaskSetKey>
    where
        F: Fn(TaskSetKey) -> SchedulableStats<'a>,
    {
        match self.mode {
            SchedulingMode::Fifo => sort_keys(SchedulingMode::Fifo, &self.task_sets, &stats),
            SchedulingMode::Fair => {
                let mut pools: Vec<(SchedulableStats<'_>, Vec<TaskSetKey>)> = self
                    .pools
                    .iter()
                    .map(|p| {
                        let running = p.task_sets.iter().map(|k| stats(*k).running_tasks).sum();
                        let pool_stats = SchedulableStats {
                            name: &p.config.name,
                            priority: 0,
                            stage_id: 0,
                            running_tasks: running,
                            min_share: p.config.min_share,
                            weight: p.config.weight,
                        };
                        (pool_stats, sort_keys(p.config.mode, &p.task_sets, &stats))
                    })
                    .collect();
                pools.sort_by(|a, b| fair_cmp(&a.0, &b.0));
                pools.into_iter().flat_map(|(_, keys)| keys).collect()
            }
        }
    }
}

fn sort_keys<'a, F>(mode: SchedulingMode, keys: &[TaskSetKey], stats: &F) -> Vec<TaskSetKey>
where
    F: Fn(TaskSetKey) -> SchedulableStats<'a>,
{
    let mut with_stats: Vec<(SchedulableStats<'a>, TaskSetKey)> =
        keys.iter().map(|k| (stats(*k), *k)).collect();
    with_stats.sort_by(|a, b| mode.compare(&a.0, &b.0));
    with_stats.into_iter().map(|(_, k)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn stats(
        name: &str,
        priority: JobId,
        stage: StageId,
        running: usize,
        min_share: u32,
        weight: u32,
    ) -> SchedulableStats<'_> {
        SchedulableStats {
            name,
            priority,
            stage_id: stage,
            running_tasks: running,
            min_share,
            weight,
        }
    }

    #[test]
    fn fifo_orders_by_job_then_stage() {
        let a = stats("TaskSet_5.0", 1, 5, 0, 0, 1);
        let b = stats("TaskSet_3.0", 1, 3, 9, 0, 1);
        let c = stats("TaskSet_1.0", 2, 1, 0, 0, 1);
        assert_eq!(fifo_cmp(&b, &a), Ordering::Less);
        assert_eq!(fifo_cmp(&a, &c), Ordering::Less);
        assert_eq!(fifo_cmp(&c, &b), Ordering::Greater);
    }

    #[test]
    fn fair_puts_needy_first_then_ratios_then_name() {
        // Needy (below minShare) beats a pool with fewer running tasks that is not needy.
        let needy = stats("b", 0, 0, 3, 4, 1);
        let idle = stats("a", 0, 0, 0, 0, 1);
        assert_eq!(fair_cmp(&needy, &idle), Ordering::Less);
        // Both needy: lower running/minShare wins (1/4 < 1/2).
        assert_eq!(
            fair_cmp(&stats("x", 0, 0, 1, 4, 1), &stats("y", 0, 0, 1, 2, 1)),
            Ordering::Less
        );
        // Neither needy: lower running/weight wins (4/4 < 3/1).
        assert_eq!(
            fair_cmp(&stats("x", 0, 0, 4, 0, 4), &stats("y", 0, 0, 3, 0, 1)),
            Ordering::Less
        );
        // Equal ratios: by name.
        assert_eq!(
            fair_cmp(&stats("a", 0, 0, 2, 0, 2), &stats("b", 0, 0, 1, 0, 1)),
            Ordering::Less
        );
        assert_eq!(
            fair_cmp(&stats("b", 0, 0, 2, 0, 2), &stats("a", 0, 0, 1, 0, 1)),
            Ordering::Greater
        );
    }

    #[test]
    fn fifo_root_sorts_task_sets() {
        let mut root = RootPool::new(SchedulingMode::Fifo, &[]);
        for key in [(4, 0), (2, 0), (3, 0)] {
            root.add_task_set(key, "ignored");
        }
        let job: HashMap<TaskSetKey, JobId> = [((4, 0), 0), ((2, 0), 1), ((3, 0), 0)].into();
        let sorted = root.sorted_task_sets(|k| stats("", job[&k], k.0, 0, 0, 1));
        assert_eq!(sorted, vec![(3, 0), (4, 0), (2, 0)]);
        assert!(root.pools().is_empty());
        assert!(root.remove_task_set((4, 0)));
        assert!(!root.remove_task_set((4, 0)));
    }

    #[test]
    fn fair_root_sorts_pools_by_weight_and_min_share() {
        let configs = vec![
            PoolConfig {
                name: "heavy".into(),
                mode: SchedulingMode::Fifo,
                weight: 3,
                min_share: 0,
            },
            PoolConfig {
                name: "light".into(),
                mode: SchedulingMode::Fifo,
                weight: 1,
                min_share: 0,
            },
            PoolConfig {
                name: "guaranteed".into(),
                mode: SchedulingMode::Fifo,
                weight: 1,
                min_share: 5,
            },
        ];
        let mut root = RootPool::new(SchedulingMode::Fair, &configs);
        assert!(
            root.pool(DEFAULT_POOL_NAME).is_some(),
            "default pool always exists"
        );
        root.add_task_set((1, 0), "heavy");
        root.add_task_set((2, 0), "light");
        root.add_task_set((3, 0), "guaranteed");
        root.add_task_set((4, 0), "");
        let mut running: HashMap<TaskSetKey, usize> =
            [((1, 0), 3), ((2, 0), 2), ((3, 0), 4), ((4, 0), 5)].into();
        let name = |k: TaskSetKey| format!("TaskSet_{}.{}", k.0, k.1);
        let names: HashMap<TaskSetKey, String> = [(1, 0), (2, 0), (3, 0), (4, 0)]
            .into_iter()
            .map(|k| (k, name(k)))
            .collect();
        let sort = |running: &HashMap<TaskSetKey, usize>| {
            root.sorted_task_sets(|k| stats(&names[&k], 0, k.0, running[&k], 0, 1))
        };
        // guaranteed is needy (4 < 5); then heavy 3/3=1 < light 2/1=2 < default 5/1.
        assert_eq!(sort(&running), vec![(3, 0), (1, 0), (2, 0), (4, 0)]);
        // Once guaranteed has its minimum share it competes by weight: 5/1.
        running.insert((3, 0), 5);
        running.insert((1, 0), 9); // heavy 9/3 = 3 > light 2
        assert_eq!(sort(&running), vec![(2, 0), (1, 0), (4, 0), (3, 0)]);
    }

    #[test]
    fn fair_pool_orders_its_task_sets_by_its_own_mode() {
        let configs = vec![PoolConfig {
            name: "p".into(),
            mode: SchedulingMode::Fair,
            weight: 1,
            min_share: 0,
        }];
        let mut root = RootPool::new(SchedulingMode::Fair, &configs);
        root.add_task_set((1, 0), "p");
        root.add_task_set((2, 0), "p");
        let running: HashMap<TaskSetKey, usize> = [((1, 0), 4), ((2, 0), 1)].into();
        let sorted = root.sorted_task_sets(|k| {
            stats(
                if k.0 == 1 {
                    "TaskSet_1.0"
                } else {
                    "TaskSet_2.0"
                },
                0,
                k.0,
                running[&k],
                0,
                1,
            )
        });
        assert_eq!(sorted, vec![(2, 0), (1, 0)]);
    }

    #[test]
    fn unknown_pool_is_created_with_defaults() {
        let mut root = RootPool::new(SchedulingMode::Fair, &[]);
        root.add_task_set((1, 0), "adhoc");
        let p = root.pool("adhoc").unwrap();
        assert_eq!(p.config(), &PoolConfig::new("adhoc"));
        assert_eq!(p.task_sets(), &[(1, 0)]);
        assert!(root.remove_task_set((1, 0)));
    }
}
