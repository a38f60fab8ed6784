//! Finalising a recording: a fragmented MP4 (possibly torn by a crash) rewritten as a
//! progressive, fast-start MP4 — `ftyp`, `moov`, then one `mdat` — the layout of
//! `ffmpeg -c copy -movflags +faststart`, which browsers, ffprobe and nginx-vod-module open
//! without reading past the `moov`.
//!
//! It streams: the input is indexed (only `moov` and `moof` boxes are read into memory), the
//! new `moov` is built from the sample tables, and the samples are then copied range by range
//! through one fixed buffer. Memory is the sample tables (about 32 bytes a sample in the
//! index plus up to 16 in the new `moov`), never the media.
//!
//! Samples are laid out in chunks of about one second (or 4 MiB) per track, interleaved by
//! time. Tracks keep their places on the timeline, from the first presented sample of any
//! track at 0 (as `ffmpeg -c copy` does). Edit lists are ffmpeg's, and only where needed: a
//! track whose first frame is presented after its decode time (B-frames) starts its media
//! at that composition offset, and a track that starts later than the movie gets an empty
//! edit for the delay first.

use std::io::{Read, Seek, SeekFrom, Write};

use estuary_protocol::MediaKind;

use crate::mp4::boxes::mdat_header;
use crate::mp4::index::read_index;
use crate::mp4::progressive::{to_movie_ceil, write_progressive_ftyp, write_progressive_moov, Edit, TrackLayout};
use crate::mp4::table::{Mp4Index, TornTail, TrackIndex};
use crate::MuxError;

/// A chunk ends after about this much of its track's time...
const CHUNK_SECONDS: u64 = 1;
/// ...or this many bytes.
const CHUNK_BYTES: u64 = 4 << 20;
/// The copy buffer.
const COPY_BUFFER: usize = 1 << 20;

/// What [`faststart`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaststartReport {
    pub tracks: Vec<TrackReport>,
    /// `mvhd` duration: the longest track's presentation, in ms.
    pub duration_ms: u64,
    /// Bytes written to the output.
    pub bytes_written: u64,
    /// Set when the input's torn tail was dropped (a crashed recording).
    pub torn: Option<TornTail>,
    /// Tracks of the input with no sample, left out of the output.
    pub empty_tracks: Vec<u32>,
}

/// One track of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackReport {
    pub track_id: u32,
    pub kind: Option<MediaKind>,
    /// Sample entry type: `avc1`, `hvc1`, `mp4a`.
    pub codec: String,
    pub samples: u64,
    pub keyframes: u64,
    pub bytes: u64,
    /// `tkhd` duration in ms: where its presentation ends on the movie timeline.
    pub duration_ms: u64,
}

/// Rewrites the MP4 read from `input` (fragmented, torn or not; or progressive) as a
/// fast-start MP4 into `output`.
pub fn faststart<R: Read + Seek, W: Write>(input: &mut R, output: &mut W) -> Result<FaststartReport, MuxError> {
    let index = read_index(input)?;
    faststart_indexed(&index, input, output)
}

/// [`faststart`] for a file already indexed (with [`read_index`]); `input` must be the file
/// the index was read from.
pub fn faststart_indexed<R: Read + Seek, W: Write>(
    index: &Mp4Index,
    input: &mut R,
    output: &mut W,
) -> Result<FaststartReport, MuxError> {
    write_faststart(index, input, output, u64::from(u32::MAX))
}

/// Writes the file, with 64-bit chunk offsets (`co64`) when it is longer than `co64_past`
/// bytes (4 GiB - 1, or less in tests).
pub(crate) fn write_faststart<R: Read + Seek, W: Write>(
    index: &Mp4Index,
    input: &mut R,
    output: &mut W,
    co64_past: u64,
) -> Result<FaststartReport, MuxError> {
    let tracks: Vec<&TrackIndex> = index.tracks.iter().filter(|t| !t.samples.is_empty()).collect();
    if tracks.is_empty() {
        return Err(MuxError::Mp4Empty {
            valid_len: index.valid_len(),
        });
    }
    let zero = movie_zero(&tracks);
    let mut layouts: Vec<TrackLayout<'_>> = tracks.iter().map(|t| layout(t, zero)).collect();
    let movie_duration = layouts.iter().map(|l| l.presentation_duration).max().unwrap_or(0);

    let chunks = plan_chunks(&tracks);
    let payload: u64 = tracks.iter().map(|t| t.bytes()).sum();
    let has_avc = tracks.iter().any(|t| &t.info.codec == b"avc1");
    let ftyp = write_progressive_ftyp(has_avc);
    let header = mdat_header(payload);
    for layout in layouts.iter_mut() {
        layout.chunks = vec![(0, 0); chunks.iter().filter(|c| c.track == layout.track.info.track_id).count()];
    }
    fill_chunks(&mut layouts, &chunks, 0);
    let narrow_len = write_progressive_moov(&layouts, movie_duration, false).len() as u64;
    let co64 = ftyp.len() as u64 + narrow_len + header.len() as u64 + payload > co64_past;
    let moov_len = if co64 {
        write_progressive_moov(&layouts, movie_duration, true).len() as u64
    } else {
        narrow_len
    };
    let data_start = ftyp.len() as u64 + moov_len + header.len() as u64;
    fill_chunks(&mut layouts, &chunks, data_start);
    let moov = write_progressive_moov(&layouts, movie_duration, co64);

    let mut out = Output {
        inner: output,
        written: 0,
    };
    out.write(&ftyp)?;
    out.write(&moov)?;
    out.write(&header)?;
    let mut copier = Copier {
        input,
        position: None,
        buffer: vec![0; COPY_BUFFER],
    };
    for chunk in &chunks {
        let Some(track) = tracks.iter().find(|t| t.info.track_id == chunk.track) else {
            continue;
        };
        let samples = &track.samples[chunk.first..chunk.first + chunk.count];
        // Samples that follow each other in the input are copied as one range.
        let mut range: Option<(u64, u64)> = None;
        for s in samples {
            match range {
                Some((start, len)) if start + len == s.offset => range = Some((start, len + u64::from(s.size))),
                _ => {
                    if let Some((start, len)) = range {
                        copier.copy(start, len, &mut out)?;
                    }
                    range = Some((s.offset, u64::from(s.size)));
                }
            }
        }
        if let Some((start, len)) = range {
            copier.copy(start, len, &mut out)?;
        }
    }
    out.inner
        .flush()
        .map_err(|e| MuxError::mp4_io("flushing the output", out.written, &e))?;

    Ok(FaststartReport {
        tracks: layouts
            .iter()
            .map(|l| TrackReport {
                track_id: l.track.info.track_id,
                kind: l.track.info.kind(),
                codec: l.track.info.codec_name(),
                samples: l.track.samples.len() as u64,
                keyframes: l.track.samples.iter().filter(|s| s.keyframe).count() as u64,
                bytes: l.track.bytes(),
                duration_ms: l.presentation_duration,
            })
            .collect(),
        duration_ms: movie_duration,
        bytes_written: out.written,
        torn: index.torn.clone(),
        empty_tracks: index
            .tracks
            .iter()
            .filter(|t| t.samples.is_empty())
            .map(|t| t.info.track_id)
            .collect(),
    })
}

/// A time as a fraction of a second: `ticks / timescale`.
#[derive(Debug, Clone, Copy)]
struct Instant {
    ticks: i128,
    timescale: i128,
}

impl Instant {
    fn before(&self, other: &Instant) -> bool {
        self.ticks * other.timescale < other.ticks * self.timescale
    }
}

/// Where a track's first sample is decoded on the movie timeline of its source.
fn first_decode(track: &TrackIndex) -> Instant {
    let first = track.samples.first().map_or(0, |s| s.dts);
    Instant {
        ticks: i128::from(first) + i128::from(track.info.presentation_offset),
        timescale: i128::from(track.info.timescale.max(1)),
    }
}

/// When a track's first sample is presented on the movie timeline of its source.
fn first_presentation(track: &TrackIndex) -> Instant {
    let start = first_decode(track);
    let cts = track.samples.first().map_or(0, |s| s.cts).max(0);
    Instant {
        ticks: start.ticks + i128::from(cts),
        ..start
    }
}

/// The earliest first presentation of all tracks: the output's time 0, as ffmpeg takes the
/// input's start time as its 0.
fn movie_zero(tracks: &[&TrackIndex]) -> Instant {
    let mut zero = first_presentation(tracks[0]);
    for track in &tracks[1..] {
        let start = first_presentation(track);
        if start.before(&zero) {
            zero = start;
        }
    }
    zero
}

fn layout<'a>(track: &'a TrackIndex, zero: Instant) -> TrackLayout<'a> {
    let samples = &track.samples;
    let timescale = track.info.timescale.max(1);
    // Each duration is the distance to the next decode time, so the new stts reproduces the
    // source's decode times exactly (a gap between fragments lengthens one sample).
    let durations: Vec<u32> = samples
        .windows(2)
        .map(|w| u32::try_from(w[1].dts.saturating_sub(w[0].dts)).unwrap_or(u32::MAX))
        .chain(samples.last().map(|s| s.duration))
        .collect();
    let media_time = i64::from(samples.first().map_or(0, |s| s.cts).max(0));
    let start = first_decode(track);
    // (start + media_time - zero) in the movie timescale, rounded down (ffmpeg's delay).
    let shifted = (start.ticks + i128::from(media_time)) * zero.timescale - zero.ticks * start.timescale;
    let delay = (shifted * 1000).div_euclid(start.timescale * zero.timescale).max(0) as u64;
    let mut end_pts: i128 = 0;
    let mut dts: i128 = 0;
    for (s, &d) in samples.iter().zip(&durations) {
        end_pts = end_pts.max(dts + i128::from(s.cts) + i128::from(d));
        dts += i128::from(d);
    }
    let shown = u64::try_from(end_pts - i128::from(media_time)).unwrap_or(0);
    let media_duration: u64 = durations.iter().map(|&d| u64::from(d)).sum();
    let (edit, presentation_duration) = if delay > 0 || media_time > 0 {
        let duration = to_movie_ceil(shown, timescale);
        (
            Some(Edit {
                delay,
                media_time,
                duration,
            }),
            delay + duration,
        )
    } else {
        (None, to_movie_ceil(media_duration, timescale))
    };
    TrackLayout {
        track,
        durations,
        edit,
        presentation_duration,
        chunks: Vec::new(),
    }
}

/// A run of consecutive samples of one track, written together.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    track: u32,
    first: usize,
    count: usize,
    bytes: u64,
    start: Instant,
}

/// Cuts each track into chunks and orders all chunks by their start time.
fn plan_chunks(tracks: &[&TrackIndex]) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    for track in tracks {
        let timescale = u64::from(track.info.timescale.max(1));
        let first = first_decode(track);
        let first_dts = track.samples.first().map_or(0, |s| s.dts);
        let mut open: Option<(Chunk, u64)> = None;
        for (i, s) in track.samples.iter().enumerate() {
            if let Some((chunk, start_dts)) = open.as_mut() {
                let long = s.dts.saturating_sub(*start_dts) >= CHUNK_SECONDS * timescale;
                if !long && chunk.bytes + u64::from(s.size) <= CHUNK_BYTES {
                    chunk.count += 1;
                    chunk.bytes += u64::from(s.size);
                    continue;
                }
                chunks.push(*chunk);
            }
            let start = Instant {
                ticks: first.ticks + i128::from(s.dts - first_dts),
                timescale: first.timescale,
            };
            open = Some((
                Chunk {
                    track: track.info.track_id,
                    first: i,
                    count: 1,
                    bytes: u64::from(s.size),
                    start,
                },
                s.dts,
            ));
        }
        chunks.extend(open.map(|(chunk, _)| chunk));
    }
    // Stable: at equal times, tracks keep their order (video first).
    chunks.sort_by(|a, b| {
        let (x, y) = (a.start.ticks * b.start.timescale, b.start.ticks * a.start.timescale);
        x.cmp(&y)
    });
    chunks
}

/// Writes each chunk's file offset (from `data_start`, in layout order) and sample count
/// into its track's layout.
fn fill_chunks(layouts: &mut [TrackLayout<'_>], chunks: &[Chunk], data_start: u64) {
    let mut next = vec![0usize; layouts.len()];
    let mut offset = data_start;
    for chunk in chunks {
        if let Some(i) = layouts.iter().position(|l| l.track.info.track_id == chunk.track) {
            if let Some(slot) = layouts[i].chunks.get_mut(next[i]) {
                *slot = (offset, chunk.count as u32);
            }
            next[i] += 1;
        }
        offset += chunk.bytes;
    }
}

struct Output<'w, W> {
    inner: &'w mut W,
    written: u64,
}

impl<W: Write> Output<'_, W> {
    fn write(&mut self, data: &[u8]) -> Result<(), MuxError> {
        self.inner
            .write_all(data)
            .map_err(|e| MuxError::mp4_io("writing the output", self.written, &e))?;
        self.written += data.len() as u64;
        Ok(())
    }
}

struct Copier<'r, R> {
    input: &'r mut R,
    /// Where the input is, when known, to skip needless seeks.
    position: Option<u64>,
    buffer: Vec<u8>,
}

impl<R: Read + Seek> Copier<'_, R> {
    fn copy<W: Write>(&mut self, start: u64, len: u64, out: &mut Output<'_, W>) -> Result<(), MuxError> {
        if self.position != Some(start) {
            self.input
                .seek(SeekFrom::Start(start))
                .map_err(|e| MuxError::mp4_io("seeking to a sample", start, &e))?;
        }
        self.position = None;
        let mut at = start;
        let mut left = len;
        while left > 0 {
            let n = left.min(self.buffer.len() as u64) as usize;
            self.input
                .read_exact(&mut self.buffer[..n])
                .map_err(|e| MuxError::mp4_io("reading samples", at, &e))?;
            out.write(&self.buffer[..n])?;
            at += n as u64;
            left -= n as u64;
        }
        self.position = Some(at);
        Ok(())
    }
}
