//! `onMetaData` handling: which tracks a stream has, and making that explicit for players.
//!
//! flv.js and mpegts.js wait for a track the FLV header or metadata announces; an
//! audio-only or video-only stream stalls unless both say which tracks exist (flv.js#133,
//! srs#939). The hub reads `audiocodecid`/`videocodecid` (or `hasAudio`/`hasVideo`) from the
//! publisher's metadata and writes `hasAudio`/`hasVideo` into what viewers receive.

use bytes::Bytes;
use rml_rtmp::rml_amf0::{self, Amf0Value};

/// Tracks a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracks {
    pub audio: bool,
    pub video: bool,
}

/// Reads the tracks from an `onMetaData, {…}` payload and returns the payload with
/// `hasAudio`/`hasVideo` set. `None` if the payload is not metadata that names its codecs.
pub fn annotate(payload: &[u8]) -> Option<(Tracks, Bytes)> {
    let mut values = rml_amf0::deserialize(&mut &payload[..]).ok()?;
    let Some(Amf0Value::Object(props)) = values.get_mut(1) else {
        return None;
    };
    let flag = |has: &str, codec: &str| match props.get(has) {
        Some(Amf0Value::Boolean(b)) => Some(*b),
        _ => props
            .get(codec)
            .map(|v| !matches!(v, Amf0Value::Null | Amf0Value::Undefined)),
    };
    let (audio, video) = (flag("hasAudio", "audiocodecid"), flag("hasVideo", "videocodecid"));
    if audio.is_none() && video.is_none() {
        return None;
    }
    let tracks = Tracks {
        audio: audio.unwrap_or(false),
        video: video.unwrap_or(false),
    };
    props.insert("hasAudio".into(), Amf0Value::Boolean(tracks.audio));
    props.insert("hasVideo".into(), Amf0Value::Boolean(tracks.video));
    let bytes = rml_amf0::serialize(&values).ok()?;
    Some((tracks, Bytes::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(props: &[(&str, Amf0Value)]) -> Vec<u8> {
        let obj = props.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        rml_amf0::serialize(&vec![
            Amf0Value::Utf8String("onMetaData".into()),
            Amf0Value::Object(obj),
        ])
        .unwrap()
    }

    #[test]
    fn video_only_metadata_is_annotated() {
        let (tracks, bytes) = annotate(&meta(&[("videocodecid", Amf0Value::Number(7.0))])).unwrap();
        assert_eq!(
            tracks,
            Tracks {
                audio: false,
                video: true
            }
        );
        let values = rml_amf0::deserialize(&mut &bytes[..]).unwrap();
        let Amf0Value::Object(p) = &values[1] else { panic!() };
        assert_eq!(p.get("hasAudio"), Some(&Amf0Value::Boolean(false)));
        assert_eq!(p.get("hasVideo"), Some(&Amf0Value::Boolean(true)));
    }

    #[test]
    fn metadata_without_codecs_says_nothing() {
        assert!(annotate(&meta(&[("width", Amf0Value::Number(640.0))])).is_none());
        assert!(annotate(b"junk").is_none());
    }
}
