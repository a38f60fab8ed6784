//! `[sign]`, `[acl]`, their `[apps.NAME.…]` overrides, and how they combine.

use std::net::IpAddr;

use super::*;
use crate::admission::acl::check_ip;
use crate::admission::signing::Scheme;
use crate::admission::Action;

fn parse(text: &str) -> Config {
    toml::from_str(text).unwrap()
}

const APPS: &str = r#"
[sign.publish]
scheme = "hmac"
key = "global-publish"

[acl]
publish_allow = ["10.0.0.0/8"]

[apps.tv.sign.play]
scheme = "tencent"
key = "tv-play"
backup_key = "tv-play-old"

[apps.tv.acl]
publish_allow = ["192.0.2.0/24", "2001:db8::/32"]
play_referers = ["https://tv.example.com"]
"#;

#[test]
fn apps_resolve_over_the_global_sections() {
    let c = parse(APPS);
    c.validate().unwrap();
    let tv = SignConfig::for_app(&c, "tv");
    assert_eq!(tv.publish.scheme, Scheme::Hmac);
    assert_eq!(tv.play.scheme, Scheme::Tencent);
    assert_eq!(tv.play.keys().collect::<Vec<_>>(), ["tv-play", "tv-play-old"]);
    let other = SignConfig::for_app(&c, "live");
    assert_eq!(other.play.scheme, Scheme::None);

    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let tv = AclConfig::for_app(&c, "tv").unwrap();
    assert!(check_ip(&tv, Action::Publish, ip("2001:db8::5")).is_ok());
    assert!(check_ip(&tv, Action::Publish, ip("10.1.1.1")).is_err());
    let live = AclConfig::for_app(&c, "live").unwrap();
    assert!(check_ip(&live, Action::Publish, ip("::ffff:10.1.1.1")).is_ok());
}

#[test]
fn bad_sign_and_acl_values_are_reported_with_their_keys() {
    let c = parse(
        r#"
[sign.play]
scheme = "alibaba"

[acl]
play_deny = ["10.0.0.0/8", "300.0.0.1"]

[apps.tv.sign.publish]
scheme = "tencent"
key = "shared"
[apps.tv.sign.play]
scheme = "tencent"
key = "shared"

[apps.tv.acl]
play_referers = ["tv.example.com"]
"#,
    );
    let problems = c.validate().unwrap_err();
    let starts = |prefix: &str| problems.iter().any(|p| p.starts_with(prefix));
    assert!(starts("sign.play.key must not be empty"), "{problems:?}");
    assert!(starts("acl.play_deny[1]:"), "{problems:?}");
    assert!(
        starts("apps.tv.sign: publish and play both use scheme \"tencent\""),
        "{problems:?}"
    );
    assert!(starts("apps.tv.acl.play_referers[0]:"), "{problems:?}");
    assert_eq!(problems.len(), 4, "{problems:?}");
}

#[test]
fn an_app_that_overrides_one_action_is_checked_against_the_global_other() {
    let c = parse(
        r#"
[sign.publish]
scheme = "alibaba"
key = "k"
[apps.tv.sign.play]
scheme = "alibaba"
key = "k"
"#,
    );
    let problems = c.validate().unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("apps.tv.sign:"), "{problems:?}");
}

#[test]
fn unknown_sign_and_acl_keys_are_refused() {
    for text in [
        "[sign]\nscheme = \"hmac\"\n",
        "[sign.play]\nkeys = []\n",
        "[acl]\nallow = []\n",
        "[apps.x.acl]\nreferers = []\n",
    ] {
        assert!(toml::from_str::<Config>(text).is_err(), "{text}");
    }
}

#[test]
fn keys_stay_out_of_debug_output() {
    let shown = format!("{:?}", parse(APPS));
    assert!(
        !shown.contains("global-publish") && !shown.contains("tv-play"),
        "{shown}"
    );
}
