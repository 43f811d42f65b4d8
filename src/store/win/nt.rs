//! NT primitives of the Windows store: the `windows-sys` declarations and constants it uses,
//! one-name opens relative to a directory handle (`NtCreateFile`, always with
//! `FILE_OPEN_REPARSE_POINT`), handle queries, `NtSetInformationFile` buffers, errno
//! translation, and the per-thread call counts and last NTSTATUS.
//!
//! Invariants: every open here acts on a single name relative to an open directory handle
//! (never a path with separators, never following a reparse point); a failed NT call sets
//! [`last_status`] and answers the errno of its status; a `std`/Win32 error is translated
//! exactly once ([`errno_error`]).

use super::*;

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

    pub(in crate::store::win) fn add(f: impl FnOnce(&mut Calls)) {
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

    pub(in crate::store::win) fn set(status: i32) {
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

/// A `std`/Win32 error as an errno-coded error (call once per error).
pub fn errno_error(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(win32_to_errno(code as u32)),
        None => e,
    }
}

pub(super) fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

pub(super) fn last_error() -> io::Error {
    errno_error(io::Error::last_os_error())
}

/// The Windows API the store calls: ntdll's file calls (`Nt*`, which take a directory
/// handle and a name relative to it, and return NTSTATUS) and kernel32's, as `windows-sys`
/// declares them.
pub(super) mod ffi {
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
pub(super) const FILE_READ_DATA: u32 = 0x1;
pub(super) const FILE_LIST_DIRECTORY: u32 = 0x1;
pub(super) const FILE_WRITE_DATA: u32 = 0x2;
pub(super) const FILE_APPEND_DATA: u32 = 0x4;
pub(super) const FILE_READ_EA: u32 = 0x8;
pub(super) const FILE_READ_ATTRIBUTES: u32 = 0x80;
pub(super) const FILE_WRITE_ATTRIBUTES: u32 = 0x100;
pub(super) const DELETE: u32 = 0x1_0000;
pub(super) const READ_CONTROL: u32 = 0x2_0000;
pub(super) const SYNCHRONIZE: u32 = 0x10_0000;
pub(super) const SHARE_ALL: u32 = 0x1 | 0x2 | 0x4;
pub(super) const FILE_OPEN: u32 = 1;
pub(super) const FILE_CREATE: u32 = 2;
pub(super) const FILE_OPEN_IF: u32 = 3;
pub(super) const FILE_OVERWRITE: u32 = 4;
pub(super) const FILE_OVERWRITE_IF: u32 = 5;
pub(super) const FILE_DIRECTORY_FILE: u32 = 0x1;
pub(super) const FILE_WRITE_THROUGH: u32 = 0x2;
pub(super) const FILE_SYNCHRONOUS_IO_NONALERT: u32 = 0x20;
pub(super) const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
pub(super) const FILE_OPEN_FOR_BACKUP_INTENT: u32 = 0x4000;
pub(super) const FILE_OPEN_REPARSE_POINT: u32 = 0x20_0000;
pub(super) const FILE_ATTRIBUTE_READONLY: u32 = 0x1;
pub(super) const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
pub(super) const FILE_ATTRIBUTE_NORMAL: u32 = 0x80;
pub(super) const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
pub(super) const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
// Information classes: NT's (`NtSetInformationFile`, `NtQueryDirectoryFile`) and Win32's
// (`GetFileInformationByHandleEx`).
pub(super) use windows_sys::Wdk::Storage::FileSystem as nt_fs;
pub(super) use windows_sys::Win32::Storage::FileSystem as win_fs;
pub(super) const FILE_RENAME_INFORMATION: nt_fs::FILE_INFORMATION_CLASS =
    nt_fs::FileRenameInformation;
pub(super) const FILE_LINK_INFORMATION: nt_fs::FILE_INFORMATION_CLASS = nt_fs::FileLinkInformation;
pub(super) const FILE_DISPOSITION_INFORMATION: nt_fs::FILE_INFORMATION_CLASS =
    nt_fs::FileDispositionInformation;
pub(super) const FILE_DISPOSITION_INFORMATION_EX: nt_fs::FILE_INFORMATION_CLASS =
    nt_fs::FileDispositionInformationEx;
pub(super) const FILE_RENAME_INFORMATION_EX: nt_fs::FILE_INFORMATION_CLASS =
    nt_fs::FileRenameInformationEx;
pub(super) const FILE_BASIC_INFORMATION: nt_fs::FILE_INFORMATION_CLASS =
    nt_fs::FileBasicInformation;
pub(super) const FILE_ATTRIBUTE_TAG_INFO: win_fs::FILE_INFO_BY_HANDLE_CLASS =
    win_fs::FileAttributeTagInfo;
pub(super) const STATUS_CANNOT_DELETE: i32 = 0xC000_0121u32 as i32;
pub(super) const FILE_ID_BOTH_DIRECTORY_INFO: win_fs::FILE_INFO_BY_HANDLE_CLASS =
    win_fs::FileIdBothDirectoryInfo;
pub(super) const FILE_ID_BOTH_DIRECTORY_RESTART_INFO: win_fs::FILE_INFO_BY_HANDLE_CLASS =
    win_fs::FileIdBothDirectoryRestartInfo;
pub(super) const FSCTL_GET_REPARSE_POINT: u32 = 0x0009_00A8;
pub(super) const FSCTL_SET_REPARSE_POINT: u32 = 0x0009_00A4;
pub(super) const ERROR_NO_MORE_FILES: i32 = 18;
/// The NT class of `NtQueryDirectoryFile`.
pub(super) const FILE_ID_BOTH_DIRECTORY_INFORMATION: nt_fs::FILE_INFORMATION_CLASS =
    nt_fs::FileIdBothDirectoryInformation;
pub(super) const STATUS_NO_SUCH_FILE: i32 = 0xC000_000Fu32 as i32;
pub(super) const STATUS_NO_MORE_FILES: i32 = 0x8000_0006u32 as i32;
pub(super) const STATUS_INVALID_PARAMETER: i32 = 0xC000_000Du32 as i32;
pub(super) const STATUS_INVALID_INFO_CLASS: i32 = 0xC000_0003u32 as i32;
pub(super) const STATUS_NOT_SUPPORTED: i32 = 0xC000_00BBu32 as i32;
pub(super) const STATUS_NOT_IMPLEMENTED: i32 = 0xC000_0002u32 as i32;

/// True if an `NtSetInformationFile` class is not understood (older servers and file systems
/// lack the `…Ex` classes): the caller falls back to the classic class.
pub(super) fn class_unsupported(st: i32) -> bool {
    matches!(
        st,
        STATUS_INVALID_PARAMETER
            | STATUS_INVALID_INFO_CLASS
            | STATUS_NOT_SUPPORTED
            | STATUS_NOT_IMPLEMENTED
    )
}

pub(super) fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().collect()
}

pub(super) fn raw(h: &impl AsRawHandle) -> ffi::HANDLE {
    h.as_raw_handle() as ffi::HANDLE
}

/// One `NtCreateFile` of the single name `name` relative to the directory `dir`.
pub(super) fn nt_open(
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
pub(super) fn nt_reopen(dir: RawHandle, access: u32, options: u32) -> io::Result<OwnedHandle> {
    nt_open_wide(dir, Vec::new(), access, FILE_OPEN, options)
}

pub(super) fn nt_open_wide(
    dir: RawHandle,
    w: Vec<u16>,
    access: u32,
    disposition: u32,
    options: u32,
) -> io::Result<OwnedHandle> {
    nt_open_shared(dir, w, access, disposition, options, SHARE_ALL)
}

/// [`nt_open_wide`] with the share access given (every other open shares everything).
pub(super) fn nt_open_shared(
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

pub(super) fn by_handle(h: &impl AsRawHandle) -> io::Result<ffi::BY_HANDLE_FILE_INFORMATION> {
    let mut info = ffi::BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: `info` is a valid, writable BY_HANDLE_FILE_INFORMATION; the handle is open.
    if unsafe { ffi::GetFileInformationByHandle(raw(h), &mut info) } == 0 {
        return Err(last_error());
    }
    Ok(info)
}

pub(super) fn final_path(h: &impl AsRawHandle) -> Option<Vec<u16>> {
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

/// Builds a `FILE_RENAME_INFORMATION`/`FILE_LINK_INFORMATION` buffer (64-bit layout:
/// `u32` flags or `BOOLEAN` at 0, root handle at 8, name length at 16, name at 20).
pub(super) fn rename_info(flags: u32, root: RawHandle, name: &[u16]) -> Vec<u8> {
    let mut b = vec![0u8; 20 + name.len() * 2 + 2];
    b[0..4].copy_from_slice(&flags.to_le_bytes());
    b[8..16].copy_from_slice(&(root as usize as u64).to_le_bytes());
    b[16..20].copy_from_slice(&((name.len() * 2) as u32).to_le_bytes());
    for (i, c) in name.iter().enumerate() {
        b[20 + 2 * i..22 + 2 * i].copy_from_slice(&c.to_le_bytes());
    }
    b
}

pub(super) fn set_info(
    h: &impl AsRawHandle,
    class: nt_fs::FILE_INFORMATION_CLASS,
    info: &[u8],
) -> i32 {
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

pub(super) fn nt_result(st: i32) -> io::Result<()> {
    if st < 0 {
        log::debug!("store: NTSTATUS {:#010x}", st as u32);
        last_status::set(st);
        Err(errno(nt_to_errno(st)))
    } else {
        Ok(())
    }
}
