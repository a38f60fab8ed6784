//! Estuary server: config, stream hub, RTMP and HTTP listeners, hooks.
#![forbid(unsafe_code)]

pub mod config;
pub mod hooks;
pub mod hub;
