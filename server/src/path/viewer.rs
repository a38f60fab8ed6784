//! The hold an admitted viewer has on its path: RTMP and HTTP-FLV players (which also read
//! the stream through a [`Subscriber`]) and HLS playback sessions (which read segments).
//! Dropping the hold (or [`Viewer::finish`]) tells the hooks (`on_stop`) and the path.

use std::sync::Arc;

use super::registry::Paths;
use super::Path;
use crate::config::PlayConfig;
use crate::hooks::HookSubject;
use crate::hooks::Receipt;
use crate::stream::Subscriber;

/// A viewer's hold on a path.
pub struct Viewer {
    path: Arc<Path>,
    paths: Paths,
    subject: HookSubject,
    left: bool,
}

impl Viewer {
    /// Counts a viewer of `path` in; the first viewer of a path with no source may start an
    /// on-demand one.
    pub fn join(paths: &Paths, path: Arc<Path>, subject: HookSubject) -> Viewer {
        paths.viewer_arrived(&path);
        Viewer {
            path,
            paths: paths.clone(),
            subject,
            left: false,
        }
    }

    pub fn path(&self) -> &Arc<Path> {
        &self.path
    }

    /// A reader of the stream from the join snapshot on.
    pub fn subscribe(&self, play: &PlayConfig) -> Subscriber {
        Subscriber::new(Arc::clone(self.path.stream()), play)
    }

    /// The viewer leaves now; the receipt settles when its `on_stop` is done with.
    pub fn finish(mut self) -> Receipt {
        self.leave()
    }

    fn leave(&mut self) -> Receipt {
        if std::mem::replace(&mut self.left, true) {
            return Receipt::settled();
        }
        self.paths.viewer_left(&self.path);
        self.path.events().stopped(&self.subject)
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.leave();
    }
}
