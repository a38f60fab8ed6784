//! The master playlist of an fMP4 stream (RFC 8216 §4.3.4.2): one variant, its `CODECS`
//! (RFC 6381, from the init section's records, see [`super::codecs`]), `RESOLUTION` and a
//! `BANDWIDTH` that is the peak bit rate of the segments so far.

use std::fmt::Write as _;

/// What the master playlist says of the stream's one variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The media playlist's URI, relative to the master playlist.
    pub uri: String,
    pub codecs: String,
    /// Peak segment bit rate in bits per second.
    pub bandwidth: u64,
    /// Picture size; `None` for audio alone.
    pub resolution: Option<(u16, u16)>,
}

/// The text of a master playlist listing `variant`.
pub fn master_playlist(variant: &Variant) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let _ = write!(
        out,
        "#EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"{}\"",
        variant.bandwidth.max(1),
        variant.codecs
    );
    if let Some((w, h)) = variant.resolution {
        let _ = write!(out, ",RESOLUTION={w}x{h}");
    }
    let _ = writeln!(out, "\n{}", variant.uri);
    out
}

/// Bit rate of `bytes` played in `duration_ms`, in bits per second.
pub fn bit_rate(bytes: usize, duration_ms: u64) -> u64 {
    (bytes as u64 * 8 * 1000) / duration_ms.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_variant_with_codecs_and_resolution() {
        let text = master_playlist(&Variant {
            uri: "cam.media.m3u8".into(),
            codecs: "hvc1.1.6.L93.90,mp4a.40.2".into(),
            bandwidth: 2_500_000,
            resolution: Some((1920, 1080)),
        });
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2500000,CODECS=\"hvc1.1.6.L93.90,mp4a.40.2\",RESOLUTION=1920x1080\n\
             cam.media.m3u8\n"
        );
        let parsed = m3u8_rs::parse_master_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(parsed.variants[0].codecs.as_deref(), Some("hvc1.1.6.L93.90,mp4a.40.2"));
        assert_eq!(bit_rate(250_000, 1000), 2_000_000);
    }
}
