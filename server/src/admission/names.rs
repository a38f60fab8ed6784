//! Stream keys are checked at every way in (RTMP publish and play, HTTP-FLV, HLS), before the
//! name reaches a log line, a metric label, a playlist or a file name: letters, digits and
//! `stream.name_extra_chars` (default `-_.`), 1 to `stream.name_max_bytes` (default 128)
//! bytes, and never a name of dots alone. An app name may also be several such names joined
//! by `/` (`live/sports`).

use crate::config::StreamConfig;
use crate::stream::StreamKey;

/// Why a key is refused; it never repeats the name (which may be anything a client sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{0} name is empty")]
    Empty(&'static str),
    #[error("{0} name is {1} bytes, more than stream.name_max_bytes")]
    TooLong(&'static str, usize),
    #[error("{0} name has a character outside letters, digits and stream.name_extra_chars")]
    BadChar(&'static str),
    #[error("{0} name is only dots or has an empty part")]
    Dots(&'static str),
}

/// Checks both names of `key`.
pub fn check(rules: &StreamConfig, key: &StreamKey) -> Result<(), NameError> {
    check_name(rules, "app", &key.app, true)?;
    check_name(rules, "stream", &key.name, false)
}

/// Checks an app name alone (an RTMP `connect`, before any stream is named).
pub fn check_app(rules: &StreamConfig, app: &str) -> Result<(), NameError> {
    check_name(rules, "app", app, true)
}

fn check_name(rules: &StreamConfig, what: &'static str, name: &str, parts: bool) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty(what));
    }
    if name.len() > rules.name_max_bytes {
        return Err(NameError::TooLong(what, name.len()));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || rules.name_extra_chars.contains(c) || (parts && c == '/');
    if !name.chars().all(allowed) {
        return Err(NameError::BadChar(what));
    }
    let mut segments = if parts { name.split('/').collect() } else { vec![name] };
    if segments.iter_mut().any(|s| s.is_empty() || s.chars().all(|c| c == '.')) {
        return Err(NameError::Dots(what));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(app: &str, stream: &str) -> bool {
        check(&StreamConfig::default(), &StreamKey::new(app, stream)).is_ok()
    }

    #[test]
    fn letters_digits_and_a_few_marks() {
        assert!(ok("live", "cam-1_a.b"));
        assert!(ok("live/sports", "match"));
        assert!(ok("live", &"a".repeat(128)));
        assert!(!ok("live", &"a".repeat(129)));
        assert!(!ok("live", ""));
        assert!(!ok("", "cam"));
    }

    #[test]
    fn nothing_that_could_climb_out_or_break_a_line() {
        for bad in [
            "..", ".", "a/b", "a\\b", "cam\n", "cam\u{0}", "cam 1", "cam%2F", "日本", "a?b", "a\"b",
        ] {
            assert!(!ok("live", bad), "{bad:?}");
        }
        for bad_app in ["live/..", "../live", "live//x", "/live", "live/", "li ve"] {
            assert!(!ok(bad_app, "cam"), "{bad_app:?}");
        }
    }

    #[test]
    fn the_error_never_repeats_the_name() {
        let e = check(&StreamConfig::default(), &StreamKey::new("live", "evil\nname")).unwrap_err();
        assert!(!e.to_string().contains("evil"), "{e}");
    }
}
