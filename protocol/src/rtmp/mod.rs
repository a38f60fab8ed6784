//! RTMP: the chunk layer (ours, per chunk stream), the shared media chunker for fan-out, and
//! the server session logic over `rml_rtmp`'s message types and AMF0.

pub(crate) mod amf_guard;
pub mod chunk;
pub mod chunker;
pub mod client;
pub mod session;
