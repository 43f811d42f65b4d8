//! Waiting locks (`F_SETLKW`): each waits on a thread of its own, never on a request worker,
//! and at most [`MAX_LOCK_WAITERS`] wait at once (more get `ENOLCK`).

use std::sync::atomic::{AtomicUsize, Ordering};

use fuser::Errno;

use crate::view::{LockSpec, LockType};

/// How many waiting locks may hold a thread of their own at once.
pub(super) const MAX_LOCK_WAITERS: usize = 64;

/// One of the `MAX_LOCK_WAITERS` places of a waiting lock; given back when dropped.
pub(super) struct LockWaiter(());

static LOCK_WAITERS: AtomicUsize = AtomicUsize::new(0);

impl LockWaiter {
    pub(super) fn take() -> Option<LockWaiter> {
        LOCK_WAITERS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_LOCK_WAITERS).then_some(n + 1)
            })
            .ok()
            .map(|_| LockWaiter(()))
    }
}

impl Drop for LockWaiter {
    fn drop(&mut self) {
        LOCK_WAITERS.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) fn lock_spec(start: u64, end: u64, typ: i32, pid: u32) -> Result<LockSpec, Errno> {
    let typ = LockType::from_raw(typ).ok_or(Errno::EINVAL)?;
    Ok(LockSpec {
        start,
        end,
        typ,
        pid,
    })
}
