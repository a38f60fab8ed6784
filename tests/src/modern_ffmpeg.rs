//! The modern ffmpeg (≥ 8) of the Enhanced RTMP tests: Debian's ffmpeg 5.1 publishes neither
//! HEVC, AV1, VP9 nor Opus over RTMP, nor Multitrack. `scripts/install-test-deps.sh` installs
//! PyPI's imageio-ffmpeg (a static ffmpeg 9) into the project-local venv `.test-venv/`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::paths::workspace_root;
use crate::proc::{run_with_timeout, ChildGuard, RunOutput};
use crate::TestCtx;

/// Names another ffmpeg (≥ 8, with libx265, libaom, libvpx, libopus) to use instead.
pub const ENV: &str = "ESTUARY_MODERN_FFMPEG";

/// The modern ffmpeg: `ESTUARY_MODERN_FFMPEG`, else the one imageio-ffmpeg installed into
/// `<workspace>/.test-venv`. Panics with what to run when there is none.
pub fn modern_ffmpeg() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        if let Some(exe) = std::env::var_os(ENV) {
            return PathBuf::from(exe);
        }
        let python = workspace_root().join(".test-venv/bin/python");
        let out = Command::new(&python)
            .args(["-c", "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"])
            .output();
        match out {
            Ok(out) if out.status.success() => PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
            Ok(out) => panic!(
                "no modern ffmpeg: {} failed ({}): {}; run `bash scripts/install-test-deps.sh` or set {ENV}",
                python.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!(
                "no modern ffmpeg: cannot run {} ({e}); run `bash scripts/install-test-deps.sh` or set {ENV}",
                python.display()
            ),
        }
    })
    .clone()
}

/// What a tiny live publish encodes: 160x90 at 15 fps with a keyframe every second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    HevcAac,
    Av1Opus,
    Vp9Opus,
    H264Opus,
    /// Two H.264 video tracks (`-map 0:v -map 0:v`): ffmpeg sends track 1 as Enhanced RTMP
    /// Multitrack (OneTrack) packets, track 0 as plain H.264.
    TwoH264Tracks,
}

impl Encoding {
    fn args(self) -> Vec<&'static str> {
        const VIDEO: [&str; 4] = ["-re", "-f", "lavfi", "-i"];
        let mut args: Vec<&str> = VIDEO.to_vec();
        args.push("testsrc2=size=160x90:rate=15");
        if self != Encoding::TwoH264Tracks {
            args.extend(["-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
            args.extend(["-map", "0:v", "-map", "1:a"]);
        }
        let video: &[&str] = match self {
            Encoding::HevcAac => &[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "log-level=error",
            ],
            Encoding::Av1Opus => &["-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8"],
            Encoding::Vp9Opus => &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"],
            Encoding::H264Opus => &["-c:v", "libx264", "-preset", "ultrafast"],
            Encoding::TwoH264Tracks => &["-map", "0:v", "-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast"],
        };
        args.extend(video);
        args.extend(["-g", "15", "-pix_fmt", "yuv420p"]);
        let audio: &[&str] = match self {
            Encoding::HevcAac => &["-c:a", "aac", "-b:a", "48k"],
            Encoding::TwoH264Tracks => &[],
            _ => &["-c:a", "libopus", "-b:a", "32k"],
        };
        args.extend(audio);
        args
    }
}

/// Starts the modern ffmpeg encoding `encoding` live and publishing it to `url` over
/// (Enhanced) RTMP, logging to the test's dir.
pub fn publish_modern(ctx: &TestCtx, encoding: Encoding, url: &str) -> ChildGuard {
    let log = ctx.next_log("ffmpeg9-publish");
    let mut cmd = Command::new(modern_ffmpeg());
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning"])
        .args(encoding.args())
        .args(["-f", "flv", url]);
    ChildGuard::spawn_logged("ffmpeg 9 publisher", &mut cmd, &log)
}

/// What a decode of a stream produced.
#[derive(Debug)]
pub struct Decoded {
    pub run: RunOutput,
    /// `#media_type N: video|audio` of each decoded stream, in stream order.
    pub media_types: Vec<String>,
    /// `#dimensions N: WxH` of each decoded video stream.
    pub dimensions: Vec<String>,
    /// Frames decoded per stream index.
    pub frames: Vec<usize>,
}

impl Decoded {
    pub fn frames_of(&self, media_type: &str) -> usize {
        self.media_types
            .iter()
            .zip(&self.frames)
            .filter(|(t, _)| t.as_str() == media_type)
            .map(|(_, n)| n)
            .sum()
    }
}

/// `ffmpeg -v error -i URL -t SECS -map 0 -f framecrc -` with the modern ffmpeg: decodes
/// every stream of `url` for `secs` seconds and lists each decoded frame.
pub fn decode_modern(url: &str, secs: u32, limit: Duration) -> Decoded {
    let mut cmd = Command::new(modern_ffmpeg());
    cmd.args(["-hide_banner", "-nostdin", "-v", "error"]);
    if url.starts_with("rtmp://") || url.starts_with("http://") {
        cmd.args(["-rw_timeout", "15000000"]);
    }
    cmd.args(["-i", url, "-t", &secs.to_string(), "-map", "0", "-f", "framecrc", "-"]);
    let run = run_with_timeout(&mut cmd, limit);
    let mut media_types = Vec::new();
    let mut dimensions = Vec::new();
    let mut frames: Vec<usize> = Vec::new();
    for line in run.stdout.lines() {
        if let Some(rest) = line.strip_prefix("#media_type ") {
            media_types.push(rest.split(": ").nth(1).unwrap_or_default().to_string());
        } else if let Some(rest) = line.strip_prefix("#dimensions ") {
            dimensions.push(rest.split(": ").nth(1).unwrap_or_default().to_string());
        } else if !line.starts_with('#') {
            if let Some(Ok(index)) = line.split(',').next().map(|i| i.trim().parse::<usize>()) {
                if frames.len() <= index {
                    frames.resize(index + 1, 0);
                }
                frames[index] += 1;
            }
        }
    }
    Decoded {
        run,
        media_types,
        dimensions,
        frames,
    }
}
