//! The codec configuration in a track's sample entry, as MPEG-TS needs it: the `avcC` of an
//! `avc1`/`avc3` entry (ISO/IEC 14496-15 §5.4.2), whose SPS and PPS go before each IDR, and
//! the AudioSpecificConfig in the `esds` of an `mp4a` entry (ISO/IEC 14496-14 §5.6; the
//! descriptors of ISO/IEC 14496-1 §7.2.6.5–7), from which each frame's ADTS header is made.
//! Anything else (HEVC, Opus, MP3, ...) is [`MuxError::VodUnsupportedCodec`].

use estuary_protocol::codec::{AudioSpecificConfig, AvcDecoderConfig};

use super::plan::PlanTrack;
use crate::MuxError;

/// Bytes of a `VisualSampleEntry` before its child boxes (ISO/IEC 14496-12 §12.1.3).
const VISUAL_ENTRY_FIELDS: usize = 78;
/// Bytes of a version 0 `AudioSampleEntry` before its child boxes (§12.2.3); QuickTime's
/// sound description versions 1 and 2 add 16 and 36.
const AUDIO_ENTRY_FIELDS: usize = 28;

/// `objectTypeIndication` of MPEG-4 audio, and of MPEG-2 AAC Main, LC and SSR.
const AAC_OBJECT_TYPES: [u8; 4] = [0x40, 0x66, 0x67, 0x68];

/// The H.264 configuration of a video track.
pub(crate) fn avc_config(track: &PlanTrack) -> Result<AvcDecoderConfig, MuxError> {
    if !matches!(&track.codec, b"avc1" | b"avc3") {
        return Err(unsupported(track, String::new()));
    }
    let fields = sample_entry(track)?
        .get(VISUAL_ENTRY_FIELDS..)
        .ok_or_else(|| bad(track, "the video sample entry is truncated"))?;
    let avcc = find_box(fields, b"avcC").map_err(|e| bad(track, e))?;
    let avcc = avcc.ok_or_else(|| bad(track, "no avcC box"))?;
    AvcDecoderConfig::parse(avcc).map_err(|e| bad(track, format!("avcC: {e}")))
}

/// The AAC configuration of an audio track, checked to be one ADTS can carry.
pub(crate) fn aac_config(track: &PlanTrack) -> Result<AudioSpecificConfig, MuxError> {
    if &track.codec != b"mp4a" {
        return Err(unsupported(track, String::new()));
    }
    let entry = sample_entry(track)?;
    let version = entry.get(8..10).map_or(0, |v| u16::from_be_bytes([v[0], v[1]]));
    let fields_len = AUDIO_ENTRY_FIELDS
        + match version {
            1 => 16,
            2 => 36,
            _ => 0,
        };
    let children = entry
        .get(fields_len..)
        .ok_or_else(|| bad(track, "the audio sample entry is truncated"))?;
    let mut esds = find_box(children, b"esds").map_err(|e| bad(track, e))?;
    if esds.is_none() {
        // QuickTime puts it inside a `wave` box.
        if let Some(wave) = find_box(children, b"wave").map_err(|e| bad(track, e))? {
            esds = find_box(wave, b"esds").map_err(|e| bad(track, e))?;
        }
    }
    let esds = esds.ok_or_else(|| bad(track, "no esds box"))?;
    let (object_type, specific) = decoder_config(esds).map_err(|e| bad(track, format!("esds: {e}")))?;
    if !AAC_OBJECT_TYPES.contains(&object_type) {
        return Err(unsupported(
            track,
            format!(" (object type {object_type:#04x}, not aac)"),
        ));
    }
    let config = AudioSpecificConfig::parse(specific).map_err(|e| bad(track, format!("esds: {e}")))?;
    config
        .adts_header(0)
        .map_err(|e| unsupported(track, format!(" ({e})")))?;
    Ok(config)
}

/// The payload of the first sample entry of the track's `stsd` (a whole box, as copied).
fn sample_entry(track: &PlanTrack) -> Result<&[u8], MuxError> {
    let stsd = track
        .stsd
        .get(8..)
        .ok_or_else(|| bad(track, "the stsd box is truncated"))?;
    let entries = stsd.get(8..).ok_or_else(|| bad(track, "the stsd box is truncated"))?;
    match boxes(entries).next() {
        Some(Ok((_, payload))) => Ok(payload),
        Some(Err(e)) => Err(bad(track, format!("stsd: {e}"))),
        None => Err(bad(track, "the stsd box has no sample entry")),
    }
}

fn unsupported(track: &PlanTrack, detail: String) -> MuxError {
    MuxError::VodUnsupportedCodec {
        track_id: track.track_id,
        codec: format!("{}{detail}", String::from_utf8_lossy(&track.codec)),
    }
}

fn bad(track: &PlanTrack, reason: impl Into<String>) -> MuxError {
    MuxError::VodCodecConfig {
        track_id: track.track_id,
        codec: String::from_utf8_lossy(&track.codec).into_owned(),
        reason: reason.into(),
    }
}

/// The boxes in `data`: type and payload.
fn boxes(data: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8]), String>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let item = next_box(rest);
        match &item {
            Ok((_, _, len)) => rest = &rest[*len..],
            Err(_) => rest = &[],
        }
        Some(item.map(|(box_type, payload, _)| (box_type, payload)))
    })
}

/// The box at the start of `data`: type, payload and whole length.
fn next_box(data: &[u8]) -> Result<([u8; 4], &[u8], usize), String> {
    let head = data.get(..8).ok_or_else(|| format!("{} stray bytes", data.len()))?;
    let box_type = [head[4], head[5], head[6], head[7]];
    let name = String::from_utf8_lossy(&box_type).into_owned();
    let (size, header_len) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
        0 => (data.len() as u64, 8),
        1 => {
            let large = data.get(8..16).ok_or_else(|| format!("{name} box size is truncated"))?;
            let mut size = [0u8; 8];
            size.copy_from_slice(large);
            (u64::from_be_bytes(size), 16)
        }
        size => (u64::from(size), 8),
    };
    if size < header_len as u64 || size > data.len() as u64 {
        return Err(format!("{name} box declares {size} bytes, {} remain", data.len()));
    }
    Ok((box_type, &data[header_len..size as usize], size as usize))
}

fn find_box<'a>(data: &'a [u8], fourcc: &[u8; 4]) -> Result<Option<&'a [u8]>, String> {
    for item in boxes(data) {
        let (box_type, payload) = item?;
        if &box_type == fourcc {
            return Ok(Some(payload));
        }
    }
    Ok(None)
}

/// `objectTypeIndication` and DecoderSpecificInfo of an `esds` payload.
fn decoder_config(esds: &[u8]) -> Result<(u8, &[u8]), String> {
    let mut r = Reader {
        data: esds.get(4..).ok_or("truncated before its descriptor")?,
    };
    let mut es = r.descriptor(0x03, "ES_Descriptor")?;
    es.bytes(2, "ES_ID")?;
    let flags = es.bytes(1, "ES_Descriptor flags")?[0];
    if flags & 0x80 != 0 {
        es.bytes(2, "dependsOn_ES_ID")?;
    }
    if flags & 0x40 != 0 {
        let len = es.bytes(1, "URLlength")?[0];
        es.bytes(usize::from(len), "URLstring")?;
    }
    if flags & 0x20 != 0 {
        es.bytes(2, "OCR_ES_Id")?;
    }
    let mut config = es.descriptor(0x04, "DecoderConfigDescriptor")?;
    let object_type = config.bytes(1, "objectTypeIndication")?[0];
    config.bytes(12, "DecoderConfigDescriptor fields")?;
    let specific = config.descriptor(0x05, "DecoderSpecificInfo")?;
    Ok((object_type, specific.data))
}

/// Reads MPEG-4 descriptors (ISO/IEC 14496-1 §8.3.3: a tag, then a length in 7-bit groups).
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let out = self.data.get(..n).ok_or_else(|| format!("truncated at {what}"))?;
        self.data = &self.data[n..];
        Ok(out)
    }

    /// The next descriptor, which must have `tag`: a reader over its body.
    fn descriptor(&mut self, tag: u8, what: &str) -> Result<Reader<'a>, String> {
        let found = self.bytes(1, what)?[0];
        if found != tag {
            return Err(format!("expected {what} (tag {tag}), found tag {found}"));
        }
        let mut len = 0usize;
        for _ in 0..4 {
            let b = self.bytes(1, what)?[0];
            len = (len << 7) | usize::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
        Ok(Reader {
            data: self.bytes(len, what)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::mp4::table::TrackInfo;
    use crate::vod::test_support::esds;
    use crate::vod::timeline::TrackClock;

    fn track(codec: &[u8; 4], entry_fields: &[u8], children: &[u8]) -> PlanTrack {
        let mut entry = Vec::new();
        entry.extend_from_slice(&((8 + entry_fields.len() + children.len()) as u32).to_be_bytes());
        entry.extend_from_slice(codec);
        entry.extend_from_slice(entry_fields);
        entry.extend_from_slice(children);
        let mut stsd = Vec::new();
        stsd.extend_from_slice(&((16 + entry.len()) as u32).to_be_bytes());
        stsd.extend_from_slice(b"stsd");
        stsd.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        stsd.extend_from_slice(&entry);
        let info = TrackInfo {
            track_id: 7,
            handler: *b"soun",
            timescale: 1000,
            codec: *codec,
            width: 0,
            height: 0,
            language: 0,
            presentation_offset: 0,
            stsd: Bytes::from(stsd),
            hdlr: Bytes::new(),
            media_header: Bytes::new(),
        };
        PlanTrack {
            track: 0,
            track_id: 7,
            codec: *codec,
            stsd: info.stsd.clone(),
            clock: TrackClock::new(&info, &[]),
        }
    }

    fn boxed(fourcc: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((8 + payload.len()) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(fourcc);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn aac_from_esds() {
        let t = track(b"mp4a", &[0; 28], &boxed(b"esds", &esds(0x40, &[0x12, 0x10])));
        let config = aac_config(&t).unwrap();
        assert_eq!(
            (config.object_type, config.sampling_frequency, config.channel_config),
            (2, 44100, 2)
        );
        // QuickTime sound description version 1, esds inside wave.
        let mut fields = vec![0; 44];
        fields[9] = 1;
        let wave = boxed(b"wave", &boxed(b"esds", &esds(0x40, &[0x11, 0x88])));
        assert_eq!(
            aac_config(&track(b"mp4a", &fields, &wave)).unwrap().sampling_frequency,
            48000
        );
    }

    #[test]
    fn mp3_and_hevc_are_unsupported() {
        let mp3 = track(b"mp4a", &[0; 28], &boxed(b"esds", &esds(0x6b, &[])));
        assert!(matches!(
            aac_config(&mp3),
            Err(MuxError::VodUnsupportedCodec { track_id: 7, .. })
        ));
        let hevc = track(b"hvc1", &[0; 78], &[]);
        assert!(matches!(avc_config(&hevc), Err(MuxError::VodUnsupportedCodec { .. })));
    }

    #[test]
    fn broken_entries_are_errors() {
        let no_esds = track(b"mp4a", &[0; 28], &[]);
        assert!(matches!(aac_config(&no_esds), Err(MuxError::VodCodecConfig { .. })));
        let truncated = track(b"mp4a", &[0; 28], &boxed(b"esds", &esds(0x40, &[0x12, 0x10]))[..20]);
        assert!(matches!(aac_config(&truncated), Err(MuxError::VodCodecConfig { .. })));
        let no_avcc = track(b"avc1", &[0; 78], &boxed(b"pasp", &[0; 8]));
        assert!(matches!(avc_config(&no_avcc), Err(MuxError::VodCodecConfig { .. })));
        let record = [
            0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x02, 0x67, 0x64, 0x01, 0x00, 0x01, 0x68,
        ];
        let avc = track(b"avc1", &[0; 78], &boxed(b"avcC", &record));
        let config = avc_config(&avc).unwrap();
        assert_eq!((config.sps.len(), config.pps.len(), config.nalu_length_size), (1, 1, 4));
    }
}
