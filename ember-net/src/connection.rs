//! A typed, authenticated connection: the handshake of [`crate::auth`], then frames of
//! postcard-encoded messages ([`crate::frame`]).
//!
//! `In` is the type of the messages this side receives, `Out` of those it sends, so a driver's
//! and an executor's ends of the same connection have mirrored types. An error (bad frame,
//! undecodable message, peer gone) is returned to the caller, who drops this connection only.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::{auth, frame, RpcError};

/// Read buffer of a connection: many small frames are then read with one system call.
const READ_BUFFER: usize = 64 << 10;

/// An authenticated connection that receives `In` and sends `Out`.
pub struct Connection<In, Out> {
    reader: ConnReader<In>,
    writer: ConnWriter<Out>,
    local: SocketAddr,
}

/// The receiving half of a [`Connection`], for a task of its own.
pub struct ConnReader<In> {
    inner: BufReader<OwnedReadHalf>,
    max_frame: usize,
    peer: SocketAddr,
    _msg: PhantomData<fn() -> In>,
}

/// The sending half of a [`Connection`], for a task of its own.
pub struct ConnWriter<Out> {
    inner: OwnedWriteHalf,
    max_frame: usize,
    peer: SocketAddr,
    _msg: PhantomData<fn(Out)>,
}

impl<In: DeserializeOwned, Out: Serialize> Connection<In, Out> {
    /// Connects to `addr` and runs the client handshake; both the TCP connect and the handshake
    /// must finish within `timeout`. `max_frame` is `ember.rpc.message.maxSize` in bytes.
    pub async fn connect(addr: SocketAddr, secret: Option<&[u8]>, max_frame: usize, timeout: Duration) -> Result<Self, RpcError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(RpcError::Io(format!("cannot connect to {addr}: {e}"))),
            Err(_) => return Err(RpcError::timeout(&format!("connecting to {addr}"), timeout)),
        };
        Self::establish(stream, addr, secret, max_frame, timeout, true).await
    }

    /// Runs the server handshake on an accepted stream (within `timeout`).
    pub async fn accept(stream: TcpStream, secret: Option<&[u8]>, max_frame: usize, timeout: Duration) -> Result<Self, RpcError> {
        let peer = stream.peer_addr().map_err(|e| RpcError::io("reading the peer address", e))?;
        Self::establish(stream, peer, secret, max_frame, timeout, false).await
    }

    async fn establish(
        mut stream: TcpStream,
        peer: SocketAddr,
        secret: Option<&[u8]>,
        max_frame: usize,
        timeout: Duration,
        client: bool,
    ) -> Result<Self, RpcError> {
        // Requests and replies are small and latency-bound; frames are written whole anyway.
        stream.set_nodelay(true).map_err(|e| RpcError::io("setting TCP_NODELAY", e))?;
        // The handshake reads exact byte counts from the raw stream, so no byte meant for the
        // buffered reader below is consumed here.
        let hs = if client {
            auth::client_handshake(&mut stream, secret, timeout).await
        } else {
            auth::server_handshake(&mut stream, secret, timeout).await
        };
        hs.map_err(|e| match e {
            RpcError::AuthFailed(m) => RpcError::AuthFailed(format!("{m} (peer {peer})")),
            RpcError::Io(m) => RpcError::Io(format!("{m} (peer {peer})")),
            other => other,
        })?;
        let local = stream.local_addr().map_err(|e| RpcError::io("reading the local address", e))?;
        let (r, w) = stream.into_split();
        Ok(Connection {
            local,
            reader: ConnReader { inner: BufReader::with_capacity(READ_BUFFER, r), max_frame, peer, _msg: PhantomData },
            writer: ConnWriter { inner: w, max_frame, peer, _msg: PhantomData },
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

    /// Splits into a reader and a writer that can be used from two tasks.
    pub fn into_split(self) -> (ConnReader<In>, ConnWriter<Out>) {
        (self.reader, self.writer)
    }
}

impl<In: DeserializeOwned> ConnReader<In> {
    /// Receives one message; [`RpcError::Closed`] when the peer has closed the connection.
    pub async fn recv(&mut self) -> Result<In, RpcError> {
        frame::recv_msg(&mut self.inner, self.max_frame).await
    }

    /// Receives one raw frame and appends it to `out`; returns its length.
    pub async fn recv_bytes_into(&mut self, out: &mut Vec<u8>) -> Result<usize, RpcError> {
        frame::read_frame_into(&mut self.inner, self.max_frame, out).await
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
    /// Sends one message.
    pub async fn send(&mut self, msg: &Out) -> Result<(), RpcError> {
        frame::send_msg(&mut self.inner, msg, self.max_frame).await
    }

    /// Sends one raw frame.
    pub async fn send_bytes(&mut self, payload: &[u8]) -> Result<(), RpcError> {
        frame::write_frame(&mut self.inner, payload, self.max_frame).await
    }

    /// The address of the other end.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
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
    async fn echo_server(secret: Option<&'static [u8]>, ends: tokio::sync::mpsc::UnboundedSender<Result<(), RpcError>>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let ends = ends.clone();
                tokio::spawn(async move {
                    let r = async {
                        let mut c = Connection::<Request, Reply>::accept(s, secret, 1024, T).await?;
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
        let addr = echo_server(Some(b"s"), tx).await;
        let mut c = Connection::<Reply, Request>::connect(addr, Some(b"s"), 1024, T).await.unwrap();
        c.send(&Request::Add(2, 3)).await.unwrap();
        assert_eq!(c.recv().await.unwrap(), Reply::Sum(5));
        // An oversized message is refused locally and the connection stays usable.
        let big = Request::Echo("x".repeat(2000));
        assert!(matches!(c.send(&big).await, Err(RpcError::FrameTooLarge { .. })));
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
        assert_eq!(tokio::time::timeout(T, ends.recv()).await.unwrap(), Some(Ok(())));
    }

    #[tokio::test]
    async fn garbage_closes_only_that_connection() {
        let (tx, mut ends) = tokio::sync::mpsc::unbounded_channel();
        let addr = echo_server(Some(b"s"), tx).await;
        // Random bytes instead of a handshake.
        let mut raw = TcpStream::connect(addr).await.unwrap();
        let junk: Vec<u8> = (0..256u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        raw.write_all(&junk).await.unwrap();
        let end = tokio::time::timeout(T, ends.recv()).await.unwrap().unwrap();
        assert!(matches!(end, Err(RpcError::AuthFailed(_))), "{end:?}");
        // A frame that does not decode, after a valid handshake.
        let mut c = Connection::<Reply, Request>::connect(addr, Some(b"s"), 1024, T).await.unwrap();
        c.send_bytes(&[0xff, 0xff, 0xff, 0xff, 0xff]).await.unwrap();
        let end = tokio::time::timeout(T, ends.recv()).await.unwrap().unwrap();
        assert!(matches!(end, Err(RpcError::Decode(_))), "{end:?}");
        assert!(matches!(c.recv().await, Err(RpcError::Closed) | Err(RpcError::Io(_))));
        // A header announcing a huge frame.
        let mut c = Connection::<Reply, Request>::connect(addr, Some(b"s"), 1024, T).await.unwrap();
        c.writer.inner.write_all(&(1u32 << 30).to_le_bytes()).await.unwrap();
        let end = tokio::time::timeout(T, ends.recv()).await.unwrap().unwrap();
        assert!(matches!(end, Err(RpcError::FrameTooLarge { .. })), "{end:?}");
        // The server still serves others.
        let mut c = Connection::<Reply, Request>::connect(addr, Some(b"s"), 1024, T).await.unwrap();
        c.send(&Request::Echo("still here".into())).await.unwrap();
        assert_eq!(c.recv().await.unwrap(), Reply::Echoed("still here".into()));
    }

    #[tokio::test]
    async fn wrong_secret_fails_connect() {
        let (tx, _ends) = tokio::sync::mpsc::unbounded_channel();
        let addr = echo_server(Some(b"s"), tx).await;
        let r = Connection::<Reply, Request>::connect(addr, Some(b"other"), 1024, T).await;
        assert!(matches!(r, Err(RpcError::AuthFailed(ref m)) if m.contains(&addr.to_string())), "{:?}", r.err());
        let r = Connection::<Reply, Request>::connect(addr, None, 1024, T).await;
        assert!(matches!(r, Err(RpcError::AuthFailed(_))));
    }

    #[tokio::test]
    async fn peer_activity_sees_a_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            Connection::<Request, Reply>::accept(s, None, 64, T).await.unwrap()
        });
        let c = Connection::<Reply, Request>::connect(addr, None, 64, T).await.unwrap();
        let (mut r, _w) = c.into_split();
        drop(server.await.unwrap());
        assert_eq!(tokio::time::timeout(T, r.peer_activity()).await.unwrap(), Err(RpcError::Closed));
    }
}
