//! Direct fan-out: the stream writes each live batch straight into the sockets of the viewers
//! that are keeping up, so a viewer at the live edge costs one non-blocking `send` per
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
//! No lock is held across the writes (DESIGN.md rule 4: a large stream's fan-out holds no
//! lock a join, the API or another stream needs). The set's own lock is taken only for
//! bookkeeping: to send a batch on the ring and queue it for the parked sockets
//! ([`DirectSet::send`], under the stream's lock), to take the next group of sockets to write,
//! and to park or take back a socket. The writes themselves happen in a [`Pass`], outside
//! every lock but the written socket's own (which only its viewer's task also takes), and the
//! publisher's task yields to the runtime between groups of [`GROUP`] sockets, so even on one
//! core a 2000-viewer pass does not hold up other connections for its whole length.
//!
//! Exactly once, in order: batches are queued in `seq` order as they go on the ring, and one
//! pass at a time writes them oldest first (a second flusher only queues). A socket is written
//! a batch only if it is parked and has not had it (`written_seq`). Whoever takes a socket out
//! of the set (its viewer, or the pass when the socket is full) does it under the set's lock,
//! where the queue holds exactly the batches sent on the ring that the socket may lack: they
//! are handed back with it as bytes to write first, and its new ring receiver starts after the
//! last of them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use estuary_protocol::Packet;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{broadcast, Notify};

use super::batch::Batch;

/// Sockets a pass writes between two yields to the runtime: about 32 `send`s of a video
/// frame, a few hundred microseconds, is the longest another task on the same core waits.
pub(super) const GROUP: usize = 32;

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

/// What the stream could not write to a socket it handed back: written first by the viewer.
#[derive(Debug, Default)]
pub struct Unsent {
    pub bytes: VecDeque<Bytes>,
    /// How many of `bytes` are media (not HTTP chunk framing): counted as sent only once the
    /// viewer has written them.
    pub media: u64,
}

/// What the stream hands back when it stops writing to a socket.
#[derive(Debug)]
pub(super) struct Returned {
    /// The last batch written (wholly, in part, or into `unsent`) for the socket.
    pub seq: u64,
    /// What of the batches up to `seq` the socket did not take.
    pub unsent: Unsent,
    /// The ring from the batch after `seq` on.
    pub ring: broadcast::Receiver<Arc<Batch>>,
}

/// Counts bytes written to one viewer (its registry entry and the metrics).
pub type SentCounter = Arc<dyn Fn(u64) + Send + Sync>;

/// A parked socket's state. Locked by the pass around each write to the socket and by the
/// set's bookkeeping (set lock first); nobody else, so no other task waits on a write.
#[derive(Debug, Default)]
struct Slot {
    parked: bool,
    /// The last batch written here (or, when parked, the last the viewer had).
    written_seq: u64,
    /// The socket took only part of batch `written_seq`: the rest, until it is handed back.
    cut: Option<Unsent>,
    /// Set when the stream handed the socket back; taken by [`DirectSet::unpark`].
    returned: Option<Returned>,
}

/// A viewer's socket, parked with a stream or ready to be.
pub struct DirectSink {
    writer: Arc<OwnedWriteHalf>,
    format: SinkFormat,
    on_sent: SentCounter,
    slot: Mutex<Slot>,
    /// Wakes the viewer's task when the socket is handed back.
    wake: Notify,
}

impl DirectSink {
    pub fn new(writer: Arc<OwnedWriteHalf>, format: SinkFormat, on_sent: SentCounter) -> Arc<Self> {
        Arc::new(DirectSink {
            writer,
            format,
            on_sent,
            slot: Mutex::new(Slot::default()),
            wake: Notify::new(),
        })
    }

    /// Completes when the stream handed the socket back (or has done so already).
    pub async fn handed_back(&self) {
        self.wake.notified().await
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        // Nothing panics while holding it; recover rather than poison the viewer.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes batch `seq` (as `encoded`) if the socket is parked and lacks it. True if the
    /// socket took only part of it: it is then no longer parked and must be handed back.
    fn write(&self, seq: u64, encoded: &Encoded) -> bool {
        let mut slot = self.slot();
        if !slot.parked || slot.written_seq >= seq {
            return false;
        }
        // Straight to the socket, not through tokio's readiness: a stale "writable" only
        // costs the player's next write one `EAGAIN`. Full (`EAGAIN`) or broken: handed back
        // either way; the player's own write then waits for room or reports the error.
        let socket: &tokio::net::TcpStream = (*self.writer).as_ref();
        let written = socket2::SockRef::from(socket).send(&encoded.bytes).unwrap_or_default();
        slot.written_seq = seq;
        // Only what the socket took counts as sent; the player counts the rest if it gets it out.
        let sent = encoded.media_in(written);
        if sent > 0 {
            (self.on_sent)(sent);
        }
        if written == encoded.bytes.len() {
            return false;
        }
        slot.parked = false;
        slot.cut = Some(Unsent {
            bytes: VecDeque::from([encoded.bytes.slice(written..)]),
            media: encoded.media - sent,
        });
        true
    }
}

/// One batch in one format, as one buffer.
#[derive(Debug)]
struct Encoded {
    format: SinkFormat,
    bytes: Bytes,
    /// Framing before the media (an HTTP chunk's size line).
    head: usize,
    /// Media bytes in `bytes`.
    media: u64,
}

impl Encoded {
    /// `batch` in `format`: the packet's own shared buffer when there is one packet and no
    /// framing, else one copy of them all (once per batch, for all the parked viewers). Each
    /// socket then gets a plain `send` of one buffer: the kernel's per-call cost is most of
    /// the fan-out's, and `writev` of several costs more.
    fn new(batch: &Batch, format: SinkFormat) -> Encoded {
        let mut parts: VecDeque<Bytes> = batch.packets.iter().map(|p| format.bytes_of(p)).collect();
        let media: u64 = parts.iter().map(|b| b.len() as u64).sum();
        if parts.len() == 1 && format != SinkFormat::ChunkedFlv {
            let bytes = parts.pop_front().unwrap_or_default();
            return Encoded {
                format,
                bytes,
                head: 0,
                media,
            };
        }
        format.frame(&mut parts);
        let head = if format == SinkFormat::ChunkedFlv && media > 0 {
            parts.front().map_or(0, Bytes::len)
        } else {
            0
        };
        let mut out = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
        for part in parts {
            out.extend_from_slice(&part);
        }
        Encoded {
            format,
            bytes: out.freeze(),
            head,
            media,
        }
    }

    /// Media bytes among the first `written` bytes.
    fn media_in(&self, written: usize) -> u64 {
        (written.saturating_sub(self.head) as u64).min(self.media)
    }
}

/// The bookkeeping under the set's lock.
#[derive(Default)]
struct Fanout {
    /// Parked sockets; `None` where one left while a pass was running (a pass walks the set
    /// by index), removed when the pass moves to the next batch.
    sinks: Vec<Option<Arc<DirectSink>>>,
    holes: usize,
    /// Batches sent on the ring whose pass over `sinks` is not finished, oldest first.
    unwritten: VecDeque<Arc<Batch>>,
    /// How far the pass of `unwritten[0]` has gone in `sinks`.
    cursor: usize,
    /// A pass is running: only one writes, so batches go out in order.
    writing: bool,
}

impl Fanout {
    fn remove(&mut self, sink: &Arc<DirectSink>) -> bool {
        let Some(i) = self
            .sinks
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| Arc::ptr_eq(s, sink)))
        else {
            return false;
        };
        if self.writing {
            self.sinks[i] = None;
            self.holes += 1;
        } else {
            self.sinks.swap_remove(i);
        }
        true
    }

    fn compact(&mut self) {
        if self.holes > 0 {
            self.sinks.retain(Option::is_some);
            self.holes = 0;
        }
    }
}

/// The parked sockets of one stream, and the stream's ring (sent through here, so that the
/// ring and the set agree on which batches a socket may lack).
pub(super) struct DirectSet {
    fanout: Mutex<Fanout>,
    ring: broadcast::Sender<Arc<Batch>>,
    /// Sockets parked now, readable without the lock.
    parked: AtomicUsize,
}

impl std::fmt::Debug for DirectSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectSet").field("parked", &self.len()).finish()
    }
}

impl DirectSet {
    pub(super) fn new(ring: broadcast::Sender<Arc<Batch>>) -> DirectSet {
        DirectSet {
            fanout: Mutex::new(Fanout::default()),
            ring,
            parked: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Fanout> {
        // Nothing panics while holding it; the bookkeeping stays consistent.
        self.fanout.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `batch` on the ring and queues it for the parked sockets. Called under the
    /// stream's lock (so the ring's order is the batches' and a joining viewer's place in it
    /// matches its snapshot). Returns the pass the caller must run, outside that lock, to
    /// write it; `None` if nobody is parked or a running pass will write it. The `bool` says
    /// whether the ring kept the batch (it keeps nothing while it has no readers).
    pub(super) fn send(&self, batch: Arc<Batch>) -> (bool, Option<Pass<'_>>) {
        let mut fanout = self.lock();
        // No receivers is fine: nobody is watching yet.
        let on_ring = self.ring.send(Arc::clone(&batch)).is_ok();
        // A socket parked later has had this batch from the ring.
        if fanout.sinks.is_empty() {
            return (on_ring, None);
        }
        fanout.unwritten.push_back(batch);
        if fanout.writing {
            return (on_ring, None);
        }
        fanout.writing = true;
        (
            on_ring,
            Some(Pass {
                set: self,
                encoded: Vec::with_capacity(2),
                encoded_seq: 0,
                finished: false,
            }),
        )
    }

    /// Adds `sink`, whose viewer has had every batch up to `seq`, if `ring` (that viewer's
    /// receiver, dropped then) has nothing waiting; else gives `ring` back.
    pub(super) fn park(
        &self,
        sink: &Arc<DirectSink>,
        ring: broadcast::Receiver<Arc<Batch>>,
        seq: u64,
    ) -> Result<(), broadcast::Receiver<Arc<Batch>>> {
        let mut fanout = self.lock();
        // Batches go on the ring under this lock: nothing can come between the check and
        // the parking.
        if !ring.is_empty() {
            return Err(ring);
        }
        *sink.slot() = Slot {
            parked: true,
            written_seq: seq,
            cut: None,
            returned: None,
        };
        fanout.sinks.push(Some(Arc::clone(sink)));
        self.parked.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Takes `sink` out (if the stream has not handed it back already) and says where its
    /// viewer stands.
    pub(super) fn unpark(&self, sink: &Arc<DirectSink>) -> Returned {
        let mut fanout = self.lock();
        let mut slot = sink.slot();
        if let Some(returned) = slot.returned.take() {
            return returned;
        }
        let cut = slot.cut.take();
        if slot.parked || cut.is_some() {
            return self.give_back(&mut fanout, sink, &mut slot, cut.unwrap_or_default());
        }
        Returned {
            seq: slot.written_seq,
            unsent: Unsent::default(),
            ring: self.ring.subscribe(),
        }
    }

    /// Takes `sink` out of the set: it gets `unsent` plus every queued batch it lacks, and a
    /// ring receiver after the last of them (nothing else was sent: the caller holds the
    /// set's lock).
    fn give_back(&self, fanout: &mut Fanout, sink: &Arc<DirectSink>, slot: &mut Slot, mut unsent: Unsent) -> Returned {
        if fanout.remove(sink) {
            self.parked.fetch_sub(1, Ordering::Relaxed);
        }
        slot.parked = false;
        let mut seq = slot.written_seq;
        // Rare (a viewer leaving or cut off in the middle of a pass): a copy per batch.
        for batch in fanout.unwritten.iter().filter(|b| b.seq > slot.written_seq) {
            let encoded = Encoded::new(batch, sink.format);
            unsent.bytes.push_back(encoded.bytes);
            unsent.media += encoded.media;
            seq = batch.seq;
        }
        Returned {
            seq,
            unsent,
            ring: self.ring.subscribe(),
        }
    }

    /// Hands back the sockets of `group` that the pass cut off, waking their viewers.
    fn hand_back(&self, group: &[Option<Arc<DirectSink>>]) {
        let mut fanout = self.lock();
        for sink in group.iter().flatten() {
            let mut slot = sink.slot();
            // `None`: not cut, or its viewer took it back meanwhile.
            if let Some(cut) = slot.cut.take() {
                let returned = self.give_back(&mut fanout, sink, &mut slot, cut);
                slot.returned = Some(returned);
                drop(slot);
                sink.wake.notify_one();
            }
        }
    }

    pub(super) fn len(&self) -> usize {
        self.parked.load(Ordering::Relaxed)
    }
}

/// The writing of the queued batches to the parked sockets, by the task that queued the
/// first of them. Dropped unfinished (its task cancelled), it finishes at once.
#[must_use = "the queued batches are written by running the pass"]
pub(super) struct Pass<'a> {
    set: &'a DirectSet,
    /// The batch being written, in each format met so far (one or two).
    encoded: Vec<Encoded>,
    encoded_seq: u64,
    finished: bool,
}

impl Pass<'_> {
    /// Writes every queued batch now.
    pub(super) fn run(mut self) {
        while self.step() {}
        self.finished = true;
    }

    /// Writes every queued batch, yielding to the runtime between groups of sockets.
    pub(super) async fn run_yielding(mut self) {
        while self.step() {
            tokio::task::yield_now().await;
        }
        self.finished = true;
    }

    /// Writes the next group of sockets. False when every queued batch is written (the pass
    /// is over: the next batch starts a new one).
    pub(super) fn step(&mut self) -> bool {
        let mut group: [Option<Arc<DirectSink>>; GROUP] = Default::default();
        let batch = {
            let mut fanout = self.set.lock();
            let batch = loop {
                let Some(batch) = fanout.unwritten.front() else {
                    fanout.writing = false;
                    fanout.compact();
                    return false;
                };
                if fanout.cursor < fanout.sinks.len() {
                    break Arc::clone(batch);
                }
                // Every socket was offered this batch.
                fanout.unwritten.pop_front();
                fanout.cursor = 0;
                fanout.compact();
            };
            let mut n = 0;
            while n < GROUP && fanout.cursor < fanout.sinks.len() {
                if let Some(sink) = &fanout.sinks[fanout.cursor] {
                    group[n] = Some(Arc::clone(sink));
                    n += 1;
                }
                fanout.cursor += 1;
            }
            batch
        };
        if self.encoded_seq != batch.seq {
            self.encoded.clear();
            self.encoded_seq = batch.seq;
        }
        let mut cut = false;
        for sink in group.iter().flatten() {
            let i = match self.encoded.iter().position(|e| e.format == sink.format) {
                Some(i) => i,
                None => {
                    self.encoded.push(Encoded::new(&batch, sink.format));
                    self.encoded.len() - 1
                }
            };
            cut |= sink.write(batch.seq, &self.encoded[i]);
        }
        if cut {
            self.set.hand_back(&group);
        }
        true
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if !self.finished {
            while self.step() {}
        }
    }
}
