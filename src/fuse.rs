//! The FUSE adapter: a thin shell that turns `fuser` requests into [`CacheView`] calls and
//! the view's results into replies. It makes no decisions of its own beyond the encoding:
//! errors go through [`errno`] (each failure named by its operation and inode and logged
//! through [`crate::fs_error!`]), attributes through [`file_attr`]. How an open is answered
//! (I/O mode, deferred opens) is `open`; waiting locks are `lockwait`.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::error::{FsError, OpError, ResultExt};
use crate::fs_error;
use crate::stats::Stats;

mod deferred;
mod iomode;
mod lockwait;
mod open;
mod unopened;
use crate::view::access;
use crate::view::{
    self as view, Attr, AttrKind, CacheView, Caller, Entry, Fh, Ino, SetAttr, TimeSet,
};
use deferred::Deferred;
use iomode::IoModes;
use lockwait::{LockWaiter, MAX_LOCK_WAITERS, lock_spec};
use open::{Backing, OpenReply};
use unopened::Unopened;

/// The FUSE file system over a view.
#[derive(Debug)]
pub struct FuseFs {
    view: Arc<CacheView>,
    /// Kernel passthrough for reads of immutable blobs: wanted, and still believed to work.
    passthrough: AtomicBool,
    /// How each open inode is served (see [`IoModes`]).
    io: Mutex<IoModes<Backing>>,
    /// Opens of blobs answered before the store file is needed (see [`Deferred`]).
    deferred: Deferred,
    /// Zero-message opens (`-o noopen`): wanted, and offered by the kernel.
    noopen: AtomicBool,
    /// Store files of blobs read without an open, kept between reads (see [`Unopened`]).
    unopened: Unopened,
    stats: Arc<Stats>,
}

impl FuseFs {
    /// Wraps a view; `passthrough` asks for kernel passthrough of blob reads.
    pub fn new(view: Arc<CacheView>, passthrough: bool, stats: Arc<Stats>) -> Self {
        stats.passthrough.store(passthrough, Ordering::Relaxed);
        let _ = stats.dedupe.set(view.dedupe_counters());
        // Hashing copies must not hold the request workers.
        view.start_converters(2);
        FuseFs {
            view,
            passthrough: AtomicBool::new(passthrough),
            io: Mutex::new(IoModes::default()),
            deferred: Deferred::default(),
            noopen: AtomicBool::new(false),
            unopened: Unopened::default(),
            stats,
        }
    }

    /// Asks for zero-message opens (`-o noopen`, read-only mounts; see [`FuseFs::open`]).
    pub fn with_noopen(self, on: bool) -> Self {
        self.noopen.store(on, Ordering::Relaxed);
        self
    }

    /// True while files are opened without a request (the kernel was told so, or will be at
    /// the first open).
    pub(super) fn noopen_active(&self) -> bool {
        self.noopen.load(Ordering::Relaxed)
    }

    fn answer_entry(&self, reply: ReplyEntry, res: Result<Entry, OpError>) {
        match res {
            Ok(e) => reply_entry(reply, &e),
            Err(e) => reply.error(self.fail(e)),
        }
    }

    fn answer_ok(&self, reply: ReplyEmpty, res: Result<(), OpError>) {
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.fail(e)),
        }
    }

    fn fail(&self, e: OpError) -> Errno {
        fail(&self.view, &self.stats, e)
    }

    fn count(&self) {
        Stats::bump(&self.stats.requests, 1);
    }

    /// Counts a request and enters its caller for the view's access checks (see
    /// `view::access`) until the returned guard is dropped.
    fn enter(&self, req: &Request) -> access::Serving {
        self.count();
        access::serving(caller(req))
    }

    fn no_passthrough(&self, why: &str) {
        self.stats.passthrough.store(false, Ordering::Relaxed);
        if self.passthrough.swap(false, Ordering::Relaxed) {
            log::warn!("passthrough unavailable ({why}); serving reads in userspace");
        }
    }

    /// True while reads of blobs go straight to the store file in the kernel.
    pub fn passthrough_active(&self) -> bool {
        self.passthrough.load(Ordering::Relaxed)
    }
}

/// Blobs up to this size are read ahead when looked up on a `noopen` mount.
const PREFETCH_MAX: u64 = 256 << 10;

/// Blobs up to this size are read through the page cache also when passthrough is on.
const SMALL_BLOB: u64 = 64 << 10;

/// The errno for a core error.
pub fn errno(e: &FsError) -> Errno {
    Errno::from_i32(e.errno())
}

/// Logs a failed request (through [`fs_error!`]) and counts it unless it is an answer normal
/// work produces (debug level); its errno.
fn fail(view: &CacheView, stats: &Stats, mut e: OpError) -> Errno {
    if e.level() != log::Level::Debug {
        Stats::bump(&stats.errors, 1);
    }
    fs_error!(view, &mut e);
    errno(&e.error)
}

/// The `fuser` attributes for view attributes.
pub fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino.0),
        size: a.size,
        blocks: a.blocks,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.ctime,
        kind: match a.kind {
            AttrKind::File => FileType::RegularFile,
            AttrKind::Dir => FileType::Directory,
            AttrKind::Symlink => FileType::Symlink,
        },
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: a.blksize,
        flags: 0,
    }
}

fn reply_entry(reply: ReplyEntry, e: &Entry) {
    reply.entry_with_ttls(
        &e.attr_ttl,
        &e.entry_ttl,
        &file_attr(&e.attr),
        Generation(0),
    );
}

/// The view inode for a kernel inode number (the same number).
fn vino(i: INodeNo) -> Ino {
    Ino(i.0)
}

/// The view handle for a kernel handle that is never deferred (directories, writers).
fn vfh(f: FileHandle) -> Fh {
    Fh(f.0)
}

/// The view's lock owner for the kernel's.
fn owner(o: LockOwner) -> view::LockOwner {
    view::LockOwner(o.0)
}

fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
    }
}

fn time_set(t: Option<TimeOrNow>) -> Option<TimeSet> {
    t.map(|t| match t {
        TimeOrNow::Now => TimeSet::Now,
        TimeOrNow::SpecificTime(t) => TimeSet::At(t),
    })
}

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let want = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_ATOMIC_O_TRUNC;
        let have = config.capabilities();
        if self.passthrough_active() {
            if !have.contains(InitFlags::FUSE_PASSTHROUGH) {
                self.no_passthrough("not offered by the kernel");
            } else if !has_cap_sys_admin() {
                self.no_passthrough("needs CAP_SYS_ADMIN");
            } else if config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_err()
                // The store itself may be a stacked file system (e.g. sshfs): allow depth 1.
                || config.set_max_stack_depth(1).is_err()
            {
                self.no_passthrough("refused by the kernel");
            } else {
                log::info!("passthrough: reads of blobs go straight to the store in the kernel");
            }
        }
        let want = if !self.noopen_active() {
            want
        } else if have.contains(InitFlags::FUSE_NO_OPEN_SUPPORT) {
            log::info!(
                "noopen: files are opened without a request; reads open the store file themselves"
            );
            // The kernel keeps every file's pages across opens now: a mutable file rewritten
            // in the store must lose them when its attributes show the change.
            want | InitFlags::FUSE_AUTO_INVAL_DATA
        } else {
            self.noopen.store(false, Ordering::Relaxed);
            log::warn!("noopen unavailable (not offered by the kernel); files are opened as usual");
            want
        };
        let want = if self.noopen_active() {
            // Without opens there is no close for the daemon to release a lock at (no RELEASE,
            // and FLUSH is declined below): the kernel keeps locks itself, as it does on a
            // store without locks. A read-only mount takes no downloads to exclude.
            log::info!(
                "locks: kept by the kernel (noopen); they exclude processes on this machine only"
            );
            want
        } else if self.view.store_supports_locks() {
            log::info!("locks: forwarded to the store as fcntl (OFD) locks");
            want | InitFlags::FUSE_POSIX_LOCKS | InitFlags::FUSE_FLOCK_LOCKS
        } else {
            log::warn!(
                "locks: the store takes no fcntl locks; locks exclude processes on this machine only"
            );
            want
        };
        let _ = config.add_capabilities(want & have);
        let _ = config
            .set_max_readahead(u32::MAX)
            .or_else(|max| config.set_max_readahead(max));
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _caller = self.enter(req);
        let res = self
            .view
            .lookup(vino(parent), name)
            .during_at("lookup", vino(parent), name);
        let small = match &res {
            Ok(e) if e.attr.kind == AttrKind::File && self.noopen_active() => Some(e.attr.ino),
            _ => None,
        };
        self.answer_entry(reply, res);
        // A file looked up is usually read next, and without opens nothing else tells the
        // daemon: start the store's read of a small blob now, after the answer, so that the
        // read request finds the bytes in memory.
        if let Some(ino) = small {
            self.view.prefetch(ino, PREFETCH_MAX);
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.view.forget(vino(ino), nlookup);
        if !self.view.is_live(vino(ino)) {
            // Only a noopen mount keeps store files between reads.
            if let Some(fh) = self
                .noopen_active()
                .then(|| self.unopened.forget(ino.0))
                .flatten()
            {
                self.view.release(fh, None);
            }
            self.io
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(ino.0);
        }
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let _caller = self.enter(req);
        match self
            .view
            .getattr(vino(ino), fh.and_then(|f| self.view_fh(f.0)))
        {
            Ok((a, ttl)) => reply.attr(&ttl, &file_attr(&a)),
            Err(e) => reply.error(self.fail(e.during("getattr", vino(ino)))),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _caller = self.enter(req);
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: time_set(atime),
            mtime: time_set(mtime),
        };
        match self
            .view
            .setattr(vino(ino), &set, fh.and_then(|f| self.view_fh(f.0)))
        {
            Ok((a, ttl)) => reply.attr(&ttl, &file_attr(&a)),
            Err(e) => reply.error(self.fail(e.during("setattr", vino(ino)))),
        }
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let _caller = self.enter(req);
        match self.view.readlink(vino(ino)) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(self.fail(e.during("readlink", vino(ino)))),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let _caller = self.enter(req);
        self.answer_entry(
            reply,
            self.view
                .mknod(vino(parent), name, mode, umask, caller(req))
                .during_at("mknod", vino(parent), name),
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let _caller = self.enter(req);
        self.answer_entry(
            reply,
            self.view
                .mkdir(vino(parent), name, mode, umask, caller(req))
                .during_at("mkdir", vino(parent), name),
        );
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _caller = self.enter(req);
        let res = self.view.unlink(vino(parent), name);
        self.answer_ok(reply, res.during_at("unlink", vino(parent), name));
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _caller = self.enter(req);
        let res = self.view.rmdir(vino(parent), name);
        self.answer_ok(reply, res.during_at("rmdir", vino(parent), name));
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let _caller = self.enter(req);
        self.answer_entry(
            reply,
            self.view
                .symlink(vino(parent), link_name, target, caller(req))
                .during_at("symlink", vino(parent), link_name),
        );
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _caller = self.enter(req);
        let res = self
            .view
            .rename(vino(parent), name, vino(newparent), newname, flags.bits());
        self.answer_ok(reply, res.during_at("rename", vino(parent), name));
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _caller = self.enter(req);
        let res = self.view.link(vino(ino), vino(newparent), newname);
        self.answer_entry(reply, res.during_at("link", vino(newparent), newname));
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _caller = self.enter(req);
        let flags = view::OpenFlags::from_raw(flags.0);
        let writable = flags.writes();
        if self.noopen_active() {
            // ENOSYS tells the kernel to open files without asking from now on (and to keep
            // their pages across opens). The opens that still arrive are checked as any open,
            // so a refused one stays refused; reads then open the store file themselves.
            return match self.view.check_open(vino(ino), flags) {
                Ok(_) => reply.error(Errno::ENOSYS),
                Err(e) => reply.error(self.fail(e.during("open", vino(ino)))),
            };
        }
        // A reader of a blob gets its pages from the kernel's cache when it holds them: the
        // store file waits for a read that needs it. Without passthrough for every blob; with
        // it for small ones, whose open and close cost more than passthrough saves (they are
        // then always served through the page cache: an inode never mixes the two).
        if self.deferred.may_defer(vino(ino)) {
            match self.view.check_open(vino(ino), flags) {
                Ok(Some(size)) if !self.passthrough_active() || size <= SMALL_BLOB => {
                    if let Some(fh) = self.defer_open(ino.0, flags) {
                        let f = FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_NOFLUSH;
                        return reply.opened(FileHandle(fh), f);
                    }
                }
                Ok(_) => {}
                Err(e) => return reply.error(self.fail(e.during("open", vino(ino)))),
            }
        }
        match self.view.open(vino(ino), flags) {
            Ok(o) => self.reply_open(ino.0, o, writable, OpenReply::Open(reply)),
            Err(e) => reply.error(self.fail(e.during("open", vino(ino)))),
        }
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _caller = self.enter(req);
        let res = if self.is_unopened(fh.0) {
            self.unopened(vino(ino), |fh| self.view.read(fh, offset, size))
        } else {
            self.store_fh(fh.0)
                .and_then(|fh| self.view.read(fh, offset, size))
        };
        match res {
            Ok(d) => {
                Stats::bump(&self.stats.bytes_read, d.len() as u64);
                reply.data(&d)
            }
            Err(e) => reply.error(self.fail(e.during("read", vino(ino)))),
        }
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _caller = self.enter(req);
        match self.view.write(vfh(fh), offset, data) {
            Ok(n) => {
                Stats::bump(&self.stats.bytes_written, u64::from(n));
                reply.written(n)
            }
            Err(e) => reply.error(self.fail(e.during("write", vino(ino)))),
        }
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let _caller = self.enter(req);
        if self.is_unopened(fh.0) {
            // Nothing to flush on a read-only mount whose locks the kernel keeps: ENOSYS makes
            // the kernel stop sending FLUSH, so a close costs no request either.
            return reply.error(Errno::ENOSYS);
        }
        // POSIX: closing any descriptor of a file releases the closing process's locks on it
        // (the kernel leaves that to servers that take POSIX locks).
        self.view.drop_locks(vino(ino), owner(lock_owner));
        // Writes through passthrough went to the backing file, others to the handle's.
        let backing = {
            let io = self.io.lock().unwrap_or_else(|e| e.into_inner());
            io.backing_for(fh.0)
                .and_then(|b| b.file.as_ref())
                .map(crate::view::close_dup)
        };
        let res = match backing {
            Some(Err(e)) => Err(FsError::Store(e)),
            _ => self.view.flush(vfh(fh)),
        };
        self.answer_ok(reply, res.during("flush", vino(ino)));
    }

    fn release(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _caller = self.enter(req);
        self.release_io(fh.0);
        let fh = if Deferred::is_deferred(fh.0) {
            match self.deferred.remove(fh.0) {
                Some(real) => real,
                None => return reply.ok(),
            }
        } else {
            vfh(fh)
        };
        self.view.release(fh, lock_owner.map(owner));
        reply.ok();
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _caller = self.enter(req);
        // A deferred reader has nothing of its own to sync.
        let res = match self.view_fh(fh.0) {
            Some(fh) => self.view.fsync(fh, datasync),
            None => Ok(()),
        };
        self.answer_ok(reply, res.during("fsync", vino(ino)));
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _caller = self.enter(req);
        match self.view.opendir(vino(ino)) {
            // Listings may be cached by the kernel: it drops them when the directory's
            // attributes (refreshed after attr_timeout) show a new mtime.
            Ok(fh) => reply.opened(
                FileHandle(fh.0),
                FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(self.fail(e.during("opendir", vino(ino)))),
        }
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _caller = self.enter(req);
        let res = self.view.readdir(vfh(fh), offset, |e| {
            let kind = match e.kind {
                AttrKind::Dir => FileType::Directory,
                AttrKind::File | AttrKind::Symlink => FileType::RegularFile,
            };
            reply.add(INodeNo(e.ino), e.offset, kind, &e.name)
        });
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.fail(e.during("readdir", vino(ino)))),
        }
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let _caller = self.enter(req);
        let res = self.view.readdirplus(vfh(fh), offset, |name, off, e| {
            reply.add(
                INodeNo(e.attr.ino.0),
                off,
                name,
                &e.entry_ttl.min(e.attr_ttl),
                &file_attr(&e.attr),
                Generation(0),
            )
        });
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.fail(e.during("readdirplus", vino(ino)))),
        }
    }

    fn releasedir(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let _caller = self.enter(req);
        self.view.releasedir(vfh(fh));
        reply.ok();
    }

    fn fsyncdir(
        &self,
        req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _caller = self.enter(req);
        reply.ok();
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let _caller = self.enter(req);
        match self.view.statfs() {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            Err(e) => reply.error(self.fail(e.during("statfs", None))),
        }
    }

    fn access(&self, req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        let _caller = self.enter(req);
        // Permission checks are the kernel's (`default_permissions`) or the store's.
        reply.error(Errno::ENOSYS);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let _caller = self.enter(req);
        match self.view.create(
            vino(parent),
            name,
            mode,
            umask,
            view::OpenFlags::from_raw(flags),
            caller(req),
        ) {
            Ok((e, o)) => {
                let ino = e.attr.ino.0;
                self.reply_open(ino, o, true, OpenReply::Create(reply, e))
            }
            Err(e) => reply.error(self.fail(e.during("create", vino(parent)).name(name))),
        }
    }

    fn getlk(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: fuser::ReplyLock,
    ) {
        let _caller = self.enter(req);
        let spec = match lock_spec(start, end, typ, pid) {
            Ok(s) => s,
            Err(e) => return reply.error(e),
        };
        match self.view.getlk(vino(ino), owner(lock_owner), spec) {
            Ok(Some(l)) => reply.locked(l.start, l.end, l.typ.raw(), l.pid),
            Ok(None) => reply.locked(start, end, libc::F_UNLCK, 0),
            Err(e) => reply.error(self.fail(e.during("getlk", vino(ino)))),
        }
    }

    fn setlk(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let _caller = self.enter(req);
        let spec = match lock_spec(start, end, typ, pid) {
            Ok(s) => s,
            Err(e) => return reply.error(e),
        };
        if !sleep {
            let res = self
                .view
                .setlk(vino(ino), vfh(fh), owner(lock_owner), spec, false);
            return self.answer_ok(reply, res.during("setlk", vino(ino)));
        }
        // A waiting lock must not hold a worker thread: wait on a thread of its own, of
        // which there are at most `MAX_LOCK_WAITERS` (more waiters get `ENOLCK`).
        let Some(slot) = LockWaiter::take() else {
            log::warn!("{MAX_LOCK_WAITERS} locks are waiting already; refusing another (ENOLCK)");
            return reply.error(Errno::ENOLCK);
        };
        let view = self.view.clone();
        let stats = self.stats.clone();
        let who = caller(req);
        let spawned = std::thread::Builder::new()
            .name("lock-wait".into())
            .spawn(move || {
                let _slot = slot;
                let _caller = access::serving(who);
                match view.setlk(vino(ino), vfh(fh), owner(lock_owner), spec, true) {
                    Ok(()) => reply.ok(),
                    Err(e) => reply.error(fail(&view, &stats, e.during("setlk", vino(ino)))),
                }
            });
        if let Err(e) = spawned {
            log::error!("cannot start a lock-wait thread: {e}");
        }
    }

    // Extended attributes are not supported. ENOSYS (not EOPNOTSUPP) makes the kernel stop
    // asking — it would otherwise ask for `security.capability` on every write.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: fuser::ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: fuser::ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS);
    }

    fn ioctl(
        &self,
        req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        let _caller = self.enter(req);
        // Files are not terminals (Python's `open` asks with TCGETS on every file).
        reply.error(Errno::ENOTTY);
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let _caller = self.enter(req);
        let res = self.view.fallocate(vfh(fh), offset, length, mode);
        self.answer_ok(reply, res.during("fallocate", vino(ino)));
    }

    fn lseek(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let _caller = self.enter(req);
        let res = if self.is_unopened(fh.0) {
            self.unopened(vino(ino), |fh| self.view.lseek(fh, offset, whence))
        } else {
            self.store_fh(fh.0)
                .and_then(|fh| self.view.lseek(fh, offset, whence))
        };
        match res {
            Ok(o) => reply.offset(o),
            Err(e) => reply.error(self.fail(e.during("lseek", vino(ino)))),
        }
    }
}

/// True if this process holds CAP_SYS_ADMIN (needed to register passthrough backing files).
fn has_cap_sys_admin() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}
