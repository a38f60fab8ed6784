//! The publisher: sends the clip over RTMP in real time, looped with continuous timestamps,
//! with every video frame tagged (SEI) and its send time recorded in the shared table.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use estuary_protocol::rtmp::client::{ClientConfig, ClientEvent, ClientMode, ClientSession};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::clip::Clip;
use crate::net::now_ns;
use crate::sei;
use crate::table::SendTable;

/// How long connect + handshake + publish may take.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What one publisher did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PublisherStats {
    pub index: usize,
    pub url: String,
    pub started: bool,
    pub error: Option<String>,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub bytes: u64,
    pub loops: u64,
    /// Worst lateness of a send against its due time, ms (the bench's own pacing).
    pub max_late_ms: f64,
}

/// Publishes until `stop`; never fails, reports what went wrong in the stats.
pub async fn run(index: usize, url: String, clip: Arc<Clip>, table: Arc<SendTable>, stop: Instant) -> PublisherStats {
    let mut stats = PublisherStats {
        index,
        url: url.clone(),
        ..PublisherStats::default()
    };
    if let Err(e) = publish(index, &url, &clip, &table, stop, &mut stats).await {
        stats.error = Some(format!("{e:#}"));
    }
    stats
}

async fn publish(
    index: usize,
    url: &str,
    clip: &Clip,
    table: &SendTable,
    stop: Instant,
    stats: &mut PublisherStats,
) -> anyhow::Result<()> {
    let config = ClientConfig::from_url(url, ClientMode::Publish)?;
    let (mut stream, mut session, mut inbuf) = tokio::time::timeout(START_TIMEOUT, start(config))
        .await
        .map_err(|_| anyhow::anyhow!("publish start timed out"))??;
    stats.started = true;

    // Metadata and sequence headers at timestamp 0.
    if let Some(meta) = &clip.metadata {
        let mut data = BytesMut::with_capacity(16 + meta.len());
        data.put_u8(0x02);
        data.put_u16(13);
        data.put_slice(b"@setDataFrame");
        data.put_slice(meta);
        stream.write_all(&session.media_message(18, 0, &data)).await?;
    }
    for seq in [&clip.video_seq_header, &clip.audio_seq_header].into_iter().flatten() {
        let type_id = if Some(seq) == clip.video_seq_header.as_ref() {
            9
        } else {
            8
        };
        stream.write_all(&session.media_message(type_id, 0, seq)).await?;
    }

    let start = Instant::now();
    let mut seq_no = 0u64;
    for lap in 0u64.. {
        for tag in &clip.frames {
            let ts = u64::from(tag.timestamp) + lap * u64::from(clip.loop_ms);
            let due = start + Duration::from_millis(ts);
            if due >= stop {
                return Ok(());
            }
            // Serve the server's control messages (acks, pings) while waiting.
            while Instant::now() < due {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => break,
                    read = stream.read_buf(&mut inbuf) => {
                        if read? == 0 {
                            anyhow::bail!("server closed the connection");
                        }
                        while let Some(event) = session.handle_input(&mut inbuf)? {
                            if let ClientEvent::Status { code, .. } = event {
                                if code.contains("Unpublish") || code.contains("Fail") {
                                    anyhow::bail!("server sent {code}");
                                }
                            }
                        }
                        if let Some(out) = session.take_output() {
                            stream.write_all(&out).await?;
                        }
                    }
                }
            }
            let late = Instant::now().saturating_duration_since(due).as_secs_f64() * 1000.0;
            stats.max_late_ms = stats.max_late_ms.max(late);
            let rtmp_ts = ts as u32;
            let bytes = if tag.kind == 9 {
                let payload = sei::insert_sei(&tag.data, clip.nal_len_size, sei::frame_id(index, seq_no));
                let bytes = session.media_message(9, rtmp_ts, &payload);
                table.record(seq_no, now_ns(), tag.is_keyframe());
                seq_no += 1;
                stats.video_frames += 1;
                bytes
            } else {
                stats.audio_frames += 1;
                session.media_message(tag.kind, rtmp_ts, &tag.data)
            };
            stats.bytes += bytes.len() as u64;
            stream.write_all(&bytes).await?;
        }
        stats.loops = lap + 1;
    }
    Ok(())
}

/// Connects and runs the session until `publish` is accepted.
async fn start(config: ClientConfig) -> anyhow::Result<(TcpStream, ClientSession, BytesMut)> {
    let mut stream = TcpStream::connect(&config.addr)
        .await
        .map_err(|e| anyhow::anyhow!("connect {}: {e}", config.addr))?;
    stream.set_nodelay(true)?;
    let mut session = ClientSession::new(config)?;
    let mut inbuf = BytesMut::with_capacity(16 * 1024);
    loop {
        if let Some(out) = session.take_output() {
            stream.write_all(&out).await?;
        }
        if session.is_started() {
            return Ok((stream, session, inbuf));
        }
        if stream.read_buf(&mut inbuf).await? == 0 {
            anyhow::bail!("server closed the connection before publish started");
        }
        while let Some(event) = session.handle_input(&mut inbuf)? {
            if let ClientEvent::Started { .. } = event {
                break;
            }
        }
    }
}
