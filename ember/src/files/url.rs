//! Files and archives added by `http://` or `https://` URL (Spark's `Utils.doFetchFile` for
//! those schemes): where a URL's contents are named, and the download itself, which the driver
//! does when the URL is added and every executor does once before its first task that needs it.
//!
//! The download goes through `ureq` (blocking: the driver's `add_file` and the executor's task
//! threads are plain threads), TLS through rustls with ring and the webpki roots, so no system
//! OpenSSL is needed. As Spark's `URLConnection` has its connect and read timeouts,
//! `ember.files.fetchTimeout` bounds connecting, waiting for the response, and each read: a
//! large file that keeps coming is never cut off, a server that goes quiet is.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::error::EmberError;

/// The schemes downloaded over HTTP.
pub(crate) const HTTP_SCHEMES: [&str; 2] = ["http", "https"];

/// The name a URL's contents get in the file root: the last segment of its path,
/// percent-decoded (Spark's `Utils.decodeFileNameInURI`); `None` when the path ends in `/`.
pub(crate) fn file_name(url: &str) -> Option<String> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let without_fragment = after_scheme.split('#').next().unwrap_or(after_scheme);
    let without_query = without_fragment
        .split('?')
        .next()
        .unwrap_or(without_fragment);
    let path = without_query.find('/').map(|i| &without_query[i..])?;
    let last = path.rsplit('/').next().filter(|s| !s.is_empty())?;
    Some(percent_decode(last))
}

/// `%XX` sequences decoded; the segment as it is if the result is not UTF-8.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let (h, l) = (hex(h).unwrap_or(0), hex(l).unwrap_or(0));
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// Why a download failed: the server or the network (the reason, for a message naming the
/// URL), or this machine.
#[derive(Debug)]
pub(crate) enum Download {
    /// Connection refused, a TLS failure, a status other than 2xx, a timeout, a cut body.
    Remote(String),
    /// Writing the file here.
    Local(EmberError),
}

/// Downloads `url` (without its fragment) into the file `dest`, which must not exist yet;
/// returns the number of bytes written. `timeout`: `ember.files.fetchTimeout`.
pub(crate) fn download(url: &str, dest: &Path, timeout: Duration) -> Result<u64, Download> {
    let remote = |e: ureq::Error| Download::Remote(reason(e));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_per_read(Some(timeout))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(remote)?;
    let mut file =
        std::fs::File::create_new(dest).map_err(|e| Download::Local(EmberError::io(dest, e)))?;
    let mut body = response.body_mut().as_reader();
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match std::io::Read::read(&mut body, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Download::Remote(format!("reading the body: {e}"))),
        };
        file.write_all(&buf[..n])
            .map_err(|e| Download::Local(EmberError::io(dest, e)))?;
        total += n as u64;
    }
    file.sync_all()
        .map_err(|e| Download::Local(EmberError::io(dest, e)))?;
    Ok(total)
}

/// What the user needs of a client error.
fn reason(e: ureq::Error) -> String {
    match e {
        ureq::Error::StatusCode(code) => format!("the server answered HTTP status {code}"),
        ureq::Error::Timeout(t) => {
            format!("timed out ({t}; ember.files.fetchTimeout bounds each step)")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_named_by_their_last_path_segment() {
        for (url, name) in [
            ("http://h/models/m.bin", Some("m.bin")),
            ("https://h:8443/a/b.tar.gz?sig=1#env", Some("b.tar.gz")),
            ("http://h/a%20b.txt", Some("a b.txt")),
            ("http://h/bad%ff", Some("bad%ff")),
            ("http://h/dir/", None),
            ("http://h", None),
        ] {
            assert_eq!(file_name(url).as_deref(), name, "{url}");
        }
    }
}
