//! Entry point of the `ts_check` fuzz target in `fuzz/` (cargo-fuzz, libFuzzer). Not part of
//! the API: hidden from the docs, and free to change with the target.
//!
//! The bytes go through the MPEG-TS segment verifier whole, then split at the packet boundary
//! nearest their middle as two consecutive segments of one stream, and through each
//! TS reader on its own: PES header, PAT, PMT, PCR. Whatever the bytes, nothing may panic. The
//! test below replays the committed seeds and past crashes (see
//! [`estuary_protocol::fuzzing::replay`]).

use crate::check::{check_segment, TsChecker};
use crate::ts::pes::parse_pes_header;
use crate::ts::psi::{parse_pat, parse_pmt};
use crate::ts::{pcr_from_adaptation_field, TS_PACKET_LEN};

/// `ts_check`: see the module documentation.
pub fn ts_check(data: &[u8]) {
    let _ = check_segment(data);
    let at = data.len() / TS_PACKET_LEN / 2 * TS_PACKET_LEN;
    let mut checker = TsChecker::new();
    let _ = checker.check_segment(&data[..at], true);
    let _ = checker.check_segment(&data[at..], false);
    let _ = parse_pes_header(data);
    let _ = parse_pat(data);
    let _ = parse_pmt(data);
    let _ = pcr_from_adaptation_field(data);
}

#[cfg(test)]
mod tests {
    #[test]
    fn ts_check_corpus_replays() {
        let (panicked, count) = estuary_protocol::fuzzing::replay("ts_check", super::ts_check).unwrap();
        assert!(count > 0, "no committed inputs for fuzz target ts_check");
        assert!(panicked.is_empty(), "ts_check: these inputs panic: {panicked:?}");
    }
}
