//! The init segment of a fragmented MP4 (ISO/IEC 14496-12 §8.8.1): `ftyp`, then a `moov`
//! whose tracks have empty sample tables and durations 0, and an `mvex` with one `trex` per
//! track saying that the samples are in the fragments that follow.

use bytes::Bytes;
use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};

use crate::mp4::boxes::{BoxBuf, LANGUAGE_UNDETERMINED, UNITY_MATRIX};
use crate::mp4::track::{write_audio_stsd, write_video_stsd, AudioTrack, VideoTrack, VIDEO_TIMESCALE};

/// `mvhd` timescale of the files we write (ffmpeg's).
pub(crate) const MOVIE_TIMESCALE: u32 = 1000;

/// Track ids: video first, then audio, numbered from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrackIds {
    pub(crate) video: Option<u32>,
    pub(crate) audio: Option<u32>,
}

impl TrackIds {
    pub(crate) fn new(has_video: bool, has_audio: bool) -> Self {
        TrackIds {
            video: has_video.then_some(1),
            audio: has_audio.then_some(if has_video { 2 } else { 1 }),
        }
    }

    fn next(&self) -> u32 {
        1 + u32::from(self.video.is_some()) + u32::from(self.audio.is_some())
    }
}

/// `ftyp` + `moov` for a fragmented file with these tracks (at least one).
pub(crate) fn init_segment(video: Option<&VideoTrack>, audio: Option<&AudioTrack>) -> Bytes {
    let ids = TrackIds::new(video.is_some(), audio.is_some());
    let mut b = BoxBuf::with_capacity(1024);
    let mut brands: Vec<&[u8; 4]> = vec![b"iso6", b"isom", b"mp41"];
    match video.map(|v| v.codec) {
        Some(VideoCodec::Avc) => brands.push(b"avc1"),
        // AV1 ISOBMFF binding §2.1 and Opus in ISOBMFF §4.1 name these brands.
        Some(VideoCodec::Av1) => brands.push(b"av01"),
        _ => {}
    }
    if audio.is_some_and(|a| a.codec == AudioCodec::Opus) {
        brands.push(b"Opus");
    }
    write_ftyp(&mut b, b"iso6", &brands);
    b.boxed(b"moov", |b| {
        write_mvhd(b, 0, ids.next());
        if let (Some(video), Some(id)) = (video, ids.video) {
            b.boxed(b"trak", |b| {
                write_tkhd(b, id, 0, video.width, video.height, false);
                b.boxed(b"mdia", |b| {
                    write_mdhd(b, VIDEO_TIMESCALE, 0, LANGUAGE_UNDETERMINED);
                    write_hdlr(b, b"vide", "VideoHandler");
                    b.boxed(b"minf", |b| {
                        write_vmhd(b);
                        write_dinf(b);
                        b.boxed(b"stbl", |b| {
                            write_video_stsd(b, video);
                            write_empty_tables(b);
                        });
                    });
                });
            });
        }
        if let (Some(audio), Some(id)) = (audio, ids.audio) {
            b.boxed(b"trak", |b| {
                write_tkhd(b, id, 0, 0, 0, true);
                b.boxed(b"mdia", |b| {
                    write_mdhd(b, audio.timescale(), 0, LANGUAGE_UNDETERMINED);
                    write_hdlr(b, b"soun", "SoundHandler");
                    b.boxed(b"minf", |b| {
                        write_smhd(b);
                        write_dinf(b);
                        b.boxed(b"stbl", |b| {
                            write_audio_stsd(b, audio, id);
                            write_empty_tables(b);
                        });
                    });
                });
            });
        }
        b.boxed(b"mvex", |b| {
            for id in [ids.video, ids.audio].into_iter().flatten() {
                b.full_box(b"trex", 0, 0, |b| {
                    b.u32(id);
                    b.u32(1); // default_sample_description_index
                    b.u32(0); // default_sample_duration
                    b.u32(0); // default_sample_size
                    b.u32(0); // default_sample_flags
                });
            }
        });
    });
    b.into_inner().freeze()
}

/// `tkhd`; `duration` in the movie timescale, `width` and `height` 0 for audio.
pub(crate) fn write_tkhd(b: &mut BoxBuf, track_id: u32, duration: u64, width: u16, height: u16, audio: bool) {
    // flags: enabled, in movie, in preview.
    b.full_box(b"tkhd", 1, 0x000003, |b| {
        b.u64(0); // creation_time
        b.u64(0); // modification_time
        b.u32(track_id);
        b.u32(0);
        b.u64(duration);
        b.zeros(8);
        b.u16(0); // layer
        b.u16(if audio { 1 } else { 0 }); // alternate_group
        b.u16(if audio { 0x0100 } else { 0 }); // volume
        b.u16(0);
        for v in UNITY_MATRIX {
            b.u32(v);
        }
        b.u32(u32::from(width) << 16);
        b.u32(u32::from(height) << 16);
    });
}

pub(crate) fn write_ftyp(b: &mut BoxBuf, major: &[u8; 4], brands: &[&[u8; 4]]) {
    b.boxed(b"ftyp", |b| {
        b.bytes(major);
        b.u32(0x200);
        for brand in brands {
            b.bytes(*brand);
        }
    });
}

pub(crate) fn write_mvhd(b: &mut BoxBuf, duration: u64, next_track_id: u32) {
    b.full_box(b"mvhd", 1, 0, |b| {
        b.u64(0);
        b.u64(0);
        b.u32(MOVIE_TIMESCALE);
        b.u64(duration);
        b.u32(0x0001_0000); // rate 1.0
        b.u16(0x0100); // volume 1.0
        b.zeros(10);
        for v in UNITY_MATRIX {
            b.u32(v);
        }
        b.zeros(24); // pre_defined
        b.u32(next_track_id);
    });
}

pub(crate) fn write_mdhd(b: &mut BoxBuf, timescale: u32, duration: u64, language: u16) {
    b.full_box(b"mdhd", 1, 0, |b| {
        b.u64(0);
        b.u64(0);
        b.u32(timescale);
        b.u64(duration);
        b.u16(language & 0x7fff);
        b.u16(0);
    });
}

fn write_hdlr(b: &mut BoxBuf, handler: &[u8; 4], name: &str) {
    b.full_box(b"hdlr", 0, 0, |b| {
        b.u32(0);
        b.bytes(handler);
        b.zeros(12);
        b.bytes(name.as_bytes());
        b.u8(0);
    });
}

fn write_vmhd(b: &mut BoxBuf) {
    b.full_box(b"vmhd", 0, 1, |b| b.zeros(8));
}

fn write_smhd(b: &mut BoxBuf) {
    b.full_box(b"smhd", 0, 0, |b| b.zeros(4));
}

/// `dinf` with a `dref` holding one self-reference: the media is in this file.
pub(crate) fn write_dinf(b: &mut BoxBuf) {
    b.boxed(b"dinf", |b| {
        b.full_box(b"dref", 0, 0, |b| {
            b.u32(1);
            b.full_box(b"url ", 0, 1, |_| {});
        });
    });
}

/// The sample tables of a fragmented file's `stbl`: present (readers require them) and empty.
fn write_empty_tables(b: &mut BoxBuf) {
    b.full_box(b"stts", 0, 0, |b| b.u32(0));
    b.full_box(b"stsc", 0, 0, |b| b.u32(0));
    b.full_box(b"stsz", 0, 0, |b| {
        b.u32(0);
        b.u32(0);
    });
    b.full_box(b"stco", 0, 0, |b| b.u32(0));
}
