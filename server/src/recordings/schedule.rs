//! Recording schedules: "every weekday at 19:00 for two hours, Berlin time".
//!
//! A schedule opens a recording **window** at each firing of its `cron` and closes it after
//! `duration_secs`, or at the first firing of `stop_cron` after the start. Windows are
//! half-open, `[start, end)`. The recorder asks two questions: when does the next window
//! open ([`next_start_after`]), and is a window open right now ([`window_containing`]) — the
//! latter is how a stream that arrives while a window is open still gets recorded.
//!
//! # Cron
//!
//! Standard 5-field expressions (minute hour day-of-month month day-of-week) with ranges,
//! lists, steps and names (`0 19 * * MON-FRI`, `*/15 * * JAN,FEB *`), and the aliases
//! `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`. Parsing and stepping is done by the
//! `croner` crate, which also accepts its extensions (`L`, `W`, `#`, `+` for AND of the two
//! day fields); as in Vixie cron, a restricted day-of-month and day-of-week are ORed.
//! Seconds and years fields are refused: a schedule is a wall-clock thing.
//!
//! # Time zones and daylight saving
//!
//! The cron is read on the wall clock of `timezone` (an IANA name; none means the server's
//! zone, see [`local_zone`]). Across a DST change this is what `croner` does:
//! - spring forward: a fixed-time firing whose wall time does not exist (02:30 on the
//!   night clocks jump from 02:00 to 03:00) fires at the first instant after the gap
//!   (03:00), as Vixie cron does, so the recording is late rather than lost; interval
//!   firings (`*/15`) inside the gap are skipped;
//! - fall back: a fixed-time firing whose wall time happens twice fires once, at the first;
//!   interval firings fire in both halves (they are distinct instants).
//!
//! Firings are whole seconds; every result is an instant in UTC.

use std::str::FromStr;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Duration, DurationRound, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::{Deserialize, Serialize};

/// The longest window a schedule may describe. Also how far back [`window_containing`]
/// looks for the start of a window, so that question stays bounded.
pub const MAX_WINDOW_SECS: u64 = 366 * 24 * 3600;

/// One recording schedule, as written in the config (`[[record.schedules]]`) or sent to the
/// API. Exactly one of `duration_secs` and `stop_cron` says when a window closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Application of the stream to record. May be left out under `[apps.NAME.record]`,
    /// where it is NAME.
    #[serde(default)]
    pub app: String,
    /// Stream name (without query string) to record.
    pub stream: String,
    /// When a window opens: a 5-field cron expression or an `@alias`.
    pub cron: String,
    /// A window closes this long after it opened.
    #[serde(default)]
    pub duration_secs: Option<u64>,
    /// A window closes at the first firing of this cron after it opened.
    #[serde(default)]
    pub stop_cron: Option<String>,
    /// IANA zone the crons are read in (`Europe/Berlin`); none is the server's zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// An inactive schedule is kept but never opens a window.
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

impl ScheduleSpec {
    /// Every problem with the spec, each starting with the field at fault (`cron: ...`), so
    /// the caller can prefix where the spec came from (`record.schedules[2].`).
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.app.trim().is_empty() {
            problems.push("app: must not be empty".to_owned());
        }
        if self.stream.trim().is_empty() {
            problems.push("stream: must not be empty".to_owned());
        }
        if let Err(mut more) = Timetable::new(self) {
            problems.append(&mut more);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// When a window closes.
#[derive(Debug, Clone)]
enum WindowEnd {
    After(Duration),
    At(Box<Cron>),
}

/// A [`ScheduleSpec`]'s crons parsed and its zone resolved, for a recorder that asks often.
#[derive(Debug, Clone)]
pub struct Timetable {
    start: Cron,
    end: WindowEnd,
    zone: Tz,
}

impl Timetable {
    /// Parses the timing fields of `spec` (not `app`, `stream` or `active`); the errors
    /// name the field.
    pub fn new(spec: &ScheduleSpec) -> Result<Timetable, Vec<String>> {
        let mut problems = Vec::new();
        let zone = match &spec.timezone {
            None => Some(local_zone()),
            Some(name) => match Tz::from_str(name) {
                Ok(zone) => Some(zone),
                Err(_) => {
                    problems.push(format!(
                        "timezone: {name:?} is not an IANA time zone name like \"Europe/Berlin\""
                    ));
                    None
                }
            },
        };
        let start = parse_cron("cron", &spec.cron).map_err(|p| problems.push(p)).ok();
        let end = match (spec.duration_secs, &spec.stop_cron) {
            (Some(_), Some(_)) => {
                problems.push("duration_secs, stop_cron: set only one of them".to_owned());
                None
            }
            (None, None) => {
                problems.push("duration_secs, stop_cron: set one of them to say when a window closes".to_owned());
                None
            }
            (Some(secs), None) if secs == 0 || secs > MAX_WINDOW_SECS => {
                problems.push(format!("duration_secs: {secs} must be between 1 and {MAX_WINDOW_SECS}"));
                None
            }
            (Some(secs), None) => i64::try_from(secs).ok().map(|s| WindowEnd::After(Duration::seconds(s))),
            (None, Some(stop)) => parse_cron("stop_cron", stop)
                .map_err(|p| problems.push(p))
                .ok()
                .map(|c| WindowEnd::At(Box::new(c))),
        };
        match (start, end, zone) {
            (Some(start), Some(end), Some(zone)) if problems.is_empty() => Ok(Timetable { start, end, zone }),
            _ => Err(problems),
        }
    }

    /// The first window start strictly after `after`.
    pub fn next_start_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = whole_second(after).with_timezone(&self.zone);
        let next = self.start.find_next_occurrence(&local, false).ok()?;
        Some(next.with_timezone(&Utc))
    }

    /// The end of the window that opened at `start` (a firing of the cron).
    pub fn end_of_window(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.end {
            WindowEnd::After(duration) => start.checked_add_signed(*duration),
            WindowEnd::At(stop) => {
                let local = whole_second(start).with_timezone(&self.zone);
                let end = stop.find_next_occurrence(&local, false).ok()?;
                Some(end.with_timezone(&Utc))
            }
        }
    }

    /// The window `[start, end)` that `t` falls into, if any. Windows may overlap (hourly
    /// for two hours); then this is the one that opened last, which closes no earlier than
    /// the others (with `stop_cron`, every window open at `t` closes at the same first stop
    /// after `t`).
    pub fn window_containing(&self, t: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let local = whole_second(t).with_timezone(&self.zone);
        let start = self
            .start
            .find_previous_occurrence(&local, true)
            .ok()?
            .with_timezone(&Utc);
        let horizon = Duration::seconds(MAX_WINDOW_SECS as i64);
        if t.signed_duration_since(start) > horizon {
            return None;
        }
        let end = self.end_of_window(start)?;
        (t < end).then_some((start, end))
    }
}

/// The first window start of `spec` strictly after `after`; `None` for a spec that does
/// not validate (or whose cron never fires again). Ignores `active`: the caller decides.
pub fn next_start_after(spec: &ScheduleSpec, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Timetable::new(spec).ok()?.next_start_after(after)
}

/// The window `[start, end)` of `spec` that `t` falls into, if any; `None` for a spec that
/// does not validate. Ignores `active`: the caller decides.
pub fn window_containing(spec: &ScheduleSpec, t: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    Timetable::new(spec).ok()?.window_containing(t)
}

/// Parses a 5-field cron (or an alias) and checks that it fires at all ("0 0 31 2 *" never
/// does), so that a mistake is reported at start-up instead of silently never recording.
fn parse_cron(field: &str, expr: &str) -> Result<Cron, String> {
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    let cron = parser.parse(expr).map_err(|e| {
        format!("{field}: {expr:?} is not a 5-field cron expression (minute hour day month weekday): {e}")
    })?;
    // Every day-of-month/weekday combination recurs within 28 years (leap-year cycle).
    let probe = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
    let first = probe.and_then(|p| cron.find_next_occurrence(&p, true).ok());
    match first {
        Some(first) if first.year() < 2029 => Ok(cron),
        _ => Err(format!("{field}: {expr:?} never fires")),
    }
}

fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::seconds(1)).unwrap_or(t)
}

/// The zone of schedules without a `timezone`: the server's own, decided once per process.
///
/// The `TZ` environment variable wins when it names an IANA zone (`Europe/Berlin`,
/// `:Europe/Berlin`, or a path ending in `zoneinfo/Europe/Berlin`), as it does for the C
/// library; otherwise the system's zone (`/etc/localtime`, read by the `iana-time-zone`
/// crate); otherwise UTC, with a warning. A POSIX rule string in `TZ` (`CET-1CEST,...`) is
/// not understood and falls through to the system zone.
pub fn local_zone() -> Tz {
    static ZONE: OnceLock<Tz> = OnceLock::new();
    *ZONE.get_or_init(|| {
        let env = std::env::var("TZ").ok();
        let zone = zone_from(env.as_deref(), || iana_time_zone::get_timezone().ok());
        if zone.is_none() {
            tracing::warn!(tz = ?env, "cannot tell the server's time zone; schedules without a timezone use UTC");
        }
        zone.unwrap_or(Tz::UTC)
    })
}

/// The zone named by a `TZ` value, else by the system; `None` when neither names one.
fn zone_from(tz_env: Option<&str>, system: impl FnOnce() -> Option<String>) -> Option<Tz> {
    let from_env = tz_env.and_then(|value| {
        let value = value.strip_prefix(':').unwrap_or(value);
        let name = value.rsplit_once("zoneinfo/").map_or(value, |(_, name)| name);
        Tz::from_str(name).ok()
    });
    from_env.or_else(|| system().and_then(|name| Tz::from_str(&name).ok()))
}

#[cfg(test)]
mod tests;
