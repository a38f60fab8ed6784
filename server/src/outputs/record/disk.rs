//! What the recorder asks of the file system: free space, and how an I/O error is told.

use std::io;
use std::path::Path;

use super::ledger::FailReason;

/// Bytes free for an unprivileged writer on the file system that holds `path` (its nearest
/// existing ancestor). `None` if it cannot be read: the floor is then not enforced.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let mut dir = path;
    while !dir.exists() {
        dir = dir.parent()?;
    }
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    // Both are u64 on Linux.
    Some(stat.blocks_available().saturating_mul(stat.fragment_size()))
}

/// The failure an I/O error means for a recording.
pub fn reason(error: &io::Error) -> FailReason {
    // ENOSPC and EDQUOT: the disk (or the quota) is full.
    if matches!(error.raw_os_error(), Some(28) | Some(122)) {
        FailReason::DiskFull
    } else {
        FailReason::Io
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_of_a_path_that_does_not_exist_yet_is_its_parents() {
        let here = std::env::temp_dir();
        let deep = here.join("estuary-no-such-dir/a/b");
        assert!(free_bytes(&here).is_some_and(|n| n > 0));
        assert_eq!(free_bytes(&deep).map(|n| n > 0), free_bytes(&here).map(|n| n > 0));
    }

    #[test]
    fn enospc_is_a_full_disk() {
        assert_eq!(reason(&io::Error::from_raw_os_error(28)), FailReason::DiskFull);
        assert_eq!(reason(&io::Error::from_raw_os_error(13)), FailReason::Io);
    }
}
