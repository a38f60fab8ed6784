//! The client registry: every RTMP connection, HTTP-FLV viewer and HLS playback session, for
//! the HTTP API, the metrics and kicking.
//!
//! RTMP connections and HTTP-FLV viewers register when they start and hold a [`ClientGuard`]
//! that unregisters them when dropped. HLS sessions are opened by
//! [`Clients::open_hls_session`] (after the play admission) and refreshed by
//! [`Clients::hls_session`] on every playlist and segment request; they end when no request
//! came for `api.hls_session_idle_ms` (the expiry task, [`Clients::run_expiry`], wakes at
//! the first deadline) or when kicked. What the session held (its viewer's hold on the
//! stream) is dropped then, which tells the hooks.

use std::any::Any;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::client::{Client, ClientKind, HlsSession, Role};
use super::hls_sessions::{HlsLimits, HlsRefusal, HlsSessions, KICKED_KEEP};
use super::ids::Ids;
use super::session_token::SessionTokens;
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
        if lock(&self.clients.inner.map).remove(&self.client.id).is_some() {
            self.clients.inner.departed.add(&self.client);
        }
    }
}

struct Inner {
    ids: Ids,
    map: Mutex<BTreeMap<u64, Arc<Client>>>,
    /// Locked after `map` when both are needed.
    hls: Mutex<HlsSessions>,
    hls_idle: Duration,
    tokens: SessionTokens,
    /// Wakes the expiry task when a deadline earlier than all others is added.
    expiry: Notify,
    /// Bytes of the clients that have gone, so that totals only grow.
    departed: Departed,
}

/// Bytes sent to and received from clients no longer registered.
#[derive(Default)]
struct Departed {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Departed {
    fn add(&self, client: &Client) {
        self.sent.fetch_add(client.sent(), Ordering::Relaxed);
        self.received.fetch_add(client.received(), Ordering::Relaxed);
    }
}

/// The registry; cheap to clone.
#[derive(Clone)]
pub struct Clients {
    inner: Arc<Inner>,
}

impl Clients {
    pub fn new(hls_idle: Duration, hls_limits: HlsLimits) -> Clients {
        Clients {
            inner: Arc::new(Inner {
                ids: Ids::default(),
                map: Mutex::new(BTreeMap::new()),
                hls: Mutex::new(HlsSessions::new(hls_limits)),
                hls_idle,
                tokens: SessionTokens::new(),
                expiry: Notify::new(),
                departed: Departed::default(),
            }),
        }
    }

    /// Issues and verifies HLS session tokens.
    pub fn tokens(&self) -> &SessionTokens {
        &self.inner.tokens
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
        lock(&self.inner.map).values().cloned().collect()
    }

    /// Bytes sent to and received from every client since the start, `clients` (the
    /// registered ones, from [`Clients::list`]) included: SRS's `srs_send_bytes` and
    /// `srs_recv_bytes`, which only grow, so that a rate can be taken between two readings.
    pub fn bytes_total(&self, clients: &[Arc<Client>]) -> (u64, u64) {
        clients.iter().fold(
            (
                self.inner.departed.sent.load(Ordering::Relaxed),
                self.inner.departed.received.load(Ordering::Relaxed),
            ),
            |(s, r), c| (s + c.sent(), r + c.received()),
        )
    }

    pub fn get(&self, id: u64) -> Option<Arc<Client>> {
        lock(&self.inner.map).get(&id).cloned()
    }

    /// HLS sessions open now.
    pub fn hls_sessions(&self) -> usize {
        lock(&self.inner.hls).len()
    }

    /// Disconnects client `id`: cancels its kick token (its connection ends and unregisters)
    /// or, for an HLS session, ends the session and refuses it from now on.
    pub fn kick(&self, id: u64) -> bool {
        let Some(client) = self.get(id) else {
            return false;
        };
        client.kick.cancel();
        if let Some(session) = client.hls_session() {
            let wake = {
                let mut map = lock(&self.inner.map);
                if map.remove(&id).is_some() {
                    self.inner.departed.add(&client);
                }
                lock(&self.inner.hls).kick(session, tokio::time::Instant::now() + KICKED_KEEP)
            };
            if wake {
                self.inner.expiry.notify_one();
            }
            drop(client.detach());
        }
        metrics::counter!(crate::metrics::VIEWERS_DISCONNECTED_TOTAL, "reason" => "kicked").increment(1);
        true
    }

    /// The client of live HLS session `session`, refreshed (its idle deadline moved), or
    /// `None` if no such session lives. A kicked session is refused.
    pub fn hls_session(&self, session: u64) -> Result<Option<Arc<Client>>, HlsRefusal> {
        let deadline = tokio::time::Instant::now() + self.inner.hls_idle;
        let map = lock(&self.inner.map);
        let mut sessions = lock(&self.inner.hls);
        if sessions.is_kicked(session) {
            return Err(HlsRefusal::Kicked);
        }
        Ok(sessions
            .refresh(session, deadline)
            .and_then(|client| map.get(&client).cloned()))
    }

    /// Whether a new HLS session from `ip` would be let in now (the session ceilings; a
    /// kicked session is refused too). Checked before the play admission, so a refused
    /// client costs no hook call; [`open_hls_session`](Self::open_hls_session) checks again.
    pub fn hls_room(&self, session: u64, ip: IpAddr) -> Result<(), HlsRefusal> {
        let sessions = lock(&self.inner.hls);
        if sessions.is_kicked(session) {
            return Err(HlsRefusal::Kicked);
        }
        sessions.room(ip).map(|_| ())
    }

    /// Opens HLS session `session` of `key` as client `id` (from [`next_id`](Self::next_id),
    /// taken before its `on_play`, which named it) for a client at `ip`, with the `token` its
    /// playlist's URLs carry (issued at `issued`), holding `attachment` (its viewer) until it
    /// ends. If the session was opened meanwhile (two first requests at once), that one is
    /// returned and `attachment` dropped (its `on_stop` names `id`, as its `on_play` did).
    #[allow(clippy::too_many_arguments)]
    pub fn open_hls_session(
        &self,
        id: u64,
        session: u64,
        (token, issued): (String, u32),
        key: &StreamKey,
        ip: IpAddr,
        url: &str,
        attachment: Box<dyn Any + Send + Sync>,
    ) -> Result<Arc<Client>, HlsRefusal> {
        let deadline = tokio::time::Instant::now() + self.inner.hls_idle;
        let mut attachment = Some(attachment);
        let mut wake = false;
        let result = {
            let mut map = lock(&self.inner.map);
            let mut sessions = lock(&self.inner.hls);
            if sessions.is_kicked(session) {
                Err(HlsRefusal::Kicked)
            } else if let Some(client) = sessions.refresh(session, deadline).and_then(|c| map.get(&c)) {
                Ok(Arc::clone(client))
            } else {
                sessions.room(ip).map(|counted| {
                    let role = Role::new(ClientKind::HlsPlay, Some(key.clone()), url.to_string());
                    let hls = HlsSession {
                        session,
                        token: Mutex::new((token, issued)),
                        attachment: Mutex::new(attachment.take()),
                    };
                    let client = Arc::new(Client::new(
                        id,
                        ip.to_canonical().to_string(),
                        role,
                        CancellationToken::new(),
                        Some(hls),
                    ));
                    map.insert(id, Arc::clone(&client));
                    wake = sessions.open(session, id, counted, deadline);
                    client
                })
            }
        };
        if wake {
            self.inner.expiry.notify_one();
        }
        // Outside the locks: a viewer nobody holds tells the hooks it left.
        drop(attachment);
        result
    }

    /// Ends what is due now (idle HLS sessions, old kicks); returns the next deadline.
    fn expire_due(&self) -> Option<tokio::time::Instant> {
        let (ended, next) = {
            let mut map = lock(&self.inner.map);
            let (ended, next) = lock(&self.inner.hls).expire(tokio::time::Instant::now());
            let ended: Vec<Arc<Client>> = ended.iter().filter_map(|id| map.remove(id)).collect();
            for client in &ended {
                self.inner.departed.add(client);
            }
            (ended, next)
        };
        // Outside the locks: what a session held tells the hooks when it goes.
        for client in &ended {
            tracing::debug!(client = client.id, "hls session expired");
            drop(client.detach());
        }
        next
    }

    /// Until `shutdown`: ends HLS sessions when their idle deadline passes, sleeping until
    /// the first deadline (woken when an earlier one is added).
    pub async fn run_expiry(self, shutdown: CancellationToken) {
        loop {
            let next = self.expire_due();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.inner.expiry.notified() => {}
                _ = sleep_until(next) => {}
            }
        }
    }

    /// Deadlines the expiry task holds (HLS sessions and kicks).
    pub fn scheduled_expiries(&self) -> usize {
        lock(&self.inner.hls).scheduled()
    }

    /// Takes a bitrate sample of every client; run every [`SAMPLE_EVERY`](super::SAMPLE_EVERY).
    pub fn sample(&self) {
        let now = Instant::now();
        for client in self.list() {
            client.sample(now);
        }
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
