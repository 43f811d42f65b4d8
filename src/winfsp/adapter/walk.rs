//! Path walks of the WinFsp adapter: a WinFsp path becomes view lookups, by the case rule
//! of [`super::super::names`], in the store's own spelling; and the per-thread cache that
//! lets the `Open`/`Create` after a `GetSecurityByName` use that request's walk.
//!
//! Invariants (see the adapter's header): a walk holds one lookup of its final entry and
//! none of anything before it; a cached walk is used only by the same file system, for the
//! same path, and only if no change was made through the adapter since it was made.

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::sync::atomic::Ordering;

use winfsp::U16CStr;

use super::{HfFs, nt};
use crate::error::{FsError, FsResult};
use crate::inode::{Ino, ROOT_INO};
use crate::store::last_status;
use crate::view::{AttrKind, Entry};
use crate::winfsp::{names, status};

/// A walked path: its final entry (one lookup held), the parent, and the store names.
pub(super) struct Walked {
    pub(super) parent: Ino,
    pub(super) entry: Entry,
    pub(super) names: Vec<OsString>,
}

/// A walk kept for the next callback of the same request (see the module header).
struct CachedWalk {
    fs: u64,
    generation: u64,
    path: Vec<u16>,
    walked: Walked,
}

thread_local! {
    static LAST_WALK: RefCell<Option<CachedWalk>> = const { RefCell::new(None) };
}

impl HfFs {
    /// Keeps `walked` for the next callback of this request on this thread.
    pub(super) fn keep_walk(&self, path: &U16CStr, walked: Walked) {
        let old = LAST_WALK.with(|c| {
            c.borrow_mut().replace(CachedWalk {
                fs: self.id,
                generation: self.generation.load(Ordering::Relaxed),
                path: path.as_slice().to_vec(),
                walked,
            })
        });
        if let Some(old) = old {
            self.forget_cached(old);
        }
    }

    /// The walk kept for `path` by this request, if any (the cache is emptied either way).
    pub(super) fn take_walk(&self, path: &U16CStr) -> Option<Walked> {
        let cached = LAST_WALK.with(|c| c.borrow_mut().take())?;
        if cached.fs == self.id
            && cached.generation == self.generation.load(Ordering::Relaxed)
            && cached.path == path.as_slice()
        {
            return Some(cached.walked);
        }
        self.forget_cached(cached);
        None
    }

    pub(super) fn drop_cached_walk(&self) {
        if let Some(old) = LAST_WALK.with(|c| c.borrow_mut().take()) {
            self.forget_cached(old);
        }
    }

    fn forget_cached(&self, old: CachedWalk) {
        // A walk of another file system (tests) belongs to that one's table: only ours is
        // forgotten here; the other's lookup just stays counted.
        if old.fs == self.id {
            self.release_entry(&old.walked.entry);
        }
    }

    /// Visible names of view directory `dir`.
    pub(super) fn list(&self, dir: Ino) -> FsResult<Vec<OsString>> {
        let fh = self.view.opendir(dir)?;
        let mut out = Vec::new();
        let res = self.view.readdir(fh, 0, |e| {
            if e.name != "." && e.name != ".." {
                out.push(e.name);
            }
            false
        });
        self.view.releasedir(fh);
        res.map(|()| out)
    }

    /// Looks `name` up in `dir` by the case rule, in the store's spelling: the exact name if
    /// the store has it, else the ordinal-first name with the same upper case; a candidate
    /// the view hides gives way to the next. One directory query for the spellings (never a
    /// listing), then one view lookup. One lookup held on success.
    pub(super) fn lookup(&self, dir: Ino, name: &str) -> FsResult<(Entry, OsString)> {
        let spellings: Vec<String> = self
            .view
            .spellings(dir, OsStr::new(name))?
            .into_iter()
            .filter_map(|n| n.into_string().ok())
            .collect();
        let found = names::case_candidates(name, spellings.iter().map(String::as_str));
        for real in found {
            match self.view.lookup(dir, OsStr::new(real)) {
                Ok(e) => return Ok((e, real.into())),
                Err(FsError::NotFound) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(FsError::NotFound)
    }

    /// Walks a WinFsp path from the root. A missing component or a file before the last
    /// component is `STATUS_OBJECT_PATH_NOT_FOUND`, as on NTFS; the last one missing is
    /// `STATUS_OBJECT_NAME_NOT_FOUND`.
    pub(super) fn walk(&self, path: &U16CStr) -> winfsp::Result<Walked> {
        let path = path.to_string_lossy();
        let comps = names::components(&path);
        let mut parent = ROOT_INO;
        let mut held: Option<Entry> = None;
        let mut found = Vec::new();
        for (i, c) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            let dir = held.as_ref().map_or(ROOT_INO, |e| e.attr.ino);
            if let Some(e) = &held
                && e.attr.kind != AttrKind::Dir
            {
                self.release_entry(e);
                return Err(nt(status::STATUS_OBJECT_PATH_NOT_FOUND));
            }
            let res = self.lookup(dir, c);
            if let Some(e) = held.take() {
                self.release_entry(&e);
            }
            let (e, real) = match res {
                Ok(x) => x,
                Err(FsError::NotFound | FsError::NotDir) if !last => {
                    last_status::clear();
                    return Err(nt(status::STATUS_OBJECT_PATH_NOT_FOUND));
                }
                Err(e) => return Err(self.fail(e.during("lookup", dir))),
            };
            parent = dir;
            found.push(real);
            held = Some(e);
        }
        let entry = match held {
            Some(e) => e,
            None => {
                let (attr, ttl) = self
                    .view
                    .getattr(ROOT_INO, None)
                    .map_err(|e| self.fail(e.during("getattr", ROOT_INO)))?;
                Entry {
                    attr,
                    attr_ttl: ttl,
                    entry_ttl: ttl,
                }
            }
        };
        Ok(Walked {
            parent,
            entry,
            names: found,
        })
    }

    /// The walk of `path`: the one this request's access check made, else a new one.
    pub(super) fn walk_once(&self, path: &U16CStr) -> winfsp::Result<Walked> {
        match self.take_walk(path) {
            Some(w) => Ok(w),
            None => self.walk(path),
        }
    }

    /// The parent directory of a WinFsp path (one lookup held unless it is the root) and
    /// the final store name, as given (mapped back from its Windows form). A parent that is
    /// missing or not a directory is `STATUS_OBJECT_PATH_NOT_FOUND`.
    pub(super) fn walk_parent(&self, path: &U16CStr) -> winfsp::Result<(Ino, OsString)> {
        let s = path.to_string_lossy();
        let (dir, name) = match s.rfind('\\') {
            Some(i) => (&s[..i], &s[i + 1..]),
            None => ("", s.as_str()),
        };
        if name.is_empty() {
            return Err(self.fail(FsError::Invalid.during("walk", None)));
        }
        let name = OsString::from(names::from_windows(name).into_owned());
        if dir.is_empty() {
            return Ok((ROOT_INO, name));
        }
        let wdir = winfsp::U16CString::from_str_truncate(dir);
        let w = match self.walk_once(&wdir) {
            Ok(w) => w,
            Err(e) if e.to_ntstatus() == status::STATUS_OBJECT_NAME_NOT_FOUND => {
                return Err(nt(status::STATUS_OBJECT_PATH_NOT_FOUND));
            }
            Err(e) => return Err(e),
        };
        if w.entry.attr.kind != AttrKind::Dir {
            self.release_entry(&w.entry);
            return Err(nt(status::STATUS_OBJECT_PATH_NOT_FOUND));
        }
        Ok((w.entry.attr.ino, name))
    }

    pub(super) fn release_parent(&self, ino: Ino) {
        if ino != ROOT_INO {
            self.view.forget(ino, 1);
        }
    }

    pub(super) fn release_entry(&self, e: &Entry) {
        if e.attr.ino != ROOT_INO {
            self.view.forget(e.attr.ino, 1);
        }
    }
}
