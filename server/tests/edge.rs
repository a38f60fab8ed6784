//! End-to-end: edge mode (issue 15, items 1 and 2's edge half, tests of item 4). Real
//! Estuary nodes on loopback: an edge (`[edge] origins`) plays what its origin has over RTMP
//! and HTTP-FLV with one pull for all its viewers, runs its own `on_play` hook, releases the
//! pull after its last viewer, fails over to a hot-standby origin while its viewer plays on,
//! and forwards a publish to its origin; with a real `redis-server`, any node serves a
//! stream another node owns without a configured origin.

#[path = "edge/redis.rs"]
mod redis;
mod support;

use std::process::Command;
use std::time::Duration;

use redis::Redis;
use support::{
    audio_packets, decode_errors, run_bounded, sample, wait_for, FlvViewer, HookReceiver, Proc, Server, LIMIT,
};

/// Config of an edge of `origins`: its pull stops 1 s after the last viewer, retries fast.
fn edge_config(origins: &[&Server], extra: &str) -> String {
    let list: Vec<String> = origins.iter().map(|o| format!("\"127.0.0.1:{}\"", o.rtmp)).collect();
    format!(
        "[hls]\nenabled = false\n[pull]\nretry_min_ms = 200\nretry_max_ms = 1000\n[edge]\norigins = [{}]\nclose_after_ms = 1000\n{extra}",
        list.join(", ")
    )
}

fn origin(name: &str) -> Server {
    Server::start(name, "[hls]\nenabled = false\n")
}

/// What `ffmpeg -v error` says playing `url` for `secs` seconds (empty: it played clean).
fn play_errors(url: &str, secs: u32) -> String {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-rw_timeout",
        "15000000",
        "-i",
        url,
    ])
    .args(["-t", &secs.to_string(), "-f", "null", "-"]);
    let out = run_bounded(&mut cmd, LIMIT + Duration::from_secs(u64::from(secs)));
    let mut said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        said += &format!(" (ffmpeg exited with {})", out.status);
    }
    said
}

/// The edge's pulls the origin serves: its RTMP players.
fn pulls(origin: &Server) -> usize {
    origin.clients_of("rtmp-play").len()
}

/// A viewer of the edge plays a stream published to the origin over RTMP and HTTP-FLV at
/// once, both decoding cleanly, through one pull; the edge asks its own `on_play` hook for
/// each viewer; the pull ends after the last viewer left (the origin's player is gone).
#[test]
fn an_edge_plays_its_origins_stream_through_one_pull_and_releases_it() {
    let origin = origin("edge-origin");
    let _publisher = origin.publish("live/cam", "publish.log");
    origin.wait_live("live", "cam");
    let hooks = HookReceiver::new(|_| (200, "0".into()));
    let edge = Server::start(
        "edge",
        &edge_config(
            &[&origin],
            &format!("[hooks]\non_play = [\"{}\"]\n", hooks.url("/play")),
        ),
    );
    assert_eq!(pulls(&origin), 0, "nothing is pulled before a viewer comes");

    let urls = [
        edge.rtmp_url("live/cam"),
        format!("http://127.0.0.1:{}/live/cam.flv", edge.http),
    ];
    let players: Vec<_> = urls
        .iter()
        .cloned()
        .map(|url| std::thread::spawn(move || (play_errors(&url, 8), url)))
        .collect();
    let both = wait_for(LIMIT, || {
        (edge.clients_of("rtmp-play").len() + edge.clients_of("flv-play").len() >= 2).then_some(())
    });
    assert!(
        both.is_some(),
        "the two viewers did not reach the edge; log:\n{}",
        edge.log()
    );
    let pulled = wait_for(LIMIT, || (pulls(&origin) > 0).then_some(()));
    assert!(pulled.is_some(), "the edge did not pull; log:\n{}", edge.log());
    assert_eq!(pulls(&origin), 1, "one pull feeds every viewer of the edge");
    for player in players {
        let (said, url) = player.join().expect("player thread");
        assert!(said.is_empty(), "{url}: {said}\nedge log:\n{}", edge.log());
    }
    let plays: Vec<_> = hooks
        .hits()
        .into_iter()
        .filter(|h| h.body["action"] == "on_play")
        .collect();
    assert!(
        plays.len() >= 2,
        "the edge asked its on_play hook for each viewer: {plays:?}"
    );
    assert!(plays.iter().all(|h| h.body["stream"] == "cam"), "{plays:?}");

    let released = wait_for(LIMIT, || (pulls(&origin) == 0).then_some(()));
    assert!(
        released.is_some(),
        "the edge still pulls after its last viewer left; edge log:\n{}",
        edge.log()
    );
    // The next viewer starts a pull again.
    let viewer = FlvViewer::open(edge.http, "/live/cam.flv");
    let grew = wait_for(LIMIT, || (viewer.bytes() > 100_000).then_some(()));
    assert!(grew.is_some(), "a new viewer got {} bytes", viewer.bytes());
    assert_eq!(pulls(&origin), 1, "the new viewer's pull");
}

/// Two origins carry the same stream (a hot standby). The first is killed: the edge moves to
/// the second without dropping its viewers, whose recording of the stream plays cleanly and
/// keeps its audio timeline monotonic across the change.
#[test]
fn an_edge_fails_over_to_the_next_origin_and_its_viewer_plays_on() {
    let mut first = origin("edge-first");
    let second = origin("edge-second");
    let _to_first = first.publish("live/cam", "publish.log");
    let _to_second = second.publish("live/cam", "publish.log");
    first.wait_live("live", "cam");
    second.wait_live("live", "cam");
    let edge = Server::start("edge-failover", &edge_config(&[&first, &second], ""));

    let recorded = edge.dir.join("viewer.flv");
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-i",
        &edge.rtmp_url("live/cam"),
    ])
    .args(["-c", "copy", "-f", "flv", "-y"])
    .arg(&recorded);
    let mut viewer = Proc::spawn(&mut cmd, &edge.dir.join("viewer.log"));
    let flv = FlvViewer::open(edge.http, "/live/cam.flv");
    let pulled = wait_for(LIMIT, || (pulls(&first) == 1 && flv.bytes() > 100_000).then_some(()));
    assert!(
        pulled.is_some(),
        "the edge did not pull the first origin; log:\n{}",
        edge.log()
    );
    assert_eq!(pulls(&second), 0, "the standby is not pulled while the first serves");

    first.kill9();
    let moved = wait_for(LIMIT, || (pulls(&second) == 1).then_some(()));
    assert!(
        moved.is_some(),
        "the edge did not move to the second origin; log:\n{}",
        edge.log()
    );
    let before = flv.bytes();
    let grew = wait_for(LIMIT, || (flv.bytes() > before + 300_000).then_some(()));
    assert!(
        grew.is_some(),
        "the HTTP-FLV viewer stalled after the failover; log:\n{}",
        edge.log()
    );
    assert!(!flv.has_ended(), "the HTTP-FLV viewer was dropped");
    assert!(viewer.running(), "the RTMP viewer was dropped; log:\n{}", edge.log());
    let failures = sample(&edge.metrics(), "estuary_edge_pull_failures_total", &[]);
    assert!(failures >= Some(1.0), "the failed pull is counted: {failures:?}");

    // SIGINT: ffmpeg finishes the packet it writes and closes the file.
    let _ = Command::new("kill").args(["-INT", &viewer.0.id().to_string()]).status();
    assert!(viewer.wait(LIMIT).is_some(), "the RTMP viewer did not stop on SIGINT");
    let said = std::fs::read_to_string(edge.dir.join("viewer.log")).unwrap_or_default();
    assert!(said.trim().is_empty(), "the RTMP viewer said: {said}");
    assert_eq!(
        decode_errors(&recorded),
        "",
        "the recording across the failover decodes cleanly"
    );
    let audio = audio_packets(&recorded);
    assert!(audio.len() > 100, "{} audio packets recorded", audio.len());
    let backwards = audio.windows(2).filter(|w| w[1].pts < w[0].pts).count();
    assert_eq!(backwards, 0, "the viewer's timeline went backwards across the failover");
}

/// A publish to an edge is accepted there and forwarded to its origin, where it plays.
#[test]
fn a_publish_to_an_edge_is_forwarded_to_its_origin() {
    let origin = origin("edge-fwd-origin");
    let edge = Server::start("edge-fwd", &edge_config(&[&origin], ""));
    let _publisher = edge.publish("live/up", "publish.log");
    edge.wait_live("live", "up");
    origin.wait_live("live", "up");
    let said = play_errors(&origin.rtmp_url("live/up"), 4);
    assert!(said.is_empty(), "{said}\norigin log:\n{}", origin.log());
}

/// With Redis and no configured origin, node B serves a stream published to node A: it finds
/// the owner in the directory and pulls from A's advertised RTMP address.
#[test]
fn with_redis_any_node_serves_a_stream_another_node_owns() {
    let redis = Redis::start("edge");
    let node = |name: &str| {
        Server::start(
            &format!("edge-cluster-{name}"),
            &format!(
                "[hls]\nenabled = false\n[pull]\nretry_min_ms = 200\nretry_max_ms = 1000\n[edge]\nclose_after_ms = 1000\n[cluster]\nredis = \"{}\"\nnode_id = \"{name}\"\nclaim_ttl_ms = 3000\n",
                redis.url()
            ),
        )
    };
    let a = node("a");
    let b = node("b");
    let _publisher = a.publish("live/cam", "publish.log");
    a.wait_live("live", "cam");
    assert_eq!(redis.cli(&["GET", "estuary:stream:live/cam"]), "a");
    for url in [
        b.rtmp_url("live/cam"),
        format!("http://127.0.0.1:{}/live/cam.flv", b.http),
    ] {
        let said = play_errors(&url, 4);
        assert!(said.is_empty(), "{url}: {said}\nnode b log:\n{}", b.log());
    }
    assert_eq!(
        redis.cli(&["GET", "estuary:stream:live/cam"]),
        "a",
        "b's pull claimed nothing"
    );
    let released = wait_for(LIMIT, || (pulls(&a) == 0).then_some(()));
    assert!(released.is_some(), "b still pulls from a after its last viewer left");
}
