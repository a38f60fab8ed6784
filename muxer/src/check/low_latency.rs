//! LL-HLS rules of a media playlist (RFC 8216bis §4.4.3.7–8, §4.4.4.9, §4.4.5.2–3; Apple
//! HLS authoring spec 14.3): `EXT-X-PART-INF` wherever there are parts, every part at most
//! the part target and, but for independent parts and the last of a segment, at least 85%
//! of it; parts of a listed segment adding up to its `EXTINF`; `PART-HOLD-BACK` at least
//! three part targets; `CAN-SKIP-UNTIL` at least six target durations; one
//! `EXT-X-PRELOAD-HINT` while live, naming no listed part; `EXT-X-SKIP` only with
//! `CAN-SKIP-UNTIL` and version 9; `EXT-X-MAP` before fMP4 segments (Apple 8.20).

/// What a playlist's LL-HLS tags said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LowLatencyReport {
    pub part_target_ms: u64,
    pub part_hold_back_ms: u64,
    pub can_skip_until_ms: u64,
    pub can_block_reload: bool,
    /// `EXT-X-SKIP:SKIPPED-SEGMENTS`, 0 without the tag.
    pub skipped_segments: u64,
    /// Every `EXT-X-PART`, in order, with the segment it belongs to (its index among the
    /// listed segments; one past the last for the segment being written).
    pub parts: Vec<ListedPart>,
    pub preload_hint: Option<String>,
}

/// One `EXT-X-PART`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    /// Index of its segment among those listed after any skip.
    pub segment: usize,
    pub duration_ms: u64,
    pub independent: bool,
    pub uri: String,
}

/// Seconds as written in a tag, to ms.
fn ms(value: &str) -> Option<u64> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs >= 0.0).then(|| (secs * 1000.0).round() as u64)
}

/// The value of `name` in an attribute list (quotes removed).
pub(super) fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], quoted[end + 1..].strip_prefix(',').unwrap_or(""))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// The LL-HLS report of `text`, or `None` when it uses no LL-HLS tag; violations go to
/// `errors`. `target_secs` is its `EXT-X-TARGETDURATION`, `ended` whether it has
/// `EXT-X-ENDLIST`.
pub(super) fn check(text: &str, target_secs: u64, ended: bool, errors: &mut Vec<String>) -> Option<LowLatencyReport> {
    let mut r = LowLatencyReport::default();
    let mut any = false;
    let mut part_inf = false;
    let mut version = 1;
    let mut hints = 0;
    let mut segment = 0usize;
    let mut segment_durations = Vec::new();
    let mut map_seen = false;
    let mut fmp4_segment_before_map = false;
    let mut pending_uri = false;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
            version = v.parse().unwrap_or(1);
        } else if let Some(list) = line.strip_prefix("#EXT-X-PART-INF:") {
            any = true;
            part_inf = true;
            match attribute(list, "PART-TARGET").and_then(ms) {
                Some(t) if t > 0 => r.part_target_ms = t,
                _ => errors.push(format!("EXT-X-PART-INF has no valid PART-TARGET: {line}")),
            }
        } else if let Some(list) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
            any = true;
            r.can_block_reload = attribute(list, "CAN-BLOCK-RELOAD") == Some("YES");
            r.part_hold_back_ms = attribute(list, "PART-HOLD-BACK").and_then(ms).unwrap_or(0);
            r.can_skip_until_ms = attribute(list, "CAN-SKIP-UNTIL").and_then(ms).unwrap_or(0);
        } else if let Some(list) = line.strip_prefix("#EXT-X-PART:") {
            any = true;
            let duration = attribute(list, "DURATION").and_then(ms);
            let uri = attribute(list, "URI");
            let (Some(duration_ms), Some(uri)) = (duration, uri) else {
                errors.push(format!("EXT-X-PART without DURATION or URI: {line}"));
                continue;
            };
            if hints > 0 {
                errors.push(format!("EXT-X-PART after the EXT-X-PRELOAD-HINT: {line}"));
            }
            r.parts.push(ListedPart {
                segment,
                duration_ms,
                independent: attribute(list, "INDEPENDENT") == Some("YES"),
                uri: uri.to_owned(),
            });
        } else if let Some(list) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            any = true;
            hints += 1;
            r.preload_hint = attribute(list, "URI").map(str::to_owned);
            if attribute(list, "TYPE").is_none() || r.preload_hint.is_none() {
                errors.push(format!("EXT-X-PRELOAD-HINT without TYPE or URI: {line}"));
            }
        } else if let Some(list) = line.strip_prefix("#EXT-X-SKIP:") {
            any = true;
            match attribute(list, "SKIPPED-SEGMENTS").and_then(|v| v.parse().ok()) {
                Some(n) => r.skipped_segments = n,
                None => errors.push(format!("EXT-X-SKIP without SKIPPED-SEGMENTS: {line}")),
            }
            if segment > 0 {
                errors.push("EXT-X-SKIP after the first segment".to_owned());
            }
        } else if line.starts_with("#EXT-X-MAP:") {
            map_seen = true;
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            segment_durations.push(ms(v.split(',').next().unwrap_or("")).unwrap_or(0));
            pending_uri = true;
        } else if !line.is_empty() && !line.starts_with('#') && pending_uri {
            pending_uri = false;
            let path = line.split('?').next().unwrap_or(line);
            if (path.ends_with(".m4s") || path.ends_with(".mp4")) && !map_seen {
                fmp4_segment_before_map = true;
            }
            segment += 1;
        }
    }
    if fmp4_segment_before_map {
        errors.push("fMP4 segment listed before any EXT-X-MAP (Apple 8.20)".to_owned());
    }
    if !any {
        return None;
    }
    let target = r.part_target_ms;
    if !r.parts.is_empty() && !part_inf {
        errors.push("EXT-X-PART without EXT-X-PART-INF".to_owned());
    }
    if r.part_hold_back_ms == 0 && part_inf {
        errors.push("EXT-X-PART-INF without EXT-X-SERVER-CONTROL:PART-HOLD-BACK".to_owned());
    }
    if target > 0 && r.part_hold_back_ms < 3 * target {
        errors.push(format!(
            "PART-HOLD-BACK {} ms is less than three part targets ({} ms; Apple 14.3)",
            r.part_hold_back_ms,
            3 * target
        ));
    }
    if r.can_skip_until_ms > 0 && r.can_skip_until_ms < 6 * target_secs * 1000 {
        errors.push(format!(
            "CAN-SKIP-UNTIL {} ms is less than six target durations",
            r.can_skip_until_ms
        ));
    }
    if r.skipped_segments > 0 && (r.can_skip_until_ms == 0 || version < 9) {
        errors.push("EXT-X-SKIP needs CAN-SKIP-UNTIL and EXT-X-VERSION 9".to_owned());
    }
    if !ended && part_inf && hints != 1 {
        errors.push(format!(
            "a live LL-HLS playlist has one EXT-X-PRELOAD-HINT, this one {hints}"
        ));
    }
    if let Some(hint) = &r.preload_hint {
        if r.parts.iter().any(|p| &p.uri == hint) {
            errors.push(format!("EXT-X-PRELOAD-HINT names the listed part {hint}"));
        }
    }
    for (i, part) in r.parts.iter().enumerate() {
        if target > 0 && part.duration_ms > target {
            errors.push(format!(
                "part {} lasts {} ms, above the part target {target} ms",
                part.uri, part.duration_ms
            ));
        }
        let last_of_segment = r.parts.get(i + 1).is_none_or(|next| next.segment != part.segment);
        if !part.independent && !last_of_segment && part.duration_ms * 100 < 85 * target {
            errors.push(format!(
                "part {} lasts {} ms, under 85% of the part target {target} ms",
                part.uri, part.duration_ms
            ));
        }
    }
    for (index, duration) in segment_durations.iter().enumerate() {
        let parts: Vec<&ListedPart> = r.parts.iter().filter(|p| p.segment == index).collect();
        if parts.is_empty() {
            continue;
        }
        let sum: u64 = parts.iter().map(|p| p.duration_ms).sum();
        if sum.abs_diff(*duration) > parts.len() as u64 {
            errors.push(format!(
                "parts of segment #{index} add up to {sum} ms, its EXTINF is {duration} ms"
            ));
        }
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use crate::check::PlaylistChecker;

    const GOOD: &str = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:3\n\
        #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=18,PART-HOLD-BACK=0.9\n\
        #EXT-X-PART-INF:PART-TARGET=0.3\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
        #EXT-X-MAP:URI=\"i.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:34:56.789Z\n\
        #EXT-X-PART:DURATION=0.3,URI=\"a.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.3,URI=\"a.1.m4s\"\n\
        #EXT-X-PART:DURATION=0.1,URI=\"a.2.m4s\"\n#EXTINF:0.7,\na.m4s\n\
        #EXT-X-PART:DURATION=0.3,URI=\"b.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"b.1.m4s\"\n";

    fn errors(text: &str) -> Vec<String> {
        PlaylistChecker::new().check(text.as_bytes()).err().unwrap_or_default()
    }

    #[test]
    fn a_conformant_ll_playlist_passes_and_is_reported() {
        let report = PlaylistChecker::new().check(GOOD.as_bytes()).unwrap();
        let ll = report.low_latency.unwrap();
        assert_eq!((ll.part_target_ms, ll.part_hold_back_ms, ll.parts.len()), (300, 900, 4));
        assert_eq!(ll.preload_hint.as_deref(), Some("b.1.m4s"));
        assert_eq!(ll.parts[3].segment, 1, "a part of the segment being written");
    }

    #[test]
    fn each_ll_rule_is_caught() {
        let cases = [
            ("PART-HOLD-BACK=0.9", "PART-HOLD-BACK=0.75", "three part targets"),
            (
                "DURATION=0.3,URI=\"a.1",
                "DURATION=0.31,URI=\"a.1",
                "above the part target",
            ),
            ("DURATION=0.3,URI=\"a.1", "DURATION=0.2,URI=\"a.1", "under 85%"),
            ("#EXTINF:0.7,", "#EXTINF:0.9,", "add up to"),
            ("#EXT-X-MAP:URI=\"i.mp4\"\n", "", "EXT-X-MAP"),
            ("CAN-SKIP-UNTIL=18", "CAN-SKIP-UNTIL=12", "six target durations"),
            (
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"b.1.m4s\"\n",
                "",
                "one EXT-X-PRELOAD-HINT",
            ),
            ("URI=\"b.1.m4s\"", "URI=\"b.0.m4s\"", "names the listed part"),
            (
                "#EXT-X-VERSION:9",
                "#EXT-X-VERSION:6\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1",
                "SKIP needs",
            ),
        ];
        for (from, to, expected) in cases {
            let text = GOOD.replacen(from, to, 1);
            let found = errors(&text);
            assert!(
                found.iter().any(|e| e.contains(expected)),
                "{expected}: {found:?}\n{text}"
            );
        }
    }
}
