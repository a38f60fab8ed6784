//! Reading ISO BMFF boxes held in memory (a `moov` or a `moof` read whole): child box
//! iteration and a big-endian cursor. Every read is bounds-checked and a failure names the
//! box and the file offset, because the bytes come from a file that may be torn or hostile.

use bytes::Bytes;

use crate::MuxError;

/// One box inside a buffer, located in the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawBox<'a> {
    pub(crate) box_type: [u8; 4],
    /// File offset of the box's first byte (its size field).
    pub(crate) offset: u64,
    /// Size field and type, 8 or 16 bytes.
    pub(crate) header_len: usize,
    pub(crate) payload: &'a [u8],
}

impl<'a> RawBox<'a> {
    /// The boxes in the payload.
    pub(crate) fn children(&self) -> Children<'a> {
        self.children_after(0)
    }

    /// The boxes in the payload after its first `skip` bytes (`stsd` and `dref` have a
    /// full-box header and an entry count first).
    pub(crate) fn children_after(&self, skip: usize) -> Children<'a> {
        let payload = self.payload.get(skip..).unwrap_or_default();
        let base = self.payload_offset() + skip as u64;
        children(payload, base, self.box_type)
    }

    /// The first child of type `fourcc`, if any.
    pub(crate) fn find(&self, fourcc: &[u8; 4]) -> Result<Option<RawBox<'a>>, MuxError> {
        for child in self.children() {
            let child = child?;
            if &child.box_type == fourcc {
                return Ok(Some(child));
            }
        }
        Ok(None)
    }

    /// The first child of type `fourcc`, which must be there.
    pub(crate) fn require(&self, fourcc: &[u8; 4]) -> Result<RawBox<'a>, MuxError> {
        self.find(fourcc)?
            .ok_or_else(|| self.malformed(format!("no {} box inside it", String::from_utf8_lossy(fourcc))))
    }

    pub(crate) fn payload_offset(&self) -> u64 {
        self.offset + self.header_len as u64
    }

    pub(crate) fn malformed(&self, reason: impl Into<String>) -> MuxError {
        MuxError::mp4_malformed(self.box_type, self.offset, reason)
    }

    /// The whole box as a copy, with a compact 8-byte header (for small boxes copied from one
    /// file into another: `stsd`, `hdlr`).
    pub(crate) fn copied(&self) -> Bytes {
        let mut out = Vec::with_capacity(8 + self.payload.len());
        out.extend_from_slice(&u32::try_from(8 + self.payload.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&self.box_type);
        out.extend_from_slice(self.payload);
        Bytes::from(out)
    }
}

/// Iterates the boxes of `data`, whose first byte is at file offset `base`, inside a box of
/// type `parent`. Stops after the first error.
pub(crate) fn children(data: &[u8], base: u64, parent: [u8; 4]) -> Children<'_> {
    Children {
        data,
        pos: 0,
        base,
        parent,
        failed: false,
    }
}

/// Iterator returned by [`children`].
pub(crate) struct Children<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    parent: [u8; 4],
    failed: bool,
}

impl<'a> Children<'a> {
    fn next_box(&mut self) -> Result<RawBox<'a>, MuxError> {
        let rest = &self.data[self.pos..];
        let offset = self.base + self.pos as u64;
        let err = |reason: String| MuxError::mp4_malformed(self.parent, self.base, reason);
        let head = rest
            .get(..8)
            .ok_or_else(|| err(format!("{} stray bytes at byte {offset}", rest.len())))?;
        let box_type = [head[4], head[5], head[6], head[7]];
        let (size, header_len) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
            0 => (rest.len() as u64, 8),
            1 => {
                let large = rest
                    .get(8..16)
                    .ok_or_else(|| err(format!("truncated 64-bit box size at byte {offset}")))?;
                let mut size = [0u8; 8];
                size.copy_from_slice(large);
                (u64::from_be_bytes(size), 16)
            }
            size => (u64::from(size), 8),
        };
        let name = String::from_utf8_lossy(&box_type).into_owned();
        if size < header_len as u64 || size > rest.len() as u64 {
            return Err(err(format!(
                "child box {name:?} at byte {offset} declares {size} bytes, {} remain",
                rest.len()
            )));
        }
        let size = size as usize;
        self.pos += size;
        Ok(RawBox {
            box_type,
            offset,
            header_len,
            payload: &rest[header_len..size],
        })
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<RawBox<'a>, MuxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let item = self.next_box();
        self.failed = item.is_err();
        Some(item)
    }
}

/// Reads the fields of one box's payload, big-endian.
pub(crate) struct Cursor<'a> {
    raw: RawBox<'a>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(raw: &RawBox<'a>) -> Self {
        Cursor { raw: *raw, pos: 0 }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], MuxError> {
        let payload = self.raw.payload;
        let slice = self.pos.checked_add(n).and_then(|end| payload.get(self.pos..end));
        let Some(slice) = slice else {
            return Err(self.raw.malformed(format!(
                "needs {n} more bytes at payload byte {}, has {}",
                self.pos,
                payload.len().saturating_sub(self.pos)
            )));
        };
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MuxError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, MuxError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, MuxError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, MuxError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, MuxError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, MuxError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn fourcc(&mut self) -> Result<[u8; 4], MuxError> {
        self.array()
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), MuxError> {
        self.bytes(n).map(|_| ())
    }

    /// A full box's version and flags.
    pub(crate) fn full_header(&mut self) -> Result<(u8, u32), MuxError> {
        let word = self.u32()?;
        Ok(((word >> 24) as u8, word & 0x00ff_ffff))
    }

    /// A 32-bit value in version 0 of a box, 64-bit in version 1.
    pub(crate) fn u32_or_u64(&mut self, version: u8) -> Result<u64, MuxError> {
        if version == 1 {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    /// Bytes left in the payload.
    pub(crate) fn remaining(&self) -> usize {
        self.raw.payload.len().saturating_sub(self.pos)
    }

    /// An entry count that claims `count` entries of `entry_len` bytes each: refused when
    /// the box is too short to hold them, so a corrupt count cannot make the reader allocate.
    pub(crate) fn entries(&mut self, entry_len: usize) -> Result<usize, MuxError> {
        let count = self.u32()? as usize;
        if count.saturating_mul(entry_len) > self.remaining() {
            return Err(self.raw.malformed(format!(
                "declares {count} entries of {entry_len} bytes in {} bytes",
                self.remaining()
            )));
        }
        Ok(count)
    }
}
