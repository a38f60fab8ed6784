//! What a client asks to do with a stream: the one word the access lists and the signed-URL
//! checks both key their rules on.

use std::fmt;

/// Publish (be the stream's source) or play (be one of its viewers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Publish,
    Play,
}

impl Action {
    /// `publish` or `play`: the word config keys start with and the generic HMAC scheme signs.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
