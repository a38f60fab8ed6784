//! Forwarders: a stream pushed to upstream RTMP servers (a CDN or cloud live ingest, another
//! Estuary), each with our own RTMP client, from the GOP's keyframe on, in real time.
//!
//! - [`ForwardOutputs`]: the output kind. A path gets a forward output when its stream has
//!   upstreams: the config's (`[forward] urls`, `[apps.NAME.forward] urls`, templated with
//!   `{app}`/`{stream}`) and those added by API for that stream.
//! - [`Forwards`] (`registry.rs`): the registry the API reads and changes: every running
//!   feed, and the forwards added by API (kept by stream key, started whenever that stream
//!   is live). On an edge (`[edge] origins`), a published stream (not a pulled one) is also
//!   forwarded to the first origin, as SRS edges do.
//! - `feed.rs`: the output of one stream; `queue.rs`: one upstream's bounded queue;
//!   `upstream.rs`: one upstream's connection task, retried with backoff.
//!
//! An upstream never holds up the stream or the other upstreams: each has its own task and a
//! queue bounded in bytes, past which it skips to the next keyframe.

mod feed;
mod queue;
mod registry;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use estuary_protocol::Packet;

use crate::hooks::HookSubject;
use crate::outputs::{Output, OutputKind};
use crate::stream::StreamKey;
use feed::Feed;
pub use registry::{ForwardError, ForwardInfo, Forwards};
pub use upstream::{Origin, Phase, Settings};

/// The output kind's name (`Path::start_output`, logs, metrics).
pub const KIND: &str = "forward";

/// The forward output kind.
pub struct ForwardOutputs {
    forwards: Forwards,
    grace: Duration,
}

impl ForwardOutputs {
    pub fn new(forwards: Forwards) -> ForwardOutputs {
        let grace = forwards.grace();
        ForwardOutputs { forwards, grace }
    }
}

impl OutputKind for ForwardOutputs {
    fn name(&self) -> &'static str {
        KIND
    }

    fn grace(&self) -> Duration {
        self.grace
    }

    fn start(&self, key: &StreamKey, source: Option<&HookSubject>) -> Option<Box<dyn Output>> {
        let feed = self.forwards.start_feed(key, source)?;
        Some(Box::new(ForwardOutput {
            feed,
            forwards: self.forwards.clone(),
        }))
    }
}

/// The forward output of a path.
pub struct ForwardOutput {
    feed: Arc<Feed>,
    forwards: Forwards,
}

impl Output for ForwardOutput {
    fn packet(&mut self, packet: &Arc<Packet>) {
        self.feed.publish(packet);
    }

    fn gap(&mut self) {
        self.feed.gap();
    }

    /// The connections stay open for `forward.reconnect_window_ms`: a source that comes back
    /// in time continues the same publish upstream (with its own headers and keyframe). The
    /// old GOP must not be sent to an upstream connecting meanwhile.
    fn source_gone(&mut self) {
        self.feed.forget_gop();
    }

    fn end(&mut self) {
        self.forwards.feed_ended(&self.feed);
        self.feed.stop_all();
    }
}
