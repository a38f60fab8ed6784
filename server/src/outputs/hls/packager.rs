//! One HLS packager per packaging run of a stream: an [`Output`] that picks the segment
//! format (`hls.variant`, per app) and hands the packets to the MPEG-TS ([`super::ts`]) or
//! fMP4 ([`super::fmp4`]) packager, which publish into the [`HlsStore`].
//!
//! With `auto`, the codecs decide: the first video packet (H.264 → MPEG-TS, unless the audio
//! seen is not AAC; anything else → fMP4), or audio alone (AAC for a second → MPEG-TS,
//! anything else → fMP4 at once). The packets seen while deciding are held (at most
//! [`MAX_HELD_PACKETS`] / [`MAX_HELD_BYTES`], then MPEG-TS is assumed) and replayed.

use std::sync::Arc;

use bytes::Bytes;
use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};
use estuary_protocol::{Codec, MediaKind, Packet};
use tracing::info;

use super::fmp4::Fmp4Packaging;
use super::hook::SegmentHook;
use super::names::new_instance;
use super::store::{HlsStore, HlsStream};
use super::ts::TsPackaging;
use crate::config::{HlsConfig, HlsVariant};
use crate::hooks::{HookSubject, Hooks};
use crate::outputs::Output;
use crate::stream::StreamKey;

/// Packets held while `auto` waits for the codecs.
const MAX_HELD_PACKETS: usize = 512;
const MAX_HELD_BYTES: usize = 8 << 20;
/// AAC alone this long (ms of its timeline) makes an audio-only MPEG-TS stream.
const AUDIO_ONLY_AFTER_MS: u64 = 1000;

pub struct Packaging {
    key: StreamKey,
    hls: HlsConfig,
    hooks: Hooks,
    /// The path's source, in whose name `on_hls` is sent.
    source: Option<HookSubject>,
    out: Arc<HlsStream>,
    engine: Option<Box<dyn Output>>,
    held: Vec<Arc<Packet>>,
    held_bytes: usize,
    /// The audio codec seen while deciding, and the DTS of its first frame.
    audio: Option<(AudioCodec, u64)>,
}

impl Packaging {
    /// Starts a packaging run of `key` with `hls` (the app's settings), published in `store`
    /// under a fresh instance id.
    pub fn new(
        hls: &HlsConfig,
        hooks: Hooks,
        store: &HlsStore,
        key: &StreamKey,
        source: Option<HookSubject>,
    ) -> Packaging {
        let out = Arc::new(HlsStream::new(new_instance()));
        store.insert(key.clone(), Arc::clone(&out));
        info!(stream = %key, instance = %out.instance, variant = ?hls.variant, "hls packaging started");
        let mut packaging = Packaging {
            key: key.clone(),
            hls: hls.clone(),
            hooks,
            source,
            out,
            engine: None,
            held: Vec::new(),
            held_bytes: 0,
            audio: None,
        };
        match hls.variant {
            HlsVariant::Ts => packaging.start(false),
            HlsVariant::Fmp4 => packaging.start(true),
            HlsVariant::Auto => {}
        }
        packaging
    }

    fn start(&mut self, fmp4: bool) {
        let (hls, out) = (&self.hls, Arc::clone(&self.out));
        let hook = SegmentHook::new(self.hooks.clone(), &self.key, self.source.clone());
        let mut engine: Box<dyn Output> = if fmp4 {
            Box::new(Fmp4Packaging::new(hls, hook, out, &self.key))
        } else {
            Box::new(TsPackaging::new(hls, hook, out, &self.key))
        };
        for packet in std::mem::take(&mut self.held) {
            engine.packet(&packet);
        }
        self.held_bytes = 0;
        self.engine = Some(engine);
    }

    /// `auto`: whether `packet` settles the format (`Some(true)` for fMP4).
    fn decide(&mut self, packet: &Packet) -> Option<bool> {
        match (packet.kind, packet.codec) {
            (MediaKind::Video, Codec::Video(VideoCodec::Avc)) => {
                Some(self.audio.is_some_and(|(codec, _)| codec != AudioCodec::Aac))
            }
            (MediaKind::Video, Codec::Video(_)) => Some(true),
            (MediaKind::Audio, Codec::Audio(AudioCodec::Aac)) => {
                let since = self.audio.get_or_insert((AudioCodec::Aac, packet.dts)).1;
                (packet.dts.saturating_sub(since) >= AUDIO_ONLY_AFTER_MS).then_some(false)
            }
            (MediaKind::Audio, Codec::Audio(codec)) => {
                self.audio = Some((codec, packet.dts));
                Some(true)
            }
            _ => None,
        }
    }
}

impl Output for Packaging {
    fn packet(&mut self, packet: &Arc<Packet>) {
        if let Some(engine) = self.engine.as_mut() {
            return engine.packet(packet);
        }
        let decided = self.decide(packet);
        self.held_bytes += packet.payload.len();
        self.held.push(Arc::clone(packet));
        let full = self.held.len() >= MAX_HELD_PACKETS || self.held_bytes >= MAX_HELD_BYTES;
        match decided {
            Some(fmp4) => self.start(fmp4),
            None if full => self.start(false),
            None => {}
        }
    }

    fn source_changed(&mut self, source: Option<&HookSubject>) {
        self.source = source.cloned();
        if let Some(engine) = self.engine.as_mut() {
            engine.source_changed(source);
        }
    }

    fn gap(&mut self) {
        if let Some(engine) = self.engine.as_mut() {
            engine.gap();
        }
    }

    fn source_gone(&mut self) {
        match self.engine.as_mut() {
            Some(engine) => engine.source_gone(),
            None => {
                self.held.clear();
                self.held_bytes = 0;
            }
        }
    }

    fn end(&mut self) {
        match self.engine.as_mut() {
            Some(engine) => engine.end(),
            // Nothing was packaged: the entry goes when its linger is over.
            None => self
                .out
                .end(Bytes::new(), std::time::Duration::from_millis(self.hls.dispose_ms)),
        }
    }
}
