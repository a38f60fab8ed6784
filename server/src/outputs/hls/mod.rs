//! HLS: in-memory packaging of every live stream (one packager per stream, shared by all
//! HLS viewers; an output of the stream's path) and the store HTTP serves playlists and
//! segments from.

mod names;
mod packager;
mod store;

use std::time::Duration;

pub use names::{parse_segment_name, segment_name, segment_uri};
pub use packager::Packaging;
pub use store::{HlsStore, HlsStream};

use super::output::{Output, OutputKind};
use crate::config::HlsConfig;
use crate::hooks::{HookSubject, Hooks};
use crate::stream::StreamKey;

/// The HLS kind of output: one [`Packaging`] per source, while `hls.enabled`.
pub struct HlsOutputs {
    config: HlsConfig,
    hooks: Hooks,
    store: HlsStore,
}

impl HlsOutputs {
    pub fn new(config: &HlsConfig, hooks: Hooks, store: HlsStore) -> HlsOutputs {
        HlsOutputs {
            config: config.clone(),
            hooks,
            store,
        }
    }
}

impl OutputKind for HlsOutputs {
    fn name(&self) -> &'static str {
        "hls"
    }

    fn grace(&self) -> Duration {
        Duration::from_millis(self.config.reconnect_window_ms)
    }

    fn start(&self, key: &StreamKey, source: Option<&HookSubject>) -> Option<Box<dyn Output>> {
        if !self.config.enabled {
            return None;
        }
        Some(Box::new(Packaging::new(
            &self.config,
            self.hooks.clone(),
            &self.store,
            key,
            source.cloned(),
        )))
    }
}
