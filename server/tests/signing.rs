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

/// `play_referers`: a browser on another site is refused HTTP play; one on the listed site,
/// and (with `allow_empty_referer = false`) only it, is let in.
#[test]
fn a_referer_allow_list_closes_http_play_to_other_sites() {
    let server = Server::start(
        "referers",
        "[apps.web.acl]\nplay_referers = [\"https://example.com\"]\nallow_empty_referer = false\n",
    );
    let _publisher = server.publish("web/cam", "publisher.log");
    server.wait_live("web", "cam");
    let head = |headers: &[(&str, &str)]| {
        request_from([127, 0, 0, 1], server.http, "HEAD", "/web/cam.flv", "", headers)
            .expect("HEAD")
            .status
    };
    assert_eq!(
        head(&[("Referer", "https://example.com/watch")]),
        200,
        "the listed site"
    );
    assert_eq!(head(&[("Origin", "https://example.com")]), 200, "the listed origin");
    assert_eq!(head(&[("Referer", "https://leech.test/page")]), 403, "another site");
    assert_eq!(head(&[]), 403, "no referer, with allow_empty_referer = false");
    let playlist = request_from(
        [127, 0, 0, 1],
        server.http,
        "GET",
        "/web/cam.m3u8",
        "",
        &[("Referer", "https://leech.test/")],
    )
    .expect("GET")
    .status;
    assert_eq!(playlist, 403, "HLS from another site");
}

/// A publisher at `rightful` gone silent (SIGSTOP; the server is configured so that any
/// pause counts as silence, so the test needs no waiting) is not taken over by a newcomer at
/// `hijacker`, which is refused and leaves the owner connected, and is taken over by one at
/// `reconnect`, as the reconnecting OBS would.
fn takeover_only_with_credentials(server: &Server, rightful: &str, hijacker: &str, reconnect: &str) {
    let mut first = server.publish_url(rightful, "first.log");
    server.wait_live("live", "cam");
    let owner = || server.api("/api/v1/streams/live/cam").1["stream"]["publish"]["cid"].clone();
    let first_id = owner();
    assert!(first_id.is_string(), "no publisher id: {first_id}");
    let pid = first.0.id().to_string();
    let signal = |sig: &str| Command::new("kill").args([sig, &pid]).status().expect("kill").success();
    assert!(signal("-STOP"));

    assert!(
        !publish_once(server, hijacker, "hijacker.log"),
        "a newcomer without the credentials published"
    );
    assert_eq!(
        owner(),
        first_id,
        "a newcomer without the credentials evicted the silent publisher"
    );
    assert!(first.running(), "the silent publisher was disconnected");

    let mut second = server.publish_url(reconnect, "second.log");
    let taken = support::wait_for(support::LIMIT, || {
        let id = owner();
        (id.is_string() && id != first_id).then_some(())
    });
    signal("-CONT");
    assert!(
        taken.is_some(),
        "a newcomer with the credentials did not take the silent key over"
    );
    first.0.kill().ok();
    second.0.kill().ok();
}

/// Signing on: a newcomer needs a valid token (checked before the silent one is evicted).
#[test]
fn a_silent_signed_publisher_is_taken_over_only_by_a_signed_newcomer() {
    let server = Server::start(
        "sign-takeover",
        "[rtmp]\npublisher_idle_timeout_ms = 1\n[sign.publish]\nscheme = \"hmac\"\nkey = \"pub-key\"\n",
    );
    let signed = || {
        let url = server.rtmp_url("live/cam");
        hmac::sign_url(&url, "pub-key", Action::Publish, now_secs() + 600).expect("sign")
    };
    takeover_only_with_credentials(&server, &signed(), &server.rtmp_url("live/cam"), &signed());
}

/// Hooks on (no signing): on_publish is asked only after the silent one is ended, so a
/// newcomer needs the silent publisher's own credentials to end it; one with others is
/// refused as busy without reaching the hook, and the backend hears no on_unpublish.
#[test]
fn a_silent_publisher_with_hooks_is_taken_over_only_with_its_own_credentials() {
    let receiver = support::HookReceiver::new(|_| (200, r#"{"code":0}"#.into()));
    let config = format!(
        "[rtmp]\npublisher_idle_timeout_ms = 1\n[hooks]\non_publish = [\"{}\"]\non_unpublish = [\"{}\"]\n",
        receiver.url("/publish"),
        receiver.url("/unpublish")
    );
    let server = Server::start("hook-takeover", &config);
    let url = |q: &str| server.rtmp_url(&format!("live/cam?{q}"));
    let heard = |action: &str| receiver.hits().iter().filter(|h| h.body["action"] == action).count();
    takeover_only_with_credentials(
        &server,
        &url("token=rightful"),
        &url("token=guess"),
        &url("token=rightful"),
    );
    assert_eq!(heard("on_publish"), 2, "the hijacker reached on_publish");
    assert!(server.rejected("rtmp", "busy") >= 1.0);
}
/// The first segment URI of `playlist`, as an absolute path under `/{app}/`.
fn first_segment(playlist: &str, app: &str) -> String {
    let uri = playlist
        .lines()
        .find(|l| !l.starts_with('#') && l.contains(".ts"))
        .unwrap_or_else(|| panic!("no segment in:\n{playlist}"));
    if uri.starts_with('/') {
        uri.to_string()
    } else {
        format!("/{app}/{uri}")
    }
}

/// The playlist at `path` once it lists a segment.
fn playlist_with_segments(server: &Server, path: &str) -> String {
    support::wait_for(support::LIMIT, || {
        let r = request(server.http, "GET", path, "").ok()?;
        let body = String::from_utf8_lossy(&r.body).into_owned();
        (r.status == 200 && body.contains(".ts")).then_some(body)
    })
    .unwrap_or_else(|| panic!("{path} never listed a segment; log:\n{}", server.log()))
}

/// `uri` keeping only the query parameters named in `keep`.
fn keeping(uri: &str, keep: &[&str]) -> String {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| keep.iter().any(|k| kv.starts_with(&format!("{k}="))))
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// HLS with signed play URLs: the playlist needs the signature; its segment URIs carry it
/// and the session it opened, and a segment is served with either (a CDN filling its cache
/// comes with the first viewer's URL, and may drop the session from its cache key) but not
/// with neither, a forged session, or an expired signature. ffprobe plays the signed URL.
#[test]
fn hls_playlists_and_segments_need_the_signature_or_the_session_it_opened() {
    let server = Server::start("sign-hls", "[sign.play]\nscheme = \"hmac\"\nkey = \"play-key\"\n");
    let _publisher = server.publish("live/cam", "publisher.log");
    server.wait_live("live", "cam");
    let (later, earlier) = (now_secs() + 600, now_secs() - 600);
    let signed = |path: &str, key: &str, expires: u64| hmac::sign_url(path, key, Action::Play, expires).expect("sign");
    let status = |path: &str| request(server.http, "GET", path, "").expect("GET").status;

    // The playlist: without a token, expired, the wrong key, another app's, forged.
    let other_app = signed("/other/cam.m3u8", "play-key", later).replace("/other/", "/live/");
    let forged = format!("/live/cam.m3u8?expires={later}&sign={}", "0".repeat(64));
    for (why, path) in [
        ("no token", "/live/cam.m3u8".to_string()),
        ("expired", signed("/live/cam.m3u8", "play-key", earlier)),
        ("wrong key", signed("/live/cam.m3u8", "other-key", later)),
        ("another app's token", other_app),
        ("forged", forged),
    ] {
        assert_eq!(status(&path), 403, "playlist, {why}");
    }
    assert!(server.rejected("hls", "missing") >= 1.0);
    assert!(server.rejected("hls", "expired") >= 1.0);
    assert!(server.rejected("hls", "forged") >= 1.0);

    // The signed playlist, and what its segment URIs carry.
    let playlist = playlist_with_segments(&server, &signed("/live/cam.m3u8", "play-key", later));
    let segment = first_segment(&playlist, "live");
    for param in ["session=", "expires=", "sign="] {
        assert!(segment.contains(param), "segment URI {segment} lacks {param}");
    }
    assert_eq!(status(&segment), 200, "the segment as the playlist gave it");
    assert_eq!(
        status(&keeping(&segment, &["expires", "sign"])),
        200,
        "the signature alone (a CDN's cache key without the session)"
    );
    assert_eq!(status(&keeping(&segment, &["session"])), 200, "the session alone");
    assert_eq!(status(&keeping(&segment, &[])), 403, "a bare segment URL");
    let bare = keeping(&segment, &[]);
    assert_eq!(
        status(&format!("{bare}?session={}", "ab".repeat(24))),
        403,
        "a forged session"
    );
    let stale = signed(&bare, "play-key", earlier);
    assert_eq!(status(&stale), 403, "an expired signature without a session");

    // A real player follows the segment URIs.
    let url = format!(
        "http://127.0.0.1:{}{}",
        server.http,
        signed("/live/cam.m3u8", "play-key", later)
    );
    assert!(probes(&url), "ffprobe could not play the signed HLS URL");
    assert!(!probes(&format!("http://127.0.0.1:{}/live/cam.m3u8", server.http)));
}

/// HLS with `on_play`: the hook approves a session, so a segment needs that session; a bare
/// or forged one is refused without asking the hook again. A neighbour (same address, same
/// user agent) with another token in its URL is asked about on its own, not let in on the
/// first viewer's session.
#[test]
fn hls_segments_need_the_session_on_play_approved() {
    let receiver = support::HookReceiver::new(|hit| {
        let param = hit.body["param"].as_str().unwrap_or_default();
        if param.contains("token=good") {
            (200, r#"{"code":0}"#.into())
        } else {
            (403, r#"{"code":403}"#.into())
        }
    });
    let config = format!("[hooks]\non_play = [\"{}\"]\n", receiver.url("/play"));
    let server = Server::start("hook-hls", &config);
    let _publisher = server.publish("live/cam", "publisher.log");
    server.wait_live("live", "cam");
    let status = |path: &str| request(server.http, "GET", path, "").expect("GET").status;
    let plays = || receiver.hits().iter().filter(|h| h.body["action"] == "on_play").count();

    let playlist = playlist_with_segments(&server, "/live/cam.m3u8?token=good");
    let segment = first_segment(&playlist, "live");
    assert_eq!(status(&segment), 200, "the approved session's segment");
    assert_eq!(status("/live/cam.m3u8?token=good"), 200, "the viewer's own reload");
    assert_eq!(status("/live/cam.m3u8?token=bad"), 403, "a neighbour with a bad token");
    assert_eq!(status("/live/cam.m3u8"), 403, "a neighbour with none");
    let bare = keeping(&segment, &[]);
    assert_eq!(status(&bare), 403, "a segment without the session");
    assert_eq!(
        status(&format!("{bare}?session={}", "cd".repeat(24))),
        403,
        "a forged session"
    );
    assert_eq!(plays(), 3, "on_play heard of the session and each neighbour, once");
    assert!(server.rejected("hls", "no_session") >= 1.0);
    assert!(server.rejected("hls", "bad_token") >= 1.0);
}
