//! Running an action's function on an RDD's partitions (Spark's `SparkContext.runJob` and
//! `ResultTask`): the typed front of `Context::run_job`, and the result task body it ships.
//! Defined here rather than in `crate::context`, which sees jobs only type-erased.

use std::sync::Arc;

use super::fns::{assert_shippable, Shippable};
use super::{PartIter, Rdd};
use crate::context::{check_lineage, Context};
use crate::data::Data;
use crate::error::{EmberError, Result};
use crate::func::Captures;
use crate::task::{ResultFunc, Shipped, TaskContext, TaskKind, TaskValue};

impl Context {
    /// Runs `func` on each listed partition of `rdd` (all when `None`) and returns the values in
    /// partition order (Spark's `runJob`). `func` follows [the rule of RDD
    /// functions](crate::rdd::fns): it captures nothing, or is written with `func!`.
    #[track_caller]
    pub fn run_job<R, U, F>(
        &self,
        rdd: &R,
        func: F,
        partitions: Option<Vec<usize>>,
    ) -> Result<Vec<U>>
    where
        R: Rdd,
        U: Data,
        F: Fn(&Arc<TaskContext>, PartIter<R>) -> U + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        self.run_job_inner(
            rdd,
            (),
            move |_: &(), ctx, it| func(ctx, it),
            partitions,
            captures,
        )
    }

    /// [`Context::run_job`] for Ember's own actions: `cap` is passed to every call of `func`,
    /// and `captures` are the values of the user functions `func` calls.
    #[track_caller]
    pub(crate) fn run_job_inner<R, C, U, F>(
        &self,
        rdd: &R,
        cap: C,
        func: F,
        partitions: Option<Vec<usize>>,
        captures: Captures,
    ) -> Result<Vec<U>>
    where
        R: Rdd,
        C: Data,
        U: Data,
        F: Fn(&C, &Arc<TaskContext>, PartIter<R>) -> U + Copy + Send + Sync + 'static,
    {
        assert_shippable!(F);
        if self.is_stopped() {
            return Err(EmberError::ContextStopped);
        }
        check_lineage(&rdd.as_base())?;
        let n = rdd.num_partitions();
        let partitions = partitions.unwrap_or_else(|| (0..n).collect());
        if let Some(bad) = partitions.iter().find(|p| **p >= n) {
            return Err(EmberError::Argument(format!(
                "partition {bad} does not exist: the RDD has {n} partitions"
            )));
        }
        // Spark names a job by where the action was called ("count at WordCount.scala:31").
        let caller = std::panic::Location::caller();
        let call_site = format!(
            "{} at {}:{}",
            rdd.meta().name(),
            caller.file(),
            caller.line()
        );
        let func: Arc<dyn ResultFunc> = Arc::new(ResultJob {
            rdd: rdd.clone(),
            cap: Arc::new(cap),
            func,
            captures,
        });
        let mut results: Vec<Option<U>> = (0..partitions.len()).map(|_| None).collect();
        self.run_job_erased(
            rdd.as_base(),
            func,
            partitions,
            call_site,
            |output_index, value| {
                let v = match value {
                    TaskValue::Value(b) => *b
                        .downcast::<U>()
                        .map_err(|_| EmberError::Internal("result of an unexpected type".into()))?,
                    TaskValue::Bytes(bytes) => {
                        postcard::from_bytes::<U>(&bytes).map_err(EmberError::ser)?
                    }
                    TaskValue::MapStatus(_) | TaskValue::ResultTooLarge { .. } => {
                        return Err(EmberError::Internal(
                            "a result task returned no value".into(),
                        ))
                    }
                };
                if let Some(slot) = results.get_mut(output_index) {
                    *slot = Some(v);
                }
                Ok(())
            },
        )?;
        results
            .into_iter()
            .map(|r| {
                r.ok_or_else(|| EmberError::Internal("a partition's result is missing".into()))
            })
            .collect()
    }
}

/// The body of a result task: the final RDD and the action's per-partition function.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(bound(
    serialize = "R: serde::Serialize, C: serde::Serialize",
    deserialize = "R: serde::de::DeserializeOwned, C: serde::de::DeserializeOwned, F: Copy + \
                   'static"
))]
struct ResultJob<R, C, F> {
    rdd: R,
    cap: Arc<C>,
    #[serde(with = "crate::ship::zst")]
    func: F,
    /// The values of `func!` closures the job's function calls.
    captures: Captures,
}

/// A result task body as the executor gets it (see [`crate::ship`]).
impl<R, C, U, F> crate::ship::Shippable for ResultJob<R, C, F>
where
    R: Rdd,
    C: Data,
    U: Data,
    F: Fn(&C, &Arc<TaskContext>, PartIter<R>) -> U + Copy + Send + Sync + 'static,
{
    type Output = TaskKind;
    fn into_output(self) -> TaskKind {
        TaskKind::Result(Arc::new(self))
    }
}

impl<R, C, U, F> ResultFunc for ResultJob<R, C, F>
where
    R: Rdd,
    C: Data,
    U: Data,
    F: Fn(&C, &Arc<TaskContext>, PartIter<R>) -> U + Copy + Send + Sync + 'static,
{
    fn run(
        &self,
        partition: usize,
        ctx: &Arc<TaskContext>,
        measure: bool,
    ) -> (Box<dyn std::any::Any + Send>, u64) {
        let v = self
            .captures
            .enter(|| (self.func)(&self.cap, ctx, self.rdd.iterator(partition, ctx)));
        // Counting the bytes allocates nothing; a value postcard cannot encode is not limited
        // here (in cluster mode its task fails when the result is serialized).
        let size = if measure {
            postcard::serialize_with_flavor::<U, _, usize>(
                &v,
                postcard::ser_flavors::Size::default(),
            )
            .map_or(0, |n| n as u64)
        } else {
            0
        };
        (Box::new(v), size)
    }

    fn ship(&self) -> Result<Shipped> {
        crate::ship::ship(self)
    }

    fn run_serialized(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<Vec<u8>> {
        let v = self
            .captures
            .enter(|| (self.func)(&self.cap, ctx, self.rdd.iterator(partition, ctx)));
        postcard::to_allocvec(&v).map_err(EmberError::ser)
    }
}
