//! The recorder: an output of the path that writes the stream to files (fragmented MP4
//! finalised as fast-start MP4, or FLV), never blocking the stream, losing at most the open
//! fragment to a crash. Which streams are recorded, and the catalogue of what was, belong
//! to `crate::recordings`, which implements the [`Ledger`] the recorder reports to.
//!
//! - `output.rs`: the output: packets to the writer thread, bounded in bytes.
//! - `writer.rs`: the writer thread: files, syncs, segments, finalising.
//! - `format.rs`, `flv.rs`, `mp4.rs`: the file formats; `finalize.rs`: a file's final form.
//! - `naming.rs`: file names from the template; `disk.rs`: free space, I/O errors.
//! - `ledger.rs`: what the recorder asks of and tells the catalogue.

mod disk;
mod finalize;
mod flv;
mod format;
mod ledger;
mod mp4;
mod naming;
mod output;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

pub use disk::free_bytes;
pub use finalize::{finalize, part_path, Finalized};
pub use ledger::{Assignment, FailReason, Finished, Format, Ledger, Settings};
pub use naming::safe_component;

use super::output::{Output, OutputKind};
use crate::hooks::HookSubject;
use crate::stream::StreamKey;
use output::{Queue, RecordOutput};
use writer::Writer;

/// Messages waiting for the writer at most (the bytes they hold are bounded separately).
const QUEUE_MESSAGES: usize = 16 * 1024;
/// The writer threads' nice value: when a core is short, live viewers come first (a frame
/// to fan out never waits behind twenty recordings' muxing), while a recording still gets a
/// share that keeps up with its stream.
const WRITER_NICE: i32 = 10;

/// The recorder kind of output: one recording per path at a time, when the [`Ledger`]
/// wants one.
pub struct RecordOutputs {
    ledger: Arc<dyn Ledger>,
    /// How long a recording waits for its publisher to come back.
    grace: Duration,
    /// Writer threads, so shutdown waits for them to finish their files.
    tasks: TaskTracker,
}

impl RecordOutputs {
    pub fn new(ledger: Arc<dyn Ledger>, grace: Duration, tasks: TaskTracker) -> RecordOutputs {
        RecordOutputs { ledger, grace, tasks }
    }
}

impl OutputKind for RecordOutputs {
    fn name(&self) -> &'static str {
        "record"
    }

    fn grace(&self) -> Duration {
        self.grace
    }

    fn start(&self, key: &StreamKey, source: Option<&HookSubject>) -> Option<Box<dyn Output>> {
        let assignment = self.ledger.wanted(key, source)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_MESSAGES);
        let queue = Arc::new(Queue::default());
        let output = RecordOutput::new(
            tx,
            Arc::clone(&queue),
            assignment.settings.max_queue_bytes,
            assignment.stop.clone(),
        );
        let writer = Writer::new(Arc::clone(&self.ledger), assignment, queue);
        // A thread of its own (not the blocking pool, which would keep its nice value for
        // other work), watched by a task so that shutdown waits for the file to be finished.
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let spawned = std::thread::Builder::new().name("recorder".into()).spawn(move || {
            let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), WRITER_NICE);
            writer.run(rx);
            let _ = done.send(());
        });
        if let Err(e) = spawned {
            tracing::error!(stream = %key, cause = %e, "recorder thread not started");
            self.ledger.released(key);
            return None;
        }
        self.tasks.spawn(async move {
            let _ = finished.await;
        });
        Some(Box::new(output))
    }
}
