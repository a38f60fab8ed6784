//! Bad configuration is refused at start (issue 2, item 2): the process exits non-zero and
//! says which file, which key and why.

use std::process::Command;
use std::time::Duration;

use estuary_tests::proc::ChildGuard;
use estuary_tests::{paths::estuary_bin, TestCtx};

/// Runs `estuary` with `args` and returns (exit code, stderr).
fn run(args: &[&str]) -> (Option<i32>, String) {
    let ctx = TestCtx::new("config_errors_run");
    let log = ctx.next_log("estuary");
    let mut cmd = Command::new(estuary_bin());
    cmd.args(args);
    let mut child = ChildGuard::spawn_logged("estuary", &mut cmd, &log);
    let status = child
        .wait_timeout(Duration::from_secs(20))
        .expect("a bad config must stop the server at once");
    (status.code(), std::fs::read_to_string(&log).unwrap_or_default())
}

fn config_file(name: &str, text: &str) -> String {
    let ctx = TestCtx::new(name);
    let path = ctx.dir.join("bad.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn unknown_key_is_refused_with_file_and_key() {
    let path = config_file("unknown_key", "[rtmp]\nlisten_address = \"127.0.0.1:1\"\n");
    let (code, stderr) = run(&["-c", &path]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains(&path) && stderr.contains("listen_address"), "{stderr}");
}

#[test]
fn wrong_type_is_refused_with_the_key() {
    let path = config_file("wrong_type", "[play]\nmax_lag_ms = \"three seconds\"\n");
    let (code, stderr) = run(&["-c", &path]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains(&path) && stderr.contains("max_lag_ms"), "{stderr}");
}

#[test]
fn unusable_address_is_refused() {
    let (code, stderr) = run(&["--rtmp-listen", "not-an-address", "--http-listen", "127.0.0.1:0"]);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("rtmp.listen") && stderr.contains("not-an-address"),
        "{stderr}"
    );

    // An address that parses but cannot be bound (a port already taken).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = run(&["--rtmp-listen", &addr, "--http-listen", "127.0.0.1:0"]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains(&addr), "{stderr}");
}

#[test]
fn missing_file_is_refused() {
    let (code, stderr) = run(&["-c", "/nonexistent/estuary.toml"]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("/nonexistent/estuary.toml"), "{stderr}");
}
