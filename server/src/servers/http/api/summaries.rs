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

/// SRS's summaries (`srs_api_dump_summaries`, `srs_app_utility.cpp`), every field with SRS's
/// name and type, figures from Linux's `/proc` (zero elsewhere). Percentages are fractions
/// (0.25 is 25 %), as SRS's are. Then Estuary's own: `self.cpu_seconds`, `system.disk_*_bytes`
/// and `totals`.
pub fn summaries(ctx: &Context) -> Value {
    let proc = crate::sysinfo::process();
    let sys = crate::sysinfo::system();
    let rates = crate::sysinfo::rates(&sys, &proc, ctx.started.elapsed());
    let net = crate::sysinfo::network_bytes();
    let sockets = crate::sysinfo::sockets();
    let now = unix_ms();
    let uptime = ctx.started.elapsed().as_secs_f64();
    let clients = ctx.clients.list();
    let paths = ctx.paths.listed();
    let (sent, received) = ctx.clients.bytes_total(&clients);
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
    let argv: Vec<String> = std::env::args().collect();
    let cwd = std::env::current_dir().map_or(String::new(), |d| d.display().to_string());
    json!({
        "ok": true,
        "now_ms": now,
        "self": {
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "ppid": crate::sysinfo::ppid(),
            "argv": argv.join(" "),
            "cwd": cwd,
            "mem_kbyte": proc.rss_bytes / 1024,
            "mem_percent": pct(proc.rss_bytes as f64 / 1024.0, sys.mem_total_kbyte as f64),
            "cpu_percent": rates.self_cpu,
            "srs_uptime": uptime as u64,
            "cpu_seconds": proc.cpu_seconds,
        },
        "system": {
            "cpu_percent": rates.cpu,
            "disk_read_KBps": rates.disk_read_kbyte_per_s,
            "disk_write_KBps": rates.disk_write_kbyte_per_s,
            "disk_busy_percent": rates.disk_busy,
            "mem_ram_kbyte": sys.mem_total_kbyte,
            "mem_ram_percent": pct(mem_used as f64, sys.mem_total_kbyte as f64),
            "mem_swap_kbyte": sys.swap_total_kbyte,
            "mem_swap_percent": pct(sys.swap_total_kbyte.saturating_sub(sys.swap_free_kbyte) as f64, sys.swap_total_kbyte as f64),
            "cpus": sys.cpus,
            "cpus_online": sys.cpus,
            "uptime": sys.uptime_seconds,
            // SRS's spelling.
            "ilde_time": crate::sysinfo::idle_seconds(),
            "load_1m": sys.load_1m,
            "load_5m": sys.load_5m,
            "load_15m": sys.load_15m,
            "net_sample_time": now,
            "net_recv_bytes": net.recv,
            "net_send_bytes": net.send,
            "net_recvi_bytes": net.recv_intranet,
            "net_sendi_bytes": net.send_intranet,
            "srs_sample_time": now,
            "srs_recv_bytes": received,
            "srs_send_bytes": sent,
            "conn_sys": sockets.tcp,
            "conn_sys_et": sockets.tcp_established,
            "conn_sys_tw": sockets.tcp_time_wait,
            "conn_sys_udp": sockets.udp,
            "conn_srs": clients.len(),
            "disk_read_bytes": sys.disk_read_bytes,
            "disk_write_bytes": sys.disk_write_bytes,
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
