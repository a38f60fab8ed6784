//! Estuary's generic scheme, for backends that sign URLs themselves:
//!
//! ```text
//! URL?expires={unix_seconds}&sign={signature}
//! signature = HMAC-SHA256(key, "{method}\n{app}\n{stream}\n{expires}")
//! ```
//!
//! - `method` is `publish` or `play`, so a play URL can never publish, even with one key.
//! - `app` and `stream` are the stream key's parts (`live`, `cam`; an app may contain `/`);
//!   `stream` has no `.flv`/`.m3u8`, so one token plays over RTMP, HTTP-FLV and HLS.
//! - `expires` is the expiry in decimal Unix seconds, signed as written in the URL.
//! - The four lines are joined by a single `\n` (0x0A), no trailing newline, UTF-8.
//! - `sign` is the 32-byte MAC as 64 hex digits (either case) or 43 base64url characters
//!   (RFC 4648 §5, `=` padding optional).
//!
//! In a shell: `printf 'play\nlive\ncam\n1700000000' | openssl dgst -sha256 -hmac KEY`.

use crate::admission::action::Action;

use super::clock;
use super::config::{Scheme, SignRule};
use super::digest;
use super::error::{Refuse, SignError};
use super::query::{self, UrlParts};

/// The parameter that carries the signature.
pub const PARAM: &str = "sign";
/// The parameter that carries the expiry.
pub const EXPIRES_PARAM: &str = "expires";

/// The signature (lowercase hex) letting `action` on `app`/`stream` until `expires`.
pub fn signature(key: &str, action: Action, app: &str, stream: &str, expires: u64) -> String {
    digest::to_hex(&mac(key, action, app, stream, &expires.to_string()))
}

/// `url` (`rtmp://host/app/stream`, `http://host/app/stream.flv`, …) with `expires` and
/// `sign` letting `action` until `expires` Unix seconds; `None` when the URL's path names no
/// `/app/stream`.
pub fn sign_url(url: &str, key: &str, action: Action, expires: u64) -> Option<String> {
    let parts = UrlParts::split(url);
    let (app, stream) = parts.app_and_stream()?;
    let sign = signature(key, action, app, stream, expires);
    Some(parts.with_param(&format!("{EXPIRES_PARAM}={expires}&{PARAM}={sign}")))
}

/// Checks the `expires` and `sign` of `query` for `action` on `app`/`stream`.
pub fn verify(
    rule: &SignRule,
    action: Action,
    app: &str,
    stream: &str,
    query: &str,
    now_ms: u64,
) -> Result<(), SignError> {
    let refuse = Refuse {
        action,
        scheme: Scheme::Hmac,
    };
    let once = |name| query::param(query, name).map_err(|_| refuse.malformed("sign or expires appears more than once"));
    let (sign, expires_text) = match (once(PARAM)?, once(EXPIRES_PARAM)?) {
        (None, None) => return Err(refuse.missing(PARAM)),
        (Some(sign), Some(expires)) => (sign, expires),
        _ => return Err(refuse.malformed("sign and expires must come together")),
    };
    let expires = clock::decimal_secs(&expires_text).ok_or(refuse.malformed("expires is not decimal Unix seconds"))?;
    let sign = digest::from_hex::<32>(&sign)
        .or_else(|| digest::from_base64url::<32>(&sign))
        .ok_or(refuse.malformed("sign is neither 64 hex digits nor 43 base64url characters"))?;
    if !rule
        .keys()
        .any(|key| digest::same(&mac(key, action, app, stream, &expires_text), &sign))
    {
        return Err(refuse.forged());
    }
    clock::fresh(expires.saturating_mul(1000), rule.skew_ms, now_ms).map_err(|ago_s| refuse.expired(expires, ago_s))
}

fn mac(key: &str, action: Action, app: &str, stream: &str, expires: &str) -> [u8; 32] {
    let message = format!("{}\n{app}\n{stream}\n{expires}", action.as_str());
    digest::hmac_sha256(key.as_bytes(), message.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed independently with Python's hmac and base64 modules:
    /// `python3 -c 'import hmac,hashlib,base64; d=hmac.new(b"primary-key", b"play\nlive\ncam\n1700000000",
    /// hashlib.sha256).digest(); print(d.hex(), base64.urlsafe_b64encode(d).decode().rstrip("="))'`
    /// (likewise for each key, method and app below).
    const T: u64 = 1_700_000_000;
    const PUBLISH: &str = "f214bb6d2c605a0b504e1bef81366728946ced5d0de6b0aa76a9183cde3271d6";
    const PLAY: &str = "4c7bf7b08d95b37b24b284e85591fd12e34187c778272bb5b8fb988f0abda160";
    const PLAY_B64: &str = "THv3sI2Vs3sksoToVZH9EuNBh8d4Jyu1uPuYjwq9oWA";
    const PLAY_BACKUP: &str = "73737d6593b7ab83b3eded4bebf02c2e8010455621d46992bdca361817f91497";
    const PLAY_BACKUP_B64: &str = "c3N9ZZO3q4Oz7e1L6_AsLoAQRVYh1GmSvco2GBf5FJc";
    const PLAY_NESTED_APP: &str = "1d58c02afb1e8fc6793110bbf77c5d8a82571f93c4b6ffb977bef6b7d5c2ce99"; // app a/b

    fn rule() -> SignRule {
        SignRule {
            scheme: Scheme::Hmac,
            key: "primary-key".into(),
            backup_key: "backup-key".into(),
            skew_ms: 0,
            max_age_ms: 0,
        }
    }

    fn check(action: Action, app: &str, query: &str, now_ms: u64) -> Result<(), &'static str> {
        verify(&rule(), action, app, "cam", query, now_ms).map_err(|e| e.label())
    }

    #[test]
    fn signatures_match_independent_vectors() {
        assert_eq!(signature("primary-key", Action::Publish, "live", "cam", T), PUBLISH);
        assert_eq!(signature("primary-key", Action::Play, "live", "cam", T), PLAY);
        assert_eq!(signature("backup-key", Action::Play, "live", "cam", T), PLAY_BACKUP);
        assert_eq!(signature("primary-key", Action::Play, "a/b", "cam", T), PLAY_NESTED_APP);
        assert_eq!(
            sign_url("http://h:8080/a/b/cam.flv?x=1", "primary-key", Action::Play, T).as_deref(),
            Some(format!("http://h:8080/a/b/cam.flv?x=1&expires={T}&sign={PLAY_NESTED_APP}").as_str())
        );
        assert_eq!(sign_url("rtmp://h/cam", "k", Action::Play, T), None);
    }

    #[test]
    fn accepts_hex_or_base64url_with_either_key() {
        let now = T * 1000;
        for sign in [PLAY, PLAY_B64, PLAY_BACKUP, PLAY_BACKUP_B64, &PLAY.to_uppercase()] {
            assert_eq!(
                check(Action::Play, "live", &format!("?expires={T}&sign={sign}"), now),
                Ok(())
            );
        }
        assert_eq!(
            check(Action::Play, "live", &format!("sign={PLAY_B64}%3D&expires={T}"), now),
            Ok(())
        );
        assert_eq!(
            check(Action::Publish, "live", &format!("expires={T}&sign={PUBLISH}"), now),
            Ok(())
        );
    }

    #[test]
    fn a_token_is_for_one_action_app_and_stream() {
        let now = T * 1000;
        // A play token used to publish, and the reverse, with the very same key.
        assert_eq!(
            check(Action::Publish, "live", &format!("expires={T}&sign={PLAY}"), now),
            Err("forged")
        );
        assert_eq!(
            check(Action::Play, "live", &format!("expires={T}&sign={PUBLISH}"), now),
            Err("forged")
        );
        assert_eq!(
            check(Action::Play, "other", &format!("expires={T}&sign={PLAY}"), now),
            Err("forged")
        );
        let r = rule();
        let other_stream = verify(
            &r,
            Action::Play,
            "live",
            "cam2",
            &format!("expires={T}&sign={PLAY}"),
            now,
        );
        assert_eq!(other_stream.map_err(|e| e.label()), Err("forged"));
        // A later expiry is not signed.
        assert_eq!(
            check(Action::Play, "live", &format!("expires={}&sign={PLAY}", T + 1), now),
            Err("forged")
        );
        let r = SignRule {
            key: "other".into(),
            backup_key: String::new(),
            ..rule()
        };
        let wrong_key = verify(
            &r,
            Action::Play,
            "live",
            "cam",
            &format!("expires={T}&sign={PLAY}"),
            now,
        );
        assert_eq!(wrong_key.map_err(|e| e.label()), Err("forged"));
    }

    #[test]
    fn expiry_with_skew() {
        let query = format!("expires={T}&sign={PLAY}");
        let at = |skew_ms, now_ms| {
            let r = SignRule { skew_ms, ..rule() };
            verify(&r, Action::Play, "live", "cam", &query, now_ms).map_err(|e| e.label())
        };
        assert_eq!(at(0, T * 1000), Ok(()));
        assert_eq!(at(0, T * 1000 + 1), Err("expired"));
        assert_eq!(at(300_000, T * 1000 + 300_000), Ok(()));
        assert_eq!(at(300_000, T * 1000 + 300_001), Err("expired"));
    }

    #[test]
    fn missing_and_malformed() {
        assert_eq!(check(Action::Play, "live", "", 0), Err("missing"));
        assert_eq!(check(Action::Play, "live", "token=x", 0), Err("missing"));
        let malformed = [
            format!("sign={PLAY}"),
            format!("expires={T}"),
            format!("expires=+{T}&sign={PLAY}"),
            format!("expires=1.7e9&sign={PLAY}"),
            format!("expires=99999999999999999999999&sign={PLAY}"),
            format!("expires={T}&sign={}", &PLAY[..63]),
            format!("expires={T}&sign={}x", &PLAY[..63]),
            format!("expires={T}&sign={}", PLAY_B64.replace('T', "+")),
            format!("expires={T}&sign={PLAY}&sign={PLAY}"),
            format!("expires={T}&expires={T}&sign={PLAY}"),
        ];
        for query in malformed {
            assert_eq!(check(Action::Play, "live", &query, 0), Err("malformed"), "{query}");
        }
    }
}
