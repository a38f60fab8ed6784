//! Recordings: the catalogue of what was recorded and what is scheduled (an SQLite file),
//! and the cron schedules that open recording windows. The recorder (an output of a
//! stream's path) and the API use these; this folder does no media I/O.

pub mod catalogue;
pub mod schedule;

pub use catalogue::{
    Catalogue, CatalogueError, NewRecording, Page, Recording, RecordingFilter, RecordingFormat, RecordingPlan,
    RecordingState, Schedule, ScheduleOrigin,
};
pub use schedule::{local_zone, next_start_after, window_containing, ScheduleSpec, Timetable};
