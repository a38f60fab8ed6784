//! End-to-end: the origin cluster's stream directory (`[cluster]`) with a real
//! `redis-server` (Debian's) and two real Estuary nodes on loopback. One owner per stream
//! across the nodes, a claim that expires with its node, and a Redis outage survived.

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::{free_port, sample, wait_for, Proc, Server, LIMIT};

/// A `redis-server` of the test's own on loopback, with no persistence (a restart starts
/// empty, as a Redis that lost its data would).
struct Redis {
    port: u16,
    dir: PathBuf,
    proc: Option<Proc>,
}

impl Redis {
    fn start(name: &str) -> Redis {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("estuary-redis-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut redis = Redis { port, dir, proc: None };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(&self.dir);
        self.proc = Some(Proc::spawn(&mut cmd, &self.dir.join("redis.log")));
        let up = wait_for(LIMIT, || (self.cli(&["PING"]) == "PONG").then_some(()));
        assert!(up.is_some(), "redis-server did not start on port {}", self.port);
    }

    /// Kills it (SIGKILL: what it holds is gone).
    fn kill(&mut self) {
        self.proc = None;
        let down = wait_for(LIMIT, || (self.cli(&["PING"]) != "PONG").then_some(()));
        assert!(down.is_some(), "redis-server still answers");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `redis-cli`'s answer, trimmed (empty for nil or no answer).
    fn cli(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    fn owner(&self, app_stream: &str) -> String {
        self.cli(&["GET", &format!("estuary:stream:{app_stream}")])
    }
}

fn node(name: &str, redis: &Redis, extra: &str) -> Server {
    Server::start(
        &format!("cluster-{name}"),
        &format!(
            "[hls]\nenabled = false\n\n[cluster]\nredis = \"{}\"\nnode_id = \"{name}\"\nclaim_ttl_ms = 3000\n{extra}",
            redis.url()
        ),
    )
}

fn rejected(server: &Server, reason: &str) -> f64 {
    sample(
        &server.metrics(),
        "estuary_connections_rejected_total",
        &[("protocol", "rtmp"), ("reason", reason)],
    )
    .unwrap_or(0.0)
}

/// Waits for an ffmpeg publisher to be refused (it exits non-zero).
fn assert_refused(server: &Server, publisher: &mut Proc, what: &str) {
    let status = publisher.wait(LIMIT);
    assert!(
        status.is_some_and(|s| !s.success()),
        "{what}: the publisher was not refused ({status:?}); log:\n{}",
        server.log()
    );
}

/// The node that accepts a publish claims the stream; a second node refuses the same key
/// (counted as `owned_elsewhere`) while the first owns it, and takes it once the first
/// publisher left and its node released the claim.
#[test]
fn one_owner_per_stream_across_nodes() {
    let redis = Redis::start("owner");
    let a = node("a", &redis, "");
    let b = node("b", &redis, "");
    let mut on_a = a.publish("live/cam", "publisher-a.log");
    a.wait_live("live", "cam");
    assert_eq!(redis.owner("live/cam"), "a", "node a claimed live/cam");

    let mut on_b = b.publish("live/cam", "publisher-b.log");
    assert_refused(&b, &mut on_b, "a publish to b of a's stream");
    assert!(rejected(&b, "owned_elsewhere") >= 1.0, "b counts the refusal");
    assert_eq!(redis.owner("live/cam"), "a", "the refusal left a's claim alone");
    assert!(on_a.running(), "a's publisher goes on");

    // Another key is b's to take.
    let _other = b.publish("live/other", "publisher-b-other.log");
    b.wait_live("live", "other");
    assert_eq!(redis.owner("live/other"), "b");

    drop(on_a);
    let released = wait_for(LIMIT, || redis.owner("live/cam").is_empty().then_some(()));
    assert!(
        released.is_some(),
        "a released live/cam when its publisher left; log:\n{}",
        a.log()
    );
    let _on_b = b.publish("live/cam", "publisher-b-again.log");
    b.wait_live("live", "cam");
    assert_eq!(redis.owner("live/cam"), "b");
}

/// Each node keeps a record of where it is reached, expiring with it; a node that dies
/// (SIGKILL, no release) leaves its claims to expire within `cluster.claim_ttl_ms`, and the
/// encoder's republish through another node is then accepted.
#[test]
fn a_dead_nodes_streams_are_claimable_within_the_ttl() {
    let redis = Redis::start("death");
    let mut a = node("a", &redis, "");
    let b = node("b", &redis, "");
    let record: Value = serde_json::from_str(&redis.cli(&["GET", "estuary:node:a"])).expect("node a's record");
    assert_eq!(record["node_id"], "a");
    assert_eq!(record["rtmp"], format!("127.0.0.1:{}", a.rtmp), "{record}");
    assert_eq!(record["http"], format!("127.0.0.1:{}", a.http), "{record}");

    let _on_a = a.publish("live/cam", "publisher-a.log");
    a.wait_live("live", "cam");
    assert_eq!(redis.owner("live/cam"), "a");
    a.kill9();
    let ttl: i64 = redis.cli(&["PTTL", "estuary:stream:live/cam"]).parse().unwrap_or(-2);
    assert!(
        ttl > 0 && ttl <= 3000,
        "the dead node's claim expires within the TTL: PTTL {ttl}"
    );
    let expired = wait_for(LIMIT, || {
        (redis.owner("live/cam").is_empty() && redis.cli(&["EXISTS", "estuary:node:a"]) == "0").then_some(())
    });
    assert!(expired.is_some(), "a's claim and record did not expire");
    let _on_b = b.publish("live/cam", "publisher-b.log");
    b.wait_live("live", "cam");
    assert_eq!(redis.owner("live/cam"), "b");
}

/// Redis goes away: the node's live stream and its viewer go on, a new publish is refused
/// (its claim cannot be recorded; `cluster_unreachable`), and when Redis is back (empty) the
/// node claims its live stream again by itself and accepts the new publish.
#[test]
fn a_redis_outage_keeps_what_runs_and_recovers_by_itself() {
    let mut redis = Redis::start("outage");
    let a = node("a", &redis, "redis_timeout_ms = 500\n");
    let _publisher = a.publish("live/cam", "publisher.log");
    a.wait_live("live", "cam");
    let mut viewer = a.play_rtmp("live/cam", "viewer.log");

    redis.kill();
    let mut refused = a.publish("live/new", "publisher-new.log");
    assert_refused(&a, &mut refused, "a publish while redis is down");
    assert!(
        rejected(&a, "cluster_unreachable") >= 1.0,
        "counted as cluster_unreachable"
    );
    let errors = wait_for(LIMIT, || {
        let renew = sample(&a.metrics(), "estuary_cluster_redis_errors_total", &[("op", "renew")]).unwrap_or(0.0);
        (renew >= 1.0).then_some(())
    });
    assert!(errors.is_some(), "failed renewals are counted");
    let (_, v) = a.api("/api/v1/streams/live/cam");
    assert_eq!(
        v["stream"]["publish"]["active"], true,
        "the stream goes on without redis: {v}"
    );
    assert!(viewer.running(), "its viewer goes on");

    redis.spawn();
    let reclaimed = wait_for(LIMIT, || (redis.owner("live/cam") == "a").then_some(()));
    assert!(
        reclaimed.is_some(),
        "the node claims its live stream again; log:\n{}",
        a.log()
    );
    let _again = a.publish("live/new", "publisher-new-again.log");
    a.wait_live("live", "new");
    assert_eq!(redis.owner("live/new"), "a");
    assert!(viewer.running(), "the viewer played through the outage");
    let _ = viewer.0.kill();
}

/// A node with HLS on (the `node` above turns it off).
fn hls_node(name: &str, redis: &Redis, hls: &str) -> Server {
    Server::start(
        &format!("cluster-hls-{name}"),
        &format!(
            "[hls]\n{hls}\n[cluster]\nredis = \"{}\"\nnode_id = \"{name}\"\nclaim_ttl_ms = 3000\n",
            redis.url()
        ),
    )
}

/// `EXT-X-MEDIA-SEQUENCE` and the segment names (without their query) of a playlist.
fn sequence_and_segments(playlist: &str) -> (Option<u64>, Vec<String>) {
    let sequence = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|n| n.trim().parse().ok());
    let segments = playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('?').next().unwrap_or_default().to_string())
        .collect();
    (sequence, segments)
}

/// Only the owner packages a stream's HLS: a viewer of node B plays (ffmpeg decodes it
/// cleanly) the HLS of a stream published to node A, and B's playlist is A's — the same
/// media sequence numbers and segment names — so viewers behind a balancer over A and B see
/// one media sequence. B fetched it from A (`estuary_hls_owner_fetches_total`), and B
/// packaged nothing itself. A node in CDN mode relays A's playlist unchanged.
#[test]
fn a_viewer_of_another_node_plays_the_owners_hls() {
    let redis = Redis::start("hls");
    let a = hls_node("a", &redis, "");
    let b = hls_node("b", &redis, "");
    let cdn = hls_node("c", &redis, "cdn = true");
    let _publisher = a.publish("live/cam", "publisher.log");
    a.wait_live("live", "cam");
    assert_eq!(redis.owner("live/cam"), "a");

    let same = wait_for(LIMIT, || {
        let on_a = support::get(a.http, "/live/cam.m3u8", "").ok()?;
        let on_b = support::get(b.http, "/live/cam.m3u8", "").ok()?;
        if on_a.status != 200 || on_b.status != 200 {
            return None;
        }
        let on_a = sequence_and_segments(&String::from_utf8_lossy(&on_a.body));
        let on_b = sequence_and_segments(&String::from_utf8_lossy(&on_b.body));
        (on_a.0.is_some() && on_a == on_b && !on_a.1.is_empty()).then_some(on_b)
    });
    assert!(
        same.is_some(),
        "b's playlist never matched a's (media sequence and segments); b's log:\n{}",
        b.log()
    );

    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(format!("http://127.0.0.1:{}/live/cam.m3u8", b.http))
        .args(["-t", "6", "-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffmpeg playing b's HLS of a's stream: {:?}\n{errors}\nb's log:\n{}",
        out.status,
        b.log()
    );
    let fetched = |kind: &str| {
        sample(
            &b.metrics(),
            "estuary_hls_owner_fetches_total",
            &[("kind", kind), ("result", "ok")],
        )
        .unwrap_or(0.0)
    };
    assert!(
        fetched("playlist") >= 1.0 && fetched("segment") >= 1.0,
        "b fetched from a"
    );
    let packaged = sample(&b.metrics(), "estuary_hls_segments_total", &[]).unwrap_or(0.0);
    assert_eq!(packaged, 0.0, "b packaged nothing of a's stream");

    // A node in CDN mode relays the owner's playlist as it is: nothing per viewer, and the
    // owner's caching.
    let relayed = wait_for(LIMIT, || {
        support::get(cdn.http, "/live/cam.m3u8", "")
            .ok()
            .filter(|r| r.status == 200)
    })
    .expect("c's playlist of a's stream");
    let text = String::from_utf8_lossy(&relayed.body).to_string();
    assert!(
        text.contains("#EXT-X-MEDIA-SEQUENCE:") && !text.contains("session="),
        "{text}"
    );
    let cache = relayed
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("cache-control"))
        .map(|(_, v)| v.clone());
    assert_eq!(cache.as_deref(), Some("public, max-age=1"));

    // A client cannot pass for a peer (whose requests skip the viewer's session): a
    // signature with the right form and time but no key is refused.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let forged = format!("{now}.{}", "0".repeat(64));
    let forged = support::request_from(
        [127, 0, 0, 1],
        a.http,
        "GET",
        "/live/cam.m3u8",
        "",
        &[("x-estuary-peer", forged.as_str())],
    )
    .expect("a forged peer request");
    assert_eq!(forged.status, 403, "a forged peer signature is refused");
}

/// A fetch from a stream's owner is bounded: an owner that accepts and never answers, or one
/// that sends an endless body, costs the asking node at most `hls.owner_fetch_timeout_ms`
/// and `hls.max_segment_bytes` (502, counted as `failed`); and a node the directory names as
/// the owner of a stream it has no source for answers 404 rather than asking itself.
#[test]
fn fetches_from_the_owner_are_bounded_and_never_loop() {
    use std::io::{Read, Write};
    let redis = Redis::start("bounds");
    let b = hls_node("b", &redis, "owner_fetch_timeout_ms = 500\nmax_segment_bytes = 65536\n");
    // Two fake owners: one silent, one that never stops sending.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endless = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let endless_addr = endless.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming().flatten() {
            held.push(conn);
        }
    });
    std::thread::spawn(move || {
        for mut conn in endless.incoming().flatten() {
            std::thread::spawn(move || {
                let mut head = [0u8; 1024];
                let _ = conn.read(&mut head);
                let _ = conn
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: video/mp2t\r\ncontent-length: 1000000000\r\n\r\n");
                let chunk = [0x47u8; 16 * 1024];
                while conn.write_all(&chunk).is_ok() {}
            });
        }
    });
    for (node, addr) in [("silent", silent_addr), ("endless", endless_addr)] {
        let record = serde_json::json!({
            "node_id": node, "rtmp": "127.0.0.1:1", "http": addr.to_string(),
            "streams": 1, "viewers": 0, "peer_key": "k",
        });
        redis.cli(&["SET", &format!("estuary:node:{node}"), &record.to_string()]);
        redis.cli(&["SET", &format!("estuary:stream:live/{node}"), node]);
    }
    redis.cli(&["SET", "estuary:stream:live/itself", "b"]);

    let silent = support::get(b.http, "/live/silent.m3u8", "").expect("b answers");
    assert_eq!(
        silent.status,
        502,
        "a silent owner: {}",
        String::from_utf8_lossy(&silent.body)
    );
    let endless = support::get(b.http, "/live/endless-0123456789abcdef-1.ts", "").expect("b answers");
    assert_eq!(endless.status, 502, "an endless body");
    let failed = sample(
        &b.metrics(),
        "estuary_hls_owner_fetches_total",
        &[("kind", "segment"), ("result", "failed")],
    );
    assert_eq!(failed, Some(1.0), "the endless segment is counted as failed");
    let itself = support::get(b.http, "/live/itself.m3u8", "").expect("b answers");
    assert_eq!(itself.status, 404, "b does not ask itself");
    assert!(
        b.log().contains("fetch from the stream's owner failed"),
        "the failures are logged"
    );
}
