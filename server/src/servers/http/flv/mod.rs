//! HTTP-FLV: `GET|HEAD /{app}/{stream}.flv`.
//!
//! - `socket.rs`: a connection that opens with the request is served on the socket itself,
//!   by the same live player as RTMP (the common case: flv.js, mpegts.js, ffmpeg, VLC).
//! - `body.rs`: a request on a kept-alive connection, and `HEAD`, through hyper.
//! - `request.rs`: what both do to let a viewer in.

mod body;
mod request;
mod socket;

pub use body::serve;
/// For the fuzz target (`crate::fuzzing`).
pub(crate) use socket::read_request_for_fuzzing;
pub use socket::{is_live_flv_request, serve as serve_socket};
