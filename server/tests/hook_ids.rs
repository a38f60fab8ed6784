//! End-to-end: what a backend joins on (issue 13 items 3 to 5). The ids in hook bodies are
//! the API's, for every kind of client; hook bodies carry what SRS's carry (`on_stop`'s
//! `param`, `on_hls` in the publisher's name, an HTTP player's `tcUrl`); `on_close` comes
//! after the client's `on_stop`/`on_unpublish` even from a slow receiver on another URL; a
//! receiver that keeps answering 5xx is given up on and later events flow; `server_id`
//! survives a restart. The hook receiver is a real HTTP server in the test.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::{get, sample, wait_for, FlvViewer, Hit, HookReceiver, Server, LIMIT};

const OK: &str = r#"{"code":0}"#;

/// A receiver that accepts everything.
fn ok_receiver() -> HookReceiver {
    HookReceiver::new(|_| (200, OK.into()))
}

/// `[hooks]` sending each listed hook to `receiver`'s `/{hook}`.
fn hooks(receiver: &HookReceiver, list: &[&str]) -> String {
    let mut c = String::from("[hooks]\ntimeout_ms = 5000\nretry_min_ms = 100\nretry_max_ms = 400\n");
    for hook in list {
        c += &format!("{hook} = [\"{}\"]\n", receiver.url(&format!("/{hook}")));
    }
    c
}

/// The first hit with `action` whose body satisfies `f`, waiting for it.
fn wait_hit(receiver: &HookReceiver, action: &str, f: impl Fn(&Value) -> bool) -> Value {
    wait_for(LIMIT, || {
        receiver
            .hits()
            .into_iter()
            .map(|h| h.body)
            .find(|b| b["action"] == action && f(b))
    })
    .unwrap_or_else(|| panic!("no {action}; got {:?}", receiver.actions()))
}

/// The id of the only client of `kind` the API lists, waiting for it.
fn listed_id(server: &Server, kind: &str) -> String {
    wait_for(LIMIT, || {
        server
            .clients_of(kind)
            .first()
            .map(|c| c["id"].as_str().unwrap_or("").to_string())
    })
    .unwrap_or_else(|| panic!("no {kind} client listed; log:\n{}", server.log()))
}

fn stream_id(server: &Server, app: &str, stream: &str) -> Value {
    let (status, v) = server.api(&format!("/api/v1/streams/{app}/{stream}"));
    assert_eq!(status, 200, "{v}");
    v["stream"]["id"].clone()
}

/// Every client kind's hooks name it by its API id and its stream by the API's stream id;
/// an HLS viewer is kicked by the id its hooks gave, and its `on_stop` carries its
/// `on_play`'s `param`. HTTP players' `tcUrl` is `rtmp://HOST/app`, as SRS reports it.
#[test]
fn hook_ids_are_the_apis_ids_and_kick_by_them_works() {
    let receiver = ok_receiver();
    let config = hooks(&receiver, &["on_publish", "on_play", "on_stop", "on_unpublish"])
        + "[api]\nhls_session_idle_ms = 600000\n[play]\nwait_for_publisher_ms = 5000\n";
    let server = Server::start("hook-ids", &config);
    let _publisher = server.publish("live/cam?token=pub", "publisher.log");
    server.wait_live("live", "cam");
    let stream = stream_id(&server, "live", "cam");
    assert!(stream.as_str().is_some_and(|s| !s.is_empty()), "{stream}");

    let publisher = listed_id(&server, "publisher");
    let publish = wait_hit(&receiver, "on_publish", |b| b["param"] == "?token=pub");
    assert_eq!(publish["client_id"], publisher.as_str(), "{publish}");
    assert_eq!(publish["stream_id"], stream, "{publish}");

    let _rtmp = server.play_rtmp("live/cam?token=rtmp", "rtmp-player.log");
    let rtmp = listed_id(&server, "rtmp-play");
    let play = wait_hit(&receiver, "on_play", |b| b["param"] == "?token=rtmp");
    assert_eq!(play["client_id"], rtmp.as_str(), "{play}");
    assert_eq!(play["stream_id"], stream, "{play}");

    let flv_viewer = FlvViewer::open(server.http, "/live/cam.flv?token=flv");
    assert_eq!(flv_viewer.status, 200);
    let flv = listed_id(&server, "flv-play");
    let play = wait_hit(&receiver, "on_play", |b| b["param"] == "?token=flv");
    assert_eq!(play["client_id"], flv.as_str(), "{play}");
    assert_eq!(play["stream_id"], stream, "{play}");
    assert_eq!(play["tcUrl"], "rtmp://127.0.0.1/live", "{play}");

    let playlist = get(server.http, "/live/cam.m3u8?token=hls", "").expect("playlist");
    assert_eq!(playlist.status, 200);
    let hls = listed_id(&server, "hls-play");
    let play = wait_hit(&receiver, "on_play", |b| b["param"] == "?token=hls");
    assert_eq!(play["client_id"], hls.as_str(), "{play}");
    assert_eq!(play["stream_id"], stream, "{play}");
    assert_eq!(play["tcUrl"], "rtmp://127.0.0.1/live", "{play}");

    // The backend kicks the HLS viewer by the id on_play told it.
    let (status, answer) = server.delete(&format!("/api/v1/clients/{hls}"));
    assert_eq!(status, 200, "{answer}");
    let stop = wait_hit(&receiver, "on_stop", |b| b["client_id"] == hls.as_str());
    assert_eq!(stop["param"], "?token=hls", "on_stop carries on_play's param: {stop}");
    assert_eq!(stop["stream_id"], stream, "{stop}");
    assert!(server.clients_of("hls-play").is_empty(), "the kicked viewer is gone");
    let again = get(server.http, "/live/cam.m3u8?token=hls", "").expect("playlist");
    assert_eq!(again.status, 403, "the kicked viewer's session is refused");
}

/// `on_hls` speaks for the publisher, as SRS's does: its client id, address, tcUrl and
/// param; `url` and `m3u8_url` in SRS's `live/…` form; `cwd` the server's working directory.
#[test]
fn on_hls_is_sent_in_the_publishers_name() {
    let receiver = ok_receiver();
    let config = hooks(&receiver, &["on_publish", "on_hls"]);
    let server = Server::start("on-hls-context", &config);
    let _publisher = server.publish("live/cam?token=pub", "publisher.log");
    server.wait_live("live", "cam");
    let publisher = listed_id(&server, "publisher");
    let publish = wait_hit(&receiver, "on_publish", |_| true);
    let hls = wait_hit(&receiver, "on_hls", |_| true);
    for field in ["client_id", "ip", "tcUrl", "param", "stream", "stream_url", "stream_id"] {
        assert_eq!(
            hls[field], publish[field],
            "{field}: on_hls {hls} / on_publish {publish}"
        );
    }
    assert_eq!(hls["client_id"], publisher.as_str());
    assert_eq!(hls["stream_id"], stream_id(&server, "live", "cam"));
    assert_eq!(hls["m3u8_url"], "live/cam.m3u8", "{hls}");
    let url = hls["url"].as_str().unwrap_or_default();
    assert!(url.starts_with("live/cam-") && url.ends_with(".ts"), "{hls}");
    // The segment is where `url` says, beside the playlist.
    let segment = get(server.http, &format!("/{url}"), "").expect("segment");
    assert_eq!(segment.status, 200, "{url}");
    let cwd = std::fs::canonicalize(&server.dir).expect("server dir");
    assert_eq!(
        std::fs::canonicalize(hls["cwd"].as_str().unwrap_or_default()).ok(),
        Some(cwd),
        "{hls}"
    );
}

/// An encoder that reconnects within `hls.reconnect_window_ms` continues the same playlist;
/// the segments it feeds are announced in its name, not its predecessor's.
#[test]
fn on_hls_after_a_reconnect_names_the_new_publisher() {
    let receiver = ok_receiver();
    let config = hooks(&receiver, &["on_publish", "on_hls"]) + "[hls]\nreconnect_window_ms = 60000\n";
    let server = Server::start("on-hls-reconnect", &config);
    let first = server.publish("live/cam?token=one", "first.log");
    server.wait_live("live", "cam");
    let first_id = listed_id(&server, "publisher");
    wait_hit(&receiver, "on_hls", |b| b["client_id"] == first_id.as_str());
    drop(first);
    assert!(wait_for(LIMIT, || server.clients_of("publisher").is_empty().then_some(())).is_some());
    let _second = server.publish("live/cam?token=two", "second.log");
    let second_id = listed_id(&server, "publisher");
    assert_ne!(first_id, second_id);
    let hls = wait_hit(&receiver, "on_hls", |b| b["client_id"] == second_id.as_str());
    assert_eq!(hls["param"], "?token=two", "{hls}");
    assert_eq!(hls["m3u8_url"], "live/cam.m3u8", "{hls}");
}

/// Actions (and client ids) in the order the receiver *answered* them.
type Answered = Arc<Mutex<Vec<(String, String)>>>;

/// `on_close` goes to a fast URL, `on_stop`/`on_unpublish` to one that answers slowly: the
/// backend still hears each client's `on_close` after its `on_stop`/`on_unpublish` was
/// answered, as SRS sends them (one, then the other).
#[test]
fn on_close_comes_after_a_slow_receivers_stop_and_unpublish() {
    let answered: Answered = Arc::default();
    let log = Arc::clone(&answered);
    let receiver = HookReceiver::new(move |hit: &Hit| {
        if hit.path == "/slow" {
            // A backend that takes its time (each connection has its own thread).
            std::thread::sleep(Duration::from_millis(1500));
        }
        let field = |name: &str| hit.body[name].as_str().unwrap_or("").to_string();
        log.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((field("action"), field("client_id")));
        (200, OK.into())
    });
    let (slow, fast) = (receiver.url("/slow"), receiver.url("/fast"));
    let config = format!(
        "[hooks]\non_unpublish = [\"{slow}\"]\non_stop = [\"{slow}\"]\non_close = [\"{fast}\"]\n\
         [play]\nwait_for_publisher_ms = 5000\n"
    );
    let server = Server::start("close-after-slow", &config);
    let publisher = server.publish("live/cam", "publisher.log");
    server.wait_live("live", "cam");
    let publisher_id = listed_id(&server, "publisher");
    let player = server.play_rtmp("live/cam", "player.log");
    let player_id = listed_id(&server, "rtmp-play");
    drop(player);
    drop(publisher);
    let position = |action: &str, client: &str| {
        answered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .position(|(a, c)| a == action && c == client)
    };
    let all = [
        ("on_stop", &player_id),
        ("on_close", &player_id),
        ("on_unpublish", &publisher_id),
        ("on_close", &publisher_id),
    ];
    let arrived = wait_for(LIMIT, || {
        all.iter().all(|(a, c)| position(a, c).is_some()).then_some(())
    });
    assert!(
        arrived.is_some(),
        "missing events: {:?}",
        answered.lock().unwrap_or_else(|e| e.into_inner())
    );
    let order = |first: &str, client: &str| {
        assert!(
            position(first, client) < position("on_close", client),
            "{client}: on_close before {first} was answered: {:?}",
            answered.lock().unwrap_or_else(|e| e.into_inner())
        );
    };
    order("on_stop", &player_id);
    order("on_unpublish", &publisher_id);
}

/// A receiver that answers 500 to one event forever: after `hooks.max_tries` the event is
/// given up (counted in `estuary_hook_undelivered_total{reason="gave_up"}`), and the
/// events after it are delivered.
#[test]
fn a_receiver_answering_5xx_is_given_up_on_and_later_events_flow() {
    let broken: Arc<Mutex<Option<String>>> = Arc::default();
    let first = Arc::clone(&broken);
    let receiver = HookReceiver::new(move |hit: &Hit| {
        let client = hit.body["client_id"].as_str().unwrap_or("").to_string();
        let mut first = first.lock().unwrap_or_else(|e| e.into_inner());
        // The first client's on_stop is refused with a 500, every time.
        if *first.get_or_insert_with(|| client.clone()) == client {
            return (500, "broken".into());
        }
        (200, OK.into())
    });
    let config = format!(
        "[hooks]\non_stop = [\"{}\"]\nretry_min_ms = 50\nretry_max_ms = 200\nmax_tries = 3\n\
         [play]\nwait_for_publisher_ms = 5000\n",
        receiver.url("/stop")
    );
    let server = Server::start("hook-give-up", &config);
    let _publisher = server.publish("live/cam", "publisher.log");
    server.wait_live("live", "cam");
    let watch = || {
        let viewer = FlvViewer::open(server.http, "/live/cam.flv");
        assert_eq!(viewer.status, 200);
        let id = listed_id(&server, "flv-play");
        drop(viewer);
        assert!(wait_for(LIMIT, || server.clients_of("flv-play").is_empty().then_some(())).is_some());
        id
    };
    let first_viewer = watch();
    let second_viewer = watch();
    wait_hit(&receiver, "on_stop", |b| b["client_id"] == second_viewer.as_str());
    let tries = receiver
        .hits()
        .iter()
        .filter(|h| h.body["client_id"] == first_viewer.as_str())
        .count();
    assert_eq!(tries, 3, "the failing event was tried max_tries times");
    let gave_up = sample(
        &server.metrics(),
        "estuary_hook_undelivered_total",
        &[("hook", "on_stop"), ("reason", "gave_up")],
    );
    assert_eq!(gave_up, Some(1.0));
    assert!(
        server.log().contains("given up"),
        "the give-up is logged with its reason"
    );
}

/// `server_id` is the same after a restart (kept in `server.id_file`, as SRS keeps
/// `srs.id`), in hooks and in the API; `server.id` sets it.
#[test]
fn server_id_survives_a_restart_and_can_be_configured() {
    let receiver = ok_receiver();
    let config = hooks(&receiver, &["on_publish"]);
    let mut server = Server::start("server-id", &config);
    let first = {
        let _publisher = server.publish("live/a", "a.log");
        server.wait_live("live", "a");
        wait_hit(&receiver, "on_publish", |b| b["stream"] == "a")["server_id"].clone()
    };
    assert!(first.as_str().is_some_and(|s| !s.is_empty()), "{first}");
    assert_eq!(server.api("/api/v1/streams").1["server"], first);
    assert_eq!(
        std::fs::read_to_string(server.dir.join("estuary.id")).ok().as_deref(),
        first.as_str()
    );
    server.stop();

    let mut server = server.restart();
    {
        let _publisher = server.publish("live/b", "b.log");
        server.wait_live("live", "b");
        let again = wait_hit(&receiver, "on_publish", |b| b["stream"] == "b");
        assert_eq!(again["server_id"], first, "a restart keeps the server_id");
        assert_ne!(again["service_id"], Value::Null);
    }
    server.stop();

    let server = server.restart_with(&(config + "[server]\nid = \"edge-7\"\n"));
    let _publisher = server.publish("live/c", "c.log");
    server.wait_live("live", "c");
    let configured = wait_hit(&receiver, "on_publish", |b| b["stream"] == "c");
    assert_eq!(configured["server_id"], "edge-7");
    assert_eq!(server.api("/api/v1/streams").1["server"], "edge-7");
}
