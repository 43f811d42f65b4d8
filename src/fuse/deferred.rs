//! Deferred opens: without kernel passthrough, a read-only open of an immutable blob is
//! answered without opening the store file, which is opened at the first read that reaches
//! the daemon. With the blob's pages kept by the kernel (`FOPEN_KEEP_CACHE`), a warm reader
//! never gets there: on a network store its open and close cost no round trip at all.
//!
//! Invariants: deferred handle numbers have [`BIT`] set, view handle numbers never do; an
//! entry opens at most one view handle and it is released with the entry; a blob found gone
//! at a deferred read is opened eagerly from then on (the eager open answers `ESTALE`, which
//! makes the kernel look the name up again and learn that it is gone).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{FsError, FsResult};
use crate::view::{Fh, Ino, OpenFlags};

/// How many blobs found gone are remembered.
const GONE_MAX: usize = 65_536;

/// The bit that marks a deferred handle number.
pub const BIT: u64 = 1 << 63;

/// The deferred handles of a mount.
#[derive(Debug, Default)]
pub struct Deferred {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Pending>>,
    gone: Mutex<HashSet<Ino>>,
}

#[derive(Debug)]
struct Pending {
    ino: Ino,
    flags: OpenFlags,
    /// The view handle, once a read needed the store.
    real: Option<Fh>,
}

impl Deferred {
    /// True for a deferred handle number.
    pub fn is_deferred(fh: u64) -> bool {
        fh & BIT != 0
    }

    /// True if an open of `ino` may be deferred (it was not found gone).
    pub fn may_defer(&self, ino: Ino) -> bool {
        !self
            .gone
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&ino)
    }

    /// A new deferred handle for `ino` opened with `flags`.
    pub fn insert(&self, ino: Ino, flags: OpenFlags) -> u64 {
        let fh = BIT | self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            fh,
            Pending {
                ino,
                flags,
                real: None,
            },
        );
        fh
    }

    /// The view handle behind `fh`, opened now with `open(ino, flags)` if none is yet;
    /// `release` gives back a handle opened by a racing read.
    pub fn resolve(
        &self,
        fh: u64,
        open: impl FnOnce(Ino, OpenFlags) -> FsResult<Fh>,
        release: impl FnOnce(Fh),
    ) -> FsResult<Fh> {
        let (ino, flags) = match self.lock().get(&fh) {
            Some(Pending { real: Some(r), .. }) => return Ok(*r),
            Some(p) => (p.ino, p.flags),
            None => return Err(FsError::BadHandle),
        };
        // The store is opened without the lock held.
        let real = match open(ino, flags) {
            Ok(r) => r,
            Err(e) => {
                if matches!(e, FsError::Stale) {
                    let mut gone = self.gone.lock().unwrap_or_else(|e| e.into_inner());
                    // Bounded: a forgotten one only costs one more failed read.
                    if gone.len() >= GONE_MAX {
                        gone.clear();
                    }
                    gone.insert(ino);
                }
                return Err(e);
            }
        };
        let mut open = self.lock();
        match open.get_mut(&fh) {
            Some(Pending { real: Some(r), .. }) => {
                let first = *r;
                drop(open);
                release(real);
                Ok(first)
            }
            Some(p) => {
                p.real = Some(real);
                Ok(real)
            }
            None => {
                drop(open);
                release(real);
                Err(FsError::BadHandle)
            }
        }
    }

    /// The view handle behind `fh` if a read opened one.
    pub fn real(&self, fh: u64) -> Option<Fh> {
        self.lock().get(&fh).and_then(|p| p.real)
    }

    /// Forgets `fh`; returns the view handle to release, if one was opened.
    pub fn remove(&self, fh: u64) -> Option<Fh> {
        self.lock().remove(&fh).and_then(|p| p.real)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_view_handle_per_deferred_handle_and_gone_blobs_open_eagerly() {
        let d = Deferred::default();
        let fh = d.insert(Ino(7), OpenFlags::READ);
        assert!(Deferred::is_deferred(fh));
        assert_eq!(d.real(fh), None);
        let first = d.resolve(fh, |_, _| Ok(Fh(42)), |_| panic!("nothing to give back"));
        assert!(matches!(first, Ok(Fh(42))));
        // Resolved once: the store is not opened again.
        let again = d.resolve(fh, |_, _| panic!("opened twice"), |_| {});
        assert!(matches!(again, Ok(Fh(42))));
        assert_eq!(d.remove(fh), Some(Fh(42)));
        assert!(d.may_defer(Ino(8)));
        let g = d.insert(Ino(8), OpenFlags::READ);
        assert!(matches!(
            d.resolve(g, |_, _| Err(FsError::Stale), |_| {}),
            Err(FsError::Stale)
        ));
        assert!(!d.may_defer(Ino(8)));
        assert_eq!(d.remove(g), None);
    }
}
