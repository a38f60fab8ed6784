//! Pulled sources (issue 14): live streams pulled from RTMP or HLS URLs into local paths, so
//! everything a published stream gets (HLS, HTTP-FLV, recording, metrics) works for them.
//!
//! - [`Sources`]: every source by id, from `[[sources]]` (ids 1 to 1000, in file order) and
//!   from the API (ids above 1000, kept in the recordings catalogue so they survive a
//!   restart). Always-on sources run from start; on-demand ones are started by the path
//!   registry when a viewer asks for their stream (it is their [`SourceProvider`]).
//! - `runner.rs`: one source's tries with backoff; `feed.rs`: a try's hold on its path.
//! - `rtmp.rs`: a try over our RTMP client; `hls/`: a try over HTTP (playlists, MPEG-TS
//!   segments through `estuary_muxer::ts::TsReader`).
//! - `status.rs`: online/offline, codecs, kbps, last error.
//! - `edge.rs`: edge mode (`[edge]`, and `[cluster]` owners): any stream this node does not
//!   have, pulled from its owner or an origin while local viewers watch it.

pub mod edge;
mod error;
mod feed;
pub mod hls;
mod rtmp;
mod runner;
pub mod status;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clients::Clients;
use crate::cluster::Cluster;
use crate::config::{Config, EdgeConfig, SourceSpec};
use crate::outputs::hls::HlsStore;
use crate::path::on_demand::SourceProvider;
use crate::path::registry::Paths;
use crate::recordings::catalogue::CatalogueError;
use crate::recordings::Recordings;
use crate::stream::StreamKey;
pub use error::PullError;
use status::{SourceStatus, StatusSnapshot};

/// Ids up to this belong to `[[sources]]`; the API's start above it.
pub const MAX_CONFIG_SOURCES: usize = 1000;

/// Where a source was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Config,
    Api,
}

/// A source as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub id: i64,
    #[serde(flatten)]
    pub spec: SourceSpec,
    pub origin: Origin,
    pub status: StatusSnapshot,
}

/// Why the API's change was refused.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("no source {0}")]
    NotFound(i64),
    #[error("source {0} comes from the config file; change it there")]
    FromConfig(i64),
    #[error("{0}")]
    Invalid(String),
    #[error("source {other} already feeds {stream}")]
    StreamTaken { stream: String, other: i64 },
    #[error(transparent)]
    Store(#[from] CatalogueError),
    #[error("the catalogue task failed: {0}")]
    Task(String),
}

/// Every pulled source; cheap to clone.
#[derive(Clone)]
pub struct Sources {
    inner: Arc<Inner>,
}

struct Inner {
    deps: runner::Deps,
    catalogue: Option<Arc<dyn SourceStore>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    entries: Mutex<BTreeMap<i64, Entry>>,
    /// Ids for API sources when there is no catalogue to hand them out.
    next_memory_id: Mutex<i64>,
}

struct Entry {
    spec: SourceSpec,
    origin: Origin,
    status: Arc<SourceStatus>,
    /// Cancels the running pull (always-on, or on-demand while its viewers are there).
    running: Option<CancellationToken>,
}

/// Where API-created sources are kept (the recordings catalogue).
pub trait SourceStore: Send + Sync {
    fn load(&self) -> Result<Vec<(i64, SourceSpec)>, CatalogueError>;
    fn insert(&self, spec: &SourceSpec) -> Result<i64, CatalogueError>;
    fn update(&self, id: i64, spec: &SourceSpec) -> Result<(), CatalogueError>;
    fn delete(&self, id: i64) -> Result<(), CatalogueError>;
}

impl SourceStore for Recordings {
    fn load(&self) -> Result<Vec<(i64, SourceSpec)>, CatalogueError> {
        self.catalogue().list_sources()
    }
    fn insert(&self, spec: &SourceSpec) -> Result<i64, CatalogueError> {
        let now = i64::try_from(status::now_ms()).unwrap_or(i64::MAX);
        self.catalogue().insert_source(spec, now)
    }
    fn update(&self, id: i64, spec: &SourceSpec) -> Result<(), CatalogueError> {
        self.catalogue().update_source(id, spec)
    }
    fn delete(&self, id: i64) -> Result<(), CatalogueError> {
        self.catalogue().delete_source(id)
    }
}

impl Sources {
    pub fn new(
        config: &Config,
        paths: Paths,
        clients: Clients,
        catalogue: Option<Arc<dyn SourceStore>>,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> Sources {
        let deps = runner::Deps {
            paths,
            clients,
            limits: config.pull.clone(),
        };
        let entries = config
            .sources
            .iter()
            .take(MAX_CONFIG_SOURCES)
            .zip(1..)
            .map(|(spec, id)| (id, Entry::new(spec.clone(), Origin::Config)))
            .collect();
        Sources {
            inner: Arc::new(Inner {
                deps,
                catalogue,
                shutdown,
                tasks,
                entries: Mutex::new(entries),
                next_memory_id: Mutex::new(MAX_CONFIG_SOURCES as i64 + 1),
            }),
        }
    }

    fn entries(&self) -> MutexGuard<'_, BTreeMap<i64, Entry>> {
        self.inner.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the API's sources from the catalogue, starts every active always-on source and
    /// becomes the registry's provider of on-demand ones.
    pub async fn start(&self) {
        if let Some(store) = self.inner.catalogue.clone() {
            match tokio::task::spawn_blocking(move || store.load()).await {
                Ok(Ok(saved)) => {
                    let mut entries = self.entries();
                    for (id, spec) in saved {
                        entries.insert(id, Entry::new(spec, Origin::Api));
                    }
                }
                Ok(Err(e)) => tracing::error!(cause = %e, "cannot load the API's sources"),
                Err(e) => tracing::error!(cause = %e, "cannot load the API's sources"),
            }
        }
        let ids: Vec<i64> = self.entries().keys().copied().collect();
        for id in ids {
            self.start_if_always_on(id);
        }
        self.inner
            .deps
            .paths
            .add_source_provider(Arc::new(self.clone()) as Arc<dyn SourceProvider>);
    }

    /// Makes this node an edge if `config` lists origins or it is in a cluster: the path
    /// registry's provider of last resort (after the on-demand sources). Call after
    /// [`start`](Self::start).
    pub fn start_edge(&self, config: &EdgeConfig, cluster: Option<Cluster>, hls: HlsStore) {
        let edge = edge::Edge::new(self.inner.deps.clone(), config, cluster, self.inner.tasks.clone(), hls);
        if let Some(edge) = edge {
            tracing::info!(
                origins = config.origins.len(),
                "edge mode: streams this node does not have are pulled for their viewers"
            );
            self.inner.deps.paths.add_source_provider(Arc::new(edge));
        }
    }

    fn start_if_always_on(&self, id: i64) {
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(&id) else { return };
        if !entry.spec.active || entry.spec.on_demand || entry.running.is_some() {
            return;
        }
        let stop = self.inner.shutdown.child_token();
        entry.running = Some(stop.clone());
        self.spawn(id, entry, stop);
    }

    fn spawn(&self, id: i64, entry: &Entry, stop: CancellationToken) {
        let run = runner::run(
            id,
            entry.spec.clone(),
            self.inner.deps.clone(),
            Arc::clone(&entry.status),
            stop,
        );
        self.inner.tasks.spawn(run);
    }

    /// Sources by `(protocol, state)`, every pair present (zeros included), for `/metrics`.
    pub fn counts(&self) -> BTreeMap<(&'static str, &'static str), usize> {
        let mut counts = BTreeMap::new();
        for protocol in ["rtmp", "hls"] {
            for state in ["online", "offline", "inactive"] {
                counts.insert((protocol, state), 0);
            }
        }
        for entry in self.entries().values() {
            let state = if !entry.spec.active {
                "inactive"
            } else if entry.status.is_online() {
                "online"
            } else {
                "offline"
            };
            *counts.entry((entry.spec.protocol.as_str(), state)).or_default() += 1;
        }
        counts
    }

    pub fn list(&self) -> Vec<SourceView> {
        self.entries().iter().map(|(id, e)| e.view(*id)).collect()
    }

    pub fn get(&self, id: i64) -> Result<SourceView, SourcesError> {
        self.entries()
            .get(&id)
            .map(|e| e.view(id))
            .ok_or(SourcesError::NotFound(id))
    }

    fn check(&self, spec: &SourceSpec, id: Option<i64>) -> Result<(), SourcesError> {
        let problems = spec.problems("body");
        if !problems.is_empty() {
            return Err(SourcesError::Invalid(problems.join("; ")));
        }
        let entries = self.entries();
        if let Some((other, _)) = entries
            .iter()
            .find(|(other, e)| Some(**other) != id && e.spec.stream == spec.stream)
        {
            return Err(SourcesError::StreamTaken {
                stream: spec.stream.clone(),
                other: *other,
            });
        }
        Ok(())
    }

    /// Adds a source (kept in the catalogue) and starts it if it is active and always-on.
    pub async fn create(&self, spec: SourceSpec) -> Result<SourceView, SourcesError> {
        self.check(&spec, None)?;
        let id = match self.inner.catalogue.clone() {
            Some(store) => {
                let saved = spec.clone();
                blocking(move || store.insert(&saved)).await?
            }
            None => {
                let mut next = self.inner.next_memory_id.lock().unwrap_or_else(|e| e.into_inner());
                *next += 1;
                *next - 1
            }
        };
        self.entries().insert(id, Entry::new(spec, Origin::Api));
        self.start_if_always_on(id);
        self.get(id)
    }

    /// Replaces an API source's spec and restarts it.
    pub async fn update(&self, id: i64, spec: SourceSpec) -> Result<SourceView, SourcesError> {
        self.api_source(id)?;
        self.check(&spec, Some(id))?;
        if let Some(store) = self.inner.catalogue.clone() {
            let saved = spec.clone();
            blocking(move || store.update(id, &saved)).await?;
        }
        {
            let mut entries = self.entries();
            let entry = entries.get_mut(&id).ok_or(SourcesError::NotFound(id))?;
            if let Some(stop) = entry.running.take() {
                stop.cancel();
            }
            *entry = Entry::new(spec, Origin::Api);
        }
        self.start_if_always_on(id);
        self.get(id)
    }

    /// Stops and forgets an API source.
    pub async fn delete(&self, id: i64) -> Result<SourceView, SourcesError> {
        self.api_source(id)?;
        if let Some(store) = self.inner.catalogue.clone() {
            blocking(move || store.delete(id)).await?;
        }
        let entry = self.entries().remove(&id).ok_or(SourcesError::NotFound(id))?;
        if let Some(stop) = &entry.running {
            stop.cancel();
        }
        Ok(entry.view(id))
    }

    fn api_source(&self, id: i64) -> Result<(), SourcesError> {
        match self.entries().get(&id) {
            None => Err(SourcesError::NotFound(id)),
            Some(e) if e.origin == Origin::Config => Err(SourcesError::FromConfig(id)),
            Some(_) => Ok(()),
        }
    }

    fn on_demand_for(&self, key: &StreamKey) -> Option<i64> {
        let wanted = key.to_string();
        self.entries()
            .iter()
            .find(|(_, e)| e.spec.active && e.spec.on_demand && e.spec.stream == wanted)
            .map(|(id, _)| *id)
    }
}

impl SourceProvider for Sources {
    fn start(&self, key: &StreamKey, stop: CancellationToken) -> bool {
        let Some(id) = self.on_demand_for(key) else {
            return false;
        };
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(&id) else {
            return false;
        };
        if let Some(old) = entry.running.replace(stop.clone()) {
            old.cancel();
        }
        self.spawn(id, entry, stop);
        true
    }

    fn close_after(&self, key: &StreamKey) -> Option<Duration> {
        let wanted = key.to_string();
        self.entries()
            .values()
            .find(|e| e.spec.on_demand && e.spec.stream == wanted)
            .map(|e| Duration::from_millis(e.spec.close_after_ms))
    }
}

impl Entry {
    fn new(spec: SourceSpec, origin: Origin) -> Entry {
        Entry {
            spec,
            origin,
            status: Arc::default(),
            running: None,
        }
    }

    fn view(&self, id: i64) -> SourceView {
        SourceView {
            id,
            spec: self.spec.clone(),
            origin: self.origin,
            status: self.status.snapshot(),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CatalogueError> + Send + 'static,
) -> Result<T, SourcesError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(SourcesError::Task(e.to_string())),
    }
}
