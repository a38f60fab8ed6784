//! Segment names: `{stream}-{instance}-{sequence}.ts`, beside the playlist. In the
//! playlist, the stream part is percent-encoded ([`segment_uri`]): `stream.name_extra_chars`
//! may allow characters (`@`, `+`, `:` …) that a URI must not carry raw; the HTTP handler
//! decodes the request path before [`parse_segment_name`].
//!
//! Segments are served as `immutable`, so a name must never be reused for other bytes: not
//! by the next packaging run of the same stream, not after a restart, not by another node
//! behind the same CDN. The instance is a random 64-bit number drawn per packaging run.

/// A fresh packaging-run id: 16 hex digits from the operating system's randomness.
pub fn new_instance() -> String {
    // Without OS randomness (never seen on Linux), fall back to the clock and the process,
    // which still differ between runs of one machine.
    let n = getrandom::u64().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ (u64::from(std::process::id()) << 32)
    });
    format!("{n:016x}")
}

/// Segment file name: `{stream}-{instance}-{sequence}.ts`.
pub fn segment_name(stream: &str, instance: &str, sequence: u64) -> String {
    format!("{stream}-{instance}-{sequence}.ts")
}

/// The segment's URI relative to its playlist: [`segment_name`] with the stream
/// percent-encoded.
pub fn segment_uri(stream: &str, instance: &str, sequence: u64) -> String {
    segment_name(&crate::percent::encode_path_segment(stream), instance, sequence)
}

/// Splits a (decoded) segment file name into (stream, instance, sequence).
pub fn parse_segment_name(file: &str) -> Option<(&str, &str, u64)> {
    let rest = file.strip_suffix(".ts")?;
    let (rest, seq) = rest.rsplit_once('-')?;
    let (stream, instance) = rest.rsplit_once('-')?;
    Some((stream, instance, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        let name = segment_name("cam-1", "65a1f", 42);
        assert_eq!(name, "cam-1-65a1f-42.ts");
        assert_eq!(parse_segment_name(&name), Some(("cam-1", "65a1f", 42)));
        assert_eq!(parse_segment_name("cam.ts"), None);
        assert_eq!(parse_segment_name("cam-x-y.ts"), None);
    }

    #[test]
    fn segment_uris_percent_encode_the_stream() {
        let uri = segment_uri("cam~1@x+y", "65a1f", 7);
        assert_eq!(uri, "cam~1%40x%2By-65a1f-7.ts");
        let decoded = crate::percent::decode(&uri);
        assert_eq!(parse_segment_name(&decoded), Some(("cam~1@x+y", "65a1f", 7)));
    }

    #[test]
    fn instances_are_64_random_bits() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_instance()).collect();
        assert_eq!(ids.len(), 10_000, "no two packaging runs share an instance id");
        assert!(ids
            .iter()
            .all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    }
}
