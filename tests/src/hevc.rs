//! An H.265 clip as FLV tags with the legacy codec id 12 (the common extension OBS and SRS
//! used before Enhanced RTMP), for publishers whose ffmpeg (5.1 here) cannot send HEVC over
//! RTMP: ffmpeg encodes an MP4 with libx265, `estuary_muxer`'s MP4 index reads its samples
//! and `hvcC`, and each sample becomes a tag (`0x1C`/`0x2C`, packet type, composition time).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::flv::{Tag, TagKind};
use crate::proc::run_with_timeout;

/// `seconds` of 640x360 @30 H.265 (a keyframe every 2 s, no B-frames), video only, as FLV
/// tags in decode order, the sequence header first. The MP4 is written under `dir`.
pub fn hevc_clip_tags(dir: &Path, seconds: u32) -> Vec<Tag> {
    let path = dir.join("hevc.mp4");
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
    ])
    .arg(format!("testsrc2=size=640x360:rate=30:duration={seconds}"))
    .args([
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-tag:v",
        "hvc1",
    ])
    .args([
        "-x265-params",
        "keyint=60:min-keyint=60:scenecut=0:bframes=0:log-level=error",
    ])
    .arg(&path);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
    assert!(out.success(), "ffmpeg libx265: {}", out.stderr);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let index = estuary_muxer::mp4::read_index(&mut std::io::Cursor::new(&bytes))
        .unwrap_or_else(|e| panic!("index {}: {e}", path.display()));
    let track = index
        .tracks
        .iter()
        .find(|t| &t.info.codec == b"hvc1")
        .unwrap_or_else(|| panic!("no hvc1 track in {}", path.display()));
    let record = find_box(&track.info.stsd, b"hvcC").expect("an hvcC box in the hvc1 sample entry");
    let arrived = Instant::now();
    let ms = |ticks: i64| (ticks * 1000 / i64::from(track.info.timescale)) as i32;
    let tag = |timestamp: u32, header: [u8; 5], body: &[u8]| Tag {
        kind: TagKind::Video,
        timestamp,
        data: Bytes::from([&header[..], body].concat()),
        arrived,
    };
    let mut tags = vec![tag(0, [0x1c, 0, 0, 0, 0], record)];
    for s in &track.samples {
        let data = &bytes[s.offset as usize..s.offset as usize + s.size as usize];
        let cts = ms(i64::from(s.cts)).to_be_bytes();
        let frame = if s.keyframe { 0x1c } else { 0x2c };
        tags.push(tag(ms(s.dts as i64) as u32, [frame, 1, cts[1], cts[2], cts[3]], data));
    }
    tags
}

/// The payload of the first box named `name` anywhere in `data` (a flat scan: the sample
/// entry's fields before its child boxes hold no such four bytes).
fn find_box<'a>(data: &'a [u8], name: &[u8; 4]) -> Option<&'a [u8]> {
    let at = data.windows(4).position(|w| w == name)?;
    let start = at.checked_sub(4)?;
    let size = u32::from_be_bytes(data[start..at].try_into().ok()?) as usize;
    data.get(at + 4..start + size)
}
