//! How the FUSE adapter answers an open: the kernel I/O mode of each open (page cache or
//! passthrough to a backing file, chosen by [`super::iomode::IoModes`]), deferred opens of blobs (see
//! [`super::deferred`]), and which view handle stands behind a kernel handle.
//!
//! Invariants: an inode never mixes passthrough and page-cache handles; a deferred handle
//! has the view handle a read opened, or none; every kernel handle's I/O mode is forgotten
//! at its release.

use fuser::{BackingId, Errno, FileHandle, FopenFlags, Generation, ReplyCreate, ReplyOpen};

use super::deferred::Deferred;
use super::iomode::{Grant, OpenReq};
use super::{FuseFs, file_attr};
use crate::error::FsError;
use crate::stats::Stats;
use crate::view::{self, Entry, Fh, Ino, Opened};

/// How long a writable open waits for a passthrough reader's RELEASE in flight before it is
/// refused with `ETXTBSY`.
const RELEASE_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

impl FuseFs {
    /// Replies to a successful view `open` (or `create`, with `entry`), choosing the kernel
    /// I/O mode with [`super::iomode::IoModes`].
    pub(super) fn reply_open(&self, ino: u64, o: Opened, writable: bool, reply: OpenReply) {
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        // The kernel sends a passthrough reader's RELEASE after its close has returned: a
        // writer that opens right after the last reader closed may find the reader still
        // registered. Give such a RELEASE (served by another worker) a moment before refusing.
        if writable && io.refuses_writers(ino) {
            let deadline = std::time::Instant::now() + RELEASE_GRACE;
            while io.refuses_writers(ino) && std::time::Instant::now() < deadline {
                drop(io);
                std::thread::sleep(std::time::Duration::from_millis(2));
                io = self.io.lock().unwrap_or_else(|e| e.into_inner());
            }
        }
        let req = OpenReq {
            ino,
            fh: o.fh.0,
            writable,
            immutable: o.keep_cache,
            passthrough: self.passthrough_active(),
        };
        let grant = io.open(req, |rdwr| {
            let file = self.view.handle_file(o.fh)?;
            // Writers and later readers share one backing: open it read-write if allowed.
            let rw = if rdwr { reopen_rdwr(&file.file) } else { None };
            let res = match &rw {
                Some(f) => reply.open_backing(f),
                None => reply.open_backing(&file.file),
            };
            match res {
                Ok(id) => {
                    let writable = rw.is_some() || file.writable;
                    // Kept so `flush` can push passthrough writes to the store at close.
                    let keep = if writable {
                        rw.or_else(|| file.file.try_clone().ok())
                    } else {
                        None
                    };
                    Some((Backing { id, file: keep }, writable))
                }
                Err(e) => {
                    self.no_passthrough(&e.to_string());
                    None
                }
            }
        });
        match grant {
            Grant::Passthrough(Backing { id, .. }) => {
                Stats::bump(&self.stats.passthrough_opens, 1);
                if writable {
                    // Its writes go to the store without the daemon: hashed at close instead.
                    self.view.writes_bypass(o.fh);
                }
                // FOPEN_KEEP_CACHE must not be combined with passthrough. The FLUSH at close
                // is kept: it gives the (asynchronous) RELEASE of a passthrough reader a head
                // start before the closing process's next open (see RELEASE_GRACE).
                reply.passthrough(o.fh.0, id);
            }
            Grant::Cached => {
                drop(io);
                let mut f = FopenFlags::empty();
                if o.keep_cache {
                    f |= FopenFlags::FOPEN_KEEP_CACHE;
                    // A reader of an immutable blob has nothing to flush at close: skip that
                    // round trip. (Kept for everything else: `flush` pushes writes to the
                    // store and releases the closing process's POSIX locks.)
                    if !writable {
                        f |= FopenFlags::FOPEN_NOFLUSH;
                    }
                }
                reply.cached(o.fh.0, f);
            }
            Grant::Busy => {
                drop(io);
                self.view.release(o.fh, None);
                reply.error(Errno::ETXTBSY);
            }
        }
    }

    /// A deferred handle for a read-only open of blob `ino`, registered as a page-cache
    /// handle of its inode; `None` if the inode is served by passthrough right now (an inode
    /// never mixes the two).
    pub(super) fn defer_open(&self, ino: u64, flags: view::OpenFlags) -> Option<u64> {
        let fh = self.deferred.insert(Ino(ino), flags);
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let req = OpenReq {
            ino,
            fh,
            writable: false,
            immutable: true,
            passthrough: false,
        };
        if matches!(io.open(req, |_| None), Grant::Cached) {
            return Some(fh);
        }
        io.release(fh);
        drop(io);
        self.deferred.remove(fh);
        None
    }

    /// The view handle behind a kernel handle: itself, or for a deferred open the one a
    /// read opened (`None` while no read needed the store).
    pub(super) fn view_fh(&self, fh: u64) -> Option<Fh> {
        if Deferred::is_deferred(fh) {
            self.deferred.real(fh)
        } else if fh == 0 {
            None
        } else {
            Some(Fh(fh))
        }
    }

    /// Like [`FuseFs::view_fh`], opening the store file of a deferred open now.
    pub(super) fn store_fh(&self, fh: u64) -> Result<Fh, FsError> {
        if !Deferred::is_deferred(fh) {
            return Ok(Fh(fh));
        }
        self.deferred.resolve(
            fh,
            |ino, flags| self.view.open(ino, flags).map(|o| o.fh),
            |real| self.view.release(real, None),
        )
    }

    /// A read of a file the kernel opened without asking (`-o noopen`): the store file is
    /// opened for this read alone, with the checks of an open for the reading caller, so no
    /// descriptor outlives the request and a file replaced in the store is found at once.
    pub(super) fn unopened<T>(
        &self,
        ino: Ino,
        f: impl FnOnce(Fh) -> Result<T, FsError>,
    ) -> Result<T, FsError> {
        let (kept, idle) = self.unopened.take(ino.0);
        for old in idle {
            self.view.release(old, None);
        }
        let (fh, keep) = match kept {
            Some(fh) => (fh, true),
            None => {
                let o = self.view.open(ino, view::OpenFlags::READ)?;
                (o.fh, o.keep_cache)
            }
        };
        let res = f(fh);
        // A blob's store file is kept for the next read (its bytes never change); a mutable
        // file's is not (the next read must find a file replaced in the store).
        let release = if keep && res.is_ok() {
            self.unopened.put(ino.0, fh)
        } else {
            vec![fh]
        };
        for old in release {
            self.view.release(old, None);
        }
        res
    }

    /// True for the handle of a file the kernel opened without asking (`-o noopen`): view
    /// handle numbers start at 1.
    pub(super) fn is_unopened(&self, fh: u64) -> bool {
        fh == 0 && self.noopen_active()
    }

    /// Forgets a handle's I/O mode.
    pub(super) fn release_io(&self, fh: u64) {
        self.io
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release(fh);
    }
}

/// A registered backing file: its kernel id and, for writable ones, the file (for `flush`).
#[derive(Debug)]
pub(super) struct Backing {
    pub(super) id: BackingId,
    pub(super) file: Option<std::fs::File>,
}

/// The reply of an `open` or a `create`, so both go through [`FuseFs::reply_open`].
pub(super) enum OpenReply {
    Open(ReplyOpen),
    Create(ReplyCreate, Entry),
}

impl OpenReply {
    pub(super) fn open_backing(&self, fd: impl std::os::fd::AsFd) -> std::io::Result<BackingId> {
        match self {
            OpenReply::Open(r) => r.open_backing(fd),
            OpenReply::Create(r, _) => r.open_backing(fd),
        }
    }

    pub(super) fn passthrough(self, fh: u64, id: &BackingId) {
        match self {
            OpenReply::Open(r) => r.opened_passthrough(FileHandle(fh), FopenFlags::empty(), id),
            OpenReply::Create(r, e) => r.created_passthrough(
                &e.attr_ttl,
                &file_attr(&e.attr),
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
                id,
            ),
        }
    }

    pub(super) fn cached(self, fh: u64, flags: FopenFlags) {
        match self {
            OpenReply::Open(r) => r.opened(FileHandle(fh), flags),
            OpenReply::Create(r, e) => r.created(
                &e.attr_ttl,
                &file_attr(&e.attr),
                Generation(0),
                FileHandle(fh),
                flags,
            ),
        }
    }

    pub(super) fn error(self, e: Errno) {
        match self {
            OpenReply::Open(r) => r.error(e),
            OpenReply::Create(r, _) => r.error(e),
        }
    }
}

/// A read-write descriptor of the file behind `f` (reopened through `/proc/self/fd`).
fn reopen_rdwr(f: &std::fs::File) -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = format!("/proc/self/fd/{}", f.as_raw_fd());
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .ok()
}
