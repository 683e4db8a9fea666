//! Sealed frames over tokio `AsyncRead` / `AsyncWrite` halves.
//!
//! The free functions work on any half (`OwnedReadHalf`, a `BufReader` around one, a duplex in
//! tests); [`SealedReader`] / [`SealedWriter`] bundle a half with its opener or sealer and a
//! reusable buffer, which is what Ember's `ConnReader` / `ConnWriter` would hold.
//!
//! Reading checks the announced length against the limit before allocating, reads exactly
//! `len + TAG_LEN` bytes, and never panics on input. Neither side is cancel-safe: a read or
//! write cancelled half-way leaves the stream out of sync, so drop the connection (as today).
//! Timeouts stay the caller's (`ember.network.timeout`).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::sealer::{FrameOpener, FrameSealer, Opened, HEADER_LEN, TAG_LEN};
use super::FrameError;

/// Seals `payload` into `scratch` (cleared first) and writes it as one `write_all`, then flushes.
/// [`FrameError::TooLarge`] writes nothing.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    sealer: &mut FrameSealer,
    payload: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<(), FrameError> {
    scratch.clear();
    sealer.seal(payload, scratch)?;
    w.write_all(scratch)
        .await
        .map_err(|e| FrameError::io("writing a frame", e))?;
    w.flush()
        .await
        .map_err(|e| FrameError::io("writing a frame", e))
}

/// Writes the authenticated end-of-stream frame and shuts the write half down (TCP FIN).
pub async fn write_end<W: AsyncWrite + Unpin>(
    w: &mut W,
    sealer: &mut FrameSealer,
    scratch: &mut Vec<u8>,
) -> Result<(), FrameError> {
    scratch.clear();
    sealer.seal_end(scratch)?;
    w.write_all(scratch)
        .await
        .map_err(|e| FrameError::io("writing the end of the stream", e))?;
    w.shutdown()
        .await
        .map_err(|e| FrameError::io("closing the stream", e))
}

/// Reads, authenticates and (in Encrypt mode) decrypts one frame, appending its payload to `out`.
///
/// Returns `Ok(Some(len))` for a data frame, `Ok(None)` for the authenticated end of the stream.
/// EOF before a frame's first byte is [`FrameError::UnauthenticatedEof`] (the stream was cut,
/// or the peer died), EOF inside a frame [`FrameError::Truncated`]. On any error `out` is left as
/// it was and the opener is poisoned.
pub async fn read_frame_into<R: AsyncRead + Unpin>(
    r: &mut R,
    opener: &mut FrameOpener,
    out: &mut Vec<u8>,
) -> Result<Option<usize>, FrameError> {
    opener.check_state()?;
    let mut hdr = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        let n = match r.read(&mut hdr[filled..]).await {
            Ok(n) => n,
            Err(e) => return Err(opener.fail(FrameError::io("reading a frame header", e))),
        };
        if n == 0 {
            let e = if filled == 0 {
                FrameError::UnauthenticatedEof
            } else {
                FrameError::Truncated
            };
            return Err(opener.fail(e));
        }
        filled += n;
    }
    // Bounded: `len` is checked against the limit before anything is allocated.
    let header = opener.parse_header(&hdr)?;
    let start = out.len();
    out.resize(start + header.len + TAG_LEN, 0);
    if let Err(e) = r.read_exact(&mut out[start..]).await {
        out.truncate(start);
        return Err(opener.fail(FrameError::io("reading a frame", e)));
    }
    match opener.open_in_place(&hdr, &mut out[start..]) {
        Ok(Opened::Data(len)) => {
            out.truncate(start + len);
            Ok(Some(len))
        }
        Ok(Opened::End) => {
            out.truncate(start);
            Ok(None)
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// [`read_frame_into`] into a new buffer.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    opener: &mut FrameOpener,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut out = Vec::new();
    Ok(read_frame_into(r, opener, &mut out).await?.map(|_| out))
}

/// A read half with its opener.
#[derive(Debug)]
pub struct SealedReader<R> {
    inner: R,
    opener: FrameOpener,
}

impl<R: AsyncRead + Unpin> SealedReader<R> {
    /// Wraps a read half (buffer it with `tokio::io::BufReader` for many small frames).
    pub fn new(inner: R, opener: FrameOpener) -> Self {
        SealedReader { inner, opener }
    }

    /// See [`read_frame_into`].
    pub async fn recv_into(&mut self, out: &mut Vec<u8>) -> Result<Option<usize>, FrameError> {
        read_frame_into(&mut self.inner, &mut self.opener, out).await
    }

    /// The next payload, `None` at the authenticated end.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        read_frame(&mut self.inner, &mut self.opener).await
    }
}

/// A write half with its sealer and a reusable buffer (one frame's worth at most).
#[derive(Debug)]
pub struct SealedWriter<W> {
    inner: W,
    sealer: FrameSealer,
    scratch: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> SealedWriter<W> {
    /// Wraps a write half.
    pub fn new(inner: W, sealer: FrameSealer) -> Self {
        SealedWriter {
            inner,
            sealer,
            scratch: Vec::new(),
        }
    }

    /// Seals and sends one payload. See [`write_frame`].
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), FrameError> {
        // The buffer keeps the capacity of the largest frame sent (a block chunk, ≤ 4 MiB in
        // Ember), so streaming chunks does not allocate per frame.
        write_frame(
            &mut self.inner,
            &mut self.sealer,
            payload,
            &mut self.scratch,
        )
        .await
    }

    /// Sends the authenticated end of the stream and shuts the half down. Call it before
    /// dropping the connection: otherwise the peer sees [`FrameError::UnauthenticatedEof`].
    pub async fn close(mut self) -> Result<(), FrameError> {
        write_end(&mut self.inner, &mut self.sealer, &mut self.scratch).await
    }
}
