//! The WinFsp adapter: path-based WinFsp requests onto the inode-based view.
//!
//! Thin by design: each request walks its path (`walk`) through [`CacheView::lookup`] (with
//! the case rule of [`super::names`]), calls one view operation, and translates the answer with
//! [`super::attrs`] and [`super::status`]. Invariants:
//! - every lookup the adapter makes is forgotten again: a walk keeps one lookup of its final
//!   entry, which an open file context owns until `close` (or the walk cache of one request,
//!   below, until it is taken or replaced); everything else is forgotten at once;
//! - one case rule on every path (open, create, rename source and target, delete): a name is
//!   looked up in the store's own spelling ([`CacheView::spellings`], one directory query,
//!   never a listing), so `BLOBS\<hash>` is `blobs/<hash>` with all its rules;
//! - one walk per open: `GetSecurityByName` keeps its walk for the `Open`/`Create` that
//!   WinFsp calls next on the same thread for the same request;
//! - a delete that was reported as accepted (`SetDelete`) has been decided: everything that
//!   can refuse it was asked then, and the store entry is held open for deletion until the
//!   cleanup that carries it out;
//! - nothing shown is a reparse point (attributes come from
//!   [`super::attrs::file_attributes`]; reading one answers `STATUS_NOT_A_REPARSE_POINT`); a
//!   symlink a client creates (WinFsp's driver checks its right) becomes a link in the store
//!   and shows as its target;
//! - no panics on request paths: every error becomes an NTSTATUS, the store's own where it
//!   has one ([`crate::store::last_status`]), and is logged with its operation and object
//!   through [`crate::fs_error!`], as the FUSE adapter logs its own.

use std::ffi::c_void;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use winfsp::filesystem::{
    DirBuffer, DirMarker, FileInfo, FileSecurity, FileSystemContext, ModificationDescriptor,
    OpenFileInfo, VolumeInfo,
};
use winfsp::{FspError, U16CStr};

use super::{attrs, names, status};
use crate::compat::libc;
use crate::error::{FsError, FsResult, OpError};
use crate::fs_error;
use crate::inode::{Ino, ROOT_INO};
use crate::store::last_status;
use crate::view::{Attr, AttrKind, CacheView, Caller, Entry, Fh, OpenFlags, SetAttr, TimeSet};

const STATUS_BUFFER_OVERFLOW: i32 = 0x8000_0005u32 as i32;
const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
const CLEANUP_DELETE: u32 = 0x01;

/// Access rights that read or change a file's data (or list a directory): only opens
/// granted one of these open the store file.
const DATA_ACCESS: u32 = 0x0001 // FILE_READ_DATA, FILE_LIST_DIRECTORY
    | 0x0002 // FILE_WRITE_DATA
    | 0x0004 // FILE_APPEND_DATA
    | 0x0020 // FILE_EXECUTE
    | 0x8000_0000 // GENERIC_READ
    | 0x4000_0000 // GENERIC_WRITE
    | 0x2000_0000 // GENERIC_EXECUTE
    | 0x1000_0000; // GENERIC_ALL

/// The NTSTATUS for a view error: the store's own status of this request's last store
/// failure when it means the errno of the core's answer (a core decision that the store
/// failed, such as "not found" for a lookup, counts) (so `STATUS_DELETE_PENDING`,
/// `STATUS_SHARING_VIOLATION`, … reach the client as the store said them), else the
/// translation of [`status::ntstatus`].
fn fsp(e: FsError) -> FspError {
    match last_status::take() {
        Some(st) if status::nt_to_errno(st) == e.errno() => FspError::NTSTATUS(st),
        _ => FspError::NTSTATUS(status::ntstatus(&e)),
    }
}

impl HfFs {
    /// A failed request: logged through [`fs_error!`] (with its object's store path), and
    /// answered with [`fsp`]'s NTSTATUS.
    fn fail(&self, mut e: OpError) -> FspError {
        fs_error!(&self.view, &mut e);
        fsp(e.error)
    }
}

fn nt(s: i32) -> FspError {
    FspError::NTSTATUS(s)
}

/// Starts a request: no store status of an earlier request is taken for this one's.
fn begin() {
    last_status::clear();
}

/// An open file or directory.
pub struct FileCtx {
    ino: Ino,
    is_dir: bool,
    fh: Option<Fh>,
    dir_fh: Mutex<Option<Fh>>,
    dir_buffer: DirBuffer,
    /// Opened for reading only although writing was granted: the object allows no more (an
    /// immutable blob). Writes through it fail; everything else works.
    read_only: bool,
    /// The store entry held open for deletion since `SetDelete` decided the delete.
    delete: Mutex<Option<std::fs::File>>,
    /// `fh` was released early (its entry was replaced by a link: `set_reparse_point`).
    released: std::sync::atomic::AtomicBool,
    /// The hub's lock taken in the store for this handle ([`CacheView::hub_lock`]), until
    /// its cleanup.
    hub_lock: Mutex<Option<std::fs::File>>,
}

impl FileCtx {
    fn new(ino: Ino, is_dir: bool, fh: Option<Fh>, dir_fh: Option<Fh>) -> FileCtx {
        FileCtx {
            ino,
            is_dir,
            fh,
            dir_fh: Mutex::new(dir_fh),
            dir_buffer: DirBuffer::new(),
            read_only: false,
            delete: Mutex::new(None),
            released: std::sync::atomic::AtomicBool::new(false),
            hub_lock: Mutex::new(None),
        }
    }

    /// The view's file handle, while it is open.
    fn fh(&self) -> Option<Fh> {
        self.fh.filter(|_| !self.released.load(Ordering::Relaxed))
    }
}

/// Distinguishes file systems in the per-thread walk cache (tests run several).
static NEXT_FS_ID: AtomicU64 = AtomicU64::new(1);

/// The file system: a view and the security descriptor every entry carries.
pub(crate) struct HfFs {
    view: CacheView,
    read_only: bool,
    sd: Vec<u8>,
    id: u64,
    /// Bumped by every change made through the adapter: a cached walk from before a change
    /// is not used.
    generation: AtomicU64,
}

impl HfFs {
    pub(crate) fn new(view: CacheView, read_only: bool, sd: Vec<u8>) -> HfFs {
        HfFs {
            view,
            read_only,
            sd,
            id: NEXT_FS_ID.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
        }
    }

    fn fill(&self, fi: &mut FileInfo, a: &Attr) {
        fi.file_attributes = attrs::file_attributes(a.kind, self.read_only);
        fi.reparse_tag = 0;
        fi.file_size = if a.kind == AttrKind::Dir { 0 } else { a.size };
        fi.allocation_size = fi.file_size.div_ceil(4096) * 4096;
        fi.creation_time = attrs::filetime(a.mtime.min(a.ctime));
        fi.last_access_time = attrs::filetime(a.atime);
        fi.last_write_time = attrs::filetime(a.mtime);
        fi.change_time = attrs::filetime(a.ctime);
        fi.index_number = a.ino.0;
        fi.hard_links = 0;
        fi.ea_size = 0;
    }

    /// Records a change made through the adapter (see [`HfFs::generation`]).
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.drop_cached_walk();
    }

    fn copy_sd(&self, buf: Option<&mut [c_void]>) -> winfsp::Result<u64> {
        if let Some(buf) = buf {
            if buf.len() < self.sd.len() {
                return Err(nt(STATUS_BUFFER_OVERFLOW));
            }
            // SAFETY: `buf` is at least `sd.len()` writable bytes (checked above); the
            // regions do not overlap (one is ours).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.sd.as_ptr(),
                    buf.as_mut_ptr().cast::<u8>(),
                    self.sd.len(),
                );
            }
        }
        Ok(self.sd.len() as u64)
    }

    fn attr_of(&self, ctx: &FileCtx) -> FsResult<Attr> {
        self.view.getattr(ctx.ino, ctx.fh()).map(|(a, _)| a)
    }

    /// A context for a walked or created entry (its lookup now belongs to the context).
    /// The store file is opened only when data access was granted (an open for attributes
    /// or for deletion costs no store open), and with the access the object allows: write
    /// access to an immutable blob opens it for reading, and only writes fail — as NTFS
    /// grants `MAXIMUM_ALLOWED` what the object allows.
    fn context(&self, e: &Entry, granted_access: u32) -> FsResult<FileCtx> {
        let ino = e.attr.ino;
        let is_dir = e.attr.kind == AttrKind::Dir;
        let data = granted_access & DATA_ACCESS != 0;
        if is_dir {
            let dir_fh = if data {
                Some(self.view.opendir(ino)?)
            } else {
                None
            };
            return Ok(FileCtx::new(ino, true, None, dir_fh));
        }
        if !data {
            return Ok(FileCtx::new(ino, false, None, None));
        }
        let flags = attrs::open_flags(granted_access);
        match self.view.open(ino, flags) {
            Ok(o) => Ok(FileCtx::new(ino, false, Some(o.fh), None)),
            Err(FsError::NotPermitted(_) | FsError::ReadOnly) if flags.writes() => {
                let o = self.view.open(ino, OpenFlags::READ)?;
                let mut ctx = FileCtx::new(ino, false, Some(o.fh), None);
                ctx.read_only = true;
                Ok(ctx)
            }
            Err(e) => Err(e),
        }
    }

    /// Takes the hub's lock in the store for a handle opened for writing on a hub lock file
    /// (see [`CacheView::hub_lock`]); on refusal the context is closed again.
    fn with_hub_lock(&self, ctx: FileCtx, granted_access: u32) -> FsResult<FileCtx> {
        if ctx.is_dir || !attrs::open_flags(granted_access).writes() {
            return Ok(ctx);
        }
        match self.view.hub_lock(ctx.ino) {
            Ok(lock) => {
                *ctx.hub_lock.lock().unwrap_or_else(|e| e.into_inner()) = lock;
                Ok(ctx)
            }
            Err(e) => {
                if let Some(fh) = ctx.fh() {
                    self.view.release(fh, None);
                }
                Err(e)
            }
        }
    }

    /// The directory handle of a directory context, opened on first use (an open for
    /// attributes does not list).
    fn dir_handle(&self, ctx: &FileCtx) -> FsResult<Fh> {
        let mut slot = ctx.dir_fh.lock().unwrap_or_else(|e| e.into_inner());
        match *slot {
            Some(fh) => Ok(fh),
            None => {
                let fh = self.view.opendir(ctx.ino)?;
                *slot = Some(fh);
                Ok(fh)
            }
        }
    }

    /// Why a write through `ctx` is refused before it reaches the view, if it is.
    fn refuse_write(&self, ctx: &FileCtx) -> winfsp::Result<Fh> {
        if ctx.read_only {
            return Err(nt(if self.read_only {
                status::STATUS_MEDIA_WRITE_PROTECTED
            } else {
                status::STATUS_ACCESS_DENIED
            }));
        }
        ctx.fh()
            .ok_or_else(|| nt(status::STATUS_INVALID_DEVICE_REQUEST))
    }
}

impl FileSystemContext for HfFs {
    type FileContext = FileCtx;

    fn get_security_by_name(
        &self,
        file_name: &U16CStr,
        security_descriptor: Option<&mut [c_void]>,
        _reparse_point_resolver: impl FnOnce(&U16CStr) -> Option<FileSecurity>,
    ) -> winfsp::Result<FileSecurity> {
        begin();
        let w = self.walk(file_name)?;
        let attributes = attrs::file_attributes(w.entry.attr.kind, self.read_only);
        // The `Open` (or, for the parent of a new name, the `Create`) WinFsp calls next on
        // this thread walks the same path: it takes this walk instead.
        self.keep_walk(file_name, w);
        let sz = self.copy_sd(security_descriptor)?;
        Ok(FileSecurity {
            reparse: false,
            sz_security_descriptor: sz,
            attributes,
        })
    }

    fn open(
        &self,
        file_name: &U16CStr,
        create_options: u32,
        granted_access: u32,
        file_info: &mut OpenFileInfo,
    ) -> winfsp::Result<FileCtx> {
        let w = self.walk_once(file_name)?;
        begin();
        let is_dir = w.entry.attr.kind == AttrKind::Dir;
        let refused = if is_dir && create_options & FILE_NON_DIRECTORY_FILE != 0 {
            Some(status::STATUS_FILE_IS_A_DIRECTORY)
        } else if !is_dir && attrs::wants_directory(create_options) {
            Some(status::STATUS_NOT_A_DIRECTORY)
        } else {
            None
        };
        if let Some(s) = refused {
            self.release_entry(&w.entry);
            return Err(nt(s));
        }
        let ctx = match self
            .context(&w.entry, granted_access)
            .and_then(|c| self.with_hub_lock(c, granted_access))
        {
            Ok(c) => c,
            Err(e) => {
                self.release_entry(&w.entry);
                return Err(self.fail(e.during("open", w.entry.attr.ino)));
            }
        };
        self.fill(file_info.as_mut(), &w.entry.attr);
        // The store's spelling of the name (the volume is case-insensitive).
        let normalized: Vec<u16> = w
            .names
            .iter()
            .flat_map(|n| {
                let win = names::to_windows(&n.to_string_lossy()).into_owned();
                std::iter::once(u16::from(b'\\')).chain(win.encode_utf16().collect::<Vec<_>>())
            })
            .collect();
        if !normalized.is_empty() {
            file_info.set_normalized_name(&normalized, None);
        }
        let _ = w.parent;
        Ok(ctx)
    }

    fn close(&self, ctx: FileCtx) {
        if let Some(fh) = ctx.fh() {
            self.view.release(fh, None);
        }
        if let Some(fh) = *ctx.dir_fh.lock().unwrap_or_else(|e| e.into_inner()) {
            self.view.releasedir(fh);
        }
        if ctx.ino != ROOT_INO {
            self.view.forget(ctx.ino, 1);
        }
    }

    fn create(
        &self,
        file_name: &U16CStr,
        create_options: u32,
        granted_access: u32,
        _file_attributes: u32,
        _security_descriptor: Option<&[c_void]>,
        _allocation_size: u64,
        _extra_buffer: Option<&[u8]>,
        extra_buffer_is_reparse_point: bool,
        file_info: &mut OpenFileInfo,
    ) -> winfsp::Result<FileCtx> {
        if extra_buffer_is_reparse_point {
            return Err(nt(status::STATUS_NOT_SUPPORTED));
        }
        let (parent, name) = self.walk_parent(file_name)?;
        begin();
        // The case rule holds for new names too: a name the store has in another case is
        // taken (a case-sensitive store would otherwise get case twins).
        match self.lookup(parent, &name.to_string_lossy()) {
            Ok((e, _)) => {
                self.release_entry(&e);
                self.release_parent(parent);
                return Err(nt(status::STATUS_OBJECT_NAME_COLLISION));
            }
            Err(FsError::NotFound) => last_status::clear(),
            Err(e) => {
                self.release_parent(parent);
                return Err(self.fail(e.during("create", parent).name(&name)));
            }
        }
        let dir = attrs::wants_directory(create_options);
        let made = if dir {
            self.view
                .mkdir(parent, &name, attrs::new_mode(true), 0, Caller::default())
                .and_then(|e| {
                    let fh = self.view.opendir(e.attr.ino);
                    if fh.is_err() {
                        self.release_entry(&e);
                    }
                    fh.map(|fh| (e, None, Some(fh)))
                })
        } else {
            let flags = OpenFlags::from_raw(libc::O_RDWR | libc::O_CREAT | libc::O_EXCL);
            self.view
                .create(
                    parent,
                    &name,
                    attrs::new_mode(false),
                    0,
                    flags,
                    Caller::default(),
                )
                .map(|(e, o)| (e, Some(o.fh), None))
        };
        self.release_parent(parent);
        let (entry, fh, dir_fh) =
            made.map_err(|e| self.fail(e.during("create", parent).name(&name)))?;
        self.changed();
        let ctx = match self.with_hub_lock(
            FileCtx::new(entry.attr.ino, dir, fh, dir_fh),
            granted_access,
        ) {
            Ok(c) => c,
            Err(e) => {
                if let Some(d) = dir_fh {
                    self.view.releasedir(d);
                }
                self.release_entry(&entry);
                return Err(self.fail(e.during("create", entry.attr.ino)));
            }
        };
        self.fill(file_info.as_mut(), &entry.attr);
        Ok(ctx)
    }

    fn cleanup(&self, ctx: &FileCtx, file_name: Option<&U16CStr>, flags: u32) {
        // The client's handle is closed: its hub lock is released in the store (filelock
        // unlocks, then closes).
        ctx.hub_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if flags & CLEANUP_DELETE == 0 {
            return;
        }
        begin();
        // `SetDelete` decided this delete and holds the entry open for it; what can still
        // fail here is a race with another machine (the entry replaced meanwhile), logged.
        let held = ctx.delete.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(file_name) = file_name else { return };
        let res = self
            .walk_parent(file_name)
            .map_err(|e| format!("NTSTATUS {:#010x}", e.to_ntstatus() as u32))
            .and_then(|(parent, name)| {
                // The name as the store spells it (the client may have used another case).
                let real = self
                    .lookup(parent, &name.to_string_lossy())
                    .map(|(e, real)| {
                        self.release_entry(&e);
                        real
                    })
                    .unwrap_or(name);
                let r = if ctx.is_dir {
                    self.view.rmdir(parent, &real)
                } else {
                    self.view.unlink(parent, &real)
                };
                self.release_parent(parent);
                r.map_err(|e| e.to_string())
            });
        drop(held);
        self.changed();
        if let Err(e) = res {
            log::warn!(
                "delete {} (decided at its disposition) failed: {e}",
                file_name.to_string_lossy()
            );
        }
    }

    fn flush(&self, ctx: Option<&FileCtx>, file_info: &mut FileInfo) -> winfsp::Result<()> {
        let Some(ctx) = ctx else { return Ok(()) };
        begin();
        if let Some(fh) = ctx.fh() {
            self.view
                .fsync(fh, false)
                .map_err(|e| self.fail(e.during("flush", ctx.ino)))?;
        }
        let a = self
            .attr_of(ctx)
            .map_err(|e| self.fail(e.during("flush", ctx.ino)))?;
        self.fill(file_info, &a);
        Ok(())
    }

    fn get_file_info(&self, ctx: &FileCtx, file_info: &mut FileInfo) -> winfsp::Result<()> {
        begin();
        let a = self
            .attr_of(ctx)
            .map_err(|e| self.fail(e.during("get_file_info", ctx.ino)))?;
        self.fill(file_info, &a);
        Ok(())
    }

    fn get_security(&self, _ctx: &FileCtx, sd: Option<&mut [c_void]>) -> winfsp::Result<u64> {
        self.copy_sd(sd)
    }

    fn set_security(
        &self,
        _ctx: &FileCtx,
        _security_information: u32,
        _modification_descriptor: ModificationDescriptor,
    ) -> winfsp::Result<()> {
        // Every entry carries the mount's fixed descriptor; requests to change it are
        // accepted and change nothing (copy tools set ACLs routinely).
        Ok(())
    }

    fn overwrite(
        &self,
        ctx: &FileCtx,
        _file_attributes: u32,
        _replace_file_attributes: bool,
        _allocation_size: u64,
        _extra_buffer: Option<&[u8]>,
        file_info: &mut FileInfo,
    ) -> winfsp::Result<()> {
        begin();
        let set = SetAttr {
            size: Some(0),
            ..SetAttr::default()
        };
        let (a, _) = self
            .view
            .setattr(ctx.ino, &set, ctx.fh())
            .map_err(|e| self.fail(e.during("overwrite", ctx.ino)))?;
        self.changed();
        self.fill(file_info, &a);
        Ok(())
    }

    fn read_directory(
        &self,
        ctx: &FileCtx,
        pattern: Option<&U16CStr>,
        marker: DirMarker,
        buffer: &mut [u8],
    ) -> winfsp::Result<u32> {
        self.list_into(ctx, pattern, marker, buffer)
    }

    fn rename(
        &self,
        _ctx: &FileCtx,
        file_name: &U16CStr,
        new_file_name: &U16CStr,
        replace_if_exists: bool,
    ) -> winfsp::Result<()> {
        self.rename_path(file_name, new_file_name, replace_if_exists)
    }

    fn set_basic_info(
        &self,
        ctx: &FileCtx,
        _file_attributes: u32,
        _creation_time: u64,
        last_access_time: u64,
        last_write_time: u64,
        _last_change_time: u64,
        file_info: &mut FileInfo,
    ) -> winfsp::Result<()> {
        begin();
        let set = SetAttr {
            atime: attrs::from_filetime(last_access_time).map(TimeSet::At),
            mtime: attrs::from_filetime(last_write_time).map(TimeSet::At),
            ..SetAttr::default()
        };
        let (a, _) = self
            .view
            .setattr(ctx.ino, &set, ctx.fh())
            .map_err(|e| self.fail(e.during("set_basic_info", ctx.ino)))?;
        self.fill(file_info, &a);
        Ok(())
    }

    fn set_delete(
        &self,
        ctx: &FileCtx,
        file_name: &U16CStr,
        delete_file: bool,
    ) -> winfsp::Result<()> {
        let mut held = ctx.delete.lock().unwrap_or_else(|e| e.into_inner());
        if !delete_file {
            *held = None;
            return Ok(());
        }
        begin();
        // Everything that can refuse the delete answers now, while the client can still be
        // told (the view decides: a read-only view, a directory not empty, …); the cleanup
        // that deletes only carries it out.
        let (parent, name) = self.walk_parent(file_name)?;
        let decided = match self.lookup(parent, &name.to_string_lossy()) {
            Ok((e, real)) => {
                self.release_entry(&e);
                self.view.decide_delete(parent, &real, ctx.is_dir)
            }
            Err(e) => Err(e),
        };
        self.release_parent(parent);
        *held = Some(decided.map_err(|e| self.fail(e.during("set_delete", ctx.ino)))?);
        Ok(())
    }

    fn set_file_size(
        &self,
        ctx: &FileCtx,
        new_size: u64,
        set_allocation_size: bool,
        file_info: &mut FileInfo,
    ) -> winfsp::Result<()> {
        begin();
        if !set_allocation_size {
            if ctx.read_only {
                self.refuse_write(ctx)?;
            }
            let set = SetAttr {
                size: Some(new_size),
                ..SetAttr::default()
            };
            let (a, _) = self
                .view
                .setattr(ctx.ino, &set, ctx.fh())
                .map_err(|e| self.fail(e.during("set_file_size", ctx.ino)))?;
            self.fill(file_info, &a);
            return Ok(());
        }
        let a = self
            .attr_of(ctx)
            .map_err(|e| self.fail(e.during("set_file_size", ctx.ino)))?;
        self.fill(file_info, &a);
        Ok(())
    }

    fn read(&self, ctx: &FileCtx, buffer: &mut [u8], offset: u64) -> winfsp::Result<u32> {
        begin();
        let fh = ctx.fh().ok_or_else(|| {
            nt(if ctx.is_dir {
                status::STATUS_FILE_IS_A_DIRECTORY
            } else {
                status::STATUS_INVALID_DEVICE_REQUEST
            })
        })?;
        let len = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
        let data = self
            .view
            .read(fh, offset, len)
            .map_err(|e| self.fail(e.during("read", ctx.ino)))?;
        if data.is_empty() && !buffer.is_empty() {
            return Err(nt(status::STATUS_END_OF_FILE));
        }
        buffer[..data.len()].copy_from_slice(&data);
        Ok(data.len() as u32)
    }

    fn write(
        &self,
        ctx: &FileCtx,
        buffer: &[u8],
        offset: u64,
        write_to_eof: bool,
        constrained_io: bool,
        file_info: &mut FileInfo,
    ) -> winfsp::Result<u32> {
        begin();
        if ctx.is_dir {
            return Err(nt(status::STATUS_FILE_IS_A_DIRECTORY));
        }
        let fh = self.refuse_write(ctx)?;
        // The size is needed before the write only to place or bound it: one stat per
        // write otherwise (the one that reports the new size).
        let size = if write_to_eof || constrained_io {
            Some(
                self.attr_of(ctx)
                    .map_err(|e| self.fail(e.during("write", ctx.ino)))?
                    .size,
            )
        } else {
            None
        };
        let offset = match size {
            Some(size) if write_to_eof => size,
            _ => offset,
        };
        let mut data = buffer;
        if let (true, Some(size)) = (constrained_io, size) {
            if offset >= size {
                let a = self
                    .attr_of(ctx)
                    .map_err(|e| self.fail(e.during("write", ctx.ino)))?;
                self.fill(file_info, &a);
                return Ok(0);
            }
            let room = usize::try_from(size - offset).unwrap_or(usize::MAX);
            data = &data[..data.len().min(room)];
        }
        let n = self
            .view
            .write(fh, offset, data)
            .map_err(|e| self.fail(e.during("write", ctx.ino)))?;
        let a = self
            .attr_of(ctx)
            .map_err(|e| self.fail(e.during("write", ctx.ino)))?;
        self.fill(file_info, &a);
        Ok(n)
    }

    /// `CreateSymbolicLinkW` through the volume (WinFsp's driver has checked the client's
    /// right to create symbolic links): the empty file or directory the client just created
    /// is replaced by a link in the store, made by the view's `symlink` (a relative POSIX
    /// text, kept inside the store as for every link made through the view). The name then
    /// shows as its target's file or directory, as every link does.
    fn set_reparse_point(
        &self,
        ctx: &FileCtx,
        file_name: &U16CStr,
        buffer: &[u8],
    ) -> winfsp::Result<()> {
        self.store_link(ctx, file_name, buffer)
    }

    fn get_reparse_point(
        &self,
        _ctx: &FileCtx,
        _file_name: &U16CStr,
        _buffer: &mut [u8],
    ) -> winfsp::Result<u64> {
        // Nothing shown is a reparse point (links show as their targets).
        Err(nt(status::STATUS_NOT_A_REPARSE_POINT))
    }

    fn get_reparse_point_by_name(
        &self,
        _file_name: &U16CStr,
        _is_directory: bool,
        _buffer: &mut [u8],
    ) -> winfsp::Result<u64> {
        Err(nt(status::STATUS_NOT_A_REPARSE_POINT))
    }

    fn delete_reparse_point(
        &self,
        _ctx: &FileCtx,
        _file_name: &U16CStr,
        _buffer: &[u8],
    ) -> winfsp::Result<()> {
        Err(nt(status::STATUS_NOT_A_REPARSE_POINT))
    }

    fn get_volume_info(&self, out: &mut VolumeInfo) -> winfsp::Result<()> {
        begin();
        let s = self
            .view
            .statfs()
            .map_err(|e| self.fail(e.during("statfs", None)))?;
        let unit = u64::from(s.frsize.max(1));
        out.total_size = s.blocks.saturating_mul(unit);
        out.free_size = s.bavail.saturating_mul(unit);
        out.set_volume_label("hfcachefs");
        Ok(())
    }
}

mod dir;
mod links;
mod rename;
mod walk;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod scenarios;
