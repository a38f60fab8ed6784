//! What can go wrong with the catalogue, with the database file or the row it concerns.

/// A catalogue operation failed. `db` is the database file (or `:memory:`).
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("database {db}: cannot create its folder: {source}")]
    CreateDir { db: String, source: std::io::Error },
    #[error("database {db}: {action}: {source}")]
    Sqlite {
        db: String,
        action: String,
        source: rusqlite::Error,
    },
    #[error("database {db}: schema version {found} is newer than this server's {known}; run a newer estuary or restore a backup")]
    SchemaTooNew { db: String, found: i64, known: i64 },
    #[error("recording {0} not found")]
    RecordingNotFound(i64),
    #[error("schedule {0} not found")]
    ScheduleNotFound(i64),
    #[error("recording path {path:?} is already used by another recording")]
    PathTaken { path: String },
    #[error("recording path {path:?} must be relative to the recording root, without `..`")]
    PathOutsideRoot { path: String },
    #[error("source {0} not found")]
    SourceNotFound(i64),
    #[error("database {db}: source {id} is stored as unreadable JSON: {why}")]
    BadSource { db: String, id: i64, why: String },
    #[error("schedule: {}", .0.join("; "))]
    InvalidSchedule(Vec<String>),
}
