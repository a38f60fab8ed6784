//! The scheduler: once a second it opens the recording windows of the active schedules whose
//! time has come and closes those whose time is up. An open window asks for a recording of
//! its stream: recorded at once if the stream is live, else as soon as it comes, until the
//! window closes. A stream that drops and comes back within the window is recorded again; a
//! recording stopped by hand stays stopped until the next window.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::catalogue::{RecordingPlan, Schedule};
use super::schedule::Timetable;
use super::service::{Recordings, StartError};
use crate::path::demand::Demand;
use crate::path::registry::Paths;
use crate::stream::StreamKey;

/// How often the scheduler looks.
const TICK: Duration = Duration::from_secs(1);

/// A window the scheduler opened.
struct Open {
    start_ms: i64,
    end_ms: i64,
    key: StreamKey,
}

/// Runs until `shutdown`.
pub async fn run(service: Recordings, paths: Paths, shutdown: CancellationToken) {
    let mut open: HashMap<i64, Open> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let lister = service.clone();
        let schedules = match tokio::task::spawn_blocking(move || lister.catalogue().list_schedules()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                warn!(cause = %e, "schedules not read");
                continue;
            }
            Err(_) => continue,
        };
        let now = Utc::now();
        let service = service.clone();
        let paths = paths.clone();
        let mut current = std::mem::take(&mut open);
        open = tokio::task::spawn_blocking(move || {
            step(&service, &paths, &schedules, now, &mut current);
            current
        })
        .await
        .unwrap_or_default();
    }
}

/// One look at the schedules at `now`.
fn step(
    service: &Recordings,
    paths: &Paths,
    schedules: &[Schedule],
    now: DateTime<Utc>,
    open: &mut HashMap<i64, Open>,
) {
    let now_ms = now.timestamp_millis();
    // Close the windows whose time is up, or whose schedule went or was switched off.
    let closing: Vec<i64> = open
        .iter()
        .filter(|(id, w)| now_ms >= w.end_ms || !schedules.iter().any(|s| s.id == **id && s.spec.active))
        .map(|(id, _)| *id)
        .collect();
    for id in closing {
        if let Some(window) = open.remove(&id) {
            info!(schedule = id, stream = %window.key, "schedule window closed");
            service.close_window(id);
        }
    }
    for schedule in schedules.iter().filter(|s| s.spec.active) {
        let Ok(timetable) = Timetable::new(&schedule.spec) else {
            continue;
        };
        let next = timetable.next_start_after(now).map(|t| t.timestamp_millis());
        match timetable.window_containing(now) {
            Some((start, end)) => {
                let (start_ms, end_ms) = (start.timestamp_millis(), end.timestamp_millis());
                let key = StreamKey::new(&schedule.spec.app, &schedule.spec.stream);
                let new_window = open.get(&schedule.id).is_none_or(|w| w.start_ms != start_ms);
                if new_window {
                    info!(schedule = schedule.id, stream = %key, end_ms, "schedule window opened");
                    open.insert(
                        schedule.id,
                        Open {
                            start_ms,
                            end_ms,
                            key: key.clone(),
                        },
                    );
                    if let Err(e) = service.catalogue().set_run_times(schedule.id, Some(start_ms), next) {
                        warn!(cause = %e, "schedule run times not saved");
                    }
                }
                // While the window is open, the stream is recorded whenever it is there.
                match service.request_for(&key, RecordingPlan::Schedule, Some(schedule.id)) {
                    Ok(_) => {
                        service.keep_wanted(&key, || Demand::new(paths, &key));
                        if let Some(path) = paths.get(&key) {
                            path.start_output("record");
                        }
                    }
                    Err(StartError::AlreadyRecording { .. } | StartError::StoppedByHand(_)) => {}
                    Err(e) => warn!(schedule = schedule.id, cause = %e, "scheduled recording not requested"),
                }
            }
            None => {
                if schedule.next_run_at != next {
                    if let Err(e) = service
                        .catalogue()
                        .set_run_times(schedule.id, schedule.last_run_at, next)
                    {
                        warn!(cause = %e, "schedule run times not saved");
                    }
                }
            }
        }
    }
}
