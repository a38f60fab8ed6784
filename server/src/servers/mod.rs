//! The protocol servers: the RTMP and HTTP listeners, and what their connections share (the
//! accept loop with its per-IP limits, the live player that writes a viewer's socket,
//! vectored writes, refusal warnings gated per address).

pub mod http;
pub mod rtmp;

mod io;
mod listener;
pub(crate) mod log_gate;
mod per_ip;
mod player;
