use std::path::PathBuf;

use super::*;
use crate::recordings::schedule::ScheduleSpec;

/// A fresh folder under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("estuary-catalogue-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn memory() -> Catalogue {
    Catalogue::open_in_memory().unwrap()
}

fn new(app: &str, stream: &str, state: RecordingState, path: Option<&str>, at: i64) -> NewRecording {
    NewRecording {
        app: app.into(),
        stream: stream.into(),
        state,
        format: RecordingFormat::Mp4,
        plan: RecordingPlan::Session,
        path: path.map(Into::into),
        created_at: at,
        started_at: (state != RecordingState::Pending).then_some(at),
        schedule_id: None,
    }
}

fn spec(stream: &str, cron: &str) -> ScheduleSpec {
    ScheduleSpec {
        app: "live".into(),
        stream: stream.into(),
        cron: cron.into(),
        duration_secs: Some(3600),
        stop_cron: None,
        timezone: Some("Europe/Berlin".into()),
        active: true,
    }
}

fn ids(recordings: &[Recording]) -> Vec<i64> {
    recordings.iter().map(|r| r.id).collect()
}

#[test]
fn open_creates_the_file_in_wal_mode_and_keeps_it() {
    let dir = TempDir::new("open");
    let path = dir.0.join("nested/folder/catalogue.db");
    let first = {
        let c = Catalogue::open(&path).unwrap();
        let conn = c.lock();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        let keys: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!((mode.as_str(), sync, version, keys), ("wal", 1, SCHEMA_VERSION, true));
        drop(conn);
        c.insert_recording(new("live", "a", RecordingState::Recording, Some("live/a/1.mp4"), 1000))
            .unwrap()
    };
    assert!(path.exists());
    let c = Catalogue::open(&path).unwrap();
    assert_eq!(c.get(first.id).unwrap(), first);
}

#[test]
fn a_newer_schema_is_refused_with_the_file_named() {
    let dir = TempDir::new("newer");
    let path = dir.0.join("catalogue.db");
    Catalogue::open(&path)
        .unwrap()
        .lock()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let e = Catalogue::open(&path).unwrap_err();
    assert!(matches!(e, CatalogueError::SchemaTooNew { found: 99, .. }), "{e}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}

#[test]
fn a_recording_from_pending_to_completed() {
    let c = memory();
    let r = c
        .insert_recording(new("live", "cam", RecordingState::Pending, None, 1000))
        .unwrap();
    assert_eq!(
        (r.state, r.path.as_deref(), r.started_at),
        (RecordingState::Pending, None, None)
    );
    assert_eq!((r.duration_ms, r.size_bytes, r.error.as_deref()), (0, 0, None));
    let r = c.set_started(r.id, 2000, "live/cam/2026-05-04-190000.mp4").unwrap();
    assert_eq!(r.state, RecordingState::Recording);
    assert_eq!(
        (r.started_at, r.path.as_deref()),
        (Some(2000), Some("live/cam/2026-05-04-190000.mp4"))
    );
    c.set_progress(r.id, 5000, 1_234_567).unwrap();
    c.set_poster(r.id, "live/cam/2026-05-04-190000.jpg").unwrap();
    let r = c
        .update_state(r.id, RecordingState::Failed, Some("disk full"), None)
        .unwrap();
    assert_eq!(
        (r.state, r.error.as_deref(), r.ended_at),
        (RecordingState::Failed, Some("disk full"), None)
    );
    let r = c
        .update_state(r.id, RecordingState::Completed, None, Some(9000))
        .unwrap();
    assert_eq!(r.error, None, "a new state clears the error");
    let stored = c.get(r.id).unwrap();
    assert_eq!(stored, r);
    assert_eq!(
        (stored.duration_ms, stored.size_bytes, stored.ended_at),
        (5000, 1_234_567, Some(9000))
    );
    assert_eq!(stored.poster_path.as_deref(), Some("live/cam/2026-05-04-190000.jpg"));
}

#[test]
fn ids_are_never_reused() {
    let c = memory();
    let a = c
        .insert_recording(new("live", "a", RecordingState::Pending, None, 1))
        .unwrap();
    let b = c
        .insert_recording(new("live", "a", RecordingState::Pending, None, 2))
        .unwrap();
    assert_eq!(c.delete(b.id).unwrap(), b);
    let d = c
        .insert_recording(new("live", "a", RecordingState::Pending, None, 3))
        .unwrap();
    assert_eq!((a.id, b.id, d.id), (1, 2, 3));
}

#[test]
fn two_recordings_never_share_a_file() {
    let c = memory();
    c.insert_recording(new("live", "a", RecordingState::Recording, Some("live/a.mp4"), 1))
        .unwrap();
    let e = c
        .insert_recording(new("live", "b", RecordingState::Recording, Some("live/a.mp4"), 2))
        .unwrap_err();
    assert!(
        matches!(&e, CatalogueError::PathTaken { path } if path == "live/a.mp4"),
        "{e}"
    );
    let pending = c
        .insert_recording(new("live", "b", RecordingState::Pending, None, 3))
        .unwrap();
    c.insert_recording(new("live", "b", RecordingState::Pending, None, 4))
        .unwrap();
    let e = c.set_started(pending.id, 5, "live/a.mp4").unwrap_err();
    assert!(matches!(e, CatalogueError::PathTaken { .. }), "{e}");
    assert_eq!(c.get(pending.id).unwrap().state, RecordingState::Pending, "unchanged");
}

#[test]
fn paths_stay_under_the_root() {
    let c = memory();
    for bad in [
        "",
        ".",
        "/etc/passwd",
        "../x.mp4",
        "live/../../x.mp4",
        "\\\\server\\x.mp4",
    ] {
        let e = c
            .insert_recording(new("live", "a", RecordingState::Recording, Some(bad), 1))
            .unwrap_err();
        assert!(matches!(e, CatalogueError::PathOutsideRoot { .. }), "{bad:?}: {e}");
    }
    let r = c
        .insert_recording(new("live", "a", RecordingState::Pending, None, 1))
        .unwrap();
    assert!(matches!(
        c.set_started(r.id, 1, "/tmp/x.mp4"),
        Err(CatalogueError::PathOutsideRoot { .. })
    ));
    assert!(matches!(
        c.set_poster(r.id, "../x.jpg"),
        Err(CatalogueError::PathOutsideRoot { .. })
    ));
}

#[test]
fn missing_rows_are_named() {
    let c = memory();
    let not_found = |e: CatalogueError| e.to_string();
    assert_eq!(not_found(c.get(42).unwrap_err()), "recording 42 not found");
    assert_eq!(
        not_found(c.update_state(42, RecordingState::Failed, None, None).unwrap_err()),
        "recording 42 not found"
    );
    assert_eq!(
        not_found(c.set_progress(42, 1, 1).unwrap_err()),
        "recording 42 not found"
    );
    assert_eq!(
        not_found(c.set_started(42, 1, "a.mp4").unwrap_err()),
        "recording 42 not found"
    );
    assert_eq!(
        not_found(c.set_poster(42, "a.jpg").unwrap_err()),
        "recording 42 not found"
    );
    assert_eq!(not_found(c.delete(42).unwrap_err()), "recording 42 not found");
    assert_eq!(not_found(c.get_schedule(7).unwrap_err()), "schedule 7 not found");
    assert_eq!(
        not_found(c.update_schedule(7, &spec("a", "@daily")).unwrap_err()),
        "schedule 7 not found"
    );
    assert_eq!(not_found(c.delete_schedule(7).unwrap_err()), "schedule 7 not found");
    assert_eq!(
        not_found(c.set_run_times(7, None, None).unwrap_err()),
        "schedule 7 not found"
    );
    let mut scheduled = new("live", "a", RecordingState::Pending, None, 1);
    scheduled.schedule_id = Some(7);
    assert_eq!(
        not_found(c.insert_recording(scheduled).unwrap_err()),
        "schedule 7 not found"
    );
}

#[test]
fn a_corrupt_row_is_an_error_not_a_panic() {
    let c = memory();
    let r = c
        .insert_recording(new("live", "a", RecordingState::Pending, None, 1))
        .unwrap();
    {
        let conn = c.lock();
        conn.pragma_update(None, "ignore_check_constraints", true).unwrap();
        conn.execute("UPDATE recordings SET state = 'bogus' WHERE id = ?1", [r.id])
            .unwrap();
    }
    let e = c.get(r.id).unwrap_err().to_string();
    assert!(e.contains("read recording 1") && e.contains("bogus"), "{e}");
}

/// Recordings over three streams; returns them in insertion order.
fn sample(c: &Catalogue) -> Vec<Recording> {
    let rows = [
        ("live", "a", RecordingState::Completed, Some("live/a/1.mp4"), 1000),
        ("live", "a", RecordingState::Failed, Some("live/a/2.mp4"), 2000),
        ("live", "b", RecordingState::Recording, Some("live/b/1.mp4"), 3000),
        ("news", "a", RecordingState::Completed, Some("news/a/1.mp4"), 4000),
        ("live", "a", RecordingState::Pending, None, 5000),
        ("live", "a", RecordingState::Interrupted, Some("live/a/3.mp4"), 6000),
    ];
    rows.into_iter()
        .map(|(app, stream, state, path, at)| c.insert_recording(new(app, stream, state, path, at)).unwrap())
        .collect()
}

#[test]
fn listing_filters_pages_and_counts() {
    let c = memory();
    let r = sample(&c);
    let all = c.list(&RecordingFilter::default()).unwrap();
    assert_eq!(ids(&all.items), [6, 5, 4, 3, 2, 1], "newest first");
    assert_eq!((all.total, all.limit, all.offset), (6, DEFAULT_LIMIT, 0));
    let live_a = RecordingFilter {
        app: Some("live".into()),
        stream: Some("a".into()),
        ..Default::default()
    };
    assert_eq!(ids(&c.list(&live_a).unwrap().items), [6, 5, 2, 1]);
    let completed = RecordingFilter {
        state: Some(RecordingState::Completed),
        ..Default::default()
    };
    assert_eq!(ids(&c.list(&completed).unwrap().items), [4, 1]);
    let span = RecordingFilter {
        from: Some(2000),
        to: Some(5000),
        ..Default::default()
    };
    assert_eq!(ids(&c.list(&span).unwrap().items), [4, 3, 2], "from <= start < to");
    let page = c
        .list(&RecordingFilter {
            limit: Some(2),
            offset: Some(1),
            ..live_a.clone()
        })
        .unwrap();
    assert_eq!((ids(&page.items), page.total), (vec![5, 2], 4));
    let capped = c
        .list(&RecordingFilter {
            limit: Some(5000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(capped.limit, MAX_LIMIT);
    let count_only = c
        .list(&RecordingFilter {
            limit: Some(0),
            ..live_a
        })
        .unwrap();
    assert_eq!((count_only.items.len(), count_only.total), (0, 4));
    assert_eq!(r.len(), 6);
}

#[test]
fn questions_of_recovery_retention_and_playback() {
    let c = memory();
    sample(&c);
    assert_eq!(ids(&c.open_recordings().unwrap()), [3]);
    assert_eq!(ids(&c.pending_for("live", "a").unwrap()), [5]);
    assert!(c.pending_for("live", "b").unwrap().is_empty());
    // Finished before 4500: completed 1, failed 2, completed news 4; not the open one.
    assert_eq!(ids(&c.older_than(None, 4500).unwrap()), [1, 2, 4]);
    assert_eq!(ids(&c.older_than(Some("live"), 4500).unwrap()), [1, 2]);
    c.update_state(1, RecordingState::Completed, None, Some(4600)).unwrap();
    assert_eq!(
        ids(&c.older_than(Some("live"), 4500).unwrap()),
        [2],
        "retention counts from the end"
    );

    // Playback of live/a: 1 ran 1000..4600, 6 started at 6000 and was interrupted after 500 ms.
    c.set_progress(6, 500, 10).unwrap();
    assert_eq!(ids(&c.in_range("live", "a", 0, 10_000).unwrap()), [1, 6]);
    assert_eq!(ids(&c.in_range("live", "a", 4600, 6000).unwrap()), Vec::<i64>::new());
    assert_eq!(ids(&c.in_range("live", "a", 4599, 6001).unwrap()), [1, 6]);
    assert_eq!(ids(&c.in_range("live", "a", 6500, 7000).unwrap()), Vec::<i64>::new());
    // One still being written reaches the present, whatever its progress says.
    assert_eq!(ids(&c.in_range("live", "b", 90_000, 100_000).unwrap()), [3]);
}

#[test]
fn schedules_are_stored_checked_and_updated() {
    let c = memory();
    let s = c
        .insert_schedule(&spec("news", "0 19 * * MON-FRI"), ScheduleOrigin::Api, 100)
        .unwrap();
    assert_eq!(
        (s.origin, s.created_at, s.last_run_at, s.next_run_at),
        (ScheduleOrigin::Api, 100, None, None)
    );
    assert_eq!(c.get_schedule(s.id).unwrap(), s);
    c.set_run_times(s.id, Some(1000), Some(2000)).unwrap();
    let mut changed = spec("news", "0 20 * * *");
    changed.duration_secs = None;
    changed.stop_cron = Some("0 22 * * *".into());
    changed.timezone = None;
    changed.active = false;
    let u = c.update_schedule(s.id, &changed).unwrap();
    assert_eq!(u.spec, changed);
    assert_eq!((u.last_run_at, u.next_run_at, u.created_at), (Some(1000), None, 100));
    assert_eq!(c.list_schedules().unwrap(), std::slice::from_ref(&u));

    let mut bad = spec("", "0 25 * * *");
    bad.app = String::new();
    let e = c.insert_schedule(&bad, ScheduleOrigin::Api, 1).unwrap_err();
    match &e {
        CatalogueError::InvalidSchedule(p) => assert!(p[0].starts_with("app:") && p[2].starts_with("cron:"), "{p:?}"),
        other => panic!("{other}"),
    }
    assert!(matches!(
        c.update_schedule(s.id, &bad),
        Err(CatalogueError::InvalidSchedule(_))
    ));

    let mut scheduled = new("live", "news", RecordingState::Pending, None, 1);
    scheduled.plan = RecordingPlan::Schedule;
    scheduled.schedule_id = Some(s.id);
    let r = c.insert_recording(scheduled).unwrap();
    assert_eq!(r.schedule_id, Some(s.id));
    assert_eq!(c.delete_schedule(s.id).unwrap(), u);
    assert_eq!(c.get(r.id).unwrap().schedule_id, None, "the recording stays, unlinked");
    assert!(c.list_schedules().unwrap().is_empty());
}

#[test]
fn config_schedules_are_resynced_and_api_ones_kept() {
    let c = memory();
    let api = c
        .insert_schedule(&spec("api", "@daily"), ScheduleOrigin::Api, 1)
        .unwrap();
    let first = c
        .replace_config_schedules(&[spec("a", "0 19 * * *"), spec("b", "0 20 * * *")], 10)
        .unwrap();
    assert_eq!(
        first.iter().map(|s| s.spec.stream.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    c.set_run_times(first[0].id, Some(500), Some(600)).unwrap();

    // Next start: "a" unchanged, "b" edited, "c" new.
    let second = c
        .replace_config_schedules(
            &[
                spec("c", "0 21 * * *"),
                spec("a", "0 19 * * *"),
                spec("b", "0 23 * * *"),
            ],
            20,
        )
        .unwrap();
    let a = second.iter().find(|s| s.spec.stream == "a").unwrap();
    assert_eq!(
        (a.id, a.last_run_at, a.created_at),
        (first[0].id, Some(500), 10),
        "kept as it was"
    );
    let b = second.iter().find(|s| s.spec.stream == "b").unwrap();
    assert!(b.id > first[1].id && b.spec.cron == "0 23 * * *" && b.created_at == 20);
    assert!(c.get_schedule(first[1].id).is_err(), "the old b is gone");
    assert_eq!(second.len(), 3);
    assert!(second.iter().all(|s| s.origin == ScheduleOrigin::Config));

    let e = c
        .replace_config_schedules(&[spec("a", "0 19 * * *"), spec("d", "nonsense")], 30)
        .unwrap_err();
    assert!(e.to_string().starts_with("schedule: [1] cron:"), "{e}");
    assert_eq!(c.list_schedules().unwrap().len(), 4, "nothing changed");

    assert!(c.replace_config_schedules(&[], 40).unwrap().is_empty());
    assert_eq!(c.list_schedules().unwrap(), [api]);
}

#[test]
fn words_round_trip() {
    for s in RecordingState::ALL {
        assert_eq!(s.as_str().parse::<RecordingState>(), Ok(*s));
    }
    for p in RecordingPlan::ALL {
        assert_eq!(p.to_string().parse::<RecordingPlan>(), Ok(*p));
    }
    assert_eq!("flv".parse::<RecordingFormat>(), Ok(RecordingFormat::Flv));
    let e = "mkv".parse::<RecordingFormat>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "\"mkv\" is not a recording format (expected one of: mp4, flv)"
    );
    assert_eq!(serde_json::to_string(&ScheduleOrigin::Config).unwrap(), "\"config\"");
}

#[test]
fn the_catalogue_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Catalogue>();
}
