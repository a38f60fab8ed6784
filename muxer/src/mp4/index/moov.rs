//! The `moov` box (ISO/IEC 14496-12 §8.2): the movie's timescale, and for each track its
//! identity (`tkhd`), timescale and handler (`mdia`), edit list (`edts`), sample
//! descriptions and, in a progressive file, sample tables (`stbl`), and in a fragmented one
//! the per-track defaults of `mvex/trex` (§8.8.3).

use crate::mp4::parse::{Cursor, RawBox};
use crate::mp4::table::{scale, TrackInfo};
use crate::MuxError;

/// Sample defaults a fragment falls back on (`trex`, overridden by `tfhd`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SampleDefaults {
    pub(crate) duration: u32,
    pub(crate) size: u32,
    pub(crate) flags: u32,
}

pub(crate) struct MovieTrack<'a> {
    pub(crate) info: TrackInfo,
    pub(crate) defaults: SampleDefaults,
    pub(crate) stbl: RawBox<'a>,
}

pub(crate) struct Movie<'a> {
    pub(crate) timescale: u32,
    /// `mvex` is present.
    pub(crate) fragmented: bool,
    pub(crate) tracks: Vec<MovieTrack<'a>>,
}

pub(crate) fn parse_moov<'a>(moov: &RawBox<'a>) -> Result<Movie<'a>, MuxError> {
    let mvhd = moov.require(b"mvhd")?;
    let mut c = Cursor::new(&mvhd);
    let (version, _) = c.full_header()?;
    c.u32_or_u64(version)?; // creation_time
    c.u32_or_u64(version)?; // modification_time
    let timescale = c.u32()?;
    if timescale == 0 {
        return Err(mvhd.malformed("timescale is 0"));
    }
    let mut defaults = Vec::new();
    let mvex = moov.find(b"mvex")?;
    if let Some(mvex) = &mvex {
        for child in mvex.children() {
            let trex = child?;
            if &trex.box_type == b"trex" {
                let mut c = Cursor::new(&trex);
                c.full_header()?;
                let track_id = c.u32()?;
                c.u32()?; // default_sample_description_index
                let d = SampleDefaults {
                    duration: c.u32()?,
                    size: c.u32()?,
                    flags: c.u32()?,
                };
                defaults.push((track_id, d));
            }
        }
    }
    let mut tracks = Vec::new();
    for child in moov.children() {
        let trak = child?;
        if &trak.box_type != b"trak" {
            continue;
        }
        let mut track = parse_trak(&trak, timescale)?;
        if let Some((_, d)) = defaults.iter().find(|(id, _)| *id == track.info.track_id) {
            track.defaults = *d;
        }
        if tracks
            .iter()
            .any(|t: &MovieTrack<'_>| t.info.track_id == track.info.track_id)
        {
            return Err(trak.malformed(format!("track id {} is used twice", track.info.track_id)));
        }
        tracks.push(track);
    }
    Ok(Movie {
        timescale,
        fragmented: mvex.is_some(),
        tracks,
    })
}

fn parse_trak<'a>(trak: &RawBox<'a>, movie_timescale: u32) -> Result<MovieTrack<'a>, MuxError> {
    let tkhd = trak.require(b"tkhd")?;
    let mut c = Cursor::new(&tkhd);
    let (version, _) = c.full_header()?;
    c.u32_or_u64(version)?; // creation_time
    c.u32_or_u64(version)?; // modification_time
    let track_id = c.u32()?;
    c.u32()?; // reserved
    c.u32_or_u64(version)?; // duration
    c.skip(8 + 2 + 2 + 2 + 2 + 36)?; // reserved, layer, alternate_group, volume, reserved, matrix
    let width = c.u32()? >> 16;
    let height = c.u32()? >> 16;
    if track_id == 0 {
        return Err(tkhd.malformed("track id 0"));
    }

    let mdia = trak.require(b"mdia")?;
    let mdhd = mdia.require(b"mdhd")?;
    let mut c = Cursor::new(&mdhd);
    let (version, _) = c.full_header()?;
    c.u32_or_u64(version)?;
    c.u32_or_u64(version)?;
    let timescale = c.u32()?;
    c.u32_or_u64(version)?; // duration
    let language = c.u16()? & 0x7fff;
    if timescale == 0 {
        return Err(mdhd.malformed(format!("track {track_id} has timescale 0")));
    }
    let hdlr = mdia.require(b"hdlr")?;
    let mut c = Cursor::new(&hdlr);
    c.skip(8)?; // version, flags, pre_defined
    let handler = c.fourcc()?;

    let minf = mdia.require(b"minf")?;
    let mut media_header = None;
    for child in minf.children() {
        let child = child?;
        if matches!(&child.box_type, b"vmhd" | b"smhd" | b"nmhd" | b"hmhd" | b"sthd") {
            media_header = Some(child.copied());
            break;
        }
    }
    let stbl = minf.require(b"stbl")?;
    let stsd = stbl.require(b"stsd")?;
    let codec = match stsd.children_after(8).next() {
        Some(entry) => entry?.box_type,
        None => return Err(stsd.malformed(format!("track {track_id} has no sample entry"))),
    };
    let presentation_offset = match trak.find(b"edts")? {
        Some(edts) => match edts.find(b"elst")? {
            Some(elst) => presentation_offset(&elst, movie_timescale, timescale)?,
            None => 0,
        },
        None => 0,
    };
    Ok(MovieTrack {
        info: TrackInfo {
            track_id,
            handler,
            timescale,
            codec,
            width,
            height,
            language,
            presentation_offset,
            stsd: stsd.copied(),
            hdlr: hdlr.copied(),
            media_header: media_header.unwrap_or_default(),
        },
        defaults: SampleDefaults::default(),
        stbl,
    })
}

/// What an edit list (§8.6.6) does to the start of a track, in the track's timescale:
/// leading empty edits delay it, and the first media edit skips its `media_time`. Later edits
/// (cuts inside the track) are not applied.
fn presentation_offset(elst: &RawBox<'_>, movie_timescale: u32, timescale: u32) -> Result<i64, MuxError> {
    let mut c = Cursor::new(elst);
    let (version, _) = c.full_header()?;
    let count = c.entries(if version == 1 { 20 } else { 12 })?;
    let mut delay: u64 = 0;
    for _ in 0..count {
        let (duration, media_time) = if version == 1 {
            (c.u64()?, c.i64()?)
        } else {
            (u64::from(c.u32()?), i64::from(c.i32()?))
        };
        c.u32()?; // media_rate
        if media_time == -1 {
            delay = delay.saturating_add(duration);
            continue;
        }
        let delay = i64::try_from(scale(delay, timescale, movie_timescale)).unwrap_or(i64::MAX);
        return Ok(delay.saturating_sub(media_time));
    }
    Ok(0)
}
