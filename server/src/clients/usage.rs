//! Per-stream totals over the registered clients, for the API and the metrics.

use std::collections::HashMap;
use std::sync::Arc;

use super::client::{Client, ClientKind};
use crate::stream::StreamKey;

/// One stream's publisher, viewers by protocol, bitrates and bytes.
#[derive(Debug, Clone, Default)]
pub struct StreamUsage {
    pub rtmp: usize,
    pub flv: usize,
    pub hls: usize,
    pub publisher: Option<Arc<Client>>,
    pub recv_kbps: u64,
    pub send_kbps: u64,
    pub recv_bytes: u64,
    pub send_bytes: u64,
}

impl StreamUsage {
    pub fn viewers(&self) -> usize {
        self.rtmp + self.flv + self.hls
    }
}

/// Totals per stream over `clients`.
pub fn per_stream(clients: &[Arc<Client>]) -> HashMap<StreamKey, StreamUsage> {
    let mut out: HashMap<StreamKey, StreamUsage> = HashMap::new();
    for c in clients {
        let role = c.role();
        let Some(key) = role.key else { continue };
        let u = out.entry(key).or_default();
        let kbps = c.kbps();
        match role.kind {
            ClientKind::Publisher => {
                u.recv_kbps += kbps.recv;
                u.recv_bytes += c.received();
                u.publisher = Some(Arc::clone(c));
                continue;
            }
            ClientKind::RtmpPlay => u.rtmp += 1,
            ClientKind::FlvPlay => u.flv += 1,
            ClientKind::HlsPlay => u.hls += 1,
            ClientKind::RtmpIdle => continue,
        }
        u.send_kbps += kbps.send;
        u.send_bytes += c.sent();
    }
    out
}
