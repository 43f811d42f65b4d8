//! The cache view: the platform-neutral filesystem core. One method per operation, each
//! returning the core's own types; the FUSE and WinFsp adapters only translate.
//!
//! What the view shows (see `docs/SEMANTICS.md`): directories and regular files of the store
//! as they are; a symlink whose target resolves (by [`crate::resolve`], confined to the
//! store) to a regular file or directory, as that file or directory; nothing else. Odd
//! entries (links that escape, dangle or loop; FIFOs, sockets, devices) are hidden: lookups
//! answer "not found", listings skip them, and each is logged once at warn level.
//!
//! Invariants: the inode table lock is never held across store I/O; no request path
//! unwraps; every store access goes through [`Store`], which follows no link.

pub mod access;
mod attr;
mod copies;
mod dir;
mod handles;
pub mod ids;
mod keep;
#[cfg(unix)]
mod locks;
#[cfg(windows)]
mod win;
mod write;

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use attr::{Attr, AttrKind, Entry, SetAttr, TimeSet};
pub use dir::DirEntry;
use handles::Handles;
#[cfg(unix)]
pub use handles::close_dup;
pub use handles::{FileHandle, Opened};
pub use ids::{AccessMode, Fh, Ino, LockOwner, OpenFlags};
#[cfg(unix)]
use locks::LockFds;
#[cfg(unix)]
pub use locks::{LockSpec, LockType};
#[cfg(windows)]
use win::LockFds;

#[cfg(windows)]
use crate::compat::libc;

use crate::error::{FsError, FsResult};
use crate::inode::{InodeTable, Key, Node};
use crate::path::StorePath;
use crate::resolve::{LinkSource, Odd, Resolver};
use crate::store::{Kind, Meta, Store, StoreStatfs};

/// How the view behaves; built from mount options by the binary.
#[derive(Clone, Debug)]
pub struct ViewConfig {
    /// Refuse every mutation with `EROFS`.
    pub read_only: bool,
    /// How long the kernel may cache a name → inode mapping.
    pub entry_ttl: Duration,
    /// How long the kernel may cache attributes of mutable entries (directories, files
    /// being written).
    pub attr_ttl: Duration,
    /// How long the kernel may cache attributes of immutable blobs.
    pub blob_attr_ttl: Duration,
    /// How long the kernel may keep a fixed name (a snapshot entry or blob name, see
    /// `hub::is_fixed_name`) that leads to an immutable blob: it may disappear, never
    /// lead elsewhere, and an open that finds it gone makes the kernel look it up again.
    pub immutable_entry_ttl: Duration,
    /// Show every entry as owned by this user instead of the store's owner.
    pub uid: Option<u32>,
    /// Show every entry as owned by this group instead of the store's group.
    pub gid: Option<u32>,
    /// Where the view is mounted: absolute symlink targets below it are stored relative.
    pub mountpoint: Option<PathBuf>,
    /// Give files created through the view to the requesting user (when running as root).
    pub chown_new: bool,
    /// XSym files outside `blobs/` are links (`-o xsym`; see `Store::set_xsym`).
    pub xsym: bool,
    /// Copies written into snapshots become links to blobs (`-o nodedupe` turns it off; see
    /// `view::copies`).
    pub dedupe: bool,
}

impl Default for ViewConfig {
    fn default() -> Self {
        ViewConfig {
            read_only: false,
            entry_ttl: Duration::from_secs(1),
            attr_ttl: Duration::from_secs(1),
            blob_attr_ttl: Duration::from_secs(60),
            immutable_entry_ttl: Duration::from_secs(86_400),
            uid: None,
            gid: None,
            mountpoint: None,
            chown_new: true,
            xsym: false,
            dedupe: true,
        }
    }
}

pub use access::Caller;
use access::{DirGuard, Guards};

/// The view over one store.
#[derive(Debug)]
pub struct CacheView {
    store: Store,
    config: ViewConfig,
    inodes: Mutex<InodeTable>,
    handles: Handles,
    locks: LockFds,
    warned: Mutex<HashSet<StorePath>>,
    listings: dir::Listings,
    /// The store is on a network file system (listings look entries up in parallel).
    remote_store: bool,
    /// Recently seen directories' guards (see [`CacheView::guards_of`]).
    dir_guards: Mutex<HashMap<StorePath, (Option<DirGuard>, Instant)>>,
    /// Deduplication of copies as they are written (see [`copies`]).
    copies: copies::Copies,
}

/// How a store entry is shown.
struct Shown {
    key: Key,
    real: StorePath,
    meta: Meta,
    immutable: bool,
    /// See [`crate::inode::Node::via_link`].
    via_link: bool,
    /// See [`crate::inode::Node::guards`].
    guards: Guards,
    /// The name itself is fixed (see `hub::is_fixed_name`).
    fixed_name: bool,
}

impl CacheView {
    /// A view of `store`.
    pub fn new(store: Store, config: ViewConfig) -> Self {
        #[cfg(unix)]
        store.set_dir_cache_ttl(config.entry_ttl.min(config.attr_ttl));
        store.set_xsym(config.xsym);
        #[cfg(unix)]
        let remote_store = store.is_remote();
        #[cfg(windows)]
        let remote_store = false;
        CacheView {
            store,
            config,
            inodes: Mutex::new(InodeTable::default()),
            handles: Handles::default(),
            locks: LockFds::default(),
            warned: Mutex::new(HashSet::new()),
            listings: Default::default(),
            dir_guards: Default::default(),
            remote_store,
            copies: Default::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ViewConfig {
        &self.config
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn table(&self) -> std::sync::MutexGuard<'_, InodeTable> {
        // A panic while holding the lock cannot leave the table half-updated in a way that
        // matters more than losing the mount, so keep serving.
        self.inodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn node(&self, ino: Ino) -> FsResult<Node> {
        self.table().get(ino).cloned().ok_or(FsError::Stale)
    }

    fn dir_node(&self, ino: Ino) -> FsResult<Node> {
        let node = self.node(ino)?;
        if !node.is_dir {
            return Err(FsError::NotDir);
        }
        Ok(node)
    }

    /// The store path `ino` stands for, while the kernel holds it (for error reports, see
    /// [`crate::fs_error!`]).
    pub fn store_path(&self, ino: Ino) -> Option<StorePath> {
        self.table().get(ino).map(|n| n.real.clone())
    }

    /// Number of live inodes.
    pub fn inode_count(&self) -> usize {
        self.table().len()
    }

    /// Logs an odd entry once per path.
    fn warn_odd(&self, path: &StorePath, why: &str) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.len() < 100_000 && warned.insert(path.clone()) {
            log::warn!("hidden store entry {path}: {why}");
        }
    }

    /// Decides how the store entry `path` (child `name` of view directory `parent`) is shown.
    fn classify(&self, parent: Ino, name: &OsStr, path: StorePath, meta: Meta) -> FsResult<Shown> {
        let parent_via = self.table().via_link(parent);
        let fixed_name = crate::hub::is_fixed_name(&path);
        let shown = |key, real: StorePath, meta, immutable, via_link| -> FsResult<Shown> {
            let guards = if via_link {
                self.guards_of(&real)?
            } else {
                Guards::default()
            };
            Ok(Shown {
                key,
                real,
                meta,
                immutable,
                via_link,
                guards,
                fixed_name,
            })
        };
        match meta.kind {
            // An XSym file is a link (see `LinkSource::is_link`): resolved below.
            Kind::File if !self.store.is_link(&path, &meta) => shown(
                Key::File(meta.dev, meta.ino, meta.born),
                path.clone(),
                meta,
                is_blob_path(&path),
                parent_via,
            ),
            Kind::Dir => shown(
                Key::Dir(parent, name.to_os_string()),
                path,
                meta,
                false,
                parent_via,
            ),
            Kind::Special => {
                self.warn_odd(&path, "not a regular file, directory or link");
                Err(FsError::NotFound)
            }
            Kind::Symlink | Kind::File => match Resolver::new(&self.store).resolve_link(&path) {
                Ok(t) if t.meta.kind == Kind::Dir => {
                    if self.table().is_view_loop(parent, &t.path) {
                        self.warn_odd(&path, &Odd::Loop.describe());
                        return Err(FsError::NotFound);
                    }
                    shown(
                        Key::Dir(parent, name.to_os_string()),
                        t.path,
                        t.meta,
                        false,
                        true,
                    )
                }
                // Immutability is a property of the target, never of the name it was
                // reached by.
                Ok(t) => shown(
                    Key::File(t.meta.dev, t.meta.ino, t.meta.born),
                    t.path.clone(),
                    t.meta,
                    is_blob_path(&t.path),
                    true,
                ),
                Err(odd) => {
                    self.warn_odd(&path, &odd.describe());
                    Err(FsError::NotFound)
                }
            },
        }
    }

    /// Looks up `name` in directory `parent`, counting one kernel lookup on success.
    pub fn lookup(&self, parent: Ino, name: &OsStr) -> FsResult<Entry> {
        let dir = self.dir_node(parent)?;
        self.check_reach(&dir)?;
        let path = dir.real.join(name).ok_or(FsError::NotFound)?;
        let meta = self
            .store
            .lstat(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) => FsError::NotFound,
                _ => FsError::Store(e),
            })?;
        let shown = self.classify(parent, name, path, meta)?;
        access::check_guards(&shown.guards)?;
        Ok(self.remember(shown))
    }

    /// True while the kernel still holds lookups of `ino`.
    pub fn is_live(&self, ino: Ino) -> bool {
        self.table().get(ino).is_some()
    }

    /// Enters a shown entry in the inode table and builds its reply.
    fn remember(&self, shown: Shown) -> Entry {
        let is_dir = shown.meta.kind == Kind::Dir;
        let guarded = !shown.guards.is_empty();
        let ino = {
            let mut table = self.table();
            let ino = table.lookup(shown.key, shown.real, is_dir, shown.immutable);
            let blob_size = if shown.immutable { shown.meta.size } else { 0 };
            table.set_reach(ino, shown.via_link, shown.guards, blob_size);
            ino
        };
        let mut entry = self.entry(ino, &shown.meta, shown.immutable);
        if shown.immutable && shown.fixed_name {
            entry.entry_ttl = self.config.immutable_entry_ttl;
        }
        if guarded {
            // Every access must come back with its caller (see `access`).
            entry.entry_ttl = Duration::ZERO;
            entry.attr_ttl = Duration::ZERO;
        }
        entry
    }

    /// Drops `n` kernel lookups of `ino`.
    pub fn forget(&self, ino: Ino, n: u64) {
        self.table().forget(ino, n);
    }

    /// Attributes of `ino`, with how long they may be cached. With `fh`, from the open file.
    pub fn getattr(&self, ino: Ino, fh: Option<Fh>) -> FsResult<(Attr, Duration)> {
        if let Some(h) = fh.and_then(|fh| self.handles.file(fh)) {
            let meta = Meta::of_fd(&h.file)?;
            let immutable = self.node(ino).map(|n| n.immutable).unwrap_or(false);
            return Ok((self.attr(ino, &meta), self.attr_ttl(&meta, immutable)));
        }
        let node = self.node(ino)?;
        if let Key::Detached(_) = node.key {
            return Err(FsError::Stale);
        }
        self.check_reach(&node)?;
        let meta = match self.locate(ino, &node) {
            Ok((_, meta)) => meta,
            // No name left, but the file is still open (`fstat` after `unlink`): ask it.
            Err(e) => match self.handles.any_for(ino) {
                Some(h) => Meta::of_fd(&h.file)?,
                None => return Err(e),
            },
        };
        let ttl = if node.guards.is_empty() {
            self.attr_ttl(&meta, node.immutable)
        } else {
            Duration::ZERO
        };
        Ok((self.attr(ino, &meta), ttl))
    }

    /// The store path and metadata of a node: its current path, or (for a hard-linked file
    /// whose current name went away) another name it was seen under.
    fn locate(&self, ino: Ino, node: &Node) -> FsResult<(StorePath, Meta)> {
        // Gone from where it was: `ESTALE`, so the kernel looks the name up again (a name it
        // keeps for long, see `immutable_entry_ttl`, learns that it is gone).
        let first = self
            .store
            .lstat(&node.real)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) => FsError::Stale,
                _ => FsError::from(e),
            });
        let first_err = match first.and_then(|m| check_identity(node, &m).map(|()| m)) {
            Ok(m) => return Ok((node.real.clone(), m)),
            Err(e) => e,
        };
        for alias in &node.aliases {
            if let Ok(m) = self.store.lstat(alias)
                && check_identity(node, &m).is_ok()
            {
                self.table().relocate(ino, alias);
                return Ok((alias.clone(), m));
            }
        }
        Err(first_err)
    }

    /// `readlink`: nothing in the view is a link.
    pub fn readlink(&self, _ino: Ino) -> FsResult<Vec<u8>> {
        Err(FsError::Invalid)
    }

    /// File system figures of the store.
    pub fn statfs(&self) -> FsResult<StoreStatfs> {
        Ok(self.store.statfs()?)
    }
}

/// A file node must still be the same store file; a directory must still be a directory.
fn check_identity(node: &Node, meta: &Meta) -> FsResult<()> {
    match (&node.key, meta.kind) {
        (Key::File(dev, ino, born), Kind::File)
            if *dev == meta.dev && *ino == meta.ino && *born == meta.born =>
        {
            Ok(())
        }
        (Key::Root | Key::Dir(..), Kind::Dir) => Ok(()),
        _ => Err(FsError::Stale),
    }
}

/// True for a store path that names an immutable blob (the hub's rule,
/// [`crate::hub::is_blob_path`]).
pub fn is_blob_path(p: &StorePath) -> bool {
    crate::hub::is_blob_path(p)
}

#[cfg(all(test, unix))]
mod tests;
#[cfg(test)]
mod xsym_tests;
