//! The view operations whose store calls differ on Windows: `setattr`, `fsync`, ownership
//! of new entries, and locks.
//!
//! Same rules as the Unix versions (`write.rs`, `handles.rs`, `locks.rs`): a read-only view
//! refuses, immutable blobs cannot be truncated, a replaced store file is `ESTALE`. What
//! Windows stores cannot hold is said here: mode bits and owners are not stored (setting
//! the mode is accepted and changes nothing; setting an owner is `EOPNOTSUPP`), and byte-range
//! locks never reach the view (WinFsp's kernel driver keeps them), so [`LockFds`] is empty.

use std::fs::{File, FileTimes};
use std::time::{Duration, SystemTime};

use super::{Attr, CacheView, Caller, SetAttr, TimeSet};
use crate::error::{FsError, FsResult};
use crate::inode::{Ino, Key};
use crate::path::StorePath;
use crate::store::{Kind, Meta, OFlags};

/// Lock descriptors: none on Windows (see the module header).
#[derive(Debug, Default)]
pub struct LockFds;

impl LockFds {
    /// Nothing to drop.
    pub fn drop_owner(&self, _ino: Ino, _owner: u64) {}
    /// Nothing to drop.
    pub fn drop_inode(&self, _ino: Ino) {}
}

fn time(t: TimeSet) -> SystemTime {
    match t {
        TimeSet::Now => SystemTime::now(),
        TimeSet::At(t) => t,
    }
}

impl CacheView {
    /// New entries keep the owner the store gives them (the account the mount runs as).
    pub(super) fn chown_new(&self, _path: &StorePath, _kind: Kind, _caller: Caller) {}

    /// `fsync`/`fdatasync` of an open file.
    pub fn fsync(&self, fh: u64, datasync: bool) -> FsResult<()> {
        let h = self.handles.file(fh).ok_or(FsError::BadHandle)?;
        let res = if datasync {
            h.file.sync_data()
        } else {
            h.file.sync_all()
        };
        res.map_err(|e| FsError::Store(crate::store::errno_error(e)))
    }

    /// Changes attributes (size and times; see the module header for mode and owner).
    pub fn setattr(&self, ino: Ino, set: &SetAttr, fh: Option<u64>) -> FsResult<(Attr, Duration)> {
        if set.is_empty() {
            return self.getattr(ino, fh);
        }
        self.writable_view()?;
        let node = self.node(ino)?;
        if let Key::Detached(_) = node.key {
            return Err(FsError::Stale);
        }
        if set.size.is_some() && node.immutable {
            return Err(FsError::NotPermitted(
                "blobs are immutable through the view; replace the name instead",
            ));
        }
        if set.uid.is_some() || set.gid.is_some() {
            return Err(FsError::Unsupported);
        }
        let handle = fh.and_then(|fh| self.handles.file(fh));
        // A handle of our own with the access the change needs, checked to be the same file.
        let own = |flags: OFlags| -> FsResult<File> {
            let f = self.store.open(&node.real, flags, 0)?;
            super::check_identity(&node, &Meta::of_fd(&f)?)?;
            Ok(f)
        };
        if let Some(size) = set.size {
            let owned;
            let f = match &handle {
                Some(h) if h.writable => &h.file,
                _ => {
                    owned = own(OFlags::WRONLY)?;
                    &owned
                }
            };
            f.set_len(size)
                .map_err(|e| FsError::Store(crate::store::errno_error(e)))?;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            let f = own(OFlags::ATTRS)?;
            let mut times = FileTimes::new();
            if let Some(t) = set.atime {
                times = times.set_accessed(time(t));
            }
            if let Some(t) = set.mtime {
                times = times.set_modified(time(t));
            }
            f.set_times(times)
                .map_err(|e| FsError::Store(crate::store::errno_error(e)))?;
        }
        let meta = match &handle {
            Some(h) => Meta::of_fd(&h.file)?,
            None => Meta::of_fd(&own(OFlags::ATTRS)?)?,
        };
        Ok((self.attr(ino, &meta), self.attr_ttl(&meta, node.immutable)))
    }

    fn writable_view(&self) -> FsResult<()> {
        if self.config.read_only {
            Err(FsError::ReadOnly)
        } else {
            Ok(())
        }
    }
}
