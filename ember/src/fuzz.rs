//! Fuzz targets of the decoders that read bytes Ember did not just write itself: messages from
//! the network, shuffle files, cached blocks, broadcast pieces, the allocation file, master URLs
//! and configuration values. Shared by the `cargo fuzz` crate (`ember/fuzz`, outside the
//! workspace) and the bounded replay in the tests below, which runs in `cargo test` (the harness
//! is `ember_net::fuzz::replay_and_mutate`, as for the network targets).
//!
//! Each target panics when an invariant breaks; every `Err` is a correct refusal. Beyond "no
//! panic", the targets check that what decodes re-encodes to the same thing, that two readers
//! of one format agree, and (through libFuzzer's `-malloc_limit_mb`) that no length read from
//! the input is allocated before the bytes behind it have arrived.
//!
//! - [`rpc_messages`]: every driver–executor message (`ToDriver`, `ToExecutor`) and the block
//!   protocol's requests and answers, as a connection decodes them; a registration's
//!   configuration as the executor reads it.
//! - [`shuffle_output`]: a map output's index and data files, as the block server and the
//!   local reader read them.
//! - [`chunk_codec`]: the chunked record format of shuffle blocks, spills and serialized cached
//!   blocks, with lengths that overstate the bytes present (a map status that lies).
//! - [`broadcast_pieces`]: a broadcast's pieces put back together and decoded.
//! - [`allocation_file`]: `fairscheduler.xml`, and the pool tree built from it.
//! - [`master_url`]: master URLs, and the settings checks made with them.
//! - [`conf_values`]: sizes, durations and every typed configuration key, and `--conf`
//!   command lines.

use std::io::Cursor;

use serde::de::DeserializeOwned;
use serde::Serialize;

use ember_net::frame;
use ember_net::protocol::{BlockRequest, BlockResponse};
use ember_scheduler::pool::{fair_cmp, PoolConfig, RootPool, SchedulableStats, SchedulingMode};

use crate::broadcast::{piece_block_id, BroadcastManager, Pieces};
use crate::codec::{ChecksumAlgorithm, ChunkFormat, RecordReader};
use crate::conf::{self, EmberConf, MasterUrl, SizeUnit, TimeUnit, ValueKind, ENTRIES};
use crate::memory::{MemoryConfig, MemorySource};
use crate::rpc::messages::{ToDriver, ToExecutor};
use crate::scheduler::allocation_file::parse_allocations;
use crate::shuffle::block_resolver::{block_range, consistent_sizes};
use crate::storage::block_codec::{decode_bytes, BytesEncoder};
use ember_net::block_server::BlockStore;

/// Reads the parts of a target's input: control bytes first, the rest as data.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// Decodes a message as a connection does, then checks that it re-encodes to bytes that decode
/// to the same message (a serde impl that reads differently from how it writes is a bug).
fn round_trip<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let msg: T = frame::decode(bytes).ok()?;
    let encoded = frame::encode(&msg).expect("a decoded message encodes");
    let again: T = frame::decode(&encoded).expect("an encoded message decodes");
    assert_eq!(
        frame::encode(&again).expect("a decoded message encodes"),
        encoded,
        "a message changed in an encode-decode round trip"
    );
    Some(msg)
}

/// The driver–executor messages and the block protocol's (see the module docs).
pub fn rpc_messages(data: &[u8]) {
    let mut input = Input(data);
    let which = input.byte();
    let bytes = input.0;
    match which % 4 {
        0 => {
            round_trip::<ToDriver>(bytes);
        }
        1 => {
            if let Some(ToExecutor::RegisteredExecutor { conf, .. }) =
                round_trip::<ToExecutor>(bytes)
            {
                registered_conf(conf);
            }
        }
        2 => {
            round_trip::<BlockRequest>(bytes);
        }
        _ => {
            round_trip::<BlockResponse>(bytes);
        }
    }
}

/// What an executor reads from the configuration its driver sends at registration
/// (`executor::process`): errors are refusals, nothing may panic.
fn registered_conf(pairs: Vec<(String, String)>) {
    let mut c = EmberConf::new();
    for (k, v) in pairs {
        c.insert(k, v);
    }
    let _ = c.get_size_bytes(conf::RPC_MESSAGE_MAX_SIZE);
    let _ = c.get_time_ms(conf::NETWORK_TIMEOUT);
    let _ = c.get_size_bytes(conf::DRIVER_MAX_RESULT_SIZE);
    let _ = c.get_bool(conf::RDD_COMPRESS);
    let _ = c.get_size_bytes(conf::STORAGE_UNROLL_MEMORY_THRESHOLD);
    let _ = conf::ShuffleConf::from_conf(&c);
    let _ = MemoryConfig::from_conf(&c, 1 << 30, MemorySource::ExecutorFlag);
    let _ = c.validate();
    let _ = format!("{c:?}");
}

/// A chunk format from a target's control byte: bit 0 compresses, bit 7 adds Adler-32 checksums
/// (mostly off: mutated bytes would then fail the checksum before reaching the decoders).
fn chunk_format(ctl: u8) -> ChunkFormat {
    ChunkFormat::new(
        ctl & 1 != 0,
        (ctl & 0x80 != 0).then_some(ChecksumAlgorithm::Adler32),
    )
}

/// Reads every record of a block, as a shuffle reader or a cached block's reader does.
fn read_records<T: DeserializeOwned + 'static>(
    block: &[u8],
    len: u64,
    format: ChunkFormat,
) -> usize {
    let mut n = 0;
    let mut r = RecordReader::<T, _>::new(Cursor::new(block), len, format);
    while let Ok(Some(_)) = r.next_record() {
        n += 1;
    }
    n
}

/// Records of a shuffle of words: (word, count).
type WordRecord = (String, u64);
/// Records with binary values, as a shuffle of byte arrays or of a sort key has.
type BytesRecord = (u64, Vec<u8>);
/// Pairs of numbers, which are decoded without serde (`codec::pair`).
type PairRecord = (u64, i64);

/// A map output's index and data files (see the module docs). Input: a control byte
/// (compression, record type, reduce partition), the map status's size of the block (0: the
/// index's), the index's length (u16), the index, then the data file. With the control byte's
/// top bit the reduce partition is any u64 that follows instead (it comes from the network).
pub fn shuffle_output(data: &[u8]) {
    let mut input = Input(data);
    let ctl = input.byte();
    let reduce_id = if ctl & 0x80 != 0 {
        input.u64() as usize
    } else {
        ((ctl >> 2) & 0x1f) as usize
    };
    let claim = input.u32();
    let index_len = input.u16() as usize;
    let index = input.take(index_len);
    let file = input.0;
    let format = chunk_format(ctl);

    // The two readers of an index agree: what the commit check calls consistent is what the
    // block reader serves, partition by partition.
    if let Some(partitions) = (index.len() / 8).checked_sub(1) {
        if let Some(sizes) = consistent_sizes(index, partitions, file.len() as u64) {
            assert_eq!(sizes.iter().sum::<u64>(), file.len() as u64);
            let mut at = 0;
            for (r, size) in sizes.iter().enumerate() {
                let range = block_range(&mut Cursor::new(index), r).expect("a consistent index");
                assert_eq!(range, (at, at + size), "reduce partition {r}");
                at += size;
            }
        }
    }
    // An index read as the block server reads it: a range inside the data file, or an error.
    let Ok((start, end)) = block_range(&mut Cursor::new(index), reduce_id) else {
        return;
    };
    assert!(start <= end);
    let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
        return;
    };
    let Some(block) = file.get(start..end) else {
        return; // open_block refuses a range past the data file
    };
    // The local reader takes the index's length; a fetched block, the map status's.
    let len = if claim == 0 {
        block.len() as u64
    } else {
        u64::from(claim)
    };
    if ctl & 2 == 0 {
        read_records::<WordRecord>(block, len, format);
    } else {
        read_records::<BytesRecord>(block, len, format);
    }
}

/// The chunked record format (see the module docs). Input: a control byte (compression; the
/// record type: bit 2 pairs of numbers, else bit 1 words or byte arrays), the length the reader
/// is told (0: the real one), then the block. The records of the
/// input's text also round-trip through the writer.
pub fn chunk_codec(data: &[u8]) {
    let mut input = Input(data);
    let ctl = input.byte();
    let claim = input.u32();
    let block = input.0;
    let format = chunk_format(ctl);
    let len = if claim == 0 {
        block.len() as u64
    } else {
        u64::from(claim)
    };
    if ctl & 4 != 0 {
        read_records::<PairRecord>(block, len, format);
        let _ = decode_bytes::<PairRecord>(block, format);
    } else if ctl & 2 == 0 {
        read_records::<WordRecord>(block, len, format);
        let _ = decode_bytes::<WordRecord>(block, format);
    } else {
        read_records::<BytesRecord>(block, len, format);
        let _ = decode_bytes::<BytesRecord>(block, format);
    }
    // Whatever the records, what the writer writes the reader reads back exactly.
    let records: Vec<WordRecord> = String::from_utf8_lossy(block)
        .split_whitespace()
        .map(|w| (w.to_string(), w.len() as u64 * u64::from(claim)))
        .collect();
    let mut enc = BytesEncoder::new(format);
    for r in &records {
        enc.push(r).expect("a record encodes");
    }
    let bytes = enc.finish().expect("a block finishes");
    assert_eq!(
        decode_bytes::<WordRecord>(&bytes, format).expect("a block Ember wrote decodes"),
        records
    );
}

/// A broadcast's pieces (see the module docs). Input: a control byte (compression, value type),
/// the size the handle announces, then pieces, each a length byte and that many bytes. The
/// input's text also goes through the driver's side and back.
pub fn broadcast_pieces(data: &[u8]) {
    let mut input = Input(data);
    let ctl = input.byte();
    let total = input.u32();
    let compressed = ctl & 1 != 0;
    let raw = input.0;
    let mut pieces = Pieces::new(u64::from(total), compressed);
    let mut ok = true;
    while !input.0.is_empty() && ok {
        let n = input.byte() as usize;
        ok = pieces.push(input.take(n)).is_ok();
    }
    if ok {
        if ctl & 2 == 0 {
            let _ = pieces.decode::<Vec<String>>();
        } else {
            let _ = pieces.decode::<(u64, Vec<u64>, String)>();
        }
    }
    // What the driver cuts into pieces comes back whole, for any piece size.
    let value: Vec<String> = String::from_utf8_lossy(raw)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let manager = BroadcastManager::new();
    let block_size = 1 + (ctl >> 2) as usize;
    let (id, n, total, _) = manager
        .create(value.clone(), block_size, compressed)
        .expect("a broadcast is created");
    let mut pieces = Pieces::new(total, compressed);
    for i in 0..n {
        let piece = manager
            .get_bytes(&piece_block_id(id, i))
            .expect("the driver has every piece");
        pieces.push(&piece).expect("the pieces add up");
    }
    assert_eq!(pieces.decode::<Vec<String>>(), Ok(value));
}

/// `fairscheduler.xml` (see the module docs).
pub fn allocation_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(pools) = parse_allocations(&text, "fairscheduler.xml") else {
        return;
    };
    let mut names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), pools.len(), "pool names are unique");
    assert!(pools.iter().all(|p| !p.name.trim().is_empty()));
    // FIFO ignores the pools, as Spark's FIFO builder ignores the file.
    assert!(RootPool::new(SchedulingMode::Fifo, &pools)
        .pools()
        .is_empty());
    let root = RootPool::new(SchedulingMode::Fair, &pools);
    for p in &pools {
        assert_eq!(root.pool(&p.name).map(|q| q.config()), Some(p));
    }
    assert!(root.pool("default").is_some());
    // The FAIR order of the pools is a total order whatever their weights and shares.
    let mut stats: Vec<(SchedulableStats<'_>, &PoolConfig)> = pools
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let s = SchedulableStats {
                name: &p.name,
                priority: 0,
                stage_id: 0,
                running_tasks: i % 3,
                min_share: p.min_share,
                weight: p.weight,
            };
            (s, p)
        })
        .collect();
    stats.sort_by(|a, b| fair_cmp(&a.0, &b.0));
}

/// Master URLs (see the module docs).
pub fn master_url(data: &[u8]) {
    let url = String::from_utf8_lossy(data);
    let Ok(m) = MasterUrl::parse(&url) else {
        return;
    };
    assert!(m.total_cores() > 0);
    // The parsed master, written back in its canonical form, parses to itself.
    let canonical = match &m {
        MasterUrl::Local {
            threads,
            max_failures,
        } => format!("local[{threads},{max_failures}]"),
        MasterUrl::LocalCluster {
            executors,
            cores,
            memory_mb,
        } => {
            assert_eq!((memory_mb << 20) >> 20, *memory_mb, "MEM fits in bytes");
            assert!(executors.checked_mul(*cores).is_some());
            format!("local-cluster[{executors},{cores},{memory_mb}]")
        }
        MasterUrl::Standalone { host, port } => format!("ember://{host}:{port}"),
    };
    assert_eq!(MasterUrl::parse(&canonical).ok(), Some(m.clone()));
    let c = EmberConf::new().set_master(url.to_string());
    let _ = c.validate();
    let _ = conf::validate_settings(&c, &m);
}

const SIZE_UNITS: [SizeUnit; 4] = [SizeUnit::Byte, SizeUnit::KiB, SizeUnit::MiB, SizeUnit::GiB];
const TIME_UNITS: [TimeUnit; 3] = [TimeUnit::Micros, TimeUnit::Millis, TimeUnit::Seconds];

/// Sizes, durations and configuration keys (see the module docs). Input: a control byte (the
/// unit of a bare number, the key), then the value or `key=value`; NUL bytes also split it into
/// a command line.
pub fn conf_values(data: &[u8]) {
    let mut input = Input(data);
    let ctl = input.byte();
    let text = String::from_utf8_lossy(input.0);
    let size_unit = SIZE_UNITS[(ctl % 4) as usize];
    if let Ok(bytes) = conf::parse_size(&text, size_unit) {
        assert_eq!(
            conf::parse_size(&format!("{bytes}b"), SizeUnit::GiB),
            Ok(bytes)
        );
    }
    let time_unit = TIME_UNITS[(ctl % 3) as usize];
    if let Ok(us) = conf::parse_time_us(&text, time_unit) {
        assert_eq!(
            conf::parse_time_us(&format!("{us}us"), TimeUnit::Seconds),
            Ok(us)
        );
    }
    // The value under a key of each kind, read as the engine reads it: `key=value` for a
    // known key, else the whole text under a key the control byte picks.
    let (entry, value) = match text.split_once('=') {
        Some((k, v)) if conf::entry(k).is_some() => (conf::entry(k).expect("known"), v),
        _ => (&ENTRIES[ctl as usize % ENTRIES.len()], text.as_ref()),
    };
    let c = EmberConf::new().set(entry.key, value);
    let read = match entry.kind {
        ValueKind::Bool => c.get_bool(entry.key).map(drop),
        ValueKind::Int => c.get_opt_u64(entry.key).map(drop),
        ValueKind::Size(_) => c.get_size_bytes(entry.key).map(drop),
        ValueKind::Time(_) => c.get_opt_time_ms(entry.key).map(drop),
        ValueKind::Float => c.get_f64(entry.key).map(drop),
        ValueKind::Str => Ok(()),
    };
    // What start-up validation accepts, the engine can read.
    if c.validate().is_ok() {
        assert!(
            read.is_ok(),
            "{} = {value:?} passed validation but does not read",
            entry.key
        );
    }
    if c.validate().is_ok() {
        if let Ok(m) = c.master() {
            let _ = conf::validate_settings(&c, &m);
        }
    }
    let _ = format!("{c:?}");
    let _ = c.to_debug_string();
    let _ = EmberConf::from_args(text.split('\0'));
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_common::{BlockManagerId, MapStatus, TaskEndReason, TaskMetricsSnapshot, TaskState};

    use crate::codec::ChunkWriter;
    use crate::rpc::messages::{WirePayload, WireTask, WireValue};

    fn run(name: &str, seeds: Vec<Vec<u8>>, target: fn(&[u8]), iterations: usize) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(name);
        ember_net::fuzz::replay_and_mutate(name, &dir, &seeds, target, iterations);
    }

    fn tagged(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn rpc_messages_target_survives_mutations() {
        let bm = BlockManagerId {
            executor_id: "1".into(),
            host: "10.0.0.2".into(),
            port: 7078,
        };
        let status = MapStatus {
            location: bm.clone(),
            map_index: 3,
            map_id: 3,
            sizes: vec![0, 12, 400],
        };
        let to_driver = [
            ToDriver::RegisterExecutor {
                requested_id: Some("7".into()),
                host: "10.0.0.2".into(),
                cores: 2,
                memory_mb: 1024,
                block_port: 7078,
                build_id: "ab12".into(),
                pid: 42,
            },
            ToDriver::StatusUpdate {
                task_id: 5,
                state: TaskState::Finished,
                payload: WirePayload::Direct {
                    value: WireValue::MapStatus(status.clone()),
                    metrics: TaskMetricsSnapshot::default(),
                    accum_updates: vec![ember_common::AccumulatorUpdate {
                        id: 1,
                        bytes: vec![2],
                    }],
                },
            },
            ToDriver::StatusUpdate {
                task_id: 6,
                state: TaskState::Failed,
                payload: WirePayload::Failure {
                    reason: TaskEndReason::ExceptionFailure {
                        description: "boom".into(),
                    },
                    metrics: None,
                },
            },
            ToDriver::GetMapOutputStatuses {
                request_id: 1,
                shuffle_id: 0,
            },
            ToDriver::BarrierSync {
                request_id: 2,
                num_tasks: 2,
                stage_id: 0,
                stage_attempt_id: 0,
                task_attempt_id: 7,
                barrier_epoch: 0,
                partition_id: 1,
                message: "hello".into(),
                all_gather: true,
            },
            ToDriver::ThreadDumpResult {
                request_id: 3,
                threads: vec![crate::threaddump::ThreadStack {
                    thread_id: 12,
                    thread_name: "executor-task-1-0".into(),
                    thread_state: "WAITING".into(),
                    stack: vec!["std::thread::park (park.rs:1)".into()],
                    task_id: Some(7),
                }],
            },
        ];
        let to_executor = [
            ToExecutor::RegisteredExecutor {
                executor_id: "1".into(),
                conf: vec![
                    (conf::RPC_MESSAGE_MAX_SIZE.into(), "1".into()),
                    (conf::NETWORK_TIMEOUT.into(), "5s".into()),
                ],
                build_id: "ab12".into(),
            },
            ToExecutor::LaunchTask(WireTask {
                task_id: 1,
                attempt_number: 0,
                index: 0,
                partition_id: 0,
                stage_id: 0,
                stage_attempt_id: 0,
                cpus: 1,
                barrier_tasks: Some(2),
                binary_id: 3,
                binary: None,
                dependencies: std::sync::Arc::new(crate::files::Dependencies {
                    source: "127.0.0.1:7078".parse().ok(),
                    files: vec![("lookup.txt".into(), 5)],
                    archives: vec![("model.zip".into(), 6)],
                    urls: vec![("model.zip".into(), "https://h/model.zip".into())],
                }),
            }),
            ToExecutor::KillTask {
                task_id: 1,
                reason: "stage cancelled".into(),
            },
            ToExecutor::MapOutputStatuses {
                request_id: 1,
                statuses: Ok(vec![Some(status), None]),
            },
            ToExecutor::BarrierSyncResult {
                request_id: 2,
                result: Ok(vec!["a".into(), "b".into()]),
            },
            ToExecutor::ThreadDump { request_id: 3 },
        ];
        let mut seeds = Vec::new();
        for m in &to_driver {
            seeds.push(tagged(0, &frame::encode(m).unwrap()));
        }
        for m in &to_executor {
            seeds.push(tagged(1, &frame::encode(m).unwrap()));
        }
        let req = BlockRequest::Shuffle {
            shuffle_id: 1,
            map_id: 2,
            reduce_id: 3,
        };
        seeds.push(tagged(2, &frame::encode(&req).unwrap()));
        let resp = BlockResponse::Data(b"bytes".to_vec());
        seeds.push(tagged(3, &frame::encode(&resp).unwrap()));
        run("rpc_messages", seeds, rpc_messages, 3000);
    }

    /// A block of word records as a map task writes it.
    fn word_block(words: &[&str], compress: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = ChunkWriter::new(ChunkFormat::new(compress, None));
        for (i, word) in words.iter().enumerate() {
            w.push(&(word.to_string(), i as u64)).unwrap();
        }
        w.flush_chunk(&mut out).unwrap();
        out
    }

    #[test]
    fn shuffle_output_target_survives_mutations() {
        let mut seeds = Vec::new();
        for compress in [false, true] {
            let blocks = [
                word_block(&["apple", "pear"], compress),
                Vec::new(),
                word_block(&["quince"; 40], compress),
            ];
            let mut index = vec![0u8; 8];
            let mut offset = 0u64;
            let mut file = Vec::new();
            for b in &blocks {
                offset += b.len() as u64;
                index.extend_from_slice(&offset.to_le_bytes());
                file.extend_from_slice(b);
            }
            for reduce_id in [0u8, 2] {
                let mut s = vec![(reduce_id << 2) | u8::from(compress)];
                s.extend_from_slice(&0u32.to_le_bytes());
                s.extend_from_slice(&(index.len() as u16).to_le_bytes());
                s.extend_from_slice(&index);
                s.extend_from_slice(&file);
                seeds.push(s);
            }
        }
        run("shuffle_output", seeds, shuffle_output, 3000);
    }

    #[test]
    fn chunk_codec_target_survives_mutations() {
        let mut seeds = Vec::new();
        for compress in [false, true] {
            let mut s = vec![u8::from(compress)];
            s.extend_from_slice(&0u32.to_le_bytes());
            s.extend_from_slice(&word_block(
                &["to", "be", "or", "not", "to", "be"],
                compress,
            ));
            seeds.push(s);
            let mut s = vec![2 | u8::from(compress)];
            s.extend_from_slice(&1000u32.to_le_bytes());
            let mut out = Vec::new();
            let mut w = ChunkWriter::new(ChunkFormat::new(compress, None));
            w.push(&(7u64, vec![1u8, 2, 3])).unwrap();
            w.flush_chunk(&mut out).unwrap();
            s.extend_from_slice(&out);
            seeds.push(s);
        }
        run("chunk_codec", seeds, chunk_codec, 3000);
    }

    #[test]
    fn broadcast_pieces_target_survives_mutations() {
        let mut seeds = Vec::new();
        for compress in [false, true] {
            let m = BroadcastManager::new();
            let value = vec!["alpha".to_string(), "beta".into(), "gamma".into()];
            let (id, n, total, _) = m.create(value, 7, compress).unwrap();
            let mut s = vec![(3 << 2) | u8::from(compress)];
            s.extend_from_slice(&(total as u32).to_le_bytes());
            for i in 0..n {
                let p = m.get_bytes(&piece_block_id(id, i)).unwrap();
                s.push(p.len() as u8);
                s.extend_from_slice(&p);
            }
            seeds.push(s);
        }
        run("broadcast_pieces", seeds, broadcast_pieces, 2000);
    }

    #[test]
    fn allocation_file_target_survives_mutations() {
        let seeds = vec![
            br#"<?xml version="1.0"?>
<allocations>
  <pool name="production">
    <schedulingMode>FAIR</schedulingMode><weight>2</weight><minShare>1</minShare>
  </pool>
  <pool name="test"><schedulingMode>fifo</schedulingMode><weight>0</weight></pool>
</allocations>"#
                .to_vec(),
            b"<allocations><pool name='a'/><pool name='b'><pool name='c'/></pool></allocations>"
                .to_vec(),
        ];
        run("allocation_file", seeds, allocation_file, 2000);
    }

    #[test]
    fn master_url_target_survives_mutations() {
        let seeds = [
            "local",
            "local[4]",
            "local[*]",
            "local[2,3]",
            "local-cluster[2,1,1024]",
            "ember://10.0.0.1:7077",
            "ember://[::1]:7077",
        ]
        .map(|s| s.as_bytes().to_vec())
        .to_vec();
        run("master_url", seeds, master_url, 3000);
    }

    #[test]
    fn conf_values_target_survives_mutations() {
        let mut seeds = Vec::new();
        for (i, v) in [
            "512", "32k", "1g", " 2 TiB", "100ms", "3s", "2min", "1h", "true", "0.6",
        ]
        .iter()
        .enumerate()
        {
            seeds.push(tagged(i as u8 * 7, v.as_bytes()));
        }
        seeds.push(tagged(
            0,
            b"--master\0local[2]\0--conf\0ember.locality.wait=1s\0input.txt",
        ));
        // Fewer: each input compiles the redaction pattern a few times (about 2 ms).
        run("conf_values", seeds, conf_values, 500);
    }
}
