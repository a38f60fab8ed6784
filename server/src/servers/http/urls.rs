//! What stream an HTTP request names.

/// `/{app}/{stream}.{ext}` → (app, stream).
pub fn split_stream_path<'a>(path: &'a str, ext: &str) -> Option<(&'a str, &'a str)> {
    let rest = path.strip_prefix('/')?.strip_suffix(ext)?;
    let (app, stream) = rest.rsplit_once('/')?;
    (!app.is_empty() && !stream.is_empty() && !stream.contains('/')).then_some((app, stream))
}

/// `http://{host}{path}`, the URL a viewer asked for (no query: tokens stay out of listings).
pub fn request_url(host: &str, path: &str) -> String {
    format!("http://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::split_stream_path;

    #[test]
    fn stream_paths() {
        assert_eq!(split_stream_path("/live/cam.flv", ".flv"), Some(("live", "cam")));
        assert_eq!(split_stream_path("/a/b/cam.flv", ".flv"), Some(("a/b", "cam")));
        assert_eq!(split_stream_path("/cam.flv", ".flv"), None);
        assert_eq!(split_stream_path("/live/.flv", ".flv"), None);
    }
}
