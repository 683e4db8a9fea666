//! Deterministic simulation of the scheduler core under failures (in the manner of
//! FoundationDB's and TigerBeetle's simulators): the real `DagScheduler` and `TaskSchedulerImpl`
//! on a `ManualClock`, with simulated executors whose tasks take seeded random times, fail,
//! hit fetch failures, or die with their executor. No threads, no processes, no sleeping: a seed
//! replays exactly the same run, which the tests check by comparing traces.
//!
//! The job is two shuffles deep (map stage A → map stage B → result stage), so a lost executor
//! can take away outputs of a finished stage that a later stage still needs. Its graph is made of
//! the core's own traits ([`RddBase`], [`ShuffleDependencyBase`]) over fakes, and its task bodies
//! are opaque markers: the simulation needs nothing from `ember`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use ember_common::{
    BlockManagerId, DirectTaskResult, MapStatus, ShuffleId, StatusUpdate, TaskEndReason, TaskId,
    TaskMetricsSnapshot, TaskOutcome, TaskState, TaskValue,
};

use crate::cache_locations::NoCache;
use crate::clock::ManualClock;
use crate::config::SchedulerConfig;
use crate::dag_scheduler::{DagAction, DagScheduler, JobEvent, JobSubmission};
use crate::map_output_tracker::MapOutputTracker;
use crate::rdd::RddBase;
use crate::task::{TaskBody, TaskDescription};
use crate::task_scheduler::TaskSchedulerImpl;
use crate::task_set::{SchedulerEvent, WorkerOffer};
use crate::test_support::{FakeRdd, FakeShuffle, TestBody};

/// Shuffle A: 8 maps → 4 reduces; shuffle B: 4 maps → 3 reduces; the job's result stage reads B.
/// With `indeterminate`, the middle RDD is order-sensitive over shuffle A's unordered output (as
/// `shuffle().repartition(n)`), so stage 1 and the result stage are indeterminate.
fn two_shuffle_job(indeterminate: bool) -> Arc<dyn RddBase> {
    let source = FakeRdd::new(0, 8, Vec::new()).shared();
    let middle = FakeRdd {
        order_sensitive: indeterminate,
        ..FakeRdd::new(1, 4, vec![FakeShuffle::dependency(0, source, 4)])
    }
    .shared();
    FakeRdd::new(2, 3, vec![FakeShuffle::dependency(1, middle, 3)]).shared()
}

/// Which shuffle a task reads, from what it writes (the job's shape above).
fn shuffle_read_by(body: &TaskBody) -> Option<ShuffleId> {
    match body.downcast_ref::<TestBody>() {
        Some(TestBody::ShuffleMap(0)) | None => None,
        Some(TestBody::ShuffleMap(_)) => Some(0),
        Some(TestBody::Result) => Some(1),
    }
}

/// Fault rates and limits of one run.
#[derive(Clone, Copy, Debug)]
struct Faults {
    /// Per-mille chance that a finishing attempt fails with an exception (only attempts 0 and 1,
    /// so no task reaches `maxFailures`).
    task_failure: u64,
    /// Per-mille chance, per finished task, that an executor is killed.
    executor_loss: u64,
    /// Executors killed at most.
    max_losses: usize,
    /// Fail the first reduce attempt reading this map output with a fetch failure, though the
    /// output exists (a corrupt or vanished file).
    forced_fetch_failure: Option<(ShuffleId, usize)>,
    /// `(stage, attempt)`: every task of these stage attempts fails to fetch map output 0 of
    /// the shuffle it reads, though the output exists.
    fetch_failed_attempts: &'static [(usize, u32)],
    /// Run the job whose middle stage is indeterminate (see [`two_shuffle_job`]).
    indeterminate: bool,
}

struct Running {
    desc: TaskDescription,
    finish_at: u64,
}

/// Everything a run produces, to compare runs and check invariants.
#[derive(Debug, PartialEq)]
struct Outcome {
    trace: Vec<String>,
    result: std::result::Result<Vec<usize>, String>,
    /// Task sets submitted per stage: `(stage, attempt, tasks)`.
    task_sets: Vec<(usize, u32, usize)>,
}

struct Sim {
    clock: Arc<ManualClock>,
    tasks: TaskSchedulerImpl,
    dag: DagScheduler,
    tracker: Arc<MapOutputTracker>,
    rng: u64,
    faults: Faults,
    executors: BTreeMap<String, u32>,
    next_executor: usize,
    losses: usize,
    running: BTreeMap<TaskId, Running>,
    trace: Vec<String>,
    task_sets: Vec<(usize, u32, usize)>,
    /// What the DAG scheduler told the job's caller, in order.
    job_events: VecDeque<JobEvent>,
}

impl Sim {
    fn new(seed: u64, faults: Faults) -> Self {
        let clock = Arc::new(ManualClock::new(0));
        let config = SchedulerConfig::default();
        let tracker = Arc::new(MapOutputTracker::new());
        let mut sim = Sim {
            tasks: TaskSchedulerImpl::new(config, clock.clone(), seed),
            dag: DagScheduler::new(tracker.clone(), Arc::new(NoCache), 4),
            clock,
            tracker,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            faults,
            executors: BTreeMap::new(),
            next_executor: 0,
            losses: 0,
            running: BTreeMap::new(),
            trace: Vec::new(),
            task_sets: Vec::new(),
            job_events: VecDeque::new(),
        };
        for _ in 0..3 {
            sim.add_executor();
        }
        sim
    }

    fn random(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }

    fn add_executor(&mut self) {
        let id = format!("exec-{}", self.next_executor);
        self.next_executor += 1;
        self.tasks.executor_added(&id, &format!("host-{id}"));
        self.executors.insert(id, 2);
    }

    fn apply(&mut self, actions: Vec<DagAction>) {
        for a in actions {
            match a {
                DagAction::SubmitTasks(ts) => {
                    self.trace.push(format!(
                        "{} submit {}.{} ({} tasks)",
                        self.clock_ms(),
                        ts.stage_id,
                        ts.stage_attempt_id,
                        ts.tasks.len()
                    ));
                    self.task_sets
                        .push((ts.stage_id, ts.stage_attempt_id, ts.tasks.len()));
                    self.tasks.submit_tasks(ts);
                }
                DagAction::CancelStage { stage_id, reason } => {
                    let events = self.tasks.cancel_stage(stage_id, &reason);
                    self.scheduler_events(events);
                }
                DagAction::NotifyPartitionCompletion {
                    stage_id,
                    partition,
                } => {
                    let now = self.clock_ms();
                    self.trace.push(format!(
                        "{now} partition {stage_id}/{partition} done by a zombie"
                    ));
                    let events = self.tasks.notify_partition_completion(stage_id, partition);
                    self.scheduler_events(events);
                }
                DagAction::NotifyJob { event, .. } => self.job_events.push_back(event),
                // The simulated tasks add to no accumulator.
                DagAction::ApplyAccumulatorUpdates { .. } => {}
                DagAction::StageCompleted { .. } => {}
            }
        }
    }

    fn clock_ms(&self) -> u64 {
        use crate::clock::Clock;
        self.clock.now_ms()
    }

    fn scheduler_events(&mut self, events: Vec<SchedulerEvent>) {
        let now = self.clock_ms();
        for ev in events {
            match ev {
                SchedulerEvent::TaskStarted { .. } => {}
                SchedulerEvent::TaskEnded {
                    stage_id,
                    stage_attempt_id,
                    partition,
                    result,
                    task_id,
                    ..
                } => {
                    self.trace.push(format!(
                        "{now} end TID {task_id} ({stage_id}.{stage_attempt_id} p{partition}) \
                         ok={}",
                        result.is_ok()
                    ));
                    let actions =
                        self.dag
                            .task_ended(stage_id, stage_attempt_id, partition, result, now);
                    self.apply(actions);
                }
                SchedulerEvent::TaskSetFailed {
                    stage_id, reason, ..
                } => {
                    self.trace.push(format!(
                        "{now} task set of stage {stage_id} failed: {reason}"
                    ));
                    let actions = self.dag.task_set_failed(stage_id, &reason);
                    self.apply(actions);
                }
                // The simulated cluster runs without excludeOnFailure, which alone asks for this.
                SchedulerEvent::KillExecutor { executor_id, .. } => self
                    .trace
                    .push(format!("{now} kill executor {executor_id}")),
                SchedulerEvent::KillTask {
                    task_id,
                    executor_id,
                    reason,
                } => {
                    // The executor stops the attempt and reports it killed.
                    if let Some(r) = self.running.remove(&task_id) {
                        if let Some(free) = self.executors.get_mut(&executor_id) {
                            *free += r.desc.cpus;
                        }
                        let update = StatusUpdate {
                            executor_id,
                            task_id,
                            state: TaskState::Killed,
                            outcome: TaskOutcome::Failure {
                                reason: TaskEndReason::TaskKilled { reason },
                                metrics: None,
                            },
                        };
                        let events = self.tasks.status_update(update);
                        self.scheduler_events(events);
                    }
                }
            }
        }
    }

    fn offer(&mut self) {
        let offers: Vec<WorkerOffer> = self
            .executors
            .iter()
            .map(|(id, free)| WorkerOffer {
                executor_id: id.clone(),
                host: format!("host-{id}"),
                cores: *free,
            })
            .collect();
        let (assigned, events) = self.tasks.resource_offers(&offers);
        self.scheduler_events(events);
        for desc in assigned.into_iter().flatten() {
            if let Some(free) = self.executors.get_mut(&desc.executor_id) {
                *free -= desc.cpus;
            }
            let finish_at = self.clock_ms() + 1 + self.random(40);
            self.trace.push(format!(
                "{} launch TID {} {} on {}",
                self.clock_ms(),
                desc.task_id,
                desc.name(),
                desc.executor_id
            ));
            self.running
                .insert(desc.task_id, Running { desc, finish_at });
        }
    }

    /// How the attempt ends, decided when it finishes.
    fn outcome_of(&mut self, desc: &TaskDescription) -> (TaskState, TaskOutcome) {
        if let Some(s) = shuffle_read_by(&desc.body) {
            if self
                .faults
                .fetch_failed_attempts
                .contains(&(desc.stage_id, desc.stage_attempt_id))
            {
                let reason = TaskEndReason::FetchFailed {
                    location: None,
                    shuffle_id: s,
                    map_index: Some(0),
                    reduce_id: desc.partition_id,
                    message: format!(
                        "simulated corrupt block in attempt {}",
                        desc.stage_attempt_id
                    ),
                };
                return (
                    TaskState::Failed,
                    TaskOutcome::Failure {
                        reason,
                        metrics: None,
                    },
                );
            }
            if let Some((fs, map)) = self.faults.forced_fetch_failure {
                if fs == s {
                    self.faults.forced_fetch_failure = None;
                    let reason = TaskEndReason::FetchFailed {
                        location: None,
                        shuffle_id: s,
                        map_index: Some(map),
                        reduce_id: desc.partition_id,
                        message: "simulated corrupt block".into(),
                    };
                    return (
                        TaskState::Failed,
                        TaskOutcome::Failure {
                            reason,
                            metrics: None,
                        },
                    );
                }
            }
            // A reduce attempt needs every map output of its shuffle, on a live executor.
            let statuses = self
                .tracker
                .map_statuses(s)
                .map(|v| (*v).clone())
                .unwrap_or_default();
            for (map_index, st) in statuses.iter().enumerate() {
                let dead = st
                    .as_ref()
                    .is_none_or(|st| !self.executors.contains_key(&st.location.executor_id));
                if dead {
                    let reason = TaskEndReason::FetchFailed {
                        location: st.as_ref().map(|s| s.location.clone()),
                        shuffle_id: s,
                        map_index: Some(map_index),
                        reduce_id: desc.partition_id,
                        message: "output missing".into(),
                    };
                    return (
                        TaskState::Failed,
                        TaskOutcome::Failure {
                            reason,
                            metrics: None,
                        },
                    );
                }
            }
        }
        if desc.attempt_number < 2 && self.random(1000) < self.faults.task_failure {
            let reason = TaskEndReason::ExceptionFailure {
                description: "panicked at 'simulated', sim.rs:1:1".into(),
            };
            return (
                TaskState::Failed,
                TaskOutcome::Failure {
                    reason,
                    metrics: None,
                },
            );
        }
        let value = match desc.body.downcast_ref::<TestBody>() {
            Some(TestBody::ShuffleMap(shuffle_id)) => TaskValue::MapStatus(MapStatus {
                location: BlockManagerId {
                    executor_id: desc.executor_id.clone(),
                    host: format!("host-{}", desc.executor_id),
                    port: 0,
                },
                map_index: desc.partition_id,
                map_id: desc.task_id,
                // Which attempt wrote the output: what a reader of it saw.
                sizes: vec![1 + desc.task_id; if *shuffle_id == 0 { 4 } else { 3 }],
            }),
            Some(TestBody::Result) | None => {
                let read: Vec<u64> = self
                    .tracker
                    .map_statuses(1)
                    .map(|v| {
                        v.iter()
                            .map(|s| s.as_ref().map_or(0, |s| s.sizes[0]))
                            .collect()
                    })
                    .unwrap_or_default();
                TaskValue::Value(Box::new((desc.partition_id, read)))
            }
        };
        (
            TaskState::Finished,
            TaskOutcome::Success(DirectTaskResult {
                value,
                metrics: TaskMetricsSnapshot::default(),
                accum_updates: Vec::new(),
            }),
        )
    }

    fn lose_executor(&mut self, id: String) {
        self.executors.remove(&id);
        self.losses += 1;
        let now = self.clock_ms();
        self.trace.push(format!("{now} lose {id}"));
        self.running.retain(|_, r| r.desc.executor_id != id);
        let events = self.tasks.executor_lost(&id, "simulated SIGKILL");
        self.scheduler_events(events);
        let actions = self.dag.executor_lost(&id, now);
        self.apply(actions);
        // local-cluster replaces it.
        self.add_executor();
    }

    fn run(mut self) -> Outcome {
        let job = JobSubmission {
            rdd: two_shuffle_job(self.faults.indeterminate),
            body: TaskBody::new(TestBody::Result),
            partitions: vec![0, 1, 2],
            pool: "default".into(),
            group: None,
            call_site: "simulation".into(),
            properties: Default::default(),
        };
        let (_, actions) = self.dag.submit_job(job, 0);
        self.apply(actions);
        let mut results = [None; 3];
        let mut reads: [Option<Vec<u64>>; 3] = Default::default();
        for _step in 0..10_000 {
            while let Some(ev) = self.job_events.pop_front() {
                match ev {
                    JobEvent::TaskSucceeded {
                        output_index,
                        value,
                    } => {
                        if let TaskValue::Value(v) = value {
                            if let Ok(b) = v.downcast::<(usize, Vec<u64>)>() {
                                results[output_index] = Some(b.0);
                                reads[output_index] = Some(b.1);
                            }
                        }
                    }
                    JobEvent::Succeeded => {
                        let mut result: std::result::Result<Vec<usize>, String> = results
                            .iter()
                            .map(|r| r.ok_or("missing partition".to_string()))
                            .collect();
                        // An indeterminate map output is one ordering of its input: reducers
                        // that read different computations of the same map partition saw
                        // records twice or never (the wrong answer SPARK-23207 prevents).
                        if self.faults.indeterminate && reads.iter().any(|r| *r != reads[0]) {
                            result = Err(format!("inconsistent reads of shuffle 1: {reads:?}"));
                        }
                        return Outcome {
                            trace: self.trace,
                            result,
                            task_sets: self.task_sets,
                        };
                    }
                    JobEvent::Failed(e) => {
                        return Outcome {
                            trace: self.trace,
                            result: Err(e.to_string()),
                            task_sets: self.task_sets,
                        }
                    }
                }
            }
            self.offer();
            // The next event: the DAG scheduler's resubmission timer, or the next task to finish.
            // Neither means a hang.
            let next_task = self
                .running
                .iter()
                .min_by_key(|(tid, r)| (r.finish_at, **tid))
                .map(|(tid, r)| (*tid, r.finish_at));
            if let Some(t) = self.dag.next_wakeup_ms() {
                if next_task.is_none_or(|(_, at)| t <= at) {
                    self.clock.set(t);
                    self.trace.push(format!("{t} resubmit failed stages"));
                    let actions = self.dag.resubmit_failed_stages(t);
                    self.apply(actions);
                    continue;
                }
            }
            let Some((tid, at)) = next_task else {
                panic!(
                    "the simulated job hangs: nothing runs and the job is not over\n{}",
                    self.trace.join("\n")
                );
            };
            self.clock.set(at);
            let r = self.running.remove(&tid).expect("picked above");
            if let Some(free) = self.executors.get_mut(&r.desc.executor_id) {
                *free += r.desc.cpus;
            }
            let (state, outcome) = self.outcome_of(&r.desc);
            let update = StatusUpdate {
                executor_id: r.desc.executor_id.clone(),
                task_id: tid,
                state,
                outcome,
            };
            let events = self.tasks.status_update(update);
            self.scheduler_events(events);
            if self.losses < self.faults.max_losses && self.random(1000) < self.faults.executor_loss
            {
                let ids: Vec<String> = self.executors.keys().cloned().collect();
                let victim = ids[self.random(ids.len() as u64) as usize].clone();
                self.lose_executor(victim);
            }
        }
        panic!(
            "the simulated job did not finish in 10,000 steps\n{}",
            self.trace.join("\n")
        );
    }
}

#[test]
fn no_faults_runs_each_stage_once() {
    let out = Sim::new(
        1,
        Faults {
            task_failure: 0,
            executor_loss: 0,
            max_losses: 0,
            forced_fetch_failure: None,
            fetch_failed_attempts: &[],
            indeterminate: false,
        },
    )
    .run();
    assert_eq!(out.result, Ok(vec![0, 1, 2]));
    assert_eq!(out.task_sets, vec![(0, 0, 8), (1, 0, 4), (2, 0, 3)]);
}

#[test]
fn a_fetch_failure_resubmits_the_parent_stage_once_and_the_job_succeeds() {
    // The first task of stage 1 (which reads shuffle 0) reports map output 5 as unreadable.
    let faults = Faults {
        task_failure: 0,
        executor_loss: 0,
        max_losses: 0,
        forced_fetch_failure: Some((0, 5)),
        fetch_failed_attempts: &[],
        indeterminate: false,
    };
    let out = Sim::new(7, faults).run();
    assert_eq!(out.result, Ok(vec![0, 1, 2]));
    // Stage 0 runs again for the one lost output only, then stage 1 runs a second attempt.
    let attempts: Vec<_> = out
        .task_sets
        .iter()
        .filter(|(s, _, _)| *s <= 1)
        .copied()
        .collect();
    assert_eq!(attempts[..2], [(0, 0, 8), (1, 0, 4)]);
    assert!(attempts.contains(&(0, 1, 1)), "{attempts:?}");
    assert_eq!(
        attempts
            .iter()
            .filter(|(s, a, _)| *s == 0 && *a > 0)
            .count(),
        1,
        "the parent is resubmitted once: {attempts:?}"
    );
    assert!(
        attempts.iter().any(|(s, a, _)| *s == 1 && *a == 1),
        "{attempts:?}"
    );
    // Resubmitted after Spark's RESUBMIT_TIMEOUT, not at once.
    let time_of = |needle: &str| -> u64 {
        let line = out
            .trace
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{}", out.trace.join("\n")));
        line.split(' ')
            .next()
            .and_then(|t| t.parse().ok())
            .expect("lines start with the time")
    };
    let failed_at = out
        .trace
        .iter()
        .find(|l| l.contains("(1.0 p") && l.ends_with("ok=false"))
        .and_then(|l| l.split(' ').next()?.parse::<u64>().ok());
    assert_eq!(
        time_of("submit 0.1"),
        failed_at.expect("the fetch failure is traced") + crate::dag_scheduler::RESUBMIT_TIMEOUT_MS
    );
}

#[test]
fn jobs_survive_random_task_failures_and_executor_losses_for_300_seeds() {
    let (mut losses, mut failures, mut resubmissions, mut zombie_completions) = (0, 0, 0, 0);
    for seed in 0..300 {
        let faults = Faults {
            task_failure: 150,
            executor_loss: 60,
            max_losses: 3,
            forced_fetch_failure: None,
            fetch_failed_attempts: &[],
            indeterminate: false,
        };
        let out = Sim::new(seed, faults).run();
        assert_eq!(
            out.result,
            Ok(vec![0, 1, 2]),
            "seed {seed}\n{}",
            out.trace.join("\n")
        );
        losses += out.trace.iter().filter(|l| l.contains(" lose ")).count();
        failures += out.trace.iter().filter(|l| l.ends_with("ok=false")).count();
        resubmissions += out
            .task_sets
            .iter()
            .filter(|(_, attempt, _)| *attempt > 0)
            .count();
        zombie_completions += out
            .trace
            .iter()
            .filter(|l| l.contains("done by a zombie"))
            .count();
    }
    assert!(
        zombie_completions > 0,
        "tasks of fetch-failed attempts finish and count for the next attempt"
    );
    // The faults did happen, in numbers: the runs are not trivially fault-free.
    assert!(
        losses > 300 && failures > 1000 && resubmissions > 100,
        "{losses} losses, {failures} failures, {resubmissions} resubmissions"
    );
}

#[test]
fn a_seed_replays_exactly() {
    let faults = Faults {
        task_failure: 150,
        executor_loss: 80,
        max_losses: 3,
        forced_fetch_failure: None,
        fetch_failed_attempts: &[],
        indeterminate: false,
    };
    for seed in [3, 17, 99] {
        let a = Sim::new(seed, faults).run();
        let b = Sim::new(seed, faults).run();
        assert_eq!(a, b, "seed {seed}");
    }
}

fn fetch_faults(attempts: &'static [(usize, u32)]) -> Faults {
    Faults {
        task_failure: 0,
        executor_loss: 0,
        max_losses: 0,
        forced_fetch_failure: None,
        fetch_failed_attempts: attempts,
        indeterminate: false,
    }
}

#[test]
fn four_consecutive_fetch_failed_attempts_abort_the_stage_with_sparks_message() {
    // DAGSchedulerSuite "Multiple consecutive stage fetch failures should lead to job being
    // aborted", with ember.stage.maxConsecutiveAttempts = 4.
    let out = Sim::new(5, fetch_faults(&[(2, 0), (2, 1), (2, 2), (2, 3)])).run();
    assert_eq!(
        out.result,
        Err(
            "Job aborted due to stage failure: ResultStage 2 (simulation) has failed the maximum \
             allowable number of times: 4. Most recent failure reason:\nsimulated corrupt block \
             in attempt 3"
                .to_string()
        ),
        "{}",
        out.trace.join("\n")
    );
    // Three are retried.
    let out = Sim::new(5, fetch_faults(&[(2, 0), (2, 1), (2, 2)])).run();
    assert_eq!(out.result, Ok(vec![0, 1, 2]), "{}", out.trace.join("\n"));
}

#[test]
fn fetch_failed_attempts_that_are_not_consecutive_do_not_abort() {
    // SPARK-17644 ("Non-consecutive stage failures don't trigger abort"): stage 1 fails three
    // attempts, succeeds, is needed again (its reducer, stage 2, fails to fetch), and fails
    // three more: six failures, never four in a row.
    let faults = fetch_faults(&[(1, 0), (1, 1), (1, 2), (2, 0), (1, 4), (1, 5), (1, 6)]);
    let out = Sim::new(9, faults).run();
    assert_eq!(out.result, Ok(vec![0, 1, 2]), "{}", out.trace.join("\n"));
    let stage1: Vec<u32> = out
        .task_sets
        .iter()
        .filter(|(s, _, _)| *s == 1)
        .map(|(_, a, _)| *a)
        .collect();
    assert_eq!(
        stage1,
        (0..8).collect::<Vec<_>>(),
        "stage 1 ran eight attempts"
    );
}

/// The DAG scheduler alone, driven by hand over the two-shuffle job (stage 0 writes shuffle 0).
fn dag_with_job() -> (DagScheduler, Arc<MapOutputTracker>) {
    dag_with(false)
}

fn dag_with(indeterminate: bool) -> (DagScheduler, Arc<MapOutputTracker>) {
    let tracker = Arc::new(MapOutputTracker::new());
    let mut dag = DagScheduler::new(tracker.clone(), Arc::new(NoCache), 4);
    let job = JobSubmission {
        rdd: two_shuffle_job(indeterminate),
        body: TaskBody::new(TestBody::Result),
        partitions: vec![0, 1, 2],
        pool: "default".into(),
        group: None,
        call_site: "by hand".into(),
        properties: Default::default(),
    };
    let (_, actions) = dag.submit_job(job, 0);
    assert!(
        matches!(
            &actions[..],
            [DagAction::SubmitTasks(ts)] if ts.stage_id == 0 && ts.tasks.len() == 8
        ),
        "{actions:?}"
    );
    (dag, tracker)
}

fn map_done(
    exec: &str,
    map_index: usize,
    reduces: usize,
) -> std::result::Result<DirectTaskResult, TaskEndReason> {
    let location = BlockManagerId {
        executor_id: exec.into(),
        host: format!("host-{exec}"),
        port: 0,
    };
    let value = TaskValue::MapStatus(MapStatus {
        location,
        map_index,
        map_id: map_index as u64,
        sizes: vec![1; reduces],
    });
    Ok(DirectTaskResult {
        value,
        metrics: TaskMetricsSnapshot::default(),
        accum_updates: Vec::new(),
    })
}

fn submitted(actions: &[DagAction]) -> Vec<(usize, u32, Vec<usize>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            DagAction::SubmitTasks(ts) => Some((
                ts.stage_id,
                ts.stage_attempt_id,
                ts.tasks.iter().map(|t| t.partition).collect(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn late_map_completions_from_a_failed_executor_are_ignored_by_epoch() {
    // DAGSchedulerSuite "ignore late map task completions" (SPARK-19263 family).
    let (mut dag, tracker) = dag_with_job();
    dag.executor_lost("exec-a", 1);
    // An attempt launched before the loss reports success from exec-a: its output is gone.
    dag.task_ended(0, 0, 0, map_done("exec-a", 0, 4), 2);
    assert_eq!(
        tracker.missing_partitions(0).unwrap(),
        (0..8).collect::<Vec<_>>()
    );
    // The same stage attempt's tasks on a healthy executor count.
    let mut actions = Vec::new();
    for p in 1..8 {
        actions = dag.task_ended(0, 0, p, map_done("exec-b", p, 4), 3);
    }
    assert_eq!(tracker.missing_partitions(0).unwrap(), vec![0]);
    // The partition runs again, in a new attempt, whose success on exec-a (back, or its
    // replacement under the same id) counts.
    assert_eq!(submitted(&actions), vec![(0, 1, vec![0])]);
    dag.executor_added("exec-a");
    let actions = dag.task_ended(0, 1, 0, map_done("exec-a", 0, 4), 4);
    assert!(tracker.is_available(0));
    assert_eq!(submitted(&actions), vec![(1, 0, vec![0, 1, 2, 3])]);
}

#[test]
fn every_fetch_failure_of_an_attempt_unregisters_its_output() {
    // Spark keeps handling fetch failures of the latest attempt after the first one marked the
    // stage failed: both lost outputs are recomputed by one resubmission of the parent.
    let (mut dag, tracker) = dag_with_job();
    for p in 0..8 {
        dag.task_ended(0, 0, p, map_done("exec-b", p, 4), 1);
    }
    assert!(tracker.is_available(0));
    let fetch_failed = |map_index: usize,
                        reduce_id: usize|
     -> std::result::Result<DirectTaskResult, TaskEndReason> {
        Err(TaskEndReason::FetchFailed {
            location: None,
            shuffle_id: 0,
            map_index: Some(map_index),
            reduce_id,
            message: "corrupt".into(),
        })
    };
    dag.task_ended(1, 0, 0, fetch_failed(3, 0), 10);
    dag.task_ended(1, 0, 1, fetch_failed(5, 1), 11);
    assert_eq!(tracker.missing_partitions(0).unwrap(), vec![3, 5]);
    let actions = dag.resubmit_failed_stages(10 + crate::dag_scheduler::RESUBMIT_TIMEOUT_MS);
    assert_eq!(submitted(&actions), vec![(0, 1, vec![3, 5])]);
}

fn fetch_failed(
    map_index: usize,
    reduce_id: usize,
) -> std::result::Result<DirectTaskResult, TaskEndReason> {
    Err(TaskEndReason::FetchFailed {
        location: None,
        shuffle_id: 0,
        map_index: Some(map_index),
        reduce_id,
        message: "corrupt".into(),
    })
}

#[test]
fn a_fetch_failed_attempt_is_a_zombie_whose_completions_count_for_the_next_one() {
    // Spark leaves the failed attempt's tasks running (SPARK-17064): their outputs register,
    // and a completion after the next attempt started tells it (notifyPartitionCompletion).
    let (mut dag, tracker) = dag_with_job();
    for p in 0..8 {
        dag.task_ended(0, 0, p, map_done("exec-b", p, 4), 1);
    }
    let actions = dag.task_ended(1, 0, 0, fetch_failed(3, 0), 10);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, DagAction::CancelStage { .. })),
        "the failed attempt's tasks are not killed: {actions:?}"
    );
    // Zombie attempt 0 finishes partition 1 before the stage is resubmitted.
    dag.task_ended(1, 0, 1, map_done("exec-c", 1, 3), 20);
    let actions = dag.resubmit_failed_stages(10 + crate::dag_scheduler::RESUBMIT_TIMEOUT_MS);
    assert_eq!(submitted(&actions), vec![(0, 1, vec![3])]);
    let actions = dag.task_ended(0, 1, 3, map_done("exec-c", 3, 4), 300);
    // Attempt 1 of stage 1 runs only what is missing.
    assert_eq!(submitted(&actions), vec![(1, 1, vec![0, 2, 3])]);
    // Zombie attempt 0 finishes partition 2: it counts, and attempt 1 is told.
    let actions = dag.task_ended(1, 0, 2, map_done("exec-c", 2, 3), 301);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            DagAction::NotifyPartitionCompletion {
                stage_id: 1,
                partition: 2
            }
        )),
        "{actions:?}"
    );
    assert_eq!(tracker.missing_partitions(1).unwrap(), vec![0, 3]);
    dag.task_ended(1, 1, 0, map_done("exec-c", 0, 3), 302);
    let actions = dag.task_ended(1, 1, 3, map_done("exec-c", 3, 3), 303);
    assert_eq!(submitted(&actions), vec![(2, 0, vec![0, 1, 2])]);
}

fn map_output(
    dag: &mut DagScheduler,
    stage: usize,
    attempt: u32,
    p: usize,
    exec: &str,
    reduces: usize,
) -> Vec<DagAction> {
    dag.task_ended(stage, attempt, p, map_done(exec, p, reduces), 1)
}

fn fetch_failed_on(shuffle_id: ShuffleId, map_index: usize, reduce_id: usize) -> TaskEndReason {
    TaskEndReason::FetchFailed {
        location: None,
        shuffle_id,
        map_index: Some(map_index),
        reduce_id,
        message: "corrupt".into(),
    }
}

/// Stages 0 and 1 of the indeterminate job done; the result stage (2) submitted.
fn indeterminate_job_at_result_stage() -> (DagScheduler, Arc<MapOutputTracker>) {
    let (mut dag, tracker) = dag_with(true);
    for p in 0..8 {
        map_output(&mut dag, 0, 0, p, "exec-b", 4);
    }
    let mut actions = Vec::new();
    for p in 0..4 {
        actions = map_output(&mut dag, 1, 0, p, "exec-b", 3);
    }
    assert_eq!(submitted(&actions), vec![(2, 0, vec![0, 1, 2])]);
    (dag, tracker)
}

#[test]
fn spark_25341_a_fetch_failure_on_an_indeterminate_stage_reruns_it_and_its_children_in_full() {
    // DAGSchedulerSuite "SPARK-25341: retry all the succeeding stages when the map stage is
    // indeterminate": one lost output of stage 1 (indeterminate) makes all of stage 1 run again,
    // not just the lost partition.
    let (mut dag, tracker) = indeterminate_job_at_result_stage();
    dag.task_ended(2, 0, 0, Err(fetch_failed_on(1, 2, 0)), 10);
    assert_eq!(tracker.missing_partitions(1).unwrap(), vec![0, 1, 2, 3]);
    let actions = dag.resubmit_failed_stages(10 + crate::dag_scheduler::RESUBMIT_TIMEOUT_MS);
    assert_eq!(submitted(&actions), vec![(1, 1, vec![0, 1, 2, 3])]);
    // A task of the failed result attempt still running finishes: as the stage's input is being
    // recomputed, its value is not delivered.
    let actions = dag.task_ended(2, 0, 1, Ok(result_value(1)), 220);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, DagAction::NotifyJob { .. })),
        "{actions:?}"
    );
    let mut actions = Vec::new();
    for p in 0..4 {
        actions = map_output(&mut dag, 1, 1, p, "exec-c", 3);
    }
    assert_eq!(submitted(&actions), vec![(2, 1, vec![0, 1, 2])]);
}

#[test]
fn a_determinate_stage_reruns_only_its_lost_partition() {
    let (mut dag, tracker) = dag_with(false);
    for p in 0..8 {
        map_output(&mut dag, 0, 0, p, "exec-b", 4);
    }
    for p in 0..4 {
        map_output(&mut dag, 1, 0, p, "exec-b", 3);
    }
    dag.task_ended(2, 0, 0, Err(fetch_failed_on(1, 2, 0)), 10);
    assert_eq!(tracker.missing_partitions(1).unwrap(), vec![2]);
    let actions = dag.resubmit_failed_stages(10 + crate::dag_scheduler::RESUBMIT_TIMEOUT_MS);
    assert_eq!(submitted(&actions), vec![(1, 1, vec![2])]);
}

#[test]
fn spark_23207_a_result_stage_that_delivered_partitions_cannot_roll_back() {
    // DAGSchedulerSuite "SPARK-23207: cannot rollback a result stage".
    let (mut dag, _) = indeterminate_job_at_result_stage();
    dag.task_ended(2, 0, 0, Ok(result_value(0)), 5);
    let actions = dag.task_ended(2, 0, 1, Err(fetch_failed_on(1, 2, 1)), 10);
    let failure = actions.iter().find_map(|a| match a {
        DagAction::NotifyJob {
            event: JobEvent::Failed(e),
            ..
        } => Some(e.to_string()),
        _ => None,
    });
    assert_eq!(
        failure.as_deref(),
        Some(
            "Job aborted due to stage failure: A shuffle map stage with indeterminate output was \
             failed and retried. However, Ember cannot rollback the ResultStage 2 to re-process \
             the input data, and has to fail this job. Please eliminate the indeterminacy by \
             checkpointing the RDD before repartition and try again."
        )
    );
}

#[test]
fn spark_45182_completions_of_an_older_attempt_of_an_indeterminate_stage_are_ignored() {
    let (mut dag, tracker) = dag_with(true);
    for p in 0..8 {
        map_output(&mut dag, 0, 0, p, "exec-b", 4);
    }
    // Stage 1 attempt 0: partition 0 done, partition 1 fails to fetch.
    map_output(&mut dag, 1, 0, 0, "exec-b", 3);
    dag.task_ended(1, 0, 1, Err(fetch_failed_on(0, 5, 1)), 10);
    let actions = dag.resubmit_failed_stages(10 + crate::dag_scheduler::RESUBMIT_TIMEOUT_MS);
    assert_eq!(submitted(&actions), vec![(0, 1, vec![5])]);
    let actions = map_output(&mut dag, 0, 1, 5, "exec-c", 4);
    // Stage 1 runs in full again: its earlier output was forgotten.
    assert_eq!(submitted(&actions), vec![(1, 1, vec![0, 1, 2, 3])]);
    // Its zombie attempt 0 finishes partition 2: ignored, and attempt 1 is not told.
    let actions = map_output(&mut dag, 1, 0, 2, "exec-b", 3);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(tracker.missing_partitions(1).unwrap(), vec![0, 1, 2, 3]);
}

fn result_value(partition: usize) -> DirectTaskResult {
    DirectTaskResult {
        value: TaskValue::Value(Box::new((partition, Vec::<u64>::new()))),
        metrics: TaskMetricsSnapshot::default(),
        accum_updates: Vec::new(),
    }
}

#[test]
fn indeterminate_stages_end_right_or_with_sparks_error_for_300_seeds() {
    // Executor losses and task failures over `shuffle → repartition → shuffle`: every seed
    // ends with the right answer, all reducers having read one computation of each map
    // partition, or with Spark's roll-back error when result partitions were already delivered.
    let (mut right, mut refused, mut full_reruns) = (0, 0, 0);
    for seed in 0..300 {
        let faults = Faults {
            task_failure: 150,
            executor_loss: 60,
            max_losses: 3,
            forced_fetch_failure: None,
            fetch_failed_attempts: &[],
            indeterminate: true,
        };
        let out = Sim::new(seed, faults).run();
        match &out.result {
            Ok(r) if *r == vec![0, 1, 2] => right += 1,
            Err(e) if e.contains("cannot rollback the ResultStage 2") => refused += 1,
            other => panic!("seed {seed}: {other:?}\n{}", out.trace.join("\n")),
        }
        full_reruns += out
            .task_sets
            .iter()
            .filter(|(s, a, n)| *s == 1 && *a > 0 && *n == 4)
            .count();
    }
    assert!(
        right > 150 && refused > 0 && full_reruns > 0,
        "{right} right, {refused} refused, {full_reruns} full reruns of stage 1"
    );
}
