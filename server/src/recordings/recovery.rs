//! At start-up, before anything is recorded: what a crash, `kill -9` or power cut left
//! behind is made playable and the catalogue is brought in line with the files on disk.
//!
//! - A recording that was being written: its `.part` is finalised up to its last whole
//!   fragment (the torn tail is dropped) and it becomes `interrupted`; the hooks hear
//!   `on_dvr` and the log says so. If its final file is there already (the crash came just
//!   after finalising), it is `completed`; if there is no file at all, `failed`.
//! - A recording that was waiting for its stream: `failed` (the request died with the
//!   process; a schedule whose window is still open asks again).
//! - A finished recording whose file is gone from disk: `failed`, "file missing".

use tracing::{info, warn};

use super::catalogue::{Recording, RecordingFilter, RecordingState};
use super::service::{now_ms, Recordings};
use crate::outputs::record::{finalize, part_path, Format};
use crate::recordings::catalogue::RecordingFormat;

/// What recovery found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub interrupted: usize,
    pub completed: usize,
    pub failed: usize,
}

pub fn recover(service: &Recordings) -> Recovered {
    let mut found = Recovered::default();
    let catalogue = service.catalogue();
    match catalogue.open_recordings() {
        Ok(open) => {
            for recording in open {
                recover_open(service, &recording, &mut found);
            }
        }
        Err(e) => warn!(cause = %e, "recovery: open recordings not read"),
    }
    for recording in all_in(service, RecordingState::Pending) {
        let error = "the server restarted before the stream came";
        if catalogue
            .update_state(recording.id, RecordingState::Failed, Some(error), Some(now_ms()))
            .is_ok()
        {
            found.failed += 1;
        }
    }
    for recording in all_in(service, RecordingState::Completed) {
        let present = recording
            .path
            .as_ref()
            .is_some_and(|p| service.root(&recording.app).join(p).exists());
        if !present {
            warn!(recording = recording.id, path = ?recording.path, "recording's file is missing from disk");
            if catalogue
                .update_state(recording.id, RecordingState::Failed, Some("file missing"), None)
                .is_ok()
            {
                found.failed += 1;
            }
        }
    }
    if found != Recovered::default() {
        info!(?found, "recordings recovered");
    }
    found
}

fn recover_open(service: &Recordings, recording: &Recording, found: &mut Recovered) {
    let catalogue = service.catalogue();
    let Some(relative) = &recording.path else {
        let error = "the server stopped before the file was opened";
        if catalogue
            .update_state(recording.id, RecordingState::Failed, Some(error), Some(now_ms()))
            .is_ok()
        {
            found.failed += 1;
        }
        return;
    };
    let root = service.root(&recording.app);
    let path = root.join(relative);
    let part = part_path(&path);
    let format = match recording.format {
        RecordingFormat::Mp4 => Format::Mp4,
        RecordingFormat::Flv => Format::Flv,
    };
    let started = recording.started_at.unwrap_or(recording.created_at);
    if part.exists() {
        match finalize(format, &part, &path) {
            Ok(finalized) => {
                let duration_ms = finalized.duration_ms as i64;
                let _ = catalogue.set_progress(recording.id, duration_ms, finalized.size_bytes as i64);
                let error = "the server stopped while recording; kept up to its last whole fragment";
                match catalogue.update_state(
                    recording.id,
                    RecordingState::Interrupted,
                    Some(error),
                    Some(started + duration_ms),
                ) {
                    Ok(updated) => {
                        warn!(recording = recording.id, file = %path.display(), duration_ms, "interrupted recording recovered");
                        service.notify_dvr(&updated, Some(error), None);
                        found.interrupted += 1;
                    }
                    Err(e) => warn!(cause = %e, "catalogue not updated"),
                }
            }
            Err(e) => {
                let error = format!("interrupted and not recoverable: {e}");
                warn!(recording = recording.id, file = %part.display(), cause = %e, "interrupted recording not recoverable");
                let _ = catalogue.update_state(recording.id, RecordingState::Failed, Some(&error), Some(now_ms()));
                found.failed += 1;
            }
        }
    } else if path.exists() {
        let size = std::fs::metadata(&path).map_or(0, |m| m.len() as i64);
        let _ = catalogue.set_progress(recording.id, recording.duration_ms, size);
        if let Ok(updated) = catalogue.update_state(
            recording.id,
            RecordingState::Completed,
            None,
            Some(started + recording.duration_ms),
        ) {
            service.notify_dvr(&updated, None, None);
            found.completed += 1;
        }
    } else {
        let _ = catalogue.update_state(
            recording.id,
            RecordingState::Failed,
            Some("file missing"),
            Some(now_ms()),
        );
        found.failed += 1;
    }
}

/// Every recording in `state`, page by page.
fn all_in(service: &Recordings, state: RecordingState) -> Vec<Recording> {
    let mut out = Vec::new();
    loop {
        let filter = RecordingFilter {
            state: Some(state),
            limit: Some(1000),
            offset: Some(out.len() as u64),
            ..RecordingFilter::default()
        };
        match service.catalogue().list(&filter) {
            Ok(page) if !page.items.is_empty() => {
                let done = page.items.len() < 1000;
                out.extend(page.items);
                if done {
                    return out;
                }
            }
            Ok(_) => return out,
            Err(e) => {
                warn!(cause = %e, "recovery: recordings not listed");
                return out;
            }
        }
    }
}
