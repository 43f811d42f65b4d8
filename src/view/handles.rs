//! Open files: each view handle owns a descriptor of the store file it was opened on, so a
//! handle keeps reading the same bytes even if the name is re-pointed or removed meanwhile.

use std::collections::HashMap;
use std::fs::File;
#[cfg(unix)]
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

#[cfg(unix)]
use rustix::fs::SeekFrom;

#[cfg(windows)]
use crate::store::FileExt;
use crate::store::OFlags;

use super::CacheView;
use super::dir::DirHandle;
use super::ids::{Fh, Ino, LockOwner, OpenFlags};
use crate::error::{FsError, FsResult};
use crate::store::Meta;

/// One open file.
#[derive(Debug)]
pub struct FileHandle {
    /// The view inode.
    pub ino: Ino,
    /// The store file.
    pub file: File,
    /// Opened for writing.
    pub writable: bool,
}

/// The reply to `open`.
#[derive(Clone, Copy, Debug)]
pub struct Opened {
    /// The handle number.
    pub fh: Fh,
    /// The data is immutable: the kernel may keep its page cache across opens.
    pub keep_cache: bool,
}

/// All open handles.
#[derive(Debug, Default)]
pub struct Handles {
    next: AtomicU64,
    files: RwLock<HashMap<Fh, Arc<FileHandle>>>,
    per_inode: Mutex<HashMap<Ino, usize>>,
    dirs: Mutex<HashMap<Fh, Arc<DirHandle>>>,
}

impl Handles {
    fn next(&self) -> Fh {
        Fh(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    pub(super) fn insert_file(&self, h: FileHandle) -> Fh {
        let fh = self.next();
        *self
            .per_inode
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(h.ino)
            .or_insert(0) += 1;
        self.files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, Arc::new(h));
        fh
    }

    /// Some open handle of `ino`, if any (its file outlives every name).
    pub(super) fn any_for(&self, ino: Ino) -> Option<Arc<FileHandle>> {
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        files.values().find(|h| h.ino == ino).cloned()
    }

    pub(super) fn file(&self, fh: Fh) -> Option<Arc<FileHandle>> {
        self.files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fh)
            .cloned()
    }

    /// Removes a handle; also returns true if it was the inode's last open handle.
    fn remove_file(&self, fh: Fh) -> Option<(Arc<FileHandle>, bool)> {
        let h = self
            .files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh)?;
        let mut per = self.per_inode.lock().unwrap_or_else(|e| e.into_inner());
        let last = match per.get_mut(&h.ino) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                per.remove(&h.ino);
                true
            }
        };
        Some((h, last))
    }

    pub(super) fn insert_dir(&self, h: DirHandle) -> Fh {
        let fh = self.next();
        self.dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, Arc::new(h));
        fh
    }

    pub(super) fn dir(&self, fh: Fh) -> Option<Arc<DirHandle>> {
        self.dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fh)
            .cloned()
    }

    pub(super) fn remove_dir(&self, fh: Fh) {
        self.dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh);
    }

    /// Number of open file handles.
    pub fn open_files(&self) -> usize {
        self.files.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Number of handles of `ino` open for writing.
    pub(super) fn writers(&self, ino: Ino) -> usize {
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        files
            .values()
            .filter(|h| h.ino == ino && h.writable)
            .count()
    }
}

/// The store open flags for a client's open flags: the access mode and the flags that change
/// how writes land; never `O_CREAT`/`O_EXCL` (creation is `create`'s job) or `O_NOFOLLOW`
/// games (the store layer adds its own).
pub(super) fn store_flags(flags: OpenFlags) -> OFlags {
    OFlags::from_bits_truncate(flags.store_bits() as _)
}

impl CacheView {
    /// Checks an open of `ino` with `flags` as [`CacheView::open`] does, without opening the
    /// store file; the blob's size if the open reads an immutable blob and so may leave the
    /// store file until a read needs it (see `fuse::deferred`).
    pub fn check_open(&self, ino: Ino, flags: OpenFlags) -> FsResult<Option<u64>> {
        let node = self.node(ino)?;
        if node.is_dir {
            return Err(FsError::IsDir);
        }
        if let crate::inode::Key::Detached(_) = node.key {
            return Err(FsError::Stale);
        }
        self.check_reach(&node)?;
        if !node.immutable || flags.modifies() {
            return Ok(None);
        }
        // The blob's name is kept, its bytes never change — but the file under its path can
        // be replaced (a re-download elsewhere renames a new file over it). Checked as often
        // as its attributes are (`blob_timeout`): a replaced file is `ESTALE` here, at the
        // open, where the kernel looks the name up again, never at a later read.
        let fresh = node
            .checked
            .is_some_and(|at| at.elapsed() < self.config.blob_attr_ttl);
        if !fresh {
            self.locate(ino, &node)?;
            self.table().set_checked(ino);
        }
        Ok(Some(node.blob_size))
    }

    /// Starts reading an immutable blob of at most `max` bytes from the store into the
    /// store's page cache, without waiting for it: a reader that looked the name up is about
    /// to ask for its bytes (see `fuse`'s `noopen`). Anything else, or any failure, is left
    /// alone — the read that follows finds and reports it.
    pub fn prefetch(&self, ino: Ino, max: u64) {
        let Ok(node) = self.node(ino) else { return };
        if node.is_dir || !node.immutable || node.blob_size > max {
            return;
        }
        if let Ok(fd) = self.store.open(&node.real, store_flags(OpenFlags::READ), 0) {
            #[cfg(target_os = "linux")]
            let _ = rustix::fs::fadvise(&fd, 0, None, rustix::fs::Advice::WillNeed);
            drop(fd);
        }
    }

    /// Opens file `ino`.
    pub fn open(&self, ino: Ino, flags: OpenFlags) -> FsResult<Opened> {
        let node = self.node(ino)?;
        if node.is_dir {
            return Err(FsError::IsDir);
        }
        self.check_reach(&node)?;
        let write = flags.modifies();
        if write && self.config.read_only {
            return Err(FsError::ReadOnly);
        }
        if write && node.immutable {
            return Err(FsError::NotPermitted(
                "blobs are immutable through the view; replace the name instead",
            ));
        }
        // A writer's open must not interleave with a copy becoming a link (`copies`).
        let names = write.then(|| self.copies.name_lock());
        // Read-only opens try the current path first (no separate lstat); writers — which may
        // truncate — only ever open a path whose identity was checked first.
        let fast = if write {
            None
        } else {
            self.store
                .open(&node.real, store_flags(flags), 0)
                .ok()
                .filter(|fd| {
                    Meta::of_fd(fd).is_ok_and(|m| super::check_identity(&node, &m).is_ok())
                })
        };
        let fd = match fast {
            Some(fd) => fd,
            None => {
                let (real, _) = self.locate(ino, &node)?;
                let fd = self.store.open(&real, store_flags(flags), 0)?;
                let meta = Meta::of_fd(&fd)?;
                super::check_identity(&node, &meta)?;
                fd
            }
        };
        let fh = self.handles.insert_file(FileHandle {
            ino,
            file: fd.into(),
            writable: write,
        });
        if write {
            self.track_writes(ino, &node.real, flags.truncate());
        }
        drop(names);
        Ok(Opened {
            fh,
            keep_cache: node.immutable,
        })
    }

    /// Reads up to `size` bytes at `offset`.
    pub fn read(&self, fh: Fh, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let h = self.handles.file(fh).ok_or(FsError::BadHandle)?;
        let mut buf = vec![0u8; size as usize];
        let mut done = 0;
        while done < buf.len() {
            match h.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        buf.truncate(done);
        Ok(buf)
    }

    /// Writes `data` at `offset` (at the end for handles opened with `O_APPEND`).
    pub fn write(&self, fh: Fh, offset: u64, data: &[u8]) -> FsResult<u32> {
        let h = self.handles.file(fh).ok_or(FsError::BadHandle)?;
        if !h.writable {
            return Err(FsError::BadHandle);
        }
        h.file.write_all_at(data, offset)?;
        self.copies.wrote(h.ino, offset, data);
        Ok(data.len() as u32)
    }

    /// `fsync`/`fdatasync` of an open file.
    #[cfg(unix)]
    pub fn fsync(&self, fh: Fh, datasync: bool) -> FsResult<()> {
        let h = self.handles.file(fh).ok_or(FsError::BadHandle)?;
        if datasync {
            rustix::fs::fdatasync(&h.file)?;
        } else {
            rustix::fs::fsync(&h.file)?;
        }
        Ok(())
    }

    /// `close()` of a client descriptor: make what was written through this handle reach the
    /// store now, and report the store's write-back error (NFS and other network stores write
    /// back at close; `close(dup(fd))` asks them to without giving up the handle).
    #[cfg(unix)]
    pub fn flush(&self, fh: Fh) -> FsResult<()> {
        let Some(h) = self.handles.file(fh) else {
            return Ok(());
        };
        if !h.writable {
            return Ok(());
        }
        if self.config.xsym {
            self.refuse_forged_xsym(&h)?;
        }
        Ok(close_dup(&h.file)?)
    }

    /// With `-o xsym`, a file written through the view in the XSym format is a link for the
    /// store's server and for the view: it must pass the checks `symlink()` makes (a plain
    /// text that stays inside the store and resolves there). One that does not is emptied
    /// and its `close()` fails with `EPERM` — never a link made without those checks.
    #[cfg(unix)]
    fn refuse_forged_xsym(&self, h: &FileHandle) -> FsResult<()> {
        use crate::links::xsym;
        if !xsym::may_be_xsym(Meta::of_fd(&h.file)?.size) {
            return Ok(());
        }
        let node = self.node(h.ino)?;
        if !self.store.xsym_links(&node.real) {
            return Ok(());
        }
        // The handle may be write-only: read through a descriptor of its own, of the same file.
        let meta = Meta::of_fd(&h.file)?;
        let reader = File::from(self.store.open(&node.real, OFlags::RDONLY, 0)?);
        let same = Meta::of_fd(&reader).is_ok_and(|m| (m.dev, m.ino) == (meta.dev, meta.ino));
        if !same {
            return Ok(()); // renamed away meanwhile: judged where it is looked up next
        }
        let mut buf = vec![0u8; xsym::XSYM_SIZE as usize + 1];
        let n = reader.read_at(&mut buf, 0)?;
        let Some(link) = xsym::parse(&buf[..n]) else {
            return Ok(());
        };
        let dir = node.real.parent();
        let fine = match crate::path::plain_link(&link.text) {
            Some(ups) if ups <= dir.depth() => crate::path::link_target(&dir, &link.text, &[])
                .is_ok_and(|p| {
                    crate::resolve::Resolver::new(&self.store)
                        .resolve_path(&p)
                        .is_ok()
                }),
            _ => false,
        };
        if fine {
            return Ok(());
        }
        log::warn!(
            "{}: written as an XSym link whose target is not allowed; emptied",
            node.real
        );
        rustix::fs::ftruncate(&h.file, 0)?;
        Err(FsError::NotPermitted(
            "an XSym link must lead inside the store by a plain relative path",
        ))
    }

    /// Closes a handle. `lock_owner` is given when the kernel asks to drop that owner's
    /// `flock` locks with it.
    pub fn release(&self, fh: Fh, lock_owner: Option<LockOwner>) {
        if let Some((h, last)) = self.handles.remove_file(fh) {
            if let Some(owner) = lock_owner {
                self.locks.drop_owner(h.ino, owner);
            }
            if last {
                self.locks.drop_inode(h.ino);
            }
            if h.writable {
                let ino = h.ino;
                drop(h);
                self.written_and_closed(ino);
            }
        }
    }

    /// `SEEK_DATA`/`SEEK_HOLE` on the store file (other whences never reach a FUSE server).
    #[cfg(unix)]
    pub fn lseek(&self, fh: Fh, offset: i64, whence: i32) -> FsResult<i64> {
        let h = self.handles.file(fh).ok_or(FsError::BadHandle)?;
        let offset = u64::try_from(offset).map_err(|_| FsError::Invalid)?;
        let pos = match whence {
            libc::SEEK_DATA => SeekFrom::Data(offset),
            libc::SEEK_HOLE => SeekFrom::Hole(offset),
            libc::SEEK_SET => SeekFrom::Start(offset),
            _ => return Err(FsError::Invalid),
        };
        // The handle's own file offset is not used by reads and writes (they are positional).
        let got = rustix::fs::seek(&h.file, pos)?;
        i64::try_from(got).map_err(|_| FsError::Invalid)
    }

    /// Preallocates or punches space in an open file.
    #[cfg(unix)]
    pub fn fallocate(&self, fh: Fh, offset: u64, length: u64, mode: i32) -> FsResult<()> {
        let h = self.handles.file(fh).ok_or(FsError::BadHandle)?;
        if !h.writable {
            return Err(FsError::BadHandle);
        }
        let flags = rustix::fs::FallocateFlags::from_bits(mode as _).ok_or(FsError::Unsupported)?;
        self.copies.broken(h.ino);
        rustix::fs::fallocate(&h.file, flags, offset, length)?;
        Ok(())
    }

    /// Number of open file handles.
    pub fn open_files(&self) -> usize {
        self.handles.open_files()
    }

    /// The store file behind an open handle (for adapters that hand it to the kernel).
    pub fn handle_file(&self, fh: Fh) -> Option<Arc<FileHandle>> {
        self.handles.file(fh)
    }
}

/// `close(dup(fd))`: flushes a network file system's dirty data for `f` and returns its error.
#[cfg(unix)]
pub fn close_dup(f: &impl std::os::fd::AsFd) -> std::io::Result<()> {
    use std::os::fd::IntoRawFd;
    let dup = rustix::io::dup(f)?.into_raw_fd();
    // SAFETY: `dup` is a descriptor this function just created and owns; it is closed exactly
    // once here, and nothing else uses it.
    if unsafe { libc::close(dup) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
