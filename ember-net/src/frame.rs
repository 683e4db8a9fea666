//! Length-prefixed frames: `[u32 little-endian length][payload]`.
//!
//! The length is checked against the limit (`ember.rpc.message.maxSize`) by the sender, which
//! refuses to send an oversized frame, and by the receiver before it allocates anything, so a
//! corrupt or hostile length cannot make a process allocate gigabytes. Typed messages are
//! postcard-encoded ([`send_msg`] / [`recv_msg`]).

use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::RpcError;

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Payloads up to this size are copied behind their header and written with one call: one
/// segment on the wire instead of two (no Nagle/delayed-ACK stall even without `TCP_NODELAY`).
const COALESCE_LIMIT: usize = 16 << 10;

/// The largest payload a frame can carry: the configured limit, capped by the u32 length field.
fn effective_limit(max: usize) -> usize {
    max.min(u32::MAX as usize)
}

fn too_large(size: usize, max: usize) -> RpcError {
    RpcError::FrameTooLarge {
        size: size as u64,
        limit: effective_limit(max) as u64,
    }
}

/// Checks a payload against the limit and builds its header.
pub(crate) fn header_for(payload: &[u8], max: usize) -> Result<[u8; HEADER_LEN], RpcError> {
    if payload.len() > effective_limit(max) {
        return Err(too_large(payload.len(), max));
    }
    Ok((payload.len() as u32).to_le_bytes())
}

/// Reads one frame's header: `Ok(None)` on a clean EOF before its first byte.
async fn read_header<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<usize>, RpcError> {
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        let n = r
            .read(&mut header[filled..])
            .await
            .map_err(|e| RpcError::io("reading a frame header", e))?;
        if n == 0 {
            // EOF at a frame boundary is an orderly close; inside the header it is a truncation.
            return if filled == 0 {
                Ok(None)
            } else {
                Err(RpcError::Truncated)
            };
        }
        filled += n;
    }
    Ok(Some(u32::from_le_bytes(header) as usize))
}

/// Reads one frame and appends its payload to `out`; returns the payload's length.
///
/// Errors: [`RpcError::Closed`] on a clean EOF at a frame boundary, [`RpcError::Truncated`] on
/// EOF inside a frame, [`RpcError::FrameTooLarge`] for a length above `max` (checked before
/// anything is allocated or read past the header).
pub async fn read_frame_into<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    out: &mut Vec<u8>,
) -> Result<usize, RpcError> {
    let len = read_header(r).await?.ok_or(RpcError::Closed)?;
    if len > effective_limit(max) {
        return Err(too_large(len, max));
    }
    let start = out.len();
    out.resize(start + len, 0);
    if let Err(e) = r.read_exact(&mut out[start..]).await {
        out.truncate(start);
        return Err(RpcError::io("reading a frame", e));
    }
    Ok(len)
}

/// Reads one frame's payload. See [`read_frame_into`] for the errors.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Vec<u8>, RpcError> {
    let mut out = Vec::new();
    read_frame_into(r, max, &mut out).await?;
    Ok(out)
}

/// Writes one frame and flushes it. A payload above `max` is refused with
/// [`RpcError::FrameTooLarge`] and nothing is written, so the connection stays usable.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    payload: &[u8],
    max: usize,
) -> Result<(), RpcError> {
    let header = header_for(payload, max)?;
    let io = |e| RpcError::io("writing a frame", e);
    if payload.len() <= COALESCE_LIMIT {
        let mut buf = Vec::with_capacity(HEADER_LEN + payload.len());
        buf.extend_from_slice(&header);
        buf.extend_from_slice(payload);
        w.write_all(&buf).await.map_err(io)?;
    } else {
        w.write_all(&header).await.map_err(io)?;
        w.write_all(payload).await.map_err(io)?;
    }
    w.flush().await.map_err(io)
}

/// Encodes a message with postcard.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, RpcError> {
    postcard::to_stdvec(msg).map_err(|e| RpcError::Decode(format!("cannot encode message: {e}")))
}

/// Appends the postcard encoding of a message to `buf` (which keeps its capacity across calls).
pub fn encode_into<T: Serialize>(msg: &T, buf: &mut Vec<u8>) -> Result<(), RpcError> {
    let taken = std::mem::take(buf);
    match postcard::to_extend(msg, taken) {
        Ok(v) => {
            *buf = v;
            Ok(())
        }
        Err(e) => Err(RpcError::Decode(format!("cannot encode message: {e}"))),
    }
}

/// Decodes a postcard message; trailing bytes are an error (they mean the two sides disagree on
/// the message type).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RpcError> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((msg, [])) => Ok(msg),
        Ok((_, rest)) => Err(RpcError::Decode(format!(
            "{} unexpected trailing bytes after the message",
            rest.len()
        ))),
        Err(e) => Err(RpcError::Decode(format!(
            "{e} (frame of {} bytes)",
            bytes.len()
        ))),
    }
}

/// Sends one postcard-encoded message as a frame.
pub async fn send_msg<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
    max: usize,
) -> Result<(), RpcError> {
    write_frame(w, &encode(msg)?, max).await
}

/// Receives one frame and decodes it as a postcard message.
pub async fn recv_msg<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
    max: usize,
) -> Result<T, RpcError> {
    decode(&read_frame(r, max).await?)
}

/// Blocking [`read_frame`], for tests and tools that use `std::io`.
pub fn read_frame_blocking<R: Read>(r: &mut R, max: usize) -> Result<Vec<u8>, RpcError> {
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match r.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Err(RpcError::Closed),
            Ok(0) => return Err(RpcError::Truncated),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(RpcError::io("reading a frame header", e)),
        }
    }
    let len = u32::from_le_bytes(header) as usize;
    if len > effective_limit(max) {
        return Err(too_large(len, max));
    }
    let mut out = vec![0u8; len];
    r.read_exact(&mut out)
        .map_err(|e| RpcError::io("reading a frame", e))?;
    Ok(out)
}

/// Blocking [`write_frame`], for tests and tools that use `std::io`.
pub fn write_frame_blocking<W: Write>(
    w: &mut W,
    payload: &[u8],
    max: usize,
) -> Result<(), RpcError> {
    let header = header_for(payload, max)?;
    let io = |e| RpcError::io("writing a frame", e);
    w.write_all(&header).map_err(io)?;
    w.write_all(payload).map_err(io)?;
    w.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Msg {
        Ping(u64),
        Text(String),
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let big = vec![7u8; COALESCE_LIMIT + 10];
        for p in [&b""[..], b"hello", &big[..]] {
            write_frame(&mut a, p, 1 << 20).await.unwrap();
            assert_eq!(read_frame(&mut b, 1 << 20).await.unwrap(), p);
        }
        send_msg(&mut a, &Msg::Text("x".into()), 64).await.unwrap();
        send_msg(&mut a, &Msg::Ping(42), 64).await.unwrap();
        assert_eq!(
            recv_msg::<_, Msg>(&mut b, 64).await.unwrap(),
            Msg::Text("x".into())
        );
        assert_eq!(recv_msg::<_, Msg>(&mut b, 64).await.unwrap(), Msg::Ping(42));
        drop(a);
        assert_eq!(read_frame(&mut b, 64).await, Err(RpcError::Closed));
    }

    #[test]
    fn blocking_frames_round_trip_and_interoperate() {
        let mut buf = Vec::new();
        write_frame_blocking(&mut buf, b"abc", 16).unwrap();
        write_frame_blocking(&mut buf, b"", 16).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame_blocking(&mut r, 16).unwrap(), b"abc");
        assert_eq!(read_frame_blocking(&mut r, 16).unwrap(), b"");
        assert_eq!(read_frame_blocking(&mut r, 16), Err(RpcError::Closed));
        let mut r = &buf[..5];
        assert_eq!(read_frame_blocking(&mut r, 16), Err(RpcError::Truncated));
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_on_both_sides() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        // Sender: refused, nothing written, so the stream is still in sync afterwards.
        let err = write_frame(&mut a, &[0u8; 100], 99).await.unwrap_err();
        assert_eq!(
            err,
            RpcError::FrameTooLarge {
                size: 100,
                limit: 99
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("exceeds max allowed: ember.rpc.message.maxSize (99 bytes)"),
            "{msg}"
        );
        assert!(
            msg.contains("Consider increasing ember.rpc.message.maxSize"),
            "{msg}"
        );
        write_frame(&mut a, b"ok", 99).await.unwrap();
        assert_eq!(read_frame(&mut b, 99).await.unwrap(), b"ok");
        // Receiver: a header announcing 4 GiB is refused at once, without waiting for (or
        // allocating) the payload.
        a.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
        let err = read_frame(&mut b, 1 << 20).await.unwrap_err();
        assert_eq!(
            err,
            RpcError::FrameTooLarge {
                size: u32::MAX as u64,
                limit: 1 << 20
            }
        );
        assert!(err.to_string().contains("ember.rpc.message.maxSize"));
        let mut r = &u32::MAX.to_le_bytes()[..];
        assert!(matches!(
            read_frame_blocking(&mut r, 10),
            Err(RpcError::FrameTooLarge { .. })
        ));
        assert!(matches!(
            write_frame_blocking(&mut Vec::new(), &[0; 11], 10),
            Err(RpcError::FrameTooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn truncated_frames_are_reported() {
        // EOF inside the payload.
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&10u32.to_le_bytes()).await.unwrap();
        a.write_all(b"abc").await.unwrap();
        drop(a);
        assert_eq!(read_frame(&mut b, 64).await, Err(RpcError::Truncated));
        // EOF inside the header.
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[1, 0]).await.unwrap();
        drop(a);
        assert_eq!(read_frame(&mut b, 64).await, Err(RpcError::Truncated));
    }

    #[test]
    fn garbage_does_not_decode_into_a_message() {
        assert!(matches!(
            decode::<Msg>(&[9, 9, 9]),
            Err(RpcError::Decode(_))
        ));
        let mut bytes = encode(&Msg::Ping(1)).unwrap();
        bytes.push(0);
        assert!(
            matches!(decode::<Msg>(&bytes), Err(RpcError::Decode(m)) if m.contains("trailing"))
        );
    }
}
