//! Socket reads stamped with the kernel's receive time (`SO_TIMESTAMPNS`, CLOCK_REALTIME),
//! so the bench's own scheduling delay is not counted as the server's latency.
//!
//! All readers of a thread share one 64 KiB scratch buffer: a read is handed to a callback
//! that consumes it synchronously (no `.await` in between), so one buffer serves thousands
//! of connections on a current-thread runtime.

use std::cell::RefCell;
use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use nix::sys::time::TimeSpec;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Size of one read.
pub const READ_SIZE: usize = 64 * 1024;

struct Scratch {
    buf: Vec<u8>,
    cmsg: Vec<u8>,
}

/// Reads stamped by the kernel, and reads that fell back to the clock.
static KERNEL_STAMPED: AtomicU64 = AtomicU64::new(0);
static CLOCK_STAMPED: AtomicU64 = AtomicU64::new(0);

/// `(kernel-stamped reads, clock-stamped reads)` so far.
pub fn stamp_counts() -> (u64, u64) {
    (
        KERNEL_STAMPED.load(Ordering::Relaxed),
        CLOCK_STAMPED.load(Ordering::Relaxed),
    )
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        buf: vec![0; READ_SIZE],
        cmsg: nix::cmsg_space!(TimeSpec),
    });
}

/// CLOCK_REALTIME now, in nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Asks the kernel to stamp received data on `stream`. Returns false where that failed (the
/// reads then fall back to reading the clock when they return).
pub fn enable_timestamps(stream: &TcpStream) -> bool {
    setsockopt(stream, sockopt::ReceiveTimestampns, &true).is_ok()
}

/// Waits for data on `stream`, reads up to 64 KiB and hands it to `consume` with its
/// receive time (ns, CLOCK_REALTIME). `Ok(None)` at end of stream.
pub async fn recv<R>(stream: &TcpStream, mut consume: impl FnMut(&[u8], u64) -> R) -> io::Result<Option<R>> {
    loop {
        stream.readable().await?;
        let mut out = None;
        let result = SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let Scratch { buf, cmsg } = &mut *scratch;
            stream.try_io(Interest::READABLE, || {
                let (n, ts) = recv_stamped(stream.as_raw_fd(), buf, cmsg)?;
                if n == 0 {
                    return Ok(true);
                }
                let ts = match ts {
                    Some(ts) => {
                        KERNEL_STAMPED.fetch_add(1, Ordering::Relaxed);
                        ts
                    }
                    None => {
                        CLOCK_STAMPED.fetch_add(1, Ordering::Relaxed);
                        now_ns()
                    }
                };
                out = Some(consume(&buf[..n], ts));
                if n < buf.len() {
                    // A short read drained the socket: report WouldBlock so tokio clears the
                    // readiness now instead of us spending a syscall to learn it. (Data that
                    // arrived meanwhile raised a newer readiness event, which is kept.)
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(false)
            })
        });
        match result {
            Ok(true) => return Ok(None),
            Ok(false) => return Ok(out),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if out.is_some() {
                    return Ok(out);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

fn recv_stamped(fd: i32, buf: &mut [u8], cmsg: &mut Vec<u8>) -> io::Result<(usize, Option<u64>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(fd, &mut iov, Some(cmsg), MsgFlags::empty()).map_err(io::Error::from)?;
    let mut ts = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmTimestampns(t) = c {
                ts = Some(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64);
            }
        }
    }
    Ok((msg.bytes, ts))
}

/// Raises the open-file limit to its hard maximum (thousands of sockets).
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 0,
    }
}
