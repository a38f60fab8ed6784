//! One bench run: publishers on their own thread, viewers on one (or a few) current-thread
//! runtimes, the server sampled from /proc, everything stopped by the clock.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::time::Instant;

use crate::clip;
use crate::net::now_ns;
use crate::procstat::{self, Sampler, ServerReport};
use crate::publisher::{self, PublisherStats};
use crate::stats::{KindReport, ViewerKind, ViewerStats};
use crate::table::SendTable;
use crate::viewers;

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub label: String,
    /// URL templates; `{stream}` is replaced by the stream name of each publisher.
    pub publish_url: String,
    pub rtmp_url: String,
    pub flv_url: Option<String>,
    pub hls_url: Option<String>,
    /// Stream name; with several publishers, `{stream}` becomes `NAME-0`, `NAME-1`, ...
    pub stream: String,
    pub publishers: usize,
    pub rtmp_viewers: usize,
    pub flv_viewers: usize,
    pub hls_viewers: usize,
    pub clip: PathBuf,
    pub warmup: Duration,
    pub duration: Duration,
    pub ramp: Duration,
    pub grace: Duration,
    pub hls_poll: Duration,
    pub viewer_threads: usize,
    pub server_pid: Option<u32>,
}

impl RunConfig {
    pub fn stream_name(&self, publisher: usize) -> String {
        if self.publishers == 1 {
            self.stream.clone()
        } else {
            format!("{}-{publisher}", self.stream)
        }
    }

    pub fn url(&self, template: &str, publisher: usize) -> String {
        template.replace("{stream}", &self.stream_name(publisher))
    }
}

/// Publisher totals.
#[derive(Debug, Clone, Serialize)]
pub struct PublishersReport {
    pub count: usize,
    pub started: usize,
    pub reasons: BTreeMap<String, usize>,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub bytes: u64,
    pub max_late_ms: f64,
}

/// The whole result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    pub clip: ClipInfo,
    pub publish_url: String,
    pub warmup_secs: f64,
    pub duration_secs: f64,
    /// Seconds over which viewers were measured (duration + grace).
    pub window_secs: f64,
    /// How read times were taken.
    pub receive_timestamps: String,
    pub publishers: PublishersReport,
    pub viewers: Vec<KindReport>,
    pub bytes_delivered: u64,
    /// CPU seconds the bench itself used over the window (publishers + viewers).
    pub bench_cpu_seconds: f64,
    pub server: Option<ServerReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClipInfo {
    pub path: String,
    pub loop_secs: f64,
    pub fps: f64,
    pub mbps: f64,
}

/// Runs the bench and returns its report.
pub fn run(cfg: &RunConfig) -> anyhow::Result<Report> {
    crate::net::raise_fd_limit();
    clip::ensure_clip(&cfg.clip)?;
    let clip = Arc::new(clip::load(&cfg.clip)?);
    let total = cfg.warmup + cfg.duration;
    let capacity = ((total.as_secs_f64() + 5.0) * clip.fps().max(1.0) * 1.5) as usize + 1000;
    let tables: Vec<Arc<SendTable>> = (0..cfg.publishers)
        .map(|_| Arc::new(SendTable::new(capacity)))
        .collect();

    let start = std::time::Instant::now();
    let publish_stop = start + total;

    // Publishers: their own thread and runtime, so viewer load does not delay sends more
    // than the shared core forces.
    let pub_handle = {
        let clip = clip.clone();
        let tables = tables.clone();
        let urls: Vec<String> = (0..cfg.publishers).map(|i| cfg.url(&cfg.publish_url, i)).collect();
        std::thread::Builder::new().name("publishers".into()).spawn(
            move || -> anyhow::Result<Vec<PublisherStats>> {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                rt.block_on(async move {
                    let stop = Instant::from_std(publish_stop);
                    let handles: Vec<_> = urls
                        .into_iter()
                        .enumerate()
                        .map(|(i, url)| tokio::spawn(publisher::run(i, url, clip.clone(), tables[i].clone(), stop)))
                        .collect();
                    let mut out = Vec::new();
                    for h in handles {
                        out.push(h.await?);
                    }
                    Ok(out)
                })
            },
        )?
    };

    // Viewers start after the warm-up (so there is a GOP and a playlist), measured to the end
    // of publishing plus a grace period for frames in flight.
    std::thread::sleep(cfg.warmup);
    let sampler = cfg.server_pid.map(Sampler::start);
    let window_start = std::time::Instant::now();
    let bench_cpu_start = procstat::sample(std::process::id()).map_or(0.0, |s| s.cpu_s);
    let viewer_stop = publish_stop + cfg.grace;
    let plan = viewer_plan(cfg);
    let threads = cfg.viewer_threads.max(1);
    let mut handles = Vec::new();
    for t in 0..threads {
        let mine: Vec<ViewerPlan> = plan.iter().filter(|p| p.index % threads == t).cloned().collect();
        let tables = tables.clone();
        let ramp = cfg.ramp;
        let poll = cfg.hls_poll;
        handles.push(
            std::thread::Builder::new()
                .name(format!("viewers-{t}"))
                .spawn(move || run_viewers(mine, tables, ramp, poll, viewer_stop))?,
        );
    }
    let mut viewers = Vec::new();
    for h in handles {
        viewers.extend(h.join().map_err(|_| anyhow::anyhow!("viewer thread panicked"))??);
    }
    let window_secs = window_start.elapsed().as_secs_f64();
    let publishers = pub_handle
        .join()
        .map_err(|_| anyhow::anyhow!("publisher thread panicked"))??;

    let bench_cpu = procstat::sample(std::process::id())
        .map(|s| s.cpu_s - bench_cpu_start)
        .unwrap_or(0.0);
    // Publishing stopped `grace` before the viewers did.
    let publish_end_ns = now_ns().saturating_sub(cfg.grace.as_nanos() as u64);
    for v in &mut viewers {
        let sent = tables[v.publisher].sent();
        v.finish(sent, publish_end_ns, v.kind != ViewerKind::Hls);
    }
    let kinds: Vec<KindReport> = [ViewerKind::Rtmp, ViewerKind::HttpFlv, ViewerKind::Hls]
        .into_iter()
        .filter(|k| viewers.iter().any(|v| v.kind == *k))
        .map(|k| KindReport::build(k, &viewers, cfg.duration.as_secs_f64()))
        .collect();
    let bytes_delivered: u64 = viewers.iter().map(|v| v.bytes).sum();
    let mut reasons = BTreeMap::new();
    for p in &publishers {
        if let Some(e) = &p.error {
            *reasons.entry(e.clone()).or_insert(0) += 1;
        }
    }
    Ok(Report {
        label: cfg.label.clone(),
        clip: ClipInfo {
            path: cfg.clip.display().to_string(),
            loop_secs: f64::from(clip.loop_ms) / 1000.0,
            fps: clip.fps(),
            mbps: clip.bitrate_bps() / 1e6,
        },
        publish_url: cfg.url(&cfg.publish_url, 0),
        warmup_secs: cfg.warmup.as_secs_f64(),
        duration_secs: cfg.duration.as_secs_f64(),
        window_secs,
        receive_timestamps: {
            let (kernel, clock) = crate::net::stamp_counts();
            format!(
                "{kernel} reads stamped by the kernel (SO_TIMESTAMPNS, CLOCK_REALTIME), {clock} by reading the clock"
            )
        },
        publishers: PublishersReport {
            count: publishers.len(),
            started: publishers.iter().filter(|p| p.started).count(),
            reasons,
            video_frames: publishers.iter().map(|p| p.video_frames).sum(),
            audio_frames: publishers.iter().map(|p| p.audio_frames).sum(),
            bytes: publishers.iter().map(|p| p.bytes).sum(),
            max_late_ms: publishers.iter().map(|p| p.max_late_ms).fold(0.0, f64::max),
        },
        viewers: kinds,
        bytes_delivered,
        bench_cpu_seconds: bench_cpu,
        server: sampler.map(|s| s.finish(bytes_delivered)),
    })
}

#[derive(Debug, Clone)]
struct ViewerPlan {
    index: usize,
    /// Position within its kind, 0..1, for interleaving the ramp.
    order: f64,
    kind: ViewerKind,
    publisher: usize,
    url: String,
}

fn viewer_plan(cfg: &RunConfig) -> Vec<ViewerPlan> {
    let mut plan = Vec::new();
    let mut add = |kind, count: usize, template: &str| {
        for i in 0..count {
            let publisher = i % cfg.publishers.max(1);
            let order = i as f64 / count as f64;
            plan.push(ViewerPlan {
                index: 0,
                order,
                kind,
                publisher,
                url: cfg.url(template, publisher),
            });
        }
    };
    add(ViewerKind::Rtmp, cfg.rtmp_viewers, &cfg.rtmp_url);
    if let Some(t) = &cfg.flv_url {
        add(ViewerKind::HttpFlv, cfg.flv_viewers, t);
    }
    if let Some(t) = &cfg.hls_url {
        add(ViewerKind::Hls, cfg.hls_viewers, t);
    }
    // Interleave kinds so each kind's ramp is spread the same way.
    plan.sort_by(|a, b| a.order.total_cmp(&b.order));
    for (i, p) in plan.iter_mut().enumerate() {
        p.index = i;
    }
    plan
}

fn run_viewers(
    plan: Vec<ViewerPlan>,
    tables: Vec<Arc<SendTable>>,
    ramp: Duration,
    poll: Duration,
    stop: std::time::Instant,
) -> anyhow::Result<Vec<ViewerStats>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building viewer runtime")?;
    let local = tokio::task::LocalSet::new();
    let n = plan.len().max(1);
    let stats: Vec<Rc<RefCell<ViewerStats>>> = plan
        .iter()
        .map(|p| Rc::new(RefCell::new(ViewerStats::new(p.kind, p.publisher))))
        .collect();
    local.block_on(&rt, async {
        let begin = Instant::now();
        let mut tasks = Vec::new();
        for (i, (p, st)) in plan.into_iter().zip(stats.iter().cloned()).enumerate() {
            let at = begin + ramp.mul_f64(i as f64 / n as f64);
            let table = tables[p.publisher].clone();
            tasks.push(tokio::task::spawn_local(async move {
                tokio::time::sleep_until(at).await;
                match p.kind {
                    ViewerKind::Rtmp => viewers::rtmp(p.url, table, st).await,
                    ViewerKind::HttpFlv => viewers::http_flv(p.url, table, st).await,
                    ViewerKind::Hls => viewers::hls(p.url, poll, table, st).await,
                }
            }));
        }
        tokio::time::sleep_until(Instant::from_std(stop)).await;
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    drop(local);
    Ok(stats.into_iter().map(|s| s.borrow().clone()).collect())
}
