//! Who is connected: every RTMP connection, HTTP-FLV viewer and HLS playback session, with
//! its role, byte counters and bitrates, for the HTTP API, the metrics and kicking.
//!
//! - `registry.rs`: the registry ([`Clients`]) and the guard a connection holds.
//! - `client.rs`: one entry ([`Client`]): role, counters, HLS session state.
//! - `hls_sessions.rs`: HLS sessions (an HLS viewer has no lasting connection): by id, per
//!   address, ordered by deadline; `session_token.rs`: the signed tokens that name them.
//! - `kbps.rs`: SRS's 30-s bitrates from periodic samples.
//! - `usage.rs`: per-stream totals; `ids.rs`: the ids the API shows.

mod client;
mod hls_sessions;
mod ids;
mod kbps;
mod registry;
mod session_token;
mod usage;

pub use client::{unix_ms, Client, ClientKind, Introduction, Role};
pub use hls_sessions::{HlsLimits, HlsRefusal};
pub use ids::Ids;
pub use kbps::{Kbps, SAMPLE_EVERY};
pub use registry::{ClientGuard, Clients};
pub use session_token::{SessionToken, SessionTokens, TokenError, TOKEN_LEN, TOKEN_TTL};
pub use usage::{per_stream, StreamUsage};

#[cfg(test)]
mod tests;
