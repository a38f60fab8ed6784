//! The `on_hls` notification of a finished segment (SRS's body), for either segment format.

use crate::hooks::{ClientInfo, HlsSegmentInfo, Hooks, NotifyEvent, StreamInfo};
use crate::stream::StreamKey;

/// Tells the hooks that segment `sequence` of `key` (`file`, at `uri` beside the playlist)
/// is complete.
pub fn segment_hook(hooks: &Hooks, key: &StreamKey, file: String, uri: String, sequence: u64, duration_ms: u64) {
    let (app, name) = (&key.app, &key.name);
    let client = ClientInfo::new("hls", "127.0.0.1", app.clone());
    let stream = StreamInfo {
        stream: name.clone(),
        param: String::new(),
        stream_id: key.to_string(),
    };
    let segment = HlsSegmentInfo {
        duration: duration_ms as f64 / 1000.0,
        cwd: String::new(),
        file: format!("/{app}/{file}"),
        url: uri,
        m3u8: format!("/{app}/{name}.m3u8"),
        m3u8_url: format!("/{app}/{name}.m3u8"),
        seq_no: sequence,
    };
    hooks.notify(&NotifyEvent::Hls {
        client,
        stream,
        segment,
    });
}
