//! A `redis-server` of the test's own on loopback (Debian's), with no persistence.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{free_port, wait_for, Proc, LIMIT};

pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    _proc: Proc,
}

impl Redis {
    pub fn start(name: &str) -> Redis {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("estuary-edge-redis-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .current_dir(&dir);
        let proc = Proc::spawn(&mut cmd, &dir.join("redis.log"));
        let redis = Redis { port, dir, _proc: proc };
        let up = wait_for(LIMIT, || (redis.cli(&["PING"]) == "PONG").then_some(()));
        assert!(up.is_some(), "redis-server did not start in {}", redis.dir.display());
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `redis-cli`'s answer, trimmed (empty for nil or no answer).
    pub fn cli(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }
}
