//! Enhanced RTMP headers as ffmpeg 9 sends them (bytes taken from its FLV output, which is
//! what its RTMP muxer sends) and the Multitrack and ModEx forms the spec allows.

use bytes::Bytes;

use super::{parse_audio_tag, parse_video_tag, MAX_TRACKS_PER_MESSAGE};
use crate::flv::tag::{AudioCodec, TagError, VideoCodec, VideoTag};
use crate::media::{Codec, MediaKind, Packet};

/// ffmpeg 9's avcC for a 160x90 baseline clip (a 24-byte SPS, a 4-byte PPS).
const AVCC: [u8; 39] = [
    0x01, 0x42, 0xc0, 0x0a, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x42, 0xc0, 0x0a, 0xda, 0x0a, 0x37, 0xe4, 0xc0, 0x44, 0x00,
    0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x48, 0x9a, 0x80, 0x01, 0x00, 0x04, 0x68, 0xce, 0x3c,
    0x80,
];

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn packets(kind: MediaKind, body: Vec<u8>) -> Vec<Packet> {
    Packet::from_flv_message(kind, 40, Bytes::from(body)).unwrap().collect()
}

/// ffmpeg 9 `-map 0:v -map 0:v`: track 1's sequence start is `Multitrack | OneTrack |
/// SequenceStart`, `avc1`, track id 1, the avcC. It becomes the legacy AVC sequence header
/// of track 1, rewritten in the message's own buffer.
#[test]
fn one_track_avc_sequence_start_becomes_a_legacy_header_of_its_track() {
    let body = cat(&[&[0x96, 0x00], b"avc1", &[1], &AVCC]);
    let buf = Bytes::from(body);
    let data_at = buf.as_ptr() as usize + 7;
    let p = Packet::from_flv_body(MediaKind::Video, 0, buf).unwrap();
    assert_eq!(p.track, 1);
    assert_eq!(p.codec, Codec::Video(VideoCodec::Avc));
    assert!(p.seq_header && !p.keyframe && !p.no_frame);
    assert_eq!(&p.payload[..5], &[0x17, 0, 0, 0, 0]);
    assert_eq!(&p.body()[..], &AVCC);
    assert_eq!(p.body().as_ptr() as usize, data_at, "rewritten in place, not copied");
}

/// Its frames: `Multitrack | OneTrack | CodedFramesX` (no composition time).
#[test]
fn one_track_coded_frames_x_become_legacy_frames() {
    let frame = [0, 0, 0, 2, 0x41, 0x9a];
    let p = &packets(MediaKind::Video, cat(&[&[0xa6, 0x03], b"avc1", &[1], &frame]))[0];
    assert_eq!((p.track, p.keyframe, p.seq_header, p.cts), (1, false, false, 0));
    assert_eq!(&p.payload[..], &cat(&[&[0x27, 1, 0, 0, 0], &frame]));
    assert_eq!(p.body_offset, 5);
}

#[test]
fn many_tracks_split_into_one_packet_per_track() {
    // HEVC CodedFrames for tracks 0 and 2: each track's data starts with its SI24 cts.
    let body = cat(&[
        &[0x96, 0x11],
        b"hvc1",
        &[0, 0, 0, 5, 0, 0, 40, 0xaa, 0xbb],
        &[2, 0, 0, 4, 0xff, 0xff, 0xfe, 0xcc],
    ]);
    let ps = packets(MediaKind::Video, body);
    assert_eq!(ps.len(), 2);
    assert_eq!((ps[0].track, ps[0].cts, ps[0].keyframe), (0, 40, true));
    assert_eq!(&ps[0].payload[..], &cat(&[&[0x91], b"hvc1", &[0, 0, 40, 0xaa, 0xbb]]));
    assert_eq!(&ps[0].body()[..], &[0xaa, 0xbb]);
    assert_eq!((ps[1].track, ps[1].cts), (2, -2));
    assert_eq!(&ps[1].body()[..], &[0xcc]);
    assert!(ps.iter().all(|p| p.codec == Codec::Video(VideoCodec::Hevc)));
}

#[test]
fn many_tracks_many_codecs_name_a_codec_per_track() {
    let hvcc_head = [1u8; 23];
    let mut hvcc = hvcc_head.to_vec();
    hvcc[22] = 0; // no arrays
    let body = cat(&[
        &[0x90 | 0x06, 0x20],
        b"avc1",
        &[0, 0, 0, AVCC.len() as u8],
        &AVCC,
        b"hvc1",
        &[1, 0, 0, hvcc.len() as u8],
        &hvcc,
    ]);
    let ps = packets(MediaKind::Video, body);
    assert_eq!(ps.len(), 2);
    assert_eq!(ps[0].codec, Codec::Video(VideoCodec::Avc));
    assert_eq!(&ps[0].body()[..], &AVCC);
    assert_eq!((ps[1].codec, ps[1].track), (Codec::Video(VideoCodec::Hevc), 1));
    assert!(ps.iter().all(|p| p.seq_header));
    assert_eq!(&ps[1].payload[..5], &cat(&[&[0x90], b"hvc1"]));
}

#[test]
fn mod_ex_prefixes_are_unwrapped() {
    // ModEx (size 3: a TimestampOffsetNano) then CodedFrames, then a 16-bit-sized ModEx.
    let body = cat(&[&[0x97, 2, 0, 1, 0x10, 0x01], b"hvc1", &[0, 0, 33, 0xab]]);
    let p = &packets(MediaKind::Video, body)[0];
    assert_eq!((p.track, p.cts, p.keyframe), (0, 33, true));
    assert_eq!(&p.payload[..], &cat(&[&[0x91], b"hvc1", &[0, 0, 33, 0xab]]));
    let mut wide = vec![0x97, 255, 0x01, 0x00];
    wide.extend_from_slice(&[0; 257]);
    wide.push(0x03);
    wide.extend_from_slice(b"av01");
    wide.push(0x12);
    let p = &packets(MediaKind::Video, wide)[0];
    assert_eq!(&p.payload[..], &cat(&[&[0x93], b"av01", &[0x12]]));
}

/// ffmpeg's HEVC, AV1 and VP9 publishes send `colorInfo` metadata as a command frame with
/// PacketType Metadata: not a picture.
#[test]
fn metadata_command_and_end_of_sequence_carry_no_frame() {
    let color = cat(&[&[0xd4], b"hvc1", &[0x02, 0x00, 0x09], b"colorInfo"]);
    let p = &packets(MediaKind::Video, color)[0];
    assert!(p.no_frame && !p.keyframe && !p.seq_header);
    assert_eq!(p.codec, Codec::Video(VideoCodec::Hevc));
    assert_eq!(parse_video_tag(&[0xd0, 0x01]), Ok(VideoTag::Command));
    let p = &packets(MediaKind::Video, vec![0xd0, 0x01])[0];
    assert!(p.no_frame && p.codec == Codec::None);
    let end = &packets(MediaKind::Video, vec![0x17, 2, 0, 0, 0])[0];
    assert!(end.no_frame && !end.keyframe);
    let end = &packets(MediaKind::Video, cat(&[&[0x92], b"av01"]))[0];
    assert!(end.no_frame);
}

/// ffmpeg 9's AV1 publish starts with an empty sequence start (its encoder has no `av1C`
/// yet) and sends the real one with the first frame.
#[test]
fn empty_av1_sequence_start_is_accepted() {
    let p = &packets(MediaKind::Video, cat(&[&[0x90], b"av01"]))[0];
    assert!(p.seq_header && p.body().is_empty());
}

#[test]
fn bad_configuration_records_are_refused() {
    let err = Packet::from_flv_body(
        MediaKind::Video,
        0,
        Bytes::from(cat(&[&[0x90], b"av01", &[0x01, 0, 0, 0]])),
    );
    assert!(matches!(err, Err(TagError::BadConfig(_))), "{err:?}");
    let err = Packet::from_flv_body(MediaKind::Video, 0, Bytes::from(cat(&[&[0x90], b"vp09", &[1, 0]])));
    assert!(matches!(err, Err(TagError::BadConfig(_))));
    let err = Packet::from_flv_body(MediaKind::Audio, 0, Bytes::from(cat(&[&[0x90], b"Opus", b"OpusHead"])));
    assert!(matches!(err, Err(TagError::BadConfig(_))));
    let err = Packet::from_flv_body(MediaKind::Video, 0, Bytes::from(cat(&[&[0x90], b"hvc1", &[1; 5]])));
    assert!(matches!(err, Err(TagError::BadConfig(_))));
}

#[test]
fn opus_as_ffmpeg_sends_it() {
    let head = cat(&[
        &[0x90],
        b"Opus",
        b"OpusHead",
        &[1, 1, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0],
    ]);
    let p = &packets(MediaKind::Audio, head)[0];
    assert!(p.seq_header);
    assert_eq!(p.codec, Codec::Audio(AudioCodec::Opus));
    assert_eq!(&p.body()[..8], b"OpusHead");
    // MultichannelConfig: channel order, count, flags. Not audio.
    let layout = &packets(MediaKind::Audio, cat(&[&[0x94], b"Opus", &[1, 1, 0, 0, 0, 4]]))[0];
    assert!(layout.no_frame && !layout.seq_header);
    let frame = &packets(MediaKind::Audio, cat(&[&[0x91], b"Opus", &[0xf8, 0x72]]))[0];
    assert!(!frame.no_frame && !frame.seq_header);
    assert_eq!(&frame.body()[..], &[0xf8, 0x72]);
}

#[test]
fn audio_multitrack_tracks_keep_their_ids() {
    let aac = &packets(MediaKind::Audio, cat(&[&[0x95, 0x01], b"mp4a", &[2, 0x21, 0x10]]))[0];
    assert_eq!((aac.track, aac.codec), (2, Codec::Audio(AudioCodec::Aac)));
    assert_eq!(&aac.payload[..], &[0xaf, 0x01, 0x21, 0x10]);
    let body = cat(&[&[0x95, 0x11], b"Opus", &[0, 0, 0, 1, 0xf8, 1, 0, 0, 1, 0xf9]]);
    let ps = packets(MediaKind::Audio, body);
    assert_eq!(ps.iter().map(|p| p.track).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(&ps[1].payload[..], &cat(&[&[0x91], b"Opus", &[0xf9]]));
}

#[test]
fn malformed_multitrack_messages_are_errors() {
    // Track 1 declares 9 bytes, 2 remain.
    let short = cat(&[&[0x96, 0x11], b"hvc1", &[1, 0, 0, 9, 0, 0]]);
    assert_eq!(
        parse_video_tag(&short),
        Err(TagError::TrackTruncated {
            kind: "video",
            track: 1,
            declared: 9,
            left: 2
        })
    );
    let nested = cat(&[&[0x96, 0x06], b"hvc1", &[1]]);
    assert_eq!(
        parse_video_tag(&nested),
        Err(TagError::NestedMultitrack { kind: "video" })
    );
    let unknown = cat(&[&[0x96, 0x31], b"hvc1", &[1]]);
    assert!(matches!(
        parse_video_tag(&unknown),
        Err(TagError::UnknownMultitrackType { value: 3, .. })
    ));
    let mut many = cat(&[&[0x96, 0x13], b"av01"]);
    for id in 0..=MAX_TRACKS_PER_MESSAGE {
        many.extend_from_slice(&[id as u8, 0, 0, 0]);
    }
    assert!(matches!(parse_video_tag(&many), Err(TagError::TooManyTracks { .. })));
    // A ModEx that claims more bytes than there are, and one that never ends.
    assert!(parse_video_tag(&[0x97, 9, 0]).is_err());
    assert!(parse_audio_tag(&[0x97, 0, 0, 0x07, 0, 0]).is_err());
    assert!(matches!(
        parse_video_tag(&cat(&[&[0x96, 0x00], b"\0avc", &[1]])),
        Err(TagError::UnknownVideoFourCc(_))
    ));
}

/// Every prefix of every form is an error or a packet, never a panic.
#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let forms = [
        cat(&[
            &[0x96, 0x11],
            b"hvc1",
            &[0, 0, 0, 5, 0, 0, 40, 0xaa, 0xbb],
            &[2, 0, 0, 1, 0xcc],
        ]),
        cat(&[&[0x96, 0x20], b"avc1", &[0, 0, 0, 3, 1, 2, 3]]),
        cat(&[&[0x97, 2, 0, 1, 0x10, 0x01], b"hvc1", &[0, 0, 33, 0xab]]),
        cat(&[&[0x95, 0x11], b"Opus", &[0, 0, 0, 1, 0xf8, 1, 0, 0, 1, 0xf9]]),
    ];
    for form in forms {
        for len in 0..form.len() {
            for kind in [MediaKind::Video, MediaKind::Audio] {
                if let Ok(ps) = Packet::from_flv_message(kind, 0, Bytes::copy_from_slice(&form[..len])) {
                    for p in ps {
                        let _ = (p.body(), p.flv_tag());
                    }
                }
            }
        }
    }
}
