//! The catalogue of recordings and schedules, in one embedded SQLite file.
//!
//! A recording row is created when a recording is decided (`pending`) or starts
//! (`recording`), follows its file while it is written (`set_progress`), and ends
//! `completed`, `failed` or — found still open at the next start — `interrupted`.
//! Retention deletes a row together with its files. Schedules say when windows open
//! ([`crate::recordings::schedule`]); a recording they opened points back at them.
//!
//! Every method is a short synchronous call under one mutex (see [`Catalogue`]); times
//! are Unix milliseconds passed in by the caller, never read from the clock here.

mod db;
mod error;
mod model;
mod recording_queries;
mod schedule_queries;
mod schema;
mod source_queries;

pub use db::Catalogue;
pub use error::CatalogueError;
pub use model::{
    NewRecording, Page, Recording, RecordingFilter, RecordingFormat, RecordingPlan, RecordingState, Schedule,
    ScheduleOrigin, UnknownWord, DEFAULT_LIMIT, MAX_LIMIT,
};
pub use schema::SCHEMA_VERSION;

#[cfg(test)]
mod tests;
