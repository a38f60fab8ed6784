//! `GET /api/v1/vhosts[/{id}]`: SRS's vhosts (`SrsStatisticVhost::dumps`). Estuary has one,
//! SRS's default vhost `__defaultVhost__`, which every stream and client belongs to.
//!
//! SRS gives a vhost an id (`vid-` and 7 characters) that streams and clients name in their
//! `vhost` field, and SRS's console joins on it. SRS draws it at random at each start; ours is
//! drawn from the vhost's name, so that it stays the same across restarts.

use serde_json::{json, Value};

use crate::context::Context;
use crate::hooks::DEFAULT_VHOST;

/// The id of the vhost named `name`: `vid-` and 7 characters of `[0-9a-z]` (FNV-1a of the
/// name).
pub fn vhost_id(name: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let mut id = String::from("vid-");
    for _ in 0..7 {
        id.push(char::from(ALPHABET[(hash % 36) as usize]));
        hash /= 36;
    }
    id
}

/// The id of the one vhost.
pub fn default_vhost_id() -> String {
    vhost_id(DEFAULT_VHOST)
}

/// Every vhost.
pub fn vhosts(ctx: &Context) -> Vec<Value> {
    vec![vhost_json(ctx)]
}

/// The vhost `id`, if there is one by that id.
pub fn find_vhost(ctx: &Context, id: &str) -> Option<Value> {
    (id == default_vhost_id()).then(|| vhost_json(ctx))
}

fn vhost_json(ctx: &Context) -> Value {
    let clients = ctx.clients.list();
    let listed = clients.iter().filter(|c| c.kind().publishes_or_plays()).count();
    let (sent, received) = ctx.clients.bytes_total(&clients);
    let kbps = clients
        .iter()
        .map(|c| c.kbps())
        .fold((0, 0), |(r, s), k| (r + k.recv, s + k.send));
    let live = ctx.paths.listed().iter().filter(|p| p.is_live()).count();
    let hls = &ctx.config.hls;
    let mut hls_json = json!({ "enabled": hls.enabled });
    if hls.enabled {
        hls_json["fragment"] = json!(hls.fragment_ms as f64 / 1000.0);
    }
    json!({
        "id": default_vhost_id(),
        "name": DEFAULT_VHOST,
        "enabled": true,
        "clients": listed,
        "streams": live,
        "send_bytes": sent,
        "recv_bytes": received,
        "kbps": { "recv_30s": kbps.0, "send_30s": kbps.1 },
        "hls": hls_json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_srs_shaped_and_stable() {
        let id = default_vhost_id();
        assert_eq!(id.len(), 11);
        assert!(id.starts_with("vid-"));
        assert!(id[4..].bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
        assert_eq!(id, vhost_id("__defaultVhost__"));
        assert_ne!(id, vhost_id("other.example.com"));
    }
}
