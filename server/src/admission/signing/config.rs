//! `[sign]` and `[apps.NAME.sign]`: which signed-URL scheme publishing and playing need, and
//! with which keys. An app's `publish` or `play` table, when present, replaces the global one
//! for that action as a whole (keys it leaves out take their defaults, not the global values),
//! so an app's rule can be read in one place.

use std::fmt;

use serde::Deserialize;

use crate::admission::action::Action;

/// How a URL is signed. See the module docs of each scheme for exactly what is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// No signature needed.
    #[default]
    None,
    /// Alibaba Cloud ApsaraVideo Live type A: `auth_key=timestamp-rand-uid-md5hash`.
    Alibaba,
    /// Tencent Cloud CSS: `txSecret=md5(KEY+StreamName+txTime)&txTime=HEX`.
    Tencent,
    /// Estuary's own: `expires=UNIX&sign=HMAC-SHA256(key, "method\napp\nstream\nexpires")`.
    Hmac,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::None => "none",
            Scheme::Alibaba => "alibaba",
            Scheme::Tencent => "tencent",
            Scheme::Hmac => "hmac",
        }
    }

    /// The query parameter that carries the scheme's signature, which logs and listings must
    /// hide (`auth_key`, `txSecret`, `sign`).
    pub fn secret_param(self) -> Option<&'static str> {
        match self {
            Scheme::None => None,
            Scheme::Alibaba => Some("auth_key"),
            Scheme::Tencent => Some("txSecret"),
            Scheme::Hmac => Some("sign"),
        }
    }
}

impl Scheme {
    /// Every query parameter the scheme's token is made of: what a URL derived from a signed
    /// one (an HLS segment's, from its playlist's) carries so that it verifies too.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Scheme::None => &[],
            Scheme::Alibaba => &["auth_key"],
            Scheme::Tencent => &["txSecret", "txTime"],
            Scheme::Hmac => &["expires", "sign"],
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest accepted clock skew: a day.
const MAX_SKEW_MS: u64 = 86_400_000;
/// Longest validity added to an Alibaba timestamp: 30 days.
const MAX_AGE_MS: u64 = 30 * 86_400_000;

/// `[sign.publish]` / `[sign.play]`: the rule for one action. Its `Debug` output hides the keys.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignRule {
    pub scheme: Scheme,
    /// The signing key; required unless `scheme = "none"`.
    pub key: String,
    /// A second key that verifies too, for rotation; empty: none.
    pub backup_key: String,
    /// A token is still accepted this long after it expired (clocks of signer and server
    /// disagree).
    pub skew_ms: u64,
    /// `alibaba` only, whose timestamp is the signing time: the token expires this long after
    /// its timestamp (Alibaba's "validity period"); 0 makes the timestamp the expiry. `tencent`
    /// and `hmac` carry their expiry and ignore it.
    pub max_age_ms: u64,
}

impl Default for SignRule {
    fn default() -> Self {
        SignRule {
            scheme: Scheme::None,
            key: String::new(),
            backup_key: String::new(),
            skew_ms: 300_000,
            max_age_ms: 1_800_000,
        }
    }
}

impl fmt::Debug for SignRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |k: &str| if k.is_empty() { "" } else { "***" };
        f.debug_struct("SignRule")
            .field("scheme", &self.scheme)
            .field("key", &hidden(&self.key))
            .field("backup_key", &hidden(&self.backup_key))
            .field("skew_ms", &self.skew_ms)
            .field("max_age_ms", &self.max_age_ms)
            .finish()
    }
}

impl SignRule {
    /// The keys that verify a token: `key`, then `backup_key` when set.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        [self.key.as_str(), self.backup_key.as_str()]
            .into_iter()
            .filter(|k| !k.is_empty())
    }

    /// Every problem, each naming its key under `at` (`sign.publish`, `apps.live.sign.play`).
    pub fn validate(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.scheme != Scheme::None && self.key.is_empty() {
            problems.push(format!(
                "{at}.key must not be empty when {at}.scheme = \"{}\"",
                self.scheme
            ));
        }
        for (name, key) in [("key", &self.key), ("backup_key", &self.backup_key)] {
            if key.chars().any(char::is_control) || key.trim() != key {
                problems.push(format!(
                    "{at}.{name} must not contain control characters or start or end with spaces"
                ));
            }
        }
        if self.skew_ms > MAX_SKEW_MS {
            problems.push(format!(
                "{at}.skew_ms = {} must be at most {MAX_SKEW_MS} (a day)",
                self.skew_ms
            ));
        }
        if self.max_age_ms > MAX_AGE_MS {
            problems.push(format!(
                "{at}.max_age_ms = {} must be at most {MAX_AGE_MS} (30 days)",
                self.max_age_ms
            ));
        }
        problems
    }
}

/// `[sign]`: the rules of every app that has no `[apps.NAME.sign]` table of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignConfig {
    pub publish: SignRule,
    pub play: SignRule,
}

/// `[apps.NAME.sign]`: a `publish` or `play` table here replaces the global one for that app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignOverride {
    pub publish: Option<SignRule>,
    pub play: Option<SignRule>,
}

/// The rules one app's requests are checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedSign {
    pub publish: SignRule,
    pub play: SignRule,
}

impl SignConfig {
    /// The rules of an app with override `over` (if any).
    pub fn resolve(&self, over: Option<&SignOverride>) -> ResolvedSign {
        let pick = |own: Option<&SignRule>, global: &SignRule| own.unwrap_or(global).clone();
        ResolvedSign {
            publish: pick(over.and_then(|o| o.publish.as_ref()), &self.publish),
            play: pick(over.and_then(|o| o.play.as_ref()), &self.play),
        }
    }

    /// Every problem, each naming its `sign.*` key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = self.publish.validate("sign.publish");
        problems.extend(self.play.validate("sign.play"));
        problems.extend(self.resolve(None).shared_key_problem("sign"));
        problems
    }
}

impl SignOverride {
    /// Every problem of the tables this app sets, each naming its `apps.APP.sign.*` key.
    pub fn validate(&self, app: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(rule) = &self.publish {
            problems.extend(rule.validate(&format!("apps.{app}.sign.publish")));
        }
        if let Some(rule) = &self.play {
            problems.extend(rule.validate(&format!("apps.{app}.sign.play")));
        }
        problems
    }
}

impl ResolvedSign {
    /// The rule of `action`.
    pub fn rule(&self, action: Action) -> &SignRule {
        match action {
            Action::Publish => &self.publish,
            Action::Play => &self.play,
        }
    }

    /// Alibaba and Tencent tokens do not say whether they publish or play: with one key for
    /// both, every viewer's play URL would also publish. Their own consoles keep a push key
    /// and a play key; so must we. `at` names the table (`sign`, `apps.live.sign`).
    pub fn shared_key_problem(&self, at: &str) -> Option<String> {
        let (publish, play) = (&self.publish, &self.play);
        let blind = matches!(publish.scheme, Scheme::Alibaba | Scheme::Tencent);
        let shared = publish.keys().any(|k| play.keys().any(|p| p == k));
        (blind && publish.scheme == play.scheme && shared).then(|| {
            format!(
                "{at}: publish and play both use scheme \"{}\" with a key in common, so a play URL \
                 would also publish; give them different keys",
                publish.scheme
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(scheme: Scheme, key: &str) -> SignRule {
        SignRule {
            scheme,
            key: key.into(),
            ..SignRule::default()
        }
    }

    #[test]
    fn debug_hides_the_keys() {
        let r = SignRule {
            backup_key: "old-secret".into(),
            ..rule(Scheme::Hmac, "new-secret")
        };
        let shown = format!(
            "{:?}",
            ResolvedSign {
                publish: r.clone(),
                play: r
            }
        );
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn a_scheme_needs_a_key_and_bounds_are_named() {
        let mut r = rule(Scheme::Tencent, "");
        r.skew_ms = MAX_SKEW_MS + 1;
        r.max_age_ms = MAX_AGE_MS + 1;
        r.backup_key = " spaced".into();
        let problems = r.validate("apps.live.sign.play");
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("apps.live.sign.play.key"), "{problems:?}");
        assert!(
            problems[1].starts_with("apps.live.sign.play.backup_key"),
            "{problems:?}"
        );
        assert!(problems[2].starts_with("apps.live.sign.play.skew_ms"), "{problems:?}");
        assert!(
            problems[3].starts_with("apps.live.sign.play.max_age_ms"),
            "{problems:?}"
        );
        assert!(rule(Scheme::None, "").validate("sign.play").is_empty());
    }

    #[test]
    fn a_key_shared_by_publish_and_play_is_refused_where_tokens_do_not_name_the_action() {
        for scheme in [Scheme::Alibaba, Scheme::Tencent] {
            let mut config = SignConfig {
                publish: rule(scheme, "k1"),
                play: rule(scheme, "k2"),
            };
            assert!(config.validate().is_empty());
            config.play.backup_key = "k1".into();
            let problems = config.validate();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].starts_with("sign:"), "{problems:?}");
        }
        // HMAC signs the action; different schemes have different parameters.
        let hmac = SignConfig {
            publish: rule(Scheme::Hmac, "k"),
            play: rule(Scheme::Hmac, "k"),
        };
        assert!(hmac.validate().is_empty());
        let mixed = SignConfig {
            publish: rule(Scheme::Alibaba, "k"),
            play: rule(Scheme::Tencent, "k"),
        };
        assert!(mixed.validate().is_empty());
    }

    #[test]
    fn an_app_table_replaces_the_global_one_per_action() {
        let global = SignConfig {
            publish: rule(Scheme::Hmac, "g-pub"),
            play: rule(Scheme::Hmac, "g-play"),
        };
        let over = SignOverride {
            publish: None,
            play: Some(rule(Scheme::Tencent, "app-play")),
        };
        let resolved = global.resolve(Some(&over));
        assert_eq!(resolved.publish, global.publish);
        assert_eq!(resolved.play.scheme, Scheme::Tencent);
        assert_eq!(resolved.play.key, "app-play");
        // Keys the app's table leaves out take their defaults, not the global values.
        assert_eq!(resolved.play.skew_ms, SignRule::default().skew_ms);
        assert_eq!(
            global.resolve(None),
            ResolvedSign {
                publish: global.publish.clone(),
                play: global.play.clone()
            }
        );
        assert_eq!(resolved.rule(Action::Play), &resolved.play);
    }

    #[test]
    fn parses_from_toml() {
        let c: SignConfig = toml::from_str(
            "[publish]\nscheme = \"alibaba\"\nkey = \"k\"\nmax_age_ms = 0\n[play]\nscheme = \"tencent\"\nkey = \"p\"\n",
        )
        .unwrap();
        assert_eq!(c.publish.scheme, Scheme::Alibaba);
        assert_eq!(c.publish.max_age_ms, 0);
        assert_eq!(c.play.skew_ms, 300_000);
        let e = toml::from_str::<SignConfig>("[play]\nscheme = \"aws\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("scheme"), "{e}");
        let e = toml::from_str::<SignConfig>("[play]\nsecret = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("secret"), "{e}");
    }
}
