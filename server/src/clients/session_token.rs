//! HLS session tokens, signed by the server, so a client cannot mint them: a request whose
//! token does not verify is refused before anything is looked up, created or asked.
//!
//! A token is 48 lowercase hex digits (URL-safe and alphanumeric, as SRS's client ids are)
//! of 24 bytes:
//!
//! ```text
//! id (8, big-endian) | issued (4, big-endian) | HMAC-SHA256(secret, "estuary-hls-session-v1" | id | issued | len(app) | app | stream)[..12]
//! ```
//!
//! - `secret` is 32 random bytes drawn when the process starts (`getrandom`); tokens do not
//!   survive a restart (nor do the sessions they name).
//! - `id` names the playback session: random for a fresh session, or derived (a keyed hash of
//!   the client's address, user agent and stream) for a player that reloads the playlist URL
//!   without a token, so its reloads stay one session.
//! - `issued` is seconds since the process started (monotonic: a wall-clock jump changes
//!   nothing). A token is good for [`TOKEN_TTL`] after it was issued; a session's token is
//!   re-issued (same id) once it is half that old, so the segment URLs of a playlist always
//!   carry a good one.
//! - The MAC covers the stream, so a token issued for `live/a` does not verify for `live/b`.
//!   96 bits of MAC: forging one takes ~2^95 guesses, each a request.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::stream::StreamKey;

/// How long a token is good for after it was issued.
pub const TOKEN_TTL: Duration = Duration::from_secs(600);
const MAC_LEN: usize = 12;
const RAW_LEN: usize = 8 + 4 + MAC_LEN;
/// Length of a token's text.
pub const TOKEN_LEN: usize = RAW_LEN * 2;
const DOMAIN: &[u8] = b"estuary-hls-session-v1";

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a session token")]
    Malformed,
    #[error("session token not signed by this server for this stream")]
    Forged,
    #[error("session token expired")]
    Expired,
}

/// What a verified token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionToken {
    pub id: u64,
    /// Seconds since the process started.
    pub issued: u32,
}

/// Issues and verifies tokens with the process's secret.
pub struct SessionTokens {
    secret: [u8; 32],
    epoch: Instant,
}

impl std::fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionTokens(..)")
    }
}

impl Default for SessionTokens {
    fn default() -> Self {
        SessionTokens::new()
    }
}

impl SessionTokens {
    /// Tokens signed with a fresh random secret.
    pub fn new() -> SessionTokens {
        let mut secret = [0u8; 32];
        if let Err(e) = getrandom::fill(&mut secret) {
            // Not seen on Linux; the fallback is unpredictable enough to a remote client.
            tracing::error!(cause = %e, "no OS randomness for the HLS session secret; using a weaker one");
            for (i, chunk) in secret.chunks_mut(8).enumerate() {
                chunk.copy_from_slice(&weak_random(i as u64).to_be_bytes());
            }
        }
        SessionTokens::with_secret(secret)
    }

    pub fn with_secret(secret: [u8; 32]) -> SessionTokens {
        SessionTokens {
            secret,
            epoch: Instant::now(),
        }
    }

    /// Now, in the tokens' clock (seconds since the process started).
    pub fn now(&self) -> u32 {
        u32::try_from(self.epoch.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length; this cannot fail.
        match <Hmac<Sha256> as Mac>::new_from_slice(&self.secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts any key length"),
        }
    }

    fn signed(&self, id: u64, issued: u32, key: &StreamKey) -> Hmac<Sha256> {
        let mut mac = self.mac();
        mac.update(DOMAIN);
        mac.update(&id.to_be_bytes());
        mac.update(&issued.to_be_bytes());
        mac.update(&(key.app.len() as u32).to_be_bytes());
        mac.update(key.app.as_bytes());
        mac.update(key.name.as_bytes());
        mac
    }

    /// A token for session `id` of stream `key`, issued at `issued`.
    pub fn issue_at(&self, id: u64, key: &StreamKey, issued: u32) -> String {
        let tag = self.signed(id, issued, key).finalize().into_bytes();
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&id.to_be_bytes());
        raw[8..12].copy_from_slice(&issued.to_be_bytes());
        raw[12..].copy_from_slice(&tag[..MAC_LEN]);
        crate::hex::encode(&raw)
    }

    /// A token for session `id` of stream `key`, issued now.
    pub fn issue(&self, id: u64, key: &StreamKey) -> String {
        self.issue_at(id, key, self.now())
    }

    /// What `token` says, if this server issued it for `key` less than [`TOKEN_TTL`] before
    /// `now`.
    pub fn verify_at(&self, token: &str, key: &StreamKey, now: u32) -> Result<SessionToken, TokenError> {
        let raw = crate::hex::decode_lower::<RAW_LEN>(token).ok_or(TokenError::Malformed)?;
        let id = u64::from_be_bytes(raw[..8].try_into().map_err(|_| TokenError::Malformed)?);
        let issued = u32::from_be_bytes(raw[8..12].try_into().map_err(|_| TokenError::Malformed)?);
        self.signed(id, issued, key)
            .verify_truncated_left(&raw[12..])
            .map_err(|_| TokenError::Forged)?;
        if u64::from(now.saturating_sub(issued)) > TOKEN_TTL.as_secs() {
            return Err(TokenError::Expired);
        }
        Ok(SessionToken { id, issued })
    }

    /// [`verify_at`](Self::verify_at) now.
    pub fn verify(&self, token: &str, key: &StreamKey) -> Result<SessionToken, TokenError> {
        self.verify_at(token, key, self.now())
    }

    /// Whether a token issued at `issued` should be replaced (it is half its life old).
    pub fn is_aging(&self, issued: u32) -> bool {
        u64::from(self.now().saturating_sub(issued)) * 2 > TOKEN_TTL.as_secs()
    }

    /// The session id of a client that brought no token: a keyed hash of what tells it
    /// apart (address, user agent, stream), the same for each of its requests.
    pub fn derived_id(&self, parts: &[&[u8]]) -> u64 {
        let mut mac = self.mac();
        mac.update(b"estuary-hls-derived-v1");
        for part in parts {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        let tag = mac.finalize().into_bytes();
        let mut id = [0u8; 8];
        id.copy_from_slice(&tag[..8]);
        u64::from_be_bytes(id)
    }
}

/// A u64 from std's randomly seeded hasher, for when the OS has no randomness to give.
fn weak_random(salt: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(salt);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> SessionTokens {
        SessionTokens::with_secret([7; 32])
    }

    fn key(name: &str) -> StreamKey {
        StreamKey::new("live", name)
    }

    #[test]
    fn a_token_verifies_for_its_stream_until_it_expires() {
        let t = tokens();
        let token = t.issue_at(42, &key("a"), 100);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(
            t.verify_at(&token, &key("a"), 100),
            Ok(SessionToken { id: 42, issued: 100 })
        );
        let ttl = TOKEN_TTL.as_secs() as u32;
        assert!(t.verify_at(&token, &key("a"), 100 + ttl).is_ok());
        assert_eq!(t.verify_at(&token, &key("a"), 101 + ttl), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_for_another_stream_or_from_another_server_is_forged() {
        let t = tokens();
        let token = t.issue_at(42, &key("a"), 100);
        assert_eq!(t.verify_at(&token, &key("b"), 100), Err(TokenError::Forged));
        // The app/stream boundary is part of what is signed.
        let split = t.issue_at(1, &StreamKey::new("li", "vea"), 100);
        assert_eq!(
            t.verify_at(&split, &StreamKey::new("liv", "ea"), 100),
            Err(TokenError::Forged)
        );
        let other = SessionTokens::with_secret([8; 32]);
        assert_eq!(other.verify_at(&token, &key("a"), 100), Err(TokenError::Forged));
    }

    #[test]
    fn a_changed_id_time_or_mac_is_forged() {
        let t = tokens();
        let token = t.issue_at(42, &key("a"), 100);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let changed = String::from_utf8(bytes).unwrap();
            assert_eq!(
                t.verify_at(&changed, &key("a"), 100),
                Err(TokenError::Forged),
                "digit {i} changed"
            );
        }
    }

    #[test]
    fn truncated_padded_and_garbage_tokens_are_malformed() {
        let t = tokens();
        let token = t.issue_at(42, &key("a"), 100);
        for bad in [
            &token[..TOKEN_LEN - 1],
            &token[..TOKEN_LEN - 2],
            "",
            "abc",
            "../../etc/passwd",
            &format!("{token}00"),
            &token.to_uppercase(),
            &format!("{}zz", &token[..TOKEN_LEN - 2]),
        ] {
            assert_eq!(t.verify_at(bad, &key("a"), 100), Err(TokenError::Malformed), "{bad:?}");
        }
        // Random well-formed tokens never verify.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut s = String::new();
            while s.len() < TOKEN_LEN {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push_str(&format!("{state:016x}"));
            }
            s.truncate(TOKEN_LEN);
            assert_eq!(t.verify_at(&s, &key("a"), 100), Err(TokenError::Forged));
        }
    }

    #[test]
    fn derived_ids_are_stable_and_keyed() {
        let t = tokens();
        let a = t.derived_id(&[b"10.0.0.1", b"hls.js", b"live/a"]);
        assert_eq!(a, t.derived_id(&[b"10.0.0.1", b"hls.js", b"live/a"]));
        assert_ne!(a, t.derived_id(&[b"10.0.0.1", b"hls.js", b"live/b"]));
        assert_ne!(a, t.derived_id(&[b"10.0.0.1hls.js", b"", b"live/a"]));
        assert_ne!(
            a,
            SessionTokens::with_secret([8; 32]).derived_id(&[b"10.0.0.1", b"hls.js", b"live/a"])
        );
    }
}
