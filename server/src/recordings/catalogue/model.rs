//! What the catalogue stores: recordings, schedules, and the closed sets of words in their
//! text columns. Times are Unix milliseconds (UTC); sizes are bytes.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

use crate::recordings::schedule::ScheduleSpec;

/// A word that is not one of a closed set (a corrupt row, a bad query parameter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {what} (expected one of: {})", .expected.join(", "))]
pub struct UnknownWord {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

/// A closed set of words stored as TEXT: `as_str`, `FromStr`, `Display`, serde (the same
/// lowercase words) and SQLite conversions, from one list.
macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;

            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(UnknownWord {
                        what: $what,
                        value: s.to_owned(),
                        expected: &[$($word,)+],
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value.as_str()?.parse().map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

word_enum! {
    /// Where a recording is in its life.
    RecordingState, "recording state" {
        /// Decided (by hand or by a schedule) but its stream has not come yet.
        Pending = "pending",
        /// Its file is being written.
        Recording = "recording",
        /// Ended normally; the file is final.
        Completed = "completed",
        /// Ended by an error (`error` says which); the file may hold what came before it.
        Failed = "failed",
        /// Found still `recording` at start-up: the server stopped without ending it. The
        /// fragmented file is playable up to its last fragment.
        Interrupted = "interrupted",
    }
}

word_enum! {
    /// The container of a recording's file.
    RecordingFormat, "recording format" {
        Mp4 = "mp4",
        Flv = "flv",
    }
}

word_enum! {
    /// Why a recording exists.
    RecordingPlan, "recording plan" {
        /// One file per publish session of a stream recorded by config.
        Session = "session",
        /// One of the fixed-length files a stream recorded by config is cut into.
        Segment = "segment",
        /// Started through the API.
        Manual = "manual",
        /// Opened by a schedule's window (`schedule_id`).
        Schedule = "schedule",
    }
}

word_enum! {
    /// Who owns a schedule.
    ScheduleOrigin, "schedule origin" {
        /// From the config file: replaced at every start, see `replace_config_schedules`.
        Config = "config",
        /// Created through the API: kept until deleted.
        Api = "api",
    }
}

/// One recording: a file under the recording root, or the intent to write one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recording {
    /// Never reused, even after a delete.
    pub id: i64,
    pub app: String,
    pub stream: String,
    pub state: RecordingState,
    pub format: RecordingFormat,
    pub plan: RecordingPlan,
    /// The file, relative to the recording root; `None` until the recording starts.
    pub path: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// Media time written so far (final once ended).
    pub duration_ms: i64,
    pub size_bytes: i64,
    pub error: Option<String>,
    /// The schedule that opened it; `None` also once that schedule is deleted.
    pub schedule_id: Option<i64>,
    /// A still image of the recording, relative to the recording root.
    pub poster_path: Option<String>,
}

/// What [`insert_recording`](super::Catalogue::insert_recording) needs; the rest starts
/// empty (no end, no error, no poster, zero duration and size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecording {
    pub app: String,
    pub stream: String,
    /// Usually `Pending` (waiting for its stream) or `Recording` (writing at once).
    pub state: RecordingState,
    pub format: RecordingFormat,
    pub plan: RecordingPlan,
    pub path: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub schedule_id: Option<i64>,
}

/// Which recordings [`list`](super::Catalogue::list) returns. Every field narrows; none
/// set lists everything. `from`/`to` bound the start (`started_at`, or `created_at` for
/// one not started): `from <= start < to`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RecordingFilter {
    pub app: Option<String>,
    pub stream: Option<String>,
    pub state: Option<RecordingState>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Page size: [`DEFAULT_LIMIT`] when not set, at most [`MAX_LIMIT`]; 0 returns only the
    /// total.
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// Page size of a listing that does not say.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page a listing returns, whatever it asks.
pub const MAX_LIMIT: u32 = 1000;

/// One page of a listing, newest first, with how many match in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    /// The page size applied (after the default and the cap).
    pub limit: u32,
    pub offset: u64,
}

/// A stored schedule: the spec plus its bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    pub id: i64,
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    /// When its last window opened, as the recorder noted with `set_run_times`.
    pub last_run_at: Option<i64>,
    /// When its next window opens, as the recorder computed it; cleared by an update.
    pub next_run_at: Option<i64>,
    pub origin: ScheduleOrigin,
    pub created_at: i64,
}
