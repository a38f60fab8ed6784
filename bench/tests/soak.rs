//! Two minutes of churn against the real `estuary` binary (issue 12, "Soak"): publishers
//! reconnecting, RTMP / HTTP-FLV viewers joining and leaving, HLS pollers, stalled viewers,
//! and a hook receiver that goes down and comes back. Afterwards the server must be back at
//! its idle baseline (open fds, `estuary_tasks`, `estuary_tracked_tasks`), every hook must
//! have its end at the receiver (`on_connect`/`on_close`, `on_publish`/`on_unpublish`,
//! `on_play`/`on_stop`, by client id) with nothing undelivered, every stalled viewer must
//! have been cut by the server, and RSS must have no trend.
//!
//! The scenario is `estuary_bench::soak` (the same code as `estuary-soak`'s 30 minutes).
//! It lives with the bench because it drives the bench's publisher and viewers; the
//! workspace keeps `bench` and `tests` independent of each other, so the test is the bench
//! crate's own.
//!
//! Nothing here is a timing: every wait for the server to settle is a poll with a generous
//! limit. The RSS bound is half the slope a leak of 1 KB per connection would give at the
//! run's own connection rate (about 2000 connections a minute, probers included: such a
//! leak adds ~2 MB/min, the bound is ~1 MB/min). Once warm (45 s) VmRSS follows the load
//! within a few hundred KB: slopes fitted over 75-s windows of a 3-minute debug run stayed
//! within ±430 KB/min, and the 400 kbps clip keeps the memory that follows the media (HLS
//! windows, GOP caches) small.

use std::path::PathBuf;
use std::process::Command;

use estuary_bench::soak::{self, SoakConfig};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if PathBuf::from(&d).is_absolute() => PathBuf::from(d),
        Some(d) => workspace().join(d),
        None => workspace().join("target"),
    }
}

/// `ESTUARY_BIN`, or the debug binary built now (as the e2e harness in `tests/` does).
fn estuary_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ESTUARY_BIN") {
        return PathBuf::from(bin);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "estuary", "--bin", "estuary"])
        .current_dir(workspace())
        .status()
        .expect("run cargo build -p estuary");
    assert!(status.success(), "cargo build -p estuary failed");
    target_dir().join("debug/estuary")
}

#[test]
fn two_minutes_of_churn_leave_nothing_behind() {
    let work = target_dir().join("e2e").join(format!("soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let clip = target_dir().join("test-media/soak-360p-400k.flv");
    let cfg = SoakConfig::two_minutes(estuary_bin(), work.clone(), clip);
    let report = soak::run(&cfg).unwrap_or_else(|e| panic!("the soak run could not be made: {e:#}"));
    let summary = report.human();
    eprintln!("{summary}");
    if !report.problems.is_empty() {
        let log = std::fs::read_dir(&work)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .max();
        panic!(
            "soak checks failed (server log: {}):\n{summary}",
            log.map_or("none".into(), |p| p.display().to_string())
        );
    }
}
