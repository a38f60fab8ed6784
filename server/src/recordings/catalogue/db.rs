//! The catalogue's one SQLite connection: opening, pragmas, migration, locking.

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

use super::error::CatalogueError;
use super::schema::{self, Migration};

/// How long a statement waits for a lock held by another process (a backup, the `sqlite3`
/// shell) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The catalogue of recordings and schedules: one SQLite database file.
///
/// Every method is synchronous and short (one statement or one small transaction) under a
/// `std::sync::Mutex`: call them from `tokio::task::spawn_blocking`, never while holding
/// another lock. Share it in an `Arc`.
pub struct Catalogue {
    conn: Mutex<Connection>,
    /// The file, for error messages.
    db: String,
}

impl fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalogue")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl Catalogue {
    /// Opens the database at `path`, creating it (and its folders) if missing, and brings
    /// its schema up to date.
    ///
    /// The journal is WAL with `synchronous=NORMAL`: a reader never waits for the writer,
    /// and a power cut may lose the last transactions but never corrupts the file — the
    /// recorder can tell them again from the files on disk.
    pub fn open(path: &Path) -> Result<Catalogue, CatalogueError> {
        let db = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| CatalogueError::CreateDir { db: db.clone(), source })?;
        }
        let conn = Connection::open(path).map_err(|source| CatalogueError::Sqlite {
            db: db.clone(),
            action: "open".into(),
            source,
        })?;
        Catalogue::start(conn, db)
    }

    /// A catalogue that lives in memory and vanishes with it, for tests.
    pub fn open_in_memory() -> Result<Catalogue, CatalogueError> {
        let db = ":memory:".to_owned();
        let conn = Connection::open_in_memory().map_err(|source| CatalogueError::Sqlite {
            db: db.clone(),
            action: "open".into(),
            source,
        })?;
        Catalogue::start(conn, db)
    }

    fn start(mut conn: Connection, db: String) -> Result<Catalogue, CatalogueError> {
        let fail = |action: &str| {
            let db = db.clone();
            let action = action.to_owned();
            move |source| CatalogueError::Sqlite { db, action, source }
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail("set busy timeout"))?;
        // Answers the mode it ended in: "memory" for an in-memory database, the old mode
        // where WAL is not possible (some network file systems).
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(fail("switch to WAL"))?;
        if mode != "wal" && mode != "memory" {
            tracing::warn!(
                db,
                mode,
                "the recordings catalogue cannot use WAL; writes will block reads"
            );
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail("set synchronous"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(fail("enable foreign keys"))?;
        match schema::migrate(&mut conn).map_err(fail("migrate the schema"))? {
            Migration::Done { from } if from < schema::SCHEMA_VERSION => {
                tracing::info!(
                    db,
                    from,
                    to = schema::SCHEMA_VERSION,
                    "recordings catalogue schema migrated"
                );
            }
            Migration::Done { .. } => {}
            Migration::TooNew { found } => {
                return Err(CatalogueError::SchemaTooNew {
                    db,
                    found,
                    known: schema::SCHEMA_VERSION,
                })
            }
        }
        Ok(Catalogue {
            conn: Mutex::new(conn),
            db,
        })
    }

    /// The connection. A panic while it was held cannot have left a transaction open (a
    /// dropped `Transaction` rolls back), so a poisoned lock is used as is.
    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The database file, for error messages.
    pub(super) fn db_name(&self) -> &str {
        &self.db
    }

    /// Wraps an SQLite error with the database and what was being done.
    pub(super) fn fail<'a>(
        &'a self,
        action: impl fmt::Display + 'a,
    ) -> impl FnOnce(rusqlite::Error) -> CatalogueError + 'a {
        move |source| CatalogueError::Sqlite {
            db: self.db.clone(),
            action: action.to_string(),
            source,
        }
    }
}
