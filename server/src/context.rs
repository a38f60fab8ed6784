//! What every connection task shares: config, hub, hooks, shutdown, connection ids.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::hooks::Hooks;
use crate::hub::Hub;

/// Shared server state, passed to every connection as `Arc<Context>`.
pub struct Context {
    pub config: Arc<Config>,
    pub hub: Hub,
    pub hooks: Hooks,
    /// Every listener is bound and the server is not shutting down (`/readyz`).
    pub ready: AtomicBool,
    pub started: std::time::Instant,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    pub tasks: TaskTracker,
    next_conn_id: AtomicU64,
}

impl Context {
    pub fn new(config: Arc<Config>, hooks: Hooks, shutdown: CancellationToken) -> Self {
        Context {
            hub: Hub::new(Arc::clone(&config)),
            hooks,
            ready: AtomicBool::new(false),
            started: std::time::Instant::now(),
            config,
            shutdown,
            tasks: TaskTracker::new(),
            next_conn_id: AtomicU64::new(1),
        }
    }

    /// A new connection id, unique for the life of the process.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }
}
