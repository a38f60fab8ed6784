//! What stream an HTTP request names.

/// `/{app}/{stream}.{ext}` → (app, stream).
pub fn split_stream_path<'a>(path: &'a str, ext: &str) -> Option<(&'a str, &'a str)> {
    let rest = path.strip_prefix('/')?.strip_suffix(ext)?;
    let (app, stream) = rest.rsplit_once('/')?;
    (!app.is_empty() && !stream.is_empty() && !stream.contains('/')).then_some((app, stream))
}

/// `http://{host}{path}{shown_query}`, the URL a viewer asked for, as listings show it (the
/// query as [`Admission::shown_query`](crate::admission::Admission::shown_query) hides it).
pub fn request_url(host: &str, path: &str, shown_query: &str) -> String {
    format!("http://{host}{path}{shown_query}")
}

/// The `tcUrl` SRS reports for an HTTP player (HTTP-FLV, HLS): `rtmp://{host}/{app}`, the
/// host of the request's `Host` header without its port (`srs_protocol_http_conn.cpp`,
/// `SrsHttpMessage::to_request`), so a backend that parses RTMP tcUrls parses these too.
pub fn player_tc_url(host_header: &str, app: &str) -> String {
    let host = match host_header.strip_prefix('[') {
        // An IPv6 literal keeps its brackets.
        Some(rest) => rest
            .split_once(']')
            .map_or(host_header, |(ip, _)| &host_header[..ip.len() + 2]),
        None => host_header.split_once(':').map_or(host_header, |(host, _)| host),
    };
    format!("rtmp://{host}/{app}")
}

/// Unix milliseconds, or an RFC 3339 time.
pub fn time_ms(value: &str) -> Option<i64> {
    value.parse::<i64>().ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(value)
            .ok()
            .map(|t| t.timestamp_millis())
    })
}

/// The value of `name` in a query string, decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .map(crate::percent::decode_form)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            query_param(Some("a=1&start=2026-01-01T00%3A00%3A00Z"), "start").as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        assert_eq!(query_param(Some("starts=1"), "start"), None);
    }

    #[test]
    fn player_tc_urls_are_srs_rtmp_form() {
        assert_eq!(player_tc_url("example.com:8080", "live"), "rtmp://example.com/live");
        assert_eq!(player_tc_url("example.com", "live"), "rtmp://example.com/live");
        assert_eq!(player_tc_url("[::1]:8080", "live"), "rtmp://[::1]/live");
        assert_eq!(player_tc_url("", "live"), "rtmp:///live");
    }

    #[test]
    fn stream_paths() {
        assert_eq!(split_stream_path("/live/cam.flv", ".flv"), Some(("live", "cam")));
        assert_eq!(split_stream_path("/a/b/cam.flv", ".flv"), Some(("a/b", "cam")));
        assert_eq!(split_stream_path("/cam.flv", ".flv"), None);
        assert_eq!(split_stream_path("/live/.flv", ".flv"), None);
    }
}
