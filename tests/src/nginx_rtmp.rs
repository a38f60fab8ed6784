//! A real nginx-rtmp (Debian `nginx` + `libnginx-mod-rtmp`, installed by
//! `scripts/install-test-deps.sh`) on 127.0.0.1, as an upstream or origin for Estuary: one
//! `live` application, no HLS, its own config and logs in the test's scratch dir. It can be
//! stopped and started again on the same port (an upstream restart).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc::{wait_until, ChildGuard};
use crate::server::free_port;
use crate::TestCtx;

const MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// A running nginx-rtmp; killed on drop.
pub struct NginxRtmp {
    pub port: u16,
    dir: PathBuf,
    child: Option<ChildGuard>,
    starts: u32,
}

fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

impl NginxRtmp {
    /// Starts nginx-rtmp on a free port. Panics, saying how to install it, if it is missing.
    pub fn start(ctx: &TestCtx) -> NginxRtmp {
        let found = Command::new("nginx").arg("-v").output().is_ok() && Path::new(MODULE).exists();
        assert!(
            found,
            "nginx with the RTMP module is not installed: run scripts/install-test-deps.sh \
             (Debian packages nginx and libnginx-mod-rtmp)"
        );
        let dir = ctx.dir.join("nginx");
        std::fs::create_dir_all(dir.join("logs")).expect("create nginx dir");
        let mut nginx = NginxRtmp {
            port: free_port(),
            dir,
            child: None,
            starts: 0,
        };
        nginx.start_again();
        nginx
    }

    /// `rtmp://127.0.0.1:PORT/{app}/{stream}`
    pub fn rtmp_url(&self, app: &str, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{app}/{stream}", self.port)
    }

    /// Kills nginx (every publisher and player is dropped at once) and waits until its port
    /// is closed.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
        let closed = wait_until(Duration::from_secs(10), || (!accepts(self.port)).then_some(()));
        assert!(closed.is_some(), "nginx still accepts on {} after a kill", self.port);
    }

    /// Starts nginx on the same port again (after [`stop`](Self::stop)) and waits until it
    /// accepts.
    pub fn start_again(&mut self) {
        let dir = &self.dir;
        let conf = format!(
            "load_module {MODULE};\n\
             daemon off;\nmaster_process off;\nworker_processes 1;\n\
             pid {pid};\nerror_log {log} info;\n\
             events {{ worker_connections 256; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;\n\
               application live {{ live on; }} }} }}\n",
            pid = dir.join("nginx.pid").display(),
            log = dir.join("logs/error.log").display(),
            port = self.port,
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let mut cmd = Command::new("nginx");
        cmd.arg("-c").arg(&conf_path).arg("-p").arg(dir);
        let log = dir.join(format!("logs/stderr-{}.log", self.starts));
        self.starts += 1;
        let mut child = ChildGuard::spawn_logged("nginx", &mut cmd, &log);
        let up = wait_until(Duration::from_secs(20), || {
            if child.try_status().is_some() {
                return Some(false);
            }
            accepts(self.port).then_some(true)
        });
        assert_eq!(
            up,
            Some(true),
            "nginx-rtmp did not start on {}: {}\n{}",
            self.port,
            child.stderr_text(),
            std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default()
        );
        self.child = Some(child);
    }
}
