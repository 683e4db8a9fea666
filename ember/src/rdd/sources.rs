//! Sources (parallelized collections, ranges, text files) and partition-reshaping narrow RDDs
//! (union, coalesce).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{CacheIter, Dependency, PartIter, Rdd, RddMeta};
use crate::context::Context;
use crate::data::Data;
use crate::error::Result;
use crate::io::text_input::{FileSplit, LineReader, Utf8Decoding};
use crate::task::{TaskContext, TaskMetrics};

/// A local collection cut into partitions (Spark's `ParallelCollectionRDD`).
#[derive(Serialize, Deserialize)]
pub struct ParallelCollection<T> {
    meta: RddMeta,
    slices: Arc<Vec<Vec<T>>>,
}

impl<T> Clone for ParallelCollection<T> {
    fn clone(&self) -> Self {
        ParallelCollection {
            meta: self.meta.clone(),
            slices: self.slices.clone(),
        }
    }
}

impl<T: Data> ParallelCollection<T> {
    /// Cuts `data` into `num_slices` contiguous slices of (nearly) equal length, as Spark does.
    pub(crate) fn new(ctx: &Context, data: Vec<T>, num_slices: usize) -> Self {
        let meta = RddMeta::new(ctx, "ParallelCollectionRdd");
        if num_slices == 0 {
            // Spark's ParallelCollectionRDD.slice.
            meta.refuse_argument(
                "parallelize(num_slices)",
                "Positive number of partitions required",
            );
        }
        let n = num_slices.max(1);
        let len = data.len();
        let mut slices = Vec::with_capacity(n);
        let mut it = data.into_iter();
        for i in 0..n {
            let start = i * len / n;
            let end = (i + 1) * len / n;
            slices.push(it.by_ref().take(end - start).collect());
        }
        ParallelCollection {
            meta,
            slices: Arc::new(slices),
        }
    }
}

/// Iterator over one slice of a [`ParallelCollection`].
pub struct SliceIter<T> {
    slices: Arc<Vec<Vec<T>>>,
    part: usize,
    pos: usize,
    ctx: Arc<TaskContext>,
}

impl<T: Clone> Iterator for SliceIter<T> {
    type Item = T;
    #[inline]
    fn next(&mut self) -> Option<T> {
        let x = self.slices.get(self.part)?.get(self.pos)?.clone();
        self.pos += 1;
        if self.pos & 4095 == 0 {
            self.ctx.check_interrupted();
        }
        Some(x)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self
            .slices
            .get(self.part)
            .map_or(0, |s| s.len().saturating_sub(self.pos));
        (n, Some(n))
    }
}

impl<T: Data> Rdd for ParallelCollection<T> {
    type Item = T;
    type Iter = SliceIter<T>;
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.slices.len()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
    fn compute(&self, partition: usize, ctx: &Arc<TaskContext>) -> SliceIter<T> {
        SliceIter {
            slices: self.slices.clone(),
            part: partition,
            pos: 0,
            ctx: ctx.clone(),
        }
    }
}

/// The numbers `start, start + step, …` below `end`, generated inside the tasks (Spark's
/// `SparkContext.range`).
#[derive(Clone, Serialize, Deserialize)]
pub struct RangeRdd {
    meta: RddMeta,
    start: i64,
    step: i64,
    count: u64,
    slices: usize,
}

impl RangeRdd {
    pub(crate) fn new(ctx: &Context, start: i64, end: i64, step: i64, slices: usize) -> Self {
        let meta = RddMeta::new(ctx, "RangeRdd");
        // Spark's SparkContext.range and ParallelCollectionRDD.slice.
        if step == 0 {
            meta.refuse_argument("range(step)", "step cannot be 0");
        }
        if slices == 0 {
            meta.refuse_argument(
                "range(num_slices)",
                "Positive number of partitions required",
            );
        }
        let step = if step == 0 { 1 } else { step };
        let span = end as i128 - start as i128;
        let count = if (span > 0 && step > 0) || (span < 0 && step < 0) {
            let s = step as i128;
            ((span + s - s.signum()) / s) as u64
        } else {
            0
        };
        RangeRdd {
            meta,
            start,
            step,
            count,
            slices: slices.max(1),
        }
    }
}

/// Iterator of a [`RangeRdd`] partition.
pub struct RangeIter {
    next: i64,
    step: i64,
    remaining: u64,
    ctx: Arc<TaskContext>,
}

impl Iterator for RangeIter {
    type Item = i64;
    #[inline]
    fn next(&mut self) -> Option<i64> {
        if self.remaining == 0 {
            return None;
        }
        let x = self.next;
        self.remaining -= 1;
        self.next = self.next.wrapping_add(self.step);
        if self.remaining & 4095 == 0 {
            // Between records, a killed task stops (Spark's InterruptibleIterator).
            self.ctx.check_interrupted();
        }
        Some(x)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

impl Rdd for RangeRdd {
    type Item = i64;
    type Iter = RangeIter;
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.slices
    }
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> RangeIter {
        let n = self.slices as u128;
        let lo = (p as u128 * self.count as u128 / n) as u64;
        let hi = ((p as u128 + 1) * self.count as u128 / n) as u64;
        RangeIter {
            next: self.start.wrapping_add((lo as i64).wrapping_mul(self.step)),
            step: self.step,
            remaining: hi - lo,
            ctx: ctx.clone(),
        }
    }
}

/// Lines of text files (Spark's `textFile`, Hadoop's `TextInputFormat`).
#[derive(Clone, Serialize, Deserialize)]
pub struct TextFileRdd {
    meta: RddMeta,
    splits: Arc<Vec<FileSplit>>,
    decoding: Utf8Decoding,
    ignore: super::files::IgnoreFiles,
}

impl TextFileRdd {
    pub(crate) fn new(ctx: &Context, path: &str, min_partitions: usize) -> Result<Self> {
        let splits = if crate::io::cloud::is_object_store(path) {
            // Sizes from the listing: nothing is read on the driver.
            let conf = crate::io::cloud::HadoopConf::from_pairs(ctx.conf().iter());
            let sized: Vec<_> = crate::io::store::store_with(path, &conf)?
                .list(path)?
                .into_iter()
                .map(|f| (f.path, f.len))
                .collect();
            crate::io::text_input::plan_splits(
                &sized,
                min_partitions.max(1),
                crate::io::text_input::LOCAL_FS_BLOCK_SIZE,
            )
        } else {
            let files = crate::io::text_input::list_input_files(path)?;
            crate::io::text_input::compute_splits(&files, min_partitions.max(1))?
        };
        Ok(TextFileRdd {
            meta: RddMeta::new(ctx, "TextFileRdd"),
            splits: Arc::new(splits),
            decoding: Utf8Decoding::Lossy,
            ignore: super::files::IgnoreFiles::from_conf(ctx)?,
        })
    }

    /// The same lines decoded strictly: a line that is not UTF-8 fails the task naming the
    /// file and the offset of its first bad byte, instead of reading as U+FFFD (Hadoop's
    /// `Text`, the default).
    pub fn strict_utf8(mut self) -> Self {
        self.decoding = Utf8Decoding::Strict;
        self
    }

    /// Opens a split; `None` when `ember.files.ignore*` skips it.
    fn open(&self, split: &FileSplit) -> Option<LineReader> {
        match LineReader::try_open_with(split.clone(), self.decoding) {
            Ok(r) => Some(r),
            Err(e) if self.ignore.skips(&split.path, &e) => None,
            Err(e) => e.raise(),
        }
    }
}

/// Iterator over the lines of one split; counts input metrics and honours kills.
pub struct TextIter {
    reader: Option<LineReader>,
    ignore: super::files::IgnoreFiles,
    ctx: Arc<TaskContext>,
    records: u64,
}

impl Iterator for TextIter {
    type Item = String;
    #[inline]
    fn next(&mut self) -> Option<String> {
        let reader = self.reader.as_mut()?;
        match reader.try_next_line() {
            Ok(Some(line)) => {
                let line = line.to_owned();
                self.records += 1;
                if self.records & 1023 == 0 {
                    self.ctx.check_interrupted();
                }
                Some(line)
            }
            Ok(None) => {
                self.finish();
                None
            }
            Err(e) => {
                let path = reader.path().to_path_buf();
                self.finish();
                if self.ignore.skips(&path, &e) {
                    None
                } else {
                    e.raise()
                }
            }
        }
    }
}

impl TextIter {
    fn finish(&mut self) {
        if let Some(r) = self.reader.take() {
            TaskMetrics::add(&self.ctx.metrics.input_records_read, self.records);
            TaskMetrics::add(&self.ctx.metrics.input_bytes_read, r.bytes_read());
        }
    }
}

impl Drop for TextIter {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Rdd for TextFileRdd {
    type Item = String;
    type Iter = TextIter;
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.splits.len()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> TextIter {
        let reader = self.splits.get(p).and_then(|s| self.open(s));
        TextIter {
            reader,
            ignore: self.ignore,
            ctx: ctx.clone(),
            records: 0,
        }
    }

    /// Lends each line from one reused `String` instead of allocating it.
    fn for_each_ref<F: FnMut(&String) -> Result<()>>(
        &self,
        p: usize,
        ctx: &Arc<TaskContext>,
        mut f: F,
    ) -> Result<()> {
        if self.meta.storage_level().is_valid() {
            for line in self.iterator(p, ctx) {
                f(&line)?;
            }
            return Ok(());
        }
        let Some(split) = self.splits.get(p) else {
            return Ok(());
        };
        let Some(mut reader) = self.open(split) else {
            return Ok(());
        };
        let mut line = String::new();
        let mut records = 0u64;
        // Metrics are counted even when `f` fails, as `TextIter` counts them when dropped.
        let mut result = Ok(());
        loop {
            let l = match reader.try_next_line() {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => {
                    if self.ignore.skips(split.path.as_path(), &e) {
                        break;
                    }
                    TaskMetrics::add(&ctx.metrics.input_records_read, records);
                    e.raise()
                }
            };
            line.clear();
            line.push_str(l);
            records += 1;
            if records & 1023 == 0 {
                ctx.check_interrupted();
            }
            if let Err(e) = f(&line) {
                result = Err(e);
                break;
            }
        }
        TaskMetrics::add(&ctx.metrics.input_records_read, records);
        TaskMetrics::add(&ctx.metrics.input_bytes_read, reader.bytes_read());
        result
    }
}

/// The partitions of two RDDs, one after the other (Spark's `UnionRDD`).
#[derive(Clone, Serialize, Deserialize)]
pub struct UnionRdd<A, B> {
    meta: RddMeta,
    a: A,
    b: B,
}

impl<A: Rdd, B: Rdd<Item = A::Item>> UnionRdd<A, B> {
    pub(crate) fn new(a: A, b: B) -> Self {
        UnionRdd {
            meta: RddMeta::derived(a.meta(), "UnionRdd"),
            a,
            b,
        }
    }
}

/// Iterator of a [`UnionRdd`] partition.
pub enum UnionIter<A, B> {
    /// A partition of the first RDD.
    A(A),
    /// A partition of the second RDD.
    B(B),
}

impl<T, A: Iterator<Item = T>, B: Iterator<Item = T>> Iterator for UnionIter<A, B> {
    type Item = T;
    #[inline]
    fn next(&mut self) -> Option<T> {
        match self {
            UnionIter::A(a) => a.next(),
            UnionIter::B(b) => b.next(),
        }
    }
}

impl<A: Rdd, B: Rdd<Item = A::Item>> Rdd for UnionRdd<A, B> {
    type Item = A::Item;
    type Iter = UnionIter<PartIter<A>, PartIter<B>>;
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.a.num_partitions() + self.b.num_partitions()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![
            Dependency::Narrow {
                rdd: self.a.as_base(),
                one_to_one: false,
            },
            Dependency::Narrow {
                rdd: self.b.as_base(),
                one_to_one: false,
            },
        ]
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        let na = self.a.num_partitions();
        if p < na {
            UnionIter::A(self.a.iterator(p, ctx))
        } else {
            UnionIter::B(self.b.iterator(p - na, ctx))
        }
    }
}

/// The partitions of several RDDs of one type, one after the other (`Context::union`).
#[derive(Clone, Serialize, Deserialize)]
pub struct UnionAllRdd<R> {
    meta: RddMeta,
    parts: Arc<Vec<R>>,
}

impl<R: Rdd> UnionAllRdd<R> {
    pub(crate) fn new(ctx: &Context, parts: Vec<R>) -> Self {
        UnionAllRdd {
            meta: RddMeta::new(ctx, "UnionRdd"),
            parts: Arc::new(parts),
        }
    }
}

impl<R: Rdd> Rdd for UnionAllRdd<R> {
    type Item = R::Item;
    type Iter = CacheIter<PartIter<R>, R::Item>;
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.parts.iter().map(|r| r.num_partitions()).sum()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        self.parts
            .iter()
            .map(|r| Dependency::Narrow {
                rdd: r.as_base(),
                one_to_one: false,
            })
            .collect()
    }
    fn compute(&self, mut p: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        for r in self.parts.iter() {
            let n = r.num_partitions();
            if p < n {
                return CacheIter::Computed(r.iterator(p, ctx));
            }
            p -= n;
        }
        CacheIter::Cached(Arc::new(Vec::new()), 0)
    }
}

/// Fewer partitions without a shuffle: each output partition reads a contiguous group of
/// parent partitions (Spark's `CoalescedRDD`).
#[derive(Clone, Serialize, Deserialize)]
pub struct CoalescedRdd<P> {
    meta: RddMeta,
    parent: P,
    groups: Arc<Vec<std::ops::Range<usize>>>,
}

impl<P: Rdd> CoalescedRdd<P> {
    pub(crate) fn new(parent: P, n: usize) -> Self {
        let meta = RddMeta::derived(parent.meta(), "CoalescedRdd");
        meta.refuse_zero_partitions("coalesce(num_partitions)", n);
        let np = parent.num_partitions();
        let n = n.clamp(1, np.max(1));
        let groups = (0..n).map(|i| (i * np / n)..((i + 1) * np / n)).collect();
        CoalescedRdd {
            meta,
            parent,
            groups: Arc::new(groups),
        }
    }
}

/// Iterator of a [`CoalescedRdd`] partition: the group's parent partitions in turn.
pub struct CoalescedIter<P: Rdd> {
    parent: P,
    ctx: Arc<TaskContext>,
    next_part: std::ops::Range<usize>,
    cur: Option<PartIter<P>>,
}

impl<P: Rdd> Iterator for CoalescedIter<P> {
    type Item = P::Item;
    fn next(&mut self) -> Option<P::Item> {
        loop {
            if let Some(cur) = &mut self.cur {
                if let Some(x) = cur.next() {
                    return Some(x);
                }
            }
            let p = self.next_part.next()?;
            self.cur = Some(self.parent.iterator(p, &self.ctx));
        }
    }
}

impl<P: Rdd> Rdd for CoalescedRdd<P> {
    type Item = P::Item;
    type Iter = CoalescedIter<P>;
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.groups.len()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Narrow {
            rdd: self.parent.as_base(),
            one_to_one: false,
        }]
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        let range = self.groups.get(p).cloned().unwrap_or(0..0);
        CoalescedIter {
            parent: self.parent.clone(),
            ctx: ctx.clone(),
            next_part: range,
            cur: None,
        }
    }
}

/// The RDD sources of an application (Spark's `SparkContext.parallelize`, `range`, `textFile`,
/// `union`). Defined here rather than in `crate::context`, which knows no RDD types.
impl Context {
    /// A local collection as an RDD of `num_slices` partitions (default: the default
    /// parallelism).
    pub fn parallelize<T: Data>(
        &self,
        data: Vec<T>,
        num_slices: impl Into<Option<usize>>,
    ) -> ParallelCollection<T> {
        let n = num_slices.into().unwrap_or(self.default_parallelism());
        ParallelCollection::new(&self.weak_handle(), data, n)
    }

    /// The numbers from `start` (inclusive) to `end` (exclusive) by `step`, generated inside
    /// the tasks.
    pub fn range(
        &self,
        start: i64,
        end: i64,
        step: i64,
        num_slices: impl Into<Option<usize>>,
    ) -> RangeRdd {
        let n = num_slices.into().unwrap_or(self.default_parallelism());
        RangeRdd::new(&self.weak_handle(), start, end, step, n)
    }

    /// The lines of a text file, of the files of a directory, or of the files a glob matches,
    /// split at line-aligned byte ranges into at least `min_partitions` partitions (default:
    /// `min(default parallelism, 2)`, as Spark). Files ending in `.gz`, `.bz2`, `.zst`, `.lz4`
    /// or `.deflate` are decompressed, each as one partition. Bytes that are not UTF-8 read as
    /// U+FFFD, as Hadoop's `Text` decodes them ([`TextFileRdd::strict_utf8`] fails instead).
    pub fn text_file(
        &self,
        path: &str,
        min_partitions: impl Into<Option<usize>>,
    ) -> Result<TextFileRdd> {
        let n = min_partitions
            .into()
            .unwrap_or(self.default_parallelism().min(2));
        TextFileRdd::new(&self.weak_handle(), path, n)
    }

    /// The partitions of several RDDs of one type, one after the other.
    pub fn union<R: Rdd>(&self, rdds: Vec<R>) -> UnionAllRdd<R> {
        UnionAllRdd::new(&self.weak_handle(), rdds)
    }
}
