//! Retention: finished recordings older than their app's `record.retention_days` are deleted,
//! files and catalogue rows, at start-up and every hour.

use tracing::{info, warn};

use super::service::{now_ms, Recordings};
use crate::config::RecordConfig;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Deletes what is past its retention; returns how many recordings went.
pub fn sweep(service: &Recordings) -> usize {
    let config = service.config();
    let now = now_ms();
    let mut deleted = 0;
    // Apps with a retention of their own, then every other app under the global one.
    let own: Vec<(String, u32)> = config
        .apps
        .keys()
        .filter(|app| config.apps[*app].record.retention_days.is_some())
        .map(|app| (app.clone(), RecordConfig::for_app(config, app).retention_days))
        .collect();
    let mut batches = Vec::new();
    for (app, days) in &own {
        if *days > 0 {
            batches.push(
                service
                    .catalogue()
                    .older_than(Some(app), now - i64::from(*days) * DAY_MS),
            );
        }
    }
    if config.record.retention_days > 0 {
        let before = now - i64::from(config.record.retention_days) * DAY_MS;
        batches.push(service.catalogue().older_than(None, before).map(|all| {
            all.into_iter()
                .filter(|r| !own.iter().any(|(app, _)| *app == r.app))
                .collect()
        }));
    }
    for batch in batches {
        let recordings = match batch {
            Ok(r) => r,
            Err(e) => {
                warn!(cause = %e, "retention: old recordings not read");
                continue;
            }
        };
        for recording in recordings {
            match service.delete(recording.id) {
                Ok(_) => {
                    info!(recording = recording.id, path = ?recording.path, "recording deleted: past its retention");
                    deleted += 1;
                }
                Err(e) => warn!(recording = recording.id, cause = %e, "retention: recording not deleted"),
            }
        }
    }
    deleted
}
