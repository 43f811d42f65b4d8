//! Content hashing for the tools: the two names the hub gives content — the sha256 of the
//! bytes (64 hex, LFS files) and the git blob sha1, `sha1("blob <len>\0" + bytes)` (40 hex,
//! regular files) — computed in one pass, on a pool of threads.
//!
//! Invariants: files are opened through the store (no link followed); a file whose size
//! changes while it is read is reported as [`HashError::Changed`], never given a digest; the
//! stop flag is checked after every buffer, so Ctrl-C is prompt even inside a large blob.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::store::OFlags;
use indicatif::ProgressBar;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::path::StorePath;
use crate::store::{Kind, Meta, Store};

/// Read size: large enough to amortise syscalls, small enough to stay in the L2 cache.
const BUF: usize = 256 * 1024;

/// Which digests to compute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Algos {
    /// sha256 of the content.
    pub sha256: bool,
    /// git blob sha1 of the content.
    pub git_sha1: bool,
}

impl Algos {
    /// The algorithm a content name of this length implies (64 hex: sha256, 40 hex: git sha1).
    pub fn for_name(name: &str) -> Algos {
        Algos {
            sha256: name.len() == 64,
            git_sha1: name.len() == 40,
        }
    }

    /// Both sets together.
    pub fn union(self, o: Algos) -> Algos {
        Algos {
            sha256: self.sha256 || o.sha256,
            git_sha1: self.git_sha1 || o.git_sha1,
        }
    }
}

/// Lower-case hex digests of one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    /// sha256, if asked for.
    pub sha256: Option<String>,
    /// git blob sha1, if asked for.
    pub git_sha1: Option<String>,
}

impl Digests {
    /// The digest a name of this length is compared with (`None` if not computed).
    pub fn for_name(&self, name: &str) -> Option<&str> {
        match name.len() {
            64 => self.sha256.as_deref(),
            40 => self.git_sha1.as_deref(),
            _ => None,
        }
    }

    /// The algorithm name used in reports for a content name of this length.
    pub fn algorithm(name: &str) -> &'static str {
        if name.len() == 64 {
            "sha256"
        } else {
            "git-sha1"
        }
    }
}

/// Why a file has no digest.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The size changed while reading (someone writes the file).
    #[error("the file changed while it was read")]
    Changed,
    /// Not a regular file.
    #[error("not a regular file")]
    NotFile,
    /// The stop flag was raised.
    #[error("interrupted")]
    Interrupted,
}

/// Hashes an open file of `meta.size` bytes. `on_bytes` is called after every buffer.
pub fn hash_file(
    file: &mut File,
    size: u64,
    algos: Algos,
    stop: &AtomicBool,
    on_bytes: &dyn Fn(u64),
) -> Result<Digests, HashError> {
    #[cfg(unix)]
    let _ = rustix::fs::fadvise(&*file, 0, None, rustix::fs::Advice::Sequential);
    let mut sha256 = algos.sha256.then(Sha256::new);
    let mut sha1 = algos.git_sha1.then(|| {
        let mut h = Sha1::new();
        h.update(format!("blob {size}\0").as_bytes());
        h
    });
    let mut buf = vec![0u8; BUF];
    let mut total: u64 = 0;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(HashError::Interrupted);
        }
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        let chunk = &buf[..n];
        if let Some(h) = sha256.as_mut() {
            h.update(chunk);
        }
        if let Some(h) = sha1.as_mut() {
            h.update(chunk);
        }
        total += n as u64;
        on_bytes(n as u64);
        if total > size {
            return Err(HashError::Changed);
        }
    }
    if total != size {
        return Err(HashError::Changed);
    }
    Ok(Digests {
        sha256: sha256.map(|h| hex(&h.finalize())),
        git_sha1: sha1.map(|h| hex(&h.finalize())),
    })
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Digests of a byte slice (tests and small files).
pub fn digest_bytes(data: &[u8]) -> Digests {
    let mut s1 = Sha1::new();
    s1.update(format!("blob {}\0", data.len()).as_bytes());
    s1.update(data);
    Digests {
        sha256: Some(hex(&Sha256::digest(data))),
        git_sha1: Some(hex(&s1.finalize())),
    }
}

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

/// A hashed file: its metadata when opened (to detect later changes) and its digests.
#[derive(Debug)]
pub struct Hashed {
    /// `fstat` of the file that was read.
    pub meta: Meta,
    /// The digests.
    pub digests: Digests,
}

/// Opens `path` through the store and hashes it.
pub fn hash_path(
    store: &Store,
    path: &StorePath,
    algos: Algos,
    stop: &AtomicBool,
    on_bytes: &dyn Fn(u64),
) -> Result<Hashed, HashError> {
    let fd = store.open(path, OFlags::RDONLY, 0)?;
    let meta = Meta::of_fd(&fd)?;
    if meta.kind != Kind::File {
        return Err(HashError::NotFile);
    }
    let mut file = File::from(fd);
    let digests = hash_file(&mut file, meta.size, algos, stop, on_bytes)?;
    let after = Meta::of_fd(&file)?;
    if after.size != meta.size || after.mtime != meta.mtime {
        return Err(HashError::Changed);
    }
    Ok(Hashed { meta, digests })
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
