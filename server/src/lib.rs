//! Estuary server: config, stream hub, RTMP and HTTP listeners, hooks.
//!
//! [`run`] is the testable entry point: the caller binds the listeners (so tests can use
//! port 0) and passes a shutdown token.
#![forbid(unsafe_code)]

mod api;
pub mod clients;
pub mod config;
mod context;
pub mod hls;
pub mod hooks;
mod http;
pub mod hub;
mod io;
mod listener;
pub mod metrics;
mod player;
mod rtmp;
mod sysinfo;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use context::Context;

/// How long shutdown waits for connections to close before giving up on them.
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
    let identity = hooks::ServerIdentity::new(format!("estuary-{}", std::process::id()));
    let hooks = hooks::Hooks::new(
        config.hooks.clone(),
        config
            .apps
            .iter()
            .map(|(name, app)| (name.clone(), app.hooks.clone()))
            .collect(),
        identity.clone(),
    )?;
    let hooks_shutdown = CancellationToken::new();
    let hooks_task = hooks.start(hooks_shutdown.clone());
    let ctx = Arc::new(Context::new(config, hooks, identity, shutdown.clone()));
    tell_hls_session_ends(&ctx);
    tokio::spawn(sample_periodically(Arc::clone(&ctx), metrics));
    ctx.ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let rtmp_task = tokio::spawn(rtmp::serve(rtmp, Arc::clone(&ctx)));
    let http_task = tokio::spawn(http::serve(http, Arc::clone(&ctx)));
    shutdown.cancelled().await;
    ctx.ready.store(false, std::sync::atomic::Ordering::Relaxed);
    tracing::info!("shutting down: closing every connection");
    let _ = rtmp_task.await;
    let _ = http_task.await;
    ctx.tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, ctx.tasks.wait()).await.is_err() {
        tracing::warn!(
            remaining = ctx.tasks.len(),
            "connections still open after the grace period; exiting anyway"
        );
    }
    // Connections queued their last notifications; give the hooks a moment to deliver them.
    hooks_shutdown.cancel();
    let _ = tokio::time::timeout(hooks::SHUTDOWN_FLUSH + Duration::from_millis(200), hooks_task).await;
    Ok(())
}

/// An HLS viewer has no connection whose end could say it left: its session ends when it
/// stops asking (or is kicked), and that is when `on_stop` goes out.
fn tell_hls_session_ends(ctx: &Context) {
    let hooks = ctx.hooks.clone();
    ctx.clients.on_hls_session_end(move |client| {
        let role = client.role();
        let Some(key) = role.key else { return };
        let mut info = hooks::ClientInfo::new(
            client.hls_token().unwrap_or_default(),
            client.ip.clone(),
            key.app.clone(),
        );
        info.tc_url = role.url;
        let stream = hooks::StreamInfo {
            stream: key.name.clone(),
            param: String::new(),
            stream_id: key.to_string(),
        };
        hooks.notify(&hooks::NotifyEvent::Stop { client: info, stream });
    });
}

/// Takes the clients' bitrate samples, and runs the Prometheus recorder's upkeep, until
/// shutdown.
async fn sample_periodically(ctx: Arc<Context>, metrics: Option<metrics_exporter_prometheus::PrometheusHandle>) {
    let mut tick = tokio::time::interval(clients::SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        ctx.clients.sample();
        if let Some(m) = &metrics {
            m.run_upkeep();
        }
    }
}
