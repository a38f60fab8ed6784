//! Hooks client against a real HTTP backend on 127.0.0.1.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::test_backend::{Backend, Reply};
use super::*;

const WAIT: Duration = Duration::from_secs(5);

fn identity() -> ServerIdentity {
    ServerIdentity {
        server_id: "vid-test".into(),
        service_id: "svc1".into(),
    }
}

fn client(app: &str) -> ClientInfo {
    ClientInfo {
        tc_url: format!("rtmp://127.0.0.1/{app}"),
        page_url: "http://page/".into(),
        ..ClientInfo::new("c7", "10.0.0.9", app)
    }
}

fn stream(name: &str) -> StreamInfo {
    StreamInfo {
        stream: name.into(),
        param: "?token=abc".into(),
        stream_id: "s1".into(),
    }
}

fn publish(app: &str) -> DecisionEvent {
    DecisionEvent::Publish {
        client: client(app),
        stream: stream("cam"),
    }
}

fn hls(seq_no: u64) -> NotifyEvent {
    NotifyEvent::Hls {
        client: client("live"),
        stream: stream("cam"),
        segment: HlsSegmentInfo {
            duration: 2.5,
            cwd: "/srv".into(),
            file: format!("./hls/live/cam-{seq_no}.ts"),
            url: format!("cam-{seq_no}.ts"),
            m3u8: "./hls/live/cam.m3u8".into(),
            m3u8_url: "live/cam.m3u8".into(),
            seq_no,
        },
    }
}

fn hooks(cfg: HooksConfig) -> Hooks {
    Hooks::new(cfg, HashMap::new(), identity()).expect("valid config")
}

/// Replies by path: `/zero` → 200 `0`, `/code0` → 200 `{"code":0}`, `/403` → 403,
/// `/code1` → 200 `{"code":1}`, `/401code0` → 401 `{"code":0}`, `/slow` → 0 after 1 s.
async fn backend() -> Backend {
    Backend::start(|r| match r.path.as_str() {
        "/zero" => Reply::new(200, "0\n"),
        "/code0" => Reply::new(201, r#"{"code":0,"data":null}"#),
        "/403" => Reply::new(403, "forbidden"),
        "/code1" => Reply::new(200, r#"{"code":1}"#),
        "/401code0" => Reply::new(401, r#"{"code":0}"#),
        "/slow" => Reply {
            delay: Duration::from_secs(1),
            ..Reply::new(200, "0")
        },
        _ => Reply::new(404, ""),
    })
    .await
}

/// A local URL nothing listens on.
async fn closed_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}/hook")
}

#[tokio::test]
async fn allows_on_zero_and_code_zero_and_reuses_the_connection() {
    let b = backend().await;
    let h = hooks(HooksConfig {
        on_publish: vec![b.url("/zero"), b.url("/code0")],
        ..HooksConfig::default()
    });
    for _ in 0..3 {
        assert_eq!(h.decide(&publish("live")).await, Decision::Allow);
    }
    let got = b.received();
    assert_eq!(got.len(), 6);
    assert_eq!(got[0].path, "/zero");
    assert_eq!(got[1].path, "/code0");
    assert_eq!(got[0].content_type, "application/json");
    assert_eq!(b.connections(), 1, "keep-alive connection reused");
    let s = h.stats();
    assert_eq!(s.calls(HookKind::Publish, "accepted"), 6);
    assert!(s.mean_latency(HookKind::Publish).is_some());
}

#[tokio::test]
async fn rejects_on_bad_status_body_or_timeout() {
    let b = backend().await;
    for (path, expect) in [
        ("/403", "status 403"),
        ("/code1", "code 1"),
        ("/401code0", "status 401"),
        ("/slow", "timed out"),
        ("/nothing", "status 404"),
    ] {
        let h = hooks(HooksConfig {
            on_play: vec![b.url(path)],
            timeout_ms: 200,
            ..HooksConfig::default()
        });
        let ev = DecisionEvent::Play {
            client: client("live"),
            stream: stream("cam"),
        };
        match h.decide(&ev).await {
            Decision::Reject { reason } => {
                assert!(reason.starts_with("on_play http://"), "{reason}");
                assert!(reason.contains(expect), "{path}: {reason}");
            }
            Decision::Allow => panic!("{path} allowed"),
        }
    }
}

#[tokio::test]
async fn first_rejection_stops_the_chain() {
    let b = backend().await;
    let h = hooks(HooksConfig {
        on_connect: vec![b.url("/zero"), b.url("/403"), b.url("/code0")],
        ..HooksConfig::default()
    });
    let ev = DecisionEvent::Connect {
        client: client("live"),
        stream: String::new(),
        param: String::new(),
    };
    assert!(!h.decide(&ev).await.is_allowed());
    let paths: Vec<_> = b.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/zero", "/403"]);
}

#[tokio::test]
async fn unreachable_follows_policy_and_no_urls_allows() {
    let b = backend().await;
    let down = closed_url().await;
    let refuse = hooks(HooksConfig {
        on_publish: vec![down.clone()],
        ..HooksConfig::default()
    });
    match refuse.decide(&publish("live")).await {
        Decision::Reject { reason } => assert!(reason.contains("unreachable"), "{reason}"),
        Decision::Allow => panic!("allowed with refuse policy"),
    }
    assert_eq!(refuse.stats().calls(HookKind::Publish, "unreachable"), 1);

    let allow = hooks(HooksConfig {
        on_publish: vec![down, b.url("/slow"), b.url("/zero")],
        timeout_ms: 200,
        unreachable_policy: UnreachablePolicy::Allow,
        ..HooksConfig::default()
    });
    assert_eq!(allow.decide(&publish("live")).await, Decision::Allow);
    assert_eq!(b.received().len(), 2, "later urls still asked");

    // A definite answer refuses even with the allow policy.
    let allow_403 = hooks(HooksConfig {
        on_publish: vec![b.url("/403")],
        unreachable_policy: UnreachablePolicy::Allow,
        ..HooksConfig::default()
    });
    assert!(!allow_403.decide(&publish("live")).await.is_allowed());

    let none = hooks(HooksConfig::default());
    assert_eq!(none.decide(&publish("live")).await, Decision::Allow);
    assert_eq!(none.stats(), HooksStats::default());
}

#[tokio::test]
async fn per_app_override_replaces_only_its_keys() {
    let b = backend().await;
    let global = HooksConfig {
        on_publish: vec![b.url("/403")],
        on_play: vec![b.url("/403")],
        ..HooksConfig::default()
    };
    let vip = HooksOverride {
        on_publish: Some(vec![]),
        ..HooksOverride::default()
    };
    let h = Hooks::new(global, HashMap::from([("vip".into(), vip)]), identity()).expect("valid config");
    assert!(h.decide(&publish("vip")).await.is_allowed());
    assert!(b.received().is_empty());
    assert!(!h.decide(&publish("live")).await.is_allowed());
    let play = DecisionEvent::Play {
        client: client("vip"),
        stream: stream("cam"),
    };
    assert!(!h.decide(&play).await.is_allowed(), "on_play falls back to global");
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn bodies_have_the_srs_fields() {
    let b = backend().await;
    let u = b.url("/zero");
    let h = hooks(HooksConfig {
        on_connect: vec![u.clone()],
        on_close: vec![u.clone()],
        on_publish: vec![u.clone()],
        on_unpublish: vec![u.clone()],
        on_play: vec![u.clone()],
        on_stop: vec![u.clone()],
        on_hls: vec![u.clone()],
        on_dvr: vec![u],
        ..HooksConfig::default()
    });
    let _task = h.start(CancellationToken::new());
    let c = client("live");
    let decisions = [
        DecisionEvent::Connect {
            client: c.clone(),
            stream: "cam".into(),
            param: "?token=abc".into(),
        },
        publish("live"),
        DecisionEvent::Play {
            client: c.clone(),
            stream: stream("cam"),
        },
    ];
    for d in &decisions {
        assert!(h.decide(d).await.is_allowed());
    }
    let notifications = [
        NotifyEvent::Unpublish {
            client: c.clone(),
            stream: stream("cam"),
        },
        NotifyEvent::Stop {
            client: c.clone(),
            stream: stream("cam"),
        },
        NotifyEvent::Dvr {
            client: c.clone(),
            stream: stream("cam"),
            cwd: "/srv".into(),
            file: "./rec/cam.flv".into(),
            recording_id: Some(42),
            error: None,
        },
        hls(7),
        NotifyEvent::Close {
            client: c,
            send_bytes: 1234,
            recv_bytes: 5678,
        },
    ];
    for n in &notifications {
        h.notify(n);
    }
    let got = b.wait_for(8, WAIT).await;
    let by_action = |a: &str| -> Value {
        got.iter()
            .map(|r| r.body.clone())
            .find(|v| v["action"] == a)
            .unwrap_or_else(|| panic!("no {a}"))
    };
    let common = ["action", "app", "client_id", "ip", "server_id", "service_id", "vhost"];
    let with = |extra: &[&str]| {
        let mut k: Vec<String> = common.iter().chain(extra).map(|s| s.to_string()).collect();
        k.sort();
        k
    };
    let streamf = ["tcUrl", "stream", "param", "stream_url", "stream_id"];
    let cat = |a: &[&'static str], b: &[&'static str]| [a, b].concat();

    let v = by_action("on_connect");
    assert_eq!(keys(&v), with(&["stream", "param", "tcUrl", "pageUrl"]));
    assert_eq!(v["server_id"], "vid-test");
    assert_eq!(v["service_id"], "svc1");
    assert_eq!(v["client_id"], "c7");
    assert_eq!(v["ip"], "10.0.0.9");
    assert_eq!(v["vhost"], "__defaultVhost__");
    assert_eq!(v["app"], "live");
    assert_eq!(v["tcUrl"], "rtmp://127.0.0.1/live");
    assert_eq!(v["pageUrl"], "http://page/");
    assert_eq!(v["param"], "?token=abc");
    for a in ["on_publish", "on_unpublish", "on_stop"] {
        let v = by_action(a);
        assert_eq!(keys(&v), with(&streamf), "{a}");
        assert_eq!(v["stream_url"], "/live/cam");
        assert_eq!(v["stream"], "cam");
        assert_eq!(v["stream_id"], "s1");
    }
    assert_eq!(keys(&by_action("on_play")), with(&cat(&streamf, &["pageUrl"])));
    let v = by_action("on_dvr");
    assert_eq!(keys(&v), with(&cat(&streamf, &["cwd", "file", "recording_id"])));
    assert_eq!(v["file"], "./rec/cam.flv");
    assert_eq!(v["recording_id"], json!(42));
    let v = by_action("on_hls");
    let hls_extra = ["duration", "cwd", "file", "url", "m3u8", "m3u8_url", "seq_no"];
    assert_eq!(keys(&v), with(&cat(&streamf, &hls_extra)));
    assert_eq!(v["duration"], json!(2.5));
    assert_eq!(v["seq_no"], json!(7));
    assert_eq!(v["m3u8_url"], "live/cam.m3u8");
    let v = by_action("on_close");
    assert_eq!(keys(&v), with(&["send_bytes", "recv_bytes"]));
    assert_eq!(
        (v["send_bytes"].clone(), v["recv_bytes"].clone()),
        (json!(1234), json!(5678))
    );
}

/// A stream with no id (a recording recovered after a crash) has no `stream_id`, as SRS
/// leaves it out for a stream its statistics do not know.
#[test]
fn a_stream_without_an_id_has_no_stream_id_field() {
    let event = NotifyEvent::Unpublish {
        client: client("live"),
        stream: StreamInfo {
            stream_id: String::new(),
            ..stream("cam")
        },
    };
    let body = event.to_json(&identity());
    assert!(body.get("stream_id").is_none(), "{body}");
    assert_eq!(body["stream_url"], "/live/cam");
}

fn seq_nos(b: &Backend) -> Vec<u64> {
    b.received().iter().filter_map(|r| r.body["seq_no"].as_u64()).collect()
}

#[tokio::test]
async fn notifications_arrive_in_order() {
    let b = backend().await;
    let h = hooks(HooksConfig {
        on_hls: vec![b.url("/zero")],
        ..HooksConfig::default()
    });
    let _task = h.start(CancellationToken::new());
    for i in 0..50 {
        h.notify(&hls(i));
    }
    b.wait_for(50, WAIT).await;
    assert_eq!(seq_nos(&b), (0..50).collect::<Vec<_>>());
}

#[tokio::test]
async fn backend_outage_then_everything_arrives_in_order() {
    let b = backend().await;
    let h = hooks(HooksConfig {
        on_hls: vec![b.url("/zero")],
        retry_min_ms: 20,
        retry_max_ms: 200,
        timeout_ms: 500,
        ..HooksConfig::default()
    });
    let _task = h.start(CancellationToken::new());
    h.notify(&hls(0));
    b.wait_for(1, WAIT).await;
    b.stop();
    for i in 1..20 {
        h.notify(&hls(i));
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(h.stats().calls(HookKind::Hls, "unreachable") >= 3, "retried");
    b.restart();
    b.wait_for(20, WAIT).await;
    assert_eq!(seq_nos(&b), (0..20).collect::<Vec<_>>());
    assert_eq!(h.dropped_total(), 0);
}

#[tokio::test]
async fn server_errors_are_retried_rejections_are_not() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let failures = AtomicUsize::new(0);
    let b = Backend::start(move |r| {
        if r.body["seq_no"] == 1 {
            Reply::new(200, r#"{"code":1}"#)
        } else if r.body["seq_no"] == 2 && failures.fetch_add(1, Ordering::SeqCst) < 2 {
            Reply::new(503, "")
        } else {
            Reply::new(200, "0")
        }
    })
    .await;
    let h = hooks(HooksConfig {
        on_hls: vec![b.url("/")],
        retry_min_ms: 10,
        ..HooksConfig::default()
    });
    let _task = h.start(CancellationToken::new());
    for i in 1..=3 {
        h.notify(&hls(i));
    }
    b.wait_for(5, WAIT).await;
    assert_eq!(seq_nos(&b), [1, 2, 2, 2, 3]);
    let s = h.stats();
    assert_eq!(s.abandoned_rejected, 1);
    assert_eq!(s.calls(HookKind::Hls, "server_error"), 2);
}

/// A backend that answers 500 to one event forever: that event is tried `max_tries` times,
/// then dropped and counted, and the events after it are delivered.
#[tokio::test]
async fn an_event_always_answered_5xx_is_given_up_and_the_next_ones_flow() {
    let b = Backend::start(|r| {
        if r.body["seq_no"] == 1 {
            Reply::new(500, "broken")
        } else {
            Reply::new(200, "0")
        }
    })
    .await;
    let h = hooks(HooksConfig {
        on_hls: vec![b.url("/")],
        retry_min_ms: 10,
        retry_max_ms: 20,
        max_tries: 4,
        ..HooksConfig::default()
    });
    let _task = h.start(CancellationToken::new());
    for i in 0..=3 {
        h.notify(&hls(i));
    }
    b.wait_for(7, WAIT).await;
    assert_eq!(seq_nos(&b), [0, 1, 1, 1, 1, 2, 3]);
    let s = h.stats();
    assert_eq!(s.abandoned_gave_up, 1);
    assert_eq!(s.calls(HookKind::Hls, "server_error"), 4);
    assert_eq!(s.calls(HookKind::Hls, "accepted"), 3);
}

#[test]
fn max_tries_is_bounded() {
    for bad in [0, 10_001] {
        let c = HooksConfig {
            max_tries: bad,
            ..HooksConfig::default()
        };
        let e = c.validate().expect_err("out of range").to_string();
        assert!(e.contains("hooks.max_tries"), "{e}");
    }
}

#[tokio::test]
async fn full_queue_drops_and_counts() {
    let h = hooks(HooksConfig {
        on_stop: vec!["http://127.0.0.1:9/stop".into()],
        queue_capacity: 2,
        ..HooksConfig::default()
    });
    let ev = NotifyEvent::Stop {
        client: client("live"),
        stream: stream("cam"),
    };
    for _ in 0..5 {
        h.notify(&ev);
    }
    assert_eq!(h.dropped_total(), 3);
    assert_eq!(h.stats().dropped_queue_full, 3);
}

#[tokio::test]
async fn shutdown_flushes_then_gives_up() {
    let b = backend().await;
    let down = closed_url().await;
    let h = hooks(HooksConfig {
        on_hls: vec![b.url("/zero")],
        on_dvr: vec![down],
        retry_min_ms: 10,
        ..HooksConfig::default()
    });
    let token = CancellationToken::new();
    let task = h.start(token.clone());
    for i in 0..10 {
        h.notify(&hls(i));
    }
    let dvr = NotifyEvent::Dvr {
        client: client("live"),
        stream: stream("cam"),
        cwd: String::new(),
        file: "x.flv".into(),
        recording_id: None,
        error: None,
    };
    h.notify(&dvr);
    h.notify(&dvr);
    token.cancel();
    tokio::time::timeout(h.shutdown_flush() + Duration::from_secs(1), task)
        .await
        .expect("stops within the flush window")
        .expect("task ok");
    assert_eq!(seq_nos(&b), (0..10).collect::<Vec<_>>());
    assert_eq!(h.stats().abandoned_shutdown, 2);
    h.notify(&hls(99));
    assert_eq!(h.stats().abandoned_shutdown, 3, "after stop, counted not queued");
}
