//! Estuary's protocol layer, sans-IO: the shared [`media::Packet`], FLV tag parsing and
//! framing, codec configuration records, and the RTMP chunk layer and session logic.
//! No tokio, no sockets, no clock reads.
#![forbid(unsafe_code)]

pub mod codec;
pub mod flv;
/// Entry points of the fuzz targets in `fuzz/`; not part of the API.
#[doc(hidden)]
pub mod fuzzing;
pub mod media;
mod media_kind;
pub mod rtmp;

pub use media::{Codec, FlvPackets, MediaKind, Packet};
