use super::*;
use crate::config::IpRange;
use crate::stream::StreamKey;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn role(kind: ClientKind, key: &StreamKey) -> Role {
    Role::new(kind, Some(key.clone()), format!("rtmp://h/{key}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Something a session holds; `true` in the flag once it was dropped.
struct Held(Arc<AtomicBool>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn held() -> (Box<Held>, Arc<AtomicBool>) {
    let flag = Arc::new(AtomicBool::new(false));
    (Box::new(Held(Arc::clone(&flag))), flag)
}

fn open(clients: &Clients, session: u64, from: &str) -> Result<Arc<Client>, HlsRefusal> {
    let key = StreamKey::new("live", "a");
    clients.open_hls_session(
        clients.next_id(),
        session,
        (format!("t{session}"), 0),
        &key,
        ip(from),
        "http://h/live/a.m3u8",
        Box::new(()),
    )
}

#[test]
fn guard_unregisters_and_kick_cancels() {
    let clients = Clients::new(Duration::from_secs(30), HlsLimits::default());
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
    let clients = Clients::new(Duration::from_secs(30), HlsLimits::default());
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
    let h = open(&clients, 5, "10.0.0.1").unwrap();
    assert_eq!(h.hls_token().as_deref(), Some("t5"));
    let again = clients.hls_session(5).unwrap().expect("the session lives");
    assert_eq!(h.id, again.id);
    let raced = open(&clients, 5, "10.0.0.1").unwrap();
    assert_eq!(h.id, raced.id, "opening a live session again finds it");
    let usage = per_stream(&clients.list());
    let u = &usage[&key];
    assert_eq!((u.rtmp, u.flv, u.hls), (1, 1, 1));
    assert_eq!(u.publisher.as_ref().map(|c| c.id), Some(101));
}

#[tokio::test(start_paused = true)]
async fn hls_sessions_end_at_their_deadline_and_a_refresh_moves_it() {
    let clients = Clients::new(Duration::from_secs(30), HlsLimits::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(clients.clone().run_expiry(shutdown.clone()));
    let settle = || async {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    };
    settle().await; // the task sleeps with nothing to wait for
    let key = StreamKey::new("live", "a");
    let (a, a_gone) = held();
    clients
        .open_hls_session(clients.next_id(), 1, ("t1".into(), 0), &key, ip("10.0.0.1"), "u", a)
        .unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    let (b, b_gone) = held();
    clients
        .open_hls_session(clients.next_id(), 2, ("t2".into(), 0), &key, ip("10.0.0.2"), "u", b)
        .unwrap();
    tokio::time::advance(Duration::from_secs(15)).await; // t = 25
    assert!(clients.hls_session(1).unwrap().is_some(), "refreshed: ends at 55");
    tokio::time::advance(Duration::from_secs(14)).await; // t = 39
    settle().await;
    assert_eq!(clients.hls_sessions(), 2);
    tokio::time::advance(Duration::from_secs(2)).await; // t = 41: session 2 ended at 40
    settle().await;
    assert!(b_gone.load(Ordering::SeqCst), "what session 2 held was dropped");
    assert!(!a_gone.load(Ordering::SeqCst));
    assert_eq!(clients.hls_sessions(), 1);
    assert!(clients.hls_session(2).unwrap().is_none());
    tokio::time::advance(Duration::from_secs(15)).await; // t = 56
    settle().await;
    assert!(a_gone.load(Ordering::SeqCst));
    assert!(clients.list().is_empty());
    assert_eq!(clients.scheduled_expiries(), 0);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("shutdown stops the expiry task")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_kicked_session_is_refused_for_a_while() {
    let clients = Clients::new(Duration::from_secs(30), HlsLimits::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(clients.clone().run_expiry(shutdown.clone()));
    let key = StreamKey::new("live", "a");
    let (a, a_gone) = held();
    let s = clients
        .open_hls_session(clients.next_id(), 9, ("t9".into(), 0), &key, ip("10.0.0.1"), "u", a)
        .unwrap();
    assert!(clients.kick(s.id));
    assert!(a_gone.load(Ordering::SeqCst));
    assert!(clients.list().is_empty());
    assert_eq!(clients.hls_session(9).err(), Some(HlsRefusal::Kicked));
    assert_eq!(clients.hls_room(9, ip("10.0.0.1")), Err(HlsRefusal::Kicked));
    assert_eq!(open(&clients, 9, "10.0.0.1").err(), Some(HlsRefusal::Kicked));
    tokio::time::advance(super::hls_sessions::KICKED_KEEP + Duration::from_secs(1)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(clients.hls_session(9).unwrap().is_none(), "the kick is forgotten");
    shutdown.cancel();
    task.await.unwrap();
}

#[test]
fn hls_sessions_are_limited_per_address_and_in_total() {
    let limits = HlsLimits {
        per_ip: 2,
        total: 4,
        exempt: vec![IpRange::try_from("192.0.2.0/24".to_string()).unwrap()],
    };
    let clients = Clients::new(Duration::from_secs(30), limits);
    let a1 = open(&clients, 1, "10.0.0.1").unwrap();
    open(&clients, 2, "::ffff:10.0.0.1").unwrap();
    assert_eq!(clients.hls_room(3, ip("10.0.0.1")), Err(HlsRefusal::PerIp(2)));
    assert_eq!(open(&clients, 3, "10.0.0.1").err(), Some(HlsRefusal::PerIp(2)));
    // The exempt range is not counted per address.
    open(&clients, 4, "192.0.2.9").unwrap();
    open(&clients, 5, "192.0.2.9").unwrap();
    assert_eq!(open(&clients, 6, "10.0.0.2").err(), Some(HlsRefusal::Total(4)));
    assert_eq!(clients.hls_room(6, ip("192.0.2.9")), Err(HlsRefusal::Total(4)));
    // An ended session makes room.
    assert!(clients.kick(a1.id));
    open(&clients, 3, "10.0.0.1").expect("room again");
    assert_eq!(clients.hls_sessions(), 4);
}

#[test]
fn kbps_since_start() {
    let clients = Clients::new(Duration::from_secs(30), HlsLimits::default());
    let key = StreamKey::new("live", "a");
    let g = clients.register(
        1,
        "ip".into(),
        role(ClientKind::Publisher, &key),
        CancellationToken::new(),
    );
    clients.sample();
    g.add_received(100_000);
    // 100 kB in the client's first 100 ms: 8000 kbit/s, whatever the clock did meanwhile.
    let k = g.kbps_at(g.started + Duration::from_millis(100));
    assert_eq!(k.recv, 8000, "{k:?}");
}
