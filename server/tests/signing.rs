//! End-to-end: signed URLs and access lists, checked in the one admission pipeline, so one
//! rule covers RTMP and HTTP-FLV (issue 11, items 2, 3 and 5). Publishers are ffmpeg; players
//! are ffprobe over RTMP and raw HTTP requests for FLV.

mod support;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use estuary::admission::signing::{hmac, tencent};
use estuary::admission::Action;
use support::{clip, request, request_from, Server};

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// ffmpeg publishing the clip once to `url`, in real time; true if it was let in and sent
/// everything.
fn publish_once(server: &Server, url: &str, log: &str) -> bool {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-t", "2", "-i"])
        .arg(clip())
        .args(["-c", "copy", "-f", "flv", url])
        .stderr(std::fs::File::create(server.dir.join(log)).expect("log"))
        .status()
        .expect("run ffmpeg");
    status.success()
}

/// ffprobe of an RTMP play URL: true if it read the stream's codecs.
fn probes(url: &str) -> bool {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rw_timeout",
            "5000000",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(url)
        .output()
        .expect("run ffprobe");
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("h264")
}

fn flv_status(server: &Server, path: &str) -> u16 {
    request(server.http, "HEAD", path, "").expect("HEAD").status
}

#[test]
fn hmac_signed_publish_and_play_are_let_in_and_bad_tokens_are_refused_everywhere() {
    let server = Server::start(
        "sign-hmac",
        "[sign.publish]\nscheme = \"hmac\"\nkey = \"pub-key\"\n[sign.play]\nscheme = \"hmac\"\nkey = \"play-key\"\n[play]\nwait_for_publisher_ms = 3000\n",
    );
    let rtmp = |path: &str| server.rtmp_url(path);
    let later = now_secs() + 600;
    let earlier = now_secs() - 600;
    let sign =
        |url: &str, key: &str, action: Action, expires: u64| hmac::sign_url(url, key, action, expires).expect("sign");

    // Publish: no token, a forged one, an expired one, another app's, a play token: refused.
    assert!(
        !publish_once(&server, &rtmp("live/cam"), "no-token.log"),
        "published without a token"
    );
    let forged = format!("{}&sign=00{}", rtmp("live/cam?expires=1"), "0".repeat(62));
    assert!(
        !publish_once(&server, &forged, "forged.log"),
        "published with a forged token"
    );
    let expired = sign(&rtmp("live/cam"), "pub-key", Action::Publish, earlier);
    assert!(
        !publish_once(&server, &expired, "expired.log"),
        "published with an expired token"
    );
    let other_app = sign(&rtmp("other/cam"), "pub-key", Action::Publish, later).replace("/other/", "/live/");
    assert!(
        !publish_once(&server, &other_app, "other-app.log"),
        "another app's token published"
    );
    let play_token = sign(&rtmp("live/cam"), "play-key", Action::Play, later);
    assert!(
        !publish_once(&server, &play_token, "play-token.log"),
        "a play token published"
    );
    let metrics = String::from_utf8(request(server.http, "GET", "/metrics", "").expect("metrics").body).unwrap();
    for reason in ["missing", "forged", "expired"] {
        assert!(
            metrics.contains(&format!("protocol=\"rtmp\",reason=\"{reason}\"")),
            "refusals counted by reason ({reason}):\n{metrics}"
        );
    }

    // A signed publisher is let in.
    let signed = sign(&rtmp("live/cam"), "pub-key", Action::Publish, later);
    let mut publisher = server.publish_url(&signed, "signed.log");
    server.wait_live("live", "cam");

    // Play over RTMP and HTTP-FLV: signed in, the rest out.
    assert!(
        probes(&sign(&rtmp("live/cam"), "play-key", Action::Play, later)),
        "a signed RTMP player"
    );
    assert!(!probes(&rtmp("live/cam")), "an RTMP player without a token");
    assert!(
        !probes(&sign(&rtmp("live/cam"), "play-key", Action::Play, earlier)),
        "an expired RTMP token"
    );
    let flv = |url: String| {
        url.trim_start_matches(&format!("http://127.0.0.1:{}", server.http))
            .to_string()
    };
    let base = format!("http://127.0.0.1:{}/live/cam.flv", server.http);
    assert_eq!(
        flv_status(&server, &flv(sign(&base, "play-key", Action::Play, later))),
        200
    );
    assert_eq!(flv_status(&server, "/live/cam.flv"), 403, "FLV without a token");
    assert_eq!(
        flv_status(&server, &flv(sign(&base, "play-key", Action::Play, earlier))),
        403,
        "expired"
    );
    assert_eq!(
        flv_status(&server, &flv(sign(&base, "pub-key", Action::Play, later))),
        403,
        "wrong key"
    );
    let other = format!("http://127.0.0.1:{}/other/cam.flv", server.http);
    let wrong_app = flv(sign(&other, "play-key", Action::Play, later)).replace("/other/", "/live/");
    assert_eq!(flv_status(&server, &wrong_app), 403, "another app's token");
    // A GET (a viewer) too, not only HEAD.
    let get = request(server.http, "GET", "/live/cam.flv", "").expect("GET");
    assert_eq!(get.status, 403);
    publisher.0.kill().ok();
}

#[test]
fn tencent_keys_rotate_primary_and_backup_both_work() {
    let server = Server::start(
        "sign-tencent",
        "[sign.play]\nscheme = \"tencent\"\nkey = \"new-key\"\nbackup_key = \"old-key\"\n",
    );
    let _publisher = server.publish("live/cam", "publisher.log");
    server.wait_live("live", "cam");
    let later = now_secs() + 600;
    let path = |key: &str| {
        let url = tencent::sign_url("http://h/live/cam.flv", key, later).expect("sign");
        url.trim_start_matches("http://h").to_string()
    };
    assert_eq!(flv_status(&server, &path("new-key")), 200, "the primary key");
    assert_eq!(
        flv_status(&server, &path("old-key")),
        200,
        "the backup key, during rotation"
    );
    assert_eq!(
        flv_status(&server, &path("retired-key")),
        403,
        "a key no longer configured"
    );
}

#[test]
fn access_lists_deny_and_allow_by_address() {
    let server = Server::start(
        "acl",
        "[acl]\nplay_deny = [\"127.0.0.1/32\"]\n[apps.closed.acl]\npublish_deny = [\"127.0.0.0/8\", \"::1/128\"]\n",
    );
    // Publishing to an app whose access list denies the publisher's address is refused.
    assert!(
        !publish_once(&server, &server.rtmp_url("closed/cam"), "denied.log"),
        "a denied publisher"
    );
    let _publisher = server.publish("live/cam", "publisher.log");
    server.wait_live("live", "cam");
    // Play: this host is denied, another is not.
    assert_eq!(flv_status(&server, "/live/cam.flv"), 403);
    let other = request_from([127, 0, 0, 2], server.http, "HEAD", "/live/cam.flv", "", &[]).expect("HEAD");
    assert_eq!(other.status, 200);
    let metrics = String::from_utf8(request(server.http, "GET", "/metrics", "").expect("metrics").body).unwrap();
    assert!(metrics.contains("reason=\"acl_deny\""), "{metrics}");
}

/// A signed publisher gone silent (an OBS whose network stalled) is not taken over by a
/// newcomer without a valid token: the token is checked before the idle one is evicted. A
/// newcomer with one does take it over, as the reconnecting OBS would.
#[test]
fn a_silent_signed_publisher_is_taken_over_only_by_a_signed_newcomer() {
    // Any pause counts as silence here, so the test needs no waiting: SIGSTOP is enough.
    let server = Server::start(
        "sign-takeover",
        "[rtmp]\npublisher_idle_timeout_ms = 1\n[sign.publish]\nscheme = \"hmac\"\nkey = \"pub-key\"\n",
    );
    let signed = || {
        hmac::sign_url(
            &server.rtmp_url("live/cam"),
            "pub-key",
            Action::Publish,
            now_secs() + 600,
        )
        .expect("sign")
    };
    let mut first = server.publish_url(&signed(), "first.log");
    server.wait_live("live", "cam");
    let owner = || server.api("/api/v1/streams/live/cam").1["stream"]["publish"]["cid"].clone();
    let first_id = owner();
    assert!(first_id.is_string(), "no publisher id: {first_id}");
    let pid = first.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .expect("kill")
        .success());

    assert!(
        !publish_once(&server, &server.rtmp_url("live/cam"), "hijacker.log"),
        "an unsigned newcomer published"
    );
    assert_eq!(owner(), first_id, "an unsigned newcomer evicted the silent publisher");
    assert!(first.running(), "the silent publisher was disconnected");

    let mut second = server.publish_url(&signed(), "second.log");
    let taken = support::wait_for(support::LIMIT, || {
        let id = owner();
        (id.is_string() && id != first_id).then_some(())
    });
    Command::new("kill").args(["-CONT", &pid]).status().ok();
    assert!(taken.is_some(), "a signed newcomer did not take the silent key over");
    first.0.kill().ok();
    second.0.kill().ok();
}
