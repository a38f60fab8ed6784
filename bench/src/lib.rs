//! Estuary's load generator: RTMP publishers that tag every video frame, and cheap RTMP,
//! HTTP-FLV and HLS viewers that match what they receive to what was sent, so startup,
//! latency, missing frames and stalls can be measured against any RTMP server, together with
//! the server process's CPU time and memory.
#![forbid(unsafe_code)]

pub mod clip;
pub mod http;
pub mod net;
pub mod procstat;
pub mod publisher;
pub mod report;
pub mod run;
pub mod scan;
pub mod sei;
pub mod soak;
pub mod stats;
pub mod table;
pub mod viewers;
