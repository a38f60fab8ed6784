//! `[record]`, `[apps.NAME.record]` and how they combine.

use super::*;
use crate::recordings::RecordingFormat;

fn parse(text: &str) -> Config {
    toml::from_str(text).unwrap()
}

const TWO_APPS: &str = r#"
[record]
root = "/var/lib/estuary"
format = "flv"
retention_days = 30

[[record.schedules]]
app = "live"
stream = "news"
cron = "0 19 * * MON-FRI"
duration_secs = 7200
timezone = "Europe/Berlin"

[[record.schedules]]
app = "tv"
stream = "weather"
cron = "@hourly"
duration_secs = 300

[apps.tv.record]
enabled = true
plan = "segment"
segment_minutes = 15
format = "mp4"

[[apps.tv.record.schedules]]
stream = "late"
cron = "0 23 * * *"
stop_cron = "0 1 * * *"
"#;

#[test]
fn defaults() {
    let c = RecordConfig::default();
    assert_eq!(
        (c.root.as_str(), c.enabled, c.format, c.plan),
        ("recordings", false, RecordingFormat::Mp4, RecordPlan::Session)
    );
    assert_eq!((c.segment_minutes, c.fragment_ms, c.retention_days), (60.0, 1000, 0));
    assert_eq!(c.path_template, "{app}/{stream}/{date}-{time}");
    assert_eq!((c.min_free_bytes, c.poster, c.schedules.len()), (1 << 30, true, 0));
    assert_eq!(parse("").record, c);
    assert!(c.validate().is_empty());
}

#[test]
fn an_app_override_replaces_only_the_keys_it_sets() {
    let config = parse(TWO_APPS);
    config.validate().unwrap();
    let tv = RecordConfig::for_app(&config, "tv");
    assert_eq!(
        (tv.enabled, tv.plan, tv.segment_minutes, tv.format),
        (true, RecordPlan::Segment, 15.0, RecordingFormat::Mp4)
    );
    assert_eq!(
        (tv.root.as_str(), tv.retention_days, tv.fragment_ms),
        ("/var/lib/estuary", 30, 1000),
        "from [record]"
    );
    // Its own schedules replace the global one naming tv, and get their app filled in.
    assert_eq!(tv.schedules.len(), 1);
    assert_eq!(
        (tv.schedules[0].app.as_str(), tv.schedules[0].stream.as_str()),
        ("tv", "late")
    );

    let live = RecordConfig::for_app(&config, "live");
    assert_eq!(
        (live.enabled, live.format, live.plan),
        (false, RecordingFormat::Flv, RecordPlan::Session)
    );
    assert_eq!(
        live.schedules,
        [config.record.schedules[0].clone()],
        "the global schedules naming it"
    );
    assert!(RecordConfig::for_app(&config, "other").schedules.is_empty());

    let all = RecordConfig::config_schedules(&config);
    let names: Vec<_> = all.iter().map(|s| (s.app.as_str(), s.stream.as_str())).collect();
    assert_eq!(names, [("live", "news"), ("tv", "late")]);
}

#[test]
fn every_bad_value_is_reported_with_its_key() {
    let config = parse(
        r#"
[record]
root = ""
segment_minutes = 0
fragment_ms = 50
path_template = "/abs/{app}/../x"

[[record.schedules]]
stream = "news"
cron = "0 19 * * *"
duration_secs = 60
timezone = "Mars/Olympus"

[apps.tv.record]
fragment_ms = 20000
segment_minutes = 1441
path_template = "{app}"

[[apps.tv.record.schedules]]
app = "live"
stream = "x"
cron = "@daily"
duration_secs = 1

[[apps.tv.record.schedules]]
stream = "y"
cron = "@daily"
"#,
    );
    let problems = config.validate().unwrap_err();
    let expected = [
        "record.root must not be empty",
        "record.segment_minutes = 0 must be between 0.05 and 1440",
        "record.fragment_ms = 50 must be between 100 and 10000",
        "record.path_template = \"/abs/{app}/../x\" must contain {stream}",
        "record.path_template = \"/abs/{app}/../x\" must not contain \"..\"",
        "record.path_template = \"/abs/{app}/../x\" must be relative",
        "record.schedules[0].app: must not be empty",
        "record.schedules[0].timezone: \"Mars/Olympus\"",
        "apps.tv.record.segment_minutes = 1441",
        "apps.tv.record.fragment_ms = 20000",
        "apps.tv.record.path_template = \"{app}\" must contain {stream}",
        "apps.tv.record.schedules[0].app: \"live\" must be \"tv\" or left out",
        "apps.tv.record.schedules[1].duration_secs, stop_cron: set one",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, start) in problems.iter().zip(expected) {
        assert!(problem.starts_with(start), "{problem:?} should start with {start:?}");
    }
}

#[test]
fn unknown_keys_are_refused() {
    let e = toml::from_str::<Config>("[record]\nformats = \"mp4\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("formats"), "{e}");
    let e = toml::from_str::<Config>("[apps.tv.record]\nformat = \"mkv\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("mkv"), "{e}");
    let e = toml::from_str::<Config>("[record]\nplan = \"manual\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("manual"), "{e}");
}
