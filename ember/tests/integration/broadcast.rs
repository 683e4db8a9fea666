//! Broadcast variables: read by every task, sent to each executor at most once.

use crate::common::{context, for_each_master, is_cluster};
use ember::prelude::*;

/// Bytes that lz4 cannot shrink, so sizes on the wire are predictable.
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn tasks_read_broadcast_values_in_every_mode() {
    for_each_master(|ctx, master| {
        let table = ctx
            .broadcast((0..1000u64).map(|i| i * i).collect::<Vec<_>>())
            .unwrap();
        let out = ctx
            .parallelize((0..1000usize).collect(), 8)
            .map(func!(|i| table.value()[i]))
            .collect()
            .unwrap();
        assert_eq!(
            out,
            (0..1000u64).map(|i| i * i).collect::<Vec<_>>(),
            "{master}"
        );
        // The driver reads its own value.
        assert_eq!(table.value().len(), 1000);
        if !is_cluster(master) {
            assert_eq!(
                ctx.broadcast_metrics().bytes_served,
                0,
                "{master}: local tasks share the driver's value"
            );
        }
    });
}

#[test]
fn each_executor_fetches_a_broadcast_once() {
    let ctx = context(
        "local-cluster[2,1,1024]",
        &[
            ("ember.broadcast.compress", "false"),
            ("ember.broadcast.blockSize", "1m"),
        ],
    );
    let value = noise(6 << 20);
    let expected: u64 = value.iter().map(|&b| b as u64).sum();
    let b = ctx.broadcast(value).unwrap();
    let size = b.serialized_size();
    assert!(size >= 6 << 20);

    // 200 tasks on 2 executors: each executor fetches the value once.
    let sums = ctx
        .parallelize((0..200u32).collect(), 200)
        .map(func!(|_x| b.value().iter().map(|&x| x as u64).sum::<u64>()))
        .collect()
        .unwrap();
    assert!(sums.iter().all(|&s| s == expected));
    let m = ctx.broadcast_metrics();
    let executors = m.bytes_served / size;
    assert_eq!(m.bytes_served % size, 0, "whole values only: {m:?}");
    assert!(
        (1..=2).contains(&executors),
        "at most one transfer per executor, not per task: {m:?}"
    );
    assert_eq!(
        m.pieces_served,
        executors * 7,
        "6 MiB and a few bytes in 1 MiB pieces: {m:?}"
    );
    assert_eq!(
        ctx.status().metrics.broadcast_bytes_fetched,
        m.bytes_served,
        "task metrics count the same bytes"
    );

    // A second job reuses the executors' copies.
    let n = ctx
        .parallelize((0..50u32).collect(), 10)
        .map(func!(|x| x as usize + b.value().len()))
        .count()
        .unwrap();
    assert_eq!(n, 50);
    assert_eq!(
        ctx.broadcast_metrics().bytes_served,
        m.bytes_served,
        "no new transfer"
    );

    // After unpersist, executors fetch it again when a task reads it.
    b.unpersist();
    let total: u64 = ctx
        .parallelize(vec![0u32; 4], 4)
        .map(func!(|_x| b.value().len() as u64))
        .collect()
        .unwrap()
        .into_iter()
        .sum();
    assert_eq!(total, 4 * (6 << 20));
    assert!(ctx.broadcast_metrics().bytes_served > m.bytes_served);

    // After destroy, tasks fail with the reason and the driver refuses to read it.
    b.destroy();
    let err = ctx
        .parallelize(vec![0u32], 1)
        .map(func!(|_x| b.value().len()))
        .collect()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("Failed to get broadcast_{}", b.id())),
        "{err}"
    );
    assert_eq!(
        b.try_value().unwrap_err().to_string(),
        format!(
            "Attempted to use Broadcast({}) after it was destroyed",
            b.id()
        )
    );
    ctx.stop();
}
