//! The upstreams a pulled source is pulled from, run by the test: a live HLS that ffmpeg's
//! segments and a playlist writer make and `python3 -m http.server` serves, and an
//! nginx-rtmp (Debian nginx + libnginx-mod-rtmp, as `bench/compare.sh` runs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::support::{free_port, get, wait_for, Proc, LIMIT};

/// Segments of the HLS origin, one second each, every one starting with a keyframe.
const SEGMENTS: u64 = 6;
/// A cycle of the origin's playlist: the six segments, then one that was never written (a
/// 404 gap); each new round starts with `EXT-X-DISCONTINUITY` (the timestamps start over).
const CYCLE: u64 = SEGMENTS + 1;
/// Entries listed at once (a sliding live window).
const WINDOW: u64 = 4;

/// A live HLS origin with a discontinuity every 7 s and a missing segment before it.
pub struct HlsOrigin {
    pub port: u16,
    stop: Arc<AtomicBool>,
    writer: Option<JoinHandle<()>>,
    _http: Proc,
}

impl HlsOrigin {
    pub fn start(dir: &Path) -> HlsOrigin {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("origin dir");
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args(["-t", &SEGMENTS.to_string(), "-c:v", "libx264", "-preset", "ultrafast"])
            .args(["-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-c:a", "aac"])
            .args([
                "-f",
                "hls",
                "-hls_time",
                "1",
                "-hls_list_size",
                "0",
                "-hls_segment_filename",
            ])
            .arg(dir.join("a%d.ts"))
            .arg(dir.join("written.m3u8"))
            .status()
            .expect("run ffmpeg");
        assert!(status.success(), "ffmpeg could not write the HLS segments");
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (dir, stop) = (dir.to_path_buf(), Arc::clone(&stop));
            std::thread::spawn(move || write_playlists(&dir, &stop))
        };
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(dir);
        let http = Proc::spawn(&mut cmd, &dir.join("http.log"));
        let up = wait_for(LIMIT, || get(port, "/live.m3u8", "").ok().filter(|r| r.status == 200));
        assert!(up.is_some(), "python3 -m http.server did not serve the playlist");
        HlsOrigin {
            port,
            stop,
            writer: Some(writer),
            _http: http,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/live.m3u8", self.port)
    }
}

impl Drop for HlsOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Entry `n` of the endless playlist: its file, and whether a discontinuity precedes it.
fn entry(n: u64) -> (String, bool) {
    match n % CYCLE {
        pos if pos < SEGMENTS => (format!("a{pos}.ts"), pos == 0 && n > 0),
        _ => (format!("gone-{n}.ts"), false),
    }
}

/// Rewrites `live.m3u8` (atomically) as the window slides by one entry a second.
fn write_playlists(dir: &Path, stop: &AtomicBool) {
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let end = started.elapsed().as_secs() + WINDOW;
        let first = end - WINDOW;
        let discontinuities = (1..=first).filter(|&n| entry(n).1).count();
        let mut text = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:{discontinuities}\n"
        );
        for n in first..end {
            let (file, discontinuity) = entry(n);
            if discontinuity {
                text += "#EXT-X-DISCONTINUITY\n";
            }
            text += &format!("#EXTINF:1.000,\n{file}\n");
        }
        let tmp = dir.join("live.m3u8.tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, dir.join("live.m3u8"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An nginx-rtmp on loopback, one worker, `live on`.
pub struct Nginx {
    pub port: u16,
    _proc: Proc,
}

impl Nginx {
    /// `None` (and a note) when nginx or its RTMP module is not installed.
    pub fn start(dir: &Path) -> Option<Nginx> {
        let module = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
        if !PathBuf::from(module).exists() || Command::new("nginx").arg("-v").output().is_err() {
            eprintln!("nginx with libnginx-mod-rtmp is not installed (scripts/install-test-deps.sh); skipped");
            return None;
        }
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("logs")).expect("nginx dir");
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "load_module {module};\ndaemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/logs/error.log warn;\nevents {{ worker_connections 256; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;\n\
             application live {{ live on; }} }} }}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let mut cmd = Command::new("nginx");
        cmd.arg("-c").arg(dir.join("nginx.conf")).arg("-p").arg(dir);
        let proc = Proc::spawn(&mut cmd, &dir.join("logs/stdout.log"));
        let up = wait_for(LIMIT, || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
        assert!(up.is_some(), "nginx did not listen; see {}", dir.display());
        Some(Nginx { port, _proc: proc })
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{path}", self.port)
    }
}
