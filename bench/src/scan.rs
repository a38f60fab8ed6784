//! Streaming scanners that find video frames in what a server delivers without buffering
//! whole frames: FLV tags (HTTP-FLV) and MPEG-TS packets (HLS segments). Each keeps only the
//! first bytes of a video frame, which is where the publisher put its SEI.

/// Bytes kept from the start of each video frame (FLV tag body or TS PES).
pub const PREFIX: usize = 512;

/// A video frame found in the stream: the start of its body and whether the container
/// marked it as a keyframe (FLV frame type; `None` when the container does not say).
pub struct Frame<'a> {
    pub prefix: &'a [u8],
    pub keyframe: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlvState {
    FileHeader,
    TagHeader,
    Body,
    PrevSize,
}

/// Streaming FLV parser: header, then tags; reports each complete video tag.
#[derive(Debug)]
pub struct FlvScanner {
    state: FlvState,
    /// Bytes still to skip or fill in the current state.
    need: usize,
    header: [u8; 11],
    have: usize,
    prefix: Vec<u8>,
    kind: u8,
    pub tags: u64,
}

impl Default for FlvScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvScanner {
    pub fn new() -> Self {
        FlvScanner {
            state: FlvState::FileHeader,
            need: 13,
            header: [0; 11],
            have: 0,
            prefix: Vec::with_capacity(PREFIX),
            kind: 0,
            tags: 0,
        }
    }

    /// Feeds stream bytes; `on_video` is called for each video tag once its last byte is in.
    pub fn feed(&mut self, mut input: &[u8], mut on_video: impl FnMut(Frame<'_>)) -> Result<(), String> {
        while !input.is_empty() {
            match self.state {
                FlvState::FileHeader => {
                    let take = self.need.min(input.len());
                    if self.have == 0 && input.len() >= 3 && &input[..3] != b"FLV" {
                        return Err("body is not an FLV stream".to_string());
                    }
                    self.have += take;
                    self.need -= take;
                    input = &input[take..];
                    if self.need == 0 {
                        self.state = FlvState::TagHeader;
                        self.need = 11;
                        self.have = 0;
                    }
                }
                FlvState::TagHeader => {
                    let take = self.need.min(input.len());
                    self.header[self.have..self.have + take].copy_from_slice(&input[..take]);
                    self.have += take;
                    self.need -= take;
                    input = &input[take..];
                    if self.need == 0 {
                        let h = &self.header;
                        self.kind = h[0] & 0x1f;
                        self.need = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
                        self.prefix.clear();
                        self.state = FlvState::Body;
                        if self.need == 0 {
                            self.end_body(&mut on_video);
                        }
                    }
                }
                FlvState::Body => {
                    let take = self.need.min(input.len());
                    if self.kind == 9 && self.prefix.len() < PREFIX {
                        let keep = take.min(PREFIX - self.prefix.len());
                        self.prefix.extend_from_slice(&input[..keep]);
                    }
                    self.need -= take;
                    input = &input[take..];
                    if self.need == 0 {
                        self.end_body(&mut on_video);
                    }
                }
                FlvState::PrevSize => {
                    let take = self.need.min(input.len());
                    self.need -= take;
                    input = &input[take..];
                    if self.need == 0 {
                        self.state = FlvState::TagHeader;
                        self.need = 11;
                        self.have = 0;
                    }
                }
            }
        }
        Ok(())
    }

    fn end_body(&mut self, on_video: &mut impl FnMut(Frame<'_>)) {
        self.tags += 1;
        // Coded frames only (AVCPacketType 1); sequence headers carry no SEI.
        if self.kind == 9 && self.prefix.len() >= 2 && self.prefix[1] == 1 {
            on_video(Frame {
                prefix: &self.prefix,
                keyframe: Some(self.prefix[0] >> 4 == 1),
            });
        }
        self.state = FlvState::PrevSize;
        self.need = 4;
    }
}

/// Scans one MPEG-TS segment: reports the start of each PES on every PID (the caller looks
/// for its SEI; audio PES will not have one).
pub fn scan_ts(segment: &[u8], mut on_pes: impl FnMut(u16, &[u8])) -> Result<(), String> {
    // Per PID: the PES prefix being collected.
    let mut open: Vec<(u16, Vec<u8>)> = Vec::new();
    for packet in segment.chunks(188) {
        if packet.len() < 188 {
            break;
        }
        if packet[0] != 0x47 {
            return Err("lost MPEG-TS sync".to_string());
        }
        let pusi = packet[1] & 0x40 != 0;
        let pid = (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2]);
        let afc = (packet[3] >> 4) & 0x03;
        if pid == 0x1fff || afc & 0x01 == 0 || pid < 0x10 {
            continue;
        }
        let mut start = 4;
        if afc & 0x02 != 0 {
            start += 1 + usize::from(packet[4]);
        }
        if start >= 188 {
            continue;
        }
        let payload = &packet[start..];
        let slot = match open.iter().position(|(p, _)| *p == pid) {
            Some(i) => i,
            None => {
                open.push((pid, Vec::with_capacity(PREFIX)));
                open.len() - 1
            }
        };
        let buf = &mut open[slot].1;
        if pusi {
            if !buf.is_empty() {
                on_pes(pid, buf);
            }
            buf.clear();
            if payload.len() < 3 || payload[..3] != [0, 0, 1] {
                continue; // PSI section, not PES
            }
        } else if buf.is_empty() {
            continue; // continuation of something we did not see start
        }
        let keep = (PREFIX - buf.len().min(PREFIX)).min(payload.len());
        buf.extend_from_slice(&payload[..keep]);
    }
    for (pid, buf) in &open {
        if !buf.is_empty() {
            on_pes(*pid, buf);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sei;

    #[test]
    fn flv_video_tags_in_any_split() {
        let mut s = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        let body = sei::insert_sei(&[0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88], 4, 9);
        for (kind, b) in [
            (8u8, &[0xafu8, 1, 2][..]),
            (9, &body[..]),
            (9, &[0x17, 0, 0, 0, 0, 1][..]),
        ] {
            s.extend_from_slice(&[kind, 0, 0, b.len() as u8, 0, 0, 0, 0, 0, 0, 0]);
            s.extend_from_slice(b);
            s.extend_from_slice(&(11 + b.len() as u32).to_be_bytes());
        }
        for split in 0..s.len() {
            let mut scanner = FlvScanner::new();
            let mut ids = Vec::new();
            let mut record = |f: Frame<'_>| ids.push((sei::find_id(f.prefix), f.keyframe));
            scanner.feed(&s[..split], &mut record).unwrap();
            scanner.feed(&s[split..], &mut record).unwrap();
            assert_eq!(ids, vec![(Some(9), Some(true))]);
            assert_eq!(scanner.tags, 3);
        }
    }

    #[test]
    fn ts_pes_prefix_has_the_sei() {
        // One video PES split over two TS packets, with an adaptation field in the first.
        let mut es = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1];
        es.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1]);
        es.extend_from_slice(&[0xaa; 150]);
        es.extend_from_slice(&sei::sei_nal(sei::frame_id(0, 5)));
        let mut seg = Vec::new();
        let first = 188 - 4 - 8;
        seg.extend_from_slice(&[0x47, 0x41, 0x00, 0x30, 7, 0x50, 0, 0, 0, 0, 0, 0]);
        seg.extend_from_slice(&es[..first]);
        let mut p2 = vec![0x47, 0x01, 0x00, 0x11];
        let rest = &es[first..];
        p2.extend_from_slice(rest);
        p2.resize(188, 0xff);
        seg.extend_from_slice(&p2);
        let mut found = Vec::new();
        scan_ts(&seg, |pid, pes| found.push((pid, sei::find_id(pes)))).unwrap();
        assert_eq!(found, vec![(0x100, Some(sei::frame_id(0, 5)))]);
    }
}
