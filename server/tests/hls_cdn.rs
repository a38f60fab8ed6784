//! End-to-end: HLS behind a real HTTP cache. A Debian `nginx` started by the test on
//! loopback with `proxy_cache` and `proxy_cache_lock` (README "HLS behind a cache or CDN")
//! stands in front of an Estuary in CDN mode (`hls.cdn = true`), and 200 lightweight HLS
//! clients play through it, each like a player: reload the playlist, fetch each new segment.
//! The origin's own metrics (`estuary_hls_requests_total{kind}`) show what it served.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{free_port, get, sample, wait_for, HttpResponse, Proc, Server, LIMIT};

const CLIENTS: usize = 200;
/// Segments each client plays before the load ends.
const SEGMENTS_EACH: usize = 6;

/// nginx of the test's own, caching what `origin` answers.
struct Nginx {
    port: u16,
    dir: PathBuf,
    proc: Proc,
}

impl Drop for Nginx {
    /// SIGQUIT to the master, which ends its workers too (a SIGKILL would leave them).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.proc.0.id().to_string()])
            .status();
        let _ = self.proc.wait(LIMIT);
    }
}

impl Nginx {
    fn start(origin: u16, dir: &Path) -> Nginx {
        let port = free_port();
        let dir = dir.join("nginx");
        std::fs::create_dir_all(dir.join("cache")).expect("nginx dir");
        // As root, nginx's workers would run as `nobody`, who cannot write the test's dirs.
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let user = if root { "user root;" } else { "" };
        let d = dir.display();
        let conf = format!(
            "{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;
    proxy_cache_path {d}/cache levels=1:2 keys_zone=hls:10m max_size=1g inactive=10m use_temp_path=off;
    upstream estuary {{
        server 127.0.0.1:{origin};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://estuary;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_cache hls;
            proxy_cache_key $uri;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 10s;
            proxy_cache_lock_age 10s;
            proxy_cache_use_stale updating error timeout http_502 http_503;
            proxy_cache_background_update on;
            add_header X-Cache-Status $upstream_cache_status;
        }}
    }}
}}
"
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let mut cmd = Command::new(if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx"
        } else {
            "nginx"
        });
        cmd.arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(dir.join("error.log"));
        let proc = Proc::spawn(&mut cmd, &dir.join("stderr.log"));
        let up = wait_for(LIMIT, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        });
        assert!(
            up.is_some(),
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        Nginx { port, dir, proc }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

fn header<'a>(r: &'a HttpResponse, name: &str) -> &'a str {
    r.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| v.as_str())
}

/// The segment URIs of a playlist, in order.
fn segments(playlist: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(playlist)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn requests(origin: &Server, kind: &str) -> f64 {
    sample(&origin.metrics(), "estuary_hls_requests_total", &[("kind", kind)]).unwrap_or(0.0)
}

/// What all clients did.
#[derive(Default)]
struct Load {
    playlists: usize,
    segments: usize,
    failures: Vec<String>,
    distinct: BTreeSet<String>,
    /// Clients that played their segments.
    done: usize,
}

/// One client, like a player: fetch the playlist, start at its third-last segment, fetch
/// each new segment once, reload the playlist every second, until it played
/// `SEGMENTS_EACH` segments (or `stop`).
fn play(port: u16, load: &Mutex<Load>, stop: &AtomicBool) {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut first = true;
    let mut played = 0;
    while played < SEGMENTS_EACH && !stop.load(Ordering::Relaxed) {
        let playlist = match get(port, "/live/cam.m3u8", "") {
            Ok(r) if r.status == 200 => r,
            Ok(r) => {
                lock(load).failures.push(format!("playlist: status {}", r.status));
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            Err(e) => {
                lock(load).failures.push(format!("playlist: {e}"));
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        lock(load).playlists += 1;
        let uris = segments(&playlist.body);
        let start = if first { uris.len().saturating_sub(3) } else { 0 };
        first = false;
        for uri in &uris[start..] {
            if !seen.insert(uri.clone()) || played >= SEGMENTS_EACH {
                continue;
            }
            match get(port, &format!("/live/{uri}"), "") {
                Ok(r) if r.status == 200 && !r.body.is_empty() => {
                    played += 1;
                    let mut l = lock(load);
                    l.segments += 1;
                    l.distinct.insert(uri.clone());
                }
                Ok(r) => lock(load).failures.push(format!("{uri}: status {}", r.status)),
                Err(e) => lock(load).failures.push(format!("{uri}: {e}")),
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    if played >= SEGMENTS_EACH {
        lock(load).done += 1;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// In CDN mode the playlist carries nothing per viewer and each answer says how long a cache
/// may keep it: a live playlist about half a fragment, a segment a day, a 404 a second, an
/// ended playlist (with `EXT-X-ENDLIST`) as long as it is served; only the cache's address is
/// let in. 200 players through nginx
/// then cost the origin about one request per segment and one playlist request per cache
/// lifetime.
#[test]
fn two_hundred_players_through_nginx_cost_the_origin_one_request_per_segment() {
    // The origin lets in only the cache (nginx, on 127.0.0.1).
    let origin = Server::start(
        "hls-cdn",
        "[hls]\ncdn = true\nreconnect_window_ms = 1000\n\n[acl]\nplay_allow = [\"127.0.0.1\"]\n",
    );
    let mut publisher = origin.publish("live/cam", "publisher.log");
    origin.wait_live("live", "cam");

    // The origin's own answers.
    let playlist = wait_for(LIMIT, || {
        get(origin.http, "/live/cam.m3u8", "")
            .ok()
            .filter(|r| r.status == 200 && !segments(&r.body).is_empty())
    })
    .expect("a playlist with segments");
    assert_eq!(header(&playlist, "cache-control"), "public, max-age=1");
    let text = String::from_utf8_lossy(&playlist.body).to_string();
    assert!(!text.contains("session="), "nothing per viewer in CDN mode:\n{text}");
    let first = segments(&playlist.body)[0].clone();
    let segment = get(origin.http, &format!("/live/{first}"), "").expect("a segment");
    assert_eq!(segment.status, 200);
    assert_eq!(header(&segment, "cache-control"), "public, max-age=86400, immutable");
    let missing = get(origin.http, "/live/nobody.m3u8", "").expect("a 404");
    assert_eq!(missing.status, 404);
    assert_eq!(header(&missing, "cache-control"), "public, max-age=1");

    // Admission in CDN mode is the access list, against the address that asks.
    let stranger = support::request_from([127, 0, 0, 2], origin.http, "GET", "/live/cam.m3u8", "", &[])
        .expect("a request from another address");
    assert_eq!(stranger.status, 403, "only the cache's address is let in");

    // 200 players through nginx.
    let nginx = Nginx::start(origin.http, &origin.dir);
    let (playlists_before, segments_before) = (requests(&origin, "playlist"), requests(&origin, "segment"));
    let load = Arc::new(Mutex::new(Load::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (load, stop, port) = (Arc::clone(&load), Arc::clone(&stop), nginx.port);
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || play(port, &load, &stop))
                .expect("spawn a client")
        })
        .collect();
    let finished = wait_for(Duration::from_secs(90), || (lock(&load).done == CLIENTS).then_some(()));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (origin_playlists, origin_segments) = (
        requests(&origin, "playlist") - playlists_before,
        requests(&origin, "segment") - segments_before,
    );
    let load = lock(&load);
    assert!(
        finished.is_some() && load.failures.is_empty(),
        "{} of {CLIENTS} clients played {SEGMENTS_EACH} segments; failures: {:?}; nginx:\n{}",
        load.done,
        &load.failures[..load.failures.len().min(10)],
        nginx.log()
    );
    let distinct = load.distinct.len() as f64;
    eprintln!(
        "{CLIENTS} clients, {:.0} s: clients fetched {} playlists and {} segments ({distinct} distinct); \
         the origin served {origin_playlists} playlists and {origin_segments} segments",
        elapsed, load.playlists, load.segments
    );
    assert!(
        origin_segments <= distinct + 2.0,
        "the origin served {origin_segments} segment requests for {distinct} distinct segments \
         ({} fetched by clients)",
        load.segments
    );
    // One playlist fetch per cache lifetime (1 s; nginx counts whole seconds, so up to 2 s).
    assert!(
        origin_playlists <= elapsed + 3.0,
        "the origin served {origin_playlists} playlists in {elapsed:.0} s ({} fetched by clients)",
        load.playlists
    );
    assert!(load.playlists >= CLIENTS * 2 && load.segments >= CLIENTS * SEGMENTS_EACH);

    // The stream ends: its playlist gets EXT-X-ENDLIST and may be kept while it is served.
    let _ = publisher.0.kill();
    let ended = wait_for(LIMIT, || {
        get(origin.http, "/live/cam.m3u8", "")
            .ok()
            .filter(|r| String::from_utf8_lossy(&r.body).contains("#EXT-X-ENDLIST"))
    })
    .expect("the ended playlist");
    assert_eq!(header(&ended, "cache-control"), "public, max-age=30");
}
