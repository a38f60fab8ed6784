//! Recordings: insert, follow through their states, list, and the questions the recorder
//! asks at start-up (what was open), for retention (what is old) and for time-range
//! playback (what covers a span).

use std::path::{Component, Path};

use rusqlite::types::Value;
use rusqlite::{ffi, params, params_from_iter, Connection, OptionalExtension, Params, Row};

use super::db::Catalogue;
use super::error::CatalogueError;
use super::model::{NewRecording, Page, Recording, RecordingFilter, RecordingState, DEFAULT_LIMIT, MAX_LIMIT};

const COLUMNS: &str = "id, app, stream, state, format, plan, path, created_at, started_at, ended_at, \
                       duration_ms, size_bytes, error, schedule_id, poster_path";

/// When a recording starts, for ordering and time filters: a pending one counts from its
/// creation. Written exactly as in the indexes of the schema, so that they are used.
const START: &str = "COALESCE(started_at, created_at)";

/// The states of recordings that are over.
const FINISHED: &str = "('completed', 'failed', 'interrupted')";

impl Catalogue {
    /// Adds a recording. Fails with [`CatalogueError::PathTaken`] if another recording has
    /// the same path, and [`CatalogueError::ScheduleNotFound`] for an unknown schedule.
    pub fn insert_recording(&self, new: NewRecording) -> Result<Recording, CatalogueError> {
        if let Some(path) = &new.path {
            check_path(path)?;
        }
        let sql = format!(
            "INSERT INTO recordings (app, stream, state, format, plan, path, created_at, started_at, schedule_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING {COLUMNS}"
        );
        let args = params![
            new.app,
            new.stream,
            new.state,
            new.format,
            new.plan,
            new.path,
            new.created_at,
            new.started_at,
            new.schedule_id
        ];
        self.lock()
            .query_row(&sql, args, from_row)
            .map_err(|e| match constraint(&e) {
                Some(ffi::SQLITE_CONSTRAINT_UNIQUE) => CatalogueError::PathTaken {
                    path: new.path.clone().unwrap_or_default(),
                },
                Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
                    CatalogueError::ScheduleNotFound(new.schedule_id.unwrap_or_default())
                }
                _ => self.fail(format_args!("insert a recording of {}/{}", new.app, new.stream))(e),
            })
    }

    /// Whether a recording has the file `path` (relative to the root).
    pub fn path_in_use(&self, path: &str) -> Result<bool, CatalogueError> {
        self.lock()
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM recordings WHERE path = ?1)",
                [path],
                |row| row.get(0),
            )
            .map_err(self.fail(format_args!("look up path {path}")))
    }

    pub fn get(&self, id: i64) -> Result<Recording, CatalogueError> {
        let sql = format!("SELECT {COLUMNS} FROM recordings WHERE id = ?1");
        self.lock()
            .query_row(&sql, [id], from_row)
            .optional()
            .map_err(self.fail(format_args!("read recording {id}")))?
            .ok_or(CatalogueError::RecordingNotFound(id))
    }

    /// Sets the state and the error (`None` clears it); `ended_at`, when given, is the end.
    pub fn update_state(
        &self,
        id: i64,
        state: RecordingState,
        error: Option<&str>,
        ended_at: Option<i64>,
    ) -> Result<Recording, CatalogueError> {
        let sql = format!(
            "UPDATE recordings SET state = ?2, error = ?3, ended_at = COALESCE(?4, ended_at) \
             WHERE id = ?1 RETURNING {COLUMNS}"
        );
        self.lock()
            .query_row(&sql, params![id, state, error, ended_at], from_row)
            .optional()
            .map_err(self.fail(format_args!("set the state of recording {id}")))?
            .ok_or(CatalogueError::RecordingNotFound(id))
    }

    /// Notes how much has been written; cheap enough to call at every fragment.
    pub fn set_progress(&self, id: i64, duration_ms: i64, size_bytes: i64) -> Result<(), CatalogueError> {
        let changed = self
            .lock()
            .prepare_cached("UPDATE recordings SET duration_ms = ?2, size_bytes = ?3 WHERE id = ?1")
            .and_then(|mut stmt| stmt.execute(params![id, duration_ms, size_bytes]))
            .map_err(self.fail(format_args!("note the progress of recording {id}")))?;
        found(changed, CatalogueError::RecordingNotFound(id))
    }

    /// A recording's file was opened: sets its start and path, and its state to `recording`.
    pub fn set_started(&self, id: i64, started_at: i64, path: &str) -> Result<Recording, CatalogueError> {
        check_path(path)?;
        let sql = format!(
            "UPDATE recordings SET started_at = ?2, path = ?3, state = 'recording' \
             WHERE id = ?1 RETURNING {COLUMNS}"
        );
        self.lock()
            .query_row(&sql, params![id, started_at, path], from_row)
            .optional()
            .map_err(|e| match constraint(&e) {
                Some(ffi::SQLITE_CONSTRAINT_UNIQUE) => CatalogueError::PathTaken { path: path.to_owned() },
                _ => self.fail(format_args!("start recording {id}"))(e),
            })?
            .ok_or(CatalogueError::RecordingNotFound(id))
    }

    pub fn set_poster(&self, id: i64, poster_path: &str) -> Result<(), CatalogueError> {
        check_path(poster_path)?;
        let changed = self
            .lock()
            .execute(
                "UPDATE recordings SET poster_path = ?2 WHERE id = ?1",
                params![id, poster_path],
            )
            .map_err(self.fail(format_args!("set the poster of recording {id}")))?;
        found(changed, CatalogueError::RecordingNotFound(id))
    }

    /// Forgets a recording and returns what it was, so the caller can remove its files.
    pub fn delete(&self, id: i64) -> Result<Recording, CatalogueError> {
        let sql = format!("DELETE FROM recordings WHERE id = ?1 RETURNING {COLUMNS}");
        self.lock()
            .query_row(&sql, [id], from_row)
            .optional()
            .map_err(self.fail(format_args!("delete recording {id}")))?
            .ok_or(CatalogueError::RecordingNotFound(id))
    }

    /// One page of the recordings matching `filter`, newest first, and how many match.
    pub fn list(&self, filter: &RecordingFilter) -> Result<Page<Recording>, CatalogueError> {
        let mut clauses = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        let mut narrow = |clause: &str, value: Value| {
            args.push(value);
            clauses.push(format!("{clause} ?{}", args.len()));
        };
        if let Some(app) = &filter.app {
            narrow("app =", Value::Text(app.clone()));
        }
        if let Some(stream) = &filter.stream {
            narrow("stream =", Value::Text(stream.clone()));
        }
        if let Some(state) = filter.state {
            narrow("state =", Value::Text(state.as_str().to_owned()));
        }
        if let Some(from) = filter.from {
            narrow(&format!("{START} >="), Value::Integer(from));
        }
        if let Some(to) = filter.to {
            narrow(&format!("{START} <"), Value::Integer(to));
        }
        let filtered = match clauses.is_empty() {
            true => String::new(),
            false => format!(" WHERE {}", clauses.join(" AND ")),
        };
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        let offset = filter.offset.unwrap_or(0);
        let conn = self.lock();
        let total: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM recordings{filtered}"),
                params_from_iter(&args),
                |row| row.get(0),
            )
            .map_err(self.fail("count recordings"))?;
        let items = if limit == 0 {
            Vec::new()
        } else {
            let n = args.len();
            args.push(Value::Integer(i64::from(limit)));
            args.push(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
            let sql = format!(
                "SELECT {COLUMNS} FROM recordings{filtered} ORDER BY {START} DESC, id DESC LIMIT ?{} OFFSET ?{}",
                n + 1,
                n + 2
            );
            self.all(&conn, &sql, params_from_iter(&args), "list recordings")?
        };
        Ok(Page {
            items,
            total: u64::try_from(total).unwrap_or(0),
            limit,
            offset,
        })
    }

    /// Recordings still `recording`: at start-up these are the ones the last run did not
    /// end (the recorder marks them `interrupted`).
    pub fn open_recordings(&self) -> Result<Vec<Recording>, CatalogueError> {
        let sql = format!("SELECT {COLUMNS} FROM recordings WHERE state = 'recording' ORDER BY id");
        self.all(&self.lock(), &sql, [], "find open recordings")
    }

    /// Finished recordings (completed, failed, interrupted) that ended before `before_ms`
    /// (or started or were created then, without an end), oldest first: what a retention
    /// of N days removes. `app` narrows to one application.
    pub fn older_than(&self, app: Option<&str>, before_ms: i64) -> Result<Vec<Recording>, CatalogueError> {
        let end = "COALESCE(ended_at, started_at, created_at)";
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings WHERE state IN {FINISHED} AND {end} < ?2 \
             AND (?1 IS NULL OR app = ?1) ORDER BY {end}, id"
        );
        self.all(&self.lock(), &sql, params![app, before_ms], "find old recordings")
    }

    /// The recordings of one stream that have a file covering some of `[from_ms, to_ms)`,
    /// by start: what time-range playback stitches together. A recording still being
    /// written counts as reaching the present; a finished one without `ended_at` ends at
    /// `started_at + duration_ms`. Pending and failed recordings are left out.
    pub fn in_range(
        &self,
        app: &str,
        stream: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Recording>, CatalogueError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings \
             WHERE app = ?1 AND stream = ?2 AND state IN ('recording', 'completed', 'interrupted') \
             AND path IS NOT NULL AND started_at IS NOT NULL AND started_at < ?4 \
             AND (state = 'recording' OR COALESCE(ended_at, started_at + duration_ms) > ?3) \
             ORDER BY started_at, id"
        );
        let action = format!("find recordings of {app}/{stream} in a time range");
        self.all(&self.lock(), &sql, params![app, stream, from_ms, to_ms], &action)
    }

    /// Recordings of one stream waiting for it to come, oldest first.
    pub fn pending_for(&self, app: &str, stream: &str) -> Result<Vec<Recording>, CatalogueError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings WHERE app = ?1 AND stream = ?2 AND state = 'pending' \
             ORDER BY created_at, id"
        );
        let action = format!("find pending recordings of {app}/{stream}");
        self.all(&self.lock(), &sql, params![app, stream], &action)
    }

    fn all(
        &self,
        conn: &Connection,
        sql: &str,
        args: impl Params,
        action: impl std::fmt::Display + Copy,
    ) -> Result<Vec<Recording>, CatalogueError> {
        let mut stmt = conn.prepare_cached(sql).map_err(self.fail(action))?;
        let rows = stmt.query_map(args, from_row).map_err(self.fail(action))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.fail(action))
    }
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Recording> {
    Ok(Recording {
        id: row.get("id")?,
        app: row.get("app")?,
        stream: row.get("stream")?,
        state: row.get("state")?,
        format: row.get("format")?,
        plan: row.get("plan")?,
        path: row.get("path")?,
        created_at: row.get("created_at")?,
        started_at: row.get("started_at")?,
        ended_at: row.get("ended_at")?,
        duration_ms: row.get("duration_ms")?,
        size_bytes: row.get("size_bytes")?,
        error: row.get("error")?,
        schedule_id: row.get("schedule_id")?,
        poster_path: row.get("poster_path")?,
    })
}

/// The extended code of a constraint violation.
pub(super) fn constraint(e: &rusqlite::Error) -> Option<std::ffi::c_int> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            Some(f.extended_code)
        }
        _ => None,
    }
}

pub(super) fn found(changed: usize, missing: CatalogueError) -> Result<(), CatalogueError> {
    if changed == 0 {
        Err(missing)
    } else {
        Ok(())
    }
}

/// Paths are relative to the recording root and stay under it: whoever deletes a
/// recording's files later trusts them.
fn check_path(path: &str) -> Result<(), CatalogueError> {
    let components = || Path::new(path).components();
    let inside = !path.starts_with(['/', '\\'])
        && components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && components().any(|c| matches!(c, Component::Normal(_)))
        && !path.split(['/', '\\']).any(|part| part == "..");
    if inside {
        Ok(())
    } else {
        Err(CatalogueError::PathOutsideRoot { path: path.to_owned() })
    }
}
