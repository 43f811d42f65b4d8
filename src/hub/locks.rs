//! Taking the hub's own locks (`.locks/<repo>/<etag>.lock` for downloads,
//! `blobs/<hh>/<hash>.lock` for the shared store; paths in [`super::names`]) the way its
//! clients do, so a tool never deletes what a client is writing.
//!
//! Invariants:
//! - The protocol is the clients' own: `flock` on Unix (the `filelock` package), `LockFileEx`
//!   of the first byte on Windows; a lock lasts while its [`Lock::Held`] file is open.
//! - Taking a lock never waits: a held lock is [`Lock::Busy`] and the caller leaves the entry
//!   alone.
//! - A lock file is created only when asked (`create`); a dry run asks never, so it changes
//!   nothing in the store.

#[cfg(windows)]
use crate::compat::libc;
use crate::path::StorePath;
use crate::store::{OFlags, Store};

/// A hub lock held (or not needed) for the duration of a change.
#[derive(Debug)]
pub enum Lock {
    /// Held until dropped.
    Held(#[allow(dead_code)] std::fs::File),
    /// No lock file, or a file system without locks: nobody can hold it either.
    NotUsed,
    /// Someone holds it (or it cannot be opened): leave the entry alone.
    Busy,
}

/// Takes the hub lock at `p` without blocking, creating the lock file if `create`.
pub fn try_lock(store: &Store, p: &StorePath, create: bool) -> Lock {
    let mut flags = OFlags::RDWR;
    if create {
        flags |= OFlags::CREATE;
    }
    let fd = match store.open(p, flags, 0o664) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Lock::NotUsed,
        Err(_) => match store.open(p, OFlags::RDONLY, 0) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Lock::NotUsed,
            Err(_) => return Lock::Busy,
        },
    };
    match try_lock_exclusive(fd) {
        Ok(Some(file)) => Lock::Held(file),
        Ok(None) => Lock::Busy,
        // A file system without locks: nobody can hold it either.
        Err(_) => Lock::NotUsed,
    }
}

/// Takes an exclusive lock on an open lock file without waiting: `Ok(None)` if someone holds
/// it. The hub's own protocol: `flock` on Unix (the `filelock` package), `LockFileEx` of the
/// first byte on Windows (what `filelock` takes there); the lock lasts while the file is open.
#[cfg(unix)]
fn try_lock_exclusive(fd: std::os::fd::OwnedFd) -> std::io::Result<Option<std::fs::File>> {
    use rustix::fs::FlockOperation;
    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(fd.into())),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(windows)]
fn try_lock_exclusive(file: std::fs::File) -> std::io::Result<Option<std::fs::File>> {
    Ok(crate::store::lock_exclusive_now(&file)?.then_some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second taker finds the lock busy until the first lets go; no file is created unless
    /// asked.
    #[test]
    fn a_held_lock_is_busy_and_dry_runs_create_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_root(dir.path()).unwrap();
        let p = StorePath::parse("x.lock").unwrap();
        assert!(matches!(try_lock(&store, &p, false), Lock::NotUsed));
        assert!(!dir.path().join("x.lock").exists());
        let held = try_lock(&store, &p, true);
        assert!(matches!(held, Lock::Held(_)));
        assert!(matches!(try_lock(&store, &p, false), Lock::Busy));
        drop(held);
        assert!(matches!(try_lock(&store, &p, false), Lock::Held(_)));
    }
}

/// The hub's lock protocol on Windows: a second handle cannot take a lock another holds, and
/// can once that one is closed (huggingface_hub's `filelock` uses the same `LockFileEx`).
#[cfg(all(test, windows))]
#[test]
fn lock_file_ex_excludes_a_second_holder() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.lock");
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
            .unwrap()
    };
    let held = try_lock_exclusive(open()).unwrap().expect("first lock");
    assert!(
        try_lock_exclusive(open()).unwrap().is_none(),
        "second lock taken"
    );
    drop(held);
    assert!(
        try_lock_exclusive(open()).unwrap().is_some(),
        "lock not released"
    );
}
