//! The accept loop both listeners share: one task per connection, each in a
//! `conn{proto, conn, peer, stream}` span, at most `limits.max_connections` at once, until
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{warn, Instrument};

use crate::context::Context;

/// Accepts connections on `listener` and runs `handle(ctx, socket, peer, id)` for each.
pub async fn accept_loop<F, Fut>(listener: TcpListener, ctx: Arc<Context>, proto: &'static str, handle: F)
where
    F: Fn(Arc<Context>, TcpStream, SocketAddr, u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let limit = ctx.config.limits.max_connections;
    let permits = Arc::new(Semaphore::new(limit));
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(cause = %e, proto, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            warn!(%peer, proto, limit, "connection refused: limits.max_connections reached");
            crate::metrics::rejected(proto, "max_connections");
            continue;
        };
        crate::metrics::accepted(proto);
        super::io::tune_socket(&socket, &ctx.config);
        let id = ctx.next_conn_id();
        let span = tracing::info_span!("conn", proto, conn = id, %peer, stream = tracing::field::Empty);
        let connection = handle(Arc::clone(&ctx), socket, peer, id);
        ctx.tasks.spawn(
            async move {
                connection.await;
                drop(permit);
            }
            .instrument(span),
        );
    }
}
