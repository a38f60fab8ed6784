//! Access lists, `[acl]` and `[apps.NAME.acl]`: which client addresses may publish or play,
//! and which web pages may embed the HTTP players.
//!
//! Addresses: `deny` wins; a non-empty `allow` list admits only the addresses it lists; an
//! empty one admits everyone not denied. Entries are CIDR networks or single addresses, IPv4
//! or IPv6; an IPv4 client on a dual-stack socket (`::ffff:1.2.3.4`) matches IPv4 entries.
//!
//! Referers (HTTP play only: RTMP has no such header): when `play_referers` is not empty, the
//! `Origin` header (or, without one, the origin of the `Referer`) must match one of its
//! patterns (see [`OriginPattern`]). A request with neither header, such as ffmpeg's or VLC's,
//! is let in unless `allow_empty_referer = false`. Headers are easy to forge outside a
//! browser: this keeps other sites from embedding the player, it is no access control.

mod cidr;
mod referer;

use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

use crate::admission::action::Action;

pub use cidr::IpNet;
pub use referer::{Origin, OriginPattern};

/// `[acl]`: the lists of every app that does not set its own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AclConfig {
    pub publish_allow: Vec<String>,
    pub publish_deny: Vec<String>,
    pub play_allow: Vec<String>,
    pub play_deny: Vec<String>,
    pub play_referers: Vec<String>,
    pub allow_empty_referer: bool,
}

impl Default for AclConfig {
    fn default() -> Self {
        AclConfig {
            publish_allow: Vec::new(),
            publish_deny: Vec::new(),
            play_allow: Vec::new(),
            play_deny: Vec::new(),
            play_referers: Vec::new(),
            allow_empty_referer: true,
        }
    }
}

/// `[apps.NAME.acl]`: each key set here replaces the global `[acl]` one for that app (a list
/// is replaced whole, not added to).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AclOverride {
    pub publish_allow: Option<Vec<String>>,
    pub publish_deny: Option<Vec<String>>,
    pub play_allow: Option<Vec<String>>,
    pub play_deny: Option<Vec<String>>,
    pub play_referers: Option<Vec<String>>,
    pub allow_empty_referer: Option<bool>,
}

/// The lists one app's requests are checked against, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedAcl {
    publish: IpRules,
    play: IpRules,
    referers: Vec<OriginPattern>,
    allow_empty_referer: bool,
}

impl Default for ResolvedAcl {
    /// Lets everyone in.
    fn default() -> Self {
        ResolvedAcl {
            publish: IpRules::default(),
            play: IpRules::default(),
            referers: Vec::new(),
            allow_empty_referer: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct IpRules {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

/// Why a client was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("{ip} may not {action}: it matches {action}_deny entry {rule}")]
    Denied { action: Action, ip: IpAddr, rule: IpNet },
    #[error("{ip} may not {action}: it is not in {action}_allow")]
    NotAllowed { action: Action, ip: IpAddr },
    #[error("no Origin or Referer header, and allow_empty_referer = false")]
    NoReferer,
    #[error("the Origin or Referer header names no http(s) origin")]
    UnreadableReferer,
    /// `origin` is the origin only (`https://host:port`), never the full Referer URL, which
    /// may carry the embedding page's own tokens.
    #[error("origin {origin} is not in play_referers")]
    RefererNotAllowed { origin: String },
}

impl AclError {
    /// `acl_deny`, `acl_not_allowed` or `referer`: the `reason` label to count refusals by.
    pub fn label(&self) -> &'static str {
        match self {
            AclError::Denied { .. } => "acl_deny",
            AclError::NotAllowed { .. } => "acl_not_allowed",
            AclError::NoReferer | AclError::UnreadableReferer | AclError::RefererNotAllowed { .. } => "referer",
        }
    }
}

/// Whether `ip` may `action`: not in the action's deny list and, if its allow list is not
/// empty, in it.
pub fn check_ip(acl: &ResolvedAcl, action: Action, ip: IpAddr) -> Result<(), AclError> {
    let rules = match action {
        Action::Publish => &acl.publish,
        Action::Play => &acl.play,
    };
    let ip = ip.to_canonical();
    if let Some(rule) = rules.deny.iter().find(|net| net.contains(ip)) {
        return Err(AclError::Denied {
            action,
            ip,
            rule: *rule,
        });
    }
    if !rules.allow.is_empty() && !rules.allow.iter().any(|net| net.contains(ip)) {
        return Err(AclError::NotAllowed { action, ip });
    }
    Ok(())
}

/// Whether an HTTP play request with these `Origin` and `Referer` headers may play. An empty
/// header counts as absent; `Origin` wins when both are there.
pub fn check_referer(acl: &ResolvedAcl, origin: Option<&str>, referer: Option<&str>) -> Result<(), AclError> {
    if acl.referers.is_empty() {
        return Ok(());
    }
    let Some(header) = present(origin).or(present(referer)) else {
        return if acl.allow_empty_referer {
            Ok(())
        } else {
            Err(AclError::NoReferer)
        };
    };
    let origin = Origin::parse(header).ok_or(AclError::UnreadableReferer)?;
    if acl.referers.iter().any(|p| p.matches(&origin)) {
        Ok(())
    } else {
        Err(AclError::RefererNotAllowed {
            origin: origin.to_string(),
        })
    }
}

/// A header with something in it.
fn present(header: Option<&str>) -> Option<&str> {
    header.map(str::trim).filter(|h| !h.is_empty())
}

impl AclConfig {
    /// These lists as an app with override `over` (if any) sees them.
    pub fn resolve(&self, over: Option<&AclOverride>) -> AclConfig {
        let empty = AclOverride::default();
        let o = over.unwrap_or(&empty);
        let pick = |own: &Option<Vec<String>>, global: &Vec<String>| own.as_ref().unwrap_or(global).clone();
        AclConfig {
            publish_allow: pick(&o.publish_allow, &self.publish_allow),
            publish_deny: pick(&o.publish_deny, &self.publish_deny),
            play_allow: pick(&o.play_allow, &self.play_allow),
            play_deny: pick(&o.play_deny, &self.play_deny),
            play_referers: pick(&o.play_referers, &self.play_referers),
            allow_empty_referer: o.allow_empty_referer.unwrap_or(self.allow_empty_referer),
        }
    }

    /// The parsed lists, or every entry that does not parse, each named under `at` (`acl`,
    /// `apps.live.acl`) with its index: `acl.play_deny[2]: "10.0.0.300" is not …`.
    pub fn compile(&self, at: &str) -> Result<ResolvedAcl, Vec<String>> {
        let mut problems = Vec::new();
        let mut nets = |key: &str, list: &[String]| parse_list::<IpNet>(&mut problems, at, key, list);
        let publish = IpRules {
            allow: nets("publish_allow", &self.publish_allow),
            deny: nets("publish_deny", &self.publish_deny),
        };
        let play = IpRules {
            allow: nets("play_allow", &self.play_allow),
            deny: nets("play_deny", &self.play_deny),
        };
        let referers = parse_list::<OriginPattern>(&mut problems, at, "play_referers", &self.play_referers);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ResolvedAcl {
            publish,
            play,
            referers,
            allow_empty_referer: self.allow_empty_referer,
        })
    }

    /// Every problem, each naming its `acl.*` key.
    pub fn validate(&self) -> Vec<String> {
        self.compile("acl").err().unwrap_or_default()
    }
}

impl AclOverride {
    /// Every problem of the lists this app sets, each naming its `apps.APP.acl.*` key.
    pub fn validate(&self, app: &str) -> Vec<String> {
        let own = AclConfig {
            publish_allow: self.publish_allow.clone().unwrap_or_default(),
            publish_deny: self.publish_deny.clone().unwrap_or_default(),
            play_allow: self.play_allow.clone().unwrap_or_default(),
            play_deny: self.play_deny.clone().unwrap_or_default(),
            play_referers: self.play_referers.clone().unwrap_or_default(),
            allow_empty_referer: true,
        };
        own.compile(&format!("apps.{app}.acl")).err().unwrap_or_default()
    }
}

fn parse_list<T: FromStr<Err = String>>(problems: &mut Vec<String>, at: &str, key: &str, list: &[String]) -> Vec<T> {
    list.iter()
        .enumerate()
        .filter_map(|(i, text)| {
            text.parse()
                .map_err(|reason| problems.push(format!("{at}.{key}[{i}]: {reason}")))
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests;
