//! The store seam: [`StoreBackend`] is everything the view, the resolver and the hub rules
//! ask of a store, and [`Store`] is the handle they hold — a shared trait object, so the
//! real store (`UnixStore` on Unix, `WinStore` on Windows), the in-memory model
//! (`store::model`, Linux only) and the fault injector ([`super::faulty`]) are
//! interchangeable without making the view generic. One trait and one wrapper serve both
//! platforms: an open file is a [`StoreFile`] (`OwnedFd` on Unix, `std::fs::File` on
//! Windows), and the calls only the Windows view and adapter make (`find_names`,
//! `open_for_lock`, `open_for_delete`, `can_symlink`) are `#[cfg(windows)]` methods.
//!
//! Invariants every backend keeps (the view relies on them):
//! - no call follows a symlink: a link as the final component is acted on itself, a link in
//!   the middle of a path fails (`ELOOP`), as `openat2(RESOLVE_NO_SYMLINKS)` does;
//! - errors are errno values (`io::Error::from_raw_os_error`), the same ones the kernel
//!   gives for the same call on a local file system (on Windows too: the Windows backend
//!   translates NTSTATUS and Win32 errors, and keeps the status in `last_status`);
//! - files returned by [`StoreBackend::open`] are real open files whose metadata (`fstat`,
//!   `Meta::of_fd`) agrees with [`StoreBackend::lstat`] of the path they were opened from
//!   (device, inode, size, times), because the view checks file identity through them.
//!
//! Dynamic dispatch costs one indirect call per store call, nothing next to the syscall.

#[cfg(unix)]
use std::ffi::OsStr;
#[cfg(windows)]
use std::ffi::{OsStr, OsString};
use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[cfg(unix)]
use super::UnixStore;
#[cfg(windows)]
use super::WinStore;
use super::{Meta, OFlags, OpenStoreError, RawEntry, StoreStatfs};
use crate::path::StorePath;

/// An open store file as [`StoreBackend::open`] returns it: a descriptor on Unix.
#[cfg(unix)]
pub type StoreFile = std::os::fd::OwnedFd;
/// An open store file as [`StoreBackend::open`] returns it: a file (handle) on Windows.
#[cfg(windows)]
pub type StoreFile = std::fs::File;

/// What the core needs from a store. Method contracts are those of the real backend's
/// (`UnixStore`'s, `WinStore`'s) methods of the same name.
pub trait StoreBackend: Debug + Send + Sync {
    /// Absolute paths under which the store root is known (for absolute link targets).
    fn aliases(&self) -> &[PathBuf];
    /// Treat XSym files outside `blobs/` as links (the `xsym` mount option).
    fn set_xsym(&self, on: bool);
    /// True if an XSym file at `p` is a link.
    fn xsym_links(&self, p: &StorePath) -> bool;
    /// How long lookups may reuse a directory descriptor; backends without such a cache
    /// ignore it.
    fn set_dir_cache_ttl(&self, _ttl: Duration) {}
    /// Opens `p` (never following a link); only regular files and directories.
    fn open(&self, p: &StorePath, flags: OFlags, mode: u32) -> io::Result<StoreFile>;
    /// `lstat` of `p`.
    fn lstat(&self, p: &StorePath) -> io::Result<Meta>;
    /// The raw text of the link at `p` (a symlink, or an XSym file where those are links).
    fn readlink(&self, p: &StorePath) -> io::Result<Vec<u8>>;
    /// Up to `max` first bytes of the regular file `p`.
    fn read_head(&self, p: &StorePath, max: usize) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let fd = self.open(p, OFlags::RDONLY | OFlags::NONBLOCK, 0)?;
        let mut buf = Vec::with_capacity(max);
        std::fs::File::from(fd)
            .take(max as u64)
            .read_to_end(&mut buf)?;
        Ok(buf)
    }
    /// Lists directory `p` (without `.` and `..`).
    fn read_dir(&self, p: &StorePath) -> io::Result<Vec<RawEntry>>;
    /// Creates a directory.
    fn mkdir(&self, p: &StorePath, mode: u32) -> io::Result<()>;
    /// Removes a non-directory entry (a link itself, never its target).
    fn unlink(&self, p: &StorePath) -> io::Result<()>;
    /// Removes an empty directory.
    fn rmdir(&self, p: &StorePath) -> io::Result<()>;
    /// Renames with `renameat2` flags.
    fn rename(&self, from: &StorePath, to: &StorePath, flags: u32) -> io::Result<()>;
    /// Creates a symlink at `p` with the given text.
    fn symlink(&self, text: &Path, p: &StorePath) -> io::Result<()>;
    /// Creates a hard link `to` of the entry `from` (not following a link at `from`).
    fn link(&self, from: &StorePath, to: &StorePath) -> io::Result<()>;
    /// True if the store lies on a FUSE file system.
    fn is_on_fuse(&self) -> bool {
        false
    }
    /// True if the store lies on a network file system.
    fn is_remote(&self) -> bool {
        false
    }
    /// File system figures of the store.
    fn statfs(&self) -> io::Result<StoreStatfs>;
    /// The spellings in directory `dir` that may be `name` in another case (the caller
    /// compares); never a whole listing. The default, for a backend that matches names
    /// exactly: `name` itself if it exists.
    #[cfg(windows)]
    fn find_names(&self, dir: &StorePath, name: &OsStr) -> io::Result<Vec<OsString>> {
        let p = dir
            .join(name)
            .ok_or_else(|| io::Error::from_raw_os_error(crate::compat::libc::EINVAL))?;
        match self.lstat(&p) {
            Ok(_) => Ok(vec![name.to_os_string()]),
            Err(e) if e.raw_os_error() == Some(crate::compat::libc::ENOENT) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
    /// Opens the regular file `p` to hold the hub's lock on it (`lock_exclusive_now`).
    #[cfg(windows)]
    fn open_for_lock(&self, p: &StorePath) -> io::Result<StoreFile>;
    /// Opens `p` with delete access (not following it), as a delete or rename would.
    #[cfg(windows)]
    fn open_for_delete(&self, p: &StorePath) -> io::Result<StoreFile>;
    /// Checks that links can be created in directory `dir`; the default: they can.
    #[cfg(windows)]
    fn can_symlink(&self, _dir: &StorePath) -> io::Result<()> {
        Ok(())
    }
}

/// The methods both real backends (`UnixStore`, `WinStore`) implement by their inherent
/// methods of the same name (inside an `impl StoreBackend`).
macro_rules! forward_shared {
    ($t:ident) => {
        fn aliases(&self) -> &[PathBuf] {
            $t::aliases(self)
        }
        fn set_xsym(&self, on: bool) {
            $t::set_xsym(self, on)
        }
        fn xsym_links(&self, p: &StorePath) -> bool {
            $t::xsym_links(self, p)
        }
        fn open(&self, p: &StorePath, flags: OFlags, mode: u32) -> io::Result<StoreFile> {
            $t::open(self, p, flags, mode)
        }
        fn lstat(&self, p: &StorePath) -> io::Result<Meta> {
            $t::lstat(self, p)
        }
        fn readlink(&self, p: &StorePath) -> io::Result<Vec<u8>> {
            $t::readlink(self, p)
        }
        fn read_head(&self, p: &StorePath, max: usize) -> io::Result<Vec<u8>> {
            $t::read_head(self, p, max)
        }
        fn read_dir(&self, p: &StorePath) -> io::Result<Vec<RawEntry>> {
            $t::read_dir(self, p)
        }
        fn mkdir(&self, p: &StorePath, mode: u32) -> io::Result<()> {
            $t::mkdir(self, p, mode)
        }
        fn unlink(&self, p: &StorePath) -> io::Result<()> {
            $t::unlink(self, p)
        }
        fn rmdir(&self, p: &StorePath) -> io::Result<()> {
            $t::rmdir(self, p)
        }
        fn rename(&self, from: &StorePath, to: &StorePath, flags: u32) -> io::Result<()> {
            $t::rename(self, from, to, flags)
        }
        fn symlink(&self, text: &Path, p: &StorePath) -> io::Result<()> {
            $t::symlink(self, text, p)
        }
        fn link(&self, from: &StorePath, to: &StorePath) -> io::Result<()> {
            $t::link(self, from, to)
        }
        fn statfs(&self) -> io::Result<StoreStatfs> {
            $t::statfs(self)
        }
    };
}

#[cfg(unix)]
impl StoreBackend for UnixStore {
    forward_shared!(UnixStore);
    fn set_dir_cache_ttl(&self, ttl: Duration) {
        UnixStore::set_dir_cache_ttl(self, ttl)
    }
    fn is_on_fuse(&self) -> bool {
        UnixStore::is_on_fuse(self)
    }
    fn is_remote(&self) -> bool {
        UnixStore::is_remote(self)
    }
}

#[cfg(windows)]
impl StoreBackend for WinStore {
    forward_shared!(WinStore);
    fn find_names(&self, dir: &StorePath, name: &OsStr) -> io::Result<Vec<OsString>> {
        WinStore::find_names(self, dir, name)
    }
    fn open_for_lock(&self, p: &StorePath) -> io::Result<StoreFile> {
        WinStore::open_for_lock(self, p)
    }
    fn open_for_delete(&self, p: &StorePath) -> io::Result<StoreFile> {
        WinStore::open_for_delete(self, p)
    }
    fn can_symlink(&self, dir: &StorePath) -> io::Result<()> {
        WinStore::can_symlink(self, dir)
    }
}

/// The store the core holds: one backend, shared (a test keeps its own handle to the model
/// to change the store behind the view).
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<dyn StoreBackend>,
}

impl Store {
    /// The real store at `path` (see `UnixStore::open_root`, `WinStore::open_root`).
    pub fn open_root(path: &Path) -> Result<Store, OpenStoreError> {
        #[cfg(unix)]
        let real = UnixStore::open_root(path)?;
        #[cfg(windows)]
        let real = WinStore::open_root(path)?;
        Ok(Store::with_backend(Arc::new(real)))
    }

    /// A store over any backend (the model and fault stores of tests).
    pub fn with_backend(backend: Arc<dyn StoreBackend>) -> Store {
        Store { backend }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn StoreBackend> {
        &self.backend
    }

    /// See [`StoreBackend::set_xsym`].
    pub fn set_xsym(&self, on: bool) {
        self.backend.set_xsym(on)
    }
    /// See [`StoreBackend::xsym_links`].
    pub fn xsym_links(&self, p: &StorePath) -> bool {
        self.backend.xsym_links(p)
    }
    /// See [`StoreBackend::aliases`].
    pub fn aliases(&self) -> &[PathBuf] {
        self.backend.aliases()
    }
    /// See [`StoreBackend::open`].
    pub fn open(&self, p: &StorePath, flags: OFlags, mode: u32) -> io::Result<StoreFile> {
        self.backend.open(p, flags, mode)
    }
    /// A descriptor of the directory `p` (`O_PATH`).
    #[cfg(unix)]
    pub fn dir_fd(&self, p: &StorePath) -> io::Result<StoreFile> {
        self.backend.open(p, OFlags::DIRECTORY | OFlags::PATH, 0)
    }
    /// See [`StoreBackend::set_dir_cache_ttl`].
    pub fn set_dir_cache_ttl(&self, ttl: Duration) {
        self.backend.set_dir_cache_ttl(ttl)
    }
    /// See [`StoreBackend::lstat`].
    pub fn lstat(&self, p: &StorePath) -> io::Result<Meta> {
        self.backend.lstat(p)
    }
    /// See [`StoreBackend::readlink`].
    pub fn readlink(&self, p: &StorePath) -> io::Result<Vec<u8>> {
        self.backend.readlink(p)
    }
    /// See [`StoreBackend::read_head`].
    pub fn read_head(&self, p: &StorePath, max: usize) -> io::Result<Vec<u8>> {
        self.backend.read_head(p, max)
    }
    /// See [`StoreBackend::read_dir`].
    pub fn read_dir(&self, p: &StorePath) -> io::Result<Vec<RawEntry>> {
        self.backend.read_dir(p)
    }
    /// See [`StoreBackend::mkdir`].
    pub fn mkdir(&self, p: &StorePath, mode: u32) -> io::Result<()> {
        self.backend.mkdir(p, mode)
    }
    /// See [`StoreBackend::unlink`].
    pub fn unlink(&self, p: &StorePath) -> io::Result<()> {
        self.backend.unlink(p)
    }
    /// See [`StoreBackend::rmdir`].
    pub fn rmdir(&self, p: &StorePath) -> io::Result<()> {
        self.backend.rmdir(p)
    }
    /// See [`StoreBackend::rename`].
    pub fn rename(&self, from: &StorePath, to: &StorePath, flags: u32) -> io::Result<()> {
        self.backend.rename(from, to, flags)
    }
    /// See [`StoreBackend::symlink`].
    pub fn symlink(&self, text: &Path, p: &StorePath) -> io::Result<()> {
        self.backend.symlink(text, p)
    }
    /// See [`StoreBackend::link`].
    pub fn link(&self, from: &StorePath, to: &StorePath) -> io::Result<()> {
        self.backend.link(from, to)
    }
    /// See [`StoreBackend::is_on_fuse`].
    pub fn is_on_fuse(&self) -> bool {
        self.backend.is_on_fuse()
    }
    /// See [`StoreBackend::is_remote`].
    pub fn is_remote(&self) -> bool {
        self.backend.is_remote()
    }
    /// See [`StoreBackend::statfs`].
    pub fn statfs(&self) -> io::Result<StoreStatfs> {
        self.backend.statfs()
    }
    /// See [`StoreBackend::find_names`].
    #[cfg(windows)]
    pub fn find_names(&self, dir: &StorePath, name: &OsStr) -> io::Result<Vec<OsString>> {
        self.backend.find_names(dir, name)
    }
    /// See [`StoreBackend::open_for_lock`].
    #[cfg(windows)]
    pub fn open_for_lock(&self, p: &StorePath) -> io::Result<StoreFile> {
        self.backend.open_for_lock(p)
    }
    /// See [`StoreBackend::open_for_delete`].
    #[cfg(windows)]
    pub fn open_for_delete(&self, p: &StorePath) -> io::Result<StoreFile> {
        self.backend.open_for_delete(p)
    }
    /// See [`StoreBackend::can_symlink`].
    #[cfg(windows)]
    pub fn can_symlink(&self, dir: &StorePath) -> io::Result<()> {
        self.backend.can_symlink(dir)
    }
}

/// The final name of `p` as an `OsStr`, or `EBUSY` for the root (what `unlinkat` and friends
/// answer for it): shared by the backends that work on names.
#[cfg(target_os = "linux")]
pub(crate) fn final_name(p: &StorePath) -> io::Result<&OsStr> {
    p.file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EBUSY))
}
