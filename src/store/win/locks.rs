//! The hub's lock on Windows: `LockFileEx` of a lock file's first byte, on a handle opened
//! as huggingface_hub's `filelock` opens it.
//!
//! Invariants: taking the lock never waits; the lock lasts while the handle is open; a lock
//! file whose lock is held cannot be deleted (the handle does not share deletion).

use super::*;

/// Takes the hub's lock on an open lock file without waiting: an exclusive `LockFileEx` of
/// its first byte (what huggingface_hub's `filelock` takes on Windows; Samba and Windows
/// servers make it conflict with POSIX and OFD locks of Linux clients on the same file).
/// `Ok(false)` if another handle holds it; the lock lasts while `file` is open.
pub fn lock_exclusive_now(file: &File) -> io::Result<bool> {
    const LOCKFILE_FAIL_IMMEDIATELY: u32 = 1;
    const LOCKFILE_EXCLUSIVE_LOCK: u32 = 2;
    const ERROR_LOCK_VIOLATION: i32 = 33;
    let mut ov = ffi::OVERLAPPED::default();
    // SAFETY: the handle is open for the duration of the call; `ov` is a zeroed OVERLAPPED
    // (offset 0) that outlives the call, which does not wait (FAIL_IMMEDIATELY).
    let ok = unsafe {
        ffi::LockFileEx(
            raw(file),
            LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY,
            0,
            1,
            0,
            &mut ov,
        )
    };
    if ok != 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(ERROR_LOCK_VIOLATION) {
        Ok(false)
    } else {
        Err(errno_error(e))
    }
}

impl WinStore {
    /// Opens the regular file `p` to hold the hub's lock on it ([`lock_exclusive_now`]): for
    /// reading, sharing reading and writing but not deletion — as the CRT's `open` that
    /// huggingface_hub's `filelock` uses on Windows does, so that a lock file cannot be
    /// deleted (by `filelock`'s clean-up on another machine) while its lock is held.
    pub fn open_for_lock(&self, p: &StorePath) -> io::Result<File> {
        calls::add(|c| c.open += 1);
        let (dir, name) = self.parent_and_name(p)?;
        let h = nt_open_shared(
            dir.as_raw_handle(),
            wide(name),
            FILE_READ_DATA | FILE_READ_ATTRIBUTES,
            FILE_OPEN,
            FILE_NON_DIRECTORY_FILE | FILE_OPEN_FOR_BACKUP_INTENT,
            0x1 | 0x2,
        )?;
        if by_handle(&h)?.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            return Err(errno(libc::ELOOP));
        }
        Ok(File::from(h))
    }
}
