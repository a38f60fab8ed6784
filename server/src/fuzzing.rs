//! Entry point of the `flv_request_head` fuzz target in `fuzz/` (cargo-fuzz, libFuzzer). Not
//! part of the API: hidden from the docs, and free to change with the target. The server's
//! parsers are private; this is the one door the fuzzer needs, and it opens on nothing else.
//!
//! The test below replays the committed seeds and past crashes (see
//! [`estuary_protocol::fuzzing::replay`]).

/// `flv_request_head`: a connection's first bytes, read as the HTTP-FLV socket path reads
/// them before admission (request line check, request head, stream key). Must not panic.
pub fn flv_request_head(data: &[u8]) {
    crate::servers::http::read_request_for_fuzzing(data);
}

#[cfg(test)]
mod tests {
    #[test]
    fn flv_request_head_corpus_replays() {
        let (panicked, count) = estuary_protocol::fuzzing::replay("flv_request_head", super::flv_request_head).unwrap();
        assert!(count > 0, "no committed inputs for fuzz target flv_request_head");
        assert!(
            panicked.is_empty(),
            "flv_request_head: these inputs panic: {panicked:?}"
        );
    }
}
