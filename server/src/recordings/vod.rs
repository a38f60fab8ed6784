//! What VOD playback needs of a finished MP4 recording: its sample index and HLS segment
//! plan (`muxer::vod`), read once from the file's `moov` and kept for the next requests
//! (keyed by path and modification time, so a replaced file is read again), and the bytes of
//! one HLS segment, read from the file and muxed on the fly. Blocking: call from
//! `spawn_blocking`.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use estuary_muxer::mp4::read_index;
use estuary_muxer::vod::{VodTs, DEFAULT_TARGET_MS};

/// Indexes kept at most (an hour of 30 fps video is about 8 MB of index).
const CACHED: usize = 32;

/// The indexes of recently played recordings.
#[derive(Default)]
pub struct VodIndexes {
    cache: Mutex<HashMap<PathBuf, (SystemTime, Arc<VodTs>)>>,
}

impl VodIndexes {
    /// The HLS plan of the MP4 at `path`. An error says why it cannot be played as HLS
    /// (unsupported codec, unreadable file); the file itself may still be served.
    pub fn get(&self, path: &Path) -> Result<Arc<VodTs>, String> {
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((when, vod)) = cache.get(path) {
            if *when == modified {
                return Ok(Arc::clone(vod));
            }
        }
        drop(cache);
        let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let index = read_index(&mut BufReader::new(file)).map_err(|e| e.to_string())?;
        let vod = Arc::new(VodTs::new(index, DEFAULT_TARGET_MS).map_err(|e| e.to_string())?);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHED {
            // Forget the oldest file; a replay reads its index again.
            if let Some(oldest) = cache.iter().min_by_key(|(_, (when, _))| *when).map(|(p, _)| p.clone()) {
                cache.remove(&oldest);
            }
        }
        cache.insert(path.to_path_buf(), (modified, Arc::clone(&vod)));
        Ok(vod)
    }
}

/// HLS segment `n` of the MP4 at `path`, its timestamps moved by `offset_ms`.
pub fn segment(vod: &VodTs, path: &Path, n: usize, offset_ms: u64) -> Result<Bytes, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    vod.mux_segment(n, offset_ms, |range| {
        let mut buf = vec![0; range.len as usize];
        file.read_exact_at(&mut buf, range.offset)?;
        Ok(Bytes::from(buf))
    })
    .map_err(|e| e.to_string())
}
