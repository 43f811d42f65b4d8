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
//!
//! [`WinStore`] is the backend behind `Store` on Windows (`store::seam`). Here: opening the
//! root, walking paths, `open`/`lstat`/`read_head`/`statfs`; the rest lives in submodules:
//! `nt` (NT declarations, one-name opens, handle queries, errno translation, call counts,
//! last status), `flags` (open flags, positional I/O), `meta` (metadata of a handle),
//! `symlinks` (reparse points, link texts, making links), `case` (spellings in another
//! case), `listing` (whole-directory listings), `change` (mkdir, delete, rename) and `locks`
//! (the hub's lock).

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

mod case;
mod change;
mod flags;
mod listing;
mod locks;
mod meta;
mod nt;
mod symlinks;
#[cfg(test)]
mod tests;

pub use flags::{FileExt, OFlags};
pub use locks::lock_exclusive_now;
pub use nt::{calls, errno_error, last_status};

use case::*;
use listing::*;
use nt::*;
use symlinks::*;

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
    pub(super) fn walk_dir(&self, p: &StorePath) -> io::Result<OwnedHandle> {
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
    pub(super) fn parent_and_name<'p>(
        &self,
        p: &'p StorePath,
    ) -> io::Result<(OwnedHandle, &'p OsStr)> {
        let name = p.file_name().ok_or_else(|| errno(libc::EBUSY))?;
        Ok((self.walk_dir(&p.parent())?, name))
    }

    /// Opens the final component of `p` as is (never following it).
    pub(super) fn open_entry(
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
