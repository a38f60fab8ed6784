//! The protocol servers: the RTMP and HTTP listeners, and what their connections share (the
//! accept loop, the live player that writes a viewer's socket, vectored writes).

pub mod http;
pub mod rtmp;

mod io;
mod listener;
mod player;
