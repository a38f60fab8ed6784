//! Vectored writes of shared buffers: a player's batch of packets goes to the socket as one
//! `writev` of the packets' shared `Bytes`, never copied into a per-player buffer.
//!
//! Writes go through `&OwnedWriteHalf` (`try_write_vectored`, then `writable` when the
//! socket is full) rather than `AsyncWrite`, because a player's socket is shared with its
//! stream, which writes to it directly while the player is parked (`hub/direct.rs`).

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes};
use tokio::net::tcp::OwnedWriteHalf;

/// Most buffers handed to one `writev` (Linux `IOV_MAX` is 1024).
const MAX_IOVECS: usize = 256;

/// Writes every buffer in `bufs` in order, removing them as they are written.
pub async fn write_all_vectored(writer: &OwnedWriteHalf, bufs: &mut VecDeque<Bytes>) -> io::Result<()> {
    while !bufs.is_empty() {
        let result = {
            let slices: Vec<IoSlice<'_>> = bufs.iter().take(MAX_IOVECS).map(|b| IoSlice::new(b)).collect();
            writer.try_write_vectored(&slices)
        };
        let mut written = match result {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                writer.writable().await?;
                continue;
            }
            Err(e) => return Err(e),
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

/// Writes one buffer.
pub async fn write_all(writer: &OwnedWriteHalf, bytes: Bytes) -> io::Result<()> {
    write_all_vectored(writer, &mut VecDeque::from([bytes])).await
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
        write_all_vectored(&writer, &mut bufs).await.unwrap();
        assert!(bufs.is_empty());
        drop(writer);
        drop(_r);
        assert_eq!(reader.await.unwrap(), expected);
    }
}
