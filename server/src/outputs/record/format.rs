//! What a recording's file format is to the writer thread: the muxer's sans-IO writers
//! (`flv.rs`, `mp4.rs`) behind one interface.

use bytes::Bytes;
use estuary_protocol::Packet;

/// What one packet made.
#[derive(Debug, Default)]
pub struct Muxed {
    /// Bytes to append to the file.
    pub bytes: Vec<Bytes>,
    /// The file ends a whole fragment here: syncing it now bounds what a crash loses.
    pub durable: bool,
    /// The stream changed codec settings the file cannot carry on with: finish this file
    /// and start another (this packet goes into the new one).
    pub restart: bool,
}

/// Packets in, the bytes of one recording file out.
pub trait FileMuxer: Send {
    fn push(&mut self, packet: &Packet) -> Result<Muxed, String>;

    /// Packets were lost: what follows starts at the next keyframe.
    fn gap(&mut self);

    /// The file's last bytes.
    fn finish(&mut self) -> Vec<Bytes>;

    /// Stream time in the file so far.
    fn duration_ms(&self) -> u64;
}
