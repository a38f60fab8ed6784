//! `[forward]` and `[apps.NAME.forward]`: the upstream RTMP servers every published stream is
//! pushed to (a CDN or cloud live ingest, another Estuary), and the limits of each push.
//! The resolver that applies an app's `urls` over the global ones is
//! `ForwardConfig::for_app` in the parent module (it needs the whole `Config`).

use serde::Deserialize;

use estuary_protocol::rtmp::client::{ClientConfig, ClientMode};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// Upstream URLs every stream is pushed to, `rtmp://host[:port]/app/stream[?query]`;
    /// `{app}` and `{stream}` are replaced by the stream's app and name. Empty: no forward
    /// (streams can still get one by API).
    pub urls: Vec<String>,
    /// Media waiting to be sent to one upstream, in bytes; past it the upstream skips to the
    /// next keyframe (the stream and the other upstreams never wait for it).
    pub max_queue_bytes: u64,
    /// Kernel send buffer of each upstream connection (`SO_SNDBUF`), so that what sits
    /// unsent for a stalled upstream is bounded and the write deadline notices it soon; 0
    /// keeps the kernel's auto-tuning (megabytes, a minute of video, before a stall shows).
    pub send_buffer_bytes: usize,
    /// Deadline for reaching an upstream: TCP connect, handshake, `connect` and `publish`.
    pub connect_timeout_ms: u64,
    /// Deadline for one write to an upstream; an upstream that accepts no bytes for this long
    /// is dropped (and retried).
    pub write_timeout_ms: u64,
    /// First wait before retrying an upstream that refused or dropped; doubled after each
    /// failure up to `retry_max_ms`, back to this after a publish that lasted.
    pub retry_initial_ms: u64,
    /// Longest wait between retries.
    pub retry_max_ms: u64,
    /// After the source leaves, the upstream connections stay open this long for it to come
    /// back (the upstream sees one continuous publish), then close.
    pub reconnect_window_ms: u64,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            urls: Vec::new(),
            max_queue_bytes: 8 * 1024 * 1024,
            send_buffer_bytes: 262_144,
            connect_timeout_ms: 5000,
            write_timeout_ms: 5000,
            retry_initial_ms: 1000,
            retry_max_ms: 30_000,
            reconnect_window_ms: 10_000,
        }
    }
}

/// `[apps.NAME.forward]`: `urls`, when set, replaces the global `[forward] urls` for that app
/// (an empty list turns forwarding off for it).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardOverride {
    pub urls: Option<Vec<String>>,
}

impl ForwardConfig {
    /// Every problem, each naming its `forward.*` key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, url) in self.urls.iter().enumerate() {
            problems.extend(url_problem(&format!("forward.urls[{i}]"), url));
        }
        if !(64 * 1024..=1024 * 1024 * 1024).contains(&self.max_queue_bytes) {
            problems.push(format!(
                "forward.max_queue_bytes = {} must be between 65536 and 1073741824",
                self.max_queue_bytes
            ));
        }
        if self.send_buffer_bytes != 0 && !(4096..=64 * 1024 * 1024).contains(&self.send_buffer_bytes) {
            problems.push(format!(
                "forward.send_buffer_bytes = {} must be 0 (the kernel's) or between 4096 and 67108864",
                self.send_buffer_bytes
            ));
        }
        for (key, value) in [
            ("forward.connect_timeout_ms", self.connect_timeout_ms),
            ("forward.write_timeout_ms", self.write_timeout_ms),
            ("forward.retry_initial_ms", self.retry_initial_ms),
            ("forward.retry_max_ms", self.retry_max_ms),
            ("forward.reconnect_window_ms", self.reconnect_window_ms),
        ] {
            if !(100..=3_600_000).contains(&value) {
                problems.push(format!("{key} = {value} must be between 100 and 3600000"));
            }
        }
        if self.retry_max_ms < self.retry_initial_ms {
            problems.push("forward.retry_max_ms must not be less than forward.retry_initial_ms".into());
        }
        problems
    }
}

impl ForwardOverride {
    /// Every problem, each naming its `apps.APP.forward.*` key.
    pub fn validate(&self, app: &str) -> Vec<String> {
        self.urls
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, url)| url_problem(&format!("apps.{app}.forward.urls[{i}]"), url))
            .collect()
    }
}

impl ForwardConfig {
    /// `template` with `{app}` and `{stream}` replaced.
    pub fn expand(template: &str, app: &str, stream: &str) -> String {
        expand(template, app, stream)
    }

    /// Why `template` is not a usable upstream URL (see [`url_problem`]).
    pub fn url_problem(key: &str, template: &str) -> Option<String> {
        url_problem(key, template)
    }

    /// What logs and listings show of an upstream URL (see [`redact`]).
    pub fn redact(url: &str) -> String {
        redact(url)
    }
}

/// `template` with `{app}` and `{stream}` replaced.
fn expand(template: &str, app: &str, stream: &str) -> String {
    template.replace("{app}", app).replace("{stream}", stream)
}

/// Why `template` is not a usable upstream URL, if it is not. The message shows the URL with
/// its query hidden (it may carry the upstream's key).
fn url_problem(key: &str, template: &str) -> Option<String> {
    let url = expand(template, "app", "stream");
    match ClientConfig::from_url(&url, ClientMode::Publish) {
        Ok(_) if url.chars().any(|c| c.is_whitespace() || c.is_control()) => Some(format!(
            "{key} = {:?} must not contain spaces or control characters",
            redact(template)
        )),
        Ok(_) => None,
        Err(_) => Some(format!(
            "{key} = {:?} is not an upstream URL like rtmp://host[:port]/app/{{stream}}",
            redact(template)
        )),
    }
}

/// `url` with its stream name and query string replaced by `…`: what logs, listings and
/// errors show of an upstream URL. A CDN's publish key is its stream name or a query
/// parameter; neither may leak where a reader could publish with it.
fn redact(url: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    match base.rsplit_once('/') {
        Some((left, _)) if after_scheme.contains('/') => format!("{left}/…"),
        _ if base.len() < url.len() => format!("{base}?…"),
        _ => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_and_bad_urls_are_named_without_their_query() {
        assert_eq!(
            expand("rtmp://cdn/{app}/{stream}?k=1", "live", "cam1"),
            "rtmp://cdn/live/cam1?k=1"
        );
        assert!(url_problem("k", "rtmp://cdn:1935/live/{stream}?key=s3cret").is_none());
        let p = url_problem("forward.urls[0]", "http://cdn/live/x?key=s3cret").unwrap();
        assert!(p.contains("forward.urls[0]") && !p.contains("s3cret"), "{p}");
        assert!(url_problem("k", "rtmp://cdn/{stream}").is_some());
        assert_eq!(redact("rtmp://cdn:1935/live/s3cret?k=x"), "rtmp://cdn:1935/live/…");
        assert_eq!(redact("rtmp://cdn?k=x"), "rtmp://cdn?…");
        assert!(url_problem("k", "rtmp://cdn/live/a b").is_some());
    }

    #[test]
    fn an_app_list_replaces_the_global_one_and_its_urls_are_checked() {
        use crate::config::Config;
        let c: Config = toml::from_str(
            "[forward]\nurls = [\"rtmp://cdn/live/{stream}\"]\n\
             [apps.tv.forward]\nurls = []\n\
             [apps.news.forward]\nurls = [\"rtmp://a/b/{stream}\", \"rtmp://b/c/{stream}\"]\n",
        )
        .unwrap();
        assert_eq!(ForwardConfig::urls_for_app(&c, "live"), ["rtmp://cdn/live/{stream}"]);
        assert!(ForwardConfig::urls_for_app(&c, "tv").is_empty());
        assert_eq!(ForwardConfig::urls_for_app(&c, "news").len(), 2);
        let bad: Config = toml::from_str("[apps.tv.forward]\nurls = [\"rtmp://cdn\"]\n").unwrap();
        let problems = bad.validate().unwrap_err();
        assert!(
            problems.iter().any(|p| p.starts_with("apps.tv.forward.urls[0]")),
            "{problems:?}"
        );
    }

    #[test]
    fn limits_are_checked() {
        let c = ForwardConfig {
            max_queue_bytes: 10,
            write_timeout_ms: 0,
            retry_initial_ms: 5000,
            retry_max_ms: 1000,
            ..ForwardConfig::default()
        };
        let problems = c.validate();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(ForwardConfig::default().validate().is_empty());
    }
}
