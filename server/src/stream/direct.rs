//! Direct fan-out: the stream writes each live batch straight into the sockets of the viewers
//! that are keeping up, so a viewer at the live edge costs one non-blocking `writev` per
//! batch and no task wake-up at all.
//!
//! A viewer's task *parks* its socket here once it has written everything up to the live
//! edge (see [`Subscriber::park`](super::Subscriber::park)), and gives up its ring receiver,
//! so the ring frees each batch as soon as the viewers still reading it have. From then on
//! the publisher's task, right after putting a batch in the ring, writes it to every parked
//! socket. A socket that cannot take the whole batch is handed back at once: it leaves the
//! set with the bytes that did not fit and a new ring receiver placed right after that
//! batch, and its task is woken to write them with an ordinary async write and go on from
//! the ring, where the lag policy of [`Subscriber`](super::Subscriber) applies. So the
//! publisher never waits for a viewer (DESIGN.md rule 4) and a slow viewer is still bounded.
//!
//! The set lives under the stream's lock, like the ring's sender: parking, writing a batch
//! and taking a socket back are ordered with the ring, so a viewer gets every batch exactly
//! once, from here or from the ring.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use estuary_protocol::Packet;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{broadcast, Notify};

use super::batch::Batch;

/// How a viewer's bytes are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFormat {
    /// RTMP chunks of message stream 1 at this chunk size (the packets' shared chunks).
    Rtmp { chunk_size: u32 },
    /// FLV tags (the packets' shared tags).
    Flv,
    /// FLV tags in an HTTP/1.1 chunked body: each write is one HTTP chunk.
    ChunkedFlv,
}

impl SinkFormat {
    /// The shared buffer of `packet` in this format (without HTTP chunk framing).
    pub fn bytes_of(self, packet: &Packet) -> Bytes {
        match self {
            SinkFormat::Rtmp { chunk_size } => packet.rtmp_chunks(chunk_size),
            SinkFormat::Flv | SinkFormat::ChunkedFlv => packet.flv_tag().clone(),
        }
    }

    /// Frames `parts` as what one write sends: for [`SinkFormat::ChunkedFlv`] they become one
    /// HTTP chunk (size line before, CRLF after); others are left as they are.
    pub fn frame(self, parts: &mut VecDeque<Bytes>) {
        if self != SinkFormat::ChunkedFlv {
            return;
        }
        let n: usize = parts.iter().map(Bytes::len).sum();
        if n > 0 {
            parts.push_front(Bytes::from(format!("{n:x}\r\n")));
            parts.push_back(Bytes::from_static(b"\r\n"));
        }
    }
}

/// What the stream hands back when it stops writing to a socket.
#[derive(Debug)]
pub struct Returned {
    /// The last batch written (wholly or in part) to the socket.
    pub seq: u64,
    /// The part of that batch the socket did not take, to be written first.
    pub leftover: VecDeque<Bytes>,
    /// The ring from the batch after `seq` on.
    pub ring: broadcast::Receiver<Arc<Batch>>,
}

/// Counts bytes written to one viewer (its registry entry and the metrics).
pub type SentCounter = Arc<dyn Fn(u64) + Send + Sync>;

/// A parked viewer's socket.
pub struct DirectSink {
    writer: Arc<OwnedWriteHalf>,
    format: SinkFormat,
    on_sent: SentCounter,
    /// The last batch written here.
    written_seq: AtomicU64,
    /// Set when the stream handed the socket back.
    returned: Mutex<Option<Returned>>,
    /// Wakes the viewer's task when the socket is handed back.
    wake: Notify,
}

impl DirectSink {
    pub fn new(writer: Arc<OwnedWriteHalf>, format: SinkFormat, on_sent: SentCounter) -> Arc<Self> {
        Arc::new(DirectSink {
            writer,
            format,
            on_sent,
            written_seq: AtomicU64::new(0),
            returned: Mutex::new(None),
            wake: Notify::new(),
        })
    }

    /// Completes when the stream handed the socket back (or has done so already).
    pub async fn handed_back(&self) {
        self.wake.notified().await
    }

    fn returned(&self) -> MutexGuard<'_, Option<Returned>> {
        self.returned.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The parked sockets of one stream.
#[derive(Default)]
pub struct DirectSet {
    sinks: Vec<Arc<DirectSink>>,
}

impl std::fmt::Debug for DirectSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectSet").field("parked", &self.sinks.len()).finish()
    }
}

impl DirectSet {
    /// Adds `sink`, which has had every batch up to `seq`.
    pub(super) fn park(&mut self, sink: &Arc<DirectSink>, seq: u64) {
        sink.written_seq.store(seq, Ordering::Relaxed);
        *sink.returned() = None;
        self.sinks.push(Arc::clone(sink));
    }

    /// Takes `sink` out (if the stream has not handed it back already) and says where its
    /// viewer stands; `ring` is the stream's ring, whose next batch comes after the last one
    /// written here.
    pub(super) fn unpark(&mut self, sink: &Arc<DirectSink>, ring: &broadcast::Sender<Arc<Batch>>) -> Returned {
        if let Some(i) = self.sinks.iter().position(|s| Arc::ptr_eq(s, sink)) {
            self.sinks.swap_remove(i);
        }
        sink.returned().take().unwrap_or_else(|| Returned {
            seq: sink.written_seq.load(Ordering::Relaxed),
            leftover: VecDeque::new(),
            ring: ring.subscribe(),
        })
    }

    pub(super) fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Writes `batch`, just sent on `ring`, to every parked socket, handing back those that
    /// could not take it all.
    pub(super) fn write(&mut self, batch: &Batch, ring: &broadcast::Sender<Arc<Batch>>) {
        if self.sinks.is_empty() {
            return;
        }
        // Each format's bytes are gathered once per batch into one buffer (there are one or
        // two formats), so each socket gets a plain `send` of one buffer: the kernel's
        // per-call cost is most of the fan-out's, and `writev` of several costs more.
        let mut formats: Vec<(SinkFormat, Bytes, u64)> = Vec::with_capacity(2);
        for sink in &self.sinks {
            if !formats.iter().any(|(f, ..)| *f == sink.format) {
                let (bytes, payload) = contiguous(batch, sink.format);
                formats.push((sink.format, bytes, payload));
            }
        }
        let mut i = 0;
        while i < self.sinks.len() {
            let sink = &self.sinks[i];
            let Some((_, bytes, payload)) = formats.iter().find(|(f, ..)| *f == sink.format) else {
                i += 1;
                continue;
            };
            // Straight to the socket, not through tokio's readiness: a stale "writable" only
            // costs the player's next write one `EAGAIN`.
            let socket: &tokio::net::TcpStream = (*sink.writer).as_ref();
            // Full (`EAGAIN`) or broken: handed back either way; the player's own write then
            // waits for room or reports the error.
            let written: usize = socket2::SockRef::from(socket).send(bytes).unwrap_or_default();
            // The batch's media bytes are counted here, whole, even when the player writes
            // the rest (it counts only what it adds).
            (sink.on_sent)(*payload);
            sink.written_seq.store(batch.seq, Ordering::Relaxed);
            if written == bytes.len() {
                i += 1;
                continue;
            }
            *sink.returned() = Some(Returned {
                seq: batch.seq,
                leftover: VecDeque::from([bytes.slice(written..)]),
                ring: ring.subscribe(),
            });
            sink.wake.notify_one();
            self.sinks.swap_remove(i);
        }
    }
}

/// `batch` in `format` as one buffer, and how many of its bytes are media (not framing):
/// the packet's own shared buffer when there is one packet and no framing, else one copy
/// of them all (once per batch, for all the parked viewers).
fn contiguous(batch: &Batch, format: SinkFormat) -> (Bytes, u64) {
    let mut parts: VecDeque<Bytes> = batch.packets.iter().map(|p| format.bytes_of(p)).collect();
    let payload = parts.iter().map(|b| b.len() as u64).sum();
    if parts.len() == 1 && format != SinkFormat::ChunkedFlv {
        return (parts.pop_front().unwrap_or_default(), payload);
    }
    format.frame(&mut parts);
    let mut out = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
    for part in parts {
        out.extend_from_slice(&part);
    }
    (out.freeze(), payload)
}
