//! Why one try of a pull ended.

use estuary_protocol::rtmp::client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("cannot connect to {addr}: {why}")]
    Connect { addr: String, why: String },
    #[error("{0}")]
    Rtmp(#[from] ClientError),
    #[error("connection: {0}")]
    Io(String),
    #[error("nothing received for {0} ms")]
    Silent(u64),
    #[error("the source ended the stream ({0})")]
    Ended(String),
    #[error("the stream is fed by someone else: {0}")]
    Busy(String),
    #[error("replaced by another source on the stream")]
    Replaced,
    #[error("bad media: {0}")]
    Media(String),
    #[error("{0}")]
    Http(#[from] super::hls::fetch::FetchError),
    #[error("playlist {url}: {why}")]
    Playlist { url: String, why: String },
}
