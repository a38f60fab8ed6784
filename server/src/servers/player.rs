//! The write side of a live player, shared by RTMP and HTTP-FLV viewers.
//!
//! A player writes what its [`Subscriber`] hands out (the join snapshot, then live batches)
//! with one vectored write per batch. Once it has caught up with the live edge it parks its
//! socket with the stream, which then writes each batch to it directly (`stream/direct.rs`):
//! the player's task sleeps until the stream hands the socket back (it could not take a
//! whole batch), the publisher goes, or the connection needs to write something of its own.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use estuary_protocol::rtmp::chunker::chunk_media;
use estuary_protocol::Packet;
use tokio::net::tcp::OwnedWriteHalf;
use tokio_util::sync::CancellationToken;

use super::io::{write_all_vectored, Deadline, WriteError};
use crate::clients::ClientGuard;
use crate::stream::{DirectSink, SentCounter, SinkFormat, Subscriber, SubscriberEnd};

/// Most packets written in one vectored write.
const MAX_BATCH: usize = 32;

/// How packets are framed for this player.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// The packets' shared buffers; such a player can be written to by the stream.
    Shared(SinkFormat),
    /// RTMP chunks for a message stream other than 1: built per player, never parked.
    RtmpStream { stream_id: u32, chunk_size: u32 },
}

/// Counts bytes sent to `client` in its registry entry and in `estuary_bytes_sent_total`
/// for `protocol`, whoever writes them (the player or its stream).
pub fn sent_counter(client: &ClientGuard, protocol: &'static str) -> SentCounter {
    let (client, metric) = (client.shared(), crate::metrics::bytes_sent(protocol));
    Arc::new(move |n: u64| {
        client.add_sent(n);
        metric.increment(n);
    })
}

/// Why writing to a player failed.
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Subscriber(#[from] SubscriberEnd),
    /// The connection was told to stop (kick, shutdown) while its socket was full.
    #[error("stopped while the socket was full (kicked or shutting down)")]
    Stopped,
}

impl From<WriteError> for PlayError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Io(e) => PlayError::Io(e),
            // A socket that accepts nothing for `play.slow_disconnect_ms`: the slow-viewer end.
            WriteError::Stalled(_) => PlayError::Subscriber(SubscriberEnd::TooSlow),
            WriteError::Stopped => PlayError::Stopped,
        }
    }
}

pub struct LivePlayer {
    subscriber: Subscriber,
    writer: Arc<OwnedWriteHalf>,
    framing: Framing,
    /// Present for shared framing.
    sink: Option<Arc<DirectSink>>,
    parked: bool,
    on_sent: SentCounter,
    /// Packets received and not yet written.
    pending: Vec<Arc<Packet>>,
    /// Buffers of the next write.
    out: VecDeque<Bytes>,
    /// Media bytes in `out`, counted as sent once they are written.
    unsent_media: u64,
    /// `play.slow_disconnect_ms`: longest a write may wait for the socket.
    slow: Duration,
    /// Cancelled when the connection must end (kick, shutdown): a write waiting for a full
    /// socket gives up at once.
    stop: CancellationToken,
}

impl LivePlayer {
    pub fn new(
        subscriber: Subscriber,
        writer: Arc<OwnedWriteHalf>,
        framing: Framing,
        on_sent: SentCounter,
        slow: Duration,
        stop: CancellationToken,
    ) -> Self {
        let sink = match framing {
            Framing::Shared(format) => Some(DirectSink::new(Arc::clone(&writer), format, Arc::clone(&on_sent))),
            Framing::RtmpStream { .. } => None,
        };
        LivePlayer {
            subscriber,
            writer,
            framing,
            sink,
            parked: false,
            on_sent,
            pending: Vec::new(),
            out: VecDeque::new(),
            unsent_media: 0,
            slow,
            stop,
        }
    }

    pub fn subscriber(&self) -> &Subscriber {
        &self.subscriber
    }

    /// Waits until there is something to [`write`](Self::write): packets, or the rest of a
    /// batch the stream could not write. Ends when the viewer is too slow or the publisher
    /// is gone for good. Cancel-safe.
    pub async fn ready(&mut self) -> Result<(), SubscriberEnd> {
        match (&self.sink, self.parked) {
            (Some(sink), true) => {
                let sink = Arc::clone(sink);
                tokio::select! {
                    biased;
                    _ = sink.handed_back() => {
                        self.take_back();
                        Ok(())
                    }
                    end = self.subscriber.publisher_gone() => Err(end),
                }
            }
            _ => self.subscriber.recv_batch(&mut self.pending, MAX_BATCH).await,
        }
    }

    /// Takes the socket back from the stream; what it could not write goes first.
    fn take_back(&mut self) {
        if let (Some(sink), true) = (&self.sink, self.parked) {
            self.parked = false;
            let unsent = self.subscriber.unpark(sink);
            for b in unsent.bytes.into_iter().rev() {
                self.out.push_front(b);
            }
            self.unsent_media += unsent.media;
        }
    }

    /// Writes `bytes` as they are (no framing, not counted), after anything the stream left
    /// unwritten: the end of a chunked body.
    pub async fn write_raw(&mut self, bytes: Bytes) -> Result<(), PlayError> {
        self.take_back();
        self.out.push_back(bytes);
        self.write_out().await
    }

    /// Writes `out`, giving up when the socket accepts nothing for `play.slow_disconnect_ms`
    /// or the connection is told to stop; its media bytes count as sent once it is all
    /// written.
    async fn write_out(&mut self) -> Result<(), PlayError> {
        let deadline = Deadline {
            stall: self.slow,
            stop: &self.stop,
        };
        write_all_vectored(&self.writer, &mut self.out, deadline).await?;
        if self.unsent_media > 0 {
            (self.on_sent)(std::mem::take(&mut self.unsent_media));
        }
        Ok(())
    }

    /// Writes `prefix` (e.g. RTMP control messages, the FLV header) after anything the
    /// stream left unwritten, then the packets received, and parks at the live edge.
    pub async fn write(&mut self, prefix: Option<Bytes>) -> Result<(), PlayError> {
        self.take_back();
        // What the stream left unwritten is framed already; what is added here is framed
        // as one piece.
        let mut new: VecDeque<Bytes> = prefix.into_iter().collect();
        let framing = self.framing;
        new.extend(self.pending.drain(..).map(|p| match framing {
            Framing::Shared(format) => format.bytes_of(&p),
            Framing::RtmpStream { stream_id, chunk_size } => chunk_media(&p, stream_id, chunk_size),
        }));
        // Media and prefix bytes are counted (once written), not HTTP chunk framing.
        self.unsent_media += new.iter().map(|b| b.len() as u64).sum::<u64>();
        if let Framing::Shared(format) = framing {
            format.frame(&mut new);
        }
        self.out.append(&mut new);
        if !self.out.is_empty() {
            self.write_out().await?;
        }
        // The join burst (GOP cache) makes these grow; a thousand idle capacities add up.
        if self.out.capacity() > 2 * MAX_BATCH {
            self.out.shrink_to(MAX_BATCH);
        }
        if self.pending.capacity() > 2 * MAX_BATCH {
            self.pending.shrink_to(MAX_BATCH);
        }
        if let Some(sink) = &self.sink {
            self.parked = self.subscriber.park(sink);
        }
        Ok(())
    }
}

impl Drop for LivePlayer {
    fn drop(&mut self) {
        // The stream must stop writing to a socket nobody reads any more.
        self.take_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::stream::{Stream, StreamKey};
    use estuary_protocol::MediaKind;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_util::sync::CancellationToken;

    /// A video frame of `size` bytes whose timestamp is `ts`.
    fn frame(ts: u32, size: usize) -> Packet {
        let mut body = vec![if ts == 0 { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        body.resize(size, 0x41);
        Packet::from_flv_body(MediaKind::Video, ts, Bytes::from(body)).unwrap()
    }

    /// Timestamps of the FLV tags in `bytes`, checking each tag's framing.
    fn tag_timestamps(bytes: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            assert!(rest.len() >= 15, "truncated tag");
            let size = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
            let ts = u32::from_be_bytes([rest[7], rest[4], rest[5], rest[6]]);
            let prev = u32::from_be_bytes(rest[11 + size..15 + size].try_into().unwrap()) as usize;
            assert_eq!(prev, 11 + size, "PreviousTagSize");
            out.push(ts);
            rest = &rest[15 + size..];
        }
        out
    }

    /// A player on one end of a loopback connection; the other end is returned for reading.
    async fn player(stream: &Arc<Stream>, sndbuf: Option<usize>) -> (LivePlayer, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let viewer = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        if let Some(size) = sndbuf {
            socket2::SockRef::from(&server).set_send_buffer_size(size).unwrap();
            socket2::SockRef::from(&viewer).set_recv_buffer_size(size).unwrap();
        }
        let (_read, write) = server.into_split();
        let subscriber = Subscriber::new(Arc::clone(stream), &config().play);
        let on_sent: SentCounter = Arc::new(|_| {});
        let player = LivePlayer::new(
            subscriber,
            Arc::new(write),
            Framing::Shared(SinkFormat::Flv),
            on_sent,
            Duration::from_secs(30),
            CancellationToken::new(),
        );
        (player, viewer)
    }

    /// Runs `player` until the stream ends.
    fn drive(mut player: LivePlayer) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while player.ready().await.is_ok() {
                if player.write(None).await.is_err() {
                    break;
                }
            }
        })
    }

    fn config() -> Config {
        let mut config = Config::default();
        config.play.max_lag_ms = 60_000; // these tests check delivery, not the lag policy
        config.play.wait_for_publisher_ms = 200;
        config
    }

    /// A stream published by source 1.
    fn published(name: &str) -> Arc<Stream> {
        let stream = Arc::new(Stream::new(StreamKey::new("live", name), &config().stream));
        stream.claim(1, CancellationToken::new()).unwrap();
        stream
    }

    #[tokio::test]
    async fn a_parked_player_gets_every_batch_once_in_order() {
        let stream = published("direct");
        let (player, mut viewer) = player(&stream, None).await;
        let task = drive(player);
        stream.publish(1, frame(0, 1000));
        let mut parked = false;
        for i in 1..200u32 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            parked |= stream.parked_count() == 1;
            stream.publish(1, frame(i * 33, 1000));
        }
        assert!(parked, "the player parked its socket with the stream");
        stream.release(1);
        task.await.unwrap();
        let mut got = Vec::new();
        viewer.read_to_end(&mut got).await.unwrap();
        let expected: Vec<u32> = (0..200).map(|i| i * 33).collect();
        assert_eq!(tag_timestamps(&got), expected);
    }

    #[tokio::test]
    async fn a_full_socket_is_handed_back_without_losing_or_repeating_a_byte() {
        let stream = published("full");
        // Small buffers: a few frames fill the socket while the viewer does not read.
        let (player, mut viewer) = player(&stream, Some(16 * 1024)).await;
        let task = drive(player);
        stream.publish(1, frame(0, 100));
        for _ in 0..100 {
            if stream.parked_count() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(stream.parked_count(), 1, "parked before the burst");
        for i in 1..60u32 {
            stream.publish(1, frame(i * 33, 5_000));
        }
        assert_eq!(
            stream.parked_count(),
            0,
            "a socket that cannot take a batch is handed back"
        );
        stream.release(1);
        let mut got = Vec::new();
        viewer.read_to_end(&mut got).await.unwrap();
        task.await.unwrap();
        let expected: Vec<u32> = (0..60).map(|i| i * 33).collect();
        assert_eq!(tag_timestamps(&got), expected);
    }
}
