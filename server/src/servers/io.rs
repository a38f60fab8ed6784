//! Vectored writes of shared buffers: a player's batch of packets goes to the socket as one
//! `writev` of the packets' shared `Bytes`, never copied into a per-player buffer.
//!
//! Writes go through `&OwnedWriteHalf` (`try_write_vectored`, then `writable` when the
//! socket is full) rather than `AsyncWrite`, because a player's socket is shared with its
//! stream, which writes to it directly while the player is parked (`stream/direct.rs`).
//!
//! Every write has a deadline (DESIGN.md rule 2): a socket that accepts no byte for the
//! caller's `stall` limit ends the write with [`WriteError::Stalled`], and a write waiting
//! for the socket ends at once when its connection is told to stop (kick, shutdown), so a
//! peer that never reads can hold neither its task nor shutdown. The timer and the stop
//! check cost nothing until the socket is full.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::net::tcp::OwnedWriteHalf;
use tokio_util::sync::CancellationToken;

/// Most buffers handed to one `writev` (Linux `IOV_MAX` is 1024).
const MAX_IOVECS: usize = 256;

/// Why a write did not complete.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("the peer accepted no bytes for {} ms: it stopped reading", .0.as_millis())]
    Stalled(Duration),
    #[error("stopped while the socket was full (kicked or shutting down)")]
    Stopped,
}

/// When a write gives up: no byte accepted for `stall`, or `stop` cancelled while waiting.
#[derive(Clone, Copy)]
pub struct Deadline<'a> {
    pub stall: Duration,
    pub stop: &'a CancellationToken,
}

/// Writes every buffer in `bufs` in order, removing them as they are written, within
/// `deadline`. On an error, what was not written stays in `bufs`.
pub async fn write_all_vectored(
    writer: &OwnedWriteHalf,
    bufs: &mut VecDeque<Bytes>,
    deadline: Deadline<'_>,
) -> Result<(), WriteError> {
    while !bufs.is_empty() {
        let result = {
            let slices: Vec<IoSlice<'_>> = bufs.iter().take(MAX_IOVECS).map(|b| IoSlice::new(b)).collect();
            writer.try_write_vectored(&slices)
        };
        let mut written = match result {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Biased: a socket that has room is written to even when stopping.
                tokio::select! {
                    biased;
                    ready = tokio::time::timeout(deadline.stall, writer.writable()) => match ready {
                        Ok(ready) => ready?,
                        Err(_) => return Err(WriteError::Stalled(deadline.stall)),
                    },
                    () = deadline.stop.cancelled() => return Err(WriteError::Stopped),
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        while written > 0 {
            let Some(front) = bufs.front_mut() else { break };
            if written >= front.len() {
                written -= front.len();
                bufs.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }
    Ok(())
}

/// Writes one buffer within `deadline`.
pub async fn write_all(writer: &OwnedWriteHalf, bytes: Bytes, deadline: Deadline<'_>) -> Result<(), WriteError> {
    write_all_vectored(writer, &mut VecDeque::from([bytes]), deadline).await
}

/// Applies the per-connection socket options: no Nagle delay (media is written in whole
/// batches already) and the bounded send buffer of `play.send_buffer_bytes`.
pub fn tune_socket(socket: &tokio::net::TcpStream, config: &crate::config::Config) {
    let _ = socket.set_nodelay(true);
    if config.play.send_buffer_bytes > 0 {
        if let Err(e) = socket2::SockRef::from(socket).set_send_buffer_size(config.play.send_buffer_bytes) {
            tracing::debug!(cause = %e, "cannot set SO_SNDBUF");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    #[tokio::test]
    async fn writes_everything_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_r, writer) = server.into_split();
        // More buffers than one writev takes, and more bytes than a socket buffer holds.
        let mut bufs: VecDeque<Bytes> = (0..600u32).map(|i| Bytes::from(vec![(i % 251) as u8; 4096])).collect();
        let expected: Vec<u8> = bufs.iter().flat_map(|b| b.to_vec()).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut client = client;
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        write_all_vectored(&writer, &mut bufs, forever()).await.unwrap();
        assert!(bufs.is_empty());
        drop(writer);
        drop(_r);
        assert_eq!(reader.await.unwrap(), expected);
    }

    fn forever() -> Deadline<'static> {
        static NEVER: std::sync::OnceLock<CancellationToken> = std::sync::OnceLock::new();
        Deadline {
            stall: Duration::from_secs(60),
            stop: NEVER.get_or_init(CancellationToken::new),
        }
    }

    /// A connected pair whose server side cannot buffer much.
    async fn small_pair() -> (TcpStream, OwnedWriteHalf, tokio::net::tcp::OwnedReadHalf) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        socket2::SockRef::from(&client).set_recv_buffer_size(4096).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        socket2::SockRef::from(&server).set_send_buffer_size(4096).unwrap();
        let (r, w) = server.into_split();
        (client, w, r)
    }

    #[tokio::test]
    async fn a_peer_that_never_reads_stalls_the_write_and_ends_it() {
        let (_client, writer, _r) = small_pair().await;
        let stop = CancellationToken::new();
        let mut bufs: VecDeque<Bytes> = (0..64).map(|_| Bytes::from(vec![0u8; 64 * 1024])).collect();
        let deadline = Deadline {
            stall: Duration::from_millis(200),
            stop: &stop,
        };
        let e = write_all_vectored(&writer, &mut bufs, deadline).await.unwrap_err();
        assert!(matches!(e, WriteError::Stalled(_)), "{e}");
        assert!(!bufs.is_empty(), "what was not written is kept");
    }

    #[tokio::test]
    async fn stopping_ends_a_blocked_write_at_once() {
        let (_client, writer, _r) = small_pair().await;
        let stop = CancellationToken::new();
        let mut bufs: VecDeque<Bytes> = (0..64).map(|_| Bytes::from(vec![0u8; 64 * 1024])).collect();
        let canceller = {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                stop.cancel();
            })
        };
        let deadline = Deadline {
            stall: Duration::from_secs(3600),
            stop: &stop,
        };
        let e = write_all_vectored(&writer, &mut bufs, deadline).await.unwrap_err();
        assert!(matches!(e, WriteError::Stopped), "{e}");
        canceller.await.unwrap();
    }
}
