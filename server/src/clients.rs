//! The client registry: every RTMP connection, HTTP-FLV viewer and HLS playback session,
//! for the HTTP API, the metrics and kicking.
//!
//! RTMP connections and HTTP-FLV viewers register when they start and hold a [`ClientGuard`]
//! that unregisters them when dropped. HLS viewers make no connection that lasts, so they are
//! counted by playback session: the HLS handler calls [`Clients::touch_hls_session`] on every
//! playlist and segment request with the session token it put in the playlist's URLs, and a
//! session with no request for `play.hls_session_idle_ms` expires.
//!
//! Byte counters are atomics that connections add to once per write batch (or per read), so
//! the media path takes no lock. Bitrates are SRS's `recv_30s`/`send_30s`: the change of the
//! counters over the last 30 s (since the start for a younger client), from samples taken
//! every [`SAMPLE_EVERY`] by [`Clients::sample`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::hub::StreamKey;

/// How often [`Clients::sample`] should run.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// The bitrate window (SRS `kbps.recv_30s`).
const KBPS_WINDOW: Duration = Duration::from_secs(30);
/// A kicked HLS session's token stays refused this long.
const KICKED_HLS_KEEP: Duration = Duration::from_secs(600);
/// Longest session token a client may bring.
const MAX_TOKEN_LEN: usize = 64;

/// What a client is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKind {
    /// An RTMP connection that has not published or played (yet).
    RtmpIdle,
    Publisher,
    RtmpPlay,
    FlvPlay,
    HlsPlay,
}

impl ClientKind {
    pub const ALL: [ClientKind; 5] = [
        ClientKind::RtmpIdle,
        ClientKind::Publisher,
        ClientKind::RtmpPlay,
        ClientKind::FlvPlay,
        ClientKind::HlsPlay,
    ];

    /// The API's `type` and the metrics' `kind` label.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::RtmpIdle => "rtmp-idle",
            ClientKind::Publisher => "publisher",
            ClientKind::RtmpPlay => "rtmp-play",
            ClientKind::FlvPlay => "flv-play",
            ClientKind::HlsPlay => "hls-play",
        }
    }

    pub fn is_viewer(self) -> bool {
        matches!(self, ClientKind::RtmpPlay | ClientKind::FlvPlay | ClientKind::HlsPlay)
    }
}

/// What a client plays or publishes, set when it starts doing so.
#[derive(Debug, Clone)]
pub struct Role {
    pub kind: ClientKind,
    /// `rtmp://host/app/stream`, `http://host/app/stream.flv`, ….
    pub url: String,
    pub key: Option<StreamKey>,
    /// When the client took this role, Unix ms.
    pub since_unix_ms: u64,
}

impl Role {
    pub fn new(kind: ClientKind, key: Option<StreamKey>, url: String) -> Role {
        Role {
            kind,
            url,
            key,
            since_unix_ms: unix_ms(),
        }
    }
}

/// Bitrates over the last 30 s, kbit/s.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Kbps {
    pub recv: u64,
    pub send: u64,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    sent: u64,
    received: u64,
}

/// One registered client.
#[derive(Debug)]
pub struct Client {
    pub id: u64,
    pub ip: String,
    pub started: Instant,
    pub started_unix_ms: u64,
    /// Cancelled to disconnect the client (`DELETE /api/v1/clients/{id}`).
    pub kick: CancellationToken,
    sent: AtomicU64,
    received: AtomicU64,
    role: Mutex<Role>,
    samples: Mutex<VecDeque<Sample>>,
    hls: Option<HlsState>,
}

#[derive(Debug)]
struct HlsState {
    token: String,
    /// Milliseconds since the registry's epoch of the last request.
    last_seen_ms: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Client {
    fn new(id: u64, ip: String, role: Role, kick: CancellationToken, hls: Option<HlsState>) -> Client {
        Client {
            id,
            ip,
            started: Instant::now(),
            started_unix_ms: unix_ms(),
            kick,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            role: Mutex::new(role),
            samples: Mutex::new(VecDeque::new()),
            hls,
        }
    }

    /// Adds bytes written to the client (call once per write batch).
    pub fn add_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds bytes read from the client (call once per read).
    pub fn add_received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn role(&self) -> Role {
        lock(&self.role).clone()
    }

    pub fn kind(&self) -> ClientKind {
        lock(&self.role).kind
    }

    /// Records that the client now publishes or plays `key` at `url` (or is idle again).
    pub fn set_role(&self, kind: ClientKind, key: Option<StreamKey>, url: String) {
        *lock(&self.role) = Role::new(kind, key, url);
    }

    /// The HLS session token to put in the playlist's URLs; `None` for other clients.
    pub fn hls_token(&self) -> Option<&str> {
        self.hls.as_ref().map(|h| h.token.as_str())
    }

    /// Bitrates over the last 30 s (since the start for a younger client).
    pub fn kbps(&self) -> Kbps {
        // Measure from the oldest sample in the window; a sample taken a moment ago would
        // divide almost nothing by almost no time, so until one is a second old, measure
        // since the client started.
        let (at, sent, received) = match lock(&self.samples).front() {
            Some(s) if s.at.elapsed() >= Duration::from_secs(1) => (s.at, s.sent, s.received),
            _ => (self.started, 0, 0),
        };
        let ms = at.elapsed().as_millis().max(1) as u64;
        // bytes * 8 / ms = kbit/s
        Kbps {
            recv: (self.received().saturating_sub(received)) * 8 / ms,
            send: (self.sent().saturating_sub(sent)) * 8 / ms,
        }
    }

    fn sample(&self, now: Instant) {
        let mut samples = lock(&self.samples);
        samples.push_back(Sample {
            at: now,
            sent: self.sent(),
            received: self.received(),
        });
        while samples.len() > 1 && samples.front().is_some_and(|s| now.duration_since(s.at) > KBPS_WINDOW) {
            samples.pop_front();
        }
    }
}

/// A registered client; dropping it unregisters the client.
pub struct ClientGuard {
    client: Arc<Client>,
    clients: Clients,
}

impl ClientGuard {
    /// The entry itself, for counting bytes from elsewhere (a stream writing to the client).
    pub fn shared(&self) -> Arc<Client> {
        Arc::clone(&self.client)
    }
}

impl std::ops::Deref for ClientGuard {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        lock(&self.clients.inner.map).remove(&self.client.id);
    }
}

/// Per-stream totals over its clients.
#[derive(Debug, Clone, Default)]
pub struct StreamUsage {
    pub rtmp: usize,
    pub flv: usize,
    pub hls: usize,
    pub publisher: Option<Arc<Client>>,
    pub recv_kbps: u64,
    pub send_kbps: u64,
    pub recv_bytes: u64,
    pub send_bytes: u64,
}

impl StreamUsage {
    pub fn viewers(&self) -> usize {
        self.rtmp + self.flv + self.hls
    }
}

/// Why an HLS request is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("hls session {0} was kicked")]
pub struct SessionKicked(pub String);

#[derive(Default)]
struct HlsSessions {
    /// Token → client id.
    tokens: HashMap<String, u64>,
    kicked: HashMap<String, Instant>,
}

struct Inner {
    next_id: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<Client>>>,
    /// Locked after `map` when both are needed.
    hls: Mutex<HlsSessions>,
    hls_idle: Duration,
    epoch: Instant,
    stream_ids: Mutex<HashMap<StreamKey, u64>>,
    /// Told about every HLS session that ends (expired or kicked): sends `on_stop`.
    hls_ended: OnceLock<SessionEndHook>,
}

/// Called with every HLS session that ends.
type SessionEndHook = Box<dyn Fn(&Client) + Send + Sync>;

/// The registry; cheap to clone.
#[derive(Clone)]
pub struct Clients {
    inner: Arc<Inner>,
}

impl Clients {
    pub fn new(hls_idle: Duration) -> Clients {
        Clients {
            inner: Arc::new(Inner {
                next_id: AtomicU64::new(1),
                map: Mutex::new(BTreeMap::new()),
                hls: Mutex::new(HlsSessions::default()),
                hls_idle,
                epoch: Instant::now(),
                stream_ids: Mutex::new(HashMap::new()),
                hls_ended: OnceLock::new(),
            }),
        }
    }

    /// Sets what happens when an HLS session ends (it expired or was kicked); once.
    pub fn on_hls_session_end(&self, f: impl Fn(&Client) + Send + Sync + 'static) {
        let _ = self.inner.hls_ended.set(Box::new(f));
    }

    /// Whether `token` names a live HLS session.
    pub fn has_hls_session(&self, token: &str) -> bool {
        self.expire_hls();
        lock(&self.inner.hls).tokens.contains_key(token)
    }

    fn hls_session_ended(&self, client: &Client) {
        if let Some(f) = self.inner.hls_ended.get() {
            f(client);
        }
    }

    /// A new id, unique for the life of the process (connections, clients, streams).
    pub fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a client under `id` until the guard is dropped.
    pub fn register(&self, id: u64, ip: String, role: Role, kick: CancellationToken) -> ClientGuard {
        let client = Arc::new(Client::new(id, ip, role, kick, None));
        lock(&self.inner.map).insert(id, Arc::clone(&client));
        ClientGuard {
            client,
            clients: self.clone(),
        }
    }

    /// Every client, by id.
    pub fn list(&self) -> Vec<Arc<Client>> {
        self.expire_hls();
        lock(&self.inner.map).values().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Arc<Client>> {
        self.expire_hls();
        lock(&self.inner.map).get(&id).cloned()
    }

    /// Disconnects client `id`: cancels its kick token (its connection ends and unregisters)
    /// or, for an HLS session, ends the session and refuses its token from now on.
    pub fn kick(&self, id: u64) -> bool {
        let Some(client) = self.get(id) else {
            return false;
        };
        client.kick.cancel();
        if let Some(hls) = &client.hls {
            {
                let mut map = lock(&self.inner.map);
                map.remove(&id);
                let mut sessions = lock(&self.inner.hls);
                sessions.tokens.remove(&hls.token);
                sessions.kicked.insert(hls.token.clone(), Instant::now());
            }
            self.hls_session_ended(&client);
        }
        metrics::counter!(crate::metrics::VIEWERS_DISCONNECTED_TOTAL, "reason" => "kicked").increment(1);
        true
    }

    /// Records an HLS request (playlist or segment) of session `token` for `key`. Without a
    /// token, or with one that expired, a session is created (with the given token if it is
    /// usable, so the URLs the player holds stay valid). The returned client's
    /// [`Client::hls_token`] goes into the playlist's URLs, and the bytes served should be
    /// added with [`Client::add_sent`]. A kicked session's token is refused.
    pub fn touch_hls_session(
        &self,
        token: Option<&str>,
        key: &StreamKey,
        ip: &str,
        url: &str,
    ) -> Result<Arc<Client>, SessionKicked> {
        self.expire_hls();
        let now_ms = self.inner.epoch.elapsed().as_millis() as u64;
        let token =
            token.filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN && t.bytes().all(|b| b.is_ascii_alphanumeric()));
        let mut map = lock(&self.inner.map);
        let mut sessions = lock(&self.inner.hls);
        if let Some(t) = token {
            if sessions.kicked.contains_key(t) {
                return Err(SessionKicked(t.to_string()));
            }
            if let Some(client) = sessions.tokens.get(t).and_then(|id| map.get(id)) {
                if let Some(h) = &client.hls {
                    h.last_seen_ms.store(now_ms, Ordering::Relaxed);
                }
                return Ok(Arc::clone(client));
            }
        }
        let id = self.next_id();
        let token = token.map_or_else(|| fresh_token(id), str::to_string);
        let role = Role::new(ClientKind::HlsPlay, Some(key.clone()), url.to_string());
        let hls = HlsState {
            token: token.clone(),
            last_seen_ms: AtomicU64::new(now_ms),
        };
        let client = Arc::new(Client::new(
            id,
            ip.to_string(),
            role,
            CancellationToken::new(),
            Some(hls),
        ));
        map.insert(id, Arc::clone(&client));
        sessions.tokens.insert(token, id);
        Ok(client)
    }

    /// Removes HLS sessions idle for longer than the configured time.
    fn expire_hls(&self) {
        let now_ms = self.inner.epoch.elapsed().as_millis() as u64;
        let idle_ms = self.inner.hls_idle.as_millis() as u64;
        let mut ended = Vec::new();
        {
            let mut map = lock(&self.inner.map);
            let mut sessions = lock(&self.inner.hls);
            if sessions.tokens.is_empty() && sessions.kicked.is_empty() {
                return;
            }
            sessions.tokens.retain(|_, id| {
                let Some(h) = map.get(id).and_then(|c| c.hls.as_ref()) else {
                    return false;
                };
                let alive = now_ms.saturating_sub(h.last_seen_ms.load(Ordering::Relaxed)) <= idle_ms;
                if !alive {
                    tracing::debug!(client = *id, "hls session expired");
                    ended.extend(map.remove(id));
                }
                alive
            });
            sessions.kicked.retain(|_, at| at.elapsed() < KICKED_HLS_KEEP);
        }
        // Outside the locks: the callback queues a hook notification.
        for client in ended {
            self.hls_session_ended(&client);
        }
    }

    /// Takes a bitrate sample of every client; run every [`SAMPLE_EVERY`].
    pub fn sample(&self) {
        let now = Instant::now();
        for client in self.list() {
            client.sample(now);
        }
    }

    /// Totals per stream over `clients` (from [`Clients::list`]).
    pub fn per_stream(&self, clients: &[Arc<Client>]) -> HashMap<StreamKey, StreamUsage> {
        let mut out: HashMap<StreamKey, StreamUsage> = HashMap::new();
        for c in clients {
            let role = c.role();
            let Some(key) = role.key else { continue };
            let u = out.entry(key).or_default();
            let kbps = c.kbps();
            match role.kind {
                ClientKind::Publisher => {
                    u.recv_kbps += kbps.recv;
                    u.recv_bytes += c.received();
                    u.publisher = Some(Arc::clone(c));
                    continue;
                }
                ClientKind::RtmpPlay => u.rtmp += 1,
                ClientKind::FlvPlay => u.flv += 1,
                ClientKind::HlsPlay => u.hls += 1,
                ClientKind::RtmpIdle => continue,
            }
            u.send_kbps += kbps.send;
            u.send_bytes += c.sent();
        }
        out
    }

    /// The API id of stream `key`, assigned on first use.
    pub fn stream_id(&self, key: &StreamKey) -> u64 {
        if let Some(id) = lock(&self.inner.stream_ids).get(key) {
            return *id;
        }
        let id = self.next_id();
        *lock(&self.inner.stream_ids).entry(key.clone()).or_insert(id)
    }

    /// Forgets the ids of streams that are gone.
    pub fn retain_stream_ids(&self, keys: &[StreamKey]) {
        lock(&self.inner.stream_ids).retain(|k, _| keys.contains(k));
    }
}

/// The query parameter that carries an HLS playback session token (`?session=TOKEN`).
pub const HLS_SESSION_PARAM: &str = "session";

/// The session token in a request's query string, if any.
pub fn hls_session_param(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(HLS_SESSION_PARAM)?.strip_prefix('='))
}

/// `playlist` with `?session=TOKEN` (or `&session=TOKEN`) added to every URI line, so a
/// player's segment requests name its session. Tag lines (`#...`) and blank lines are kept.
pub fn playlist_with_session(playlist: &str, token: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + 64);
    for line in playlist.lines() {
        out.push_str(line);
        let uri = line.trim();
        if !uri.is_empty() && !uri.starts_with('#') {
            out.push(if uri.contains('?') { '&' } else { '?' });
            out.push_str(HLS_SESSION_PARAM);
            out.push('=');
            out.push_str(token);
        }
        out.push('\n');
    }
    out
}

/// An unguessable-enough session token: the id plus 32 random bits (std's `RandomState`).
fn fresh_token(id: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(id);
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    format!("{id:x}{:08x}", h.finish() & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let usage = clients.per_stream(&clients.list());
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
    fn playlist_urls_carry_the_session() {
        let p = "#EXTM3U\n#EXTINF:2.0,\nlive/a-1-0.ts\nb.ts?x=1\n";
        assert_eq!(
            playlist_with_session(p, "t1"),
            "#EXTM3U\n#EXTINF:2.0,\nlive/a-1-0.ts?session=t1\nb.ts?x=1&session=t1\n"
        );
        assert_eq!(hls_session_param(Some("a=1&session=t1")), Some("t1"));
        assert_eq!(hls_session_param(Some("sessionx=1")), None);
        assert_eq!(hls_session_param(None), None);
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
}
