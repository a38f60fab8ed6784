//! Where a recording's file goes: `record.path_template` under `record.root`, with every value
//! that came from a client mapped so that no stream name can leave the root or reach a file
//! name raw, and a suffix when the name is taken, so two recordings never share a file.
//!
//! Template variables: `{app}`, `{stream}`, `{date}` (`YYYY-MM-DD`), `{time}` (`HHMMSS`),
//! `{timestamp}` (Unix milliseconds). The extension (`.mp4`, `.flv`) is added here.

use std::path::{Component, Path, PathBuf};

/// What a name is made of.
#[derive(Debug, Clone)]
pub struct NameFields<'a> {
    pub app: &'a str,
    pub stream: &'a str,
    /// `YYYY-MM-DD` in the server's time zone.
    pub date: &'a str,
    /// `HHMMSS` in the server's time zone.
    pub time: &'a str,
    pub timestamp_ms: u64,
}

/// Why no file name could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    #[error("record.path_template {0:?} makes an empty or absolute path")]
    BadTemplate(String),
    #[error("every name from {0:?} is taken")]
    Taken(String),
}

/// A value from a client as one safe path component: ASCII letters, digits, `-`, `_` and
/// `.` are kept, anything else (`/`, `\`, control characters, spaces, non-ASCII) becomes `_`,
/// and a component of only dots (`.`, `..`) or an empty one becomes `_` too.
pub fn safe_component(value: &str) -> String {
    let mapped: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if mapped.is_empty() || mapped.chars().all(|c| c == '.') {
        "_".repeat(mapped.len().max(1))
    } else {
        mapped
    }
}

/// The template filled in with safe values, relative to the root, without extension.
pub fn render(template: &str, fields: &NameFields<'_>) -> Result<PathBuf, NamingError> {
    let filled = template
        .replace("{app}", &safe_component(fields.app))
        .replace("{stream}", &safe_component(fields.stream))
        .replace("{date}", &safe_component(fields.date))
        .replace("{time}", &safe_component(fields.time))
        .replace("{timestamp}", &fields.timestamp_ms.to_string());
    let mut out = PathBuf::new();
    for part in filled.split('/') {
        if part.is_empty() {
            continue;
        }
        // What the operator wrote in the template is trusted, but not to climb out either.
        let part = if part.chars().all(|c| c == '.') {
            "_".repeat(part.len())
        } else {
            part.to_string()
        };
        out.push(part);
    }
    let relative = out.components().all(|c| matches!(c, Component::Normal(_)));
    if out.as_os_str().is_empty() || !relative || template.starts_with('/') {
        return Err(NamingError::BadTemplate(template.to_string()));
    }
    Ok(out)
}

/// The first of `base.ext`, `base-1.ext`, `base-2.ext`, … under `root` for which `taken`
/// says no (it checks the file, its in-progress forms and the catalogue).
pub fn unique(root: &Path, base: &Path, ext: &str, taken: impl Fn(&Path) -> bool) -> Result<PathBuf, NamingError> {
    for n in 0..1000u32 {
        let mut name = base.as_os_str().to_owned();
        if n > 0 {
            name.push(format!("-{n}"));
        }
        name.push(format!(".{ext}"));
        let relative = PathBuf::from(name);
        if !taken(&root.join(&relative)) {
            return Ok(relative);
        }
    }
    Err(NamingError::Taken(base.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(app: &'a str, stream: &'a str) -> NameFields<'a> {
        NameFields {
            app,
            stream,
            date: "2026-11-27",
            time: "190000",
            timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn names_follow_the_template() {
        let p = render("{app}/{stream}/{date}-{time}", &fields("live", "cam1")).unwrap();
        assert_eq!(p, PathBuf::from("live/cam1/2026-11-27-190000"));
        let p = render("{stream}-{timestamp}", &fields("live", "cam1")).unwrap();
        assert_eq!(p, PathBuf::from("cam1-1700000000000"));
    }

    #[test]
    fn no_stream_name_leaves_the_root_or_reaches_a_file_name_raw() {
        for (stream, want) in [
            ("..", "__"),
            ("../../etc/passwd", ".._.._etc_passwd"),
            ("a/b", "a_b"),
            ("a\\b", "a_b"),
            ("cam\u{0}1\n", "cam_1_"),
            ("", "_"),
            (".", "_"),
            ("日本", "__"),
        ] {
            let p = render("{app}/{stream}/{date}", &fields("live", stream)).unwrap();
            let parts: Vec<_> = p.components().collect();
            assert_eq!(parts.len(), 3, "{stream:?} -> {p:?}");
            assert!(
                parts.iter().all(|c| matches!(c, Component::Normal(_))),
                "{stream:?} -> {p:?}"
            );
            assert_eq!(parts[1].as_os_str(), want, "{stream:?}");
        }
    }

    #[test]
    fn a_template_cannot_climb_out_or_be_empty() {
        assert!(render("/{stream}", &fields("live", "a")).is_err());
        assert!(render("", &fields("live", "a")).is_err());
        let p = render("../{stream}", &fields("live", "a")).unwrap();
        assert_eq!(p, PathBuf::from("__/a"));
    }

    #[test]
    fn a_taken_name_gets_a_suffix() {
        let root = Path::new("/rec");
        let taken = |p: &Path| p == Path::new("/rec/live/a.mp4") || p == Path::new("/rec/live/a-1.mp4");
        assert_eq!(
            unique(root, Path::new("live/a"), "mp4", taken).unwrap(),
            PathBuf::from("live/a-2.mp4")
        );
    }
}
