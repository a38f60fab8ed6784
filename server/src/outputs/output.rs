//! What an output is to its path.

use std::sync::Arc;
use std::time::Duration;

use estuary_protocol::Packet;
use tokio_util::sync::CancellationToken;

use crate::hooks::HookSubject;
use crate::stream::StreamKey;

/// One output of one path: fed every packet of the stream's timeline, in order, from the
/// moment its source starts. The path runs it in a task of its own, so an output may take
/// its time (the source never waits for it), and calls these methods one at a time.
pub trait Output: Send {
    /// The next packet of the stream.
    fn packet(&mut self, packet: &Arc<Packet>);

    /// Packets were lost (the output fell a whole ring behind the source): what comes next
    /// does not join what came before. Video resumes at the next keyframe.
    fn gap(&mut self) {}

    /// The source stopped. It may come back within the kind's grace period, and then packets
    /// continue (flagged `discontinuity`); otherwise [`end`](Self::end) follows.
    fn source_gone(&mut self) {}

    /// Another source started on the path while this output ran (it came back within the
    /// grace period): who it is, as the hooks describe it (`None` for a source with no
    /// client). Called before any of its packets.
    fn source_changed(&mut self, _source: Option<&HookSubject>) {}

    /// The path ends this output: the source did not come back in time, the output's stop
    /// token was cancelled, or the server is shutting down. Nothing follows.
    fn end(&mut self) {}

    /// A token that ends this output when cancelled, whatever its source does (a recording
    /// stopped by hand); asked once, when the output starts.
    fn stop_token(&self) -> Option<CancellationToken> {
        None
    }
}

/// A kind of output (HLS, and later the recorder and forwarders): it decides whether a path
/// gets one, and how long it outlives the path's source.
pub trait OutputKind: Send + Sync {
    /// For logs and metrics, e.g. `"hls"`.
    fn name(&self) -> &'static str;

    /// How long an output of this kind waits for a source that stopped to come back.
    fn grace(&self) -> Duration;

    /// The output for the source of `key` that just started (or is live when an output is
    /// started by hand), or `None` if this kind is off for it. `source` is who publishes, as
    /// the hooks describe it (`None` for a source with no client).
    fn start(&self, key: &StreamKey, source: Option<&HookSubject>) -> Option<Box<dyn Output>>;
}
