//! The first playlist of a stream that is just starting: waited for, briefly, so a player
//! that comes with the publisher starts instead of failing on a 404.

use std::time::Duration;

use bytes::Bytes;

use crate::context::Context;
use crate::stream::StreamKey;

/// The stream's playlist. A stream that is live but has no complete segment yet (its
/// publisher just started) is waited for, up to a few fragment durations, so a player that
/// comes with the publisher starts instead of failing on a 404; an unknown stream answers at
/// once.
pub async fn first_playlist(ctx: &Context, key: &StreamKey) -> Option<Bytes> {
    let wait = Duration::from_millis(ctx.config.hls.fragment_ms * 3);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(playlist) = ctx.hls.get(key).and_then(|s| s.playlist()) {
            return Some(playlist);
        }
        let live = ctx.paths.get(key).is_some_and(|p| p.is_live());
        if !live || tokio::time::Instant::now() >= deadline || ctx.shutdown.is_cancelled() {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
