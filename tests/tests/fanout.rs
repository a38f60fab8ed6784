//! Fan-out: many concurrent viewers of one stream all receive the same frames.

use std::collections::HashMap;
use std::time::Duration;

use estuary_tests::{publish_and_wait_live, Clip, Server, Tag, TestCtx, Viewer, ViewerState, LIMIT};

/// Viewers per protocol.
const PER_PROTOCOL: usize = 25;
/// Media tags compared after the common keyframe (~4 s of audio and video).
const COMPARED: usize = 300;

/// The media tags of `st` from its keyframe at `ts` on.
fn from_keyframe(st: &ViewerState, ts: u32) -> Option<Vec<&Tag>> {
    let media: Vec<&Tag> = st.media().filter(|t| !t.is_seq_header()).collect();
    let start = media.iter().position(|t| t.is_coded_keyframe() && t.timestamp == ts)?;
    Some(media[start..].to_vec())
}

/// 25 RTMP and 25 HTTP-FLV viewers of one ffmpeg publish: each starts properly, all get the
/// same sequence headers, and from a keyframe they all have, the same media tags (kind,
/// timestamp, payload) in the same order.
#[test]
fn fifty_viewers_receive_the_same_frames() {
    let ctx = TestCtx::new("fifty_viewers_receive_the_same_frames");
    // 25 viewers of each protocol connect at once from one address: past the default
    // per-address rate (a burst of 20 new connections).
    let server = Server::start_with_config(&ctx, "[limits]\nmax_new_connections_per_ip_per_sec = 100\n");
    let (_publisher, _first) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "fan");

    let mut viewers = Vec::new();
    for _ in 0..PER_PROTOCOL {
        viewers.push(Viewer::rtmp(&server.rtmp_url("live", "fan")));
        viewers.push(Viewer::http_flv(&server.flv_url("live", "fan")));
    }
    // Everyone has a keyframe: the common anchor is the latest of their first keyframes.
    for v in &viewers {
        v.wait_keyframe(LIMIT).unwrap_or_else(|e| panic!("{e}"));
    }
    let anchor = viewers
        .iter()
        .map(|v| {
            v.with(|s| s.first_coded_video().map(|t| t.timestamp))
                .expect("keyframe")
        })
        .max()
        .expect("viewers");
    for v in &viewers {
        v.wait_for(Duration::from_secs(60), |s| {
            from_keyframe(s, anchor).filter(|m| m.len() >= COMPARED).map(|_| ())
        })
        .unwrap_or_else(|e| panic!("no {COMPARED} tags from the keyframe at {anchor} ms: {e}"));
    }

    let states: Vec<ViewerState> = viewers.iter().map(|v| v.snapshot()).collect();
    let reference = &states[0];
    let ref_tags: Vec<u64> = from_keyframe(reference, anchor).expect("checked")[..COMPARED]
        .iter()
        .map(|t| t.digest())
        .collect();
    let seq = |st: &ViewerState| -> HashMap<String, bytes::Bytes> {
        st.tags
            .iter()
            .filter(|t| t.is_seq_header())
            .map(|t| (format!("{:?}", t.kind), t.data.clone()))
            .collect()
    };
    let ref_seq = seq(reference);
    assert_eq!(ref_seq.len(), 2, "audio and video sequence headers");
    for (v, st) in viewers.iter().zip(&states) {
        if let Err(e) = st.check_startup(true, true) {
            panic!("{}: {e}", v.label);
        }
        assert_eq!(seq(st), ref_seq, "{}: different sequence headers", v.label);
        let tags: Vec<u64> = from_keyframe(st, anchor).expect("checked")[..COMPARED]
            .iter()
            .map(|t| t.digest())
            .collect();
        if let Some(i) = (0..COMPARED).find(|&i| tags[i] != ref_tags[i]) {
            let mine = from_keyframe(st, anchor).expect("checked");
            let theirs = from_keyframe(reference, anchor).expect("checked");
            panic!(
                "{} differs from {} at tag {i} after the keyframe at {anchor} ms: {:?}@{} ({} B) \
                 vs {:?}@{} ({} B)",
                v.label,
                viewers[0].label,
                mine[i].kind,
                mine[i].timestamp,
                mine[i].data.len(),
                theirs[i].kind,
                theirs[i].timestamp,
                theirs[i].data.len()
            );
        }
    }
}
