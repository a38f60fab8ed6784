//! Fixed instants only: the wall clock never enters these tests. 2026's DST changes in
//! Europe are Sunday 29 March (02:00 CET -> 03:00 CEST) and Sunday 25 October (03:00 CEST ->
//! 02:00 CET).

use super::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn spec(cron: &str, duration_secs: Option<u64>, stop_cron: Option<&str>, timezone: &str) -> ScheduleSpec {
    ScheduleSpec {
        app: "live".into(),
        stream: "news".into(),
        cron: cron.into(),
        duration_secs,
        stop_cron: stop_cron.map(Into::into),
        timezone: Some(timezone.into()),
        active: true,
    }
}

fn weekday_evenings() -> ScheduleSpec {
    spec("0 19 * * MON-FRI", Some(2 * 3600), None, "Europe/Berlin")
}

#[test]
fn weekday_evenings_in_berlin_follow_spring_forward() {
    let s = weekday_evenings();
    // Friday before the change: 19:00 CET is 18:00 UTC.
    assert_eq!(
        next_start_after(&s, utc(2026, 3, 27, 12, 0, 0)),
        Some(utc(2026, 3, 27, 18, 0, 0))
    );
    // The weekend is skipped; Monday 19:00 CEST is 17:00 UTC.
    assert_eq!(
        next_start_after(&s, utc(2026, 3, 27, 18, 0, 0)),
        Some(utc(2026, 3, 30, 17, 0, 0))
    );
    let monday = (utc(2026, 3, 30, 17, 0, 0), utc(2026, 3, 30, 19, 0, 0));
    assert_eq!(window_containing(&s, utc(2026, 3, 30, 17, 0, 0)), Some(monday));
    assert_eq!(window_containing(&s, utc(2026, 3, 30, 18, 59, 59)), Some(monday));
    assert_eq!(
        window_containing(&s, utc(2026, 3, 30, 19, 0, 0)),
        None,
        "windows are half-open"
    );
    assert_eq!(window_containing(&s, utc(2026, 3, 30, 16, 59, 59)), None);
    assert_eq!(window_containing(&s, utc(2026, 3, 28, 18, 30, 0)), None, "Saturday");
}

#[test]
fn weekday_evenings_in_berlin_follow_fall_back() {
    let s = weekday_evenings();
    assert_eq!(
        next_start_after(&s, utc(2026, 10, 23, 12, 0, 0)),
        Some(utc(2026, 10, 23, 17, 0, 0))
    );
    assert_eq!(
        next_start_after(&s, utc(2026, 10, 23, 17, 0, 0)),
        Some(utc(2026, 10, 26, 18, 0, 0))
    );
    assert_eq!(
        window_containing(&s, utc(2026, 10, 26, 19, 30, 0)),
        Some((utc(2026, 10, 26, 18, 0, 0), utc(2026, 10, 26, 20, 0, 0)))
    );
    assert_eq!(window_containing(&s, utc(2026, 10, 26, 17, 30, 0)), None);
}

#[test]
fn a_firing_in_the_spring_gap_runs_right_after_it() {
    let s = spec("30 2 * * *", Some(3600), None, "Europe/Berlin");
    // 02:30 does not exist on 29 March: the window opens at 03:00 CEST (01:00 UTC).
    assert_eq!(
        next_start_after(&s, utc(2026, 3, 28, 12, 0, 0)),
        Some(utc(2026, 3, 29, 1, 0, 0))
    );
    assert_eq!(
        next_start_after(&s, utc(2026, 3, 29, 1, 0, 0)),
        Some(utc(2026, 3, 30, 0, 30, 0))
    );
    assert_eq!(
        window_containing(&s, utc(2026, 3, 29, 1, 30, 0)),
        Some((utc(2026, 3, 29, 1, 0, 0), utc(2026, 3, 29, 2, 0, 0)))
    );
}

#[test]
fn a_firing_in_the_repeated_autumn_hour_runs_once() {
    let s = spec("30 2 * * *", Some(600), None, "Europe/Berlin");
    // 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET): only the first counts.
    assert_eq!(
        next_start_after(&s, utc(2026, 10, 24, 12, 0, 0)),
        Some(utc(2026, 10, 25, 0, 30, 0))
    );
    assert_eq!(
        next_start_after(&s, utc(2026, 10, 25, 0, 30, 0)),
        Some(utc(2026, 10, 26, 1, 30, 0))
    );
    assert_eq!(window_containing(&s, utc(2026, 10, 25, 1, 35, 0)), None);
}

#[test]
fn steps_of_fifteen_minutes() {
    let s = spec("*/15 * * * *", Some(300), None, "UTC");
    let mut t = utc(2026, 5, 4, 10, 7, 30);
    let mut starts = Vec::new();
    for _ in 0..4 {
        t = next_start_after(&s, t).unwrap();
        starts.push(t);
    }
    let expected = [(10, 15), (10, 30), (10, 45), (11, 0)].map(|(h, m)| utc(2026, 5, 4, h, m, 0));
    assert_eq!(starts, expected);
    assert_eq!(
        window_containing(&s, utc(2026, 5, 4, 10, 19, 59)),
        Some((utc(2026, 5, 4, 10, 15, 0), utc(2026, 5, 4, 10, 20, 0)))
    );
    assert_eq!(window_containing(&s, utc(2026, 5, 4, 10, 20, 0)), None);
}

#[test]
fn steps_fire_in_both_halves_of_the_repeated_hour() {
    let s = spec("*/15 * * * *", Some(60), None, "Europe/Berlin");
    // 02:45 CEST (00:45 UTC), then 02:00 CET (01:00 UTC): distinct instants, both fire.
    assert_eq!(
        next_start_after(&s, utc(2026, 10, 25, 0, 40, 0)),
        Some(utc(2026, 10, 25, 0, 45, 0))
    );
    assert_eq!(
        next_start_after(&s, utc(2026, 10, 25, 0, 45, 0)),
        Some(utc(2026, 10, 25, 1, 0, 0))
    );
}

#[test]
fn daily_alias_in_new_york() {
    let s = spec("@daily", Some(3600), None, "America/New_York");
    // Midnight EDT is 04:00 UTC.
    assert_eq!(
        next_start_after(&s, utc(2026, 6, 1, 12, 0, 0)),
        Some(utc(2026, 6, 2, 4, 0, 0))
    );
    assert_eq!(
        window_containing(&s, utc(2026, 6, 2, 4, 59, 0)),
        Some((utc(2026, 6, 2, 4, 0, 0), utc(2026, 6, 2, 5, 0, 0)))
    );
    let hourly = spec("@hourly", Some(60), None, "UTC");
    assert_eq!(
        next_start_after(&hourly, utc(2026, 6, 1, 12, 0, 0)),
        Some(utc(2026, 6, 1, 13, 0, 0))
    );
    let weekly = spec("@weekly", Some(60), None, "UTC");
    // Sunday 7 June 2026.
    assert_eq!(
        next_start_after(&weekly, utc(2026, 6, 1, 12, 0, 0)),
        Some(utc(2026, 6, 7, 0, 0, 0))
    );
}

#[test]
fn stop_cron_closes_the_window() {
    // Friday 22:00 to Saturday 02:00, Berlin summer time (UTC+2).
    let s = spec("0 22 * * FRI", None, Some("0 2 * * SAT"), "Europe/Berlin");
    let window = (utc(2026, 6, 5, 20, 0, 0), utc(2026, 6, 6, 0, 0, 0));
    assert_eq!(window_containing(&s, utc(2026, 6, 5, 23, 0, 0)), Some(window));
    assert_eq!(window_containing(&s, utc(2026, 6, 5, 20, 0, 0)), Some(window));
    assert_eq!(window_containing(&s, utc(2026, 6, 6, 0, 0, 0)), None);
    assert_eq!(window_containing(&s, utc(2026, 6, 5, 19, 59, 59)), None);
    assert_eq!(window_containing(&s, utc(2026, 6, 3, 21, 0, 0)), None, "Wednesday");
    let timetable = Timetable::new(&s).unwrap();
    assert_eq!(timetable.end_of_window(window.0), Some(window.1));
}

#[test]
fn overlapping_windows_report_the_latest() {
    let s = spec("0 * * * *", Some(2 * 3600), None, "UTC");
    assert_eq!(
        window_containing(&s, utc(2026, 5, 4, 10, 30, 0)),
        Some((utc(2026, 5, 4, 10, 0, 0), utc(2026, 5, 4, 12, 0, 0)))
    );
}

#[test]
fn sub_second_instants() {
    let s = spec("0 19 * * *", Some(60), None, "UTC");
    let just_before = utc(2026, 5, 4, 18, 59, 59) + Duration::milliseconds(900);
    assert_eq!(next_start_after(&s, just_before), Some(utc(2026, 5, 4, 19, 0, 0)));
    let just_after = utc(2026, 5, 4, 19, 0, 0) + Duration::milliseconds(500);
    assert_eq!(next_start_after(&s, just_after), Some(utc(2026, 5, 5, 19, 0, 0)));
    assert_eq!(
        window_containing(&s, just_after),
        Some((utc(2026, 5, 4, 19, 0, 0), utc(2026, 5, 4, 19, 1, 0)))
    );
}

fn problems(s: &ScheduleSpec) -> Vec<String> {
    s.validate().unwrap_err()
}

#[test]
fn invalid_specs_name_the_field() {
    weekday_evenings().validate().unwrap();
    let cases: [(ScheduleSpec, &str); 9] = [
        (spec("61 19 * * *", Some(60), None, "UTC"), "cron:"),
        (spec("0 0 19 * * *", Some(60), None, "UTC"), "cron:"),
        (spec("0 19 * *", Some(60), None, "UTC"), "cron:"),
        (
            spec("0 0 31 2 *", Some(60), None, "UTC"),
            "cron: \"0 0 31 2 *\" never fires",
        ),
        (spec("0 19 * * *", Some(60), None, "Europe/Atlantis"), "timezone:"),
        (
            spec("0 19 * * *", Some(60), Some("0 20 * * *"), "UTC"),
            "duration_secs, stop_cron: set only one",
        ),
        (
            spec("0 19 * * *", None, None, "UTC"),
            "duration_secs, stop_cron: set one",
        ),
        (spec("0 19 * * *", Some(0), None, "UTC"), "duration_secs: 0"),
        (spec("0 19 * * *", None, Some("whenever"), "UTC"), "stop_cron:"),
    ];
    for (s, expected) in cases {
        let p = problems(&s);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with(expected), "{p:?} should start with {expected:?}");
        assert_eq!(next_start_after(&s, utc(2026, 1, 1, 0, 0, 0)), None);
        assert_eq!(window_containing(&s, utc(2026, 1, 1, 0, 0, 0)), None);
    }
    let mut empty = spec("nope", None, None, "Nowhere");
    empty.app = " ".into();
    empty.stream = String::new();
    let p = problems(&empty);
    assert_eq!(p.len(), 5, "every problem at once: {p:?}");
    assert!(p[0].starts_with("app:") && p[1].starts_with("stream:"), "{p:?}");
}

#[test]
fn names_and_steps_parse() {
    for cron in [
        "0 19 * JAN-MAR,DEC MON-FRI",
        "*/5 8-18/2 1,15 * *",
        "0 0 * * 7",
        "@yearly",
        "@monthly",
    ] {
        spec(cron, Some(60), None, "UTC").validate().unwrap();
    }
}

#[test]
fn specs_read_from_toml_default_to_active() {
    let s: ScheduleSpec = toml::from_str("stream = \"news\"\ncron = \"@daily\"\nduration_secs = 60\n").unwrap();
    assert!(s.active);
    assert_eq!(s.app, "");
    assert_eq!(s.timezone, None);
    let e = toml::from_str::<ScheduleSpec>("stream = \"n\"\ncron = \"@daily\"\nlength = 60\n").unwrap_err();
    assert!(e.to_string().contains("length"), "{e}");
}

#[test]
fn the_server_zone_comes_from_tz_then_the_system() {
    let berlin = Some(chrono_tz::Europe::Berlin);
    let system = || Some("America/New_York".to_owned());
    assert_eq!(zone_from(Some("Europe/Berlin"), system), berlin);
    assert_eq!(zone_from(Some(":Europe/Berlin"), system), berlin);
    assert_eq!(zone_from(Some("/usr/share/zoneinfo/Europe/Berlin"), system), berlin);
    assert_eq!(
        zone_from(Some("CET-1CEST,M3.5.0,M10.5.0/3"), system),
        Some(chrono_tz::America::New_York)
    );
    assert_eq!(zone_from(None, system), Some(chrono_tz::America::New_York));
    assert_eq!(zone_from(None, || None), None);
    assert_eq!(zone_from(Some("junk"), || Some("junk".to_owned())), None);
}
