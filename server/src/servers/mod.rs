//! The protocol servers: the RTMP and HTTP listeners, and what their connections share (the
//! accept loop with its per-IP limits, the live player that writes a viewer's socket,
//! vectored writes).

pub mod http;
pub mod rtmp;

mod io;
mod listener;
mod per_ip;
mod player;
#[cfg(test)]
mod player_stress;
