//! The recordings service: which streams are recorded now, what was asked for (by hand, by a
//! schedule's open window, by `record.enabled`), and the catalogue kept in step with what the
//! recorder writes. It is the recorder's [`Ledger`]; the API and the scheduler drive it.
//!
//! Every method is synchronous and may wait briefly on the SQLite catalogue: async callers
//! use `spawn_blocking`; the recorder calls it from its writer threads.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::catalogue::{
    Catalogue, CatalogueError, NewRecording, Recording, RecordingFormat, RecordingPlan, RecordingState,
};
use crate::config::{Config, RecordConfig, RecordPlan};
use crate::hooks::{ClientInfo, HookSubject, Hooks, NotifyEvent, StreamInfo};
use crate::outputs::record::{Assignment, FailReason, Finished, Format, Ledger, Settings};
use crate::path::demand::Demand;
use crate::stream::StreamKey;

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A recording being written.
struct Active {
    /// The catalogue id of the file being written now.
    id: i64,
    /// The id the recording was started under (an API client stops it by this one).
    first_id: i64,
    plan: RecordingPlan,
    schedule_id: Option<i64>,
    stop: CancellationToken,
    /// A file is being written (not waiting for the publisher, not failed).
    writing: bool,
    /// Who publishes what is recorded: `on_dvr` names them, as SRS does.
    source: Option<HookSubject>,
}

/// A recording asked for and waiting for its stream.
#[derive(Debug, Clone)]
struct Request {
    id: i64,
    plan: RecordingPlan,
    schedule_id: Option<i64>,
}

/// Why the recordings could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("recording root {0}: {1}")]
    Root(String, std::io::Error),
    #[error("recording root {0} is in use by another estuary process")]
    InUse(String),
    #[error("{0}")]
    Catalogue(#[from] CatalogueError),
}

/// Why a recording could not be started by hand.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("stream {key} is being recorded already (recording {id})")]
    AlreadyRecording { key: String, id: i64 },
    #[error("schedule {0}'s recording was stopped by hand; it records again in its next window")]
    StoppedByHand(i64),
    #[error("{0}")]
    Catalogue(#[from] CatalogueError),
}

/// Why a recording could not be stopped or deleted.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("recording {0} is not being recorded")]
    NotActive(i64),
    #[error("recording {0} is being recorded; stop it first")]
    Busy(i64),
    #[error("{0}")]
    Catalogue(#[from] CatalogueError),
}

/// The service; cheap to clone.
#[derive(Clone)]
pub struct Recordings {
    inner: Arc<Inner>,
}

struct Inner {
    /// Held while the process runs: this root is ours.
    _lock: Option<Flock<std::fs::File>>,
    config: Arc<Config>,
    catalogue: Catalogue,
    hooks: Hooks,
    active: Mutex<HashMap<StreamKey, Active>>,
    requests: Mutex<HashMap<StreamKey, Request>>,
    /// The HLS plans of recordings being played.
    vod: super::vod::VodIndexes,
    /// Schedules whose recording was stopped by hand in their open window.
    stopped: Mutex<HashSet<i64>>,
    /// Streams wanted by a recording requested or being written: their on-demand sources (a
    /// pulled source with `on_demand`) run for the recording as for a viewer.
    demands: Mutex<HashMap<StreamKey, Demand>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Recordings {
    /// Opens the catalogue (`{record.root}/catalogue.db`) and takes the config's schedules.
    /// One process at a time owns a root (`catalogue.lock`): a second one would take the
    /// first one's recordings for crashed ones.
    pub fn open(config: Arc<Config>, hooks: Hooks) -> Result<Recordings, OpenError> {
        let root = Path::new(&config.record.root);
        std::fs::create_dir_all(root).map_err(|e| OpenError::Root(root.display().to_string(), e))?;
        let lock_path = root.join("catalogue.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| OpenError::Root(lock_path.display().to_string(), e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| OpenError::InUse(root.display().to_string()))?;
        let catalogue = Catalogue::open(&root.join("catalogue.db"))?;
        Recordings::with_catalogue(config, hooks, catalogue, Some(lock))
    }

    pub fn with_catalogue(
        config: Arc<Config>,
        hooks: Hooks,
        catalogue: Catalogue,
        lock: Option<Flock<std::fs::File>>,
    ) -> Result<Recordings, OpenError> {
        catalogue.replace_config_schedules(&RecordConfig::config_schedules(&config), now_ms())?;
        Ok(Recordings {
            inner: Arc::new(Inner {
                _lock: lock,
                config,
                catalogue,
                hooks,
                active: Mutex::new(HashMap::new()),
                requests: Mutex::new(HashMap::new()),
                vod: super::vod::VodIndexes::default(),
                stopped: Mutex::new(HashSet::new()),
                demands: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.inner.catalogue
    }

    /// The HLS plans of finished recordings.
    pub fn vod(&self) -> &super::vod::VodIndexes {
        &self.inner.vod
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    /// The root an app's recordings are under.
    pub fn root(&self, app: &str) -> PathBuf {
        PathBuf::from(RecordConfig::for_app(&self.inner.config, app).root)
    }

    /// Recordings writing a file now.
    pub fn active_count(&self) -> usize {
        lock(&self.inner.active).values().filter(|a| a.writing).count()
    }

    /// Notes whether the recording whose current file is `id` is writing.
    fn set_writing(&self, id: i64, writing: bool) {
        if let Some(a) = lock(&self.inner.active).values_mut().find(|a| a.id == id) {
            a.writing = writing;
        }
    }

    /// Whether recording `id` (or the recording it continues) is being written.
    pub fn is_active(&self, id: i64) -> bool {
        lock(&self.inner.active)
            .values()
            .any(|a| a.id == id || a.first_id == id)
    }

    /// A recording of `key` asked for by hand: recorded from now if the stream is live (the
    /// caller then starts the path's recorder), else as soon as it comes. The new recording
    /// is `pending` until its file opens.
    pub fn request(&self, key: &StreamKey) -> Result<Recording, StartError> {
        self.request_for(key, RecordingPlan::Manual, None)
    }

    /// A schedule's window opened for `key`.
    pub fn request_for(
        &self,
        key: &StreamKey,
        plan: RecordingPlan,
        schedule_id: Option<i64>,
    ) -> Result<Recording, StartError> {
        if let Some(schedule) = schedule_id.filter(|s| lock(&self.inner.stopped).contains(s)) {
            return Err(StartError::StoppedByHand(schedule));
        }
        if let Some(active) = lock(&self.inner.active).get(key) {
            return Err(StartError::AlreadyRecording {
                key: key.to_string(),
                id: active.first_id,
            });
        }
        if let Some(request) = lock(&self.inner.requests).get(key).cloned() {
            return Ok(self.inner.catalogue.get(request.id)?);
        }
        let recording = self.insert(key, RecordingState::Pending, plan, schedule_id)?;
        lock(&self.inner.requests).insert(
            key.clone(),
            Request {
                id: recording.id,
                plan,
                schedule_id,
            },
        );
        info!(stream = %key, recording = recording.id, plan = plan.as_str(), "recording requested");
        Ok(recording)
    }

    /// Keeps `key`'s stream wanted (its on-demand source running) while a recording of it is
    /// requested or being written; `demand` is made only if none is held yet.
    pub fn keep_wanted(&self, key: &StreamKey, demand: impl FnOnce() -> Demand) {
        let recorded = lock(&self.inner.requests).contains_key(key) || lock(&self.inner.active).contains_key(key);
        if recorded {
            lock(&self.inner.demands).entry(key.clone()).or_insert_with(demand);
        }
    }

    /// The recording of `key` is over (or never started): its stream is not wanted any more.
    fn unwant(&self, key: &StreamKey) {
        let demand = lock(&self.inner.demands).remove(key);
        drop(demand);
    }

    /// Stops recording `id`: a recording being written ends its file (which becomes
    /// `completed`); one still waiting for its stream ends `failed`.
    pub fn stop(&self, id: i64) -> Result<Recording, ControlError> {
        let active = lock(&self.inner.active)
            .values()
            .find(|a| a.id == id || a.first_id == id)
            .map(|a| (a.stop.clone(), a.schedule_id));
        if let Some((stop, schedule)) = active {
            if let Some(schedule) = schedule {
                lock(&self.inner.stopped).insert(schedule);
            }
            stop.cancel();
            info!(recording = id, "recording stopped by request");
            return Ok(self.inner.catalogue.get(id)?);
        }
        let waiting = {
            let mut requests = lock(&self.inner.requests);
            let key = requests.iter().find(|(_, r)| r.id == id).map(|(k, _)| k.clone());
            key.and_then(|k| requests.remove(&k).map(|r| (k, r)))
        };
        if let Some(key) = waiting.as_ref().map(|(k, _)| k.clone()) {
            self.unwant(&key);
            let error = "stopped before the stream was live";
            return Ok(self
                .inner
                .catalogue
                .update_state(id, RecordingState::Failed, Some(error), Some(now_ms()))?);
        }
        self.inner.catalogue.get(id)?;
        Err(ControlError::NotActive(id))
    }

    /// A schedule's window closed: its recording ends (or, never started, fails).
    pub fn close_window(&self, schedule_id: i64) {
        lock(&self.inner.stopped).remove(&schedule_id);
        let active = lock(&self.inner.active)
            .values()
            .find(|a| a.schedule_id == Some(schedule_id))
            .map(|a| a.stop.clone());
        if let Some(stop) = active {
            stop.cancel();
        }
        let waiting = {
            let mut requests = lock(&self.inner.requests);
            let key = requests
                .iter()
                .find(|(_, r)| r.schedule_id == Some(schedule_id))
                .map(|(k, _)| k.clone());
            key.and_then(|k| requests.remove(&k).map(|r| (k, r)))
        };
        if let Some((key, request)) = waiting {
            self.unwant(&key);
            let error = "the stream was not live while the schedule's window was open";
            if let Err(e) =
                self.inner
                    .catalogue
                    .update_state(request.id, RecordingState::Failed, Some(error), Some(now_ms()))
            {
                warn!(cause = %e, "catalogue not updated");
            }
        }
    }

    /// Deletes recording `id` and its files (not while it is being written).
    pub fn delete(&self, id: i64) -> Result<Recording, ControlError> {
        if self.is_active(id) {
            return Err(ControlError::Busy(id));
        }
        let waiting: Vec<StreamKey> = {
            let mut requests = lock(&self.inner.requests);
            let keys = requests
                .iter()
                .filter(|(_, r)| r.id == id)
                .map(|(k, _)| k.clone())
                .collect();
            requests.retain(|_, r| r.id != id);
            keys
        };
        for key in &waiting {
            self.unwant(key);
        }
        let recording = self.inner.catalogue.delete(id)?;
        self.remove_files(&recording);
        Ok(recording)
    }

    /// Removes a recording's file and poster from disk, and the folders they leave empty.
    pub fn remove_files(&self, recording: &Recording) {
        let root = self.root(&recording.app);
        for relative in [&recording.path, &recording.poster_path].into_iter().flatten() {
            let path = root.join(relative);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warn!(file = %path.display(), cause = %e, "recording file not removed"),
            }
        }
        if let Some(relative) = &recording.path {
            // `remove_dir` only removes an empty folder: the first one still in use stops it.
            let mut dir = root.join(relative);
            while dir.pop() && dir.starts_with(&root) && dir != root {
                if std::fs::remove_dir(&dir).is_err() {
                    break;
                }
            }
        }
    }

    fn insert(
        &self,
        key: &StreamKey,
        state: RecordingState,
        plan: RecordingPlan,
        schedule_id: Option<i64>,
    ) -> Result<Recording, CatalogueError> {
        let record = RecordConfig::for_app(&self.inner.config, &key.app);
        self.inner.catalogue.insert_recording(NewRecording {
            app: key.app.clone(),
            stream: key.name.clone(),
            state,
            format: record.format,
            plan,
            path: None,
            created_at: now_ms(),
            started_at: None,
            schedule_id,
        })
    }

    /// How a recording of `key` is written.
    fn settings(&self, key: &StreamKey, plan: RecordingPlan) -> Settings {
        let record = RecordConfig::for_app(&self.inner.config, &key.app);
        let segmented =
            plan == RecordingPlan::Segment || (record.plan == RecordPlan::Segment && plan == RecordingPlan::Schedule);
        Settings {
            root: PathBuf::from(&record.root),
            template: record.path_template.clone(),
            zone: super::schedule::local_zone(),
            format: match record.format {
                RecordingFormat::Mp4 => Format::Mp4,
                RecordingFormat::Flv => Format::Flv,
            },
            segment: segmented.then(|| Duration::from_secs_f64(record.segment_minutes * 60.0)),
            fragment: Duration::from_millis(record.fragment_ms),
            min_free_bytes: record.min_free_bytes,
            max_queue_bytes: record.max_queue_bytes,
        }
    }

    /// Who publishes what recording `id` (its current file) records.
    fn source_of(&self, id: i64) -> Option<HookSubject> {
        lock(&self.inner.active)
            .values()
            .find(|a| a.id == id || a.first_id == id)
            .and_then(|a| a.source.clone())
    }

    /// Tells the hooks a recording file is done (or failed). `source` is the publisher that
    /// was recorded, named as in its `on_publish` (client id, ip, tcUrl, param); without one
    /// (a recording recovered after a crash) the client is `dvr-{id}`.
    pub(super) fn notify_dvr(&self, recording: &Recording, error: Option<&str>, source: Option<&HookSubject>) {
        let root = self.root(&recording.app);
        let cwd = std::fs::canonicalize(&root).unwrap_or(root);
        let (client, stream) = match source {
            Some(subject) => (subject.client.clone(), subject.stream.clone()),
            None => (
                ClientInfo::new(format!("dvr-{}", recording.id), "127.0.0.1", recording.app.clone()),
                StreamInfo {
                    stream: recording.stream.clone(),
                    param: String::new(),
                    // The stream of a recording recovered after a crash is gone: no id.
                    stream_id: String::new(),
                },
            ),
        };
        self.inner.hooks.notify(&NotifyEvent::Dvr {
            client,
            stream,
            cwd: cwd.display().to_string(),
            file: recording.path.clone().unwrap_or_default(),
            recording_id: Some(recording.id),
            error: error.map(str::to_string),
        });
    }

    fn log_err<T>(&self, result: Result<T, CatalogueError>) -> Option<T> {
        result.map_err(|e| warn!(cause = %e, "catalogue not updated")).ok()
    }
}

impl Ledger for Recordings {
    fn wanted(&self, key: &StreamKey, source: Option<&HookSubject>) -> Option<Assignment> {
        if lock(&self.inner.active).contains_key(key) {
            return None;
        }
        let requested = lock(&self.inner.requests).remove(key);
        let (id, plan, schedule_id) = match requested {
            Some(r) => (Some(r.id), r.plan, r.schedule_id),
            None => {
                let record = RecordConfig::for_app(&self.inner.config, &key.app);
                if !record.enabled {
                    return None;
                }
                let plan = match record.plan {
                    RecordPlan::Session => RecordingPlan::Session,
                    RecordPlan::Segment => RecordingPlan::Segment,
                };
                (None, plan, None)
            }
        };
        let stop = CancellationToken::new();
        lock(&self.inner.active).insert(
            key.clone(),
            Active {
                id: id.unwrap_or(0),
                first_id: id.unwrap_or(0),
                plan,
                schedule_id,
                stop: stop.clone(),
                writing: false,
                source: source.cloned(),
            },
        );
        Some(Assignment {
            id,
            key: key.clone(),
            settings: self.settings(key, plan),
            stop,
        })
    }

    fn first_file(&self, key: &StreamKey) -> Option<i64> {
        let (plan, schedule_id) = {
            let active = lock(&self.inner.active);
            let a = active.get(key)?;
            (a.plan, a.schedule_id)
        };
        let recording = self.log_err(self.insert(key, RecordingState::Pending, plan, schedule_id))?;
        if let Some(a) = lock(&self.inner.active).get_mut(key) {
            a.id = recording.id;
            a.first_id = recording.id;
        }
        Some(recording.id)
    }

    fn is_taken(&self, relative: &Path) -> bool {
        // Unreadable: taken, so no two recordings ever share a file.
        relative
            .to_str()
            .is_none_or(|r| self.inner.catalogue.path_in_use(r).unwrap_or(true))
    }

    fn opened(&self, id: i64, path: &Path) {
        self.set_writing(id, true);
        self.log_err(self.inner.catalogue.set_started(id, now_ms(), &path.to_string_lossy()));
    }

    fn next_segment(&self, previous: i64) -> Option<i64> {
        let (key, plan, schedule_id) = {
            let active = lock(&self.inner.active);
            let (key, a) = active.iter().find(|(_, a)| a.id == previous)?;
            if a.stop.is_cancelled() {
                return None;
            }
            (key.clone(), a.plan, a.schedule_id)
        };
        let recording = self.log_err(self.insert(&key, RecordingState::Pending, plan, schedule_id))?;
        if let Some(a) = lock(&self.inner.active).get_mut(&key) {
            a.id = recording.id;
        }
        Some(recording.id)
    }

    fn progress(&self, id: i64, duration_ms: u64, size_bytes: u64) {
        self.log_err(
            self.inner
                .catalogue
                .set_progress(id, duration_ms as i64, size_bytes as i64),
        );
    }

    fn completed(&self, id: i64, file: &Finished) {
        self.set_writing(id, false);
        let catalogue = &self.inner.catalogue;
        self.log_err(catalogue.set_progress(id, file.duration_ms as i64, file.size_bytes as i64));
        if let Some(recording) =
            self.log_err(catalogue.update_state(id, RecordingState::Completed, None, Some(now_ms())))
        {
            self.notify_dvr(&recording, None, self.source_of(id).as_ref());
            if RecordConfig::for_app(&self.inner.config, &recording.app).poster {
                super::poster::make(catalogue, &self.root(&recording.app), &recording);
            }
        }
    }

    fn failed(&self, id: i64, reason: FailReason, error: &str, file: Option<&Finished>) {
        self.set_writing(id, false);
        let catalogue = &self.inner.catalogue;
        if let Some(file) = file {
            self.log_err(catalogue.set_progress(id, file.duration_ms as i64, file.size_bytes as i64));
        }
        let error = format!("{}: {error}", reason.as_str());
        if let Some(recording) =
            self.log_err(catalogue.update_state(id, RecordingState::Failed, Some(&error), Some(now_ms())))
        {
            self.notify_dvr(&recording, Some(&error), self.source_of(id).as_ref());
        }
    }

    fn released(&self, key: &StreamKey) {
        lock(&self.inner.active).remove(key);
        self.unwant(key);
    }
}
