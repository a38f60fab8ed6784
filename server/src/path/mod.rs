//! One owner per stream key: the path (MediaMTX's word; SRS's `SrsLiveSource`).
//!
//! A [`Path`] owns, while its key is in use: its **source** (exactly one at a time; any
//! [`Source`](source::Source) holder: an RTMP publisher, a pull, a test), its **outputs**
//! (started with the source, ended after their grace: `outputs.rs`), its **viewers** (counted,
//! for on-demand sources: `on_demand.rs`) and its **events** (`on_unpublish`, `on_stop`, in
//! order: `events.rs`). Admission (`crate::admission`) decides who may become its source or
//! viewer; the media itself flows through its [`Stream`].
//!
//! - `registry.rs`: every path by key; a path lives while something holds it. It also
//!   counts sources and viewers over all paths (`totals.rs`), for the admission's limits.
//! - `source.rs`, `viewer.rs`: the holds a source and a viewer have on a path.
//!
//! Locks: a path's `control` lock is taken before its stream's, never the other way round,
//! and never across an `.await`.

pub mod demand;
pub mod events;
pub mod on_demand;
pub mod outputs;
pub mod registry;
pub mod source;
mod totals;
pub mod viewer;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::hooks::HookSubject;
use crate::hooks::Receipt;
use crate::stream::{Stream, StreamKey};
use events::PathEvents;
use outputs::{Keepalive, PathOutputs};
use totals::Totals;

/// Everything about one stream key.
pub struct Path {
    /// The stream's id while this path lives: the API's stream id and the hooks'
    /// `stream_id` (a backend joins the two on it).
    pub id: u64,
    pub key: StreamKey,
    stream: Arc<Stream>,
    control: Mutex<Control>,
    events: PathEvents,
    outputs: PathOutputs,
    /// `rtmp.publisher_idle_timeout_ms`: a source silent this long may be replaced.
    idle_takeover: Duration,
    /// Sources and viewers over every path, kept by each path's changes.
    totals: Arc<Totals>,
}

/// Who holds the path.
#[derive(Default)]
struct Control {
    /// The current source's id and hook subject (for its `on_unpublish`).
    source: Option<(u64, Option<HookSubject>)>,
    viewers: usize,
    /// What else wants the stream (a recording waiting for it or writing it): like a viewer
    /// it keeps an on-demand source running, but it is nobody's playback.
    demands: usize,
    /// Bumped when a viewer arrives, so an on-demand idle timer knows it is stale.
    viewer_epoch: u64,
    /// Cancelled to stop the on-demand source started for this path's viewers.
    on_demand: Option<CancellationToken>,
    /// A source has started on this path (since the registry created it): only such paths
    /// are listed (API, metrics), so a key asked for by viewers alone costs no listing.
    had_source: bool,
}

impl Path {
    pub fn new(
        id: u64,
        key: StreamKey,
        stream: Arc<Stream>,
        events: PathEvents,
        outputs: PathOutputs,
        idle_takeover: Duration,
        totals: Arc<Totals>,
    ) -> Path {
        Path {
            id,
            key,
            stream,
            control: Mutex::new(Control::default()),
            events,
            outputs,
            idle_takeover,
            totals,
        }
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stream's media: timeline, GOP cache, ring.
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    pub fn events(&self) -> &PathEvents {
        &self.events
    }

    /// Whether a source feeds the path.
    pub fn is_live(&self) -> bool {
        self.stream.is_live()
    }

    /// Viewers admitted and not gone.
    pub fn viewers(&self) -> usize {
        self.control().viewers
    }

    /// Whether a source holds the path now (active or silent).
    pub fn has_source(&self) -> bool {
        self.control().source.is_some()
    }

    /// Whether a source has started on the path: what makes it listed.
    pub fn had_source(&self) -> bool {
        self.control().had_source
    }

    /// Kinds of output running for this path.
    pub fn outputs(&self) -> Vec<&'static str> {
        self.outputs.running()
    }

    /// Starts an output of kind `name` now, if the source is live and no such output runs
    /// (a recording started by hand).
    pub fn start_output(self: &Arc<Self>, name: &str) -> outputs::StartNow {
        let control = self.control();
        if !self.stream.is_live() {
            return outputs::StartNow::Declined;
        }
        let source = control.source.as_ref().and_then(|(_, subject)| subject.as_ref());
        let keepalive: Keepalive = Arc::clone(self) as Keepalive;
        self.outputs
            .start_now(name, &self.stream, &self.key, source, &keepalive)
    }

    /// Makes `id` the source (the stream is claimed already) and starts the outputs.
    fn source_started(self: &Arc<Self>, id: u64, subject: Option<HookSubject>) {
        let mut control = self.control();
        if control.source.is_none() {
            self.totals.source_started();
        }
        control.source = Some((id, subject));
        control.had_source = true;
        let source = control.source.as_ref().and_then(|(_, subject)| subject.as_ref());
        let keepalive: Keepalive = Arc::clone(self) as Keepalive;
        self.outputs.source_started(&self.stream, &self.key, source, &keepalive);
    }

    /// Source `id` ended (if it is still the source): tells the hooks. Idempotent.
    fn source_ended(&self, id: u64) -> Receipt {
        let ended = {
            let mut control = self.control();
            match &control.source {
                Some((current, _)) if *current == id => {
                    self.totals.source_ended();
                    control.source.take()
                }
                _ => None,
            }
        };
        match ended {
            Some((_, Some(subject))) => {
                tracing::debug!(stream = %self.key, source = id, "source ended");
                self.events.unpublished(&subject)
            }
            Some((_, None)) => {
                tracing::info!(stream = %self.key, source = id, "source ended");
                Receipt::settled()
            }
            None => Receipt::settled(),
        }
    }

    /// Who the current source is, as the hooks were told (none for a source started without
    /// a client, or no source).
    pub fn source_subject(&self) -> Option<HookSubject> {
        self.control().source.as_ref().and_then(|(_, subject)| subject.clone())
    }

    /// Ends a source that has sent nothing for `rtmp.publisher_idle_timeout_ms` (the
    /// half-dead connection an OBS reconnect leaves behind), so a newcomer can take the key.
    /// Its `on_unpublish` goes out now, before the newcomer's `on_publish`.
    pub fn evict_idle_source(&self) -> Option<Receipt> {
        let old = self.stream.evict_idle(self.idle_takeover)?;
        Some(self.source_ended(old))
    }

    /// Whether a source holds the key and has sent something within the idle time.
    pub fn has_active_source(&self) -> bool {
        matches!(self.stream.holder(self.idle_takeover), crate::stream::Holder::Active(_))
    }

    /// A viewer arrived. Returns true if the path has no source and no on-demand start under
    /// way: the registry may ask a provider for one (it then calls
    /// [`on_demand_started`](Self::on_demand_started)).
    fn viewer_arrived(&self) -> bool {
        let mut control = self.control();
        control.viewers += 1;
        self.totals.viewer_arrived();
        control.viewer_epoch += 1;
        control.source.is_none() && control.on_demand.is_none()
    }

    /// An on-demand source was asked for; cancelling `stop` stops it.
    fn on_demand_started(&self, stop: CancellationToken) {
        self.control().on_demand = Some(stop);
    }

    /// A viewer left. Returns the viewer epoch if that was the last viewer and an on-demand
    /// source runs (the registry then schedules its stop).
    fn viewer_left(&self) -> Option<u64> {
        let mut control = self.control();
        if control.viewers > 0 {
            self.totals.viewer_left();
        }
        control.viewers = control.viewers.saturating_sub(1);
        control.idle_on_demand()
    }

    /// Something other than a viewer wants the stream (see [`demand::Demand`]). Like
    /// [`viewer_arrived`](Self::viewer_arrived): true if an on-demand source may be asked for.
    fn demand_arrived(&self) -> bool {
        let mut control = self.control();
        control.demands += 1;
        control.viewer_epoch += 1;
        control.source.is_none() && control.on_demand.is_none()
    }

    /// A demand ended; like [`viewer_left`](Self::viewer_left).
    fn demand_left(&self) -> Option<u64> {
        let mut control = self.control();
        control.demands = control.demands.saturating_sub(1);
        control.idle_on_demand()
    }

    /// Stops the on-demand source if no viewer came since `epoch`. True if it was stopped.
    fn stop_on_demand_if_idle(&self, epoch: u64) -> bool {
        let mut control = self.control();
        if control.viewers + control.demands > 0 || control.viewer_epoch != epoch {
            return false;
        }
        match control.on_demand.take() {
            Some(stop) => {
                stop.cancel();
                true
            }
            None => false,
        }
    }
}

impl Control {
    /// The viewer epoch, if nothing wants the stream any more and an on-demand source runs
    /// (the registry then schedules its stop).
    fn idle_on_demand(&self) -> Option<u64> {
        (self.viewers + self.demands == 0 && self.on_demand.is_some()).then_some(self.viewer_epoch)
    }
}

impl Drop for Path {
    fn drop(&mut self) {
        let mut control = self.control();
        // Nothing holds the path any more; an on-demand source would feed nobody.
        if let Some(stop) = control.on_demand.take() {
            stop.cancel();
        }
        // Sources and viewers hold the path, so none is left; the totals stay right anyway.
        if control.source.take().is_some() {
            self.totals.source_ended();
        }
        for _ in 0..std::mem::take(&mut control.viewers) {
            self.totals.viewer_left();
        }
    }
}
