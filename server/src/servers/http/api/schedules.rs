//! `/api/v1/schedules`: recording schedules (cron windows).
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1/schedules` | `schedules[]` |
//! | `POST /api/v1/schedules` `{app, stream, cron, duration_secs \| stop_cron, timezone?, active?}` | `schedule` |
//! | `PUT /api/v1/schedules/{id}` (the same body) | `schedule` |
//! | `DELETE /api/v1/schedules/{id}` | `schedule` |
//!
//! Schedules from the config file are listed too (`origin: "config"`), but changed only by
//! changing the file: they are re-read at every start.

use std::sync::Arc;

use chrono::Utc;
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};

use super::super::response::Body;
use super::envelope::{error, not_allowed, ok};
use crate::context::Context;
use crate::recordings::catalogue::{Catalogue, CatalogueError, Schedule, ScheduleOrigin};
use crate::recordings::schedule::{next_start_after, ScheduleSpec};
use crate::recordings::service::now_ms;

const CODE_SCHEDULE_NOT_FOUND: u32 = 2062;
const CODE_SCHEDULE_FROM_CONFIG: u32 = 2063;

/// Answers `/api/v1/schedules[/{id}]`; `rest` is what follows `/schedules`.
pub async fn serve(ctx: &Arc<Context>, method: &Method, rest: &str, body: &[u8]) -> Response<Body> {
    let Some(service) = ctx.recordings.clone() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            503,
            "recordings are off (see the server log)",
        );
    };
    let rest = rest.trim_start_matches('/');
    let spec = || -> Result<ScheduleSpec, String> {
        let spec: ScheduleSpec = serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?;
        spec.validate().map_err(|problems| problems.join("; "))?;
        Ok(spec)
    };
    let bad = |message: String| error(StatusCode::BAD_REQUEST, 400, &message);
    let result: Result<Value, Response<Body>> = match (method, rest) {
        (&Method::GET | &Method::HEAD, "") => {
            let list = run(move || service.catalogue().list_schedules()).await;
            return match list {
                Ok(all) => ok(ctx, "schedules", Value::Array(all.iter().map(schedule_json).collect())),
                Err(r) => r,
            };
        }
        (&Method::POST, "") => match spec() {
            Ok(spec) => run(move || {
                let catalogue = service.catalogue();
                let created = catalogue.insert_schedule(&spec, ScheduleOrigin::Api, now_ms())?;
                with_next_run(catalogue, created)
            })
            .await
            .map(|s| schedule_json(&s)),
            Err(message) => Err(bad(message)),
        },
        (_, "") => return not_allowed("GET, POST"),
        (method, id) => {
            let Ok(id) = id.parse::<i64>() else {
                return not_found(id);
            };
            match *method {
                Method::GET | Method::HEAD => run(move || service.catalogue().get_schedule(id))
                    .await
                    .map(|s| schedule_json(&s)),
                Method::PUT => match spec() {
                    Ok(spec) => run(move || {
                        let catalogue = service.catalogue();
                        refuse_config(catalogue, id)?;
                        let updated = catalogue.update_schedule(id, &spec)?;
                        with_next_run(catalogue, updated)
                    })
                    .await
                    .map(|s| schedule_json(&s)),
                    Err(message) => Err(bad(message)),
                },
                Method::DELETE => run(move || {
                    let catalogue = service.catalogue();
                    refuse_config(catalogue, id)?;
                    let deleted = catalogue.delete_schedule(id)?;
                    // Its open window, if any, closes now.
                    service.close_window(id);
                    Ok::<_, Refused>(deleted)
                })
                .await
                .map(|s| schedule_json(&s)),
                _ => return not_allowed("GET, PUT, DELETE"),
            }
        }
    };
    match result {
        Ok(v) => ok(ctx, "schedule", v),
        Err(r) => r,
    }
}

/// Why a schedule operation failed: a catalogue error, or a schedule from the config file.
enum Refused {
    Catalogue(CatalogueError),
    FromConfig(i64),
}

impl From<CatalogueError> for Refused {
    fn from(e: CatalogueError) -> Self {
        Refused::Catalogue(e)
    }
}

fn refuse_config(catalogue: &Catalogue, id: i64) -> Result<(), Refused> {
    match catalogue.get_schedule(id)?.origin {
        ScheduleOrigin::Config => Err(Refused::FromConfig(id)),
        ScheduleOrigin::Api => Ok(()),
    }
}

/// The schedule with its next start computed (the catalogue keeps it for listings).
fn with_next_run(catalogue: &Catalogue, schedule: Schedule) -> Result<Schedule, Refused> {
    let next = next_start_after(&schedule.spec, Utc::now()).map(|t| t.timestamp_millis());
    catalogue.set_run_times(schedule.id, schedule.last_run_at, next)?;
    Ok(catalogue.get_schedule(schedule.id)?)
}

async fn run<T: Send + 'static, E: Into<Refused> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, Response<Body>> {
    match tokio::task::spawn_blocking(move || f().map_err(Into::into)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(Refused::FromConfig(id))) => Err(error(
            StatusCode::CONFLICT,
            CODE_SCHEDULE_FROM_CONFIG,
            &format!("schedule {id} comes from the config file; change it there"),
        )),
        Ok(Err(Refused::Catalogue(CatalogueError::ScheduleNotFound(id)))) => Err(not_found(&id.to_string())),
        Ok(Err(Refused::Catalogue(CatalogueError::InvalidSchedule(problems)))) => {
            Err(error(StatusCode::BAD_REQUEST, 400, &problems.join("; ")))
        }
        Ok(Err(Refused::Catalogue(e))) => {
            tracing::warn!(cause = %e, "schedules api: catalogue error");
            Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                500,
                "catalogue error (see the server log)",
            ))
        }
        Err(_) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, 500, "internal error")),
    }
}

fn schedule_json(s: &Schedule) -> Value {
    json!({
        "id": s.id,
        "app": s.spec.app,
        "stream": s.spec.stream,
        "cron": s.spec.cron,
        "duration_secs": s.spec.duration_secs,
        "stop_cron": s.spec.stop_cron,
        "timezone": s.spec.timezone,
        "active": s.spec.active,
        "last_run_at": s.last_run_at,
        "next_run_at": s.next_run_at,
        "origin": s.origin.as_str(),
        "created": s.created_at,
    })
}

fn not_found(id: &str) -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        CODE_SCHEDULE_NOT_FOUND,
        &format!("schedule {id} not found"),
    )
}
