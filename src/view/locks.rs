//! Byte-range and whole-file locks, forwarded to the store.
//!
//! Every lock taken through the view becomes an open-file-description (OFD) `fcntl` lock on a
//! store descriptor kept for its *owner* (the kernel's lock owner: a process for POSIX
//! locks, an open file for `flock`). So locks through the mount exclude each other across
//! processes here, and across machines whose store file system forwards `fcntl` locks (NFS,
//! SMB with POSIX extensions). Locks of one owner never conflict with each other.
//!
//! The descriptor of an owner is dropped when the owner's last use ends: at `release` with
//! the owner (flock), or when the inode's last handle closes (the kernel has already sent
//! the unlocks by then).

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use rustix::fs::OFlags;

use super::CacheView;
use super::ids::{Fh, LockOwner};
use crate::error::{FsError, FsResult};
use crate::inode::Ino;

/// The type of a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    /// Shared.
    Read,
    /// Exclusive.
    Write,
    /// Release.
    Unlock,
}

/// A lock request or a conflicting lock: bytes `start..=end` (`end == u64::MAX` or
/// `i64::MAX` means to the end of the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockSpec {
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive.
    pub end: u64,
    /// Type.
    pub typ: LockType,
    /// Holder's pid where known (0 for OFD locks).
    pub pid: u32,
}

impl LockType {
    /// From the `F_RDLCK`/`F_WRLCK`/`F_UNLCK` constants.
    pub fn from_raw(t: i32) -> Option<LockType> {
        match t {
            libc::F_RDLCK => Some(LockType::Read),
            libc::F_WRLCK => Some(LockType::Write),
            libc::F_UNLCK => Some(LockType::Unlock),
            _ => None,
        }
    }

    /// To the `F_*LCK` constants.
    pub fn raw(self) -> i32 {
        match self {
            LockType::Read => libc::F_RDLCK,
            LockType::Write => libc::F_WRLCK,
            LockType::Unlock => libc::F_UNLCK,
        }
    }
}

/// Lock descriptors by (inode, owner).
#[derive(Debug, Default)]
pub struct LockFds {
    fds: Mutex<HashMap<(Ino, LockOwner), Arc<File>>>,
}

impl LockFds {
    fn get(&self, key: (Ino, LockOwner)) -> Option<Arc<File>> {
        self.fds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned()
    }

    fn insert(&self, key: (Ino, LockOwner), f: File) -> Arc<File> {
        let mut map = self.fds.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key).or_insert_with(|| Arc::new(f)).clone()
    }

    /// Drops the owner's descriptor (its locks go with it).
    pub fn drop_owner(&self, ino: Ino, owner: LockOwner) {
        self.fds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(ino, owner));
    }

    /// Drops every descriptor of `ino`.
    pub fn drop_inode(&self, ino: Ino) {
        self.fds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _), _| *i != ino);
    }
}

fn flock_struct(spec: &LockSpec) -> libc::flock {
    // SAFETY: `flock` is plain old data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = spec.typ.raw() as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl.l_start = spec.start.min(i64::MAX as u64) as _;
    fl.l_len = if spec.end >= i64::MAX as u64 {
        0
    } else {
        (spec.end.saturating_sub(spec.start) + 1) as _
    };
    fl
}

#[cfg(target_os = "linux")]
fn ofd_fcntl(f: &File, cmd: i32, fl: &mut libc::flock) -> std::io::Result<()> {
    loop {
        // SAFETY: `fl` is a valid, exclusively borrowed `struct flock` for the whole call,
        // and the descriptor is open for the lifetime of `f`.
        let r = unsafe { libc::fcntl(f.as_raw_fd(), cmd, fl as *mut libc::flock) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn ofd_fcntl(_f: &File, _cmd: i32, _fl: &mut libc::flock) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::ENOLCK))
}

#[cfg(target_os = "linux")]
const F_SETLK: i32 = libc::F_OFD_SETLK;
#[cfg(target_os = "linux")]
const F_SETLKW: i32 = libc::F_OFD_SETLKW;
#[cfg(target_os = "linux")]
const F_GETLK: i32 = libc::F_OFD_GETLK;
#[cfg(not(target_os = "linux"))]
const F_SETLK: i32 = libc::F_SETLK;
#[cfg(not(target_os = "linux"))]
const F_SETLKW: i32 = libc::F_SETLKW;
#[cfg(not(target_os = "linux"))]
const F_GETLK: i32 = libc::F_GETLK;

impl CacheView {
    /// The owner's lock descriptor for `ino`, opened on first use: read-write only for a
    /// client handle that is itself open for writing, so that what the client may lock in
    /// the store is what its own descriptor may (an exclusive lock needs a writer).
    fn lock_fd(&self, ino: Ino, owner: LockOwner, writer: bool) -> FsResult<Arc<File>> {
        if let Some(f) = self.locks.get((ino, owner)) {
            return Ok(f);
        }
        let node = self.node(ino)?;
        if node.is_dir {
            return Err(FsError::IsDir);
        }
        self.check_reach(&node)?;
        let access = if writer { OFlags::RDWR } else { OFlags::RDONLY };
        // Read-only stores still get shared locks.
        let fd = match self.store.open(&node.real, access, 0) {
            Ok(fd) => fd,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EACCES | libc::EROFS | libc::EPERM)
                ) =>
            {
                self.store.open(&node.real, OFlags::RDONLY, 0)?
            }
            Err(e) => return Err(e.into()),
        };
        let meta = crate::store::Meta::of_fd(&fd)?;
        super::check_identity(&node, &meta)?;
        Ok(self.locks.insert((ino, owner), fd.into()))
    }

    /// `close()` of a descriptor by `owner`: releases every POSIX lock it holds on `ino`.
    pub fn drop_locks(&self, ino: Ino, owner: LockOwner) {
        self.locks.drop_owner(ino, owner);
    }

    /// Takes or releases a lock for `owner` through the client's handle `fh`; with `wait`,
    /// blocks until it is granted. A write lock through a handle not open for writing is
    /// `EBADF`, as `fcntl` answers for such a descriptor (and NFS for `flock`).
    pub fn setlk(
        &self,
        ino: Ino,
        fh: Fh,
        owner: LockOwner,
        spec: LockSpec,
        wait: bool,
    ) -> FsResult<()> {
        let writer = self.handles.file(fh).is_some_and(|h| h.writable);
        if spec.typ == LockType::Write && !writer {
            return Err(FsError::BadHandle);
        }
        let f = self.lock_fd(ino, owner, writer)?;
        let mut fl = flock_struct(&spec);
        let cmd = if wait { F_SETLKW } else { F_SETLK };
        ofd_fcntl(&f, cmd, &mut fl).map_err(|e| match e.raw_os_error() {
            // POSIX says EAGAIN or EACCES for a conflict; clients expect EAGAIN.
            Some(libc::EACCES) => FsError::Store(std::io::Error::from_raw_os_error(libc::EAGAIN)),
            _ => FsError::Store(e),
        })
    }

    /// The first lock that would conflict with `spec`, if any.
    pub fn getlk(&self, ino: Ino, owner: LockOwner, spec: LockSpec) -> FsResult<Option<LockSpec>> {
        let f = self.lock_fd(ino, owner, false)?;
        let mut fl = flock_struct(&spec);
        ofd_fcntl(&f, F_GETLK, &mut fl)?;
        let typ = LockType::from_raw(fl.l_type as i32).unwrap_or(LockType::Unlock);
        if typ == LockType::Unlock {
            return Ok(None);
        }
        let start = fl.l_start as u64;
        let end = if fl.l_len == 0 {
            i64::MAX as u64
        } else {
            start + fl.l_len as u64 - 1
        };
        let pid = if fl.l_pid > 0 { fl.l_pid as u32 } else { 0 };
        Ok(Some(LockSpec {
            start,
            end,
            typ,
            pid,
        }))
    }

    /// Whether the store takes `fcntl` locks (checked once at mount on the store root).
    pub fn store_supports_locks(&self) -> bool {
        let Ok(fd) = self.store.open(
            &crate::path::StorePath::root(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            0,
        ) else {
            return false;
        };
        let f = File::from(fd);
        let spec = LockSpec {
            start: 0,
            end: u64::MAX,
            typ: LockType::Read,
            pid: 0,
        };
        let mut fl = flock_struct(&spec);
        if ofd_fcntl(&f, F_GETLK, &mut fl).is_err() {
            return false;
        }
        let mut fl = flock_struct(&spec);
        let ok = ofd_fcntl(&f, F_SETLK, &mut fl).is_ok();
        let mut un = flock_struct(&LockSpec {
            typ: LockType::Unlock,
            ..spec
        });
        let _ = ofd_fcntl(&f, F_SETLK, &mut un);
        ok
    }
}
