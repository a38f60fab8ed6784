//! What every connection task shares: config, hub, hooks, shutdown, connection ids.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clients::Clients;
use crate::config::Config;
use crate::hooks::{Hooks, ServerIdentity};
use crate::hub::Hub;

/// Shared server state, passed to every connection as `Arc<Context>`.
pub struct Context {
    pub config: Arc<Config>,
    pub hub: Hub,
    pub hooks: Hooks,
    /// Playlists and segments of every packaged stream.
    pub hls: crate::hls::HlsStore,
    /// Streams with a running HLS packager.
    pub hls_packagers: crate::hls::Packagers,
    /// Every connection, viewer and HLS session, for the API and metrics.
    pub clients: Clients,
    /// `server`/`service` of API answers and hook bodies.
    pub identity: ServerIdentity,
    /// Every listener is bound and the server is not shutting down (`/readyz`).
    pub ready: AtomicBool,
    pub started: std::time::Instant,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

impl Context {
    pub fn new(config: Arc<Config>, hooks: Hooks, identity: ServerIdentity, shutdown: CancellationToken) -> Self {
        Context {
            hub: Hub::new(Arc::clone(&config)),
            hooks,
            hls: Default::default(),
            hls_packagers: Default::default(),
            clients: Clients::new(std::time::Duration::from_millis(config.api.hls_session_idle_ms)),
            identity,
            ready: AtomicBool::new(false),
            started: std::time::Instant::now(),
            config,
            shutdown,
            tasks: TaskTracker::new(),
        }
    }

    /// A new connection id, unique for the life of the process.
    pub fn next_conn_id(&self) -> u64 {
        self.clients.next_id()
    }
}
