//! A fault-injecting wrapper around any [`StoreBackend`], for tests of how the core answers a
//! failing store: chosen calls fail with an errno (`EIO`, `ENOSPC`, `ESTALE`, …) or return
//! short reads, either by rule (the n-th call of an operation, counted from when the rule is
//! armed) or by a seeded schedule (each call fails with a fixed probability, reproducibly).
//!
//! Invariants: a call that gets a fault never reaches the inner store (an injected error
//! has no side effect, as a store that failed before doing anything); every injected fault
//! is recorded ([`FaultyStore::injected`]) so a test can tell a fault it caused from a bug;
//! the wrapper holds its lock only while deciding, never across the inner call.
//!
//! It wraps either platform's backend; on Windows the Windows-only calls can be failed too.
//! An injected error keeps no NTSTATUS (`last_status`), so the WinFsp adapter answers it from
//! its errno.

#[cfg(windows)]
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::seam::{StoreBackend, StoreFile};
use super::{Meta, OFlags, RawEntry, StoreStatfs};
use crate::path::StorePath;

/// A store operation faults can be aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultOp {
    /// [`StoreBackend::open`].
    Open,
    /// [`StoreBackend::lstat`].
    Lstat,
    /// [`StoreBackend::readlink`].
    Readlink,
    /// [`StoreBackend::read_head`].
    ReadHead,
    /// [`StoreBackend::read_dir`].
    ReadDir,
    /// [`StoreBackend::mkdir`].
    Mkdir,
    /// [`StoreBackend::unlink`].
    Unlink,
    /// [`StoreBackend::rmdir`].
    Rmdir,
    /// [`StoreBackend::rename`].
    Rename,
    /// [`StoreBackend::symlink`].
    Symlink,
    /// [`StoreBackend::link`].
    Link,
    /// [`StoreBackend::statfs`].
    Statfs,
    /// `StoreBackend::find_names` (Windows).
    #[cfg(windows)]
    FindNames,
    /// `StoreBackend::open_for_lock` (Windows).
    #[cfg(windows)]
    OpenForLock,
    /// `StoreBackend::open_for_delete` (Windows).
    #[cfg(windows)]
    OpenForDelete,
    /// `StoreBackend::can_symlink` (Windows).
    #[cfg(windows)]
    CanSymlink,
}

impl FaultOp {
    /// Operations that change the store.
    pub const MUTATIONS: [FaultOp; 6] = [
        FaultOp::Mkdir,
        FaultOp::Unlink,
        FaultOp::Rmdir,
        FaultOp::Rename,
        FaultOp::Symlink,
        FaultOp::Link,
    ];
}

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call fails with this errno.
    Errno(i32),
    /// A read returns only the first half of what it would (for [`FaultOp::ReadHead`]; any
    /// other operation is unaffected).
    ShortRead,
}

/// Which calls fail: `None` for every operation.
#[derive(Clone, Debug)]
struct Rule {
    op: Option<FaultOp>,
    /// Matching calls still to let through before failing.
    skip: u64,
    /// Matching calls still to fail.
    times: u64,
    fault: Fault,
}

#[derive(Debug, Default)]
struct Plan {
    rules: Vec<Rule>,
    /// `(state, one_in, faults)`: a xorshift generator; each call fails with probability
    /// `1/one_in`, with a fault picked from `faults`.
    schedule: Option<(u64, u64, Vec<Fault>)>,
    injected: Vec<(FaultOp, Fault)>,
}

/// The wrapper (see the module header).
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn StoreBackend>,
    plan: Mutex<Plan>,
}

impl FaultyStore {
    /// Wraps `inner`; no fault is armed.
    pub fn new(inner: Arc<dyn StoreBackend>) -> FaultyStore {
        FaultyStore {
            inner,
            plan: Mutex::default(),
        }
    }

    fn plan(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After `skip` more calls of `op` (any operation with `None`), the next `times` fail
    /// with `fault`.
    pub fn fail(&self, op: Option<FaultOp>, skip: u64, times: u64, fault: Fault) {
        self.plan().rules.push(Rule {
            op,
            skip,
            times,
            fault,
        });
    }

    /// From now on, each call fails with probability `1/one_in` with one of `faults`, in
    /// an order fixed by `seed`.
    pub fn schedule(&self, seed: u64, one_in: u64, faults: Vec<Fault>) {
        self.plan().schedule = Some((seed | 1, one_in.max(1), faults));
    }

    /// Disarms every rule and the schedule (the record of injected faults stays).
    pub fn clear(&self) {
        let mut plan = self.plan();
        plan.rules.clear();
        plan.schedule = None;
    }

    /// Every fault injected so far, in order.
    pub fn injected(&self) -> Vec<(FaultOp, Fault)> {
        self.plan().injected.clone()
    }

    /// Decides whether this call of `op` fails.
    fn check(&self, op: FaultOp) -> Option<Fault> {
        let mut plan = self.plan();
        let mut hit = None;
        for rule in plan.rules.iter_mut() {
            if rule.times == 0 || rule.op.is_some_and(|o| o != op) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            rule.times -= 1;
            hit = Some(rule.fault);
            break;
        }
        plan.rules.retain(|r| r.times > 0);
        if hit.is_none()
            && let Some((state, one_in, faults)) = &mut plan.schedule
        {
            // xorshift64: reproducible from the seed, no dependency.
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            if !faults.is_empty() && (*state).is_multiple_of(*one_in) {
                hit = Some(faults[((*state / *one_in) % faults.len() as u64) as usize]);
            }
        }
        if let Some(f) = hit {
            plan.injected.push((op, f));
        }
        hit
    }

    /// `Err` for an injected errno; short reads are left to the caller.
    fn gate(&self, op: FaultOp) -> io::Result<Option<Fault>> {
        match self.check(op) {
            Some(Fault::Errno(e)) => Err(io::Error::from_raw_os_error(e)),
            other => Ok(other),
        }
    }
}

impl StoreBackend for FaultyStore {
    fn aliases(&self) -> &[PathBuf] {
        self.inner.aliases()
    }
    fn set_xsym(&self, on: bool) {
        self.inner.set_xsym(on)
    }
    fn xsym_links(&self, p: &StorePath) -> bool {
        self.inner.xsym_links(p)
    }
    fn set_dir_cache_ttl(&self, ttl: Duration) {
        self.inner.set_dir_cache_ttl(ttl)
    }
    fn open(&self, p: &StorePath, flags: OFlags, mode: u32) -> io::Result<StoreFile> {
        self.gate(FaultOp::Open)?;
        self.inner.open(p, flags, mode)
    }
    fn lstat(&self, p: &StorePath) -> io::Result<Meta> {
        self.gate(FaultOp::Lstat)?;
        self.inner.lstat(p)
    }
    fn readlink(&self, p: &StorePath) -> io::Result<Vec<u8>> {
        self.gate(FaultOp::Readlink)?;
        self.inner.readlink(p)
    }
    fn read_head(&self, p: &StorePath, max: usize) -> io::Result<Vec<u8>> {
        let short = self.gate(FaultOp::ReadHead)? == Some(Fault::ShortRead);
        let mut head = self.inner.read_head(p, max)?;
        if short {
            head.truncate(head.len() / 2);
        }
        Ok(head)
    }
    fn read_dir(&self, p: &StorePath) -> io::Result<Vec<RawEntry>> {
        self.gate(FaultOp::ReadDir)?;
        self.inner.read_dir(p)
    }
    fn mkdir(&self, p: &StorePath, mode: u32) -> io::Result<()> {
        self.gate(FaultOp::Mkdir)?;
        self.inner.mkdir(p, mode)
    }
    fn unlink(&self, p: &StorePath) -> io::Result<()> {
        self.gate(FaultOp::Unlink)?;
        self.inner.unlink(p)
    }
    fn rmdir(&self, p: &StorePath) -> io::Result<()> {
        self.gate(FaultOp::Rmdir)?;
        self.inner.rmdir(p)
    }
    fn rename(&self, from: &StorePath, to: &StorePath, flags: u32) -> io::Result<()> {
        self.gate(FaultOp::Rename)?;
        self.inner.rename(from, to, flags)
    }
    fn symlink(&self, text: &Path, p: &StorePath) -> io::Result<()> {
        self.gate(FaultOp::Symlink)?;
        self.inner.symlink(text, p)
    }
    fn link(&self, from: &StorePath, to: &StorePath) -> io::Result<()> {
        self.gate(FaultOp::Link)?;
        self.inner.link(from, to)
    }
    fn is_on_fuse(&self) -> bool {
        self.inner.is_on_fuse()
    }
    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }
    fn statfs(&self) -> io::Result<StoreStatfs> {
        self.gate(FaultOp::Statfs)?;
        self.inner.statfs()
    }
    #[cfg(windows)]
    fn find_names(&self, dir: &StorePath, name: &OsStr) -> io::Result<Vec<OsString>> {
        self.gate(FaultOp::FindNames)?;
        self.inner.find_names(dir, name)
    }
    #[cfg(windows)]
    fn open_for_lock(&self, p: &StorePath) -> io::Result<StoreFile> {
        self.gate(FaultOp::OpenForLock)?;
        self.inner.open_for_lock(p)
    }
    #[cfg(windows)]
    fn open_for_delete(&self, p: &StorePath) -> io::Result<StoreFile> {
        self.gate(FaultOp::OpenForDelete)?;
        self.inner.open_for_delete(p)
    }
    #[cfg(windows)]
    fn can_symlink(&self, dir: &StorePath) -> io::Result<()> {
        self.gate(FaultOp::CanSymlink)?;
        self.inner.can_symlink(dir)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::store::model::ModelStore;

    fn store() -> FaultyStore {
        let m = ModelStore::new().unwrap();
        m.put_file(&StorePath::parse("f").unwrap(), b"0123456789")
            .unwrap();
        FaultyStore::new(Arc::new(m))
    }

    fn lstat_errno(s: &FaultyStore) -> Option<i32> {
        s.lstat(&StorePath::parse("f").unwrap())
            .err()
            .and_then(|e| e.raw_os_error())
    }

    #[test]
    fn the_nth_call_of_an_operation_fails_once() {
        let s = store();
        s.fail(Some(FaultOp::Lstat), 1, 1, Fault::Errno(libc::ESTALE));
        // Other operations are not counted.
        assert!(s.statfs().is_ok());
        assert_eq!(lstat_errno(&s), None);
        assert_eq!(lstat_errno(&s), Some(libc::ESTALE));
        assert_eq!(lstat_errno(&s), None);
        assert_eq!(
            s.injected(),
            vec![(FaultOp::Lstat, Fault::Errno(libc::ESTALE))]
        );
    }

    #[test]
    fn short_reads_halve_what_is_read() {
        let s = store();
        s.fail(Some(FaultOp::ReadHead), 0, 1, Fault::ShortRead);
        let f = StorePath::parse("f").unwrap();
        assert_eq!(s.read_head(&f, 100).unwrap(), b"01234");
        assert_eq!(s.read_head(&f, 100).unwrap(), b"0123456789");
    }

    #[test]
    fn a_seeded_schedule_is_reproducible() {
        let run = |seed| {
            let s = store();
            s.schedule(
                seed,
                3,
                vec![Fault::Errno(libc::EIO), Fault::Errno(libc::ENOSPC)],
            );
            (0..60).map(|_| lstat_errno(&s)).collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        let failed = a.iter().filter(|e| e.is_some()).count();
        assert!((5..=40).contains(&failed), "{failed} of 60 failed");
        let s = store();
        s.schedule(7, 3, vec![Fault::Errno(libc::EIO)]);
        s.clear();
        assert_eq!(lstat_errno(&s), None);
    }
}
