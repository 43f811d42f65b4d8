//! The store on Windows: the same confined operations as the Unix store layer, over
//! `NtCreateFile` relative to directory handles.
//!
//! Invariants:
//! - **No link is ever followed.** Every path is opened one component at a time relative to
//!   the handle of its parent (starting at the store root's handle), each with
//!   `FILE_OPEN_REPARSE_POINT`; a directory on the way that is a link (a name-surrogate
//!   reparse point: symlink, junction, WSL or NFS-style link) fails the walk with `ELOOP`,
//!   as `O_NOFOLLOW` does on Unix. Link targets are read with `FSCTL_GET_REPARSE_POINT` (or
//!   from an XSym file) and parsed by [`crate::links`]; the core resolves them.
//! - **Errors are errno values.** NTSTATUS and Win32 errors are translated by
//!   [`crate::nt`] so the core's decisions (`ENOENT`, `EEXIST`, `ENOTEMPTY`, …)
//!   hold unchanged. A `std` error is translated exactly once ([`errno_error`]).
//! - Absolute link texts below the store root (as given, or its final path) are rewritten
//!   relative to the link's directory; any other absolute text is left for the core to
//!   refuse (drive and UNC paths never resolve).
//!
//! - **Lookups never list.** The spellings of a name come from directory queries for that
//!   name ([`WinStore::find_names`]); whole listings are only [`WinStore::read_dir`].
//! - **The store's own status is kept** per thread for the adapter ([`last_status`]).
//! - Links made here are NTFS symlinks, or XSym files in a store whose links are XSym files
//!   ([`WinStore::symlink`]); the hub's lock is `LockFileEx` of a lock file's first byte
//!   ([`lock_exclusive_now`]).
//!
//! Windows cannot keep Unix modes or owners: files show 0644 (0444 with the read-only
//! attribute), directories 0755, owner 0. A server that reports no file IDs (all zero) gets
//! IDs hashed from the entry's final path, so hard-link identity still holds per name.

use std::ffi::{OsStr, OsString, c_void};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::windows::ffi::{OsStrExt as _, OsStringExt as _};
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::path::{Path, PathBuf};

use super::{Kind, Meta, OpenStoreError, RawEntry, StoreStatfs};
use crate::compat::libc;
use crate::links::{self, reparse, xsym};
use crate::nt::{from_filetime, nt_to_errno, win32_to_errno};
use crate::path::StorePath;

/// Store calls, counted per thread: what one Windows operation costs on a NAS, where every
/// `NtCreateFile` and every directory query is a network round trip. Counted always (a
/// thread-local add is free next to a round trip); read by the WinFsp host harness and the
/// tests that pin those costs (`docs/WINDOWS.md`, *Store calls per operation*).
pub mod calls {
    use std::cell::Cell;

    /// What was counted since the last [`take`] on this thread.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Calls {
        /// `NtCreateFile`: one per path component walked, plus one per reopen.
        pub nt_create_file: u64,
        /// Directory queries (`GetFileInformationByHandleEx`, one per batch of entries).
        pub dir_query: u64,
        /// `WinStore::lstat`.
        pub lstat: u64,
        /// `WinStore::open`.
        pub open: u64,
        /// `WinStore::read_dir` (whole-directory listings).
        pub read_dir: u64,
        /// `WinStore::readlink` and `WinStore::read_head`.
        pub readlink: u64,
        /// `Meta::of_fd` (the attributes of an open store file: one round trip).
        pub fstat: u64,
    }

    thread_local! {
        static CALLS: Cell<Calls> = Cell::new(Calls::default());
    }

    pub(super) fn add(f: impl FnOnce(&mut Calls)) {
        CALLS.with(|c| {
            let mut v = c.get();
            f(&mut v);
            c.set(v);
        });
    }

    /// The calls counted on this thread since the previous `take`, and a fresh count.
    pub fn take() -> Calls {
        CALLS.with(|c| c.replace(Calls::default()))
    }
}

/// The store's own NTSTATUS of the last failure on this thread. The core works with errno
/// values (its decisions depend on them), which lose detail (`STATUS_DELETE_PENDING` and
/// `STATUS_OBJECT_PATH_NOT_FOUND` are both `ENOENT`); the WinFsp adapter takes the status
/// kept here and answers with it when it means the errno the core returned
/// (`docs/WINDOWS.md`, *Errors*). The adapter clears it at the start of each request.
pub mod last_status {
    use std::cell::Cell;

    thread_local! {
        static LAST: Cell<Option<i32>> = const { Cell::new(None) };
    }

    pub(super) fn set(status: i32) {
        LAST.with(|c| c.set(Some(status)));
    }

    /// Forgets the status kept on this thread.
    pub fn clear() {
        LAST.with(|c| c.set(None));
    }

    /// The status kept on this thread, forgetting it.
    pub fn take() -> Option<i32> {
        LAST.with(|c| c.take())
    }
}

/// Open flags of [`WinStore::open`]: the POSIX flags the core uses, with the CRT's values
/// (and `crate::compat::libc`'s for the ones the CRT lacks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OFlags(u32);

impl OFlags {
    /// Read only.
    pub const RDONLY: OFlags = OFlags(0);
    /// Write only.
    pub const WRONLY: OFlags = OFlags(1);
    /// Read and write.
    pub const RDWR: OFlags = OFlags(2);
    /// Append.
    pub const APPEND: OFlags = OFlags(0x8);
    /// Create if missing.
    pub const CREATE: OFlags = OFlags(0x100);
    /// Truncate.
    pub const TRUNC: OFlags = OFlags(0x200);
    /// With `CREATE`: fail if it exists.
    pub const EXCL: OFlags = OFlags(0x400);
    /// Write through.
    pub const SYNC: OFlags = OFlags(0x0010_0000);
    /// Write through (data).
    pub const DSYNC: OFlags = OFlags(0x0020_0000);
    /// Must be a directory.
    pub const DIRECTORY: OFlags = OFlags(0x0040_0000);
    /// Only for metadata.
    pub const PATH: OFlags = OFlags(0x0080_0000);
    /// Accepted, no meaning on Windows.
    pub const NONBLOCK: OFlags = OFlags(0x0100_0000);
    /// Accepted: nothing is ever followed.
    pub const NOFOLLOW: OFlags = OFlags(0x0200_0000);
    /// Accepted: handles are never inherited.
    pub const CLOEXEC: OFlags = OFlags(0x0400_0000);
    /// Windows only: read and write attributes (times), nothing else.
    pub const ATTRS: OFlags = OFlags(0x0800_0000);

    const ALL: u32 = 0x0FF0_070B;

    /// The flags of `bits` that are known.
    pub fn from_bits_truncate(bits: u32) -> OFlags {
        OFlags(bits & Self::ALL)
    }

    /// True if all of `other` is set.
    pub fn contains(self, other: OFlags) -> bool {
        self.0 & other.0 == other.0
    }

    fn access_mode(self) -> u32 {
        self.0 & 3
    }
}

impl std::ops::BitOr for OFlags {
    type Output = OFlags;
    fn bitor(self, o: OFlags) -> OFlags {
        OFlags(self.0 | o.0)
    }
}

impl std::ops::BitOrAssign for OFlags {
    fn bitor_assign(&mut self, o: OFlags) {
        self.0 |= o.0;
    }
}

/// Positional I/O on store files with errno-coded errors (`std`'s Unix `FileExt` names).
pub trait FileExt {
    /// Reads at `offset`; 0 at the end of the file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
}

impl FileExt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match std::os::windows::fs::FileExt::seek_read(self, buf, offset) {
            Ok(n) => Ok(n),
            Err(e) if e.raw_os_error() == Some(38) => Ok(0), // ERROR_HANDLE_EOF
            Err(e) => Err(errno_error(e)),
        }
    }
    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_write(self, buf, offset) {
                Ok(0) => return Err(io::Error::from_raw_os_error(libc::EIO)),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) => return Err(errno_error(e)),
            }
        }
        Ok(())
    }
}

/// Takes the hub's lock on an open lock file without waiting: an exclusive `LockFileEx` of
/// its first byte (what huggingface_hub's `filelock` takes on Windows; Samba and Windows
/// servers make it conflict with POSIX and OFD locks of Linux clients on the same file).
/// `Ok(false)` if another handle holds it; the lock lasts while `file` is open.
pub fn lock_exclusive_now(file: &File) -> io::Result<bool> {
    const LOCKFILE_FAIL_IMMEDIATELY: u32 = 1;
    const LOCKFILE_EXCLUSIVE_LOCK: u32 = 2;
    const ERROR_LOCK_VIOLATION: i32 = 33;
    let mut ov = ffi::OVERLAPPED::default();
    // SAFETY: the handle is open for the duration of the call; `ov` is a zeroed OVERLAPPED
    // (offset 0) that outlives the call, which does not wait (FAIL_IMMEDIATELY).
    let ok = unsafe {
        ffi::LockFileEx(
            raw(file),
            LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY,
            0,
            1,
            0,
            &mut ov,
        )
    };
    if ok != 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(ERROR_LOCK_VIOLATION) {
        Ok(false)
    } else {
        Err(errno_error(e))
    }
}

/// A `std`/Win32 error as an errno-coded error (call once per error).
pub fn errno_error(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(win32_to_errno(code as u32)),
        None => e,
    }
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

fn last_error() -> io::Error {
    errno_error(io::Error::last_os_error())
}

/// The Windows API the store calls: ntdll's file calls (`Nt*`, which take a directory
/// handle and a name relative to it, and return NTSTATUS) and kernel32's, as `windows-sys`
/// declares them.
mod ffi {
    pub use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
    pub use windows_sys::Wdk::Storage::FileSystem::{
        NtCreateFile, NtQueryDirectoryFile, NtSetInformationFile,
    };
    pub use windows_sys::Win32::Foundation::{FILETIME, HANDLE, UNICODE_STRING};
    pub use windows_sys::Win32::Storage::FileSystem::{
        BY_HANDLE_FILE_INFORMATION, GetDiskFreeSpaceExW, GetFileInformationByHandle,
        GetFileInformationByHandleEx, GetFinalPathNameByHandleW, LockFileEx,
    };
    pub use windows_sys::Win32::System::IO::{DeviceIoControl, IO_STATUS_BLOCK, OVERLAPPED};
}

// Access rights, share modes, dispositions and options of `NtCreateFile`.
const FILE_READ_DATA: u32 = 0x1;
const FILE_LIST_DIRECTORY: u32 = 0x1;
const FILE_WRITE_DATA: u32 = 0x2;
const FILE_APPEND_DATA: u32 = 0x4;
const FILE_READ_EA: u32 = 0x8;
const FILE_READ_ATTRIBUTES: u32 = 0x80;
const FILE_WRITE_ATTRIBUTES: u32 = 0x100;
const DELETE: u32 = 0x1_0000;
const READ_CONTROL: u32 = 0x2_0000;
const SYNCHRONIZE: u32 = 0x10_0000;
const SHARE_ALL: u32 = 0x1 | 0x2 | 0x4;
const FILE_OPEN: u32 = 1;
const FILE_CREATE: u32 = 2;
const FILE_OPEN_IF: u32 = 3;
const FILE_OVERWRITE: u32 = 4;
const FILE_OVERWRITE_IF: u32 = 5;
const FILE_DIRECTORY_FILE: u32 = 0x1;
const FILE_WRITE_THROUGH: u32 = 0x2;
const FILE_SYNCHRONOUS_IO_NONALERT: u32 = 0x20;
const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
const FILE_OPEN_FOR_BACKUP_INTENT: u32 = 0x4000;
const FILE_OPEN_REPARSE_POINT: u32 = 0x20_0000;
const FILE_ATTRIBUTE_READONLY: u32 = 0x1;
const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
const FILE_ATTRIBUTE_NORMAL: u32 = 0x80;
const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
// Information classes: NT's (`NtSetInformationFile`, `NtQueryDirectoryFile`) and Win32's
// (`GetFileInformationByHandleEx`).
use windows_sys::Wdk::Storage::FileSystem as nt_fs;
use windows_sys::Win32::Storage::FileSystem as win_fs;
const FILE_RENAME_INFORMATION: nt_fs::FILE_INFORMATION_CLASS = nt_fs::FileRenameInformation;
const FILE_LINK_INFORMATION: nt_fs::FILE_INFORMATION_CLASS = nt_fs::FileLinkInformation;
const FILE_DISPOSITION_INFORMATION: nt_fs::FILE_INFORMATION_CLASS =
    nt_fs::FileDispositionInformation;
const FILE_DISPOSITION_INFORMATION_EX: nt_fs::FILE_INFORMATION_CLASS =
    nt_fs::FileDispositionInformationEx;
const FILE_RENAME_INFORMATION_EX: nt_fs::FILE_INFORMATION_CLASS = nt_fs::FileRenameInformationEx;
const FILE_BASIC_INFORMATION: nt_fs::FILE_INFORMATION_CLASS = nt_fs::FileBasicInformation;
const FILE_ATTRIBUTE_TAG_INFO: win_fs::FILE_INFO_BY_HANDLE_CLASS = win_fs::FileAttributeTagInfo;
const STATUS_CANNOT_DELETE: i32 = 0xC000_0121u32 as i32;
const FILE_ID_BOTH_DIRECTORY_INFO: win_fs::FILE_INFO_BY_HANDLE_CLASS =
    win_fs::FileIdBothDirectoryInfo;
const FILE_ID_BOTH_DIRECTORY_RESTART_INFO: win_fs::FILE_INFO_BY_HANDLE_CLASS =
    win_fs::FileIdBothDirectoryRestartInfo;
const FSCTL_GET_REPARSE_POINT: u32 = 0x0009_00A8;
const FSCTL_SET_REPARSE_POINT: u32 = 0x0009_00A4;
const ERROR_NO_MORE_FILES: i32 = 18;
/// The NT class of `NtQueryDirectoryFile`.
const FILE_ID_BOTH_DIRECTORY_INFORMATION: nt_fs::FILE_INFORMATION_CLASS =
    nt_fs::FileIdBothDirectoryInformation;
const STATUS_NO_SUCH_FILE: i32 = 0xC000_000Fu32 as i32;
const STATUS_NO_MORE_FILES: i32 = 0x8000_0006u32 as i32;
const STATUS_INVALID_PARAMETER: i32 = 0xC000_000Du32 as i32;
const STATUS_INVALID_INFO_CLASS: i32 = 0xC000_0003u32 as i32;
const STATUS_NOT_SUPPORTED: i32 = 0xC000_00BBu32 as i32;
const STATUS_NOT_IMPLEMENTED: i32 = 0xC000_0002u32 as i32;

/// True if an `NtSetInformationFile` class is not understood (older servers and file systems
/// lack the `…Ex` classes): the caller falls back to the classic class.
fn class_unsupported(st: i32) -> bool {
    matches!(
        st,
        STATUS_INVALID_PARAMETER
            | STATUS_INVALID_INFO_CLASS
            | STATUS_NOT_SUPPORTED
            | STATUS_NOT_IMPLEMENTED
    )
}

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().collect()
}

fn raw(h: &impl AsRawHandle) -> ffi::HANDLE {
    h.as_raw_handle() as ffi::HANDLE
}

/// One `NtCreateFile` of the single name `name` relative to the directory `dir`.
fn nt_open(
    dir: RawHandle,
    name: &OsStr,
    access: u32,
    disposition: u32,
    options: u32,
) -> io::Result<OwnedHandle> {
    let w = wide(name);
    if w.is_empty() {
        return Err(errno(libc::EINVAL));
    }
    nt_open_wide(dir, w, access, disposition, options)
}

/// A new handle of the directory `dir` itself (an empty name relative to it), with its own
/// access and its own directory-listing position.
fn nt_reopen(dir: RawHandle, access: u32, options: u32) -> io::Result<OwnedHandle> {
    nt_open_wide(dir, Vec::new(), access, FILE_OPEN, options)
}

fn nt_open_wide(
    dir: RawHandle,
    w: Vec<u16>,
    access: u32,
    disposition: u32,
    options: u32,
) -> io::Result<OwnedHandle> {
    nt_open_shared(dir, w, access, disposition, options, SHARE_ALL)
}

/// [`nt_open_wide`] with the share access given (every other open shares everything).
fn nt_open_shared(
    dir: RawHandle,
    mut w: Vec<u16>,
    access: u32,
    disposition: u32,
    options: u32,
    share: u32,
) -> io::Result<OwnedHandle> {
    if w.len() > 32_000 {
        return Err(errno(libc::ENAMETOOLONG));
    }
    let bytes = (w.len() * 2) as u16;
    let us = ffi::UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: w.as_mut_ptr(),
    };
    let oa = ffi::OBJECT_ATTRIBUTES {
        Length: std::mem::size_of::<ffi::OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: dir as ffi::HANDLE,
        ObjectName: &us,
        ..Default::default()
    };
    let mut h: ffi::HANDLE = std::ptr::null_mut();
    let mut iosb = ffi::IO_STATUS_BLOCK::default();
    calls::add(|c| c.nt_create_file += 1);
    // SAFETY: every pointer refers to a live local (`us` borrows `w`, `oa` borrows `us`) for
    // the whole call; `dir` is a handle owned by the caller and open for the call.
    let st = unsafe {
        ffi::NtCreateFile(
            &mut h,
            access | SYNCHRONIZE,
            &oa,
            &mut iosb,
            std::ptr::null(),
            FILE_ATTRIBUTE_NORMAL,
            share,
            disposition,
            options | FILE_OPEN_REPARSE_POINT | FILE_SYNCHRONOUS_IO_NONALERT,
            std::ptr::null(),
            0,
        )
    };
    if st < 0 {
        log::debug!("store: NtCreateFile: NTSTATUS {:#010x}", st as u32);
        last_status::set(st);
        return Err(errno(nt_to_errno(st)));
    }
    // SAFETY: NtCreateFile succeeded, so `h` is a new handle that nothing else owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(h as RawHandle) })
}

fn by_handle(h: &impl AsRawHandle) -> io::Result<ffi::BY_HANDLE_FILE_INFORMATION> {
    let mut info = ffi::BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: `info` is a valid, writable BY_HANDLE_FILE_INFORMATION; the handle is open.
    if unsafe { ffi::GetFileInformationByHandle(raw(h), &mut info) } == 0 {
        return Err(last_error());
    }
    Ok(info)
}

fn reparse_tag(h: &impl AsRawHandle) -> io::Result<u32> {
    let mut info = [0u32; 2]; // FILE_ATTRIBUTE_TAG_INFO { FileAttributes, ReparseTag }
    // SAFETY: the buffer is 8 writable bytes, the size of FILE_ATTRIBUTE_TAG_INFO.
    let ok = unsafe {
        ffi::GetFileInformationByHandleEx(
            raw(h),
            FILE_ATTRIBUTE_TAG_INFO,
            info.as_mut_ptr().cast::<c_void>(),
            8,
        )
    };
    if ok == 0 {
        return Err(last_error());
    }
    Ok(info[1])
}

/// The reparse buffer of an open reparse point.
fn reparse_buffer(h: &impl AsRawHandle) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; reparse::MAXIMUM_REPARSE_DATA_BUFFER_SIZE + 8];
    let mut got = 0u32;
    // SAFETY: the output buffer is `buf.len()` writable bytes; no input buffer; `got` is a
    // valid out-parameter; the handle is open and synchronous (no OVERLAPPED).
    let ok = unsafe {
        ffi::DeviceIoControl(
            raw(h),
            FSCTL_GET_REPARSE_POINT,
            std::ptr::null(),
            0,
            buf.as_mut_ptr().cast::<c_void>(),
            buf.len() as u32,
            &mut got,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(last_error());
    }
    buf.truncate(got as usize);
    Ok(buf)
}

/// How a reparse point shows: as a link, a special file, or the file/dir itself.
fn reparse_kind(h: &impl AsRawHandle, tag: u32, is_dir: bool) -> Kind {
    let plain = if is_dir { Kind::Dir } else { Kind::File };
    match tag {
        reparse::IO_REPARSE_TAG_SYMLINK
        | reparse::IO_REPARSE_TAG_MOUNT_POINT
        | reparse::IO_REPARSE_TAG_LX_SYMLINK => Kind::Symlink,
        reparse::IO_REPARSE_TAG_NFS => {
            match reparse_buffer(h).ok().and_then(|b| reparse::parse(&b)) {
                Some(reparse::Reparse::Link(_)) => Kind::Symlink,
                _ => Kind::Special,
            }
        }
        reparse::IO_REPARSE_TAG_AF_UNIX
        | reparse::IO_REPARSE_TAG_LX_FIFO
        | reparse::IO_REPARSE_TAG_LX_CHR
        | reparse::IO_REPARSE_TAG_LX_BLK => Kind::Special,
        // Another link kind: never followed, hidden.
        t if t & reparse::NAME_SURROGATE_BIT != 0 => Kind::Special,
        // Not a link (deduplication, cloud placeholder, …): the file or directory itself.
        _ => plain,
    }
}

fn final_path(h: &impl AsRawHandle) -> Option<Vec<u16>> {
    let mut buf = vec![0u16; 1024];
    loop {
        // SAFETY: `buf` holds `buf.len()` writable u16s.
        let n = unsafe {
            ffi::GetFinalPathNameByHandleW(raw(h), buf.as_mut_ptr(), buf.len() as u32, 0)
        } as usize;
        if n == 0 {
            return None;
        }
        if n < buf.len() {
            buf.truncate(n);
            return Some(buf);
        }
        if n > 65_536 {
            return None;
        }
        buf.resize(n + 1, 0);
    }
}

impl Meta {
    /// Metadata of an open store file or directory.
    pub fn of_fd(f: &impl AsRawHandle) -> io::Result<Meta> {
        calls::add(|c| c.fstat += 1);
        let info = by_handle(f)?;
        let attrs = info.dwFileAttributes;
        let is_dir = attrs & FILE_ATTRIBUTE_DIRECTORY != 0;
        let kind = if attrs & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            reparse_kind(f, reparse_tag(f)?, is_dir)
        } else if is_dir {
            Kind::Dir
        } else {
            Kind::File
        };
        let ft = |t: ffi::FILETIME| {
            from_filetime(u64::from(t.dwHighDateTime) << 32 | u64::from(t.dwLowDateTime))
                .unwrap_or(std::time::UNIX_EPOCH)
        };
        let size = u64::from(info.nFileSizeHigh) << 32 | u64::from(info.nFileSizeLow);
        let mut ino = u64::from(info.nFileIndexHigh) << 32 | u64::from(info.nFileIndexLow);
        if ino == 0 {
            // The server reports no file IDs: one per final path instead.
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            final_path(f).unwrap_or_default().hash(&mut hasher);
            ino = hasher.finish() | 1 << 63;
        }
        let perm = match (is_dir, attrs & FILE_ATTRIBUTE_READONLY != 0) {
            (true, _) => 0o755,
            (false, true) => 0o444,
            (false, false) => 0o644,
        };
        Ok(Meta {
            kind,
            dev: u64::from(info.dwVolumeSerialNumber),
            ino,
            size: if is_dir { 0 } else { size },
            blocks: size.div_ceil(512),
            perm,
            nlink: info.nNumberOfLinks.max(1),
            uid: 0,
            gid: 0,
            blksize: 4096,
            atime: ft(info.ftLastAccessTime),
            mtime: ft(info.ftLastWriteTime),
            ctime: ft(info.ftLastWriteTime),
        })
    }
}

/// Builds a `FILE_RENAME_INFORMATION`/`FILE_LINK_INFORMATION` buffer (64-bit layout:
/// `u32` flags or `BOOLEAN` at 0, root handle at 8, name length at 16, name at 20).
fn rename_info(flags: u32, root: RawHandle, name: &[u16]) -> Vec<u8> {
    let mut b = vec![0u8; 20 + name.len() * 2 + 2];
    b[0..4].copy_from_slice(&flags.to_le_bytes());
    b[8..16].copy_from_slice(&(root as usize as u64).to_le_bytes());
    b[16..20].copy_from_slice(&((name.len() * 2) as u32).to_le_bytes());
    for (i, c) in name.iter().enumerate() {
        b[20 + 2 * i..22 + 2 * i].copy_from_slice(&c.to_le_bytes());
    }
    b
}

fn set_info(h: &impl AsRawHandle, class: nt_fs::FILE_INFORMATION_CLASS, info: &[u8]) -> i32 {
    let mut iosb = ffi::IO_STATUS_BLOCK::default();
    // `rename_info` buffers carry a handle at offset 8: keep them 8-byte aligned.
    let mut aligned = vec![0u64; info.len().div_ceil(8)];
    // SAFETY: `aligned` has at least `info.len()` bytes; u64 → u8 reinterpretation is valid.
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(aligned.as_mut_ptr().cast::<u8>(), info.len()) };
    bytes.copy_from_slice(info);
    // SAFETY: the information buffer is `info.len()` readable bytes laid out for `class`;
    // `iosb` is a valid out-parameter; the handle is open.
    unsafe {
        ffi::NtSetInformationFile(
            raw(h),
            &mut iosb,
            aligned.as_ptr().cast::<c_void>(),
            info.len() as u32,
            class,
        )
    }
}

fn nt_result(st: i32) -> io::Result<()> {
    if st < 0 {
        log::debug!("store: NTSTATUS {:#010x}", st as u32);
        last_status::set(st);
        Err(errno(nt_to_errno(st)))
    } else {
        Ok(())
    }
}

/// Entries of a `FILE_ID_BOTH_DIR_INFO` chain: (name, attributes, reparse tag, file id).
fn parse_dir_info(buf: &[u8]) -> Vec<(Vec<u16>, u32, u32, u64)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let u32_at = |b: &[u8], i: usize| {
        b.get(i..i + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    loop {
        let e = match buf.get(at..) {
            Some(e) if e.len() >= 104 => e,
            _ => break,
        };
        let (Some(next), Some(attrs), Some(len), Some(ea)) =
            (u32_at(e, 0), u32_at(e, 56), u32_at(e, 60), u32_at(e, 64))
        else {
            break;
        };
        let id = e
            .get(96..104)
            .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])));
        if let Some(name) = e.get(104..104 + len as usize) {
            let name: Vec<u16> = name
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            out.push((name, attrs, ea, id));
        }
        if next == 0 {
            break;
        }
        at += next as usize;
    }
    out
}

/// An open store root on Windows: the real backend behind [`Store`](super::Store) (see
/// [`StoreBackend`](super::StoreBackend)).
#[derive(Debug)]
pub struct WinStore {
    root: OwnedHandle,
    path: PathBuf,
    /// The root as Windows paths (as given, and its final path), for absolute link texts.
    roots: Vec<Vec<u8>>,
    /// Whether XSym files are links (see [`WinStore::xsym_links`]).
    xsym: std::sync::atomic::AtomicBool,
    /// Links could be created in the store (see [`WinStore::can_symlink`]).
    symlinks_ok: std::sync::atomic::AtomicBool,
    /// Whether the store matches names case-insensitively (see [`WinStore::find_names`]).
    case_mode: std::sync::atomic::AtomicU8,
}

const CASE_UNKNOWN: u8 = 0;
const CASE_INSENSITIVE: u8 = 1;
const CASE_SENSITIVE: u8 = 2;

/// `name` with the case of its first cased letter swapped (`None` without one): a spelling
/// only a case-insensitive store takes for `name`.
fn swap_case(name: &str) -> Option<String> {
    let i = name
        .char_indices()
        .find(|(_, c)| c.to_lowercase().ne(c.to_uppercase()))?
        .0;
    let c = name[i..].chars().next()?;
    let swapped: String = if c.is_uppercase() {
        c.to_lowercase().collect()
    } else {
        c.to_uppercase().collect()
    };
    Some(format!(
        "{}{swapped}{}",
        &name[..i],
        &name[i + c.len_utf8()..]
    ))
}

/// A directory-query pattern matching every spelling of `name` in another case: each cased
/// letter is `?` (`None` if `name` has no cased letter: no other spelling exists).
fn case_pattern(name: &str) -> Option<String> {
    let mut cased = false;
    let p = name
        .chars()
        .map(|c| {
            if c.to_lowercase().ne(c.to_uppercase()) {
                cased = true;
                '?'
            } else {
                c
            }
        })
        .collect();
    cased.then_some(p)
}

impl WinStore {
    /// Opens the store at `path` (which may itself be reached through links: the user chose
    /// it).
    pub fn open_root(path: &Path) -> Result<WinStore, OpenStoreError> {
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OpenStoreError::Missing(path.to_path_buf()));
            }
            Err(e) => return Err(OpenStoreError::Io(path.to_path_buf(), e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| OpenStoreError::Io(path.to_path_buf(), e))?;
        if !meta.is_dir() {
            return Err(OpenStoreError::NotDir(path.to_path_buf()));
        }
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut roots = vec![abs.as_os_str().as_encoded_bytes().to_vec()];
        if let Some(fp) = final_path(&file) {
            let s = OsString::from_wide(&fp);
            let win = reparse::nt_to_win32(s.as_encoded_bytes());
            if !roots.contains(&win) {
                roots.push(win);
            }
        }
        Ok(WinStore {
            root: file.into(),
            path: abs,
            roots,
            xsym: std::sync::atomic::AtomicBool::new(false),
            symlinks_ok: std::sync::atomic::AtomicBool::new(false),
            case_mode: std::sync::atomic::AtomicU8::new(CASE_UNKNOWN),
        })
    }

    /// Treat XSym files outside `blobs/` as links (the `xsym` mount option).
    pub fn set_xsym(&self, on: bool) {
        self.xsym.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// True if an XSym file at `p` is a link: only with the `xsym` option, never in `blobs/`.
    pub fn xsym_links(&self, p: &StorePath) -> bool {
        self.xsym.load(std::sync::atomic::Ordering::Relaxed) && !p.in_blobs()
    }

    /// Absolute paths under which the store root is known: none on Windows (absolute link
    /// texts below the root are rewritten by [`WinStore::readlink`] instead).
    pub fn aliases(&self) -> &[PathBuf] {
        &[]
    }

    /// The directory handle of `p`, walked one component at a time, never through a link.
    fn walk_dir(&self, p: &StorePath) -> io::Result<OwnedHandle> {
        let mut cur: Option<OwnedHandle> = None;
        for c in p.components() {
            let dir = cur
                .as_ref()
                .map_or(self.root.as_raw_handle(), |h| h.as_raw_handle());
            let h = nt_open(
                dir,
                c,
                FILE_LIST_DIRECTORY | FILE_READ_ATTRIBUTES,
                FILE_OPEN,
                FILE_DIRECTORY_FILE | FILE_OPEN_FOR_BACKUP_INTENT,
            )?;
            let info = by_handle(&h)?;
            if info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0
                && reparse_kind(&h, reparse_tag(&h)?, true) != Kind::Dir
            {
                return Err(errno(libc::ELOOP));
            }
            cur = Some(h);
        }
        match cur {
            Some(h) => Ok(h),
            None => self.root.try_clone().map_err(errno_error),
        }
    }

    /// The parent directory handle and final name of `p` (not the root).
    fn parent_and_name<'p>(&self, p: &'p StorePath) -> io::Result<(OwnedHandle, &'p OsStr)> {
        let name = p.file_name().ok_or_else(|| errno(libc::EBUSY))?;
        Ok((self.walk_dir(&p.parent())?, name))
    }

    /// Opens the final component of `p` as is (never following it).
    fn open_entry(
        &self,
        p: &StorePath,
        access: u32,
        disposition: u32,
        options: u32,
    ) -> io::Result<OwnedHandle> {
        if p.is_root() {
            return nt_reopen(
                self.root.as_raw_handle(),
                access,
                options | FILE_OPEN_FOR_BACKUP_INTENT,
            );
        }
        let (dir, name) = self.parent_and_name(p)?;
        nt_open(
            dir.as_raw_handle(),
            name,
            access,
            disposition,
            options | FILE_OPEN_FOR_BACKUP_INTENT,
        )
    }

    /// Opens `p` with POSIX-style `flags`, never following a link: a link at `p` is `ELOOP`.
    pub fn open(&self, p: &StorePath, flags: OFlags, _mode: u32) -> io::Result<File> {
        calls::add(|c| c.open += 1);
        let mut access = READ_CONTROL | FILE_READ_ATTRIBUTES;
        if flags.contains(OFlags::ATTRS) {
            access |= FILE_WRITE_ATTRIBUTES;
        } else if !flags.contains(OFlags::PATH) {
            access |= match flags.access_mode() {
                1 => FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_WRITE_ATTRIBUTES,
                2 => {
                    FILE_READ_DATA
                        | FILE_READ_EA
                        | FILE_WRITE_DATA
                        | FILE_APPEND_DATA
                        | FILE_WRITE_ATTRIBUTES
                }
                _ => FILE_READ_DATA | FILE_READ_EA,
            };
            if flags.contains(OFlags::APPEND) && flags.access_mode() != 0 {
                // Without FILE_WRITE_DATA every write lands at the end, as with O_APPEND.
                access &= !FILE_WRITE_DATA;
            }
        }
        let create = flags.contains(OFlags::CREATE);
        let trunc = flags.contains(OFlags::TRUNC);
        let disposition = match (create, flags.contains(OFlags::EXCL), trunc) {
            (true, true, _) => FILE_CREATE,
            (true, false, true) => FILE_OVERWRITE_IF,
            (true, false, false) => FILE_OPEN_IF,
            (false, _, true) => FILE_OVERWRITE,
            (false, _, false) => FILE_OPEN,
        };
        let mut options = 0;
        if flags.contains(OFlags::DIRECTORY) {
            options |= FILE_DIRECTORY_FILE;
        } else if !flags.contains(OFlags::PATH) && !flags.contains(OFlags::ATTRS) {
            options |= FILE_NON_DIRECTORY_FILE;
        }
        if flags.contains(OFlags::SYNC) || flags.contains(OFlags::DSYNC) {
            options |= FILE_WRITE_THROUGH;
        }
        let h = self.open_entry(p, access, disposition, options)?;
        let info = by_handle(&h)?;
        if info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            let kind = reparse_kind(
                &h,
                reparse_tag(&h)?,
                info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY != 0,
            );
            if !matches!(kind, Kind::File | Kind::Dir) {
                return Err(errno(libc::ELOOP));
            }
        }
        Ok(File::from(h))
    }

    /// `lstat` of `p`.
    pub fn lstat(&self, p: &StorePath) -> io::Result<Meta> {
        calls::add(|c| c.lstat += 1);
        let h = self.open_entry(p, FILE_READ_ATTRIBUTES, FILE_OPEN, 0)?;
        Meta::of_fd(&h)
    }

    /// The text of the link at `p`: a reparse point's target, or an XSym file's; `EINVAL` for
    /// anything else. An absolute text below the store root comes back relative to the
    /// link's directory.
    pub fn readlink(&self, p: &StorePath) -> io::Result<Vec<u8>> {
        calls::add(|c| c.readlink += 1);
        let h = self.open_entry(p, FILE_READ_ATTRIBUTES | FILE_READ_DATA, FILE_OPEN, 0)?;
        let info = by_handle(&h)?;
        if info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT == 0 {
            let size = u64::from(info.nFileSizeHigh) << 32 | u64::from(info.nFileSizeLow);
            if info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY == 0
                && xsym::may_be_xsym(size)
                && self.xsym_links(p)
            {
                let mut buf = vec![0u8; xsym::XSYM_SIZE as usize];
                let f = File::from(h);
                let n = FileExt::read_at(&f, &mut buf, 0)?;
                if let Some(l) = xsym::parse(&buf[..n]) {
                    return Ok(l.text);
                }
            }
            return Err(errno(libc::EINVAL));
        }
        let link = match reparse::parse(&reparse_buffer(&h)?) {
            Some(reparse::Reparse::Link(l)) => l,
            _ => return Err(errno(libc::EINVAL)),
        };
        if link.absolute {
            for root in &self.roots {
                if let Some(rest) = links::strip_root(&link.text, root) {
                    let inside = crate::path::link_target(&StorePath::root(), rest, &[])
                        .map_err(|_| errno(libc::EXDEV))?;
                    let rel = inside.relative_from(&p.parent());
                    return Ok(rel.as_os_str().as_encoded_bytes().to_vec());
                }
            }
        }
        Ok(link.text)
    }

    /// Up to `max` first bytes of the regular file `p`.
    pub fn read_head(&self, p: &StorePath, max: usize) -> io::Result<Vec<u8>> {
        calls::add(|c| c.readlink += 1);
        let f = self.open(p, OFlags::RDONLY, 0)?;
        let mut buf = vec![0u8; max];
        let mut done = 0;
        while done < max {
            match FileExt::read_at(&f, &mut buf[done..], done as u64)? {
                0 => break,
                n => done += n,
            }
        }
        buf.truncate(done);
        Ok(buf)
    }

    /// Lists directory `p` (without `.` and `..`). Reparse points are listed without a kind,
    /// so the core looks at each.
    pub fn read_dir(&self, p: &StorePath) -> io::Result<Vec<RawEntry>> {
        calls::add(|c| c.read_dir += 1);
        // A handle of its own: the listing position lives in the handle.
        let h = nt_reopen(
            self.walk_dir(p)?.as_raw_handle(),
            FILE_LIST_DIRECTORY,
            FILE_DIRECTORY_FILE | FILE_OPEN_FOR_BACKUP_INTENT,
        )?;
        let mut out = Vec::new();
        let mut buf = vec![0u64; 64 * 1024 / 8];
        let mut class = FILE_ID_BOTH_DIRECTORY_RESTART_INFO;
        loop {
            calls::add(|c| c.dir_query += 1);
            // SAFETY: `buf` is 64 KiB of writable, 8-byte aligned memory; the handle is an
            // open, synchronous directory handle.
            let ok = unsafe {
                ffi::GetFileInformationByHandleEx(
                    h.as_raw_handle() as ffi::HANDLE,
                    class,
                    buf.as_mut_ptr().cast::<c_void>(),
                    (buf.len() * 8) as u32,
                )
            };
            if ok == 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(ERROR_NO_MORE_FILES) {
                    break;
                }
                return Err(errno_error(e));
            }
            class = FILE_ID_BOTH_DIRECTORY_INFO;
            // SAFETY: reinterpreting the u64 buffer as bytes of the same length.
            let bytes =
                unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), buf.len() * 8) };
            for (name, attrs, _tag, id) in parse_dir_info(bytes) {
                if name == [b'.' as u16] || name == [b'.' as u16, b'.' as u16] {
                    continue;
                }
                let kind = if attrs & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
                    None
                } else if attrs & FILE_ATTRIBUTE_DIRECTORY != 0 {
                    Some(Kind::Dir)
                } else {
                    Some(Kind::File)
                };
                out.push(RawEntry {
                    name: OsString::from_wide(&name),
                    kind,
                    ino: id,
                });
            }
        }
        Ok(out)
    }

    /// The names in directory `dir` that may be `name` in another case, in the store's own
    /// spelling, without listing the directory: one directory query with `name` as its file
    /// name (`NtQueryDirectoryFile`). A case-insensitive store (NTFS, SMB servers, Samba's
    /// default) answers with every spelling it has. A case-sensitive one answers only the
    /// exact name; where it has none, one more query with every cased letter of `name`
    /// replaced by `?` returns the names of the same shape, among which the caller compares.
    /// Whether the store is case-insensitive is learnt at the first query that finds a name
    /// with a cased letter (one query more, once); until then a miss takes the second query.
    pub fn find_names(&self, dir: &StorePath, name: &OsStr) -> io::Result<Vec<OsString>> {
        use std::sync::atomic::Ordering;
        let found = self.query_names(dir, name)?;
        let mode = self.case_mode.load(Ordering::Relaxed);
        if !found.is_empty() {
            if mode == CASE_UNKNOWN
                && let Some(other) = name.to_str().and_then(swap_case)
                && found.iter().any(|f| f == name)
            {
                let again = self.query_names(dir, OsStr::new(&other))?;
                let insensitive = again.iter().any(|f| f == name);
                self.case_mode.store(
                    if insensitive {
                        CASE_INSENSITIVE
                    } else {
                        CASE_SENSITIVE
                    },
                    Ordering::Relaxed,
                );
            }
            return Ok(found);
        }
        if mode == CASE_INSENSITIVE {
            return Ok(found);
        }
        match name.to_str().and_then(case_pattern) {
            Some(p) => self.query_names(dir, OsStr::new(&p)),
            None => Ok(found),
        }
    }

    /// Treat the store as case-sensitive (tests: wine's drive is case-insensitive).
    #[cfg(test)]
    pub fn assume_case_sensitive(&self) {
        self.case_mode
            .store(CASE_SENSITIVE, std::sync::atomic::Ordering::Relaxed);
    }

    /// One directory query (continued while a pattern matches more) of `name` in `dir`.
    fn query_names(&self, dir: &StorePath, name: &OsStr) -> io::Result<Vec<OsString>> {
        // A handle of its own (a new file object): a query's file name is kept by the file
        // object for every later query, so the root's shared handle cannot be used.
        let h = if dir.is_root() {
            nt_reopen(
                self.root.as_raw_handle(),
                FILE_LIST_DIRECTORY,
                FILE_DIRECTORY_FILE | FILE_OPEN_FOR_BACKUP_INTENT,
            )?
        } else {
            self.walk_dir(dir)?
        };
        let mut w = wide(name);
        if w.is_empty() || w.len() > 32_000 {
            return Err(errno(libc::EINVAL));
        }
        let bytes = (w.len() * 2) as u16;
        let us = ffi::UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: w.as_mut_ptr(),
        };
        let has_wildcards = w
            .iter()
            .any(|&c| matches!(c, 0x2A | 0x3F | 0x3C | 0x3E | 0x22));
        let mut out = Vec::new();
        let mut buf = vec![0u64; 16 * 1024 / 8];
        let mut restart = true;
        loop {
            calls::add(|c| c.dir_query += 1);
            let mut iosb = ffi::IO_STATUS_BLOCK::default();
            // SAFETY: `buf` is 16 KiB of writable, 8-byte aligned memory; `us` borrows `w`,
            // both live for the call; the handle is an open, synchronous directory handle
            // (no event, no APC).
            let st = unsafe {
                ffi::NtQueryDirectoryFile(
                    raw(&h),
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null(),
                    &mut iosb,
                    buf.as_mut_ptr().cast::<c_void>(),
                    (buf.len() * 8) as u32,
                    FILE_ID_BOTH_DIRECTORY_INFORMATION,
                    false,
                    &us,
                    restart,
                )
            };
            restart = false;
            if st == STATUS_NO_SUCH_FILE || st == STATUS_NO_MORE_FILES {
                return Ok(out);
            }
            nt_result(st)?;
            // SAFETY: reinterpreting the u64 buffer as bytes of the same length.
            let bytes =
                unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), buf.len() * 8) };
            let n = iosb.Information.min(bytes.len());
            for (found, _, _, _) in parse_dir_info(&bytes[..n]) {
                if found != [b'.' as u16] && found != [b'.' as u16, b'.' as u16] {
                    out.push(OsString::from_wide(&found));
                }
            }
            // A name without wildcards matches one entry per spelling, and every spelling
            // fits one 16 KiB answer: no second round trip to hear "no more". A pattern
            // matching a whole directory: what was found is enough to choose.
            if !has_wildcards || out.len() > 4096 {
                return Ok(out);
            }
        }
    }

    /// Opens `p` with delete access (not following it), as a delete or rename of it would:
    /// the store's answer (`ACCESS_DENIED`, `SHARING_VIOLATION`, `DELETE_PENDING`, …) comes
    /// now. While the returned handle is open, nobody can open `p` in a way that would make
    /// the delete fail (the store refuses opens that do not share delete access).
    pub fn open_for_delete(&self, p: &StorePath) -> io::Result<File> {
        let h = self.open_entry(p, DELETE | FILE_READ_ATTRIBUTES, FILE_OPEN, 0)?;
        Ok(File::from(h))
    }

    /// Opens the regular file `p` to hold the hub's lock on it ([`lock_exclusive_now`]): for
    /// reading, sharing reading and writing but not deletion — as the CRT's `open` that
    /// huggingface_hub's `filelock` uses on Windows does, so that a lock file cannot be
    /// deleted (by `filelock`'s clean-up on another machine) while its lock is held.
    pub fn open_for_lock(&self, p: &StorePath) -> io::Result<File> {
        calls::add(|c| c.open += 1);
        let (dir, name) = self.parent_and_name(p)?;
        let h = nt_open_shared(
            dir.as_raw_handle(),
            wide(name),
            FILE_READ_DATA | FILE_READ_ATTRIBUTES,
            FILE_OPEN,
            FILE_NON_DIRECTORY_FILE | FILE_OPEN_FOR_BACKUP_INTENT,
            0x1 | 0x2,
        )?;
        if by_handle(&h)?.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            return Err(errno(libc::ELOOP));
        }
        Ok(File::from(h))
    }

    /// Checks that links can be created in directory `dir` (the right to create symbolic
    /// links on the store): creates a link under a temporary name and removes it. A success
    /// is remembered for the life of the store (rights do not come and go); a failure is
    /// asked again next time.
    pub fn can_symlink(&self, dir: &StorePath) -> io::Result<()> {
        use std::sync::atomic::Ordering;
        if self.symlinks_ok.load(Ordering::Relaxed) {
            return Ok(());
        }
        let name = format!(".hfcachefs-linkprobe-{}", std::process::id());
        let p = dir
            .join(OsStr::new(&name))
            .ok_or_else(|| errno(libc::EINVAL))?;
        self.symlink(Path::new("."), &p)?;
        let _ = self.unlink(&p);
        self.symlinks_ok.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Creates a directory.
    pub fn mkdir(&self, p: &StorePath, _mode: u32) -> io::Result<()> {
        self.open_entry(p, FILE_LIST_DIRECTORY, FILE_CREATE, FILE_DIRECTORY_FILE)
            .map(drop)
    }

    /// Marks an open entry deleted (POSIX semantics where the server has them).
    ///
    /// The read-only attribute never stops it, as the mode of a file never stops `unlink` on
    /// Linux: where the server does not understand `IGNORE_READONLY_ATTRIBUTE` (the classic
    /// disposition answers `STATUS_CANNOT_DELETE`), the attribute is cleared first.
    fn delete(h: &OwnedHandle) -> io::Result<()> {
        // FILE_DISPOSITION_DELETE | POSIX_SEMANTICS | IGNORE_READONLY_ATTRIBUTE
        let st = set_info(h, FILE_DISPOSITION_INFORMATION_EX, &0x13u32.to_le_bytes());
        if !class_unsupported(st) {
            return nt_result(st);
        }
        let st = set_info(h, FILE_DISPOSITION_INFORMATION, &[1]);
        if st != STATUS_CANNOT_DELETE {
            return nt_result(st);
        }
        let attrs = by_handle(h)?.dwFileAttributes;
        if attrs & FILE_ATTRIBUTE_READONLY == 0 {
            return nt_result(st);
        }
        // FILE_BASIC_INFORMATION: four times (0: unchanged), then the attributes.
        let mut basic = [0u8; 40];
        let keep = attrs & !FILE_ATTRIBUTE_READONLY;
        let keep = if keep == 0 {
            FILE_ATTRIBUTE_NORMAL
        } else {
            keep
        };
        basic[32..36].copy_from_slice(&keep.to_le_bytes());
        let w = nt_reopen(h.as_raw_handle(), FILE_WRITE_ATTRIBUTES, 0)?;
        nt_result(set_info(&w, FILE_BASIC_INFORMATION, &basic))?;
        nt_result(set_info(h, FILE_DISPOSITION_INFORMATION, &[1]))
    }

    /// Removes a non-directory entry (a file, or a link itself).
    pub fn unlink(&self, p: &StorePath) -> io::Result<()> {
        let h = self.open_entry(p, DELETE | FILE_READ_ATTRIBUTES, FILE_OPEN, 0)?;
        let info = by_handle(&h)?;
        let attrs = info.dwFileAttributes;
        if attrs & FILE_ATTRIBUTE_DIRECTORY != 0 && attrs & FILE_ATTRIBUTE_REPARSE_POINT == 0 {
            return Err(errno(libc::EISDIR));
        }
        Self::delete(&h)
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, p: &StorePath) -> io::Result<()> {
        let h = self.open_entry(
            p,
            DELETE | FILE_READ_ATTRIBUTES,
            FILE_OPEN,
            FILE_DIRECTORY_FILE,
        )?;
        if by_handle(&h)?.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            return Err(errno(libc::ENOTDIR));
        }
        Self::delete(&h)
    }

    /// Renames `from` to `to`; `flags` are `renameat2` flags (`RENAME_NOREPLACE`;
    /// `RENAME_EXCHANGE` is `EINVAL`).
    pub fn rename(&self, from: &StorePath, to: &StorePath, flags: u32) -> io::Result<()> {
        if flags & libc::RENAME_EXCHANGE != 0 || flags & !libc::RENAME_NOREPLACE != 0 {
            return Err(errno(libc::EINVAL));
        }
        let replace = flags & libc::RENAME_NOREPLACE == 0;
        let h = self.open_entry(from, DELETE | FILE_READ_ATTRIBUTES, FILE_OPEN, 0)?;
        let (tdir, tname) = self.parent_and_name(to)?;
        let name = wide(tname);
        // FILE_RENAME_REPLACE_IF_EXISTS | FILE_RENAME_POSIX_SEMANTICS
        let ex_flags = if replace { 0x1 | 0x2 } else { 0x2 };
        let st = set_info(
            &h,
            FILE_RENAME_INFORMATION_EX,
            &rename_info(ex_flags, tdir.as_raw_handle(), &name),
        );
        if class_unsupported(st) {
            let st = set_info(
                &h,
                FILE_RENAME_INFORMATION,
                &rename_info(u32::from(replace), tdir.as_raw_handle(), &name),
            );
            return nt_result(st);
        }
        nt_result(st)
    }

    /// Creates a relative link at `p` with the given text: an NTFS symlink (needs the right
    /// to create symbolic links on the store: `EPERM` otherwise), or, in a store whose links
    /// are XSym files (the `xsym` option; never in `blobs/`), an XSym file — the form Linux
    /// SMB clients with `mfsymlinks` write and read, which needs no right beyond writing.
    pub fn symlink(&self, text: &Path, p: &StorePath) -> io::Result<()> {
        let t = text.to_str().ok_or_else(|| errno(libc::EINVAL))?;
        if links::is_absolute(t.as_bytes()) {
            return Err(errno(libc::EXDEV));
        }
        if self.xsym_links(p) {
            // XSym texts are POSIX paths: Linux clients that read them take `\` for a name
            // character, so the Windows separators become `/`.
            let posix = t.replace('\\', "/");
            let body = xsym::format(posix.as_bytes()).ok_or_else(|| errno(libc::ENAMETOOLONG))?;
            let h = self.open_entry(
                p,
                FILE_WRITE_DATA | DELETE,
                FILE_CREATE,
                FILE_NON_DIRECTORY_FILE,
            )?;
            let f = File::from(h);
            if let Err(e) = FileExt::write_all_at(&f, &body, 0) {
                let _ = Self::delete(&OwnedHandle::from(f));
                return Err(e);
            }
            return Ok(());
        }
        let buf = reparse::relative_symlink_buffer(t).ok_or_else(|| errno(libc::ENAMETOOLONG))?;
        let h = self.open_entry(
            p,
            FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES | DELETE,
            FILE_CREATE,
            FILE_NON_DIRECTORY_FILE,
        )?;
        let mut got = 0u32;
        // SAFETY: the input buffer is `buf.len()` readable bytes; no output buffer; `got` is
        // a valid out-parameter; the handle is open and synchronous.
        let ok = unsafe {
            ffi::DeviceIoControl(
                h.as_raw_handle() as ffi::HANDLE,
                FSCTL_SET_REPARSE_POINT,
                buf.as_ptr().cast::<c_void>(),
                buf.len() as u32,
                std::ptr::null_mut(),
                0,
                &mut got,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            let e = last_error();
            let _ = Self::delete(&h);
            return Err(e);
        }
        Ok(())
    }

    /// Creates a hard link `to` of the non-link entry `from`.
    pub fn link(&self, from: &StorePath, to: &StorePath) -> io::Result<()> {
        let h = self.open_entry(
            from,
            FILE_READ_ATTRIBUTES,
            FILE_OPEN,
            FILE_NON_DIRECTORY_FILE,
        )?;
        let (tdir, tname) = self.parent_and_name(to)?;
        nt_result(set_info(
            &h,
            FILE_LINK_INFORMATION,
            &rename_info(0, tdir.as_raw_handle(), &wide(tname)),
        ))
    }

    /// File system figures of the store.
    pub fn statfs(&self) -> io::Result<StoreStatfs> {
        let mut path = wide(self.path.as_os_str());
        path.push(0);
        let (mut avail, mut total, mut free) = (0u64, 0u64, 0u64);
        // SAFETY: `path` is NUL-terminated; the three out-parameters are valid u64s.
        if unsafe { ffi::GetDiskFreeSpaceExW(path.as_ptr(), &mut avail, &mut total, &mut free) }
            == 0
        {
            return Err(last_error());
        }
        let bs = 4096u64;
        Ok(StoreStatfs {
            blocks: total / bs,
            bfree: free / bs,
            bavail: avail / bs,
            files: 0,
            ffree: 0,
            bsize: bs as u32,
            namelen: 255,
            frsize: bs as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_in_another_case() {
        assert_eq!(swap_case("config.json").as_deref(), Some("Config.json"));
        assert_eq!(swap_case("01-Ä.bin").as_deref(), Some("01-ä.bin"));
        assert_eq!(swap_case("0123-45"), None);
        assert_eq!(
            case_pattern("Config-01.json").as_deref(),
            Some("??????-01.????")
        );
        assert_eq!(case_pattern("0123"), None);
    }

    /// The store's case is learnt once from a name it has: wine's drive is case-insensitive,
    /// so after the first hit a miss costs one query; a store taken as case-sensitive asks
    /// once more with the letters as `?` and finds the other spellings that way, still
    /// without listing.
    #[test]
    fn case_is_learnt_and_misses_never_list() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d").join("config.json"), b"x").unwrap();
        let store = WinStore::open_root(dir.path()).unwrap();
        let d = StorePath::parse("d").unwrap();
        calls::take();
        assert_eq!(
            store.find_names(&d, OsStr::new("config.json")).unwrap(),
            ["config.json"]
        );
        assert_eq!(
            calls::take().dir_query,
            2,
            "the hit and the one probe of the case"
        );
        assert!(
            store
                .find_names(&d, OsStr::new("nothing.json"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            calls::take().dir_query,
            1,
            "a miss on a case-insensitive store"
        );
        store.assume_case_sensitive();
        let found = store.find_names(&d, OsStr::new("other.json")).unwrap();
        let c = calls::take();
        assert_eq!((c.dir_query, c.read_dir), (2, 0), "{c:?}");
        // `?????.????` matches the names of that shape: here none of five letters.
        assert!(found.is_empty(), "{found:?}");
        let found = store.find_names(&d, OsStr::new("xxxxxx.yyyy")).unwrap();
        assert_eq!(
            found,
            ["config.json"],
            "same shape, for the caller to compare"
        );
    }

    #[test]
    fn dir_info_chain_is_parsed() {
        let entry = |name: &str, attrs: u32, next: u32| {
            let w: Vec<u16> = name.encode_utf16().collect();
            let mut e = vec![0u8; 104];
            e[0..4].copy_from_slice(&next.to_le_bytes());
            e[56..60].copy_from_slice(&attrs.to_le_bytes());
            e[60..64].copy_from_slice(&((w.len() * 2) as u32).to_le_bytes());
            e[96..104].copy_from_slice(&42u64.to_le_bytes());
            for c in w {
                e.extend_from_slice(&c.to_le_bytes());
            }
            e.resize(e.len().next_multiple_of(8), 0);
            e
        };
        let mut a = entry("config.json", FILE_ATTRIBUTE_REPARSE_POINT, 0);
        let next = a.len() as u32;
        a[0..4].copy_from_slice(&next.to_le_bytes());
        a.extend(entry("sub", FILE_ATTRIBUTE_DIRECTORY, 0));
        let got = parse_dir_info(&a);
        assert_eq!(got.len(), 2);
        assert_eq!(String::from_utf16_lossy(&got[0].0), "config.json");
        assert_eq!(got[0].1, FILE_ATTRIBUTE_REPARSE_POINT);
        assert_eq!(got[1].3, 42);
    }

    #[test]
    fn rename_info_layout() {
        let b = rename_info(3, 0x1234 as RawHandle, &[b'a' as u16, b'b' as u16]);
        assert_eq!(&b[0..4], &3u32.to_le_bytes());
        assert_eq!(&b[8..16], &0x1234u64.to_le_bytes());
        assert_eq!(&b[16..20], &4u32.to_le_bytes());
        assert_eq!(&b[20..24], &[b'a', 0, b'b', 0]);
    }

    fn sp(p: &str) -> StorePath {
        StorePath::parse(p).unwrap()
    }

    fn code(e: io::Error) -> i32 {
        e.raw_os_error().unwrap_or(-1)
    }

    /// The store operations on a local directory (NTFS on Windows, wine's Unix-backed drive
    /// under the project's check).
    #[test]
    fn store_operations_on_a_local_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/f"), b"hello").unwrap();
        std::fs::write(dir.path().join("a/x"), xsym::format(b"f").unwrap()).unwrap();
        let s = WinStore::open_root(dir.path()).unwrap();
        s.set_xsym(true);

        let m = s.lstat(&sp("a/f")).unwrap();
        assert_eq!((m.kind, m.size), (Kind::File, 5));
        assert_eq!(s.lstat(&sp("a")).unwrap().kind, Kind::Dir);
        assert_eq!(s.lstat(&StorePath::root()).unwrap().kind, Kind::Dir);
        assert_eq!(code(s.lstat(&sp("a/missing")).unwrap_err()), libc::ENOENT);
        assert_eq!(code(s.lstat(&sp("nodir/x")).unwrap_err()), libc::ENOENT);

        assert_eq!(s.readlink(&sp("a/x")).unwrap(), b"f");
        assert_eq!(code(s.readlink(&sp("a/f")).unwrap_err()), libc::EINVAL);
        assert_eq!(s.read_head(&sp("a/f"), 3).unwrap(), b"hel");

        let mut names: Vec<String> = s
            .read_dir(&sp("a"))
            .unwrap()
            .into_iter()
            .map(|e| e.name.to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["b", "f", "x"]);
        assert!(
            s.read_dir(&StorePath::root())
                .unwrap()
                .iter()
                .any(|e| e.name == "a")
        );

        let f = s.open(&sp("a/f"), OFlags::RDONLY, 0).unwrap();
        let mut buf = [0u8; 10];
        assert_eq!(FileExt::read_at(&f, &mut buf, 1).unwrap(), 4);
        assert_eq!(&buf[..4], b"ello");
        assert_eq!(FileExt::read_at(&f, &mut buf, 5).unwrap(), 0);
        assert_eq!(Meta::of_fd(&f).unwrap().ino, m.ino);
        drop(f);
        assert_eq!(
            code(s.open(&sp("a"), OFlags::RDONLY, 0).unwrap_err()),
            libc::EISDIR
        );

        let w = s
            .open(
                &sp("a/new"),
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL,
                0o644,
            )
            .unwrap();
        FileExt::write_all_at(&w, b"0123456789", 0).unwrap();
        drop(w);
        assert_eq!(
            code(
                s.open(
                    &sp("a/new"),
                    OFlags::RDWR | OFlags::CREATE | OFlags::EXCL,
                    0
                )
                .unwrap_err()
            ),
            libc::EEXIST
        );
        assert_eq!(
            std::fs::read(dir.path().join("a/new")).unwrap(),
            b"0123456789"
        );

        s.mkdir(&sp("a/d"), 0o755).unwrap();
        assert_eq!(code(s.mkdir(&sp("a/d"), 0o755).unwrap_err()), libc::EEXIST);
        s.rename(&sp("a/new"), &sp("a/d/moved"), 0).unwrap();
        assert!(dir.path().join("a/d/moved").exists());
        assert_eq!(
            code(
                s.rename(&sp("a/f"), &sp("a/d/moved"), libc::RENAME_NOREPLACE)
                    .unwrap_err()
            ),
            libc::EEXIST
        );
        s.rename(&sp("a/f"), &sp("a/d/moved"), 0).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("a/d/moved")).unwrap(),
            b"hello"
        );
        assert_eq!(code(s.rmdir(&sp("a/d")).unwrap_err()), libc::ENOTEMPTY);
        assert_eq!(code(s.unlink(&sp("a/d")).unwrap_err()), libc::EISDIR);
        s.unlink(&sp("a/d/moved")).unwrap();
        s.rmdir(&sp("a/d")).unwrap();
        assert!(!dir.path().join("a/d").exists());
        assert!(s.statfs().unwrap().blocks > 0);
    }

    #[test]
    fn oflags_match_the_crt() {
        assert_eq!(OFlags::WRONLY.0 as i32, libc::O_WRONLY);
        assert_eq!(OFlags::RDWR.0 as i32, libc::O_RDWR);
        assert_eq!(OFlags::APPEND.0 as i32, libc::O_APPEND);
        assert_eq!(OFlags::CREATE.0 as i32, libc::O_CREAT);
        assert_eq!(OFlags::TRUNC.0 as i32, libc::O_TRUNC);
        assert_eq!(OFlags::EXCL.0 as i32, libc::O_EXCL);
        assert_eq!(OFlags::SYNC.0 as i32, libc::O_SYNC);
        assert_eq!(OFlags::DSYNC.0 as i32, libc::O_DSYNC);
        for f in [
            OFlags::DIRECTORY,
            OFlags::PATH,
            OFlags::ATTRS,
            OFlags::NOFOLLOW,
        ] {
            assert_eq!(OFlags::from_bits_truncate(f.0), f);
        }
    }
}
