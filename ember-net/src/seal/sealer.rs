//! [`FrameSealer`] (one per sending direction) and [`FrameOpener`] (one per receiving direction).

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;

use super::keys::{CipherSuite, DirectionKey, Mode};
use super::FrameError;

/// Bytes of a sealed frame's header: `len: u32 LE`, `kind: u8`.
pub const HEADER_LEN: usize = 5;
/// Bytes of the AEAD tag after the body.
pub const TAG_LEN: usize = 16;

/// What a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// A payload.
    Data = 0,
    /// The authenticated end of the stream: nothing follows.
    End = 1,
}

/// The result of opening one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// A data frame whose payload is the first `len` bytes of the buffer.
    Data(usize),
    /// The authenticated end of the stream.
    End,
}

/// The AEAD of a direction (boxed: the expanded AES key schedule is large, sealers move).
enum Cipher {
    Aes(Box<Aes256Gcm>),
}

type TagBytes = [u8; TAG_LEN];

impl Cipher {
    fn new(k: &DirectionKey) -> Cipher {
        let key = (&*k.key).into();
        match k.suite {
            CipherSuite::Aes256Gcm => Cipher::Aes(Box::new(Aes256Gcm::new(key))),
        }
    }

    /// Encrypts `buf` in place (or only MACs `aad` when `buf` is empty); returns the tag.
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], buf: InOutBuf<'_, '_, u8>) -> Option<TagBytes> {
        let tag = match self {
            Cipher::Aes(c) => c.encrypt_inout_detached(nonce.into(), aad, buf).ok()?,
        };
        Some(tag.into())
    }

    /// Verifies the tag (constant time, inside the AEAD crates) and decrypts `buf` in place.
    fn open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &TagBytes) -> bool {
        match self {
            Cipher::Aes(c) => c
                .decrypt_inout_detached(nonce.into(), aad, buf.into(), tag.into())
                .is_ok(),
        }
    }
}

/// The per-frame nonce: `iv XOR (0u32 ‖ seq BE)`. Unique per key as long as `seq` never repeats.
fn nonce(iv: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut n = *iv;
    for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    n
}

fn header(len: usize, kind: FrameKind) -> [u8; HEADER_LEN] {
    let l = (len as u32).to_le_bytes();
    [l[0], l[1], l[2], l[3], kind as u8]
}

/// The largest payload a frame can carry: the configured limit, capped by the u32 length field.
fn effective_limit(max: usize) -> usize {
    max.min(u32::MAX as usize)
}

/// Bytes one AES-GCM key may protect: 2^38 (256 GiB), i.e. about 2^34 AES blocks, which keeps an
/// attacker's distinguishing advantage near 2^-60 (the margin of RFC 8446 §5.5, which allows
/// 2^24.5 full 16 KiB records per key; draft-irtf-cfrg-aead-limits). Past it the sealer refuses
/// and the connection must be re-established (new nonces, new keys).
pub const AES_GCM_BYTES_PER_KEY: u64 = 1 << 38;

/// Seals the frames of one direction. Not `Clone`: two sealers with one key would reuse nonces.
pub struct FrameSealer {
    cipher: Cipher,
    iv: [u8; 12],
    mode: Mode,
    /// The sequence number of the next frame; `None` once all 2^64 have been used.
    next_seq: Option<u64>,
    /// Payload bytes this key may still protect (see [`AES_GCM_BYTES_PER_KEY`]).
    bytes_left: u64,
    max_payload: usize,
    ended: bool,
}

impl std::fmt::Debug for FrameSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSealer")
            .field("mode", &self.mode)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl FrameSealer {
    /// A sealer for the direction of `key` (use [`super::SessionKeys::into_pair`]).
    pub fn new(key: &DirectionKey, max_payload: usize) -> Self {
        let bytes_left = match key.suite {
            CipherSuite::Aes256Gcm => AES_GCM_BYTES_PER_KEY,
        };
        FrameSealer {
            cipher: Cipher::new(key),
            iv: key.iv,
            mode: key.mode,
            next_seq: Some(0),
            bytes_left,
            max_payload,
            ended: false,
        }
    }

    /// The sequence number the next frame will get.
    pub fn next_seq(&self) -> Option<u64> {
        self.next_seq
    }

    /// Appends the sealed data frame of `payload` to `out`. A payload above the limit is refused
    /// with [`FrameError::TooLarge`] and nothing is appended (the stream stays in sync).
    pub fn seal(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        self.seal_kind(FrameKind::Data, payload, out)
    }

    /// Appends the authenticated end-of-stream frame; nothing can be sealed after it.
    pub fn seal_end(&mut self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        self.seal_kind(FrameKind::End, &[], out)?;
        self.ended = true;
        Ok(())
    }

    /// Seals in place: `frame` holds [`HEADER_LEN`] bytes of any value followed by the payload;
    /// on return it is the whole sealed frame (header filled in, tag appended). No copy of the
    /// payload in either mode: encode messages straight after a reserved header.
    pub fn seal_in_place(&mut self, frame: &mut Vec<u8>) -> Result<(), FrameError> {
        let len = frame
            .len()
            .checked_sub(HEADER_LEN)
            .ok_or(FrameError::Malformed("buffer shorter than a header"))?;
        let (seq, hdr) = self.begin(FrameKind::Data, len)?;
        frame[..HEADER_LEN].copy_from_slice(&hdr);
        let tag = self.tag_in_place(seq, &hdr, frame, HEADER_LEN)?;
        frame.extend_from_slice(&tag);
        Ok(())
    }

    /// Checks state and size, takes the next sequence number, builds the header.
    fn begin(
        &mut self,
        kind: FrameKind,
        len: usize,
    ) -> Result<(u64, [u8; HEADER_LEN]), FrameError> {
        if self.ended {
            return Err(FrameError::Ended);
        }
        let limit = effective_limit(self.max_payload);
        if len > limit {
            return Err(FrameError::TooLarge {
                size: len as u64,
                limit: limit as u64,
            });
        }
        let seq = self.next_seq.ok_or(FrameError::SequenceExhausted)?;
        // Header bytes and the MAC input count too: charge the frame's whole length.
        let cost = (len + HEADER_LEN) as u64;
        self.bytes_left = self
            .bytes_left
            .checked_sub(cost)
            .ok_or(FrameError::SequenceExhausted)?;
        self.next_seq = seq.checked_add(1);
        Ok((seq, header(len, kind)))
    }

    fn seal_kind(
        &mut self,
        kind: FrameKind,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        let (seq, hdr) = self.begin(kind, payload.len())?;
        let start = out.len();
        out.reserve(HEADER_LEN + payload.len() + TAG_LEN);
        out.extend_from_slice(&hdr);
        let tag = match self.mode {
            Mode::Encrypt => {
                // Out of place: the ciphertext is written straight into `out`.
                let body = out.len();
                out.resize(body + payload.len(), 0);
                let buf = InOutBuf::new(payload, &mut out[body..])
                    .map_err(|_| FrameError::Malformed("buffer sizes"))?;
                self.cipher.seal(&nonce(&self.iv, seq), &hdr, buf)
            }
            Mode::Authenticate => {
                out.extend_from_slice(payload);
                return self.finish_auth(seq, &hdr, out, start + HEADER_LEN);
            }
        };
        match tag {
            Some(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            None => {
                out.truncate(start);
                Err(FrameError::Malformed("the AEAD refused the input"))
            }
        }
    }

    /// Authenticate mode: `out[body..]` is the payload; appends the tag.
    fn finish_auth(
        &mut self,
        seq: u64,
        hdr: &[u8; HEADER_LEN],
        out: &mut Vec<u8>,
        body: usize,
    ) -> Result<(), FrameError> {
        let tag = self.tag_in_place(seq, hdr, out, body)?;
        out.extend_from_slice(&tag);
        Ok(())
    }

    /// Encrypts `buf[body..]` in place (Encrypt) or MACs `buf[body..] ‖ hdr` (Authenticate, by
    /// appending the header temporarily); returns the tag. `buf` ends with the body on return.
    fn tag_in_place(
        &mut self,
        seq: u64,
        hdr: &[u8; HEADER_LEN],
        buf: &mut Vec<u8>,
        body: usize,
    ) -> Result<TagBytes, FrameError> {
        let n = nonce(&self.iv, seq);
        let tag = match self.mode {
            Mode::Encrypt => self.cipher.seal(&n, hdr, (&mut buf[body..]).into()),
            Mode::Authenticate => {
                let end = buf.len();
                buf.extend_from_slice(hdr);
                let tag = self
                    .cipher
                    .seal(&n, &buf[body..], InOutBuf::from(&mut [][..]));
                buf.truncate(end);
                tag
            }
        };
        tag.ok_or(FrameError::Malformed("the AEAD refused the input"))
    }
}

/// Opens the frames of one direction, in order. After any error it is poisoned.
pub struct FrameOpener {
    cipher: Cipher,
    iv: [u8; 12],
    mode: Mode,
    next_seq: Option<u64>,
    max_payload: usize,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    Ended,
    Failed,
}

impl std::fmt::Debug for FrameOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameOpener")
            .field("mode", &self.mode)
            .field("next_seq", &self.next_seq)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A parsed (not yet authenticated) header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Payload length, already checked against the limit.
    pub len: usize,
    /// Frame kind.
    pub kind: FrameKind,
}

impl FrameOpener {
    /// An opener for the direction of `key` (use [`super::SessionKeys::into_pair`]).
    pub fn new(key: &DirectionKey, max_payload: usize) -> Self {
        FrameOpener {
            cipher: Cipher::new(key),
            iv: key.iv,
            mode: key.mode,
            next_seq: Some(0),
            max_payload,
            state: State::Open,
        }
    }

    /// Whether the authenticated end-of-stream frame has been opened.
    pub fn ended(&self) -> bool {
        self.state == State::Ended
    }

    /// Poisons the opener (the connection failed) and returns `e`.
    pub(crate) fn fail(&mut self, e: FrameError) -> FrameError {
        self.state = State::Failed;
        e
    }

    pub(crate) fn check_state(&self) -> Result<(), FrameError> {
        match self.state {
            State::Open => Ok(()),
            State::Ended => Err(FrameError::Ended),
            State::Failed => Err(FrameError::Poisoned),
        }
    }

    /// Parses a header and checks the length against the limit: call it before allocating the
    /// body. Nothing in it is authenticated yet; any error is final.
    pub fn parse_header(&mut self, hdr: &[u8; HEADER_LEN]) -> Result<Header, FrameError> {
        self.check_state()?;
        let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let limit = effective_limit(self.max_payload);
        if len > limit {
            return Err(self.fail(FrameError::TooLarge {
                size: len as u64,
                limit: limit as u64,
            }));
        }
        let kind = match hdr[4] {
            0 => FrameKind::Data,
            1 if len == 0 => FrameKind::End,
            1 => return Err(self.fail(FrameError::Malformed("end-of-stream frame with a body"))),
            _ => return Err(self.fail(FrameError::Malformed("unknown frame kind"))),
        };
        Ok(Header { len, kind })
    }

    /// Opens one frame in place. `body` is exactly the `len + TAG_LEN` bytes that followed
    /// `hdr`; on success its first `len` bytes are the payload (decrypted in Encrypt mode). On
    /// failure the content of `body` is unspecified and the opener is poisoned.
    pub fn open_in_place(
        &mut self,
        hdr: &[u8; HEADER_LEN],
        body: &mut [u8],
    ) -> Result<Opened, FrameError> {
        let h = self.parse_header(hdr)?;
        if body.len() != h.len + TAG_LEN {
            return Err(self.fail(FrameError::Malformed(
                "body length differs from the header's",
            )));
        }
        let seq = match self.next_seq {
            Some(s) => s,
            None => return Err(self.fail(FrameError::SequenceExhausted)),
        };
        let n = nonce(&self.iv, seq);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&body[h.len..]);
        let ok = match self.mode {
            Mode::Encrypt => self.cipher.open(&n, hdr, &mut body[..h.len], &tag),
            Mode::Authenticate => {
                // Associated data = payload ‖ header: put the header where the tag was.
                body[h.len..h.len + HEADER_LEN].copy_from_slice(hdr);
                self.cipher
                    .open(&n, &body[..h.len + HEADER_LEN], &mut [], &tag)
            }
        };
        if !ok {
            return Err(self.fail(FrameError::BadFrame { seq }));
        }
        self.next_seq = seq.checked_add(1);
        match h.kind {
            FrameKind::Data => Ok(Opened::Data(h.len)),
            FrameKind::End => {
                self.state = State::Ended;
                Ok(Opened::End)
            }
        }
    }

    /// Opens a whole frame held in one buffer (`header ‖ body ‖ tag`), in place; returns what
    /// it was, the payload being `frame[HEADER_LEN..HEADER_LEN + len]`. The frame must be
    /// complete: a shorter buffer is [`FrameError::Truncated`], a longer one malformed.
    pub fn open_frame(&mut self, frame: &mut [u8]) -> Result<Opened, FrameError> {
        self.check_state()?;
        if frame.len() < HEADER_LEN {
            return Err(self.fail(FrameError::Truncated));
        }
        let (h, body) = frame.split_at_mut(HEADER_LEN);
        let hdr: [u8; HEADER_LEN] = [h[0], h[1], h[2], h[3], h[4]];
        let parsed = self.parse_header(&hdr)?;
        if body.len() < parsed.len + TAG_LEN {
            return Err(self.fail(FrameError::Truncated));
        }
        self.open_in_place(&hdr, body)
    }

    #[cfg(test)]
    pub(crate) fn set_next_seq(&mut self, s: u64) {
        self.next_seq = Some(s);
    }
}

#[cfg(test)]
impl FrameSealer {
    pub(crate) fn set_next_seq(&mut self, s: u64) {
        self.next_seq = Some(s);
    }
    pub(crate) fn set_bytes_left(&mut self, b: u64) {
        self.bytes_left = b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::keys::{derive_session_keys, Role, Transcript};

    fn pair(suite: CipherSuite, mode: Mode) -> (FrameSealer, FrameOpener) {
        let t = Transcript {
            protocol_version: 2,
            client_nonce: &[1; 32],
            server_nonce: &[2; 32],
        };
        let c = derive_session_keys(b"secret", &t, suite, mode, Role::Client).unwrap();
        let s = derive_session_keys(b"secret", &t, suite, mode, Role::Server).unwrap();
        (
            FrameSealer::new(&c.send, 1 << 20),
            FrameOpener::new(&s.recv, 1 << 20),
        )
    }

    const ALL: [(CipherSuite, Mode); 2] = [
        (CipherSuite::Aes256Gcm, Mode::Encrypt),
        (CipherSuite::Aes256Gcm, Mode::Authenticate),
    ];

    #[test]
    fn in_place_and_copying_seal_agree_and_modes_differ_on_the_wire() {
        for (suite, mode) in ALL {
            let (mut a, _) = pair(suite, mode);
            let (mut b, mut o) = pair(suite, mode);
            let mut copy = Vec::new();
            a.seal(b"hello world", &mut copy).unwrap();
            let mut inplace = vec![0u8; HEADER_LEN];
            inplace.extend_from_slice(b"hello world");
            b.seal_in_place(&mut inplace).unwrap();
            assert_eq!(copy, inplace);
            assert_eq!(copy.len(), HEADER_LEN + 11 + TAG_LEN);
            let clear = copy.windows(11).any(|w| w == b"hello world");
            assert_eq!(clear, mode == Mode::Authenticate, "{suite:?} {mode:?}");
            assert_eq!(o.open_frame(&mut copy).unwrap(), Opened::Data(11));
            assert_eq!(&copy[HEADER_LEN..HEADER_LEN + 11], b"hello world");
        }
    }

    #[test]
    fn the_sequence_number_never_wraps() {
        for (suite, mode) in ALL {
            let (mut s, mut o) = pair(suite, mode);
            s.set_next_seq(u64::MAX - 1);
            o.set_next_seq(u64::MAX - 1);
            let mut out = Vec::new();
            s.seal(b"a", &mut out).unwrap();
            s.seal(b"b", &mut out).unwrap(); // seq u64::MAX: the last one
            assert_eq!(
                s.seal(b"c", &mut Vec::new()),
                Err(FrameError::SequenceExhausted)
            );
            assert_eq!(
                s.seal_end(&mut Vec::new()),
                Err(FrameError::SequenceExhausted)
            );
            let (f1, f2) = out.split_at_mut(HEADER_LEN + 1 + TAG_LEN);
            assert_eq!(o.open_frame(f1).unwrap(), Opened::Data(1));
            assert_eq!(o.open_frame(f2).unwrap(), Opened::Data(1));
            let mut again = f2.to_vec();
            assert_eq!(o.open_frame(&mut again), Err(FrameError::SequenceExhausted));
        }
    }

    #[test]
    fn an_aes_gcm_key_refuses_past_its_data_limit() {
        let (mut s, _) = pair(CipherSuite::Aes256Gcm, Mode::Encrypt);
        s.set_bytes_left(2 * (HEADER_LEN as u64 + 10));
        s.seal(&[0; 10], &mut Vec::new()).unwrap();
        s.seal(&[0; 10], &mut Vec::new()).unwrap();
        assert_eq!(
            s.seal(&[0; 10], &mut Vec::new()),
            Err(FrameError::SequenceExhausted)
        );
    }

    #[test]
    fn oversized_payloads_are_refused_without_consuming_a_sequence_number() {
        let (mut s, mut o) = pair(CipherSuite::default(), Mode::Encrypt);
        let mut out = Vec::new();
        let big = vec![0u8; (1 << 20) + 1];
        assert_eq!(
            s.seal(&big, &mut out),
            Err(FrameError::TooLarge {
                size: (1 << 20) + 1,
                limit: 1 << 20
            })
        );
        assert!(out.is_empty());
        s.seal(b"x", &mut out).unwrap();
        assert_eq!(o.open_frame(&mut out).unwrap(), Opened::Data(1));
    }

    #[test]
    fn nothing_after_the_end() {
        let (mut s, mut o) = pair(CipherSuite::default(), Mode::Authenticate);
        let mut end = Vec::new();
        s.seal_end(&mut end).unwrap();
        assert_eq!(s.seal(b"x", &mut Vec::new()), Err(FrameError::Ended));
        assert_eq!(o.open_frame(&mut end).unwrap(), Opened::End);
        assert!(o.ended());
        assert_eq!(o.open_frame(&mut [0u8; 21]), Err(FrameError::Ended));
    }
}
