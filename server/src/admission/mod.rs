//! Admission: one pipeline for publishing and one for playing, the same for RTMP, HTTP-FLV
//! (socket and hyper) and HLS. Protocol handlers build a [`Request`], call
//! [`Admission::publish`] or [`Admission::play`], and turn a [`Refusal`] into their own answer
//! (`NetStream.Publish.*` on RTMP, 403/404 on HTTP).
//!
//! ```text
//! publish: key → [ACL → signed URL] → current source (active: busy; silent: ended now)
//!              → cluster claim (`[cluster]`: another node's key is refused)
//!              → max_streams → predecessor's on_unpublish settled → on_publish hook
//!              → max_streams again → the path's source
//! play:    key → [ACL → signed URL] → max_viewers(_per_stream) → on_play hook
//!              → max_viewers again → a viewer of the path
//! ```
//! The bracketed checks are access lists ([`acl`]) and signed URLs ([`signing`]). The limits
//! (`limits.rs`) are checked before the hook, so a client refused by them costs no hook call,
//! and again just before the client is let in. A silent source is ended before the
//! newcomer's `on_publish`, so the backend hears the old `on_unpublish` first; only then may
//! the hook refuse the newcomer.

pub mod acl;
mod action;
pub mod signing;

pub use action::Action;

mod names;

use std::net::{IpAddr, Ipv4Addr};

/// The address a refusal is logged under when the client gave none we can parse.
const UNKNOWN_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cluster::Cluster;
use crate::hooks::HookSubject;
use crate::hooks::{ClientInfo, Decision, DecisionEvent, HookKind, Hooks, UnreachablePolicy};
use crate::log_gate::LogGate;
use crate::path::registry::Paths;
use crate::path::source::Source;
use crate::path::viewer::Viewer;
use crate::path::Path;
use crate::stream::StreamKey;

mod limits;
#[cfg(test)]
mod tests;

/// What a client asks for.
pub struct Request {
    pub key: StreamKey,
    /// The client and the stream as the hooks describe them.
    pub subject: HookSubject,
    /// `rtmp`, `http_flv` or `hls`: the metrics' `protocol` label.
    pub protocol: &'static str,
    /// Where the client connects from (access lists).
    pub peer: std::net::IpAddr,
    /// The query that carries a signed URL's token: the stream's, or for an RTMP client
    /// that put it in its server URL, the connect's.
    pub credentials: String,
    /// An HTTP client's `Origin` and `Referer` (the referer allow-list); `None` for RTMP.
    pub http: Option<HttpOrigin>,
}

/// An HTTP player's `Origin` and `Referer` headers.
#[derive(Debug, Clone, Default)]
pub struct HttpOrigin {
    pub origin: Option<String>,
    pub referer: Option<String>,
}

/// Why a client was refused; the protocol handler answers it in its own terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("bad stream name: {0}")]
    BadName(String),
    #[error("stream {0} already has an active publisher")]
    Busy(String),
    #[error("{0}")]
    Hook(String),
    #[error("the previous publisher's on_unpublish is not delivered yet ({0})")]
    PreviousNotSettled(String),
    #[error("{0}")]
    Acl(#[from] acl::AclError),
    #[error("{0}")]
    Sign(#[from] signing::SignError),
    #[error("{0} streams have a source (limits.max_streams)")]
    MaxStreams(usize),
    #[error("{0}")]
    MaxViewers(String),
    /// The origin cluster: another node owns the stream, or its directory is unreachable.
    #[error("{0}")]
    Cluster(#[from] crate::cluster::ClaimRefused),
}

impl From<limits::Exceeded> for Refusal {
    fn from(e: limits::Exceeded) -> Self {
        match e {
            limits::Exceeded::Streams(max) => Refusal::MaxStreams(max),
            limits::Exceeded::Viewers(why) => Refusal::MaxViewers(why),
        }
    }
}

impl Refusal {
    /// The `reason` label of `estuary_connections_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::BadName(_) => "bad_name",
            Refusal::Busy(_) => "busy",
            Refusal::Hook(_) | Refusal::PreviousNotSettled(_) => "hook",
            Refusal::Acl(e) => e.label(),
            Refusal::Sign(e) => e.label(),
            Refusal::MaxStreams(_) => "max_streams",
            Refusal::MaxViewers(_) => "max_viewers",
            Refusal::Cluster(crate::cluster::ClaimRefused::Owned(_)) => "owned_elsewhere",
            Refusal::Cluster(crate::cluster::ClaimRefused::Unreachable(_)) => "cluster_unreachable",
        }
    }

    /// Whether a limit refused the client (rather than a rule about the client): HTTP
    /// answers 429, not 403.
    pub fn is_limit(&self) -> bool {
        matches!(self, Refusal::MaxStreams(_) | Refusal::MaxViewers(_))
    }
}

/// The admission pipelines; cheap to clone.
#[derive(Clone)]
pub struct Admission {
    paths: Paths,
    hooks: Hooks,
    /// Refusals are logged once per address and reason every few seconds (an HLS player
    /// asks again with every playlist reload); every one is counted.
    refusal_log: Arc<LogGate>,
    /// The origin cluster's directory, where a publish claims its stream (`[cluster]`).
    cluster: Option<Cluster>,
}

impl Admission {
    pub fn new(paths: Paths, hooks: Hooks, refusal_log: Arc<LogGate>, cluster: Option<Cluster>) -> Admission {
        Admission {
            paths,
            hooks,
            refusal_log,
            cluster,
        }
    }

    /// Counts a refusal and logs it, unless one like it from the same address was logged
    /// moments ago.
    fn refused(
        &self,
        what: &str,
        protocol: &'static str,
        ip: IpAddr,
        stream: &dyn std::fmt::Display,
        refusal: &Refusal,
    ) {
        crate::metrics::rejected(protocol, refusal.reason());
        if let Some(held) = self.refusal_log.pass(refusal.reason(), ip, Instant::now()) {
            info!(%stream, protocol, %ip, reason = %refusal, quietly_refused_since = held, "{what} refused");
        }
    }

    /// An RTMP `connect`: the `on_connect` hook.
    pub async fn connect(&self, client: ClientInfo, param: String) -> Result<(), Refusal> {
        let app = client.app.clone();
        let event = DecisionEvent::Connect {
            client,
            stream: String::new(),
            param,
        };
        self.decide(&event, "rtmp", &app).await
    }

    /// Makes the client the source of its key: `id` names it, `kick` is cancelled if the
    /// path ends it (an idle source replaced).
    pub async fn publish(&self, req: Request, id: u64, kick: CancellationToken) -> Result<Source, Refusal> {
        let result = self.publish_steps(&req, id, kick).await;
        if let Err(refusal) = &result {
            self.refused("publish", req.protocol, req.peer, &shown(&req.key, refusal), refusal);
        }
        result
    }

    async fn publish_steps(&self, req: &Request, id: u64, kick: CancellationToken) -> Result<Source, Refusal> {
        check_key(&self.paths.config().stream, &req.key)?;
        // Who may publish, before anything about the key changes: a client that fails here
        // never ends a silent publisher (takeover is not hijack).
        self.credentials(req, Action::Publish)?;
        let path = self.paths.path(&req.key);
        if path.has_active_source() {
            return Err(Refusal::Busy(req.key.to_string()));
        }
        let subject = with_stream_id(&req.subject, &path);
        // One owner per stream across the cluster: claimed before the hook is asked (a key
        // another node owns costs no hook call), released if anything below refuses.
        let claim = match &self.cluster {
            Some(cluster) => Some(cluster.claim(&req.key, kick.clone()).await?),
            None => None,
        };
        // With on_publish deciding and no signature to check, the hook is asked only after the
        // silent source is ended (its on_unpublish must come first): so only a newcomer with
        // the silent one's own credentials (its reconnect) may end it, not whoever asks.
        if self.hooks.is_configured(HookKind::Publish, &req.key.app) && !self.publish_is_signed(&req.key.app) {
            if let Some(silent) = path.source_subject() {
                if !same_credentials(&silent, &req.subject) {
                    return Err(Refusal::Busy(format!(
                        "{} (its silent publisher is taken over only with its own credentials)",
                        req.key
                    )));
                }
            }
        }
        // A silent source is ended now, so its on_unpublish goes before our on_publish.
        path.evict_idle_source();
        let limits = &self.paths.config().limits;
        limits::check_streams(&self.paths, limits, &path)?;
        let app = req.key.app.as_str();
        let mut asked = false;
        if self.hooks.is_configured(HookKind::Publish, app) {
            let (limit, policy) = self.hooks.decision_limits(app);
            if path.events().unpublish_settled(limit).await {
                let event = DecisionEvent::Publish {
                    client: subject.client.clone(),
                    stream: subject.stream.clone(),
                };
                self.decide_quietly(&event).await?;
                asked = true;
            } else if policy == UnreachablePolicy::Refuse {
                return Err(Refusal::PreviousNotSettled(format!("{} ms", limit.as_millis())));
            } else {
                warn!(stream = %req.key, "previous on_unpublish not delivered; on_publish skipped (unreachable_policy = allow)");
            }
        }
        let started = limits::check_streams(&self.paths, limits, &path)
            .map_err(Refusal::from)
            .and_then(|()| {
                Source::start(&path, id, kick, Some(subject.clone())).map_err(|e| Refusal::Busy(e.to_string()))
            });
        match started {
            Ok(mut source) => {
                if let Some(claim) = claim {
                    source.hold_until_end(Box::new(claim));
                }
                Ok(source)
            }
            Err(e) => {
                // Another publisher took the key (or the last stream) while the hook
                // answered: the backend heard this one's on_publish, so it hears its end too.
                if asked {
                    path.events().unpublished(&subject);
                }
                Err(e)
            }
        }
    }

    /// Makes the client a viewer of its key. It may have to wait for a source; how long is
    /// the protocol's business.
    pub async fn play(&self, req: Request) -> Result<Viewer, Refusal> {
        let result = self.play_steps(&req).await;
        if let Err(refusal) = &result {
            self.refused("play", req.protocol, req.peer, &shown(&req.key, refusal), refusal);
        }
        result
    }

    async fn play_steps(&self, req: &Request) -> Result<Viewer, Refusal> {
        check_key(&self.paths.config().stream, &req.key)?;
        self.credentials(req, Action::Play)?;
        let limits = &self.paths.config().limits;
        // The path is not created for a check: a key refused here leaves nothing behind.
        limits::check_viewers(&self.paths, limits, self.paths.get(&req.key).as_deref())?;
        // Created before on_play, whose `stream_id` is the path's id (a key the hook refuses
        // is forgotten with it).
        let path = self.paths.path(&req.key);
        let subject = with_stream_id(&req.subject, &path);
        let event = DecisionEvent::Play {
            client: subject.client.clone(),
            stream: subject.stream.clone(),
        };
        self.decide_quietly(&event).await?;
        if let Err(refusal) = limits::check_viewers(&self.paths, limits, Some(&path)) {
            // Filled up while the hook answered: the backend heard this one's on_play, so it
            // hears its end too.
            if self.hooks.is_configured(HookKind::Play, &req.key.app) {
                path.events().stopped(&subject);
            }
            return Err(refusal.into());
        }
        Ok(Viewer::join(&self.paths, path, subject))
    }

    /// The access list, then the signed URL, for `action` (`acl.rs`, `signing/`): what a
    /// client needs before anything else is asked (a `HEAD`, say, asks nothing else).
    pub fn credentials(&self, req: &Request, action: Action) -> Result<(), Refusal> {
        let config = self.paths.config();
        let app = req.key.app.as_str();
        // The config was validated at start: its access lists parse.
        if let Ok(acl) = acl::AclConfig::for_app(config, app) {
            acl::check_ip(&acl, action, req.peer)?;
            if let (Action::Play, Some(http)) = (action, &req.http) {
                acl::check_referer(&acl, http.origin.as_deref(), http.referer.as_deref())?;
            }
        }
        let sign = signing::SignConfig::for_app(config, app);
        signing::check(
            &sign,
            action,
            app,
            &req.key.name,
            &req.credentials,
            std::time::SystemTime::now(),
        )?;
        Ok(())
    }

    /// The pairs of `query` that make `app`'s play signature, as sent (`auth_key=…`,
    /// `expires=…&sign=…`), or empty when its play is not signed: an HLS playlist puts them on
    /// its segment URIs, so a segment fetched without a session (by a CDN, say) verifies as
    /// the playlist did.
    pub fn play_signature(&self, app: &str, query: &str) -> String {
        let sign = signing::SignConfig::for_app(self.paths.config(), app);
        signing::only(query, sign.play.scheme.params())
    }

    /// `query` (with or without its `?`) as listings and logs may show it: `?` and the query
    /// with the values of secret parameters hidden (the signatures `app`'s signing config
    /// names, and the usual token names), or empty when there is none.
    pub fn shown_query(&self, app: &str, query: &str) -> String {
        let query = query.strip_prefix('?').unwrap_or(query);
        if query.is_empty() {
            return String::new();
        }
        let sign = signing::SignConfig::for_app(self.paths.config(), app);
        format!("?{}", signing::redact(query, &signing::secret_params(&sign)))
    }

    /// Whether publishing to `app` needs a signed URL.
    fn publish_is_signed(&self, app: &str) -> bool {
        signing::SignConfig::for_app(self.paths.config(), app).publish.scheme != signing::Scheme::None
    }

    /// `app` as a log line may show it: as it is if it is a valid app name, else a
    /// placeholder (a client's name reaches no log before it passes `names.rs`).
    pub fn shown_app<'a>(&self, app: &'a str) -> &'a str {
        match names::check_app(&self.paths.config().stream, app) {
            Ok(()) => app,
            Err(_) => "(refused name)",
        }
    }

    /// Whether `on_play` decides who plays `app`: what it approved is a session, so an HLS
    /// segment needs one (a URL alone proves nothing the hook saw).
    pub fn play_has_hook(&self, app: &str) -> bool {
        self.hooks.is_configured(HookKind::Play, app)
    }

    /// [`credentials`](Self::credentials), with a refusal counted and logged as the
    /// pipelines' are: for requests checked without a whole admission (an HLS segment).
    pub fn check_credentials(&self, req: &Request, action: Action) -> Result<(), Refusal> {
        let result = self.credentials(req, action);
        if let Err(refusal) = &result {
            self.refused(
                action.as_str(),
                req.protocol,
                req.peer,
                &shown(&req.key, refusal),
                refusal,
            );
        }
        result
    }

    async fn decide(&self, event: &DecisionEvent, protocol: &'static str, app: &str) -> Result<(), Refusal> {
        let result = self.decide_quietly(event).await;
        if let Err(refusal) = &result {
            let peer = match event {
                DecisionEvent::Connect { client, .. } => client.ip.parse().ok(),
                _ => None,
            };
            let app = self.shown_app(app);
            self.refused("connect", protocol, peer.unwrap_or(UNKNOWN_PEER), &app, refusal);
        }
        result
    }

    async fn decide_quietly(&self, event: &DecisionEvent) -> Result<(), Refusal> {
        match self.hooks.decide(event).await {
            Decision::Allow => Ok(()),
            Decision::Reject { reason } => Err(Refusal::Hook(reason)),
        }
    }
}

/// The key's names are allowed (`names.rs`).
fn check_key(rules: &crate::config::StreamConfig, key: &StreamKey) -> Result<(), Refusal> {
    names::check(rules, key).map_err(|e| Refusal::BadName(e.to_string()))
}

/// Whether two clients presented the same credentials: the stream's query and the server
/// URL's (where encoders put tokens), as the hooks are told them.
fn same_credentials(a: &HookSubject, b: &HookSubject) -> bool {
    let url_query = |s: &HookSubject| s.client.tc_url.split_once('?').map(|(_, q)| q.to_owned());
    a.stream.param == b.stream.param && url_query(a) == url_query(b)
}

/// The key as a log line may show it: not at all when its names were refused.
fn shown(key: &StreamKey, refusal: &Refusal) -> String {
    match refusal {
        Refusal::BadName(_) => "(refused name)".into(),
        _ => key.to_string(),
    }
}

/// `subject` with its `stream_id` set to `path`'s id: what the API calls the stream, so a
/// backend joins a hook's `stream_id` with `/api/v1/streams`.
fn with_stream_id(subject: &HookSubject, path: &Path) -> HookSubject {
    let mut subject = subject.clone();
    subject.stream.stream_id = path.id.to_string();
    subject
}
