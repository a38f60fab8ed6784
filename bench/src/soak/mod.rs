//! The soak scenario: minutes of churn against a real `estuary` on loopback, then checks
//! that nothing was left behind.
//!
//! One run:
//!
//! 1. Starts a hook receiver ([`receiver`]) and the server ([`server`]) with every
//!    connect/publish/play hook and its end pointing at the receiver, and short stall and
//!    linger timeouts.
//! 2. **Priming**: the full churn (below) for a while, so every lazily made thing exists;
//!    then every client leaves, and once the server is idle and its counts are steady, the
//!    **baseline** is read: open fds (`/proc/PID/fd`), `estuary_tasks` and
//!    `estuary_tracked_tasks` (`/metrics`).
//! 3. **Churn**, with the receiver going down now and then: publishers reconnecting after
//!    20–60 s, RTMP and HTTP-FLV viewers joining and leaving, HLS pollers, stalled viewers,
//!    RTMP probers ([`clients`]). VmRSS is sampled every second; its slope is fitted after
//!    the churn's warm-up (the steady state).
//! 4. Every client leaves, the receiver is up; the run waits (bounded) for the server to
//!    come back to the baseline and for every hook to be paired at the receiver.
//!
//! The checks ([`SoakReport::check`]): fds and both task counts back to the baseline, every
//! `on_connect` with its `on_close`, every `on_publish` with its `on_unpublish` and every
//! `on_play` with its `on_stop` (both ways for the last two) by client id at the receiver,
//! `estuary_hook_undelivered_total` 0, every stalled viewer cut by the server, the RSS
//! slope under its bound, and that the run exercised every kind of client.
//!
//! Used by `estuary-soak` (the 30-minute bench) and by `bench/tests/soak.rs` (2 minutes in
//! CI): the same code, other durations. Timings are reported, never checked.

mod clients;
mod receiver;
mod report;
mod rng;
mod server;

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::clip::{ffmpeg_args, make_once, ClipSpec};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use clients::{ClientTally, KindTally, StalledTally};
pub use receiver::Tally;
pub use report::{slope, HooksReport, Levels, RssReport, SoakReport, PAIRS};
pub use rng::Rng;
pub use server::{config_toml, Metrics, ServerProcess, Timeouts};

use crate::stats::ViewerKind;

/// A range to draw from.
pub type Range = (Duration, Duration);

fn secs(lo: u64, hi: u64) -> Range {
    (Duration::from_secs(lo), Duration::from_secs(hi))
}

/// Everything a soak run needs.
pub struct SoakConfig {
    pub estuary_bin: PathBuf,
    /// Config, logs and the server's working directory.
    pub work_dir: PathBuf,
    /// The FLV clip the publishers loop (made with ffmpeg when missing, see [`ensure_clip`]).
    pub clip: PathBuf,
    /// `taskset -c` CPU list for the server.
    pub server_cpus: Option<String>,
    pub seed: u64,
    /// Churn before the idle baseline is read, so that what the server makes lazily
    /// (pooled hook connections, its first streams) exists at the baseline too.
    pub prime: Duration,
    /// The start of the churn that the RSS fit leaves out: memory that follows the load
    /// (HLS windows, GOP caches, the allocator's arenas) grows to its level here.
    pub warmup: Duration,
    /// Churn measured after the warm-up.
    pub duration: Duration,
    pub publishers: usize,
    /// Churning RTMP and HTTP-FLV viewers (half each).
    pub viewers: usize,
    pub stalled: usize,
    pub hls_pollers: usize,
    /// Clients that only connect and leave (RTMP handshake + `connect`), each every
    /// `probe_gap`.
    pub probers: usize,
    pub probe_gap: Range,
    pub publisher_session: Range,
    pub viewer_life: Range,
    pub viewer_gap: Range,
    pub hls_life: Range,
    pub hls_poll: Duration,
    /// How long a stalled viewer holds its connection without reading before it looks
    /// whether the server cut it.
    pub stall_hold: Duration,
    /// Time between two receiver outages, and length of one.
    pub outage_every: Range,
    pub outage_down: Range,
    /// Longest wait for the server to be idle (before) or back to the baseline (after).
    pub settle_limit: Duration,
    /// Largest RSS slope accepted, KB/min; `None`: [`SoakConfig::rss_slope_bound`].
    pub max_rss_slope_kb_per_min: Option<f64>,
    pub timeouts: Timeouts,
}

/// A leak this size per connection is what the RSS check must catch.
pub const LEAK_PER_CONNECTION_KB: f64 = 1.0;

impl SoakConfig {
    /// The full scenario: 4 publishers, 40 churning viewers, 8 stalled ones, 6 HLS pollers,
    /// 4 probers; 30 s of priming, 2 minutes of warm-up, 30 minutes measured; the receiver
    /// down for 5–15 s every 2.5–3.5 minutes.
    pub fn thirty_minutes(estuary_bin: PathBuf, work_dir: PathBuf, clip: PathBuf) -> SoakConfig {
        SoakConfig {
            estuary_bin,
            work_dir,
            clip,
            server_cpus: None,
            seed: 12,
            prime: Duration::from_secs(30),
            warmup: Duration::from_secs(120),
            duration: Duration::from_secs(30 * 60),
            publishers: 4,
            viewers: 40,
            stalled: 8,
            hls_pollers: 6,
            probers: 4,
            probe_gap: (Duration::from_millis(50), Duration::from_millis(250)),
            publisher_session: secs(20, 60),
            viewer_life: secs(1, 8),
            viewer_gap: (Duration::from_millis(200), Duration::from_millis(2000)),
            hls_life: secs(10, 40),
            hls_poll: Duration::from_secs(1),
            stall_hold: Duration::from_secs(12),
            outage_every: secs(150, 210),
            outage_down: secs(5, 15),
            settle_limit: Duration::from_secs(90),
            max_rss_slope_kb_per_min: None,
            timeouts: Timeouts::default(),
        }
    }

    /// The same scenario in 2 minutes (CI): 15 s of priming, then 45 s of warm-up and 75 s
    /// of measured churn, the receiver down for 3–6 s every 25–35 s.
    pub fn two_minutes(estuary_bin: PathBuf, work_dir: PathBuf, clip: PathBuf) -> SoakConfig {
        SoakConfig {
            prime: Duration::from_secs(15),
            warmup: Duration::from_secs(45),
            duration: Duration::from_secs(75),
            outage_every: secs(25, 35),
            outage_down: secs(3, 6),
            ..SoakConfig::thirty_minutes(estuary_bin, work_dir, clip)
        }
    }

    /// The RSS bound when none is given: half the slope a leak of
    /// [`LEAK_PER_CONNECTION_KB`] per connection would make at this run's connection rate.
    /// Such a leak gives twice the bound; memory that only follows the load (HLS windows,
    /// GOP caches, buffers of the clients connected now) has no trend once warm.
    pub fn rss_slope_bound(&self, connections: u64, minutes: f64) -> f64 {
        self.max_rss_slope_kb_per_min
            .unwrap_or_else(|| 0.5 * LEAK_PER_CONNECTION_KB * connections as f64 / minutes.max(1.0 / 60.0))
    }
}

/// The soak clip: 640x360 at 30 fps, H.264 at 400 kbps with a keyframe every second,
/// 64 kbps AAC, 10 s. Light to publish four times over (the memory that follows the media,
/// HLS windows and GOP caches, moves little), and fast enough (~58 KB/s) that a stalled
/// viewer's buffers fill within a couple of seconds.
pub const SOAK_CLIP: ClipSpec = ClipSpec {
    size: "640x360",
    video_kbps: 400,
    gop_frames: 30,
    audio_kbps: 64,
    seconds: 10,
};

/// Makes the soak clip at `path` unless it exists.
pub fn ensure_clip(path: &Path) -> anyhow::Result<()> {
    make_once(path, "the soak clip (10 s, 400 kbps)", |out| {
        ffmpeg_args(SOAK_CLIP, out)
    })
}

/// Runs the scenario and returns its report (with `problems` filled). An `Err` is a run
/// that could not be made (no binary, no ffmpeg, a server that died or never idled).
pub fn run(cfg: &SoakConfig) -> anyhow::Result<SoakReport> {
    crate::net::raise_fd_limit();
    ensure_clip(&cfg.clip)?;
    let clip = Arc::new(crate::clip::load(&cfg.clip)?);
    std::fs::create_dir_all(&cfg.work_dir).with_context(|| format!("creating {}", cfg.work_dir.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the soak runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, run_local(cfg, clip))
}

/// The server's idle counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Idle {
    fds: u64,
    tasks: u64,
    tracked: u64,
}

struct Reading {
    idle: Idle,
    clients: u64,
    streams: u64,
    metrics: Metrics,
}

async fn read(server: &mut ServerProcess) -> anyhow::Result<Reading> {
    if !server.alive() {
        bail!("the server exited; log {}", server.log.display());
    }
    // fds first: the scrape's own connection is closed by the time of the next reading.
    let fds = server.fds().context("reading /proc/PID/fd")? as u64;
    let metrics = server::scrape(server.http_port).await?;
    Ok(Reading {
        idle: Idle {
            fds,
            tasks: metrics.sum("estuary_tasks", &[]) as u64,
            tracked: metrics.sum("estuary_tracked_tasks", &[]) as u64,
        },
        clients: metrics.sum("estuary_clients", &[]) as u64,
        streams: metrics.sum("estuary_streams", &[]) as u64,
        metrics,
    })
}

/// Waits until no client and no stream is left and the counts hold still for 3 readings a
/// second apart; that is the baseline.
async fn baseline(server: &mut ServerProcess, limit: Duration) -> anyhow::Result<Idle> {
    let deadline = Instant::now() + limit;
    let mut same = 0;
    let mut last: Option<Idle> = None;
    loop {
        let r = read(server).await?;
        if r.clients == 0 && r.streams == 0 && last == Some(r.idle) {
            same += 1;
            if same >= 2 {
                return Ok(r.idle);
            }
        } else {
            same = 0;
        }
        last = Some(r.idle);
        if Instant::now() > deadline {
            bail!(
                "the server did not become idle within {limit:?} after the warm-up: {} clients, {} streams, {:?}",
                r.clients,
                r.streams,
                r.idle
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The running actors of one phase: publishers and viewers end their last session at the
/// phase's end themselves (so it is counted); stalled viewers and the outages are stopped.
struct Actors {
    ending: Vec<JoinHandle<()>>,
    stopped: Vec<JoinHandle<()>>,
}

impl Actors {
    /// Waits for the phase's end, then for the actors (a session ending may take a few
    /// seconds: a publish start, an HLS request); whatever is still running after
    /// `ENDING_LIMIT` is aborted, which drops its socket all the same.
    async fn finish(self, end: Instant) {
        const ENDING_LIMIT: Duration = Duration::from_secs(20);
        tokio::time::sleep_until(end).await;
        for t in &self.stopped {
            t.abort();
        }
        let limit = end + ENDING_LIMIT;
        for t in self.ending.into_iter().chain(self.stopped) {
            let abort = t.abort_handle();
            if tokio::time::timeout_at(limit, t).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// What every actor of a run is made from.
struct Cast<'a> {
    cfg: &'a SoakConfig,
    server: &'a ServerProcess,
    receiver: &'a receiver::Receiver,
    clip: &'a Arc<crate::clip::Clip>,
    tally: &'a clients::Shared,
}

fn spawn_actors(cast: &Cast<'_>, rng: &mut Rng, outages: bool, end: Instant) -> Actors {
    use tokio::task::spawn_local;
    let Cast {
        cfg,
        server,
        receiver,
        clip,
        tally,
    } = *cast;
    let mut tasks = Vec::new();
    let p = cfg.publishers.max(1);
    let name = |i: usize| format!("soak-{}", i % p);
    for i in 0..p {
        tasks.push(spawn_local(clients::publisher(
            i,
            server.rtmp_url(&name(i)),
            clip.clone(),
            rng.fork(1000 + i as u64),
            cfg.publisher_session,
            end,
            tally.clone(),
        )));
    }
    for v in 0..cfg.viewers {
        let (kind, url) = if v % 2 == 0 {
            (ViewerKind::Rtmp, server.rtmp_url(&name(v)))
        } else {
            (ViewerKind::HttpFlv, server.http_url(&format!("/live/{}.flv", name(v))))
        };
        tasks.push(spawn_local(clients::viewer(
            kind,
            v % p,
            move |_| url.clone(),
            rng.fork(2000 + v as u64),
            cfg.viewer_life,
            cfg.viewer_gap,
            cfg.hls_poll,
            end,
            tally.clone(),
        )));
    }
    for h in 0..cfg.hls_pollers {
        // A query of its own per session: the server tells token-less HLS players apart by
        // address, user agent and query, and all of ours share the first two.
        let base = server.http_url(&format!("/live/{}.m3u8", name(h)));
        tasks.push(spawn_local(clients::viewer(
            ViewerKind::Hls,
            h % p,
            move |n| format!("{base}?player={h}-{n}"),
            rng.fork(3000 + h as u64),
            cfg.hls_life,
            cfg.viewer_gap,
            cfg.hls_poll,
            end,
            tally.clone(),
        )));
    }
    let mut stopped = Vec::new();
    for s in 0..cfg.stalled {
        let (kind, url) = if s % 2 == 0 {
            (ViewerKind::Rtmp, server.rtmp_url(&name(s)))
        } else {
            (ViewerKind::HttpFlv, server.http_url(&format!("/live/{}.flv", name(s))))
        };
        stopped.push(spawn_local(clients::stalled(
            kind,
            url,
            rng.fork(4000 + s as u64),
            cfg.stall_hold,
            tally.clone(),
        )));
    }
    for k in 0..cfg.probers {
        stopped.push(spawn_local(clients::prober(
            server.rtmp_url(&name(k)),
            rng.fork(6000 + k as u64),
            cfg.probe_gap,
            tally.clone(),
        )));
    }
    if outages {
        stopped.push(spawn_local(clients::outages(
            receiver.clone(),
            rng.fork(5000),
            cfg.outage_every,
            cfg.outage_down,
            tally.clone(),
        )));
    }
    Actors { ending: tasks, stopped }
}

/// What the sampler saw during the churn.
#[derive(Default)]
struct Samples {
    /// (minutes since the churn started, VmRSS kB)
    rss: Vec<(f64, f64)>,
    /// (minutes since the churn started, connections the server accepted so far)
    accepted: Vec<(f64, u64)>,
    peak: Idle,
    error: Option<String>,
}

async fn sample(server_pid: u32, http_port: u16, out: Rc<std::cell::RefCell<Samples>>) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let fds = std::fs::read_dir(format!("/proc/{server_pid}/fd")).map(|d| d.count() as u64);
        let rss = crate::procstat::sample(server_pid).map(|s| s.rss_kb);
        let metrics = server::scrape(http_port).await;
        let mut s = out.borrow_mut();
        match (fds, rss, metrics) {
            (Ok(fds), Ok(rss), Ok(m)) => {
                let t = start.elapsed().as_secs_f64() / 60.0;
                s.rss.push((t, rss as f64));
                s.accepted
                    .push((t, m.sum("estuary_connections_accepted_total", &[]) as u64));
                s.peak.fds = s.peak.fds.max(fds);
                s.peak.tasks = s.peak.tasks.max(m.sum("estuary_tasks", &[]) as u64);
                s.peak.tracked = s.peak.tracked.max(m.sum("estuary_tracked_tasks", &[]) as u64);
            }
            (fds, rss, m) => {
                let why = [
                    fds.err().map(|e| format!("/proc fd: {e}")),
                    rss.err().map(|e| format!("/proc status: {e}")),
                    m.err().map(|e| format!("{e:#}")),
                ];
                s.error = Some(why.into_iter().flatten().collect::<Vec<_>>().join("; "));
            }
        }
    }
}

fn by_hook(m: &Metrics, results: &[&str]) -> std::collections::BTreeMap<String, u64> {
    PAIRS
        .iter()
        .flat_map(|(a, b, _)| [*a, *b])
        .map(|hook| {
            let n: f64 = results
                .iter()
                .map(|r| {
                    m.sum(
                        "estuary_hook_calls_total",
                        &[&format!("hook=\"{hook}\""), &format!("result=\"{r}\"")],
                    )
                })
                .sum();
            (hook.to_string(), n as u64)
        })
        .collect()
}

async fn run_local(cfg: &SoakConfig, clip: Arc<crate::clip::Clip>) -> anyhow::Result<SoakReport> {
    let receiver = receiver::Receiver::start()
        .await
        .context("starting the hook receiver")?;
    let config = cfg.work_dir.join("estuary.toml");
    std::fs::write(&config, config_toml(&receiver.url(""), &cfg.timeouts))
        .with_context(|| format!("writing {}", config.display()))?;
    let mut server = ServerProcess::start(&cfg.estuary_bin, &config, &cfg.work_dir, cfg.server_cpus.as_deref())?;
    let mut rng = Rng::new(cfg.seed);
    let tally: clients::Shared = Rc::default();
    let mut report = SoakReport {
        seed: cfg.seed,
        prime_secs: cfg.prime.as_secs_f64(),
        warmup_secs: cfg.warmup.as_secs_f64(),
        ..SoakReport::default()
    };

    // Warm-up, then the idle baseline.
    let end = Instant::now() + cfg.prime;
    let actors = spawn_actors(
        &Cast {
            cfg,
            server: &server,
            receiver: &receiver,
            clip: &clip,
            tally: &tally,
        },
        &mut rng,
        false,
        end,
    );
    actors.finish(end).await;
    let base = baseline(&mut server, cfg.settle_limit).await?;

    // The churn.
    let samples = Rc::new(std::cell::RefCell::new(Samples::default()));
    let sampler = tokio::task::spawn_local(sample(server.pid(), server.http_port, samples.clone()));
    let started = Instant::now();
    let end = started + cfg.warmup + cfg.duration;
    let actors = spawn_actors(
        &Cast {
            cfg,
            server: &server,
            receiver: &receiver,
            clip: &clip,
            tally: &tally,
        },
        &mut rng,
        true,
        end,
    );
    actors.finish(end).await;
    receiver.set_up(true);
    sampler.abort();
    let _ = sampler.await;
    report.steady_secs = started.elapsed().saturating_sub(cfg.warmup).as_secs_f64();
    let left = Instant::now();

    // Everyone left: wait for the server to come back to its baseline and every hook to
    // arrive. Each condition is polled, never assumed after a sleep.
    let deadline = left + cfg.settle_limit;
    let end = loop {
        let r = read(&mut server).await?;
        let tally = receiver.tally();
        let paired = PAIRS
            .iter()
            .all(|(a, b, both)| tally.unmatched(a, b).is_empty() && (!both || tally.unmatched(b, a).is_empty()));
        let back = r.idle.fds <= base.fds && r.idle.tasks <= base.tasks && r.idle.tracked <= base.tracked;
        if (r.clients == 0 && r.streams == 0 && back && paired) || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    report.settle_secs = left.elapsed().as_secs_f64();

    let samples = std::mem::take(&mut *samples.borrow_mut());
    if let Some(e) = &samples.error {
        report.problems.push(format!("sampling the server failed: {e}"));
    }
    // The measured window: the churn after its warm-up.
    let from = cfg.warmup.as_secs_f64() / 60.0;
    let fitted: Vec<(f64, f64)> = samples.rss.iter().copied().filter(|p| p.0 >= from).collect();
    let accepted: Vec<&(f64, u64)> = samples.accepted.iter().filter(|p| p.0 >= from).collect();
    report.connections = match (accepted.first(), accepted.last()) {
        (Some(a), Some(b)) => b.1.saturating_sub(a.1),
        _ => 0,
    };
    let minutes = match (fitted.first(), fitted.last()) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => 0.0,
    };
    let rss_kb: Vec<u64> = fitted.iter().map(|p| p.1 as u64).collect();
    report.rss = RssReport {
        samples: rss_kb.len(),
        first_kb: rss_kb.first().copied().unwrap_or(0),
        last_kb: rss_kb.last().copied().unwrap_or(0),
        peak_kb: rss_kb.iter().copied().max().unwrap_or(0),
        slope_kb_per_min: slope(&fitted).unwrap_or(0.0),
        bound_kb_per_min: cfg.rss_slope_bound(report.connections, minutes),
        series: samples
            .rss
            .iter()
            .map(|(m, kb)| ((m * 60.0).round() as u32, *kb as u64))
            .collect(),
    };
    let levels = |b: u64, p: u64, e: u64| Levels {
        baseline: b,
        peak: p.max(b),
        end: e,
    };
    report.fds = levels(base.fds, samples.peak.fds, end.idle.fds);
    report.tasks = levels(base.tasks, samples.peak.tasks, end.idle.tasks);
    report.tracked_tasks = levels(base.tracked, samples.peak.tracked, end.idle.tracked);
    report.hooks.sent_accepted = by_hook(&end.metrics, &["accepted"]);
    report.hooks.sent_failed = by_hook(&end.metrics, &["unreachable", "server_error", "rejected"]);
    report.hooks.undelivered = end.metrics.sum("estuary_hook_undelivered_total", &[]) as u64;
    report.hooks.fill_from(&receiver.tally());
    report.clients = tally.borrow().clone();
    let sampling_problems = std::mem::take(&mut report.problems);
    report.check(cfg.outage_every.0 < cfg.warmup + cfg.duration);
    report.problems.extend(sampling_problems);
    if end.clients > 0 || end.streams > 0 {
        report.problems.push(format!(
            "{} clients and {} streams still listed {:.0} s after every client left",
            end.clients, end.streams, report.settle_secs
        ));
    }
    server.stop();
    Ok(report)
}
