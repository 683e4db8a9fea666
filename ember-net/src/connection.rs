//! A typed, authenticated connection: the handshake of [`crate::auth`], then frames of
//! postcard-encoded messages: sealed frames ([`crate::seal`]) when the connection is
//! authenticated, plain ones ([`crate::frame`], loopback only) when it is not.
//!
//! `In` is the type of the messages this side receives, `Out` of those it sends, so a driver's
//! and an executor's ends of the same connection have mirrored types. An error (bad frame,
//! a frame that fails authentication, undecodable message, peer gone) is returned to the caller,
//! who drops this connection only: after a frame fails authentication nothing more is read.
//!
//! Buffers are reused: a message is encoded straight behind its reserved frame header and sealed
//! in place, and a received frame is opened (decrypted) in place, so no payload is copied on
//! either side.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::seal::{self, FrameError, FrameOpener, FrameSealer};
use crate::secret::Security;
use crate::{auth, frame, RpcError};

/// Read buffer of a connection: many small frames are then read with one system call.
const READ_BUFFER: usize = 64 << 10;

/// Bytes a caller of [`ConnWriter::send_frame_in_place`] reserves in front of its payload, for
/// the frame header (the larger of the plain and the sealed one).
pub const FRAME_RESERVE: usize = seal::HEADER_LEN;

/// A reused buffer that grew past this is given back after use, so one large message does not
/// pin its memory for the connection's life.
const KEEP_BUFFER: usize = 8 << 20;

/// An authenticated connection that receives `In` and sends `Out`.
pub struct Connection<In, Out> {
    reader: ConnReader<In>,
    writer: ConnWriter<Out>,
    local: SocketAddr,
}

/// The receiving half of a [`Connection`], for a task of its own.
pub struct ConnReader<In> {
    inner: BufReader<OwnedReadHalf>,
    /// Opens sealed frames; `None` on an unauthenticated (loopback) connection.
    opener: Option<FrameOpener>,
    max_frame: usize,
    peer: SocketAddr,
    buf: Vec<u8>,
    _msg: PhantomData<fn() -> In>,
}

/// The sending half of a [`Connection`], for a task of its own.
pub struct ConnWriter<Out> {
    inner: OwnedWriteHalf,
    /// Seals frames; `None` on an unauthenticated (loopback) connection.
    sealer: Option<FrameSealer>,
    max_frame: usize,
    peer: SocketAddr,
    buf: Vec<u8>,
    _msg: PhantomData<fn(Out)>,
}

/// The transport's view of a sealed frame's failure: every one but a size refusal drops the
/// connection.
impl From<FrameError> for RpcError {
    fn from(e: FrameError) -> RpcError {
        match e {
            FrameError::TooLarge { size, limit } => RpcError::FrameTooLarge { size, limit },
            FrameError::Truncated => RpcError::Truncated,
            // A close at a frame boundary: the request/reply protocols above notice a missing
            // answer or a short block themselves, so this is the peer going away.
            FrameError::UnauthenticatedEof | FrameError::Ended => RpcError::Closed,
            FrameError::Io { context, source } => RpcError::Io(format!("{context}: {source}")),
            e @ (FrameError::BadFrame { .. }
            | FrameError::Malformed(_)
            | FrameError::Poisoned
            | FrameError::SequenceExhausted
            | FrameError::Key(_)) => RpcError::Integrity(e.to_string()),
        }
    }
}

impl<In: DeserializeOwned, Out: Serialize> Connection<In, Out> {
    /// Connects to `addr` and runs the client handshake; both the TCP connect and the handshake
    /// must finish within `timeout`. `max_frame` is `ember.rpc.message.maxSize` in bytes.
    pub async fn connect(
        addr: SocketAddr,
        security: &Security,
        max_frame: usize,
        timeout: Duration,
    ) -> Result<Self, RpcError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(RpcError::Io(format!("cannot connect to {addr}: {e}"))),
            Err(_) => return Err(RpcError::timeout(&format!("connecting to {addr}"), timeout)),
        };
        Self::establish(stream, addr, security, max_frame, timeout, true).await
    }

    /// Runs the server handshake on an accepted stream (within `timeout`).
    pub async fn accept(
        stream: TcpStream,
        security: &Security,
        max_frame: usize,
        timeout: Duration,
    ) -> Result<Self, RpcError> {
        let peer = stream
            .peer_addr()
            .map_err(|e| RpcError::io("reading the peer address", e))?;
        Self::establish(stream, peer, security, max_frame, timeout, false).await
    }

    async fn establish(
        mut stream: TcpStream,
        peer: SocketAddr,
        security: &Security,
        max_frame: usize,
        timeout: Duration,
        client: bool,
    ) -> Result<Self, RpcError> {
        // Requests and replies are small and latency-bound; frames are written whole anyway.
        stream
            .set_nodelay(true)
            .map_err(|e| RpcError::io("setting TCP_NODELAY", e))?;
        // The handshake reads exact byte counts from the raw stream, so no byte meant for the
        // buffered reader below is consumed here.
        let hs = if client {
            auth::client_handshake(&mut stream, security, timeout).await
        } else {
            auth::server_handshake(&mut stream, security, timeout).await
        };
        let keys = hs.map_err(|e| match e {
            RpcError::AuthFailed(m) => RpcError::AuthFailed(format!("{m} (peer {peer})")),
            RpcError::Io(m) => RpcError::Io(format!("{m} (peer {peer})")),
            other => other,
        })?;
        let (sealer, opener) = match keys {
            Some(k) => {
                let (s, o) = k.into_pair(max_frame);
                (Some(s), Some(o))
            }
            None => (None, None),
        };
        let local = stream
            .local_addr()
            .map_err(|e| RpcError::io("reading the local address", e))?;
        let (r, w) = stream.into_split();
        Ok(Connection {
            local,
            reader: ConnReader {
                inner: BufReader::with_capacity(READ_BUFFER, r),
                opener,
                max_frame,
                peer,
                buf: Vec::new(),
                _msg: PhantomData,
            },
            writer: ConnWriter {
                inner: w,
                sealer,
                max_frame,
                peer,
                buf: Vec::new(),
                _msg: PhantomData,
            },
        })
    }

    /// Sends one message.
    pub async fn send(&mut self, msg: &Out) -> Result<(), RpcError> {
        self.writer.send(msg).await
    }

    /// Receives one message; [`RpcError::Closed`] when the peer has closed the connection.
    pub async fn recv(&mut self) -> Result<In, RpcError> {
        self.reader.recv().await
    }

    /// Sends one raw frame (bulk data that follows a message, such as the chunks of a block).
    pub async fn send_bytes(&mut self, payload: &[u8]) -> Result<(), RpcError> {
        self.writer.send_bytes(payload).await
    }

    /// See [`ConnWriter::send_frame_in_place`].
    pub async fn send_frame_in_place(&mut self, frame: &mut Vec<u8>) -> Result<(), RpcError> {
        self.writer.send_frame_in_place(frame).await
    }

    /// Receives one raw frame and appends it to `out`; returns its length.
    pub async fn recv_bytes_into(&mut self, out: &mut Vec<u8>) -> Result<usize, RpcError> {
        self.reader.recv_bytes_into(out).await
    }

    /// The address of the other end.
    pub fn peer_addr(&self) -> SocketAddr {
        self.reader.peer
    }

    /// The address of this end (how the peer sees this host on the route between them).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Whether frames on this connection are authenticated.
    pub fn is_sealed(&self) -> bool {
        self.writer.sealer.is_some()
    }

    /// Splits into a reader and a writer that can be used from two tasks.
    pub fn into_split(self) -> (ConnReader<In>, ConnWriter<Out>) {
        (self.reader, self.writer)
    }
}

impl<In: DeserializeOwned> ConnReader<In> {
    /// Receives one message; [`RpcError::Closed`] when the peer has closed the connection.
    pub async fn recv(&mut self) -> Result<In, RpcError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let got = self
            .recv_bytes_into(&mut buf)
            .await
            .and_then(|_| frame::decode(&buf));
        if buf.capacity() <= KEEP_BUFFER {
            self.buf = buf;
        }
        got
    }

    /// Receives one raw frame and appends its payload to `out` (opened in place: authenticated,
    /// and decrypted when the connection encrypts); returns its length.
    pub async fn recv_bytes_into(&mut self, out: &mut Vec<u8>) -> Result<usize, RpcError> {
        match &mut self.opener {
            Some(opener) => match seal::io::read_frame_into(&mut self.inner, opener, out).await {
                Ok(Some(n)) => Ok(n),
                Ok(None) => Err(RpcError::Closed),
                Err(e) => Err(e.into()),
            },
            None => frame::read_frame_into(&mut self.inner, self.max_frame, out).await,
        }
    }

    /// Waits until the peer sends something or closes the connection, without consuming
    /// anything: `Ok(())` when bytes are ready, [`RpcError::Closed`] on EOF. Cancel-safe, so an
    /// idle connection can watch for the peer going away while it waits for work.
    pub async fn peer_activity(&mut self) -> Result<(), RpcError> {
        match self.inner.fill_buf().await {
            Ok([]) => Err(RpcError::Closed),
            Ok(_) => Ok(()),
            Err(e) => Err(RpcError::io("watching the connection", e)),
        }
    }

    /// The address of the other end.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

impl<Out: Serialize> ConnWriter<Out> {
    /// Sends one message. A message above `ember.rpc.message.maxSize` is refused with
    /// [`RpcError::FrameTooLarge`] and nothing is written, so the connection stays usable.
    pub async fn send(&mut self, msg: &Out) -> Result<(), RpcError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(FRAME_RESERVE, 0);
        let sent = match frame::encode_into(msg, &mut buf) {
            Ok(()) => self.send_frame_in_place(&mut buf).await,
            Err(e) => Err(e),
        };
        if buf.capacity() <= KEEP_BUFFER {
            self.buf = buf;
        }
        sent
    }

    /// Sends one raw frame.
    pub async fn send_bytes(&mut self, payload: &[u8]) -> Result<(), RpcError> {
        match &mut self.sealer {
            Some(sealer) => {
                let mut buf = std::mem::take(&mut self.buf);
                buf.clear();
                let sent = match sealer.seal(payload, &mut buf) {
                    Ok(()) => write_all(&mut self.inner, &buf).await,
                    Err(e) => Err(e.into()),
                };
                if buf.capacity() <= KEEP_BUFFER {
                    self.buf = buf;
                }
                sent
            }
            None => frame::write_frame(&mut self.inner, payload, self.max_frame).await,
        }
    }

    /// Sends `frame[FRAME_RESERVE..]` as one frame without copying it: the header is written into
    /// the reserved bytes and the payload sealed in place (bulk data read straight into a buffer,
    /// such as a block's chunks). `frame`'s contents are unspecified afterwards; reuse it.
    pub async fn send_frame_in_place(&mut self, frame: &mut Vec<u8>) -> Result<(), RpcError> {
        if frame.len() < FRAME_RESERVE {
            return Err(RpcError::Decode(
                "a frame buffer without its reserved header".into(),
            ));
        }
        match &mut self.sealer {
            Some(sealer) => {
                sealer.seal_in_place(frame)?;
                write_all(&mut self.inner, frame).await
            }
            None => {
                let header = frame::header_for(&frame[FRAME_RESERVE..], self.max_frame)?;
                let start = FRAME_RESERVE - frame::HEADER_LEN;
                frame[start..FRAME_RESERVE].copy_from_slice(&header);
                write_all(&mut self.inner, &frame[start..]).await
            }
        }
    }

    /// The socket's half, the sealer and the frame limit, for a
    /// [`crate::shared_writer::SharedWriter`].
    pub(crate) fn into_parts(self) -> (OwnedWriteHalf, Option<FrameSealer>, usize) {
        (self.inner, self.sealer, self.max_frame)
    }

    /// Closes the sending direction: on an authenticated connection the authenticated end of the
    /// stream goes first, so the peer can tell this close from a cut.
    pub async fn close(mut self) -> Result<(), RpcError> {
        if let Some(sealer) = &mut self.sealer {
            let mut buf = Vec::new();
            sealer.seal_end(&mut buf)?;
            write_all(&mut self.inner, &buf).await?;
        }
        self.inner
            .shutdown()
            .await
            .map_err(|e| RpcError::io("closing the connection", e))
    }

    /// The address of the other end.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

async fn write_all(w: &mut OwnedWriteHalf, bytes: &[u8]) -> Result<(), RpcError> {
    w.write_all(bytes)
        .await
        .map_err(|e| RpcError::io("writing a frame", e))?;
    w.flush()
        .await
        .map_err(|e| RpcError::io("writing a frame", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    const T: Duration = Duration::from_secs(5);

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Request {
        Echo(String),
        Add(u32, u32),
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Reply {
        Echoed(String),
        Sum(u32),
    }

    /// An echo server that serves each connection until it fails, and reports each
    /// connection's end on `ends`.
    async fn echo_server(
        security: Security,
        ends: tokio::sync::mpsc::UnboundedSender<Result<(), RpcError>>,
    ) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let ends = ends.clone();
                let security = security.clone();
                tokio::spawn(async move {
                    let r = async {
                        let mut c =
                            Connection::<Request, Reply>::accept(s, &security, 1024, T).await?;
                        loop {
                            let reply = match c.recv().await {
                                Ok(Request::Echo(s)) => Reply::Echoed(s),
                                Ok(Request::Add(a, b)) => Reply::Sum(a.wrapping_add(b)),
                                Err(RpcError::Closed) => return Ok(()),
                                Err(e) => return Err(e),
                            };
                            c.send(&reply).await?;
                        }
                    }
                    .await;
                    if let Err(e) = &r {
                        tracing::warn!("connection closed: {e}");
                    }
                    let _ = ends.send(r);
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn request_reply_and_split_halves() {
        let (tx, mut ends) = tokio::sync::mpsc::unbounded_channel();
        let addr = echo_server(Security::authenticated("s"), tx).await;
        let mut c =
            Connection::<Reply, Request>::connect(addr, &Security::authenticated("s"), 1024, T)
                .await
                .unwrap();
        c.send(&Request::Add(2, 3)).await.unwrap();
        assert_eq!(c.recv().await.unwrap(), Reply::Sum(5));
        // An oversized message is refused locally and the connection stays usable.
        let big = Request::Echo("x".repeat(2000));
        assert!(matches!(
            c.send(&big).await,
            Err(RpcError::FrameTooLarge { .. })
        ));
        let (mut r, mut w) = c.into_split();
        let writer = tokio::spawn(async move {
            for i in 0..100 {
                w.send(&Request::Echo(i.to_string())).await.unwrap();
            }
        });
        for i in 0..100 {
            assert_eq!(r.recv().await.unwrap(), Reply::Echoed(i.to_string()));
        }
        writer.await.unwrap();
        drop(r);
        assert_eq!(
            tokio::time::timeout(T, ends.recv()).await.unwrap(),
            Some(Ok(()))
        );
    }

    #[tokio::test]
    async fn garbage_closes_only_that_connection() {
        let (tx, mut ends) = tokio::sync::mpsc::unbounded_channel();
        let addr = echo_server(Security::authenticated("s"), tx).await;
        // Random bytes instead of a handshake.
        let mut raw = TcpStream::connect(addr).await.unwrap();
        let junk: Vec<u8> = (0..256u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        raw.write_all(&junk).await.unwrap();
        let end = tokio::time::timeout(T, ends.recv()).await.unwrap().unwrap();
        assert!(matches!(end, Err(RpcError::AuthFailed(_))), "{end:?}");
        // A frame that does not decode, after a valid handshake.
        let mut c =
            Connection::<Reply, Request>::connect(addr, &Security::authenticated("s"), 1024, T)
                .await
                .unwrap();
        c.send_bytes(&[0xff, 0xff, 0xff, 0xff, 0xff]).await.unwrap();
        let end = tokio::time::timeout(T, ends.recv()).await.unwrap().unwrap();
        assert!(matches!(end, Err(RpcError::Decode(_))), "{end:?}");
        assert!(matches!(
            c.recv().await,
            Err(RpcError::Closed) | Err(RpcError::Io(_))
        ));
        // A header announcing a huge frame.
        let mut c =
            Connection::<Reply, Request>::connect(addr, &Security::authenticated("s"), 1024, T)
                .await
                .unwrap();
        c.writer.inner.write_all(&[0, 0, 0, 0x40, 0]).await.unwrap();
        let end = tokio::time::timeout(T, ends.recv()).await.unwrap().unwrap();
        assert!(
            matches!(end, Err(RpcError::FrameTooLarge { .. })),
            "{end:?}"
        );
        // The server still serves others.
        let mut c =
            Connection::<Reply, Request>::connect(addr, &Security::authenticated("s"), 1024, T)
                .await
                .unwrap();
        c.send(&Request::Echo("still here".into())).await.unwrap();
        assert_eq!(c.recv().await.unwrap(), Reply::Echoed("still here".into()));
    }

    #[tokio::test]
    async fn wrong_secret_fails_connect() {
        let (tx, _ends) = tokio::sync::mpsc::unbounded_channel();
        let addr = echo_server(Security::authenticated("s"), tx).await;
        let r =
            Connection::<Reply, Request>::connect(addr, &Security::authenticated("other"), 1024, T)
                .await;
        assert!(
            matches!(r, Err(RpcError::AuthFailed(ref m)) if m.contains(&addr.to_string())),
            "{:?}",
            r.err()
        );
        let r = Connection::<Reply, Request>::connect(addr, &Security::none(), 1024, T).await;
        assert!(matches!(r, Err(RpcError::AuthFailed(_))));
    }

    #[tokio::test]
    async fn peer_activity_sees_a_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            Connection::<Request, Reply>::accept(s, &Security::none(), 64, T)
                .await
                .unwrap()
        });
        let c = Connection::<Reply, Request>::connect(addr, &Security::none(), 64, T)
            .await
            .unwrap();
        let (mut r, _w) = c.into_split();
        drop(server.await.unwrap());
        assert_eq!(
            tokio::time::timeout(T, r.peer_activity()).await.unwrap(),
            Err(RpcError::Closed)
        );
    }

    #[tokio::test]
    async fn every_security_setting_round_trips_messages_and_in_place_frames() {
        for security in [
            Security::none(),
            Security::authenticated("s"),
            Security::encrypted("s"),
        ] {
            let (tx, mut ends) = tokio::sync::mpsc::unbounded_channel();
            let addr = echo_server(security.clone(), tx).await;
            let mut c = Connection::<Reply, Request>::connect(addr, &security, 1024, T)
                .await
                .unwrap();
            assert_eq!(c.is_sealed(), security.authenticates());
            for i in 0..50u32 {
                c.send(&Request::Add(i, 1)).await.unwrap();
                assert_eq!(c.recv().await.unwrap(), Reply::Sum(i + 1));
            }
            // A frame sealed in place: the encoded message behind the reserved header.
            let mut frame = vec![0u8; FRAME_RESERVE];
            frame::encode_into(&Request::Echo("in place".into()), &mut frame).unwrap();
            c.send_frame_in_place(&mut frame).await.unwrap();
            assert_eq!(c.recv().await.unwrap(), Reply::Echoed("in place".into()));
            let (_r, w) = c.into_split();
            w.close().await.unwrap();
            assert_eq!(
                tokio::time::timeout(T, ends.recv()).await.unwrap(),
                Some(Ok(())),
                "{security:?}"
            );
        }
    }

    #[tokio::test]
    async fn encrypted_frames_do_not_show_the_payload_and_authenticated_ones_do() {
        // What the server side reads off the socket, raw, after the handshake.
        for (security, visible) in [
            (Security::authenticated("s"), true),
            (Security::encrypted("s"), false),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let sec = security.clone();
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                auth::server_handshake(&mut s, &sec, T).await.unwrap();
                let mut raw = Vec::new();
                let _ = tokio::io::AsyncReadExt::read_to_end(&mut s, &mut raw).await;
                raw
            });
            let mut c = Connection::<Reply, Request>::connect(addr, &security, 1024, T)
                .await
                .unwrap();
            c.send(&Request::Echo("the quick brown fox".into()))
                .await
                .unwrap();
            drop(c);
            let raw = server.await.unwrap();
            let shown = raw.windows(19).any(|w| w == b"the quick brown fox");
            assert_eq!(shown, visible, "{security:?}");
        }
    }
}
