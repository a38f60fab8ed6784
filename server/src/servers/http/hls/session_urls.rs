//! HLS session tokens in URLs: the playlist's segment URIs carry `?session=TOKEN`, so a
//! player's segment requests name its playback session.

/// The query parameter that carries an HLS playback session token (`?session=TOKEN`).
pub const HLS_SESSION_PARAM: &str = "session";

/// The session token in a request's query string, if any.
pub fn hls_session_param(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(HLS_SESSION_PARAM)?.strip_prefix('='))
}

/// `playlist` with `?session=TOKEN` (or `&session=TOKEN`) added to every URI line and to
/// the `URI="..."` attribute of tag lines (`EXT-X-MAP`, `EXT-X-PART`, `EXT-X-PRELOAD-HINT`),
/// followed by `&` and `carried` when that is not empty (the playlist's own signature, so
/// each segment URL verifies as the playlist's did). Other tag lines and blank lines are
/// kept.
pub fn playlist_with_session(playlist: &str, token: &str, carried: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + 64);
    let query = |out: &mut String, uri: &str| {
        out.push(if uri.contains('?') { '&' } else { '?' });
        out.push_str(HLS_SESSION_PARAM);
        out.push('=');
        out.push_str(token);
        if !carried.is_empty() {
            out.push('&');
            out.push_str(carried);
        }
    };
    for line in playlist.lines() {
        let uri = line.trim();
        if uri.starts_with('#') {
            match line
                .split_once("URI=\"")
                .and_then(|(before, rest)| Some((before, rest.split_once('"')?)))
            {
                Some((before, (uri, after))) => {
                    out.push_str(before);
                    out.push_str("URI=\"");
                    out.push_str(uri);
                    query(&mut out, uri);
                    out.push('"');
                    out.push_str(after);
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
            if !uri.is_empty() {
                query(&mut out, uri);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_urls_carry_the_session() {
        let p = "#EXTM3U\n#EXTINF:2.0,\nlive/a-1-0.ts\nb.ts?x=1\n";
        assert_eq!(
            playlist_with_session(p, "t1", ""),
            "#EXTM3U\n#EXTINF:2.0,\nlive/a-1-0.ts?session=t1\nb.ts?x=1&session=t1\n"
        );
        assert_eq!(
            playlist_with_session("a-1-0.ts\n", "t1", "expires=9&sign=ab"),
            "a-1-0.ts?session=t1&expires=9&sign=ab\n"
        );
        assert_eq!(
            playlist_with_session(
                "#EXT-X-MAP:URI=\"i.mp4\"\n#EXT-X-PART:DURATION=0.3,URI=\"a.0.m4s\",INDEPENDENT=YES\n",
                "t1",
                ""
            ),
            "#EXT-X-MAP:URI=\"i.mp4?session=t1\"\n#EXT-X-PART:DURATION=0.3,URI=\"a.0.m4s?session=t1\",INDEPENDENT=YES\n"
        );
        assert_eq!(hls_session_param(Some("a=1&session=t1")), Some("t1"));
        assert_eq!(hls_session_param(Some("sessionx=1")), None);
        assert_eq!(hls_session_param(None), None);
    }
}
