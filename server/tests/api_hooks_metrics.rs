//! End-to-end: hooks, HTTP API, kicks and `/metrics` against the real binary, with ffmpeg
//! publishers and players and a real HTTP hook receiver in the test.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{get, parse_metrics, request, sample, wait_for, FlvViewer, HookReceiver, Server, LIMIT};

fn hooks_config(r: &HookReceiver, decisions: bool) -> String {
    let n = r.url("/notify");
    let mut c = format!(
        "[hooks]\non_unpublish = [\"{n}\"]\non_stop = [\"{n}\"]\non_close = [\"{n}\"]\ntimeout_ms = 3000\nretry_min_ms = 100\nretry_max_ms = 1000\nmax_tries = 100\n"
    );
    // max_tries: at 1 s between tries, 100 ride out the 30 s outage below (20, the
    // default, would give up after about 17 s at this retry_max_ms).
    if decisions {
        c += &format!(
            "on_connect = [\"{}\"]\non_publish = [\"{}\"]\non_play = [\"{}\"]\n",
            r.url("/connect"),
            r.url("/publish"),
            r.url("/play")
        );
    }
    c + "[play]\nwait_for_publisher_ms = 5000\n"
}

fn id_of(c: &Value) -> String {
    c["id"].as_str().expect("client id").to_string()
}

#[test]
fn hooks_allow_and_refuse_publish_and_play_with_srs_bodies() {
    let receiver = HookReceiver::new(|hit| {
        let b = &hit.body;
        let refuse = (b["action"] == "on_publish" && b["stream"].as_str().is_some_and(|s| s.contains("deny")))
            || (b["action"] == "on_play" && b["param"].as_str().is_some_and(|p| p.contains("bad")));
        if refuse {
            (403, r#"{"code":403}"#.into())
        } else {
            (200, r#"{"code":0}"#.into())
        }
    });
    let config = hooks_config(&receiver, true) + "[api]\nhls_session_idle_ms = 1000\n";
    let server = Server::start("hooks", &config);

    // A refused publish makes ffmpeg fail.
    let mut refused = server.publish("live/deny", "ffmpeg-deny.log");
    let status = refused.wait(LIMIT).expect("refused ffmpeg publisher exits");
    assert!(
        !status.success(),
        "ffmpeg publishing a refused stream exited successfully"
    );

    let _publisher = server.publish("live/ok", "ffmpeg-ok.log");
    server.wait_live("live", "ok");
    let publisher_id = id_of(&server.clients_of("publisher")[0]);
    let hits = receiver.hits();
    let publish = hits
        .iter()
        .find(|h| h.body["action"] == "on_publish" && h.body["stream"] == "ok")
        .expect("on_publish for live/ok");
    let b = &publish.body;
    assert_eq!(publish.path, "/publish");
    assert_eq!(b["client_id"], publisher_id.as_str());
    assert_eq!(b["ip"], "127.0.0.1");
    assert_eq!(b["vhost"], "__defaultVhost__");
    assert_eq!(b["app"], "live");
    assert_eq!(b["param"], "");
    assert_eq!(b["tcUrl"], format!("rtmp://127.0.0.1:{}/live", server.rtmp).as_str());
    assert_eq!(b["stream_url"], "/live/ok");
    // The ids a backend joins on are the API's.
    let (_, listed) = server.api("/api/v1/streams/live/ok");
    assert_eq!(b["stream_id"], listed["stream"]["id"], "{b}");
    assert!(
        b["server_id"].as_str().is_some_and(|s| !s.is_empty())
            && b["service_id"].as_str().is_some_and(|s| !s.is_empty())
    );
    let connect = hits
        .iter()
        .find(|h| h.body["action"] == "on_connect" && h.body["client_id"] == publisher_id.as_str())
        .expect("on_connect");
    assert_eq!(connect.body["tcUrl"], b["tcUrl"]);

    // HTTP-FLV: refused with a bad token, allowed with a good one.
    let bad = get(server.http, "/live/ok.flv?token=bad", "").expect("flv request");
    assert_eq!(bad.status, 403);
    let viewer = FlvViewer::open(server.http, "/live/ok.flv?token=good");
    assert_eq!(viewer.status, 200);
    assert!(
        wait_for(LIMIT, || (viewer.bytes() > 10_000).then_some(())).is_some(),
        "allowed flv viewer got no media"
    );
    let play = receiver
        .hits()
        .into_iter()
        .find(|h| h.body["action"] == "on_play" && h.body["param"] == "?token=good")
        .expect("on_play");
    assert_eq!(play.body["stream"], "ok");
    assert_eq!(play.body["app"], "live");
    assert!(play.body.get("pageUrl").is_some());
    let flv_id = play.body["client_id"].as_str().expect("client_id").to_string();
    assert_eq!(id_of(&server.clients_of("flv-play")[0]), flv_id);

    // HLS: a new playback session is put to on_play (403 when refused); its client id is the
    // API's, and it gets on_stop once it stops asking.
    let bad = get(server.http, "/live/ok.m3u8?token=bad", "").expect("playlist request");
    assert_eq!(bad.status, 403);
    let good = get(server.http, "/live/ok.m3u8?token=good", "").expect("playlist request");
    assert_eq!(good.status, 200);
    let body = String::from_utf8_lossy(&good.body).into_owned();
    assert!(body.contains("session="), "segment URIs carry the session token");
    // (hook_ids.rs joins its client_id with the API's; the session here lives 1 s.)
    let hls_play = receiver
        .hits()
        .into_iter()
        .find(|h| {
            h.body["action"] == "on_play" && h.body["param"] == "?token=good" && h.body["client_id"] != flv_id.as_str()
        })
        .expect("on_play for the hls session");
    let hls_session = hls_play.body["client_id"].as_str().expect("client_id").to_string();
    assert_eq!(hls_play.body["stream"], "ok");
    let hls_stopped = wait_for(LIMIT, || {
        receiver
            .hits()
            .into_iter()
            .find(|h| h.body["action"] == "on_stop" && h.body["client_id"] == hls_session.as_str())
    });
    assert!(
        hls_stopped.is_some(),
        "no on_stop for the idle hls session: {:?}",
        receiver.actions()
    );

    // RTMP play: ffmpeg fails when refused, plays when allowed.
    let mut refused_player = server.play_rtmp("live/ok?token=bad", "ffmpeg-play-bad.log");
    let status = refused_player.wait(LIMIT).expect("refused rtmp player exits");
    assert!(!status.success());
    let mut player = server.play_rtmp("live/ok?token=good", "ffmpeg-play-good.log");
    assert!(wait_for(LIMIT, || (server.clients_of("rtmp-play").len() == 1).then_some(())).is_some());
    assert!(player.running());
    let rtmp_player_id = id_of(&server.clients_of("rtmp-play")[0]);

    // Stopping tells the hooks who stopped.
    drop(viewer);
    drop(player);
    let stopped = wait_for(LIMIT, || {
        let stops: Vec<String> = receiver
            .hits()
            .iter()
            .filter(|h| h.body["action"] == "on_stop")
            .map(|h| h.body["client_id"].as_str().unwrap_or("").to_string())
            .collect();
        (stops.contains(&flv_id) && stops.contains(&rtmp_player_id)).then_some(())
    });
    assert!(stopped.is_some(), "on_stop missing: {:?}", receiver.actions());
    let close = wait_for(LIMIT, || {
        receiver
            .hits()
            .into_iter()
            .find(|h| h.body["action"] == "on_close" && h.body["client_id"] == rtmp_player_id.as_str())
    })
    .expect("on_close of the rtmp player");
    assert!(
        close.body["send_bytes"].as_u64().is_some_and(|n| n > 10_000),
        "{:?}",
        close.body
    );
}

#[test]
fn notifications_survive_a_30_s_receiver_outage_in_order() {
    let mut receiver = HookReceiver::new(|_| (200, r#"{"code":0}"#.into()));
    let server = Server::start("outage", &hooks_config(&receiver, false));
    let mut publisher = server.publish("live/o", "ffmpeg.log");
    server.wait_live("live", "o");
    let publisher_id = id_of(&server.clients_of("publisher")[0]);

    let watch_once = || {
        let v = FlvViewer::open(server.http, "/live/o.flv");
        assert_eq!(v.status, 200);
        let id = wait_for(LIMIT, || server.clients_of("flv-play").first().map(id_of)).expect("viewer listed");
        assert!(wait_for(LIMIT, || (v.bytes() > 1000).then_some(())).is_some());
        drop(v);
        assert!(wait_for(LIMIT, || server.clients_of("flv-play").is_empty().then_some(())).is_some());
        id
    };
    let first = watch_once();
    assert!(wait_for(LIMIT, || receiver
        .hits()
        .iter()
        .any(|h| h.body["client_id"] == first.as_str())
        .then_some(()))
    .is_some());

    receiver.stop();
    let down_at = Instant::now();
    let before = receiver.hits().len();
    let b = watch_once();
    let c = watch_once();
    let _ = publisher.0.kill();
    let _ = publisher.wait(LIMIT);
    let expected = vec![
        ("on_stop".to_string(), b),
        ("on_stop".to_string(), c),
        ("on_unpublish".to_string(), publisher_id.clone()),
        ("on_close".to_string(), publisher_id),
    ];
    std::thread::sleep(Duration::from_secs(30).saturating_sub(down_at.elapsed()));
    assert_eq!(receiver.hits().len(), before, "the receiver was down");
    receiver.start();

    let got = wait_for(LIMIT, || {
        let mut seen: Vec<(String, String)> = receiver.hits()[before..]
            .iter()
            .map(|h| {
                (
                    h.body["action"].as_str().unwrap_or("").to_string(),
                    h.body["client_id"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        seen.dedup(); // delivery is at-least-once
        (seen.len() >= expected.len()).then_some(seen)
    })
    .unwrap_or_else(|| panic!("notifications lost: {:?}", receiver.actions()));
    assert_eq!(got, expected);
}

#[test]
fn api_lists_publisher_and_viewers_and_kicks() {
    let server = Server::start(
        "api",
        "[api]\ntoken = \"t0k3n\"\n[play]\nwait_for_publisher_ms = 5000\n",
    );
    let unauthorized = get(server.http, "/api/v1/versions", "").expect("request");
    assert_eq!(unauthorized.status, 401);
    let e: Value = serde_json::from_slice(&unauthorized.body).expect("json error");
    assert_eq!(e["code"], 401);
    assert!(e["message"].is_string());

    let (status, v) = server.api("/api/v1/versions");
    assert_eq!(status, 200);
    assert_eq!(v["code"], 0);
    assert!(v["server"].is_string() && v["service"].is_string() && v["pid"].is_string());
    assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"));

    let _publisher = server.publish("live/k", "ffmpeg.log");
    server.wait_live("live", "k");
    let mut rtmp_player = server.play_rtmp("live/k", "ffmpeg-play.log");
    let flv = FlvViewer::open(server.http, "/live/k.flv");
    assert_eq!(flv.status, 200);
    // An HLS viewer, counted by playback session (the token on its segment URIs).
    let hls = get(server.http, "/live/k.m3u8", "").expect("playlist request");
    assert_eq!(hls.status, 200);
    let playlist = String::from_utf8_lossy(&hls.body).into_owned();
    let session = playlist
        .split("session=")
        .nth(1)
        .map(|rest| rest.chars().take_while(char::is_ascii_alphanumeric).collect::<String>())
        .expect("segment URIs carry a session token");

    let ok = wait_for(LIMIT, || {
        (server.clients_of("rtmp-play").len() == 1 && server.clients_of("flv-play").len() == 1).then_some(())
    });
    assert!(ok.is_some(), "viewers not listed: {}", server.api("/api/v1/clients").1);
    std::thread::sleep(Duration::from_secs(2));
    let publisher = &server.clients_of("publisher")[0];
    assert_eq!(publisher["url"], "/live/k", "SRS's path form");
    assert_eq!(publisher["type"], "fmle-publish", "ffmpeg calls releaseStream first");
    assert_eq!(
        publisher["request_url"],
        format!("rtmp://127.0.0.1:{}/live/k", server.rtmp).as_str()
    );
    assert_eq!(publisher["ip"], "127.0.0.1");
    assert!(publisher["recv_bytes"].as_u64().unwrap_or(0) > 10_000);
    assert!(publisher["kbps"]["recv_30s"].as_u64().unwrap_or(0) > 0);

    let (status, s) = server.api("/api/v1/streams/live/k");
    assert_eq!(status, 200);
    let s = &s["stream"];
    let (_, by_id) = server.api(&format!("/api/v1/streams/{}", s["id"].as_str().expect("stream id")));
    assert_eq!(by_id["stream"]["name"], "k");
    assert_eq!(s["app"], "live");
    assert_eq!(s["publish"]["cid"], publisher["id"]);
    assert!(s["live_ms"].as_u64().unwrap_or(0) > 0);
    assert_eq!(s["viewers"]["rtmp"], 1);
    assert_eq!(s["viewers"]["flv"], 1);
    assert_eq!(s["viewers"]["hls"], 1, "one HLS playback session");
    let hls_client = &server.clients_of("hls-play")[0];
    assert_eq!(hls_client["ip"], "127.0.0.1");
    assert!(s["frames"].as_u64().unwrap_or(0) > 0);
    assert!(s["kbps"]["recv_30s"].as_u64().unwrap_or(0) > 0 && s["kbps"]["send_30s"].as_u64().unwrap_or(0) > 0);
    assert_eq!(s["video"]["codec"], "H264");
    assert_eq!(s["video"]["width"], 320);
    assert_eq!(s["video"]["height"], 240);
    assert!(s["video"]["profile"].is_string() && s["video"]["level"].is_string());
    assert_eq!(s["video"]["fps"].as_f64().map(f64::round), Some(25.0));
    assert_eq!(s["audio"]["codec"], "AAC");
    assert_eq!(s["audio"]["sample_rate"], 44100);
    assert_eq!(s["audio"]["channel"], 1);

    let flv_client = &server.clients_of("flv-play")[0];
    let (status, one) = server.api(&format!("/api/v1/clients/{}", id_of(flv_client)));
    assert_eq!(status, 200);
    assert_eq!(one["client"]["url"], "/live/k");
    assert_eq!(
        one["client"]["request_url"],
        format!("http://127.0.0.1:{}/live/k.flv", server.http).as_str()
    );
    assert!(one["client"]["alive"].as_f64().unwrap_or(0.0) > 1.0);
    assert!(one["client"]["send_bytes"].as_u64().unwrap_or(0) > 0);

    // Kicks.
    let (status, _) = server.delete(&format!("/api/v1/clients/{}", id_of(flv_client)));
    assert_eq!(status, 200);
    assert!(
        wait_for(Duration::from_secs(5), || flv.has_ended().then_some(())).is_some(),
        "kicked flv viewer still receiving"
    );
    let rtmp_client = &server.clients_of("rtmp-play")[0];
    assert_eq!(server.delete(&format!("/api/v1/clients/{}", id_of(rtmp_client))).0, 200);
    assert!(
        rtmp_player.wait(Duration::from_secs(10)).is_some(),
        "kicked rtmp player still running"
    );
    assert!(wait_for(LIMIT, || server.clients_of("flv-play").is_empty().then_some(())).is_some());
    assert!(server.clients_of("rtmp-play").is_empty());
    // A kicked HLS session is refused from then on.
    assert_eq!(server.delete(&format!("/api/v1/clients/{}", id_of(hls_client))).0, 200);
    let again = get(server.http, &format!("/live/k.m3u8?session={session}"), "").expect("playlist request");
    assert_eq!(again.status, 403, "kicked HLS session still served");
    assert!(server.clients_of("hls-play").is_empty());

    // Errors.
    let (status, e) = server.delete("/api/v1/clients/999999");
    assert_eq!((status, e["code"].as_u64()), (404, Some(2049)));
    let (status, e) = server.api("/api/v1/streams/999999");
    assert_eq!((status, e["code"].as_u64()), (404, Some(2048)));
    let r = request(server.http, "POST", "/api/v1/streams", &server.token).expect("request");
    assert_eq!(r.status, 405);
    let (_, sum) = server.api("/api/v1/summaries");
    assert!(sum["data"]["self"]["mem_kbyte"].as_u64().unwrap_or(0) > 0);
    assert_eq!(sum["data"]["totals"]["streams"], 1);
}

#[test]
fn metrics_parse_and_match_the_traffic() {
    let receiver = HookReceiver::new(|_| (200, "0".into()));
    let config = format!("[hooks]\non_publish = [\"{}\"]\n", receiver.url("/publish"));
    let server = Server::start("metrics", &config);
    let scrape = || {
        let r = get(server.http, "/metrics", "").expect("scrape");
        assert_eq!(r.status, 200);
        parse_metrics(&String::from_utf8(r.body).expect("utf-8"))
    };

    // The whole clip once, as fast as ffmpeg can: the server receives about its size.
    let clip_size = std::fs::metadata(support::clip()).expect("clip").len() as f64;
    let mut once = std::process::Command::new("ffmpeg");
    once.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-i"])
        .arg(support::clip())
        .args(["-c", "copy", "-f", "flv", &server.rtmp_url("live/once")]);
    let mut once = support::Proc::spawn(&mut once, &server.dir.join("ffmpeg-once.log"));
    assert!(
        once.wait(Duration::from_secs(60)).is_some_and(|s| s.success()),
        "one-shot publish failed"
    );
    let received = wait_for(LIMIT, || {
        let m = scrape();
        let n = sample(&m, "estuary_bytes_received_total", &[("protocol", "rtmp")]).unwrap_or(0.0);
        (server.clients_of("publisher").is_empty() && n > 0.0).then_some(n)
    })
    .expect("rtmp bytes counted");
    let ratio = received / clip_size;
    assert!(
        (0.9..1.15).contains(&ratio),
        "rtmp received {received} bytes for a {clip_size}-byte clip"
    );

    let _publisher = server.publish("live/m", "ffmpeg.log");
    server.wait_live("live", "m");
    let viewer = FlvViewer::open(server.http, "/live/m.flv");
    assert_eq!(viewer.status, 200);
    std::thread::sleep(Duration::from_secs(3));
    let m = scrape();
    assert_eq!(sample(&m, "estuary_clients", &[("kind", "publisher")]), Some(1.0));
    assert_eq!(sample(&m, "estuary_clients", &[("kind", "flv-play")]), Some(1.0));
    assert_eq!(sample(&m, "estuary_clients", &[("kind", "rtmp-play")]), Some(0.0));
    assert_eq!(sample(&m, "estuary_streams_live", &[]), Some(1.0));
    assert_eq!(
        sample(
            &m,
            "estuary_stream_viewers",
            &[("app", "live"), ("stream", "m"), ("protocol", "flv")]
        ),
        Some(1.0)
    );
    assert!(sample(&m, "estuary_stream_kbps", &[("stream", "m"), ("direction", "in")]).unwrap_or(0.0) > 0.0);
    assert!(
        sample(
            &m,
            "estuary_hook_calls_total",
            &[("hook", "on_publish"), ("result", "accepted")]
        )
        .unwrap_or(0.0)
            >= 2.0
    );
    assert!(
        sample(
            &m,
            "estuary_hook_duration_seconds_bucket",
            &[("hook", "on_publish"), ("le", "+Inf")]
        )
        .unwrap_or(0.0)
            >= 2.0
    );
    assert!(sample(&m, "estuary_connections_accepted_total", &[("protocol", "rtmp")]).unwrap_or(0.0) >= 2.0);
    assert!(sample(&m, "estuary_process_cpu_seconds_total", &[]).unwrap_or(0.0) > 0.0);
    assert!(sample(&m, "estuary_process_resident_memory_bytes", &[]).unwrap_or(0.0) > 1e6);

    // Once the viewer is gone, the server's HTTP-FLV byte count is exactly what it received.
    let id = id_of(&server.clients_of("flv-play")[0]);
    assert_eq!(server.delete(&format!("/api/v1/clients/{id}")).0, 200);
    assert!(wait_for(Duration::from_secs(5), || viewer.has_ended().then_some(())).is_some());
    let got = viewer.bytes() as f64;
    assert!(got > 10_000.0);
    let sent = wait_for(Duration::from_secs(5), || {
        let n = sample(&scrape(), "estuary_bytes_sent_total", &[("protocol", "http_flv")])?;
        (n == got).then_some(n)
    });
    assert!(
        sent.is_some(),
        "http_flv bytes sent {:?} != {got} received",
        sample(&scrape(), "estuary_bytes_sent_total", &[("protocol", "http_flv")])
    );
    assert_eq!(
        sample(
            &scrape(),
            "estuary_connections_rejected_total",
            &[("protocol", "http_flv")]
        ),
        None
    );

    // A stream's series go with the stream.
    drop(_publisher);
    let gone = wait_for(LIMIT, || {
        let m = scrape();
        (!m.iter()
            .any(|(_, labels, _)| labels.iter().any(|(k, v)| k == "stream" && v == "m")))
        .then_some(())
    });
    assert!(gone.is_some(), "per-stream series of live/m still there");
}
