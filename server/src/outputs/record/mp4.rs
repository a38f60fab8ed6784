//! MP4 recordings: `muxer`'s fragmented MP4 writer while recording (each fragment synced: a
//! crash loses at most the open one) and its fast-start rewrite when the file ends.

use std::io::{self, Read, Seek, Write};
use std::time::Duration;

use bytes::Bytes;
use estuary_muxer::mp4::{Fmp4Event, Fmp4Writer, Fmp4WriterConfig};
use estuary_muxer::MuxError;
use estuary_protocol::{MediaKind, Packet};

use super::format::{FileMuxer, Muxed};

/// Fragmented MP4 for one file.
pub struct Mp4Muxer {
    writer: Fmp4Writer,
    /// The file's init segment is written.
    started: bool,
    /// Stream time in the fragments written.
    duration_ms: u64,
    /// After a gap, nothing until the next video keyframe.
    waiting_for_keyframe: bool,
    /// Packets the writer refused (logged once).
    refused: u64,
}

impl Mp4Muxer {
    pub fn new(fragment: Duration) -> Mp4Muxer {
        Mp4Muxer {
            writer: Fmp4Writer::new(Fmp4WriterConfig {
                fragment_ms: fragment.as_millis() as u64,
                ..Fmp4WriterConfig::default()
            }),
            started: false,
            duration_ms: 0,
            waiting_for_keyframe: false,
            refused: 0,
        }
    }

    /// What the writer produced since the last call.
    fn drain(&mut self) -> Muxed {
        let mut out = Muxed::default();
        while let Some(event) = self.writer.poll_event() {
            match event {
                Fmp4Event::Init(init) => {
                    if self.started {
                        // The codecs changed: what follows belongs to the next file, which
                        // starts afresh from the stream's headers.
                        out.restart = true;
                        return out;
                    }
                    self.started = true;
                    out.bytes.push(init.data);
                }
                Fmp4Event::Fragment(fragment) => {
                    self.duration_ms += fragment.duration_ms;
                    out.bytes.extend(fragment.parts);
                    out.durable = true;
                }
            }
        }
        out
    }
}

impl FileMuxer for Mp4Muxer {
    fn push(&mut self, packet: &Packet) -> Result<Muxed, String> {
        if self.waiting_for_keyframe && !packet.seq_header && packet.kind != MediaKind::Script {
            if !(packet.is_video() && packet.keyframe) {
                return Ok(Muxed::default());
            }
            self.waiting_for_keyframe = false;
        }
        match self.writer.push(packet) {
            Ok(()) => {}
            // A codec MP4 cannot carry here: nothing of this stream can be recorded.
            Err(e @ (MuxError::UnsupportedVideoCodec(_) | MuxError::UnsupportedAudioCodec(_))) => {
                return Err(e.to_string())
            }
            Err(e) => {
                self.refused += 1;
                if self.refused == 1 {
                    tracing::warn!(cause = %e, "recording dropped a packet it could not mux");
                }
            }
        }
        Ok(self.drain())
    }

    fn gap(&mut self) {
        self.waiting_for_keyframe = self.started;
    }

    fn finish(&mut self) -> Vec<Bytes> {
        self.writer.finish();
        self.drain().bytes
    }

    fn duration_ms(&self) -> u64 {
        self.duration_ms
    }
}

/// Rewrites the fragmented (possibly torn) MP4 `input` as a fast-start MP4 into `output`.
pub fn faststart<R: Read + Seek, W: Write>(input: &mut R, output: &mut W) -> io::Result<u64> {
    let report = estuary_muxer::mp4::faststart(input, output).map_err(io::Error::other)?;
    Ok(report.duration_ms)
}
