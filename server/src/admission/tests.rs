//! The admission's limits: streams with a source, viewers per stream and in total, checked
//! without a hook; and keys only viewers asked for stay unlisted.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Admission, Refusal, Request};
use crate::config::{Config, LimitsConfig};
use crate::hooks::{ClientInfo, HookSubject, Hooks, HooksConfig, ServerIdentity, StreamInfo};
use crate::path::registry::Paths;
use crate::stream::StreamKey;

fn admission(limits: LimitsConfig) -> (Admission, Paths) {
    let config = Arc::new(Config {
        limits,
        ..Config::default()
    });
    let hooks = Hooks::new(HooksConfig::default(), HashMap::new(), ServerIdentity::new("test")).unwrap();
    let paths = Paths::new(
        config,
        hooks.clone(),
        Vec::new(),
        CancellationToken::new(),
        TaskTracker::new(),
        {
            let next = std::sync::atomic::AtomicU64::new(1);
            Arc::new(move || next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
        },
    );
    (Admission::new(paths.clone(), hooks, Arc::default(), None), paths)
}

fn request(name: &str, client: u64) -> Request {
    let key = StreamKey::new("live", name);
    Request {
        subject: HookSubject {
            client: ClientInfo::new(client.to_string(), "10.0.0.1", "live"),
            stream: StreamInfo {
                stream: name.to_string(),
                param: String::new(),
                stream_id: key.to_string(),
            },
        },
        key,
        protocol: "rtmp",
        peer: [10, 0, 0, 1].into(),
        credentials: String::new(),
        http: None,
    }
}

#[tokio::test]
async fn a_publish_past_max_streams_is_refused_until_a_stream_ends() {
    let (admission, paths) = admission(LimitsConfig {
        max_streams: 2,
        ..LimitsConfig::default()
    });
    let kick = CancellationToken::new;
    let a = admission.publish(request("a", 1), 1, kick()).await.unwrap();
    let _b = admission.publish(request("b", 2), 2, kick()).await.unwrap();
    assert_eq!(paths.sources(), 2);
    let refused = admission.publish(request("c", 3), 3, kick()).await.err();
    assert_eq!(refused, Some(Refusal::MaxStreams(2)));
    assert_eq!(refused.map(|r| r.reason()), Some("max_streams"));
    assert!(paths.get(&StreamKey::new("live", "c")).is_none_or(|p| !p.had_source()));
    drop(a);
    assert_eq!(paths.sources(), 1);
    admission.publish(request("c", 3), 3, kick()).await.expect("room again");
}

#[tokio::test]
async fn a_viewer_past_the_viewer_limits_is_refused() {
    let (admission, paths) = admission(LimitsConfig {
        max_viewers_per_stream: 2,
        max_viewers: 3,
        ..LimitsConfig::default()
    });
    let a1 = admission.play(request("a", 1)).await.unwrap();
    let _a2 = admission.play(request("a", 2)).await.unwrap();
    let per_stream = admission.play(request("a", 3)).await.err();
    assert!(matches!(&per_stream, Some(Refusal::MaxViewers(why)) if why.contains("max_viewers_per_stream")));
    assert!(per_stream.is_some_and(|r| r.is_limit()));
    let _b1 = admission.play(request("b", 4)).await.unwrap();
    let total = admission.play(request("b", 5)).await.err();
    assert!(matches!(&total, Some(Refusal::MaxViewers(why)) if why.contains("limits.max_viewers")));
    assert_eq!(paths.viewers(), 3);
    drop(a1);
    assert_eq!(paths.viewers(), 2);
    admission.play(request("b", 5)).await.expect("room again");
    // Keys only viewers asked for are not listed.
    assert!(paths.listed().is_empty());
    assert_eq!(paths.list().len(), 2);
}

#[tokio::test]
async fn a_refused_viewer_of_a_new_key_leaves_no_path() {
    let (admission, paths) = admission(LimitsConfig {
        max_viewers: 1,
        ..LimitsConfig::default()
    });
    let _a = admission.play(request("a", 1)).await.unwrap();
    assert!(admission.play(request("fresh", 2)).await.is_err());
    assert!(paths.get(&StreamKey::new("live", "fresh")).is_none());
}
