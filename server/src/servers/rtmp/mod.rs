//! The RTMP listener: accepts connections and runs one task per connection.

mod connection;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::context::Context;

/// Accepts RTMP connections until shutdown.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    super::listener::accept_loop(listener, ctx, "rtmp", connection::run).await;
}
