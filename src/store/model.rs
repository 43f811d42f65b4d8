//! An in-memory store for tests: a tree of directories, regular files and symlinks with
//! inode numbers and hard links, implementing [`StoreBackend`] so the whole core runs over it
//! without a disk, and so a test can change the store behind the view by calling the same
//! methods on its own handle.
//!
//! Each regular file is a `memfd`: [`StoreBackend::open`] reopens it through
//! `/proc/self/fd/N`, which gives a new open file description on the same inode, exactly
//! as opening a path does (own offset, own OFD locks, `O_TRUNC`/`O_APPEND` honoured). So
//! the view's descriptor-based code (reads, writes, `fstat` identity checks, locks,
//! `ftruncate`, `futimens`) runs unchanged, and an open descriptor outlives the file's last
//! name as on a real file system.
//!
//! Invariants:
//! - a file's [`Meta`] is its memfd's `fstat` (device, inode, size, mode, times) with the
//!   model's link count, so path and descriptor agree; directories and symlinks get inode
//!   numbers from [`SYNTHETIC_INO`] up, on the memfds' device, which no memfd reaches;
//! - no call follows a link: a link as the final component is acted on itself, a link in the
//!   middle of a path is `ELOOP`; errors are the errno values Linux gives for the same call;
//! - a directory's modification and change times move on every entry added or removed (the
//!   view's shared listings rely on it);
//! - directories and symlinks cannot be opened (`EOPNOTSUPP`): the view opens them only to
//!   give new entries to a non-root caller and to probe lock support at mount.
//! - the tree lock is held for the duration of one call, never across calls.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use rustix::fs::{MemfdFlags, Mode};

use super::seam::{StoreBackend, final_name};
use super::{Kind, Meta, OFlags, RawEntry, StoreStatfs};
use crate::path::StorePath;

/// Inode numbers of model directories and symlinks start here (memfd inode numbers are
/// 32-bit counters of the kernel's internal tmpfs).
pub const SYNTHETIC_INO: u64 = 1 << 48;

/// The id of the root directory node.
const ROOT: u64 = 0;

#[derive(Debug)]
enum Body {
    Dir(BTreeMap<OsString, u64>),
    File(Arc<OwnedFd>),
    Link(Vec<u8>),
}

#[derive(Debug)]
struct Node {
    body: Body,
    /// Names that lead to this node (hard links).
    links: u32,
    /// Permission bits of directories and links (files keep theirs in the memfd).
    perm: u16,
    mtime: SystemTime,
    ctime: SystemTime,
}

#[derive(Debug)]
struct Tree {
    nodes: HashMap<u64, Node>,
    next: u64,
}

/// The in-memory store (see the module header).
#[derive(Debug)]
pub struct ModelStore {
    tree: Mutex<Tree>,
    aliases: Vec<PathBuf>,
    xsym: AtomicBool,
    /// The device of memfds, shared by every model entry.
    dev: u64,
}

fn err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl ModelStore {
    /// An empty store whose root is known as `/model-store` (for absolute link texts).
    pub fn new() -> io::Result<ModelStore> {
        let probe = rustix::fs::memfd_create("hfcachefs-model-probe", MemfdFlags::CLOEXEC)?;
        let dev = Meta::of_fd(&probe)?.dev;
        let now = SystemTime::now();
        let root = Node {
            body: Body::Dir(BTreeMap::new()),
            links: 2,
            perm: 0o755,
            mtime: now,
            ctime: now,
        };
        Ok(ModelStore {
            tree: Mutex::new(Tree {
                nodes: HashMap::from([(ROOT, root)]),
                next: ROOT + 1,
            }),
            aliases: vec![PathBuf::from("/model-store")],
            xsym: AtomicBool::new(false),
            dev,
        })
    }

    fn tree(&self) -> MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a regular file at `p` (created or truncated): a test's way to put content in
    /// the store or change it behind the view.
    pub fn put_file(&self, p: &StorePath, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let fd = self.open(p, OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC, 0o644)?;
        std::fs::File::from(fd).write_all(bytes)
    }

    /// Creates `p` and its missing ancestors as directories.
    pub fn mkdir_all(&self, p: &StorePath) -> io::Result<()> {
        let mut at = StorePath::root();
        for c in p.components() {
            at = at.join(c).ok_or_else(|| err(libc::EINVAL))?;
            match self.mkdir(&at, 0o755) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                other => other?,
            }
        }
        Ok(())
    }

    fn meta_of(&self, node: &Node, id: u64) -> io::Result<Meta> {
        let base = |kind, size| Meta {
            kind,
            dev: self.dev,
            ino: SYNTHETIC_INO + id,
            size,
            blocks: size.div_ceil(512),
            perm: node.perm,
            nlink: node.links,
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            blksize: 4096,
            atime: node.mtime,
            mtime: node.mtime,
            ctime: node.ctime,
            born: 0,
        };
        Ok(match &node.body {
            Body::Dir(_) => base(Kind::Dir, 4096),
            Body::Link(text) => base(Kind::Symlink, text.len() as u64),
            Body::File(fd) => Meta {
                nlink: node.links,
                ..Meta::of_fd(&**fd)?
            },
        })
    }

    /// An XSym link's text where the store counts XSym files as links.
    fn xsym_text(&self, p: &StorePath, fd: &OwnedFd) -> Option<Vec<u8>> {
        let meta = Meta::of_fd(fd).ok()?;
        if !(crate::links::xsym::may_be_xsym(meta.size) && self.xsym_links(p)) {
            return None;
        }
        let head = self
            .read_head(p, crate::links::xsym::XSYM_SIZE as usize + 1)
            .ok()?;
        crate::links::xsym::parse(&head).map(|l| l.text)
    }
}

/// Reopens a memfd with `flags`: a new open file description of the same inode.
fn reopen(fd: &OwnedFd, flags: OFlags) -> io::Result<OwnedFd> {
    // The magic link must be followed, and the file exists already.
    let flags = (flags - OFlags::NOFOLLOW - OFlags::CREATE - OFlags::EXCL) | OFlags::CLOEXEC;
    let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(rustix::fs::open(proc, flags, Mode::empty())?)
}

impl Tree {
    fn node(&self, id: u64) -> io::Result<&Node> {
        self.nodes.get(&id).ok_or_else(|| err(libc::EIO))
    }

    fn entries(&self, id: u64) -> io::Result<&BTreeMap<OsString, u64>> {
        match &self.node(id)?.body {
            Body::Dir(e) => Ok(e),
            Body::Link(_) => Err(err(libc::ELOOP)),
            Body::File(_) => Err(err(libc::ENOTDIR)),
        }
    }

    fn entries_mut(&mut self, id: u64) -> io::Result<&mut BTreeMap<OsString, u64>> {
        let now = SystemTime::now();
        let node = self.nodes.get_mut(&id).ok_or_else(|| err(libc::EIO))?;
        node.mtime = now;
        node.ctime = now;
        match &mut node.body {
            Body::Dir(e) => Ok(e),
            _ => Err(err(libc::ENOTDIR)),
        }
    }

    /// The node at `p`, crossing directories only.
    fn walk(&self, p: &StorePath) -> io::Result<u64> {
        let mut id = ROOT;
        for c in p.components() {
            id = *self.entries(id)?.get(c).ok_or_else(|| err(libc::ENOENT))?;
        }
        Ok(id)
    }

    /// The parent directory of `p` and the entry there, if any.
    fn parent<'p>(&self, p: &'p StorePath) -> io::Result<(u64, &'p OsStr, Option<u64>)> {
        let name = final_name(p)?;
        let dir = self.walk(&p.parent())?;
        let child = self.entries(dir)?.get(name).copied();
        Ok((dir, name, child))
    }

    fn add(&mut self, body: Body, perm: u16) -> u64 {
        let now = SystemTime::now();
        let id = self.next;
        self.next += 1;
        let links = if matches!(body, Body::Dir(_)) { 2 } else { 1 };
        self.nodes.insert(
            id,
            Node {
                body,
                links,
                perm,
                mtime: now,
                ctime: now,
            },
        );
        id
    }

    /// Drops one name of `id`; the node goes with its last name (open memfds live on).
    fn unref(&mut self, id: u64) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.ctime = SystemTime::now();
            n.links = n.links.saturating_sub(1);
            if n.links == 0 || matches!(n.body, Body::Dir(_)) {
                self.nodes.remove(&id);
            }
        }
    }

    fn is_dir(&self, id: u64) -> bool {
        matches!(self.nodes.get(&id).map(|n| &n.body), Some(Body::Dir(_)))
    }
}

impl StoreBackend for ModelStore {
    fn aliases(&self) -> &[PathBuf] {
        &self.aliases
    }

    fn set_xsym(&self, on: bool) {
        self.xsym.store(on, Ordering::Relaxed);
    }

    fn xsym_links(&self, p: &StorePath) -> bool {
        self.xsym.load(Ordering::Relaxed) && !p.in_blobs()
    }

    fn open(&self, p: &StorePath, flags: OFlags, mode: u32) -> io::Result<OwnedFd> {
        let mut t = self.tree();
        let existing = if p.is_root() {
            Some(ROOT)
        } else {
            t.parent(p)?.2
        };
        let id = match existing {
            Some(_) if flags.contains(OFlags::CREATE | OFlags::EXCL) => {
                return Err(err(libc::EEXIST));
            }
            Some(id) => id,
            None if flags.contains(OFlags::CREATE) => {
                let (dir, name, _) = t.parent(p)?;
                let name = name.to_os_string();
                let fd = rustix::fs::memfd_create("hfcachefs-model", MemfdFlags::CLOEXEC)?;
                rustix::fs::fchmod(&fd, Mode::from_raw_mode((mode & 0o7777) as _))?;
                let id = t.add(Body::File(Arc::new(fd)), 0);
                t.entries_mut(dir)?.insert(name, id);
                id
            }
            None => return Err(err(libc::ENOENT)),
        };
        match &t.node(id)?.body {
            Body::File(_) if flags.contains(OFlags::DIRECTORY) => Err(err(libc::ENOTDIR)),
            Body::File(fd) => reopen(fd, flags),
            Body::Link(_) => Err(err(libc::ELOOP)),
            Body::Dir(_) if flags.intersects(OFlags::WRONLY | OFlags::RDWR | OFlags::TRUNC) => {
                Err(err(libc::EISDIR))
            }
            Body::Dir(_) => Err(err(libc::EOPNOTSUPP)),
        }
    }

    fn lstat(&self, p: &StorePath) -> io::Result<Meta> {
        let t = self.tree();
        let id = t.walk(p)?;
        self.meta_of(t.node(id)?, id)
    }

    fn readlink(&self, p: &StorePath) -> io::Result<Vec<u8>> {
        let file = {
            let t = self.tree();
            let id = t.walk(p)?;
            match &t.node(id)?.body {
                Body::Link(text) => return Ok(text.clone()),
                Body::File(fd) => fd.clone(),
                Body::Dir(_) => return Err(err(libc::EINVAL)),
            }
        };
        self.xsym_text(p, &file).ok_or_else(|| err(libc::EINVAL))
    }

    fn read_dir(&self, p: &StorePath) -> io::Result<Vec<RawEntry>> {
        let t = self.tree();
        let dir = t.walk(p)?;
        let mut out = Vec::new();
        for (name, &id) in t.entries(dir)? {
            let meta = self.meta_of(t.node(id)?, id)?;
            out.push(RawEntry {
                name: name.clone(),
                kind: Some(meta.kind),
                ino: meta.ino,
            });
        }
        Ok(out)
    }

    fn mkdir(&self, p: &StorePath, mode: u32) -> io::Result<()> {
        let mut t = self.tree();
        let (dir, name, child) = t.parent(p)?;
        if child.is_some() {
            return Err(err(libc::EEXIST));
        }
        let id = t.add(Body::Dir(BTreeMap::new()), (mode & 0o7777) as u16);
        t.entries_mut(dir)?.insert(name.to_os_string(), id);
        Ok(())
    }

    fn unlink(&self, p: &StorePath) -> io::Result<()> {
        let mut t = self.tree();
        let (dir, name, child) = t.parent(p)?;
        let id = child.ok_or_else(|| err(libc::ENOENT))?;
        if t.is_dir(id) {
            return Err(err(libc::EISDIR));
        }
        t.entries_mut(dir)?.remove(name);
        t.unref(id);
        Ok(())
    }

    fn rmdir(&self, p: &StorePath) -> io::Result<()> {
        let mut t = self.tree();
        let (dir, name, child) = t.parent(p)?;
        let id = child.ok_or_else(|| err(libc::ENOENT))?;
        if !t.is_dir(id) {
            return Err(err(libc::ENOTDIR));
        }
        if !t.entries(id)?.is_empty() {
            return Err(err(libc::ENOTEMPTY));
        }
        t.entries_mut(dir)?.remove(name);
        t.unref(id);
        Ok(())
    }

    fn rename(&self, from: &StorePath, to: &StorePath, flags: u32) -> io::Result<()> {
        if flags & !libc::RENAME_NOREPLACE != 0 {
            return Err(err(libc::EINVAL));
        }
        let mut t = self.tree();
        let (fdir, fname, src) = t.parent(from)?;
        let (tdir, tname, dst) = t.parent(to)?;
        let src = src.ok_or_else(|| err(libc::ENOENT))?;
        if t.is_dir(src) && to != from && to.starts_with(from) {
            return Err(err(libc::EINVAL));
        }
        if let Some(dst) = dst {
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(err(libc::EEXIST));
            }
            if dst == src {
                return Ok(());
            }
            match (t.is_dir(src), t.is_dir(dst)) {
                (true, false) => return Err(err(libc::ENOTDIR)),
                (false, true) => return Err(err(libc::EISDIR)),
                (true, true) if !t.entries(dst)?.is_empty() => {
                    return Err(err(libc::ENOTEMPTY));
                }
                _ => {}
            }
            t.unref(dst);
        }
        t.entries_mut(fdir)?.remove(fname);
        t.entries_mut(tdir)?.insert(tname.to_os_string(), src);
        Ok(())
    }

    fn symlink(&self, text: &Path, p: &StorePath) -> io::Result<()> {
        let mut t = self.tree();
        let (dir, name, child) = t.parent(p)?;
        if child.is_some() {
            return Err(err(libc::EEXIST));
        }
        let id = t.add(Body::Link(text.as_os_str().as_bytes().to_vec()), 0o777);
        t.entries_mut(dir)?.insert(name.to_os_string(), id);
        Ok(())
    }

    fn link(&self, from: &StorePath, to: &StorePath) -> io::Result<()> {
        let mut t = self.tree();
        let (_, _, src) = t.parent(from)?;
        let src = src.ok_or_else(|| err(libc::ENOENT))?;
        if t.is_dir(src) {
            return Err(err(libc::EPERM));
        }
        let (tdir, tname, dst) = t.parent(to)?;
        if dst.is_some() {
            return Err(err(libc::EEXIST));
        }
        t.entries_mut(tdir)?.insert(tname.to_os_string(), src);
        if let Some(n) = t.nodes.get_mut(&src) {
            n.links += 1;
            n.ctime = SystemTime::now();
        }
        Ok(())
    }

    fn statfs(&self) -> io::Result<StoreStatfs> {
        Ok(StoreStatfs {
            blocks: 1 << 20,
            bfree: 1 << 19,
            bavail: 1 << 19,
            files: 1 << 16,
            ffree: 1 << 15,
            bsize: 4096,
            namelen: 255,
            frsize: 4096,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn sp(p: &str) -> StorePath {
        StorePath::parse(p).unwrap()
    }

    fn errno(r: io::Result<impl std::fmt::Debug>) -> i32 {
        r.unwrap_err().raw_os_error().unwrap()
    }

    #[test]
    fn opens_are_new_descriptions_of_one_inode_that_agree_with_lstat() {
        let m = ModelStore::new().unwrap();
        m.mkdir_all(&sp("d")).unwrap();
        m.put_file(&sp("d/f"), b"hello").unwrap();
        let mut a = std::fs::File::from(m.open(&sp("d/f"), OFlags::RDONLY, 0).unwrap());
        let mut b = std::fs::File::from(m.open(&sp("d/f"), OFlags::RDWR, 0).unwrap());
        let mut two = [0u8; 2];
        a.read_exact(&mut two).unwrap();
        // Own offsets: `b` starts at 0 although `a` moved.
        b.write_all(b"J").unwrap();
        let mut rest = String::new();
        a.read_to_string(&mut rest).unwrap();
        assert_eq!((&two, rest.as_str()), (b"he", "llo"));
        let meta = m.lstat(&sp("d/f")).unwrap();
        let fd_meta = Meta::of_fd(&a).unwrap();
        assert_eq!(
            (meta.dev, meta.ino, meta.size),
            (fd_meta.dev, fd_meta.ino, 5)
        );
        assert_eq!(m.read_head(&sp("d/f"), 10).unwrap(), b"Jello");
    }

    #[test]
    fn hard_links_share_the_inode_and_an_open_file_outlives_its_names() {
        let m = ModelStore::new().unwrap();
        m.put_file(&sp("f"), b"data").unwrap();
        m.link(&sp("f"), &sp("g")).unwrap();
        assert_eq!(m.lstat(&sp("g")).unwrap().nlink, 2);
        assert_eq!(
            m.lstat(&sp("f")).unwrap().ino,
            m.lstat(&sp("g")).unwrap().ino
        );
        let open = std::fs::File::from(m.open(&sp("f"), OFlags::RDONLY, 0).unwrap());
        m.unlink(&sp("f")).unwrap();
        assert_eq!(m.lstat(&sp("g")).unwrap().nlink, 1);
        m.unlink(&sp("g")).unwrap();
        let mut s = String::new();
        (&open).read_to_string(&mut s).unwrap();
        assert_eq!(s, "data");
        assert!(m.read_dir(&StorePath::root()).unwrap().is_empty());
    }

    #[test]
    fn no_link_is_followed() {
        let m = ModelStore::new().unwrap();
        m.mkdir_all(&sp("d")).unwrap();
        m.put_file(&sp("d/f"), b"x").unwrap();
        m.symlink(Path::new("d"), &sp("l")).unwrap();
        assert_eq!(m.lstat(&sp("l")).unwrap().kind, Kind::Symlink);
        assert_eq!(m.readlink(&sp("l")).unwrap(), b"d");
        assert_eq!(errno(m.open(&sp("l"), OFlags::RDONLY, 0)), libc::ELOOP);
        assert_eq!(errno(m.lstat(&sp("l/f"))), libc::ELOOP);
        assert_eq!(errno(m.readlink(&sp("d/f"))), libc::EINVAL);
    }

    #[test]
    fn errors_are_the_kernels() {
        let m = ModelStore::new().unwrap();
        m.mkdir_all(&sp("d/e")).unwrap();
        m.mkdir_all(&sp("empty")).unwrap();
        m.put_file(&sp("f"), b"x").unwrap();
        m.put_file(&sp("d/e/g"), b"y").unwrap();
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        assert_eq!(errno(m.open(&sp("f"), flags, 0o644)), libc::EEXIST);
        assert_eq!(errno(m.open(&sp("f/x"), flags, 0o644)), libc::ENOTDIR);
        assert_eq!(errno(m.open(&sp("d"), OFlags::WRONLY, 0)), libc::EISDIR);
        assert_eq!(errno(m.mkdir(&sp("f"), 0o755)), libc::EEXIST);
        assert_eq!(errno(m.unlink(&sp("d"))), libc::EISDIR);
        assert_eq!(errno(m.rmdir(&sp("f"))), libc::ENOTDIR);
        assert_eq!(errno(m.rmdir(&sp("d"))), libc::ENOTEMPTY);
        assert_eq!(errno(m.rename(&sp("f"), &sp("d"), 0)), libc::EISDIR);
        assert_eq!(errno(m.rename(&sp("d"), &sp("f"), 0)), libc::ENOTDIR);
        assert_eq!(errno(m.rename(&sp("empty"), &sp("d"), 0)), libc::ENOTEMPTY);
        assert_eq!(errno(m.rename(&sp("d"), &sp("d/e/x"), 0)), libc::EINVAL);
        let noreplace = libc::RENAME_NOREPLACE;
        assert_eq!(
            errno(m.rename(&sp("f"), &sp("d/e/g"), noreplace)),
            libc::EEXIST
        );
        assert_eq!(errno(m.link(&sp("d"), &sp("x"))), libc::EPERM);
        m.rename(&sp("f"), &sp("d/e/g"), 0).unwrap();
        assert_eq!(m.read_head(&sp("d/e/g"), 8).unwrap(), b"x");
        assert_eq!(errno(m.lstat(&sp("f"))), libc::ENOENT);
    }
}
