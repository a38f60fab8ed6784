//! The registry of paths: one [`Path`] per stream key, created when something first asks for
//! the key and gone when nothing holds it any more (its source, viewers and output tasks each
//! hold it), so a key nobody uses costs nothing.
//!
//! It counts sources and viewers over every path (`totals.rs`), which the admission's limits
//! read, and lists only the paths a source has started on ([`Paths::listed`]): a key that
//! only viewers asked for (an `.flv` request waiting for a publisher that never comes) is
//! not shown in the API or the metrics.
//!
//! It also runs on-demand sources: the first viewer of a key with no source asks the
//! [`SourceProvider`]s for one, in the order they were added (the pulled sources of
//! `[[sources]]`, then the edge), and the last viewer's leaving stops it
//! `stream.on_demand_close_after_ms` later (or the provider's own time), unless a viewer
//! came back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::events::PathEvents;
use super::on_demand::SourceProvider;
use super::outputs::PathOutputs;
use super::totals::Totals;
use super::Path;
use crate::config::Config;
use crate::hooks::Hooks;
use crate::outputs::OutputKind;
use crate::stream::{Stream, StreamKey};

/// Gives each new path its id: the server's one counter of ids (connections, clients,
/// streams), so a stream id never equals a client id.
pub type NextId = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Every path, by key; cheap to clone.
#[derive(Clone)]
pub struct Paths {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    hooks: Hooks,
    kinds: Arc<[Arc<dyn OutputKind>]>,
    providers: Mutex<Vec<Arc<dyn SourceProvider>>>,
    paths: Mutex<HashMap<StreamKey, Weak<Path>>>,
    shutdown: CancellationToken,
    /// Output tasks, so shutdown waits for them to end their outputs.
    tasks: TaskTracker,
    totals: Arc<Totals>,
    next_id: NextId,
    /// The runtime the registry was made in: an on-demand stop is timed there even when the
    /// last demand ends on a thread of its own (a recorder's writer).
    runtime: Option<tokio::runtime::Handle>,
}

impl Paths {
    pub fn new(
        config: Arc<Config>,
        hooks: Hooks,
        kinds: Vec<Arc<dyn OutputKind>>,
        shutdown: CancellationToken,
        tasks: TaskTracker,
        next_id: NextId,
    ) -> Paths {
        Paths {
            inner: Arc::new(Inner {
                config,
                hooks,
                kinds: kinds.into(),
                providers: Mutex::new(Vec::new()),
                paths: Mutex::new(HashMap::new()),
                shutdown,
                tasks,
                totals: Arc::default(),
                next_id,
                runtime: tokio::runtime::Handle::try_current().ok(),
            }),
        }
    }

    /// Adds a provider of sources for keys a viewer asks for and nobody publishes; it is
    /// asked after those added before it.
    pub fn add_source_provider(&self, provider: Arc<dyn SourceProvider>) {
        self.providers().push(provider);
    }

    fn providers(&self) -> MutexGuard<'_, Vec<Arc<dyn SourceProvider>>> {
        self.inner.providers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn paths(&self) -> MutexGuard<'_, HashMap<StreamKey, Weak<Path>>> {
        self.inner.paths.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    /// The path of `key`, created if nothing holds one.
    pub fn path(&self, key: &StreamKey) -> Arc<Path> {
        let mut paths = self.paths();
        if let Some(path) = paths.get(key).and_then(Weak::upgrade) {
            return path;
        }
        // Forget the paths that went since the last creation.
        paths.retain(|_, path| path.strong_count() > 0);
        let config = &self.inner.config;
        let outputs = PathOutputs::new(
            Arc::clone(&self.inner.kinds),
            self.inner.shutdown.clone(),
            self.inner.tasks.clone(),
        );
        let path = Arc::new(Path::new(
            (self.inner.next_id)(),
            key.clone(),
            Arc::new(Stream::new(key.clone(), &config.stream)),
            PathEvents::new(self.inner.hooks.clone()),
            outputs,
            Duration::from_millis(config.rtmp.publisher_idle_timeout_ms),
            Arc::clone(&self.inner.totals),
        ));
        paths.insert(key.clone(), Arc::downgrade(&path));
        path
    }

    /// The path of `key`, if something holds it.
    pub fn get(&self, key: &StreamKey) -> Option<Arc<Path>> {
        self.paths().get(key).and_then(Weak::upgrade)
    }

    /// Every path something holds, sorted by key.
    pub fn list(&self) -> Vec<Arc<Path>> {
        let mut all: Vec<Arc<Path>> = self.paths().values().filter_map(Weak::upgrade).collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }

    /// Paths a source has started on, sorted by key: what the API and the metrics show.
    pub fn listed(&self) -> Vec<Arc<Path>> {
        let mut all = self.list();
        all.retain(|p| p.had_source());
        all
    }

    /// Streams with a source now, over every path.
    pub fn sources(&self) -> usize {
        self.inner.totals.sources()
    }

    /// Admitted viewers now, over every path.
    pub fn viewers(&self) -> usize {
        self.inner.totals.viewers()
    }

    /// A viewer arrived at `path`: asks the providers for a source if the path has none.
    pub(super) fn viewer_arrived(&self, path: &Arc<Path>) {
        if path.viewer_arrived() {
            self.start_on_demand(path, "a viewer");
        }
    }

    /// A recording wants `path`'s stream: like a viewer, it starts an on-demand source.
    pub(super) fn demand_arrived(&self, path: &Arc<Path>) {
        if path.demand_arrived() {
            self.start_on_demand(path, "a recording");
        }
    }

    /// A recording no longer wants `path`'s stream: like a viewer leaving.
    pub(super) fn demand_left(&self, path: &Arc<Path>) {
        if let Some(epoch) = path.demand_left() {
            self.stop_on_demand_later(path, epoch);
        }
    }

    fn start_on_demand(&self, path: &Arc<Path>, wanted_by: &str) {
        let providers = self.providers().clone();
        for provider in providers {
            let stop = self.inner.shutdown.child_token();
            if provider.start(&path.key, stop.clone()) {
                tracing::info!(stream = %path.key, "on-demand source started for {wanted_by}");
                path.on_demand_started(stop);
                return;
            }
        }
    }

    /// A viewer left `path`: after the last one, the on-demand source stops
    /// `stream.on_demand_close_after_ms` later unless a viewer comes back.
    pub(super) fn viewer_left(&self, path: &Arc<Path>) {
        if let Some(epoch) = path.viewer_left() {
            self.stop_on_demand_later(path, epoch);
        }
    }

    /// Stops `path`'s on-demand source after its close-after time, unless a viewer or a
    /// recording wanted it again since `epoch`.
    fn stop_on_demand_later(&self, path: &Arc<Path>, epoch: u64) {
        let close_after = self
            .providers()
            .iter()
            .find_map(|p| p.close_after(&path.key))
            .unwrap_or(Duration::from_millis(self.inner.config.stream.on_demand_close_after_ms));
        let path = Arc::downgrade(path);
        let shutdown = self.inner.shutdown.clone();
        let Some(runtime) = self
            .inner
            .runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        else {
            tracing::warn!("on-demand source not scheduled to stop: no runtime");
            return;
        };
        runtime.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(close_after) => {}
            }
            if let Some(path) = path.upgrade() {
                if path.stop_on_demand_if_idle(epoch) {
                    tracing::info!(stream = %path.key, "on-demand source stopped: nothing wants it any more");
                }
            }
        });
    }
}
