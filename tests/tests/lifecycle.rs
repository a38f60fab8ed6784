//! Process lifecycle: SIGTERM / SIGINT end the server with exit status 0, promptly, even with
//! a publisher and viewers connected.

use std::time::Duration;

use estuary_tests::{publish_and_wait_live, Clip, Server, TestCtx, Viewer, LIMIT};

/// How long a signalled server may take to exit before the test calls it hung.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// SIGTERM with an ffmpeg publisher, an HTTP-FLV viewer and an RTMP viewer connected: the
/// process exits 0, and the viewers' connections end.
#[test]
fn sigterm_exits_zero_with_clients_connected() {
    let ctx = TestCtx::new("sigterm_exits_zero_with_clients_connected");
    let mut server = Server::start(&ctx);
    let (_publisher, flv_viewer) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "term");
    let rtmp_viewer = Viewer::rtmp(&server.rtmp_url("live", "term"));
    rtmp_viewer.wait_keyframe(LIMIT).unwrap_or_else(|e| panic!("{e}"));

    let status = server.signal_and_wait("TERM", EXIT_LIMIT);
    let status = status.unwrap_or_else(|| panic!("estuary did not exit within {EXIT_LIMIT:?} of SIGTERM"));
    assert_eq!(status.code(), Some(0), "estuary exit status after SIGTERM: {status}");
    for v in [&flv_viewer, &rtmp_viewer] {
        if let Err(e) = v.wait_for(EXIT_LIMIT, |s| s.ended.clone()) {
            panic!("{}: still connected after the server exited: {e}", v.label);
        }
    }
}

/// SIGINT (Ctrl-C) on an idle server: exit status 0.
#[test]
fn sigint_exits_zero_when_idle() {
    let ctx = TestCtx::new("sigint_exits_zero_when_idle");
    let mut server = Server::start(&ctx);
    let status = server.signal_and_wait("INT", EXIT_LIMIT);
    let status = status.unwrap_or_else(|| panic!("estuary did not exit within {EXIT_LIMIT:?} of SIGINT"));
    assert_eq!(status.code(), Some(0), "estuary exit status after SIGINT: {status}");
}

/// SIGTERM 1.5 s after a publisher left (issue 17): the stream's HLS packager is waiting out
/// its reconnect window then. Shutdown ends it at once: exit 0, and no task is left for the
/// grace period to give up on.
#[test]
fn sigterm_just_after_a_publisher_left_ends_everything_at_once() {
    let ctx = TestCtx::new("sigterm_just_after_a_publisher_left");
    let mut server = Server::start(&ctx);
    let (mut publisher, viewer) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "left");
    std::thread::sleep(Duration::from_secs(4));
    publisher.kill();
    drop(viewer);
    std::thread::sleep(Duration::from_millis(1500));
    let status = server.signal_and_wait("TERM", EXIT_LIMIT);
    let status = status.unwrap_or_else(|| panic!("estuary did not exit within {EXIT_LIMIT:?} of SIGTERM"));
    assert_eq!(status.code(), Some(0), "estuary exit status after SIGTERM: {status}");
    let logs = server.logs();
    assert!(
        !logs.contains("still open") && !logs.contains("still running"),
        "shutdown waited for something left behind:\n{logs}"
    );
}
