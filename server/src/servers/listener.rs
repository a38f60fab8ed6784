//! The accept loop both listeners share: one task per connection, each in a
//! `conn{proto, conn, peer, stream}` span, at most `limits.max_connections` at once and
//! within the per-IP limits (`per_ip.rs`), until shutdown. A refused connection is closed
//! before anything is read from it, counted by reason, and logged once per address per
//! refusal burst.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{warn, Instrument};

use super::per_ip::{PerIpLimits, Refused};
use crate::context::Context;

/// The address warnings about the whole listener are gated under.
const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Accepts connections on `listener` and runs `handle(ctx, socket, peer, id)` for each.
pub async fn accept_loop<F, Fut>(listener: TcpListener, ctx: Arc<Context>, proto: &'static str, handle: F)
where
    F: Fn(Arc<Context>, TcpStream, SocketAddr, u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let limit = ctx.config.limits.max_connections;
    let permits = Arc::new(Semaphore::new(limit));
    let per_ip = PerIpLimits::new(&ctx.config.limits);
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
        let now = Instant::now();
        let slot = match per_ip.admit(peer.ip(), now) {
            Ok(slot) => slot,
            Err(refused) => {
                crate::metrics::rejected(proto, refused.reason());
                // A full table is one condition, not one per address: one warning for all.
                let about = if refused == Refused::TableFull { ANY } else { peer.ip() };
                if let Some(held) = ctx.refusal_log.pass(refused.reason(), about, now) {
                    warn!(%peer, proto, quietly_refused_since = held, "connection refused: {refused}");
                }
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            crate::metrics::rejected(proto, "max_connections");
            if let Some(held) = ctx.refusal_log.pass("max_connections", ANY, now) {
                warn!(%peer, proto, limit, quietly_refused_since = held, "connection refused: limits.max_connections reached");
            }
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
                drop(slot);
            }
            .instrument(span),
        );
    }
}
