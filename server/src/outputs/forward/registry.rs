//! The registry of forwards: every running feed by stream key, and the forwards added by
//! API (kept by stream key, started whenever that stream is live). The API reads and changes
//! it; the forward output kind asks it for a stream's feed.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::{Config, EdgeConfig, ForwardConfig};
use crate::hooks::HookSubject;
use crate::stream::StreamKey;

use super::feed::Feed;
use super::upstream::{self, Origin, Phase, Settings, Upstream};

/// One forward as the API and metrics show it.
#[derive(Debug, Clone)]
pub struct ForwardInfo {
    pub id: u64,
    pub key: StreamKey,
    pub origin: Origin,
    /// The upstream URL with its stream name and query hidden.
    pub url: String,
    /// `host:port` of the upstream.
    pub upstream: String,
    /// `None`: the stream is not live, nothing runs for this forward now.
    pub phase: Option<Phase>,
    pub since_ms: u64,
    pub last_error: Option<String>,
    pub failures: u64,
    pub bytes: u64,
    pub kbps: u64,
    pub frames_dropped: u64,
}

/// Why a forward cannot be added or removed by API.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("{0}")]
    BadUrl(String),
    #[error("forward {0} not found")]
    NotFound(u64),
    #[error("forward {0} comes from the config file; change [forward] urls or [apps.NAME.forward] urls")]
    FromConfig(u64),
}

/// A forward added by API: it applies to its stream whenever that stream is live.
struct Added {
    key: StreamKey,
    url: String,
}

#[derive(Default)]
struct Registry {
    added: BTreeMap<u64, Added>,
    feeds: HashMap<StreamKey, Weak<Feed>>,
}

/// Every forward of the server; cheap to clone.
#[derive(Clone)]
pub struct Forwards {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    settings: Settings,
    /// Upstream tasks, so shutdown waits for them to close their connections.
    tasks: TaskTracker,
    next_id: AtomicU64,
    registry: Mutex<Registry>,
}

impl Forwards {
    pub fn new(config: Arc<Config>, tasks: TaskTracker) -> Forwards {
        let f = &config.forward;
        let settings = Settings {
            chunk_size: config.rtmp.out_chunk_size,
            send_buffer_bytes: f.send_buffer_bytes,
            connect_timeout: Duration::from_millis(f.connect_timeout_ms),
            write_timeout: Duration::from_millis(f.write_timeout_ms),
            retry_initial: Duration::from_millis(f.retry_initial_ms),
            retry_max: Duration::from_millis(f.retry_max_ms),
        };
        Forwards {
            inner: Arc::new(Inner {
                config,
                settings,
                tasks,
                next_id: AtomicU64::new(1),
                registry: Mutex::new(Registry::default()),
            }),
        }
    }

    /// `forward.reconnect_window_ms`: how long a forward output waits for its source.
    pub(super) fn grace(&self) -> Duration {
        Duration::from_millis(self.inner.config.forward.reconnect_window_ms)
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.inner.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The feed for `key`'s new forward output, with its upstreams started; `None` if the
    /// stream has no upstream. `publisher` is the stream's source if a client publishes it
    /// (`None` for a pull).
    pub(super) fn start_feed(&self, key: &StreamKey, publisher: Option<&HookSubject>) -> Option<Arc<Feed>> {
        let config = &self.inner.config;
        let mut registry = self.registry();
        let from_config = ForwardConfig::urls_for_app(config, &key.app).iter().map(|t| {
            (
                self.next_id(),
                Origin::Config,
                ForwardConfig::expand(t, &key.app, &key.name),
            )
        });
        let mut targets: Vec<(u64, Origin, String)> = from_config.collect();
        // An edge hands what is published to it to its first origin, with the publisher's
        // query (its token) so that the origin admits it as it would the encoder. A pulled
        // stream is not sent back where it came from.
        if let (Some(origin), Some(publisher)) = (config.edge.origins.first(), publisher) {
            let url = EdgeConfig::url(origin, &key.app, &key.name) + &publisher.stream.param;
            targets.push((self.next_id(), Origin::Config, url));
        }
        targets.extend(
            registry
                .added
                .iter()
                .filter(|(_, a)| a.key == *key)
                .map(|(id, a)| (*id, Origin::Api, a.url.clone())),
        );
        if targets.is_empty() {
            return None;
        }
        let feed = Arc::new(Feed::new(key.clone(), config.forward.max_queue_bytes));
        for (id, origin, url) in targets {
            self.start_upstream(&feed, id, origin, url);
        }
        registry.feeds.insert(key.clone(), Arc::downgrade(&feed));
        Some(feed)
    }

    fn start_upstream(&self, feed: &Arc<Feed>, id: u64, origin: Origin, url: String) {
        let upstream = Arc::new(Upstream::new(
            id,
            origin,
            url,
            self.inner.config.forward.max_queue_bytes,
            CancellationToken::new(),
        ));
        feed.add(Arc::clone(&upstream));
        let primer = Arc::downgrade(feed);
        let prime = move |u: &Upstream| {
            if let Some(feed) = primer.upgrade() {
                feed.prime(u);
            }
        };
        let span = tracing::info_span!(parent: None, "forward", stream = %feed.key, id, upstream = %upstream.addr);
        self.inner
            .tasks
            .spawn(upstream.run(self.inner.settings, prime).instrument(span));
    }

    /// The output of `feed` ended.
    pub(super) fn feed_ended(&self, feed: &Arc<Feed>) {
        let mut registry = self.registry();
        if registry
            .feeds
            .get(&feed.key)
            .is_some_and(|f| std::ptr::eq(f.as_ptr(), Arc::as_ptr(feed)))
        {
            registry.feeds.remove(&feed.key);
        }
    }

    /// Adds a forward of stream `key` to `url` (templated like the config's). It starts now
    /// if the stream's forward output runs; otherwise when the caller starts that output
    /// (`Path::start_output(KIND)`) or the stream next publishes.
    pub fn add(&self, key: &StreamKey, url: &str) -> Result<ForwardInfo, ForwardError> {
        if let Some(problem) = ForwardConfig::url_problem("url", url) {
            return Err(ForwardError::BadUrl(problem));
        }
        let url = ForwardConfig::expand(url, &key.app, &key.name);
        let id = self.next_id();
        let mut registry = self.registry();
        registry.added.insert(
            id,
            Added {
                key: key.clone(),
                url: url.clone(),
            },
        );
        if let Some(feed) = registry.feeds.get(key).and_then(Weak::upgrade) {
            self.start_upstream(&feed, id, Origin::Api, url);
        }
        drop(registry);
        tracing::info!(stream = %key, forward = id, "forward added by api");
        self.get(id).ok_or(ForwardError::NotFound(id))
    }

    /// Removes a forward added by API, stopping its upstream connection.
    pub fn remove(&self, id: u64) -> Result<ForwardInfo, ForwardError> {
        let shown = self.get(id).ok_or(ForwardError::NotFound(id))?;
        let mut registry = self.registry();
        let Some(added) = registry.added.remove(&id) else {
            return Err(ForwardError::FromConfig(id));
        };
        if let Some(feed) = registry.feeds.get(&added.key).and_then(Weak::upgrade) {
            feed.remove(id);
        }
        tracing::info!(stream = %added.key, forward = id, "forward removed by api");
        Ok(shown)
    }

    /// One forward by id.
    pub fn get(&self, id: u64) -> Option<ForwardInfo> {
        self.list().into_iter().find(|f| f.id == id)
    }

    /// Every forward: those running, then those added by API for streams not live now;
    /// sorted by stream, then id.
    pub fn list(&self) -> Vec<ForwardInfo> {
        let registry = self.registry();
        let mut all: Vec<ForwardInfo> = registry
            .feeds
            .values()
            .filter_map(Weak::upgrade)
            .flat_map(|feed| feed.upstreams().into_iter().map(move |u| info(&feed.key, &u)))
            .collect();
        for (id, added) in &registry.added {
            if !all.iter().any(|f| f.id == *id) {
                all.push(waiting(*id, added));
            }
        }
        all.sort_by(|a, b| a.key.cmp(&b.key).then(a.id.cmp(&b.id)));
        all
    }

    /// The forwards of one stream, by id.
    pub fn of_stream(&self, key: &StreamKey) -> Vec<ForwardInfo> {
        let registry = self.registry();
        let mut all: Vec<ForwardInfo> = match registry.feeds.get(key).and_then(Weak::upgrade) {
            Some(feed) => feed.upstreams().iter().map(|u| info(key, u)).collect(),
            None => Vec::new(),
        };
        for (id, added) in registry.added.iter().filter(|(_, a)| a.key == *key) {
            if !all.iter().any(|f| f.id == *id) {
                all.push(waiting(*id, added));
            }
        }
        all.sort_by_key(|f| f.id);
        all
    }
}

/// A forward added by API whose stream is not live.
fn waiting(id: u64, added: &Added) -> ForwardInfo {
    ForwardInfo {
        id,
        key: added.key.clone(),
        origin: Origin::Api,
        url: ForwardConfig::redact(&added.url),
        upstream: upstream::addr_of(&added.url),
        phase: None,
        since_ms: 0,
        last_error: None,
        failures: 0,
        bytes: 0,
        kbps: 0,
        frames_dropped: 0,
    }
}

fn info(key: &StreamKey, u: &Upstream) -> ForwardInfo {
    let status = u.status();
    ForwardInfo {
        id: u.id,
        key: key.clone(),
        origin: u.origin,
        url: u.shown_url(),
        upstream: u.addr.clone(),
        phase: Some(status.phase),
        since_ms: status.since_ms,
        last_error: status.last_error,
        failures: status.failures,
        bytes: u.bytes_sent.load(Ordering::Relaxed),
        kbps: status.kbps,
        frames_dropped: u.frames_dropped.load(Ordering::Relaxed),
    }
}
