//! Where things are: the workspace, `target/`, the server binary, fixtures, per-test scratch dirs.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The workspace root (the folder holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// A fixture from `../shared/fixtures` (the repo sits beside `shared/`).
pub fn shared_fixture(name: &str) -> PathBuf {
    workspace_root().join("../shared/fixtures").join(name)
}

/// The `estuary` binary under test.
///
/// `ESTUARY_BIN` names it explicitly (scripts/test.sh sets it after building); otherwise the
/// harness runs `cargo build -p estuary --bin estuary` once per test process, so a test never
/// runs a stale binary.
pub fn estuary_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("ESTUARY_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "estuary", "--bin", "estuary"])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build -p estuary");
        assert!(status.success(), "cargo build -p estuary failed");
        target_dir().join("debug/estuary")
    })
    .clone()
}

/// A fresh directory for one test's logs and scratch files: `target/e2e/<name>-<pid>-<n>`.
pub fn scratch_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = target_dir()
        .join("e2e")
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create scratch dir {}: {e}", dir.display()));
    dir
}
