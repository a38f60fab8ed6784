//! `[record]` and `[apps.NAME.record]`: what is recorded, where, in which shape, for how
//! long. The resolver that applies an app's keys over the global ones is
//! `RecordConfig::for_app` in the parent module (it needs the whole `Config`).

use serde::Deserialize;

use crate::recordings::catalogue::RecordingFormat;
use crate::recordings::schedule::ScheduleSpec;

/// How a stream recorded by config (`enabled`) is cut into files. Manual and scheduled
/// recordings are one file per start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordPlan {
    /// One file per publish session.
    Session,
    /// A new file every `segment_minutes` (at the next keyframe).
    Segment,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordConfig {
    /// Folder recordings are written under; the catalogue's paths are relative to it.
    pub root: String,
    /// Record every stream of the app while it is published (manual and scheduled
    /// recordings work either way).
    pub enabled: bool,
    /// Container of new recordings.
    pub format: RecordingFormat,
    /// How recordings made because of `enabled` are cut into files.
    pub plan: RecordPlan,
    /// File length of the `segment` plan.
    pub segment_minutes: f64,
    /// An MP4 recording is written as fragments of this much media, so a crash loses at
    /// most one fragment.
    pub fragment_ms: u64,
    /// File path under `root`, without extension: `{app}`, `{stream}`, `{date}`
    /// (YYYY-MM-DD) and `{time}` (HHMMSS), both of the start in UTC, are replaced.
    pub path_template: String,
    /// Finished recordings older than this many days are deleted; 0 keeps them forever.
    pub retention_days: u32,
    /// Recording stops (and does not start) while the disk has less free space than this.
    pub min_free_bytes: u64,
    /// Save a still image of each recording next to it.
    pub poster: bool,
    /// Bytes of media waiting for a slow disk, past which the recording fails rather than
    /// grows (the live stream is never held up).
    pub max_queue_bytes: u64,
    /// After the publisher leaves, a recording waits this long for it to come back (it then
    /// goes on in a new file) before it ends.
    pub reconnect_window_ms: u64,
    /// At shutdown, how long the server waits for recordings to be finished (the fast-start
    /// rewrite of a long MP4 takes a while) and their `on_dvr` sent, before it exits anyway;
    /// what is left unfinished is then finished at the next start. Global: not per app.
    pub shutdown_grace_ms: u64,
    /// Recording windows (`[[record.schedules]]`).
    pub schedules: Vec<ScheduleSpec>,
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            root: "recordings".into(),
            enabled: false,
            format: RecordingFormat::Mp4,
            plan: RecordPlan::Session,
            segment_minutes: 60.0,
            fragment_ms: 1000,
            path_template: "{app}/{stream}/{date}-{time}".into(),
            retention_days: 0,
            min_free_bytes: 1024 * 1024 * 1024,
            poster: true,
            max_queue_bytes: 32 * 1024 * 1024,
            reconnect_window_ms: 10_000,
            shutdown_grace_ms: 60_000,
            schedules: Vec::new(),
        }
    }
}

/// `[apps.NAME.record]`: each key set here replaces the global `[record]` one for that app.
/// `schedules`, when set, replaces the global schedules of that app; their `app` may be
/// left out.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordOverride {
    pub root: Option<String>,
    pub enabled: Option<bool>,
    pub format: Option<RecordingFormat>,
    pub plan: Option<RecordPlan>,
    pub segment_minutes: Option<f64>,
    pub fragment_ms: Option<u64>,
    pub path_template: Option<String>,
    pub retention_days: Option<u32>,
    pub min_free_bytes: Option<u64>,
    pub poster: Option<bool>,
    pub max_queue_bytes: Option<u64>,
    pub reconnect_window_ms: Option<u64>,
    pub schedules: Option<Vec<ScheduleSpec>>,
}

impl RecordConfig {
    /// These settings as app `app` sees them, with its override (if any) applied. Without
    /// an override of `schedules`, the app gets the global schedules naming it.
    pub fn resolve(&self, app: &str, over: Option<&RecordOverride>) -> RecordConfig {
        let empty = RecordOverride::default();
        let o = over.unwrap_or(&empty);
        RecordConfig {
            root: o.root.clone().unwrap_or_else(|| self.root.clone()),
            enabled: o.enabled.unwrap_or(self.enabled),
            format: o.format.unwrap_or(self.format),
            plan: o.plan.unwrap_or(self.plan),
            segment_minutes: o.segment_minutes.unwrap_or(self.segment_minutes),
            fragment_ms: o.fragment_ms.unwrap_or(self.fragment_ms),
            path_template: o.path_template.clone().unwrap_or_else(|| self.path_template.clone()),
            retention_days: o.retention_days.unwrap_or(self.retention_days),
            min_free_bytes: o.min_free_bytes.unwrap_or(self.min_free_bytes),
            poster: o.poster.unwrap_or(self.poster),
            max_queue_bytes: o.max_queue_bytes.unwrap_or(self.max_queue_bytes),
            reconnect_window_ms: o.reconnect_window_ms.unwrap_or(self.reconnect_window_ms),
            shutdown_grace_ms: self.shutdown_grace_ms,
            schedules: match &o.schedules {
                Some(own) => own.iter().map(|s| of_app(s, app)).collect(),
                None => self.schedules.iter().filter(|s| s.app == app).cloned().collect(),
            },
        }
    }

    /// Every problem, each naming its `record.*` key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        check_root(&mut problems, "record.root", &self.root);
        check_segment_minutes(&mut problems, "record.segment_minutes", self.segment_minutes);
        check_fragment_ms(&mut problems, "record.fragment_ms", self.fragment_ms);
        check_path_template(&mut problems, "record.path_template", &self.path_template);
        check_max_queue_bytes(&mut problems, "record.max_queue_bytes", self.max_queue_bytes);
        if self.shutdown_grace_ms > MAX_SHUTDOWN_GRACE_MS {
            problems.push(format!(
                "record.shutdown_grace_ms: {} is more than {MAX_SHUTDOWN_GRACE_MS} (one hour)",
                self.shutdown_grace_ms
            ));
        }
        for (i, spec) in self.schedules.iter().enumerate() {
            check_schedule(&mut problems, &format!("record.schedules[{i}]"), spec);
        }
        problems
    }
}

/// Longest `record.shutdown_grace_ms`: past an hour, a stop that never ends is the bug.
const MAX_SHUTDOWN_GRACE_MS: u64 = 3_600_000;

impl RecordOverride {
    /// Every problem, each naming its `apps.APP.record.*` key.
    pub fn validate(&self, app: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let key = |name: &str| format!("apps.{app}.record.{name}");
        if let Some(root) = &self.root {
            check_root(&mut problems, &key("root"), root);
        }
        if let Some(minutes) = self.segment_minutes {
            check_segment_minutes(&mut problems, &key("segment_minutes"), minutes);
        }
        if let Some(ms) = self.fragment_ms {
            check_fragment_ms(&mut problems, &key("fragment_ms"), ms);
        }
        if let Some(template) = &self.path_template {
            check_path_template(&mut problems, &key("path_template"), template);
        }
        if let Some(bytes) = self.max_queue_bytes {
            check_max_queue_bytes(&mut problems, &key("max_queue_bytes"), bytes);
        }
        for (i, spec) in self.schedules.iter().flatten().enumerate() {
            let at = key(&format!("schedules[{i}]"));
            if !spec.app.is_empty() && spec.app != app {
                problems.push(format!("{at}.app: {:?} must be {app:?} or left out", spec.app));
            } else {
                check_schedule(&mut problems, &at, &of_app(spec, app));
            }
        }
        problems
    }
}

/// A schedule under `[apps.NAME.record]`, with its app filled in.
fn of_app(spec: &ScheduleSpec, app: &str) -> ScheduleSpec {
    ScheduleSpec {
        app: app.to_owned(),
        ..spec.clone()
    }
}

fn check_root(problems: &mut Vec<String>, key: &str, root: &str) {
    if root.trim().is_empty() {
        problems.push(format!("{key} must not be empty"));
    }
}

fn check_segment_minutes(problems: &mut Vec<String>, key: &str, minutes: f64) {
    // Fractions are fine (0.5 is 30 s); under 3 s a segment is mostly its keyframe.
    if !(0.05..=1440.0).contains(&minutes) {
        problems.push(format!("{key} = {minutes} must be between 0.05 and 1440"));
    }
}

fn check_max_queue_bytes(problems: &mut Vec<String>, key: &str, bytes: u64) {
    if bytes < 1024 * 1024 {
        problems.push(format!(
            "{key} = {bytes} must be at least 1048576 (a second of a 4K stream)"
        ));
    }
}

fn check_fragment_ms(problems: &mut Vec<String>, key: &str, ms: u64) {
    if !(100..=10_000).contains(&ms) {
        problems.push(format!("{key} = {ms} must be between 100 and 10000"));
    }
}

/// The template decides where files land under the root: it must tell streams apart and
/// must not climb out of the root.
fn check_path_template(problems: &mut Vec<String>, key: &str, template: &str) {
    if !template.contains("{stream}") {
        problems.push(format!("{key} = {template:?} must contain {{stream}}"));
    }
    if template.contains("..") {
        problems.push(format!("{key} = {template:?} must not contain \"..\""));
    }
    if template.starts_with(['/', '\\']) {
        problems.push(format!(
            "{key} = {template:?} must be relative to the root (not start with /)"
        ));
    }
}

fn check_schedule(problems: &mut Vec<String>, at: &str, spec: &ScheduleSpec) {
    if let Err(found) = spec.validate() {
        problems.extend(found.into_iter().map(|p| format!("{at}.{p}")));
    }
}
