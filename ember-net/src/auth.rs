//! The handshake every connection starts with (DESIGN.md §5): versioned and, with a shared
//! secret (`ember.authenticate`), mutually authenticated.
//!
//! Both sides run the same steps, concurrently (each writes before it reads, and everything it
//! writes fits in the socket buffers, so neither waits for the other):
//!
//! 1. Hello: `b"EMBR"`, [`PROTOCOL_VERSION`], a [`Role`] byte, an auth byte (1 when a secret is
//!    configured, else 0) and a 32-byte random nonce. Magic and version are read and checked
//!    before the rest, so a peer of another version is reported as such even if its hello
//!    differs in length. The auth byte lets a side without a secret and a side with one tell the
//!    user exactly that, instead of failing later on a confusing frame error.
//! 2. With a secret: each side sends `HMAC-SHA256(secret, b"ember-auth-v1" || role || own_nonce
//!    || peer_nonce)` and checks the peer's in constant time. Fresh nonces from both sides make a
//!    recorded handshake useless for a replay; the role in the MAC stops a peer from reflecting
//!    our own MAC back to us.
//!
//! Any mismatch fails the handshake; the caller drops the connection. The whole handshake runs
//! under a timeout, so a client that connects and stays silent cannot hold a server task forever.

use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::{RngCore, TryRngCore};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::RpcError;

/// Version of the wire protocol (handshake, frames and messages). Bump on any incompatible change.
pub const PROTOCOL_VERSION: u8 = 1;

/// First bytes of every Ember connection.
pub const MAGIC: [u8; 4] = *b"EMBR";

/// Domain separation for the MAC: these keys authenticate nothing else.
const MAC_LABEL: &[u8] = b"ember-auth-v1";

const NONCE_LEN: usize = 32;
const MAC_LEN: usize = 32;
/// magic + version + role + auth flag + nonce.
const HELLO_LEN: usize = MAGIC.len() + 3 + NONCE_LEN;

type HmacSha256 = Hmac<Sha256>;

/// Which end of the connection a side is; the two ends of a connection must differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// The side that connected.
    Client = 1,
    /// The side that accepted.
    Server = 2,
}

impl Role {
    fn peer(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

/// Runs the handshake as the connecting side. See the module docs.
pub async fn client_handshake<S>(stream: &mut S, secret: Option<&[u8]>, timeout: Duration) -> Result<(), RpcError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    handshake(stream, Role::Client, secret, timeout).await
}

/// Runs the handshake as the accepting side. See the module docs.
pub async fn server_handshake<S>(stream: &mut S, secret: Option<&[u8]>, timeout: Duration) -> Result<(), RpcError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    handshake(stream, Role::Server, secret, timeout).await
}

/// A new shared secret for one application (`local-cluster` makes one per application):
/// 32 bytes from the operating system's random source, hex-encoded (64 characters). The string's
/// bytes are the secret, as with Spark's `spark.authenticate.secret`.
///
/// Panics only if the operating system cannot supply random bytes, in which case no secure
/// secret can be made at all.
/// Environment variable that carries the shared secret to executor processes (never the
/// command line, which other users of the machine can read).
pub const SECRET_ENV: &str = "EMBER_AUTH_SECRET";

/// A fresh random secret for one application (`local-cluster`).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.unwrap_err().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn handshake<S>(stream: &mut S, role: Role, secret: Option<&[u8]>, timeout: Duration) -> Result<(), RpcError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if secret.is_some_and(|s| s.is_empty()) {
        return Err(RpcError::AuthFailed("the configured secret is empty".into()));
    }
    match tokio::time::timeout(timeout, exchange(stream, role, secret)).await {
        Ok(result) => result,
        Err(_) => Err(RpcError::timeout("waiting for the peer's handshake", timeout)),
    }
}

async fn exchange<S>(stream: &mut S, role: Role, secret: Option<&[u8]>) -> Result<(), RpcError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.try_fill_bytes(&mut nonce).map_err(|e| RpcError::Io(format!("cannot read random bytes for the handshake nonce: {e}")))?;

    let mut hello = Vec::with_capacity(HELLO_LEN);
    hello.extend_from_slice(&MAGIC);
    hello.extend_from_slice(&[PROTOCOL_VERSION, role as u8, secret.is_some() as u8]);
    hello.extend_from_slice(&nonce);
    write(stream, &hello).await?;

    let mut head = [0u8; MAGIC.len() + 1];
    read(stream, &mut head).await?;
    if head[..MAGIC.len()] != MAGIC {
        return Err(RpcError::AuthFailed(format!(
            "the peer is not an Ember process (it sent {:02x?} instead of the EMBR handshake)",
            &head[..MAGIC.len()]
        )));
    }
    let theirs = head[MAGIC.len()];
    if theirs != PROTOCOL_VERSION {
        return Err(RpcError::VersionMismatch { ours: PROTOCOL_VERSION, theirs });
    }
    let mut rest = [0u8; HELLO_LEN - MAGIC.len() - 1];
    read(stream, &mut rest).await?;
    let (peer_role, peer_auth, peer_nonce) = (rest[0], rest[1], &rest[2..]);
    if peer_role != role.peer() as u8 {
        return Err(RpcError::AuthFailed(format!("the peer announced role {peer_role}, expected {}", role.peer() as u8)));
    }
    let Some(secret) = secret else {
        return match peer_auth {
            0 => Ok(()),
            _ => Err(RpcError::AuthFailed("the peer requires authentication but no secret is configured here".into())),
        };
    };
    if peer_auth != 1 {
        return Err(RpcError::AuthFailed("the peer has no secret configured (authentication is off there)".into()));
    }
    if peer_nonce == nonce {
        // Only a peer echoing our hello can produce this; its MAC would then be ours.
        return Err(RpcError::AuthFailed("the peer echoed our nonce".into()));
    }

    let ours = mac(secret, role, &nonce, peer_nonce)?.finalize().into_bytes();
    write(stream, &ours).await?;
    let mut theirs = [0u8; MAC_LEN];
    read(stream, &mut theirs).await?;
    mac(secret, role.peer(), peer_nonce, &nonce)?
        .verify_slice(&theirs)
        .map_err(|_| RpcError::AuthFailed("the peer's proof of the shared secret is wrong".into()))
}

/// The MAC a side with `role` sends: over its own nonce first, then the peer's.
fn mac(secret: &[u8], role: Role, own_nonce: &[u8], peer_nonce: &[u8]) -> Result<HmacSha256, RpcError> {
    // HMAC takes keys of any length; the error branch is unreachable but costs nothing.
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret).map_err(|e| RpcError::AuthFailed(format!("bad secret: {e}")))?;
    m.update(MAC_LABEL);
    m.update(&[role as u8]);
    m.update(own_nonce);
    m.update(peer_nonce);
    Ok(m)
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> Result<(), RpcError> {
    stream.write_all(bytes).await.map_err(|e| RpcError::io("sending the handshake", e))?;
    stream.flush().await.map_err(|e| RpcError::io("sending the handshake", e))
}

async fn read<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> Result<(), RpcError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        // A peer that hangs up during the handshake usually rejected us: say so.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(RpcError::AuthFailed("the peer closed the connection during the handshake".into()))
        }
        Err(e) => Err(RpcError::io("reading the handshake", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::net::{TcpListener, TcpStream};

    const T: Duration = Duration::from_secs(5);

    /// Runs a server handshake on one end of a loopback connection and `client` on the other.
    async fn pair<F, Fut, C>(server_secret: Option<&'static [u8]>, client: F) -> (Result<(), RpcError>, C)
    where
        F: FnOnce(TcpStream) -> Fut,
        Fut: std::future::Future<Output = C>,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            server_handshake(&mut s, server_secret, T).await
        });
        let c = client(TcpStream::connect(addr).await.unwrap()).await;
        (tokio::time::timeout(T * 2, server).await.unwrap().unwrap(), c)
    }

    type ClientFut = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), RpcError>> + Send>>;

    fn client_with(secret: Option<&'static [u8]>) -> impl FnOnce(TcpStream) -> ClientFut {
        move |mut s: TcpStream| Box::pin(async move { client_handshake(&mut s, secret, T).await })
    }

    #[tokio::test]
    async fn same_secret_and_no_secret_succeed() {
        let (s, c) = pair(Some(b"k1"), client_with(Some(b"k1"))).await;
        assert_eq!((s, c), (Ok(()), Ok(())));
        let (s, c) = pair(None, client_with(None)).await;
        assert_eq!((s, c), (Ok(()), Ok(())));
    }

    #[tokio::test]
    async fn wrong_or_missing_secret_is_refused_both_ways() {
        // Wrong secret: each side checks the other's MAC, so both refuse (mutual).
        let (s, c) = pair(Some(b"right"), client_with(Some(b"wrong"))).await;
        assert!(matches!(s, Err(RpcError::AuthFailed(ref m)) if m.contains("proof")), "{s:?}");
        assert!(matches!(c, Err(RpcError::AuthFailed(ref m)) if m.contains("proof")), "{c:?}");
        // Client without a secret against a server that requires one, and the reverse: a rogue
        // server without the secret cannot pass for the real one.
        let (s, c) = pair(Some(b"k"), client_with(None)).await;
        assert!(matches!(s, Err(RpcError::AuthFailed(ref m)) if m.contains("no secret")), "{s:?}");
        assert!(matches!(c, Err(RpcError::AuthFailed(ref m)) if m.contains("requires authentication")), "{c:?}");
        let (s, c) = pair(None, client_with(Some(b"k"))).await;
        assert!(s.is_err() && matches!(c, Err(RpcError::AuthFailed(ref m)) if m.contains("no secret")), "{c:?}");
        assert!(c.unwrap_err().to_string().contains("ember.authenticate"));
    }

    #[tokio::test]
    async fn a_reflected_handshake_is_refused() {
        // A "server" that echoes everything back: it would pass a MAC check that ignored roles.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (mut r, mut w) = s.into_split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
        let mut s = TcpStream::connect(addr).await.unwrap();
        let r = client_handshake(&mut s, Some(b"k"), T).await;
        assert!(matches!(r, Err(RpcError::AuthFailed(ref m)) if m.contains("role")), "{r:?}");
    }

    #[tokio::test]
    async fn version_mismatch_and_garbage_are_reported() {
        let hello = |version: u8| {
            let mut h = MAGIC.to_vec();
            h.extend_from_slice(&[version, Role::Client as u8, 0]);
            h.extend_from_slice(&[5; NONCE_LEN]);
            h
        };
        let (s, _) = pair(None, |mut c: TcpStream| async move {
            c.write_all(&hello(2)).await.unwrap();
            c
        })
        .await;
        assert_eq!(s, Err(RpcError::VersionMismatch { ours: 1, theirs: 2 }));
        // The client side checks the server's version too.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut h = hello(9);
            h[5] = Role::Server as u8;
            s.write_all(&h).await.unwrap();
            let _ = s.read(&mut [0u8; 64]).await;
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        assert_eq!(client_handshake(&mut c, None, T).await, Err(RpcError::VersionMismatch { ours: 1, theirs: 9 }));
        // Not Ember at all.
        let (s, _) = pair(None, |mut c: TcpStream| async move {
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
            c
        })
        .await;
        assert!(matches!(s, Err(RpcError::AuthFailed(ref m)) if m.contains("not an Ember process")), "{s:?}");
    }

    #[tokio::test]
    async fn a_silent_client_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _silent = TcpStream::connect(addr).await.unwrap();
        let (mut s, _) = listener.accept().await.unwrap();
        let start = Instant::now();
        let r = tokio::time::timeout(T, server_handshake(&mut s, Some(b"k"), Duration::from_millis(200))).await;
        let r = r.expect("the handshake's own timeout must fire first");
        assert!(matches!(r, Err(RpcError::Io(ref m)) if m.contains("timed out")), "{r:?}");
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn secrets_are_random_hex() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
