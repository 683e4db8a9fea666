//! The sending half of a connection shared by plain threads: a message is framed (and sealed)
//! on the thread that sends it and written to the socket at once when the socket takes it;
//! only what the socket refuses waits for a task on the network runtime.
//!
//! Why: with a writer task per connection, every message crossed to that task first, and on a
//! 2-core virtual machine waking it cost more than the write itself. A task launch then made two
//! such hops (the driver's writer, then the executor's after the task ran) on top of the two the
//! network makes anyway. Written from the sending thread, a frame reaches the peer's reader in one
//! system call (BENCHMARKS.md measures the difference on `W1` and `W2` in `local-cluster`).
//!
//! Invariant: frames reach the socket in the order their `send` calls took the lock, whole and
//! never interleaved. Bytes the socket did not take (`WouldBlock`) stay in the backlog, and a
//! later frame is only appended behind them, so the backlog's task and the senders write one
//! stream. `send` never blocks on the network: it waits at most for another sender's lock.

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

use crate::connection::{ConnWriter, FRAME_RESERVE};
use crate::seal::FrameSealer;
use crate::{frame, RpcError};

/// A backlog that grew past this is given back once written, so one large message does not pin
/// its memory for the connection's life.
const KEEP_BACKLOG: usize = 8 << 20;

/// Written bytes at the front of the backlog are dropped once they are this many (and half of
/// it), so a backlog that never empties does not grow without bound.
const COMPACT_AFTER: usize = 1 << 20;

/// A [`ConnWriter`] that any thread can send on without an async context; see the module
/// documentation. Made with [`SharedWriter::new`], which also returns the task that writes
/// what the socket could not take at once.
pub struct SharedWriter<Out> {
    io: OwnedWriteHalf,
    state: Mutex<State>,
    /// Wakes the backlog's task: bytes are waiting, or a write failed.
    wake: Notify,
    _msg: PhantomData<fn(Out)>,
}

struct State {
    sealer: Option<FrameSealer>,
    max_frame: usize,
    /// The frame being built (reused).
    frame: Vec<u8>,
    /// Bytes not yet written, in order; `backlog[written..]` is what is left.
    backlog: Vec<u8>,
    written: usize,
    /// The first write error; every later send returns it.
    failed: Option<String>,
}

/// What a write attempt left.
enum Flushed {
    /// Everything is on the socket.
    Empty,
    /// The socket refused the rest for now.
    Blocked,
    /// The connection is broken.
    Failed,
}

impl State {
    fn pending(&self) -> bool {
        self.written < self.backlog.len()
    }

    /// Writes as much of the backlog as the socket takes now.
    fn flush(&mut self, io: &OwnedWriteHalf) -> Flushed {
        if self.failed.is_some() {
            return Flushed::Failed;
        }
        while self.pending() {
            match io.try_write(&self.backlog[self.written..]) {
                Ok(0) => {
                    self.failed = Some("the connection accepts no more bytes".into());
                    return Flushed::Failed;
                }
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.written >= COMPACT_AFTER && self.written * 2 >= self.backlog.len() {
                        self.backlog.drain(..self.written);
                        self.written = 0;
                    }
                    return Flushed::Blocked;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failed = Some(e.to_string());
                    return Flushed::Failed;
                }
            }
        }
        self.written = 0;
        if self.backlog.capacity() > KEEP_BACKLOG {
            self.backlog = Vec::new();
        } else {
            self.backlog.clear();
        }
        Flushed::Empty
    }

    /// Frames `self.frame[FRAME_RESERVE..]` in place and puts it behind the backlog.
    fn push_frame(&mut self) -> Result<(), RpcError> {
        let start = match &mut self.sealer {
            Some(sealer) => {
                sealer.seal_in_place(&mut self.frame)?;
                0
            }
            None => {
                let header = frame::header_for(&self.frame[FRAME_RESERVE..], self.max_frame)?;
                let start = FRAME_RESERVE - frame::HEADER_LEN;
                self.frame[start..FRAME_RESERVE].copy_from_slice(&header);
                start
            }
        };
        if self.backlog.is_empty() {
            // The common case: the frame's buffer becomes the backlog, without a copy.
            std::mem::swap(&mut self.backlog, &mut self.frame);
            self.written = start;
        } else {
            self.backlog.extend_from_slice(&self.frame[start..]);
        }
        self.frame.clear();
        if self.frame.capacity() > KEEP_BACKLOG {
            self.frame = Vec::new();
        }
        Ok(())
    }
}

impl<Out: Serialize> SharedWriter<Out> {
    /// Shares `writer`. The returned future writes what the socket refuses to take at once; spawn
    /// it on the runtime the connection was made on, and abort it when the connection is done
    /// with (it ends by itself only when a write fails). The socket's sending side shuts when the
    /// last reference to the writer goes.
    pub fn new(writer: ConnWriter<Out>) -> (Arc<Self>, impl std::future::Future<Output = ()>) {
        let (io, sealer, max_frame) = writer.into_parts();
        let shared = Arc::new(SharedWriter {
            io,
            state: Mutex::new(State {
                sealer,
                max_frame,
                frame: Vec::new(),
                backlog: Vec::new(),
                written: 0,
                failed: None,
            }),
            wake: Notify::new(),
            _msg: PhantomData,
        });
        let task = shared.clone().write_backlog();
        (shared, task)
    }

    /// Sends one message. A message above `ember.rpc.message.maxSize` is refused with
    /// [`RpcError::FrameTooLarge`] and nothing is written; after a write error every send fails.
    pub fn send(&self, msg: &Out) -> Result<(), RpcError> {
        let mut st = self.state.lock();
        st.check()?;
        let mut buf = std::mem::take(&mut st.frame);
        buf.clear();
        buf.resize(FRAME_RESERVE, 0);
        let encoded = frame::encode_into(msg, &mut buf);
        st.frame = buf;
        encoded?;
        self.push_and_write(&mut st)
    }

    /// Sends one frame of already encoded bytes (see [`SharedWriter::send`]).
    pub fn send_bytes(&self, payload: &[u8]) -> Result<(), RpcError> {
        let mut st = self.state.lock();
        st.check()?;
        st.frame.clear();
        st.frame.resize(FRAME_RESERVE, 0);
        st.frame.extend_from_slice(payload);
        self.push_and_write(&mut st)
    }

    fn push_and_write(&self, st: &mut State) -> Result<(), RpcError> {
        let was_pending = st.pending();
        st.push_frame()?;
        if was_pending {
            // The backlog's task owns the socket's next writable moment.
            return Ok(());
        }
        match st.flush(&self.io) {
            Flushed::Empty => Ok(()),
            Flushed::Blocked => {
                self.wake.notify_one();
                Ok(())
            }
            Flushed::Failed => {
                self.wake.notify_one();
                Err(st.error())
            }
        }
    }

    async fn write_backlog(self: Arc<Self>) {
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            // Registered before the state is read: a send that leaves bytes after this check
            // still wakes this task.
            woken.as_mut().enable();
            let flushed = self.state.lock().flush(&self.io);
            match flushed {
                Flushed::Failed => return,
                Flushed::Blocked => {
                    if let Err(e) = self.io.writable().await {
                        self.state.lock().failed.get_or_insert(e.to_string());
                        return;
                    }
                    continue;
                }
                Flushed::Empty => woken.await,
            }
        }
    }
}

impl State {
    fn check(&self) -> Result<(), RpcError> {
        match self.failed {
            Some(_) => Err(self.error()),
            None => Ok(()),
        }
    }

    fn error(&self) -> RpcError {
        RpcError::Io(format!(
            "writing a frame: {}",
            self.failed.as_deref().unwrap_or("the connection failed")
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::TcpListener;

    use super::*;
    use crate::connection::{ConnReader, Connection};
    use crate::secret::Security;

    const T: Duration = Duration::from_secs(30);

    /// A connected pair: the accepting side's reader, the connecting side's shared writer and
    /// its backlog task (spawned).
    async fn pair(
        security: Security,
        max_frame: usize,
    ) -> (
        ConnReader<(u32, Vec<u8>)>,
        Arc<SharedWriter<(u32, Vec<u8>)>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sec = security.clone();
        let accepted = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            Connection::<(u32, Vec<u8>), ()>::accept(s, &sec, max_frame, T)
                .await
                .unwrap()
        });
        let c = Connection::<(), (u32, Vec<u8>)>::connect(addr, &security, max_frame, T)
            .await
            .unwrap();
        let (_r, w) = c.into_split();
        let (writer, task) = SharedWriter::new(w);
        tokio::spawn(task);
        let (reader, _w) = accepted.await.unwrap().into_split();
        (reader, writer)
    }

    /// Threads send without an async context, far more than the socket's buffers hold while
    /// nobody reads; every frame arrives whole, each thread's in its order, sealed or plain.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_from_many_threads_arrive_whole_and_in_order_when_the_socket_blocks() {
        for security in [
            Security::none(),
            Security::authenticated("s"),
            Security::encrypted("s"),
        ] {
            let (mut reader, writer) = pair(security, 1 << 20).await;
            let senders: Vec<_> = (0..4u32)
                .map(|t| {
                    let w = writer.clone();
                    std::thread::spawn(move || {
                        for i in 0..200u32 {
                            // 16 KiB a frame: 12.8 MiB in all, past any socket buffer.
                            let body = vec![(t * 31 + i) as u8; 16 << 10];
                            w.send(&(t << 16 | i, body)).unwrap();
                        }
                    })
                })
                .collect();
            // Nothing is read until every sender returned: sending never waits for the peer.
            for s in senders {
                s.join().unwrap();
            }
            let mut next = [0u32; 4];
            for _ in 0..800 {
                let (id, body) = tokio::time::timeout(T, reader.recv())
                    .await
                    .unwrap()
                    .unwrap();
                let (t, i) = ((id >> 16) as usize, id & 0xffff);
                assert_eq!(i, next[t], "thread {t}'s frames out of order");
                next[t] += 1;
                assert_eq!(body.len(), 16 << 10);
                assert!(body.iter().all(|&b| b == (t as u32 * 31 + i) as u8));
            }
            assert_eq!(next, [200; 4]);
        }
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_is_refused_and_the_connection_stays_usable() {
        let (mut reader, writer) = pair(Security::authenticated("s"), 1024).await;
        let refused = writer.send(&(1, vec![0; 4096]));
        assert!(
            matches!(refused, Err(RpcError::FrameTooLarge { .. })),
            "{refused:?}"
        );
        let refused = writer.send_bytes(&[7; 4096]);
        assert!(
            matches!(refused, Err(RpcError::FrameTooLarge { .. })),
            "{refused:?}"
        );
        writer.send(&(2, vec![5; 10])).unwrap();
        let encoded = frame::encode(&(3u32, vec![6u8; 3])).unwrap();
        writer.send_bytes(&encoded).unwrap();
        assert_eq!(reader.recv().await.unwrap(), (2, vec![5; 10]));
        assert_eq!(reader.recv().await.unwrap(), (3, vec![6; 3]));
    }

    #[tokio::test]
    async fn sends_fail_once_the_peer_is_gone() {
        let (reader, writer) = pair(Security::none(), 1 << 20).await;
        drop(reader);
        let deadline = std::time::Instant::now() + T;
        // The first sends may still land in the socket's buffer; a reset reaches the writer soon.
        loop {
            if writer.send(&(0, vec![0; 64 << 10])).is_err() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sends kept succeeding"
            );
            tokio::task::yield_now().await;
        }
        assert!(writer.send(&(1, Vec::new())).is_err());
    }
}
