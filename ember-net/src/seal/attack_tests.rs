//! An active attacker between the two sides: every manipulation is detected and the connection
//! refused (the reading side stops with an error and accepts nothing after the manipulation).

use super::io::{read_frame_into, SealedReader, SealedWriter};
use super::{
    derive_session_keys, CipherSuite, FrameError, FrameOpener, FrameSealer, Mode, Role,
    SessionKeys, Transcript, HEADER_LEN, TAG_LEN,
};

const MAX: usize = 256 << 10;
const CN: [u8; 32] = [0xc1; 32];
const SN: [u8; 32] = [0x5e; 32];

const ALL: [(CipherSuite, Mode); 2] = [
    (CipherSuite::Aes256Gcm, Mode::Encrypt),
    (CipherSuite::Aes256Gcm, Mode::Authenticate),
];

fn keys_with(
    secret: &[u8],
    cn: &[u8; 32],
    suite: CipherSuite,
    mode: Mode,
    role: Role,
) -> SessionKeys {
    let t = Transcript {
        protocol_version: 2,
        client_nonce: cn,
        server_nonce: &SN,
    };
    derive_session_keys(secret, &t, suite, mode, role).unwrap()
}

/// Client sealer / client opener / server sealer / server opener of one connection.
struct Conn {
    client_tx: FrameSealer,
    client_rx: FrameOpener,
    server_tx: FrameSealer,
    server_rx: FrameOpener,
}

fn conn(suite: CipherSuite, mode: Mode) -> Conn {
    conn_with(b"app-secret", &CN, suite, mode)
}

fn conn_with(secret: &[u8], cn: &[u8; 32], suite: CipherSuite, mode: Mode) -> Conn {
    let (client_tx, client_rx) = keys_with(secret, cn, suite, mode, Role::Client).into_pair(MAX);
    let (server_tx, server_rx) = keys_with(secret, cn, suite, mode, Role::Server).into_pair(MAX);
    Conn {
        client_tx,
        client_rx,
        server_tx,
        server_rx,
    }
}

/// Seals each payload as its own frame (as recorded by an eavesdropper on the wire).
fn seal_all(s: &mut FrameSealer, payloads: &[&[u8]]) -> Vec<Vec<u8>> {
    payloads
        .iter()
        .map(|p| {
            let mut f = Vec::new();
            s.seal(p, &mut f).unwrap();
            f
        })
        .collect()
}

fn end(s: &mut FrameSealer) -> Vec<u8> {
    let mut f = Vec::new();
    s.seal_end(&mut f).unwrap();
    f
}

/// What a server reading `wire` through `opener` accepted before it stopped, and why it stopped
/// (`Ok(())`: the authenticated end). The stream ends (EOF) after `wire`.
pub async fn serve(
    wire: Vec<u8>,
    opener: &mut FrameOpener,
) -> (Vec<Vec<u8>>, Result<(), FrameError>) {
    // A real pipe with a small buffer, so reads come in pieces as from a socket.
    let (mut peer, mut server) = tokio::io::duplex(4096);
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = peer.write_all(&wire).await; // the server may stop reading early
        let _ = peer.shutdown().await;
    });
    let mut got = Vec::new();
    let result = loop {
        let mut out = Vec::new();
        match read_frame_into(&mut server, opener, &mut out).await {
            Ok(Some(_)) => got.push(out),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    drop(server);
    let _ = writer.await;
    (got, result)
}

fn cat(frames: &[&Vec<u8>]) -> Vec<u8> {
    frames.iter().flat_map(|f| f.iter().copied()).collect()
}

#[tokio::test]
async fn round_trip_every_suite_and_mode_including_empty_and_max_frames() {
    for (suite, mode) in ALL {
        let mut c = conn(suite, mode);
        let big = vec![0xabu8; MAX];
        let payloads: [&[u8]; 4] = [b"", b"hello", &[7u8; 100_000], &big];
        let frames = seal_all(&mut c.client_tx, &payloads);
        let e = end(&mut c.client_tx);
        let mut wire = frames.concat();
        wire.extend_from_slice(&e);
        let (got, r) = serve(wire, &mut c.server_rx).await;
        assert_eq!(r, Ok(()), "{suite:?} {mode:?}");
        assert_eq!(got, payloads.iter().map(|p| p.to_vec()).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn both_directions_over_loopback_tcp_with_split_halves() {
    use tokio::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let c = conn(CipherSuite::default(), Mode::Encrypt);
    let (client_tx, client_rx, server_tx, server_rx) =
        (c.client_tx, c.client_rx, c.server_tx, c.server_rx);
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (r, w) = s.into_split();
        let (mut r, mut w) = (
            SealedReader::new(tokio::io::BufReader::new(r), server_rx),
            SealedWriter::new(w, server_tx),
        );
        // Echo every frame back, then end.
        while let Some(p) = r.recv().await.unwrap() {
            w.send(&p).await.unwrap();
        }
        w.close().await.unwrap();
    });
    let s = TcpStream::connect(addr).await.unwrap();
    let (r, w) = s.into_split();
    let (mut r, mut w) = (
        SealedReader::new(r, client_rx),
        SealedWriter::new(w, client_tx),
    );
    let sender = tokio::spawn(async move {
        for i in 0..200u32 {
            w.send(&vec![i as u8; (i as usize * 997) % 70_000])
                .await
                .unwrap();
        }
        w.close().await.unwrap();
    });
    for i in 0..200u32 {
        assert_eq!(
            r.recv().await.unwrap().unwrap(),
            vec![i as u8; (i as usize * 997) % 70_000]
        );
    }
    assert_eq!(r.recv().await.unwrap(), None, "authenticated end");
    sender.await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn an_injected_frame_is_refused() {
    for (suite, mode) in ALL {
        let mut c = conn(suite, mode);
        let f = seal_all(&mut c.client_tx, &[b"one", b"two"]);
        let e = end(&mut c.client_tx);
        // Forged by someone without the secret: a well-formed frame under another secret.
        let mut forger = conn_with(b"guessed-secret", &CN, suite, mode);
        let forged = seal_all(&mut forger.client_tx, &[b"rm -rf"]).remove(0);
        let (got, r) = serve(cat(&[&f[0], &forged, &f[1], &e]), &mut c.server_rx).await;
        assert_eq!(got, vec![b"one".to_vec()]);
        assert_eq!(
            r,
            Err(FrameError::BadFrame { seq: 1 }),
            "{suite:?} {mode:?}"
        );
        // Garbage with a plausible header.
        let mut c = conn(suite, mode);
        let mut junk = vec![6, 0, 0, 0, 0];
        junk.extend_from_slice(&[0x41; 6 + TAG_LEN]);
        let (got, r) = serve(junk, &mut c.server_rx).await;
        assert!(got.is_empty());
        assert_eq!(r, Err(FrameError::BadFrame { seq: 0 }));
    }
}

#[tokio::test]
async fn a_replayed_frame_is_refused() {
    for (suite, mode) in ALL {
        let mut c = conn(suite, mode);
        let f = seal_all(&mut c.client_tx, &[b"debit 100", b"ok"]);
        let e = end(&mut c.client_tx);
        let (got, r) = serve(cat(&[&f[0], &f[1], &f[0], &e]), &mut c.server_rx).await;
        assert_eq!(got, vec![b"debit 100".to_vec(), b"ok".to_vec()]);
        assert_eq!(
            r,
            Err(FrameError::BadFrame { seq: 2 }),
            "{suite:?} {mode:?}"
        );
    }
}

#[tokio::test]
async fn frames_replayed_into_another_connection_are_refused() {
    for (suite, mode) in ALL {
        let mut a = conn(suite, mode);
        let recorded = seal_all(&mut a.client_tx, &[b"LaunchTask"]).remove(0);
        // Same secret, same frame position, but a new connection (fresh client nonce).
        let mut b = conn_with(b"app-secret", &[0x77; 32], suite, mode);
        let (got, r) = serve(recorded, &mut b.server_rx).await;
        assert!(got.is_empty());
        assert_eq!(r, Err(FrameError::BadFrame { seq: 0 }));
    }
}

#[tokio::test]
async fn reordered_frames_are_refused() {
    for (suite, mode) in ALL {
        let mut c = conn(suite, mode);
        let f = seal_all(&mut c.client_tx, &[b"first", b"second"]);
        let e = end(&mut c.client_tx);
        let (got, r) = serve(cat(&[&f[1], &f[0], &e]), &mut c.server_rx).await;
        assert!(got.is_empty());
        assert_eq!(
            r,
            Err(FrameError::BadFrame { seq: 0 }),
            "{suite:?} {mode:?}"
        );
    }
}

#[tokio::test]
async fn a_dropped_frame_is_refused() {
    let mut c = conn(CipherSuite::default(), Mode::Authenticate);
    let f = seal_all(&mut c.client_tx, &[b"a", b"b", b"c"]);
    let e = end(&mut c.client_tx);
    let (got, r) = serve(cat(&[&f[0], &f[2], &e]), &mut c.server_rx).await;
    assert_eq!(got, vec![b"a".to_vec()]);
    assert_eq!(r, Err(FrameError::BadFrame { seq: 1 }));
}

#[tokio::test]
async fn every_single_bit_flip_is_refused() {
    for (suite, mode) in ALL {
        let mut c = conn(suite, mode);
        let frame = seal_all(&mut c.client_tx, &[b"payload!"]).remove(0);
        let e = end(&mut c.client_tx);
        for bit in 0..frame.len() * 8 {
            let mut bad = frame.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let mut wire = bad;
            wire.extend_from_slice(&e);
            let mut opener = conn(suite, mode).server_rx;
            let (got, r) = serve(wire, &mut opener).await;
            assert!(
                got.is_empty(),
                "{suite:?} {mode:?} bit {bit} accepted a payload"
            );
            let byte = bit / 8;
            let expected_ok = match byte {
                // Length: shorter → the tag is checked over other bytes; longer → the reader
                // waits for bytes that end in EOF, or the length is above the limit.
                0..=3 => matches!(
                    r,
                    Err(FrameError::BadFrame { seq: 0 }
                        | FrameError::Truncated
                        | FrameError::TooLarge { .. })
                ),
                // Kind.
                4 => matches!(r, Err(FrameError::Malformed(_))),
                // Body and tag.
                _ => r == Err(FrameError::BadFrame { seq: 0 }),
            };
            assert!(
                expected_ok,
                "{suite:?} {mode:?} bit {bit} (byte {byte}): {r:?}"
            );
        }
    }
}

#[tokio::test]
async fn truncation_anywhere_is_detected_and_told_apart_from_a_clean_end() {
    for (suite, mode) in ALL {
        let mut c = conn(suite, mode);
        let f = seal_all(&mut c.client_tx, &[b"x", b"yy"]);
        let e = end(&mut c.client_tx);
        let wire = cat(&[&f[0], &f[1], &e]);
        let boundaries = [0, f[0].len(), f[0].len() + f[1].len()];
        for cut in 0..wire.len() {
            let mut opener = conn(suite, mode).server_rx;
            let (got, r) = serve(wire[..cut].to_vec(), &mut opener).await;
            if boundaries.contains(&cut) {
                assert_eq!(r, Err(FrameError::UnauthenticatedEof), "cut at {cut}");
            } else {
                assert_eq!(r, Err(FrameError::Truncated), "cut at {cut}");
            }
            assert!(got.len() <= 2);
        }
        let (got, r) = serve(wire, &mut c.server_rx).await;
        assert_eq!((got.len(), r), (2, Ok(())));
    }
}

#[tokio::test]
async fn a_frame_sealed_with_the_other_directions_key_is_refused() {
    for (suite, mode) in ALL {
        // The server's own frame sent back to it (reflection), and a server→client frame
        // presented to the server as client→server: both use the s2c key.
        let mut c = conn(suite, mode);
        let reflected = seal_all(&mut c.server_tx, &[b"to client"]).remove(0);
        let (got, r) = serve(reflected, &mut c.server_rx).await;
        assert!(got.is_empty());
        assert_eq!(
            r,
            Err(FrameError::BadFrame { seq: 0 }),
            "{suite:?} {mode:?}"
        );
        // And the client's frame reflected to the client.
        let mut c = conn(suite, mode);
        let reflected = seal_all(&mut c.client_tx, &[b"to server"]).remove(0);
        let (_, r) = serve(reflected, &mut c.client_rx).await;
        assert_eq!(r, Err(FrameError::BadFrame { seq: 0 }));
    }
}

#[tokio::test]
async fn sides_that_disagree_on_mode_or_suite_fail_on_the_first_frame() {
    let mut enc = conn(CipherSuite::Aes256Gcm, Mode::Encrypt);
    let mut auth = conn(CipherSuite::Aes256Gcm, Mode::Authenticate);
    let f = seal_all(&mut enc.client_tx, &[b"m"]).remove(0);
    assert_eq!(
        serve(f, &mut auth.server_rx).await.1,
        Err(FrameError::BadFrame { seq: 0 })
    );
}

#[tokio::test]
async fn a_huge_length_is_refused_before_allocating_and_the_opener_stays_poisoned() {
    let mut c = conn(CipherSuite::default(), Mode::Encrypt);
    let mut wire = u32::MAX.to_le_bytes().to_vec();
    wire.push(0);
    let mut r = &wire[..];
    let mut out = Vec::new();
    let err = read_frame_into(&mut r, &mut c.server_rx, &mut out)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        FrameError::TooLarge {
            size: u32::MAX as u64,
            limit: MAX as u64
        }
    );
    assert!(err.to_string().contains("ember.rpc.message.maxSize"));
    assert_eq!(out.capacity(), 0, "nothing allocated");
    // A valid frame after a failure is not accepted: the connection is dead.
    let good = seal_all(&mut c.client_tx, &[b"late"]).remove(0);
    let mut r = &good[..];
    assert_eq!(
        read_frame_into(&mut r, &mut c.server_rx, &mut out).await,
        Err(FrameError::Poisoned)
    );
    // Unknown kind and an end frame with a body: malformed.
    for hdr in [[0u8, 0, 0, 0, 9], [1, 0, 0, 0, 1]] {
        let mut c = conn(CipherSuite::default(), Mode::Encrypt);
        let mut r = &hdr[..];
        assert!(matches!(
            read_frame_into(&mut r, &mut c.server_rx, &mut out).await,
            Err(FrameError::Malformed(_))
        ));
    }
    assert_eq!(HEADER_LEN, 5);
}

#[tokio::test]
async fn the_payload_is_appended_and_the_buffer_restored_on_failure() {
    let mut c = conn(CipherSuite::Aes256Gcm, Mode::Authenticate);
    let mut f = seal_all(&mut c.client_tx, &[b"abc", b"def"]);
    let mut out = b"prefix:".to_vec();
    let mut r = &f[0][..];
    assert_eq!(
        read_frame_into(&mut r, &mut c.server_rx, &mut out).await,
        Ok(Some(3))
    );
    assert_eq!(out, b"prefix:abc");
    let last = f[1].len() - 1;
    f[1][last] ^= 0x80;
    let mut r = &f[1][..];
    assert_eq!(
        read_frame_into(&mut r, &mut c.server_rx, &mut out).await,
        Err(FrameError::BadFrame { seq: 1 })
    );
    assert_eq!(out, b"prefix:abc");
}
