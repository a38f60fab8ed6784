//! The `on_hls` notification of a finished segment (SRS's body), for either segment format,
//! sent in the name of the source whose segment it is, as SRS's is (`srs_app_hls.cpp`): its
//! client id, address, tcUrl and param.

use crate::hooks::{ClientInfo, HlsSegmentInfo, HookSubject, Hooks, NotifyEvent, StreamInfo};
use crate::stream::StreamKey;

/// What an HLS packager needs to tell the hooks of its segments.
pub struct SegmentHook {
    hooks: Hooks,
    key: StreamKey,
    /// The path's source; `None` for a source with no client (a test's feeder).
    source: Option<HookSubject>,
    /// The server's working directory (`on_hls`'s `cwd`).
    cwd: String,
}

impl SegmentHook {
    pub fn new(hooks: Hooks, key: &StreamKey, source: Option<HookSubject>) -> SegmentHook {
        SegmentHook {
            hooks,
            key: key.clone(),
            source,
            cwd: std::env::current_dir()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// Another source took over the path (a reconnect within the grace period): later
    /// segments are in its name.
    pub fn source_changed(&mut self, source: Option<&HookSubject>) {
        self.source = source.cloned();
    }

    /// Tells the hooks that segment `sequence` (`file`, at `uri` beside the playlist) is
    /// complete.
    pub fn segment(&self, file: String, uri: String, sequence: u64, duration_ms: u64) {
        let (app, name) = (&self.key.app, &self.key.name);
        let (client, stream) = match &self.source {
            Some(source) => (source.client.clone(), source.stream.clone()),
            None => (
                ClientInfo::new("", "127.0.0.1", app.clone()),
                StreamInfo {
                    stream: name.clone(),
                    param: String::new(),
                    stream_id: String::new(),
                },
            ),
        };
        // `url` and `m3u8_url` as SRS gives them: `live/cam.m3u8` and the segment beside it.
        let segment = HlsSegmentInfo {
            duration: duration_ms as f64 / 1000.0,
            cwd: self.cwd.clone(),
            file: format!("/{app}/{file}"),
            url: format!("{app}/{uri}"),
            m3u8: format!("/{app}/{name}.m3u8"),
            m3u8_url: format!("{app}/{name}.m3u8"),
            seq_no: sequence,
        };
        self.hooks.notify(&NotifyEvent::Hls {
            client,
            stream,
            segment,
        });
    }
}
