use std::net::IpAddr;

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn acl(toml_text: &str) -> ResolvedAcl {
    let config: AclConfig = toml::from_str(toml_text).unwrap();
    config.compile("acl").unwrap()
}

fn label(result: Result<(), AclError>) -> Result<(), &'static str> {
    result.map_err(|e| e.label())
}

#[test]
fn empty_lists_let_everyone_in() {
    let open = acl("");
    assert_eq!(open, ResolvedAcl::default());
    for action in [Action::Publish, Action::Play] {
        assert_eq!(check_ip(&open, action, ip("203.0.113.9")), Ok(()));
        assert_eq!(check_ip(&open, action, ip("2001:db8::9")), Ok(()));
    }
    assert_eq!(check_referer(&open, Some("https://evil.test"), None), Ok(()));
}

#[test]
fn deny_wins_over_allow() {
    let a = acl("publish_allow = [\"10.0.0.0/8\"]\npublish_deny = [\"10.6.0.0/16\", \"10.9.9.9\"]\n");
    assert_eq!(check_ip(&a, Action::Publish, ip("10.1.2.3")), Ok(()));
    assert_eq!(label(check_ip(&a, Action::Publish, ip("10.6.7.8"))), Err("acl_deny"));
    assert_eq!(label(check_ip(&a, Action::Publish, ip("10.9.9.9"))), Err("acl_deny"));
    assert_eq!(
        label(check_ip(&a, Action::Publish, ip("192.0.2.1"))),
        Err("acl_not_allowed")
    );
    // Publish lists say nothing about play.
    assert_eq!(check_ip(&a, Action::Play, ip("192.0.2.1")), Ok(()));
    assert_eq!(check_ip(&a, Action::Play, ip("10.9.9.9")), Ok(()));
    let e = check_ip(&a, Action::Publish, ip("10.6.7.8")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "10.6.7.8 may not publish: it matches publish_deny entry 10.6.0.0/16"
    );
    let e = check_ip(&a, Action::Publish, ip("192.0.2.1")).unwrap_err();
    assert_eq!(e.to_string(), "192.0.2.1 may not publish: it is not in publish_allow");
}

#[test]
fn deny_alone_denies_only_what_it_lists() {
    let a = acl("play_deny = [\"198.51.100.0/24\", \"2001:db8:bad::/48\"]\n");
    assert_eq!(label(check_ip(&a, Action::Play, ip("198.51.100.7"))), Err("acl_deny"));
    assert_eq!(
        label(check_ip(&a, Action::Play, ip("2001:db8:bad:1::5"))),
        Err("acl_deny")
    );
    assert_eq!(check_ip(&a, Action::Play, ip("2001:db8:600d::5")), Ok(()));
    assert_eq!(check_ip(&a, Action::Play, ip("198.51.101.7")), Ok(()));
}

#[test]
fn ipv6_and_mapped_peers() {
    let a = acl("publish_allow = [\"127.0.0.1\", \"::1\", \"192.168.0.0/16\", \"fd00::/8\"]\n");
    for peer in [
        "127.0.0.1",
        "::1",
        "192.168.4.5",
        "::ffff:192.168.4.5",
        "::ffff:127.0.0.1",
        "fd12:3456::1",
    ] {
        assert_eq!(check_ip(&a, Action::Publish, ip(peer)), Ok(()), "{peer}");
    }
    for peer in ["::ffff:10.0.0.1", "2001:db8::1", "::2", "fe80::1"] {
        assert_eq!(
            label(check_ip(&a, Action::Publish, ip(peer))),
            Err("acl_not_allowed"),
            "{peer}"
        );
    }
    // A mapped peer is reported as the IPv4 client it is.
    let e = check_ip(&a, Action::Publish, ip("::ffff:10.0.0.1")).unwrap_err();
    assert!(e.to_string().starts_with("10.0.0.1 "), "{e}");
    let deny = acl("play_deny = [\"::ffff:203.0.113.0/120\"]\n");
    assert_eq!(
        label(check_ip(&deny, Action::Play, ip("203.0.113.77"))),
        Err("acl_deny")
    );
    assert_eq!(
        label(check_ip(&deny, Action::Play, ip("::ffff:203.0.113.77"))),
        Err("acl_deny")
    );
}

#[test]
fn referers_when_listed() {
    let a = acl("play_referers = [\"https://example.com\", \"*.example.com\", \"http://localhost:3000\"]\n");
    let ok = |origin, referer| check_referer(&a, origin, referer);
    assert_eq!(ok(Some("https://example.com"), None), Ok(()));
    assert_eq!(
        ok(None, Some("https://www.example.com/live/player.html?token=abc")),
        Ok(())
    );
    assert_eq!(ok(Some("http://localhost:3000"), None), Ok(()));
    // Origin wins over Referer.
    assert_eq!(
        label(ok(Some("https://evil.test"), Some("https://example.com/"))),
        Err("referer")
    );
    assert_eq!(ok(Some("https://example.com"), Some("https://evil.test/")), Ok(()));
    // Absent (or empty) headers: let in by default (ffmpeg, VLC).
    assert_eq!(ok(None, None), Ok(()));
    assert_eq!(ok(Some(""), Some(" ")), Ok(()));
    for (origin, referer) in [
        (Some("null"), None),
        (None, Some("https://example.com.evil.test/")),
        (None, Some("https://example.com@evil.test/")),
        (Some("http://example.com"), None),
        (Some("https://example.com:8443"), None),
    ] {
        assert_eq!(label(ok(origin, referer)), Err("referer"), "{origin:?} {referer:?}");
    }
}

#[test]
fn a_refused_referer_is_logged_as_its_origin_only() {
    let a = acl("play_referers = [\"https://example.com\"]\n");
    let e = check_referer(&a, None, Some("https://other.test/page?token=secret-token")).unwrap_err();
    assert_eq!(e.to_string(), "origin https://other.test:443 is not in play_referers");
    let e = check_referer(&a, Some("null"), None).unwrap_err();
    assert!(!e.to_string().contains("null"), "{e}");
}

#[test]
fn allow_empty_referer_false_needs_a_header() {
    let a = acl("play_referers = [\"https://example.com\"]\nallow_empty_referer = false\n");
    assert_eq!(check_referer(&a, None, None), Err(AclError::NoReferer));
    assert_eq!(check_referer(&a, Some(""), None), Err(AclError::NoReferer));
    assert_eq!(check_referer(&a, None, Some("https://example.com/x")), Ok(()));
    // Without a list there is no referer rule at all.
    let off = acl("allow_empty_referer = false\n");
    assert_eq!(check_referer(&off, None, None), Ok(()));
}

#[test]
fn an_app_replaces_whole_lists() {
    let global: AclConfig =
        toml::from_str("publish_allow = [\"10.0.0.0/8\"]\nplay_deny = [\"192.0.2.0/24\"]\n").unwrap();
    let over: AclOverride =
        toml::from_str("publish_allow = [\"172.16.0.0/12\"]\nallow_empty_referer = false\n").unwrap();
    let merged = global.resolve(Some(&over));
    assert_eq!(merged.publish_allow, ["172.16.0.0/12"]);
    assert_eq!(merged.play_deny, global.play_deny);
    assert!(!merged.allow_empty_referer);
    let app = merged.compile("apps.live.acl").unwrap();
    assert_eq!(
        label(check_ip(&app, Action::Publish, ip("10.0.0.1"))),
        Err("acl_not_allowed")
    );
    assert_eq!(check_ip(&app, Action::Publish, ip("172.16.5.5")), Ok(()));
    assert_eq!(label(check_ip(&app, Action::Play, ip("192.0.2.9"))), Err("acl_deny"));
    // An empty list set by the app clears the global one.
    let cleared: AclOverride = toml::from_str("publish_allow = []\n").unwrap();
    let app = global.resolve(Some(&cleared)).compile("apps.open.acl").unwrap();
    assert_eq!(check_ip(&app, Action::Publish, ip("203.0.113.1")), Ok(()));
    assert_eq!(global.resolve(None), global);
}

#[test]
fn invalid_entries_are_refused_with_their_key() {
    let bad: AclConfig = toml::from_str(
        "publish_allow = [\"10.0.0.0/8\", \"10.0.0.300\"]\nplay_deny = [\"10.1.2.3/8\"]\nplay_referers = [\"example.com\"]\n",
    )
    .unwrap();
    let problems = bad.validate();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems[0].starts_with("acl.publish_allow[1]: \"10.0.0.300\""),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("acl.play_deny[0]: \"10.1.2.3/8\" has host bits set"),
        "{problems:?}"
    );
    assert!(
        problems[2].starts_with("acl.play_referers[0]: \"example.com\""),
        "{problems:?}"
    );
    let over: AclOverride = toml::from_str("play_allow = [\"::1/200\"]\n").unwrap();
    let problems = over.validate("live");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("apps.live.acl.play_allow[0]:"), "{problems:?}");
    assert!(AclOverride::default().validate("live").is_empty());
    assert!(AclConfig::default().validate().is_empty());
    let e = toml::from_str::<AclConfig>("play_deny = \"10.0.0.0/8\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("play_deny"), "{e}");
    let e = toml::from_str::<AclConfig>("deny = []\n").unwrap_err().to_string();
    assert!(e.contains("deny"), "{e}");
}
