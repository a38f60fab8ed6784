//! LL-HLS requests that wait (RFC 8216bis §6.2.5.2, §6.2.6): a blocking playlist reload
//! (`_HLS_msn=N[&_HLS_part=M]`) is answered the moment the playlist holds segment N (part M
//! of it), at once when it already does, and with 400 when N is more than two segments past
//! the last one; a part named by `EXT-X-PRELOAD-HINT` is answered the moment it exists.
//! Either gives up after three target durations (503 for a playlist, 404 for a part).
//!
//! A waiting request holds one `watch` receiver of its stream and sleeps in the runtime;
//! each part the packager publishes wakes every waiter once, which checks and sleeps again.
//! No task is spawned and no timer polls; 1000 waiters cost 1000 parked futures.
//!
//! Caching (RFC 8216bis Appendix B): a blocking reload's answer is unique to its request
//! and may be kept for six target durations; a plain LL playlist for half of one.

use std::time::Duration;

use estuary_muxer::hls::{Position, Progress};
use tokio_util::sync::CancellationToken;

use crate::outputs::hls::HlsStream;

/// The LL-HLS delivery directives of a playlist request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Directives {
    /// `_HLS_msn` and `_HLS_part`.
    pub block: Option<(u64, Option<u32>)>,
    /// `_HLS_skip=YES` or `v2`: a delta update is welcome.
    pub skip: bool,
}

/// Why directives are refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadDirective {
    #[error("_HLS_part without _HLS_msn")]
    PartWithoutMsn,
    #[error("_HLS_msn or _HLS_part is not a number")]
    NotANumber,
}

impl Directives {
    pub fn parse(query: Option<&str>) -> Result<Directives, BadDirective> {
        let (mut msn, mut part, mut skip) = (None, None, false);
        for kv in query.unwrap_or_default().split('&') {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "_HLS_msn" => msn = Some(v.parse::<u64>().map_err(|_| BadDirective::NotANumber)?),
                "_HLS_part" => part = Some(v.parse::<u32>().map_err(|_| BadDirective::NotANumber)?),
                "_HLS_skip" => skip = matches!(v, "YES" | "v2"),
                _ => {}
            }
        }
        if part.is_some() && msn.is_none() {
            return Err(BadDirective::PartWithoutMsn);
        }
        Ok(Directives {
            block: msn.map(|m| (m, part)),
            skip,
        })
    }
}

/// The query without LL-HLS directives: what identifies a viewer's session and credentials
/// (each blocking reload carries other `_HLS_` values).
pub fn without_directives(query: &str) -> String {
    query
        .split('&')
        .filter(|kv| !kv.starts_with("_HLS_"))
        .collect::<Vec<_>>()
        .join("&")
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    Ready,
    TooFar,
    /// Three target durations passed, or the server is shutting down.
    TimedOut,
}

/// Waits until `ready` holds for the stream's progress (or the stream ended), at most three
/// target durations.
pub async fn wait_until(
    stream: &HlsStream,
    shutdown: &CancellationToken,
    ready: impl Fn(Progress) -> Position,
) -> Waited {
    let mut changes = stream.subscribe();
    let limit = Duration::from_secs(3 * stream.target_duration_secs().max(1));
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let _waiting = crate::metrics::HlsBlockedGuard::new();
    loop {
        // Subscribed before checking: a publish between the check and the wait still wakes.
        match ready(stream.progress()) {
            Position::Ready => return Waited::Ready,
            Position::TooFar => return Waited::TooFar,
            Position::Wait if stream.is_ended() => return Waited::Ready,
            Position::Wait => {}
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return Waited::TimedOut },
            () = &mut deadline => return Waited::TimedOut,
            () = shutdown.cancelled() => return Waited::TimedOut,
        }
    }
}

/// `Cache-Control` of an LL-HLS playlist answer.
pub fn playlist_cache(blocking: bool, target_duration_secs: u64) -> String {
    if blocking {
        format!("private, max-age={}", 6 * target_duration_secs)
    } else {
        format!("private, max-age={}", target_duration_secs / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_parse_and_part_needs_msn() {
        assert_eq!(Directives::parse(None), Ok(Directives::default()));
        assert_eq!(
            Directives::parse(Some("session=t&_HLS_msn=5&_HLS_part=2&_HLS_skip=YES")),
            Ok(Directives {
                block: Some((5, Some(2))),
                skip: true
            })
        );
        assert_eq!(
            Directives::parse(Some("_HLS_part=2")),
            Err(BadDirective::PartWithoutMsn)
        );
        assert_eq!(Directives::parse(Some("_HLS_msn=x")), Err(BadDirective::NotANumber));
        assert_eq!(without_directives("session=t&_HLS_msn=5&a=1"), "session=t&a=1");
    }
}

#[cfg(test)]
mod waiting_tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::outputs::hls::Update;

    fn publish_part(stream: &HlsStream, last_segment: u64, open_parts: u32) {
        stream.publish_update(Update {
            part: Some((last_segment + 1, open_parts - 1, Bytes::from_static(b"part"))),
            playlist: Bytes::from_static(b"#EXTM3U\n"),
            progress: Progress {
                last_segment: Some(last_segment),
                open_sequence: Some(last_segment + 1),
                open_parts,
            },
            target_duration_secs: 2,
            keep: 10,
            ..Update::default()
        });
    }

    /// One publish wakes every waiter for that part; a request too far ahead is refused at
    /// once; one the stream never reaches gives up after three target durations.
    #[tokio::test(start_paused = true)]
    async fn one_part_wakes_every_waiter() {
        let stream = Arc::new(HlsStream::new("i".into()));
        publish_part(&stream, 4, 1);
        let shutdown = CancellationToken::new();
        let waiters: Vec<_> = (0..1000)
            .map(|_| {
                let (stream, shutdown) = (Arc::clone(&stream), shutdown.clone());
                tokio::spawn(async move { wait_until(&stream, &shutdown, |p| p.position(5, Some(1))).await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert_eq!(
            wait_until(&stream, &shutdown, |p| p.position(5, Some(0))).await,
            Waited::Ready
        );
        assert_eq!(
            wait_until(&stream, &shutdown, |p| p.position(8, None)).await,
            Waited::TooFar
        );
        publish_part(&stream, 4, 2);
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), Waited::Ready);
        }
        let start = tokio::time::Instant::now();
        assert_eq!(
            wait_until(&stream, &shutdown, |p| p.position(6, None)).await,
            Waited::TimedOut
        );
        assert_eq!(start.elapsed(), Duration::from_secs(6), "three target durations");
    }
}
