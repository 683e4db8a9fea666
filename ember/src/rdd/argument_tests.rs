//! Arguments no job can run with are typed errors naming the argument, with Spark's message
//! where Spark has one, reported by the first action (or at once, where the operation returns a
//! `Result`), never a panic or a silent clamp.

use super::{Actions, PairRdd, Rdd, Sampling, Transformations};
use crate::conf::EmberConf;
use crate::context::Context;
use crate::error::EmberError;
use crate::partitioner::{HashPartitioner, SortOrder};

fn ctx() -> Context {
    Context::new(
        EmberConf::new()
            .set_master("local[2]")
            .set("ember.ui.enabled", "false")
            .set("ember.ui.showConsoleProgress", "false"),
    )
    .unwrap()
}

/// The argument and message `rdd`'s first action is refused with.
fn refused<R: Rdd>(rdd: &R) -> (String, String) {
    match rdd.count() {
        Err(EmberError::InvalidArgument { argument, message }) => (argument, message),
        other => panic!("expected an invalid argument, got {other:?}"),
    }
}

fn pair(argument: &str, message: &str) -> (String, String) {
    (argument.to_string(), message.to_string())
}

const NOT_POSITIVE: &str = "Number of partitions (0) must be positive.";

#[test]
fn zero_partition_counts_are_refused() {
    let ctx = ctx();
    let v: Vec<u64> = (0..10).collect();
    assert_eq!(
        refused(&ctx.parallelize(v.clone(), 0)),
        pair(
            "parallelize(num_slices)",
            "Positive number of partitions required"
        )
    );
    assert_eq!(
        refused(&ctx.range(0, 10, 1, 0)),
        pair(
            "range(num_slices)",
            "Positive number of partitions required"
        )
    );
    let rdd = ctx.parallelize(v.clone(), 2);
    assert_eq!(
        refused(&rdd.clone().coalesce(0)),
        pair("coalesce(num_partitions)", NOT_POSITIVE)
    );
    assert_eq!(
        refused(&rdd.clone().repartition(0)),
        pair("repartition(num_partitions)", NOT_POSITIVE)
    );
    let pairs = rdd.clone().map(|x| (x % 3, x));
    assert_eq!(
        refused(&pairs.clone().partition_by(HashPartitioner::new(0))),
        pair("partitioner", NOT_POSITIVE)
    );
    assert_eq!(
        refused(&pairs.clone().reduce_by_key(|a, b| a + b, 0)),
        pair("num_partitions", NOT_POSITIVE)
    );
    assert_eq!(
        refused(&pairs.clone().group_by_key(0)),
        pair("num_partitions", NOT_POSITIVE)
    );
    assert_eq!(
        refused(&rdd.clone().distinct(0)),
        pair("num_partitions", NOT_POSITIVE)
    );
    assert_eq!(
        refused(&pairs.clone().join(pairs.clone(), 0)),
        pair("num_partitions", NOT_POSITIVE)
    );
    assert_eq!(
        refused(&pairs.clone().cogroup(pairs.clone(), 0)),
        pair("num_partitions", NOT_POSITIVE)
    );
    // sort_by_key returns a Result (it samples the keys first): refused at once.
    match pairs.clone().sort_by_key(SortOrder::Ascending, 0) {
        Err(EmberError::InvalidArgument { argument, message }) => {
            assert_eq!(
                (argument.as_str(), message.as_str()),
                ("sort_by_key(num_partitions)", NOT_POSITIVE)
            )
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("sort_by_key(0) was accepted"),
    }
    // The neighbours of 0 still run.
    assert_eq!(rdd.clone().coalesce(1).count().unwrap(), 10);
    assert_eq!(rdd.clone().repartition(1).count().unwrap(), 10);
    assert_eq!(ctx.parallelize(v.clone(), 1).count().unwrap(), 10);
    ctx.stop();
}

#[test]
fn a_refused_rdd_refuses_every_job_built_on_it() {
    let ctx = ctx();
    let bad = ctx.parallelize((0..10u64).collect(), 0);
    // Through narrow transformations and through a shuffle.
    assert_eq!(
        refused(&bad.clone().map(|x| x + 1)).0,
        "parallelize(num_slices)"
    );
    let shuffled = bad.map(|x| (x, 1u64)).reduce_by_key(|a, b| a + b, 2);
    assert_eq!(refused(&shuffled).0, "parallelize(num_slices)");
    let e = shuffled.collect().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid argument parallelize(num_slices): Positive number of partitions required"
    );
    ctx.stop();
}

#[test]
fn a_range_step_of_zero_is_refused() {
    let ctx = ctx();
    assert_eq!(
        refused(&ctx.range(0, 10, 0, 2)),
        pair("range(step)", "step cannot be 0")
    );
    assert_eq!(
        ctx.range(10, 0, -3, 2).collect().unwrap(),
        vec![10, 7, 4, 1]
    );
    ctx.stop();
}

#[test]
fn sampling_fractions_outside_their_range_are_refused() {
    let ctx = ctx();
    let rdd = ctx.parallelize((0..100u64).collect(), 2);
    for replacement in [Sampling::WithoutReplacement, Sampling::WithReplacement] {
        assert_eq!(
            refused(&rdd.clone().sample(replacement, -0.5, 1)),
            pair(
                "sample(fraction)",
                "Fraction must be nonnegative, but got -0.5"
            )
        );
        assert_eq!(
            refused(&rdd.clone().sample(replacement, f64::NAN, 1)),
            pair(
                "sample(fraction)",
                "Fraction must be nonnegative, but got NaN"
            )
        );
        assert_eq!(rdd.clone().sample(replacement, 0.0, 1).count().unwrap(), 0);
    }
    assert_eq!(
        refused(&rdd.clone().sample(Sampling::WithoutReplacement, 1.5, 1)),
        pair(
            "sample(fraction)",
            "Sampling fraction (1.5) must be on interval [0, 1]"
        )
    );
    assert_eq!(
        refused(
            &rdd.clone()
                .sample(Sampling::WithReplacement, f64::INFINITY, 1)
        ),
        pair("sample(fraction)", "Fraction must be finite, but got inf")
    );
    // With replacement, a fraction above 1 is an expected number of copies.
    assert!(
        rdd.sample(Sampling::WithReplacement, 2.0, 1)
            .count()
            .unwrap()
            > 100
    );
    ctx.stop();
}

#[test]
fn a_default_parallelism_of_zero_is_refused_at_start() {
    let err = Context::new(
        EmberConf::new()
            .set_master("local[1]")
            .set("ember.ui.enabled", "false")
            .set("ember.default.parallelism", "0"),
    )
    .err()
    .expect("refused");
    assert!(
        matches!(&err, EmberError::Config { key, .. } if key == "ember.default.parallelism"),
        "{err}"
    );
}
