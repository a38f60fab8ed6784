//! The source clip: an FLV file read into memory as tags, generated with ffmpeg when missing.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use bytes::Bytes;

use crate::sei;

/// One FLV tag of the clip.
#[derive(Debug, Clone)]
pub struct Tag {
    /// 8 audio, 9 video, 18 script data.
    pub kind: u8,
    /// Milliseconds from the first media tag of the clip.
    pub timestamp: u32,
    pub data: Bytes,
}

impl Tag {
    pub fn is_keyframe(&self) -> bool {
        self.kind == 9 && self.data.first().is_some_and(|b| b >> 4 == 1)
    }
}

/// A clip ready to publish in a loop.
#[derive(Debug, Clone)]
pub struct Clip {
    /// The `onMetaData` script tag body, if the file had one.
    pub metadata: Option<Bytes>,
    pub video_seq_header: Option<Bytes>,
    pub audio_seq_header: Option<Bytes>,
    /// Coded audio and video frames in file order.
    pub frames: Vec<Tag>,
    /// Length of one loop: the last timestamp plus one video frame interval.
    pub loop_ms: u32,
    /// NAL unit length size of the AVC stream.
    pub nal_len_size: usize,
    /// Video frames per loop.
    pub video_frames: usize,
    /// Media bytes per loop (tag bodies).
    pub bytes_per_loop: u64,
}

impl Clip {
    /// Average media bitrate in bits per second.
    pub fn bitrate_bps(&self) -> f64 {
        self.bytes_per_loop as f64 * 8.0 * 1000.0 / f64::from(self.loop_ms.max(1))
    }

    pub fn fps(&self) -> f64 {
        self.video_frames as f64 * 1000.0 / f64::from(self.loop_ms.max(1))
    }
}

/// What a generated clip is: H.264 with a fixed keyframe interval plus AAC, at 30 fps.
#[derive(Debug, Clone, Copy)]
pub struct ClipSpec {
    pub size: &'static str,
    pub video_kbps: u32,
    /// Frames between keyframes.
    pub gop_frames: u32,
    pub audio_kbps: u32,
    pub seconds: u32,
}

/// The default clip: 720p30 H.264 at 2.5 Mbps with a keyframe every 2 s, 128 kbps AAC, 20 s.
pub const DEFAULT_CLIP: ClipSpec = ClipSpec {
    size: "1280x720",
    video_kbps: 2500,
    gop_frames: 60,
    audio_kbps: 128,
    seconds: 20,
};

/// The ffmpeg arguments that make the clip `spec` at `out` (constant bitrate, no scene-cut
/// keyframes, so every GOP is the same length).
pub fn ffmpeg_args(spec: ClipSpec, out: &Path) -> Vec<String> {
    let v = spec.video_kbps;
    let gop = spec.gop_frames.to_string();
    [
        "-hide_banner".to_string(),
        "-loglevel".into(),
        "error".into(),
        "-y".into(),
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("testsrc2=size={}:rate=30", spec.size),
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        "sine=frequency=440:sample_rate=44100".into(),
        "-c:v".into(),
        "libx264".into(),
        "-preset".into(),
        "veryfast".into(),
        "-b:v".into(),
        format!("{v}k"),
        "-maxrate".into(),
        format!("{v}k"),
        "-bufsize".into(),
        format!("{}k", 2 * v),
        "-g".into(),
        gop.clone(),
        "-keyint_min".into(),
        gop,
        "-sc_threshold".into(),
        "0".into(),
        "-pix_fmt".into(),
        "yuv420p".into(),
        "-c:a".into(),
        "aac".into(),
        "-b:a".into(),
        format!("{}k", spec.audio_kbps),
        "-t".into(),
        spec.seconds.to_string(),
        "-f".into(),
        "flv".into(),
        out.display().to_string(),
    ]
    .into()
}

/// Makes the default clip at `path` with ffmpeg unless the file exists.
pub fn ensure_clip(path: &Path) -> anyhow::Result<()> {
    make_once(path, "the clip (20 s, 720p30, 2.5 Mbps)", |out| {
        ffmpeg_args(DEFAULT_CLIP, out)
    })
}

/// Runs ffmpeg with `args(out)` to make `path` unless it exists. It writes beside `path`
/// (a name of this process's own), then renames, so concurrent runs never read half a file.
pub fn make_once(path: &Path, what: &str, args: impl FnOnce(&Path) -> Vec<String>) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("{}.tmp.flv", std::process::id()));
    eprintln!("estuary-bench: generating {what} at {} with ffmpeg", path.display());
    let status = Command::new("ffmpeg")
        .args(args(&tmp))
        .status()
        .with_context(|| format!("running ffmpeg (is it installed?) to generate {what}"))?;
    if !status.success() {
        bail!("ffmpeg failed to generate {}: {status}", path.display());
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Reads an FLV file.
pub fn load(path: &Path) -> anyhow::Result<Clip> {
    let bytes = std::fs::read(path).with_context(|| format!("reading clip {}", path.display()))?;
    parse_flv(&bytes).with_context(|| format!("parsing clip {}", path.display()))
}

/// Parses an FLV file held in memory.
pub fn parse_flv(file: &[u8]) -> anyhow::Result<Clip> {
    if file.len() < 13 || &file[..3] != b"FLV" {
        bail!("not an FLV file");
    }
    let header_len = u32::from_be_bytes([file[5], file[6], file[7], file[8]]) as usize;
    let mut pos = header_len + 4; // + PreviousTagSize0
    let mut clip = Clip {
        metadata: None,
        video_seq_header: None,
        audio_seq_header: None,
        frames: Vec::new(),
        loop_ms: 0,
        nal_len_size: 4,
        video_frames: 0,
        bytes_per_loop: 0,
    };
    let mut first_ts = None;
    let mut video_ts = Vec::new();
    while pos + 11 <= file.len() {
        let h = &file[pos..pos + 11];
        let kind = h[0] & 0x1f;
        let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        let ts = (u32::from(h[7]) << 24) | (u32::from(h[4]) << 16) | (u32::from(h[5]) << 8) | u32::from(h[6]);
        let body_start = pos + 11;
        if body_start + len > file.len() {
            break; // truncated last tag
        }
        let data = Bytes::copy_from_slice(&file[body_start..body_start + len]);
        pos = body_start + len + 4;
        match kind {
            18 if clip.metadata.is_none() => clip.metadata = Some(data),
            9 if data.len() >= 2 && data[0] & 0x0f == 7 && data[1] == 0 => {
                clip.nal_len_size = sei::nal_length_size(&data).unwrap_or(4);
                clip.video_seq_header.get_or_insert(data);
            }
            8 if data.len() >= 2 && data[0] >> 4 == 10 && data[1] == 0 => {
                clip.audio_seq_header.get_or_insert(data);
            }
            8 | 9 => {
                if kind == 9 && (data.len() < 5 || data[0] & 0x0f != 7 || data[1] != 1) {
                    continue; // only AVC coded frames carry our SEI; skip anything else
                }
                let first = *first_ts.get_or_insert(ts);
                let ts = ts.saturating_sub(first);
                if kind == 9 {
                    video_ts.push(ts);
                }
                clip.bytes_per_loop += data.len() as u64;
                clip.frames.push(Tag {
                    kind,
                    timestamp: ts,
                    data,
                });
            }
            _ => {}
        }
    }
    if clip.video_seq_header.is_none() || video_ts.is_empty() {
        bail!("the clip has no H.264 video (the bench needs AVC to tag frames)");
    }
    if !clip.frames.iter().any(Tag::is_keyframe) {
        bail!("the clip has no video keyframe");
    }
    let mut deltas: Vec<u32> = video_ts
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .filter(|d| *d > 0)
        .collect();
    deltas.sort_unstable();
    let frame_ms = deltas.get(deltas.len() / 2).copied().unwrap_or(33);
    let last = clip.frames.iter().map(|t| t.timestamp).max().unwrap_or(0);
    clip.loop_ms = last + frame_ms;
    clip.video_frames = video_ts.len();
    Ok(clip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: u8, ts: u32, body: &[u8]) -> Vec<u8> {
        let mut t = vec![
            kind,
            0,
            0,
            body.len() as u8,
            (ts >> 16) as u8,
            (ts >> 8) as u8,
            ts as u8,
            (ts >> 24) as u8,
            0,
            0,
            0,
        ];
        t.extend_from_slice(body);
        t.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
        t
    }

    #[test]
    fn reads_tags_and_loop_length() {
        let mut f = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        f.extend(tag(18, 0, b"\x02\x00\x0aonMetaData"));
        f.extend(tag(9, 0, &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1]));
        f.extend(tag(8, 0, &[0xaf, 0, 0x12, 0x10]));
        f.extend(tag(9, 1000, &[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]));
        f.extend(tag(8, 1010, &[0xaf, 1, 0x21]));
        f.extend(tag(9, 1033, &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]));
        f.extend(tag(9, 1066, &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]));
        f.extend_from_slice(&[9, 0, 0]); // truncated tail
        let clip = parse_flv(&f).unwrap();
        assert!(clip.metadata.is_some() && clip.video_seq_header.is_some() && clip.audio_seq_header.is_some());
        assert_eq!(clip.frames.len(), 4);
        assert_eq!(clip.frames[0].timestamp, 0);
        assert!(clip.frames[0].is_keyframe());
        assert_eq!(clip.frames[1].timestamp, 10);
        assert_eq!(clip.video_frames, 3);
        assert_eq!(clip.loop_ms, 66 + 33);
        assert_eq!(clip.nal_len_size, 4);
    }

    #[test]
    fn rejects_non_flv_and_audio_only() {
        assert!(parse_flv(b"nope").is_err());
        let mut f = b"FLV\x01\x04\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        f.extend(tag(8, 0, &[0xaf, 1, 0x21]));
        assert!(parse_flv(&f).is_err());
    }
}
