//! The WinFsp adapter: path-based WinFsp requests onto the inode-based view.
//!
//! Thin by design: each request walks its path through [`CacheView::lookup`] (with the
//! case rule of [`super::names`]), calls one view operation, and translates the answer with
//! [`super::attrs`] and [`super::status`]. Invariants:
//! - every lookup the adapter makes is forgotten again: a walk keeps one lookup of its final
//!   entry, which an open file context owns until `close`; everything else is forgotten at
//!   once;
//! - nothing shown is a reparse point (the volume has reparse points off, and attributes come
//!   from [`super::attrs::file_attributes`]);
//! - no panics on request paths: every error becomes an NTSTATUS.

use std::ffi::{OsStr, OsString, c_void};
use std::path::Path;
use std::sync::{Condvar, Mutex, OnceLock};

use winfsp::filesystem::{
    DirBuffer, DirInfo, DirMarker, FileInfo, FileSecurity, FileSystemContext,
    ModificationDescriptor, OpenFileInfo, VolumeInfo, WideNameInfo,
};
use winfsp::host::{FileSystemHost, VolumeParams};
use winfsp::{FspError, U16CStr};

use super::{attrs, names, pattern, status};
use crate::compat::libc;
use crate::config::MountConfig;
use crate::error::{FsError, FsResult};
use crate::inode::{Ino, ROOT_INO};
use crate::store::Store;
use crate::view::{Attr, AttrKind, CacheView, Caller, Entry, SetAttr, TimeSet};

/// What `hfcachefs mount` needs on Windows beyond the view's configuration.
#[derive(Clone, Debug, Default)]
pub struct MountOptions {
    /// Log WinFsp's own debug output.
    pub debug: bool,
}

const STATUS_BUFFER_OVERFLOW: i32 = 0x8000_0005u32 as i32;
const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
const CLEANUP_DELETE: u32 = 0x01;

fn fsp(e: FsError) -> FspError {
    FspError::NTSTATUS(status::ntstatus(&e))
}

fn nt(s: i32) -> FspError {
    FspError::NTSTATUS(s)
}

/// An open file or directory.
pub struct FileCtx {
    ino: Ino,
    is_dir: bool,
    fh: Option<u64>,
    dir_fh: Option<u64>,
    dir_buffer: DirBuffer,
}

/// The file system: a view and the security descriptor every entry carries.
pub struct HfFs {
    view: CacheView,
    read_only: bool,
    sd: Vec<u8>,
}

/// A walked path: its final entry (one lookup held), the parent, and the store names.
struct Walked {
    parent: Ino,
    entry: Entry,
    names: Vec<OsString>,
}

impl HfFs {
    fn fill(&self, fi: &mut FileInfo, a: &Attr) {
        fi.file_attributes = attrs::file_attributes(a.kind, self.read_only);
        fi.reparse_tag = 0;
        fi.file_size = if a.kind == AttrKind::Dir { 0 } else { a.size };
        fi.allocation_size = fi.file_size.div_ceil(4096) * 4096;
        fi.creation_time = attrs::filetime(a.mtime.min(a.ctime));
        fi.last_access_time = attrs::filetime(a.atime);
        fi.last_write_time = attrs::filetime(a.mtime);
        fi.change_time = attrs::filetime(a.ctime);
        fi.index_number = a.ino;
        fi.hard_links = 0;
        fi.ea_size = 0;
    }

    /// Visible names of view directory `dir`.
    fn list(&self, dir: Ino) -> FsResult<Vec<OsString>> {
        let fh = self.view.opendir(dir)?;
        let mut out = Vec::new();
        let res = self.view.readdir(fh, 0, |e| {
            if e.name != "." && e.name != ".." {
                out.push(e.name);
            }
            false
        });
        self.view.releasedir(fh);
        res.map(|()| out)
    }

    /// Looks `name` up in `dir`, exactly or by the case rule; one lookup held on success.
    fn lookup(&self, dir: Ino, name: &str) -> FsResult<(Entry, OsString)> {
        match self.view.lookup(dir, OsStr::new(name)) {
            Err(FsError::NotFound) => {}
            other => return other.map(|e| (e, name.into())),
        }
        let all = self.list(dir)?;
        let candidates = all.iter().filter_map(|n| n.to_str());
        match names::resolve_case(name, candidates) {
            Some(real) if real != name => {
                let e = self.view.lookup(dir, OsStr::new(real))?;
                Ok((e, real.into()))
            }
            _ => Err(FsError::NotFound),
        }
    }

    /// Walks a WinFsp path from the root.
    fn walk(&self, path: &U16CStr) -> FsResult<Walked> {
        let path = path.to_string_lossy();
        let comps = names::components(&path);
        let mut parent = ROOT_INO;
        let mut held: Option<Entry> = None;
        let mut found = Vec::new();
        for c in &comps {
            let dir = held.as_ref().map_or(ROOT_INO, |e| e.attr.ino);
            if let Some(e) = &held
                && e.attr.kind != AttrKind::Dir
            {
                self.view.forget(e.attr.ino, 1);
                return Err(FsError::NotDir);
            }
            let res = self.lookup(dir, c);
            if let Some(e) = held.take() {
                self.view.forget(e.attr.ino, 1);
            }
            let (e, real) = res?;
            parent = dir;
            found.push(real);
            held = Some(e);
        }
        let entry = match held {
            Some(e) => e,
            None => {
                let (attr, ttl) = self.view.getattr(ROOT_INO, None)?;
                Entry {
                    attr,
                    attr_ttl: ttl,
                    entry_ttl: ttl,
                }
            }
        };
        Ok(Walked {
            parent,
            entry,
            names: found,
        })
    }

    /// The parent directory of a WinFsp path (one lookup held unless it is the root) and
    /// the final store name, as given (mapped back from its Windows form).
    fn walk_parent(&self, path: &U16CStr) -> FsResult<(Ino, OsString)> {
        let s = path.to_string_lossy();
        let (dir, name) = match s.rfind('\\') {
            Some(i) => (&s[..i], &s[i + 1..]),
            None => ("", s.as_str()),
        };
        if name.is_empty() {
            return Err(FsError::Invalid);
        }
        let name = OsString::from(names::from_windows(name).into_owned());
        if dir.is_empty() {
            return Ok((ROOT_INO, name));
        }
        let wdir = winfsp::U16CString::from_str_truncate(dir);
        let w = self.walk(&wdir)?;
        if w.entry.attr.kind != AttrKind::Dir {
            self.view.forget(w.entry.attr.ino, 1);
            return Err(FsError::NotDir);
        }
        Ok((w.entry.attr.ino, name))
    }

    fn release_parent(&self, ino: Ino) {
        if ino != ROOT_INO {
            self.view.forget(ino, 1);
        }
    }

    fn release_entry(&self, e: &Entry) {
        if e.attr.ino != ROOT_INO {
            self.view.forget(e.attr.ino, 1);
        }
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
        self.view.getattr(ctx.ino, ctx.fh).map(|(a, _)| a)
    }

    /// A context for a walked or created entry (its lookup now belongs to the context).
    fn context(&self, e: &Entry, granted_access: u32) -> FsResult<FileCtx> {
        let ino = e.attr.ino;
        let is_dir = e.attr.kind == AttrKind::Dir;
        let (fh, dir_fh) = if is_dir {
            (None, Some(self.view.opendir(ino)?))
        } else {
            (
                Some(self.view.open(ino, attrs::open_flags(granted_access))?.fh),
                None,
            )
        };
        Ok(FileCtx {
            ino,
            is_dir,
            fh,
            dir_fh,
            dir_buffer: DirBuffer::new(),
        })
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
        let w = self.walk(file_name).map_err(fsp)?;
        let attributes = attrs::file_attributes(w.entry.attr.kind, self.read_only);
        self.release_entry(&w.entry);
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
        let w = self.walk(file_name).map_err(fsp)?;
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
        let ctx = match self.context(&w.entry, granted_access) {
            Ok(c) => c,
            Err(e) => {
                self.release_entry(&w.entry);
                return Err(fsp(e));
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
        if let Some(fh) = ctx.fh {
            self.view.release(fh, None);
        }
        if let Some(fh) = ctx.dir_fh {
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
        let (parent, name) = self.walk_parent(file_name).map_err(fsp)?;
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
            let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
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
        let (entry, fh, dir_fh) = made.map_err(fsp)?;
        let _ = granted_access;
        self.fill(file_info.as_mut(), &entry.attr);
        Ok(FileCtx {
            ino: entry.attr.ino,
            is_dir: dir,
            fh,
            dir_fh,
            dir_buffer: DirBuffer::new(),
        })
    }

    fn cleanup(&self, ctx: &FileCtx, file_name: Option<&U16CStr>, flags: u32) {
        if flags & CLEANUP_DELETE == 0 {
            return;
        }
        let Some(file_name) = file_name else { return };
        let res = self.walk_parent(file_name).and_then(|(parent, name)| {
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
            r
        });
        if let Err(e) = res {
            log::warn!("delete {}: {e}", file_name.to_string_lossy());
        }
    }

    fn flush(&self, ctx: Option<&FileCtx>, file_info: &mut FileInfo) -> winfsp::Result<()> {
        let Some(ctx) = ctx else { return Ok(()) };
        if let Some(fh) = ctx.fh {
            self.view.fsync(fh, false).map_err(fsp)?;
        }
        let a = self.attr_of(ctx).map_err(fsp)?;
        self.fill(file_info, &a);
        Ok(())
    }

    fn get_file_info(&self, ctx: &FileCtx, file_info: &mut FileInfo) -> winfsp::Result<()> {
        let a = self.attr_of(ctx).map_err(fsp)?;
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
        let set = SetAttr {
            size: Some(0),
            ..SetAttr::default()
        };
        let (a, _) = self.view.setattr(ctx.ino, &set, ctx.fh).map_err(fsp)?;
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
        let Some(dir_fh) = ctx.dir_fh else {
            return Err(nt(status::STATUS_NOT_A_DIRECTORY));
        };
        if let Ok(lock) = ctx.dir_buffer.acquire(marker.is_none(), None) {
            let pattern = pattern.map(|p| p.to_string_lossy());
            let mut entries: Vec<(String, Attr)> = Vec::new();
            if ctx.ino != ROOT_INO {
                let a = self.attr_of(ctx).map_err(fsp)?;
                entries.push((".".into(), a.clone()));
                entries.push(("..".into(), a));
            }
            let mut listed: Vec<(OsString, Attr)> = Vec::new();
            self.view
                .readdirplus(dir_fh, 0, |name, _off, e| {
                    if name != "." && name != ".." {
                        listed.push((name.to_os_string(), e.attr.clone()));
                        self.view.forget(e.attr.ino, 1);
                    }
                    false
                })
                .map_err(fsp)?;
            let strs: Vec<String> = listed
                .iter()
                .map(|(n, _)| n.to_string_lossy().into_owned())
                .collect();
            let refs: Vec<&str> = strs.iter().map(String::as_str).collect();
            let shown = names::shown_in_listing(&refs);
            for ((name, attr), show) in strs
                .iter()
                .zip(listed.into_iter().map(|(_, a)| a))
                .zip(shown)
            {
                if !show {
                    log::debug!("listing: {name:?} hidden behind a name that differs only in case");
                    continue;
                }
                entries.push((names::to_windows(name).into_owned(), attr));
            }
            for (name, attr) in entries {
                if let Some(p) = &pattern
                    && name != "."
                    && name != ".."
                    && !pattern::matches(p, &name)
                {
                    continue;
                }
                let mut di: DirInfo = DirInfo::new();
                if di.set_name(OsStr::new(&name)).is_err() {
                    continue; // longer than a WinFsp name buffer: not listable
                }
                self.fill(di.file_info_mut(), &attr);
                lock.write(&mut di)?;
            }
        }
        Ok(ctx.dir_buffer.read(marker, buffer))
    }

    fn rename(
        &self,
        _ctx: &FileCtx,
        file_name: &U16CStr,
        new_file_name: &U16CStr,
        replace_if_exists: bool,
    ) -> winfsp::Result<()> {
        let (from_dir, from_name) = self.walk_parent(file_name).map_err(fsp)?;
        let from_real = match self.lookup(from_dir, &from_name.to_string_lossy()) {
            Ok((e, real)) => {
                self.release_entry(&e);
                real
            }
            Err(e) => {
                self.release_parent(from_dir);
                return Err(fsp(e));
            }
        };
        let (to_dir, to_name) = match self.walk_parent(new_file_name) {
            Ok(x) => x,
            Err(e) => {
                self.release_parent(from_dir);
                return Err(fsp(e));
            }
        };
        let flags = if replace_if_exists {
            0
        } else {
            libc::RENAME_NOREPLACE
        };
        let res = self
            .view
            .rename(from_dir, &from_real, to_dir, &to_name, flags);
        self.release_parent(from_dir);
        self.release_parent(to_dir);
        res.map_err(fsp)
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
        let set = SetAttr {
            atime: attrs::from_filetime(last_access_time).map(TimeSet::At),
            mtime: attrs::from_filetime(last_write_time).map(TimeSet::At),
            ..SetAttr::default()
        };
        let (a, _) = self.view.setattr(ctx.ino, &set, ctx.fh).map_err(fsp)?;
        self.fill(file_info, &a);
        Ok(())
    }

    fn set_delete(
        &self,
        ctx: &FileCtx,
        _file_name: &U16CStr,
        delete_file: bool,
    ) -> winfsp::Result<()> {
        if !delete_file {
            return Ok(());
        }
        if self.read_only {
            return Err(fsp(FsError::ReadOnly));
        }
        if ctx.is_dir && !self.list(ctx.ino).map_err(fsp)?.is_empty() {
            return Err(fsp(FsError::NotEmpty));
        }
        Ok(())
    }

    fn set_file_size(
        &self,
        ctx: &FileCtx,
        new_size: u64,
        set_allocation_size: bool,
        file_info: &mut FileInfo,
    ) -> winfsp::Result<()> {
        if !set_allocation_size {
            let set = SetAttr {
                size: Some(new_size),
                ..SetAttr::default()
            };
            self.view.setattr(ctx.ino, &set, ctx.fh).map_err(fsp)?;
        }
        let a = self.attr_of(ctx).map_err(fsp)?;
        self.fill(file_info, &a);
        Ok(())
    }

    fn read(&self, ctx: &FileCtx, buffer: &mut [u8], offset: u64) -> winfsp::Result<u32> {
        let fh = ctx
            .fh
            .ok_or_else(|| nt(status::STATUS_FILE_IS_A_DIRECTORY))?;
        let len = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
        let data = self.view.read(fh, offset, len).map_err(fsp)?;
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
        let fh = ctx
            .fh
            .ok_or_else(|| nt(status::STATUS_FILE_IS_A_DIRECTORY))?;
        let size = self.attr_of(ctx).map_err(fsp)?.size;
        let offset = if write_to_eof { size } else { offset };
        let mut data = buffer;
        if constrained_io {
            if offset >= size {
                let a = self.attr_of(ctx).map_err(fsp)?;
                self.fill(file_info, &a);
                return Ok(0);
            }
            let room = usize::try_from(size - offset).unwrap_or(usize::MAX);
            data = &data[..data.len().min(room)];
        }
        let n = self.view.write(fh, offset, data).map_err(fsp)?;
        let a = self.attr_of(ctx).map_err(fsp)?;
        self.fill(file_info, &a);
        Ok(n)
    }

    fn get_volume_info(&self, out: &mut VolumeInfo) -> winfsp::Result<()> {
        let s = self.view.statfs().map_err(fsp)?;
        let unit = u64::from(s.frsize.max(1));
        out.total_size = s.blocks.saturating_mul(unit);
        out.free_size = s.bavail.saturating_mul(unit);
        out.set_volume_label("hfcachefs");
        Ok(())
    }
}

#[allow(non_snake_case)]
mod ffi {
    use std::ffi::c_void;

    #[link(name = "advapi32")]
    unsafe extern "system" {
        pub fn ConvertStringSecurityDescriptorToSecurityDescriptorW(
            StringSecurityDescriptor: *const u16,
            StringSDRevision: u32,
            SecurityDescriptor: *mut *mut c_void,
            SecurityDescriptorSize: *mut u32,
        ) -> i32;
        pub fn RegGetValueW(
            hkey: isize,
            lpSubKey: *const u16,
            lpValue: *const u16,
            dwFlags: u32,
            pdwType: *mut u32,
            pvData: *mut c_void,
            pcbData: *mut u32,
        ) -> i32;
    }

    #[link(name = "kernel32")]
    unsafe extern "system" {
        pub fn LocalFree(hMem: *mut c_void) -> *mut c_void;
        pub fn LoadLibraryW(lpLibFileName: *const u16) -> *mut c_void;
        pub fn SetConsoleCtrlHandler(
            HandlerRoutine: Option<unsafe extern "system" fn(u32) -> i32>,
            Add: i32,
        ) -> i32;
    }
}

fn wide_z(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// The self-relative security descriptor for an SDDL string.
pub fn security_descriptor(sddl: &str) -> std::io::Result<Vec<u8>> {
    let w = wide_z(sddl);
    let mut psd: *mut c_void = std::ptr::null_mut();
    let mut len = 0u32;
    // SAFETY: `w` is NUL-terminated; the out-parameters are valid; on success `psd` points
    // to `len` bytes allocated with LocalAlloc, which we copy and free exactly once.
    unsafe {
        if ffi::ConvertStringSecurityDescriptorToSecurityDescriptorW(
            w.as_ptr(),
            1,
            &mut psd,
            &mut len,
        ) == 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let out = std::slice::from_raw_parts(psd.cast::<u8>(), len as usize).to_vec();
        ffi::LocalFree(psd);
        Ok(out)
    }
}

/// The line `mount` ends with where WinFsp is missing.
const NO_WINFSP: &str = "WinFsp is not installed (winfsp-x64.dll not found in WinFsp's install \
     directory): install WinFsp 2.x from https://winfsp.dev/rel/, then run mount again";

/// Where WinFsp says it is installed: `InstallDir` under `HKLM\SOFTWARE\WOW6432Node\WinFsp`
/// (its installer is 32-bit and writes there) or `HKLM\SOFTWARE\WinFsp`.
fn winfsp_install_dir() -> Option<String> {
    const HKEY_LOCAL_MACHINE: isize = 0x8000_0002u32 as i32 as isize;
    const RRF_RT_REG_SZ: u32 = 0x2;
    for key in ["SOFTWARE\\WOW6432Node\\WinFsp", "SOFTWARE\\WinFsp"] {
        let (k, v) = (wide_z(key), wide_z("InstallDir"));
        let mut buf = vec![0u16; 1024];
        let mut bytes = (buf.len() * 2) as u32;
        // SAFETY: key and value names are NUL-terminated; `buf` has `bytes` writable bytes.
        let rc = unsafe {
            ffi::RegGetValueW(
                HKEY_LOCAL_MACHINE,
                k.as_ptr(),
                v.as_ptr(),
                RRF_RT_REG_SZ,
                std::ptr::null_mut(),
                buf.as_mut_ptr().cast::<c_void>(),
                &mut bytes,
            )
        };
        if rc == 0 {
            // `bytes` counts the terminating NUL.
            buf.truncate((bytes as usize / 2).saturating_sub(1));
            return Some(String::from_utf16_lossy(&buf));
        }
    }
    None
}

/// Loads WinFsp's DLL before any WinFsp function is called: the exe imports it as a delay
/// import (`build.rs`), whose loader then finds this already loaded module by its name.
/// Tried in WinFsp's documented order: its install directory from the registry, then the
/// loader's search path (a DLL beside the exe). No WinFsp function runs before this succeeds,
/// so a machine without WinFsp gets [`NO_WINFSP`] instead of a delay-load fault.
pub fn load_winfsp() -> Result<(), String> {
    let installed =
        winfsp_install_dir().map(|dir| Path::new(&dir).join("bin").join("winfsp-x64.dll"));
    let mut broken = None;
    for dll in installed
        .iter()
        .map(|p| p.as_path())
        .chain([Path::new("winfsp-x64.dll")])
    {
        let w = wide_z(&dll.to_string_lossy());
        // SAFETY: `w` is a NUL-terminated path; loading WinFsp's DLL runs no code of ours.
        if !unsafe { ffi::LoadLibraryW(w.as_ptr()) }.is_null() {
            log::debug!("WinFsp: loaded {}", dll.display());
            return Ok(());
        }
        if broken.is_none() {
            broken = Some((dll.to_path_buf(), std::io::Error::last_os_error()));
        }
    }
    match (installed, broken) {
        // The registry names an install whose DLL does not load: a damaged installation.
        (Some(_), Some((dll, e))) => Err(format!(
            "WinFsp's DLL {} does not load ({e}): repair or reinstall WinFsp 2.x from \
             https://winfsp.dev/rel/, then run mount again",
            dll.display()
        )),
        _ => Err(NO_WINFSP.into()),
    }
}

static STOP: OnceLock<(Mutex<bool>, Condvar)> = OnceLock::new();

unsafe extern "system" fn on_console_event(_event: u32) -> i32 {
    if let Some((m, cv)) = STOP.get() {
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
    1
}

/// Mounts `source` at `mountpoint` (a drive letter such as `H:`, or a directory that does
/// not exist yet) and serves until Ctrl-C, Ctrl-Break or the WinFsp launcher stops it.
pub fn run(
    source: &Path,
    mountpoint: &Path,
    cfg: &MountConfig,
    opts: &MountOptions,
) -> Result<(), String> {
    load_winfsp()?;
    let store = Store::open_root(source).map_err(|e| e.to_string())?;
    let read_only = cfg.view.read_only;
    let sd = security_descriptor(attrs::sddl(read_only))
        .map_err(|e| format!("security descriptor: {e}"))?;
    let fs = HfFs {
        view: CacheView::new(store, cfg.view.clone()),
        read_only,
        sd,
    };
    let mut vp = VolumeParams::new();
    let ttl_ms = u32::try_from(cfg.view.attr_ttl.as_millis()).unwrap_or(u32::MAX);
    vp.sector_size(4096)
        .sectors_per_allocation_unit(1)
        .max_component_length(255)
        .volume_serial_number(0x4846_4346)
        .file_info_timeout(ttl_ms)
        .case_sensitive_search(false)
        .case_preserved_names(true)
        .unicode_on_disk(true)
        .persistent_acls(true)
        .reparse_points(false)
        .named_streams(false)
        .read_only_volume(read_only)
        .post_cleanup_when_modified_only(true)
        .pass_query_directory_pattern(true)
        .filesystem_name("hfcachefs");
    let _ = opts.debug;
    // Creating the file system opens WinFsp's driver: this is where a machine with the DLL
    // but no working driver (not installed, not started, or no kernel as under wine) stops.
    let mut host: FileSystemHost<HfFs> = FileSystemHost::new(vp, fs).map_err(|e| {
        format!(
            "WinFsp's driver did not answer (NTSTATUS 0x{:08X}): install or repair WinFsp 2.x \
             from https://winfsp.dev/rel/ (a reboot may be needed), then run mount again",
            // The host reports the NTSTATUS as an HRESULT with the FACILITY_NT bit set.
            (e.code().0 as u32) & !0x1000_0000
        )
    })?;
    let mp = mountpoint.as_os_str();
    let is_drive = mp.len() == 2 && mp.to_string_lossy().ends_with(':');
    let removed = !is_drive && mountpoint.is_dir();
    if removed {
        // WinFsp creates a directory mountpoint itself: an existing empty one is removed.
        std::fs::remove_dir(mountpoint).map_err(|e| {
            format!(
                "{}: {e} (a directory mountpoint must be empty or not exist)",
                mountpoint.display()
            )
        })?;
    }
    if let Err(e) = host.mount(mp) {
        if removed {
            // Nothing left changed by a failed mount: the empty directory comes back.
            let _ = std::fs::create_dir(mountpoint);
        }
        return Err(format!("mount {}: {e:?}", mountpoint.display()));
    }
    host.start().map_err(|e| format!("start: {e:?}"))?;
    log::info!(
        "mounted {} at {} ({})",
        source.display(),
        mountpoint.display(),
        if read_only { "ro" } else { "rw" }
    );
    let (m, cv) = STOP.get_or_init(|| (Mutex::new(false), Condvar::new()));
    // SAFETY: `on_console_event` is a valid handler for the life of the process.
    unsafe { ffi::SetConsoleCtrlHandler(Some(on_console_event), 1) };
    let mut stop = m.lock().unwrap_or_else(|e| e.into_inner());
    while !*stop {
        stop = cv.wait(stop).unwrap_or_else(|e| e.into_inner());
    }
    drop(stop);
    log::info!("unmounting {}", mountpoint.display());
    host.stop();
    host.unmount();
    Ok(())
}

#[cfg(test)]
mod harness;
#[cfg(test)]
mod scenarios;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sddl_converts_to_a_descriptor() {
        for ro in [false, true] {
            let sd = security_descriptor(attrs::sddl(ro)).expect("valid SDDL");
            // A self-relative SECURITY_DESCRIPTOR starts with revision 1 and the
            // SE_SELF_RELATIVE control bit (0x8000).
            assert_eq!(sd[0], 1);
            assert_ne!(u16::from_le_bytes([sd[2], sd[3]]) & 0x8000, 0);
        }
    }
}
