//! HLS VOD of recordings, packaged on the fly from the MP4 (nothing is rewritten on disk):
//! one recording's playlist, a time range of a stream across recordings, and their
//! segments. Same request, same bytes: segments are cached a day, a recording's playlist too;
//! a time range's playlist briefly (a new recording may join it).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use estuary_muxer::vod::{plan_range, render_vod_playlist, RangeFile, VodTs};
use hyper::{Response, StatusCode};

use super::super::response::{bytes, text, Body};
use crate::recordings::catalogue::{Recording, RecordingFormat, RecordingState};
use crate::recordings::Recordings;

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const SEGMENT: &str = "video/mp2t";

/// The file and HLS plan of a finished MP4 recording.
fn plan(service: &Recordings, recording: &Recording) -> Result<(PathBuf, Arc<VodTs>), String> {
    let relative = recording.path.as_ref().ok_or("no file")?;
    let path = service.root(&recording.app).join(relative);
    let vod = service.vod().get(&path)?;
    Ok((path, vod))
}

/// `/vod/{id}.m3u8`.
pub async fn playlist(service: Recordings, recording: Recording, head: bool) -> Response<Body> {
    let id = recording.id;
    let started = recording.started_at;
    let made = tokio::task::spawn_blocking(move || {
        let (_, vod) = plan(&service, &recording)?;
        let mut entries: Vec<_> = vod
            .plan()
            .segments()
            .iter()
            .map(|s| s.entry(format!("{id}/{}.ts", s.number)))
            .collect();
        if let (Some(first), Some(started)) = (entries.first_mut(), started) {
            first.program_date_time_ms = Some(started.max(0) as u64 + vod.plan().start_ms());
        }
        Ok::<_, String>((!entries.is_empty()).then(|| render_vod_playlist(&entries)))
    })
    .await;
    match made {
        Ok(Ok(Some(body))) => bytes(body, PLAYLIST, "public, max-age=86400", head),
        Ok(Ok(None)) => text(StatusCode::NOT_FOUND, "nothing to play\n"),
        Ok(Err(why)) => {
            tracing::debug!(recording = id, why, "no hls for this recording");
            text(
                StatusCode::NOT_FOUND,
                "this recording has no hls (its codecs need the mp4 itself)\n",
            )
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
    }
}

/// `/vod/{id}/{n}.ts` and `/vod/{id}/{n}-{offset}.ts` (a time range's).
pub async fn segment(
    service: Recordings,
    recording: Recording,
    n: usize,
    offset_ms: u64,
    head: bool,
) -> Response<Body> {
    let made = tokio::task::spawn_blocking(move || {
        let (path, vod) = plan(&service, &recording)?;
        crate::recordings::vod::segment(&vod, &path, n, offset_ms)
    })
    .await;
    match made {
        Ok(Ok(body)) => bytes(body, SEGMENT, "public, max-age=86400, immutable", head),
        Ok(Err(why)) => {
            tracing::debug!(why, "hls segment not made");
            text(StatusCode::NOT_FOUND, "segment not found\n")
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
    }
}

/// `/vod/{app}/{stream}.m3u8?start=…&end=…`: what was recorded of a stream in a time range,
/// across recordings, as one playlist, with `EXT-X-DISCONTINUITY` where files do not join.
pub async fn range(
    service: Recordings,
    app: String,
    stream: String,
    from_ms: i64,
    to_ms: i64,
    head: bool,
) -> Response<Body> {
    let made = tokio::task::spawn_blocking(move || -> Result<Option<Bytes>, String> {
        let recordings = service
            .catalogue()
            .in_range(&app, &stream, from_ms, to_ms)
            .map_err(|e| e.to_string())?;
        let mut files = Vec::new();
        for r in recordings.iter().filter(|r| {
            matches!(r.state, RecordingState::Completed | RecordingState::Interrupted)
                && r.format == RecordingFormat::Mp4
                && r.started_at.is_some()
        }) {
            // A file that cannot be played as HLS is left out of the range.
            if let Ok((_, vod)) = plan(&service, r) {
                files.push((r.id, r.started_at.unwrap_or_default().max(0) as u64, vod));
            }
        }
        let range_files: Vec<RangeFile<'_>> = files
            .iter()
            .map(|(_, start_ms, vod)| RangeFile {
                start_ms: *start_ms,
                plan: vod.plan(),
            })
            .collect();
        let segments = plan_range(&range_files, from_ms.max(0) as u64, to_ms.max(0) as u64);
        let entries: Vec<_> = segments
            .iter()
            .map(|s| {
                let id = files[s.file].0;
                s.entry(format!("{id}/{}-{}.ts", s.segment, s.timeline_offset_ms))
            })
            .collect();
        Ok((!entries.is_empty()).then(|| render_vod_playlist(&entries)))
    })
    .await;
    match made {
        // Segment URIs are relative to /vod/{app}/: make them absolute.
        Ok(Ok(Some(body))) => bytes(absolute(&body), PLAYLIST, "public, max-age=10", head),
        Ok(Ok(None)) => text(StatusCode::NOT_FOUND, "nothing recorded in that range\n"),
        Ok(Err(why)) => {
            tracing::warn!(why, "time-range playlist not made");
            text(StatusCode::INTERNAL_SERVER_ERROR, "catalogue error\n")
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
    }
}

/// `body` with every segment URI made absolute (`/vod/…`).
fn absolute(body: &[u8]) -> Bytes {
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.lines() {
        if !line.is_empty() && !line.starts_with('#') {
            out.push_str("/vod/");
        }
        out.push_str(line);
        out.push('\n');
    }
    Bytes::from(out)
}
