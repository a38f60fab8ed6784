//! Vectored writes of shared buffers: a player's batch of packets goes to the socket as one
//! `writev` of the packets' shared `Bytes`, never copied into a per-player buffer.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Most buffers handed to one `writev` (Linux `IOV_MAX` is 1024).
const MAX_IOVECS: usize = 256;

/// Writes every buffer in `bufs` in order, removing them as they are written.
pub async fn write_all_vectored<W: AsyncWrite + Unpin>(writer: &mut W, bufs: &mut VecDeque<Bytes>) -> io::Result<()> {
    while !bufs.is_empty() {
        let slices: Vec<IoSlice<'_>> = bufs.iter().take(MAX_IOVECS).map(|b| IoSlice::new(b)).collect();
        let mut written = writer.write_vectored(&slices).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
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

    #[tokio::test]
    async fn writes_everything_in_order() {
        let mut out = Vec::new();
        let mut bufs: VecDeque<Bytes> = (0..600u32).map(|i| Bytes::from(i.to_be_bytes().to_vec())).collect();
        write_all_vectored(&mut out, &mut bufs).await.unwrap();
        assert!(bufs.is_empty());
        let expected: Vec<u8> = (0..600u32).flat_map(|i| i.to_be_bytes()).collect();
        assert_eq!(out, expected);
    }
}
