//! Alibaba Cloud ApsaraVideo Live URL signing, type A
//! (<https://www.alibabacloud.com/help/en/live/user-guide/url-signing>, code samples at
//! <https://www.alibabacloud.com/help/doc-detail/57388.html>):
//!
//! ```text
//! URL?auth_key={timestamp}-{rand}-{uid}-{md5hash}
//! md5hash = lowercase hex of md5("{URI}-{timestamp}-{rand}-{uid}-{key}")
//! ```
//!
//! - `URI` is the request path, the same for push and play: `/app/stream` for RTMP (publish
//!   and play), `/app/stream.flv` for HTTP-FLV, `/app/stream.m3u8` for HLS; Alibaba's PHP
//!   sample signs each play URL over its own path
//!   (<https://www.alibabacloud.com/help/zh/doc-detail/162269.htm>). Estuary accepts, for play,
//!   a token signed over any of the three paths of the stream (they all play the same stream),
//!   and for publish only `/app/stream`.
//! - `timestamp` is decimal Unix seconds. Alibaba's current docs make it the signing time: the
//!   URL expires `validity period` after it (set per domain in their console): our
//!   `max_age_ms`. Their code samples put the expiry itself there (`time() + 3600`): that is
//!   `max_age_ms = 0`.
//! - `rand` (usually `0`, or a UUID without hyphens) and `uid` (unused, `0`) are signed as
//!   written; neither may contain `-`.
//! - Primary and secondary keys verify alike (their console's rotation): `key`, `backup_key`.

use crate::admission::action::Action;

use super::clock;
use super::config::{Scheme, SignRule};
use super::digest;
use super::error::{Refuse, SignError};
use super::query::{self, UrlParts};

/// The parameter that carries the token.
pub const PARAM: &str = "auth_key";

/// Longest `rand` or `uid` accepted (Volcengine's type A, the same scheme, allows 100).
const MAX_FIELD: usize = 100;

/// The `auth_key` value for `uri` (a path starting with `/`) signed with `key`.
pub fn auth_key(key: &str, uri: &str, timestamp: u64, rand: &str, uid: &str) -> String {
    let timestamp = timestamp.to_string();
    let hash = md5hash(key, uri, &timestamp, rand, uid);
    format!("{timestamp}-{rand}-{uid}-{}", digest::to_hex(&hash))
}

/// `url` (`rtmp://host/app/stream`, `http://host/app/stream.flv`, … or just the path) with an
/// `auth_key` signed over its path, `rand` and `uid` `0`, as Alibaba's samples make them.
pub fn sign_url(url: &str, key: &str, timestamp: u64) -> String {
    let parts = UrlParts::split(url);
    let uri = if parts.path.is_empty() { "/" } else { parts.path };
    parts.with_param(&format!("{PARAM}={}", auth_key(key, uri, timestamp, "0", "0")))
}

/// Checks the `auth_key` of `query` for `action` on `app`/`stream`.
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
        scheme: Scheme::Alibaba,
    };
    let value = query::param(query, PARAM)
        .map_err(|_| refuse.malformed("auth_key appears more than once"))?
        .ok_or(refuse.missing(PARAM))?;
    let token = Token::parse(&value).map_err(|reason| refuse.malformed(reason))?;
    let base = format!("/{app}/{stream}");
    let uris = match action {
        Action::Publish => vec![base],
        Action::Play => vec![format!("{base}.flv"), format!("{base}.m3u8"), base],
    };
    let authentic = rule.keys().any(|key| {
        uris.iter()
            .any(|uri| digest::same(&md5hash(key, uri, token.timestamp, token.rand, token.uid), &token.hash))
    });
    if !authentic {
        return Err(refuse.forged());
    }
    let expires_ms = token.secs.saturating_mul(1000).saturating_add(rule.max_age_ms);
    clock::fresh(expires_ms, rule.skew_ms, now_ms).map_err(|ago_s| refuse.expired(expires_ms / 1000, ago_s))
}

fn md5hash(key: &str, uri: &str, timestamp: &str, rand: &str, uid: &str) -> [u8; 16] {
    let dash: &[u8] = b"-";
    digest::md5(&[
        uri.as_bytes(),
        dash,
        timestamp.as_bytes(),
        dash,
        rand.as_bytes(),
        dash,
        uid.as_bytes(),
        dash,
        key.as_bytes(),
    ])
}

/// An `auth_key` value read but not yet checked; the text fields are signed as written.
struct Token<'a> {
    timestamp: &'a str,
    secs: u64,
    rand: &'a str,
    uid: &'a str,
    hash: [u8; 16],
}

impl<'a> Token<'a> {
    fn parse(value: &'a str) -> Result<Token<'a>, &'static str> {
        let fields: Vec<&str> = value.split('-').collect();
        let [timestamp, rand, uid, hash] = fields[..] else {
            return Err("auth_key must be timestamp-rand-uid-md5hash");
        };
        let secs = clock::decimal_secs(timestamp).ok_or("the auth_key timestamp is not decimal Unix seconds")?;
        for field in [rand, uid] {
            if field.is_empty() || field.len() > MAX_FIELD {
                return Err("the auth_key rand and uid must be 1 to 100 characters");
            }
        }
        let hash = digest::from_hex::<16>(hash).ok_or("the auth_key md5hash is not 32 hex digits")?;
        Ok(Token {
            timestamp,
            secs,
            rand,
            uid,
            hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed independently with Python's hashlib:
    /// `python3 -c 'import hashlib; print(hashlib.md5(b"/live/cam-1700000000-0-0-primary-key").hexdigest())'`
    /// (likewise for each URI and key below).
    const T: u64 = 1_700_000_000;
    const CAM: &str = "feecacecde6d55cb807487e6eebc5d6b"; // /live/cam, primary-key
    const CAM_BACKUP: &str = "421e75a392eee55db082acb7b82f0893"; // /live/cam, backup-key
    const CAM_FLV: &str = "bad857a11181e082c2fab3fea6bb3159"; // /live/cam.flv, primary-key
    const CAM_M3U8_BACKUP: &str = "867f95c2506a67520d1c4b9ca8736ab1"; // /live/cam.m3u8, backup-key

    fn rule(max_age_ms: u64) -> SignRule {
        SignRule {
            scheme: Scheme::Alibaba,
            key: "primary-key".into(),
            backup_key: "backup-key".into(),
            skew_ms: 0,
            max_age_ms,
        }
    }

    fn check(action: Action, app: &str, query: &str, now_secs: u64) -> Result<(), &'static str> {
        verify(&rule(0), action, app, "cam", query, now_secs * 1000).map_err(|e| e.label())
    }

    #[test]
    fn alibabas_published_example() {
        // https://help.aliyun.com/document_detail/199349.htm ("示例说明"): key aliyunliveexp1234,
        // rtmp://demo.aliyundoc.com/video/standard, timestamp 1622194197, rand = uid = 0; the
        // page prints the hash as 5552ff52b5e… (cut there); hashlib gives the rest.
        assert_eq!(
            auth_key("aliyunliveexp1234", "/video/standard", 1_622_194_197, "0", "0"),
            "1622194197-0-0-5552ff52b5e4e20387c6dc18afce206b"
        );
        let query = "auth_key=1622194197-0-0-5552ff52b5e4e20387c6dc18afce206b";
        let r = SignRule {
            key: "aliyunliveexp1234".into(),
            backup_key: String::new(),
            ..rule(2_400_000) // the example's 40-minute validity
        };
        assert_eq!(
            verify(&r, Action::Publish, "video", "standard", query, 1_622_194_197_000),
            Ok(())
        );
    }

    #[test]
    fn huawei_cloud_type_a_example_flv_with_a_uuid_rand() {
        // Huawei Cloud Live's "鉴权方式A" is the same algorithm and publishes a full vector for an
        // HTTP-FLV URI with a UUID rand (http://test-play.example.com/livetest/huawei1.flv, key
        // GCTbw44s6MPLh4GqgDpnfuFHgy25Enly):
        // https://huaweicloud.com/guide/productsdesc-bms_46afc49632ab0b1b591f7dcabb7f9812support1
        let rand = "477b3bbc253f467b8def6711128c7bec";
        let value = auth_key(
            "GCTbw44s6MPLh4GqgDpnfuFHgy25Enly",
            "/livetest/huawei1.flv",
            1_592_639_100,
            rand,
            "0",
        );
        assert_eq!(value, format!("1592639100-{rand}-0-dd1b5ffa00cf26acec0c169ae1cfabea"));
        let r = SignRule {
            key: "GCTbw44s6MPLh4GqgDpnfuFHgy25Enly".into(),
            ..rule(1_800_000)
        };
        let query = format!("auth_key={value}");
        assert_eq!(
            verify(&r, Action::Play, "livetest", "huawei1", &query, 1_592_639_100_000),
            Ok(())
        );
    }

    #[test]
    fn play_accepts_the_rtmp_flv_and_hls_paths_with_either_key() {
        for hash in [CAM, CAM_BACKUP, CAM_FLV, CAM_M3U8_BACKUP] {
            assert_eq!(
                check(Action::Play, "live", &format!("?auth_key={T}-0-0-{hash}"), T),
                Ok(())
            );
        }
        // Upper-case hex is the same digest.
        let upper = format!("auth_key={T}-0-0-{}", CAM.to_uppercase());
        assert_eq!(check(Action::Play, "live", &upper, T), Ok(()));
    }

    #[test]
    fn publish_accepts_only_the_rtmp_path() {
        assert_eq!(
            check(Action::Publish, "live", &format!("auth_key={T}-0-0-{CAM}"), T),
            Ok(())
        );
        assert_eq!(
            check(Action::Publish, "live", &format!("auth_key={T}-0-0-{CAM_BACKUP}"), T),
            Ok(())
        );
        assert_eq!(
            check(Action::Publish, "live", &format!("auth_key={T}-0-0-{CAM_FLV}"), T),
            Err("forged")
        );
    }

    #[test]
    fn forged_wrong_app_wrong_key_and_tampered_fields() {
        let ok = format!("auth_key={T}-0-0-{CAM}");
        assert_eq!(check(Action::Play, "other", &ok, T), Err("forged"));
        // A token made with a key that is not configured (the play key, say).
        let play_key = "auth_key=1700000000-0-0-ffe873d99d222f900d5fdf286a0c7bf1";
        assert_eq!(check(Action::Publish, "live", play_key, T), Err("forged"));
        // Changing a signed field breaks the signature.
        for tampered in [
            format!("auth_key={}-0-0-{CAM}", T + 1),
            format!("auth_key={T}-1-0-{CAM}"),
        ] {
            assert_eq!(check(Action::Play, "live", &tampered, T), Err("forged"));
        }
    }

    #[test]
    fn expiry_is_timestamp_plus_max_age_plus_skew() {
        let query = format!("auth_key={T}-0-0-{CAM}");
        let at = |max_age_ms, skew_ms, now_ms| {
            let r = SignRule {
                skew_ms,
                ..rule(max_age_ms)
            };
            verify(&r, Action::Play, "live", "cam", &query, now_ms).map_err(|e| e.label())
        };
        assert_eq!(at(0, 0, T * 1000), Ok(()));
        assert_eq!(at(0, 0, T * 1000 + 1), Err("expired"));
        assert_eq!(at(1_800_000, 0, T * 1000 + 1_800_000), Ok(()));
        assert_eq!(at(1_800_000, 0, T * 1000 + 1_800_001), Err("expired"));
        assert_eq!(at(1_800_000, 300_000, T * 1000 + 2_100_000), Ok(()));
        assert_eq!(at(1_800_000, 300_000, T * 1000 + 2_100_001), Err("expired"));
        // A timestamp in the future is Alibaba's way to lengthen a URL's life: accepted.
        assert_eq!(at(0, 0, 0), Ok(()));
        let r = SignRule { skew_ms: 0, ..rule(0) };
        let e = verify(&r, Action::Play, "live", "cam", &query, (T + 90) * 1000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "play signature (alibaba) expired at Unix time 1700000000 (90 s ago)"
        );
    }

    #[test]
    fn missing_and_malformed() {
        assert_eq!(check(Action::Play, "live", "", T), Err("missing"));
        assert_eq!(check(Action::Play, "live", "?token=abc", T), Err("missing"));
        let malformed = [
            format!("auth_key={T}-0-{CAM}"),
            format!("auth_key={T}-0-0-0-{CAM}"),
            format!("auth_key=soon-0-0-{CAM}"),
            format!("auth_key=99999999999999999999-0-0-{CAM}"),
            format!("auth_key=-1-0-0-{CAM}"),
            format!("auth_key={T}--0-{CAM}"),
            format!("auth_key={T}-{}-0-{CAM}", "r".repeat(101)),
            format!("auth_key={T}-0-0-{}", &CAM[..31]),
            format!("auth_key={T}-0-0-{}g", &CAM[..31]),
            format!("auth_key={T}-0-0-{CAM}&auth_key={T}-0-0-{CAM}"),
            "auth_key=".to_string(),
        ];
        for query in malformed {
            assert_eq!(check(Action::Play, "live", &query, T), Err("malformed"), "{query}");
        }
    }

    #[test]
    fn messages_never_show_the_key_or_the_token() {
        let queries = [
            format!("auth_key={T}-0-0-{CAM}"),
            format!("auth_key={T}-0-0-{}", &CAM[..30]),
            String::new(),
        ];
        for query in queries {
            for now in [T, T + 10] {
                if let Err(e) = verify(&rule(0), Action::Publish, "x", "cam", &query, now * 1000) {
                    let shown = format!("{e} {e:?}");
                    assert!(!shown.contains("key-") && !shown.contains(&CAM[..8]), "{shown}");
                    assert!(!shown.contains("primary") && !shown.contains("backup"), "{shown}");
                }
            }
        }
    }

    #[test]
    fn sign_url_signs_the_path_as_alibabas_sample_does() {
        assert_eq!(
            sign_url("rtmp://push.example.com/live/cam", "primary-key", T),
            format!("rtmp://push.example.com/live/cam?auth_key={T}-0-0-{CAM}")
        );
        assert_eq!(
            sign_url("http://play.example.com/live/cam.flv?a=1", "primary-key", T),
            format!("http://play.example.com/live/cam.flv?a=1&auth_key={T}-0-0-{CAM_FLV}")
        );
        let signed = sign_url("rtmp://push.example.com/live/cam", "primary-key", T);
        let query = UrlParts::split(&signed).query;
        assert_eq!(check(Action::Publish, "live", query, T), Ok(()));
    }
}
