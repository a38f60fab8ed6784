//! Child processes for the tests: a guard that kills on drop, bounded waits, signals.
//!
//! Every external tool (server, ffmpeg, ffprobe, rtmpdump, gst-launch, node) runs under a
//! [`ChildGuard`], so a failing test never leaves a process behind, and every wait has a limit.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A child process that is killed (SIGKILL) and reaped when the guard is dropped.
pub struct ChildGuard {
    child: Child,
    name: String,
    /// Where stderr goes, when the guard captured it into a file.
    stderr_path: Option<PathBuf>,
}

impl ChildGuard {
    /// Starts `cmd` with stdin closed, stdout discarded and stderr written to `stderr_path`.
    pub fn spawn_logged(name: &str, cmd: &mut Command, stderr_path: &Path) -> ChildGuard {
        let err =
            File::create(stderr_path).unwrap_or_else(|e| panic!("create log file {}: {e}", stderr_path.display()));
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {name} ({cmd:?}): {e}"));
        ChildGuard {
            child,
            name: name.to_string(),
            stderr_path: Some(stderr_path.to_path_buf()),
        }
    }

    /// Wraps an already spawned child.
    pub fn new(name: &str, child: Child) -> ChildGuard {
        ChildGuard {
            child,
            name: name.to_string(),
            stderr_path: None,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status if the process has ended, without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `limit` for the process to end.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// Sends a signal by name ("TERM", "INT", "STOP", "CONT", "KILL") with the `kill` utility.
    pub fn signal(&self, sig: &str) {
        send_signal(self.child.id(), sig);
    }

    /// Kills the process and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the process wrote to stderr so far (when it was captured to a file).
    pub fn stderr_text(&self) -> String {
        self.stderr_path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if std::thread::panicking() && self.name != "estuary" {
            if let Some(path) = &self.stderr_path {
                let text = self.stderr_text();
                let tail = crate::server::tail_chars(&text, 8_000);
                eprintln!("----- {} stderr ({}) -----\n{tail}", self.name, path.display());
            }
        }
        if self.try_status().is_none() {
            // A stopped process must be continued for SIGKILL to be reaped promptly.
            send_signal(self.child.id(), "CONT");
            self.kill();
        }
    }
}

/// Sends `sig` to `pid` with the `kill` utility (the crate forbids `unsafe`, so no libc).
pub fn send_signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The result of a command run to completion (or killed at its time limit).
#[derive(Debug)]
pub struct RunOutput {
    /// `None` when the command was killed at the limit.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }
}

/// Runs `cmd` with stdin closed, capturing stdout and stderr, killing it after `limit`.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> RunOutput {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    let mut out = child.stdout.take().expect("stdout was piped");
    let mut err = child.stderr.take().expect("stderr was piped");
    let out_thread = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err_thread = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let mut guard = ChildGuard::new("command", child);
    let status = guard.wait_timeout(limit);
    if status.is_none() {
        guard.kill();
    }
    RunOutput {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// Polls `cond` every 50 ms until it returns `Some` or `limit` passes.
pub fn wait_until<T>(limit: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}
