//! End-to-end: pulled sources (issue 14, items 2 to 4). The real binary pulls an HLS origin
//! (segments ffmpeg wrote, served by `python3 -m http.server`, with a discontinuity and a
//! 404 gap every 7 s), an nginx-rtmp and a second Estuary; each pulled stream plays over
//! RTMP, HTTP-FLV and HLS with `ffmpeg -v error` saying nothing; on-demand sources start
//! with their first viewer and stop after their last; the status says online and offline;
//! API sources survive a restart; a pulled source records like a published one.

#[path = "sources/origins.rs"]
mod origins;
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use origins::{HlsOrigin, Nginx};
use serde_json::{json, Value};
use support::{decode_errors, ffprobe, run_bounded, sample, wait_for, FlvViewer, Server, LIMIT};

fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sources-{name}-{}", std::process::id()))
}

/// `[[sources]]` entries, each `(protocol, url, stream, extra keys)`.
fn config(sources: &[(&str, &str, &str, &str)]) -> String {
    // The disk floor is the recordings tests' (0): a shared test machine's disk is no reason
    // for this recording to be refused.
    let mut c = String::from(
        "[hls]\nenabled = true\n[record]\nmin_free_bytes = 0\nposter = false\n[pull]\nretry_min_ms = 200\nretry_max_ms = 1000\n",
    );
    for (i, (protocol, url, stream, extra)) in sources.iter().enumerate() {
        c += &format!(
            "[[sources]]\nname = \"source {i}\"\nprotocol = \"{protocol}\"\nurl = \"{url}\"\nstream = \"{stream}\"\n{extra}\n"
        );
    }
    c
}

fn status(server: &Server, id: i64) -> Value {
    let (code, v) = server.api(&format!("/api/v1/sources/{id}/status"));
    assert_eq!(code, 200, "{v}");
    v["status"].clone()
}

fn wait_status(server: &Server, id: i64, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let found = wait_for(LIMIT, || Some(status(server, id)).filter(|s| f(s)));
    found.unwrap_or_else(|| {
        panic!(
            "source {id} never {what}: {}; log:\n{}",
            status(server, id),
            server.log()
        )
    })
}

fn wait_online(server: &Server, id: i64) -> Value {
    wait_status(server, id, "online with audio and video", |s| {
        s["online"] == true && s["video_codec"].is_string() && s["audio_codec"].is_string()
    })
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

/// Plays `app/stream` of `server` over RTMP, HTTP-FLV and HLS at once for `secs` seconds;
/// each must play without a word from `ffmpeg -v error`.
fn plays_everywhere(server: &Server, path: &str, secs: u32) {
    let urls = [
        server.rtmp_url(path),
        format!("http://127.0.0.1:{}/{path}.flv", server.http),
        format!("http://127.0.0.1:{}/{path}.m3u8", server.http),
    ];
    let players: Vec<_> = urls
        .iter()
        .cloned()
        .map(|url| std::thread::spawn(move || (play_errors(&url, secs), url)))
        .collect();
    for player in players {
        let (said, url) = player.join().expect("player thread");
        assert!(said.is_empty(), "{url}: {said}\nlog:\n{}", server.log());
    }
}

#[test]
fn an_hls_source_with_a_discontinuity_and_a_404_gap_plays_everywhere() {
    let origin = HlsOrigin::start(&scratch("hls-origin"));
    let server = Server::start("sources-hls", &config(&[("hls", &origin.url(), "live/hls", "")]));
    let s = wait_online(&server, 1);
    assert_eq!(
        (s["video_codec"].as_str(), s["audio_codec"].as_str()),
        (Some("H264"), Some("AAC")),
        "{s}"
    );
    // Ten seconds cross at least one discontinuity and one missing segment (every 7 s).
    plays_everywhere(&server, "live/hls", 10);
    assert!(server.log().contains("segment missing"), "no 404 gap was met");
    let s = status(&server, 1);
    assert_eq!(
        s["online"], true,
        "the gap and the discontinuity did not end the pull: {s}"
    );
    assert!(s["kbps"].as_u64().unwrap_or(0) > 0, "{s}");
    let (_, v) = server.api("/api/v1/streams/live/hls");
    assert_eq!(v["stream"]["publish"]["active"], true, "{v}");
    let mut server = server;
    server.stop();
    assert!(
        !server.log().contains("still running after the grace period"),
        "{}",
        server.log()
    );
}

#[test]
fn rtmp_sources_pull_from_nginx_rtmp_and_from_another_estuary() {
    let Some(nginx) = Nginx::start(&scratch("nginx")) else {
        return;
    };
    let upstream = Server::start("sources-upstream", "");
    let _to_upstream = upstream.publish("live/cam", "publish.log");
    let mut to_nginx = Command::new("ffmpeg");
    to_nginx
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "warning",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(support::clip())
        .args(["-c", "copy", "-f", "flv", &nginx.url("live/cam")]);
    let _to_nginx = support::Proc::spawn(&mut to_nginx, &upstream.dir.join("publish-nginx.log"));
    upstream.wait_live("live", "cam");
    let server = Server::start(
        "sources-rtmp",
        &config(&[
            ("rtmp", &nginx.url("live/cam"), "live/from-nginx", ""),
            ("rtmp", &upstream.rtmp_url("live/cam"), "live/from-estuary", ""),
        ]),
    );
    for id in [1, 2] {
        let s = wait_online(&server, id);
        assert_eq!(
            (s["video_codec"].as_str(), s["audio_codec"].as_str()),
            (Some("H264"), Some("AAC")),
            "{s}"
        );
    }
    plays_everywhere(&server, "live/from-nginx", 6);
    plays_everywhere(&server, "live/from-estuary", 6);
    // Shutdown stops the pulls at once: no task outlives the grace period.
    let mut server = server;
    server.stop();
    assert!(
        !server.log().contains("still running after the grace period"),
        "{}",
        server.log()
    );
}

#[test]
fn an_on_demand_source_runs_while_watched_and_status_tells_online_and_offline() {
    let upstream = Server::start("sources-od-upstream", "");
    let _publisher = upstream.publish("live/cam", "publish.log");
    upstream.wait_live("live", "cam");
    let dead = format!("rtmp://127.0.0.1:{}/live/none", support::free_port());
    let server = Server::start(
        "sources-od",
        &config(&[
            (
                "rtmp",
                &upstream.rtmp_url("live/cam"),
                "live/od",
                "on_demand = true\nclose_after_ms = 1000",
            ),
            ("rtmp", &dead, "live/dead", ""),
        ]),
    );
    // Nobody watches: the on-demand source is not pulled.
    let s = status(&server, 1);
    assert_eq!(
        (s["online"].as_bool(), s["since_ms"].as_u64()),
        (Some(false), Some(0)),
        "{s}"
    );
    let pulls = || upstream.clients_of("rtmp-play").len();
    assert_eq!(pulls(), 0);
    // An unreachable source is offline with its reason, and tried again.
    let s = wait_status(&server, 2, "offline with an error", |s| {
        s["online"] == false && s["last_error"].is_string() && s["retries"].as_u64() >= Some(2)
    });
    assert!(s["last_error"].as_str().unwrap_or("").contains("connect"), "{s}");
    let metrics = server.metrics();
    let sources = |state| sample(&metrics, "estuary_sources", &[("protocol", "rtmp"), ("state", state)]);
    assert_eq!((sources("offline"), sources("online")), (Some(2.0), Some(0.0)));
    let failures = sample(&metrics, "estuary_source_failures_total", &[("protocol", "rtmp")]);
    assert!(failures >= Some(2.0), "{failures:?}");

    // The first viewer starts it; it plays.
    let viewer = FlvViewer::open(server.http, "/live/od.flv");
    wait_online(&server, 1);
    assert_eq!(pulls(), 1, "the source pulls the upstream");
    let online = sample(
        &server.metrics(),
        "estuary_sources",
        &[("protocol", "rtmp"), ("state", "online")],
    );
    assert_eq!(online, Some(1.0));
    let grew = wait_for(LIMIT, || (viewer.bytes() > 100_000).then_some(()));
    assert!(grew.is_some(), "the viewer got {} bytes", viewer.bytes());
    // The last viewer leaves: close_after_ms later the pull stops.
    drop(viewer);
    wait_status(&server, 1, "offline after its last viewer", |s| s["online"] == false);
    let gone = wait_for(LIMIT, || (pulls() == 0).then_some(()));
    assert!(gone.is_some(), "the upstream is still pulled");
    // A new viewer starts it again.
    let _again = FlvViewer::open(server.http, "/live/od.flv");
    wait_online(&server, 1);
}

#[test]
fn api_sources_are_managed_kept_across_a_restart_and_config_ones_are_read_only() {
    let server = Server::start(
        "sources-api",
        &config(&[("rtmp", "rtmp://127.0.0.1:9/live/x", "live/config", "active = false")]),
    );
    let body = json!({"name": "cam", "protocol": "hls", "url": "http://127.0.0.1:9/cam.m3u8", "stream": "live/api", "active": false});
    let (code, v) = server.send_json("POST", "/api/v1/sources", &body);
    assert_eq!(code, 200, "{v}");
    let id = v["source"]["id"].as_i64().expect("id");
    assert!(id > 1000, "{v}");
    assert_eq!(
        (v["source"]["origin"].as_str(), v["source"]["on_demand"].as_bool()),
        (Some("api"), Some(false))
    );
    // Refusals: a bad body, a stream another source feeds, a change to a config source.
    let (code, _) = server.send_json(
        "POST",
        "/api/v1/sources",
        &json!({"name": "x", "protocol": "hls", "url": "https://a/b.m3u8", "stream": "live/b"}),
    );
    assert_eq!(code, 400);
    let taken = json!({"name": "x", "protocol": "rtmp", "url": "rtmp://h/a/b", "stream": "live/api"});
    assert_eq!(server.send_json("POST", "/api/v1/sources", &taken).0, 409);
    assert_eq!(server.send_json("PUT", "/api/v1/sources/1", &taken).0, 409);
    assert_eq!(server.delete("/api/v1/sources/1").0, 409);
    let changed = json!({"name": "cam 2", "protocol": "hls", "url": "http://127.0.0.1:9/cam.m3u8", "stream": "live/api", "active": false, "on_demand": true});
    let (code, v) = server.send_json("PUT", &format!("/api/v1/sources/{id}"), &changed);
    assert_eq!((code, v["source"]["name"].as_str()), (200, Some("cam 2")), "{v}");

    let server = server.restart();
    let (_, v) = server.api("/api/v1/sources");
    let list = v["sources"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2, "{v}");
    assert_eq!(
        (list[0]["id"].as_i64(), list[0]["origin"].as_str()),
        (Some(1), Some("config"))
    );
    assert_eq!(
        (list[1]["id"].as_i64(), list[1]["name"].as_str()),
        (Some(id), Some("cam 2"))
    );
    assert_eq!(list[1]["on_demand"], true);
    assert_eq!(server.delete(&format!("/api/v1/sources/{id}")).0, 200);
    assert_eq!(server.api(&format!("/api/v1/sources/{id}")).0, 404);
    assert_eq!(server.api(&format!("/api/v1/sources/{id}/status")).0, 404);
}

#[test]
fn a_pulled_hls_source_records_for_20_seconds() {
    let origin = HlsOrigin::start(&scratch("record-origin"));
    let server = Server::start("sources-record", &config(&[]));
    let body = json!({"name": "feed", "protocol": "hls", "url": origin.url(), "stream": "live/feed"});
    let (code, v) = server.send_json("POST", "/api/v1/sources", &body);
    assert_eq!(code, 200, "{v}");
    let id = v["source"]["id"].as_i64().expect("id");
    wait_online(&server, id);
    let (code, v) = server.send_json("POST", "/api/v1/recordings", &json!({"app": "live", "stream": "feed"}));
    assert_eq!(code, 200, "{v}");
    let rec = v["recording"]["id"].as_i64().expect("recording id");
    let recording = |server: &Server| server.api(&format!("/api/v1/recordings/{rec}")).1["recording"].clone();
    let long_enough = wait_for(LIMIT + Duration::from_secs(20), || {
        let r = recording(&server);
        (r["duration_ms"].as_u64().unwrap_or(0) >= 20_000).then_some(r)
    });
    assert!(long_enough.is_some(), "{}", recording(&server));
    let (code, v) = server.send_json("POST", &format!("/api/v1/recordings/{rec}/stop"), &json!({}));
    assert_eq!(code, 200, "{v}");
    let done = wait_for(LIMIT, || Some(recording(&server)).filter(|r| r["state"] == "completed"));
    let r = done.unwrap_or_else(|| panic!("not completed: {}", recording(&server)));
    let file = server.dir.join("recordings").join(r["path"].as_str().expect("path"));
    let probe = ffprobe(&file);
    assert_eq!(
        (probe.video_codec.as_deref(), probe.audio_codec.as_deref()),
        (Some("h264"), Some("aac"))
    );
    assert!(probe.duration >= 19.5, "{} s recorded", probe.duration);
    assert!(probe.video_frames >= 19 * 25, "{} frames", probe.video_frames);
    assert_eq!(decode_errors(&file), "");
}

/// A recording asked for by API starts an on-demand source as a viewer would (issue 14:
/// "start with the first viewer or recording"), keeps it running while it records with no
/// viewer at all, and lets it stop `close_after_ms` after the recording ended.
#[test]
fn a_recording_starts_an_on_demand_source_and_its_end_stops_it() {
    let upstream = Server::start("sources-rec-od-upstream", "");
    let _publisher = upstream.publish("live/cam", "publish.log");
    upstream.wait_live("live", "cam");
    let server = Server::start(
        "sources-rec-od",
        &config(&[(
            "rtmp",
            &upstream.rtmp_url("live/cam"),
            "live/od",
            "on_demand = true\nclose_after_ms = 1000",
        )]),
    );
    let pulls = || upstream.clients_of("rtmp-play").len();
    assert_eq!(pulls(), 0, "nobody wants live/od yet");

    let (code, v) = server.send_json("POST", "/api/v1/recordings", &json!({"app": "live", "stream": "od"}));
    assert_eq!(code, 200, "{v}");
    let id = v["recording"]["id"].as_i64().expect("recording id");
    wait_online(&server, 1);
    assert_eq!(pulls(), 1, "the recording started the pull");
    let recording = |server: &Server| server.api(&format!("/api/v1/recordings/{id}")).1["recording"].clone();
    let recorded = wait_for(LIMIT, || {
        let r = recording(&server);
        (r["state"] == "recording" && r["duration_ms"].as_i64() >= Some(2000)).then_some(())
    });
    assert!(recorded.is_some(), "not recording: {}", recording(&server));
    // No viewer ever came: the recording alone keeps the source running.
    let s = status(&server, 1);
    assert_eq!(s["online"], true, "{s}");

    let (code, v) = server.send_json("POST", &format!("/api/v1/recordings/{id}/stop"), &json!({}));
    assert_eq!(code, 200, "{v}");
    let completed = wait_for(LIMIT, || (recording(&server)["state"] == "completed").then_some(()));
    assert!(completed.is_some(), "{}", recording(&server));
    wait_status(&server, 1, "offline after its recording ended", |s| {
        s["online"] == false
    });
    let gone = wait_for(LIMIT, || (pulls() == 0).then_some(()));
    assert!(gone.is_some(), "the upstream is still pulled after the recording ended");
}
