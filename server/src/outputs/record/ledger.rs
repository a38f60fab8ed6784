//! What the recorder asks of and tells the catalogue of recordings. `crate::recordings`
//! implements it; the recorder knows nothing of SQLite, the API or schedules.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::hooks::HookSubject;
use crate::stream::StreamKey;

/// A recording's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Fragmented MP4 while recording, a fast-start MP4 when it ends.
    Mp4,
    Flv,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
            Format::Flv => "flv",
        }
    }
}

/// How one recording is written.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `record.root`: every file is under it.
    pub root: PathBuf,
    /// `record.path_template`.
    pub template: String,
    /// The zone of `{date}` and `{time}` in file names (the server's).
    pub zone: chrono_tz::Tz,
    pub format: Format,
    /// `segment` plans: a new file every this long, cut at a keyframe; `None` for one file.
    pub segment: Option<Duration>,
    /// `record.fragment_ms`: a crash loses at most this much.
    pub fragment: Duration,
    /// `record.min_free_bytes`: no new file below this much free space.
    pub min_free_bytes: u64,
    /// `record.max_queue_bytes`: packets waiting for a slow disk, past which the recording
    /// fails rather than grows.
    pub max_queue_bytes: u64,
}

/// A recording the catalogue wants written now.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The catalogue's id of the recording's (first) file, when it has one already (asked
    /// for by hand or by a schedule); else the writer thread asks for one
    /// ([`Ledger::first_file`]), so no database write happens on the stream's task.
    pub id: Option<i64>,
    pub key: StreamKey,
    pub settings: Settings,
    /// Cancelled to stop the recording (by hand, or its schedule's window closed).
    pub stop: CancellationToken,
}

/// A file the recorder finished.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Relative to the root.
    pub path: PathBuf,
    pub duration_ms: u64,
    pub size_bytes: u64,
}

/// Why a recording failed; also the `reason` label of its metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The disk did not keep up: more than `record.max_queue_bytes` waited to be written.
    SlowDisk,
    /// Writing failed: no space left on the device.
    DiskFull,
    /// Free space under `record.min_free_bytes`.
    DiskFloor,
    /// Another I/O error (permissions, a vanished directory, …).
    Io,
    /// The stream's codecs cannot go in this format.
    Codec,
    /// The stream ended before anything recordable came (no keyframe).
    Empty,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::SlowDisk => "slow_disk",
            FailReason::DiskFull => "disk_full",
            FailReason::DiskFloor => "disk_floor",
            FailReason::Io => "io",
            FailReason::Codec => "codec",
            FailReason::Empty => "empty",
        }
    }
}

/// The catalogue, as the recorder sees it. Called from the recorder's writer thread (never
/// from an async task): calls may block briefly on the database.
pub trait Ledger: Send + Sync {
    /// Whether `key`, whose source just started, is to be recorded, and as what; `source` is
    /// who publishes it (the hooks name it in `on_dvr`). Called on the stream's task: it must
    /// not wait on the database.
    fn wanted(&self, key: &StreamKey, source: Option<&HookSubject>) -> Option<Assignment>;

    /// The id of the first file of `key`'s recording, for an assignment that had none.
    fn first_file(&self, key: &StreamKey) -> Option<i64>;

    /// Whether another recording has the file `relative` (to the recording's root).
    fn is_taken(&self, relative: &Path) -> bool;

    /// Recording `id` writes its file at `path` (relative to the root), from now.
    fn opened(&self, id: i64, path: &Path);

    /// A `segment` plan cut its file: the id of the recording that continues it.
    fn next_segment(&self, previous: i64) -> Option<i64>;

    /// How far recording `id` got (called about once per fragment).
    fn progress(&self, id: i64, duration_ms: u64, size_bytes: u64);

    /// Recording `id` ended and its file is final.
    fn completed(&self, id: i64, file: &Finished);

    /// Recording `id` failed; `file` is what it left that plays, if anything.
    fn failed(&self, id: i64, reason: FailReason, error: &str, file: Option<&Finished>);

    /// The recorder of `key` is done (the next source may start another).
    fn released(&self, key: &StreamKey);
}
