//! The viewers: RTMP, HTTP-FLV and HLS players that only count and time what they get.
//! Each runs as a task on a current-thread runtime and records into its `ViewerStats`
//! (shared with the runner, which reads them after stopping the task).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use estuary_protocol::rtmp::client::{ClientConfig, ClientEvent, ClientMode, ClientSession};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::http::{parse_head, BodyDecoder, HttpUrl};
use crate::net::{self, now_ns};
use crate::scan::{scan_ts, FlvScanner, Frame, PREFIX};
use crate::sei;
use crate::stats::ViewerStats;
use crate::table::SendTable;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub type Shared = Rc<RefCell<ViewerStats>>;

async fn connect(addr: &str) -> Result<TcpStream, String> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Err(_) => return Err("connect: timed out".to_string()),
    };
    let _ = stream.set_nodelay(true);
    net::enable_timestamps(&stream);
    Ok(stream)
}

/// RTMP player: connect, createStream, play, then read chunks until stopped.
pub async fn rtmp(url: String, table: Arc<SendTable>, stats: Shared) {
    if let Err(e) = rtmp_inner(&url, &table, &stats).await {
        stats.borrow_mut().fail(e);
    }
}

async fn rtmp_inner(url: &str, table: &SendTable, stats: &Shared) -> Result<(), String> {
    let config = ClientConfig::from_url(url, ClientMode::Play).map_err(|e| e.to_string())?;
    stats.borrow_mut().connect_ns = now_ns();
    let mut stream = connect(&config.addr).await?;
    let mut session = ClientSession::new(config).map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(net::READ_SIZE);
    loop {
        if let Some(out) = session.take_output() {
            stream.write_all(&out).await.map_err(|e| format!("write: {e}"))?;
        }
        let read = net::recv(&stream, |data, ts| {
            buf.extend_from_slice(data);
            (data.len(), ts)
        })
        .await;
        let (n, ts) = match read {
            Ok(Some(r)) => r,
            Ok(None) => return Err("closed by server".to_string()),
            Err(e) => return Err(format!("read: {e}")),
        };
        let mut st = stats.borrow_mut();
        st.bytes += n as u64;
        loop {
            match session.handle_input(&mut buf) {
                Ok(None) => break,
                Ok(Some(ClientEvent::Started { .. })) => {
                    st.connected = true;
                    st.join_ns = ts;
                }
                Ok(Some(ClientEvent::Media(msg))) if msg.type_id == 9 => {
                    let p = &msg.payload;
                    if p.len() > 5 && p[1] == 1 {
                        let id = sei::find_id(&p[..p.len().min(PREFIX)]);
                        st.on_video(id, Some(p[0] >> 4 == 1), ts, table, true);
                    }
                }
                Ok(Some(_)) => {}
                Err(e) => return Err(format!("rtmp: {e}")),
            }
        }
    }
}

/// HTTP-FLV player: one GET, then FLV tags from the (chunked) body until stopped.
pub async fn http_flv(url: String, table: Arc<SendTable>, stats: Shared) {
    if let Err(e) = http_flv_inner(&url, &table, &stats).await {
        stats.borrow_mut().fail(e);
    }
}

async fn http_flv_inner(url: &str, table: &SendTable, stats: &Shared) -> Result<(), String> {
    let url = HttpUrl::parse(url).map_err(|e| e.to_string())?;
    stats.borrow_mut().connect_ns = now_ns();
    let mut stream = connect(&url.addr).await?;
    stream
        .write_all(url.request().as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut head = Vec::new();
    let mut body: Option<BodyDecoder> = None;
    let mut scanner = FlvScanner::new();
    loop {
        let read = net::recv(&stream, |data, ts| -> Result<bool, String> {
            let mut st = stats.borrow_mut();
            st.bytes += data.len() as u64;
            let mut data = data;
            if body.is_none() {
                head.extend_from_slice(data);
                let Some(h) = parse_head(&head).map_err(|e| e.to_string())? else {
                    return Ok(false);
                };
                if h.status != 200 {
                    return Err(format!("HTTP {}", h.status));
                }
                st.connected = true;
                st.join_ns = ts;
                body = Some(BodyDecoder::new(h.body));
                let rest = head.split_off(h.len);
                data = &[];
                feed(body.as_mut(), &mut scanner, &rest, ts, table, &mut st)?;
            }
            feed(body.as_mut(), &mut scanner, data, ts, table, &mut st)
        })
        .await;
        match read {
            Ok(Some(Ok(false))) => {}
            Ok(Some(Ok(true))) => return Err("body ended".to_string()),
            Ok(Some(Err(e))) => return Err(e),
            Ok(None) => return Err("closed by server".to_string()),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// Feeds body bytes through the decoder into the FLV scanner; true once the body ended.
fn feed(
    body: Option<&mut BodyDecoder>,
    scanner: &mut FlvScanner,
    data: &[u8],
    ts: u64,
    table: &SendTable,
    st: &mut ViewerStats,
) -> Result<bool, String> {
    let Some(body) = body else { return Ok(false) };
    let mut err = None;
    body.feed(data, |piece| {
        if err.is_none() {
            if let Err(e) = scanner.feed(piece, |f: Frame<'_>| {
                st.on_video(sei::find_id(f.prefix), f.keyframe, ts, table, true)
            }) {
                err = Some(e);
            }
        }
    })
    .map_err(|e| format!("http body: {e}"))?;
    if let Some(e) = err {
        return Err(e);
    }
    Ok(body.is_done())
}

/// A keep-alive HTTP/1.1 connection for playlist and segment requests.
struct HttpConn {
    stream: Option<TcpStream>,
}

/// A completed GET.
struct Response {
    status: u16,
    /// Receive time of the last byte.
    done_ns: u64,
}

impl HttpConn {
    /// GETs `url` into `body`; retries once on a fresh connection if a reused one was closed.
    async fn get(&mut self, url: &HttpUrl, body: &mut Vec<u8>, stats: &Shared) -> Result<Response, String> {
        let reused = self.stream.is_some();
        match self.try_get(url, body, stats).await {
            Err(_) if reused => {
                self.stream = None;
                self.try_get(url, body, stats).await
            }
            other => other,
        }
    }

    async fn try_get(&mut self, url: &HttpUrl, body: &mut Vec<u8>, stats: &Shared) -> Result<Response, String> {
        body.clear();
        if self.stream.is_none() {
            self.stream = Some(connect(&url.addr).await?);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err("no connection".to_string());
        };
        stream
            .write_all(url.request().as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut head = Vec::new();
        let mut decoder: Option<(BodyDecoder, u16, bool)> = None;
        loop {
            let mut last_ts = 0;
            let read = net::recv(stream, |data, ts| -> Result<bool, String> {
                stats.borrow_mut().bytes += data.len() as u64;
                last_ts = ts;
                let mut data = data;
                let rest;
                if decoder.is_none() {
                    head.extend_from_slice(data);
                    let Some(h) = parse_head(&head).map_err(|e| e.to_string())? else {
                        return Ok(false);
                    };
                    decoder = Some((BodyDecoder::new(h.body), h.status, h.keep_alive));
                    rest = head.split_off(h.len);
                    data = &rest;
                }
                let Some((dec, _, _)) = decoder.as_mut() else {
                    return Ok(false);
                };
                dec.feed(data, |piece| body.extend_from_slice(piece))
                    .map_err(|e| e.to_string())?;
                Ok(dec.is_done())
            })
            .await;
            let done_ns = last_ts;
            match read {
                Ok(Some(Ok(true))) => {
                    let Some((_, status, keep_alive)) = decoder else {
                        return Err("no response".to_string());
                    };
                    if !keep_alive {
                        self.stream = None;
                    }
                    return Ok(Response { status, done_ns });
                }
                Ok(Some(Ok(false))) => {}
                Ok(Some(Err(e))) => {
                    self.stream = None;
                    return Err(e);
                }
                Ok(None) => {
                    self.stream = None;
                    return match decoder {
                        Some((_, status, _)) => Ok(Response {
                            status,
                            done_ns: now_ns(),
                        }),
                        _ => Err("closed by server".to_string()),
                    };
                }
                Err(e) => {
                    self.stream = None;
                    return Err(format!("read: {e}"));
                }
            }
        }
    }
}

/// One entry of a media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistEntry {
    pub sequence: u64,
    pub duration: f64,
    pub uri: String,
}

/// Parses the parts of a live media playlist the viewer needs.
pub fn parse_playlist(text: &str) -> Vec<PlaylistEntry> {
    let mut sequence = 0u64;
    let mut duration = 0.0;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            sequence = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            duration = v.split(',').next().and_then(|d| d.trim().parse().ok()).unwrap_or(0.0);
        } else if !line.is_empty() && !line.starts_with('#') {
            out.push(PlaylistEntry {
                sequence,
                duration,
                uri: line.to_string(),
            });
            sequence += 1;
        }
    }
    out
}

/// HLS player: polls the playlist, fetches each new segment, finds the tagged frames.
pub async fn hls(url: String, poll: Duration, table: Arc<SendTable>, stats: Shared) {
    if let Err(e) = hls_inner(&url, poll, &table, &stats).await {
        stats.borrow_mut().fail(e);
    }
}

async fn hls_inner(url: &str, poll: Duration, table: &SendTable, stats: &Shared) -> Result<(), String> {
    let url = HttpUrl::parse(url).map_err(|e| e.to_string())?;
    stats.borrow_mut().connect_ns = now_ns();
    let mut conn = HttpConn { stream: None };
    let mut body = Vec::with_capacity(2 * 1024 * 1024);
    let mut first_seen: HashMap<u64, u64> = HashMap::new();
    let mut next_seq: Option<u64> = None;
    let mut last_done: Option<(u64, f64)> = None;
    loop {
        let poll_start = tokio::time::Instant::now();
        let resp = conn.get(&url, &mut body, stats).await?;
        if resp.status != 200 {
            if stats.borrow().first_key_ns.is_none() && resp.status == 404 {
                tokio::time::sleep(poll).await; // not there yet
                continue;
            }
            return Err(format!("playlist: HTTP {}", resp.status));
        }
        let listed_ns = resp.done_ns;
        let entries = parse_playlist(&String::from_utf8_lossy(&body));
        {
            let mut st = stats.borrow_mut();
            if !st.connected && !entries.is_empty() {
                st.connected = true;
                st.join_ns = listed_ns;
            }
        }
        for e in &entries {
            first_seen.entry(e.sequence).or_insert(listed_ns);
        }
        // Start at the newest segment, like a low-latency player would.
        let from = next_seq.unwrap_or_else(|| entries.last().map_or(0, |e| e.sequence));
        for entry in entries.iter().filter(|e| e.sequence >= from) {
            let seg_url = url.join(&entry.uri).map_err(|e| e.to_string())?;
            let resp = conn.get(&seg_url, &mut body, stats).await?;
            next_seq = Some(entry.sequence + 1);
            if resp.status != 200 {
                stats.borrow_mut().fail(format!("segment: HTTP {}", resp.status));
                continue;
            }
            let mut st = stats.borrow_mut();
            st.segments += 1;
            if let Some((prev_ns, prev_dur)) = last_done {
                let gap = resp.done_ns.saturating_sub(prev_ns);
                let allowed = (prev_dur * 1e9) as u64 + crate::stats::STALL_NS;
                if gap > allowed {
                    st.stalls += 1;
                    st.stall_ns += gap - (prev_dur * 1e9) as u64;
                }
            }
            last_done = Some((resp.done_ns, entry.duration));
            let mut last_id = None;
            scan_ts(&body, |_pid, pes| {
                if let Some(id) = sei::find_id(pes) {
                    st.on_video(Some(id), None, resp.done_ns, table, false);
                    last_id = Some(id);
                }
            })
            .map_err(|e| format!("segment: {e}"))?;
            // The keyframe that closed this segment is the frame after its last one.
            if let (Some(id), Some(seen)) = (last_id, first_seen.get(&entry.sequence)) {
                let (_, seq) = sei::split_id(id);
                if let Some(sent) = table.get(seq + 1).filter(|s| s.keyframe) {
                    if sent.ns >= st.join_ns {
                        let us = (seen.saturating_sub(sent.ns) / 1000).min(u64::from(u32::MAX)) as u32;
                        st.playlist_latencies_us.push((entry.sequence, us));
                    }
                }
            }
        }
        first_seen.retain(|seq, _| next_seq.is_none_or(|n| *seq + 16 >= n));
        tokio::time::sleep_until(poll_start + poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_entries() {
        let p = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:41\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000,\ns-41.ts\n#EXTINF:2.002,\ns-42.ts\n";
        let e = parse_playlist(p);
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0],
            PlaylistEntry {
                sequence: 41,
                duration: 2.0,
                uri: "s-41.ts".into()
            }
        );
        assert_eq!(e[1].sequence, 42);
    }
}
