//! Unit tests of the task set manager: launches, delay scheduling, retries, speculation,
//! exclusion and executor loss.

use ember_common::{TaskEndReason, TaskLocation, TaskState};

use super::speculation::median;
use super::*;
use crate::config::ExcludeOnFailureConfig;
use crate::health_tracker::HealthTracker;
use crate::locality::LocalityWaits;
use crate::test_support::*;

fn live(execs: &[(&str, &str)]) -> LiveExecutors {
    let mut l = LiveExecutors::new();
    for (e, h) in execs {
        l.add(e, h);
    }
    l
}

fn manager(
    ts: TaskSet,
    live: &LiveExecutors,
    waits: LocalityWaits,
    max_failures: u32,
) -> TaskSetManager {
    let config = TaskSetManagerConfig {
        max_task_failures: max_failures,
        locality_waits: waits,
        ..TaskSetManagerConfig::default()
    };
    TaskSetManager::new(ts, config, TaskIdSource::new(), live, 0)
}

/// A manager with excludeOnFailure on (Spark's default limits) and 4 attempts per task.
fn excluding_manager(ts: TaskSet, live: &LiveExecutors) -> TaskSetManager {
    let config = TaskSetManagerConfig {
        exclude_on_failure: Some(ExcludeOnFailureConfig::default()),
        ..TaskSetManagerConfig::default()
    };
    TaskSetManager::new(ts, config, TaskIdSource::new(), live, 0)
}

fn boom() -> TaskEndReason {
    TaskEndReason::ExceptionFailure {
        description: "boom".into(),
    }
}

fn launch(tsm: &mut TaskSetManager, exec: &str, host: &str, now: u64) -> TaskDescription {
    tsm.resource_offer(exec, host, TaskLocality::Any, now)
        .expect("a task launches")
}

/// Four tasks: 0..3 launched on executor A (host ha) at time 0, then 1..3 finished at the
/// given times, so only task 0 is still running.
fn three_done(durations: [u64; 3]) -> (TaskSetManager, TaskDescription, Vec<SchedulerEvent>) {
    let l = live(&[("A", "ha"), ("B", "ha"), ("C", "hc")]);
    let mut tsm = manager(task_set(0, 0, 0, 4), &l, LocalityWaits::uniform(0), 1);
    let tasks: Vec<TaskDescription> = (0..4).map(|_| launch(&mut tsm, "A", "ha", 0)).collect();
    let mut out = Vec::new();
    for (t, d) in tasks[1..].iter().zip(durations) {
        tsm.handle_successful_task(t.task_id, ok_result(), d, &mut out);
    }
    out.clear();
    let first = tasks[0].clone();
    (tsm, first, out)
}

#[test]
fn median_is_sparks() {
    assert_eq!(median(&[5]), 5.0);
    assert_eq!(median(&[5, 1, 3]), 3.0);
    assert_eq!(median(&[4, 1, 3, 10]), 3.5);
}

#[test]
fn speculation_waits_for_the_quantile() {
    let l = live(&[("A", "ha")]);
    let mut tsm = manager(task_set(0, 0, 0, 4), &l, LocalityWaits::uniform(0), 1);
    let tasks: Vec<TaskDescription> = (0..4).map(|_| launch(&mut tsm, "A", "ha", 0)).collect();
    let mut out = Vec::new();
    tsm.handle_successful_task(tasks[1].task_id, ok_result(), 1, &mut out);
    tsm.handle_successful_task(tasks[2].task_id, ok_result(), 1, &mut out);
    // 2 of 4 succeeded, below 0.75 × 4 = 3: however long the others run, nothing is marked.
    assert!(!tsm.check_speculatable_tasks(0, 1_000_000));
    tsm.handle_successful_task(tasks[3].task_id, ok_result(), 1, &mut out);
    assert!(tsm.check_speculatable_tasks(0, 1_000_000));
    assert_eq!(tsm.speculatable_tasks(), [0]);
    // Already marked: not marked again.
    assert!(!tsm.check_speculatable_tasks(0, 2_000_000));
}

#[test]
fn threshold_is_the_multiplier_times_the_median() {
    let (mut tsm, _, _) = three_done([10, 20, 30]);
    // Median 20, × 3 (Spark 4's default multiplier) = 60: a task that ran exactly 60 ms is not
    // a straggler yet.
    assert!(!tsm.check_speculatable_tasks(0, 60));
    assert!(tsm.speculatable_tasks().is_empty());
    assert!(tsm.check_speculatable_tasks(0, 61));
    assert_eq!(tsm.speculatable_tasks(), [0]);
}

#[test]
fn threshold_is_at_least_min_task_runtime() {
    let (mut tsm, _, _) = three_done([1, 1, 1]);
    assert!(
        !tsm.check_speculatable_tasks(100, 100),
        "1.5 ms × median is below minTaskRuntime 100"
    );
    assert!(tsm.check_speculatable_tasks(100, 101));
}

#[test]
fn multiplier_and_quantile_come_from_the_config() {
    let l = live(&[("A", "ha")]);
    let config = TaskSetManagerConfig {
        speculation_multiplier: 3.0,
        speculation_quantile: 0.5,
        ..TaskSetManagerConfig::default()
    };
    let mut tsm = TaskSetManager::new(task_set(0, 0, 0, 4), config, TaskIdSource::new(), &l, 0);
    let tasks: Vec<TaskDescription> = (0..4).map(|_| launch(&mut tsm, "A", "ha", 0)).collect();
    let mut out = Vec::new();
    tsm.handle_successful_task(tasks[2].task_id, ok_result(), 10, &mut out);
    tsm.handle_successful_task(tasks[3].task_id, ok_result(), 10, &mut out);
    // 2 of 4 is the quantile 0.5; threshold 3 × 10 = 30.
    assert!(!tsm.check_speculatable_tasks(0, 30));
    assert!(tsm.check_speculatable_tasks(0, 31));
    assert_eq!(tsm.speculatable_tasks(), [0, 1]);
}

/// A task set of `n` tasks all running on A since 0, with a duration threshold of 1 s and one
/// executor of `slots` slots.
fn with_duration_threshold(n: usize, threshold_ms: Option<u64>, slots: u32) -> TaskSetManager {
    let l = live(&[("A", "ha")]);
    let config = TaskSetManagerConfig {
        locality_waits: LocalityWaits::uniform(0),
        speculation_task_duration_threshold_ms: threshold_ms,
        speculation_executor_slots: slots,
        ..TaskSetManagerConfig::default()
    };
    let mut tsm = TaskSetManager::new(task_set(0, 0, 0, n), config, TaskIdSource::new(), &l, 0);
    for _ in 0..n {
        launch(&mut tsm, "A", "ha", 0);
    }
    tsm
}

#[test]
fn spark_29976_a_duration_threshold_speculates_small_task_sets_before_the_quantile() {
    // Spark's "SPARK-29976 when a speculation time threshold is provided, should speculative run
    // the task even if there are not enough successful runs, total tasks: 1 / 2".
    for n in [1, 2] {
        let mut tsm = with_duration_threshold(n, Some(1000), 2);
        assert!(
            !tsm.check_speculatable_tasks(100, 1000),
            "{n} tasks: not longer than the threshold yet"
        );
        assert!(tsm.check_speculatable_tasks(100, 1001), "{n} tasks");
        assert_eq!(tsm.speculatable_tasks(), (0..n).collect::<Vec<_>>());
    }
}

#[test]
fn spark_29976_without_a_threshold_small_task_sets_wait_for_the_quantile() {
    // "... when a speculation time threshold is not provided, don't speculative run if there are
    // not enough successful runs, total tasks: 1 / 2"; a threshold of 0 is no threshold.
    for (n, threshold) in [(1, None), (2, None), (2, Some(0))] {
        let mut tsm = with_duration_threshold(n, threshold, 2);
        assert!(
            !tsm.check_speculatable_tasks(100, 1_000_000),
            "{n} tasks, {threshold:?}"
        );
    }
}

#[test]
fn spark_29976_a_duration_threshold_ignores_task_sets_larger_than_one_executor() {
    // "... don't speculative run if there are too many tasks in the stage even though time
    // threshold is provided"; SPARK-30417: unknown executor cores count as one slot.
    let mut tsm = with_duration_threshold(3, Some(1000), 2);
    assert!(!tsm.check_speculatable_tasks(100, 1_000_000));
    let mut one_slot = with_duration_threshold(2, Some(1000), 1);
    assert!(!one_slot.check_speculatable_tasks(100, 1_000_000));
    let mut single = with_duration_threshold(1, Some(1000), 1);
    assert!(single.check_speculatable_tasks(100, 1001));
}

#[test]
fn spark_29976_the_regular_rule_still_applies_with_a_threshold() {
    // "SPARK-29976 Regular speculation configs should still take effect even when a threshold is
    // provided": once the quantile is reached the median rule decides, below the threshold too.
    let l = live(&[("A", "ha")]);
    let config = TaskSetManagerConfig {
        speculation_task_duration_threshold_ms: Some(60_000),
        speculation_executor_slots: 2,
        speculation_quantile: 0.5,
        ..TaskSetManagerConfig::default()
    };
    let mut tsm = TaskSetManager::new(task_set(0, 0, 0, 2), config, TaskIdSource::new(), &l, 0);
    let tasks: Vec<TaskDescription> = (0..2).map(|_| launch(&mut tsm, "A", "ha", 0)).collect();
    let mut out = Vec::new();
    tsm.handle_successful_task(tasks[1].task_id, ok_result(), 100, &mut out);
    // Median 100 × 3 = 300, far below the 60 s threshold.
    assert!(!tsm.check_speculatable_tasks(100, 300));
    assert!(tsm.check_speculatable_tasks(100, 301));
    assert_eq!(tsm.speculatable_tasks(), [0]);
}

#[test]
fn a_single_task_or_a_zombie_is_never_speculated() {
    let l = live(&[("A", "ha")]);
    let mut one = manager(task_set(0, 0, 0, 1), &l, LocalityWaits::uniform(0), 1);
    launch(&mut one, "A", "ha", 0);
    assert!(!one.check_speculatable_tasks(0, 1_000_000));
    let (mut tsm, _, mut out) = three_done([1, 1, 1]);
    tsm.cancel("stop", &mut out);
    assert!(!tsm.check_speculatable_tasks(0, 1_000_000));
}

#[test]
fn a_copy_never_runs_on_the_executor_or_host_of_its_task() {
    let (mut tsm, first, _) = three_done([1, 1, 1]);
    assert!(tsm.check_speculatable_tasks(0, 200));
    // A runs the first attempt; B is another executor on the same host.
    assert!(tsm
        .resource_offer("A", "ha", TaskLocality::Any, 200)
        .is_none());
    assert!(tsm
        .resource_offer("B", "ha", TaskLocality::Any, 200)
        .is_none());
    let copy = launch(&mut tsm, "C", "hc", 200);
    assert_eq!((copy.index, copy.attempt_number), (0, 1));
    let info = tsm.task_info(copy.task_id).unwrap();
    assert!(info.speculative);
    assert!(!tsm.task_info(first.task_id).unwrap().speculative);
    assert_eq!(tsm.attempts_of(0), [first.task_id, copy.task_id]);
    assert!(
        tsm.speculatable_tasks().is_empty(),
        "the copy is launched: no longer waiting"
    );
    // Two copies running: no third one, and no new mark.
    assert!(tsm
        .resource_offer("D", "hd", TaskLocality::Any, 300)
        .is_none());
    assert!(!tsm.check_speculatable_tasks(0, 10_000));
}

#[test]
fn regular_tasks_go_before_speculative_copies() {
    let l = live(&[("A", "ha"), ("C", "hc")]);
    let config = TaskSetManagerConfig {
        locality_waits: LocalityWaits::uniform(0),
        speculation_quantile: 0.6,
        ..TaskSetManagerConfig::default()
    };
    let mut tsm = TaskSetManager::new(task_set(0, 0, 0, 5), config, TaskIdSource::new(), &l, 0);
    let tasks: Vec<TaskDescription> = (0..4).map(|_| launch(&mut tsm, "A", "ha", 0)).collect();
    let mut out = Vec::new();
    for t in &tasks[1..] {
        tsm.handle_successful_task(t.task_id, ok_result(), 1, &mut out);
    }
    // 3 of 5 succeeded (0.6 × 5 = 3): task 0 is a straggler, task 4 never ran.
    assert!(tsm.check_speculatable_tasks(0, 500));
    let next = launch(&mut tsm, "C", "hc", 500);
    assert_eq!((next.index, next.attempt_number), (4, 0));
    let copy = launch(&mut tsm, "C", "hc", 500);
    assert_eq!((copy.index, copy.attempt_number), (0, 1));
}

#[test]
fn first_result_wins_and_the_other_attempt_is_killed_without_counting_a_failure() {
    let (mut tsm, first, mut out) = three_done([1, 1, 1]);
    tsm.check_speculatable_tasks(0, 200);
    let copy = launch(&mut tsm, "C", "hc", 200);
    tsm.handle_successful_task(copy.task_id, ok_result(), 210, &mut out);
    match &out[..] {
        [SchedulerEvent::KillTask {
            task_id,
            executor_id,
            reason,
        }, SchedulerEvent::TaskEnded {
            task_id: ended,
            result: Ok(_),
            ..
        }] => {
            assert_eq!(
                (*task_id, executor_id.as_str(), reason.as_str()),
                (first.task_id, "A", KILLED_BY_OTHER_ATTEMPT)
            );
            assert_eq!(*ended, copy.task_id);
        }
        e => panic!("unexpected {e:?}"),
    }
    assert!(tsm.all_succeeded() && tsm.is_zombie() && !tsm.is_finished());
    out.clear();
    // max_task_failures is 1: a counted failure would abort the set.
    let killed = TaskEndReason::TaskKilled {
        reason: KILLED_BY_OTHER_ATTEMPT.into(),
    };
    tsm.handle_failed_task(first.task_id, TaskState::Killed, killed, 220, &mut out);
    assert!(matches!(
        &out[..],
        [SchedulerEvent::TaskEnded {
            result: Err(TaskEndReason::TaskKilled { .. }),
            ..
        }]
    ));
    assert!(tsm.is_finished());
    assert_eq!(
        tsm.task_info(first.task_id).unwrap().state,
        AttemptState::Killed
    );
}

#[test]
fn a_late_result_of_the_loser_is_dropped() {
    let (mut tsm, first, mut out) = three_done([1, 1, 1]);
    tsm.check_speculatable_tasks(0, 200);
    let copy = launch(&mut tsm, "C", "hc", 200);
    // The original finishes first this time: the copy is killed.
    tsm.handle_successful_task(first.task_id, ok_result(), 205, &mut out);
    assert!(
        matches!(&out[0], SchedulerEvent::KillTask { task_id, .. } if *task_id == copy.task_id)
    );
    out.clear();
    // The copy finished before the kill reached it: its result is not a second success.
    tsm.handle_successful_task(copy.task_id, ok_result(), 206, &mut out);
    match &out[..] {
        [SchedulerEvent::TaskEnded {
            task_id,
            result: Err(TaskEndReason::TaskKilled { reason }),
            ..
        }] => {
            assert_eq!(
                (*task_id, reason.as_str()),
                (copy.task_id, LATE_RESULT_DROPPED)
            );
        }
        e => panic!("unexpected {e:?}"),
    }
    assert_eq!(tsm.tasks_successful(), 4);
    assert!(tsm.is_finished());
}

#[test]
fn a_failed_copy_leaves_the_first_attempt_running_without_retry() {
    let (mut tsm, first, mut out) = three_done([1, 1, 1]);
    tsm.check_speculatable_tasks(0, 200);
    let copy = launch(&mut tsm, "C", "hc", 200);
    let lost = TaskEndReason::ExecutorLostFailure {
        executor_id: "C".into(),
        exit_caused_by_app: false,
        reason: "x".into(),
    };
    tsm.handle_failed_task(copy.task_id, TaskState::Failed, lost, 210, &mut out);
    // The first attempt still runs: nothing to launch for task 0.
    assert_eq!(tsm.pending_tasks(), 0);
    assert!(tsm
        .resource_offer("D", "hd", TaskLocality::Any, 210)
        .is_none());
    // It is still slow: a new copy may be marked, on a host without an attempt.
    assert!(tsm.check_speculatable_tasks(0, 1_000));
    assert!(
        tsm.resource_offer("C", "hc", TaskLocality::Any, 1_000)
            .is_none(),
        "hc had an attempt"
    );
    let again = launch(&mut tsm, "D", "hd", 1_000);
    assert_eq!((again.index, again.attempt_number), (0, 2));
    tsm.handle_successful_task(first.task_id, ok_result(), 1_001, &mut out);
    assert!(tsm.all_succeeded());
}

#[test]
fn a_task_is_not_retried_on_the_executor_where_it_failed() {
    let l = live(&[("A", "ha"), ("B", "hb")]);
    let mut tsm = excluding_manager(task_set(0, 0, 0, 1), &l);
    let mut out = Vec::new();
    let d = launch(&mut tsm, "A", "ha", 0);
    tsm.handle_failed_task(d.task_id, TaskState::Failed, boom(), 1, &mut out);
    assert!(tsm
        .resource_offer("A", "ha", TaskLocality::Any, 2)
        .is_none());
    let retry = launch(&mut tsm, "B", "hb", 2);
    assert_eq!((retry.index, retry.attempt_number), (0, 1));
    assert!(tsm.completely_excluded_task(&l, None).is_none());
}

#[test]
fn a_task_failing_twice_on_a_node_is_not_retried_there() {
    let l = live(&[("A1", "h1"), ("A2", "h1"), ("A3", "h1"), ("B", "h2")]);
    let mut tsm = excluding_manager(task_set(0, 0, 0, 1), &l);
    let mut out = Vec::new();
    let d = launch(&mut tsm, "A1", "h1", 0);
    tsm.handle_failed_task(d.task_id, TaskState::Failed, boom(), 1, &mut out);
    let d = launch(&mut tsm, "A2", "h1", 1);
    tsm.handle_failed_task(d.task_id, TaskState::Failed, boom(), 2, &mut out);
    assert!(
        tsm.resource_offer("A3", "h1", TaskLocality::Any, 3)
            .is_none(),
        "excluded on h1 for the task"
    );
    assert_eq!(launch(&mut tsm, "B", "h2", 3).attempt_number, 2);
}

#[test]
fn an_executor_with_two_failed_tasks_gets_none_of_the_stage() {
    let l = live(&[("A", "ha"), ("B", "hb")]);
    let mut tsm = excluding_manager(task_set(0, 0, 0, 3), &l);
    let mut out = Vec::new();
    for _ in 0..2 {
        let d = launch(&mut tsm, "A", "ha", 0);
        tsm.handle_failed_task(d.task_id, TaskState::Failed, boom(), 1, &mut out);
    }
    assert!(tsm
        .excludelist()
        .unwrap()
        .is_executor_excluded_for_task_set("A"));
    // Task 2 never failed anywhere, still A gets nothing.
    assert!(tsm
        .resource_offer("A", "ha", TaskLocality::Any, 2)
        .is_none());
    let got: BTreeSet<usize> = (0..3)
        .map(|_| launch(&mut tsm, "B", "hb", 2).index)
        .collect();
    assert_eq!(got, BTreeSet::from([0, 1, 2]));
}

#[test]
fn kills_executor_loss_and_fetch_failures_do_not_exclude() {
    let mut l = live(&[("A", "ha")]);
    let mut tsm = excluding_manager(task_set(0, 0, 0, 2), &l);
    let mut out = Vec::new();
    let d = launch(&mut tsm, "A", "ha", 0);
    tsm.handle_failed_task(
        d.task_id,
        TaskState::Killed,
        TaskEndReason::TaskKilled { reason: "x".into() },
        1,
        &mut out,
    );
    let d = launch(&mut tsm, "A", "ha", 1);
    assert_eq!(
        (d.index, d.attempt_number),
        (0, 1),
        "retried on A after a kill"
    );
    l.add("B", "hb");
    l.remove("A");
    tsm.executor_lost("A", "gone", false, &l, 2, &mut out);
    assert!(tsm.excludelist().unwrap().exec_failures().is_empty());
    let d = launch(&mut tsm, "B", "hb", 3);
    let fetch = TaskEndReason::FetchFailed {
        location: None,
        shuffle_id: 0,
        map_index: Some(0),
        reduce_id: 0,
        message: "gone".into(),
    };
    tsm.handle_failed_task(d.task_id, TaskState::Failed, fetch, 4, &mut out);
    assert!(tsm.excludelist().unwrap().exec_failures().is_empty());
}

#[test]
fn a_task_that_can_run_nowhere_aborts_the_task_set_naming_it() {
    let l = live(&[("A", "ha"), ("B", "hb")]);
    let mut tsm = excluding_manager(task_set(2, 0, 0, 2), &l);
    let mut out = Vec::new();
    let a = launch(&mut tsm, "A", "ha", 0);
    let b = launch(&mut tsm, "B", "hb", 0);
    tsm.handle_failed_task(a.task_id, TaskState::Failed, boom(), 1, &mut out);
    tsm.handle_successful_task(b.task_id, ok_result(), 1, &mut out);
    assert_eq!(
        tsm.completely_excluded_task(&l, None),
        None,
        "B may still run task 0"
    );
    let retry = launch(&mut tsm, "B", "hb", 2);
    assert_eq!(retry.index, 0);
    tsm.handle_failed_task(retry.task_id, TaskState::Failed, boom(), 3, &mut out);
    // Task 0 failed on both executors; 2 of its 4 attempts are left, but it can run nowhere.
    assert!(!tsm.is_zombie());
    assert_eq!(tsm.completely_excluded_task(&l, None), Some(0));
    out.clear();
    tsm.abort_since_completely_excluded(0, &mut out);
    assert!(tsm.is_zombie());
    match &out[..] {
        [SchedulerEvent::TaskSetFailed {
            stage_id: 2,
            reason,
            ..
        }] => assert_eq!(
            reason,
            "\nAborting TaskSet 2.0 because task 0 (partition 0)\ncannot run anywhere due to node \
             and executor excludeOnFailure.\nMost recent failure:\nLost task 0.1 in stage 2.0 \
             (TID 2) (hb executor B): boom\n\nExcludeOnFailure behavior can be configured via \
             ember.excludeOnFailure.*.\n"
        ),
        e => panic!("unexpected {e:?}"),
    }
}

#[test]
fn application_exclusion_counts_for_the_nowhere_check() {
    let l = live(&[("A", "ha"), ("B", "hb")]);
    let mut tsm = excluding_manager(task_set(0, 0, 0, 1), &l);
    let mut out = Vec::new();
    let a = launch(&mut tsm, "A", "ha", 0);
    tsm.handle_failed_task(a.task_id, TaskState::Failed, boom(), 1, &mut out);
    assert_eq!(tsm.completely_excluded_task(&l, None), None);
    // B is excluded for the application (two failures in an earlier successful stage).
    let mut health = HealthTracker::new(ExcludeOnFailureConfig::default());
    let mut earlier = TaskSetExcludelist::new(ExcludeOnFailureConfig::default(), 9, 0);
    earlier.update_for_failed_task("hb", "B", 0, "x", 0);
    earlier.update_for_failed_task("hb", "B", 1, "x", 0);
    health.update_for_successful_task_set(9, 0, earlier.exec_failures(), 0);
    assert_eq!(tsm.completely_excluded_task(&l, Some(&health)), Some(0));
    tsm.abort_since_completely_excluded(0, &mut out);
    assert!(matches!(
        out.last(),
        Some(SchedulerEvent::TaskSetFailed { reason, .. })
            if reason.contains("because task 0 (partition 0)")
    ));
}

#[test]
fn live_executors_track_hosts() {
    let mut l = live(&[("1", "a"), ("2", "a")]);
    assert!(!l.add("1", "a"));
    assert_eq!(l.remove("1").as_deref(), Some("a"));
    assert!(l.has_executors_alive_on_host("a"));
    l.remove("2");
    assert!(!l.has_executors_alive_on_host("a"));
    assert!(l.remove("2").is_none());
    assert!(l.is_empty());
}

#[test]
fn launches_low_indices_first_and_names_tasks_like_spark() {
    let l = live(&[("0", "h")]);
    let mut tsm = manager(task_set(3, 1, 0, 3), &l, LocalityWaits::default(), 4);
    assert_eq!(
        tsm.locality_levels(),
        &[TaskLocality::NoPref, TaskLocality::Any]
    );
    let ids: Vec<usize> = (0..3)
        .map(|_| {
            tsm.resource_offer("0", "h", TaskLocality::Any, 0)
                .unwrap()
                .index
        })
        .collect();
    assert_eq!(ids, [0, 1, 2]);
    let d = tsm.task_info(1).unwrap();
    assert_eq!(
        (d.index, d.attempt_number, d.locality),
        (1, 0, TaskLocality::ProcessLocal)
    );
    assert!(tsm.resource_offer("0", "h", TaskLocality::Any, 0).is_none());
    assert_eq!(tsm.running_tasks(), 3);
    assert_eq!(tsm.pending_tasks(), 0);
}

#[test]
fn task_description_fields() {
    let l = live(&[("7", "h")]);
    let mut tsm = manager(task_set(2, 1, 0, 1), &l, LocalityWaits::default(), 4);
    let d = tsm.resource_offer("7", "h", TaskLocality::Any, 5).unwrap();
    assert_eq!(d.name().to_string(), "task 0.0 in stage 2.1");
    assert_eq!(
        (
            d.task_id,
            d.executor_id.as_str(),
            d.stage_id,
            d.stage_attempt_id,
            d.cpus
        ),
        (0, "7", 2, 1, 1)
    );
    assert_eq!(d.body.downcast_ref::<TestBody>(), Some(&TestBody::Result));
}

#[test]
fn legacy_delay_scheduling_resets_the_wait_on_every_launch() {
    // Task 0 prefers executor A's memory, task 1 host hb's disk.
    let l = live(&[("A", "ha"), ("B", "hb"), ("C", "hc")]);
    let prefs = vec![
        vec![on_executor("ha", "A")],
        vec![TaskLocation::Host("hb".into())],
    ];
    let waits = LocalityWaits {
        process_ms: 100,
        node_ms: 200,
        rack_ms: 0,
    };
    let config = TaskSetManagerConfig {
        locality_waits: waits,
        legacy_locality_wait_reset: true,
        ..TaskSetManagerConfig::default()
    };
    let mut tsm = TaskSetManager::new(
        task_set_with_prefs(0, 0, 0, prefs),
        config,
        TaskIdSource::new(),
        &l,
        0,
    );
    assert_eq!(
        tsm.locality_levels(),
        &[
            TaskLocality::ProcessLocal,
            TaskLocality::NodeLocal,
            TaskLocality::Any
        ]
    );
    assert_eq!(tsm.next_wakeup_ms(), Some(100));
    // C is nobody's preference: nothing until both waits pass.
    assert!(tsm
        .resource_offer("C", "hc", TaskLocality::Any, 99)
        .is_none());
    assert_eq!(tsm.get_allowed_locality(100), TaskLocality::NodeLocal);
    assert_eq!(tsm.next_wakeup_ms(), Some(300));
    assert!(tsm
        .resource_offer("C", "hc", TaskLocality::Any, 299)
        .is_none());
    // B is node-local for task 1; launching it brings us back to NODE_LOCAL and restarts the wait.
    let d = tsm
        .resource_offer("B", "hb", TaskLocality::Any, 250)
        .unwrap();
    assert_eq!(
        (d.index, tsm.task_info(d.task_id).unwrap().locality),
        (1, TaskLocality::NodeLocal)
    );
    // Task 0 is also node-local (on ha), so NODE_LOCAL waits 200 ms from that launch.
    assert!(tsm
        .resource_offer("C", "hc", TaskLocality::Any, 449)
        .is_none());
    assert_eq!(tsm.next_wakeup_ms(), Some(450));
    let d = tsm
        .resource_offer("C", "hc", TaskLocality::Any, 450)
        .unwrap();
    assert_eq!(
        (d.index, tsm.task_info(d.task_id).unwrap().locality),
        (0, TaskLocality::Any)
    );
    assert_eq!(tsm.next_wakeup_ms(), None);
}

#[test]
fn a_launch_alone_does_not_restart_the_locality_wait() {
    // The same set as above, with Spark ≥ 3.1's rule: only the task scheduler restarts the wait,
    // after a round that declined nothing.
    let l = live(&[("A", "ha"), ("B", "hb"), ("C", "hc")]);
    let prefs = vec![
        vec![on_executor("ha", "A")],
        vec![TaskLocation::Host("hb".into())],
    ];
    let waits = LocalityWaits {
        process_ms: 100,
        node_ms: 200,
        rack_ms: 0,
    };
    let mut tsm = manager(task_set_with_prefs(0, 0, 0, prefs), &l, waits, 4);
    assert_eq!(tsm.get_allowed_locality(100), TaskLocality::NodeLocal);
    let d = tsm
        .resource_offer("B", "hb", TaskLocality::Any, 250)
        .unwrap();
    assert_eq!(
        tsm.task_info(d.task_id).unwrap().locality,
        TaskLocality::NodeLocal
    );
    // The NODE_LOCAL wait still counts from 100, when the set moved there.
    assert_eq!(tsm.next_wakeup_ms(), Some(300));
    assert!(tsm
        .resource_offer("C", "hc", TaskLocality::Any, 299)
        .is_none());
    let d = tsm
        .resource_offer("C", "hc", TaskLocality::Any, 300)
        .unwrap();
    assert_eq!(
        (d.index, tsm.task_info(d.task_id).unwrap().locality),
        (0, TaskLocality::Any)
    );
    // The task scheduler's reset moves back to the best level launched and restarts the wait.
    let mut tsm = manager(
        task_set_with_prefs(0, 0, 0, vec![vec![on_executor("ha", "A")]; 2]),
        &l,
        waits,
        4,
    );
    assert_eq!(tsm.get_allowed_locality(500), TaskLocality::Any);
    tsm.reset_delay_schedule_timer(Some(TaskLocality::ProcessLocal), 600);
    assert_eq!(tsm.next_wakeup_ms(), Some(700));
    assert_eq!(tsm.get_allowed_locality(650), TaskLocality::ProcessLocal);
}

#[test]
fn an_offer_declined_for_locality_at_any_is_a_delay_reject() {
    // Spark's "delay scheduling with fallback" checks of `hasScheduleDelayReject`.
    let l = live(&[("A", "ha"), ("B", "hb")]);
    let mut tsm = manager(
        task_set_with_prefs(0, 0, 0, vec![vec![on_executor("ha", "A")]; 2]),
        &l,
        LocalityWaits::default(),
        4,
    );
    let declined = tsm.offer("B", "hb", TaskLocality::Any, 0);
    assert!(declined.task.is_none() && declined.delay_reject);
    // Only an offer at ANY counts: at a capped level the decline is the cap's doing.
    assert!(
        !tsm.offer("B", "hb", TaskLocality::NodeLocal, 0)
            .delay_reject
    );
    let launched = tsm.offer("A", "ha", TaskLocality::Any, 0);
    assert!(launched.task.is_some() && !launched.delay_reject);
    let _ = tsm
        .offer("A", "ha", TaskLocality::Any, 0)
        .task
        .expect("the second task");
    // Nothing pending: declining is not delay scheduling.
    let none = tsm.offer("B", "hb", TaskLocality::Any, 0);
    assert!(none.task.is_none() && !none.delay_reject);
    // Nor for a zombie.
    let mut zombie = manager(task_set(1, 0, 0, 2), &l, LocalityWaits::default(), 4);
    zombie.mark_zombie();
    assert!(!zombie.offer("A", "ha", TaskLocality::Any, 0).delay_reject);
}

#[test]
fn max_locality_caps_the_search() {
    let l = live(&[("A", "ha"), ("B", "hb")]);
    let mut tsm = manager(
        task_set_with_prefs(0, 0, 0, vec![vec![on_executor("ha", "A")]]),
        &l,
        LocalityWaits::uniform(0),
        4,
    );
    assert!(tsm
        .resource_offer("B", "hb", TaskLocality::ProcessLocal, 0)
        .is_none());
    assert!(tsm
        .resource_offer("B", "hb", TaskLocality::NodeLocal, 0)
        .is_none());
    assert!(tsm
        .resource_offer("B", "hb", TaskLocality::Any, 0)
        .is_some());
}

#[test]
fn levels_need_live_executors() {
    let prefs = vec![vec![on_executor("ha", "A")]];
    let mut l = live(&[("B", "hb")]);
    let mut tsm = manager(
        task_set_with_prefs(0, 0, 0, prefs),
        &l,
        LocalityWaits::default(),
        4,
    );
    assert_eq!(tsm.locality_levels(), &[TaskLocality::Any]);
    l.add("A", "ha");
    tsm.recompute_locality(&l);
    assert_eq!(
        tsm.locality_levels(),
        &[
            TaskLocality::ProcessLocal,
            TaskLocality::NodeLocal,
            TaskLocality::Any
        ]
    );
    // Another executor on A's host keeps NODE_LOCAL valid when A goes.
    l.add("A2", "ha");
    l.remove("A");
    tsm.recompute_locality(&l);
    assert_eq!(
        tsm.locality_levels(),
        &[TaskLocality::NodeLocal, TaskLocality::Any]
    );
}

#[test]
fn spark_31837_new_better_levels_are_used_at_once() {
    // Spark's "SPARK-31837: Shift to the new highest locality level if there is when
    // recomputeLocality": both tasks prefer execA, which has not registered yet.
    let mut l = live(&[("B", "h2"), ("C", "h3")]);
    let prefs = vec![vec![on_executor("h1", "A")]; 2];
    let mut tsm = manager(
        task_set_with_prefs(0, 0, 0, prefs),
        &l,
        LocalityWaits::default(),
        4,
    );
    assert_eq!(tsm.locality_levels(), &[TaskLocality::Any]);
    assert!(tsm
        .resource_offer("B", "h2", TaskLocality::Any, 0)
        .is_some());
    l.add("A", "h1");
    tsm.recompute_locality(&l);
    // Staying at ANY, the index of the old level, would hand the last task to C.
    assert_eq!(tsm.get_allowed_locality(0), TaskLocality::ProcessLocal);
    assert!(tsm
        .resource_offer("C", "h3", TaskLocality::Any, 0)
        .is_none());
    let d = tsm.resource_offer("A", "h1", TaskLocality::Any, 0).unwrap();
    assert_eq!(
        tsm.task_info(d.task_id).unwrap().locality,
        TaskLocality::ProcessLocal
    );
}

#[test]
fn recomputed_levels_keep_the_current_level_when_nothing_better_appears() {
    // A worse level appearing (NODE_LOCAL after PROCESS_LOCAL) does not move the set.
    let mut l = live(&[("A", "h1")]);
    let prefs = vec![
        vec![on_executor("h1", "A")],
        vec![TaskLocation::Host("h2".into())],
    ];
    let mut tsm = manager(
        task_set_with_prefs(0, 0, 0, prefs),
        &l,
        LocalityWaits::default(),
        4,
    );
    assert_eq!(
        tsm.locality_levels(),
        &[
            TaskLocality::ProcessLocal,
            TaskLocality::NodeLocal,
            TaskLocality::Any
        ]
    );
    assert_eq!(tsm.get_allowed_locality(3000), TaskLocality::NodeLocal);
    l.add("B", "h2");
    tsm.recompute_locality(&l);
    assert_eq!(tsm.get_allowed_locality(3000), TaskLocality::NodeLocal);
}

#[test]
fn retries_then_aborts_with_sparks_message() {
    let l = live(&[("1", "host1")]);
    let mut tsm = manager(task_set(0, 0, 0, 2), &l, LocalityWaits::default(), 2);
    let mut out = Vec::new();
    let boom = TaskEndReason::ExceptionFailure {
        description: "boom".into(),
    };
    let first = tsm
        .resource_offer("1", "host1", TaskLocality::Any, 0)
        .unwrap();
    tsm.handle_failed_task(first.task_id, TaskState::Failed, boom.clone(), 1, &mut out);
    assert!(!tsm.is_zombie());
    // The failed task goes back on top of the stacks and is retried before task 1.
    let retry = tsm
        .resource_offer("1", "host1", TaskLocality::Any, 2)
        .unwrap();
    assert_eq!((retry.index, retry.attempt_number), (0, 1));
    let other = tsm
        .resource_offer("1", "host1", TaskLocality::Any, 2)
        .unwrap();
    out.clear();
    tsm.handle_failed_task(retry.task_id, TaskState::Failed, boom, 3, &mut out);
    assert!(tsm.is_zombie());
    assert!(matches!(
        &out[0],
        SchedulerEvent::TaskEnded { result: Err(_), task_id, .. } if *task_id == retry.task_id
    ));
    match &out[1] {
        SchedulerEvent::TaskSetFailed {
            stage_id: 0,
            stage_attempt_id: 0,
            reason,
        } => assert_eq!(
            reason,
            "Task 0 in stage 0.0 failed 2 times, most recent failure: Lost task 0.1 in stage 0.0 \
             (TID 1) (host1 executor 1): boom"
        ),
        e => panic!("unexpected {e:?}"),
    }
    // The other running attempt is killed.
    assert!(
        matches!(&out[2], SchedulerEvent::KillTask { task_id, .. } if *task_id == other.task_id)
    );
    assert!(tsm
        .resource_offer("1", "host1", TaskLocality::Any, 4)
        .is_none());
    assert!(!tsm.is_finished());
    tsm.handle_failed_task(
        other.task_id,
        TaskState::Killed,
        TaskEndReason::TaskKilled { reason: "x".into() },
        5,
        &mut out,
    );
    assert!(tsm.is_finished());
}

#[test]
fn uncounted_failures_never_abort() {
    let l = live(&[("1", "h")]);
    let mut tsm = manager(task_set(0, 0, 0, 1), &l, LocalityWaits::default(), 1);
    let mut out = Vec::new();
    for _ in 0..5 {
        let d = tsm.resource_offer("1", "h", TaskLocality::Any, 0).unwrap();
        let reason = TaskEndReason::TaskKilled {
            reason: "speculation".into(),
        };
        tsm.handle_failed_task(d.task_id, TaskState::Killed, reason, 0, &mut out);
    }
    assert!(!tsm.is_zombie());
    assert!(out
        .iter()
        .all(|e| matches!(e, SchedulerEvent::TaskEnded { .. })));
}

#[test]
fn fetch_failure_makes_a_zombie_without_retry() {
    let l = live(&[("1", "h")]);
    let mut tsm = manager(task_set(1, 0, 0, 2), &l, LocalityWaits::default(), 4);
    let d = tsm.resource_offer("1", "h", TaskLocality::Any, 0).unwrap();
    let mut out = Vec::new();
    let reason = TaskEndReason::FetchFailed {
        location: None,
        shuffle_id: 0,
        map_index: Some(0),
        reduce_id: 0,
        message: "gone".into(),
    };
    tsm.handle_failed_task(d.task_id, TaskState::Failed, reason, 0, &mut out);
    assert!(tsm.is_zombie() && tsm.is_finished());
    assert_eq!(out.len(), 1);
    assert!(tsm.resource_offer("1", "h", TaskLocality::Any, 0).is_none());
}

#[test]
fn executor_loss_requeues_running_and_lost_map_output() {
    let mut l = live(&[("1", "h1"), ("2", "h2")]);
    let ts = shuffle_map(task_set(0, 0, 0, 3));
    let mut tsm = manager(ts, &l, LocalityWaits::default(), 1);
    let a = tsm.resource_offer("1", "h1", TaskLocality::Any, 0).unwrap();
    let b = tsm.resource_offer("1", "h1", TaskLocality::Any, 0).unwrap();
    let c = tsm.resource_offer("2", "h2", TaskLocality::Any, 0).unwrap();
    let mut out = Vec::new();
    tsm.handle_successful_task(a.task_id, ok_result(), 1, &mut out);
    tsm.handle_successful_task(c.task_id, ok_result(), 1, &mut out);
    out.clear();
    l.remove("1");
    tsm.executor_lost("1", "worker died", false, &l, 2, &mut out);
    // Completed task a (output on 1) and running task b are both reported and re-queued.
    let ended: Vec<TaskId> = out
        .iter()
        .map(|e| match e {
            SchedulerEvent::TaskEnded {
                task_id,
                result:
                    Err(TaskEndReason::ExecutorLostFailure {
                        exit_caused_by_app: false,
                        ..
                    }),
                ..
            } => *task_id,
            e => panic!("unexpected {e:?}"),
        })
        .collect();
    assert_eq!(ended, [a.task_id, b.task_id]);
    assert_eq!(tsm.tasks_successful(), 1);
    assert_eq!(tsm.pending_tasks(), 2);
    // max_task_failures is 1, yet nothing was aborted: executor loss does not count.
    assert!(!tsm.is_zombie());
    let retried: Vec<usize> = (0..2)
        .map(|_| {
            tsm.resource_offer("2", "h2", TaskLocality::Any, 3)
                .unwrap()
                .index
        })
        .collect();
    // The pending lists are stacks: the last task put back is retried first.
    assert_eq!(retried, [1, 0]);
}

#[test]
fn result_task_set_keeps_results_on_executor_loss() {
    let mut l = live(&[("1", "h1")]);
    let mut tsm = manager(task_set(0, 0, 0, 2), &l, LocalityWaits::default(), 4);
    let a = tsm.resource_offer("1", "h1", TaskLocality::Any, 0).unwrap();
    let mut out = Vec::new();
    tsm.handle_successful_task(a.task_id, ok_result(), 1, &mut out);
    out.clear();
    l.remove("1");
    tsm.executor_lost("1", "gone", false, &l, 2, &mut out);
    assert!(out.is_empty());
    assert_eq!(tsm.tasks_successful(), 1);
}

#[test]
fn duplicate_and_late_updates_are_ignored() {
    let l = live(&[("1", "h")]);
    let mut tsm = manager(task_set(0, 0, 0, 1), &l, LocalityWaits::default(), 4);
    let d = tsm.resource_offer("1", "h", TaskLocality::Any, 0).unwrap();
    let mut out = Vec::new();
    tsm.handle_successful_task(d.task_id, ok_result(), 1, &mut out);
    tsm.handle_successful_task(d.task_id, ok_result(), 1, &mut out);
    tsm.handle_failed_task(
        d.task_id,
        TaskState::Failed,
        TaskEndReason::TaskResultLost,
        1,
        &mut out,
    );
    tsm.handle_failed_task(
        99,
        TaskState::Failed,
        TaskEndReason::TaskResultLost,
        1,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert!(tsm.is_finished() && tsm.all_succeeded());
}

#[test]
fn cancel_kills_running_attempts() {
    let l = live(&[("1", "h")]);
    let mut tsm = manager(task_set(0, 0, 0, 3), &l, LocalityWaits::default(), 4);
    let a = tsm.resource_offer("1", "h", TaskLocality::Any, 0).unwrap();
    let b = tsm.resource_offer("1", "h", TaskLocality::Any, 0).unwrap();
    let mut out = Vec::new();
    tsm.cancel("Stage 0 cancelled", &mut out);
    let killed: Vec<TaskId> = out
        .iter()
        .map(|e| match e {
            SchedulerEvent::KillTask {
                task_id,
                executor_id,
                reason,
            } => {
                assert_eq!(
                    (executor_id.as_str(), reason.as_str()),
                    ("1", "Stage 0 cancelled")
                );
                *task_id
            }
            e => panic!("unexpected {e:?}"),
        })
        .collect();
    assert_eq!(killed, [a.task_id, b.task_id]);
    assert!(tsm.is_zombie() && !tsm.is_finished());
    assert!(tsm.resource_offer("1", "h", TaskLocality::Any, 0).is_none());
}

#[test]
fn empty_task_set_is_finished_at_once() {
    let tsm = manager(
        task_set(0, 0, 0, 0),
        &LiveExecutors::new(),
        LocalityWaits::default(),
        4,
    );
    assert!(tsm.is_finished());
}

/// Spark's TaskSetManagerSuite "Executors exit for reason unrelated to currently running tasks".
#[test]
fn only_an_executor_exit_caused_by_the_app_counts_towards_max_failures() {
    let mut l = live(&[("1", "h1"), ("2", "h2")]);
    let mut tsm = manager(task_set(0, 0, 0, 1), &l, LocalityWaits::default(), 1);
    let a = tsm.resource_offer("1", "h1", TaskLocality::Any, 0).unwrap();
    let mut out = Vec::new();
    l.remove("1");
    tsm.executor_lost(
        "1",
        "Terminated for reason unrelated to running tasks",
        false,
        &l,
        1,
        &mut out,
    );
    assert!(!tsm.is_zombie(), "not counted: the task set goes on");
    assert_eq!(tsm.pending_tasks(), 1);
    let b = tsm.resource_offer("2", "h2", TaskLocality::Any, 2).unwrap();
    assert_eq!((b.index, a.index), (0, 0));
    out.clear();
    l.remove("2");
    tsm.executor_lost("2", "Command exited with code 42", true, &l, 3, &mut out);
    assert!(tsm.is_zombie(), "counted: max_task_failures (1) reached");
    let failure = out.iter().find_map(|e| match e {
        SchedulerEvent::TaskSetFailed { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    let failure = failure.expect("the task set failed");
    assert!(
        failure.contains(
            "ExecutorLostFailure (executor 2 exited caused by one of the running tasks) Reason: \
             Command exited with code 42"
        ),
        "{failure}"
    );
}

#[test]
fn a_lost_result_is_retried_and_counts_towards_max_failures() {
    // TaskSetManagerSuite "task result lost" and TaskResultGetterSuite "task retried if result
    // missing from block manager": the task is offered again; the loss counts as a failure.
    let l = live(&[("1", "h")]);
    let mut tsm = manager(task_set(0, 0, 0, 1), &l, LocalityWaits::default(), 2);
    let mut out = Vec::new();
    let d = launch(&mut tsm, "1", "h", 0);
    tsm.handle_failed_task(
        d.task_id,
        TaskState::Finished,
        TaskEndReason::TaskResultLost,
        1,
        &mut out,
    );
    assert!(!tsm.is_zombie());
    let retry = launch(&mut tsm, "1", "h", 2);
    assert_eq!((retry.index, retry.attempt_number), (0, 1));
    out.clear();
    tsm.handle_failed_task(
        retry.task_id,
        TaskState::Finished,
        TaskEndReason::TaskResultLost,
        3,
        &mut out,
    );
    match &out[1] {
        SchedulerEvent::TaskSetFailed { reason, .. } => assert_eq!(
            reason,
            "Task 0 in stage 0.0 failed 2 times, most recent failure: Lost task 0.1 in stage 0.0 \
             (TID 1) (h executor 1): TaskResultLost (result lost from block manager)"
        ),
        e => panic!("unexpected {e:?}"),
    }
}

/// A shuffle-map task set of 5 tasks on executors A–D: task 0 runs on D since 0, tasks 1–3
/// succeeded on A, task 4 runs on B (so the set is not a zombie), and a speculative copy of
/// task 0 runs on C.
fn speculated_map_task() -> (
    TaskSetManager,
    TaskDescription,
    TaskDescription,
    LiveExecutors,
) {
    let l = live(&[("A", "ha"), ("B", "hb"), ("C", "hc"), ("D", "hd")]);
    let config = TaskSetManagerConfig {
        locality_waits: LocalityWaits::uniform(0),
        speculation_quantile: 0.5,
        ..TaskSetManagerConfig::default()
    };
    let ts = shuffle_map(task_set(0, 0, 0, 5));
    let mut tsm = TaskSetManager::new(ts, config, TaskIdSource::new(), &l, 0);
    let original = launch(&mut tsm, "D", "hd", 0);
    let done: Vec<TaskDescription> = (0..3).map(|_| launch(&mut tsm, "A", "ha", 0)).collect();
    let mut out = Vec::new();
    for t in &done {
        tsm.handle_successful_task(t.task_id, ok_result(), 10, &mut out);
    }
    let other = launch(&mut tsm, "B", "hb", 990);
    assert_eq!((original.index, other.index), (0, 4));
    assert!(tsm.check_speculatable_tasks(0, 1000));
    let copy = launch(&mut tsm, "C", "hc", 1000);
    assert_eq!(copy.index, 0);
    assert!(tsm.task_info(copy.task_id).unwrap().speculative);
    (tsm, original, copy, l)
}

/// The tasks reported as resubmitted (their map output lost) by an executor loss.
fn resubmitted(
    tsm: &mut TaskSetManager,
    l: &mut LiveExecutors,
    exec: &str,
    now: u64,
) -> Vec<(TaskId, usize)> {
    l.remove(exec);
    let mut out = Vec::new();
    tsm.executor_lost(exec, "gone", false, l, now, &mut out);
    out.iter()
        .filter_map(|e| match e {
            SchedulerEvent::TaskEnded {
                task_id,
                partition,
                result: Err(TaskEndReason::ExecutorLostFailure { .. }),
                ..
            } if tsm
                .task_info(*task_id)
                .is_some_and(|i| i.state == AttemptState::Succeeded) =>
            {
                Some((*task_id, *partition))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn spark_24755_losing_the_winners_executor_resubmits_the_partition_once() {
    // TaskSetManagerSuite "SPARK-24755 Executor loss can cause task to not be resubmitted": the
    // copy on C wins and the original on D is killed. Losing C resubmits partition 0 once;
    // losing D (the killed loser) resubmits nothing.
    let (mut tsm, original, copy, mut l) = speculated_map_task();
    let mut out = Vec::new();
    tsm.handle_successful_task(copy.task_id, ok_result(), 1010, &mut out);
    let killed = TaskEndReason::TaskKilled {
        reason: KILLED_BY_OTHER_ATTEMPT.into(),
    };
    tsm.handle_failed_task(original.task_id, TaskState::Killed, killed, 1020, &mut out);
    assert_eq!(
        resubmitted(&mut tsm, &mut l, "C", 1030),
        [(copy.task_id, 0)]
    );
    assert_eq!(tsm.pending_tasks(), 1);
    assert!(resubmitted(&mut tsm, &mut l, "D", 1040).is_empty());
    assert_eq!(tsm.pending_tasks(), 1, "partition 0 is queued once");
    let again = launch(&mut tsm, "A", "ha", 1050);
    assert_eq!(again.index, 0);
    assert!(tsm
        .resource_offer("A", "ha", TaskLocality::Any, 1050)
        .is_none());
}

#[test]
fn spark_22074_a_task_killed_by_another_attempt_is_not_resubmitted() {
    // TaskSetManagerSuite "[SPARK-22074] Task killed by other attempt task should not be
    // resubmitted": the original on D wins and the copy on C is killed (its kill not yet
    // acknowledged). Losing C resubmits nothing; losing D resubmits partition 0 once.
    let (mut tsm, original, copy, mut l) = speculated_map_task();
    let mut out = Vec::new();
    tsm.handle_successful_task(original.task_id, ok_result(), 1010, &mut out);
    assert!(resubmitted(&mut tsm, &mut l, "C", 1020).is_empty());
    assert_eq!(tsm.pending_tasks(), 0);
    assert_eq!(
        tsm.task_info(copy.task_id).unwrap().state,
        AttemptState::Failed
    );
    assert_eq!(
        resubmitted(&mut tsm, &mut l, "D", 1030),
        [(original.task_id, 0)]
    );
    assert_eq!(tsm.pending_tasks(), 1);
}

#[test]
fn spark_37580_a_success_resets_the_failure_count_of_its_task() {
    // Two attempts allowed: map task 0 fails once, succeeds on its retry, then its output is lost
    // with executor B and its next run fails once more. In Spark 3.3+ that is its first failure
    // since it last succeeded, not its second, so it runs again instead of aborting the set.
    let l = live(&[("A", "ha"), ("B", "hb"), ("C", "hc")]);
    let mut tsm = manager(
        shuffle_map(task_set(0, 0, 0, 2)),
        &l,
        LocalityWaits::uniform(0),
        2,
    );
    let mut out = Vec::new();
    let first = launch(&mut tsm, "A", "ha", 0);
    let other = launch(&mut tsm, "C", "hc", 0);
    tsm.handle_failed_task(first.task_id, TaskState::Failed, boom(), 1, &mut out);
    let retry = launch(&mut tsm, "B", "hb", 2);
    assert_eq!((retry.index, retry.attempt_number), (0, 1));
    tsm.handle_successful_task(retry.task_id, ok_result(), 3, &mut out);
    tsm.executor_lost("B", "gone", false, &l, 4, &mut out);
    let rerun = launch(&mut tsm, "A", "ha", 5);
    assert_eq!(rerun.index, 0);
    out.clear();
    tsm.handle_failed_task(rerun.task_id, TaskState::Failed, boom(), 6, &mut out);
    assert!(
        !out.iter()
            .any(|e| matches!(e, SchedulerEvent::TaskSetFailed { .. })),
        "{out:?}"
    );
    assert!(!tsm.is_zombie());
    let last = launch(&mut tsm, "C", "hc", 7);
    assert_eq!(last.index, 0);
    tsm.handle_successful_task(last.task_id, ok_result(), 8, &mut out);
    tsm.handle_successful_task(other.task_id, ok_result(), 9, &mut out);
    assert!(tsm.all_succeeded());
}
