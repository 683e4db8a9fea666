//! Fuzz targets of the decoders that read bytes from the network, shared by the `cargo fuzz`
//! crate (`ember-net/fuzz`, outside the workspace) and the stable, bounded replay in the tests
//! below, which runs in `cargo test`. Each target panics when an invariant breaks; every `Err`
//! is a correct refusal.
//!
//! - [`frames`]: the sealed-frame decoder. Either raw bytes from an attacker without the keys
//!   (nothing may ever open), or a real sealed stream with one bit flipped or a cut (the frames
//!   before the damage come out exactly, nothing after it).
//! - [`plain_frames`]: the unauthenticated length-prefixed frames (loopback) and the block
//!   protocol's messages inside them.
//! - [`handshake`]: the server side of the handshake fed arbitrary bytes: without the secret's MAC
//!   it never succeeds.

use std::sync::OnceLock;

use crate::protocol::{BlockRequest, ResponseHeader};
use crate::seal::{
    derive_session_keys, CipherSuite, FrameOpener, FrameSealer, Mode, Opened, Role, Transcript,
    HEADER_LEN, TAG_LEN,
};
use crate::secret::Security;
use crate::{auth, frame};

/// Largest payload the targets accept: small, so that memory stays bounded whatever the input.
const MAX: usize = 4096;

fn pair(mode: Mode) -> (FrameSealer, FrameOpener) {
    let (c, s) = ([1u8; 32], [2u8; 32]);
    let t = Transcript {
        protocol_version: auth::PROTOCOL_VERSION,
        client_nonce: &c,
        server_nonce: &s,
    };
    let client = derive_session_keys(
        b"fuzz-secret",
        &t,
        CipherSuite::Aes256Gcm,
        mode,
        Role::Client,
    )
    .expect("keys");
    let server = derive_session_keys(
        b"fuzz-secret",
        &t,
        CipherSuite::Aes256Gcm,
        mode,
        Role::Server,
    )
    .expect("keys");
    let (sealer, _) = client.into_pair(MAX);
    let (_, opener) = server.into_pair(MAX);
    (sealer, opener)
}

/// Opens frames from `wire` until it runs out or a frame is refused; returns the payloads.
fn open_all(opener: &mut FrameOpener, wire: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let Some(hdr) = wire.get(at..at + HEADER_LEN) else {
            return (out, false);
        };
        let hdr: [u8; HEADER_LEN] = [hdr[0], hdr[1], hdr[2], hdr[3], hdr[4]];
        let Ok(h) = opener.parse_header(&hdr) else {
            return (out, false);
        };
        assert!(h.len <= MAX, "a length past the limit was accepted");
        let Some(body) = wire.get(at + HEADER_LEN..at + HEADER_LEN + h.len + TAG_LEN) else {
            return (out, false);
        };
        let mut body = body.to_vec();
        match opener.open_in_place(&hdr, &mut body) {
            Ok(Opened::Data(n)) => out.push(body[..n].to_vec()),
            Ok(Opened::End) => return (out, true),
            Err(_) => return (out, false),
        }
        at += HEADER_LEN + h.len + TAG_LEN;
    }
}

/// The sealed-frame decoder (see the module docs).
pub fn frames(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let mode = if ctl & 1 == 0 {
        Mode::Authenticate
    } else {
        Mode::Encrypt
    };
    let (mut sealer, mut opener) = pair(mode);
    if ctl & 2 == 0 {
        // An attacker without the keys: nothing opens.
        let (got, ended) = open_all(&mut opener, rest);
        assert!(
            got.is_empty() && !ended,
            "bytes made without the keys were accepted"
        );
        return;
    }
    // Payloads: each takes its length from one byte, then that many bytes.
    let (damage, mut rest) = match rest.split_first_chunk::<4>() {
        Some((d, r)) => (u32::from_le_bytes(*d) as usize, r),
        None => return,
    };
    let mut payloads = Vec::new();
    while let Some((&n, r)) = rest.split_first() {
        let n = (n as usize).min(r.len());
        payloads.push(r[..n].to_vec());
        rest = &r[n..];
    }
    let mut wire = Vec::new();
    let mut ends = Vec::new();
    for p in &payloads {
        sealer
            .seal(p, &mut wire)
            .expect("a payload under the limit seals");
        ends.push(wire.len());
    }
    sealer.seal_end(&mut wire).expect("the end seals");
    let mut intact_opener = pair(mode).1;
    assert_eq!(
        open_all(&mut intact_opener, &wire),
        (payloads.clone(), true),
        "an intact stream round-trips"
    );
    // Damage: a bit flip (even `damage`) or a cut (odd), somewhere in the stream.
    let pos = (damage / 2) % (wire.len() * 8);
    let byte = pos / 8;
    let mut damaged = wire.clone();
    if damage % 2 == 0 {
        damaged[byte] ^= 1 << (pos % 8);
    } else {
        damaged.truncate(byte);
    }
    let (got, ended) = open_all(&mut opener, &damaged);
    assert!(!ended, "a damaged stream was accepted to its end");
    // Only the frames wholly before the damaged byte come out, unchanged.
    let intact = ends.iter().take_while(|&&e| e <= byte).count();
    assert_eq!(
        got,
        payloads[..intact.min(got.len())].to_vec(),
        "a frame changed in transit was accepted"
    );
    assert!(
        got.len() <= intact,
        "a frame at or after the damage was accepted"
    );
}

/// Plain frames and the block protocol's messages (see the module docs).
pub fn plain_frames(data: &[u8]) {
    let mut r = std::io::Cursor::new(data);
    while let Ok(f) = frame::read_frame_blocking(&mut r, MAX) {
        assert!(f.len() <= MAX);
        let _ = frame::decode::<BlockRequest>(&f);
        let _ = frame::decode::<ResponseHeader>(&f);
    }
    let _ = frame::decode::<BlockRequest>(data);
    let _ = frame::decode::<ResponseHeader>(data);
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

/// The server's handshake fed arbitrary bytes (see the module docs).
pub fn handshake(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let security = match ctl % 3 {
        0 => Security::none(),
        1 => Security::authenticated("fuzz-secret"),
        _ => Security::encrypted("fuzz-secret"),
    };
    let stream = tokio::io::join(rest, tokio::io::sink());
    let mut stream = stream;
    let got = runtime().block_on(auth::server_handshake(
        &mut stream,
        &security,
        std::time::Duration::from_secs(5),
    ));
    if security.authenticates() {
        assert!(
            got.is_err(),
            "a handshake without the secret's proof succeeded"
        );
    }
}

/// A small deterministic generator (xorshift), so a failure reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The bounded run of a fuzz target inside `cargo test` (stable, no coverage guidance):
/// `target` on every seed and every file of the committed corpus `corpus_dir` (the one
/// `cargo fuzz` reads; regression inputs live there), then `iterations` libFuzzer-style
/// mutations of them (bit flips, byte sets, inserts, deletes, splices) from a fixed seed.
/// Deterministic; a panic names the iteration and prints the input.
///
/// With `EMBER_FUZZ_WRITE_SEEDS=1` in the environment the seeds are also written to
/// `corpus_dir` as `seed-<hash>` files, which is how the committed seed corpora were made.
pub fn replay_and_mutate(
    name: &str,
    corpus_dir: &std::path::Path,
    seeds: &[Vec<u8>],
    target: fn(&[u8]),
    iterations: usize,
) {
    if std::env::var_os("EMBER_FUZZ_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(corpus_dir).expect("create the corpus directory");
        for s in seeds {
            // FNV-1a: a stable name per content, so rewriting the seeds adds no duplicates.
            let h = s.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
            std::fs::write(corpus_dir.join(format!("seed-{h:016x}")), s).expect("write a seed");
        }
    }
    let mut corpus: Vec<Vec<u8>> = seeds.to_vec();
    if let Ok(entries) = std::fs::read_dir(corpus_dir) {
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if let Ok(bytes) = std::fs::read(&p) {
                corpus.push(bytes);
            }
        }
    }
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    for (i, input) in corpus.iter().enumerate() {
        let r = std::panic::catch_unwind(|| target(input));
        assert!(r.is_ok(), "{name}: corpus input {i} panicked: {input:02x?}");
    }
    let mut rng = Rng(0x5eed ^ name.len() as u64);
    for i in 0..iterations {
        let mut input = corpus[rng.below(corpus.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(input.len() + 1);
            match rng.below(5) {
                0 if !input.is_empty() => {
                    let at = at.min(input.len() - 1);
                    input[at] ^= 1 << rng.below(8);
                }
                1 if !input.is_empty() => {
                    let at = at.min(input.len() - 1);
                    input[at] = rng.next() as u8;
                }
                2 => input.insert(at, rng.next() as u8),
                3 if !input.is_empty() => {
                    input.remove(at.min(input.len() - 1));
                }
                _ => {
                    let other = &corpus[rng.below(corpus.len())];
                    let from = rng.below(other.len() + 1);
                    input.splice(at..at, other[from..].iter().copied().take(64));
                }
            }
        }
        let r = std::panic::catch_unwind(|| target(&input));
        assert!(
            r.is_ok(),
            "{name}: iteration {i} panicked on input {input:02x?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mutate_and_run(name: &str, seeds: &[Vec<u8>], target: fn(&[u8]), iterations: usize) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(name);
        replay_and_mutate(name, &dir, seeds, target, iterations);
    }

    #[test]
    fn frames_target_survives_mutations() {
        let mut seeds = vec![vec![0u8; 40], vec![1u8; 40]];
        // Sealed streams with a few payloads, both modes, with and without damage.
        for ctl in [2u8, 3] {
            for damage in [0u32, 1, 77, 1000] {
                let mut s = vec![ctl];
                s.extend_from_slice(&damage.to_le_bytes());
                s.extend_from_slice(&[3, b'a', b'b', b'c', 0, 5, 1, 2, 3, 4, 5]);
                seeds.push(s);
            }
        }
        mutate_and_run("frames", &seeds, frames, 3000);
    }

    #[test]
    fn plain_frames_target_survives_mutations() {
        let mut seeds = Vec::new();
        for msg in [
            BlockRequest::Stored {
                block_id: "rdd_1_2".into(),
            },
            BlockRequest::Shuffle {
                shuffle_id: 3,
                map_id: 4,
                reduce_id: 5,
            },
        ] {
            let p = frame::encode(&msg).unwrap();
            let mut f = (p.len() as u32).to_le_bytes().to_vec();
            f.extend_from_slice(&p);
            seeds.push(f);
        }
        seeds.push(vec![0xff; 9]);
        mutate_and_run("plain_frames", &seeds, plain_frames, 3000);
    }

    #[test]
    fn handshake_target_survives_mutations() {
        let mut seeds = Vec::new();
        for ctl in 0u8..3 {
            let mut s = vec![ctl];
            s.extend_from_slice(&auth::MAGIC);
            s.extend_from_slice(&[
                auth::PROTOCOL_VERSION,
                Role::Client as u8,
                [0, 1, 3][ctl as usize],
            ]);
            s.extend_from_slice(&[7u8; 32 + 32]);
            seeds.push(s);
        }
        mutate_and_run("handshake", &seeds, handshake, 1000);
    }
}
