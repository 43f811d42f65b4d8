//! Who is asking, and what the store would let them reach.
//!
//! The kernel checks permissions (`default_permissions`, implied by `allow_other`) against
//! the attributes the view shows, along the *view* path. A name shown through a link has
//! the attributes of its target, so the kernel never sees the directories the link passes
//! through in the store. This module supplies the checks the store would make there:
//!
//! - A node reached through a link (or inside a directory reached through one) carries
//!   *guards*: the directories on its real store path that not everyone may search. A
//!   caller must be able to search every guard to look the node up, stat it, open it or
//!   change it — exactly what reaching the real path directly in the store requires.
//!   Nodes with guards are never cached by the kernel (TTL zero), so every access comes
//!   back here with the caller's identity.
//! - Removing or replacing a name obeys the parent directory's write permission and its
//!   sticky bit as the store would for that caller, judged on the store entry itself
//!   (for a link: the link's owner, not its target's).
//!
//! The caller of the request being served is kept per thread ([`serving`]): the FUSE
//! adapter enters it for each request; where nothing entered one (cache tools, WinFsp,
//! which checks access by security descriptor, unit tests), the daemon's own rights apply.
//! Invariant: a caller with uid 0 passes every check (as root does in the store). Every
//! access rule of the view lives here; the operations call these checks.

use std::cell::RefCell;
use std::sync::Arc;

#[cfg(windows)]
use crate::compat::libc;
use std::ffi::OsStr;
use std::time::Instant;

use super::{CacheView, Node};
use crate::error::{FsError, FsResult};
use crate::path::StorePath;
use crate::store::{Kind, Meta};

/// Who is asking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Thread id of the caller (for its supplementary groups); 0 when unknown.
    pub pid: u32,
}

/// A directory on a node's real path that not everyone may search: the store would
/// check the caller against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirGuard {
    /// Owner of the directory.
    pub uid: u32,
    /// Group of the directory.
    pub gid: u32,
    /// Permission bits.
    pub mode: u16,
}

impl DirGuard {
    /// The guard a directory with `meta` sets, or `None` when everyone may search it.
    pub fn of(meta: &Meta) -> Option<DirGuard> {
        (meta.perm & 0o001 == 0).then_some(DirGuard {
            uid: meta.uid,
            gid: meta.gid,
            mode: meta.perm,
        })
    }
}

/// The guards of one node; empty for everything reached without a link (the common case).
pub type Guards = Arc<[DirGuard]>;

/// Permission bits asked for.
pub const SEARCH: u16 = 0o1;
/// Write permission.
pub const WRITE: u16 = 0o2;

struct Current {
    caller: Caller,
    groups: Option<Vec<u32>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Marks the thread as serving `caller` until dropped.
#[must_use = "the caller is forgotten when this is dropped"]
pub struct Serving(());

/// Enters `caller` as the one this thread serves (see the module header).
pub fn serving(caller: Caller) -> Serving {
    CURRENT.with(|c| {
        *c.borrow_mut() = Some(Current {
            caller,
            groups: None,
        })
    });
    Serving(())
}

impl Drop for Serving {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

/// A caller with the supplementary groups they had when it was taken: for work done on their
/// behalf later, when their process may be gone.
#[derive(Clone, Debug)]
pub struct Held {
    caller: Caller,
    groups: Vec<u32>,
}

/// The caller this thread serves, with their groups read now (none needed for root).
pub fn hold() -> Option<Held> {
    let caller = current()?;
    let groups = if caller.uid == 0 {
        Vec::new()
    } else {
        supplementary_groups(caller.pid)
    };
    Some(Held { caller, groups })
}

/// Enters a held caller as the one this thread serves, until dropped.
pub fn serving_held(h: Held) -> Serving {
    CURRENT.with(|c| {
        *c.borrow_mut() = Some(Current {
            caller: h.caller,
            groups: Some(h.groups),
        })
    });
    Serving(())
}

/// The caller this thread serves, if any.
pub fn current() -> Option<Caller> {
    CURRENT.with(|c| c.borrow().as_ref().map(|c| c.caller))
}

/// The supplementary groups of the current caller (read once per request).
fn in_group(gid: u32) -> bool {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        let Some(cur) = c.as_mut() else { return false };
        if cur.caller.gid == gid {
            return true;
        }
        let pid = cur.caller.pid;
        cur.groups
            .get_or_insert_with(|| supplementary_groups(pid))
            .contains(&gid)
    })
}

/// The supplementary groups of thread `pid`, from `/proc` (none if it is gone: the
/// check then errs on the side of refusing).
fn supplementary_groups(pid: u32) -> Vec<u32> {
    if pid == 0 {
        return Vec::new();
    }
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// True if the current caller has `want` (bits of `rwx`) on an object with this owner and
/// mode, by the classic owner/group/other rule. No caller, or root: true.
pub fn may(uid: u32, gid: u32, mode: u16, want: u16) -> bool {
    let Some(caller) = current() else { return true };
    if caller.uid == 0 {
        return true;
    }
    let bits = if caller.uid == uid {
        mode >> 6
    } else if in_group(gid) {
        mode >> 3
    } else {
        mode
    } & 0o7;
    bits & want == want
}

/// `EACCES`, as the store would answer.
pub fn denied() -> FsError {
    FsError::Store(std::io::Error::from_raw_os_error(libc::EACCES))
}

/// Checks that the current caller may search every guard.
pub fn check_guards(guards: &[DirGuard]) -> Result<(), FsError> {
    if guards.iter().all(|g| may(g.uid, g.gid, g.mode, SEARCH)) {
        Ok(())
    } else {
        Err(denied())
    }
}

/// Checks that the current caller may remove or replace the store entry `entry` in the
/// directory `dir`: write and search permission on `dir`, and with the sticky bit, owning
/// `dir` or `entry` — the store's own rule, applied to the entry itself (a link's owner,
/// not its target's).
pub fn check_delete(dir: &Meta, entry: &Meta) -> Result<(), FsError> {
    let Some(caller) = current() else {
        return Ok(());
    };
    if caller.uid == 0 {
        return Ok(());
    }
    if !may(dir.uid, dir.gid, dir.perm, WRITE | SEARCH) {
        return Err(denied());
    }
    if dir.perm & 0o1000 != 0 && caller.uid != dir.uid && caller.uid != entry.uid {
        return Err(FsError::NotPermitted(
            "sticky directory: only the owner may remove or replace this name",
        ));
    }
    Ok(())
}

/// The view's side of the rules above: guards of nodes, and the checks of each operation.
impl CacheView {
    /// The directories on `real` (its proper ancestors) that not everyone may search.
    /// Each directory's answer is kept for `attr_timeout` (a snapshot's names all share
    /// their blob directory's ancestors: one `lstat` each, not one per name).
    pub(super) fn guards_of(&self, real: &StorePath) -> FsResult<Guards> {
        let ttl = self.config.attr_ttl;
        let mut guards: Vec<DirGuard> = Vec::new();
        let mut dir = Some(real.parent());
        while let Some(d) = dir {
            let known = self
                .dir_guards
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&d)
                .filter(|(_, at)| at.elapsed() < ttl)
                .map(|(g, _)| *g);
            let guard = match known {
                Some(g) => g,
                None => {
                    let g = DirGuard::of(&self.store.lstat(&d)?);
                    let mut cache = self.dir_guards.lock().unwrap_or_else(|e| e.into_inner());
                    if cache.len() >= 4096 {
                        cache.clear();
                    }
                    cache.insert(d.clone(), (g, Instant::now()));
                    g
                }
            };
            guards.extend(guard);
            dir = (!d.is_root()).then(|| d.parent());
        }
        Ok(guards.into())
    }

    /// Forgets the directories' guards seen so far (after a rename or rmdir: another
    /// directory may now stand at a path).
    pub(super) fn forget_dir_guards(&self) {
        self.dir_guards
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Checks that the caller of this request may reach `node` in the store.
    pub(super) fn check_reach(&self, node: &Node) -> FsResult<()> {
        check_guards(&node.guards)
    }

    /// True if this request's caller is subject to checks (not root, not the daemon itself).
    pub(super) fn caller_is_checked(&self) -> bool {
        current().is_some_and(|c| c.uid != 0)
    }

    /// Checks, from the root down, that the caller may search each directory on the way
    /// to `p`, up to the first entry that is missing or not a directory (a link there is
    /// followed by the resolver; the target's own guards are checked after).
    pub(super) fn check_search_along(&self, p: &StorePath) -> FsResult<()> {
        if !self.caller_is_checked() {
            return Ok(());
        }
        let mut dir = StorePath::root();
        let comps: Vec<&OsStr> = p.components().collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            match self.store.lstat(&dir) {
                Ok(m) if m.kind == Kind::Dir => {
                    check_guards(DirGuard::of(&m).as_slice())?;
                }
                _ => return Ok(()),
            }
            dir = dir.join(c).ok_or(FsError::Invalid)?;
        }
        match self.store.lstat(&dir) {
            Ok(m) if m.kind == Kind::Dir => check_guards(DirGuard::of(&m).as_slice()),
            _ => Ok(()),
        }
    }

    /// Checks that the caller may remove or replace the store entry `path` (metadata `meta`)
    /// as the store would let them: see [`check_delete`].
    pub(super) fn check_delete(&self, path: &StorePath, meta: &Meta) -> FsResult<()> {
        if !self.caller_is_checked() {
            return Ok(());
        }
        let dir = self.store.lstat(&path.parent())?;
        check_delete(&dir, meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_user(uid: u32, gid: u32) -> Serving {
        serving(Caller { uid, gid, pid: 0 })
    }

    #[test]
    fn owner_group_other_bits() {
        {
            let _s = as_user(1000, 1000);
            assert!(may(1000, 0, 0o700, SEARCH));
            assert!(!may(1001, 0, 0o700, SEARCH));
            assert!(may(1001, 1000, 0o710, SEARCH));
            assert!(!may(1001, 1001, 0o710, SEARCH));
            // The owner bits decide for the owner even when "other" would allow more.
            assert!(!may(1000, 0, 0o007, SEARCH));
            assert!(
                check_guards(&[DirGuard {
                    uid: 0,
                    gid: 0,
                    mode: 0o700
                }])
                .is_err()
            );
        }
        let _s = as_user(0, 0);
        assert!(may(1000, 1000, 0o000, WRITE | SEARCH));
        drop(_s);
        // Nobody entered: the daemon's own rights.
        assert!(may(1000, 1000, 0o000, WRITE));
    }
}
