//! Chaos: executors of a `local-cluster` are SIGKILLed at random moments of shuffle jobs; every
//! job still ends with exactly the right answer. With no replacement allowed, losing every
//! executor ends in a clear error, never a hang.
//!
//! "Random moment" is driven by progress, not by time: a killer thread waits (on the status
//! condition variable) until the job has finished `k` tasks, `k` drawn from the seed between 0
//! (before the map stage) and past the map stage (during the reduce stage, or after the job).

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use crate::common::context;
use ember::prelude::*;

/// xorshift64*: the test's only randomness, from the seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const MAP_PARTITIONS: usize = 9;
const REDUCE_PARTITIONS: usize = 6;

fn lines() -> Vec<String> {
    (0..6000u64)
        .map(|i| format!("w{} w{} w{} common", i % 97, (i * 7) % 131, i % 13))
        .collect()
}

fn expected_counts() -> HashMap<String, u64> {
    let mut m = HashMap::new();
    for l in lines() {
        for w in l.split_whitespace() {
            *m.entry(w.to_string()).or_insert(0) += 1;
        }
    }
    m
}

fn expected_join() -> Vec<(u64, (u64, u64))> {
    let mut v: Vec<(u64, (u64, u64))> = (0..3000u64)
        .filter(|k| k % 3 == 0)
        .flat_map(|k| (0..2u64).map(move |j| (k % 500, (k, j))))
        .collect();
    v.sort();
    v
}

fn word_count(ctx: &Context) -> HashMap<String, u64> {
    ctx.parallelize(lines(), MAP_PARTITIONS)
        .flat_map(|l: String| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .map(|w| (w, 1u64))
        .reduce_by_key(|a, b| a + b, REDUCE_PARTITIONS)
        .collect_as_map()
        .unwrap()
}

fn join(ctx: &Context) -> Vec<(u64, (u64, u64))> {
    let left = ctx
        .parallelize((0..3000u64).collect(), MAP_PARTITIONS)
        .filter(|k| k % 3 == 0)
        .map(|k| (k % 500, k));
    let right = ctx
        .parallelize((0..1000u64).collect(), 4)
        .map(|j| (j % 500, j / 500));
    let mut v = left.join(right, REDUCE_PARTITIONS).collect().unwrap();
    v.sort();
    v
}

/// Starts a thread that SIGKILLs one registered executor (chosen by the seed) each time the
/// application has finished the given number of tasks more than when it started.
fn killer(
    ctx: &Context,
    rng: &mut Rng,
    after_tasks: Vec<u64>,
) -> std::thread::JoinHandle<Vec<u32>> {
    let ctx = ctx.clone();
    let base = ctx.status().succeeded_tasks;
    let picks: Vec<u64> = after_tasks.iter().map(|_| rng.next()).collect();
    std::thread::spawn(move || {
        let mut killed = Vec::new();
        for (k, pick) in after_tasks.into_iter().zip(picks) {
            // Waits for progress, not for time: either k more tasks ended or the jobs are over.
            ctx.wait_for_status(Duration::from_secs(60), |s| s.succeeded_tasks >= base + k);
            let mut pids = ctx.executor_pids();
            pids.retain(|p| !killed.contains(p));
            if pids.is_empty() {
                continue;
            }
            pids.sort();
            let pid = pids[(pick % pids.len() as u64) as usize];
            let ok = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                killed.push(pid);
            }
        }
        killed
    })
}

fn run_seed(seed: u64, kills: usize) {
    let mut rng = Rng::new(seed);
    let seed_s = seed.to_string();
    let ctx = context(
        "local-cluster[3,1,1024]",
        &[("ember.scheduler.seed", &seed_s)],
    );
    // Both jobs together run 2 × (9 map + 6 reduce) + 4 tasks; a kill point past that lands after
    // them.
    let total = (2 * (MAP_PARTITIONS + REDUCE_PARTITIONS) + 4) as u64;
    let mut points: Vec<u64> = (0..kills).map(|_| rng.below(total + 4)).collect();
    points.sort();
    let k = killer(&ctx, &mut rng, points.clone());
    let counts = word_count(&ctx);
    let joined = join(&ctx);
    // Let a kill that waits for more tasks than the jobs ran happen now ("after the job").
    assert_eq!(
        ctx.parallelize((0..40u32).collect(), 40).count().unwrap(),
        40,
        "seed {seed}"
    );
    let killed = k.join().unwrap();
    let st = ctx.status();
    eprintln!(
        "seed {seed}: kill points {points:?}, executors lost {}, failed attempts {}",
        st.executors_lost, st.failed_tasks
    );
    assert_eq!(
        counts,
        expected_counts(),
        "seed {seed}, kill points {points:?}, killed {killed:?}"
    );
    assert_eq!(
        joined,
        expected_join(),
        "seed {seed}, kill points {points:?}, killed {killed:?}"
    );
    // The application keeps working with its replacements.
    assert_eq!(
        word_count(&ctx),
        expected_counts(),
        "seed {seed}: after the kills"
    );
    assert_eq!(
        killed.len(),
        kills,
        "seed {seed}: every planned kill happened"
    );
    ctx.stop();
}

#[test]
fn one_executor_killed_at_a_random_moment_for_20_seeds() {
    for seed in 1..=20 {
        run_seed(seed, 1);
    }
}

#[test]
fn two_executors_killed_in_one_job() {
    for seed in 101..=106 {
        run_seed(seed, 2);
    }
}

#[test]
fn losing_every_executor_without_replacement_is_a_clear_error() {
    let ctx = context(
        "local-cluster[2,1,1024]",
        &[("ember.deploy.maxExecutorRetries", "0")],
    );
    let pids = ctx.executor_pids();
    assert_eq!(pids.len(), 2);
    let (tx, rx) = mpsc::channel();
    let job_ctx = ctx.clone();
    std::thread::spawn(move || {
        // Tasks that run until they are stopped: only the loss of their executors ends them.
        let r = job_ctx
            .parallelize((0..4u32).collect(), 4)
            .map(|x| {
                while !TaskContext::current().is_some_and(|c| c.is_interrupted()) {
                    std::thread::yield_now();
                }
                x
            })
            .count();
        let _ = tx.send(r);
    });
    assert!(
        ctx.wait_for_status(Duration::from_secs(30), |s| s.running_tasks == 2),
        "both executors busy: {:?}",
        ctx.status()
    );
    for pid in pids {
        assert!(std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success());
    }
    let err = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the job ends, it does not hang")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Master removed our application: FAILED"),
        "{err}"
    );
    assert!(err.contains("ember.deploy.maxExecutorRetries (0)"), "{err}");
    // Later jobs fail at once with the same reason.
    let err = ctx
        .parallelize(vec![1u8], 1)
        .count()
        .unwrap_err()
        .to_string();
    assert!(err.contains("Master removed our application"), "{err}");
    ctx.stop();
}
