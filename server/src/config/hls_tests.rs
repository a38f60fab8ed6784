//! `[hls]` keys of fMP4 and LL-HLS, and `[apps.NAME.hls]`.

use super::*;

#[test]
fn variant_and_low_latency_apply_per_app() {
    let config: Config = toml::from_str(
        "[hls]\nvariant = \"ts\"\npart_ms = 500\n[apps.cam.hls]\nvariant = \"fmp4\"\n[apps.old.hls]\nlow_latency = false\n",
    )
    .unwrap();
    assert!(config.validate().is_ok());
    let global = HlsConfig::for_app(&config, "live");
    assert_eq!(
        (global.variant, global.low_latency, global.part_ms),
        (HlsVariant::Ts, true, 500)
    );
    let cam = HlsConfig::for_app(&config, "cam");
    assert_eq!(
        (cam.variant, cam.low_latency, cam.part_ms),
        (HlsVariant::Fmp4, true, 500)
    );
    let old = HlsConfig::for_app(&config, "old");
    assert_eq!((old.variant, old.low_latency), (HlsVariant::Ts, false));
    assert_eq!(Config::default().hls.variant, HlsVariant::Auto);
}

#[test]
fn part_ms_is_bounded_and_at_most_half_a_fragment() {
    for (text, ok) in [
        ("[hls]\npart_ms = 99\n", false),
        ("[hls]\npart_ms = 100\n", true),
        ("[hls]\npart_ms = 2001\n", false),
        ("[hls]\nfragment_ms = 1000\npart_ms = 600\n", false),
        ("[hls]\nfragment_ms = 1000\npart_ms = 500\n", true),
    ] {
        let config: Config = toml::from_str(text).unwrap();
        assert_eq!(config.validate().is_ok(), ok, "{text}");
    }
    assert!(toml::from_str::<Config>("[hls]\nvariant = \"mkv\"\n").is_err());
    assert!(
        toml::from_str::<Config>("[apps.a.hls]\npart_ms = 200\n").is_err(),
        "part_ms is global"
    );
}
