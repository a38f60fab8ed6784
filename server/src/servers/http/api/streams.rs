//! `GET /api/v1/streams[/{id}]`: every path a source has started on (a key only viewers
//! asked for is not a stream), with its viewers by protocol, bitrates and the
//! codec details a dashboard shows (H.264 profile/level/size/fps from the SPS, AAC details).

use std::sync::Arc;

use estuary_protocol::codec::{AudioSpecificConfig, Av1Config, AvcDecoderConfig, HevcDecoderConfig};
use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};
use estuary_protocol::{Codec, MediaKind, Packet};
use serde_json::{json, Value};

use super::vhosts::default_vhost_id;
use crate::clients::{per_stream, StreamUsage};
use crate::context::Context;
use crate::path::Path;

pub fn streams(ctx: &Context) -> Vec<Value> {
    let all = ctx.paths.listed();
    let usage = per_stream(&ctx.clients.list());
    all.iter()
        .map(|p| stream_json(ctx, p, usage.get(&p.key).cloned().unwrap_or_default()))
        .collect()
}

/// `{id}` is the numeric id from the list, or `app/stream`.
pub fn find_stream(ctx: &Context, id: &str) -> Option<Value> {
    let all = ctx.paths.listed();
    let path = match id.parse::<u64>() {
        Ok(n) => all.into_iter().find(|p| p.id == n)?,
        Err(_) => {
            let (app, name) = id.rsplit_once('/')?;
            all.into_iter().find(|p| p.key.app == app && p.key.name == name)?
        }
    };
    let usage = per_stream(&ctx.clients.list()).remove(&path.key).unwrap_or_default();
    Some(stream_json(ctx, &path, usage))
}

fn stream_json(ctx: &Context, path: &Path, u: StreamUsage) -> Value {
    let key = &path.key;
    let s = path.stream();
    let id = path.id;
    let publisher = u.publisher.as_ref();
    let (tc_url, live_ms) = publisher.map_or((String::new(), 0), |p| {
        (p.introduction().tc_url, p.role().since_unix_ms)
    });
    let headers = s.headers();
    // SRS leaves `cid` out when no one publishes.
    let mut publish = json!({ "active": s.is_live() });
    if let Some(p) = publisher {
        publish["cid"] = json!(p.id.to_string());
    }
    json!({
        "id": id.to_string(),
        "name": key.name,
        // The vhost's id, as SRS gives it: its console finds the vhost by it.
        "vhost": default_vhost_id(),
        "app": key.app,
        "tcUrl": tc_url,
        "url": format!("/{}/{}", key.app, key.name),
        "live_ms": live_ms,
        "clients": u.viewers() + usize::from(publisher.is_some()),
        "viewers": { "total": u.viewers(), "rtmp": u.rtmp, "flv": u.flv, "hls": u.hls },
        "frames": s.stats.video_frames.load(std::sync::atomic::Ordering::Relaxed),
        "send_bytes": u.send_bytes,
        "recv_bytes": s.stats.bytes_in.load(std::sync::atomic::Ordering::Relaxed).max(u.recv_bytes),
        "kbps": { "recv_30s": u.recv_kbps, "send_30s": u.send_kbps },
        "publish": publish,
        "video": video_json(&headers),
        "audio": audio_json(&headers),
        "tracks": tracks_json(s),
        "forwards": super::forwards::of_stream(ctx, key),
    })
}

/// How many video and audio tracks the publisher sends, and its Enhanced RTMP Multitrack
/// tracks ≥ 1 (kept apart from track 0, which is what viewers get).
fn tracks_json(s: &crate::stream::Stream) -> Value {
    let (video, audio) = s.track_counts();
    let extra: Vec<Value> = s
        .extra_tracks()
        .iter()
        .map(|t| {
            json!({
                "type": if t.kind == MediaKind::Audio { "audio" } else { "video" },
                "id": t.id,
                "codec": codec_name(t.codec),
                "packets": t.packets,
                "frames": t.frames,
                "recv_bytes": t.bytes,
            })
        })
        .collect();
    json!({ "video": video, "audio": audio, "extra": extra })
}

/// The SRS-style codec name of a packet's codec.
fn codec_name(codec: Codec) -> Option<&'static str> {
    Some(match codec {
        Codec::Video(VideoCodec::Avc) => "H264",
        Codec::Video(VideoCodec::Hevc) => "H265",
        Codec::Video(VideoCodec::Av1) => "AV1",
        Codec::Video(VideoCodec::Vp9) => "VP9",
        Codec::Audio(AudioCodec::Aac) => "AAC",
        Codec::Audio(AudioCodec::Opus) => "Opus",
        Codec::Audio(AudioCodec::Mp3) => "MP3",
        Codec::Audio(AudioCodec::Legacy(_)) | Codec::None => return None,
    })
}

fn header_of(headers: &[Arc<Packet>], kind: MediaKind) -> Option<&Arc<Packet>> {
    headers.iter().find(|p| p.kind == kind && p.seq_header)
}

/// Codec, profile, level, size and frame rate from the AVC decoder configuration (its SPS);
/// the frame rate falls back to the metadata's `framerate` when the SPS has no timing.
fn video_json(headers: &[Arc<Packet>]) -> Value {
    let Some(h) = header_of(headers, MediaKind::Video) else {
        return Value::Null;
    };
    let Codec::Video(codec) = h.codec else {
        return Value::Null;
    };
    let name = match codec {
        VideoCodec::Avc => "H264",
        VideoCodec::Hevc => "H265",
        VideoCodec::Av1 => "AV1",
        VideoCodec::Vp9 => "VP9",
    };
    // SRS's types when the SPS does not tell: "Other" and 0 (`SrsStatisticStream::dumps`).
    let mut v = json!({ "codec": name, "profile": "Other", "level": "Other", "width": 0, "height": 0, "fps": null });
    if codec == VideoCodec::Avc {
        if let Ok(sps) = AvcDecoderConfig::parse(&h.body()).and_then(|c| c.sps_info()) {
            v["profile"] = json!(sps.profile_name());
            v["level"] = json!(sps.level_name());
            v["width"] = json!(sps.width);
            v["height"] = json!(sps.height);
            v["fps"] = json!(sps.frame_rate);
        }
    }
    // The Enhanced RTMP codecs' sizes (issue 16): HEVC's SPS, AV1's sequence header.
    let size = match codec {
        VideoCodec::Hevc => HevcDecoderConfig::parse(&h.body())
            .and_then(|c| c.sps_info())
            .ok()
            .map(|sps| (sps.width, sps.height)),
        VideoCodec::Av1 => Av1Config::parse(&h.body()).ok().and_then(|c| c.max_frame_size),
        _ => None,
    };
    if let Some((width, height)) = size {
        v["width"] = json!(width);
        v["height"] = json!(height);
    }
    if v["fps"].is_null() {
        if let Some(fps) = metadata_number(headers, &["framerate", "fps"]) {
            v["fps"] = json!(fps);
        }
    }
    v
}

fn audio_json(headers: &[Arc<Packet>]) -> Value {
    let Some(h) = header_of(headers, MediaKind::Audio) else {
        return Value::Null;
    };
    let Codec::Audio(codec) = h.codec else {
        return Value::Null;
    };
    match codec {
        AudioCodec::Aac => match AudioSpecificConfig::parse(&h.body()) {
            Ok(asc) => json!({
                "codec": "AAC",
                "sample_rate": asc.sampling_frequency,
                "channel": asc.channel_config,
                "profile": match (asc.object_type, asc.sbr, asc.ps) {
                    (_, _, true) | (29, _, _) => "HE-AACv2",
                    (_, true, _) | (5, _, _) => "HE-AAC",
                    (1, _, _) => "Main",
                    (2, _, _) => "LC",
                    _ => "Other",
                },
            }),
            Err(_) => unknown_audio("AAC"),
        },
        AudioCodec::Opus => {
            let mut opus = unknown_audio("Opus");
            opus["sample_rate"] = json!(48000);
            opus
        }
        AudioCodec::Mp3 => unknown_audio("MP3"),
        AudioCodec::Legacy(id) => unknown_audio(&format!("flv-{id}")),
    }
}

/// An audio codec whose details are not read: SRS's types, 0 and "Other".
fn unknown_audio(codec: &str) -> Value {
    json!({ "codec": codec, "sample_rate": 0, "channel": 0, "profile": "Other" })
}

/// The first of `names` that the `onMetaData` object has as a number.
fn metadata_number(headers: &[Arc<Packet>], names: &[&str]) -> Option<f64> {
    use rml_rtmp::rml_amf0::{self, Amf0Value};
    let meta = headers.iter().find(|p| p.kind == MediaKind::Script)?;
    let values = rml_amf0::deserialize(&mut &meta.payload[..]).ok()?;
    let props = values.iter().find_map(|v| match v {
        Amf0Value::Object(p) => Some(p),
        _ => None,
    })?;
    names.iter().find_map(|n| match props.get(*n) {
        Some(Amf0Value::Number(x)) if *x > 0.0 => Some(*x),
        _ => None,
    })
}
