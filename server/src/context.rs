//! What every connection task shares: config, the paths, admission, hooks, the client
//! registry, the HLS store, shutdown and the task tracker.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::Admission;
use crate::clients::{Clients, HlsLimits};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::hooks::{Hooks, ServerIdentity};
use crate::log_gate::LogGate;
use crate::outputs::forward::Forwards;
use crate::outputs::hls::HlsStore;
use crate::path::registry::Paths;
use crate::recordings::Recordings;
use crate::sources::{SourceStore, Sources};

/// Shared server state, passed to every connection as `Arc<Context>`.
pub struct Context {
    pub config: Arc<Config>,
    /// Every stream key in use, with its source, viewers, outputs and events.
    pub paths: Paths,
    /// Who may publish and play.
    pub admission: Admission,
    pub hooks: Hooks,
    /// Playlists and segments of every packaged stream.
    pub hls: HlsStore,
    /// Every stream's forwards to upstream RTMP servers, and those added by API.
    pub forwards: Forwards,
    /// Every connection, viewer and HLS session, for the API and metrics.
    pub clients: Clients,
    /// The recordings service; `None` when its root or catalogue cannot be opened (the
    /// live server runs on, and says why at start).
    pub recordings: Option<Recordings>,
    /// `server`/`service` of API answers and hook bodies.
    pub identity: ServerIdentity,
    /// The origin cluster's directory (`[cluster] redis`); `None` on a lone node.
    pub cluster: Option<Cluster>,
    /// Every listener is bound and the server is not shutting down (`/readyz`).
    pub ready: AtomicBool,
    pub started: std::time::Instant,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Every connection and output task, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// The recorders' writers, waited for after the connections (`record.shutdown_grace_ms`).
    pub recorders: TaskTracker,
    /// Gates refusal warnings: one per address and kind every few seconds (shared with the
    /// admission).
    pub refusal_log: Arc<LogGate>,
    /// Live sources pulled from RTMP and HLS URLs (issue 14); started by [`crate::run`].
    pub sources: Sources,
}

impl Context {
    pub fn new(config: Arc<Config>, hooks: Hooks, identity: ServerIdentity, shutdown: CancellationToken) -> Self {
        let tasks = TaskTracker::new();
        let recorders = TaskTracker::new();
        let hls = HlsStore::default();
        let recordings = match Recordings::open(Arc::clone(&config), hooks.clone()) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(cause = %e, "recordings are off");
                None
            }
        };
        let forwards = Forwards::new(Arc::clone(&config), tasks.clone());
        let kinds = crate::outputs::builtin(crate::outputs::Parts {
            config: &config,
            hooks: &hooks,
            hls: &hls,
            recordings: recordings
                .clone()
                .map(|r| Arc::new(r) as Arc<dyn crate::outputs::record::Ledger>),
            recorders: &recorders,
            forwards: &forwards,
        });
        let clients = Clients::new(
            std::time::Duration::from_millis(config.api.hls_session_idle_ms),
            HlsLimits::from(&config.limits),
        );
        let ids = clients.clone();
        let paths = Paths::new(
            Arc::clone(&config),
            hooks.clone(),
            kinds,
            shutdown.clone(),
            tasks.clone(),
            Arc::new(move || ids.next_id()),
        );
        let refusal_log = Arc::new(LogGate::default());
        let sources = Sources::new(
            &config,
            paths.clone(),
            clients.clone(),
            recordings.clone().map(|r| Arc::new(r) as Arc<dyn SourceStore>),
            shutdown.clone(),
            tasks.clone(),
        );
        // The URL was checked with the config; a failure here is one we cannot foresee.
        let cluster = Cluster::new(&config, &identity.server_id, tasks.clone()).unwrap_or_else(|e| {
            tracing::error!(cause = %e, "the cluster directory is off");
            None
        });
        Context {
            sources,
            admission: Admission::new(paths.clone(), hooks.clone(), Arc::clone(&refusal_log), cluster.clone()),
            cluster,
            paths,
            hooks,
            hls,
            forwards,
            recordings,
            clients,
            identity,
            ready: AtomicBool::new(false),
            started: std::time::Instant::now(),
            config,
            shutdown,
            tasks,
            recorders,
            refusal_log,
        }
    }

    /// A new connection id, unique for the life of the process.
    pub fn next_conn_id(&self) -> u64 {
        self.clients.next_id()
    }
}
