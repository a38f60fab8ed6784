//! The pieces of a URL the schemes read and write: one parameter of a query string, the query
//! with its secrets hidden for logs, and the path of a URL being signed.

// RFC 3986 decoding: `+` stays `+` (base64url and hex signatures never contain one).
use crate::percent::decode;

/// A parameter named more than once: which of the values counts would be a guess, and a hook
/// backend might guess differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeated;

/// The percent-decoded value of parameter `name` (matched exactly) in `query`, which may
/// start with `?`; `Ok(None)` when absent.
pub fn param(query: &str, name: &str) -> Result<Option<String>, Repeated> {
    let mut found = None;
    for (raw_name, value) in pairs(query) {
        if decode(raw_name) == name {
            if found.is_some() {
                return Err(Repeated);
            }
            found = Some(decode(value.unwrap_or("")));
        }
    }
    Ok(found)
}

/// `query` with the values of the parameters named in `names` (compared ignoring ASCII case,
/// after percent-decoding) replaced by `***`; everything else is kept as it was, a leading
/// `?` included. For logs, listings and API answers: never for the hooks, which check tokens.
pub fn redact(query: &str, names: &[&str]) -> String {
    let (mark, body) = match query.strip_prefix('?') {
        Some(body) => ("?", body),
        None => ("", query),
    };
    let hidden: Vec<String> = body
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() && is_named(name, names) => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{mark}{}", hidden.join("&"))
}

/// The pairs of `query` named in `names` (exactly, after percent-decoding), as they were
/// sent, joined by `&`; empty when there are none.
pub fn only(query: &str, names: &[&str]) -> String {
    let body = query.strip_prefix('?').unwrap_or(query);
    let kept: Vec<&str> = body
        .split('&')
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
            !pair.is_empty() && names.contains(&decode(name).as_str())
        })
        .collect();
    kept.join("&")
}

fn is_named(raw_name: &str, names: &[&str]) -> bool {
    let name = decode(raw_name);
    names.iter().any(|n| n.eq_ignore_ascii_case(&name))
}

/// `(name, value)` of each `&`-separated pair; `value` is `None` for a bare `name`.
fn pairs(query: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let body = query.strip_prefix('?').unwrap_or(query);
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (pair, None),
        })
}

/// A URL cut where signing needs it: `rtmp://host/live/cam?x=1` is `rtmp://host`, `/live/cam`
/// and `?x=1`. Without a `scheme://`, the whole text up to `?` is the path.
pub struct UrlParts<'a> {
    pub origin: &'a str,
    pub path: &'a str,
    pub query: &'a str,
}

impl<'a> UrlParts<'a> {
    pub fn split(url: &'a str) -> UrlParts<'a> {
        let (before, query) = match url.find('?') {
            Some(at) => url.split_at(at),
            None => (url, ""),
        };
        let path_from = match before.find("://") {
            Some(at) => before[at + 3..].find('/').map_or(before.len(), |p| at + 3 + p),
            None => 0,
        };
        let (origin, path) = before.split_at(path_from);
        UrlParts { origin, path, query }
    }

    /// The app and stream a path names: `/live/cam.flv` is `live` and `cam` (the `.flv` or
    /// `.m3u8` of HTTP play is not part of the stream name), `/a/b/cam` is `a/b` and `cam`.
    pub fn app_and_stream(&self) -> Option<(&'a str, &'a str)> {
        let (app, file) = self.path.strip_prefix('/')?.rsplit_once('/')?;
        let stream = file
            .strip_suffix(".flv")
            .or_else(|| file.strip_suffix(".m3u8"))
            .unwrap_or(file);
        (!app.is_empty() && !stream.is_empty()).then_some((app, stream))
    }

    /// This URL with `param` (already encoded) added to its query.
    pub fn with_param(&self, param: &str) -> String {
        let joiner = match self.query {
            "" => "?",
            "?" => "",
            _ => "&",
        };
        format!("{}{}{}{joiner}{param}", self.origin, self.path, self.query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_named_pairs_as_sent() {
        let q = "?session=x&expires=17&sign=ab%3D&other=1";
        assert_eq!(only(q, &["expires", "sign"]), "expires=17&sign=ab%3D");
        assert_eq!(only("a=1", &["auth_key"]), "");
        assert_eq!(only("", &[]), "");
    }

    #[test]
    fn finds_one_decoded_parameter() {
        assert_eq!(param("?a=1&txTime=5C27%31099", "txTime"), Ok(Some("5C271099".into())));
        assert_eq!(param("a=1&sign=", "sign"), Ok(Some(String::new())));
        assert_eq!(param("a=1&sign", "sign"), Ok(Some(String::new())));
        assert_eq!(param("signs=1&xsign=2", "sign"), Ok(None));
        assert_eq!(param("", "sign"), Ok(None));
        // Names match exactly, after decoding; a second one is refused.
        assert_eq!(param("TXSECRET=1", "txSecret"), Ok(None));
        assert_eq!(param("sign=1&%73ign=2", "sign"), Err(Repeated));
        assert_eq!(param("bad=%zz%4&x=%41", "bad"), Ok(Some("%zz%4".into())));
    }

    #[test]
    fn redacts_secret_values_and_keeps_the_rest() {
        assert_eq!(
            redact("?vhost=a&txSecret=f85a2ab3&txTime=5C271099", &["txSecret"]),
            "?vhost=a&txSecret=***&txTime=5C271099"
        );
        assert_eq!(
            redact(
                "auth_key=1-0-0-abc&AUTH_KEY=x&auth%5Fkey=y&token=&flag",
                &["auth_key", "token"]
            ),
            "auth_key=***&AUTH_KEY=***&auth%5Fkey=***&token=&flag"
        );
        assert_eq!(redact("", &["sign"]), "");
        assert_eq!(redact("?", &["sign"]), "?");
        assert_eq!(redact("a=b=c&sign=x=y", &["sign"]), "a=b=c&sign=***");
    }

    #[test]
    fn splits_urls_for_signing() {
        let u = UrlParts::split("rtmp://push.example.com:1935/live/cam?vhost=x");
        assert_eq!(
            (u.origin, u.path, u.query),
            ("rtmp://push.example.com:1935", "/live/cam", "?vhost=x")
        );
        assert_eq!(u.app_and_stream(), Some(("live", "cam")));
        assert_eq!(
            u.with_param("sign=1"),
            "rtmp://push.example.com:1935/live/cam?vhost=x&sign=1"
        );
        let u = UrlParts::split("http://h/a/b/cam.m3u8");
        assert_eq!(u.app_and_stream(), Some(("a/b", "cam")));
        assert_eq!(u.with_param("sign=1"), "http://h/a/b/cam.m3u8?sign=1");
        let u = UrlParts::split("/live/cam.flv?");
        assert_eq!((u.origin, u.path), ("", "/live/cam.flv"));
        assert_eq!(u.with_param("s=1"), "/live/cam.flv?s=1");
        assert_eq!(UrlParts::split("rtmp://host").path, "");
        assert_eq!(UrlParts::split("rtmp://host/cam").app_and_stream(), None);
        assert_eq!(UrlParts::split("rtmp://host/live/").app_and_stream(), None);
    }
}
