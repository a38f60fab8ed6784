//! `[hooks]` and `[apps.NAME.hooks]` configuration, validation and per-app resolution.

use std::time::Duration;

use hyper::Uri;
use serde::{Deserialize, Serialize};

use super::event::HookKind;

/// Default time allowed for one HTTP call (connect, request and response body).
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Default capacity of each endpoint's notification queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Default first retry delay of a failed notification.
pub const DEFAULT_RETRY_MIN_MS: u64 = 100;
/// Default cap of the doubling retry delay.
pub const DEFAULT_RETRY_MAX_MS: u64 = 5_000;
/// Default number of tries of one notification before it is given up: at the default
/// delays, a backend down for about 75 s (or timing out for longer) loses nothing.
pub const DEFAULT_MAX_TRIES: u32 = 20;
/// Most accepted `max_tries`.
const MAX_MAX_TRIES: u32 = 10_000;
/// Longest accepted `timeout_ms`.
const MAX_TIMEOUT_MS: u64 = 60_000;

/// What a decision hook does when its backend cannot be reached (connection error or timeout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnreachablePolicy {
    /// Reject the client (fail closed, as SRS does).
    #[default]
    Refuse,
    /// Let the client in and log a warning (fail open).
    Allow,
}

/// The global `[hooks]` table. Every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    pub on_connect: Vec<String>,
    pub on_close: Vec<String>,
    pub on_publish: Vec<String>,
    pub on_unpublish: Vec<String>,
    pub on_play: Vec<String>,
    pub on_stop: Vec<String>,
    pub on_hls: Vec<String>,
    pub on_dvr: Vec<String>,
    /// Time allowed for one HTTP call, in milliseconds (1..=60000).
    pub timeout_ms: u64,
    /// Decision hooks (`on_connect`, `on_publish`, `on_play`) when the backend is unreachable.
    pub unreachable_policy: UnreachablePolicy,
    /// Notifications waiting per endpoint URL; beyond this they are dropped and counted.
    pub queue_capacity: usize,
    /// First retry delay of a failed notification, in milliseconds.
    pub retry_min_ms: u64,
    /// Cap of the doubling retry delay, in milliseconds.
    pub retry_max_ms: u64,
    /// Tries of one notification (the first call included) that failed for a transient
    /// reason (unreachable, timeout, 5xx, 429) before it is dropped, logged and counted, so
    /// that the events after it go on (1..=10000).
    pub max_tries: u32,
}

impl Default for HooksConfig {
    fn default() -> Self {
        Self {
            on_connect: Vec::new(),
            on_close: Vec::new(),
            on_publish: Vec::new(),
            on_unpublish: Vec::new(),
            on_play: Vec::new(),
            on_stop: Vec::new(),
            on_hls: Vec::new(),
            on_dvr: Vec::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            unreachable_policy: UnreachablePolicy::Refuse,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            retry_min_ms: DEFAULT_RETRY_MIN_MS,
            retry_max_ms: DEFAULT_RETRY_MAX_MS,
            max_tries: DEFAULT_MAX_TRIES,
        }
    }
}

/// An `[apps.NAME.hooks]` table: each key present replaces the global one for that app; an
/// absent key falls back to `[hooks]`. `on_publish = []` switches the hook off for the app.
/// Queue and retry settings are global only.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksOverride {
    pub on_connect: Option<Vec<String>>,
    pub on_close: Option<Vec<String>>,
    pub on_publish: Option<Vec<String>>,
    pub on_unpublish: Option<Vec<String>>,
    pub on_play: Option<Vec<String>>,
    pub on_stop: Option<Vec<String>>,
    pub on_hls: Option<Vec<String>>,
    pub on_dvr: Option<Vec<String>>,
    pub timeout_ms: Option<u64>,
    pub unreachable_policy: Option<UnreachablePolicy>,
}

/// A configuration mistake, naming the key at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HooksConfigError {
    #[error("{key}: invalid url {url:?}: {reason}")]
    InvalidUrl { key: String, url: String, reason: String },
    #[error("{key}: {url:?} uses https, which is not supported; use http:// (for example through a local TLS proxy)")]
    HttpsUnsupported { key: String, url: String },
    #[error("{key}: {reason}")]
    InvalidValue { key: String, reason: String },
}

impl HooksConfig {
    fn urls(&self, kind: HookKind) -> &[String] {
        match kind {
            HookKind::Connect => &self.on_connect,
            HookKind::Close => &self.on_close,
            HookKind::Publish => &self.on_publish,
            HookKind::Unpublish => &self.on_unpublish,
            HookKind::Play => &self.on_play,
            HookKind::Stop => &self.on_stop,
            HookKind::Hls => &self.on_hls,
            HookKind::Dvr => &self.on_dvr,
        }
    }

    /// Checks every URL and value; the error names the offending `hooks.*` key.
    pub fn validate(&self) -> Result<(), HooksConfigError> {
        for kind in HookKind::ALL {
            for url in self.urls(kind) {
                HookUrl::parse(url, &format!("hooks.{}", kind.as_str()))?;
            }
        }
        validate_timeout(self.timeout_ms, "hooks.timeout_ms")?;
        if self.queue_capacity == 0 {
            return Err(invalid("hooks.queue_capacity", "must be at least 1"));
        }
        if self.retry_min_ms == 0 {
            return Err(invalid("hooks.retry_min_ms", "must be at least 1"));
        }
        if self.retry_max_ms < self.retry_min_ms {
            return Err(invalid(
                "hooks.retry_max_ms",
                "must not be less than hooks.retry_min_ms",
            ));
        }
        if self.max_tries == 0 || self.max_tries > MAX_MAX_TRIES {
            return Err(invalid("hooks.max_tries", format!("must be in 1..={MAX_MAX_TRIES}")));
        }
        Ok(())
    }
}

impl HooksOverride {
    fn urls(&self, kind: HookKind) -> Option<&[String]> {
        match kind {
            HookKind::Connect => self.on_connect.as_deref(),
            HookKind::Close => self.on_close.as_deref(),
            HookKind::Publish => self.on_publish.as_deref(),
            HookKind::Unpublish => self.on_unpublish.as_deref(),
            HookKind::Play => self.on_play.as_deref(),
            HookKind::Stop => self.on_stop.as_deref(),
            HookKind::Hls => self.on_hls.as_deref(),
            HookKind::Dvr => self.on_dvr.as_deref(),
        }
    }

    /// Checks the override of app `app`; the error names the `apps.APP.hooks.*` key.
    pub fn validate(&self, app: &str) -> Result<(), HooksConfigError> {
        for kind in HookKind::ALL {
            for url in self.urls(kind).unwrap_or_default() {
                HookUrl::parse(url, &format!("apps.{app}.hooks.{}", kind.as_str()))?;
            }
        }
        if let Some(ms) = self.timeout_ms {
            validate_timeout(ms, &format!("apps.{app}.hooks.timeout_ms"))?;
        }
        Ok(())
    }
}

fn validate_timeout(ms: u64, key: &str) -> Result<(), HooksConfigError> {
    if ms == 0 || ms > MAX_TIMEOUT_MS {
        return Err(invalid(key, format!("must be in 1..={MAX_TIMEOUT_MS}")));
    }
    Ok(())
}

fn invalid(key: &str, reason: impl Into<String>) -> HooksConfigError {
    HooksConfigError::InvalidValue {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// A parsed `http://host[:port]/path?query` hook URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HookUrl {
    /// The URL as configured: the endpoint identity.
    pub raw: String,
    /// The URL for logs: its query (which may carry the backend's own secret) shown as `?…`.
    pub shown: String,
    /// `host:port` to connect to (port 80 when absent).
    pub addr: String,
    /// Value of the `Host` header.
    pub host_header: String,
    /// Request target, `/` when the URL has no path.
    pub path_and_query: String,
}

impl HookUrl {
    pub fn parse(raw: &str, key: &str) -> Result<Self, HooksConfigError> {
        let bad = |reason: &str| HooksConfigError::InvalidUrl {
            key: key.to_owned(),
            url: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = raw
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(s) if s.eq_ignore_ascii_case("https") => {
                return Err(HooksConfigError::HttpsUnsupported {
                    key: key.to_owned(),
                    url: raw.to_owned(),
                })
            }
            Some(_) => return Err(bad("scheme must be http")),
            None => return Err(bad("expected an absolute http:// url")),
        }
        let authority = uri.authority().ok_or_else(|| bad("missing host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user info in the url is not supported"));
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let port = authority.port_u16().unwrap_or(80);
        Ok(Self {
            raw: raw.to_owned(),
            shown: match raw.split_once('?') {
                Some((base, _)) => format!("{base}?…"),
                None => raw.to_owned(),
            },
            addr: format!("{host}:{port}"),
            host_header: authority.as_str().to_owned(),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// The settings one app ends up with after applying its override.
#[derive(Debug, Clone)]
pub(crate) struct Effective {
    urls: [Vec<HookUrl>; HookKind::COUNT],
    pub timeout: Duration,
    pub policy: UnreachablePolicy,
}

impl Effective {
    /// Resolves `global` plus an optional app override. Both must have been validated.
    pub fn resolve(global: &HooksConfig, app: Option<(&str, &HooksOverride)>) -> Result<Self, HooksConfigError> {
        let mut urls: [Vec<HookUrl>; HookKind::COUNT] = Default::default();
        for kind in HookKind::ALL {
            let (list, key) = match app.and_then(|(name, o)| o.urls(kind).map(|l| (l, name))) {
                Some((list, name)) => (list, format!("apps.{name}.hooks.{}", kind.as_str())),
                None => (global.urls(kind), format!("hooks.{}", kind.as_str())),
            };
            urls[kind as usize] = list.iter().map(|u| HookUrl::parse(u, &key)).collect::<Result<_, _>>()?;
        }
        let o = app.map(|(_, o)| o);
        Ok(Self {
            urls,
            timeout: Duration::from_millis(o.and_then(|o| o.timeout_ms).unwrap_or(global.timeout_ms)),
            policy: o
                .and_then(|o| o.unreachable_policy)
                .unwrap_or(global.unreachable_policy),
        })
    }

    pub fn urls(&self, kind: HookKind) -> &[HookUrl] {
        &self.urls[kind as usize]
    }

    pub fn all_urls(&self) -> impl Iterator<Item = (HookKind, &HookUrl)> {
        HookKind::ALL
            .into_iter()
            .flat_map(move |k| self.urls(k).iter().map(move |u| (k, u)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_toml_keys() {
        let c: HooksConfig = toml::from_str("on_publish = [\"http://127.0.0.1:8085/api\"]").expect("valid toml");
        assert_eq!(c.timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(c.unreachable_policy, UnreachablePolicy::Refuse);
        assert!(c.validate().is_ok());
        let c: Result<HooksConfig, _> = toml::from_str("on_publishh = []");
        assert!(c.is_err());
        let o: HooksOverride = toml::from_str("on_play = []\nunreachable_policy = \"allow\"").expect("valid toml");
        assert_eq!(o.on_play, Some(vec![]));
        assert_eq!(o.unreachable_policy, Some(UnreachablePolicy::Allow));
    }

    #[test]
    fn bad_urls_are_reported_with_their_key() {
        let c = HooksConfig {
            on_play: vec!["https://x/y".into()],
            ..HooksConfig::default()
        };
        let e = c.validate().expect_err("https rejected").to_string();
        assert!(e.contains("hooks.on_play") && e.contains("https"), "{e}");
        for bad in ["ftp://x/", "/relative", "http://", "not a url"] {
            let o = HooksOverride {
                on_publish: Some(vec![bad.into()]),
                ..HooksOverride::default()
            };
            let e = o.validate("live").expect_err(bad).to_string();
            assert!(e.contains("apps.live.hooks.on_publish"), "{e}");
        }
    }

    #[test]
    fn url_parts() {
        let u = HookUrl::parse("http://example.com/a?b=1", "k").expect("valid");
        assert_eq!(u.addr, "example.com:80");
        assert_eq!(u.path_and_query, "/a?b=1");
        assert_eq!(
            u.shown, "http://example.com/a?…",
            "a backend's secret in the query is not logged"
        );
        let u = HookUrl::parse("http://[::1]:8085/x", "k").expect("valid");
        assert_eq!(u.addr, "[::1]:8085");
        assert_eq!(u.host_header, "[::1]:8085");
        let u = HookUrl::parse("http://127.0.0.1:9", "k").expect("valid");
        assert_eq!((u.addr.as_str(), u.path_and_query.as_str()), ("127.0.0.1:9", "/"));
    }

    #[test]
    fn override_replaces_only_the_keys_it_sets() {
        let g = HooksConfig {
            on_publish: vec!["http://g/pub".into()],
            on_play: vec!["http://g/play".into()],
            ..HooksConfig::default()
        };
        let o = HooksOverride {
            on_publish: Some(vec![]),
            timeout_ms: Some(100),
            ..HooksOverride::default()
        };
        let e = Effective::resolve(&g, Some(("live", &o))).expect("valid");
        assert!(e.urls(HookKind::Publish).is_empty());
        assert_eq!(e.urls(HookKind::Play)[0].raw, "http://g/play");
        assert_eq!(e.timeout, Duration::from_millis(100));
        assert_eq!(e.policy, UnreachablePolicy::Refuse);
    }
}
