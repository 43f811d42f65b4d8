//! The WinFsp host harness: drives [`HfFs`] the way WinFsp's user-mode dispatcher does,
//! over a real store in a temporary directory (on a wine drive under the project's Windows
//! check, on NTFS on a Windows machine), and checks the store on disk afterwards.
//!
//! WinFsp's request dispatch (`FspFileSystemOp*` in WinFsp's `src/dll/fsop.c`) needs a file
//! system object that only `FspFileSystemCreate` makes, and that opens the kernel driver,
//! which does not exist under wine. So the harness replays what those functions do, in their
//! order and with their arguments:
//! - create (`FILE_OPEN`): `GetSecurityByName` of the file (the access check), then `Open`
//!   with the granted access; `FILE_CREATE`: `GetSecurityByName` of the parent (a missing
//!   parent is `STATUS_OBJECT_PATH_NOT_FOUND`, as `FspAccessCheckEx` reports it), then `Create`
//!   (`MAXIMUM_ALLOWED` becomes `FILE_ALL_ACCESS`); `FILE_OVERWRITE_IF`: open, then
//!   `Overwrite`, or create where the open finds nothing;
//! - cleanup: `Cleanup` with the file name and `FspCleanupDelete` only when the handle had a
//!   delete disposition; then close;
//! - query directory: `ReadDirectory` with the pattern (the volume passes patterns) and the
//!   last name returned as the marker, until a read returns nothing; the entries are parsed
//!   from the `FSP_FSCTL_DIR_INFO` records that WinFsp's own directory buffer
//!   (`FspFileSystemAddDirInfo`, `FspFileSystemReadDirectoryBuffer` in the real DLL) wrote;
//! - set information: disposition → `SetDelete`; rename → the access check of the new name,
//!   then `Rename` with `ReplaceIfExists`;
//! - `FSCTL_SET_REPARSE_POINT` (a symlink): `SetReparsePoint` on the file just created, as
//!   WinFsp's driver sends it once it has checked the client's right (not replayed: the
//!   driver's refusal to clients without it).
//!
//! [`Host::another_machine`] is a second file system over the same store directory: what
//! a second machine's mount shares with the first is the store alone.
//!
//! Invariants: every context the harness opens is cleaned up and closed, on errors too, as
//! WinFsp does; no test asserts a duration.

use std::path::PathBuf;

use winfsp::U16CString;
use winfsp::filesystem::{DirMarker, FileInfo, FileSystemContext, OpenFileInfo};

use super::{CLEANUP_DELETE, FileCtx, HfFs, attrs};
use crate::config::MountConfig;
use crate::store::faulty::FaultyStore;
use crate::store::{Store, calls};
use crate::view::CacheView;
use crate::winfsp::sys::{load_winfsp, security_descriptor};

pub const FILE_DIRECTORY_FILE: u32 = 0x01;
pub const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
pub const FILE_READ_DATA: u32 = 0x01;
pub const FILE_READ_ATTRIBUTES: u32 = 0x80;
pub const DELETE: u32 = 0x0001_0000;
pub const SYNCHRONIZE: u32 = 0x0010_0000;
pub const FILE_GENERIC_READ: u32 = 0x0012_0089;
pub const FILE_GENERIC_WRITE: u32 = 0x0012_0116;
pub const FILE_ALL_ACCESS: u32 = 0x001F_01FF;

pub const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034u32 as i32;
pub const STATUS_OBJECT_NAME_COLLISION: i32 = 0xC000_0035u32 as i32;
pub const STATUS_DIRECTORY_NOT_EMPTY: i32 = 0xC000_0101u32 as i32;
pub const STATUS_END_OF_FILE: i32 = 0xC000_0011u32 as i32;
pub const STATUS_OBJECT_PATH_NOT_FOUND: i32 = 0xC000_003Au32 as i32;
pub const STATUS_SHARING_VIOLATION: i32 = 0xC000_0043u32 as i32;
pub const STATUS_IO_DEVICE_ERROR: i32 = 0xC000_0185u32 as i32;

/// `FSP_FSCTL_OPEN_FILE_INFO`, as WinFsp's create dispatch passes it to `Open`/`Create`.
#[repr(C)]
struct RawOpenFileInfo {
    file_info: FileInfo,
    normalized_name: *mut u16,
    normalized_name_size: u16,
}

/// What an `Open`/`Create` answered besides the context: file information and the
/// normalized name (the store's spelling).
pub struct Opened {
    pub ctx: FileCtx,
    pub info: FileInfo,
    pub normalized: String,
}

/// One directory entry as WinFsp's directory buffer returned it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub attributes: u32,
    pub size: u64,
}

/// A store in a temporary directory and the file system over it.
pub struct Host {
    pub fs: HfFs,
    dir: std::sync::Arc<tempfile::TempDir>,
}

fn w(path: &str) -> U16CString {
    // WinFsp passes paths from the volume root, with backslashes.
    let p = format!("\\{}", path.trim_start_matches('\\').replace('/', "\\"));
    U16CString::from_str_truncate(if p == "\\" { "\\" } else { &p })
}

fn nt<T>(r: winfsp::Result<T>) -> Result<T, i32> {
    r.map_err(|e| e.to_ntstatus())
}

impl Host {
    /// A host over an empty store.
    pub fn new() -> Host {
        let dir = tempfile::tempdir().expect("temporary directory");
        Self::over(std::sync::Arc::new(dir))
    }

    /// A host over an empty store in a new directory below `parent` (e.g. one that processes
    /// outside the harness can reach by a path of their own).
    pub fn new_in(parent: &std::path::Path) -> Host {
        let dir = tempfile::tempdir_in(parent).expect("temporary directory");
        Self::over(std::sync::Arc::new(dir))
    }

    /// Another machine's mount of the same store: a file system of its own (its own view,
    /// store handles and locks) over the same directory.
    pub fn another_machine(&self) -> Host {
        Self::over(self.dir.clone())
    }

    /// A host over an empty store seen through the fault injector (`store::faulty`): the
    /// returned handle arms the faults the file system's store calls get.
    pub fn with_faults() -> (Host, std::sync::Arc<FaultyStore>) {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("temporary directory"));
        let real = Store::open_root(dir.path()).expect("store opens");
        let faulty = std::sync::Arc::new(FaultyStore::new(real.backend().clone()));
        let host = Self::over_store(dir, Store::with_backend(faulty.clone()));
        (host, faulty)
    }

    fn over(dir: std::sync::Arc<tempfile::TempDir>) -> Host {
        let store = Store::open_root(dir.path()).expect("store opens");
        Self::over_store(dir, store)
    }

    fn over_store(dir: std::sync::Arc<tempfile::TempDir>, store: Store) -> Host {
        // WinFsp's DLL is a delay import: load it as `mount` does (on Windows from WinFsp's
        // install directory; under the project's wine check from the prefix's system32).
        load_winfsp().expect("WinFsp's DLL");
        let mut cfg = MountConfig::default();
        // The store's links are XSym files here (`put_link`): mounted as a store whose own
        // server writes links that way would be.
        cfg.view.xsym = true;
        let sd = security_descriptor(attrs::sddl(false)).expect("security descriptor");
        Host {
            fs: HfFs::new(CacheView::new(store, cfg.view.clone()), false, sd),
            dir,
        }
    }

    /// The disk path of a store path (`/`-separated).
    pub fn disk(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file into the store directly (as another machine would).
    pub fn put(&self, rel: &str, data: &[u8]) {
        let p = self.disk(rel);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        std::fs::write(p, data).expect("write");
    }

    /// The text of the store entry `rel` if it is an XSym link (how links look in this
    /// harness's store), else `None`.
    pub fn link_text(&self, rel: &str) -> Option<String> {
        let bytes = std::fs::read(self.disk(rel)).ok()?;
        let link = crate::links::xsym::parse(&bytes)?;
        String::from_utf8(link.text).ok()
    }

    /// Writes an XSym link into the store directly (how a Linux machine's symlink reaches a
    /// Windows store layer that cannot create reparse points here).
    pub fn put_link(&self, rel: &str, target: &str) {
        let text = crate::links::xsym::format(target.as_bytes()).expect("short target");
        self.put(rel, &text);
    }

    /// `IRP_MJ_CREATE` with `FILE_OPEN`: access check by name, then `Open`.
    pub fn open(&self, path: &str, options: u32, granted: u32) -> Result<Opened, i32> {
        let name = w(path);
        nt(self.fs.get_security_by_name(&name, None, |_| None))?;
        let mut buf = vec![0u16; 1024];
        let mut raw = RawOpenFileInfo {
            file_info: FileInfo::default(),
            normalized_name: buf.as_mut_ptr(),
            normalized_name_size: (buf.len() * 2) as u16,
        };
        const _: () =
            assert!(std::mem::size_of::<RawOpenFileInfo>() == std::mem::size_of::<OpenFileInfo>());
        // SAFETY: `RawOpenFileInfo` is `FSP_FSCTL_OPEN_FILE_INFO`, whose layout the winfsp
        // crate asserts for `OpenFileInfo` (same size, checked above); this is the cast the
        // crate's own dispatch glue makes. `buf` outlives the call.
        let ofi = unsafe { &mut *(&mut raw as *mut RawOpenFileInfo).cast::<OpenFileInfo>() };
        let ctx = nt(self.fs.open(&name, options, granted, ofi))?;
        let n = usize::from(raw.normalized_name_size / 2).min(buf.len());
        let normalized = if raw.normalized_name_size as usize == buf.len() * 2 {
            String::new() // not set: WinFsp keeps the name as opened
        } else {
            String::from_utf16_lossy(&buf[..n])
        };
        Ok(Opened {
            ctx,
            info: raw.file_info,
            normalized,
        })
    }

    /// `CreateFileW(OPEN_ALWAYS)` with read and write access (`FILE_OPEN_IF`), as the CRT's
    /// `open(O_RDWR | O_CREAT)` does: open, or create where nothing is there.
    pub fn open_always(&self, path: &str) -> Result<Opened, i32> {
        match self.open(
            path,
            FILE_NON_DIRECTORY_FILE,
            FILE_GENERIC_READ | FILE_GENERIC_WRITE,
        ) {
            Err(STATUS_OBJECT_NAME_NOT_FOUND) => self.create(path, false),
            other => other,
        }
    }

    /// `IRP_MJ_CREATE` with `FILE_CREATE`: access check of the parent, then `Create`.
    pub fn create(&self, path: &str, dir: bool) -> Result<Opened, i32> {
        let name = w(path);
        let parent = match path.trim_end_matches('/').rfind('/') {
            Some(i) => w(&path[..i]),
            None => w(""),
        };
        // WinFsp's access check of the parent (`FspAccessCheckEx` with `CheckParentDirectory`)
        // reports a missing parent as a missing path.
        nt(self.fs.get_security_by_name(&parent, None, |_| None)).map_err(|e| {
            if e == STATUS_OBJECT_NAME_NOT_FOUND {
                STATUS_OBJECT_PATH_NOT_FOUND
            } else {
                e
            }
        })?;
        let mut raw = RawOpenFileInfo {
            file_info: FileInfo::default(),
            normalized_name: std::ptr::null_mut(),
            normalized_name_size: 0,
        };
        // SAFETY: as in `open`; no normalized name buffer (WinFsp gives one, the adapter
        // sets none on create).
        let ofi = unsafe { &mut *(&mut raw as *mut RawOpenFileInfo).cast::<OpenFileInfo>() };
        let options = if dir {
            FILE_DIRECTORY_FILE
        } else {
            FILE_NON_DIRECTORY_FILE
        };
        let ctx = nt(self.fs.create(
            &name,
            options,
            FILE_ALL_ACCESS,
            0,
            None,
            0,
            None,
            false,
            ofi,
        ))?;
        Ok(Opened {
            ctx,
            info: raw.file_info,
            normalized: String::new(),
        })
    }

    /// `IRP_MJ_CLEANUP` (no delete) and `IRP_MJ_CLOSE`.
    pub fn close(&self, o: Opened) {
        self.fs.cleanup(&o.ctx, None, 0);
        self.fs.close(o.ctx);
    }

    /// Reads a whole file as `ReadFile` calls in 64 KiB pieces would.
    pub fn read_all(&self, path: &str) -> Result<Vec<u8>, i32> {
        let o = self.open(path, FILE_NON_DIRECTORY_FILE, FILE_GENERIC_READ)?;
        let r = self.read_ctx(&o.ctx);
        self.close(o);
        r
    }

    pub fn read_ctx(&self, ctx: &FileCtx) -> Result<Vec<u8>, i32> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match nt(self.fs.read(ctx, &mut buf, out.len() as u64)) {
                Ok(0) | Err(STATUS_END_OF_FILE) => return Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n as usize]),
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes `data` at 0 through an open context, 16 KiB per request.
    pub fn write_ctx(&self, ctx: &FileCtx, data: &[u8]) -> Result<(), i32> {
        let mut fi = FileInfo::default();
        for (i, chunk) in data.chunks(16 * 1024).enumerate() {
            let n = nt(self
                .fs
                .write(ctx, chunk, (i * 16 * 1024) as u64, false, false, &mut fi))?;
            assert_eq!(n as usize, chunk.len());
        }
        Ok(())
    }

    /// `CreateFileW(CREATE_NEW)` + `WriteFile` + `CloseHandle`.
    pub fn write_new(&self, path: &str, data: &[u8]) -> Result<(), i32> {
        let o = self.create(path, false)?;
        let r = self.write_ctx(&o.ctx, data);
        self.close(o);
        r
    }

    /// `CreateFileW(CREATE_ALWAYS)` (`FILE_OVERWRITE_IF`) + writes + close: open and
    /// `Overwrite`, or create where nothing is there.
    pub fn write_always(&self, path: &str, data: &[u8]) -> Result<(), i32> {
        let o = match self.open(
            path,
            FILE_NON_DIRECTORY_FILE,
            FILE_GENERIC_READ | FILE_GENERIC_WRITE,
        ) {
            Ok(o) => {
                let mut fi = FileInfo::default();
                if let Err(e) = nt(self.fs.overwrite(&o.ctx, 0, false, 0, None, &mut fi)) {
                    self.close(o);
                    return Err(e);
                }
                o
            }
            Err(STATUS_OBJECT_NAME_NOT_FOUND) => self.create(path, false)?,
            Err(e) => return Err(e),
        };
        let r = self.write_ctx(&o.ctx, data);
        self.close(o);
        r
    }

    /// `DeleteFileW`/`RemoveDirectoryW`: open with `DELETE`, set the disposition, then the
    /// cleanup that deletes.
    pub fn delete(&self, path: &str, dir: bool) -> Result<(), i32> {
        let options = if dir {
            FILE_DIRECTORY_FILE
        } else {
            FILE_NON_DIRECTORY_FILE
        };
        let o = self.open(path, options, DELETE | SYNCHRONIZE | FILE_READ_ATTRIBUTES)?;
        let name = w(path);
        if let Err(e) = nt(self.fs.set_delete(&o.ctx, &name, true)) {
            self.close(o);
            return Err(e);
        }
        self.fs.cleanup(&o.ctx, Some(&name), CLEANUP_DELETE);
        self.fs.close(o.ctx);
        Ok(())
    }

    /// `CreateSymbolicLinkW` by a client with the right to create symbolic links (WinFsp's
    /// driver checks it before the request reaches the file system): create the file
    /// (`FILE_CREATE`, `FILE_OPEN_REPARSE_POINT`), `FSCTL_SET_REPARSE_POINT` with a relative
    /// symlink buffer (`\`-separated, as Windows writes it) → `SetReparsePoint`, then close.
    pub fn symlink(&self, path: &str, target: &str) -> Result<(), i32> {
        let o = self.create(path, false)?;
        let buf = crate::links::reparse::relative_symlink_buffer(target).expect("short target");
        let r = nt(self.fs.set_reparse_point(&o.ctx, &w(path), &buf));
        if r.is_err() {
            // CreateSymbolicLinkW deletes the file it created when the link is refused.
            let name = w(path);
            if nt(self.fs.set_delete(&o.ctx, &name, true)).is_ok() {
                self.fs.cleanup(&o.ctx, Some(&name), CLEANUP_DELETE);
                self.fs.close(o.ctx);
                return r;
            }
        }
        self.close(o);
        r
    }

    /// `MoveFileExW`: open the source with `DELETE`, the access check of the target (when it
    /// is to be replaced), then `Rename`.
    pub fn rename(&self, from: &str, to: &str, replace: bool) -> Result<(), i32> {
        let o = self.open(from, 0, DELETE | SYNCHRONIZE | FILE_READ_ATTRIBUTES)?;
        let (f, t) = (w(from), w(to));
        if replace {
            match nt(self.fs.get_security_by_name(&t, None, |_| None)) {
                Ok(_) | Err(STATUS_OBJECT_NAME_NOT_FOUND) => {}
                Err(e) => {
                    self.close(o);
                    return Err(e);
                }
            }
        }
        let r = nt(self.fs.rename(&o.ctx, &f, &t, replace));
        self.close(o);
        r
    }

    /// `FindFirstFileW`/`FindNextFileW` over `dir` with `pattern`, reading WinFsp's directory
    /// buffer `buf_len` bytes at a time, continued with the last name as the marker.
    pub fn list(
        &self,
        dir: &str,
        pattern: Option<&str>,
        buf_len: usize,
    ) -> Result<Vec<Listed>, i32> {
        let o = self.open(dir, FILE_DIRECTORY_FILE, FILE_READ_DATA | SYNCHRONIZE)?;
        let r = self.list_ctx(&o.ctx, pattern, buf_len);
        self.close(o);
        r
    }

    pub fn list_ctx(
        &self,
        ctx: &FileCtx,
        pattern: Option<&str>,
        buf_len: usize,
    ) -> Result<Vec<Listed>, i32> {
        let pattern = pattern.map(U16CString::from_str_truncate);
        let mut out: Vec<Listed> = Vec::new();
        let mut buf = vec![0u8; buf_len];
        let mut marker: Option<U16CString> = None;
        loop {
            let m = marker_of(marker.as_deref());
            let n = nt(self.fs.read_directory(ctx, pattern.as_deref(), m, &mut buf))? as usize;
            let (entries, end) = parse_dir_info(&buf[..n]);
            if entries.is_empty() {
                return Ok(out);
            }
            marker = entries
                .last()
                .map(|e| U16CString::from_str_truncate(&e.name));
            out.extend(entries);
            if end {
                return Ok(out);
            }
        }
    }
}

/// A [`DirMarker`] as WinFsp's dispatch glue makes one from the request's marker.
fn marker_of(m: Option<&winfsp::U16CStr>) -> DirMarker<'_> {
    const _: () = assert!(
        std::mem::size_of::<DirMarker<'static>>()
            == std::mem::size_of::<Option<&'static winfsp::U16CStr>>()
    );
    // SAFETY: `DirMarker` is a one-field wrapper of `Option<&U16CStr>` whose field only the
    // winfsp crate may set (its dispatch glue builds it from WinFsp's marker pointer); the
    // sizes are equal (checked above) and `marker_of_is_faithful` checks the value reads back.
    unsafe { std::mem::transmute::<Option<&winfsp::U16CStr>, DirMarker<'_>>(m) }
}

/// Parses `FSP_FSCTL_DIR_INFO` records: `u16 Size`, the `FSP_FSCTL_FILE_INFO` at 8, 24 bytes
/// of padding, the name (UTF-16) at 104; records 8-byte aligned; a zero `Size` ends the
/// directory. Returns the entries and whether the end was seen.
fn parse_dir_info(b: &[u8]) -> (Vec<Listed>, bool) {
    const NAME_AT: usize = 104;
    let mut out = Vec::new();
    let mut off = 0;
    while off + 2 <= b.len() {
        let size = usize::from(u16::from_le_bytes([b[off], b[off + 1]]));
        if size == 0 {
            return (out, true);
        }
        assert!(
            size >= NAME_AT && off + size <= b.len(),
            "bad DirInfo at {off}"
        );
        let rec = &b[off..off + size];
        let u32_at = |i: usize| u32::from_le_bytes(rec[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(rec[i..i + 8].try_into().expect("8 bytes"));
        let name: Vec<u16> = rec[NAME_AT..]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        out.push(Listed {
            name: String::from_utf16_lossy(&name),
            attributes: u32_at(8),
            size: u64_at(8 + 16),
        });
        off += size.div_ceil(8) * 8;
    }
    (out, false)
}

/// Names of a listing without `.` and `..`.
pub fn names(l: &[Listed]) -> Vec<String> {
    l.iter()
        .map(|e| e.name.clone())
        .filter(|n| n != "." && n != "..")
        .collect()
}

/// Store calls made by `f` on this thread.
pub fn counted<T>(f: impl FnOnce() -> T) -> (T, calls::Calls) {
    calls::take();
    let r = f();
    (r, calls::take())
}

#[test]
fn marker_of_is_faithful() {
    let s = U16CString::from_str_truncate("abc");
    assert_eq!(marker_of(Some(&s)).inner_as_cstr(), Some(s.as_ucstr()));
    assert!(marker_of(None).is_none());
}
