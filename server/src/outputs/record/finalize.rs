//! A recording file's final form: FLV is final as written; a fragmented MP4 is turned into a
//! fast-start MP4 (moov before mdat), the file any player opens at once. The same step makes
//! a file a crash interrupted playable, up to its last whole fragment.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
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
    /// The media's duration, when the format tells it (MP4).
    pub duration_ms: Option<u64>,
}

/// Makes the final file at `path` from its `.part` and removes the `.part`. The final file
/// appears whole or not at all (written aside, synced, then renamed).
pub fn finalize(format: Format, part: &Path, path: &Path) -> io::Result<Finalized> {
    let mut duration_ms = None;
    match format {
        Format::Flv => std::fs::rename(part, path)?,
        Format::Mp4 => {
            let mut aside = part.to_path_buf();
            aside.set_extension("faststart");
            {
                let mut input = BufReader::new(File::open(part)?);
                let mut output = BufWriter::new(File::create(&aside)?);
                duration_ms = Some(super::mp4::faststart(&mut input, &mut output)?);
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
