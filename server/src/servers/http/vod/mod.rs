//! Playback of recordings (`/vod/…`): the file itself with `Range` support at a stable URL,
//! its poster, and HLS VOD packaged on the fly from the MP4 without rewriting it.
//!
//! | URL | what |
//! |---|---|
//! | `/vod/{id}.mp4`, `/vod/{id}.flv` | the recording's file (`Range`, `HEAD`) |
//! | `/vod/{id}.jpg` | its poster |
//!
//! Only finished recordings (`completed`, `interrupted`) are served; others answer 404.

mod files;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::response::{text, Body};
use crate::context::Context;
use crate::recordings::catalogue::{Recording, RecordingState};

/// Whether `path` is a VOD request.
pub fn matches(path: &str) -> bool {
    path.starts_with("/vod/")
}

pub async fn serve(ctx: &Arc<Context>, req: &Request<Incoming>) -> Response<Body> {
    let Some(service) = ctx.recordings.clone() else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let head = req.method() == Method::HEAD;
    let path = req.uri().path();
    let Some((id, ext)) = path.strip_prefix("/vod/").and_then(|f| f.rsplit_once('.')) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let Ok(id) = id.parse::<i64>() else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let lookup = service.clone();
    let recording = match tokio::task::spawn_blocking(move || lookup.catalogue().get(id)).await {
        Ok(Ok(r)) if finished(&r) => r,
        _ => return text(StatusCode::NOT_FOUND, "recording not found\n"),
    };
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
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn finished(r: &Recording) -> bool {
    matches!(r.state, RecordingState::Completed | RecordingState::Interrupted)
}
