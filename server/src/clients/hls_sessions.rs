//! HLS playback sessions: an HLS viewer makes no connection that lasts, so it is counted by
//! the session token the HLS handler puts in its playlist's URLs. This is the token index:
//! which client entry a token names, which tokens were kicked (refused for a while), and
//! what a usable token looks like.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A kicked HLS session's token stays refused this long.
const KICKED_KEEP: Duration = Duration::from_secs(600);
/// Longest session token a client may bring.
const MAX_TOKEN_LEN: usize = 64;

/// Why an HLS request is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("hls session {0} was kicked")]
pub struct SessionKicked(pub String);

#[derive(Default)]
pub(super) struct HlsSessions {
    /// Token → client id.
    pub tokens: HashMap<String, u64>,
    /// Kicked tokens, and when.
    kicked: HashMap<String, Instant>,
}

impl HlsSessions {
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.kicked.is_empty()
    }

    pub fn kick(&mut self, token: &str) {
        self.tokens.remove(token);
        self.kicked.insert(token.to_string(), Instant::now());
    }

    pub fn is_kicked(&self, token: &str) -> bool {
        self.kicked.contains_key(token)
    }

    /// Forgets kicks older than [`KICKED_KEEP`].
    pub fn expire_kicks(&mut self) {
        self.kicked.retain(|_, at| at.elapsed() < KICKED_KEEP);
    }
}

/// `token` if a client may use it as its session token: 1 to 64 ASCII letters and digits.
pub fn usable_token(token: Option<&str>) -> Option<&str> {
    token.filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN && t.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// An unguessable-enough session token: the id plus 32 random bits (std's `RandomState`).
pub fn fresh_token(id: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(id);
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    format!("{id:x}{:08x}", h.finish() & 0xffff_ffff)
}
