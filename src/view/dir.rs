//! Directory listings. A listing is read from the store when a handle starts at offset 0
//! and served from that snapshot for later offsets, so entries added while a client reads
//! the directory never shift the offsets it resumes from (a new `rewinddir` sees them).
//! Offsets are 1-based positions in the snapshot after `.` and `..`.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use super::ids::Fh;
use super::{CacheView, Entry};
use crate::error::{FsError, FsResult};
use crate::inode::Ino;
use crate::path::StorePath;
use crate::store::{Kind, Meta, RawEntry};
use crate::view::attr::AttrKind;

/// An open directory.
#[derive(Debug)]
pub struct DirHandle {
    ino: Ino,
    listing: Mutex<Option<Arc<Listing>>>,
}

/// The entries of one directory as read at one time, sorted by name: the names in one
/// buffer (a single allocation, given back whole when the last handle lets go), shared by
/// every handle that lists the same unchanged directory — so memory grows with the
/// directories being listed, not with the handles open on them.
#[derive(Debug)]
pub(super) struct Listing {
    names: Vec<u8>,
    slots: Vec<Slot>,
    /// The directory's identity and change times when it was read.
    version: (u64, SystemTime, SystemTime),
    read_at: SystemTime,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    start: u32,
    len: u32,
    kind: Option<Kind>,
    ino: u64,
}

/// One entry of a [`Listing`].
struct Listed<'a> {
    name: &'a OsStr,
    kind: Option<Kind>,
    ino: u64,
}

/// A listing is shared only if the directory's change time lay this far before it was
/// read: a change within the file system's timestamp granularity could leave the time
/// unchanged.
const SHARE_MARGIN: Duration = Duration::from_secs(1);

/// How many entries of a listing on a network store are looked up at once.
const PREFETCH: usize = 32;

/// How many entries of a listing on a local store are looked up at once: fewer than fit one
/// reply (about 25 entries of 4 KiB), so little is looked up only to be forgotten.
const LOCAL_PREFETCH: usize = 16;

/// Threads that look up one window.
const PREFETCH_THREADS: usize = 8;

/// The threads that look up the entries of a window (see [`CacheView::lookup_window`]),
/// started at the first window; the calling worker waits for them.
fn lookup_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(PREFETCH_THREADS)
            .thread_name(|i| format!("lookup-{i}"))
            .build()
            .map_err(|e| log::warn!("no lookup threads ({e}); listings look entries up one by one"))
            .ok()
    })
    .as_ref()
}

/// The shared listings of a view, by store path (see [`Listing`]).
pub(super) type Listings = Mutex<HashMap<StorePath, Weak<Listing>>>;

impl Listing {
    fn new(mut raw: Vec<RawEntry>, dir: &Meta) -> Listing {
        raw.sort_by(|a, b| a.name.cmp(&b.name));
        let total: usize = raw.iter().map(|e| e.name.len()).sum();
        let mut names = Vec::with_capacity(total);
        let mut slots = Vec::with_capacity(raw.len());
        for e in raw {
            let bytes = e.name.as_encoded_bytes();
            let (Ok(start), Ok(len)) = (u32::try_from(names.len()), u32::try_from(bytes.len()))
            else {
                break; // over 4 GiB of names: the rest is not listed
            };
            names.extend_from_slice(bytes);
            slots.push(Slot {
                start,
                len,
                kind: e.kind,
                ino: e.ino,
            });
        }
        Listing {
            names,
            slots,
            version: (dir.ino, dir.mtime, dir.ctime),
            read_at: SystemTime::now(),
        }
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn get(&self, i: usize) -> Option<Listed<'_>> {
        let s = self.slots.get(i)?;
        let bytes = self
            .names
            .get(s.start as usize..s.start as usize + s.len as usize)?;
        // SAFETY: `bytes` is exactly what `as_encoded_bytes` gave for one `OsStr` in
        // `Listing::new`, in this process.
        let name = unsafe { OsStr::from_encoded_bytes_unchecked(bytes) };
        Some(Listed {
            name,
            kind: s.kind,
            ino: s.ino,
        })
    }

    /// True if a handle starting now may use this listing for a directory now at `dir`.
    fn still_fits(&self, dir: &Meta) -> bool {
        self.version == (dir.ino, dir.mtime, dir.ctime)
            && self
                .read_at
                .duration_since(dir.mtime.max(dir.ctime))
                .is_ok_and(|d| d >= SHARE_MARGIN)
    }
}

/// One entry of a plain `readdir`.
#[derive(Clone, Debug)]
pub struct DirEntry {
    /// Inode number to report (`d_ino`): a hint only, the store's number for entries not
    /// looked up (the kernel asks `lookup` for the real one).
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
    pub fn opendir(&self, ino: Ino) -> FsResult<Fh> {
        let node = self.dir_node(ino)?;
        self.check_reach(&node)?;
        Ok(self.handles.insert_dir(DirHandle {
            ino,
            listing: Mutex::new(None),
        }))
    }

    /// Closes a directory handle.
    pub fn releasedir(&self, fh: Fh) {
        self.handles.remove_dir(fh);
    }

    /// The snapshot of the listing for `fh`, (re)read at offset 0.
    fn listing(&self, fh: Fh, offset: u64) -> FsResult<(Ino, Arc<Listing>)> {
        let h = self.handles.dir(fh).ok_or(FsError::BadHandle)?;
        let mut slot = h.listing.lock().unwrap_or_else(|e| e.into_inner());
        if offset == 0 || slot.is_none() {
            let node = self.dir_node(h.ino)?;
            *slot = Some(self.read_listing(&node.real)?);
        }
        match slot.as_ref() {
            Some(list) => Ok((h.ino, list.clone())),
            None => Err(FsError::BadHandle),
        }
    }

    /// Looks up the entries `range` of `list` in directory `dir` (counting a lookup for each
    /// found), in parallel when the range has more than one. Entries that vanished or
    /// cannot be looked up are `None` (left out, as hidden ones are).
    fn lookup_window(
        &self,
        dir: Ino,
        list: &Listing,
        range: std::ops::Range<usize>,
    ) -> Vec<Option<Entry>> {
        let one = |k: usize| -> Option<Entry> {
            let raw = list.get(k)?;
            self.lookup(dir, raw.name)
                .map_err(|e| log::debug!("readdirplus: skipping {:?}: {e}", raw.name))
                .ok()
        };
        if range.len() <= 1 {
            return range.map(one).collect();
        }
        // Each thread serves the same caller: the access checks must see it.
        let caller = super::access::current();
        // The pool's threads live as long as the process: a window costs no thread start
        // (a cold listing of 10,000 entries once started 5,000 threads, one per two entries).
        let Some(pool) = lookup_pool() else {
            return range.map(one).collect();
        };
        pool.install(|| {
            use rayon::prelude::*;
            range
                .into_par_iter()
                .map(|k| {
                    let _serving = caller.map(super::access::serving);
                    // A panicking lookup loses only its entry.
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| one(k)))
                        .unwrap_or_default()
                })
                .collect()
        })
    }

    /// The listing of store directory `dir`: a shared one that still fits, or read anew.
    fn read_listing(&self, dir: &StorePath) -> FsResult<Arc<Listing>> {
        let meta = self.store.lstat(dir)?;
        let shared = self
            .listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(dir)
            .and_then(Weak::upgrade);
        if let Some(l) = shared.filter(|l| l.still_fits(&meta)) {
            return Ok(l);
        }
        let list = Arc::new(Listing::new(self.store.read_dir(dir)?, &meta));
        let mut all = self.listings.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() >= 1024 {
            all.retain(|_, w| w.strong_count() > 0);
        }
        all.insert(dir.clone(), Arc::downgrade(&list));
        Ok(list)
    }

    /// How a listed name shows, without counting a lookup: `None` if hidden.
    fn listed_kind(&self, dir: Ino, raw: &Listed<'_>) -> Option<AttrKind> {
        match raw.kind {
            Some(Kind::Dir) => Some(AttrKind::Dir),
            Some(Kind::Special) => None,
            Some(Kind::File) | Some(Kind::Symlink) | None => {
                let node = self.dir_node(dir).ok()?;
                let path = node.real.join(raw.name)?;
                let meta = self.store.lstat(&path).ok()?;
                // Only a file of an XSym link's exact size can be a link.
                if raw.kind == Some(Kind::File)
                    && !(meta.kind == Kind::File && crate::links::xsym::may_be_xsym(meta.size))
                {
                    return Some(AttrKind::File);
                }
                let shown = self.classify(dir, raw.name, path, meta).ok()?;
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
        fh: Fh,
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
                ino: d_ino.0,
                offset: pos,
                kind: AttrKind::Dir,
                name: name.into(),
            };
            if fill(e) {
                return Ok(());
            }
        }
        for raw in (pos as usize - dots.len()..list.len()).filter_map(|i| list.get(i)) {
            pos += 1;
            let Some(kind) = self.listed_kind(ino, &raw) else {
                continue;
            };
            let e = DirEntry {
                ino: raw.ino.max(2),
                offset: pos,
                kind,
                name: raw.name.to_os_string(),
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
        fh: Fh,
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
        // The entries of a window are looked up at once on the pool's threads: on a network
        // store each lookup is a few round trips, on a local one a cold lookup waits for the
        // disk and a cached one costs a few microseconds, which the pool's hand-over does not
        // outweigh (a cold `find` of 10,000 links: 0.29 s one by one, 0.23 s in windows of
        // 16; with the store's inodes cached, the same). Lookups the reply has no room for
        // are forgotten again.
        let window = if self.remote_store {
            PREFETCH
        } else {
            LOCAL_PREFETCH
        };
        let mut i = pos as usize - 2;
        while i < list.len() {
            let end = (i + window).min(list.len());
            let mut found = self.lookup_window(ino, &list, i..end).into_iter();
            for k in i..end {
                pos += 1;
                let Some(entry) = found.next().flatten() else {
                    continue;
                };
                let Some(raw) = list.get(k) else { continue };
                if fill(raw.name, pos, &entry) {
                    self.forget(entry.attr.ino, 1);
                    for e in found.flatten() {
                        self.forget(e.attr.ino, 1);
                    }
                    return Ok(());
                }
            }
            i = end;
        }
        Ok(())
    }
}
