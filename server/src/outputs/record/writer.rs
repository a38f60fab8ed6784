//! The recorder's writer thread: every disk write of one recording happens here, never in an
//! async task. It turns packets into files (`format.rs`), syncs each whole fragment to disk
//! (so a crash or power cut loses at most the open one), cuts `segment` plans at keyframes,
//! starts a new file when the publisher comes back (`session`: one file per publish) or
//! changes codecs, and finalises each file when it ends (`finalize.rs`).
//!
//! A file is written as `NAME.EXT.part` and becomes `NAME.EXT` only when it is final, so the
//! catalogue, the recovery at start-up and a reader of the directory can tell the two apart.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use estuary_protocol::{MediaKind, Packet};
use tracing::{info, warn};

use super::disk;
use super::finalize::{finalize, part_path};
use super::flv::FlvMuxer;
use super::format::FileMuxer;
use super::ledger::{Assignment, FailReason, Finished, Format, Ledger};
use super::mp4::Mp4Muxer;
use super::naming::{render, unique, NameFields};
use super::output::{Msg, Queue};

/// One file being written.
struct OpenFile {
    id: i64,
    /// Final path, relative to the root.
    relative: PathBuf,
    part: PathBuf,
    file: File,
    muxer: Box<dyn FileMuxer>,
    bytes: u64,
    /// Stream time of the file's first packet.
    first_dts: Option<u64>,
}

/// The writer of one recording (and the files that continue it).
pub struct Writer {
    ledger: Arc<dyn Ledger>,
    assignment: Assignment,
    queue: Arc<Queue>,
    /// No file has been opened yet.
    first: bool,
    /// The id of the last file, which a next file continues (0 before the first).
    last_id: i64,
    file: Option<OpenFile>,
    /// The latest metadata and sequence headers, which every new file starts with.
    headers: Vec<Arc<Packet>>,
    failed: bool,
}

type Failure = (FailReason, String);

impl Writer {
    pub fn new(ledger: Arc<dyn Ledger>, assignment: Assignment, queue: Arc<Queue>) -> Writer {
        Writer {
            ledger,
            first: true,
            last_id: assignment.id.unwrap_or(0),
            assignment,
            queue,
            file: None,
            headers: Vec::new(),
            failed: false,
        }
    }

    /// Writes what `rx` brings until it closes, then finishes the last file.
    pub fn run(mut self, rx: Receiver<Msg>) {
        let key = self.assignment.key.clone();
        info!(stream = %key, recording = ?self.assignment.id, "recording started");
        for msg in rx.iter() {
            match msg {
                Msg::Packet(packet) => {
                    self.queue
                        .bytes
                        .fetch_sub(packet.payload.len() as u64, Ordering::Relaxed);
                    if !self.failed {
                        if let Err((reason, error)) = self.packet(&packet) {
                            self.fail(reason, &error);
                        }
                    }
                }
                Msg::Gap => {
                    if let Some(open) = &mut self.file {
                        open.muxer.gap();
                    }
                }
                Msg::SourceGone => {
                    if let Err((reason, error)) = self.close() {
                        self.fail(reason, &error);
                    }
                }
                Msg::Fail(reason) => self.fail(reason, "the disk did not keep up with the stream"),
            }
        }
        if let Err((reason, error)) = self.close() {
            self.fail(reason, &error);
        }
        info!(stream = %key, "recording ended");
        self.ledger.released(&key);
    }

    fn packet(&mut self, packet: &Arc<Packet>) -> Result<(), Failure> {
        if packet.seq_header || packet.kind == MediaKind::Script {
            self.headers.retain(|h| h.kind != packet.kind);
            self.headers.push(Arc::clone(packet));
        }
        if self.segment_due(packet) {
            self.close()?;
        }
        if self.file.is_none() {
            if packet.seq_header || packet.kind == MediaKind::Script {
                return Ok(()); // kept in `headers`; a file starts with media
            }
            if !self.open()? {
                return Ok(());
            }
        }
        let restart = self.push(packet)?;
        if restart {
            // The codecs changed: this file ends, the packet starts the next.
            self.close()?;
            if self.open()? {
                self.push(packet)?;
            }
        }
        Ok(())
    }

    /// Whether a `segment` plan cuts its file before `packet` (a video keyframe, or any
    /// packet of a stream without video, once the segment's time is up).
    fn segment_due(&self, packet: &Packet) -> bool {
        let (Some(segment), Some(open)) = (self.assignment.settings.segment, &self.file) else {
            return false;
        };
        let has_video = self.headers.iter().any(|h| h.kind == MediaKind::Video);
        let cut_here = if has_video {
            packet.is_video() && packet.keyframe && !packet.seq_header
        } else {
            packet.is_audio() && !packet.seq_header
        };
        cut_here
            && open
                .first_dts
                .is_some_and(|first| packet.dts.saturating_sub(first) >= segment.as_millis() as u64)
    }

    /// Muxes and writes one packet; true if the file must restart (new codecs).
    fn push(&mut self, packet: &Packet) -> Result<bool, Failure> {
        let Some(open) = &mut self.file else { return Ok(false) };
        let muxed = open.muxer.push(packet).map_err(|e| (FailReason::Codec, e))?;
        if muxed.restart {
            return Ok(true);
        }
        if !packet.seq_header && packet.kind != MediaKind::Script {
            open.first_dts.get_or_insert(packet.dts);
        }
        for bytes in &muxed.bytes {
            write(open, bytes)?;
        }
        if muxed.durable {
            open.file.sync_data().map_err(|e| io_failure(&e, &open.part))?;
            crate::metrics::recording_fragment();
            self.ledger.progress(open.id, open.muxer.duration_ms(), open.bytes);
            self.above_floor("the recording stopped")?;
        }
        Ok(false)
    }

    /// Fails with `DiskFloor` when the disk holding the root has less free space than
    /// `record.min_free_bytes`; `what` says what that does to the recording.
    fn above_floor(&self, what: &str) -> Result<(), Failure> {
        let settings = &self.assignment.settings;
        match disk::free_bytes(&settings.root) {
            Some(free) if free < settings.min_free_bytes => Err((
                FailReason::DiskFloor,
                format!(
                    "{free} bytes free under {}, less than record.min_free_bytes ({}); {what}",
                    settings.root.display(),
                    settings.min_free_bytes
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Opens the next file. False when the catalogue has no recording to continue with (it
    /// was stopped meanwhile).
    fn open(&mut self) -> Result<bool, Failure> {
        let next = if std::mem::take(&mut self.first) {
            self.assignment
                .id
                .or_else(|| self.ledger.first_file(&self.assignment.key))
        } else {
            self.ledger.next_segment(self.last_id)
        };
        let Some(id) = next else { return Ok(false) };
        self.last_id = id;
        self.above_floor("recording refused")?;
        let settings = &self.assignment.settings;
        let key = &self.assignment.key;
        let now = chrono::Utc::now().with_timezone(&settings.zone);
        let (date, time) = (now.format("%Y-%m-%d").to_string(), now.format("%H%M%S").to_string());
        let fields = NameFields {
            app: &key.app,
            stream: &key.name,
            date: &date,
            time: &time,
            timestamp_ms: now.timestamp_millis().max(0) as u64,
        };
        let base = render(&settings.template, &fields).map_err(|e| (FailReason::Io, e.to_string()))?;
        let ledger = &self.ledger;
        let relative = unique(&settings.root, &base, settings.format.extension(), |path| {
            path.exists()
                || part_path(path).exists()
                || path.strip_prefix(&settings.root).is_ok_and(|r| ledger.is_taken(r))
        })
        .map_err(|e| (FailReason::Io, e.to_string()))?;
        let path = settings.root.join(&relative);
        let part = part_path(&path);
        if let Some(dir) = part.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_failure(&e, dir))?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(|e| io_failure(&e, &part))?;
        self.ledger.opened(id, &relative);
        // A new file starts with the stream's metadata and sequence headers.
        let mut muxer: Box<dyn FileMuxer> = match settings.format {
            Format::Flv => Box::new(FlvMuxer::new(settings.fragment)),
            Format::Mp4 => Box::new(Mp4Muxer::new(settings.fragment)),
        };
        let mut first = Vec::new();
        for header in &self.headers {
            first.extend(muxer.push(header).map_err(|e| (FailReason::Codec, e))?.bytes);
        }
        let mut open = OpenFile {
            id,
            relative,
            part,
            file,
            muxer,
            bytes: 0,
            first_dts: None,
        };
        for bytes in &first {
            write(&mut open, bytes)?;
        }
        info!(stream = %key, recording = id, file = %open.relative.display(), "recording file opened");
        self.file = Some(open);
        Ok(true)
    }

    /// Finishes the open file, if any: its last bytes, a sync, the final form.
    fn close(&mut self) -> Result<(), Failure> {
        let Some(mut open) = self.file.take() else {
            return Ok(());
        };
        for bytes in open.muxer.finish() {
            write(&mut open, &bytes)?;
        }
        open.file.sync_data().map_err(|e| io_failure(&e, &open.part))?;
        let duration_ms = open.muxer.duration_ms();
        let (id, part, relative) = (open.id, open.part.clone(), open.relative.clone());
        drop(open);
        if duration_ms == 0 {
            let _ = std::fs::remove_file(&part);
            self.ledger.failed(
                id,
                FailReason::Empty,
                "the stream sent nothing that could be recorded",
                None,
            );
            return Ok(());
        }
        let path = self.assignment.settings.root.join(&relative);
        let finalized = finalize(self.assignment.settings.format, &part, &path).map_err(|e| io_failure(&e, &path))?;
        let finished = Finished {
            path: relative,
            duration_ms: finalized.duration_ms,
            size_bytes: finalized.size_bytes,
        };
        let size_bytes = finished.size_bytes;
        info!(recording = id, file = %finished.path.display(), duration_ms, size_bytes, "recording file complete");
        self.ledger.completed(id, &finished);
        Ok(())
    }

    /// Fails the recording: what was written is kept and finalised if it can be; nothing
    /// more is written.
    fn fail(&mut self, reason: FailReason, error: &str) {
        if self.failed {
            return;
        }
        self.failed = true;
        self.queue.failed.store(true, Ordering::Relaxed);
        crate::metrics::recording_failed(reason.as_str());
        warn!(stream = %self.assignment.key, recording = self.last_id, reason = reason.as_str(), error, "recording failed");
        let id = self.file.as_ref().map_or(self.last_id, |f| f.id);
        let kept = self.keep_what_was_written();
        self.ledger.failed(id, reason, error, kept.as_ref());
    }

    /// After a failure: the open file's final form if it can be made, else its `.part`.
    fn keep_what_was_written(&mut self) -> Option<Finished> {
        let open = self.file.take()?;
        let _ = open.file.sync_data();
        let duration_ms = open.muxer.duration_ms();
        let (part, relative) = (open.part.clone(), open.relative.clone());
        drop(open);
        let path = self.assignment.settings.root.join(&relative);
        match finalize(self.assignment.settings.format, &part, &path) {
            Ok(finalized) => Some(Finished {
                path: relative,
                duration_ms: finalized.duration_ms,
                size_bytes: finalized.size_bytes,
            }),
            Err(_) => {
                let size_bytes = std::fs::metadata(&part).map_or(0, |m| m.len());
                let relative = part.strip_prefix(&self.assignment.settings.root).ok()?.to_path_buf();
                Some(Finished {
                    path: relative,
                    duration_ms,
                    size_bytes,
                })
            }
        }
    }
}

fn write(open: &mut OpenFile, bytes: &[u8]) -> Result<(), Failure> {
    open.file.write_all(bytes).map_err(|e| io_failure(&e, &open.part))?;
    open.bytes += bytes.len() as u64;
    crate::metrics::recording_bytes(bytes.len() as u64);
    Ok(())
}

fn io_failure(error: &std::io::Error, path: &std::path::Path) -> Failure {
    (disk::reason(error), format!("{}: {error}", path.display()))
}
