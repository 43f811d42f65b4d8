//! The threads that look up the entries of a listing window in parallel (see
//! `CacheView::lookup_window`).
//!
//! Threads that live as long as the process, started at the first window: starting threads
//! per window cost more than the lookups (a cold listing of 10,000 entries started 5,000
//! threads). Idle threads sleep on a condition variable: pools that spin or yield while idle
//! (work-stealing pools, channel receives with backoff) spent a fifth to a third of the
//! daemon's CPU time in `sched_yield` during a cold listing on a 2-core machine.
//!
//! Invariant: [`Pool::map`] returns only after every task it queued has counted itself done,
//! which a task does after its last use of what it borrowed (also when it panicked), so tasks
//! may borrow from the caller's stack.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

/// A task as the threads see it.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// Jobs waiting for a thread.
#[derive(Default)]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Job>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fixed set of threads taking jobs from one queue.
pub(super) struct Pool {
    queue: Arc<Queue>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

/// The results of one [`Pool::map`] and how many are still missing.
struct Batch<T> {
    state: Mutex<(Vec<Option<T>>, usize)>,
    done: Condvar,
}

impl Pool {
    /// The process's lookup pool of `threads` threads, or `None` if no thread could be
    /// started (windows are then looked up one entry after another).
    pub(super) fn shared(threads: usize) -> Option<&'static Pool> {
        static POOL: OnceLock<Option<Pool>> = OnceLock::new();
        POOL.get_or_init(|| Pool::start(threads)).as_ref()
    }

    fn start(threads: usize) -> Option<Pool> {
        let queue = Arc::new(Queue::default());
        let mut started = 0;
        for i in 0..threads {
            let q = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("lookup-{i}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let mut jobs = q.lock();
                            loop {
                                match jobs.pop_front() {
                                    Some(j) => break j,
                                    None => {
                                        jobs = q.ready.wait(jobs).unwrap_or_else(|e| e.into_inner())
                                    }
                                }
                            }
                        };
                        job();
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => log::warn!("cannot start lookup thread {i}: {e}"),
            }
        }
        (started > 0).then_some(Pool { queue })
    }

    /// Runs `f` on every item, on the pool's threads and the calling one, and returns the
    /// results in the items' order; an item whose `f` panicked gives `None`.
    pub(super) fn map<I, T, F>(&self, items: Vec<I>, f: &F) -> Vec<Option<T>>
    where
        I: Send,
        T: Send + 'static,
        F: Fn(I) -> T + Sync,
    {
        let n = items.len();
        let batch = Arc::new(Batch {
            state: Mutex::new(((0..n).map(|_| None).collect(), n)),
            done: Condvar::new(),
        });
        let finish = |batch: &Batch<T>, k: usize, out: Option<T>| {
            let mut st = batch.state.lock().unwrap_or_else(|e| e.into_inner());
            st.0[k] = out;
            st.1 -= 1;
            if st.1 == 0 {
                batch.done.notify_all();
            }
        };
        let mut items = items.into_iter().enumerate();
        // The caller takes the first item itself instead of only waiting.
        let first = items.next();
        {
            let mut jobs = self.queue.lock();
            for (k, item) in items {
                let b = batch.clone();
                let task = move || {
                    let out = catch_unwind(AssertUnwindSafe(|| f(item))).ok();
                    // The last use of anything borrowed was `f(item)` above; `b` is owned.
                    finish(&b, k, out);
                };
                let job: Box<dyn FnOnce() + Send + '_> = Box::new(task);
                // SAFETY: the job borrows `f` (and through it the caller's data) for a
                // lifetime shorter than 'static; it is made 'static only to wait in the
                // queue. `map` does not return before every job has counted itself done in
                // `batch` (the wait below), and a job does that only after `f(item)` has
                // returned or unwound; what the job still holds then (`b`, an `Arc`) is
                // owned, not borrowed.
                let job: Job =
                    unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
                jobs.push_back(job);
            }
        }
        self.queue.ready.notify_all();
        if let Some((k, item)) = first {
            let out = catch_unwind(AssertUnwindSafe(|| f(item))).ok();
            finish(&batch, k, out);
        }
        let mut st = batch.state.lock().unwrap_or_else(|e| e.into_inner());
        while st.1 > 0 {
            st = batch.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        std::mem::take(&mut st.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_their_order_and_a_panic_loses_only_its_item() {
        let pool = Pool::start(3).expect("threads");
        let base = [10u32, 20, 30, 40, 50, 60, 70];
        let got = pool.map((0..base.len()).collect(), &|k: usize| {
            assert!(k != 4, "a failing lookup");
            base[k] + 1
        });
        assert_eq!(
            got,
            vec![
                Some(11),
                Some(21),
                Some(31),
                Some(41),
                None,
                Some(61),
                Some(71)
            ]
        );
        // The pool keeps serving after a panic.
        assert_eq!(
            pool.map(vec![1, 2], &|x: u32| x * 2),
            vec![Some(2), Some(4)]
        );
    }
}
