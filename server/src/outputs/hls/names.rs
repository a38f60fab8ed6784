//! Segment names: `{stream}-{instance}-{sequence}.ts`, beside the playlist; for fMP4,
//! `{stream}-{instance}-{sequence}.m4s`, LL-HLS parts `{stream}-{instance}-{sequence}.{part}.m4s`
//! and init sections `{stream}-{instance}-init{id}.mp4` ([`HlsFile`]). In the
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

/// A file of an fMP4 stream, or an MPEG-TS segment, by what its name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HlsFile {
    TsSegment(u64),
    Segment(u64),
    Part(u64, u32),
    Init(u64),
}

impl HlsFile {
    /// The file name for `stream` (already encoded or not, as the caller needs).
    pub fn name(self, stream: &str, instance: &str) -> String {
        match self {
            HlsFile::TsSegment(seq) => segment_name(stream, instance, seq),
            HlsFile::Segment(seq) => format!("{stream}-{instance}-{seq}.m4s"),
            HlsFile::Part(seq, part) => format!("{stream}-{instance}-{seq}.{part}.m4s"),
            HlsFile::Init(id) => format!("{stream}-{instance}-init{id}.mp4"),
        }
    }

    /// Its URI relative to the playlist: the stream percent-encoded.
    pub fn uri(self, stream: &str, instance: &str) -> String {
        self.name(&crate::percent::encode_path_segment(stream), instance)
    }

    /// Splits a (decoded) file name into (stream, instance, file).
    pub fn parse(file: &str) -> Option<(&str, &str, HlsFile)> {
        if file.ends_with(".ts") {
            let (stream, instance, seq) = parse_segment_name(file)?;
            return Some((stream, instance, HlsFile::TsSegment(seq)));
        }
        let (rest, fmp4) = match file.strip_suffix(".m4s") {
            Some(rest) => (rest, true),
            None => (file.strip_suffix(".mp4")?, false),
        };
        let (rest, last) = rest.rsplit_once('-')?;
        let (stream, instance) = rest.rsplit_once('-')?;
        let what = if !fmp4 {
            HlsFile::Init(last.strip_prefix("init")?.parse().ok()?)
        } else if let Some((seq, part)) = last.split_once('.') {
            HlsFile::Part(seq.parse().ok()?, part.parse().ok()?)
        } else {
            HlsFile::Segment(last.parse().ok()?)
        };
        Some((stream, instance, what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmp4_names_round_trip() {
        for file in [
            HlsFile::TsSegment(3),
            HlsFile::Segment(42),
            HlsFile::Part(42, 7),
            HlsFile::Init(2),
        ] {
            let name = file.name("cam-1.x", "65a1f");
            assert_eq!(HlsFile::parse(&name), Some(("cam-1.x", "65a1f", file)), "{name}");
        }
        assert_eq!(HlsFile::parse("cam-65a1f-init.mp4"), None);
        assert_eq!(HlsFile::parse("cam-65a1f-1.x.m4s"), None);
    }

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
