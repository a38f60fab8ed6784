//! Playback of recordings (`/vod/…`): the file itself with `Range` support at a stable URL,
//! its poster, and HLS VOD packaged on the fly from the MP4 without rewriting it.
//!
//! | URL | what |
//! |---|---|
//! | `/vod/{id}.mp4`, `/vod/{id}.flv` | the recording's file (`Range`, `HEAD`) |
//! | `/vod/{id}.jpg` | its poster |
//! | `/vod/{id}.m3u8`, `/vod/{id}/{n}.ts` | HLS VOD of an H.264/AAC MP4 recording |
//! | `/vod/{app}/{stream}.m3u8?start=…&end=…` | a time range across recordings (Unix ms or RFC 3339) |
//!
//! Only finished recordings (`completed`, `interrupted`) are served; others answer 404.

mod files;
mod hls;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::response::{text, Body};
use super::urls::{query_param, time_ms};
use crate::context::Context;
use crate::recordings::catalogue::{Recording, RecordingState};
use crate::recordings::Recordings;

/// Whether `path` is a VOD request.
pub fn matches(path: &str) -> bool {
    path.starts_with("/vod/")
}

pub async fn serve(ctx: &Arc<Context>, req: &Request<Incoming>) -> Response<Body> {
    let Some(service) = ctx.recordings.clone() else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let head = req.method() == Method::HEAD;
    let Some(rest) = req.uri().path().strip_prefix("/vod/") else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    match rest.split_once('/') {
        // /vod/{id}.{ext}
        None => {
            let Some((id, ext)) = rest.rsplit_once('.') else {
                return text(StatusCode::NOT_FOUND, "not found\n");
            };
            let Some(recording) = finished(&service, id).await else {
                return text(StatusCode::NOT_FOUND, "recording not found\n");
            };
            file(&service, recording, ext, req, head).await
        }
        Some((first, file_name)) => {
            // /vod/{id}/{n}.ts or /vod/{id}/{n}-{offset}.ts
            if let Some(segment) = file_name.strip_suffix(".ts") {
                let (n, offset) = segment.split_once('-').unwrap_or((segment, "0"));
                let (Ok(n), Ok(offset)) = (n.parse::<usize>(), offset.parse::<u64>()) else {
                    return text(StatusCode::NOT_FOUND, "not found\n");
                };
                let Some(recording) = finished(&service, first).await else {
                    return text(StatusCode::NOT_FOUND, "recording not found\n");
                };
                return hls::segment(service, recording, n, offset, head).await;
            }
            // /vod/{app}/{stream}.m3u8?start=…&end=…
            let Some(stream) = file_name.strip_suffix(".m3u8") else {
                return text(StatusCode::NOT_FOUND, "not found\n");
            };
            let query = req.uri().query();
            let time = |name: &str| query_param(query, name).and_then(|v| time_ms(&v));
            let (Some(from), Some(to)) = (time("start"), time("end")) else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "a time range needs ?start=…&end=… (Unix ms or RFC 3339)\n",
                );
            };
            if to <= from {
                return text(StatusCode::BAD_REQUEST, "end must be after start\n");
            }
            hls::range(service, first.to_string(), stream.to_string(), from, to, head).await
        }
    }
}

/// The file, poster or playlist of one recording.
async fn file(
    service: &Recordings,
    recording: Recording,
    ext: &str,
    req: &Request<Incoming>,
    head: bool,
) -> Response<Body> {
    let root = service.root(&recording.app);
    match ext {
        "mp4" | "flv" if recording.format.as_str() == ext => {
            let Some(relative) = &recording.path else {
                return text(StatusCode::NOT_FOUND, "not found\n");
            };
            let content_type = if ext == "mp4" { "video/mp4" } else { "video/x-flv" };
            files::serve(&root.join(relative), content_type, req.headers(), head).await
        }
        "jpg" => match &recording.poster_path {
            Some(relative) => files::serve(&root.join(relative), "image/jpeg", req.headers(), head).await,
            None => text(StatusCode::NOT_FOUND, "no poster\n"),
        },
        "m3u8" if recording.format.as_str() == "mp4" => hls::playlist(service.clone(), recording, head).await,
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Recording `id` if it is finished.
async fn finished(service: &Recordings, id: &str) -> Option<Recording> {
    let id = id.parse::<i64>().ok()?;
    let service = service.clone();
    let recording = tokio::task::spawn_blocking(move || service.catalogue().get(id))
        .await
        .ok()?
        .ok()?;
    matches!(recording.state, RecordingState::Completed | RecordingState::Interrupted).then_some(recording)
}
