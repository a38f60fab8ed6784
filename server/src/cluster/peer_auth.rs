//! How a node proves to another that a request comes from a cluster peer: the owner of a
//! stream serves its HLS playlist and segments as they are (no viewer session, no
//! admission: the asking node ran those for its own viewers) only to a request that carries
//! `x-estuary-peer: ISSUED.HMAC-SHA256(owner's peer key, ISSUED | path)`, `ISSUED` the
//! signer's Unix time in seconds: a signature is good within [`SKEW`] of the verifier's
//! clock (cluster nodes keep NTP time), so one seen on the wire replays for that path only,
//! and only briefly.
//!
//! Each node draws its peer key (32 random bytes) when it starts and publishes it in its node
//! record in Redis, next to its addresses; a node that found the owner there can sign for it,
//! a client that cannot read the cluster's Redis cannot. Nodes that share a Redis trust each
//! other already (Redis decides who owns a stream), so this adds no new secret to configure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signature's time may be from the verifier's clock, either way.
pub const SKEW: Duration = Duration::from_secs(60);

/// The header that carries a peer's signature.
pub const PEER_HEADER: &str = "x-estuary-peer";
const DOMAIN: &[u8] = b"estuary-cluster-peer-v1";

/// A fresh peer key, as hex (what the node record carries).
pub fn new_key() -> String {
    let mut raw = [0u8; 32];
    // No randomness: an all-zero key would let anyone sign; refuse every peer instead.
    if getrandom::fill(&mut raw).is_err() {
        return String::new();
    }
    crate::hex::encode(&raw)
}

fn mac(key: &str, issued: u64, path: &str) -> Option<Hmac<Sha256>> {
    if key.is_empty() {
        return None;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).ok()?;
    mac.update(DOMAIN);
    mac.update(&issued.to_be_bytes());
    mac.update(path.as_bytes());
    Some(mac)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The header value that proves a request for `path` to the node whose peer key is `key`.
pub fn sign(key: &str, path: &str) -> Option<String> {
    sign_at(key, path, unix_now())
}

fn sign_at(key: &str, path: &str, issued: u64) -> Option<String> {
    let mac = mac(key, issued, path)?.finalize().into_bytes();
    Some(format!("{issued}.{}", crate::hex::encode(&mac)))
}

/// Whether `value` is this node's (`key`) signature of `path`, made within [`SKEW`] of now;
/// compared in constant time.
pub fn verify(key: &str, path: &str, value: &str) -> bool {
    verify_at(key, path, value, unix_now())
}

fn verify_at(key: &str, path: &str, value: &str, now: u64) -> bool {
    let Some((issued, hex)) = value.split_once('.') else {
        return false;
    };
    let Ok(issued) = issued.parse::<u64>() else {
        return false;
    };
    if issued.abs_diff(now) > SKEW.as_secs() {
        return false;
    }
    let (Some(mac), Some(raw)) = (mac(key, issued, path), crate::hex::decode::<32>(hex)) else {
        return false;
    };
    mac.verify_slice(&raw).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_good_only_near_its_time() {
        let key = new_key();
        let sig = sign_at(&key, "/live/cam.m3u8", 1_000_000).expect("signature");
        assert!(verify_at(&key, "/live/cam.m3u8", &sig, 1_000_060));
        assert!(verify_at(&key, "/live/cam.m3u8", &sig, 999_940));
        assert!(!verify_at(&key, "/live/cam.m3u8", &sig, 1_000_061));
        let forged_time = sig.replacen("1000000", "1000050", 1);
        assert!(!verify_at(&key, "/live/cam.m3u8", &forged_time, 1_000_060));
    }

    #[test]
    fn only_the_keys_signature_of_the_same_path_verifies() {
        let key = new_key();
        assert_eq!(key.len(), 64);
        let sig = sign(&key, "/live/cam.m3u8").expect("signature");
        assert!(verify(&key, "/live/cam.m3u8", &sig));
        assert!(!verify(&key, "/live/other.m3u8", &sig));
        assert!(!verify(&new_key(), "/live/cam.m3u8", &sig));
        assert!(!verify(&key, "/live/cam.m3u8", "zz"));
        assert!(!verify("", "/live/cam.m3u8", &sig));
        assert!(sign("", "/x").is_none());
    }
}
