//! The reference workloads W1–W7 of `shared/WORKLOADS.md` on Ember, with the timing and the
//! sanity checks of the Spark harness (`shared/anchors/spark/Bench.java`), and W8 (a Parquet
//! scan, filter and aggregate over a dataset made by `bench/w8-gen.py`, the same job as
//! `bench/w8-spark.py` and `bench/w8.sql`).
//!
//! Each run is timed with `Instant` around the whole job: building the RDDs and every action it
//! needs. Every run builds its RDDs anew, so nothing computed in one run is reused by the next.
//! Reference answers and checks that need extra jobs run outside the timed region.

use std::error::Error;
use std::iter::once;
use std::path::PathBuf;
use std::time::Instant;

use ember::prelude::*;

use crate::corpus;
use crate::gen::{generate, Edge, Identity, ModKey, RawKey, P};
use crate::reference;
use crate::stats::{median, min, nearest_rank};

/// What a workload returns when a job or a file operation failed (counted as a failed check).
pub type WResult = Result<(), Box<dyn Error>>;

/// Every workload id, in the order they run by default.
pub const ALL: [&str; 7] = ["W1", "W2", "W3", "W4", "W5", "W6", "W7"];

/// Workloads that run only when named: W8 needs a dataset that `bench/w8-gen.py` makes;
/// `W3-map` is W3 the general way, for comparison.
pub const ON_REQUEST: [&str; 2] = ["W8", "W3-map"];

/// The benchmark session: the Ember application and the knobs shared by every workload.
pub struct Bench {
    /// The application every workload runs in.
    pub ctx: Context,
    /// The master URL, as printed in `RESULT` lines.
    pub master: String,
    /// Timed runs per workload.
    pub runs: usize,
    /// Multiplier of every size knob.
    pub scale: f64,
    /// Path of the full-size W3 corpus (scaled corpora are named after it).
    pub corpus: PathBuf,
    /// The directory of W8's Parquet files and `_expected.json` (`bench/w8-gen.py`).
    pub w8_data: PathBuf,
    /// False once a sanity check failed.
    pub all_ok: bool,
}

/// The columns of a W8 row that the job reads (`tag` is not read: the Parquet reader projects
/// the columns the type names, as Spark and DuckDB prune the columns a query does not use).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct W8Row {
    key: i64,
    value: f64,
}

/// W8's answer, as `bench/w8-gen.py` defines it: result rows, sum of counts, sum over keys of
/// round(100 * sum(value)), and the checksum sum of ((key % 65536) + 1) * cents + count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct W8Answer {
    /// Number of keys with a value over the threshold.
    pub keys: i64,
    /// Number of rows with a value over the threshold.
    pub total_count: i64,
    /// Sum over keys of the rounded cents of the key's sum.
    pub total_cents: i64,
    /// Sum over keys of `((key % 65536) + 1) * cents + count`.
    pub checksum: i64,
}

impl W8Answer {
    fn of_key(key: i64, sum: f64, count: i64) -> W8Answer {
        // Each value is a whole number of cents, so the rounding removes only the error of
        // adding doubles in whatever order the engine did.
        let cents = (sum * 100.0).round() as i64;
        W8Answer {
            keys: 1,
            total_count: count,
            total_cents: cents,
            checksum: (key.rem_euclid(65_536) + 1) * cents + count,
        }
    }

    fn merge(a: W8Answer, b: W8Answer) -> W8Answer {
        W8Answer {
            keys: a.keys + b.keys,
            total_count: a.total_count + b.total_count,
            total_cents: a.total_cents + b.total_cents,
            checksum: a.checksum.wrapping_add(b.checksum),
        }
    }
}

/// The figures of `_expected.json` that W8 checks, and the dataset's size.
fn w8_expected(dir: &std::path::Path) -> Result<(W8Answer, u64), Box<dyn Error>> {
    let path = dir.join("_expected.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (make the dataset with `python bench/w8-gen.py {}`)",
            path.display(),
            dir.display()
        )
    })?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let field = |name: &str| {
        v[name]
            .as_i64()
            .ok_or_else(|| format!("{}: no integer {name:?}", path.display()))
    };
    let answer = W8Answer {
        keys: field("keys")?,
        total_count: field("total_count")?,
        total_cents: field("total_cents")?,
        checksum: field("checksum")?,
    };
    Ok((answer, field("total_bytes")? as u64))
}

fn ms_since(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1e3
}

fn add(a: f64, b: f64) -> f64 {
    a + b
}

/// W3's split: a line's words, each paired with a count of 1. The pairs borrow the line
/// (`flat_map_ref`), so the map-side combine copies a word only the first time it sees it;
/// `ember::text::split_whitespace` gives the words of `str::split_whitespace`, faster.
fn words_with_one(line: &str) -> impl Iterator<Item = (&str, u64)> + '_ {
    ember::text::split_whitespace(line).map(|w| (w, 1))
}

/// W3's actions on the word counts: the number of distinct words and the top 10, timed from
/// `t0` into `ms`, then the total of the counts (untimed, for the check).
fn w3_actions<R>(
    counts: R,
    t0: Instant,
    ms: &mut Vec<f64>,
) -> Result<(u64, Vec<(u64, String)>, u64), Box<dyn Error>>
where
    R: Rdd<Item = (String, u64)> + Clone,
{
    let distinct = counts.count()?;
    // Count descending, then word ascending: the smallest keys are the top words.
    let top = counts
        .clone()
        .map(|(w, n)| (u64::MAX - n, w))
        .take_ordered(10)?;
    ms.push(ms_since(t0));
    let total = counts.map(|(_, n)| n).fold(0, |a, b| a + b)?;
    Ok((distinct, top, total))
}

fn damp(received: f64) -> f64 {
    0.15 + 0.85 * received
}

impl Bench {
    /// A size knob multiplied by the scale (at least 1).
    pub fn scaled(&self, base: u64) -> u64 {
        ((base as f64 * self.scale).round() as u64).max(1)
    }

    /// Runs one workload by id; a job error counts as a failed sanity check.
    pub fn run(&mut self, id: &str) {
        let started = Instant::now();
        println!("== {id} ({} runs)", self.runs);
        let r = match id {
            "W1" => self.w1(),
            "W2" => self.w2(),
            "W3" => self.w3(false),
            "W3-map" => self.w3(true),
            "W4" => self.w4(),
            "W5" => self.w5(),
            "W6" => self.w6(),
            "W7" => self.w7(),
            "W8" => self.w8(),
            other => Err(format!("unknown workload {other}").into()),
        };
        if let Err(e) = r {
            self.check(false, format!("{id}: failed: {e}"));
        }
        println!(
            "   ({id} section incl. references and checks: {:.1} s)",
            started.elapsed().as_secs_f64()
        );
    }

    /// Untimed warm-up, as the Spark harness does: a small shuffle job and a 100-task job.
    pub fn warm_up(&self) -> WResult {
        let small: Vec<u64> = (0..1000).collect();
        self.ctx
            .parallelize(small.clone(), 4)
            .map(|x| (x % 10, 1u64))
            .reduce_by_key(|a, b| a + b, 2)
            .count()?;
        self.ctx.parallelize(small, 100).count()?;
        Ok(())
    }

    fn check(&mut self, ok: bool, what: String) {
        self.all_ok &= ok;
        println!("SANITY {} {what}", if ok { "OK" } else { "FAIL" });
    }

    fn report(&self, id: &str, ms: &[f64], figure: String) {
        // Sub-10 ms figures (W2's latencies) need more than one decimal to be comparable.
        let prec = if median(ms) < 10.0 { 3 } else { 1 };
        println!(
            "RESULT {id} {} min={:.prec$} median={:.prec$} {figure}",
            self.master,
            min(ms),
            median(ms)
        );
    }

    /// W1, tiny tasks: `parallelize(0..N, N).count()`, one element per task.
    fn w1(&mut self) -> WResult {
        let n = self.scaled(10_000);
        let mut ms = Vec::new();
        let mut ok = true;
        for r in 0..self.runs {
            let data: Vec<u64> = (0..n).collect(); // built outside the timed region, as in Spark
            let t0 = Instant::now();
            let c = self.ctx.parallelize(data, n as usize).count()?;
            ms.push(ms_since(t0));
            ok &= c == n;
            println!(
                "  W1 N={n} run {}: {:.1} ms ({:.0} tasks/s) count={c}",
                r + 1,
                ms[r],
                n as f64 / (ms[r] / 1e3)
            );
        }
        self.check(ok, format!("W1 N={n}: count == N in every run"));
        self.report(
            "W1",
            &ms,
            format!("tasks_per_s={:.0}", n as f64 / (median(&ms) / 1e3)),
        );
        Ok(())
    }

    /// W2, job latency: 200 one-partition jobs after 20 warm-up jobs; per run, the median and
    /// the p99 (nearest rank) of the per-job latencies.
    fn w2(&mut self) -> WResult {
        let (jobs, warm) = (self.scaled(200) as usize, self.scaled(20) as usize);
        let ten: Vec<u64> = (1..=10).collect();
        let (mut medians, mut p99s) = (Vec::new(), Vec::new());
        let mut ok = true;
        for r in 0..self.runs {
            for _ in 0..warm {
                ok &= self.ctx.parallelize(ten.clone(), 1).count()? == 10;
            }
            let mut lat = Vec::with_capacity(jobs);
            for _ in 0..jobs {
                let data = ten.clone();
                let t0 = Instant::now();
                let c = self.ctx.parallelize(data, 1).count()?;
                lat.push(ms_since(t0));
                ok &= c == 10;
            }
            medians.push(median(&lat));
            p99s.push(nearest_rank(&lat, 0.99));
            println!(
                "  W2 run {}: median {:.3} ms, p99 {:.3} ms, max {:.3} ms over {jobs} jobs",
                r + 1,
                medians[r],
                p99s[r],
                nearest_rank(&lat, 1.0)
            );
        }
        self.check(
            ok,
            format!("W2: every job counted 10 ({warm} warm-up + {jobs} timed jobs a run)"),
        );
        // min/median are over the per-run medians, like Spark's `W2-median` row.
        self.report(
            "W2",
            &medians,
            format!(
                "median_ms={:.3} p99_ms={:.3}",
                median(&medians),
                median(&p99s)
            ),
        );
        Ok(())
    }

    /// W3, word count over the corpus: distinct words and the top 10. With `general`, the
    /// words are owned `String`s made by an ordinary `flat_map` and `map`, as Spark's
    /// `flatMap(_.split(" ")).map((_, 1))` makes them (`W3-map`), instead of the borrowed words
    /// of `flat_map_ref`; the job and its checks are otherwise the same.
    fn w3(&mut self, general: bool) -> WResult {
        let id = if general { "W3-map" } else { "W3" };
        let limit = corpus::limit_for_scale(self.scale);
        let path = corpus::path_for_limit(&self.corpus, limit);
        let bytes = corpus::ensure(&path, limit)?;
        let path_str = path
            .to_str()
            .ok_or_else(|| format!("corpus path {} is not UTF-8", path.display()))?
            .to_string();
        let t_ref = Instant::now();
        let exp = reference::word_count(&path)?;
        println!(
            "  {id} expected (plain Rust pass, {:.1} s): bytes={bytes} lines={} words={} \
             distinct={} top1={:?}",
            t_ref.elapsed().as_secs_f64(),
            exp.lines,
            exp.words,
            exp.distinct,
            exp.top.first()
        );
        let mut ok = exp.words == exp.lines * corpus::WORDS_PER_LINE;
        if limit == corpus::FULL_LIMIT {
            ok &= bytes == corpus::FULL_BYTES
                && exp.distinct == 100_000
                && exp.words == corpus::FULL_WORDS;
        }
        let mut ms = Vec::new();
        let mut last_top = Vec::new();
        for r in 0..self.runs {
            let t0 = Instant::now();
            let lines = self.ctx.text_file(&path_str, P)?;
            let input_partitions = lines.num_partitions();
            let (distinct, top, total) = if general {
                w3_actions(
                    lines
                        .flat_map(|line: String| {
                            line.split_whitespace()
                                .map(str::to_owned)
                                .collect::<Vec<_>>()
                        })
                        .map(|word: String| (word, 1u64))
                        .reduce_by_key(|a, b| a + b, P),
                    t0,
                    &mut ms,
                )?
            } else {
                w3_actions(
                    lines
                        .flat_map_ref(words_with_one)
                        .reduce_by_key(|a, b| a + b, P),
                    t0,
                    &mut ms,
                )?
            };
            let top: Vec<(String, u64)> = top
                .into_iter()
                .map(|(inv, w)| (w, u64::MAX - inv))
                .collect();
            let rok = distinct == exp.distinct
                && top == exp.top
                && total == exp.words
                && input_partitions == P;
            ok &= rok;
            println!(
                "  {id} run {}: {:.1} ms ({:.1} MB/s) input partitions={input_partitions} \
                 distinct={distinct} total words={total} top3={:?}{}",
                r + 1,
                ms[r],
                bytes as f64 / 1e6 / (ms[r] / 1e3),
                &top[..top.len().min(3)],
                if rok { "" } else { " MISMATCH" }
            );
            last_top = top;
        }
        self.check(
            ok,
            format!(
                "{id}: {bytes} bytes, words == lines*12 ({}*12), {} distinct, top 10 and total \
                 words equal a plain Rust pass, {P} input partitions{}",
                exp.lines,
                exp.distinct,
                if limit == corpus::FULL_LIMIT {
                    ", full-size corpus: 100,000 distinct, 60,708,096 words"
                } else {
                    ""
                }
            ),
        );
        self.report(
            id,
            &ms,
            format!("mb_per_s={:.1}", bytes as f64 / 1e6 / (median(&ms) / 1e3)),
        );
        println!("  {id} top 10: {last_top:?}");
        Ok(())
    }

    /// W4, shuffle aggregate: N generated pairs, `reduce_by_key(+, 8).count()`.
    fn w4(&mut self) -> WResult {
        let n = self.scaled(20_000_000);
        let k = 1_000_000u64;
        let exp_distinct = reference::distinct_mod_keys(n, k);
        // At full size (and above) every one of the 1M keys occurs.
        let mut ok = n < 20_000_000 || exp_distinct == k;
        let mut ms = Vec::new();
        for r in 0..self.runs {
            let t0 = Instant::now();
            let agg = generate::<ModKey>(&self.ctx, n, k).reduce_by_key(|a, b| a + b, P);
            let c = agg.count()?;
            ms.push(ms_since(t0));
            let vsum = agg.values().fold(0, |a, b| a + b)?; // untimed
            let rok = c == exp_distinct && vsum == reference::index_sum(n);
            ok &= rok;
            println!(
                "  W4 run {}: {:.1} ms ({:.2} M records/s) keys={c} value sum={vsum}{}",
                r + 1,
                ms[r],
                n as f64 / 1e6 / (ms[r] / 1e3),
                if rok { "" } else { " MISMATCH" }
            );
        }
        self.check(
            ok,
            format!(
                "W4: N={n}, count == {exp_distinct} distinct keys (computed in the driver), sum \
                 of values == N(N-1)/2"
            ),
        );
        self.report(
            "W4",
            &ms,
            format!("records_per_s={:.0}", n as f64 / (median(&ms) / 1e3)),
        );
        Ok(())
    }

    /// W5, sort: N generated pairs with u64 keys, `sort_by_key(SortOrder::Ascending, 8)`, then a
    /// per-partition order check and checksums in the same job.
    fn w5(&mut self) -> WResult {
        let n = self.scaled(10_000_000);
        let (exp_k, exp_v) = (reference::key_checksum(n), reference::index_sum(n));
        let mut ok = true;
        let mut ms = Vec::new();
        for r in 0..self.runs {
            let t0 = Instant::now();
            let sorted =
                generate::<RawKey>(&self.ctx, n, 0).sort_by_key(SortOrder::Ascending, P)?;
            // Per partition: (index, count, first key, last key, key sum, value sum, in order).
            let parts = sorted
                .map_partitions_with_index(|idx, it| {
                    let (mut cnt, mut first, mut last, mut ks, mut vs, mut in_order) =
                        (0u64, 0u64, 0u64, 0u64, 0u64, true);
                    for (k, v) in it {
                        if cnt == 0 {
                            first = k;
                        } else if last > k {
                            in_order = false;
                        }
                        last = k;
                        ks = ks.wrapping_add(k);
                        vs = vs.wrapping_add(v);
                        cnt += 1;
                    }
                    once((idx as u64, cnt, first, last, ks, vs, in_order))
                })
                .collect()?;
            ms.push(ms_since(t0));
            let (mut total, mut ks, mut vs) = (0u64, 0u64, 0u64);
            let mut rok = parts.len() == P;
            let mut prev_last: Option<u64> = None;
            for (i, p) in parts.iter().enumerate() {
                total += p.1;
                ks = ks.wrapping_add(p.4);
                vs = vs.wrapping_add(p.5);
                rok &= p.6 && p.0 == i as u64;
                if p.1 > 0 {
                    if let Some(prev) = prev_last {
                        rok &= prev <= p.2;
                    }
                    prev_last = Some(p.3);
                }
            }
            rok &= total == n && ks == exp_k && vs == exp_v;
            ok &= rok;
            let sizes: Vec<u64> = parts.iter().map(|p| p.1).collect();
            println!(
                "  W5 run {}: {:.1} ms count={total} partition sizes={sizes:?}{}",
                r + 1,
                ms[r],
                if rok { "" } else { " MISMATCH" }
            );
        }
        self.check(
            ok,
            format!(
                "W5: each partition ascending, partitions in order, count == {n}, key and value \
                 checksums match"
            ),
        );
        self.report("W5", &ms, format!("wall_ms={:.1}", median(&ms)));
        Ok(())
    }

    /// W6, join: A = 5M pairs keyed splitmix64(i) % |B|, B = 1M pairs (i, i), `join(8).count()`.
    fn w6(&mut self) -> WResult {
        let (na, nb) = (self.scaled(5_000_000), self.scaled(1_000_000));
        // A's keys are taken modulo |B| (1,000,000 at full size, as WORKLOADS.md says), so that
        // every A pair matches exactly one B pair at any scale.
        let mut ok = true;
        let mut ms = Vec::new();
        for r in 0..self.runs {
            let t0 = Instant::now();
            let a = generate::<ModKey>(&self.ctx, na, nb);
            let b = generate::<Identity>(&self.ctx, nb, 0);
            let c = a.join(b, P).count()?;
            ms.push(ms_since(t0));
            ok &= c == na;
            println!("  W6 run {}: {:.1} ms count={c}", r + 1, ms[r]);
        }
        self.check(
            ok,
            format!("W6: join count == {na} (every A key matches exactly one B key)"),
        );
        self.report("W6", &ms, format!("wall_ms={:.1}", median(&ms)));
        Ok(())
    }

    /// W7, PageRank: 10 iterations, links `group_by_key(8).cache()`, in the structure of
    /// `ember/examples/pagerank.rs`; final `collect()`.
    fn w7(&mut self) -> WResult {
        let (nodes, edges, iterations) = (self.scaled(100_000), self.scaled(1_000_000), 10);
        let exp = reference::pagerank(nodes, edges, iterations);
        let exp_count = exp.iter().filter(|r| r.is_some()).count();
        let mut ok = true;
        let mut ms = Vec::new();
        for r in 0..self.runs {
            let t0 = Instant::now();
            let links = generate::<Edge>(&self.ctx, edges, nodes)
                .group_by_key(P)
                .cache();
            // Initial ranks through the same reduce_by_key(add) + map_values(damp) as every
            // iteration (damp(1.0) == 1.0), so `ranks` keeps one type across the loop.
            let mut ranks = links
                .clone()
                .map_values(|_| 1.0f64)
                .reduce_by_key(add, P)
                .map_values(damp);
            for _ in 0..iterations {
                let contribs = links.clone().join(ranks, P).flat_map(
                    |(_, (dests, rank)): (u64, (Vec<u64>, f64))| {
                        let share = rank / dests.len() as f64;
                        dests.into_iter().map(move |d| (d, share))
                    },
                );
                ranks = contribs.reduce_by_key(add, P).map_values(damp);
            }
            let result = ranks.collect()?;
            ms.push(ms_since(t0));
            links.unpersist();
            let mut rok = result.len() == exp_count;
            let (mut max_rel, mut sum) = (0.0f64, 0.0f64);
            for (v, rank) in &result {
                match exp.get(*v as usize).copied().flatten() {
                    Some(e) => max_rel = max_rel.max((rank - e).abs() / e.abs()),
                    None => rok = false,
                }
                sum += rank;
            }
            rok &= max_rel < 1e-9;
            ok &= rok;
            println!(
                "  W7 run {}: {:.1} ms ranked nodes={} rank sum={sum:.6} max rel diff vs \
                 sequential={max_rel:.2e}{}",
                r + 1,
                ms[r],
                result.len(),
                if rok { "" } else { " MISMATCH" }
            );
        }
        self.check(
            ok,
            format!(
                "W7: ranks equal a sequential PageRank of the same graph (rel. diff < 1e-9), \
                 {exp_count} ranked nodes"
            ),
        );
        self.report("W7", &ms, format!("wall_ms={:.1}", median(&ms)));
        Ok(())
    }
    /// W8, Parquet scan + filter + aggregate: `SELECT key, sum(value), count(*) WHERE value >
    /// 5000.0 GROUP BY key` over `--w8-data`, reduced to [`W8Answer`] inside the job (as
    /// `bench/w8.sql` does) and checked against the generator's `_expected.json`.
    fn w8(&mut self) -> WResult {
        let (exp, bytes) = w8_expected(&self.w8_data)?;
        let path = self.w8_data.to_str().ok_or("the W8 path is not UTF-8")?;
        let mut ok = true;
        let mut ms = Vec::new();
        for r in 0..self.runs {
            let t0 = Instant::now();
            let got = self
                .ctx
                .parquet_file::<W8Row>(path, ember::rdd::ParquetOptions::default())?
                .filter(|r: &W8Row| r.value > 5000.0)
                .map(|r: W8Row| (r.key, (r.value, 1i64)))
                .reduce_by_key(|a: (f64, i64), b: (f64, i64)| (a.0 + b.0, a.1 + b.1), P)
                .map(|(k, (sum, count)): (i64, (f64, i64))| W8Answer::of_key(k, sum, count))
                .fold(W8Answer::default(), W8Answer::merge)?;
            ms.push(ms_since(t0));
            let rok = got == exp;
            ok &= rok;
            println!(
                "  W8 run {}: {:.1} ms ({:.1} MB/s) keys={} total_count={} total_cents={} \
                 checksum={}{}",
                r + 1,
                ms[r],
                bytes as f64 / 1e6 / (ms[r] / 1e3),
                got.keys,
                got.total_count,
                got.total_cents,
                got.checksum,
                if rok { "" } else { " MISMATCH" }
            );
        }
        self.check(
            ok,
            format!(
                "W8: keys, count, cents and checksum equal _expected.json of {} ({exp:?})",
                self.w8_data.display()
            ),
        );
        self.report(
            "W8",
            &ms,
            format!("mb_per_s={:.1}", bytes as f64 / 1e6 / (median(&ms) / 1e3)),
        );
        Ok(())
    }
}
