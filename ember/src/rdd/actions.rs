//! Actions: operations that run a job and bring a result to the driver.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Display;
use std::path::PathBuf;

use super::fns::{assert_shippable, Shippable};
use super::Rdd;
use crate::data::{Data, Key};
use crate::error::{EmberError, Result};
use crate::func::Captures;
use crate::io::output_committer::TextOutputCommitter;
use crate::task::TaskMetrics;

fn empty() -> EmberError {
    EmberError::EmptyCollection("empty collection".into())
}

/// The `n` smallest items of an iterator, sorted ascending, using a bounded heap.
fn smallest<T: Ord, I: Iterator<Item = T>>(it: I, n: usize) -> Vec<T> {
    if n == 0 {
        return Vec::new();
    }
    let mut heap = BinaryHeap::with_capacity(n + 1);
    for x in it {
        if heap.len() < n {
            heap.push(x);
        } else if let Some(top) = heap.peek() {
            if x < *top {
                heap.pop();
                heap.push(x);
            }
        }
    }
    heap.into_sorted_vec()
}

/// Actions on every RDD.
pub trait Actions: Rdd {
    /// Every element, in partition order.
    #[track_caller]
    fn collect(&self) -> Result<Vec<Self::Item>> {
        let parts = self.context()?.run_job_inner(
            self,
            (),
            |_: &(), _, it| it.collect::<Vec<_>>(),
            None,
            Captures::default(),
        )?;
        let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for p in parts {
            out.extend(p);
        }
        Ok(out)
    }

    /// The number of elements.
    #[track_caller]
    fn count(&self) -> Result<u64> {
        Ok(self
            .context()?
            .run_job_inner(
                self,
                (),
                |_: &(), _, it| it.count() as u64,
                None,
                Captures::default(),
            )?
            .into_iter()
            .sum())
    }

    /// Combines all elements with an associative function; an error on an empty RDD.
    #[track_caller]
    fn reduce<F>(&self, f: F) -> Result<Self::Item>
    where
        F: Fn(Self::Item, Self::Item) -> Self::Item + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        let parts = self.context()?.run_job_inner(
            self,
            (),
            move |_: &(), _, it| it.reduce(f),
            None,
            captures.clone(),
        )?;
        captures
            .enter(|| parts.into_iter().flatten().reduce(f))
            .ok_or_else(empty)
    }

    /// Folds every partition from `zero`, then the partial results from `zero` (Spark's `fold`).
    #[track_caller]
    fn fold<F>(&self, zero: Self::Item, f: F) -> Result<Self::Item>
    where
        F: Fn(Self::Item, Self::Item) -> Self::Item + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        let parts = self.context()?.run_job_inner(
            self,
            zero.clone(),
            move |z: &Self::Item, _, it| it.fold(z.clone(), f),
            None,
            captures.clone(),
        )?;
        Ok(captures.enter(|| parts.into_iter().fold(zero, f)))
    }

    /// Aggregates each partition with `seq` from `zero`, then merges with `comb`.
    #[track_caller]
    fn aggregate<U: Data, S, M>(&self, zero: U, seq: S, comb: M) -> Result<U>
    where
        S: Fn(U, Self::Item) -> U + Shippable,
        M: Fn(U, U) -> U + Shippable,
    {
        assert_shippable!(S, M);
        let captures = Captures::take();
        let parts = self.context()?.run_job_inner(
            self,
            zero.clone(),
            move |z: &U, _, it| it.fold(z.clone(), seq),
            None,
            captures.clone(),
        )?;
        Ok(captures.enter(|| parts.into_iter().fold(zero, comb)))
    }

    /// The first `n` elements, scanning as few partitions as it can (one, then four times as
    /// many each round, as Spark's `take`).
    #[track_caller]
    fn take(&self, n: usize) -> Result<Vec<Self::Item>> {
        let total = self.num_partitions();
        let mut out = Vec::new();
        let mut scanned = 0usize;
        while out.len() < n && scanned < total {
            let try_parts = if scanned == 0 {
                1
            } else if out.is_empty() {
                scanned * 4
            } else {
                // Estimate from the rate so far, with 50% margin, at most 4x.
                let need = ((1.5 * (n - out.len()) as f64 * scanned as f64) / out.len() as f64)
                    .ceil() as usize;
                need.clamp(1, scanned * 4)
            };
            let parts: Vec<usize> = (scanned..(scanned + try_parts).min(total)).collect();
            scanned += parts.len();
            let left = n - out.len();
            let chunks = self.context()?.run_job_inner(
                self,
                left,
                |left: &usize, _, it| it.take(*left).collect::<Vec<_>>(),
                Some(parts),
                Captures::default(),
            )?;
            for c in chunks {
                let room = n - out.len();
                out.extend(c.into_iter().take(room));
            }
        }
        Ok(out)
    }

    /// The first element; an error on an empty RDD.
    #[track_caller]
    fn first(&self) -> Result<Self::Item> {
        self.take(1)?.into_iter().next().ok_or_else(empty)
    }

    /// The `n` largest elements, largest first.
    #[track_caller]
    fn top(&self, n: usize) -> Result<Vec<Self::Item>>
    where
        Self::Item: Ord,
    {
        let parts = self.context()?.run_job_inner(
            self,
            n,
            |n: &usize, _, it| {
                smallest(it.map(Reverse), *n)
                    .into_iter()
                    .map(|r| r.0)
                    .collect::<Vec<_>>()
            },
            None,
            Captures::default(),
        )?;
        Ok(smallest(parts.into_iter().flatten().map(Reverse), n)
            .into_iter()
            .map(|r| r.0)
            .collect())
    }

    /// The `n` smallest elements, smallest first.
    #[track_caller]
    fn take_ordered(&self, n: usize) -> Result<Vec<Self::Item>>
    where
        Self::Item: Ord,
    {
        let parts = self.context()?.run_job_inner(
            self,
            n,
            |n: &usize, _, it| smallest(it, *n),
            None,
            Captures::default(),
        )?;
        Ok(smallest(parts.into_iter().flatten(), n))
    }

    /// Runs `f` on every element, on the executors.
    #[track_caller]
    fn foreach<F>(&self, f: F) -> Result<()>
    where
        F: Fn(Self::Item) + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        self.context()?
            .run_job_inner(
                self,
                (),
                move |_: &(), _, it| it.for_each(f),
                None,
                captures,
            )
            .map(drop)
    }

    /// Runs `f` on each partition's iterator, on the executors.
    #[track_caller]
    fn foreach_partition<F>(&self, f: F) -> Result<()>
    where
        F: Fn(super::PartIter<Self>) + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        self.context()?
            .run_job_inner(self, (), move |_: &(), _, it| f(it), None, captures)
            .map(drop)
    }

    /// How many times each distinct element occurs.
    #[track_caller]
    fn count_by_value(&self) -> Result<HashMap<Self::Item, u64>>
    where
        Self::Item: Key,
    {
        // Count inside each task first, as Spark's map-side combine would.
        let parts = self.context()?.run_job_inner(
            self,
            (),
            |_: &(), _, it| {
                let mut m: HashMap<Self::Item, u64> = HashMap::new();
                for x in it {
                    *m.entry(x).or_insert(0) += 1;
                }
                m.into_iter().collect::<Vec<_>>()
            },
            None,
            Captures::default(),
        )?;
        let mut total = HashMap::new();
        for (k, c) in parts.into_iter().flatten() {
            *total.entry(k).or_insert(0) += c;
        }
        Ok(total)
    }

    /// Writes every element's `Display` form as one line into `part-NNNNN` files of the
    /// directory `path`. Files are written under `path/_temporary` and moved into place only
    /// when the job succeeds; a failed job leaves no output; an existing `path` is an error.
    #[track_caller]
    fn save_as_text_file(&self, path: &str) -> Result<()>
    where
        Self::Item: Display,
    {
        if crate::io::cloud::is_object_store(path) {
            let writer = crate::rdd::files::TextWriter(crate::io::compression::Compression::None);
            return crate::rdd::files::save_with(self, path, writer);
        }
        let dir = PathBuf::from(path);
        let token = crate::io::output_committer::new_job_token();
        let committer = TextOutputCommitter::setup_job(&dir, &token)?;
        let job = self.context()?.run_job_inner(
            self,
            (path.to_string(), token),
            |(path, token): &(String, String), ctx, it| {
                let committer = TextOutputCommitter::for_task(std::path::Path::new(path), token);
                let written = committer
                    .write_task_output(
                        ctx.partition_id,
                        ctx.task_attempt_id,
                        it.map(|x| x.to_string()),
                    )
                    .and_then(|(records, bytes)| {
                        TaskMetrics::add(&ctx.metrics.output_records_written, records);
                        TaskMetrics::add(&ctx.metrics.output_bytes_written, bytes);
                        committer.commit_task(ctx.partition_id, ctx.task_attempt_id)
                    });
                if let Err(e) = written {
                    committer.abort_task(ctx.partition_id, ctx.task_attempt_id);
                    e.raise();
                }
            },
            None,
            Captures::default(),
        );
        match job {
            Ok(_) => committer.commit_job(),
            Err(e) => {
                committer.abort_job();
                Err(e)
            }
        }
    }

    /// [`save_as_text_file`](Self::save_as_text_file) with each part file compressed
    /// (`part-00000.gz`, …; Spark's `saveAsTextFile(path, codec)`); `.lz4` is Hadoop's
    /// `Lz4Codec` framing, which Spark reads.
    #[track_caller]
    fn save_as_text_file_compressed(
        &self,
        path: &str,
        codec: super::files::Compression,
    ) -> Result<()>
    where
        Self::Item: Display,
    {
        super::files::save_with(self, path, super::files::TextWriter(codec))
    }

    /// Writes every element as one CSV record into `part-NNNNN.csv` files of the directory
    /// `path` (with a header line per file when `options.header`; nested values cannot be
    /// written), under `column=value` directories for `options.partition_by`. Through the
    /// same commit protocol as `save_as_text_file`: nothing is visible unless the job
    /// succeeds, and an existing `path` is refused before any task runs.
    #[track_caller]
    fn save_as_csv(&self, path: &str, options: super::files::CsvOptions) -> Result<()> {
        super::files::save_with(self, path, super::files::CsvWriter(options))
    }

    /// Writes every element as one JSON object per line into `part-NNNNN.json` files of the
    /// directory `path` (commit protocol and `partition_by` as [`save_as_csv`](Self::save_as_csv)).
    #[track_caller]
    fn save_as_json_lines(&self, path: &str, options: super::files::JsonOptions) -> Result<()> {
        super::files::save_with(self, path, super::files::JsonWriter(options))
    }

    /// Writes the elements of each partition as one snappy-compressed Parquet file
    /// `part-NNNNN.parquet` of the directory `path` (one per `column=value` directory with
    /// `partition_by`; commit protocol as [`save_as_csv`](Self::save_as_csv)). The schema is
    /// traced from the element type: `Option` fields are nullable, `Vec`s lists, structs
    /// structs.
    #[cfg(feature = "parquet")]
    #[track_caller]
    fn save_as_parquet(&self, path: &str, options: super::files::ParquetOptions) -> Result<()> {
        super::files::save_with(self, path, super::files::ParquetWriter(options))
    }
}

impl<R: Rdd> Actions for R {}
