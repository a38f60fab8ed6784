//! What a pulled source is doing, for `GET /api/v1/sources/{id}/status`: online or not and
//! since when, its codecs, its bitrate and its last error.

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};
use estuary_protocol::media::Codec;
use serde::Serialize;

/// The bitrate is measured over windows of this many milliseconds.
const KBPS_WINDOW_MS: u128 = 2000;

/// The live state of one source; shared by its runner (writes) and the API (reads).
#[derive(Default)]
pub struct SourceStatus {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    online: bool,
    /// Unix ms of the last change between online and offline (0: never).
    since_ms: u64,
    video: Option<&'static str>,
    audio: Option<&'static str>,
    bytes: u64,
    window_start: Option<Instant>,
    window_bytes: u64,
    kbps: u64,
    last_error: Option<String>,
    last_error_ms: u64,
    /// Tries that failed since the last time the source was online.
    retries: u64,
}

/// A copy of the status, as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusSnapshot {
    pub online: bool,
    /// Unix ms since when the source is online (or offline); 0 if it never ran.
    pub since_ms: u64,
    pub video_codec: Option<&'static str>,
    pub audio_codec: Option<&'static str>,
    pub kbps: u64,
    /// Media bytes pulled since the server started.
    pub bytes: u64,
    pub last_error: Option<String>,
    pub last_error_ms: u64,
    pub retries: u64,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl SourceStatus {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The source delivers media now.
    pub fn online(&self) {
        let mut s = self.lock();
        if !s.online {
            s.online = true;
            s.since_ms = now_ms();
            s.retries = 0;
            s.window_start = Some(Instant::now());
            s.window_bytes = 0;
            s.kbps = 0;
        }
    }

    /// The source stopped delivering; `error` says why (none when it was stopped on purpose).
    pub fn offline(&self, error: Option<String>) {
        let mut s = self.lock();
        if s.online || s.since_ms == 0 {
            s.online = false;
            s.since_ms = now_ms();
        }
        s.kbps = 0;
        s.window_start = None;
        if let Some(error) = error {
            s.last_error = Some(error);
            s.last_error_ms = now_ms();
            s.retries += 1;
        }
    }

    /// One packet of `len` bytes went into the path.
    pub fn count(&self, codec: Codec, len: usize) {
        let mut s = self.lock();
        match codec {
            Codec::Video(c) => s.video = Some(video_name(c)),
            Codec::Audio(c) => s.audio = Some(audio_name(c)),
            Codec::None => {}
        }
        let len = len as u64;
        s.bytes += len;
        s.window_bytes += len;
        let now = Instant::now();
        let start = *s.window_start.get_or_insert(now);
        let elapsed = now.duration_since(start).as_millis();
        if elapsed >= KBPS_WINDOW_MS {
            s.kbps = u64::try_from(u128::from(s.window_bytes) * 8 / elapsed).unwrap_or(u64::MAX);
            s.window_start = Some(now);
            s.window_bytes = 0;
        }
    }

    pub fn is_online(&self) -> bool {
        self.lock().online
    }

    pub fn snapshot(&self) -> StatusSnapshot {
        let s = self.lock();
        StatusSnapshot {
            online: s.online,
            since_ms: s.since_ms,
            video_codec: s.video,
            audio_codec: s.audio,
            kbps: s.kbps,
            bytes: s.bytes,
            last_error: s.last_error.clone(),
            last_error_ms: s.last_error_ms,
            retries: s.retries,
        }
    }
}

fn video_name(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::Avc => "H264",
        VideoCodec::Hevc => "H265",
        VideoCodec::Av1 => "AV1",
        VideoCodec::Vp9 => "VP9",
    }
}

fn audio_name(codec: AudioCodec) -> &'static str {
    match codec {
        AudioCodec::Aac => "AAC",
        AudioCodec::Mp3 => "MP3",
        AudioCodec::Opus => "Opus",
        AudioCodec::Legacy(_) => "legacy",
    }
}
