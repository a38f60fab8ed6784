//! `GET /api/v1/versions` and `GET /api/v1/summaries`.

use serde_json::{json, Map, Value};

use crate::clients::{unix_ms, ClientKind};
use crate::context::Context;

pub fn versions() -> Value {
    let v = env!("CARGO_PKG_VERSION");
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    json!({
        "major": parts.next().unwrap_or(0),
        "minor": parts.next().unwrap_or(0),
        "revision": parts.next().unwrap_or(0),
        "version": v,
    })
}

pub fn summaries(ctx: &Context) -> Value {
    let proc = crate::sysinfo::process();
    let sys = crate::sysinfo::system();
    let uptime = ctx.started.elapsed().as_secs_f64();
    let clients = ctx.clients.list();
    let paths = ctx.paths.listed();
    let (sent, received) = clients
        .iter()
        .fold((0, 0), |(s, r), c| (s + c.sent(), r + c.received()));
    let kbps = clients.iter().fold((0, 0), |(s, r), c| {
        let k = c.kbps();
        (s + k.send, r + k.recv)
    });
    let mem_used = sys.mem_total_kbyte.saturating_sub(sys.mem_available_kbyte);
    let pct = |part: f64, whole: f64| if whole > 0.0 { part / whole } else { 0.0 };
    let mut by_kind = Map::new();
    for kind in ClientKind::ALL {
        by_kind.insert(
            kind.as_str().into(),
            json!(clients.iter().filter(|c| c.kind() == kind).count()),
        );
    }
    json!({
        "ok": true,
        "now_ms": unix_ms(),
        "self": {
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "mem_kbyte": proc.rss_bytes / 1024,
            "mem_percent": pct(proc.rss_bytes as f64 / 1024.0, sys.mem_total_kbyte as f64),
            // Average over the process's life; /metrics' counter gives any window.
            "cpu_percent": pct(proc.cpu_seconds, uptime.max(0.001)),
            "cpu_seconds": proc.cpu_seconds,
            "srs_uptime": uptime as u64,
        },
        "system": {
            "cpu_percent": pct(sys.cpu_busy_ticks as f64, sys.cpu_total_ticks as f64),
            "cpus": sys.cpus,
            "cpus_online": sys.cpus,
            "uptime": sys.uptime_seconds,
            "load_1m": sys.load_1m,
            "load_5m": sys.load_5m,
            "load_15m": sys.load_15m,
            "mem_ram_kbyte": sys.mem_total_kbyte,
            "mem_ram_percent": pct(mem_used as f64, sys.mem_total_kbyte as f64),
            "mem_swap_kbyte": sys.swap_total_kbyte,
            "mem_swap_percent": pct(sys.swap_total_kbyte.saturating_sub(sys.swap_free_kbyte) as f64, sys.swap_total_kbyte as f64),
            "disk_read_bytes": sys.disk_read_bytes,
            "disk_write_bytes": sys.disk_write_bytes,
            "srs_send_bytes": sent,
            "srs_recv_bytes": received,
            "conn_srs": clients.len(),
        },
        "totals": {
            "streams": paths.len(),
            "streams_live": paths.iter().filter(|p| p.is_live()).count(),
            "clients": clients.len(),
            "clients_by_kind": by_kind,
            "send_bytes": sent,
            "recv_bytes": received,
            "kbps": { "send_30s": kbps.0, "recv_30s": kbps.1 },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers() {
        let v = versions();
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert!(v["major"].is_u64());
    }
}
