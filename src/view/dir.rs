//! Directory listings. A listing is read from the store when a handle starts at offset 0
//! and served from that snapshot for later offsets, so entries added while a client reads
//! the directory never shift the offsets it resumes from (a new `rewinddir` sees them).
//! Offsets are 1-based positions in the snapshot after `.` and `..`.

use std::ffi::{OsStr, OsString};
use std::sync::Mutex;

use super::{CacheView, Entry};
use crate::error::{FsError, FsResult};
use crate::inode::Ino;
use crate::store::{Kind, RawEntry};
use crate::view::attr::AttrKind;

/// An open directory.
#[derive(Debug)]
pub struct DirHandle {
    ino: Ino,
    listing: Mutex<Option<std::sync::Arc<Vec<RawEntry>>>>,
}

/// One entry of a plain `readdir`.
#[derive(Clone, Debug)]
pub struct DirEntry {
    /// Inode number to report (`d_ino`).
    pub ino: u64,
    /// Offset of the next entry.
    pub offset: u64,
    /// Type.
    pub kind: AttrKind,
    /// Name.
    pub name: OsString,
}

impl CacheView {
    /// Opens directory `ino`.
    pub fn opendir(&self, ino: Ino) -> FsResult<u64> {
        self.dir_node(ino)?;
        Ok(self.handles.insert_dir(DirHandle {
            ino,
            listing: Mutex::new(None),
        }))
    }

    /// Closes a directory handle.
    pub fn releasedir(&self, fh: u64) {
        self.handles.remove_dir(fh);
    }

    /// The snapshot of the listing for `fh`, (re)read at offset 0.
    fn listing(&self, fh: u64, offset: u64) -> FsResult<(Ino, std::sync::Arc<Vec<RawEntry>>)> {
        let h = self.handles.dir(fh).ok_or(FsError::BadHandle)?;
        let mut slot = h.listing.lock().unwrap_or_else(|e| e.into_inner());
        if offset == 0 || slot.is_none() {
            let node = self.dir_node(h.ino)?;
            let mut entries = self.store.read_dir(&node.real)?;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            *slot = Some(std::sync::Arc::new(entries));
        }
        match slot.as_ref() {
            Some(list) => Ok((h.ino, list.clone())),
            None => Err(FsError::BadHandle),
        }
    }

    /// How a listed name shows, without counting a lookup: `None` if hidden.
    fn listed_kind(&self, dir: Ino, raw: &RawEntry) -> Option<AttrKind> {
        match raw.kind {
            Some(Kind::Dir) => Some(AttrKind::Dir),
            Some(Kind::Special) => None,
            Some(Kind::File) | Some(Kind::Symlink) | None => {
                let node = self.dir_node(dir).ok()?;
                let path = node.real.join(&raw.name)?;
                let meta = self.store.lstat(&path).ok()?;
                // Only a file of an XSym link's exact size can be a link.
                if raw.kind == Some(Kind::File)
                    && !(meta.kind == Kind::File && crate::links::xsym::may_be_xsym(meta.size))
                {
                    return Some(AttrKind::File);
                }
                let shown = self.classify(dir, &raw.name, path, meta).ok()?;
                Some(if shown.meta.kind == Kind::Dir {
                    AttrKind::Dir
                } else {
                    AttrKind::File
                })
            }
        }
    }

    /// Plain `readdir` from `offset`; `fill` returns true when the reply buffer is full.
    pub fn readdir(
        &self,
        fh: u64,
        offset: u64,
        mut fill: impl FnMut(DirEntry) -> bool,
    ) -> FsResult<()> {
        let (ino, list) = self.listing(fh, offset)?;
        let dots = [(".", ino), ("..", ino)];
        let mut pos = offset;
        while (pos as usize) < dots.len() {
            let (name, d_ino) = dots[pos as usize];
            pos += 1;
            let e = DirEntry {
                ino: d_ino,
                offset: pos,
                kind: AttrKind::Dir,
                name: name.into(),
            };
            if fill(e) {
                return Ok(());
            }
        }
        for raw in list.iter().skip(pos as usize - dots.len()) {
            pos += 1;
            let Some(kind) = self.listed_kind(ino, raw) else {
                continue;
            };
            let e = DirEntry {
                ino: raw.ino.max(2),
                offset: pos,
                kind,
                name: raw.name.clone(),
            };
            if fill(e) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// `readdirplus` from `offset`: every entry is looked up (counted) and passed to `fill`
    /// with its offset; `fill` returns true when full, and the view then forgets that entry's
    /// lookup again because the kernel never received it.
    pub fn readdirplus(
        &self,
        fh: u64,
        offset: u64,
        mut fill: impl FnMut(&OsStr, u64, &Entry) -> bool,
    ) -> FsResult<()> {
        let (ino, list) = self.listing(fh, offset)?;
        // `.` and `..` carry attributes but no lookup count in readdirplus.
        let mut pos = offset;
        while pos < 2 {
            let (attr, ttl) = self.getattr(ino, None)?;
            let e = Entry {
                attr,
                attr_ttl: ttl,
                entry_ttl: self.config.entry_ttl,
            };
            let name = if pos == 0 { "." } else { ".." };
            pos += 1;
            if fill(OsStr::new(name), pos, &e) {
                return Ok(());
            }
        }
        for raw in list.iter().skip(pos as usize - 2) {
            pos += 1;
            // Entries that vanished or cannot be looked up are left out, as hidden ones are
            // (returning an error here would strand the lookups already counted).
            let entry = match self.lookup(ino, &raw.name) {
                Ok(e) => e,
                Err(e) => {
                    log::debug!("readdirplus: skipping {:?}: {e}", raw.name);
                    continue;
                }
            };
            if fill(&raw.name, pos, &entry) {
                self.forget(entry.attr.ino, 1);
                return Ok(());
            }
        }
        Ok(())
    }
}
