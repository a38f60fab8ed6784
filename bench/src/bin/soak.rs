//! `estuary-soak`: the soak scenario (`estuary_bench::soak`) against a real `estuary`
//! binary it starts itself. 30 minutes by default; prints a summary, writes the JSON report
//! when asked, and exits 1 when a check failed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use estuary_bench::soak::{self, SoakConfig};

#[derive(Debug, Parser)]
#[command(name = "estuary-soak", version, about)]
struct Args {
    /// The server binary to soak.
    #[arg(long, default_value = "target/release/estuary")]
    estuary_bin: PathBuf,
    /// Where the config, the server's log and its working directory go.
    #[arg(long, default_value = "target/soak")]
    work_dir: PathBuf,
    /// The clip the publishers loop (made with ffmpeg when missing).
    #[arg(long, default_value = "bench/media/soak-360p-400k.flv")]
    clip: PathBuf,
    /// Run the server under `taskset -c CPUS` (e.g. 0; run this command under `taskset -c 1`).
    #[arg(long)]
    server_cpus: Option<String>,
    /// Minutes of measured churn (after the warm-up).
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Seconds of churn at the start that the RSS fit leaves out.
    #[arg(long)]
    warmup_secs: Option<f64>,
    /// Seconds of churn before the idle baseline is read.
    #[arg(long)]
    prime_secs: Option<f64>,
    /// The 2-minute CI version (15 s priming, 45 s warm-up, 75 s measured, outages every
    /// 25-35 s).
    #[arg(long)]
    short: bool,
    #[arg(long, default_value_t = 12)]
    seed: u64,
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Churning viewers, half RTMP, half HTTP-FLV.
    #[arg(long, default_value_t = 40)]
    viewers: usize,
    #[arg(long, default_value_t = 8)]
    stalled: usize,
    #[arg(long, default_value_t = 6)]
    hls_pollers: usize,
    /// Largest RSS slope accepted, KB/min (default: half of what 1 KB leaked per connection
    /// would give at the run's connection rate).
    #[arg(long)]
    max_rss_slope_kb_per_min: Option<f64>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let make = if a.short {
        SoakConfig::two_minutes
    } else {
        SoakConfig::thirty_minutes
    };
    // The server runs in the work directory: relative paths would name nothing there.
    let estuary_bin = std::fs::canonicalize(&a.estuary_bin)
        .map_err(|e| anyhow::anyhow!("--estuary-bin {}: {e}", a.estuary_bin.display()))?;
    let work_dir = std::env::current_dir()?.join(&a.work_dir);
    let mut cfg = make(estuary_bin, work_dir, a.clip);
    if !a.short {
        cfg.duration = Duration::from_secs_f64(a.minutes.max(0.1) * 60.0);
    }
    if let Some(w) = a.warmup_secs {
        cfg.warmup = Duration::from_secs_f64(w.max(0.0));
    }
    if let Some(p) = a.prime_secs {
        cfg.prime = Duration::from_secs_f64(p.max(1.0));
    }
    cfg.server_cpus = a.server_cpus;
    cfg.seed = a.seed;
    cfg.publishers = a.publishers.max(1);
    cfg.viewers = a.viewers;
    cfg.stalled = a.stalled;
    cfg.hls_pollers = a.hls_pollers;
    cfg.max_rss_slope_kb_per_min = a.max_rss_slope_kb_per_min;
    let report = soak::run(&cfg)?;
    if let Some(path) = &a.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{}", report.human());
    if !report.problems.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
