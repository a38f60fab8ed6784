//! The database schema and its migrations, tracked in `PRAGMA user_version`.
//!
//! `MIGRATIONS[i]` takes a database from version `i` to `i + 1`, in one transaction with
//! the version bump, so a crash leaves either the old or the new schema. To change the
//! schema, append a migration (`ALTER TABLE recordings ADD COLUMN ...`); never edit one
//! that has shipped.

use rusqlite::Connection;

/// Version 1: recordings and the schedules that may have started them.
const V1: &str = "
CREATE TABLE schedules (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    app           TEXT    NOT NULL,
    stream        TEXT    NOT NULL,
    cron          TEXT    NOT NULL,
    duration_secs INTEGER,
    stop_cron     TEXT,
    timezone      TEXT,
    active        INTEGER NOT NULL DEFAULT 1,
    last_run_at   INTEGER,
    next_run_at   INTEGER,
    origin        TEXT    NOT NULL CHECK (origin IN ('config', 'api')),
    created_at    INTEGER NOT NULL,
    CHECK ((duration_secs IS NULL) <> (stop_cron IS NULL))
);
CREATE TABLE recordings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    app         TEXT    NOT NULL,
    stream      TEXT    NOT NULL,
    state       TEXT    NOT NULL
                CHECK (state IN ('pending', 'recording', 'completed', 'failed', 'interrupted')),
    format      TEXT    NOT NULL CHECK (format IN ('mp4', 'flv')),
    plan        TEXT    NOT NULL CHECK (plan IN ('session', 'segment', 'manual', 'schedule')),
    path        TEXT    UNIQUE,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    ended_at    INTEGER,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    size_bytes  INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    schedule_id INTEGER REFERENCES schedules(id) ON DELETE SET NULL,
    poster_path TEXT
);
CREATE INDEX recordings_by_stream ON recordings (app, stream, COALESCE(started_at, created_at));
CREATE INDEX recordings_by_time ON recordings (COALESCE(started_at, created_at));
CREATE INDEX recordings_by_state ON recordings (state);
CREATE INDEX recordings_by_schedule ON recordings (schedule_id);
";

/// Version 2: live sources created through the API (issue 14). The spec is the API's JSON
/// body; ids start above 1000, which `[[sources]]` in the config file use.
const V2_SOURCES: &str = "
CREATE TABLE sources (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    spec       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
INSERT INTO sqlite_sequence (name, seq) VALUES ('sources', 1000);
";

const MIGRATIONS: &[&str] = &[V1, V2_SOURCES];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What [`migrate`] found.
pub enum Migration {
    /// At [`SCHEMA_VERSION`] now (`from` is where it started).
    Done { from: i64 },
    /// Written by a newer build: left alone.
    TooNew { found: i64 },
}

/// Brings the database up to [`SCHEMA_VERSION`].
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<Migration> {
    let from: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if from > SCHEMA_VERSION {
        return Ok(Migration::TooNew { found: from });
    }
    for (version, sql) in (1..).zip(MIGRATIONS).skip(usize::try_from(from).unwrap_or(0)) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(Migration::Done { from })
}
