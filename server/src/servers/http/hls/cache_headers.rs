//! `Cache-Control` of HLS answers, for players and for shared caches (REFERENCE.md §7 item
//! 11, §8 RFC 8216 App. B, §9 "HLS behind nginx"): a live playlist changes every segment, so
//! a cache keeps it at most half a fragment (RFC 8216bis App. B: ½ target duration; at least
//! 1 s, HTTP's unit); a segment's name is never reused (it carries the packaging run and
//! sequence number), so it is kept a day; a 404 (a stream not yet live, a segment gone) is
//! kept 1 s, so a cache absorbs a storm of misses and still sees the stream come; an ended
//! playlist (`EXT-X-ENDLIST`) no longer changes and is kept as long as it is served
//! (`hls.dispose_ms`).
//!
//! Outside CDN mode the playlist's URIs carry the viewer's session, so it is `private`.

use hyper::header::{HeaderValue, CACHE_CONTROL};
use hyper::{Response, StatusCode};

use super::super::response::Body;
use crate::config::HlsConfig;

/// A segment: immutable.
pub const SEGMENT: &str = "public, max-age=86400, immutable";
/// A playlist whose URIs carry a viewer's session: the player's own, briefly.
pub const PRIVATE_PLAYLIST: &str = "private, max-age=1";
/// A 404: briefly, by anyone.
pub const NOT_FOUND: &str = "public, max-age=1";

/// A playlist that carries nothing per viewer: live for half a fragment, ended for as long
/// as it is served.
pub fn shared_playlist(config: &HlsConfig, ended: bool) -> String {
    let seconds = if ended {
        (config.dispose_ms / 1000).max(1)
    } else {
        (config.fragment_ms / 2000).max(1)
    };
    format!("public, max-age={seconds}")
}

/// Gives a 404 that says nothing of caching the brief caching of [`NOT_FOUND`].
pub fn on_not_found(response: &mut Response<Body>) {
    if response.status() == StatusCode::NOT_FOUND && !response.headers().contains_key(CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static(NOT_FOUND));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_playlists_are_kept_half_a_fragment_and_ended_ones_while_served() {
        let config = HlsConfig::default();
        assert_eq!(shared_playlist(&config, false), "public, max-age=1");
        assert_eq!(shared_playlist(&config, true), "public, max-age=30");
        let long = HlsConfig {
            fragment_ms: 6000,
            ..HlsConfig::default()
        };
        assert_eq!(shared_playlist(&long, false), "public, max-age=3");
    }
}
