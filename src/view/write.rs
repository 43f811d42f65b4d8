//! The write path: every mutation a client makes through the view, carried out on the store
//! so that it ends up as a Linux client writing directly would leave it.
//!
//! Rules (see `docs/SEMANTICS.md`):
//! - Hidden odd entries do not exist for the view: creating an entry with the name of one
//!   first removes the odd link (logged), so a re-download over a lost blob works.
//! - `symlink()` creates a real symlink in the store, provided its target resolves inside
//!   the store; the name shows as the target's file or directory at the next lookup.
//! - Renaming a link to another directory rewrites its relative target, so it keeps resolving.
//! - Immutable blobs (link-backed names, `blobs/<hash>`) refuse writes and truncation.
//! - On a read-only view every mutation fails with `EROFS`.

use std::ffi::OsStr;
#[cfg(unix)]
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[cfg(unix)]
use rustix::fs::{Timespec, Timestamps};

#[cfg(windows)]
use crate::compat::{OsStrExt, libc};
use crate::store::OFlags;

use super::handles::{FileHandle, store_flags};
#[cfg(unix)]
use super::ids::Fh;
use super::ids::OpenFlags;
#[cfg_attr(windows, allow(unused_imports))]
use super::{CacheView, Caller, Entry, Opened, SetAttr, TimeSet};
use crate::error::{FsError, FsResult};
use crate::hub;
use crate::inode::{Ino, Key, Node};
use crate::path::{StorePath, link_target, plain_link};
use crate::resolve::{LinkSource, Odd, Resolver};
use crate::store::{Kind, Meta};
#[cfg_attr(windows, allow(unused_imports))]
use crate::view::attr::{Attr, AttrKind};

impl CacheView {
    /// Every mutation starts here: a read-only view refuses it (`EROFS`).
    pub(super) fn writable(&self) -> FsResult<()> {
        if self.config.read_only {
            Err(FsError::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// The store path of `name` in view directory `parent`.
    fn child(&self, parent: Ino, name: &OsStr) -> FsResult<StorePath> {
        let dir = self.dir_node(parent)?;
        self.check_reach(&dir)?;
        dir.real.join(name).ok_or(FsError::Invalid)
    }

    /// Makes room for a new entry `name` in view directory `parent` (store path `path`):
    /// nothing there is fine, a link the view hides is removed (logged), anything the view
    /// shows, and hidden non-links (FIFOs, devices), is `EEXIST`.
    fn clear_hidden(&self, parent: Ino, name: &OsStr, path: &StorePath) -> FsResult<()> {
        let meta = match self.store.lstat(path) {
            Ok(m) => m,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let is_link = self.store.is_link(path, &meta);
        match self.classify(parent, name, path.clone(), meta.clone()) {
            Err(FsError::NotFound) if is_link => {
                self.check_delete(path, &meta)?;
                log::warn!("replacing hidden store entry {path}");
                self.store.unlink(path)?;
                Ok(())
            }
            Ok(_) | Err(FsError::NotFound) => Err(FsError::Exists),
            Err(e) => Err(e),
        }
    }

    /// The node a `setattr` of `ino` changes, after the rules every platform shares: the view
    /// is writable, a name still leads to the node (else `ESTALE`), the caller may reach it,
    /// and an immutable blob is never resized.
    pub(super) fn setattr_node(&self, ino: Ino, set: &SetAttr) -> FsResult<Node> {
        self.writable()?;
        let node = self.node(ino)?;
        if let Key::Detached(_) = node.key {
            return Err(FsError::Stale);
        }
        self.check_reach(&node)?;
        if set.size.is_some() && node.immutable {
            return Err(FsError::NotPermitted(
                "blobs are immutable through the view; replace the name instead",
            ));
        }
        Ok(node)
    }

    /// Whether store directory `path` may be removed, by the one rule `rmdir` and a Windows
    /// delete (`decide_delete`) share: an entry the view shows makes it not empty; links the
    /// view hides do not exist for the client, so they do not — if the caller could remove
    /// them (else the directory is not empty for them either). Returns those links, which
    /// go with the directory.
    pub(super) fn hidden_links_only(&self, path: &StorePath) -> FsResult<Vec<StorePath>> {
        let mut hidden = Vec::new();
        for e in self.store.read_dir(path)? {
            match path.join(&e.name) {
                Some(p) if self.is_hidden_link(path, &p) => hidden.push(p),
                _ => return Err(FsError::NotEmpty),
            }
        }
        for p in &hidden {
            let meta = self.store.lstat(p)?;
            self.check_delete(p, &meta).map_err(|_| FsError::NotEmpty)?;
        }
        Ok(hidden)
    }

    /// True if the store entry at `p` is a link the view hides (removable with its directory).
    /// A link the store cannot read now is not known to be hidden: it is never removed.
    fn is_hidden_link(&self, dir: &StorePath, p: &StorePath) -> bool {
        match self.store.lstat(p) {
            Ok(m) if self.store.is_link(p, &m) => {
                match Resolver::new(&self.store).resolve_link(p) {
                    Err(Odd::Unreadable(_)) => false,
                    Err(_) => true,
                    Ok(t) => t.meta.kind == Kind::Dir && dir.starts_with(&t.path),
                }
            }
            _ => false,
        }
    }

    /// True if new entries are to be given to `caller` (the daemon runs as root).
    #[cfg(unix)]
    fn gives_away(&self, caller: Caller) -> bool {
        self.config.chown_new && caller.uid != 0 && rustix::process::geteuid().is_root()
    }

    /// Gives a just-created file, by its descriptor, to the caller.
    #[cfg(unix)]
    fn chown_new_fd(&self, fd: &impl std::os::fd::AsFd, caller: Caller) {
        if !self.gives_away(caller) {
            return;
        }
        let uid = rustix::fs::Uid::from_raw(caller.uid);
        let gid = rustix::fs::Gid::from_raw(caller.gid);
        if let Err(e) = rustix::fs::fchown(fd, Some(uid), Some(gid)) {
            log::warn!(
                "cannot give a new file to {}:{}: {e}",
                caller.uid,
                caller.gid
            );
        }
    }

    /// Gives a just-created directory or link at `path` to the caller. It is opened
    /// without following links and changed through that descriptor, and only if it is
    /// still what was just made (the daemon's own, of the expected kind): an entry swapped
    /// in under the name meanwhile is never given away.
    #[cfg(unix)]
    fn chown_new(&self, path: &StorePath, kind: Kind, caller: Caller) {
        if !self.gives_away(caller) {
            return;
        }
        let flags = OFlags::PATH | OFlags::NOFOLLOW;
        let fd = match self.store.open(path, flags, 0) {
            Ok(fd) => fd,
            Err(e) => return log::warn!("cannot give {path} to {}: {e}", caller.uid),
        };
        let ours = Meta::of_fd(&fd)
            .is_ok_and(|m| m.kind == kind && m.uid == rustix::process::geteuid().as_raw());
        if !ours {
            return log::warn!(
                "{path} changed while it was created; not given to {}",
                caller.uid
            );
        }
        let uid = rustix::fs::Uid::from_raw(caller.uid);
        let gid = rustix::fs::Gid::from_raw(caller.gid);
        if let Err(e) = rustix::fs::chownat(
            &fd,
            "",
            Some(uid),
            Some(gid),
            rustix::fs::AtFlags::EMPTY_PATH,
        ) {
            log::warn!("cannot give {path} to {}:{}: {e}", caller.uid, caller.gid);
        }
    }

    /// Looks up a just-created entry of `parent`.
    fn created(&self, parent: Ino, name: &OsStr) -> FsResult<Entry> {
        self.lookup(parent, name)
    }

    /// Creates and opens a regular file.
    pub fn create(
        &self,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: OpenFlags,
        caller: Caller,
    ) -> FsResult<(Entry, Opened)> {
        self.writable()?;
        let path = self.child(parent, name)?;
        self.clear_hidden(parent, name, &path)
            .or_else(|e| match e {
                FsError::Exists if !flags.exclusive() => Ok(()),
                e => Err(e),
            })?;
        let base = store_flags(flags) | OFlags::CREATE;
        let excl = flags.exclusive();
        let perm = mode & 0o7777 & !umask;
        let fd = match self.store.open(&path, base | OFlags::EXCL, perm) {
            Ok(fd) => {
                #[cfg(unix)]
                self.chown_new_fd(&fd, caller);
                #[cfg(windows)]
                let _ = caller; // WinFsp sets owners by security descriptor
                fd
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && !excl => {
                // Created meanwhile by someone else: open it as `open` would.
                // Something the view hides (a FIFO, …) holds the name: it exists.
                let entry = self.lookup(parent, name).map_err(|e| match e {
                    FsError::NotFound => FsError::Exists,
                    e => e,
                })?;
                let opened = self.open(entry.attr.ino, flags.without_create());
                if opened.is_err() {
                    self.forget(entry.attr.ino, 1);
                }
                return Ok((entry, opened?));
            }
            Err(e) => return Err(e.into()),
        };
        let meta = Meta::of_fd(&fd)?;
        // Inside a directory reached through a link, the new file has that directory's
        // guards (see `access`).
        let via_link = self.table().via_link(parent);
        let guards = if via_link {
            self.guards_of(&path)?
        } else {
            Default::default()
        };
        let guarded = !guards.is_empty();
        let ino = {
            let mut table = self.table();
            // The file was just made (`O_EXCL`): a node the kernel still holds for its store
            // inode number stood for a file deleted since, whose number the store reused. It
            // must not become this file's (the kernel would show this file, still being
            // written, under the old one's names and cached pages): it is detached, and its
            // next use answers `ESTALE`.
            let key = Key::File(meta.dev, meta.ino, meta.born);
            table.detach_key(&key);
            let ino = table.lookup(key, path.clone(), false, false);
            table.set_reach(ino, via_link, guards, 0);
            ino
        };
        let mut entry = self.entry(ino, &meta, false);
        if guarded {
            entry.entry_ttl = std::time::Duration::ZERO;
            entry.attr_ttl = std::time::Duration::ZERO;
        }
        let fh = self.handles.insert_file(FileHandle {
            ino,
            file: fd.into(),
            writable: flags.modifies(),
        });
        self.track_writes(ino, &path, true);
        Ok((
            entry,
            Opened {
                fh,
                keep_cache: false,
            },
        ))
    }

    /// `mknod`: regular files only; devices, FIFOs and sockets are never created.
    pub fn mknod(
        &self,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
        caller: Caller,
    ) -> FsResult<Entry> {
        self.writable()?;
        if mode & libc::S_IFMT != libc::S_IFREG && mode & libc::S_IFMT != 0 {
            return Err(FsError::NotPermitted(
                "only regular files and directories can be created",
            ));
        }
        let (entry, opened) = self.create(
            parent,
            name,
            mode,
            umask,
            OpenFlags::from_raw(libc::O_WRONLY | libc::O_EXCL),
            caller,
        )?;
        self.release(opened.fh, None);
        Ok(entry)
    }

    /// Creates a directory.
    pub fn mkdir(
        &self,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
        caller: Caller,
    ) -> FsResult<Entry> {
        self.writable()?;
        let path = self.child(parent, name)?;
        self.clear_hidden(parent, name, &path)?;
        self.store.mkdir(&path, mode & 0o7777 & !umask)?;
        self.chown_new(&path, Kind::Dir, caller);
        self.created(parent, name)
    }

    /// Removes a non-directory name (the link itself for link-backed names).
    pub fn unlink(&self, parent: Ino, name: &OsStr) -> FsResult<()> {
        self.writable()?;
        let path = self.child(parent, name)?;
        let _names = self.copies.name_lock();
        let meta = self.store.lstat(&path)?;
        self.check_delete(&path, &meta)?;
        match meta.kind {
            Kind::Dir => Err(FsError::IsDir),
            Kind::File if !self.store.is_link(&path, &meta) => {
                if let Some(to) = self.unlink_keeping(&path)? {
                    self.table().rebase_paths(&path, &to);
                }
                Ok(())
            }
            Kind::Symlink | Kind::Special | Kind::File => Ok(self.store.unlink(&path)?),
        }
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, parent: Ino, name: &OsStr) -> FsResult<()> {
        self.writable()?;
        self.forget_dir_guards();
        let path = self.child(parent, name)?;
        if self.caller_is_checked() {
            let meta = self.store.lstat(&path)?;
            self.check_delete(&path, &meta)?;
        }
        match self.store.rmdir(&path) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                for p in &self.hidden_links_only(&path)? {
                    log::info!("rmdir {path}: removing hidden link {p}");
                    self.store.unlink(p)?;
                }
                Ok(self.store.rmdir(&path)?)
            }
            other => Ok(other?),
        }
    }

    /// Creates a symlink in the store. Replies with a transient link-typed inode; the next
    /// lookup of the name shows the target's file or directory.
    pub fn symlink(
        &self,
        parent: Ino,
        name: &OsStr,
        target: &Path,
        caller: Caller,
    ) -> FsResult<Entry> {
        self.writable()?;
        let path = self.child(parent, name)?;
        let dir = path.parent();
        let text = self.store_link_text(&dir, target)?;
        // The target must exist inside the store: a link the view would hide is refused.
        let first = link_target(&dir, text.as_os_str().as_bytes(), self.store.aliases())
            .map_err(|_| FsError::CrossStore)?;
        // What the caller may not search, they learn nothing below (not even existence).
        self.check_search_along(&first)?;
        let target = Resolver::new(&self.store)
            .resolve_path(&first)
            .map_err(|odd| match odd {
                Odd::Escapes => FsError::CrossStore,
                Odd::Loop => FsError::Loop,
                _ => FsError::NotFound,
            })?;
        super::access::check_guards(&self.guards_of(&target.path)?)?;
        if target.meta.kind == Kind::Dir && self.table().is_view_loop(parent, &target.path) {
            return Err(FsError::Loop);
        }
        // Stored so that every reader of the store, following it with the OS, reaches the
        // same target inside the store: the client's text when it is plain, else the
        // canonical path to the target.
        let text = match plain_link(text.as_os_str().as_bytes()) {
            Some(ups) if ups <= dir.depth() => text,
            _ => target.path.relative_from(&dir),
        };
        self.clear_hidden(parent, name, &path)?;
        self.store.symlink(&text, &path)?;
        self.chown_new(&path, Kind::Symlink, caller);
        let meta = self.store.lstat(&path)?;
        let ino = self.table().detached(path);
        let mut attr = self.attr(ino, &meta);
        attr.kind = AttrKind::Symlink;
        Ok(Entry {
            attr,
            attr_ttl: std::time::Duration::ZERO,
            entry_ttl: std::time::Duration::ZERO,
        })
    }

    /// The link text to store for a client's symlink target: absolute targets inside the
    /// mount become relative (the store is shared by machines that mount it elsewhere).
    fn store_link_text(&self, dir: &StorePath, target: &Path) -> FsResult<PathBuf> {
        if !target.is_absolute() {
            return Ok(target.to_path_buf());
        }
        if let Some(mp) = &self.config.mountpoint
            && let Ok(rest) = target.strip_prefix(mp)
        {
            let inside = link_target(&StorePath::root(), rest.as_os_str().as_bytes(), &[])
                .map_err(|_| FsError::CrossStore)?;
            return Ok(inside.relative_from(dir));
        }
        Ok(target.to_path_buf())
    }

    /// Creates a hard link in the store to the file `ino` stands for.
    pub fn link(&self, ino: Ino, newparent: Ino, newname: &OsStr) -> FsResult<Entry> {
        self.writable()?;
        let node = self.node(ino)?;
        if node.is_dir {
            return Err(FsError::NotPermitted("directories cannot be hard-linked"));
        }
        if node.immutable {
            // A hard link would be a writable name of the shared blob.
            return Err(FsError::NotPermitted(
                "blobs cannot be hard-linked; use a symlink",
            ));
        }
        let to = self.child(newparent, newname)?;
        self.clear_hidden(newparent, newname, &to)?;
        self.store.link(&node.real, &to)?;
        self.created(newparent, newname)
    }

    /// Renames an entry; a link moved to another directory gets its relative text rewritten.
    pub fn rename(
        &self,
        parent: Ino,
        name: &OsStr,
        newparent: Ino,
        newname: &OsStr,
        flags: u32,
    ) -> FsResult<()> {
        self.writable()?;
        let from = self.child(parent, name)?;
        let to = self.child(newparent, newname)?;
        let names = self.copies.name_lock();
        let meta = self.store.lstat(&from)?;
        self.check_delete(&from, &meta)?;
        if self.caller_is_checked()
            && let Ok(replaced) = self.store.lstat(&to)
        {
            self.check_delete(&to, &replaced)?;
        }
        // A directory cannot replace a link, but a link the view hides is no name for the
        // client: it goes, as when a name is created over it.
        if meta.kind == Kind::Dir && self.is_hidden_link(&to.parent(), &to) {
            log::warn!("replacing hidden store entry {to}");
            self.store.unlink(&to)?;
        }
        // The name replaced may be a file that links still reach: they keep its content.
        if meta.kind != Kind::Dir
            && flags & (libc::RENAME_EXCHANGE | libc::RENAME_NOREPLACE) == 0
            && let Some(kept) = self.keep_replaced(&from, &to)?
        {
            self.table().rebase_paths(&to, &kept);
        }
        if self.rename_blob_as_link(&from, &to, &meta, flags)? {
            // The kernel now shows the blob's inode under `to` (the link reaches it); the
            // blob keeps its name and node.
            self.forget_dir_guards();
            return Ok(());
        }
        let is_link = self.store.is_link(&from, &meta);
        let moved_link = is_link && from.parent() != to.parent();
        if flags & libc::RENAME_EXCHANGE != 0 && from.parent() != to.parent() {
            let other = self.store.lstat(&to)?;
            if is_link || self.store.is_link(&to, &other) {
                // Both link texts would need rewriting in one atomic step; not supported.
                return Err(FsError::Invalid);
            }
        }
        if moved_link && flags & libc::RENAME_EXCHANGE == 0 {
            self.move_link(&from, &to, flags)?;
        } else if meta.kind == Kind::File && !is_link && flags & libc::RENAME_EXCHANGE == 0 {
            // Links that reach the file by its old name follow it to the new one, within its
            // repo. Into another repo they would make one repo depend on another's folder,
            // and to a place whose referrers are not tracked the next unlink or rename of it
            // would strand them: refuse with EXDEV, so `mv` copies (and the unlink keeps the
            // content here).
            let refs = self.referrers(&from)?;
            if !refs.is_empty()
                && (hub::repo_of(&from) != hub::repo_of(&to)
                    || !super::keep::referrers_tracked(&to))
            {
                return Err(FsError::CrossStore);
            }
            self.store.rename(&from, &to, flags)?;
            for r in refs.iter().filter(|r| **r != to) {
                self.repoint(r, &to)?;
            }
        } else {
            if meta.kind == Kind::Dir && !is_link {
                self.check_dir_move(&from, &to)?;
            }
            self.store.rename(&from, &to, flags)?;
        }
        self.forget_dir_guards();
        self.table().renamed(
            (parent, name.into()),
            (newparent, newname.into()),
            &from,
            &to,
        );
        drop(names);
        // A complete copy put in place in a snapshot becomes a link (a file still written
        // becomes one when its last writer closes it).
        if self.dedupes()
            && meta.kind == Kind::File
            && !is_link
            && flags & libc::RENAME_EXCHANGE == 0
            && self.writers_of(&meta) == 0
        {
            self.put_in_place(to);
        }
        Ok(())
    }

    /// Moves the link `from` to `to` with a target text rewritten for its new directory:
    /// the new link is made under a temporary name and renamed into place (atomic for
    /// readers of `to`), then the old link is removed.
    fn move_link(&self, from: &StorePath, to: &StorePath, flags: u32) -> FsResult<()> {
        let text = self.store.readlink(from)?;
        let new_dir = to.parent();
        let new_text = match Resolver::new(&self.store).resolve_link(from) {
            // A plain text keeps its way (through links it names); any other is replaced by
            // the canonical path to where it leads.
            Ok(t) if plain_link(&text).is_some() => t.first_hop.relative_from(&new_dir),
            Ok(t) => t.path.relative_from(&new_dir),
            Err(_) if text.first() == Some(&b'/') => {
                // Absolute texts mean the same anywhere; it stays hidden either way.
                return Ok(self.store.rename(from, to, flags)?);
            }
            Err(_) => {
                // A link the view hides is moved as it is, unless from its new place it
                // would lead out of the store for those who follow it directly.
                match plain_link(&text) {
                    Some(ups) if ups <= new_dir.depth() => {}
                    _ => return Err(FsError::CrossStore),
                }
                return Ok(self.store.rename(from, to, flags)?);
            }
        };
        self.place_link(&new_text, to, flags)?;
        self.store.unlink(from)?;
        Ok(())
    }

    /// Refuses (`EXDEV`, so `mv` copies instead) to move the directory `from` to `to` when
    /// a link inside it would then lead out of the store for readers that follow it
    /// directly: moving up a level gives every `..` one level less to climb.
    fn check_dir_move(&self, from: &StorePath, to: &StorePath) -> FsResult<()> {
        let Some(shallower) = from.depth().checked_sub(to.depth()).filter(|d| *d > 0) else {
            return Ok(());
        };
        let mut stack = vec![(from.clone(), to.depth())];
        let mut seen = 0usize;
        while let Some((dir, new_depth)) = stack.pop() {
            for e in self.store.read_dir(&dir)? {
                seen += 1;
                if seen > MAX_DIR_MOVE_SCAN {
                    return Err(FsError::CrossStore);
                }
                let Some(p) = dir.join(&e.name) else { continue };
                let meta = match e.kind {
                    Some(Kind::File | Kind::Special) => continue,
                    _ => self.store.lstat(&p)?,
                };
                match meta.kind {
                    Kind::Dir => stack.push((p, new_depth + 1)),
                    Kind::Symlink => {
                        let text = self.store.readlink(&p)?;
                        if text.first() == Some(&b'/') {
                            continue;
                        }
                        match plain_link(&text) {
                            Some(ups) if ups <= new_depth => {}
                            _ => {
                                log::info!(
                                    "rename {from} -> {to} refused (EXDEV): link {p} would \
                                     lead out of the store {shallower} level(s) up"
                                );
                                return Err(FsError::CrossStore);
                            }
                        }
                    }
                    Kind::File | Kind::Special => {}
                }
            }
        }
        Ok(())
    }

    /// Makes a link with `text` at `at`: under a temporary name first, then renamed into
    /// place with `rename` `flags` (atomic for readers of `at`).
    pub(super) fn place_link(&self, text: &Path, at: &StorePath, flags: u32) -> FsResult<()> {
        let tmp = temp_sibling(at, "link")?;
        self.store.symlink(text, &tmp)?;
        if let Err(e) = self.store.rename(&tmp, at, flags) {
            let _ = self.store.unlink(&tmp);
            return Err(e.into());
        }
        Ok(())
    }

    /// Changes attributes.
    #[cfg(unix)]
    pub fn setattr(
        &self,
        ino: Ino,
        set: &SetAttr,
        fh: Option<Fh>,
    ) -> FsResult<(Attr, std::time::Duration)> {
        if set.is_empty() {
            return self.getattr(ino, fh);
        }
        let node = self.setattr_node(ino, set)?;
        // A truncation must not interleave with a copy becoming a link (`copies`).
        let _names = set.size.map(|_| self.copies.name_lock());
        if set.size.is_some() {
            self.copies.broken(ino);
        }
        let handle = fh.and_then(|fh| self.handles.file(fh));
        let owned;
        let fd: std::os::fd::BorrowedFd<'_> = match (&handle, set.size) {
            (Some(h), _) if h.writable || set.size.is_none() => std::os::fd::AsFd::as_fd(&h.file),
            _ => {
                let flags = if node.is_dir {
                    OFlags::DIRECTORY | OFlags::RDONLY
                } else if set.size.is_some() {
                    OFlags::WRONLY
                } else {
                    OFlags::RDONLY | OFlags::NONBLOCK
                };
                owned = self.store.open(&node.real, flags, 0)?;
                let meta = Meta::of_fd(&owned)?;
                super::check_identity(&node, &meta)?;
                std::os::fd::AsFd::as_fd(&owned)
            }
        };
        if let Some(size) = set.size {
            rustix::fs::ftruncate(fd, size)?;
        }
        if let Some(mode) = set.mode {
            rustix::fs::fchmod(fd, rustix::fs::Mode::from_raw_mode((mode & 0o7777) as _))?;
        }
        if set.uid.is_some() || set.gid.is_some() {
            let uid = set.uid.map(rustix::fs::Uid::from_raw);
            let gid = set.gid.map(rustix::fs::Gid::from_raw);
            rustix::fs::fchown(fd, uid, gid)?;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            let ts = Timestamps {
                last_access: timespec(set.atime),
                last_modification: timespec(set.mtime),
            };
            rustix::fs::futimens(fd, &ts)?;
        }
        let meta = Meta::of_fd(fd)?;
        Ok((self.attr(ino, &meta), self.attr_ttl(&meta, node.immutable)))
    }
}

#[cfg(unix)]
fn timespec(t: Option<TimeSet>) -> Timespec {
    match t {
        None => Timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT as _,
        },
        Some(TimeSet::Now) => Timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW as _,
        },
        Some(TimeSet::At(t)) => match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timespec {
                tv_sec: d.as_secs() as _,
                tv_nsec: d.subsec_nanos() as _,
            },
            Err(e) => {
                let d = e.duration();
                Timespec {
                    tv_sec: -(d.as_secs() as i64) as _,
                    tv_nsec: 0,
                }
            }
        },
    }
}

/// How many entries a directory move looks at for links before refusing (`EXDEV`).
const MAX_DIR_MOVE_SCAN: usize = 100_000;

/// A fresh temporary name in the directory of `p` (the hub's one generator,
/// [`hub::temp_sibling`]).
fn temp_sibling(p: &StorePath, tag: &str) -> FsResult<StorePath> {
    hub::temp_sibling(p, tag).ok_or(FsError::Invalid)
}
