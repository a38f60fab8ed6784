//! The live media of one stream key, and its fan-out: the hot path.
//!
//! ```text
//! source ──► Stream::publish ──► timeline, headers, GOP cache ──► ring ──► Subscriber × N
//!                                                              └──► parked sockets (direct)
//! ```
//! - `live`: the [`Stream`]: publisher slot, timeline, sequence headers, GOP cache, ring.
//! - `subscriber`: one reader of the ring, with the slow-viewer policy.
//! - `direct`: sockets of viewers at the live edge, written by the publisher's task outside
//!   every lock.
//! - `timeline`, `gop`, `metadata`, `batch`, `key`: the pieces they are made of.
//! - `extra_tracks`: a Multitrack publisher's tracks ≥ 1, kept apart from track 0.
//! - `budget`: what a packet costs against the byte budgets, and the ring's byte window.
//!
//! Nothing here knows about hooks, outputs or protocols: the owner of a stream key (its
//! path, `crate::path`) decides who publishes and who watches.

mod batch;
mod budget;
mod direct;
#[cfg(test)]
mod direct_tests;
mod extra_tracks;
mod gop;
mod key;
mod live;
mod metadata;
mod subscriber;
mod timeline;

pub use batch::Batch;
pub use direct::{DirectSink, SentCounter, SinkFormat, Unsent};
pub use extra_tracks::ExtraTrack;
pub use key::StreamKey;
pub use live::{ClaimError, Holder, Snapshot, Stream, StreamStats};
pub use metadata::Tracks;
pub use subscriber::{Subscriber, SubscriberEnd};
