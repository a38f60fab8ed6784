//! Recordings: the catalogue of what was recorded and what is scheduled (an SQLite file),
//! the cron schedules that open recording windows, and the service that decides what is
//! recorded now (the recorder itself is an output of the stream's path: `outputs/record`).
//!
//! - `catalogue/`: recordings and schedules in SQLite; `schedule.rs`: cron windows.
//! - `service.rs`: requests, what is being recorded, the recorder's ledger.
//! - `scheduler.rs`: opens and closes schedule windows; `retention.rs`: deletes old ones.
//! - `recovery.rs`: at start-up, what a crash left is made playable; `poster.rs`: stills.
//! - `vod.rs`: the HLS plans of finished recordings, for playback.

pub mod catalogue;
pub mod poster;
pub mod recovery;
pub mod retention;
pub mod schedule;
pub mod scheduler;
pub mod service;
pub mod vod;

pub use catalogue::{
    Catalogue, CatalogueError, NewRecording, Page, Recording, RecordingFilter, RecordingFormat, RecordingPlan,
    RecordingState, Schedule, ScheduleOrigin,
};
pub use schedule::{local_zone, next_start_after, window_containing, ScheduleSpec, Timetable};
pub use service::Recordings;
