//! Store files of blobs read on a `noopen` mount, kept between reads.
//!
//! Without opens the kernel names no handle in a read, so each read needs the store file of
//! its inode. Opening it per read costs a store round trip or two on a network store (a cold
//! model load read in 1 MiB requests took twice as long); so the view handles of immutable
//! blobs are kept between the reads of one stream: at most [`KEPT`], each for at most
//! [`IDLE`] after its last read. A blob's bytes never change, so a kept handle never serves
//! other bytes; a blob deleted in the store is let go within [`IDLE`] of the reads that
//! continue (its space on a server is not held for long); mutable files are opened per read.
//!
//! Invariants: a handle is used by one read at a time — a read takes it out and puts it back
//! — so an eviction never closes a handle under a read; every handle that leaves the cache
//! and is not put back is returned to the caller to release.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::view::Fh;

/// How many blobs' store files stay open between reads.
const KEPT: usize = 64;

/// How long after its last read a blob's store file stays open.
const IDLE: Duration = Duration::from_secs(1);

/// The kept handles, by inode, with the time each was put back.
#[derive(Debug)]
pub struct Unopened {
    kept: Mutex<LruCache<u64, (Fh, Instant)>>,
}

impl Default for Unopened {
    fn default() -> Self {
        Unopened {
            kept: Mutex::new(LruCache::new(NonZeroUsize::MIN.saturating_add(KEPT - 1))),
        }
    }
}

impl Unopened {
    /// Takes the kept handle of `ino` out for one read, if it was read within [`IDLE`];
    /// also returns the handles to release: those idle longer.
    pub fn take(&self, ino: u64) -> (Option<Fh>, Vec<Fh>) {
        let mut kept = self.lock();
        let fresh = kept.pop(&ino).and_then(|(fh, at)| {
            if at.elapsed() < IDLE {
                Some(fh)
            } else {
                kept.push(ino, (fh, at));
                None
            }
        });
        (fresh, Self::idle(&mut kept))
    }

    /// Puts `fh` of `ino` back after a read; returns the handles to release (one pushed out,
    /// those idle longer than [`IDLE`], or `fh` itself if a concurrent read put one back
    /// first).
    pub fn put(&self, ino: u64, fh: Fh) -> Vec<Fh> {
        let mut kept = self.lock();
        let mut out = Self::idle(&mut kept);
        if kept.contains(&ino) {
            out.push(fh);
        } else if let Some((_, (old, _))) = kept.push(ino, (fh, Instant::now())) {
            out.push(old);
        }
        out
    }

    /// Forgets `ino`'s handle (the kernel forgot the inode); returns it to release.
    pub fn forget(&self, ino: u64) -> Option<Fh> {
        self.lock().pop(&ino).map(|(fh, _)| fh)
    }

    /// Removes the handles idle longer than [`IDLE`] (the least recently put back first).
    fn idle(kept: &mut LruCache<u64, (Fh, Instant)>) -> Vec<Fh> {
        let mut out = Vec::new();
        while kept
            .peek_lru()
            .is_some_and(|(_, (_, at))| at.elapsed() >= IDLE)
        {
            if let Some((_, (fh, _))) = kept.pop_lru() {
                out.push(fh);
            }
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<u64, (Fh, Instant)>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_serves_one_read_at_a_time_and_every_extra_one_is_given_back() {
        let u = Unopened::default();
        assert_eq!(u.take(1), (None, vec![]));
        assert_eq!(u.put(1, Fh(10)), vec![]);
        // Two concurrent reads: the first takes the kept handle, the second opens its own.
        assert_eq!(u.take(1), (Some(Fh(10)), vec![]));
        assert_eq!(u.take(1), (None, vec![]));
        assert_eq!(u.put(1, Fh(11)), vec![]);
        assert_eq!(u.put(1, Fh(10)), vec![Fh(10)]);
        assert_eq!(u.forget(1), Some(Fh(11)));
        // Bounded: the least recently used handle is pushed out to be released.
        for i in 0..KEPT as u64 {
            assert_eq!(u.put(100 + i, Fh(100 + i)), vec![]);
        }
        assert_eq!(u.take(100), (Some(Fh(100)), vec![]));
        assert_eq!(u.put(100, Fh(100)), vec![]);
        assert_eq!(u.put(9999, Fh(9999)), vec![Fh(101)]);
        assert_eq!(u.forget(9999), Some(Fh(9999)));
        assert_eq!(u.forget(9999), None);
    }

    #[test]
    fn handles_idle_past_the_limit_are_let_go() {
        let u = Unopened::default();
        assert_eq!(u.put(1, Fh(1)), vec![]);
        assert_eq!(u.put(2, Fh(2)), vec![]);
        std::thread::sleep(IDLE + Duration::from_millis(50));
        // Not handed out again; both given back to be released.
        let (fresh, mut gone) = u.take(1);
        gone.sort_by_key(|f| f.0);
        assert_eq!((fresh, gone), (None, vec![Fh(1), Fh(2)]));
        assert_eq!(u.forget(1), None);
    }
}
