//! HLS: in-memory packaging of every live stream (one packager per stream, shared by all
//! HLS viewers; an output of the stream's path), as MPEG-TS or fMP4 with LL-HLS parts, and
//! the store HTTP serves playlists, segments, parts and init sections from.

mod fmp4;
mod hook;
mod names;
mod packager;
mod store;
mod ts;

use std::time::Duration;

pub use fmp4::media_playlist_name;
pub use names::{parse_segment_name, segment_name, segment_uri, HlsFile};
pub use packager::Packaging;
pub use store::{HlsStore, HlsStream, Update};

use super::output::{Output, OutputKind};
use crate::config::HlsConfig;
use crate::hooks::{HookSubject, Hooks};
use crate::stream::StreamKey;

/// The HLS kind of output: one [`Packaging`] per source, while `hls.enabled`.
pub struct HlsOutputs {
    config: HlsConfig,
    /// `[apps.NAME.hls]` resolved over `config`, per app that has one.
    apps: std::collections::BTreeMap<String, HlsConfig>,
    hooks: Hooks,
    store: HlsStore,
}

impl HlsOutputs {
    pub fn new(config: &HlsConfig, hooks: Hooks, store: HlsStore) -> HlsOutputs {
        HlsOutputs {
            config: config.clone(),
            apps: std::collections::BTreeMap::new(),
            hooks,
            store,
        }
    }

    /// Applies the `[apps.NAME.hls]` tables of `config`.
    pub fn with_apps(mut self, config: &crate::config::Config) -> HlsOutputs {
        self.apps = config
            .apps
            .keys()
            .map(|app| (app.clone(), HlsConfig::for_app(config, app)))
            .collect();
        self
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
        // An edge pull of another node's stream: the owner packages it (`set_packaged_elsewhere`).
        if !self.config.enabled || self.store.is_packaged_elsewhere(key) {
            return None;
        }
        let config = self.apps.get(&key.app).unwrap_or(&self.config);
        Some(Box::new(Packaging::new(
            config,
            self.hooks.clone(),
            &self.store,
            key,
            source.cloned(),
        )))
    }
}
