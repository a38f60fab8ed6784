//! Tencent Cloud CSS hotlink protection
//! (<https://www.tencentcloud.com/document/product/267/31560>, "Hotlink Protection URL
//! Calculation"):
//!
//! ```text
//! URL?txSecret={md5hash}&txTime={hex}
//! md5hash = lowercase hex of md5(KEY + StreamName + txTime)
//! ```
//!
//! - `StreamName` is the stream name alone: no app, no `.flv`/`.m3u8`, so one token plays the
//!   stream over RTMP, HTTP-FLV and HLS (playlist and segments alike).
//! - `txTime` is the expiry in Unix seconds, 8 hex digits (Tencent writes them in upper case,
//!   `5C271099`; either case is accepted), or, as Tencent's current page also allows, 10
//!   decimal digits (`1694669601`). The length tells which: read as hex, a 10-digit decimal
//!   time would be an expiry thousands of years away. It is signed as written, so `5c271099`
//!   and `5C271099` are two different tokens for the same second.
//! - Push and play keys are separate in Tencent's console; each has a primary and a backup
//!   key (<https://www.tencentcloud.com/document/product/267/31059>): `key`, `backup_key`.
//! - Tencent adds the key's "validity period" to `txTime`; here the expiry is `txTime` plus
//!   `skew_ms`, and `max_age_ms` is not used.

use crate::admission::action::Action;

use super::clock;
use super::config::{Scheme, SignRule};
use super::digest;
use super::error::{Refuse, SignError};
use super::query::{self, UrlParts};

/// The parameter that carries the signature (the secret part of the token).
pub const PARAM: &str = "txSecret";
/// The parameter that carries the expiry.
pub const TIME_PARAM: &str = "txTime";

/// The `txSecret` of `stream` expiring at `tx_time` (hex, as it will appear in the URL).
pub fn tx_secret(key: &str, stream: &str, tx_time: &str) -> String {
    digest::to_hex(&md5hash(key, stream, tx_time))
}

/// `url` (`rtmp://host/app/stream`, `http://host/app/stream.m3u8`, …) with `txSecret` and
/// `txTime` (upper-case hex, as Tencent writes it) expiring at `expires` Unix seconds; `None`
/// when the URL's path names no `/app/stream`.
pub fn sign_url(url: &str, key: &str, expires: u64) -> Option<String> {
    let parts = UrlParts::split(url);
    let (_, stream) = parts.app_and_stream()?;
    let tx_time = format!("{expires:X}");
    let secret = tx_secret(key, stream, &tx_time);
    Some(parts.with_param(&format!("{PARAM}={secret}&{TIME_PARAM}={tx_time}")))
}

/// Checks the `txSecret` and `txTime` of `query` for `stream`; `action` only names the rule in
/// errors (Tencent tokens do not say what they allow: the push and play keys do).
pub fn verify(rule: &SignRule, action: Action, stream: &str, query: &str, now_ms: u64) -> Result<(), SignError> {
    let refuse = Refuse {
        action,
        scheme: Scheme::Tencent,
    };
    let once =
        |name| query::param(query, name).map_err(|_| refuse.malformed("txSecret or txTime appears more than once"));
    let (secret, tx_time) = match (once(PARAM)?, once(TIME_PARAM)?) {
        (None, None) => return Err(refuse.missing(PARAM)),
        (Some(secret), Some(tx_time)) => (secret, tx_time),
        _ => return Err(refuse.malformed("txSecret and txTime must come together")),
    };
    let expires = tx_time_secs(&tx_time).ok_or(refuse.malformed("txTime is not 8 hex or 10 decimal digits"))?;
    let secret = digest::from_hex::<16>(&secret).ok_or(refuse.malformed("txSecret is not 32 hex digits"))?;
    if !rule
        .keys()
        .any(|key| digest::same(&md5hash(key, stream, &tx_time), &secret))
    {
        return Err(refuse.forged());
    }
    clock::fresh(expires.saturating_mul(1000), rule.skew_ms, now_ms).map_err(|ago_s| refuse.expired(expires, ago_s))
}

/// Unix seconds from 8 hex digits (2^32 s reach 2106) or 10 decimal digits (2001 to 2286).
fn tx_time_secs(text: &str) -> Option<u64> {
    match text.len() {
        8 => clock::hex_secs(text),
        10 => clock::decimal_secs(text),
        _ => None,
    }
}

fn md5hash(key: &str, stream: &str, tx_time: &str) -> [u8; 16] {
    digest::md5(&[key.as_bytes(), stream.as_bytes(), tx_time.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1700000000 is 6553F100. Vectors computed independently with Python's hashlib:
    /// `python3 -c 'import hashlib; print(hashlib.md5(b"primary-keycam6553F100").hexdigest())'`
    /// (likewise for each key and spelling below).
    const T: u64 = 1_700_000_000;
    const CAM: &str = "46bca2fd544ea3615af33e488a4bddff"; // primary-key, cam, 6553F100
    const CAM_BACKUP: &str = "c00becd94792cfe2ccf9a4321d3fa0a5"; // backup-key, cam, 6553F100
    const CAM_LOWER: &str = "04f0162c6988bd4ec76633ac9ad4349f"; // primary-key, cam, 6553f100
    const CAM_PLAY_KEY: &str = "b50b01258ac8e57edaa5b5cd5e75e9ee"; // play-key, cam, 6553F100
    const CAM_DECIMAL: &str = "f79d5c3ba73981364dc086ffafd0da98"; // primary-key, cam, 1700000000

    fn rule() -> SignRule {
        SignRule {
            scheme: Scheme::Tencent,
            key: "primary-key".into(),
            backup_key: "backup-key".into(),
            skew_ms: 0,
            max_age_ms: 0,
        }
    }

    fn check(stream: &str, query: &str, now_ms: u64) -> Result<(), &'static str> {
        verify(&rule(), Action::Play, stream, query, now_ms).map_err(|e| e.label())
    }

    #[test]
    fn tencents_published_example() {
        // https://www.tencentcloud.com/document/product/267/31560: KEY
        // e12c46f2612d5106e2034781ab261ca3, StreamName test, txTime 5C271099 gives
        // txSecret f85a2ab363fe4deaffef9754d79da6fe, in
        // rtmp://livepush.tcloud.com/live/test?txSecret=f85a2ab363fe4deaffef9754d79da6fe&txTime=5C271099
        let key = "e12c46f2612d5106e2034781ab261ca3";
        assert_eq!(tx_secret(key, "test", "5C271099"), "f85a2ab363fe4deaffef9754d79da6fe");
        assert_eq!(
            sign_url("rtmp://livepush.tcloud.com/live/test", key, 0x5C27_1099).as_deref(),
            Some("rtmp://livepush.tcloud.com/live/test?txSecret=f85a2ab363fe4deaffef9754d79da6fe&txTime=5C271099")
        );
        let r = SignRule {
            key: key.into(),
            ..rule()
        };
        let query = "txSecret=f85a2ab363fe4deaffef9754d79da6fe&txTime=5C271099";
        assert_eq!(verify(&r, Action::Publish, "test", query, 1_546_064_025_000), Ok(()));
    }

    #[test]
    fn either_key_either_hex_case_any_play_format() {
        let now = T * 1000;
        assert_eq!(check("cam", &format!("?txSecret={CAM}&txTime=6553F100"), now), Ok(()));
        assert_eq!(
            check("cam", &format!("txTime=6553F100&txSecret={CAM_BACKUP}"), now),
            Ok(())
        );
        assert_eq!(
            check("cam", &format!("txSecret={CAM_LOWER}&txTime=6553f100"), now),
            Ok(())
        );
        assert_eq!(
            check("cam", &format!("txSecret={}&txTime=6553F100", CAM.to_uppercase()), now),
            Ok(())
        );
        // Tencent's decimal form of the same second.
        assert_eq!(
            check("cam", &format!("txSecret={CAM_DECIMAL}&txTime=1700000000"), now),
            Ok(())
        );
        assert_eq!(
            check("cam", &format!("txSecret={CAM_DECIMAL}&txTime=1700000000"), now + 1),
            Err("expired")
        );
        // txTime is signed as written: the other spelling of the same second is another token.
        assert_eq!(
            check("cam", &format!("txSecret={CAM}&txTime=6553f100"), now),
            Err("forged")
        );
        // The name is the whole signed resource: the same query plays .flv, .m3u8 and RTMP.
        let url = sign_url("http://play.example.com/live/cam.m3u8", "primary-key", T).unwrap();
        assert_eq!(
            url,
            format!("http://play.example.com/live/cam.m3u8?txSecret={CAM}&txTime=6553F100")
        );
        assert_eq!(sign_url("http://play.example.com/cam.flv", "k", T), None);
    }

    #[test]
    fn forged_other_stream_and_other_key() {
        let now = T * 1000;
        assert_eq!(
            check("cam2", &format!("txSecret={CAM}&txTime=6553F100"), now),
            Err("forged")
        );
        assert_eq!(
            check("cam", &format!("txSecret={CAM}&txTime=6553F101"), now),
            Err("forged")
        );
        assert_eq!(
            check("cam", &format!("txSecret={CAM_PLAY_KEY}&txTime=6553F100"), now),
            Err("forged")
        );
    }

    #[test]
    fn expiry_with_skew() {
        let query = format!("txSecret={CAM}&txTime=6553F100");
        let at = |skew_ms, now_ms| {
            let r = SignRule { skew_ms, ..rule() };
            verify(&r, Action::Play, "cam", &query, now_ms).map_err(|e| e.label())
        };
        assert_eq!(at(0, T * 1000), Ok(()));
        assert_eq!(at(0, T * 1000 + 1), Err("expired"));
        assert_eq!(at(300_000, T * 1000 + 300_000), Ok(()));
        assert_eq!(at(300_000, T * 1000 + 300_001), Err("expired"));
    }

    #[test]
    fn missing_and_malformed() {
        assert_eq!(check("cam", "", 0), Err("missing"));
        assert_eq!(check("cam", "?vhost=x", 0), Err("missing"));
        let malformed = [
            format!("txSecret={CAM}"),
            "txTime=6553F100".to_string(),
            format!("txSecret={CAM}&txTime=0x6553F100"),
            format!("txSecret={CAM}&txTime=later"),
            format!("txSecret={CAM}&txTime=FFFFFFFFFFFFFFFF"),
            format!("txSecret={CAM}&txTime=6553F10"),
            format!("txSecret={CAM}&txTime=06553F100"),
            format!("txSecret={CAM}&txTime=170000000A"),
            format!("txSecret={CAM}&txTime=17000000000"),
            format!("txSecret={CAM}&txTime=6553F100&txTime=6553F100"),
            format!("txSecret={}&txTime=6553F100", &CAM[..31]),
            format!("txSecret={}z&txTime=6553F100", &CAM[..31]),
        ];
        for query in malformed {
            assert_eq!(check("cam", &query, 0), Err("malformed"), "{query}");
        }
    }
}
