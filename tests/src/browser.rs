//! hls.js in headless Chromium: runs `tests/browser/play-hls.mjs URL SECONDS` and parses the
//! one JSON line it prints.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::paths::workspace_root;
use crate::proc::run_with_timeout;

/// What the page saw while playing.
#[derive(Clone, Debug)]
pub struct HlsPlayback {
    /// `video.currentTime` at the end, in seconds.
    pub current_time: f64,
    /// hls.js errors with `fatal: true`, as text.
    pub fatal_errors: Vec<String>,
    /// Every hls.js error and page error, as text.
    pub errors: Vec<String>,
    /// The whole JSON line.
    pub raw: Value,
}

impl HlsPlayback {
    /// Panics unless hls.js played at least `min_secs` with no fatal error; `what` names it.
    pub fn assert_played(&self, what: &str, min_secs: f64) {
        assert!(
            self.fatal_errors.is_empty(),
            "{what}: fatal errors: {:?}\n{}",
            self.fatal_errors,
            self.raw
        );
        assert!(
            self.current_time >= min_secs,
            "{what}: hls.js played only {} s: {}",
            self.current_time,
            self.raw
        );
    }
}

/// The folder of the browser harness.
pub fn browser_dir() -> PathBuf {
    workspace_root().join("tests/browser")
}

/// Plays `url` with hls.js for `seconds` seconds of wall time.
pub fn play_hls(url: &str, seconds: u32) -> Result<HlsPlayback, String> {
    run_player(url, seconds, None)
}

/// Plays `url` with hls.js in its low-latency mode (LL-HLS) for `seconds` seconds; the JSON
/// also has `stalls`, `latencies` and `events.partLoaded`.
pub fn play_hls_low_latency(url: &str, seconds: u32) -> Result<HlsPlayback, String> {
    run_player(url, seconds, Some("low-latency"))
}

fn run_player(url: &str, seconds: u32, mode: Option<&str>) -> Result<HlsPlayback, String> {
    let dir = browser_dir();
    if !dir.join("node_modules/hls.js").exists() {
        return Err(format!(
            "{}/node_modules is missing: run scripts/install-test-deps.sh",
            dir.display()
        ));
    }
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir)
        .arg("play-hls.mjs")
        .arg(url)
        .arg(seconds.to_string())
        .args(mode);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(u64::from(seconds) + 90));
    let line = out
        .stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| {
            format!(
                "play-hls.mjs printed no JSON ({:?}); stdout:\n{}\nstderr:\n{}",
                out.status, out.stdout, out.stderr
            )
        })?;
    let raw: Value =
        serde_json::from_str(line).map_err(|e| format!("play-hls.mjs JSON ({e}): {line}\nstderr:\n{}", out.stderr))?;
    if !out.success() {
        return Err(format!(
            "play-hls.mjs failed ({:?}): {line}\nstderr:\n{}",
            out.status, out.stderr
        ));
    }
    let texts = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    };
    Ok(HlsPlayback {
        current_time: raw["currentTime"].as_f64().unwrap_or(0.0),
        fatal_errors: texts(&raw["fatalErrors"]),
        errors: texts(&raw["errors"]),
        raw,
    })
}
