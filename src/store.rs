//! Confined access to the store: every operation names a [`StorePath`] and is carried out
//! relative to a directory file descriptor of the store root.
//!
//! Invariant: no call here follows a symlink. Paths are opened with `openat2`
//! (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`) where the kernel has it,
//! else component by component with `O_NOFOLLOW`; final components are acted on with the
//! `*at` calls on their parent's descriptor. A symlink swapped into the store between a
//! check and a use therefore fails the use (`ELOOP`) instead of reaching outside the store.
//!
//! The types here ([`Kind`], [`Meta`], [`RawEntry`], [`StoreStatfs`]) are shared by every
//! platform. On both, `Store` is the seam of `store::seam`: a handle on a [`StoreBackend`],
//! which is this module's `UnixStore` (on Unix) or `store::win`'s `WinStore` (on Windows:
//! the same operations over `NtCreateFile` relative opens with `FILE_OPEN_REPARSE_POINT`,
//! errors as errno values) when mounted, or the in-memory `store::model` (Linux) and the
//! fault injector `store::faulty` in tests.

use std::ffi::{OsStr, OsString};
#[cfg(unix)]
use std::fs::File;
use std::io;
#[cfg(unix)]
use std::os::fd::{AsFd, OwnedFd};
#[cfg(unix)]
use std::os::unix::ffi::OsStringExt;
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;
#[cfg(unix)]
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(unix)]
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
#[cfg(unix)]
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Open flags of [`Store::open`]: rustix's on Unix, a look-alike on Windows.
#[cfg(unix)]
pub use rustix::fs::OFlags;
#[cfg(unix)]
use rustix::fs::{AtFlags, FileType, Mode};

#[cfg(unix)]
use crate::path::StorePath;

/// The kind of a store entry, as `lstat` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed by this module).
    Symlink,
    /// A FIFO, socket or device: never shown by the view.
    Special,
}

/// Metadata of one store entry (not following links).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Entry kind.
    pub kind: Kind,
    /// Device of the store file system.
    pub dev: u64,
    /// Inode number in the store.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Permission bits (no file type bits).
    pub perm: u16,
    /// Hard link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Preferred I/O size.
    pub blksize: u32,
    /// Access time.
    pub atime: SystemTime,
    /// Modification time.
    pub mtime: SystemTime,
    /// Status change time.
    pub ctime: SystemTime,
    /// Birth time in nanoseconds since the epoch, 0 where the store does not tell. With the
    /// inode number it tells a file from a later one that got the same number (file systems
    /// reuse the numbers of deleted files at once).
    pub born: u64,
}

#[cfg(unix)]
impl Meta {
    /// Converts a raw `stat` (field types differ between platforms, hence the casts).
    #[allow(clippy::unnecessary_cast)]
    pub fn from_stat(st: &rustix::fs::Stat) -> Meta {
        let kind = match FileType::from_raw_mode(st.st_mode as _) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Special,
        };
        Meta {
            kind,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as u64,
            blocks: st.st_blocks as u64,
            perm: (st.st_mode & 0o7777) as u16,
            nlink: st.st_nlink as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            blksize: st.st_blksize as u32,
            atime: time(st.st_atime as i64, st.st_atime_nsec as i64),
            mtime: time(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: time(st.st_ctime as i64, st.st_ctime_nsec as i64),
            born: 0,
        }
    }

    /// Metadata of an open file.
    pub fn of_fd(fd: impl AsFd) -> io::Result<Meta> {
        #[cfg(target_os = "linux")]
        if let Some(m) = Meta::statx(fd.as_fd(), c"", AtFlags::EMPTY_PATH)? {
            return Ok(m);
        }
        Ok(Meta::from_stat(&rustix::fs::fstat(fd)?))
    }

    /// Metadata of the entry `name` in directory `dir`, not following a link.
    pub fn at(dir: impl AsFd, name: &OsStr) -> io::Result<Meta> {
        #[cfg(target_os = "linux")]
        if let Some(m) = Meta::statx(dir.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW)? {
            return Ok(m);
        }
        Ok(Meta::from_stat(&rustix::fs::statat(
            dir,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
        )?))
    }

    /// `statx`, which also gives the birth time; `None` where the kernel has no `statx`.
    #[cfg(target_os = "linux")]
    fn statx<P: rustix::path::Arg>(
        dir: std::os::fd::BorrowedFd<'_>,
        name: P,
        flags: AtFlags,
    ) -> io::Result<Option<Meta>> {
        use rustix::fs::StatxFlags;
        let x = match rustix::fs::statx(
            dir,
            name,
            flags,
            StatxFlags::BASIC_STATS | StatxFlags::BTIME,
        ) {
            Ok(x) => x,
            Err(rustix::io::Errno::NOSYS) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let kind = match FileType::from_raw_mode(u32::from(x.stx_mode)) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Special,
        };
        let ts = |t: &rustix::fs::StatxTimestamp| time(t.tv_sec, i64::from(t.tv_nsec));
        let born = if StatxFlags::from_bits_retain(x.stx_mask).contains(StatxFlags::BTIME) {
            u64::try_from(
                i128::from(x.stx_btime.tv_sec) * 1_000_000_000 + i128::from(x.stx_btime.tv_nsec),
            )
            .unwrap_or(0)
        } else {
            0
        };
        Ok(Some(Meta {
            kind,
            dev: rustix::fs::makedev(x.stx_dev_major, x.stx_dev_minor),
            ino: x.stx_ino,
            size: x.stx_size,
            blocks: x.stx_blocks,
            perm: x.stx_mode & 0o7777,
            nlink: x.stx_nlink,
            uid: x.stx_uid,
            gid: x.stx_gid,
            blksize: x.stx_blksize,
            atime: ts(&x.stx_atime),
            mtime: ts(&x.stx_mtime),
            ctime: ts(&x.stx_ctime),
            born,
        }))
    }
}

#[cfg(unix)]
fn time(secs: i64, nsec: i64) -> SystemTime {
    let nsec = nsec.clamp(0, 999_999_999) as u32;
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsec)
    } else {
        UNIX_EPOCH - Duration::new(secs.unsigned_abs(), 0) + Duration::new(0, nsec)
    }
}

/// One raw directory entry of the store.
#[derive(Clone, Debug)]
pub struct RawEntry {
    /// Entry name.
    pub name: OsString,
    /// Kind from `d_type`, or `None` when the file system does not say.
    pub kind: Option<Kind>,
    /// Store inode number from `d_ino`.
    pub ino: u64,
}

/// Space figures of the store file system.
#[derive(Clone, Copy, Debug)]
pub struct StoreStatfs {
    /// Total blocks (in `frsize` units).
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Blocks available to unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Block size.
    pub bsize: u32,
    /// Maximum name length.
    pub namelen: u32,
    /// Fragment size.
    pub frsize: u32,
}

/// An open store root on Unix: the real backend behind [`Store`] (see [`StoreBackend`]).
#[cfg(unix)]
#[derive(Debug)]
pub struct UnixStore {
    root: OwnedFd,
    aliases: Vec<PathBuf>,
    has_openat2: AtomicBool,
    /// Directory descriptors reused by `lstat`/`readlink` for at most `dir_ttl` (lookups of
    /// many names in one directory then cost one syscall each). Dropped on every rename and
    /// rmdir made through the store; changes by others are picked up within `dir_ttl`.
    dirs: Mutex<lru::LruCache<StorePath, (Arc<OwnedFd>, Instant)>>,
    dir_ttl: Mutex<Duration>,
    /// Whether XSym files are links (see [`Store::xsym_links`]).
    xsym: AtomicBool,
}

/// How many directory descriptors the lookup cache keeps.
#[cfg(unix)]
const DIR_CACHE: usize = 256;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The path does not exist.
    #[error("store {0} does not exist (create it, or point SOURCE/HF_HUB_CACHE at the hub cache)")]
    Missing(PathBuf),
    /// The path is not a directory.
    #[error("store {0} is not a directory")]
    NotDir(PathBuf),
    /// Any other error.
    #[error("cannot open store {0}: {1}")]
    Io(PathBuf, io::Error),
}

#[cfg(unix)]
impl UnixStore {
    /// Opens the store at `path` (which may itself be reached through symlinks: the user
    /// chose it).
    pub fn open_root(path: &Path) -> Result<UnixStore, OpenStoreError> {
        let file = match File::open(path) {
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
        let mut aliases = Vec::new();
        if let Ok(abs) = std::path::absolute(path) {
            aliases.push(abs);
        }
        if let Ok(canon) = std::fs::canonicalize(path)
            && !aliases.contains(&canon)
        {
            aliases.push(canon);
        }
        Ok(UnixStore {
            root: file.into(),
            aliases,
            has_openat2: AtomicBool::new(cfg!(target_os = "linux")),
            dirs: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(DIR_CACHE).unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            dir_ttl: Mutex::new(Duration::ZERO),
            xsym: AtomicBool::new(false),
        })
    }

    /// Treat XSym files outside `blobs/` as links (the `xsym` mount option, for stores whose
    /// own server writes links that way). Off by default: a file's bytes are Hub content
    /// that anyone can publish, never a link unless the store says so.
    pub fn set_xsym(&self, on: bool) {
        self.xsym.store(on, Ordering::Relaxed);
    }

    /// True if an XSym file at `p` is a link: only with the `xsym` option, never in `blobs/`.
    pub fn xsym_links(&self, p: &StorePath) -> bool {
        self.xsym.load(Ordering::Relaxed) && !p.in_blobs()
    }

    /// Absolute paths under which the store root is known (for absolute link targets).
    pub fn aliases(&self) -> &[PathBuf] {
        &self.aliases
    }

    /// Opens `p` with `flags` (plus `O_NOFOLLOW | O_CLOEXEC`), never following a link.
    ///
    /// Only regular files and directories are ever opened: the open itself is non-blocking
    /// (a FIFO or device swapped in under the name cannot stall the caller) and anything
    /// else is closed again and answered with `ENXIO`. `O_NONBLOCK` is cleared afterwards
    /// unless the caller asked for it. `O_PATH` opens (which open nothing) are exempt.
    pub fn open(&self, p: &StorePath, flags: OFlags, mode: u32) -> io::Result<OwnedFd> {
        if flags.contains(OFlags::PATH) {
            return self.open_raw(p, flags, mode);
        }
        let fd = self.open_raw(p, flags | OFlags::NONBLOCK, mode)?;
        let st = rustix::fs::fstat(&fd)?;
        match FileType::from_raw_mode(st.st_mode as _) {
            FileType::RegularFile | FileType::Directory => {}
            _ => return Err(io::Error::from_raw_os_error(libc::ENXIO)),
        }
        if !flags.contains(OFlags::NONBLOCK) {
            let fl = rustix::fs::fcntl_getfl(&fd)?;
            rustix::fs::fcntl_setfl(&fd, fl - OFlags::NONBLOCK)?;
        }
        Ok(fd)
    }

    /// [`UnixStore::open`] without the type check.
    fn open_raw(&self, p: &StorePath, flags: OFlags, mode: u32) -> io::Result<OwnedFd> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(mode as _);
        if p.is_root() {
            return Ok(rustix::fs::openat(&self.root, ".", flags, mode)?);
        }
        #[cfg(target_os = "linux")]
        if self.has_openat2.load(Ordering::Relaxed) {
            use rustix::fs::ResolveFlags;
            let how =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&self.root, p.as_rel(), flags, mode, how) {
                Err(rustix::io::Errno::NOSYS) => self.has_openat2.store(false, Ordering::Relaxed),
                // A rename race, or a path longer than PATH_MAX (each component is still
                // fine): take the component-by-component path.
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::NAMETOOLONG) => {}
                other => return Ok(other?),
            }
        }
        let parent = self.walk_dir(&p.parent())?;
        let name = p
            .file_name()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        Ok(rustix::fs::openat(&parent, name, flags, mode)?)
    }

    /// Opens a directory component by component with `O_NOFOLLOW` (the portable path).
    fn walk_dir(&self, p: &StorePath) -> io::Result<OwnedFd> {
        let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::PATH;
        let mut fd = rustix::fs::openat(&self.root, ".", flags, Mode::empty())?;
        for c in p.components() {
            fd = rustix::fs::openat(&fd, c, flags, Mode::empty())?;
        }
        Ok(fd)
    }

    /// A descriptor of the directory `p`, usable with the `*at` calls.
    pub fn dir_fd(&self, p: &StorePath) -> io::Result<OwnedFd> {
        self.open(p, OFlags::DIRECTORY | OFlags::PATH, 0)
    }

    /// The parent descriptor and final name of `p` (not the root).
    fn parent_and_name<'p>(&self, p: &'p StorePath) -> io::Result<(OwnedFd, &'p OsStr)> {
        let name = p
            .file_name()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBUSY))?;
        Ok((self.dir_fd(&p.parent())?, name))
    }

    /// How long `lstat`/`readlink` may reuse a directory descriptor (zero: never).
    pub fn set_dir_cache_ttl(&self, ttl: Duration) {
        *self.dir_ttl.lock().unwrap_or_else(|e| e.into_inner()) = ttl;
    }

    /// Forgets every cached directory descriptor (after a rename or rmdir).
    fn forget_dirs(&self) {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Like [`UnixStore::parent_and_name`], from the lookup cache when fresh enough.
    fn lookup_parent<'p>(&self, p: &'p StorePath) -> io::Result<(Arc<OwnedFd>, &'p OsStr)> {
        let name = p
            .file_name()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBUSY))?;
        let ttl = *self.dir_ttl.lock().unwrap_or_else(|e| e.into_inner());
        let parent = p.parent();
        if ttl.is_zero() {
            return Ok((Arc::new(self.dir_fd(&parent)?), name));
        }
        {
            let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((fd, at)) = dirs.get(&parent)
                && at.elapsed() < ttl
            {
                return Ok((fd.clone(), name));
            }
        }
        let fd = Arc::new(self.dir_fd(&parent)?);
        self.dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(parent, (fd.clone(), Instant::now()));
        Ok((fd, name))
    }

    /// `lstat` of `p`.
    pub fn lstat(&self, p: &StorePath) -> io::Result<Meta> {
        if p.is_root() {
            return Meta::of_fd(&self.root);
        }
        let (dir, name) = self.lookup_parent(p)?;
        Meta::at(&dir, name)
    }

    /// The raw text of the link at `p`: a symlink's text, or the target of an XSym file
    /// ([`crate::links::xsym`]); `EINVAL` for anything else.
    pub fn readlink(&self, p: &StorePath) -> io::Result<Vec<u8>> {
        let (dir, name) = self.lookup_parent(p)?;
        match rustix::fs::readlinkat(&dir, name, Vec::new()) {
            Ok(text) => Ok(text.into_bytes()),
            Err(rustix::io::Errno::INVAL) => {
                let meta = Meta::at(&dir, name)?;
                if meta.kind == Kind::File
                    && crate::links::xsym::may_be_xsym(meta.size)
                    && self.xsym_links(p)
                {
                    let head = self.read_head(p, crate::links::xsym::XSYM_SIZE as usize + 1)?;
                    if let Some(link) = crate::links::xsym::parse(&head) {
                        return Ok(link.text);
                    }
                }
                Err(io::Error::from_raw_os_error(libc::EINVAL))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Up to `max` first bytes of the regular file `p` (opened without following links).
    pub fn read_head(&self, p: &StorePath, max: usize) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let fd = self.open(p, OFlags::RDONLY | OFlags::NONBLOCK, 0)?;
        let mut buf = Vec::with_capacity(max);
        File::from(fd).take(max as u64).read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// Lists directory `p` (without `.` and `..`).
    pub fn read_dir(&self, p: &StorePath) -> io::Result<Vec<RawEntry>> {
        let fd = self.open(p, OFlags::DIRECTORY | OFlags::RDONLY, 0)?;
        let mut dir = rustix::fs::Dir::read_from(&fd)?;
        let mut out = Vec::new();
        while let Some(ent) = dir.read() {
            let ent = ent?;
            let name = ent.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let kind = match ent.file_type() {
                FileType::RegularFile => Some(Kind::File),
                FileType::Directory => Some(Kind::Dir),
                FileType::Symlink => Some(Kind::Symlink),
                FileType::Unknown => None,
                _ => Some(Kind::Special),
            };
            out.push(RawEntry {
                name: OsString::from_vec(name.to_vec()),
                kind,
                ino: ent.ino(),
            });
        }
        Ok(out)
    }

    /// Creates a directory.
    pub fn mkdir(&self, p: &StorePath, mode: u32) -> io::Result<()> {
        let (dir, name) = self.parent_and_name(p)?;
        Ok(rustix::fs::mkdirat(
            &dir,
            name,
            Mode::from_raw_mode(mode as _),
        )?)
    }

    /// Removes a non-directory entry (a file or a link itself).
    pub fn unlink(&self, p: &StorePath) -> io::Result<()> {
        let (dir, name) = self.parent_and_name(p)?;
        Ok(rustix::fs::unlinkat(&dir, name, AtFlags::empty())?)
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, p: &StorePath) -> io::Result<()> {
        self.forget_dirs();
        let (dir, name) = self.parent_and_name(p)?;
        Ok(rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR)?)
    }

    /// Renames `from` to `to`; `flags` are `renameat2` flags (`RENAME_NOREPLACE`, …).
    pub fn rename(&self, from: &StorePath, to: &StorePath, flags: u32) -> io::Result<()> {
        self.forget_dirs();
        let (fdir, fname) = self.parent_and_name(from)?;
        let (tdir, tname) = self.parent_and_name(to)?;
        if flags == 0 {
            return Ok(rustix::fs::renameat(&fdir, fname, &tdir, tname)?);
        }
        #[cfg(target_os = "linux")]
        {
            let flags = rustix::fs::RenameFlags::from_bits(flags)
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
            Ok(rustix::fs::renameat_with(
                &fdir, fname, &tdir, tname, flags,
            )?)
        }
        #[cfg(not(target_os = "linux"))]
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }

    /// Creates a symlink at `p` with the given text.
    pub fn symlink(&self, text: &Path, p: &StorePath) -> io::Result<()> {
        let (dir, name) = self.parent_and_name(p)?;
        Ok(rustix::fs::symlinkat(text, &dir, name)?)
    }

    /// Creates a hard link `to` of the non-link entry `from`.
    pub fn link(&self, from: &StorePath, to: &StorePath) -> io::Result<()> {
        let (fdir, fname) = self.parent_and_name(from)?;
        let (tdir, tname) = self.parent_and_name(to)?;
        Ok(rustix::fs::linkat(
            &fdir,
            fname,
            &tdir,
            tname,
            AtFlags::empty(),
        )?)
    }

    /// True if the store lies on a FUSE file system (sshfs, another hfcachefs, …).
    pub fn is_on_fuse(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
            // `f_type`'s integer type differs between architectures.
            #[allow(clippy::unnecessary_cast)]
            rustix::fs::fstatfs(&self.root).is_ok_and(|s| s.f_type as i64 == FUSE_SUPER_MAGIC)
        }
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// True if the store lies on a network file system (NFS, SMB, sshfs or another FUSE
    /// file system, Ceph, 9P), where every call is a round trip worth overlapping.
    pub fn is_remote(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            const REMOTE: [i64; 8] = [
                0x6573_5546, // FUSE
                0x6969,      // NFS
                0x517b,      // SMB
                0xfe53_4d42, // SMB2
                0xff53_4d42, // CIFS
                0x00c3_6400, // Ceph
                0x0102_1997, // 9P
                0x5346_414f, // AFS
            ];
            // `f_type`'s integer type differs between architectures.
            #[allow(clippy::unnecessary_cast)]
            rustix::fs::fstatfs(&self.root).is_ok_and(|s| REMOTE.contains(&(s.f_type as i64)))
        }
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// File system figures of the store.
    pub fn statfs(&self) -> io::Result<StoreStatfs> {
        let s = rustix::fs::fstatvfs(&self.root)?;
        Ok(StoreStatfs {
            blocks: s.f_blocks,
            bfree: s.f_bfree,
            bavail: s.f_bavail,
            files: s.f_files,
            ffree: s.f_ffree,
            bsize: s.f_bsize as u32,
            namelen: s.f_namemax as u32,
            frsize: s.f_frsize as u32,
        })
    }
}

/// Name bytes of an `OsStr` (for logging and hashing).
pub fn name_bytes(name: &OsStr) -> &[u8] {
    name.as_encoded_bytes()
}

pub mod faulty;
#[cfg(target_os = "linux")]
pub mod model;
mod seam;
pub use seam::{Store, StoreBackend, StoreFile};
#[cfg(windows)]
mod win;
#[cfg(windows)]
pub use win::{FileExt, OFlags, WinStore, calls, errno_error, last_status, lock_exclusive_now};

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn lstat_does_not_follow_and_open_refuses_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"hello").unwrap();
        symlink("f", dir.path().join("l")).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        symlink("/etc", dir.path().join("d/out")).unwrap();
        let store = Store::open_root(dir.path()).unwrap();
        let l = StorePath::parse("l").unwrap();
        assert_eq!(store.lstat(&l).unwrap().kind, Kind::Symlink);
        assert_eq!(store.readlink(&l).unwrap(), b"f");
        assert!(store.open(&l, OFlags::RDONLY, 0).is_err());
        // A link in the middle of a path is never crossed.
        let through = StorePath::parse("d/out/passwd").unwrap();
        assert!(store.lstat(&through).is_err());
        assert!(store.open(&through, OFlags::RDONLY, 0).is_err());
        assert_eq!(
            store.lstat(&StorePath::parse("f").unwrap()).unwrap().size,
            5
        );
    }

    #[test]
    fn missing_store_is_a_clear_error() {
        let err = Store::open_root(Path::new("/nonexistent/hfcachefs-store")).unwrap_err();
        assert!(matches!(err, OpenStoreError::Missing(_)));
        assert!(err.to_string().contains("does not exist"));
    }
}
