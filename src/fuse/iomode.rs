//! Kernel I/O modes of open files: passthrough or page cache, per inode.
//!
//! Invariants (the kernel's rules for FUSE passthrough):
//! - an inode is served either through passthrough or through the page cache, never both:
//!   all its open handles are of one kind;
//! - all passthrough handles of an inode share one backing file (`BackingId`).
//!
//! Policy: the first open of an inode decides. Immutable blobs get a read-only backing;
//! other files a read-write one (so later writers can share it); a writer meeting a
//! read-only backing is refused with `ETXTBSY`. When the last handle of a blob closes, its
//! backing stays registered in a small LRU, so reopening it (a model loaded again, `cat` of
//! many files) costs no new registration.

use std::collections::HashMap;
use std::num::NonZeroUsize;

use lru::LruCache;

/// How many idle blob backings are kept.
const IDLE_BACKINGS: usize = 1024;

/// One registered backing file.
#[derive(Debug)]
struct Backing<B> {
    id: B,
    writable: bool,
    immutable: bool,
    users: usize,
}

/// What an open gets.
#[derive(Debug)]
pub(crate) enum Grant<'a, B> {
    /// Reply with passthrough on this backing.
    Passthrough(&'a B),
    /// Reply for the page cache.
    Cached,
    /// Refuse: the inode has a read-only backing and this open wants to write.
    Busy,
}

/// An open to decide on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenReq {
    /// The inode.
    pub ino: u64,
    /// The new handle.
    pub fh: u64,
    /// The open writes.
    pub writable: bool,
    /// The file is an immutable blob.
    pub immutable: bool,
    /// Passthrough is enabled and working.
    pub passthrough: bool,
}

/// Per-inode modes of the open handles; `B` is the backing handle (`fuser::BackingId`).
#[derive(Debug)]
pub(crate) struct IoModes<B> {
    backing: HashMap<u64, Backing<B>>,
    idle: LruCache<u64, Backing<B>>,
    cached: HashMap<u64, usize>,
    handles: HashMap<u64, (u64, bool)>,
}

impl<B> Default for IoModes<B> {
    fn default() -> Self {
        IoModes {
            backing: HashMap::new(),
            idle: LruCache::new(NonZeroUsize::new(IDLE_BACKINGS).unwrap_or(NonZeroUsize::MIN)),
            cached: HashMap::new(),
            handles: HashMap::new(),
        }
    }
}

impl<B> IoModes<B> {
    /// True if a writable open of `ino` would be refused now (a read-only backing serves it).
    pub(crate) fn refuses_writers(&self, ino: u64) -> bool {
        self.backing.get(&ino).is_some_and(|b| !b.writable)
    }

    /// Decides the mode of a new handle. `register(rdwr)` registers a backing file for the
    /// handle (read-write if asked and possible) and says whether it is writable; it is called
    /// only when a new backing is needed.
    pub(crate) fn open(
        &mut self,
        req: OpenReq,
        register: impl FnOnce(bool) -> Option<(B, bool)>,
    ) -> Grant<'_, B> {
        let cached = self.cached.get(&req.ino).copied().unwrap_or(0);
        // An idle backing is revived only if it serves this open; a writer meeting an idle
        // read-only one drops it (nobody uses it) and starts afresh.
        if !self.backing.contains_key(&req.ino)
            && let Some(b) = self.idle.pop(&req.ino)
            && cached == 0
            && (!req.writable || b.writable)
        {
            self.backing.insert(req.ino, b);
        }
        if self.backing.contains_key(&req.ino) {
            let Some(b) = self.backing.get_mut(&req.ino) else {
                return Grant::Cached;
            };
            if req.writable && !b.writable {
                return Grant::Busy;
            }
            b.users += 1;
            self.handles.insert(req.fh, (req.ino, true));
            return Grant::Passthrough(&b.id);
        }
        if cached == 0
            && req.passthrough
            && let Some((id, writable)) = register(!req.immutable)
            && (!req.writable || writable)
        {
            self.handles.insert(req.fh, (req.ino, true));
            let b = self.backing.entry(req.ino).or_insert(Backing {
                id,
                writable,
                immutable: req.immutable,
                users: 0,
            });
            b.users += 1;
            return Grant::Passthrough(&b.id);
        }
        *self.cached.entry(req.ino).or_insert(0) += 1;
        self.handles.insert(req.fh, (req.ino, false));
        Grant::Cached
    }

    /// Forgets a closed handle; a blob's backing goes idle with its last handle.
    pub(crate) fn release(&mut self, fh: u64) {
        let Some((ino, passthrough)) = self.handles.remove(&fh) else {
            return;
        };
        if !passthrough {
            if let Some(n) = self.cached.get_mut(&ino) {
                *n -= 1;
                if *n == 0 {
                    self.cached.remove(&ino);
                }
            }
            return;
        }
        let last = match self.backing.get_mut(&ino) {
            Some(b) => {
                b.users -= 1;
                b.users == 0
            }
            None => false,
        };
        if last
            && let Some(b) = self.backing.remove(&ino)
            && b.immutable
        {
            self.idle.put(ino, b);
        }
    }

    /// The backing a passthrough handle uses.
    pub(crate) fn backing_for(&self, fh: u64) -> Option<&B> {
        match self.handles.get(&fh) {
            Some((ino, true)) => self.backing.get(ino).map(|b| &b.id),
            _ => None,
        }
    }

    /// Drops the idle backing of an inode the kernel forgot.
    pub(crate) fn forget(&mut self, ino: u64) {
        self.idle.pop(&ino);
    }

    /// Number of registered backings (active, idle).
    #[cfg(test)]
    pub(crate) fn backings(&self) -> (usize, usize) {
        (self.backing.len(), self.idle.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ino: u64, fh: u64, writable: bool, immutable: bool) -> OpenReq {
        OpenReq {
            ino,
            fh,
            writable,
            immutable,
            passthrough: true,
        }
    }

    #[test]
    fn one_backing_per_inode_and_idle_reuse() {
        let mut io = IoModes::<u32>::default();
        let mut made = 0;
        for fh in 1..=3 {
            let g = io.open(req(7, fh, false, true), |_| {
                made += 1;
                Some((70, false))
            });
            assert!(matches!(g, Grant::Passthrough(&70)));
        }
        assert_eq!(made, 1, "handles of one inode share one backing");
        for fh in 1..=3 {
            io.release(fh);
        }
        assert_eq!(io.backings(), (0, 1), "a blob's backing goes idle");
        let g = io.open(req(7, 4, false, true), |_| {
            panic!("idle backing must be reused")
        });
        assert!(matches!(g, Grant::Passthrough(&70)));
        io.release(4);
        // A writer (the file was renamed out of blobs/) drops the idle read-only backing.
        let g = io.open(req(7, 5, true, false), |rw| Some((71, rw)));
        assert!(matches!(g, Grant::Passthrough(&71)));
        io.release(5);
        io.forget(7);
        assert_eq!(io.backings(), (0, 0));
    }

    #[test]
    fn writers_and_read_only_backings() {
        let mut io = IoModes::<u32>::default();
        assert!(matches!(
            io.open(req(1, 1, false, true), |rw| Some((1, rw))),
            Grant::Passthrough(_)
        ));
        assert!(matches!(
            io.open(req(1, 2, true, false), |_| None),
            Grant::Busy
        ));
        // A mutable file gets a read-write backing that writers and readers share.
        assert!(matches!(
            io.open(req(2, 3, false, false), |rw| Some((2, rw))),
            Grant::Passthrough(_)
        ));
        assert!(matches!(
            io.open(req(2, 4, true, false), |_| None),
            Grant::Passthrough(&2)
        ));
        io.release(3);
        io.release(4);
        assert_eq!(
            io.backings(),
            (1, 0),
            "mutable files do not stay registered"
        );
    }

    #[test]
    fn page_cache_and_passthrough_never_mix() {
        let mut io = IoModes::<u32>::default();
        // Registration refused (no capability): page cache.
        assert!(matches!(
            io.open(req(3, 1, true, false), |_| None),
            Grant::Cached
        ));
        // While a page-cache handle is open, no passthrough for that inode.
        let g = io.open(req(3, 2, false, true), |_| panic!("must not register"));
        assert!(matches!(g, Grant::Cached));
        io.release(1);
        io.release(2);
        assert!(matches!(
            io.open(req(3, 3, false, true), |rw| Some((3, rw))),
            Grant::Passthrough(_)
        ));
        // A writer needs a writable backing; a read-only registration leaves it cached.
        let mut off = req(4, 5, true, false);
        off.passthrough = true;
        assert!(matches!(io.open(off, |_| Some((4, false))), Grant::Cached));
    }
}
