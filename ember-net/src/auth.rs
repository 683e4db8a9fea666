//! The handshake every connection starts with: versioned and, with a shared
//! secret (`ember.authenticate`), mutually authenticated; it also agrees the keys that protect
//! every later frame ([`crate::seal`]).
//!
//! Both sides run the same steps, concurrently (each writes before it reads, and everything it
//! writes fits in the socket buffers, so neither waits for the other):
//!
//! 1. Hello: `b"EMBR"`, [`PROTOCOL_VERSION`], a [`Role`] byte, a flags byte (bit 0: a secret is
//!    configured; bit 1: `ember.network.crypto.enabled`) and a 32-byte random nonce. Magic and
//!    version are read and checked before the rest, so a peer of another version is reported as
//!    such even if its hello differs in length. The flags let two sides that disagree tell the user
//!    which setting differs, instead of failing later on a confusing frame error.
//! 2. With a secret: each side sends `HMAC-SHA256(secret, b"ember-auth-v2" || role || client_hello
//!    || server_hello)` and checks the peer's in constant time. The MAC covers both hellos whole
//!    (version and flags included), so a man in the middle cannot downgrade a connection from
//!    encrypted to authenticated; fresh nonces from both sides make a recorded handshake useless
//!    for a replay; the role in the MAC stops a peer from reflecting our own MAC back to us.
//! 3. Both sides derive the frame keys of the connection from the secret and both nonces
//!    ([`crate::seal::derive_session_keys`]): one key per direction, unique to the connection.
//!
//! Any mismatch fails the handshake; the caller drops the connection. The whole handshake runs
//! under a timeout, so a client that connects and stays silent cannot hold a server task forever.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use rand::rngs::OsRng;
use rand::{RngCore, TryRngCore};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use crate::seal::Role;
use crate::seal::{derive_session_keys, CipherSuite, Mode, SessionKeys, Transcript};
use crate::secret::{Secret, Security};
use crate::RpcError;

/// Version of the wire protocol (handshake, frames and messages). Bump on any incompatible change.
/// Version 2: flags in the hello, the MAC over both hellos, sealed frames after the handshake.
pub const PROTOCOL_VERSION: u8 = 2;

/// First bytes of every Ember connection.
pub const MAGIC: [u8; 4] = *b"EMBR";

/// Domain separation for the MAC: these keys authenticate nothing else.
const MAC_LABEL: &[u8] = b"ember-auth-v2";

const NONCE_LEN: usize = 32;
const MAC_LEN: usize = 32;
/// magic + version + role + flags + nonce.
const HELLO_LEN: usize = MAGIC.len() + 3 + NONCE_LEN;

/// Flags bit: the side has a secret (`ember.authenticate`).
const FLAG_SECRET: u8 = 1;
/// Flags bit: the side encrypts (`ember.network.crypto.enabled`).
const FLAG_ENCRYPT: u8 = 2;

type HmacSha256 = Hmac<Sha256>;

/// Environment variable that carries the shared secret to executor processes (never the
/// command line, which other users of the machine can read).
pub const SECRET_ENV: &str = "EMBER_AUTH_SECRET";

/// A fresh random secret for one application (`local-cluster` makes one per application):
/// 32 bytes from the operating system's random source, hex-encoded (64 characters). The string's
/// bytes are the secret, as with Spark's `spark.authenticate.secret`.
///
/// Panics only if the operating system cannot supply random bytes, in which case no secure
/// secret can be made at all.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.unwrap_err().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the handshake as the connecting side. See the module docs. Returns the connection's
/// frame keys when it is authenticated.
pub async fn client_handshake<S>(
    stream: &mut S,
    security: &Security,
    timeout: Duration,
) -> Result<Option<SessionKeys>, RpcError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    handshake(stream, Role::Client, security, timeout).await
}

/// Runs the handshake as the accepting side. See the module docs.
pub async fn server_handshake<S>(
    stream: &mut S,
    security: &Security,
    timeout: Duration,
) -> Result<Option<SessionKeys>, RpcError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    handshake(stream, Role::Server, security, timeout).await
}

async fn handshake<S>(
    stream: &mut S,
    role: Role,
    security: &Security,
    timeout: Duration,
) -> Result<Option<SessionKeys>, RpcError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if security.secret().is_some_and(Secret::is_empty) {
        return Err(RpcError::AuthFailed(
            "the configured secret is empty".into(),
        ));
    }
    match tokio::time::timeout(timeout, exchange(stream, role, security)).await {
        Ok(result) => result,
        Err(_) => Err(RpcError::timeout(
            "waiting for the peer's handshake",
            timeout,
        )),
    }
}

fn flags(security: &Security) -> u8 {
    (if security.authenticates() {
        FLAG_SECRET
    } else {
        0
    }) | (if security.encrypts() { FLAG_ENCRYPT } else { 0 })
}

/// Checks a peer's hello (after its magic and version) against ours; the peer's nonce on success.
pub(crate) fn check_hello(
    role: Role,
    ours: u8,
    rest: &[u8],
    own_nonce: &[u8],
) -> Result<[u8; NONCE_LEN], RpcError> {
    let (peer_role, peer_flags) = (rest[0], rest[1]);
    let mut peer_nonce = [0u8; NONCE_LEN];
    peer_nonce.copy_from_slice(&rest[2..2 + NONCE_LEN]);
    if peer_role != role.peer() as u8 {
        return Err(RpcError::AuthFailed(format!(
            "the peer announced role {peer_role}, expected {}",
            role.peer() as u8
        )));
    }
    if peer_flags & !(FLAG_SECRET | FLAG_ENCRYPT) != 0 {
        return Err(RpcError::AuthFailed(format!(
            "the peer sent unknown handshake flags {peer_flags:#04x}"
        )));
    }
    match (ours & FLAG_SECRET != 0, peer_flags & FLAG_SECRET != 0) {
        (false, true) => {
            return Err(RpcError::AuthFailed(
                "the peer requires authentication but no secret is configured here".into(),
            ))
        }
        (true, false) => {
            return Err(RpcError::AuthFailed(
                "the peer has no secret configured (authentication is off there)".into(),
            ))
        }
        _ => {}
    }
    let (enc, peer_enc) = (ours & FLAG_ENCRYPT != 0, peer_flags & FLAG_ENCRYPT != 0);
    if enc != peer_enc {
        return Err(RpcError::AuthFailed(format!(
            "ember.network.crypto.enabled is {enc} here but {peer_enc} on the peer; set it the \
             same on the driver and all executors"
        )));
    }
    if ours & FLAG_SECRET != 0 && peer_nonce == own_nonce {
        // Only a peer echoing our hello can produce this; its MAC would then be ours.
        return Err(RpcError::AuthFailed("the peer echoed our nonce".into()));
    }
    Ok(peer_nonce)
}

async fn exchange<S>(
    stream: &mut S,
    role: Role,
    security: &Security,
) -> Result<Option<SessionKeys>, RpcError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.try_fill_bytes(&mut nonce).map_err(|e| {
        RpcError::Io(format!(
            "cannot read random bytes for the handshake nonce: {e}"
        ))
    })?;

    let ours = flags(security);
    let mut hello = [0u8; HELLO_LEN];
    hello[..MAGIC.len()].copy_from_slice(&MAGIC);
    hello[MAGIC.len()..MAGIC.len() + 3].copy_from_slice(&[PROTOCOL_VERSION, role as u8, ours]);
    hello[MAGIC.len() + 3..].copy_from_slice(&nonce);
    write(stream, &hello).await?;

    let mut peer_hello = [0u8; HELLO_LEN];
    read(stream, &mut peer_hello[..MAGIC.len() + 1]).await?;
    if peer_hello[..MAGIC.len()] != MAGIC {
        return Err(RpcError::AuthFailed(format!(
            "the peer is not an Ember process (it sent {:02x?} instead of the EMBR handshake)",
            &peer_hello[..MAGIC.len()]
        )));
    }
    let theirs = peer_hello[MAGIC.len()];
    if theirs != PROTOCOL_VERSION {
        return Err(RpcError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs,
        });
    }
    read(stream, &mut peer_hello[MAGIC.len() + 1..]).await?;
    let peer_nonce = check_hello(role, ours, &peer_hello[MAGIC.len() + 1..], &nonce)?;
    let Some(secret) = security.secret() else {
        return Ok(None);
    };

    let (client_hello, server_hello) = match role {
        Role::Client => (&hello, &peer_hello),
        Role::Server => (&peer_hello, &hello),
    };
    let own_mac = mac(secret.expose(), role, client_hello, server_hello)?
        .finalize()
        .into_bytes();
    write(stream, &own_mac).await?;
    let mut peer_mac = [0u8; MAC_LEN];
    read(stream, &mut peer_mac).await?;
    mac(secret.expose(), role.peer(), client_hello, server_hello)?
        .verify_slice(&peer_mac)
        .map_err(|_| {
            RpcError::AuthFailed("the peer's proof of the shared secret is wrong".into())
        })?;

    let (client_nonce, server_nonce) = match role {
        Role::Client => (&nonce, &peer_nonce),
        Role::Server => (&peer_nonce, &nonce),
    };
    let transcript = Transcript {
        protocol_version: PROTOCOL_VERSION,
        client_nonce,
        server_nonce,
    };
    let mode = if security.encrypts() {
        Mode::Encrypt
    } else {
        Mode::Authenticate
    };
    derive_session_keys(
        secret.expose(),
        &transcript,
        CipherSuite::Aes256Gcm,
        mode,
        role,
    )
    .map(Some)
    .map_err(|e| RpcError::AuthFailed(e.to_string()))
}

/// The MAC a side with `role` sends, over both hellos.
fn mac(
    secret: &[u8],
    role: Role,
    client_hello: &[u8],
    server_hello: &[u8],
) -> Result<HmacSha256, RpcError> {
    // HMAC takes keys of any length; the error branch is unreachable but costs nothing.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .map_err(|e| RpcError::AuthFailed(format!("bad secret: {e}")))?;
    m.update(MAC_LABEL);
    m.update(&[role as u8]);
    m.update(client_hello);
    m.update(server_hello);
    Ok(m)
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> Result<(), RpcError> {
    stream
        .write_all(bytes)
        .await
        .map_err(|e| RpcError::io("sending the handshake", e))?;
    stream
        .flush()
        .await
        .map_err(|e| RpcError::io("sending the handshake", e))
}

async fn read<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> Result<(), RpcError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        // A peer that hangs up during the handshake usually rejected us: say so.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(RpcError::AuthFailed(
            "the peer closed the connection during the handshake".into(),
        )),
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
    async fn pair<F, Fut, C>(server: Security, client: F) -> (Result<bool, RpcError>, C)
    where
        F: FnOnce(TcpStream) -> Fut,
        Fut: std::future::Future<Output = C>,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            server_handshake(&mut s, &server, T)
                .await
                .map(|k| k.is_some())
        });
        let c = client(TcpStream::connect(addr).await.unwrap()).await;
        (
            tokio::time::timeout(T * 2, server).await.unwrap().unwrap(),
            c,
        )
    }

    type ClientFut =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, RpcError>> + Send>>;

    fn client_with(security: Security) -> impl FnOnce(TcpStream) -> ClientFut {
        move |mut s: TcpStream| {
            Box::pin(async move {
                client_handshake(&mut s, &security, T)
                    .await
                    .map(|k| k.is_some())
            })
        }
    }

    fn auth(k: &str) -> Security {
        Security::authenticated(k)
    }

    #[tokio::test]
    async fn same_secret_and_no_secret_succeed() {
        let (s, c) = pair(auth("k1"), client_with(auth("k1"))).await;
        assert_eq!((s, c), (Ok(true), Ok(true)));
        let (s, c) = pair(
            Security::encrypted("k1"),
            client_with(Security::encrypted("k1")),
        )
        .await;
        assert_eq!((s, c), (Ok(true), Ok(true)));
        let (s, c) = pair(Security::none(), client_with(Security::none())).await;
        assert_eq!((s, c), (Ok(false), Ok(false)));
    }

    #[tokio::test]
    async fn wrong_or_missing_secret_is_refused_both_ways() {
        // Wrong secret: each side checks the other's MAC, so both refuse (mutual).
        let (s, c) = pair(auth("right"), client_with(auth("wrong"))).await;
        assert!(
            matches!(s, Err(RpcError::AuthFailed(ref m)) if m.contains("proof")),
            "{s:?}"
        );
        assert!(
            matches!(c, Err(RpcError::AuthFailed(ref m)) if m.contains("proof")),
            "{c:?}"
        );
        // Client without a secret against a server that requires one, and the reverse: a rogue
        // server without the secret cannot pass for the real one.
        let (s, c) = pair(auth("k"), client_with(Security::none())).await;
        assert!(
            matches!(s, Err(RpcError::AuthFailed(ref m)) if m.contains("no secret")),
            "{s:?}"
        );
        assert!(
            matches!(c, Err(RpcError::AuthFailed(ref m)) if m.contains("requires authentication")),
            "{c:?}"
        );
        let (s, c) = pair(Security::none(), client_with(auth("k"))).await;
        assert!(
            s.is_err() && matches!(c, Err(RpcError::AuthFailed(ref m)) if m.contains("no secret")),
            "{c:?}"
        );
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
        let r = client_handshake(&mut s, &auth("k"), T).await;
        assert!(
            matches!(r, Err(RpcError::AuthFailed(ref m)) if m.contains("role")),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn version_mismatch_and_garbage_are_reported() {
        let hello = |version: u8| {
            let mut h = MAGIC.to_vec();
            h.extend_from_slice(&[version, Role::Client as u8, 0]);
            h.extend_from_slice(&[5; NONCE_LEN]);
            h
        };
        let (s, _) = pair(Security::none(), |mut c: TcpStream| async move {
            c.write_all(&hello(1)).await.unwrap();
            c
        })
        .await;
        assert_eq!(s, Err(RpcError::VersionMismatch { ours: 2, theirs: 1 }));
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
        assert_eq!(
            client_handshake(&mut c, &Security::none(), T)
                .await
                .map(|k| k.is_some()),
            Err(RpcError::VersionMismatch { ours: 2, theirs: 9 })
        );
        // Not Ember at all.
        let (s, _) = pair(Security::none(), |mut c: TcpStream| async move {
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            c
        })
        .await;
        assert!(
            matches!(s, Err(RpcError::AuthFailed(ref m)) if m.contains("not an Ember process")),
            "{s:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_client_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _silent = TcpStream::connect(addr).await.unwrap();
        let (mut s, _) = listener.accept().await.unwrap();
        let start = Instant::now();
        let r = tokio::time::timeout(
            T,
            server_handshake(&mut s, &auth("k"), Duration::from_millis(200)),
        )
        .await;
        let r = r
            .expect("the handshake's own timeout must fire first")
            .map(|k| k.is_some());
        assert!(
            matches!(r, Err(RpcError::Io(ref m)) if m.contains("timed out")),
            "{r:?}"
        );
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn secrets_are_random_hex() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn sides_that_disagree_on_encryption_are_refused_naming_the_key() {
        let (s, c) = pair(Security::encrypted("k"), client_with(auth("k"))).await;
        for r in [s, c] {
            assert!(
                matches!(
                    r,
                    Err(RpcError::AuthFailed(ref m)) if m.contains("ember.network.crypto.enabled")
                ),
                "{r:?}"
            );
        }
    }

    /// A relay between the two sides that changes one byte of the client's hello on the way.
    async fn tampered(
        at: usize,
        mask: u8,
        security: Security,
    ) -> (Result<bool, RpcError>, Result<bool, RpcError>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let relay = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_addr = relay.local_addr().unwrap();
        let sec = security.clone();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            server_handshake(&mut s, &sec, T).await.map(|k| k.is_some())
        });
        tokio::spawn(async move {
            let (c, _) = relay.accept().await.unwrap();
            let s = TcpStream::connect(addr).await.unwrap();
            let (mut cr, mut cw) = c.into_split();
            let (mut sr, mut sw) = s.into_split();
            tokio::spawn(async move {
                let mut hello = [0u8; HELLO_LEN];
                if cr.read_exact(&mut hello).await.is_ok() {
                    hello[at] ^= mask;
                    let _ = sw.write_all(&hello).await;
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                }
            });
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
        });
        let mut c = TcpStream::connect(relay_addr).await.unwrap();
        let client = client_handshake(&mut c, &security, T)
            .await
            .map(|k| k.is_some());
        drop(c);
        (
            tokio::time::timeout(T * 2, server).await.unwrap().unwrap(),
            client,
        )
    }

    #[tokio::test]
    async fn a_changed_nonce_or_downgraded_flag_in_a_hello_fails_the_handshake() {
        // A nonce byte: the two sides MAC different hellos, so each refuses the other's proof.
        let (s, c) = tampered(MAGIC.len() + 3 + 5, 0x01, Security::encrypted("k")).await;
        assert!(
            matches!(s, Err(RpcError::AuthFailed(ref m)) if m.contains("proof")),
            "{s:?}"
        );
        assert!(c.is_err(), "{c:?}");
        // The encryption flag: refused, never silently downgraded to authentication only.
        let (s, c) = tampered(MAGIC.len() + 2, FLAG_ENCRYPT, Security::encrypted("k")).await;
        assert!(
            matches!(
                s,
                Err(RpcError::AuthFailed(ref m)) if m.contains("ember.network.crypto.enabled")
            ),
            "{s:?}"
        );
        assert!(c.is_err(), "{c:?}");
    }

    #[tokio::test]
    async fn both_sides_derive_mirrored_frame_keys() {
        let (a, b) = tokio::io::duplex(4096);
        let (mut a, mut b) = (a, b);
        let sec = Security::encrypted("shared");
        let (client, server) = tokio::join!(
            client_handshake(&mut a, &sec, T),
            server_handshake(&mut b, &sec, T)
        );
        let (mut tx, _) = client.unwrap().unwrap().into_pair(1024);
        let (_, mut rx) = server.unwrap().unwrap().into_pair(1024);
        let mut frame = Vec::new();
        tx.seal(b"hello", &mut frame).unwrap();
        assert_eq!(
            rx.open_frame(&mut frame).unwrap(),
            crate::seal::Opened::Data(5)
        );
    }
}
