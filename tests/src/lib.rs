//! Harness for Estuary's end-to-end tests: starts the real `estuary` binary on 127.0.0.1 and
//! drives it with real clients (ffmpeg, ffprobe, rtmpdump, GStreamer, hls.js in Chromium) and
//! with in-process RTMP / HTTP-FLV viewers that record every tag.
//!
//! Every wait is bounded, every child process is killed on drop, and a failing test prints the
//! server's log.
#![forbid(unsafe_code)]

pub mod browser;
pub mod flv;
pub mod hevc;
pub mod hls;
pub mod http;
pub mod media;
pub mod modern_ffmpeg;
pub mod nginx_rtmp;
pub mod obs;
pub mod paths;
pub mod proc;
pub mod publisher;
pub mod server;
pub mod static_http;
pub mod viewer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

pub use flv::{Tag, TagKind};
pub use media::Clip;
pub use proc::ChildGuard;
pub use server::Server;
pub use viewer::{Viewer, ViewerState};

/// One test's scratch directory (`target/e2e/<name>-<pid>-<n>`) for logs and files.
pub struct TestCtx {
    pub name: String,
    pub dir: PathBuf,
    logs: AtomicU32,
}

impl TestCtx {
    pub fn new(name: &str) -> TestCtx {
        TestCtx {
            name: name.to_string(),
            dir: paths::scratch_dir(name),
            logs: AtomicU32::new(0),
        }
    }

    /// A fresh log file path in the scratch dir: `<what>-<n>.log`.
    pub fn next_log(&self, what: &str) -> PathBuf {
        let n = self.logs.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{what}-{n}.log"))
    }
}

/// The bound on every wait for something that should take a second or two.
pub const LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Starts an ffmpeg publisher of `clip` on `{app}/{stream}` and an HTTP-FLV viewer, and waits
/// until that viewer has received a keyframe (so the stream is live). The viewer connects after
/// the publisher had a moment to start, and reconnects if the server closes it early, so this
/// does not depend on viewers being allowed to wait for a publisher.
pub fn publish_and_wait_live(
    ctx: &TestCtx,
    server: &Server,
    clip: Clip,
    app: &str,
    stream: &str,
) -> (ChildGuard, Viewer) {
    let publisher = media::publish_ffmpeg(ctx, clip, &server.rtmp_url(app, stream));
    let viewer = wait_live(server, app, stream);
    (publisher, viewer)
}

/// Opens HTTP-FLV viewers on `{app}/{stream}` until one receives a keyframe (within [`LIMIT`]).
pub fn wait_live(server: &Server, app: &str, stream: &str) -> Viewer {
    let deadline = std::time::Instant::now() + LIMIT;
    std::thread::sleep(std::time::Duration::from_millis(500));
    loop {
        let viewer = Viewer::http_flv(&server.flv_url(app, stream));
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match viewer.wait_keyframe(left) {
            Ok(()) => return viewer,
            Err(e) if viewer.ended().is_some() && std::time::Instant::now() < deadline => {
                drop(e);
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            Err(e) => panic!("stream {app}/{stream} did not go live: {e}"),
        }
    }
}
