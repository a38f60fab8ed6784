//! Signed URLs (anti-leech): a publish or play URL carries a token made with a key the
//! platform backend and Estuary share, so only the backend can hand out working URLs, and
//! only until they expire. Three schemes, chosen per action in `[sign]` and per app in
//! `[apps.NAME.sign]`:
//!
//! - [`alibaba`]: Alibaba Cloud ApsaraVideo Live type A, `?auth_key=timestamp-rand-uid-md5hash`;
//! - [`tencent`]: Tencent Cloud CSS, `?txSecret=md5hash&txTime=HEX`;
//! - [`hmac`]: `?expires=UNIX&sign=HMAC-SHA256(key, "method\napp\nstream\nexpires")`.
//!
//! [`check`] is the admission step; [`redact`] with [`secret_params`] hides tokens from logs
//! and listings (hooks still get the real query: backends check tokens too).
//!
//! A refusal's [`SignError::label`] tells why, in one bounded word: `missing`, `malformed`,
//! `forged` (made without the keys, or for another stream or action), `expired` (authentic
//! but late: signatures are checked before times, so `expired` never names a forgery).

pub mod alibaba;
mod clock;
mod config;
mod digest;
mod error;
pub mod hmac;
mod query;
pub mod tencent;

use std::time::SystemTime;

use crate::admission::action::Action;

pub use config::{ResolvedSign, Scheme, SignConfig, SignOverride, SignRule};
pub use error::SignError;
pub use query::{only, redact};

/// Checks that `query` (as the client sent it, a leading `?` allowed) carries a valid token
/// letting `action` on `app`/`stream` (the stream name without `.flv`/`.m3u8`) at `now`.
/// Always `Ok` when the action's scheme is `none`.
pub fn check(
    config: &ResolvedSign,
    action: Action,
    app: &str,
    stream: &str,
    query: &str,
    now: SystemTime,
) -> Result<(), SignError> {
    let rule = config.rule(action);
    let now_ms = clock::unix_ms(now);
    match rule.scheme {
        Scheme::None => Ok(()),
        Scheme::Alibaba => alibaba::verify(rule, action, app, stream, query, now_ms),
        Scheme::Tencent => tencent::verify(rule, action, stream, query, now_ms),
        Scheme::Hmac => hmac::verify(rule, action, app, stream, query, now_ms),
    }
}

/// Query parameters whose values carry secrets that logs, listings and API answers must hide:
/// the configured schemes' signatures first, then the names tokens commonly travel under (an
/// SRS-style `?token=` judged by a hook, or a scheme configured for another app).
pub fn secret_params(config: &ResolvedSign) -> Vec<&'static str> {
    const USUAL: [&str; 9] = [
        "auth_key",
        "txSecret",
        "sign",
        "token",
        "secret",
        "signature",
        "key",
        "password",
        "passwd",
    ];
    let configured = [config.publish.scheme, config.play.scheme]
        .into_iter()
        .filter_map(Scheme::secret_param);
    let mut names: Vec<&'static str> = Vec::with_capacity(USUAL.len() + 2);
    for name in configured.chain(USUAL) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn resolved(publish: Scheme, play: Scheme) -> ResolvedSign {
        let rule = |scheme, key: &str| SignRule {
            scheme,
            key: key.into(),
            ..SignRule::default()
        };
        ResolvedSign {
            publish: rule(publish, "publish-key"),
            play: rule(play, "play-key"),
        }
    }

    #[test]
    fn none_lets_everything_in() {
        let config = ResolvedSign::default();
        for action in [Action::Publish, Action::Play] {
            assert_eq!(check(&config, action, "live", "cam", "", at(0)), Ok(()));
        }
    }

    #[test]
    fn each_action_uses_its_own_scheme_and_key() {
        let config = resolved(Scheme::Alibaba, Scheme::Tencent);
        let t = 1_700_000_000;
        let publish = alibaba::sign_url("rtmp://h/live/cam", "publish-key", t);
        let play = tencent::sign_url("http://h/live/cam.flv", "play-key", t + 600).unwrap();
        let query = |url: &str| url.split_once('?').map(|(_, q)| q.to_owned()).unwrap();
        assert_eq!(
            check(&config, Action::Publish, "live", "cam", &query(&publish), at(t)),
            Ok(())
        );
        assert_eq!(
            check(&config, Action::Play, "live", "cam", &query(&play), at(t)),
            Ok(())
        );
        // Wrong action: the play URL has no auth_key, the publish URL no txSecret.
        let label = |action, q: &str| check(&config, action, "live", "cam", q, at(t)).map_err(|e| e.label());
        assert_eq!(label(Action::Publish, &query(&play)), Err("missing"));
        assert_eq!(label(Action::Play, &query(&publish)), Err("missing"));
        // A play key used to sign a publish URL of the same scheme.
        let same = resolved(Scheme::Hmac, Scheme::Hmac);
        let url = hmac::sign_url("rtmp://h/live/cam", "play-key", Action::Publish, t).unwrap();
        let refused = check(&same, Action::Publish, "live", "cam", &query(&url), at(t)).map_err(|e| e.label());
        assert_eq!(refused, Err("forged"));
        // Late by more than the default skew (5 minutes).
        let late = check(&config, Action::Play, "live", "cam", &query(&play), at(t + 600 + 301));
        assert_eq!(late.map_err(|e| e.label()), Err("expired"));
        let in_skew = check(&config, Action::Play, "live", "cam", &query(&play), at(t + 600 + 300));
        assert_eq!(in_skew, Ok(()));
    }

    #[test]
    fn the_readme_worked_examples() {
        // README "Signed URLs": the URLs an operator builds by hand there verify here.
        let key = |scheme, key: &str| SignRule {
            scheme,
            key: key.into(),
            ..SignRule::default()
        };
        let config = |publish, play| ResolvedSign { publish, play };
        let ali = config(key(Scheme::Alibaba, "pub-secret"), SignRule::default());
        let query = "auth_key=1767225600-0-0-ed2d7bc3873fc3fc207722fed39afa38";
        assert_eq!(
            check(&ali, Action::Publish, "live", "cam", query, at(1_767_225_600 + 1800)),
            Ok(())
        );
        let tx = config(SignRule::default(), key(Scheme::Tencent, "play-secret"));
        let query = "txSecret=51c93f49cac8d2350d3c6689a2b49c53&txTime=6955C710";
        assert_eq!(
            check(&tx, Action::Play, "live", "cam", query, at(1_767_229_200)),
            Ok(())
        );
        let mac = config(SignRule::default(), key(Scheme::Hmac, "hmac-secret"));
        let query = "expires=1767229200&sign=3f08cdf17691f33c8a93aef7e3163bac669a7fd550e79e241aafb7fce1b97751";
        assert_eq!(
            check(&mac, Action::Play, "live", "cam", query, at(1_767_229_200)),
            Ok(())
        );
    }

    #[test]
    fn secret_params_put_the_configured_ones_first_once() {
        let names = secret_params(&resolved(Scheme::Hmac, Scheme::Tencent));
        assert_eq!(&names[..3], ["sign", "txSecret", "auth_key"]);
        assert_eq!(names.iter().filter(|n| **n == "sign").count(), 1);
        assert!(names.contains(&"token"));
        let none = secret_params(&ResolvedSign::default());
        assert_eq!(none[0], "auth_key");
        let query = "?vhost=v&auth_key=1-0-0-abc&txSecret=f85a&txTime=5C271099&expires=1&sign=ab&token=t";
        assert_eq!(
            redact(query, &none),
            "?vhost=v&auth_key=***&txSecret=***&txTime=5C271099&expires=1&sign=***&token=***"
        );
    }
}
