//! Forwarding (issue 14): a published stream pushed to upstream RTMP servers, a real
//! nginx-rtmp and a second Estuary, read back there with ffprobe; an upstream that restarts
//! or stops reading is retried while the local viewers and the other upstreams carry on.

use std::process::Command;
use std::time::{Duration, Instant};

use estuary_tests::media::{assert_h264_aac, ffprobe_streams, publish_ffmpeg};
use estuary_tests::nginx_rtmp::NginxRtmp;
use estuary_tests::proc::{send_signal, ChildGuard};
use estuary_tests::{http, wait_live, Clip, Server, TestCtx, LIMIT};
use serde_json::{json, Value};

/// The upstream's publish key, in the forward URL's query: it must never show.
const SECRET: &str = "fwdsecret42";

fn api(server: &Server, method: &str, path: &str, body: &str) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{}/api/v1{path}", server.http_port);
    let (head, body) = http::request(method, &url, body, LIMIT).unwrap_or_else(|e| panic!("{e}"));
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{method} {url}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (head.status, v)
}

fn forwards(server: &Server) -> Vec<Value> {
    let (status, v) = api(server, "GET", "/forwards", "");
    assert_eq!(status, 200, "{v}");
    v["forwards"].as_array().cloned().unwrap_or_default()
}

/// Polls `/api/v1/forwards` until forward `id` is in `state`; returns it.
fn wait_forward_state(server: &Server, id: u64, state: &str) -> Value {
    let deadline = Instant::now() + 2 * LIMIT;
    loop {
        let all = forwards(server);
        if let Some(f) = all.iter().find(|f| f["id"] == id && f["state"] == state) {
            return f.clone();
        }
        assert!(
            Instant::now() < deadline,
            "forward {id} never {state}: {all:?}\n{}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls ffprobe on `url` until it reads the forwarded stream (an upstream has it a moment
/// after the forward connects).
fn probe_forwarded(what: &str, url: &str) {
    let deadline = Instant::now() + 2 * LIMIT;
    loop {
        match ffprobe_streams(url, LIMIT) {
            Ok(streams) if streams.len() == 2 => {
                assert_h264_aac(what, &streams, 640, 360, 30.0);
                return;
            }
            result => assert!(Instant::now() < deadline, "{what}: ffprobe {url}: {result:?}"),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `ffmpeg -v error` decoding `url` for `secs` s in the background: a local viewer.
fn local_viewer(ctx: &TestCtx, url: &str, secs: u32) -> (ChildGuard, std::path::PathBuf) {
    let log = ctx.next_log("local-viewer");
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
    (ChildGuard::spawn_logged("local ffmpeg viewer", &mut cmd, &log), log)
}

fn assert_viewer_noticed_nothing(mut viewer: ChildGuard, log: &std::path::Path, secs: u32) {
    let status = viewer.wait_timeout(Duration::from_secs(u64::from(secs)) + 2 * LIMIT);
    let stderr = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "the local viewer failed ({status:?}):\n{stderr}"
    );
    assert!(
        stderr.trim().is_empty(),
        "the local viewer's ffmpeg -v error printed something:\n{stderr}"
    );
}

fn metrics_text(server: &Server) -> String {
    let url = format!("http://127.0.0.1:{}/metrics", server.http_port);
    let (_, body) = http::get(&url, LIMIT).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&body).into_owned()
}

#[test]
fn a_stream_is_forwarded_to_nginx_rtmp_through_a_restart_and_local_viewers_notice_nothing() {
    let ctx = TestCtx::new("forward_nginx_restart");
    let mut nginx = NginxRtmp::start(&ctx);
    // Set for the app (`[apps.live.forward]`), tuned globally (`[forward]`).
    let config = format!(
        "[forward]\nretry_initial_ms = 200\nretry_max_ms = 1000\n\
         [apps.live.forward]\nurls = [\"rtmp://127.0.0.1:{}/{{app}}/{{stream}}?key={SECRET}\"]\n",
        nginx.port
    );
    let server = Server::start_with_config(&ctx, &config);
    let _publisher = publish_ffmpeg(&ctx, Clip::Main, &server.rtmp_url("live", "cam"));
    let _flv = wait_live(&server, "live", "cam");
    let (viewer, viewer_log) = local_viewer(&ctx, &server.rtmp_url("live", "cam"), 25);

    let all = forwards(&server);
    assert_eq!(all.len(), 1, "{all:?}");
    let id = all[0]["id"].as_u64().expect("numeric id");
    let f = wait_forward_state(&server, id, "connected");
    assert_eq!(f["origin"], "config");
    assert_eq!(f["upstream"], format!("127.0.0.1:{}", nginx.port));
    probe_forwarded("nginx-rtmp, forwarded", &nginx.rtmp_url("live", "cam"));

    // The upstream restarts mid-stream: the forward retries and publishes again.
    nginx.stop();
    let retrying = wait_forward_state(&server, id, "retrying");
    assert!(retrying["last_error"].is_string(), "{retrying}");
    nginx.start_again();
    let back = wait_forward_state(&server, id, "connected");
    assert!(back["failures"].as_u64() >= Some(1), "{back}");
    probe_forwarded("nginx-rtmp after its restart", &nginx.rtmp_url("live", "cam"));
    assert_viewer_noticed_nothing(viewer, &viewer_log, 25);

    // The stream shows its forwards; a config forward cannot be removed by API.
    let (status, stream) = api(&server, "GET", "/streams/live/cam", "");
    assert_eq!(status, 200, "{stream}");
    assert_eq!(stream["stream"]["forwards"][0]["id"], id, "{stream}");
    let (status, refused) = api(&server, "DELETE", &format!("/forwards/{id}"), "");
    assert_eq!(status, 409, "{refused}");
    let metrics = metrics_text(&server);
    let up = format!(
        "estuary_forward_up{{app=\"live\",stream=\"cam\",forward=\"{id}\",upstream=\"127.0.0.1:{}\"}} 1",
        nginx.port
    );
    assert!(metrics.contains(&up), "no {up} in:\n{metrics}");

    // The upstream's key shows nowhere.
    let listing = forwards(&server);
    for (what, text) in [
        ("/api/v1/forwards", format!("{listing:?}")),
        ("/api/v1/streams/live/cam", stream.to_string()),
        ("/metrics", metrics),
        ("the log", server.logs()),
    ] {
        assert!(!text.contains(SECRET), "{what} shows the upstream's key:\n{text}");
    }
}

#[test]
fn a_forward_added_by_api_publishes_to_a_second_estuary_until_it_is_removed() {
    let ctx = TestCtx::new("forward_second_estuary");
    let origin = Server::start(&ctx);
    let ctx_b = TestCtx::new("forward_second_estuary_upstream");
    let upstream = Server::start(&ctx_b);
    let _publisher = publish_ffmpeg(&ctx, Clip::Main, &origin.rtmp_url("live", "cam"));
    let _flv = wait_live(&origin, "live", "cam");

    let body = json!({
        "app": "live",
        "stream": "cam",
        "url": format!("rtmp://127.0.0.1:{}/relay/{{stream}}?key={SECRET}", upstream.rtmp_port),
    });
    let (status, added) = api(&origin, "POST", "/forwards", &body.to_string());
    assert_eq!(status, 200, "{added}");
    let id = added["forward"]["id"].as_u64().expect("numeric id");
    assert_eq!(added["forward"]["origin"], "api");
    assert!(!added.to_string().contains(SECRET), "{added}");
    wait_forward_state(&origin, id, "connected");
    probe_forwarded("the second Estuary's HTTP-FLV", &upstream.flv_url("relay", "cam"));
    let (status, one) = api(&origin, "GET", &format!("/forwards/{id}"), "");
    assert_eq!(status, 200, "{one}");
    assert!(one["forward"]["bytes"].as_u64() > Some(0), "{one}");

    // Removed: the upstream's publish ends there.
    let (status, removed) = api(&origin, "DELETE", &format!("/forwards/{id}"), "");
    assert_eq!(status, 200, "{removed}");
    let deadline = Instant::now() + 2 * LIMIT;
    loop {
        let (_, s) = api(&upstream, "GET", "/streams/relay/cam", "");
        if s["stream"]["publish"]["active"] != true {
            break;
        }
        assert!(Instant::now() < deadline, "the upstream still has the stream: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, gone) = api(&origin, "GET", &format!("/forwards/{id}"), "");
    assert_eq!(status, 404, "{gone}");
    let (status, bad) = api(
        &origin,
        "POST",
        "/forwards",
        r#"{"app":"live","stream":"cam","url":"http://x/y/z"}"#,
    );
    assert_eq!(status, 400, "{bad}");
    assert!(!origin.logs().contains(SECRET), "the log shows the upstream's key");
}

#[test]
fn an_upstream_that_stops_reading_is_dropped_and_retried_while_the_others_carry_on() {
    let ctx = TestCtx::new("forward_stalled_upstream");
    let nginx = NginxRtmp::start(&ctx);
    let ctx_b = TestCtx::new("forward_stalled_upstream_b");
    let stalled = Server::start(&ctx_b);
    let config = format!(
        "[forward]\nurls = [\"rtmp://127.0.0.1:{}/{{app}}/{{stream}}\", \"rtmp://127.0.0.1:{}/{{app}}/{{stream}}\"]\n\
         max_queue_bytes = 65536\nwrite_timeout_ms = 1000\nconnect_timeout_ms = 1000\n\
         retry_initial_ms = 200\nretry_max_ms = 1000\n",
        nginx.port, stalled.rtmp_port
    );
    let server = Server::start_with_config(&ctx, &config);
    let _publisher = publish_ffmpeg(&ctx, Clip::Main, &server.rtmp_url("live", "cam"));
    let _flv = wait_live(&server, "live", "cam");
    let all = forwards(&server);
    assert_eq!(all.len(), 2, "{all:?}");
    let (to_nginx, to_stalled) = (all[0]["id"].as_u64().unwrap_or(0), all[1]["id"].as_u64().unwrap_or(0));
    wait_forward_state(&server, to_nginx, "connected");
    wait_forward_state(&server, to_stalled, "connected");

    // The second upstream freezes: it reads nothing and answers nothing.
    let (viewer, viewer_log) = local_viewer(&ctx, &server.flv_url("live", "cam"), 15);
    send_signal(stalled.pid(), "STOP");
    let failed = wait_forward_state(&server, to_stalled, "retrying");
    let dropped = forwards(&server);
    send_signal(stalled.pid(), "CONT");
    probe_forwarded("nginx-rtmp beside a frozen upstream", &nginx.rtmp_url("live", "cam"));
    assert_viewer_noticed_nothing(viewer, &viewer_log, 15);
    let cause = failed["last_error"].as_str().unwrap_or_default();
    assert!(cause.contains("accepted no bytes"), "{failed}");
    let nginx_forward = dropped
        .iter()
        .find(|f| f["id"] == to_nginx)
        .cloned()
        .unwrap_or_default();
    assert_eq!(nginx_forward["state"], "connected", "{dropped:?}");
    // Once it reads again, the frozen upstream is published to again.
    wait_forward_state(&server, to_stalled, "connected");
}

#[test]
fn a_publisher_that_reconnects_keeps_its_forward_publishing_upstream() {
    let ctx = TestCtx::new("forward_publisher_reconnect");
    let nginx = NginxRtmp::start(&ctx);
    let config = format!(
        "[forward]\nurls = [\"rtmp://127.0.0.1:{}/{{app}}/{{stream}}\"]\n",
        nginx.port
    );
    let server = Server::start_with_config(&ctx, &config);
    let publisher = publish_ffmpeg(&ctx, Clip::Main, &server.rtmp_url("live", "cam"));
    let _flv = wait_live(&server, "live", "cam");
    let id = forwards(&server)[0]["id"].as_u64().expect("numeric id");
    wait_forward_state(&server, id, "connected");

    // The encoder drops and comes back within forward.reconnect_window_ms (10 s).
    drop(publisher);
    let _again = publish_ffmpeg(&ctx, Clip::Main, &server.rtmp_url("live", "cam"));
    let _flv = wait_live(&server, "live", "cam");
    probe_forwarded(
        "nginx-rtmp after the publisher came back",
        &nginx.rtmp_url("live", "cam"),
    );
    let all = forwards(&server);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["id"], id, "the same forward goes on: {all:?}");
    assert_eq!(all[0]["state"], "connected", "{all:?}");
    assert_eq!(all[0]["failures"], 0, "the upstream connection was kept: {all:?}");
}
