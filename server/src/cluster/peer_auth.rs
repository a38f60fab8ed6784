//! How a node proves to another that a request comes from a cluster peer: the owner of a
//! stream serves its HLS playlist and segments as they are (no viewer session, no
//! admission: the asking node ran those for its own viewers) only to a request that carries
//! `x-estuary-peer: HMAC-SHA256(owner's peer key, path)`.
//!
//! Each node draws its peer key (32 random bytes) when it starts and publishes it in its node
//! record in Redis, next to its addresses; a node that found the owner there can sign for it,
//! a client that cannot read the cluster's Redis cannot. Nodes that share a Redis trust each
//! other already (Redis decides who owns a stream), so this adds no new secret to configure.

use hmac::{Hmac, Mac};
use sha2::Sha256;

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

fn mac(key: &str, path: &str) -> Option<Hmac<Sha256>> {
    if key.is_empty() {
        return None;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).ok()?;
    mac.update(DOMAIN);
    mac.update(path.as_bytes());
    Some(mac)
}

/// The header value that proves a request for `path` to the node whose peer key is `key`.
pub fn sign(key: &str, path: &str) -> Option<String> {
    Some(crate::hex::encode(&mac(key, path)?.finalize().into_bytes()))
}

/// Whether `value` is this node's (`key`) signature of `path`; compared in constant time.
pub fn verify(key: &str, path: &str, value: &str) -> bool {
    let (Some(mac), Some(raw)) = (mac(key, path), crate::hex::decode::<32>(value)) else {
        return false;
    };
    mac.verify_slice(&raw).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
