//! Key schedule: one AEAD key and IV per direction of one connection, with HKDF-SHA256
//! (RFC 5869) from the application's shared secret and the handshake transcript.
//!
//! ```text
//! PRK      = HKDF-Extract(salt = client_nonce ‖ server_nonce, IKM = secret)
//! key ‖ iv = HKDF-Expand(PRK, info = "ember frame keys v1" ‖ version ‖ suite ‖ mode
//!                                    ‖ sender role ‖ receiver role, 32 + 12 bytes)
//! ```
//!
//! Why each input is there:
//! - **secret** (IKM): only processes of this application can compute the keys.
//! - **both nonces** (salt): 32 fresh random bytes from *each* side make the keys unique to this
//!   connection, whoever misbehaves: sequence numbers restart at 0 on every connection without ever
//!   repeating a (key, nonce) pair, and a frame recorded on one connection does not open on another
//!   (no cross-connection replay). Either side's nonce alone suffices for freshness, so a peer
//!   replaying an old hello cannot force old keys. They are public, random, non-secret: what RFC
//!   5869 §3.1 wants of a salt.
//! - **protocol version**: a future wire format never shares keys with this one.
//! - **suite and mode**: a key is used with one algorithm in one mode only; two sides that disagree
//!   (one encrypts, one only authenticates; or a downgraded negotiation) fail on the first frame
//!   instead of misreading each other. (The handshake should still announce both so the error can
//!   say which setting differs.)
//! - **sender and receiver roles** (the direction): two independent keys per connection, so
//!   client→server frame `n` and server→client frame `n` never share a (key, nonce) pair (nonce
//!   reuse breaks both ChaCha20-Poly1305 and GCM), and a frame reflected back to its sender does
//!   not open there.
//! - **label**: domain separation from every other use of the secret (the handshake's HMAC uses the
//!   secret directly with the label `ember-auth-v1`).
//!
//! The secret is used with HKDF as is: `local-cluster` generates 256 random bits. HKDF is not a
//! password hash, so an operator-chosen secret must be long and random (as Spark's
//! `spark.authenticate.secret`).

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::{FrameError, FrameOpener, FrameSealer};

/// Domain-separation label of the frame keys.
pub const KEY_LABEL: &[u8] = b"ember frame keys v1";

/// Length of a handshake nonce.
pub const NONCE_LEN: usize = 32;

/// Which end of the connection a side is; the two ends of a connection must differ (the
/// handshake checks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// The side that connected.
    Client = 1,
    /// The side that accepted.
    Server = 2,
}

impl Role {
    /// The other end.
    pub fn peer(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

/// What protection frames get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Integrity and authenticity only (`ember.authenticate`): payloads in clear.
    Authenticate = 1,
    /// Confidentiality too (`ember.network.crypto.enabled`).
    Encrypt = 2,
}

/// The AEAD. One suite: AES-256-GCM measured fastest on the machines Ember runs on (AES-NI and
/// PCLMULQDQ, picked at run time by RustCrypto); ChaCha20-Poly1305 was 2.3–2.6× slower there.
/// The suite's number is part of the key schedule, so a second suite can be added later
/// without two suites ever sharing a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum CipherSuite {
    /// AES-256-GCM.
    #[default]
    Aes256Gcm = 1,
}

/// The parts of the handshake the keys are bound to.
#[derive(Clone, Copy, Debug)]
pub struct Transcript<'a> {
    /// The protocol version both hellos carried.
    pub protocol_version: u8,
    /// The nonce of the connecting side's hello.
    pub client_nonce: &'a [u8; NONCE_LEN],
    /// The nonce of the accepting side's hello.
    pub server_nonce: &'a [u8; NONCE_LEN],
}

/// The key and IV of one direction. Zeroed on drop; `Debug` prints no key material.
pub struct DirectionKey {
    pub(crate) key: Zeroizing<[u8; 32]>,
    pub(crate) iv: [u8; 12],
    pub(crate) suite: CipherSuite,
    pub(crate) mode: Mode,
    /// The sending side's role.
    pub(crate) sender: Role,
}

impl Drop for DirectionKey {
    fn drop(&mut self) {
        self.iv.zeroize();
    }
}

impl std::fmt::Debug for DirectionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectionKey")
            .field("sender", &self.sender)
            .field("suite", &self.suite)
            .field("mode", &self.mode)
            .field("key", &crate::secret::REDACTED)
            .finish()
    }
}

/// The two keys of one side of a connection.
#[derive(Debug)]
pub struct SessionKeys {
    /// Seals what this side sends.
    pub send: DirectionKey,
    /// Opens what this side receives.
    pub recv: DirectionKey,
}

impl SessionKeys {
    /// A sealer and an opener with a maximum payload size of `max_payload` bytes
    /// (`ember.rpc.message.maxSize`).
    pub fn into_pair(self, max_payload: usize) -> (FrameSealer, FrameOpener) {
        let SessionKeys { send, recv } = self;
        (
            FrameSealer::new(&send, max_payload),
            FrameOpener::new(&recv, max_payload),
        )
    }
}

/// Derives the keys of `role`'s side of the connection described by `transcript`.
///
/// Both sides call this after the handshake (and its HMAC proofs) succeeded, with the same
/// transcript: the client's `send` key equals the server's `recv` key and vice versa.
pub fn derive_session_keys(
    secret: &[u8],
    transcript: &Transcript<'_>,
    suite: CipherSuite,
    mode: Mode,
    role: Role,
) -> Result<SessionKeys, FrameError> {
    if secret.is_empty() {
        return Err(FrameError::Key("the shared secret is empty"));
    }
    let mut salt = Zeroizing::new([0u8; 2 * NONCE_LEN]);
    salt[..NONCE_LEN].copy_from_slice(transcript.client_nonce);
    salt[NONCE_LEN..].copy_from_slice(transcript.server_nonce);
    let hk = Hkdf::<Sha256>::new(Some(&salt[..]), secret);
    let direction = |sender: Role| -> Result<DirectionKey, FrameError> {
        let info: [&[u8]; 2] = [
            KEY_LABEL,
            &[
                transcript.protocol_version,
                suite as u8,
                mode as u8,
                sender as u8,
                sender.peer() as u8,
            ],
        ];
        let mut okm = Zeroizing::new([0u8; 44]);
        // 44 bytes is far below HKDF-SHA256's 255 * 32: this error cannot happen.
        hk.expand_multi_info(&info, &mut okm[..])
            .map_err(|_| FrameError::Key("HKDF output too long"))?;
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&okm[..32]);
        let mut iv = [0u8; 12];
        iv.copy_from_slice(&okm[32..]);
        Ok(DirectionKey {
            key,
            iv,
            suite,
            mode,
            sender,
        })
    };
    Ok(SessionKeys {
        send: direction(role)?,
        recv: direction(role.peer())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CN: [u8; 32] = [1; 32];
    const SN: [u8; 32] = [2; 32];

    fn keys(
        secret: &[u8],
        cn: &[u8; 32],
        version: u8,
        suite: CipherSuite,
        mode: Mode,
        role: Role,
    ) -> SessionKeys {
        let t = Transcript {
            protocol_version: version,
            client_nonce: cn,
            server_nonce: &SN,
        };
        derive_session_keys(secret, &t, suite, mode, role).unwrap()
    }

    #[test]
    fn each_input_changes_the_keys_and_directions_mirror() {
        let s = CipherSuite::Aes256Gcm;
        let base = keys(b"k", &CN, 2, s, Mode::Encrypt, Role::Client);
        let server = keys(b"k", &CN, 2, s, Mode::Encrypt, Role::Server);
        assert_eq!(*base.send.key, *server.recv.key);
        assert_eq!(base.send.iv, server.recv.iv);
        assert_eq!(*base.recv.key, *server.send.key);
        assert_ne!(*base.send.key, *base.recv.key, "one key per direction");
        let others = [
            keys(b"k2", &CN, 2, s, Mode::Encrypt, Role::Client),
            keys(b"k", &[3; 32], 2, s, Mode::Encrypt, Role::Client),
            keys(b"k", &CN, 3, s, Mode::Encrypt, Role::Client),
            keys(b"k", &CN, 2, s, Mode::Authenticate, Role::Client),
        ];
        for o in &others {
            assert_ne!(*o.send.key, *base.send.key);
            assert_ne!(o.send.iv, base.send.iv);
        }
        // Swapping the nonces (client's as server's) gives other keys too.
        let t = Transcript {
            protocol_version: 2,
            client_nonce: &SN,
            server_nonce: &CN,
        };
        let swapped = derive_session_keys(b"k", &t, s, Mode::Encrypt, Role::Client).unwrap();
        assert_ne!(*swapped.send.key, *base.send.key);
    }

    #[test]
    fn empty_secret_is_refused_and_debug_redacts() {
        let t = Transcript {
            protocol_version: 2,
            client_nonce: &CN,
            server_nonce: &SN,
        };
        assert!(matches!(
            derive_session_keys(b"", &t, CipherSuite::default(), Mode::Encrypt, Role::Client),
            Err(FrameError::Key(_))
        ));
        let k = keys(
            b"k",
            &CN,
            2,
            CipherSuite::default(),
            Mode::Encrypt,
            Role::Client,
        );
        let shown = format!("{k:?}");
        assert!(shown.contains("redacted"));
        let hex: String = k
            .send
            .key
            .iter()
            .take(4)
            .map(|b| format!("{b}"))
            .collect::<Vec<_>>()
            .join(", ");
        assert!(!shown.contains(&hex), "{shown}");
    }
}
