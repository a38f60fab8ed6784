//! The Enhanced RTMP v2 tracks of a stream other than track 0 (a Multitrack publisher's
//! extra renditions: OBS ≥ 30.2 Enhanced Broadcasting, ffmpeg ≥ 8 with several video maps).
//!
//! They are kept apart from track 0: never on its timeline, never its sequence header, never
//! in its GOP cache or ring, so track 0 plays exactly as a single-track publish would. Each
//! is counted (packets, bytes, frames) with its codec and latest sequence header, for the API
//! and metrics; they get no viewers yet, a later issue turns them into renditions. The table
//! is bounded by the protocol: a track id is one byte, so at most 255 tracks per kind.

use std::sync::Arc;

use estuary_protocol::{Codec, MediaKind, Packet};

/// One extra track, as the API shows it.
#[derive(Debug, Clone)]
pub struct ExtraTrack {
    pub kind: MediaKind,
    /// Its Enhanced RTMP track id (1 and up).
    pub id: u8,
    pub codec: Codec,
    pub packets: u64,
    pub bytes: u64,
    /// Pictures or audio frames (not sequence headers, metadata or ends of sequence).
    pub frames: u64,
    /// Its latest sequence header, what a rendition of it will start with.
    pub header: Option<Arc<Packet>>,
}

/// The extra tracks of the current publisher.
#[derive(Debug, Default)]
pub struct ExtraTracks {
    tracks: Vec<ExtraTrack>,
}

impl ExtraTracks {
    /// Counts a packet of track `packet.track` (≥ 1).
    pub fn record(&mut self, packet: Packet) {
        let index = match self
            .tracks
            .iter()
            .position(|t| t.kind == packet.kind && t.id == packet.track)
        {
            Some(index) => index,
            None => {
                tracing::info!(kind = ?packet.kind, track = packet.track, codec = ?packet.codec, "multitrack publisher: extra track kept apart from track 0");
                self.tracks.push(ExtraTrack {
                    kind: packet.kind,
                    id: packet.track,
                    codec: packet.codec,
                    packets: 0,
                    bytes: 0,
                    frames: 0,
                    header: None,
                });
                self.tracks.len() - 1
            }
        };
        let track = &mut self.tracks[index];
        track.packets += 1;
        track.bytes += packet.payload.len() as u64;
        if packet.codec != Codec::None {
            track.codec = packet.codec;
        }
        if packet.seq_header {
            track.header = Some(Arc::new(packet));
        } else if !packet.no_frame {
            track.frames += 1;
        }
    }

    pub fn clear(&mut self) {
        self.tracks.clear();
    }

    /// The tracks, in the order they first appeared, without their headers.
    pub fn list(&self) -> Vec<ExtraTrack> {
        self.tracks
            .iter()
            .map(|t| ExtraTrack {
                header: None,
                ..t.clone()
            })
            .collect()
    }

    /// Extra tracks of `kind`.
    pub fn count(&self, kind: MediaKind) -> usize {
        self.tracks.iter().filter(|t| t.kind == kind).count()
    }
}
