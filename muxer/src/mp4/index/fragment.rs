//! One movie fragment's `moof` (ISO/IEC 14496-12 §8.8): per track (`traf`), the defaults of
//! `tfhd`, the decode time of `tfdt` and the sample runs of `trun`, turned into samples
//! located in the file. Parsing commits nothing: the caller keeps the samples only once the
//! `mdat` holding them is known to be whole.

use crate::mp4::index::moov::SampleDefaults;
use crate::mp4::parse::{Cursor, RawBox};
use crate::mp4::table::Sample;
use crate::MuxError;

const TFHD_BASE_DATA_OFFSET: u32 = 0x01;
const TFHD_SAMPLE_DESCRIPTION_INDEX: u32 = 0x02;
const TFHD_DEFAULT_DURATION: u32 = 0x08;
const TFHD_DEFAULT_SIZE: u32 = 0x10;
const TFHD_DEFAULT_FLAGS: u32 = 0x20;
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;

const TRUN_DATA_OFFSET: u32 = 0x01;
const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x04;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_CTS: u32 = 0x800;

/// `sample_is_non_sync_sample` in sample flags (§8.8.3.1).
pub(crate) const SAMPLE_IS_NON_SYNC: u32 = 0x0001_0000;

/// What a fragment's parse needs to know of a track of the movie.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FragmentTrack {
    pub(crate) track_id: u32,
    pub(crate) defaults: SampleDefaults,
    /// Decode time where the track's next sample starts if a `traf` has no `tfdt`.
    pub(crate) next_dts: u64,
}

/// The samples of one `moof`, per track in the order of `tracks`, and the byte range of the
/// file they occupy.
pub(crate) struct FragmentSamples {
    pub(crate) per_track: Vec<Vec<Sample>>,
    pub(crate) data_start: u64,
    pub(crate) data_end: u64,
}

/// Parses `moof`, whose samples must end by `data_end` (the end of the `mdat` after it) and
/// number at most `samples_left`.
pub(crate) fn parse_moof(
    moof: &RawBox<'_>,
    tracks: &[FragmentTrack],
    samples_left: usize,
    data_end: u64,
) -> Result<FragmentSamples, MuxError> {
    let mut out = FragmentSamples {
        per_track: vec![Vec::new(); tracks.len()],
        data_start: u64::MAX,
        data_end: 0,
    };
    let mut budget = samples_left;
    // Without a base offset or default-base-is-moof, a traf's data follows the previous one's.
    let mut previous_end = moof.offset;
    for child in moof.children() {
        let traf = child?;
        if &traf.box_type != b"traf" {
            continue;
        }
        let tfhd = traf.require(b"tfhd")?;
        let mut c = Cursor::new(&tfhd);
        let (_, flags) = c.full_header()?;
        let track_id = c.u32()?;
        let Some(index) = tracks.iter().position(|t| t.track_id == track_id) else {
            return Err(tfhd.malformed(format!("track {track_id} is not in the moov")));
        };
        let track = tracks[index];
        let base = if flags & TFHD_BASE_DATA_OFFSET != 0 {
            c.u64()?
        } else if flags & TFHD_DEFAULT_BASE_IS_MOOF != 0 {
            moof.offset
        } else {
            previous_end
        };
        if flags & TFHD_SAMPLE_DESCRIPTION_INDEX != 0 {
            c.u32()?;
        }
        let mut defaults = track.defaults;
        if flags & TFHD_DEFAULT_DURATION != 0 {
            defaults.duration = c.u32()?;
        }
        if flags & TFHD_DEFAULT_SIZE != 0 {
            defaults.size = c.u32()?;
        }
        if flags & TFHD_DEFAULT_FLAGS != 0 {
            defaults.flags = c.u32()?;
        }
        let samples = &mut out.per_track[index];
        let mut dts = match traf.find(b"tfdt")? {
            Some(tfdt) => {
                let mut c = Cursor::new(&tfdt);
                let (version, _) = c.full_header()?;
                c.u32_or_u64(version)?
            }
            None => samples.last().map_or(track.next_dts, |s| s.dts + u64::from(s.duration)),
        };
        let mut pos = base;
        for child in traf.children() {
            let trun = child?;
            if &trun.box_type != b"trun" {
                continue;
            }
            let mut c = Cursor::new(&trun);
            let (version, flags) = c.full_header()?;
            let per_sample = 4 * [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTS]
                .iter()
                .filter(|&&f| flags & f != 0)
                .count();
            let count = c.u32()? as usize;
            if count > budget {
                return Err(trun.malformed(format!("{count} samples exceed what a track may hold")));
            }
            budget -= count;
            if flags & TRUN_DATA_OFFSET != 0 {
                pos = base.checked_add_signed(i64::from(c.i32()?)).unwrap_or(u64::MAX);
            }
            let first_flags = if flags & TRUN_FIRST_SAMPLE_FLAGS != 0 {
                Some(c.u32()?)
            } else {
                None
            };
            if count.saturating_mul(per_sample) > c.remaining() {
                return Err(trun.malformed(format!("{count} samples do not fit in {} bytes", c.remaining())));
            }
            if flags & TRUN_SIZE == 0 && defaults.size == 0 && count > 0 {
                // Without sizes, nothing bounds the count by the bytes that back it.
                return Err(trun.malformed(format!("{count} samples without a size")));
            }
            samples.reserve(count.min(c.remaining() / 4 + 1));
            for i in 0..count {
                let duration = if flags & TRUN_DURATION != 0 {
                    c.u32()?
                } else {
                    defaults.duration
                };
                let size = if flags & TRUN_SIZE != 0 {
                    c.u32()?
                } else {
                    defaults.size
                };
                let sample_flags = if flags & TRUN_FLAGS != 0 {
                    c.u32()?
                } else {
                    defaults.flags
                };
                let sample_flags = match first_flags {
                    Some(first) if i == 0 => first,
                    _ => sample_flags,
                };
                let cts = if flags & TRUN_CTS == 0 {
                    0
                } else if version == 0 {
                    // Unsigned in version 0; values past i32::MAX are negative offsets in practice.
                    c.u32()? as i32
                } else {
                    c.i32()?
                };
                samples.push(Sample {
                    offset: pos,
                    size,
                    dts,
                    duration,
                    cts,
                    keyframe: sample_flags & SAMPLE_IS_NON_SYNC == 0,
                });
                let end = pos.saturating_add(u64::from(size));
                if end > data_end {
                    return Err(trun.malformed(format!("sample #{i} ends at byte {end}, past its mdat")));
                }
                if size > 0 {
                    out.data_start = out.data_start.min(pos);
                    out.data_end = out.data_end.max(end);
                }
                pos = end;
                dts = dts.saturating_add(u64::from(duration));
            }
        }
        previous_end = pos;
    }
    if out.data_start > out.data_end {
        out.data_start = out.data_end;
    }
    Ok(out)
}
