//! Parsing the header of an audio or video tag body: the legacy FLV forms (Adobe FLV spec
//! v10.1 Annex E) and the Enhanced RTMP ExHeader (veovera enhanced-rtmp v1 and v2): the
//! FourCC, ModEx prefixes (PacketType 7) and Multitrack messages (video PacketType 6, audio
//! AudioPacketType 5) with their OneTrack, ManyTracks and ManyTracksManyCodecs layouts.
//!
//! ```text
//! [isEx|FrameType|PacketType] ( [ModExSize] [ModExData…] [ModExType|PacketType] )*
//!   plain:      [FourCC] track data
//!   Multitrack: [AvMultitrackType|PacketType] [FourCC unless ManyCodecs]
//!               ( [FourCC if ManyCodecs] [trackId] [UI24 size unless OneTrack] track data )+
//! ```
//!
//! Only offsets are computed here; the track data stays in the message's buffer.

use super::tag::{AudioCodec, AudioHeader, AudioTag, TagError, VideoCodec, VideoHeader, VideoTag};

fn need_video(data: &[u8], need: usize) -> Result<(), TagError> {
    if data.len() < need {
        return Err(TagError::VideoTooShort { len: data.len(), need });
    }
    Ok(())
}

fn si24(b: &[u8]) -> i32 {
    let v = (i32::from(b[0]) << 16) | (i32::from(b[1]) << 8) | i32::from(b[2]);
    (v << 8) >> 8
}

/// Parses the header of a video tag body; for a Multitrack message, its first track.
pub fn parse_video_header(data: &[u8]) -> Result<VideoHeader, TagError> {
    match parse_video_tag(data)? {
        VideoTag::One(header) => Ok(header),
        VideoTag::Many(headers) => headers.into_iter().next().ok_or(TagError::VideoTooShort {
            len: data.len(),
            need: data.len() + 1,
        }),
        VideoTag::Command => Err(TagError::CommandFrame),
    }
}

/// Parses the header of a video tag body, every track of it.
pub fn parse_video_tag(data: &[u8]) -> Result<VideoTag, TagError> {
    need_video(data, 1)?;
    let b0 = data[0];
    let frame_type = (b0 >> 4) & 0x07;
    if b0 & 0x80 != 0 {
        return parse_video(data, frame_type, b0 & 0x0f);
    }
    let codec = match b0 & 0x0f {
        7 => VideoCodec::Avc,
        12 => VideoCodec::Hevc,
        id => return Err(TagError::UnknownVideoCodec(id)),
    };
    // AVC/HEVC legacy: frame type/codec, AVCPacketType, SI24 composition time.
    need_video(data, 5)?;
    let seq_header = data[1] == 0;
    let end_of_sequence = data[1] == 2;
    let no_frame = end_of_sequence || frame_type == 5;
    Ok(VideoTag::One(VideoHeader {
        codec,
        keyframe: frame_type == 1 && !no_frame,
        seq_header,
        end_of_sequence,
        no_frame: no_frame && !seq_header,
        cts: if data[1] == 1 { si24(&data[2..5]) } else { 0 },
        header_len: 5,
        body_end: data.len(),
        track: 0,
        frame_type,
        packet_type: None,
        wrapped: false,
    }))
}

/// The header of the track data at `data[pos..end]` of an Enhanced RTMP video message whose
/// (unwrapped) PacketType is `packet_type`.
fn ex_video_track(
    data: &[u8],
    codec: VideoCodec,
    frame_type: u8,
    packet_type: u8,
    pos: usize,
    end: usize,
) -> Result<VideoHeader, TagError> {
    let mut header = VideoHeader {
        codec,
        keyframe: frame_type == 1,
        seq_header: false,
        end_of_sequence: false,
        no_frame: false,
        cts: 0,
        header_len: pos,
        body_end: end,
        track: 0,
        frame_type,
        packet_type: Some(packet_type),
        wrapped: false,
    };
    match packet_type {
        0 | 5 => header.seq_header = true,
        1 => {
            if matches!(codec, VideoCodec::Avc | VideoCodec::Hevc) {
                if end < pos + 3 {
                    return Err(TagError::VideoTooShort {
                        len: data.len().min(end),
                        need: pos + 3,
                    });
                }
                header.cts = si24(&data[pos..pos + 3]);
                header.header_len = pos + 3;
            }
        }
        2 => header.end_of_sequence = true,
        3 => {}
        4 => {}
        other => return Err(TagError::UnknownVideoPacketType(other)),
    }
    header.no_frame = header.end_of_sequence || packet_type == 4 || frame_type == 5;
    if header.no_frame || header.seq_header {
        header.keyframe = false;
    }
    Ok(header)
}

/// Parses the header of an audio tag body; for a Multitrack message, its first track.
pub fn parse_audio_header(data: &[u8]) -> Result<AudioHeader, TagError> {
    match parse_audio_tag(data)? {
        AudioTag::One(header) => Ok(header),
        AudioTag::Many(headers) => headers.into_iter().next().ok_or(TagError::AudioTooShort {
            len: data.len(),
            need: data.len() + 1,
        }),
    }
}

/// Parses the header of an audio tag body, every track of it.
pub fn parse_audio_tag(data: &[u8]) -> Result<AudioTag, TagError> {
    let too_short = |need| TagError::AudioTooShort { len: data.len(), need };
    let b0 = *data.first().ok_or(too_short(1))?;
    let plain = |codec, seq_header, header_len| {
        AudioTag::One(AudioHeader {
            codec,
            seq_header,
            no_frame: false,
            header_len,
            body_end: data.len(),
            track: 0,
            packet_type: None,
            wrapped: false,
        })
    };
    match b0 >> 4 {
        10 => {
            if data.len() < 2 {
                return Err(too_short(2));
            }
            Ok(plain(AudioCodec::Aac, data[1] == 0, 2))
        }
        2 | 14 => Ok(plain(AudioCodec::Mp3, false, 1)),
        // Enhanced RTMP v2 audio: SoundFormat 9 = ExHeader, PacketType in the low nibble.
        9 => parse_audio(data, b0 & 0x0f),
        f @ (0 | 1 | 3 | 4 | 5 | 6 | 7 | 8 | 11) => Ok(plain(AudioCodec::Legacy(f), false, 1)),
        f => Err(TagError::UnknownAudioFormat(f)),
    }
}

/// The header of the track data at `data[pos..end]` of an Enhanced RTMP audio message whose
/// (unwrapped) AudioPacketType is `packet_type`.
fn ex_audio_track(codec: AudioCodec, packet_type: u8, pos: usize, end: usize) -> Result<AudioHeader, TagError> {
    match packet_type {
        0 | 1 | 2 | 4 => Ok(AudioHeader {
            codec,
            seq_header: packet_type == 0,
            no_frame: matches!(packet_type, 2 | 4),
            header_len: pos,
            body_end: end,
            track: 0,
            packet_type: Some(packet_type),
            wrapped: false,
        }),
        other => Err(TagError::UnknownAudioPacketType(other)),
    }
}

/// Packet types shared by audio and video ExHeaders.
const MOD_EX: u8 = 7;
const VIDEO_MULTITRACK: u8 = 6;
const AUDIO_MULTITRACK: u8 = 5;
/// Video PacketType Metadata: a command FrameType still carries a FourCC with it.
const VIDEO_METADATA: u8 = 4;
const VIDEO_COMMAND_FRAME: u8 = 5;

/// AvMultitrackType.
const ONE_TRACK: u8 = 0;
const MANY_TRACKS_MANY_CODECS: u8 = 2;

/// A message carries at most one track per track id.
pub const MAX_TRACKS_PER_MESSAGE: usize = 256;

/// Bounds-checked reads over one tag body; a short read is the tag's "too short" error.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    kind: &'static str,
}

impl<'a> Reader<'a> {
    fn too_short(&self, need: usize) -> TagError {
        if self.kind == "video" {
            TagError::VideoTooShort {
                len: self.data.len(),
                need,
            }
        } else {
            TagError::AudioTooShort {
                len: self.data.len(),
                need,
            }
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TagError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.too_short(usize::MAX))?;
        let bytes = self.data.get(self.pos..end).ok_or_else(|| self.too_short(end))?;
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, TagError> {
        Ok(self.take(1)?[0])
    }

    /// Skips ModEx prefixes while the packet type is ModEx; returns the packet type after
    /// them. Every prefix consumes at least two bytes, so the loop ends with the data.
    fn skip_mod_ex(&mut self, mut packet_type: u8) -> Result<(u8, bool), TagError> {
        let mut wrapped = false;
        while packet_type == MOD_EX {
            wrapped = true;
            let mut size = usize::from(self.u8()?) + 1;
            if size == 256 {
                let wide = self.take(2)?;
                size = usize::from(u16::from_be_bytes([wide[0], wide[1]])) + 1;
            }
            // ModExType 0 (TimestampOffsetNano) adjusts presentation by under a millisecond;
            // the stream's millisecond clock has no use for it.
            self.take(size)?;
            packet_type = self.u8()? & 0x0f;
        }
        Ok((packet_type, wrapped))
    }

    /// The track id and the end of its data, for a Multitrack message of `multitrack_type`.
    fn track(&mut self, multitrack_type: u8) -> Result<(u8, usize), TagError> {
        let track = self.u8()?;
        if multitrack_type == ONE_TRACK {
            return Ok((track, self.data.len()));
        }
        let size = self.take(3)?;
        let declared = (usize::from(size[0]) << 16) | (usize::from(size[1]) << 8) | usize::from(size[2]);
        let left = self.data.len() - self.pos;
        if declared > left {
            return Err(TagError::TrackTruncated {
                kind: self.kind,
                track,
                declared,
                left,
            });
        }
        Ok((track, self.pos + declared))
    }
}

/// A Multitrack message's layout: its AvMultitrackType and the packet type of its tracks.
fn multitrack_layout(r: &mut Reader<'_>, multitrack_packet_type: u8) -> Result<(u8, u8), TagError> {
    let b = r.u8()?;
    let (multitrack_type, packet_type) = (b >> 4, b & 0x0f);
    if multitrack_type > MANY_TRACKS_MANY_CODECS {
        return Err(TagError::UnknownMultitrackType {
            kind: r.kind,
            value: multitrack_type,
        });
    }
    if packet_type == multitrack_packet_type || packet_type == MOD_EX {
        return Err(TagError::NestedMultitrack { kind: r.kind });
    }
    Ok((multitrack_type, packet_type))
}

/// Walks the tracks of a Multitrack message after its layout byte (and shared FourCC);
/// `track` parses one track's header from `(reader, fourcc, id, end)`.
fn walk_tracks<H>(
    r: &mut Reader<'_>,
    multitrack_type: u8,
    shared_fourcc: Option<[u8; 4]>,
    mut track: impl FnMut(&[u8; 4], usize, usize) -> Result<H, TagError>,
    set_id: impl Fn(&mut H, u8),
) -> Result<Vec<H>, TagError> {
    let mut headers = Vec::new();
    loop {
        if headers.len() == MAX_TRACKS_PER_MESSAGE {
            return Err(TagError::TooManyTracks {
                kind: r.kind,
                max: MAX_TRACKS_PER_MESSAGE,
            });
        }
        let fourcc = match shared_fourcc {
            Some(fourcc) => fourcc,
            None => fourcc_of(r.take(4)?),
        };
        let (id, end) = r.track(multitrack_type)?;
        let mut header = track(&fourcc, r.pos, end)?;
        set_id(&mut header, id);
        headers.push(header);
        r.pos = end;
        if multitrack_type == ONE_TRACK || r.pos >= r.data.len() {
            return Ok(headers);
        }
    }
}

fn fourcc_of(bytes: &[u8]) -> [u8; 4] {
    let mut fourcc = [0; 4];
    fourcc.copy_from_slice(bytes);
    fourcc
}

/// An ExHeader video tag: `IsExHeader | FrameType(3) | PacketType(4)` was `data[0]`.
fn parse_video(data: &[u8], frame_type: u8, packet_type: u8) -> Result<VideoTag, TagError> {
    let mut r = Reader {
        data,
        pos: 1,
        kind: "video",
    };
    let (packet_type, wrapped) = r.skip_mod_ex(packet_type)?;
    if frame_type == VIDEO_COMMAND_FRAME && packet_type != VIDEO_METADATA {
        r.u8()?;
        return Ok(VideoTag::Command);
    }
    if packet_type != VIDEO_MULTITRACK {
        let codec = VideoCodec::from_fourcc(r.take(4)?)?;
        let mut header = ex_video_track(data, codec, frame_type, packet_type, r.pos, data.len())?;
        header.wrapped = wrapped;
        return Ok(VideoTag::One(header));
    }
    let (multitrack_type, packet_type) = multitrack_layout(&mut r, VIDEO_MULTITRACK)?;
    let shared = (multitrack_type != MANY_TRACKS_MANY_CODECS)
        .then(|| r.take(4).map(fourcc_of))
        .transpose()?;
    let mut headers = walk_tracks(
        &mut r,
        multitrack_type,
        shared,
        |fourcc, pos, end| {
            let codec = VideoCodec::from_fourcc(fourcc)?;
            ex_video_track(data, codec, frame_type, packet_type, pos, end)
        },
        |h: &mut VideoHeader, id| {
            h.track = id;
            h.wrapped = true;
        },
    )?;
    Ok(if multitrack_type == ONE_TRACK && headers.len() == 1 {
        VideoTag::One(headers.remove(0))
    } else {
        VideoTag::Many(headers)
    })
}

/// An ExHeader audio tag: SoundFormat 9 with `packet_type` in the low nibble of `data[0]`.
fn parse_audio(data: &[u8], packet_type: u8) -> Result<AudioTag, TagError> {
    let mut r = Reader {
        data,
        pos: 1,
        kind: "audio",
    };
    let (packet_type, wrapped) = r.skip_mod_ex(packet_type)?;
    if packet_type != AUDIO_MULTITRACK {
        let codec = AudioCodec::from_fourcc(r.take(4)?)?;
        let mut header = ex_audio_track(codec, packet_type, r.pos, data.len())?;
        header.wrapped = wrapped;
        return Ok(AudioTag::One(header));
    }
    let (multitrack_type, packet_type) = multitrack_layout(&mut r, AUDIO_MULTITRACK)?;
    let shared = (multitrack_type != MANY_TRACKS_MANY_CODECS)
        .then(|| r.take(4).map(fourcc_of))
        .transpose()?;
    let mut headers = walk_tracks(
        &mut r,
        multitrack_type,
        shared,
        |fourcc, pos, end| ex_audio_track(AudioCodec::from_fourcc(fourcc)?, packet_type, pos, end),
        |h: &mut AudioHeader, id| {
            h.track = id;
            h.wrapped = true;
        },
    )?;
    Ok(if multitrack_type == ONE_TRACK && headers.len() == 1 {
        AudioTag::One(headers.remove(0))
    } else {
        AudioTag::Many(headers)
    })
}

#[cfg(test)]
#[path = "header_tests.rs"]
mod tests;
