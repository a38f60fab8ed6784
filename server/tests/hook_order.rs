//! End-to-end: a backend keyed by stream or client sees its events in order, whichever URLs
//! they go to and however slowly it answers (issue "one owner per stream", item 2). The hook
//! receiver here plays such a backend: it records the events it *accepted*, in the order it
//! accepted them, and can be down (503) for a while on one URL, as a backend that restarts.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{request, wait_for, HookReceiver, Server, LIMIT};

/// `(action, client_id, stream)` of every event the backend accepted, in order.
type Accepted = Arc<Mutex<Vec<(String, String, String)>>>;

/// A backend that accepts everything, except that `down_path` answers 503 for `down_for`
/// from the first request it gets.
fn backend(down_path: &'static str, down_for: Duration) -> (HookReceiver, Accepted) {
    let accepted: Accepted = Arc::default();
    let log = Arc::clone(&accepted);
    let first_down_hit: Mutex<Option<Instant>> = Mutex::new(None);
    let receiver = HookReceiver::new(move |hit| {
        if hit.path == down_path {
            let mut first = first_down_hit.lock().unwrap_or_else(|e| e.into_inner());
            let since = *first.get_or_insert_with(Instant::now);
            if since.elapsed() < down_for {
                return (503, "backend restarting".into());
            }
        }
        let field = |name: &str| hit.body[name].as_str().unwrap_or("").to_string();
        log.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((field("action"), field("client_id"), field("stream")));
        (200, r#"{"code":0}"#.into())
    });
    (receiver, accepted)
}

fn position(accepted: &Accepted, action: &str, client: &str) -> Option<usize> {
    accepted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .position(|(a, c, _)| a == action && c == client)
}

/// The client ids of the accepted `on_publish` events, in order.
fn publishers(accepted: &Accepted) -> Vec<String> {
    accepted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(a, ..)| a == "on_publish")
        .map(|(_, c, _)| c.clone())
        .collect()
}

fn hooks(receiver: &HookReceiver, lists: &[(&str, &str)]) -> String {
    let mut c = String::from("[hooks]\ntimeout_ms = 5000\nretry_min_ms = 100\nretry_max_ms = 400\n");
    for (hook, path) in lists {
        c += &format!("{hook} = [\"{}\"]\n", receiver.url(path));
    }
    c
}

/// Waits for a second publisher to be admitted and for `first_id`'s `on_unpublish`, and
/// checks the backend accepted that before the second one's `on_publish`.
fn assert_successor_after(server: &Server, accepted: &Accepted, first_id: &str) {
    let both = wait_for(LIMIT, || (publishers(accepted).len() == 2).then_some(()));
    assert!(
        both.is_some(),
        "the second publisher was not admitted; log:\n{}",
        server.log()
    );
    let second_id = publishers(accepted)[1].clone();
    let gone = wait_for(LIMIT, || position(accepted, "on_unpublish", first_id));
    let gone = gone.expect("the first publisher's on_unpublish accepted (once its URL is back)");
    let back = position(accepted, "on_publish", &second_id).expect("the second publisher's on_publish");
    assert!(
        gone < back,
        "the second publisher's on_publish came before the first one's on_unpublish: {:?}",
        accepted.lock().unwrap_or_else(|e| e.into_inner())
    );
}

/// A publisher that reconnects (its old connection dropped) is announced with `on_publish`
/// only after the backend accepted the old one's `on_unpublish`, even though that went to
/// another URL, which was down for a while.
#[test]
fn a_reconnecting_publisher_is_announced_after_its_predecessor_left() {
    let (receiver, accepted) = backend("/unpublish", Duration::from_millis(1500));
    let config = hooks(&receiver, &[("on_publish", "/publish"), ("on_unpublish", "/unpublish")]);
    let server = Server::start("reconnect-order", &config);
    let first = server.publish("live/cam", "first.log");
    server.wait_live("live", "cam");
    let first_id = publishers(&accepted)[0].clone();
    drop(first); // the encoder's connection drops
    let unpublish_sent = wait_for(LIMIT, || {
        receiver.hits().iter().any(|h| h.path == "/unpublish").then_some(())
    });
    assert!(unpublish_sent.is_some(), "no on_unpublish; log:\n{}", server.log());
    let _second = server.publish("live/cam", "second.log");
    assert_successor_after(&server, &accepted, &first_id);
}

/// A newcomer that takes over a silent publisher's key: the backend hears the silent one's
/// `on_unpublish` before the newcomer's `on_publish`.
#[test]
fn a_takeover_announces_the_old_publisher_gone_first() {
    let (receiver, accepted) = backend("/none", Duration::ZERO);
    let mut config = hooks(&receiver, &[("on_publish", "/publish"), ("on_unpublish", "/unpublish")]);
    config += "[rtmp]\npublisher_idle_timeout_ms = 1000\n";
    let server = Server::start("takeover-order", &config);
    let first = server.publish("live/cam", "first.log");
    server.wait_live("live", "cam");
    let first_id = publishers(&accepted)[0].clone();
    // Silent with its socket open, as an encoder whose network went away.
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &first.0.id().to_string()])
        .status()
        .expect("kill -STOP");
    assert!(stopped.success());
    std::thread::sleep(Duration::from_millis(1500));
    let _second = server.publish("live/cam", "second.log");
    assert_successor_after(&server, &accepted, &first_id);
    drop(first);
}

/// `on_close` of a publisher and of a player comes after their `on_unpublish` / `on_stop`,
/// although it goes to another URL and theirs was down for a while.
#[test]
fn on_close_waits_for_the_clients_unpublish_and_stop() {
    let (receiver, accepted) = backend("/streams", Duration::from_millis(1500));
    let config = hooks(
        &receiver,
        &[
            ("on_publish", "/publish"),
            ("on_unpublish", "/streams"),
            ("on_stop", "/streams"),
            ("on_close", "/clients"),
        ],
    ) + "[play]\nwait_for_publisher_ms = 5000\n";
    let server = Server::start("close-order", &config);
    let publisher = server.publish("live/cam", "publisher.log");
    server.wait_live("live", "cam");
    let player = server.play_rtmp("live/cam", "player.log");
    let playing = wait_for(LIMIT, || (!server.clients_of("rtmp-play").is_empty()).then_some(()));
    assert!(playing.is_some(), "the player did not start; log:\n{}", server.log());
    let player_id = server.clients_of("rtmp-play")[0]["id"].as_str().unwrap().to_string();
    let publisher_id = publishers(&accepted)[0].clone();
    drop(player);
    drop(publisher);
    let all = [
        ("on_close", &player_id),
        ("on_close", &publisher_id),
        ("on_stop", &player_id),
        ("on_unpublish", &publisher_id),
    ];
    let arrived = wait_for(LIMIT, || {
        all.iter()
            .all(|(action, client)| position(&accepted, action, client).is_some())
            .then_some(())
    });
    assert!(
        arrived.is_some(),
        "missing events; accepted {:?}",
        accepted.lock().unwrap_or_else(|e| e.into_inner())
    );
    let before = |first: &str, client: &str| {
        let a = position(&accepted, first, client).unwrap_or_else(|| panic!("no {first} for {client}"));
        let b = position(&accepted, "on_close", client).unwrap();
        assert!(
            a < b,
            "{client}: on_close before {first}: {:?}",
            accepted.lock().unwrap_or_else(|e| e.into_inner())
        );
    };
    before("on_unpublish", &publisher_id);
    before("on_stop", &player_id);
}

/// A `HEAD` of a stream's `.flv` URL tells whether it is live: no `on_play` (it is no
/// viewer), no wait for a publisher (the answer comes before `wait_for_publisher_ms`).
#[test]
fn head_on_flv_neither_asks_on_play_nor_waits() {
    let (receiver, accepted) = backend("/none", Duration::ZERO);
    let config = hooks(&receiver, &[("on_play", "/play")]) + "[play]\nwait_for_publisher_ms = 60000\n";
    let server = Server::start("head-flv", &config);
    // `request` gives up after 10 s, well before the 60 s a viewer would wait.
    let absent = request(server.http, "HEAD", "/live/cam.flv", "").expect("HEAD answered at once");
    assert_eq!(absent.status, 404);
    let _publisher = server.publish("live/cam", "publisher.log");
    server.wait_live("live", "cam");
    let live = request(server.http, "HEAD", "/live/cam.flv", "").expect("HEAD answered");
    assert_eq!(live.status, 200);
    assert!(
        live.headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "video/x-flv"),
        "{:?}",
        live.headers
    );
    assert!(
        receiver.hits().is_empty(),
        "a HEAD called a hook: {:?}",
        accepted.lock().unwrap_or_else(|e| e.into_inner())
    );
}
