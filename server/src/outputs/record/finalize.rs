//! A recording file's final form: FLV is final as written, up to its last whole tag (a torn
//! tail a crash left is cut off); a fragmented MP4 is turned into a fast-start MP4 (moov
//! before mdat), the file any player opens at once. The same step makes a file a crash
//! interrupted playable, up to its last whole fragment, and reads its duration from the file
//! itself, not from what the recorder last reported.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::ledger::Format;

/// Where the file for `path` is written while it is being recorded.
pub fn part_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// What finalising made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finalized {
    pub size_bytes: u64,
    /// The media's duration, read from the file.
    pub duration_ms: u64,
}

/// Makes the final file at `path` from its `.part` and removes the `.part`. The final file
/// appears whole or not at all (written aside, synced, then renamed).
pub fn finalize(format: Format, part: &Path, path: &Path) -> io::Result<Finalized> {
    let duration_ms;
    match format {
        Format::Flv => {
            duration_ms = flv_whole_tags(part)?;
            std::fs::rename(part, path)?;
        }
        Format::Mp4 => {
            let mut aside = part.to_path_buf();
            aside.set_extension("faststart");
            {
                let mut input = BufReader::new(File::open(part)?);
                let mut output = BufWriter::new(File::create(&aside)?);
                duration_ms = super::mp4::faststart(&mut input, &mut output)?;
                output.flush()?;
                output.get_ref().sync_all()?;
            }
            std::fs::rename(&aside, path)?;
            std::fs::remove_file(part)?;
        }
    }
    if let Some(dir) = path.parent() {
        // The rename is durable once the directory is.
        File::open(dir)?.sync_all()?;
    }
    Ok(Finalized {
        size_bytes: std::fs::metadata(path)?.len(),
        duration_ms,
    })
}

/// Reads the tag headers of the recorder's FLV file at `path` and returns the timestamp of
/// its last whole tag: the file's duration (its tags start at 0). A torn last tag (a crash
/// while it was written) is cut off, so the file ends with a whole tag.
fn flv_whole_tags(path: &Path) -> io::Result<u64> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let (end, last_ms) = {
        let mut r = BufReader::new(&mut file);
        let mut header = [0u8; 9];
        r.read_exact(&mut header)?;
        if &header[..3] != b"FLV" {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not an FLV file"));
        }
        // The header, then PreviousTagSize0.
        let mut end = u64::from(u32::from_be_bytes([header[5], header[6], header[7], header[8]])) + 4;
        r.seek(SeekFrom::Start(end))?;
        let mut last_ms = 0u64;
        let mut tag = [0u8; 11];
        while end + 11 <= len {
            r.read_exact(&mut tag)?;
            let size = u64::from(u32::from_be_bytes([0, tag[1], tag[2], tag[3]]));
            let next = end + 11 + size + 4;
            if next > len {
                break;
            }
            last_ms = last_ms.max(u64::from(u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]])));
            r.seek_relative((size + 4) as i64)?;
            end = next;
        }
        (end, last_ms)
    };
    if end < len {
        file.set_len(end)?;
        file.sync_all()?;
    }
    Ok(last_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use estuary_protocol::flv::tag::{encode_tag, file_header};
    use estuary_protocol::MediaKind;

    #[test]
    fn an_flv_ends_at_its_last_whole_tag_which_tells_its_duration() {
        let dir = std::env::temp_dir().join(format!("estuary-finalize-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (part, path) = (dir.join("a.flv.part"), dir.join("a.flv"));
        let mut bytes = file_header(true, true).to_vec();
        for (kind, ms) in [(MediaKind::Video, 0), (MediaKind::Audio, 23), (MediaKind::Video, 40)] {
            bytes.extend_from_slice(&encode_tag(kind, ms, &[0x17, 1, 0, 0, 0, 9]));
        }
        let whole = bytes.len() as u64;
        // A crash in the middle of the next tag.
        bytes.extend_from_slice(&encode_tag(MediaKind::Video, 80, &[0x27; 100])[..50]);
        std::fs::write(&part, &bytes).unwrap();
        let done = finalize(Format::Flv, &part, &path).unwrap();
        assert_eq!(done.duration_ms, 40);
        assert_eq!(done.size_bytes, whole);
        assert_eq!(std::fs::read(&path).unwrap(), bytes[..whole as usize]);
        assert!(!part.exists());
        // A whole file is left as it is.
        std::fs::write(&part, &bytes[..whole as usize]).unwrap();
        assert_eq!(finalize(Format::Flv, &part, &path).unwrap().size_bytes, whole);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
