//! Test media, generated once per machine with ffmpeg into `target/test-media/`, and the
//! external clients: ffmpeg publishers, ffprobe, ffmpeg decoding checks.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::paths::target_dir;
use crate::proc::{run_with_timeout, ChildGuard, RunOutput};
use crate::TestCtx;

/// The generated clips. Each has 2-s keyframe intervals (IDR every 60 frames at 30 fps) and
/// is 12 s long, so `-stream_loop` restarts on a keyframe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clip {
    /// H.264 640x360 @30 (High, B-frames) + AAC 44.1 kHz stereo.
    Main,
    /// H.264 320x180 @30 + AAC 44.1 kHz stereo: tells a second publisher apart from the first.
    Small,
    /// AAC 44.1 kHz stereo only.
    AudioOnly,
    /// H.264 320x180 @30 only.
    VideoOnly,
    /// H.264 320x180 at 5 fps with a keyframe every 10 s (50 frames), + AAC 44.1 kHz
    /// stereo; 20 s long. A GOP longer than a small `hls.max_segment_ms`, and a frame rate
    /// under the 10 a PCR on every frame would need.
    LongGopLowFps,
    /// AAC 16 kHz mono only: 64-ms frames, so four to a PES are 256 ms apart.
    AudioOnly16k,
}

impl Clip {
    fn file_name(self) -> &'static str {
        match self {
            Clip::Main => "main-640x360.flv",
            Clip::Small => "small-320x180.flv",
            Clip::AudioOnly => "audio-only.flv",
            Clip::VideoOnly => "video-only.flv",
            Clip::LongGopLowFps => "long-gop-5fps.flv",
            Clip::AudioOnly16k => "audio-only-16k.flv",
        }
    }

    /// Seconds long: a whole number of GOPs, so `-stream_loop` restarts on a keyframe.
    fn seconds(self) -> u32 {
        match self {
            Clip::LongGopLowFps => 20,
            _ => 12,
        }
    }

    /// ffmpeg arguments: the lavfi inputs, then the encoders.
    fn ffmpeg_args(self) -> Vec<&'static str> {
        const VIDEO_640: [&str; 4] = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"];
        const VIDEO_320: [&str; 4] = ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30"];
        const AUDIO_IN: [&str; 4] = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"];
        const H264: [&str; 18] = [
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-bf",
            "2",
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-b:v",
            "600k",
            "-maxrate",
            "800k",
        ];
        const AAC: [&str; 6] = ["-c:a", "aac", "-b:a", "96k", "-ac", "2"];
        const VIDEO_5FPS: [&str; 4] = ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=5"];
        const H264_10S_GOP: [&str; 18] = [
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-bf",
            "0",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-b:v",
            "300k",
            "-bufsize",
            "600k",
        ];
        const AUDIO_16K: [&str; 4] = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000"];
        const AAC_MONO: [&str; 6] = ["-c:a", "aac", "-b:a", "32k", "-ac", "1"];
        let parts: Vec<&[&'static str]> = match self {
            Clip::Main => vec![&VIDEO_640, &AUDIO_IN, &H264, &["-bufsize", "800k"], &AAC],
            Clip::Small => vec![&VIDEO_320, &AUDIO_IN, &H264, &["-bufsize", "800k"], &AAC],
            Clip::AudioOnly => vec![&AUDIO_IN, &AAC],
            Clip::VideoOnly => vec![&VIDEO_320, &H264, &["-bufsize", "800k"]],
            Clip::LongGopLowFps => vec![&VIDEO_5FPS, &AUDIO_IN, &H264_10S_GOP, &AAC],
            Clip::AudioOnly16k => vec![&AUDIO_16K, &AAC_MONO],
        };
        parts.concat()
    }

    /// The clip's path, generating it on first use. Concurrent test processes serialise on a
    /// lock file; the clip is written under a temporary name and renamed into place.
    pub fn path(self) -> PathBuf {
        let dir = target_dir().join("test-media");
        std::fs::create_dir_all(&dir).expect("create target/test-media");
        let path = dir.join(self.file_name());
        if path.exists() {
            return path;
        }
        let lock = File::create(dir.join(".lock")).expect("create target/test-media/.lock");
        lock.lock().expect("lock target/test-media/.lock");
        if path.exists() {
            return path;
        }
        let tmp = dir.join(format!("{}.{}.tmp", self.file_name(), std::process::id()));
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
            .args(self.ffmpeg_args())
            .args(["-t", &self.seconds().to_string(), "-f", "flv"])
            .arg(&tmp);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(300));
        assert!(
            out.success(),
            "generating {}: {:?}\n{}",
            self.file_name(),
            out.status,
            out.stderr
        );
        std::fs::rename(&tmp, &path).expect("rename generated clip into place");
        path
    }
}

/// Starts `ffmpeg -re -stream_loop -1 -i CLIP -c copy -f flv URL`, logging to the test's dir.
pub fn publish_ffmpeg(ctx: &TestCtx, clip: Clip, url: &str) -> ChildGuard {
    let clip_path = clip.path();
    let log = ctx.next_log("ffmpeg-publish");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-re"])
        .args(["-stream_loop", "-1", "-i"])
        .arg(&clip_path)
        .args(["-c", "copy", "-f", "flv", url]);
    ChildGuard::spawn_logged("ffmpeg publisher", &mut cmd, &log)
}

/// Runs ffmpeg once to publish `clip` to `url` and returns how it ended (used to check that a
/// publish is refused).
pub fn publish_ffmpeg_once(clip: Clip, url: &str, limit: Duration) -> RunOutput {
    let clip_path = clip.path();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-re"])
        .args(["-stream_loop", "-1", "-i"])
        .arg(&clip_path)
        .args(["-c", "copy", "-f", "flv", url]);
    run_with_timeout(&mut cmd, limit)
}

/// One stream as ffprobe reports it.
#[derive(Clone, Debug, Default)]
pub struct ProbedStream {
    pub codec_type: String,
    pub codec_name: String,
    pub width: u64,
    pub height: u64,
    /// `r_frame_rate` as a number (0 when absent).
    pub frame_rate: f64,
    pub sample_rate: u64,
    pub channels: u64,
}

/// `ffprobe -show_streams` on `url`.
pub fn ffprobe_streams(url: &str, limit: Duration) -> Result<Vec<ProbedStream>, String> {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-hide_banner", "-v", "error"]);
    if url.starts_with("rtmp://") || url.starts_with("http://") {
        cmd.args(["-rw_timeout", "15000000"]);
    }
    cmd.args(["-show_streams", "-of", "json", url]);
    let out = run_with_timeout(&mut cmd, limit);
    if !out.success() {
        return Err(format!("ffprobe {url}: {}; stderr:\n{}", status_text(&out), out.stderr));
    }
    let v: Value =
        serde_json::from_str(&out.stdout).map_err(|e| format!("ffprobe {url}: bad JSON ({e}): {}", out.stdout))?;
    let streams = v["streams"]
        .as_array()
        .ok_or_else(|| format!("ffprobe {url}: no streams array: {}", out.stdout))?;
    Ok(streams
        .iter()
        .map(|s| ProbedStream {
            codec_type: s["codec_type"].as_str().unwrap_or_default().to_string(),
            codec_name: s["codec_name"].as_str().unwrap_or_default().to_string(),
            width: s["width"].as_u64().unwrap_or(0),
            height: s["height"].as_u64().unwrap_or(0),
            frame_rate: parse_rate(s["r_frame_rate"].as_str().unwrap_or("0/1")),
            sample_rate: s["sample_rate"].as_str().and_then(|r| r.parse().ok()).unwrap_or(0),
            channels: s["channels"].as_u64().unwrap_or(0),
        })
        .collect())
}

/// Asserts that `streams` is exactly one H.264 video of `width`x`height` at about `fps`, and
/// one AAC 44.1 kHz stereo audio stream.
pub fn assert_h264_aac(what: &str, streams: &[ProbedStream], width: u64, height: u64, fps: f64) {
    let video: Vec<_> = streams.iter().filter(|s| s.codec_type == "video").collect();
    let audio: Vec<_> = streams.iter().filter(|s| s.codec_type == "audio").collect();
    assert_eq!(video.len(), 1, "{what}: expected one video stream: {streams:?}");
    assert_eq!(audio.len(), 1, "{what}: expected one audio stream: {streams:?}");
    let (v, a) = (video[0], audio[0]);
    assert_eq!(v.codec_name, "h264", "{what}: video codec: {v:?}");
    assert_eq!((v.width, v.height), (width, height), "{what}: video size: {v:?}");
    assert!(
        (v.frame_rate - fps).abs() < 0.5,
        "{what}: frame rate {} (r_frame_rate), expected {fps}: {v:?}",
        v.frame_rate
    );
    assert_eq!(a.codec_name, "aac", "{what}: audio codec: {a:?}");
    assert_eq!(a.sample_rate, 44100, "{what}: sample rate: {a:?}");
    assert_eq!(a.channels, 2, "{what}: channels: {a:?}");
}

/// `ffmpeg -v error -i URL -t SECS -f null -`: decodes `secs` seconds of the stream.
pub fn ffmpeg_decode(url: &str, secs: u32, limit: Duration) -> RunOutput {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error"]);
    if url.starts_with("rtmp://") || url.starts_with("http://") {
        cmd.args(["-rw_timeout", "15000000"]);
    }
    cmd.args(["-i", url, "-t", &secs.to_string(), "-f", "null", "-"]);
    run_with_timeout(&mut cmd, limit)
}

/// One packet from `ffprobe -show_packets`.
#[derive(Clone, Debug)]
pub struct ProbedPacket {
    pub codec_type: String,
    /// Decode timestamp in seconds.
    pub dts: f64,
    pub keyframe: bool,
}

/// `ffprobe -show_packets -read_intervals %+SECS URL`: the packets of the first `secs` seconds.
pub fn ffprobe_packets(url: &str, secs: u32, limit: Duration) -> Result<Vec<ProbedPacket>, String> {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-hide_banner", "-v", "error"]);
    if url.starts_with("rtmp://") || url.starts_with("http://") {
        cmd.args(["-rw_timeout", "15000000"]);
    }
    cmd.args(["-read_intervals", &format!("%+{secs}")])
        .args(["-show_packets", "-show_entries", "packet=codec_type,dts_time,flags"])
        .args(["-of", "json", url]);
    let out = run_with_timeout(&mut cmd, limit);
    if !out.success() {
        return Err(format!("ffprobe {url}: {}; stderr:\n{}", status_text(&out), out.stderr));
    }
    let v: Value = serde_json::from_str(&out.stdout).map_err(|e| format!("ffprobe {url}: bad JSON ({e})"))?;
    let packets = v["packets"].as_array().cloned().unwrap_or_default();
    Ok(packets
        .iter()
        .filter_map(|p| {
            Some(ProbedPacket {
                codec_type: p["codec_type"].as_str()?.to_string(),
                dts: p["dts_time"].as_str()?.parse().ok()?,
                keyframe: p["flags"].as_str().is_some_and(|f| f.starts_with('K')),
            })
        })
        .collect())
}

/// "exit 1", "killed at the time limit", …
pub fn status_text(out: &RunOutput) -> String {
    match out.status {
        None => "killed at its time limit".into(),
        Some(s) => format!("{s}"),
    }
}

fn parse_rate(r: &str) -> f64 {
    match r.split_once('/') {
        Some((n, d)) => {
            let (n, d): (f64, f64) = (n.parse().unwrap_or(0.0), d.parse().unwrap_or(1.0));
            if d == 0.0 {
                0.0
            } else {
                n / d
            }
        }
        None => r.parse().unwrap_or(0.0),
    }
}
