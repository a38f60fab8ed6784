//! `estuary`: the server binary. Parses the command line, loads the config, binds the
//! listeners, prints how to publish and play, and runs until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use estuary::Config;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Estuary live-streaming server: RTMP in; RTMP, HTTP-FLV and HLS out.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Config file (TOML). Without it, built-in defaults are used.
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// RTMP listen address; overrides `rtmp.listen`.
    #[arg(long)]
    rtmp_listen: Option<String>,
    /// HTTP listen address; overrides `http.listen`.
    #[arg(long)]
    http_listen: Option<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("estuary: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("estuary: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("estuary: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(addr) = &cli.rtmp_listen {
        config.rtmp.listen = addr.clone();
    }
    if let Some(addr) = &cli.http_listen {
        config.http.listen = addr.clone();
    }
    if let Err(problems) = config.validate() {
        anyhow::bail!("{}", problems.join("; "));
    }
    Ok(config)
}

async fn bind(what: &str, addr: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = addr.parse().with_context(|| format!("{what} address {addr:?}"))?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let rtmp = bind("RTMP", &config.rtmp.listen).await?;
    let http = bind("HTTP", &config.http.listen).await?;
    print_urls(rtmp.local_addr()?, http.local_addr()?);
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    estuary::run(Arc::new(config), rtmp, http, shutdown).await
}

async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    shutdown.cancel();
}

fn print_urls(rtmp: SocketAddr, http: SocketAddr) {
    let host = |a: SocketAddr| {
        if a.ip().is_unspecified() {
            "localhost".to_string()
        } else {
            a.ip().to_string()
        }
    };
    let (rh, hh) = (host(rtmp), host(http));
    let (rp, hp) = (rtmp.port(), http.port());
    println!("Estuary {} is running.", env!("CARGO_PKG_VERSION"));
    println!();
    println!("  OBS: Settings → Stream → Service: Custom");
    println!("       Server:     rtmp://{rh}:{rp}/live");
    println!("       Stream Key: mystream");
    println!("  ffmpeg: ffmpeg -re -i input.mp4 -c copy -f flv rtmp://{rh}:{rp}/live/mystream");
    println!();
    println!("  Play RTMP:     rtmp://{rh}:{rp}/live/mystream");
    println!("  Play HTTP-FLV: http://{hh}:{hp}/live/mystream.flv");
    println!("  Play HLS:      http://{hh}:{hp}/live/mystream.m3u8");
    println!("  Health:        http://{hh}:{hp}/healthz");
    println!();
}
