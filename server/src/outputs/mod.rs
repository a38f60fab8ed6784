//! Outputs: what a path feeds besides its viewers. Each is started by the path when the
//! source starts, reads the path's packets like a viewer, and is ended by the path after its
//! grace period (`crate::path`'s output driver).
//!
//! Adding a kind of output is one module here and one entry in [`builtin`].

mod output;

pub mod hls;

use std::sync::Arc;

pub use output::{Output, OutputKind};

use crate::config::Config;
use crate::hooks::Hooks;

/// Every kind of output a path may start, in the order they start.
pub fn builtin(config: &Config, hooks: &Hooks, hls: &hls::HlsStore) -> Vec<Arc<dyn OutputKind>> {
    vec![Arc::new(hls::HlsOutputs::new(&config.hls, hooks.clone(), hls.clone()))]
}
