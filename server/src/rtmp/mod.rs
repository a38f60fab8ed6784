//! The RTMP listener: accepts connections and runs one task per connection.

mod connection;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{warn, Instrument};

use crate::context::Context;

/// Accepts RTMP connections until shutdown.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    let permits = Arc::new(Semaphore::new(ctx.config.limits.max_connections));
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(cause = %e, "rtmp accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            warn!(%peer, limit = ctx.config.limits.max_connections, "rtmp connection refused: limits.max_connections reached");
            crate::metrics::rejected("rtmp", "max_connections");
            continue;
        };
        crate::metrics::accepted("rtmp");
        crate::io::tune_socket(&socket, &ctx.config);
        let id = ctx.next_conn_id();
        let span = tracing::info_span!("rtmp", conn = id, %peer, stream = tracing::field::Empty);
        let task_ctx = Arc::clone(&ctx);
        ctx.tasks.spawn(
            async move {
                connection::run(task_ctx, socket, peer, id).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
}
