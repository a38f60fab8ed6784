//! Estuary server. The map, one folder per part of the architecture:
//!
//! - `stream/`: the live media of one key (timeline, GOP cache, ring, direct fan-out).
//! - `path/`: the owner of one key (registry, source, viewers, outputs, ordered events).
//! - `outputs/`: what a path feeds besides viewers (`hls/`: packager, MPEG-TS or fMP4 with
//!   LL-HLS parts, and store; `record/`; `forward/`: pushes to upstream RTMP servers).
//! - `admission/`: who may publish and play: the pipeline, `acl` (address and referer
//!   lists) and `signing` (signed URLs) before the hooks' decision.
//! - `servers/`: `rtmp/` and `http/` (`flv/`, `hls/`, `api/`, `/metrics`), the live player.
//! - `recordings/`: the catalogue (SQLite), schedules, retention, crash recovery.
//! - `sources/`: live sources pulled from RTMP and HLS URLs into paths (`[[sources]]`, API),
//!   and edge pulls from origins or a stream's cluster owner.
//! - `cluster/`: the origin cluster's stream directory in Redis (claims, node records).
//! - `clients/`: who is connected, for the API, metrics and kicking.
//! - `hooks/`: HTTP callbacks; `server_id`: who this server is to them and the API, kept
//!   across restarts; `config`, `metrics`, `sysinfo`; `context`: what tasks share;
//!   `log_gate`: refusal warnings once per address every few seconds.
//!
//! [`run`] is the testable entry point: the caller binds the listeners (so tests can use
//! port 0) and passes a shutdown token.
#![forbid(unsafe_code)]

pub mod admission;
pub mod clients;
pub mod cluster;
pub mod config;
mod context;
/// Entry point of the `flv_request_head` fuzz target in `fuzz/`; not part of the API.
#[doc(hidden)]
pub mod fuzzing;
mod hex;
pub mod hooks;
mod log_gate;
pub mod metrics;
pub mod outputs;
pub mod path;
mod percent;
pub mod recordings;
pub mod server_id;
mod servers;
pub mod sources;
pub mod stream;
mod sysinfo;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use context::Context;

/// How long shutdown waits for connections and outputs to end. Connections do not need it:
/// shutdown cancels their reads, their writes to a full socket and their admissions, so they
/// end at once with their hooks queued; the HLS packager ends with its stream. Recorders are
/// waited for apart, for `record.shutdown_grace_ms`.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Serves RTMP and HTTP on the given listeners until `shutdown` is cancelled, then closes
/// every connection and returns.
pub async fn run(
    config: Arc<Config>,
    rtmp: TcpListener,
    http: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = metrics::install();
    let server_id = server_id::resolve(&config.server, std::env::var(server_id::ENV).ok())?;
    tracing::info!(server_id, "server identity");
    let identity = hooks::ServerIdentity::new(server_id);
    let hooks = hooks::Hooks::new(
        config.hooks.clone(),
        config
            .apps
            .iter()
            .map(|(name, app)| (name.clone(), app.hooks.clone()))
            .collect(),
        identity.clone(),
    )?;
    // The control plane's own listener, when the operator opens one (`api.listen`).
    let control = match config.api.listen.as_str() {
        "" => None,
        addr => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for the API on {addr}: {e}"))?,
        ),
    };
    let hooks_shutdown = CancellationToken::new();
    let hooks_task = hooks.start(hooks_shutdown.clone());
    let ctx = Arc::new(Context::new(config, hooks, identity, shutdown.clone()));
    if let Some(service) = ctx.recordings.clone() {
        // What a crash left is made playable before anything new is recorded.
        let recovering = service.clone();
        let _ = tokio::task::spawn_blocking(move || {
            recordings::recovery::recover(&recovering);
            recordings::retention::sweep(&recovering);
        })
        .await;
        tokio::spawn(recordings::scheduler::run(service, ctx.paths.clone(), shutdown.clone()));
    }
    ctx.sources.start().await;
    ctx.sources
        .start_edge(&ctx.config.edge, ctx.cluster.clone(), ctx.hls.clone());
    tokio::spawn(upkeep(Arc::clone(&ctx), metrics));
    if let Some(cluster) = ctx.cluster.clone() {
        tracing::info!(
            node = cluster.node_id(),
            "origin cluster: claiming published streams in redis"
        );
        let paths = ctx.paths.clone();
        ctx.tasks
            .spawn(cluster.heartbeat(move || (paths.sources(), paths.viewers()), shutdown.clone()));
    }
    let expiry = tokio::spawn(ctx.clients.clone().run_expiry(shutdown.clone()));
    ctx.ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let rtmp_task = tokio::spawn(servers::rtmp::serve(rtmp, Arc::clone(&ctx)));
    let http_task = tokio::spawn(servers::http::serve(http, Arc::clone(&ctx)));
    let control_task = control.map(|listener| {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "api and /metrics on their own listener");
        }
        tokio::spawn(servers::http::serve_control(listener, Arc::clone(&ctx)))
    });
    shutdown.cancelled().await;
    ctx.ready.store(false, std::sync::atomic::Ordering::Relaxed);
    tracing::info!("shutting down: closing every connection");
    let _ = rtmp_task.await;
    let _ = http_task.await;
    if let Some(task) = control_task {
        let _ = task.await;
    }
    let _ = expiry.await;
    ctx.tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, ctx.tasks.wait()).await.is_err() {
        tracing::warn!(
            remaining = ctx.tasks.len(),
            "connections or outputs still running after the grace period; exiting anyway"
        );
    }
    // The path told each recorder its stream ended; finishing a file (a long MP4's
    // fast-start rewrite) may take a while, and its on_dvr is queued when it is done.
    ctx.recorders.close();
    let recorders_grace = Duration::from_millis(ctx.config.record.shutdown_grace_ms);
    if tokio::time::timeout(recorders_grace, ctx.recorders.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            recordings = ctx.recorders.len(),
            grace_ms = ctx.config.record.shutdown_grace_ms,
            "recordings still being finished after record.shutdown_grace_ms; exiting anyway: \
             the next start finishes them and sends their on_dvr"
        );
    }
    // Connections queued their last notifications (an on_close may still wait for the
    // on_unpublish before it); the hooks get their own timeout to deliver them.
    let flush = ctx.hooks.shutdown_flush();
    ctx.hooks.flush_deferred(flush).await;
    hooks_shutdown.cancel();
    let _ = tokio::time::timeout(flush + Duration::from_millis(200), hooks_task).await;
    Ok(())
}

/// How often recordings past their retention are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Until shutdown: takes the clients' bitrate samples, forgets ended HLS playlists whose
/// time is up, deletes recordings past their retention, and runs the Prometheus recorder's
/// upkeep.
async fn upkeep(ctx: Arc<Context>, metrics: Option<metrics_exporter_prometheus::PrometheusHandle>) {
    let mut last_retention = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(clients::SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        ctx.clients.sample();
        ctx.hls.purge();
        if let Some(service) = ctx
            .recordings
            .clone()
            .filter(|_| last_retention.elapsed() >= RETENTION_EVERY)
        {
            last_retention = tokio::time::Instant::now();
            tokio::task::spawn_blocking(move || recordings::retention::sweep(&service));
        }
        if let Some(m) = &metrics {
            m.run_upkeep();
        }
    }
}
