//! The recorder as an output of its path: it hands every packet to its writer thread and
//! returns at once, so a slow or full disk never holds up the path's task. What waits for
//! the disk is bounded in bytes (`record.max_queue_bytes`); past that the recording fails,
//! with a logged reason and a metric, and the live stream carries on untouched.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use estuary_protocol::Packet;
use tokio_util::sync::CancellationToken;

use super::ledger::FailReason;
use crate::outputs::Output;

/// What the output tells its writer thread.
pub enum Msg {
    Packet(Arc<Packet>),
    /// Packets were lost: the file resumes at the next keyframe.
    Gap,
    /// The source stopped: this file ends; a source that comes back starts another.
    SourceGone,
    /// The output failed the recording (its disk did not keep up).
    Fail(FailReason),
}

/// Shared between the output and its writer thread.
#[derive(Default)]
pub struct Queue {
    /// Payload bytes sent and not yet written.
    pub bytes: AtomicU64,
    /// The recording failed: nothing more is sent.
    pub failed: AtomicBool,
}

/// The recording ends when the channel closes: the writer writes what was sent, then
/// finishes the file.
pub struct RecordOutput {
    tx: Option<SyncSender<Msg>>,
    queue: Arc<Queue>,
    max_queue_bytes: u64,
    stop: CancellationToken,
}

impl RecordOutput {
    pub fn new(tx: SyncSender<Msg>, queue: Arc<Queue>, max_queue_bytes: u64, stop: CancellationToken) -> Self {
        RecordOutput {
            tx: Some(tx),
            queue,
            max_queue_bytes,
            stop,
        }
    }

    fn send(&self, msg: Msg) {
        let Some(tx) = &self.tx else { return };
        if let Err(TrySendError::Full(_)) = tx.try_send(msg) {
            self.fail(FailReason::SlowDisk);
        }
    }

    fn fail(&self, reason: FailReason) {
        if !self.queue.failed.swap(true, Ordering::Relaxed) {
            // The channel may be full: the writer also sees the flag.
            if let Some(tx) = &self.tx {
                let _ = tx.try_send(Msg::Fail(reason));
            }
        }
    }
}

impl Output for RecordOutput {
    fn packet(&mut self, packet: &Arc<Packet>) {
        if self.queue.failed.load(Ordering::Relaxed) {
            return;
        }
        let len = packet.payload.len() as u64;
        if self.queue.bytes.load(Ordering::Relaxed) + len > self.max_queue_bytes {
            self.fail(FailReason::SlowDisk);
            return;
        }
        self.queue.bytes.fetch_add(len, Ordering::Relaxed);
        self.send(Msg::Packet(Arc::clone(packet)));
    }

    fn gap(&mut self) {
        self.send(Msg::Gap);
    }

    fn source_gone(&mut self) {
        self.send(Msg::SourceGone);
    }

    fn end(&mut self) {
        // Closing the channel ends the recording once the writer has written what it holds;
        // nothing here waits for the disk.
        self.tx = None;
    }

    fn stop_token(&self) -> Option<CancellationToken> {
        Some(self.stop.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use estuary_protocol::MediaKind;

    fn frame(size: usize) -> Arc<Packet> {
        let mut body = vec![0x27u8, 1, 0, 0, 0];
        body.resize(size, 0);
        Arc::new(Packet::from_flv_body(MediaKind::Video, 0, Bytes::from(body)).unwrap())
    }

    #[test]
    fn a_disk_that_does_not_keep_up_fails_the_recording_and_nothing_grows() {
        // The writer thread reads nothing: the disk is stuck.
        let (tx, rx) = std::sync::mpsc::sync_channel(1024);
        let queue = Arc::new(Queue::default());
        let mut output = RecordOutput::new(tx, Arc::clone(&queue), 100_000, CancellationToken::new());
        for _ in 0..30 {
            output.packet(&frame(10_000));
        }
        assert!(queue.failed.load(Ordering::Relaxed), "failed once 100 KB waited");
        assert!(
            queue.bytes.load(Ordering::Relaxed) <= 100_000,
            "nothing past the budget"
        );
        let messages: Vec<Msg> = rx.try_iter().collect();
        let packets = messages.iter().filter(|m| matches!(m, Msg::Packet(_))).count();
        assert_eq!(packets, 10, "the packets within the budget");
        assert!(
            messages.iter().any(|m| matches!(m, Msg::Fail(FailReason::SlowDisk))),
            "the writer is told why"
        );
    }

    #[test]
    fn ending_closes_the_channel_without_waiting_for_the_disk() {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let mut output = RecordOutput::new(tx, Arc::new(Queue::default()), 1 << 30, CancellationToken::new());
        output.packet(&frame(100));
        output.packet(&frame(100)); // the channel is full: the recording fails, nothing blocks
        output.end();
        assert_eq!(rx.iter().count(), 1, "what was queued, then the end");
    }
}
