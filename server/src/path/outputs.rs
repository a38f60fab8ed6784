//! A path's outputs: started when its source starts, fed from the stream's ring in a task
//! each, ended after their grace period.
//!
//! Starting and ending are decided under one lock, together with whether the stream is
//! live: a source that starts at the very moment an output's grace period runs out either
//! finds the output still running (and the output sees it live and carries on) or finds it
//! gone (and starts a new one). No source goes without its outputs.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, Instrument};

use crate::hooks::HookSubject;
use crate::outputs::{Output, OutputKind};
use crate::stream::{Batch, Stream, StreamKey};

/// Kept alive by every output task while it runs (the path it belongs to).
pub type Keepalive = Arc<dyn Any + Send + Sync>;

/// What [`PathOutputs::start_now`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartNow {
    Started,
    /// An output of that kind runs already.
    AlreadyRunning,
    /// The kind does not want an output for this key (see [`OutputKind::start`]).
    Declined,
    NoSuchKind,
}

/// The outputs of one path.
pub struct PathOutputs {
    kinds: Arc<[Arc<dyn OutputKind>]>,
    /// Kinds with an output running (live or in its grace period).
    running: Arc<Mutex<Vec<&'static str>>>,
    /// Who the path's source is, for outputs that outlive one source and speak in its name
    /// (HLS's `on_hls` carries the publisher's client).
    source: watch::Sender<Option<HookSubject>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

type Running = Mutex<Vec<&'static str>>;

fn lock(running: &Running) -> MutexGuard<'_, Vec<&'static str>> {
    running.lock().unwrap_or_else(|e| e.into_inner())
}

impl PathOutputs {
    pub fn new(kinds: Arc<[Arc<dyn OutputKind>]>, shutdown: CancellationToken, tasks: TaskTracker) -> PathOutputs {
        PathOutputs {
            kinds,
            running: Arc::new(Mutex::new(Vec::new())),
            source: watch::Sender::new(None),
            shutdown,
            tasks,
        }
    }

    /// The path's source just started (`stream` is live): every kind with no output running
    /// starts one, subscribed before this returns so it misses nothing the source sends; an
    /// output in its grace period carries on with the new source.
    pub fn source_started(
        &self,
        stream: &Arc<Stream>,
        key: &StreamKey,
        source: Option<&HookSubject>,
        keepalive: &Keepalive,
    ) {
        let mut running = lock(&self.running);
        // Before the source sends a packet: a running output learns of it first.
        self.source.send_replace(source.cloned());
        for kind in self.kinds.iter() {
            if running.contains(&kind.name()) {
                continue;
            }
            if let Some(output) = kind.start(key, source) {
                self.spawn(&mut running, kind, output, stream, key, keepalive);
            }
        }
    }

    /// Starts an output of kind `name` now, on a path whose source is live (a recording
    /// started by hand): it begins with the join snapshot (headers, then the GOP from its
    /// keyframe), as a viewer would.
    pub fn start_now(
        &self,
        name: &str,
        stream: &Arc<Stream>,
        key: &StreamKey,
        source: Option<&HookSubject>,
        keepalive: &Keepalive,
    ) -> StartNow {
        let mut running = lock(&self.running);
        let Some(kind) = self.kinds.iter().find(|k| k.name() == name) else {
            return StartNow::NoSuchKind;
        };
        if running.contains(&kind.name()) {
            return StartNow::AlreadyRunning;
        }
        match kind.start(key, source) {
            Some(output) => {
                self.spawn(&mut running, kind, output, stream, key, keepalive);
                StartNow::Started
            }
            None => StartNow::Declined,
        }
    }

    fn spawn(
        &self,
        running: &mut Vec<&'static str>,
        kind: &Arc<dyn OutputKind>,
        mut output: Box<dyn Output>,
        stream: &Arc<Stream>,
        key: &StreamKey,
        keepalive: &Keepalive,
    ) {
        let (snapshot, ring) = stream.subscribe();
        for packet in &snapshot.packets {
            output.packet(packet);
        }
        running.push(kind.name());
        let driver = Driver {
            stream: Arc::clone(stream),
            ring,
            live: stream.watch_live(),
            source: self.source.subscribe(),
            source_open: true,
            stop: output.stop_token().unwrap_or_default(),
            output,
            name: kind.name(),
            grace: kind.grace(),
            running: Arc::clone(&self.running),
            shutdown: self.shutdown.clone(),
            _keepalive: Arc::clone(keepalive),
        };
        let span = tracing::info_span!("output", kind = kind.name(), stream = %key);
        self.tasks.spawn(driver.run().instrument(span));
    }

    /// Kinds with an output running.
    pub fn running(&self) -> Vec<&'static str> {
        lock(&self.running).clone()
    }
}

/// Runs one output.
struct Driver {
    stream: Arc<Stream>,
    ring: broadcast::Receiver<Arc<Batch>>,
    live: watch::Receiver<bool>,
    /// The path's source, seen as it was when the output started.
    source: watch::Receiver<Option<HookSubject>>,
    /// False once the path's side is gone (nothing more will change).
    source_open: bool,
    /// Cancelled when the output is to end by itself (a recording stopped by hand).
    stop: CancellationToken,
    output: Box<dyn Output>,
    name: &'static str,
    grace: Duration,
    running: Arc<Mutex<Vec<&'static str>>>,
    shutdown: CancellationToken,
    _keepalive: Keepalive,
}

impl Driver {
    async fn run(mut self) {
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                _ = self.stop.cancelled() => {
                    self.drain();
                    lock(&self.running).retain(|name| *name != self.name);
                    break;
                }
                // Before the ring: a new source is known before its first packet.
                changed = self.source.changed(), if self.source_open => match changed {
                    Ok(()) => {
                        let source = self.source.borrow_and_update().clone();
                        self.output.source_changed(source.as_ref());
                    }
                    Err(_) => self.source_open = false,
                },
                received = self.ring.recv() => match received {
                    Ok(batch) => self.deliver(&batch),
                    Err(RecvError::Lagged(lost)) => {
                        debug!(lost_batches = lost, "output fell a whole ring behind");
                        crate::metrics::output_gap(self.name);
                        self.output.gap();
                    }
                    Err(RecvError::Closed) => break,
                },
                changed = self.live.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    if *self.live.borrow_and_update() {
                        continue;
                    }
                    // The source left everything it sent in the ring before it went.
                    self.drain();
                    self.output.source_gone();
                    if !self.source_came_back().await {
                        break;
                    }
                }
            }
        }
        self.output.end();
    }

    fn deliver(&mut self, batch: &Batch) {
        for packet in batch.packets.iter() {
            self.output.packet(packet);
        }
    }

    /// Delivers what is waiting in the ring.
    fn drain(&mut self) {
        loop {
            match self.ring.try_recv() {
                Ok(batch) => self.deliver(&batch),
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.output.gap(),
                Err(_) => return,
            }
        }
    }

    /// Waits, at most the grace period, for a source. False when the output must end: the
    /// grace period is over with no source, or the server is shutting down.
    async fn source_came_back(&mut self) -> bool {
        let waited = tokio::select! {
            _ = self.shutdown.cancelled() => return false,
            _ = self.stop.cancelled() => {
                lock(&self.running).retain(|name| *name != self.name);
                return false;
            }
            waited = tokio::time::timeout(self.grace, self.live.wait_for(|live| *live)) => waited,
        };
        if matches!(waited, Ok(Ok(_))) {
            return true;
        }
        let mut running = lock(&self.running);
        // A source starting now checks `running` under this lock after it went live.
        if self.stream.is_live() {
            return true;
        }
        running.retain(|name| *name != self.name);
        false
    }
}
