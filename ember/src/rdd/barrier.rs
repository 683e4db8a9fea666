//! `rdd.barrier()` (Spark's `RDDBarrier`): the stage that computes what it maps is a barrier
//! stage. All its tasks start together (or wait until they can), each can reach the others
//! through [`BarrierTaskContext`](crate::task::BarrierTaskContext), and when one fails the whole
//! stage runs again — as distributed training needs.

use super::fns::{assert_shippable, PartFn, PartIndexFn, Shippable, UserFn};
use super::narrow::barrier_map_partitions_rdd;
use super::{MapPartitionsRdd, PartIter, Rdd};
use crate::data::Data;
use crate::func::Captures;

/// An RDD on its way into a barrier stage: only its `map_partitions` forms are offered, as in
/// Spark. Functions capture nothing or are written with [`func!`](crate::func).
///
/// A barrier stage needs as many free task slots as it has partitions (a job waits, then fails,
/// when the cluster has fewer), and every RDD of the stage must have that many partitions.
pub struct RddBarrier<R> {
    rdd: R,
}

impl<R: Rdd> RddBarrier<R> {
    pub(crate) fn new(rdd: R) -> Self {
        RddBarrier { rdd }
    }

    /// Applies `f` to each partition's iterator in a barrier stage (Spark's
    /// `RDDBarrier.mapPartitions`).
    pub fn map_partitions<J, F>(self, f: F) -> MapPartitionsRdd<R, PartFn<F>, J>
    where
        J: Iterator + 'static,
        J::Item: Data,
        F: Fn(PartIter<R>) -> J + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        barrier_map_partitions_rdd(self.rdd, PartFn(UserFn::new(f, &captures)))
    }

    /// Applies `f(index, iter)` to each partition in a barrier stage (Spark's
    /// `RDDBarrier.mapPartitionsWithIndex`).
    pub fn map_partitions_with_index<J, F>(self, f: F) -> MapPartitionsRdd<R, PartIndexFn<F>, J>
    where
        J: Iterator + 'static,
        J::Item: Data,
        F: Fn(usize, PartIter<R>) -> J + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        barrier_map_partitions_rdd(self.rdd, PartIndexFn(UserFn::new(f, &captures)))
    }
}
