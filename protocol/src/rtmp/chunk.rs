//! The RTMP chunk reader: reassembles messages from chunks, per chunk stream id
//! (RTMP 1.0 §5.3).
//!
//! Each chunk stream keeps its own header state and its own partial message, so chunks of
//! different chunk streams may interleave freely (Enhanced-RTMP encoders do this; the single
//! reassembly buffer of `rml_rtmp`'s deserializer does not survive it, rust-media-libs PR #50).
//! All three basic-header forms are accepted (csid 2–63, 64–319, 64–65599), and the extended
//! timestamp on a format-3 chunk is accepted whether or not the peer repeats it: the spec is
//! ambiguous, librtmp and FFmpeg repeat it, others do not. Every size a peer can choose is
//! checked against [`ChunkLimits`] before memory is allocated for it.
//!
//! What one connection's chunk streams hold together is a byte budget
//! ([`ChunkLimits::max_buffered_bytes`]): each partial message counts its whole declared
//! length (allocated on its first chunk) and each chunk stream id ever used counts
//! [`CHUNK_STREAM_COST`] for its header state, so a peer opening thousands of chunk stream
//! ids with a half-sent message on each is cut off at the budget, not at 65,599 ids.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The chunk size every RTMP peer starts with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;

/// What one chunk stream's header state costs against
/// [`ChunkLimits::max_buffered_bytes`]: the state itself plus its hash-table slot.
pub const CHUNK_STREAM_COST: usize = std::mem::size_of::<ChunkStream>() + 16;

/// Limits on what a peer may make us allocate.
#[derive(Debug, Clone, Copy)]
pub struct ChunkLimits {
    /// Largest chunk size a peer may set with Set Chunk Size.
    pub max_chunk_size: u32,
    /// Largest message a peer may send, in bytes.
    pub max_message_bytes: u32,
    /// Most bytes all chunk streams of one connection may hold together: partial messages
    /// (their declared length) and [`CHUNK_STREAM_COST`] per chunk stream id used.
    pub max_buffered_bytes: usize,
    /// The budget of everything a server session holds for a peer that has not been
    /// admitted with `connect` yet: its chunk streams and unread bytes (see
    /// [`crate::rtmp::session::ServerSession`]). Not used by the reader itself.
    pub max_preconnect_bytes: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_chunk_size: 0x00ff_ffff,
            max_message_bytes: 8 * 1024 * 1024,
            max_buffered_bytes: 16 * 1024 * 1024,
            max_preconnect_bytes: 64 * 1024,
        }
    }
}

/// One reassembled RTMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub csid: u32,
    /// Absolute timestamp in milliseconds (32-bit, wraps).
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

/// Why the chunk stream cannot be read any further. The connection must be closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("peer set chunk size 0")]
    ChunkSizeZero,
    #[error("peer set chunk size {size}, over the maximum {max}")]
    ChunkSizeTooLarge { size: u32, max: u32 },
    #[error("set chunk size message is {0} bytes, expected 4")]
    BadSetChunkSize(usize),
    #[error("chunk stream {csid}: message of {len} bytes is over the maximum {max}")]
    MessageTooLarge { csid: u32, len: u32, max: u32 },
    #[error("chunk stream {csid}: format {fmt} chunk with no previous header on that chunk stream")]
    NoPreviousHeader { csid: u32, fmt: u8 },
    #[error("chunk stream {csid}: header changed in the middle of a {len}-byte message")]
    HeaderChangedMidMessage { csid: u32, len: u32 },
    #[error(
        "chunk streams would hold {held} bytes (partial messages and chunk stream state), over the budget of {max}"
    )]
    TooMuchBuffered { held: usize, max: usize },
}

#[derive(Debug, Default)]
struct ChunkStream {
    timestamp: u32,
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The extended timestamp field of the last header on this chunk stream, if it had one.
    extended: Option<u32>,
    partial: Option<BytesMut>,
}

/// Reads RTMP chunks from a byte buffer and returns whole messages. Sans-IO: the caller
/// appends what it read from the socket to a `BytesMut` and calls [`ChunkReader::read`]
/// until it returns `Ok(None)`.
#[derive(Debug)]
pub struct ChunkReader {
    chunk_size: u32,
    limits: ChunkLimits,
    streams: HashMap<u32, ChunkStream>,
    /// Bytes counted against `limits.max_buffered_bytes`: partial messages' declared
    /// lengths plus [`CHUNK_STREAM_COST`] per chunk stream.
    buffered: usize,
}

struct Header {
    fmt: u8,
    csid: u32,
    len: usize,
    /// Timestamp or delta field (before the extended field).
    ts_field: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

impl ChunkReader {
    pub fn new(limits: ChunkLimits) -> Self {
        ChunkReader {
            chunk_size: DEFAULT_CHUNK_SIZE,
            limits,
            streams: HashMap::new(),
            buffered: 0,
        }
    }

    /// The chunk size the peer is sending with.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Replaces the limits (a server session widens them once the peer is admitted). What is
    /// already held is checked against the new budget at the next allocation.
    pub fn set_limits(&mut self, limits: ChunkLimits) {
        self.limits = limits;
    }

    /// Bytes held against [`ChunkLimits::max_buffered_bytes`]: partial messages and chunk
    /// stream state.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Counts `more` bytes against the budget, or refuses them (nothing is counted then).
    fn charge(&mut self, more: usize) -> Result<(), ChunkError> {
        let held = self.buffered + more;
        if held > self.limits.max_buffered_bytes {
            return Err(ChunkError::TooMuchBuffered {
                held,
                max: self.limits.max_buffered_bytes,
            });
        }
        self.buffered = held;
        Ok(())
    }

    /// Applies a chunk size the peer announced. Done automatically for Set Chunk Size
    /// messages read through [`ChunkReader::read`].
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 {
            return Err(ChunkError::ChunkSizeZero);
        }
        if size > self.limits.max_chunk_size || size & 0x8000_0000 != 0 {
            return Err(ChunkError::ChunkSizeTooLarge {
                size,
                max: self.limits.max_chunk_size,
            });
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Drops the partial message of a chunk stream (RTMP Abort message).
    pub fn abort(&mut self, csid: u32) {
        if let Some(stream) = self.streams.get_mut(&csid) {
            if stream.partial.take().is_some() {
                self.buffered -= (stream.length as usize).min(self.buffered);
            }
        }
    }

    /// Consumes whole chunks from `buf` until a message is complete (returned) or `buf`
    /// holds no whole chunk (`Ok(None)`; read more and call again).
    pub fn read(&mut self, buf: &mut BytesMut) -> Result<Option<RawMessage>, ChunkError> {
        loop {
            let Some(header) = parse_header(buf) else {
                return Ok(None);
            };
            match self.read_chunk(header, buf)? {
                ChunkOutcome::NeedMore => return Ok(None),
                ChunkOutcome::Continue => {}
                ChunkOutcome::Message(msg) => {
                    if msg.type_id == 1 {
                        self.apply_set_chunk_size(&msg.payload)?;
                    }
                    return Ok(Some(msg));
                }
            }
        }
    }

    fn apply_set_chunk_size(&mut self, payload: &[u8]) -> Result<(), ChunkError> {
        let bytes: [u8; 4] = payload
            .try_into()
            .map_err(|_| ChunkError::BadSetChunkSize(payload.len()))?;
        self.set_chunk_size(u32::from_be_bytes(bytes))
    }

    fn read_chunk(&mut self, h: Header, buf: &mut BytesMut) -> Result<ChunkOutcome, ChunkError> {
        let limits = self.limits;
        let chunk_size = self.chunk_size as usize;
        if h.fmt == 0 && !self.streams.contains_key(&h.csid) {
            self.charge(CHUNK_STREAM_COST)?;
        }
        let stream = match self.streams.get_mut(&h.csid) {
            Some(s) => s,
            None if h.fmt == 0 => self.streams.entry(h.csid).or_default(),
            None => {
                return Err(ChunkError::NoPreviousHeader {
                    csid: h.csid,
                    fmt: h.fmt,
                })
            }
        };
        let continuing = stream.partial.is_some();
        let mut pos = h.len;

        // Extended timestamp field.
        let mut extended = None;
        if h.fmt < 3 && h.ts_field == 0x00ff_ffff {
            if buf.len() < pos + 4 {
                return Ok(ChunkOutcome::NeedMore);
            }
            extended = Some(u32::from_be_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]));
            pos += 4;
        } else if h.fmt == 3 {
            if let Some(ext) = stream.extended {
                // Repeated or not: take the 4 bytes only if they are the same value.
                if buf.len() < pos + 4 {
                    return Ok(ChunkOutcome::NeedMore);
                }
                if buf[pos..pos + 4] == ext.to_be_bytes() {
                    pos += 4;
                }
            }
        }

        if h.fmt < 3 && continuing {
            // A new header while a message is half read: only legal if it describes the
            // same message, which no sane peer does; treat it as corruption.
            return Err(ChunkError::HeaderChangedMidMessage {
                csid: h.csid,
                len: stream.length,
            });
        }

        let (length, remaining) = if continuing {
            let have = stream.partial.as_ref().map_or(0, BytesMut::len);
            (stream.length, stream.length as usize - have)
        } else {
            let length = if h.fmt <= 1 { h.length } else { stream.length };
            (length, length as usize)
        };
        if length > limits.max_message_bytes {
            return Err(ChunkError::MessageTooLarge {
                csid: h.csid,
                len: length,
                max: limits.max_message_bytes,
            });
        }
        let take = remaining.min(chunk_size);
        if buf.len() < pos + take {
            return Ok(ChunkOutcome::NeedMore);
        }

        // The chunk is whole: commit its header to the chunk stream state.
        if !continuing {
            let ts_value = extended.unwrap_or(h.ts_field);
            match h.fmt {
                0 => {
                    stream.timestamp = ts_value;
                    stream.delta = ts_value;
                    stream.length = h.length;
                    stream.type_id = h.type_id;
                    stream.stream_id = h.stream_id;
                }
                1 => {
                    stream.delta = ts_value;
                    stream.timestamp = stream.timestamp.wrapping_add(ts_value);
                    stream.length = h.length;
                    stream.type_id = h.type_id;
                }
                2 => {
                    stream.delta = ts_value;
                    stream.timestamp = stream.timestamp.wrapping_add(ts_value);
                }
                _ => stream.timestamp = stream.timestamp.wrapping_add(stream.delta),
            }
            if h.fmt < 3 {
                stream.extended = extended;
            }
        }
        buf.advance(pos);
        let data = buf.split_to(take);

        if !continuing && take == length as usize {
            // Single-chunk message: no reassembly needed.
            return Ok(ChunkOutcome::Message(message(h.csid, stream, data.freeze())));
        }
        if stream.partial.is_none() {
            // Checked before the allocation; the chunk's bytes are consumed either way, the
            // connection ends on the error.
            let held = self.buffered + length as usize;
            if held > limits.max_buffered_bytes {
                return Err(ChunkError::TooMuchBuffered {
                    held,
                    max: limits.max_buffered_bytes,
                });
            }
            self.buffered = held;
        }
        let partial = stream
            .partial
            .get_or_insert_with(|| BytesMut::with_capacity(length as usize));
        partial.put_slice(&data);
        if partial.len() < length as usize {
            return Ok(ChunkOutcome::Continue);
        }
        let payload = stream.partial.take().map(BytesMut::freeze).unwrap_or_default();
        self.buffered -= (length as usize).min(self.buffered);
        Ok(ChunkOutcome::Message(message(h.csid, stream, payload)))
    }
}

enum ChunkOutcome {
    NeedMore,
    Continue,
    Message(RawMessage),
}

fn message(csid: u32, stream: &ChunkStream, payload: Bytes) -> RawMessage {
    RawMessage {
        csid,
        timestamp: stream.timestamp,
        type_id: stream.type_id,
        stream_id: stream.stream_id,
        payload,
    }
}

/// Parses a basic header and message header without consuming; `None` if incomplete.
fn parse_header(buf: &[u8]) -> Option<Header> {
    let b0 = *buf.first()?;
    let fmt = b0 >> 6;
    let (csid, basic_len) = match b0 & 0x3f {
        0 => (64 + u32::from(*buf.get(1)?), 2),
        1 => (64 + u32::from(*buf.get(1)?) + 256 * u32::from(*buf.get(2)?), 3),
        n => (u32::from(n), 1),
    };
    let msg_len = [11, 7, 3, 0][fmt as usize];
    let h = buf.get(basic_len..basic_len + msg_len)?;
    let u24 = |b: &[u8]| (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    let mut header = Header {
        fmt,
        csid,
        len: basic_len + msg_len,
        ts_field: 0,
        length: 0,
        type_id: 0,
        stream_id: 0,
    };
    if fmt <= 2 {
        header.ts_field = u24(&h[0..3]);
    }
    if fmt <= 1 {
        header.length = u24(&h[3..6]);
        header.type_id = h[6];
    }
    if fmt == 0 {
        header.stream_id = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
    }
    Some(header)
}

#[cfg(test)]
#[path = "chunk_tests.rs"]
mod tests;
