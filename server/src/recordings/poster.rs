//! Posters: a JPEG of a frame near the start of each finished recording, for a platform's
//! video list. Decoding video is ffmpeg's job, not a streaming server's: the poster is made
//! by the `ffmpeg` on PATH when there is one (`record.poster`), and skipped, with a log
//! line, when there is none. It never holds anything up but the recorder's own thread.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::catalogue::{Catalogue, Recording};

/// Longest an ffmpeg run may take.
const LIMIT: Duration = Duration::from_secs(30);

/// Makes the poster of `recording` (a finished file under `root`) and records it in the
/// catalogue.
pub fn make(catalogue: &Catalogue, root: &Path, recording: &Recording) {
    let Some(relative) = &recording.path else { return };
    let file = root.join(relative);
    let poster_relative = Path::new(relative).with_extension("jpg");
    let poster = root.join(&poster_relative);
    // A frame a second in (or halfway through a shorter file) is rarely black.
    let at_ms = (recording.duration_ms / 2).clamp(0, 1000);
    match run_ffmpeg(&file, &poster, at_ms) {
        Ok(()) => {
            if let Err(e) = catalogue.set_poster(recording.id, &poster_relative.to_string_lossy()) {
                warn!(cause = %e, "catalogue not updated");
            }
        }
        Err(e) => debug!(recording = recording.id, cause = %e, "no poster"),
    }
}

fn run_ffmpeg(file: &Path, poster: &Path, at_ms: i64) -> Result<(), String> {
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y", "-ss"])
        .arg(format!("{}.{:03}", at_ms / 1000, at_ms % 1000))
        .arg("-i")
        .arg(file)
        .args(["-frames:v", "1", "-vf", "scale='min(640,iw)':-2", "-q:v", "4"])
        .arg(poster)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() && poster.exists() => return Ok(()),
            Ok(Some(status)) => return Err(format!("ffmpeg exited with {status}")),
            Ok(None) if started.elapsed() > LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("ffmpeg took too long".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
}
