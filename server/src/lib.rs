//! Estuary server: config, stream hub, RTMP and HTTP listeners, hooks.
#![forbid(unsafe_code)]

pub mod hooks;
