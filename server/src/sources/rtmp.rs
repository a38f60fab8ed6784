//! One try of an RTMP pull: our sans-IO client plays the URL, and every audio, video and
//! `onMetaData` message it receives goes on the path as is (the FLV tag body is the packet).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use estuary_protocol::rtmp::client::{ClientConfig, ClientEvent, ClientMode, ClientSession};
use estuary_protocol::{MediaKind, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::error::PullError;
use super::feed::Feed;
use crate::config::PullConfig;

/// Bytes asked of the socket per read.
const READ_SIZE: usize = 64 * 1024;
/// AMF0 `"onMetaData"`: a string marker, its length, the name.
const ON_METADATA: &[u8] = b"\x02\x00\x0aonMetaData";

/// Plays `url` into `feed` until the server ends the stream, the connection fails or `stop`
/// is cancelled (then `Ok`).
pub async fn pull(url: &str, limits: &PullConfig, feed: &mut Feed, stop: &CancellationToken) -> Result<(), PullError> {
    let config = ClientConfig::from_url(url, ClientMode::Play)?;
    let addr = config.addr.clone();
    let connect = TcpStream::connect(&addr);
    let connected = tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        connected = tokio::time::timeout(Duration::from_millis(limits.connect_timeout_ms), connect) => connected,
    };
    let mut socket = match connected {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(PullError::Connect {
                addr,
                why: e.to_string(),
            })
        }
        Err(_) => {
            return Err(PullError::Connect {
                addr,
                why: format!("timed out after {} ms", limits.connect_timeout_ms),
            })
        }
    };
    let _ = socket.set_nodelay(true);
    let mut session = ClientSession::new(config)?;
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let silent = Duration::from_millis(limits.read_timeout_ms);
    loop {
        while let Some(out) = session.take_output() {
            write(&mut socket, &out, silent).await?;
        }
        buf.reserve(READ_SIZE);
        let read = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            read = tokio::time::timeout(silent, socket.read_buf(&mut buf)) => read,
        };
        match read {
            Err(_) => return Err(PullError::Silent(limits.read_timeout_ms)),
            Ok(Err(e)) => return Err(PullError::Io(e.to_string())),
            Ok(Ok(0)) => return Err(PullError::Ended("the server closed the connection".into())),
            Ok(Ok(_)) => {}
        }
        while let Some(event) = session.handle_input(&mut buf)? {
            match event {
                ClientEvent::Media(msg) => {
                    let kind = match msg.type_id {
                        8 => MediaKind::Audio,
                        9 => MediaKind::Video,
                        18 if msg.payload.starts_with(ON_METADATA) => MediaKind::Script,
                        _ => continue,
                    };
                    if kind != MediaKind::Script && msg.payload.is_empty() {
                        continue;
                    }
                    let packet = packet(kind, msg.timestamp, msg.payload)?;
                    feed.publish(packet).await?;
                }
                ClientEvent::Status { code, description, .. } => {
                    if code == "NetStream.Play.Stop" || code == "NetStream.Play.UnpublishNotify" {
                        return Err(PullError::Ended(code));
                    }
                    if code.contains("Failed") || code.contains("StreamNotFound") || code.contains("Rejected") {
                        return Err(PullError::Ended(format!("{code} {description}")));
                    }
                }
                ClientEvent::Connected | ClientEvent::Started { .. } => {}
            }
            // Acknowledgements and pong answers go out as the session queues them.
            while let Some(out) = session.take_output() {
                write(&mut socket, &out, silent).await?;
            }
        }
    }
}

fn packet(kind: MediaKind, timestamp: u32, payload: Bytes) -> Result<Packet, PullError> {
    Packet::from_flv_body(kind, timestamp, payload).map_err(|e| PullError::Media(e.to_string()))
}

async fn write(socket: &mut TcpStream, bytes: &[u8], deadline: Duration) -> Result<(), PullError> {
    match tokio::time::timeout(deadline, socket.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(PullError::Io(e.to_string())),
        Err(_) => Err(PullError::Io(format!(
            "the server accepted nothing for {} ms",
            deadline.as_millis()
        ))),
    }
}
