//! Schedules: the API's (kept until deleted) and the config file's (re-synced at start).

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::db::Catalogue;
use super::error::CatalogueError;
use super::model::{Schedule, ScheduleOrigin};
use super::recording_queries::found;
use crate::recordings::schedule::ScheduleSpec;

const COLUMNS: &str = "id, app, stream, cron, duration_secs, stop_cron, timezone, active, last_run_at, \
                       next_run_at, origin, created_at";

impl Catalogue {
    /// Stores a schedule after checking it ([`CatalogueError::InvalidSchedule`] names the
    /// fields at fault).
    pub fn insert_schedule(
        &self,
        spec: &ScheduleSpec,
        origin: ScheduleOrigin,
        created_at: i64,
    ) -> Result<Schedule, CatalogueError> {
        spec.validate().map_err(CatalogueError::InvalidSchedule)?;
        insert(&self.lock(), spec, origin, created_at)
            .map_err(self.fail(format_args!("insert a schedule of {}/{}", spec.app, spec.stream)))
    }

    pub fn get_schedule(&self, id: i64) -> Result<Schedule, CatalogueError> {
        let sql = format!("SELECT {COLUMNS} FROM schedules WHERE id = ?1");
        self.lock()
            .query_row(&sql, [id], from_row)
            .optional()
            .map_err(self.fail(format_args!("read schedule {id}")))?
            .ok_or(CatalogueError::ScheduleNotFound(id))
    }

    /// Replaces everything a user sets (the spec), keeps the origin, creation and last run,
    /// and clears `next_run_at`: it was computed from the old crons.
    pub fn update_schedule(&self, id: i64, spec: &ScheduleSpec) -> Result<Schedule, CatalogueError> {
        spec.validate().map_err(CatalogueError::InvalidSchedule)?;
        let sql = format!(
            "UPDATE schedules SET app = ?2, stream = ?3, cron = ?4, duration_secs = ?5, stop_cron = ?6, \
             timezone = ?7, active = ?8, next_run_at = NULL WHERE id = ?1 RETURNING {COLUMNS}"
        );
        let args = params![
            id,
            spec.app,
            spec.stream,
            spec.cron,
            duration_secs(spec),
            spec.stop_cron,
            spec.timezone,
            spec.active
        ];
        self.lock()
            .query_row(&sql, args, from_row)
            .optional()
            .map_err(self.fail(format_args!("update schedule {id}")))?
            .ok_or(CatalogueError::ScheduleNotFound(id))
    }

    /// Forgets a schedule and returns what it was. Its recordings stay, with no
    /// `schedule_id`.
    pub fn delete_schedule(&self, id: i64) -> Result<Schedule, CatalogueError> {
        let sql = format!("DELETE FROM schedules WHERE id = ?1 RETURNING {COLUMNS}");
        self.lock()
            .query_row(&sql, [id], from_row)
            .optional()
            .map_err(self.fail(format_args!("delete schedule {id}")))?
            .ok_or(CatalogueError::ScheduleNotFound(id))
    }

    /// Every schedule, active or not, by id.
    pub fn list_schedules(&self) -> Result<Vec<Schedule>, CatalogueError> {
        select_all(&self.lock(), &format!("SELECT {COLUMNS} FROM schedules ORDER BY id"))
            .map_err(self.fail("list schedules"))
    }

    /// Notes when a schedule's window last opened and when the next one opens (`None`
    /// clears either).
    pub fn set_run_times(
        &self,
        id: i64,
        last_run_at: Option<i64>,
        next_run_at: Option<i64>,
    ) -> Result<(), CatalogueError> {
        let changed = self
            .lock()
            .execute(
                "UPDATE schedules SET last_run_at = ?2, next_run_at = ?3 WHERE id = ?1",
                params![id, last_run_at, next_run_at],
            )
            .map_err(self.fail(format_args!("set the run times of schedule {id}")))?;
        found(changed, CatalogueError::ScheduleNotFound(id))
    }

    /// Makes the `config` schedules exactly `specs` (the config file's, at start-up) and
    /// returns them; `api` schedules are left alone. A stored config schedule identical to
    /// one of `specs` is kept as it is — same id, same run times — so a restart inside a
    /// window neither orphans its recordings nor forgets that the window already ran; the
    /// others are deleted and the new ones inserted with `created_at = now_ms`. All or
    /// nothing: one invalid spec changes nothing.
    pub fn replace_config_schedules(
        &self,
        specs: &[ScheduleSpec],
        now_ms: i64,
    ) -> Result<Vec<Schedule>, CatalogueError> {
        let problems: Vec<String> = specs
            .iter()
            .enumerate()
            .filter_map(|(i, spec)| spec.validate().err().map(|p| (i, p)))
            .flat_map(|(i, p)| p.into_iter().map(move |problem| format!("[{i}] {problem}")))
            .collect();
        if !problems.is_empty() {
            return Err(CatalogueError::InvalidSchedule(problems));
        }
        let mut conn = self.lock();
        let sync = |conn: &mut Connection| -> rusqlite::Result<Vec<Schedule>> {
            let tx = conn.transaction()?;
            let config = format!("SELECT {COLUMNS} FROM schedules WHERE origin = 'config' ORDER BY id");
            let mut wanted: Vec<&ScheduleSpec> = specs.iter().collect();
            for stored in select_all(&tx, &config)? {
                match wanted.iter().position(|spec| **spec == stored.spec) {
                    Some(i) => {
                        wanted.remove(i);
                    }
                    None => {
                        tx.execute("DELETE FROM schedules WHERE id = ?1", [stored.id])?;
                    }
                }
            }
            for spec in wanted {
                insert(&tx, spec, ScheduleOrigin::Config, now_ms)?;
            }
            let synced = select_all(&tx, &config)?;
            tx.commit()?;
            Ok(synced)
        };
        sync(&mut conn).map_err(self.fail("replace the config schedules"))
    }
}

fn insert(
    conn: &Connection,
    spec: &ScheduleSpec,
    origin: ScheduleOrigin,
    created_at: i64,
) -> rusqlite::Result<Schedule> {
    let sql = format!(
        "INSERT INTO schedules (app, stream, cron, duration_secs, stop_cron, timezone, active, origin, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING {COLUMNS}"
    );
    let args = params![
        spec.app,
        spec.stream,
        spec.cron,
        duration_secs(spec),
        spec.stop_cron,
        spec.timezone,
        spec.active,
        origin,
        created_at
    ];
    conn.query_row(&sql, args, from_row)
}

/// As SQLite stores it; a validated spec's duration is far below `i64::MAX`.
fn duration_secs(spec: &ScheduleSpec) -> Option<i64> {
    spec.duration_secs.map(|secs| i64::try_from(secs).unwrap_or(i64::MAX))
}

fn select_all(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<Schedule>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Schedule> {
    Ok(Schedule {
        id: row.get("id")?,
        spec: ScheduleSpec {
            app: row.get("app")?,
            stream: row.get("stream")?,
            cron: row.get("cron")?,
            duration_secs: row
                .get::<_, Option<i64>>("duration_secs")?
                .map(|secs| {
                    u64::try_from(secs).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Integer, Box::new(e))
                    })
                })
                .transpose()?,
            stop_cron: row.get("stop_cron")?,
            timezone: row.get("timezone")?,
            active: row.get("active")?,
        },
        last_run_at: row.get("last_run_at")?,
        next_run_at: row.get("next_run_at")?,
        origin: row.get("origin")?,
        created_at: row.get("created_at")?,
    })
}
