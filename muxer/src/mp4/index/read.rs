//! Walking a file's top-level boxes with a `Read + Seek` and building its [`Mp4Index`]:
//! the `moov` first (wherever it is), then either its sample tables (progressive) or each
//! `moof` and the `mdat` after it (fragmented). Only `moov` and `moof` are read into memory,
//! each under a size limit; media bytes are never read.

use std::io::{Read, Seek, SeekFrom};

use crate::mp4::index::fragment::{parse_moof, FragmentTrack};
use crate::mp4::index::moov::{parse_moov, SampleDefaults};
use crate::mp4::index::progressive::stbl_samples;
use crate::mp4::parse::RawBox;
use crate::mp4::table::{Mp4Index, TornReason, TornTail, TrackIndex, TrackInfo, MAX_SAMPLES_PER_TRACK};
use crate::MuxError;

/// The largest `moov` read: 512 MiB holds the tables of about 60 million samples.
pub const MAX_MOOV_BYTES: u64 = 512 << 20;

/// The largest `moof` read. A fragment of a second or two has a `moof` of a few KB.
pub const MAX_MOOF_BYTES: u64 = 64 << 20;

/// Indexes any MP4: fragmented (with a possibly torn tail) or progressive.
pub fn read_index<R: Read + Seek>(reader: &mut R) -> Result<Mp4Index, MuxError> {
    index(reader, None)
}

/// Indexes a fragmented MP4 (a recording being written, or left by a crash). A torn tail — a
/// `moof` without its whole `mdat`, a box cut short, bytes that are not a box — is not an
/// error: the index stops at the last whole fragment and [`Mp4Index::torn`] says what was
/// dropped. A file without a whole `moov` is [`MuxError::Mp4NoMovie`].
pub fn index_fragmented<R: Read + Seek>(reader: &mut R) -> Result<Mp4Index, MuxError> {
    index(reader, Some(true))
}

/// Indexes a progressive MP4 from the sample tables of its `moov`. Samples that lie past
/// the end of the file are an error: a progressive file cannot be torn and still be whole.
pub fn index_progressive<R: Read + Seek>(reader: &mut R) -> Result<Mp4Index, MuxError> {
    index(reader, Some(false))
}

/// A top-level box header.
#[derive(Debug, Clone, Copy)]
struct TopBox {
    box_type: [u8; 4],
    offset: u64,
    header_len: u64,
    size: u64,
}

impl TopBox {
    fn end(&self) -> u64 {
        self.offset + self.size
    }
}

enum Top {
    Box(TopBox),
    End,
    Torn(TornReason),
}

struct Walker<'r, R> {
    reader: &'r mut R,
    file_len: u64,
}

impl<R: Read + Seek> Walker<'_, R> {
    fn next(&mut self, offset: u64) -> Result<Top, MuxError> {
        let left = self.file_len.saturating_sub(offset);
        if left == 0 {
            return Ok(Top::End);
        }
        let partial = |declared| {
            Top::Torn(TornReason::PartialBox {
                box_type: String::new(),
                offset,
                declared,
            })
        };
        if left < 8 {
            return Ok(partial(8));
        }
        let mut head = [0u8; 16];
        self.read_at(offset, &mut head[..8], "reading a box header")?;
        let box_type = [head[4], head[5], head[6], head[7]];
        if !box_type.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Ok(Top::Torn(TornReason::Garbage { offset }));
        }
        let (size, header_len) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
            0 => (left, 8),
            1 => {
                if left < 16 {
                    return Ok(partial(16));
                }
                self.read_at(offset + 8, &mut head[8..16], "reading a box header")?;
                let mut large = [0u8; 8];
                large.copy_from_slice(&head[8..16]);
                (u64::from_be_bytes(large), 16)
            }
            size => (u64::from(size), 8),
        };
        if size < header_len {
            return Ok(Top::Torn(TornReason::Garbage { offset }));
        }
        if size > left {
            return Ok(Top::Torn(TornReason::PartialBox {
                box_type: String::from_utf8_lossy(&box_type).into_owned(),
                offset,
                declared: size,
            }));
        }
        Ok(Top::Box(TopBox {
            box_type,
            offset,
            header_len,
            size,
        }))
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8], during: &'static str) -> Result<(), MuxError> {
        self.reader
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.reader.read_exact(buf))
            .map_err(|e| MuxError::mp4_io(during, offset, &e))
    }

    /// Reads a whole box into memory, refusing one larger than `limit`.
    fn read_box(&mut self, top: &TopBox, limit: u64, during: &'static str) -> Result<Vec<u8>, MuxError> {
        if top.size > limit {
            return Err(MuxError::Mp4BoxTooLarge {
                box_type: String::from_utf8_lossy(&top.box_type).into_owned(),
                offset: top.offset,
                size: top.size,
                limit,
            });
        }
        let mut buf = vec![0u8; top.size as usize];
        self.read_at(top.offset, &mut buf, during)?;
        Ok(buf)
    }
}

fn raw<'a>(top: &TopBox, buf: &'a [u8]) -> RawBox<'a> {
    RawBox {
        box_type: top.box_type,
        offset: top.offset,
        header_len: top.header_len as usize,
        payload: buf.get(top.header_len as usize..).unwrap_or_default(),
    }
}

/// What the `moov` gives: per track, its description, fragment defaults and (progressive)
/// samples.
struct Parsed {
    timescale: u32,
    fragmented: bool,
    tracks: Vec<(TrackInfo, SampleDefaults, Vec<crate::mp4::table::Sample>)>,
}

fn index<R: Read + Seek>(reader: &mut R, want_fragmented: Option<bool>) -> Result<Mp4Index, MuxError> {
    let file_len = reader
        .seek(SeekFrom::End(0))
        .map_err(|e| MuxError::mp4_io("finding the file length", 0, &e))?;
    let mut walker = Walker { reader, file_len };

    // The moov, wherever it is among the top-level boxes.
    let mut offset = 0;
    let moov = loop {
        match walker.next(offset)? {
            Top::Box(top) if &top.box_type == b"moov" => break top,
            Top::Box(top) => offset = top.end(),
            Top::End | Top::Torn(_) => return Err(MuxError::Mp4NoMovie { scanned: offset }),
        }
    };
    let parsed = {
        let buf = walker.read_box(&moov, MAX_MOOV_BYTES, "reading the moov")?;
        let movie = parse_moov(&raw(&moov, &buf))?;
        let mut tracks = Vec::with_capacity(movie.tracks.len());
        for track in movie.tracks {
            let samples = if movie.fragmented {
                Vec::new()
            } else {
                stbl_samples(&track.stbl, track.info.track_id)?
            };
            tracks.push((track.info, track.defaults, samples));
        }
        Parsed {
            timescale: movie.timescale,
            fragmented: movie.fragmented,
            tracks,
        }
    };
    match want_fragmented {
        Some(true) if !parsed.fragmented => {
            return Err(MuxError::mp4_malformed(
                *b"moov",
                moov.offset,
                "no mvex: the file is not fragmented",
            ))
        }
        Some(false) if parsed.fragmented => {
            return Err(MuxError::mp4_malformed(
                *b"moov",
                moov.offset,
                "has mvex: the file is fragmented",
            ))
        }
        _ => {}
    }
    if parsed.fragmented {
        index_fragments(&mut walker, parsed)
    } else {
        let mut index = Mp4Index {
            fragmented: false,
            movie_timescale: parsed.timescale,
            tracks: Vec::new(),
            fragments: 0,
            file_len,
            torn: None,
        };
        for (info, _, samples) in parsed.tracks {
            if let Some(s) = samples
                .iter()
                .find(|s| s.offset.saturating_add(u64::from(s.size)) > file_len)
            {
                return Err(MuxError::mp4_malformed(
                    *b"stbl",
                    moov.offset,
                    format!(
                        "track {} has a sample at byte {} past the end of the {file_len}-byte file (truncated?)",
                        info.track_id, s.offset
                    ),
                ));
            }
            index.tracks.push(TrackIndex { info, samples });
        }
        Ok(index)
    }
}

fn index_fragments<R: Read + Seek>(walker: &mut Walker<'_, R>, parsed: Parsed) -> Result<Mp4Index, MuxError> {
    let mut fragment_tracks: Vec<FragmentTrack> = parsed
        .tracks
        .iter()
        .map(|(info, defaults, _)| FragmentTrack {
            track_id: info.track_id,
            defaults: *defaults,
            next_dts: 0,
        })
        .collect();
    let mut tracks: Vec<TrackIndex> = parsed
        .tracks
        .into_iter()
        .map(|(info, _, samples)| TrackIndex { info, samples })
        .collect();
    let mut fragments = 0;
    let mut offset = 0;
    let mut torn = None;
    loop {
        let top = match walker.next(offset)? {
            Top::Box(top) => top,
            Top::End => break,
            Top::Torn(reason) => {
                torn = Some(reason);
                break;
            }
        };
        if &top.box_type != b"moof" {
            offset = top.end();
            continue;
        }
        let buf = walker.read_box(&top, MAX_MOOF_BYTES, "reading a moof")?;
        let mdat = match walker.next(top.end())? {
            Top::Box(mdat) if &mdat.box_type == b"mdat" => mdat,
            _ => {
                torn = Some(TornReason::FragmentWithoutData { offset: top.offset });
                break;
            }
        };
        let most = tracks.iter().map(|t| t.samples.len()).max().unwrap_or(0);
        let budget = MAX_SAMPLES_PER_TRACK.saturating_sub(most);
        let parsed = match parse_moof(&raw(&top, &buf), &fragment_tracks, budget, mdat.end()) {
            Ok(parsed) => parsed,
            Err(e) => {
                torn = Some(TornReason::BadFragment {
                    offset: top.offset,
                    reason: e.to_string(),
                });
                break;
            }
        };
        let has_data = parsed.data_end > parsed.data_start;
        if has_data && (parsed.data_start < mdat.offset + mdat.header_len || parsed.data_end > mdat.end()) {
            torn = Some(TornReason::BadFragment {
                offset: top.offset,
                reason: format!(
                    "samples at bytes {}..{} lie outside the mdat at {}..{}",
                    parsed.data_start,
                    parsed.data_end,
                    mdat.offset,
                    mdat.end()
                ),
            });
            break;
        }
        for ((track, cursor), samples) in tracks.iter_mut().zip(&mut fragment_tracks).zip(parsed.per_track) {
            if let Some(last) = samples.last() {
                cursor.next_dts = last.dts + u64::from(last.duration);
            }
            track.samples.extend(samples);
        }
        fragments += 1;
        offset = mdat.end();
    }
    Ok(Mp4Index {
        fragmented: true,
        movie_timescale: parsed.timescale,
        tracks,
        fragments,
        file_len: walker.file_len,
        torn: torn.map(|reason| TornTail {
            valid_len: offset,
            file_len: walker.file_len,
            reason,
        }),
    })
}
