//! The FUSE adapter: a thin shell that turns `fuser` requests into [`CacheView`] calls and
//! the view's results into replies. It makes no decisions of its own beyond the encoding:
//! errors go through [`errno`], attributes through [`file_attr`].

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::error::FsError;
use crate::view::{Attr, AttrKind, CacheView, Caller, Entry, LockSpec, LockType, SetAttr, TimeSet};

/// The FUSE file system over a view.
#[derive(Debug)]
pub struct FuseFs {
    view: Arc<CacheView>,
}

impl FuseFs {
    /// Wraps a view.
    pub fn new(view: Arc<CacheView>) -> Self {
        FuseFs { view }
    }
}

fn lock_spec(start: u64, end: u64, typ: i32, pid: u32) -> Result<LockSpec, Errno> {
    let typ = LockType::from_raw(typ).ok_or(Errno::EINVAL)?;
    Ok(LockSpec {
        start,
        end,
        typ,
        pid,
    })
}

/// The errno for a core error.
pub fn errno(e: &FsError) -> Errno {
    Errno::from_i32(e.errno())
}

fn fail(e: FsError) -> Errno {
    match &e {
        FsError::NotFound | FsError::Exists | FsError::NotEmpty => {
            log::debug!("{e}")
        }
        FsError::Store(io) if io.raw_os_error() == Some(libc::ENOENT) => log::debug!("{e}"),
        _ => log::info!("request failed: {e}"),
    }
    errno(&e)
}

/// The `fuser` attributes for view attributes.
pub fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
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

fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
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
        let want = if self.view.store_supports_locks() {
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

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.view.lookup(parent.0, name) {
            Ok(e) => reply_entry(reply, &e),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.view.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.view.getattr(ino.0, fh.map(|f| f.0)) {
            Ok((a, ttl)) => reply.attr(&ttl, &file_attr(&a)),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
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
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: time_set(atime),
            mtime: time_set(mtime),
        };
        match self.view.setattr(ino.0, &set, fh.map(|f| f.0)) {
            Ok((a, ttl)) => reply.attr(&ttl, &file_attr(&a)),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.view.readlink(ino.0) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(fail(e)),
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
        match self.view.mknod(parent.0, name, mode, umask, caller(req)) {
            Ok(e) => reply_entry(reply, &e),
            Err(e) => reply.error(fail(e)),
        }
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
        match self.view.mkdir(parent.0, name, mode, umask, caller(req)) {
            Ok(e) => reply_entry(reply, &e),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.view.unlink(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.view.rmdir(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        match self.view.symlink(parent.0, link_name, target, caller(req)) {
            Ok(e) => reply_entry(reply, &e),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        match self
            .view
            .rename(parent.0, name, newparent.0, newname, flags.bits())
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        match self.view.link(ino.0, newparent.0, newname) {
            Ok(e) => reply_entry(reply, &e),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.view.open(ino.0, flags.0) {
            Ok(o) => {
                let mut f = FopenFlags::empty();
                if o.keep_cache {
                    f |= FopenFlags::FOPEN_KEEP_CACHE;
                }
                reply.opened(FileHandle(o.fh), f)
            }
            Err(e) => reply.error(fail(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.view.read(fh.0, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.view.write(fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.view.release(fh.0, lock_owner.map(|o| o.0));
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.view.fsync(fh.0, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.view.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let res = self.view.readdir(fh.0, offset, |e| {
            let kind = match e.kind {
                AttrKind::Dir => FileType::Directory,
                AttrKind::File | AttrKind::Symlink => FileType::RegularFile,
            };
            reply.add(INodeNo(e.ino), e.offset, kind, &e.name)
        });
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let res = self.view.readdirplus(fh.0, offset, |name, off, e| {
            reply.add(
                INodeNo(e.attr.ino),
                off,
                name,
                &e.entry_ttl.min(e.attr_ttl),
                &file_attr(&e.attr),
                Generation(0),
            )
        });
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.view.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.view.statfs() {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
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
        match self
            .view
            .create(parent.0, name, mode, umask, flags, caller(req))
        {
            Ok((e, o)) => reply.created(
                &e.attr_ttl,
                &file_attr(&e.attr),
                Generation(0),
                FileHandle(o.fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn getlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: fuser::ReplyLock,
    ) {
        let spec = match lock_spec(start, end, typ, pid) {
            Ok(s) => s,
            Err(e) => return reply.error(e),
        };
        match self.view.getlk(ino.0, lock_owner.0, spec) {
            Ok(Some(l)) => reply.locked(l.start, l.end, l.typ.raw(), l.pid),
            Ok(None) => reply.locked(start, end, libc::F_UNLCK, 0),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn setlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let spec = match lock_spec(start, end, typ, pid) {
            Ok(s) => s,
            Err(e) => return reply.error(e),
        };
        if !sleep {
            return match self.view.setlk(ino.0, lock_owner.0, spec, false) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(fail(e)),
            };
        }
        // A waiting lock must not hold a worker thread: wait on a thread of its own.
        let view = self.view.clone();
        let spawned =
            std::thread::Builder::new()
                .name("lock-wait".into())
                .spawn(move || match view.setlk(ino.0, lock_owner.0, spec, true) {
                    Ok(()) => reply.ok(),
                    Err(e) => reply.error(fail(e)),
                });
        if let Err(e) = spawned {
            log::error!("cannot start a lock-wait thread: {e}");
        }
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        // Files are not terminals (Python's `open` asks with TCGETS on every file).
        reply.error(Errno::ENOTTY);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        match self.view.fallocate(fh.0, offset, length, mode) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        match self.view.lseek(fh.0, offset, whence) {
            Ok(o) => reply.offset(o),
            Err(e) => reply.error(fail(e)),
        }
    }
}
