//! The bytes of the file a segment needs: its samples' byte ranges, adjacent samples
//! coalesced into one read, and the samples found again in what was read.

use bytes::Bytes;

/// A run of bytes of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    pub offset: u64,
    pub len: u64,
}

impl ByteRange {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// The ranges covering `samples` (offset, size): sorted by offset, with samples that touch
/// or overlap merged into one range.
pub(crate) fn coalesce(samples: impl Iterator<Item = (u64, u32)>) -> Vec<ByteRange> {
    let mut spans: Vec<(u64, u64)> = samples
        .filter(|&(_, size)| size > 0)
        .map(|(offset, size)| (offset, offset.saturating_add(u64::from(size))))
        .collect();
    spans.sort_unstable();
    let mut ranges: Vec<ByteRange> = Vec::new();
    for (start, end) in spans {
        match ranges.last_mut() {
            Some(last) if start <= last.end() => last.len = last.len.max(end - last.offset),
            _ => ranges.push(ByteRange {
                offset: start,
                len: end - start,
            }),
        }
    }
    ranges
}

/// The bytes read for a segment, one `Bytes` per range, in the order of the ranges.
pub(crate) struct SegmentBytes<'a> {
    pub(crate) ranges: &'a [ByteRange],
    pub(crate) data: &'a [Bytes],
}

impl SegmentBytes<'_> {
    /// The sample at `offset` of `size` bytes, as a slice of what was read (no copy), or
    /// `None` if no range holds it.
    pub(crate) fn sample(&self, offset: u64, size: u32) -> Option<Bytes> {
        let at = self.ranges.partition_point(|r| r.end() <= offset);
        let range = self.ranges.get(at)?;
        let data = self.data.get(at)?;
        let start = usize::try_from(offset.checked_sub(range.offset)?).ok()?;
        let end = start.checked_add(usize::try_from(size).ok()?)?;
        (end <= data.len()).then(|| data.slice(start..end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_samples_are_one_read() {
        let ranges = coalesce([(100, 10), (110, 5), (200, 1), (120, 0), (115, 3), (150, 20), (160, 5)].into_iter());
        assert_eq!(
            ranges,
            [
                ByteRange { offset: 100, len: 18 },
                ByteRange { offset: 150, len: 20 },
                ByteRange { offset: 200, len: 1 }
            ]
        );
    }

    #[test]
    fn samples_are_found_in_what_was_read() {
        let ranges = [ByteRange { offset: 100, len: 4 }, ByteRange { offset: 200, len: 3 }];
        let data = [Bytes::from_static(b"abcd"), Bytes::from_static(b"xyz")];
        let bytes = SegmentBytes {
            ranges: &ranges,
            data: &data,
        };
        assert_eq!(bytes.sample(101, 2).as_deref(), Some(&b"bc"[..]));
        assert_eq!(bytes.sample(200, 3).as_deref(), Some(&b"xyz"[..]));
        assert_eq!(bytes.sample(103, 2), None);
        assert_eq!(bytes.sample(150, 1), None);
        assert_eq!(bytes.sample(99, 1), None);
    }
}
