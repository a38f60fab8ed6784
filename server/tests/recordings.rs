//! End-to-end: recordings (issue item 8, less VOD playback). The real binary records what
//! ffmpeg publishes; the files are checked with ffprobe and ffmpeg as a player would open
//! them, the catalogue through the API, and the backend through `on_dvr` and `/metrics`.
//!
//! Clips have a keyframe every second exactly (`-g 25`), so "within one GOP" is one second.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{
    audio_packets, decode_errors, ffprobe, ffprobe_live, gop1_clip, sample, video_packets, wait_for, HookReceiver,
    Proc, Server, CLIP_FPS, LIMIT,
};

/// The server's config: `[record]` with `record`'s keys over the tests' defaults, then `rest`
/// (other sections). HLS is off: nothing here needs it.
fn config(record: &[(&str, &str)], rest: &str) -> String {
    let mut keys: Vec<(&str, &str)> = vec![
        // The machine's free space is not what these tests are about.
        ("min_free_bytes", "0"),
        ("fragment_ms", "500"),
        // A recording ends soon after its publisher leaves.
        ("reconnect_window_ms", "500"),
        ("poster", "false"),
    ];
    for (k, v) in record {
        keys.retain(|(key, _)| key != k);
        keys.push((k, v));
    }
    let record: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    format!("[hls]\nenabled = false\n\n[record]\n{record}\n{rest}")
}

/// `[hooks]` sending `on_dvr` to `receiver`.
fn dvr_hook(receiver: &HookReceiver) -> String {
    format!(
        "[hooks]\non_dvr = [\"{}\"]\nretry_min_ms = 100\nretry_max_ms = 1000\n",
        receiver.url("/dvr")
    )
}

fn ok_receiver() -> HookReceiver {
    HookReceiver::new(|_| (200, r#"{"code":0}"#.into()))
}

/// Waits at most `limit` for `f`, panicking with `what` and the server's log.
fn wait_until<T>(server: &Server, limit: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for(limit, f).unwrap_or_else(|| panic!("{what}: not within {limit:?}; log:\n{}", server.log()))
}

/// `GET /api/v1/recordings?{query}`'s recordings.
fn recordings(server: &Server, query: &str) -> Vec<Value> {
    let (status, v) = server.api(&format!("/api/v1/recordings?{query}"));
    assert_eq!(status, 200, "list recordings: {v}");
    v["recordings"].as_array().cloned().unwrap_or_default()
}

/// `GET /api/v1/recordings/{id}`: status and recording.
fn recording(server: &Server, id: i64) -> (u16, Value) {
    let (status, v) = server.api(&format!("/api/v1/recordings/{id}"));
    (status, v["recording"].clone())
}

fn id_of(r: &Value) -> i64 {
    r["id"].as_i64().unwrap_or_else(|| panic!("recording without id: {r}"))
}

/// Waits for recording `id` to be in `state`.
fn wait_state(server: &Server, id: i64, state: &str, limit: Duration) -> Value {
    wait_until(server, limit, &format!("recording {id} {state}"), || {
        let (_, r) = recording(server, id);
        (r["state"] == state).then_some(r)
    })
}

/// The recordings of `app/stream`, oldest first, once every one of them has ended (none
/// `pending` or `recording`) and there is at least `at_least`.
fn ended_recordings(server: &Server, app: &str, stream: &str, at_least: usize) -> Vec<Value> {
    let mut list = wait_until(
        server,
        LIMIT,
        &format!("{at_least}+ ended recordings of {app}/{stream}"),
        || {
            let list = recordings(server, &format!("app={app}&stream={stream}"));
            let ended = list.len() >= at_least
                && list
                    .iter()
                    .all(|r| r["state"] != "pending" && r["state"] != "recording");
            ended.then_some(list)
        },
    );
    list.sort_by_key(id_of);
    list
}

/// `record.root` of the tests: the default, under the server's working directory.
fn root(server: &Server) -> PathBuf {
    server.dir.join("recordings")
}

/// A recording's file on disk.
fn file_of(server: &Server, r: &Value) -> PathBuf {
    let path = r["path"]
        .as_str()
        .unwrap_or_else(|| panic!("recording without path: {r}"));
    root(server).join(path)
}

/// Waits for a publisher of a finite clip to finish sending it.
fn wait_published(server: &Server, publisher: &mut Proc, clip_secs: u32) {
    let status = publisher.wait(Duration::from_secs(u64::from(clip_secs)) + LIMIT);
    assert!(
        status.is_some_and(|s| s.success()),
        "the publisher did not send its clip ({status:?}); log:\n{}",
        server.log()
    );
}

/// Asserts a file opens and decodes without a word from ffmpeg, starts with a keyframe, and
/// has H.264 video and AAC audio; returns its probe.
fn assert_plays(file: &Path) -> support::Probe {
    assert!(file.is_file(), "{} is not there", file.display());
    let errors = decode_errors(file);
    assert!(errors.is_empty(), "ffmpeg decoding {}: {errors}", file.display());
    let first = video_packets(file).first().copied();
    assert!(
        first.is_some_and(|p| p.key),
        "{} does not start with a keyframe: {first:?}",
        file.display()
    );
    let probe = ffprobe(file);
    assert_eq!(
        probe.video_codec.as_deref(),
        Some("h264"),
        "{}: {:#}",
        file.display(),
        probe.raw
    );
    assert_eq!(
        probe.audio_codec.as_deref(),
        Some("aac"),
        "{}: {:#}",
        file.display(),
        probe.raw
    );
    probe
}

/// The four-character types of a file's top-level boxes, read from their headers.
fn top_level_boxes(file: &Path) -> Vec<String> {
    let bytes = std::fs::read(file).expect("read mp4");
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size32 = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&bytes[at + 4..at + 8]).to_string();
        let size = match size32 {
            1 if at + 16 <= bytes.len() => u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap()),
            0 => (bytes.len() - at) as u64,
            n => n,
        };
        boxes.push(kind);
        assert!(size >= 8, "{}: box of {size} bytes at {at}: {boxes:?}", file.display());
        at += size as usize;
    }
    assert_eq!(
        at,
        bytes.len(),
        "{}: the last box runs past the end: {boxes:?}",
        file.display()
    );
    boxes
}

/// The `on_dvr` bodies the receiver got for recording `id`.
fn dvr_of(receiver: &HookReceiver, id: i64) -> Vec<Value> {
    receiver
        .hits()
        .into_iter()
        .map(|h| h.body)
        .filter(|b| b["action"] == "on_dvr" && b["recording_id"] == id)
        .collect()
}

fn wait_dvr(server: &Server, receiver: &HookReceiver, id: i64) -> Value {
    wait_until(server, LIMIT, &format!("on_dvr of recording {id}"), || {
        dvr_of(receiver, id).into_iter().next()
    })
}

fn metric(server: &Server, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(&server.metrics(), name, labels).unwrap_or(0.0)
}

/// A finished recording opens in any player: MP4 (fast-start, `moov` before `mdat`) and FLV
/// (`[apps.flv.record] format = "flv"`) of a 6-s publish are listed `completed`, carry H.264
/// and AAC, last as long as what was published (within a GOP) and decode without an error.
#[test]
fn recorded_mp4_and_flv_files_open_in_any_player() {
    let clip = gop1_clip(6);
    let server = Server::start(
        "rec-players",
        &config(&[("enabled", "true")], "[apps.flv.record]\nformat = \"flv\"\n"),
    );
    let mut mp4_publisher = server.publish_clip("live/cam", &clip, "mp4-publisher.log");
    let mut flv_publisher = server.publish_clip("flv/cam", &clip, "flv-publisher.log");
    wait_published(&server, &mut mp4_publisher, clip.secs);
    wait_published(&server, &mut flv_publisher, clip.secs);

    for (app, format) in [("live", "mp4"), ("flv", "flv")] {
        let list = ended_recordings(&server, app, "cam", 1);
        assert_eq!(list.len(), 1, "one publish, one recording: {list:?}");
        let r = &list[0];
        assert_eq!(r["state"], "completed", "{r}");
        assert_eq!(r["format"], format, "{r}");
        assert_eq!(r["plan"], "session", "{r}");
        let file = file_of(&server, r);
        assert_eq!(
            file.extension().and_then(|e| e.to_str()),
            Some(format),
            "{}",
            file.display()
        );
        assert!(
            !PathBuf::from(format!("{}.part", file.display())).exists(),
            "{}: the .part is left behind",
            file.display()
        );
        let probe = assert_plays(&file);
        assert!(
            (probe.duration - f64::from(clip.secs)).abs() <= 1.0,
            "{format}: {:.3} s recorded of {} s published",
            probe.duration,
            clip.secs
        );
        let api_secs = r["duration"].as_f64().unwrap_or(0.0);
        assert!(
            (api_secs - probe.duration).abs() <= 0.1,
            "{format}: the API says {api_secs} s, the file lasts {} s",
            probe.duration
        );
        if format == "mp4" {
            let boxes = top_level_boxes(&file);
            let at = |kind: &str| boxes.iter().position(|b| b == kind);
            assert_eq!(at("ftyp"), Some(0), "{boxes:?}");
            let (moov, mdat) = (at("moov"), at("mdat"));
            assert!(
                moov.is_some() && mdat.is_some() && moov < mdat,
                "not fast-start: {boxes:?}"
            );
            assert!(!boxes.iter().any(|b| b == "moof"), "still fragmented: {boxes:?}");
        } else {
            let head = std::fs::read(&file).expect("read flv");
            assert_eq!(&head[..3], b"FLV", "{}", file.display());
        }
    }
}

/// `kill -9` while recording (MP4 in fragments of 500 ms) leaves a `.part` that the next start
/// makes into a playable file holding what was published up to the kill, less at most the
/// open fragment and a GOP, and never less than was reported synced; the recording is
/// `interrupted`, says so, lists the file's real duration, and the backend hears `on_dvr`.
/// MP4 (`live`) and FLV (`flv`) alike.
#[test]
fn kill_9_while_recording_keeps_what_was_written() {
    let clip = gop1_clip(10);
    let receiver = ok_receiver();
    // FLV is synced every 2 s: what the catalogue last heard of it then lags the file by up
    // to that much, and the recovered recording must list the file's real duration.
    let rest = dvr_hook(&receiver) + "[apps.flv.record]\nformat = \"flv\"\nfragment_ms = 2000\n";
    let mut server = Server::start("rec-kill9", &config(&[("enabled", "true")], &rest));
    let spawned = Instant::now();
    // (app, fragment in s)
    let apps = [("live", 0.5), ("flv", 2.0)];
    let _publishers: Vec<Proc> = apps
        .iter()
        .map(|(app, _)| server.publish_looping(&format!("{app}/cam"), &clip, &format!("{app}-publisher.log")))
        .collect();
    let ids: Vec<i64> = apps
        .iter()
        .map(|(app, _)| {
            let r = wait_until(&server, LIMIT, &format!("a recording of {app}/cam"), || {
                recordings(&server, &format!("app={app}&stream=cam"))
                    .into_iter()
                    .find(|r| r["state"] == "recording")
            });
            id_of(&r)
        })
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    // What each recording reported as synced to disk (it reports after each fragment's
    // sync), which the kill must not lose, and the frames its stream had received, of which
    // the kill may lose only the open fragment's.
    let before: Vec<(Value, u64)> = apps
        .iter()
        .zip(&ids)
        .map(|((app, _), id)| {
            let (_, stream) = server.api(&format!("/api/v1/streams/{app}/cam"));
            (
                recording(&server, *id).1,
                stream["stream"]["frames"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    // Nothing was published before ffmpeg started, and it publishes in real time.
    let published_at_most = spawned.elapsed().as_secs_f64();
    server.kill9();
    for (r, _) in &before {
        let file = file_of(&server, r);
        let part = PathBuf::from(format!("{}.part", file.display()));
        assert!(part.is_file(), "no {} after kill -9", part.display());
        assert!(!file.exists(), "{} final before the recording ended", file.display());
    }

    let server = server.restart();
    for ((id, (before, frames)), (app, fragment)) in ids.iter().zip(&before).zip(apps) {
        let r = wait_state(&server, *id, "interrupted", LIMIT);
        let error = r["error"].as_str().unwrap_or("");
        assert!(
            error.contains("stopped while recording"),
            "an interrupted recording says why: {r}"
        );
        let file = file_of(&server, &r);
        let part = PathBuf::from(format!("{}.part", file.display()));
        assert!(!part.exists(), "{} left after recovery", part.display());
        let probe = assert_plays(&file);
        let synced = before["duration"].as_f64().unwrap_or(0.0);
        assert!(synced > 0.0, "{app}: no fragment synced in 5 s: {before}");
        assert!(
            probe.duration >= synced,
            "{app}: {:.3} s kept, but {synced:.3} s were synced before the kill",
            probe.duration
        );
        let published_at_least = *frames as f64 / CLIP_FPS as f64;
        // One fragment (cut at the next keyframe) and one GOP (1 s).
        let may_lose = fragment + 1.0;
        assert!(
            probe.duration <= published_at_most && probe.duration >= published_at_least - may_lose,
            "{app}: {:.3} s kept of {published_at_least:.3}..{published_at_most:.3} s published before the kill",
            probe.duration
        );
        let dvr = wait_dvr(&server, &receiver, *id);
        assert_eq!(dvr["file"], r["path"], "{dvr}");
        assert!(
            dvr["error"]
                .as_str()
                .is_some_and(|e| e.contains("stopped while recording")),
            "on_dvr of an interrupted recording says so: {dvr}"
        );
        let api_secs = r["duration"].as_f64().unwrap_or(0.0);
        assert!(
            (api_secs - probe.duration).abs() <= 0.1,
            "{app}: the API lists {api_secs} s, the recovered file lasts {:.3} s",
            probe.duration
        );
    }
}

/// `plan = "segment"` with 6-s segments: a 20-s publish (500 frames) becomes files of 6, 6, 6
/// and 2 s, each starting with a keyframe, that together hold every video and audio frame
/// exactly once, evenly spaced across the cuts, and whose durations add up to the whole.
#[test]
fn segments_join_with_no_gap_and_no_overlap() {
    let clip = gop1_clip(20);
    let server = Server::start(
        "rec-segments",
        &config(
            &[("enabled", "true"), ("plan", "\"segment\""), ("segment_minutes", "0.1")],
            "",
        ),
    );
    let mut publisher = server.publish_clip("live/cam", &clip, "publisher.log");
    wait_published(&server, &mut publisher, clip.secs);
    // Cut at the first keyframe 6 s into each file: 6 + 6 + 6 + 2 s.
    let list = ended_recordings(&server, "live", "cam", 4);
    assert_eq!(list.len(), 4, "20 s in 6-s segments: {list:#?}");

    let frame = 1.0 / CLIP_FPS as f64;
    let aac_frame = 1024.0 / 44100.0;
    let (mut frames, mut audio_frames, mut durations) = (0, 0, 0.0);
    // Where the file starts on the stream's timeline: the video of the files before it (each
    // file's own timeline starts at its first frame).
    let mut offset = 0.0;
    let mut last_audio: Option<f64> = None;
    let mut previous_end: Option<i64> = None;
    for r in &list {
        assert_eq!(r["state"], "completed", "{r}");
        assert_eq!(r["plan"], "segment", "{r}");
        let file = file_of(&server, r);
        let name = file.display();
        let probe = assert_plays(&file);
        let video = video_packets(&file);
        assert!(
            video.first().is_some_and(|p| p.key),
            "{name} does not start with a keyframe: {:?}",
            video.first()
        );
        // One frame every 40 ms from the file's start: none missing, none twice.
        for (i, p) in video.iter().enumerate() {
            assert!(
                (p.pts - i as f64 * frame).abs() < 0.002,
                "{name}: video frame {i} at {:.3} s",
                p.pts
            );
        }
        assert_eq!(
            probe.video_frames,
            video.len() as u64,
            "{name}: frames decoded and packets differ"
        );
        if frames + (video.len() as u64) < clip.frames {
            assert_eq!(video.len() as u64, 6 * CLIP_FPS, "{name} is not a 6-s segment");
        }
        // Audio runs on across the cut one AAC frame after another (timestamps are ms).
        let audio = audio_packets(&file);
        for p in &audio {
            let at = offset + p.pts;
            if let Some(before) = last_audio {
                assert!(
                    (at - before - aac_frame).abs() < 0.003,
                    "{name}: audio at {at:.3} s of the stream follows audio at {before:.3} s"
                );
            }
            last_audio = Some(at);
        }
        // The catalogue's times do not overlap either.
        let start = r["start"].as_i64().expect("start");
        if let Some(end) = previous_end {
            assert!(
                start >= end,
                "{name} started at {start}, before the previous file ended at {end}"
            );
        }
        previous_end = r["end"].as_i64();
        frames += video.len() as u64;
        audio_frames += audio.len() as u64;
        durations += probe.duration;
        offset += video.len() as f64 * frame;
    }
    assert_eq!(
        (frames, audio_frames),
        (clip.frames, clip.audio_frames),
        "(video, audio) frames in {} files against those published",
        list.len()
    );
    let per_file = list.len() as f64 * frame;
    assert!(
        (durations - f64::from(clip.secs)).abs() <= per_file,
        "the files last {durations:.3} s together, {} s were published",
        clip.secs
    );
}

/// Recording by hand: asked for before the stream is live it is `pending`, then `recording`
/// once it comes; a second request, or a delete, while it records is refused (409);
/// stopping it makes a `completed` file that plays; the list filters by app and state; a
/// delete removes the file and the row; asked for while the stream is live, it records from
/// a keyframe; stopped while still pending, it fails without a file.
#[test]
fn api_starts_stops_lists_and_deletes_a_recording() {
    let clip = gop1_clip(10);
    let server = Server::start("rec-api", &config(&[], ""));
    let body = json!({"app": "live", "stream": "cam"});
    let (status, v) = server.send_json("POST", "/api/v1/recordings", &body);
    assert_eq!(status, 200, "{v}");
    let id = id_of(&v["recording"]);
    assert_eq!(v["recording"]["state"], "pending", "{v}");
    assert_eq!(v["recording"]["plan"], "manual", "{v}");
    // One that never sees its stream: stopped while pending, it ends failed, without a file.
    let (_, v) = server.send_json("POST", "/api/v1/recordings", &json!({"app": "other", "stream": "cam"}));
    let never = id_of(&v["recording"]);
    let (status, v) = server.send_json("POST", &format!("/api/v1/recordings/{never}/stop"), &json!({}));
    assert_eq!(status, 200, "stop a pending recording: {v}");
    let (_, r) = recording(&server, never);
    assert_eq!(r["state"], "failed", "{r}");
    assert!(r["path"].is_null(), "{r}");

    let _publisher = server.publish_looping("live/cam", &clip, "publisher.log");
    wait_state(&server, id, "recording", LIMIT);
    let (status, v) = server.send_json("POST", "/api/v1/recordings", &body);
    assert_eq!(status, 409, "a second recording of a stream being recorded: {v}");
    let (status, v) = server.delete(&format!("/api/v1/recordings/{id}"));
    assert_eq!(status, 409, "deleting a recording being written: {v}");
    assert_eq!(recordings(&server, "app=live").len(), 1);

    std::thread::sleep(Duration::from_secs(3));
    let (status, v) = server.send_json("POST", &format!("/api/v1/recordings/{id}/stop"), &json!({}));
    assert_eq!(status, 200, "stop: {v}");
    let r = wait_state(&server, id, "completed", LIMIT);
    let file = file_of(&server, &r);
    let probe = assert_plays(&file);
    assert!(probe.duration >= 1.0, "{} s recorded", probe.duration);
    let (status, v) = server.send_json("POST", &format!("/api/v1/recordings/{id}/stop"), &json!({}));
    assert_eq!(status, 409, "stopping a stopped recording: {v}");

    let ids = |query: &str| recordings(&server, query).iter().map(id_of).collect::<Vec<_>>();
    assert_eq!(ids("app=live&state=completed"), vec![id]);
    assert_eq!(ids("app=live&stream=cam&state=completed"), vec![id]);
    assert!(ids("app=live&state=recording").is_empty(), "stopped, yet recording");
    assert!(ids("app=other&state=completed").is_empty());
    assert!(ids("app=live&state=failed").is_empty());
    assert_eq!(ids("state=failed"), vec![never]);

    let (status, v) = server.delete(&format!("/api/v1/recordings/{id}"));
    assert_eq!(status, 200, "delete: {v}");
    assert!(!file.exists(), "{} still there after the delete", file.display());
    let (status, _) = recording(&server, id);
    assert_eq!(status, 404, "recording {id} after its delete");
    assert!(ids("app=live").is_empty(), "listed after its delete");

    // Asked for while the stream is live: recorded from its last keyframe on.
    let (status, v) = server.send_json("POST", "/api/v1/recordings", &body);
    assert_eq!(status, 200, "{v}");
    let again = id_of(&v["recording"]);
    assert_ne!(again, id, "a deleted recording's id is reused");
    wait_state(&server, again, "recording", LIMIT);
    std::thread::sleep(Duration::from_secs(2));
    let (status, v) = server.send_json("POST", &format!("/api/v1/recordings/{again}/stop"), &json!({}));
    assert_eq!(status, 200, "stop: {v}");
    let r = wait_state(&server, again, "completed", LIMIT);
    let probe = assert_plays(&file_of(&server, &r));
    assert!(probe.duration >= 1.0, "{} s recorded", probe.duration);
}

/// A schedule made through the API (`M H * * *` in UTC, the coming minute, for 6 s) opens
/// its window when the minute starts: the live stream is recorded, with `schedule_id` set,
/// until the window closes; the schedule then shows when it last ran and runs next.
#[test]
fn a_cron_schedule_records_its_window() {
    use chrono::{DurationRound, TimeDelta, Timelike, Utc};
    let clip = gop1_clip(10);
    let server = Server::start("rec-schedule", &config(&[], ""));
    let _publisher = server.publish_looping("live/news", &clip, "publisher.log");
    server.wait_live("live", "news");

    // The next minute that leaves time to create the schedule before it starts.
    let mut fire = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap() + TimeDelta::minutes(1);
    if fire - Utc::now() < TimeDelta::seconds(3) {
        fire += TimeDelta::minutes(1);
    }
    let window = 6;
    let body = json!({
        "app": "live",
        "stream": "news",
        "cron": format!("{} {} * * *", fire.minute(), fire.hour()),
        "duration_secs": window,
        "timezone": "UTC",
    });
    let (status, v) = server.send_json("POST", "/api/v1/schedules", &body);
    assert_eq!(status, 200, "create schedule: {v}");
    let schedule = v["schedule"]["id"].as_i64().expect("schedule id");
    assert_eq!(v["schedule"]["next_run_at"], fire.timestamp_millis(), "{v}");
    assert!(
        recordings(&server, "app=live").is_empty() || Utc::now() >= fire,
        "recorded before the window opened"
    );

    let until_fire = (fire - Utc::now()).to_std().unwrap_or_default();
    let r = wait_until(&server, until_fire + LIMIT, "the scheduled recording", || {
        recordings(&server, "app=live&stream=news")
            .into_iter()
            .find(|r| r["state"] == "recording")
    });
    assert!(Utc::now() >= fire, "recording before {fire}: {r}");
    assert_eq!(r["schedule_id"], schedule, "{r}");
    assert_eq!(r["plan"], "schedule", "{r}");
    let id = id_of(&r);
    let r = wait_state(&server, id, "completed", Duration::from_secs(window) + LIMIT);
    assert!(
        r["start"].as_i64().is_some_and(|s| s >= fire.timestamp_millis()),
        "started before the window: {r}"
    );
    let probe = assert_plays(&file_of(&server, &r));
    // The window opens and closes on the scheduler's 1-s tick, and the recording starts at
    // the keyframe before it opened (1-s GOP).
    assert!(
        (probe.duration - window as f64).abs() <= 2.5,
        "{:.3} s recorded in a {window}-s window",
        probe.duration
    );
    assert_eq!(recordings(&server, "app=live").len(), 1, "one window, one recording");

    let (_, v) = server.api("/api/v1/schedules");
    let s = v["schedules"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["id"] == schedule).cloned())
        .unwrap_or_else(|| panic!("schedule {schedule} not listed: {v}"));
    assert_eq!(s["last_run_at"], fire.timestamp_millis(), "{s}");
    assert_eq!(s["next_run_at"], (fire + TimeDelta::days(1)).timestamp_millis(), "{s}");
}

/// Retention: with `retention_days = 7`, a start deletes a recording that ended 10 days ago
/// (its row, file and poster) and keeps a younger one.
#[test]
fn retention_deletes_a_recording_past_its_days_and_keeps_a_younger_one() {
    let clip = gop1_clip(3);
    let mut server = Server::start("rec-retention", &config(&[("enabled", "true"), ("poster", "true")], ""));
    let mut old = server.publish_clip("live/old", &clip, "old.log");
    let mut young = server.publish_clip("live/young", &clip, "young.log");
    wait_published(&server, &mut old, clip.secs);
    wait_published(&server, &mut young, clip.secs);
    let ended = |stream: &str| {
        let list = ended_recordings(&server, "live", stream, 1);
        assert_eq!(list[0]["state"], "completed", "{list:?}");
        // The poster comes just after the recording completes.
        let id = id_of(&list[0]);
        wait_until(&server, LIMIT, "a poster", || {
            let (_, r) = recording(&server, id);
            r["urls"]["poster"].is_string().then_some(r)
        })
    };
    let (old, young) = (ended("old"), ended("young"));
    let (old_id, young_id) = (id_of(&old), id_of(&young));
    let old_file = file_of(&server, &old);
    let old_poster = old_file.with_extension("jpg");
    assert!(old_file.is_file() && old_poster.is_file(), "{}", old_file.display());
    server.stop();

    let db = rusqlite::Connection::open(root(&server).join("catalogue.db")).expect("open catalogue");
    let ten_days_ms: i64 = 10 * 24 * 3600 * 1000;
    let aged = db
        .execute(
            "UPDATE recordings SET created_at = created_at - ?2, started_at = started_at - ?2, \
             ended_at = ended_at - ?2 WHERE id = ?1",
            rusqlite::params![old_id, ten_days_ms],
        )
        .expect("age the recording");
    assert_eq!(aged, 1);
    drop(db);

    let server = server.restart_with(&config(&[("enabled", "true"), ("retention_days", "7")], ""));
    let (status, r) = recording(&server, old_id);
    assert_eq!(status, 404, "a recording 10 days old with retention_days = 7: {r}");
    assert!(!old_file.exists(), "{} kept past its retention", old_file.display());
    assert!(!old_poster.exists(), "{} kept past its retention", old_poster.display());
    let (status, r) = recording(&server, young_id);
    assert_eq!(status, 200, "the young recording: {r}");
    assert_eq!(r["state"], "completed", "{r}");
    assert!(file_of(&server, &r).is_file(), "the young recording's file is gone");
}

/// A disk under `record.min_free_bytes` refuses the recording, never the stream: viewers
/// play it, the recording is `failed` naming the floor, `on_dvr` carries the error and the
/// failure is counted as `disk_floor`.
#[test]
fn the_free_space_floor_refuses_recording_but_not_the_stream() {
    let clip = gop1_clip(10);
    let receiver = ok_receiver();
    let server = Server::start(
        "rec-floor",
        &config(
            &[("enabled", "true"), ("min_free_bytes", "1000000000000000000")],
            &dvr_hook(&receiver),
        ),
    );
    let _publisher = server.publish_looping("live/cam", &clip, "publisher.log");
    server.wait_live("live", "cam");
    for url in [
        server.rtmp_url("live/cam"),
        format!("http://127.0.0.1:{}/live/cam.flv", server.http),
    ] {
        let probe = ffprobe_live(&url);
        assert_eq!(probe.video_codec.as_deref(), Some("h264"), "{url}: {:#}", probe.raw);
        assert_eq!(probe.audio_codec.as_deref(), Some("aac"), "{url}: {:#}", probe.raw);
    }
    let r = wait_until(&server, LIMIT, "a failed recording", || {
        recordings(&server, "app=live&stream=cam")
            .into_iter()
            .find(|r| r["state"] == "failed")
    });
    let error = r["error"].as_str().unwrap_or("");
    assert!(error.contains("min_free_bytes"), "the error names the floor: {r}");
    assert_eq!(recordings(&server, "app=live").len(), 1, "one refusal, no retry loop");
    let dvr = wait_dvr(&server, &receiver, id_of(&r));
    assert!(
        dvr["error"].as_str().is_some_and(|e| e.contains("min_free_bytes")),
        "on_dvr of a refused recording: {dvr}"
    );
    let failures = metric(&server, "estuary_recording_failures_total", &[("reason", "disk_floor")]);
    assert!(failures >= 1.0, "disk_floor failures counted: {failures}");
    let files: Vec<_> = walk(&root(&server)).into_iter().filter(|p| is_media(p)).collect();
    assert!(files.is_empty(), "files written under the floor: {files:?}");
}

/// SIGTERM while a stream is being recorded: the server finishes the recording (a fast-start
/// MP4, `completed`) and delivers its `on_dvr` before it exits, so the backend hears of it
/// now, not at the next start. The publisher is still live and the recording's reconnect
/// window is long: only the shutdown ends it. After a restart nothing is left to recover.
#[test]
fn sigterm_finishes_a_recording_and_delivers_its_on_dvr_before_exit() {
    let clip = gop1_clip(4);
    let receiver = ok_receiver();
    let record = [("enabled", "true"), ("reconnect_window_ms", "600000")];
    let mut server = Server::start("rec-sigterm", &config(&record, &dvr_hook(&receiver)));
    let _publisher = server.publish_looping("live/cam", &clip, "publisher.log");
    let r = wait_until(&server, LIMIT, "a recording of live/cam", || {
        recordings(&server, "app=live&stream=cam")
            .into_iter()
            .find(|r| r["state"] == "recording")
    });
    let id = id_of(&r);
    wait_until(&server, LIMIT, "two fragments written", || {
        (metric(&server, "estuary_recording_fragments_total", &[]) >= 2.0).then_some(())
    });

    server.stop();
    let dvr = dvr_of(&receiver, id);
    assert_eq!(
        dvr.len(),
        1,
        "one on_dvr of recording {id} delivered before the server exited: {dvr:?}; log:\n{}",
        server.log()
    );
    assert!(
        dvr[0].get("error").is_none_or(Value::is_null),
        "a recording finished at shutdown has no error: {}",
        dvr[0]
    );
    assert!(
        !server.log().contains("exiting anyway"),
        "shutdown gave up on something; log:\n{}",
        server.log()
    );

    let server = server.restart();
    let (status, r) = recording(&server, id);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["state"], "completed", "finished at shutdown, not recovered: {r}");
    let file = file_of(&server, &r);
    let boxes = top_level_boxes(&file);
    let (moov, mdat) = (
        boxes.iter().position(|b| b == "moov"),
        boxes.iter().position(|b| b == "mdat"),
    );
    assert!(
        moov.is_some() && mdat.is_some() && moov < mdat,
        "{}: not fast-start: {boxes:?}",
        file.display()
    );
    assert_plays(&file);
    assert_eq!(
        dvr_of(&receiver, id).len(),
        1,
        "the restart sent on_dvr again: the recording was left for recovery"
    );
}

/// `on_dvr` of a finished recording has SRS's fields and Estuary's `recording_id`, and its
/// `cwd` and `file` lead to the file; `/metrics` counts the bytes and fragments written and
/// the recordings active, back to 0 when it ends.
#[test]
fn on_dvr_and_metrics_describe_a_finished_recording() {
    let clip = gop1_clip(4);
    let receiver = ok_receiver();
    let server = Server::start("rec-dvr", &config(&[("enabled", "true")], &dvr_hook(&receiver)));
    let mut publisher = server.publish_clip("live/cam", &clip, "publisher.log");
    wait_until(&server, LIMIT, "estuary_recordings_active 1", || {
        (metric(&server, "estuary_recordings_active", &[]) == 1.0).then_some(())
    });
    wait_published(&server, &mut publisher, clip.secs);
    let r = ended_recordings(&server, "live", "cam", 1).remove(0);
    assert_eq!(r["state"], "completed", "{r}");
    let id = id_of(&r);
    let dvr = wait_dvr(&server, &receiver, id);
    for field in [
        "action",
        "client_id",
        "ip",
        "vhost",
        "app",
        "stream",
        "param",
        "cwd",
        "file",
    ] {
        assert!(dvr[field].is_string(), "on_dvr without {field}: {dvr}");
    }
    assert_eq!(dvr["action"], "on_dvr");
    assert_eq!(dvr["app"], "live");
    assert_eq!(dvr["stream"], "cam");
    assert_eq!(dvr["vhost"], "__defaultVhost__");
    assert!(
        dvr.get("error").is_none_or(Value::is_null),
        "a completed recording has no error: {dvr}"
    );
    let named = Path::new(dvr["cwd"].as_str().unwrap()).join(dvr["file"].as_str().unwrap());
    let real = file_of(&server, &r).canonicalize().expect("recording file");
    assert_eq!(
        named.canonicalize().ok(),
        Some(real.clone()),
        "on_dvr's cwd/file is not the recording: {dvr}"
    );
    assert_eq!(dvr_of(&receiver, id).len(), 1, "one on_dvr per file");

    let bytes = metric(&server, "estuary_recording_bytes_total", &[]);
    let size = std::fs::metadata(&real).map(|m| m.len()).unwrap_or(0) as f64;
    // The fragmented file is written, then rewritten fast-start: about its size.
    assert!(
        bytes >= size * 0.9,
        "estuary_recording_bytes_total {bytes}, file {size} bytes"
    );
    let fragments = metric(&server, "estuary_recording_fragments_total", &[]);
    assert!(
        fragments >= 2.0,
        "estuary_recording_fragments_total {fragments} for 4 s in 500-ms fragments"
    );
    wait_until(&server, LIMIT, "estuary_recordings_active back to 0", || {
        (metric(&server, "estuary_recordings_active", &[]) == 0.0).then_some(())
    });
}

/// `on_dvr` is about the publish that was recorded, as SRS sends it (DESIGN.md: "SRS's
/// bodies, ids"; `hooks/mod.rs`: `on_dvr` has `on_publish`'s fields, `param` being the query
/// string the client sent): a backend that matches it to the `on_publish` it allowed, by
/// client id, or reads the token in `param`, finds the same values.
#[test]
fn on_dvr_names_the_publisher_that_was_recorded() {
    let clip = gop1_clip(2);
    let receiver = ok_receiver();
    let hooks = dvr_hook(&receiver) + &format!("on_publish = [\"{}\"]\n", receiver.url("/publish"));
    let server = Server::start("rec-dvr-publisher", &config(&[("enabled", "true")], &hooks));
    let mut publisher = server.publish_clip("live/cam?token=abc", &clip, "publisher.log");
    wait_published(&server, &mut publisher, clip.secs);
    let r = ended_recordings(&server, "live", "cam", 1).remove(0);
    let dvr = wait_dvr(&server, &receiver, id_of(&r));
    let publish = receiver
        .hits()
        .into_iter()
        .map(|h| h.body)
        .find(|b| b["action"] == "on_publish")
        .expect("on_publish");
    assert_eq!(publish["param"], "?token=abc", "{publish}");
    let differ: Vec<String> = ["client_id", "ip", "tcUrl", "param", "stream_url", "stream_id"]
        .iter()
        .filter(|f| dvr[**f] != publish[**f])
        .map(|f| format!("{f}: on_publish {} / on_dvr {}", publish[*f], dvr[*f]))
        .collect();
    assert!(
        differ.is_empty(),
        "on_dvr does not name the publish it recorded:\n{}",
        differ.join("\n")
    );
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A recording's file, finished or not, or its poster.
fn is_media(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    [".mp4", ".flv", ".part", ".jpg", ".faststart"]
        .iter()
        .any(|e| name.ends_with(e))
}

/// No stream name leaves `record.root`: names that climb (`..`, `../../x`, an app of
/// `live/..`), hide dots (`a..b`), arrive percent-escaped as ffmpeg sends them, or carry
/// backslashes and absolute paths each reach the server as published (checked through the
/// API) and are recorded, every file under the root, nothing anywhere above it.
#[test]
fn a_stream_name_cannot_escape_the_recording_root() {
    let clip = gop1_clip(2);
    let server = Server::start("rec-names", &config(&[("enabled", "true")], ""));
    // How ffmpeg is told where to publish, and the (app, stream) the server gets.
    let rtmp = format!("rtmp://127.0.0.1:{}", server.rtmp);
    let url = |path: &str| vec![format!("{rtmp}/{path}")];
    let playpath = |app: &str, stream: &str| {
        vec![
            "-rtmp_app".to_string(),
            app.to_string(),
            "-rtmp_playpath".to_string(),
            stream.to_string(),
            format!("{rtmp}/"),
        ]
    };
    let hostile: Vec<(Vec<String>, &str, &str)> = vec![
        (url("live/.."), "live", ".."),
        (url("live/a..b"), "live", "a..b"),
        // ffmpeg sends the escapes as they are; the server takes them literally.
        (
            url("live/%2E%2E%2F%2E%2E%2Fescaped-pct"),
            "live",
            "%2E%2E%2F%2E%2E%2Fescaped-pct",
        ),
        // ffmpeg makes the app "live/.." of this one.
        (url("live/../../escaped-url"), "live/..", "../escaped-url"),
        (
            playpath("live", "../../escaped-playpath"),
            "live",
            "../../escaped-playpath",
        ),
        (
            playpath("..", "..\\..\\escaped-backslash"),
            "..",
            "..\\..\\escaped-backslash",
        ),
        (
            playpath("live", "/tmp/escaped-absolute"),
            "live",
            "/tmp/escaped-absolute",
        ),
    ];
    let publishers: Vec<Proc> = hostile
        .iter()
        .enumerate()
        .map(|(i, (target, ..))| {
            let mut cmd = std::process::Command::new("ffmpeg");
            cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-re", "-i"])
                .arg(&clip.path)
                .args(["-c", "copy", "-f", "flv"])
                .args(target);
            Proc::spawn(&mut cmd, &server.dir.join(format!("publisher-{i}.log")))
        })
        .collect();
    // A name with anything but letters, digits and "-_." (or of dots alone) is refused at
    // ingest, before it reaches a log, a label or a file name; the others are recorded under
    // the root (issue 11, stream keys validated at every ingress).
    let allowed = |app: &str, stream: &str| app == "live" && stream == "a..b";
    for ((target, app, stream), mut p) in hostile.iter().zip(publishers) {
        let status = p.wait(Duration::from_secs(u64::from(clip.secs)) + LIMIT);
        if allowed(app, stream) {
            assert!(
                status.is_some_and(|s| s.success()),
                "{target:?} was refused; log:\n{}",
                server.log()
            );
        } else {
            assert!(
                status.is_some_and(|s| !s.success()),
                "{target:?} (app {app:?}, stream {stream:?}) was let in ({status:?})"
            );
        }
    }
    let all = wait_until(&server, LIMIT, "the allowed name's finished recording", || {
        let all = recordings(&server, "limit=100");
        let done = !all.is_empty() && all.iter().all(|r| r["state"] != "pending" && r["state"] != "recording");
        done.then_some(all)
    });
    let root = root(&server).canonicalize().expect("record root");
    for (target, app, stream) in hostile.iter().filter(|(_, app, stream)| allowed(app, stream)) {
        let r = all
            .iter()
            .find(|r| r["app"] == *app && r["stream"] == *stream)
            .unwrap_or_else(|| panic!("no recording of app {app:?} stream {stream:?} ({target:?}): {all:#?}"));
        assert_eq!(r["state"], "completed", "{r}");
        let file = file_of(&server, r)
            .canonicalize()
            .unwrap_or_else(|e| panic!("{r}: {e}"));
        assert!(
            file.starts_with(&root),
            "{app}/{stream} recorded outside the root: {}",
            file.display()
        );
        assert_plays(&file);
    }
    assert_eq!(all.len(), 1, "only the allowed name was recorded: {all:#?}");
    let log = server.log();
    for (_, _, stream) in hostile.iter().filter(|(_, app, stream)| !allowed(app, stream)) {
        assert!(
            !log.contains(&format!("stream={stream}")),
            "a refused name reached the log: {stream:?}"
        );
    }

    // Nothing was written outside the root: not elsewhere in the working directory...
    for file in walk(&server.dir).into_iter().filter(|p| is_media(p)) {
        let file = file.canonicalize().expect("canonical");
        assert!(file.starts_with(&root), "{} is outside the root", file.display());
    }
    // ...nor in the folders above it, where a climbing name would land.
    for dir in server.dir.ancestors().skip(1).take(3) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            assert!(
                !name.contains("escaped"),
                "{} was written by a stream name",
                entry.path().display()
            );
        }
    }
    assert!(
        !Path::new("/tmp/escaped-absolute").exists(),
        "an absolute stream name reached /tmp"
    );
}
