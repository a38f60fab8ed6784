//! `CODECS` attribute values for a master playlist (RFC 6381 §3; RFC 8216 §4.3.4.2), made
//! from the same configuration records the sample entries carry:
//!
//! - H.264: `avc1.PPCCLL`, profile, constraint flags and level of the `avcC` (ISO/IEC
//!   14496-15 Annex A).
//! - H.265: `hvc1.[A-C]P.C.TL.B0…`, ISO/IEC 14496-15 Annex E: profile space and idc, the
//!   compatibility flags bit-reversed in hex, tier and level, then the constraint bytes with
//!   trailing zero bytes left out.
//! - AV1: `av01.P.LLT.DD` (AV1 ISOBMFF binding, codecs parameter string), from the `av1C`.
//! - VP9: `vp09.PP.LL.DD.CC.cp.tc.mc.FF` (VP codec ISOBMFF binding), from the `vpcC`.
//! - AAC: `mp4a.40.N`, N the audio object type.
//! - Opus: `Opus` (Opus in ISOBMFF §4.4).
//!
//! A codec added to the sample entries adds one arm here.

use estuary_protocol::codec::{Av1Config, HevcDecoderConfig, Vp9Config};
use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};

use crate::mp4::{AudioTrack, VideoTrack};

/// The `CODECS` value for these tracks, video first, comma-separated.
pub fn codecs_attribute(video: Option<&VideoTrack>, audio: Option<&AudioTrack>) -> String {
    let mut out = Vec::new();
    if let Some(video) = video {
        out.push(video_codec_string(video));
    }
    if let Some(audio) = audio {
        out.push(match audio.codec {
            AudioCodec::Opus => "Opus".to_owned(),
            _ => format!("mp4a.40.{}", aac_object_type(audio)),
        });
    }
    out.join(",")
}

/// The RFC 6381 string of a video track.
pub fn video_codec_string(video: &VideoTrack) -> String {
    match video.codec {
        VideoCodec::Hevc => match HevcDecoderConfig::parse(&video.record) {
            Ok(config) => hevc_codec_string(&config),
            // The track was made from this record, so it parsed once; a generic Main profile
            // string is what players assume anyway.
            Err(_) => "hvc1.1.6.L93.B0".to_owned(),
        },
        // As for HEVC, the track was made from its record; the fallbacks are the common
        // Main profile, 8-bit strings.
        VideoCodec::Av1 => {
            Av1Config::parse(&video.record).map_or_else(|_| "av01.0.08M.08".to_owned(), |c| c.codecs_string())
        }
        VideoCodec::Vp9 => {
            Vp9Config::parse(&video.record).map_or_else(|_| "vp09.00.10.08".to_owned(), |c| c.codecs_string())
        }
        VideoCodec::Avc => {
            let r = &video.record;
            match (r.get(1), r.get(2), r.get(3)) {
                (Some(p), Some(c), Some(l)) => format!("avc1.{p:02x}{c:02x}{l:02x}"),
                _ => "avc1.42e01e".to_owned(),
            }
        }
    }
}

fn hevc_codec_string(c: &HevcDecoderConfig) -> String {
    let space = match c.general_profile_space {
        1 => "A",
        2 => "B",
        3 => "C",
        _ => "",
    };
    let tier = if c.general_tier_flag { 'H' } else { 'L' };
    let mut s = format!(
        "hvc1.{space}{}.{:X}.{tier}{}",
        c.general_profile_idc,
        c.general_profile_compatibility_flags.reverse_bits(),
        c.general_level_idc
    );
    let flags = c.general_constraint_indicator_flags.to_be_bytes();
    // The 48 bits sit in the low six bytes of the u64.
    let bytes = &flags[2..];
    let used = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    for b in &bytes[..used] {
        s.push_str(&format!(".{b:X}"));
    }
    s
}

/// The audio object type as the `AudioSpecificConfig`'s first five bits give it (2 = AAC LC,
/// 5 = HE-AAC), which is what players match `mp4a.40.N` against.
fn aac_object_type(audio: &AudioTrack) -> u8 {
    audio.config.first().map_or(2, |b| b >> 3).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::test_support::{FFMPEG_AV1C, FFMPEG_OPUS_HEAD, FFMPEG_VPCC, VP9_KEYFRAME};

    #[test]
    fn avc_and_aac_strings_come_from_their_records() {
        let video = VideoTrack::from_sequence_header(
            VideoCodec::Avc,
            bytes::Bytes::from_static(crate::mp4::test_support::OBS_AVC_RECORD),
        )
        .unwrap();
        let audio = AudioTrack::from_sequence_header(bytes::Bytes::from_static(&[0x12, 0x10])).unwrap();
        assert_eq!(codecs_attribute(Some(&video), Some(&audio)), "avc1.64001f,mp4a.40.2");
        assert_eq!(codecs_attribute(None, Some(&audio)), "mp4a.40.2");
    }

    #[test]
    fn av1_vp9_and_opus_strings_come_from_their_records() {
        let av1 = VideoTrack::from_sequence_header(VideoCodec::Av1, bytes::Bytes::from_static(FFMPEG_AV1C)).unwrap();
        let vp9 = VideoTrack::vp9(FFMPEG_VPCC, VP9_KEYFRAME).unwrap().unwrap();
        let opus = AudioTrack::opus(FFMPEG_OPUS_HEAD).unwrap();
        assert_eq!(codecs_attribute(Some(&av1), Some(&opus)), "av01.0.00M.08,Opus");
        assert_eq!(
            codecs_attribute(Some(&vp9), Some(&opus)),
            "vp09.00.10.08.01.02.02.02.00,Opus"
        );
        assert_eq!((vp9.width, vp9.height, av1.width, av1.height), (160, 90, 160, 90));
    }

    #[test]
    fn hevc_main_string_is_the_one_apple_lists() {
        let config = HevcDecoderConfig {
            version: 1,
            general_profile_space: 0,
            general_tier_flag: false,
            general_profile_idc: 1,
            // Main, compatible with Main and Main 10: bits 1 and 2 from the left.
            general_profile_compatibility_flags: 0x6000_0000,
            general_constraint_indicator_flags: 0x9000_0000_0000,
            general_level_idc: 93,
            chroma_format_idc: 1,
            bit_depth_luma: 8,
            bit_depth_chroma: 8,
            nalu_length_size: 4,
            arrays: Vec::new(),
        };
        assert_eq!(hevc_codec_string(&config), "hvc1.1.6.L93.90");
    }
}
