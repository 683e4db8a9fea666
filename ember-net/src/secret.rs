//! The application's shared secret (`ember.authenticate.secret`) and how a connection is
//! protected with it ([`Security`]).
//!
//! The secret never leaves a process except as a proof (the handshake's MAC) and is never
//! printed: `Debug` of [`Secret`] and [`Security`] shows Spark's redaction text, and the bytes
//! are zeroed when the last copy is dropped.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

/// What Spark prints instead of a redacted value (`Utils.REDACTION_REPLACEMENT_TEXT`).
pub const REDACTED: &str = "*********(redacted)";

/// A shared secret. Cheap to clone (shared); zeroed when the last clone is dropped; `Debug`
/// prints [`REDACTED`].
#[derive(Clone)]
pub struct Secret(Arc<Zeroizing<Vec<u8>>>);

impl Secret {
    /// Wraps the secret's bytes (a string secret's UTF-8 bytes, as Spark uses them).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(Arc::new(Zeroizing::new(bytes.into())))
    }

    /// The bytes, for the handshake's MAC and the key schedule only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether the secret is empty (refused by the handshake).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl PartialEq for Secret {
    /// Constant-time in the secret's bytes (lengths may leak, as with any comparison of them).
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.expose(), other.expose());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for Secret {}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s.as_bytes())
    }
}

impl From<&[u8]> for Secret {
    fn from(s: &[u8]) -> Secret {
        Secret::new(s)
    }
}

impl<const N: usize> From<&[u8; N]> for Secret {
    fn from(s: &[u8; N]) -> Secret {
        Secret::new(&s[..])
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret::new(s.into_bytes())
    }
}

/// How the connections of a process are protected: Spark's `spark.authenticate` (a secret: both
/// ends prove they know it, and every frame after the handshake is authenticated with keys
/// derived from it) and `spark.network.crypto.enabled` (frames also encrypted). Both ends of a
/// connection must agree; the handshake refuses a connection whose ends differ, naming the key.
///
/// Without a secret nothing is protected: listeners then refuse any address but loopback.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Security {
    secret: Option<Secret>,
    encrypt: bool,
}

impl Security {
    /// No authentication, no encryption (`ember.authenticate=false`): loopback only.
    pub fn none() -> Security {
        Security::default()
    }

    /// Authenticated connections and frames (`ember.authenticate=true`).
    pub fn authenticated(secret: impl Into<Secret>) -> Security {
        Security {
            secret: Some(secret.into()),
            encrypt: false,
        }
    }

    /// Authenticated and encrypted frames (`ember.network.crypto.enabled=true` too).
    pub fn encrypted(secret: impl Into<Secret>) -> Security {
        Security {
            secret: Some(secret.into()),
            encrypt: true,
        }
    }

    /// Built from the two settings; encryption without a secret is refused, as in Spark
    /// (`spark.network.crypto.enabled` requires `spark.authenticate`).
    pub fn from_settings(secret: Option<Secret>, encrypt: bool) -> Result<Security, String> {
        match (secret, encrypt) {
            (None, true) => Err(
                "ember.network.crypto.enabled requires ember.authenticate=true and a secret".into(),
            ),
            (secret, encrypt) => Ok(Security { secret, encrypt }),
        }
    }

    /// The shared secret, when authentication is on.
    pub fn secret(&self) -> Option<&Secret> {
        self.secret.as_ref()
    }

    /// Whether frames are encrypted.
    pub fn encrypts(&self) -> bool {
        self.encrypt
    }

    /// Whether connections are authenticated.
    pub fn authenticates(&self) -> bool {
        self.secret.is_some()
    }

    /// Refuses to listen on `ip` without a secret unless it is a loopback address: anyone who can
    /// reach an unauthenticated listener could run code in the application or read its blocks.
    /// `what` names the listener in the error.
    pub fn check_listen(&self, ip: std::net::IpAddr, what: &str) -> Result<(), String> {
        if self.secret.is_none() && !ip.is_loopback() {
            return Err(format!(
                "refusing to start {what} on {ip} without authentication: any process that can \
                 reach it could run code in this application or read its data. Set \
                 ember.authenticate=true and ember.authenticate.secret (or EMBER_AUTH_SECRET), or \
                 bind to 127.0.0.1"
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("secret", &self.secret)
            .field("encrypt", &self.encrypt)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Security::encrypted("hunter2-very-secret");
        let shown = format!("{s:?} {:?} {:#?}", s.secret(), s);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains(REDACTED), "{shown}");
        assert_eq!(
            s.secret().map(Secret::expose),
            Some(&b"hunter2-very-secret"[..])
        );
    }

    #[test]
    fn encryption_needs_a_secret_and_listeners_need_one_beyond_loopback() {
        assert!(Security::from_settings(None, true)
            .unwrap_err()
            .contains("ember.authenticate"));
        assert!(Security::from_settings(Some("k".into()), true)
            .unwrap()
            .encrypts());
        let open = Security::none();
        assert!(open
            .check_listen([127, 0, 0, 1].into(), "the block server")
            .is_ok());
        assert!(open
            .check_listen(std::net::Ipv6Addr::LOCALHOST.into(), "x")
            .is_ok());
        let e = open
            .check_listen([0, 0, 0, 0].into(), "the block server")
            .unwrap_err();
        assert!(
            e.contains("ember.authenticate")
                && e.contains("the block server")
                && e.contains("0.0.0.0"),
            "{e}"
        );
        assert!(Security::authenticated("k")
            .check_listen([0, 0, 0, 0].into(), "x")
            .is_ok());
        assert_eq!(Secret::from("a"), Secret::from("a"));
        assert_ne!(Secret::from("a"), Secret::from("b"));
    }
}
