//! The little HTTP/1.1 the viewers need: a GET request, the response head, and a streaming
//! decoder for the body (chunked, sized, or until close). No allocation per body byte.

use anyhow::{anyhow, bail};

/// Largest response head we accept.
const MAX_HEAD: usize = 16 * 1024;

/// `http://host[:port]/path` split into connect address, Host header and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub addr: String,
    pub host: String,
    pub path: String,
}

impl HttpUrl {
    pub fn parse(url: &str) -> anyhow::Result<HttpUrl> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("{url}: only http:// URLs are supported"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if host.is_empty() {
            bail!("{url}: no host");
        }
        let addr = if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        Ok(HttpUrl {
            addr,
            host: host.to_string(),
            path: path.to_string(),
        })
    }

    /// Resolves a playlist entry against this URL (absolute URL, absolute path, or relative).
    pub fn join(&self, reference: &str) -> anyhow::Result<HttpUrl> {
        if reference.starts_with("http://") {
            return HttpUrl::parse(reference);
        }
        let path = if reference.starts_with('/') {
            reference.to_string()
        } else {
            let dir = self.path.split('?').next().unwrap_or("/");
            let dir = &dir[..dir.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{reference}")
        };
        Ok(HttpUrl {
            addr: self.addr.clone(),
            host: self.host.clone(),
            path,
        })
    }

    pub fn request(&self) -> String {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: estuary-bench\r\nAccept: */*\r\n\r\n",
            self.path, self.host
        )
    }
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Chunked,
    Length(u64),
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub body: BodyKind,
    /// Bytes of the head, including the blank line.
    pub len: usize,
    pub keep_alive: bool,
}

/// Parses a response head from the start of `buf`; `Ok(None)` if it is not complete yet.
pub fn parse_head(buf: &[u8]) -> anyhow::Result<Option<ResponseHead>> {
    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            bail!("response head over {MAX_HEAD} bytes");
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| anyhow!("response head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1.x response: {status_line:?}");
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let mut body = BodyKind::UntilClose;
    let mut keep_alive = version == "HTTP/1.1";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked") {
            body = BodyKind::Chunked;
        } else if name.eq_ignore_ascii_case("content-length") && body != BodyKind::Chunked {
            body = BodyKind::Length(value.parse().map_err(|_| anyhow!("bad content-length {value:?}"))?);
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }
    if status == 204 || status == 304 {
        body = BodyKind::Length(0);
    }
    Ok(Some(ResponseHead {
        status,
        body,
        len: end + 4,
        keep_alive,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading the chunk-size line; value so far, whether we are past the digits.
    Size(u64, bool),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    /// After the last chunk: skipping trailers until an empty line.
    Trailer {
        line_empty: bool,
    },
    TrailerLf {
        line_empty: bool,
    },
    Done,
}

/// Streaming body decoder: feed it bytes as they come; it hands out body data.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    kind: BodyKind,
    remaining: u64,
    chunk: ChunkState,
}

impl BodyDecoder {
    pub fn new(kind: BodyKind) -> Self {
        let remaining = if let BodyKind::Length(n) = kind { n } else { 0 };
        BodyDecoder {
            kind,
            remaining,
            chunk: ChunkState::Size(0, false),
        }
    }

    pub fn is_done(&self) -> bool {
        match self.kind {
            BodyKind::Chunked => self.chunk == ChunkState::Done,
            BodyKind::Length(_) => self.remaining == 0,
            BodyKind::UntilClose => false,
        }
    }

    /// Decodes `input`, calling `data` with each piece of body. Returns how many bytes of
    /// `input` were consumed (less than all of it only when the body ended).
    pub fn feed(&mut self, input: &[u8], mut data: impl FnMut(&[u8])) -> anyhow::Result<usize> {
        match self.kind {
            BodyKind::UntilClose => {
                data(input);
                Ok(input.len())
            }
            BodyKind::Length(_) => {
                let take = (self.remaining.min(input.len() as u64)) as usize;
                if take > 0 {
                    data(&input[..take]);
                }
                self.remaining -= take as u64;
                Ok(take)
            }
            BodyKind::Chunked => self.feed_chunked(input, data),
        }
    }

    fn feed_chunked(&mut self, input: &[u8], mut data: impl FnMut(&[u8])) -> anyhow::Result<usize> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.chunk {
                ChunkState::Done => return Ok(i),
                ChunkState::Data(n) => {
                    let take = n.min((input.len() - i) as u64) as usize;
                    data(&input[i..i + take]);
                    i += take;
                    self.chunk = if n == take as u64 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(n - take as u64)
                    };
                    continue;
                }
                ChunkState::Size(v, past) => {
                    self.chunk = match b {
                        b'\r' => ChunkState::SizeLf(v),
                        b'\n' => self.after_size(v),
                        _ if past => ChunkState::Size(v, true), // chunk extension
                        b';' | b' ' | b'\t' => ChunkState::Size(v, true),
                        _ => {
                            let d = (b as char)
                                .to_digit(16)
                                .ok_or_else(|| anyhow!("bad chunk size byte {b:#x}"))?;
                            if v > u64::MAX >> 8 {
                                bail!("chunk size overflow");
                            }
                            ChunkState::Size(v * 16 + u64::from(d), false)
                        }
                    };
                }
                ChunkState::SizeLf(v) => {
                    if b != b'\n' {
                        bail!("chunk size line not ended by CRLF");
                    }
                    self.chunk = self.after_size(v);
                }
                ChunkState::DataCr => {
                    self.chunk = match b {
                        b'\r' => ChunkState::DataLf,
                        b'\n' => ChunkState::Size(0, false),
                        _ => bail!("chunk data not followed by CRLF"),
                    };
                }
                ChunkState::DataLf => {
                    if b != b'\n' {
                        bail!("chunk data not followed by CRLF");
                    }
                    self.chunk = ChunkState::Size(0, false);
                }
                ChunkState::Trailer { line_empty } => {
                    self.chunk = match b {
                        b'\r' => ChunkState::TrailerLf { line_empty },
                        b'\n' if line_empty => ChunkState::Done,
                        b'\n' => ChunkState::Trailer { line_empty: true },
                        _ => ChunkState::Trailer { line_empty: false },
                    };
                }
                ChunkState::TrailerLf { line_empty } => {
                    self.chunk = if line_empty {
                        ChunkState::Done
                    } else {
                        ChunkState::Trailer { line_empty: true }
                    };
                }
            }
            i += 1;
        }
        Ok(i)
    }

    fn after_size(&self, v: u64) -> ChunkState {
        if v == 0 {
            ChunkState::Trailer { line_empty: true }
        } else {
            ChunkState::Data(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_join() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/live/s.m3u8").unwrap();
        assert_eq!(u.addr, "127.0.0.1:8080");
        assert_eq!(u.join("s-1.ts").unwrap().path, "/live/s-1.ts");
        assert_eq!(u.join("/hls/x.ts").unwrap().path, "/hls/x.ts");
        assert_eq!(HttpUrl::parse("http://h/").unwrap().addr, "h:80");
    }

    #[test]
    fn head_and_chunked_body_in_pieces() {
        let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0b\r\n world!!!!!\r\n0\r\n\r\nNEXT";
        let head = parse_head(resp).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.body, BodyKind::Chunked);
        let body = &resp[head.len..];
        for split in 0..body.len() {
            let mut dec = BodyDecoder::new(head.body);
            let mut out = Vec::new();
            let a = dec.feed(&body[..split], |d| out.extend_from_slice(d)).unwrap();
            let end = body.len() - 4;
            assert_eq!(a, split.min(end));
            let b = dec.feed(&body[a..], |d| out.extend_from_slice(d)).unwrap();
            assert_eq!(out, b"hello world!!!!!");
            assert!(dec.is_done());
            assert_eq!(&body[a + b..], b"NEXT");
        }
    }

    #[test]
    fn sized_body_and_incomplete_head() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
        let head = parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (head.status, head.body, head.keep_alive),
            (404, BodyKind::Length(3), false)
        );
        let mut dec = BodyDecoder::new(head.body);
        let mut out = Vec::new();
        assert_eq!(dec.feed(b"abcdef", |d| out.extend_from_slice(d)).unwrap(), 3);
        assert!(dec.is_done());
        assert_eq!(out, b"abc");
    }
}
