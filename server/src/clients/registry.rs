//! The client registry: every RTMP connection, HTTP-FLV viewer and HLS playback session, for
//! the HTTP API, the metrics and kicking.
//!
//! RTMP connections and HTTP-FLV viewers register when they start and hold a [`ClientGuard`]
//! that unregisters them when dropped. HLS sessions are registered by
//! [`Clients::touch_hls_session`] on every playlist and segment request, and end when no
//! request came for `api.hls_session_idle_ms` or when kicked; what the session held (its
//! viewer's hold on the stream) is dropped then, which tells the hooks.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::client::{Client, ClientKind, HlsSession, Role};
use super::hls_sessions::{fresh_token, usable_token, HlsSessions, SessionKicked};
use super::ids::Ids;
use crate::stream::StreamKey;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

struct Inner {
    ids: Ids,
    map: Mutex<BTreeMap<u64, Arc<Client>>>,
    /// Locked after `map` when both are needed.
    hls: Mutex<HlsSessions>,
    hls_idle: Duration,
    epoch: Instant,
}

/// The registry; cheap to clone.
#[derive(Clone)]
pub struct Clients {
    inner: Arc<Inner>,
}

impl Clients {
    pub fn new(hls_idle: Duration) -> Clients {
        Clients {
            inner: Arc::new(Inner {
                ids: Ids::default(),
                map: Mutex::new(BTreeMap::new()),
                hls: Mutex::new(HlsSessions::default()),
                hls_idle,
                epoch: Instant::now(),
            }),
        }
    }

    /// Ids of connections, clients and streams.
    pub fn ids(&self) -> &Ids {
        &self.inner.ids
    }

    /// A new id, unique for the life of the process (connections, clients, streams).
    pub fn next_id(&self) -> u64 {
        self.inner.ids.next()
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

    /// Whether `token` names a live HLS session.
    pub fn has_hls_session(&self, token: &str) -> bool {
        self.expire_hls();
        lock(&self.inner.hls).tokens.contains_key(token)
    }

    /// Disconnects client `id`: cancels its kick token (its connection ends and unregisters)
    /// or, for an HLS session, ends the session and refuses its token from now on.
    pub fn kick(&self, id: u64) -> bool {
        let Some(client) = self.get(id) else {
            return false;
        };
        client.kick.cancel();
        if let Some(token) = client.hls_token() {
            {
                let mut map = lock(&self.inner.map);
                map.remove(&id);
                lock(&self.inner.hls).kick(token);
            }
            drop(client.detach());
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
        let token = usable_token(token);
        let mut map = lock(&self.inner.map);
        let mut sessions = lock(&self.inner.hls);
        if let Some(t) = token {
            if sessions.is_kicked(t) {
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
        let hls = HlsSession {
            token: token.clone(),
            last_seen_ms: now_ms.into(),
            attachment: Mutex::new(None),
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

    /// Ends HLS sessions idle for longer than the configured time.
    fn expire_hls(&self) {
        let now_ms = self.inner.epoch.elapsed().as_millis() as u64;
        let idle_ms = self.inner.hls_idle.as_millis() as u64;
        let mut ended: Vec<Arc<Client>> = Vec::new();
        {
            let mut map = lock(&self.inner.map);
            let mut sessions = lock(&self.inner.hls);
            if sessions.is_empty() {
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
            sessions.expire_kicks();
        }
        // Outside the locks: what a session held tells the hooks when it goes.
        let held: Vec<Option<Box<dyn Any + Send + Sync>>> = ended.iter().map(|c| c.detach()).collect();
        drop(held);
    }

    /// Takes a bitrate sample of every client; run every [`SAMPLE_EVERY`](super::SAMPLE_EVERY).
    pub fn sample(&self) {
        let now = Instant::now();
        for client in self.list() {
            client.sample(now);
        }
    }
}
