//! Files built by hand for the tests of this module: an index and the bytes it points at,
//! with real codec configurations (OBS's H.264 record and AAC config) so that segments can
//! be muxed and checked.

use bytes::Bytes;

use crate::mp4::{Mp4Index, Sample, TrackIndex, TrackInfo};

/// OBS 29.0.2's AVC sequence header (High 3.1, 1280x720).
pub(crate) const AVC_RECORD: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1c, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01,
    0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x18, 0xcb, 0x01, 0x00,
    0x04, 0x68, 0xef, 0xbc, 0xb0,
];
/// AAC LC, 44.1 kHz, stereo.
pub(crate) const AAC_CONFIG: &[u8] = &[0x12, 0x10];

/// Builds a file: tracks of samples laid out one after the other.
pub(crate) struct Builder {
    tracks: Vec<TrackIndex>,
    file: Vec<u8>,
}

fn boxed(fourcc: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = ((8 + payload.len()) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(fourcc);
    out.extend_from_slice(payload);
    out
}

/// An `stsd` box with one sample entry.
pub(crate) fn stsd(codec: &[u8; 4], fields: usize, children: &[u8]) -> Bytes {
    let mut entry = vec![0; fields];
    entry.extend_from_slice(children);
    let mut payload = vec![0, 0, 0, 0, 0, 0, 0, 1];
    payload.extend_from_slice(&boxed(codec, &entry));
    Bytes::from(boxed(b"stsd", &payload))
}

/// An `esds` payload carrying `asc` for `object_type` (0x40: AAC), as ffmpeg writes it
/// (4-byte descriptor lengths).
pub(crate) fn esds(object_type: u8, asc: &[u8]) -> Vec<u8> {
    let long = |tag: u8, len: usize| vec![tag, 0x80, 0x80, 0x80, len as u8];
    let mut specific = long(0x05, asc.len());
    specific.extend_from_slice(asc);
    let mut config = long(0x04, 13 + specific.len());
    config.extend_from_slice(&[object_type, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    config.extend_from_slice(&specific);
    let mut es = long(0x03, 3 + config.len() + 3);
    es.extend_from_slice(&[0, 1, 0]);
    es.extend_from_slice(&config);
    es.extend_from_slice(&[0x06, 0x01, 0x02]);
    let mut payload = vec![0, 0, 0, 0];
    payload.extend_from_slice(&es);
    payload
}

impl Builder {
    pub(crate) fn new() -> Self {
        Builder {
            tracks: Vec::new(),
            // Where an ftyp and a moov would be.
            file: vec![0; 1000],
        }
    }

    fn info(&self, handler: &[u8; 4], codec: &[u8; 4], timescale: u32, presentation_offset: i64) -> TrackInfo {
        let stsd = match handler {
            b"vide" => stsd(codec, 78, &boxed(b"avcC", AVC_RECORD)),
            _ => stsd(codec, 28, &boxed(b"esds", &esds(0x40, AAC_CONFIG))),
        };
        TrackInfo {
            track_id: self.tracks.len() as u32 + 1,
            handler: *handler,
            timescale,
            codec: *codec,
            width: 0,
            height: 0,
            language: 0,
            presentation_offset,
            stsd,
            hdlr: Bytes::new(),
            media_header: Bytes::new(),
        }
    }

    /// An H.264 track: one frame per duration, keyframes (an IDR slice) where `keys` says,
    /// composition offsets from `cts`. Each frame is one length-prefixed slice.
    pub(crate) fn video(
        mut self,
        timescale: u32,
        presentation_offset: i64,
        durations: &[u32],
        keys: impl Fn(usize) -> bool,
        cts: impl Fn(usize) -> i32,
    ) -> Self {
        let info = self.info(b"vide", b"avc1", timescale, presentation_offset);
        let mut samples = Vec::new();
        let mut dts = 0;
        for (i, &duration) in durations.iter().enumerate() {
            let size = 100 + (i as u32 % 7) * 150;
            let offset = self.file.len() as u64;
            self.file.extend_from_slice(&(size - 4).to_be_bytes());
            self.file.push(if keys(i) { 0x65 } else { 0x41 });
            self.file.extend((5..size).map(|b| (i as u32 + b) as u8 | 1));
            samples.push(Sample {
                offset,
                size,
                dts,
                duration,
                cts: cts(i),
                keyframe: keys(i),
            });
            dts += u64::from(duration);
        }
        self.tracks.push(TrackIndex { info, samples });
        self
    }

    /// An AAC track of `frames` frames of 1024 samples at `rate`.
    pub(crate) fn audio(mut self, rate: u32, presentation_offset: i64, frames: usize) -> Self {
        let info = self.info(b"soun", b"mp4a", rate, presentation_offset);
        let mut samples = Vec::new();
        for i in 0..frames {
            let size = 10 + (i as u32 % 5) * 40;
            let offset = self.file.len() as u64;
            self.file.extend((0..size).map(|b| (i as u32 ^ b) as u8));
            samples.push(Sample {
                offset,
                size,
                dts: i as u64 * 1024,
                duration: 1024,
                cts: 0,
                keyframe: true,
            });
        }
        self.tracks.push(TrackIndex { info, samples });
        self
    }

    pub(crate) fn build(self) -> Mp4Index {
        self.build_file().0
    }

    pub(crate) fn build_file(self) -> (Mp4Index, Vec<u8>) {
        let index = Mp4Index {
            fragmented: false,
            movie_timescale: 1000,
            tracks: self.tracks,
            fragments: 0,
            file_len: self.file.len() as u64,
            torn: None,
        };
        (index, self.file)
    }
}
