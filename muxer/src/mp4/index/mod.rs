//! Reading MP4 files into a sample table ([`Mp4Index`](crate::mp4::Mp4Index)), generic over
//! `Read + Seek`: fragmented recordings (torn or not) and progressive files.

mod fragment;
mod moov;
mod progressive;
mod read;

pub use read::{index_fragmented, index_progressive, read_index, MAX_MOOF_BYTES, MAX_MOOV_BYTES};
