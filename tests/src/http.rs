//! A small, strict HTTP/1.1 client for 127.0.0.1: response head parsing and an incremental
//! chunked-transfer decoder (RFC 9112 §7.1), so viewers can read endless bodies with timeouts.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `http://HOST:PORT/PATH` split into `("HOST:PORT", "/PATH")`.
pub fn split_url(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http:// URL: {url}"));
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}

/// Status line and headers of a response.
#[derive(Clone, Debug, Default)]
pub struct ResponseHead {
    pub status: u16,
    /// Header names lower-cased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    /// Parses a head that ends with CRLF CRLF.
    pub fn parse(head: &[u8]) -> Result<ResponseHead, String> {
        let text = std::str::from_utf8(head).map_err(|e| format!("response head: {e}"))?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(format!("bad status line {status_line:?}"));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (n, v) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        Ok(ResponseHead { status, headers })
    }
}

/// Incremental decoder of a chunked body.
#[derive(Default)]
pub struct ChunkedDecoder {
    line: Vec<u8>,
    state: ChunkState,
}

#[derive(Default, PartialEq, Eq, Debug)]
enum ChunkState {
    #[default]
    Size,
    Data(usize),
    DataEnd(usize),
    Trailers,
    Done,
}

impl ChunkedDecoder {
    /// Decodes `input`, appending the payload to `out`; errors on malformed framing.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        while !input.is_empty() {
            match self.state {
                ChunkState::Size | ChunkState::Trailers => {
                    let b = input[0];
                    input = &input[1..];
                    self.line.push(b);
                    if self.line.len() > 1024 {
                        return Err("chunk size line longer than 1024 bytes".into());
                    }
                    if !self.line.ends_with(b"\r\n") {
                        continue;
                    }
                    let line = String::from_utf8_lossy(&self.line[..self.line.len() - 2]).into_owned();
                    self.line.clear();
                    if self.state == ChunkState::Trailers {
                        if line.is_empty() {
                            self.state = ChunkState::Done;
                        }
                        continue;
                    }
                    let hex = line.split(';').next().unwrap_or_default().trim();
                    let size = usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size line {line:?}"))?;
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    let n = left.min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if n == left {
                        ChunkState::DataEnd(2)
                    } else {
                        ChunkState::Data(left - n)
                    };
                }
                ChunkState::DataEnd(left) => {
                    let expected = if left == 2 { b'\r' } else { b'\n' };
                    if input[0] != expected {
                        return Err(format!("chunk data not followed by CRLF: {:02x}", input[0]));
                    }
                    input = &input[1..];
                    self.state = if left == 2 {
                        ChunkState::DataEnd(1)
                    } else {
                        ChunkState::Size
                    };
                }
                ChunkState::Done => return Err("bytes after the last chunk".into()),
            }
        }
        Ok(())
    }

    /// True once the terminating zero-size chunk and trailers were read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

/// Opens `GET url` and reads the response head. The stream is returned with a read timeout of
/// `poll`, and any body bytes read past the head.
pub fn open_get(url: &str, limit: Duration, poll: Duration) -> Result<(ResponseHead, TcpStream, Vec<u8>), String> {
    let (host, path) = split_url(url);
    let mut stream = TcpStream::connect(&host).map_err(|e| format!("connect {host}: {e}"))?;
    stream.set_nodelay(true).ok();
    stream
        .set_read_timeout(Some(poll))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: estuary-tests\r\nAccept: */*\r\n\
         Origin: http://example.test\r\n\r\n"
    );
    stream
        .write_all(req.as_bytes())
        .map_err(|e| format!("send request: {e}"))?;
    let deadline = Instant::now() + limit;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = ResponseHead::parse(&buf[..end + 4])?;
            let rest = buf[end + 4..].to_vec();
            return Ok((head, stream, rest));
        }
        if buf.len() > 64 * 1024 {
            return Err("response head larger than 64 KiB".into());
        }
        if Instant::now() >= deadline {
            return Err(format!("no response head from {url} within {limit:?}"));
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(format!("{url}: connection closed before the response head")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(format!("{url}: read: {e}")),
        }
    }
}

/// A complete response: head and the whole body (chunked or not), read within `limit`.
pub fn get(url: &str, limit: Duration) -> Result<(ResponseHead, Vec<u8>), String> {
    let deadline = Instant::now() + limit;
    let (head, mut stream, first) = open_get(url, limit, Duration::from_millis(200))?;
    let length: Option<usize> = head.header("content-length").and_then(|v| v.parse().ok());
    let mut decoder = head.is_chunked().then(ChunkedDecoder::default);
    let mut body = Vec::new();
    feed(&mut decoder, &first, &mut body)?;
    let mut chunk = [0u8; 16384];
    loop {
        let done = match (&decoder, length) {
            (Some(d), _) => d.is_done(),
            (None, Some(n)) => body.len() >= n,
            (None, None) => false,
        };
        if done {
            return Ok((head, body));
        }
        if Instant::now() >= deadline {
            return Err(format!("{url}: body not complete within {limit:?}"));
        }
        match stream.read(&mut chunk) {
            Ok(0) if decoder.is_none() && length.is_none() => return Ok((head, body)),
            Ok(0) => return Err(format!("{url}: connection closed mid-body")),
            Ok(n) => feed(&mut decoder, &chunk[..n], &mut body)?,
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(format!("{url}: read: {e}")),
        }
    }
}

fn feed(decoder: &mut Option<ChunkedDecoder>, bytes: &[u8], body: &mut Vec<u8>) -> Result<(), String> {
    match decoder {
        Some(d) => d.push(bytes, body),
        None => {
            body.extend_from_slice(bytes);
            Ok(())
        }
    }
}

/// A read timeout (`WouldBlock` on Unix, `TimedOut` elsewhere).
pub fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `METHOD url` with a JSON `body` (none when empty), on a connection the server is asked to
/// close; the response head and the whole body, within `limit`.
pub fn request(method: &str, url: &str, body: &str, limit: Duration) -> Result<(ResponseHead, Vec<u8>), String> {
    let (host, path) = split_url(url);
    let mut stream = TcpStream::connect(&host).map_err(|e| format!("connect {host}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: estuary-tests\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(req.as_bytes())
        .map_err(|e| format!("send request: {e}"))?;
    let deadline = Instant::now() + limit;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = ResponseHead::parse(&buf[..end + 4])?;
            let length: Option<usize> = head.header("content-length").and_then(|v| v.parse().ok());
            if length.is_some_and(|n| buf.len() >= end + 4 + n) {
                let body = buf[end + 4..end + 4 + length.unwrap_or(0)].to_vec();
                return Ok((head, body));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("{method} {url}: no complete response within {limit:?}"));
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(format!("{method} {url}: connection closed before a complete response")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(format!("{method} {url}: read: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_chunks_split_anywhere() {
        let wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
        for split in 0..wire.len() {
            let mut d = ChunkedDecoder::default();
            let mut out = Vec::new();
            d.push(&wire[..split], &mut out).unwrap();
            d.push(&wire[split..], &mut out).unwrap();
            assert_eq!(out, b"hello world");
            assert!(d.is_done());
        }
    }

    #[test]
    fn rejects_missing_crlf_after_data() {
        let mut d = ChunkedDecoder::default();
        assert!(d.push(b"2\r\nabX", &mut Vec::new()).is_err());
    }

    #[test]
    fn parses_head() {
        let h = ResponseHead::parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nAccess-Control-Allow-Origin: *\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.status, 200);
        assert!(h.is_chunked());
        assert_eq!(h.header("access-control-allow-origin"), Some("*"));
    }
}
