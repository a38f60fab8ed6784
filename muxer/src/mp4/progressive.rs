//! The `moov` of a progressive file (ISO/IEC 14496-12 §8.2–8.7) built from a sample table
//! and a chunk layout: real durations in `mvhd`/`tkhd`/`mdhd`, an edit list where the track
//! does not start presenting at 0, and the full sample tables (`stts`, `ctts`, `stss`,
//! `stsz`, `stsc`, `stco` or `co64`). Sample descriptions and handlers are copied from the
//! source file.

use bytes::BytesMut;

use crate::mp4::boxes::BoxBuf;
use crate::mp4::init::{write_dinf, write_ftyp, write_mdhd, write_mvhd, write_tkhd, MOVIE_TIMESCALE};
use crate::mp4::table::TrackIndex;

/// An edit list in ffmpeg's form: an empty edit of `delay` (movie timescale) when the track
/// starts presenting later than the movie, then the media from `media_time` (the first
/// sample's composition offset, track timescale) for `duration` (movie timescale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edit {
    pub(crate) delay: u64,
    pub(crate) media_time: i64,
    pub(crate) duration: u64,
}

/// One track as it goes into the progressive file.
pub(crate) struct TrackLayout<'a> {
    pub(crate) track: &'a TrackIndex,
    /// Sample durations, each the distance to the next sample's decode time.
    pub(crate) durations: Vec<u32>,
    pub(crate) edit: Option<Edit>,
    /// `tkhd` duration in the movie timescale.
    pub(crate) presentation_duration: u64,
    /// File offset and sample count of each chunk, in decode order.
    pub(crate) chunks: Vec<(u64, u32)>,
}

/// `ftyp` of the finished file: ffmpeg's for `-movflags +faststart`.
pub(crate) fn write_progressive_ftyp(has_avc: bool) -> BytesMut {
    let mut b = BoxBuf::with_capacity(32);
    let mut brands: Vec<&[u8; 4]> = vec![b"isom", b"iso2"];
    if has_avc {
        brands.push(b"avc1");
    }
    brands.push(b"mp41");
    write_ftyp(&mut b, b"isom", &brands);
    b.into_inner()
}

/// The `moov`; `co64` chooses 64-bit chunk offsets.
pub(crate) fn write_progressive_moov(tracks: &[TrackLayout<'_>], movie_duration: u64, co64: bool) -> BytesMut {
    let entries: usize = tracks.iter().map(|t| t.track.samples.len()).sum();
    let mut b = BoxBuf::with_capacity(1024 + entries * 16);
    b.boxed(b"moov", |b| {
        let next_id = tracks.iter().map(|t| t.track.info.track_id).max().unwrap_or(0) + 1;
        write_mvhd(b, movie_duration, next_id);
        for layout in tracks {
            write_trak(b, layout, co64);
        }
    });
    b.into_inner()
}

fn write_trak(b: &mut BoxBuf, layout: &TrackLayout<'_>, co64: bool) {
    let info = &layout.track.info;
    let audio = &info.handler == b"soun";
    b.boxed(b"trak", |b| {
        let width = u16::try_from(info.width).unwrap_or(u16::MAX);
        let height = u16::try_from(info.height).unwrap_or(u16::MAX);
        write_tkhd(b, info.track_id, layout.presentation_duration, width, height, audio);
        if let Some(edit) = layout.edit {
            write_edts(b, edit);
        }
        b.boxed(b"mdia", |b| {
            let media_duration = layout.durations.iter().map(|&d| u64::from(d)).sum();
            write_mdhd(b, info.timescale, media_duration, info.language);
            b.bytes(&info.hdlr);
            b.boxed(b"minf", |b| {
                if info.media_header.is_empty() {
                    b.full_box(b"nmhd", 0, 0, |_| {});
                } else {
                    b.bytes(&info.media_header);
                }
                write_dinf(b);
                b.boxed(b"stbl", |b| {
                    b.bytes(&info.stsd);
                    write_sample_tables(b, layout, co64);
                });
            });
        });
    });
}

fn write_edts(b: &mut BoxBuf, edit: Edit) {
    let wide = edit.delay > u64::from(u32::MAX)
        || edit.duration > u64::from(u32::MAX)
        || i32::try_from(edit.media_time).is_err();
    b.boxed(b"edts", |b| {
        b.full_box(b"elst", u8::from(wide), 0, |b| {
            let entries: [(u64, i64); 2] = [(edit.delay, -1), (edit.duration, edit.media_time)];
            let entries = if edit.delay > 0 { &entries[..] } else { &entries[1..] };
            b.u32(entries.len() as u32);
            for &(duration, media_time) in entries {
                if wide {
                    b.u64(duration);
                    b.u64(media_time as u64);
                } else {
                    b.u32(duration as u32);
                    b.i32(media_time as i32);
                }
                b.u32(0x0001_0000); // media_rate 1.0
            }
        });
    });
}

fn write_sample_tables(b: &mut BoxBuf, layout: &TrackLayout<'_>, co64: bool) {
    let samples = &layout.track.samples;

    let mut stts: Vec<(u32, u32)> = Vec::new();
    for &d in &layout.durations {
        match stts.last_mut() {
            Some((count, delta)) if *delta == d => *count += 1,
            _ => stts.push((1, d)),
        }
    }
    b.full_box(b"stts", 0, 0, |b| {
        b.u32(stts.len() as u32);
        for &(count, delta) in &stts {
            b.u32(count);
            b.u32(delta);
        }
    });

    if samples.iter().any(|s| s.cts != 0) {
        let mut ctts: Vec<(u32, i32)> = Vec::new();
        for s in samples {
            match ctts.last_mut() {
                Some((count, offset)) if *offset == s.cts => *count += 1,
                _ => ctts.push((1, s.cts)),
            }
        }
        let version = u8::from(samples.iter().any(|s| s.cts < 0));
        b.full_box(b"ctts", version, 0, |b| {
            b.u32(ctts.len() as u32);
            for &(count, offset) in &ctts {
                b.u32(count);
                b.i32(offset);
            }
        });
    }

    if samples.iter().any(|s| !s.keyframe) {
        let keyframes: Vec<u32> = (1u32..)
            .zip(samples)
            .filter(|(_, s)| s.keyframe)
            .map(|(n, _)| n)
            .collect();
        b.full_box(b"stss", 0, 0, |b| {
            b.u32(keyframes.len() as u32);
            for n in keyframes {
                b.u32(n);
            }
        });
    }

    let mut stsc: Vec<(u32, u32)> = Vec::new();
    for (number, &(_, count)) in (1u32..).zip(&layout.chunks) {
        if !matches!(stsc.last(), Some(&(_, last)) if last == count) {
            stsc.push((number, count));
        }
    }
    b.full_box(b"stsc", 0, 0, |b| {
        b.u32(stsc.len() as u32);
        for &(first_chunk, count) in &stsc {
            b.u32(first_chunk);
            b.u32(count);
            b.u32(1); // sample_description_index
        }
    });

    let constant = samples
        .first()
        .map(|s| s.size)
        .filter(|&size| samples.iter().all(|s| s.size == size));
    b.full_box(b"stsz", 0, 0, |b| match constant {
        Some(size) => {
            b.u32(size);
            b.u32(samples.len() as u32);
        }
        None => {
            b.u32(0);
            b.u32(samples.len() as u32);
            for s in samples {
                b.u32(s.size);
            }
        }
    });

    if co64 {
        b.full_box(b"co64", 0, 0, |b| {
            b.u32(layout.chunks.len() as u32);
            for &(offset, _) in &layout.chunks {
                b.u64(offset);
            }
        });
    } else {
        b.full_box(b"stco", 0, 0, |b| {
            b.u32(layout.chunks.len() as u32);
            for &(offset, _) in &layout.chunks {
                b.u32(u32::try_from(offset).unwrap_or(u32::MAX));
            }
        });
    }
}

/// `value` in `from` ticks per second to the movie timescale, rounded up.
pub(crate) fn to_movie_ceil(value: u64, from: u32) -> u64 {
    let from = u128::from(from.max(1));
    ((u128::from(value) * u128::from(MOVIE_TIMESCALE)).div_ceil(from)) as u64
}
