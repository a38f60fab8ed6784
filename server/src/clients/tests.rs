use super::*;
use crate::stream::StreamKey;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn role(kind: ClientKind, key: &StreamKey) -> Role {
    Role::new(kind, Some(key.clone()), format!("rtmp://h/{key}"))
}

#[test]
fn guard_unregisters_and_kick_cancels() {
    let clients = Clients::new(Duration::from_secs(30));
    let key = StreamKey::new("live", "a");
    let kick = CancellationToken::new();
    let g = clients.register(7, "127.0.0.1".into(), role(ClientKind::RtmpPlay, &key), kick.clone());
    g.add_sent(1000);
    assert_eq!(clients.list().len(), 1);
    assert!(clients.kick(7));
    assert!(kick.is_cancelled());
    drop(g);
    assert!(clients.list().is_empty());
    assert!(!clients.kick(7));
}

#[test]
fn per_stream_counts_viewers_by_protocol() {
    let clients = Clients::new(Duration::from_secs(30));
    let key = StreamKey::new("live", "a");
    let _p = clients.register(
        101,
        "ip".into(),
        role(ClientKind::Publisher, &key),
        CancellationToken::new(),
    );
    let _r = clients.register(
        102,
        "ip".into(),
        role(ClientKind::RtmpPlay, &key),
        CancellationToken::new(),
    );
    let _f = clients.register(
        103,
        "ip".into(),
        role(ClientKind::FlvPlay, &key),
        CancellationToken::new(),
    );
    let h = clients
        .touch_hls_session(None, &key, "ip", "http://h/live/a.m3u8")
        .unwrap();
    let again = clients
        .touch_hls_session(h.hls_token(), &key, "ip", "http://h/live/a.m3u8")
        .unwrap();
    assert_eq!(h.id, again.id);
    let usage = per_stream(&clients.list());
    let u = &usage[&key];
    assert_eq!((u.rtmp, u.flv, u.hls), (1, 1, 1));
    assert_eq!(u.publisher.as_ref().map(|c| c.id), Some(101));
}

#[test]
fn hls_sessions_expire_and_kicked_tokens_are_refused() {
    let clients = Clients::new(Duration::from_millis(50));
    let key = StreamKey::new("live", "a");
    let s = clients.touch_hls_session(Some("abc"), &key, "ip", "u").unwrap();
    assert_eq!(s.hls_token(), Some("abc"));
    std::thread::sleep(Duration::from_millis(120));
    assert!(clients.list().is_empty(), "idle session expired");
    let s = clients.touch_hls_session(Some("abc"), &key, "ip", "u").unwrap();
    assert!(clients.kick(s.id));
    assert!(clients.touch_hls_session(Some("abc"), &key, "ip", "u").is_err());
    assert!(clients.list().is_empty());
    // A bad token is replaced by a fresh one.
    let s = clients.touch_hls_session(Some("../x"), &key, "ip", "u").unwrap();
    assert_ne!(s.hls_token(), Some("../x"));
}

#[test]
fn kbps_since_start() {
    let clients = Clients::new(Duration::from_secs(30));
    let key = StreamKey::new("live", "a");
    let g = clients.register(
        1,
        "ip".into(),
        role(ClientKind::Publisher, &key),
        CancellationToken::new(),
    );
    clients.sample();
    std::thread::sleep(Duration::from_millis(100));
    g.add_received(100_000);
    let k = g.kbps();
    assert!(k.recv > 1000 && k.recv <= 8000, "{k:?}");
}
