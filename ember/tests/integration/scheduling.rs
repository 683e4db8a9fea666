//! Job-level scheduling: stages, shuffle reuse, concurrent jobs, cancellation, FAIR pools.

use std::time::Duration;

use crate::common::context;
use ember::prelude::*;

const MASTERS: [&str; 2] = ["local[2]", "local-cluster[2,1,1024]"];

#[test]
fn a_finished_shuffle_is_reused_by_later_jobs() {
    for m in MASTERS {
        shuffle_reuse(m);
    }
}

fn shuffle_reuse(master: &str) {
    let ctx = context(master, &[]);
    let counts = ctx
        .parallelize((0..1000u32).collect(), 8)
        .map(|x| (x % 10, 1u32))
        .reduce_by_key(|a, b| a + b, 4);
    let before = ctx.status().succeeded_tasks;
    assert_eq!(counts.count().unwrap(), 10);
    assert_eq!(
        ctx.status().succeeded_tasks - before,
        8 + 4,
        "map stage + result stage"
    );
    let before = ctx.status().succeeded_tasks;
    assert_eq!(counts.collect().unwrap().len(), 10);
    assert_eq!(
        ctx.status().succeeded_tasks - before,
        4,
        "the map stage is skipped"
    );
    ctx.stop();
}

#[test]
fn jobs_with_several_shuffles_split_into_stages() {
    let ctx = context("local[3]", &[]);
    let a = ctx
        .parallelize((0..300u64).collect(), 5)
        .map(|x| (x % 30, x))
        .reduce_by_key(|a, b| a + b, 3);
    let b = a
        .map(|(k, v)| (k % 3, v))
        .group_by_key(2)
        .map_values(|v| v.iter().sum::<u64>());
    let got = b.collect_as_map().unwrap();
    let total: u64 = got.values().sum();
    assert_eq!(total, (0..300u64).sum::<u64>());
    assert_eq!(got.len(), 3);
    ctx.stop();
}

#[test]
fn many_driver_threads_submit_jobs_at_once() {
    for m in MASTERS {
        concurrent_jobs(m);
    }
}

fn concurrent_jobs(master: &str) {
    let ctx = context(master, &[]);
    let handles: Vec<_> = (0..6u64)
        .map(|t| {
            let ctx = ctx.clone();
            std::thread::spawn(move || {
                let rdd = ctx
                    .parallelize((0..500u64).collect(), 4)
                    .map(func!(move |x| (x % 7, x * t)));
                rdd.reduce_by_key(|a, b| a + b, 3)
                    .values()
                    .reduce(|a, b| a + b)
                    .unwrap()
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), (0..500u64).sum::<u64>() * t as u64);
    }
    ctx.stop();
}

#[test]
fn cancelling_a_job_group_stops_its_tasks_and_frees_the_cores() {
    for m in MASTERS {
        cancel_group(m);
    }
}

fn cancel_group(master: &str) {
    let ctx = context(master, &[]);
    let worker = {
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            ctx.set_job_group("slow");
            // Tasks that only end when killed: the source checks for kills between records.
            ctx.range(0, i64::MAX, 1, 2).map(|x| x + 1).count()
        })
    };
    assert!(
        ctx.wait_for_status(Duration::from_secs(60), |s| s.running_tasks == 2),
        "both tasks should start: {:?}",
        ctx.status()
    );
    ctx.cancel_job_group("slow");
    let result = worker.join().unwrap();
    assert!(
        matches!(
            result,
            Err(EmberError::Scheduler(SchedulerError::JobCancelled { .. }))
        ),
        "{result:?}"
    );
    let text = result.unwrap_err().to_string();
    assert!(
        text.starts_with("Job ") && text.ends_with(" cancelled part of cancelled job group slow"),
        "Spark's wording: {text}"
    );
    assert!(
        ctx.wait_for_status(Duration::from_secs(60), |s| s.running_tasks == 0),
        "killed tasks end: {:?}",
        ctx.status()
    );
    // Both cores are free again: a two-task job completes.
    assert_eq!(ctx.parallelize(vec![1, 2], 2).count().unwrap(), 2);
    ctx.stop();
}

#[test]
fn cancelling_a_job_by_id_stops_its_tasks_and_frees_the_cores() {
    for m in MASTERS {
        let ctx = context(m, &[]);
        let worker = {
            let ctx = ctx.clone();
            std::thread::spawn(move || ctx.range(0, i64::MAX, 1, 2).map(|x| x + 1).count())
        };
        assert!(
            ctx.wait_for_status(Duration::from_secs(60), |s| s.running_tasks == 2
                && s.active_job_ids.len() == 1),
            "{m}: the job runs: {:?}",
            ctx.status()
        );
        let id = ctx.status().active_job_ids[0];
        ctx.cancel_job(id);
        match worker.join().unwrap() {
            Err(e @ EmberError::Scheduler(SchedulerError::JobCancelled { .. })) => {
                assert_eq!(
                    e.to_string(),
                    format!("Job {id} cancelled "),
                    "{m}: Spark's cancelJob wording"
                )
            }
            other => panic!("{m}: {other:?}"),
        }
        assert!(
            ctx.wait_for_status(Duration::from_secs(60), |s| s.running_tasks == 0
                && s.active_job_ids.is_empty()),
            "{m}: {:?}",
            ctx.status()
        );
        assert_eq!(
            ctx.parallelize(vec![1, 2], 2).count().unwrap(),
            2,
            "{m}: both cores are free again"
        );
        ctx.stop();
    }
}

#[test]
fn fair_pools_from_an_allocation_file_run_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fairscheduler.xml");
    std::fs::write(
        &file,
        concat!(
            r#"<?xml version="1.0"?><allocations>
             <pool name="prod"><schedulingMode>FAIR</schedulingMode>"#,
            r#"<weight>2</weight><minShare>1</minShare></pool>
             <pool name="adhoc"><schedulingMode>FIFO</schedulingMode><weight>1</weight></pool>
           </allocations>"#,
        ),
    )
    .unwrap();
    let ctx = context(
        "local[2]",
        &[
            ("ember.scheduler.mode", "FAIR"),
            ("ember.scheduler.allocation.file", file.to_str().unwrap()),
        ],
    );
    let ctx2 = ctx.clone();
    let t = std::thread::spawn(move || {
        ctx2.set_local_property("ember.scheduler.pool", Some("adhoc"));
        ctx2.parallelize((0..100u32).collect(), 10).count().unwrap()
    });
    ctx.set_local_property("ember.scheduler.pool", Some("prod"));
    assert_eq!(
        ctx.parallelize((0..100u32).collect(), 10).count().unwrap(),
        100
    );
    assert_eq!(t.join().unwrap(), 100);
    ctx.stop();
}

#[test]
fn an_rdd_does_not_keep_its_application_alive() {
    let rdd = {
        let ctx = context("local[1]", &[]);
        ctx.parallelize(vec![1u8], 1)
    };
    assert!(matches!(rdd.count(), Err(EmberError::ContextStopped)));
}

#[test]
fn reduce_tasks_run_node_local_to_their_map_outputs() {
    use ember::scheduler::locality::TaskLocality;
    for m in MASTERS {
        for enabled in [true, false] {
            let ctx = context(
                m,
                &[(
                    "ember.shuffle.reduceLocality.enabled",
                    if enabled { "true" } else { "false" },
                )],
            );
            let node_local = || {
                ctx.status()
                    .launched_by_locality
                    .get(&TaskLocality::NodeLocal)
                    .copied()
                    .unwrap_or(0)
            };
            let before = node_local();
            let sums = ctx
                .parallelize((0..1000u32).collect(), 8)
                .map(|x| (x, 1u32))
                .reduce_by_key(|a, b| a + b, 4);
            assert_eq!(sums.count().unwrap(), 1000);
            // Every executor of these masters is on one host, so every reduce task is NODE_LOCAL
            // to its input; without reduce locality the tasks have no preference at all.
            let expected = if enabled { 4 } else { 0 };
            assert_eq!(
                node_local() - before,
                expected,
                "{m}, reduceLocality {enabled}: {:?}",
                ctx.status().launched_by_locality
            );
            ctx.stop();
        }
    }
}
