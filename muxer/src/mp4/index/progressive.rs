//! The sample tables of a progressive file (ISO/IEC 14496-12 §8.5–8.7): decode times
//! (`stts`), composition offsets (`ctts`), sync samples (`stss`), sizes (`stsz`), and the
//! chunks that place them in the file (`stsc`, `stco`/`co64`), expanded into one
//! [`Sample`] per sample.

use crate::mp4::parse::{Cursor, RawBox};
use crate::mp4::table::{Sample, MAX_SAMPLES_PER_TRACK};
use crate::MuxError;

/// The samples of one track's `stbl`, in decode order.
pub(crate) fn stbl_samples(stbl: &RawBox<'_>, track_id: u32) -> Result<Vec<Sample>, MuxError> {
    let stsz = match stbl.find(b"stsz")? {
        Some(stsz) => stsz,
        None if stbl.find(b"stz2")?.is_some() => {
            return Err(stbl.malformed("compact sample sizes (stz2) are not supported"))
        }
        None => return Err(stbl.malformed(format!("track {track_id} has no stsz"))),
    };
    let mut sizes = Cursor::new(&stsz);
    sizes.full_header()?;
    let constant_size = sizes.u32()?;
    let count = if constant_size == 0 {
        sizes.entries(4)?
    } else {
        sizes.u32()? as usize
    };
    if count > MAX_SAMPLES_PER_TRACK {
        return Err(stsz.malformed(format!(
            "track {track_id} has {count} samples, more than the {MAX_SAMPLES_PER_TRACK} allowed"
        )));
    }

    let stts = stbl.require(b"stts")?;
    let mut times = Cursor::new(&stts);
    times.full_header()?;
    let mut times_left = times.entries(8)?;
    let mut run = (0u32, 0u32); // samples left in the current stts entry, its delta

    let ctts = stbl.find(b"ctts")?;
    let mut offsets = ctts.as_ref().map(Cursor::new);
    let mut offsets_left = 0;
    if let Some(c) = offsets.as_mut() {
        c.full_header()?;
        offsets_left = c.entries(8)?;
    }
    let mut offset_run = (0u32, 0i32);

    let mut sync = None;
    if let Some(stss) = stbl.find(b"stss")? {
        let mut c = Cursor::new(&stss);
        c.full_header()?;
        let n = c.entries(4)?;
        let mut numbers = Vec::with_capacity(n);
        for _ in 0..n {
            numbers.push(c.u32()?);
        }
        sync = Some(numbers);
    }
    let mut next_sync = 0;

    let chunk_offsets = chunk_offsets(stbl)?;
    let stsc = stbl.require(b"stsc")?;
    let mut c = Cursor::new(&stsc);
    c.full_header()?;
    let runs = c.entries(12)?;
    let mut chunk_runs = Vec::with_capacity(runs);
    for _ in 0..runs {
        let first_chunk = c.u32()?;
        let per_chunk = c.u32()?;
        c.u32()?; // sample_description_index
        chunk_runs.push((first_chunk, per_chunk));
    }

    let mut samples = Vec::with_capacity(count);
    let mut dts: u64 = 0;
    let mut run_index = 0;
    for (chunk_index, &chunk_offset) in chunk_offsets.iter().enumerate() {
        let chunk_number = chunk_index as u64 + 1;
        while chunk_runs
            .get(run_index + 1)
            .is_some_and(|&(first, _)| u64::from(first) <= chunk_number)
        {
            run_index += 1;
        }
        let per_chunk = chunk_runs.get(run_index).map_or(0, |&(_, n)| n);
        let mut offset = chunk_offset;
        for _ in 0..per_chunk {
            if samples.len() == count {
                break;
            }
            let size = if constant_size == 0 {
                sizes.u32()?
            } else {
                constant_size
            };
            while run.0 == 0 {
                if times_left == 0 {
                    return Err(
                        stts.malformed(format!("track {track_id}: fewer decode times than its {count} samples"))
                    );
                }
                times_left -= 1;
                run = (times.u32()?, times.u32()?);
            }
            run.0 -= 1;
            let mut cts = 0;
            if let Some(c) = offsets.as_mut() {
                while offset_run.0 == 0 && offsets_left > 0 {
                    offsets_left -= 1;
                    // Version 0 offsets are unsigned, but writers put negative ones there too.
                    offset_run = (c.u32()?, c.i32()?);
                }
                if offset_run.0 > 0 {
                    offset_run.0 -= 1;
                    cts = offset_run.1;
                }
            }
            let number = samples.len() as u32 + 1;
            let keyframe = match &sync {
                None => true,
                Some(numbers) => {
                    while numbers.get(next_sync).is_some_and(|&n| n < number) {
                        next_sync += 1;
                    }
                    numbers.get(next_sync) == Some(&number)
                }
            };
            samples.push(Sample {
                offset,
                size,
                dts,
                duration: run.1,
                cts,
                keyframe,
            });
            offset = offset.saturating_add(u64::from(size));
            dts = dts.saturating_add(u64::from(run.1));
        }
    }
    if samples.len() < count {
        return Err(stsc.malformed(format!(
            "track {track_id}: chunks hold {} of its {count} samples",
            samples.len()
        )));
    }
    Ok(samples)
}

/// `stco` (32-bit) or `co64` (64-bit) chunk offsets.
fn chunk_offsets(stbl: &RawBox<'_>) -> Result<Vec<u64>, MuxError> {
    let (stco, wide) = match stbl.find(b"co64")? {
        Some(co64) => (co64, true),
        None => (stbl.require(b"stco")?, false),
    };
    let mut c = Cursor::new(&stco);
    c.full_header()?;
    let n = c.entries(if wide { 8 } else { 4 })?;
    let mut offsets = Vec::with_capacity(n);
    for _ in 0..n {
        offsets.push(if wide { c.u64()? } else { u64::from(c.u32()?) });
    }
    Ok(offsets)
}
