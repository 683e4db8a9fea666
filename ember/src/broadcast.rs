//! Broadcast variables (Spark's `TorrentBroadcast`, fetched from the driver only).
//!
//! `Context::broadcast(value)` serializes the value once, cuts the bytes into pieces of
//! `ember.broadcast.blockSize` (4m; lz4-compressed when `ember.broadcast.compress`, the default)
//! and keeps them in the driver's [`BroadcastManager`]. The handle that pipelines capture (with the
//! `_with` forms) holds only the id, the piece count and where to fetch from. The first task on an
//! executor that reads `value()` fetches the pieces from the driver's block server, decodes the
//! value and keeps it in the executor's manager; every later task on that executor shares the same
//! `Arc` — one transfer per executor, no copy per task. In local mode the executor is the driver,
//! so tasks read the driver's value directly.
//!
//! ```
//! use ember::prelude::*;
//! let ctx = Context::new(EmberConf::new().set_master("local[2]")).unwrap();
//! let names = ctx.broadcast(vec!["zero".to_string(), "one".into(), "two".into()]).unwrap();
//! let out = ctx
//!     .parallelize(vec![2usize, 0, 1], 2)
//!     .map(func!(|i| names.value()[i].clone()))
//!     .collect()
//!     .unwrap();
//! assert_eq!(out, ["two", "zero", "one"]);
//! names.destroy();
//! ```

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::data::Data;
use crate::error::{EmberError, Result};
use crate::task::{BroadcastValues, TaskContext, TaskMetrics};
use ember_net::block_server::BlockStore;
use ember_net::protocol::{BlockRequest, BlockResponse};

/// The block id of piece `piece` of broadcast `id` (Spark's `BroadcastBlockId(id, "piece" + i)`).
pub fn piece_block_id(id: u64, piece: usize) -> String {
    format!("broadcast_{id}_piece{piece}")
}

/// One process's broadcast blocks and values: on the driver, the pieces it serves and the values
/// it created; on an executor, the values it fetched.
#[derive(Default)]
pub struct BroadcastManager {
    next_id: AtomicU64,
    pieces: Mutex<FxHashMap<String, Arc<Vec<u8>>>>,
    /// Decoded values, by broadcast id. The cell lets concurrent tasks wait for one fetch.
    values: Mutex<FxHashMap<u64, Arc<OnceLock<Arc<dyn Any + Send + Sync>>>>>,
    bytes_served: AtomicU64,
    pieces_served: AtomicU64,
    bytes_fetched: AtomicU64,
}

/// Transfer counters of a [`BroadcastManager`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BroadcastMetrics {
    /// Bytes of pieces this process sent to others (the driver).
    pub bytes_served: u64,
    /// Pieces sent.
    pub pieces_served: u64,
    /// Bytes of pieces this process fetched (an executor).
    pub bytes_fetched: u64,
}

impl BroadcastManager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// Transfer counters so far.
    pub fn metrics(&self) -> BroadcastMetrics {
        BroadcastMetrics {
            bytes_served: self.bytes_served.load(Relaxed),
            pieces_served: self.pieces_served.load(Relaxed),
            bytes_fetched: self.bytes_fetched.load(Relaxed),
        }
    }

    /// Stores a new broadcast's value and pieces (driver). Returns the handle's fields.
    pub(crate) fn create<T: Data>(
        &self,
        value: T,
        block_size: usize,
        compress: bool,
    ) -> Result<(u64, usize, u64, Arc<T>)> {
        let id = self.next_id.fetch_add(1, Relaxed);
        let raw = postcard::to_allocvec(&value)
            .map_err(|e| EmberError::ser_context(format!("broadcast {id}"), e))?;
        let bytes = if compress {
            lz4_flex::block::compress_prepend_size(&raw)
        } else {
            raw
        };
        let total = bytes.len() as u64;
        let mut n = 0;
        {
            let mut pieces = self.pieces.lock();
            for (i, chunk) in bytes.chunks(block_size.max(1)).enumerate() {
                pieces.insert(piece_block_id(id, i), Arc::new(chunk.to_vec()));
                n = i + 1;
            }
            if n == 0 {
                pieces.insert(piece_block_id(id, 0), Arc::new(Vec::new()));
                n = 1;
            }
        }
        let value = Arc::new(value);
        let cell = OnceLock::new();
        let _ = cell.set(value.clone() as Arc<dyn Any + Send + Sync>);
        self.values.lock().insert(id, Arc::new(cell));
        Ok((id, n, total, value))
    }

    /// Drops this process's copy of a broadcast's value (executors: `unpersist`).
    pub fn remove_value(&self, id: u64) {
        self.values.lock().remove(&id);
    }

    /// Drops the value and the pieces (driver: `destroy`).
    pub fn remove_all(&self, id: u64) {
        self.remove_value(id);
        let prefix = format!("broadcast_{id}_");
        self.pieces.lock().retain(|k, _| !k.starts_with(&prefix));
    }

    /// Whether this process holds a decoded value of broadcast `id`.
    pub fn has_value(&self, id: u64) -> bool {
        self.values
            .lock()
            .get(&id)
            .is_some_and(|c| c.get().is_some())
    }
}

impl BroadcastValues for BroadcastManager {
    fn value_cell(&self, id: u64) -> Arc<OnceLock<Arc<dyn Any + Send + Sync>>> {
        self.values.lock().entry(id).or_default().clone()
    }
    fn forget_value(&self, id: u64) {
        self.values.lock().remove(&id);
    }
    fn add_bytes_fetched(&self, bytes: u64) {
        self.bytes_fetched.fetch_add(bytes, Relaxed);
    }
}

/// The value of broadcast `id`: from this process if it has it, else fetched (once per
/// process, whatever the number of tasks asking at the same time) from `source`.
fn get_or_fetch<T: Data>(
    values: &dyn BroadcastValues,
    handle: &Broadcast<T>,
    ctx: Option<&TaskContext>,
) -> Result<Arc<T>> {
    let cell = values.value_cell(handle.id);
    let mut fetch_error = None;
    let value = cell.get_or_init(|| match fetch::<T>(values, handle, ctx) {
        Ok(v) => v,
        Err(e) => {
            fetch_error = Some(e);
            Arc::new(FetchFailed)
        }
    });
    if let Some(e) = fetch_error {
        // Forget the failed attempt so the next task tries again.
        values.forget_value(handle.id);
        return Err(e);
    }
    match value.clone().downcast::<T>() {
        Ok(v) => Ok(v),
        Err(_) => {
            values.forget_value(handle.id);
            Err(EmberError::BroadcastUnavailable {
                id: handle.id,
                reason: "no value of the expected type".into(),
            })
        }
    }
}

fn fetch<T: Data>(
    values: &dyn BroadcastValues,
    handle: &Broadcast<T>,
    ctx: Option<&TaskContext>,
) -> Result<Arc<dyn Any + Send + Sync>> {
    let id = handle.id;
    let unavailable = |reason: String| EmberError::BroadcastUnavailable { id, reason };
    let source = handle.source.ok_or_else(|| {
        unavailable("it was destroyed or never existed in this application".into())
    })?;
    let ctx = ctx.ok_or_else(|| {
        unavailable("read outside a task on a process that does not hold it".into())
    })?;
    let client = ctx
        .services()
        .block_client()
        .ok_or_else(|| unavailable("no block client on this executor".into()))?;
    let mut pieces = Pieces::new(handle.total_bytes, handle.compressed);
    for i in 0..handle.pieces {
        let block_id = piece_block_id(id, i);
        match client.fetch(
            source,
            BlockRequest::Stored {
                block_id: block_id.clone(),
            },
        ) {
            Ok(BlockResponse::Data(piece)) => {
                TaskMetrics::add(&ctx.metrics.broadcast_bytes_fetched, piece.len() as u64);
                values.add_bytes_fetched(piece.len() as u64);
                pieces
                    .push(&piece)
                    .map_err(|e| unavailable(format!("{block_id} from {source}: {e}")))?;
            }
            Ok(other) => return Err(unavailable(format!("{block_id} from {source}: {other:?}"))),
            Err(e) => return Err(unavailable(format!("{block_id} from {source}: {e}"))),
        }
    }
    let value: T = pieces.decode().map_err(unavailable)?;
    tracing::info!(
        "Reading broadcast variable {id}: {} bytes in {} pieces",
        handle.total_bytes,
        handle.pieces
    );
    Ok(Arc::new(value))
}

/// Most bytes reserved ahead for a broadcast's pieces: the size comes from the handle, and a
/// damaged one must not allocate before the pieces arrive.
const MAX_PIECES_PREALLOC: u64 = 4 << 20;

/// A broadcast's pieces as they arrive on an executor, checked against what its handle says
/// (the total size, compression), then decoded into the value (Spark's
/// `TorrentBroadcast.readBlocks` and `unBlockifyObject`). Nothing in the pieces is trusted:
/// more or fewer bytes than announced, a size prefix lz4 cannot produce and bytes that do not
/// decode are errors.
pub(crate) struct Pieces {
    bytes: Vec<u8>,
    total_bytes: u64,
    compressed: bool,
}

impl Pieces {
    /// No piece yet, of a broadcast of `total_bytes` bytes as stored (compressed or not).
    pub(crate) fn new(total_bytes: u64, compressed: bool) -> Self {
        Pieces {
            bytes: Vec::with_capacity(total_bytes.min(MAX_PIECES_PREALLOC) as usize),
            total_bytes,
            compressed,
        }
    }

    /// Appends the next piece.
    pub(crate) fn push(&mut self, piece: &[u8]) -> std::result::Result<(), String> {
        let have = self.bytes.len() as u64 + piece.len() as u64;
        if have > self.total_bytes {
            return Err(format!(
                "the pieces hold more than the {} bytes of the broadcast",
                self.total_bytes
            ));
        }
        self.bytes.extend_from_slice(piece);
        Ok(())
    }

    /// The value the pieces hold.
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(self) -> std::result::Result<T, String> {
        if self.bytes.len() as u64 != self.total_bytes {
            return Err(format!(
                "the pieces hold {} bytes, the broadcast {}",
                self.bytes.len(),
                self.total_bytes
            ));
        }
        let raw = if self.compressed {
            crate::codec::decompress_size_prepended(&self.bytes)
                .map_err(|e| format!("corrupt pieces: {e}"))?
        } else {
            self.bytes
        };
        postcard::from_bytes(&raw).map_err(|e| format!("cannot decode the value: {e}"))
    }
}

/// Marker stored while a fetch failed (never downcast to a user type).
struct FetchFailed;

impl BlockStore for BroadcastManager {
    fn get_bytes(&self, id: &str) -> Option<Vec<u8>> {
        let piece = self.pieces.lock().get(id).cloned()?;
        self.bytes_served.fetch_add(piece.len() as u64, Relaxed);
        self.pieces_served.fetch_add(1, Relaxed);
        Some(piece.as_ref().clone())
    }

    fn remove(&self, _id: &str) -> bool {
        // Pieces are removed by `destroy` only, never by a remote request.
        false
    }
}

/// What the driver's handles share: the manager holding the value and whether it was destroyed.
struct DriverSide<T> {
    _value: std::marker::PhantomData<fn() -> T>,
    manager: Arc<BroadcastManager>,
    destroyed: std::sync::atomic::AtomicBool,
    /// Asks the executors to drop their copies.
    on_unpersist: Box<dyn Fn(u64) + Send + Sync>,
}

/// A read-only value sent to each executor at most once. Cheap to clone; capture it with the
/// `_with` forms and read it with [`Broadcast::value`].
pub struct Broadcast<T> {
    id: u64,
    pieces: usize,
    total_bytes: u64,
    compressed: bool,
    /// The driver's block server (cluster mode); `None` when the driver is the executor.
    source: Option<SocketAddr>,
    driver: Option<Arc<DriverSide<T>>>,
    /// The value once this handle has read it.
    cached: OnceLock<Arc<T>>,
}

impl<T> Clone for Broadcast<T> {
    fn clone(&self) -> Self {
        let cached = OnceLock::new();
        if let Some(v) = self.cached.get() {
            let _ = cached.set(v.clone());
        }
        Broadcast {
            id: self.id,
            pieces: self.pieces,
            total_bytes: self.total_bytes,
            compressed: self.compressed,
            source: self.source,
            driver: self.driver.clone(),
            cached,
        }
    }
}

impl<T> fmt::Debug for Broadcast<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Broadcast({})", self.id)
    }
}

#[derive(Serialize, Deserialize)]
struct WireBroadcast {
    id: u64,
    pieces: usize,
    total_bytes: u64,
    compressed: bool,
    source: Option<SocketAddr>,
}

impl<T> Serialize for Broadcast<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        WireBroadcast {
            id: self.id,
            pieces: self.pieces,
            total_bytes: self.total_bytes,
            compressed: self.compressed,
            source: self.source,
        }
        .serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Broadcast<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let w = WireBroadcast::deserialize(d)?;
        Ok(Broadcast {
            id: w.id,
            pieces: w.pieces,
            total_bytes: w.total_bytes,
            compressed: w.compressed,
            source: w.source,
            driver: None,
            cached: OnceLock::new(),
        })
    }
}

impl<T: Data> Broadcast<T> {
    /// Creates a broadcast in `manager` (the driver's); see `Context::broadcast`.
    pub(crate) fn create(
        manager: &Arc<BroadcastManager>,
        value: T,
        block_size: usize,
        compress: bool,
        source: Option<SocketAddr>,
        on_unpersist: Box<dyn Fn(u64) + Send + Sync>,
    ) -> Result<Self> {
        let (id, pieces, total_bytes, value) = manager.create(value, block_size, compress)?;
        let cached = OnceLock::new();
        let _ = cached.set(value.clone());
        let driver = DriverSide {
            _value: std::marker::PhantomData,
            manager: manager.clone(),
            destroyed: false.into(),
            on_unpersist,
        };
        Ok(Broadcast {
            id,
            pieces,
            total_bytes,
            compressed: compress,
            source,
            driver: Some(Arc::new(driver)),
            cached,
        })
    }

    /// The broadcast's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Size of the serialized (and compressed) value that each executor fetches.
    pub fn serialized_size(&self) -> u64 {
        self.total_bytes
    }

    /// The value. In a task, the first read on an executor fetches it from the driver; a value
    /// that cannot be fetched (destroyed, driver unreachable) fails the task with the reason.
    /// On the driver, reading a destroyed broadcast panics with Spark's message.
    pub fn value(&self) -> &T {
        match self.try_value() {
            Ok(v) => v,
            Err(e) => {
                if TaskContext::current().is_some() {
                    e.raise()
                }
                panic!("{e}")
            }
        }
    }

    /// [`Broadcast::value`], returning the failure instead of raising it.
    pub fn try_value(&self) -> Result<&T> {
        if let Some(d) = &self.driver {
            if d.destroyed.load(Relaxed) {
                return Err(EmberError::BroadcastDestroyed { id: self.id });
            }
        }
        if let Some(v) = self.cached.get() {
            return Ok(v);
        }
        let ctx = TaskContext::current();
        let v = match (&ctx, &self.driver) {
            (Some(c), _) => get_or_fetch(c.services().broadcasts(), self, Some(c))?,
            (None, Some(d)) => get_or_fetch(d.manager.as_ref(), self, None)?,
            (None, None) => return Err(EmberError::BroadcastOutsideTask { id: self.id }),
        };
        Ok(self.cached.get_or_init(|| v))
    }

    /// Drops the executors' copies; they fetch it again if a later task reads it.
    pub fn unpersist(&self) {
        if let Some(d) = &self.driver {
            (d.on_unpersist)(self.id);
        }
    }

    /// Drops every copy, the driver's included. Reading it afterwards is an error.
    pub fn destroy(&self) {
        if let Some(d) = &self.driver {
            if !d.destroyed.swap(true, Relaxed) {
                (d.on_unpersist)(self.id);
                d.manager.remove_all(self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pieces_that_do_not_add_up_or_claim_too_much_are_refused() {
        use super::Pieces;
        // Fuzz regression (broadcast_pieces): the lz4 size prefix (4 GiB here) was
        // allocated before decompression, and the handle's size before any piece arrived.
        let mut p = Pieces::new(u64::MAX, false);
        assert!(p.bytes.capacity() <= super::MAX_PIECES_PREALLOC as usize);
        p.push(b"abc").unwrap();
        assert!(p.decode::<String>().unwrap_err().contains("hold 3 bytes"));
        let mut p = Pieces::new(2, false);
        assert!(p.push(b"abc").is_err());
        let mut lz = u32::MAX.to_le_bytes().to_vec();
        lz.extend_from_slice(&[0x10, b'a']);
        let mut p = Pieces::new(lz.len() as u64, true);
        p.push(&lz).unwrap();
        assert!(p.decode::<String>().unwrap_err().contains("corrupt pieces"));
        let raw = postcard::to_allocvec(&"hello".to_string()).unwrap();
        let lz = lz4_flex::block::compress_prepend_size(&raw);
        let mut p = Pieces::new(lz.len() as u64, true);
        p.push(&lz[..2]).unwrap();
        p.push(&lz[2..]).unwrap();
        assert_eq!(p.decode::<String>().unwrap(), "hello");
    }

    use super::*;

    #[test]
    fn pieces_cover_the_compressed_value() {
        let m = BroadcastManager::new();
        let value: Vec<u64> = (0..100_000).collect();
        let (id, n, total, v) = m.create(value.clone(), 64 << 10, true).unwrap();
        assert_eq!(*v, value);
        assert!(n > 1);
        let mut bytes = Vec::new();
        for i in 0..n {
            bytes.extend(m.get_bytes(&piece_block_id(id, i)).unwrap());
        }
        assert_eq!(bytes.len() as u64, total);
        assert_eq!(m.metrics().bytes_served, total);
        assert_eq!(m.metrics().pieces_served, n as u64);
        let raw = lz4_flex::block::decompress_size_prepended(&bytes).unwrap();
        assert_eq!(postcard::from_bytes::<Vec<u64>>(&raw).unwrap(), value);
        assert!(m.get_bytes(&piece_block_id(id, n)).is_none());
        m.remove_all(id);
        assert!(m.get_bytes(&piece_block_id(id, 0)).is_none());
        assert!(!m.has_value(id));
    }

    #[test]
    fn an_empty_value_has_one_piece() {
        let m = BroadcastManager::new();
        let (id, n, _, _) = m.create((), 4 << 20, false).unwrap();
        assert_eq!(n, 1);
        assert_eq!(m.get_bytes(&piece_block_id(id, 0)), Some(Vec::new()));
    }

    #[test]
    fn destroyed_broadcasts_refuse_reads_on_the_driver() {
        let m = Arc::new(BroadcastManager::new());
        let b =
            Broadcast::create(&m, vec![1u8, 2, 3], 4 << 20, true, None, Box::new(|_| {})).unwrap();
        assert_eq!(b.value(), &vec![1, 2, 3]);
        let copy: Broadcast<Vec<u8>> =
            postcard::from_bytes(&postcard::to_allocvec(&b).unwrap()).unwrap();
        assert_eq!(copy.id(), b.id());
        b.destroy();
        let err = b.try_value().unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "Attempted to use Broadcast({}) after it was destroyed",
                b.id()
            )
        );
        // A decoded handle with no source cannot fetch it either.
        assert!(copy.try_value().is_err());
    }
}
