//! Content hashing for the tools: many files on a pool of threads, largest first. The digests
//! themselves and the hashing of one file are the hub module's ([`crate::hub::hash`]).
//!
//! Invariants: results come back in the jobs' order; after the stop flag is raised, remaining
//! jobs end with [`HashError::Interrupted`].

#[cfg(test)]
use std::fs::File;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
#[cfg(test)]
use std::sync::atomic::Ordering;

use indicatif::ProgressBar;

pub use crate::hub::hash::{
    Algos, Digests, HashError, Hashed, digest_bytes, hash_file, hash_path, hex,
};
use crate::path::StorePath;
use crate::store::Store;

/// One file to hash.
#[derive(Clone, Debug)]
pub struct Job<T> {
    /// The file's real (link-free) store path.
    pub path: StorePath,
    /// Expected size (for ordering and progress; the file's own size is what is hashed).
    pub size: u64,
    /// Digests wanted.
    pub algos: Algos,
    /// The caller's data.
    pub tag: T,
}

/// Hashes `jobs` on `threads` threads, largest first; results come back in the jobs' order.
/// After the stop flag is raised, remaining jobs end with [`HashError::Interrupted`].
pub fn hash_many<T: Send + Sync>(
    store: &Store,
    jobs: Vec<Job<T>>,
    threads: usize,
    progress: &ProgressBar,
    stop: &AtomicBool,
) -> Vec<(Job<T>, Result<Hashed, HashError>)> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    // Largest first: the longest files start early, so the threads finish together.
    order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].size));
    let (tx, rx) = crossbeam_channel::unbounded();
    for i in order {
        let _ = tx.send(i);
    }
    drop(tx);
    let results: Mutex<Vec<Option<Result<Hashed, HashError>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let jobs_ref = &jobs;
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            let rx = rx.clone();
            let results = &results;
            s.spawn(move || {
                let on_bytes = |n: u64| progress.inc(n);
                while let Ok(i) = rx.recv() {
                    let job = &jobs_ref[i];
                    let r = hash_path(store, &job.path, job.algos, stop, &on_bytes);
                    if let Ok(mut v) = results.lock() {
                        v[i] = Some(r);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    jobs.into_iter()
        .zip(results)
        .map(|(j, r)| (j, r.unwrap_or(Err(HashError::Interrupted))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        let d = digest_bytes(b"");
        // git hash-object /dev/null, and sha256 of nothing.
        assert_eq!(
            d.git_sha1.as_deref(),
            Some("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")
        );
        assert_eq!(
            d.sha256.as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        let d = digest_bytes(b"hello\n");
        assert_eq!(
            d.git_sha1.as_deref(),
            Some("ce013625030ba8dba906f756967f9e9ca394464a")
        );
    }

    #[test]
    fn file_hash_equals_bytes_hash_and_detects_growth() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("f"), &data).unwrap();
        let store = Store::open_root(dir.path()).unwrap();
        let stop = AtomicBool::new(false);
        let all = Algos {
            sha256: true,
            git_sha1: true,
        };
        let h = hash_path(&store, &StorePath::parse("f").unwrap(), all, &stop, &|_| {}).unwrap();
        assert_eq!(h.digests, digest_bytes(&data));
        // A file longer than announced is "changed", not hashed.
        let mut f = File::open(dir.path().join("f")).unwrap();
        assert!(matches!(
            hash_file(&mut f, 10, all, &stop, &|_| {}),
            Err(HashError::Changed)
        ));
        stop.store(true, Ordering::Relaxed);
        let mut f = File::open(dir.path().join("f")).unwrap();
        assert!(matches!(
            hash_file(&mut f, 700_000, all, &stop, &|_| {}),
            Err(HashError::Interrupted)
        ));
    }

    #[test]
    fn pool_keeps_job_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut jobs = Vec::new();
        for i in 0..9u32 {
            let data = vec![i as u8; (i as usize) * 1000];
            std::fs::write(dir.path().join(format!("f{i}")), &data).unwrap();
            jobs.push(Job {
                path: StorePath::parse(&format!("f{i}")).unwrap(),
                size: data.len() as u64,
                algos: Algos::for_name(&"0".repeat(64)),
                tag: i,
            });
        }
        let store = Store::open_root(dir.path()).unwrap();
        let out = hash_many(
            &store,
            jobs,
            3,
            &ProgressBar::hidden(),
            &AtomicBool::new(false),
        );
        for (job, r) in out {
            let data = vec![job.tag as u8; (job.tag as usize) * 1000];
            assert_eq!(r.unwrap().digests.sha256, digest_bytes(&data).sha256);
        }
    }
}
