//! Writing ISO BMFF boxes (ISO/IEC 14496-12 §4.2) into memory: a box is opened, its fields
//! written, and its size patched in when it closes, so no box size is ever computed by hand.

use bytes::{BufMut, BytesMut};

/// A growing buffer of boxes. Boxes nest through closures, so a box cannot be left open.
pub(crate) struct BoxBuf {
    buf: BytesMut,
}

impl BoxBuf {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        BoxBuf {
            buf: BytesMut::with_capacity(capacity),
        }
    }

    /// Writes a box of type `fourcc` whose payload `body` writes.
    ///
    /// Boxes built in memory are far below 4 GiB (the largest is a `moov` whose size the
    /// reader bounds), so the compact 32-bit size is always used here; only `mdat`, which
    /// is never built in memory, may need a 64-bit size ([`mdat_header`]).
    pub(crate) fn boxed(&mut self, fourcc: &[u8; 4], body: impl FnOnce(&mut BoxBuf)) {
        let start = self.buf.len();
        self.buf.put_u32(0);
        self.buf.put_slice(fourcc);
        body(self);
        let size = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }

    /// Writes a full box: a box whose payload starts with a version byte and 24 bits of flags.
    pub(crate) fn full_box(&mut self, fourcc: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut BoxBuf)) {
        self.boxed(fourcc, |b| {
            b.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
            body(b);
        });
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.put_u8(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.put_u16(v);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.put_u32(v);
    }

    pub(crate) fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.put_u64(v);
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.put_slice(v);
    }

    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf.put_bytes(0, n);
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Overwrites 4 bytes written earlier (a `trun` data offset known only once the `moof`
    /// is complete).
    pub(crate) fn patch_u32(&mut self, at: usize, v: u32) {
        if let Some(slot) = self.buf.get_mut(at..at + 4) {
            slot.copy_from_slice(&v.to_be_bytes());
        }
    }

    pub(crate) fn into_inner(self) -> BytesMut {
        self.buf
    }
}

/// The identity matrix of `mvhd` and `tkhd` (§8.2.2.3).
pub(crate) const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// ISO-639-2/T "und" packed as three 5-bit letters (§8.4.2.3).
pub(crate) const LANGUAGE_UNDETERMINED: u16 = 0x55c4;

/// The header of an `mdat` holding `payload_len` bytes: 8 bytes, or 16 with a 64-bit
/// `largesize` when the box would not fit in 4 GiB (§4.2).
pub(crate) fn mdat_header(payload_len: u64) -> Vec<u8> {
    let compact = payload_len + 8;
    match u32::try_from(compact) {
        Ok(size) => {
            let mut header = size.to_be_bytes().to_vec();
            header.extend_from_slice(b"mdat");
            header
        }
        Err(_) => {
            let mut header = 1u32.to_be_bytes().to_vec();
            header.extend_from_slice(b"mdat");
            header.extend_from_slice(&(payload_len + 16).to_be_bytes());
            header
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::parse::{children, Cursor};

    #[test]
    fn nested_boxes_round_trip() {
        let mut b = BoxBuf::with_capacity(64);
        b.boxed(b"moov", |b| {
            b.full_box(b"mvhd", 1, 0x000102, |b| b.u64(7));
            b.boxed(b"trak", |b| b.bytes(b"abc"));
        });
        b.boxed(b"free", |_| {});
        let data = b.into_inner();
        let top: Vec<_> = children(&data, 100, *b"file").collect::<Result<_, _>>().unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(
            (&top[0].box_type, top[0].offset, top[0].payload.len()),
            (b"moov", 100, 31)
        );
        assert_eq!(
            (&top[1].box_type, top[1].offset, top[1].payload.len()),
            (b"free", 139, 0)
        );
        let inner: Vec<_> = top[0].children().collect::<Result<_, _>>().unwrap();
        assert_eq!(&inner[0].box_type, b"mvhd");
        let mut c = Cursor::new(&inner[0]);
        assert_eq!(c.full_header().unwrap(), (1, 0x000102));
        assert_eq!(c.u64().unwrap(), 7);
        assert_eq!((&inner[1].box_type, inner[1].payload), (b"trak", &b"abc"[..]));
    }

    #[test]
    fn mdat_header_switches_to_largesize_past_4_gib() {
        assert_eq!(mdat_header(10), [0, 0, 0, 18, b'm', b'd', b'a', b't']);
        let large = mdat_header(u64::from(u32::MAX));
        assert_eq!(large.len(), 16);
        assert_eq!(&large[..8], &[0, 0, 0, 1, b'm', b'd', b'a', b't']);
        assert_eq!(large[8..], (u64::from(u32::MAX) + 16).to_be_bytes());
    }
}
