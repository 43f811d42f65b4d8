//! The view operations whose store calls differ on Windows: `setattr`, `fsync`, ownership
//! of new entries, and locks; and what the WinFsp adapter asks of the view beyond the
//! operations both adapters share: the store's spellings of a name (the case rule, without a
//! listing), whether a rename is a blob download (which replaces, as on Linux), and the
//! decision of a delete before it is reported (see `docs/WINDOWS.md`).
//!
//! Same rules as the Unix versions (`write.rs`, `handles.rs`, `locks.rs`): a read-only view
//! refuses, immutable blobs cannot be truncated, a replaced store file is `ESTALE`. What
//! Windows stores cannot hold is said here: mode bits and owners are not stored (setting
//! the mode is accepted and changes nothing; setting an owner is `EOPNOTSUPP`), and byte-range
//! locks never reach the view (WinFsp's kernel driver keeps them), so [`LockFds`] is empty.

use std::ffi::{OsStr, OsString};
use std::fs::{File, FileTimes};
use std::time::{Duration, SystemTime};

use super::ids::{Fh, LockOwner};
use super::{Attr, CacheView, Caller, SetAttr, TimeSet};
use crate::error::{FsError, FsResult};
use crate::inode::Ino;
use crate::path::StorePath;
use crate::resolve::{LinkSource, Resolver};
use crate::store::{Kind, Meta, OFlags};

/// Lock descriptors: none on Windows (see the module header).
#[derive(Debug, Default)]
pub struct LockFds;

impl LockFds {
    /// Nothing to drop.
    pub fn drop_owner(&self, _ino: Ino, _owner: LockOwner) {}
    /// Nothing to drop.
    pub fn drop_inode(&self, _ino: Ino) {}
}

/// True for the hub's lock files: `.locks/<repo>/<name>.lock` at the store root.
fn is_hub_lock(p: &StorePath) -> bool {
    let comps: Vec<&OsStr> = p.components().collect();
    matches!(comps.as_slice(), [l, _, name] if *l == ".locks"
        && name.to_str().is_some_and(|n| n.ends_with(".lock")))
}

fn time(t: TimeSet) -> SystemTime {
    match t {
        TimeSet::Now => SystemTime::now(),
        TimeSet::At(t) => t,
    }
}

impl CacheView {
    /// The names the store has for `name` in view directory `parent`, in the store's own
    /// spelling (see [`crate::store::Store::find_names`]): one directory query, never a
    /// listing. Hidden entries are among them; the caller looks each up.
    pub fn spellings(&self, parent: Ino, name: &OsStr) -> FsResult<Vec<OsString>> {
        let dir = self.dir_node(parent)?;
        self.check_reach(&dir)?;
        Ok(self.store.find_names(&dir.real, name)?)
    }

    /// True if `a` and `b` stand for the same store entry (one may be known under two
    /// inodes, e.g. a directory reached by two walks).
    pub fn same_store_entry(&self, a: Ino, b: Ino) -> bool {
        match (self.node(a), self.node(b)) {
            (Ok(x), Ok(y)) => x.real == y.real,
            _ => false,
        }
    }

    /// True if renaming `from_name` (in `from_dir`) to `to_name` (in `to_dir`) is the hub's
    /// last step of a download: `<repo>/blobs/<hash>.incomplete` onto `<repo>/blobs/<hash>`.
    /// A blob's name is its content's hash, so replacing it changes no byte anyone reads;
    /// on Linux that rename replaces, and so it does here although Windows' `os.rename`
    /// asks not to (see `docs/WINDOWS.md`, *Downloads over an existing blob*).
    pub fn is_blob_download(
        &self,
        from_dir: Ino,
        from_name: &OsStr,
        to_dir: Ino,
        to_name: &OsStr,
    ) -> bool {
        // The same directory may be known under two inodes (walks made apart): compare
        // where they are in the store.
        let (Ok(from), Ok(dir)) = (self.dir_node(from_dir), self.dir_node(to_dir)) else {
            return false;
        };
        if from.real != dir.real {
            return false;
        }
        let mut temp = to_name.to_os_string();
        temp.push(".incomplete");
        temp == from_name
            && dir
                .real
                .join(to_name)
                .is_some_and(|p| crate::hub::is_blob_path(&p))
    }

    /// Ends a blob download whose rename onto its blob the store refused (Windows and SMB
    /// stores do not replace a file that a reader holds open): when the blob already holds
    /// exactly the downloaded bytes — a complete blob does, its name being their hash — the
    /// download is done and its temporary file `from` (in view directory `dir`, as is the
    /// blob `to`) is removed. Returns whether it was; compares the two files' bytes.
    pub fn settle_blob_download(&self, dir: Ino, from: &OsStr, to: &OsStr) -> FsResult<bool> {
        use crate::store::FileExt as _;
        let node = self.dir_node(dir)?;
        let (Some(fp), Some(tp)) = (node.real.join(from), node.real.join(to)) else {
            return Ok(false);
        };
        let a = self.store.open(&fp, OFlags::RDONLY, 0)?;
        let b = self.store.open(&tp, OFlags::RDONLY, 0)?;
        let size = Meta::of_fd(&a)?.size;
        if Meta::of_fd(&b)?.size != size {
            return Ok(false);
        }
        let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
        let mut at = 0u64;
        while at < size {
            let n = a.read_at(&mut x, at)?;
            if n == 0 {
                return Ok(false);
            }
            let mut got = 0;
            while got < n {
                match b.read_at(&mut y[got..n], at + got as u64)? {
                    0 => return Ok(false),
                    m => got += m,
                }
            }
            if x[..n] != y[..n] {
                return Ok(false);
            }
            at += n as u64;
        }
        drop((a, b));
        self.unlink(dir, from)?;
        log::info!(
            "{}: the blob is in use and already holds the downloaded bytes; download kept it",
            tp
        );
        Ok(true)
    }

    /// For a handle on a hub lock file (`.locks/<repo>/<etag>.lock`) opened for writing —
    /// how huggingface_hub's `filelock` starts taking the lock — the hub's lock taken in the
    /// store on a store handle of its own, for as long as the caller keeps it (the client's
    /// handle). WinFsp keeps a client's `LockFileEx` in its driver, out of reach of other
    /// machines; this makes the lock hold across machines and OSes on one store. The handle
    /// does not share deletion: `filelock`'s clean-up on another machine (deleting the lock
    /// file after its release) fails while the lock is held, as on NTFS. `None` for
    /// any other file; `EBUSY` (`STATUS_SHARING_VIOLATION`, which `filelock` takes as "held,
    /// try again") when another holder has it.
    pub fn hub_lock(&self, ino: Ino) -> FsResult<Option<File>> {
        let node = self.node(ino)?;
        if !is_hub_lock(&node.real) {
            return Ok(None);
        }
        let f = self.store.open_for_lock(&node.real)?;
        super::check_identity(&node, &Meta::of_fd(&f)?)?;
        if crate::store::lock_exclusive_now(&f)? {
            Ok(Some(f))
        } else {
            Err(FsError::Store(std::io::Error::from_raw_os_error(
                crate::compat::libc::EBUSY,
            )))
        }
    }

    /// Decides now whether removing `name` from view directory `parent` can succeed, as far
    /// as anything but a race can tell: a read-only view, the kind, a directory's emptiness
    /// (`rmdir`'s rule, [`CacheView::hidden_links_only`]), the store's answer to an
    /// open for deletion (access, sharing, a pending delete), and, for content that other
    /// names still reach through links, the right to create links in the store (re-pointing
    /// them needs it). Returns the handle opened for deletion: while it is open, nobody can
    /// open the entry in a way that would make the delete fail.
    pub fn decide_delete(&self, parent: Ino, name: &OsStr, is_dir: bool) -> FsResult<File> {
        self.writable()?;
        let dir = self.dir_node(parent)?;
        self.check_reach(&dir)?;
        let path = dir.real.join(name).ok_or(FsError::Invalid)?;
        let meta = self.store.lstat(&path)?;
        self.check_delete(&path, &meta)?;
        // A link (a symlink, or an XSym file) is removed itself, whatever it shows as.
        let link = self.store.is_link(&path, &meta);
        match meta.kind {
            Kind::Dir if !is_dir => return Err(FsError::IsDir),
            Kind::File if is_dir && !link => return Err(FsError::NotDir),
            Kind::File if !link => {
                // The content moves onto its first referrer (a rename); every further
                // referrer is re-pointed with a new link.
                let refs = self.referrers(&path)?;
                if let Some(second) = refs.get(1) {
                    self.store.can_symlink(&second.parent())?;
                }
            }
            _ => {}
        }
        if is_dir {
            // Empty as the view shows it (a link shown as a directory: its target), by
            // `rmdir`'s rule, which the cleanup that deletes applies.
            let shown = if link {
                Resolver::new(&self.store)
                    .resolve_link(&path)
                    .map_err(|_| FsError::NotFound)?
                    .path
            } else {
                path.clone()
            };
            self.hidden_links_only(&shown)?;
        }
        Ok(self.store.open_for_delete(&path)?)
    }

    /// New entries keep the owner the store gives them (the account the mount runs as).
    pub(super) fn chown_new(&self, _path: &StorePath, _kind: Kind, _caller: Caller) {}

    /// `fsync`/`fdatasync` of an open file.
    pub fn fsync(&self, fh: Fh, datasync: bool) -> FsResult<()> {
        let h = self.handles.file(fh).ok_or(FsError::BadHandle)?;
        let res = if datasync {
            h.file.sync_data()
        } else {
            h.file.sync_all()
        };
        res.map_err(|e| FsError::Store(crate::store::errno_error(e)))
    }

    /// Changes attributes (size and times; see the module header for mode and owner).
    pub fn setattr(&self, ino: Ino, set: &SetAttr, fh: Option<Fh>) -> FsResult<(Attr, Duration)> {
        if set.is_empty() {
            return self.getattr(ino, fh);
        }
        let node = self.setattr_node(ino, set)?;
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
}
