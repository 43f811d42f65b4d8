//! Concurrency through one mount: many threads and processes reading one blob, writing into
//! one directory, renaming over and unlinking names in one directory. Every test runs under a
//! watchdog: it fails (and the mount guard unmounts, which unblocks stuck threads) instead of
//! hanging when anything deadlocks. Every byte read is checked.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harness::{C1, C2, Mount, REPO, Store, content, sha256ish};

const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `f` on a thread; panics if it panics or if it is not done within `WATCHDOG`.
fn watchdog<F: FnOnce() + Send + 'static>(what: &str, f: F) {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => h.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(e) = h.join() {
                std::panic::resume_unwind(e);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not done after {WATCHDOG:?} (deadlock?)")
        }
    }
}

#[test]
fn many_readers_of_one_blob_get_its_bytes() {
    let s = Store::hub();
    let m = Mount::new(s.root(), "");
    let want = Arc::new(content(2, 200_000));
    let names: Vec<PathBuf> = [
        format!("{REPO}/snapshots/{C1}/model.safetensors"),
        format!("{REPO}/snapshots/{C2}/model.safetensors"),
        format!("{REPO}/blobs/{}", sha256ish(2)),
    ]
    .iter()
    .map(|n| m.path(n))
    .collect();
    let blob = s.p(&format!("{REPO}/blobs/{}", sha256ish(2)));
    let names2 = names.clone();
    watchdog("readers of one blob", move || {
        // Processes: cmp each name against the store blob, several rounds.
        let procs: Vec<_> = (0..6)
            .map(|i| {
                Command::new("sh")
                    .arg("-c")
                    .arg("for r in 1 2 3 4 5; do cmp \"$1\" \"$2\" || exit 1; done")
                    .arg("sh")
                    .arg(&names2[i % names2.len()])
                    .arg(&blob)
                    .stdin(Stdio::null())
                    .spawn()
                    .expect("spawn cmp")
            })
            .collect();
        // Threads: whole reads, positional reads at odd offsets, and mmap.
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let want = want.clone();
                let p = names2[t % names2.len()].clone();
                std::thread::spawn(move || {
                    for round in 0..20 {
                        assert_eq!(*std::fs::read(&p).unwrap(), *want, "{}", p.display());
                        let f = std::fs::File::open(&p).unwrap();
                        let off = (round * 7919 + t * 104_729) % want.len();
                        let mut buf = vec![0u8; 4096.min(want.len() - off)];
                        f.read_exact_at(&mut buf, off as u64).unwrap();
                        assert_eq!(buf, want[off..off + buf.len()]);
                        // SAFETY: the mapping is read-only and the blob is immutable.
                        let map = unsafe { memmap2::Mmap::map(&f).unwrap() };
                        assert_eq!(&map[..], &want[..]);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for mut p in procs {
            assert!(p.wait().unwrap().success(), "cmp saw different bytes");
        }
    });
    drop(m);
}

#[test]
fn writers_into_one_directory_lose_nothing() {
    let store = tempfile::tempdir().unwrap();
    let m = Mount::new(store.path(), "");
    let dir = m.path("shared");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.clone();
    const THREADS: usize = 8;
    const FILES: usize = 150;
    watchdog("writers into one directory", move || {
        let stop = Arc::new(AtomicBool::new(false));
        // A lister running the whole time: every listed name must stat and be whole.
        let lister = {
            let (d, stop) = (d.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rounds = 0;
                while !stop.load(Ordering::Relaxed) {
                    for e in std::fs::read_dir(&d).unwrap() {
                        let e = e.unwrap();
                        // A name may be gone (tmp renamed) between readdir and stat.
                        let _ = std::fs::symlink_metadata(e.path());
                    }
                    rounds += 1;
                }
                rounds
            })
        };
        // Processes appending files with the shell.
        let procs: Vec<_> = (0..2)
            .map(|i| {
                Command::new("sh")
                    .arg("-c")
                    .arg(format!(
                        "for n in $(seq 1 100); do echo p{i}-$n > \"$1/p{i}-$n\" || exit 1; done"
                    ))
                    .arg("sh")
                    .arg(&d)
                    .spawn()
                    .unwrap()
            })
            .collect();
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let d = d.clone();
                std::thread::spawn(move || {
                    for i in 0..FILES {
                        let tmp = d.join(format!(".t{t}-{i}.tmp"));
                        std::fs::write(&tmp, content((t * 1000 + i) as u32, 100 + i * 13)).unwrap();
                        std::fs::rename(&tmp, d.join(format!("t{t}-{i}"))).unwrap();
                        if i % 3 == 0 {
                            std::fs::create_dir(d.join(format!("dir{t}-{i}"))).unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for mut p in procs {
            assert!(p.wait().unwrap().success());
        }
        stop.store(true, Ordering::Relaxed);
        let rounds = lister.join().unwrap();
        let names: BTreeSet<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut want = BTreeSet::new();
        for t in 0..THREADS {
            for i in 0..FILES {
                want.insert(format!("t{t}-{i}"));
                if i % 3 == 0 {
                    want.insert(format!("dir{t}-{i}"));
                }
                let got = std::fs::read(d.join(format!("t{t}-{i}"))).unwrap();
                assert_eq!(got, content((t * 1000 + i) as u32, 100 + i * 13));
            }
        }
        for i in 0..2 {
            for n in 1..=100 {
                want.insert(format!("p{i}-{n}"));
                let got = std::fs::read_to_string(d.join(format!("p{i}-{n}"))).unwrap();
                assert_eq!(got, format!("p{i}-{n}\n"));
            }
        }
        assert_eq!(names, want);
        eprintln!(
            "{} entries written by {THREADS} threads + 2 processes; {rounds} listings meanwhile",
            want.len()
        );
    });
    // The store has the same entries.
    assert_eq!(
        std::fs::read_dir(store.path().join("shared"))
            .unwrap()
            .count(),
        THREADS * FILES + THREADS * FILES.div_ceil(3) + 200
    );
    drop(m);
}

/// Writers rename complete files over one name while others unlink it and readers read it:
/// every successful read is exactly one writer's content, never a mix.
#[test]
fn rename_over_and_unlink_one_name_never_tears() {
    rename_race(false);
}

/// The same with ESTALE counted as a failure: a local file system never gives it.
#[test]
#[ignore = "known limitation (docs/RELIABILITY.md): open()/read() of a name renamed over by another \
            thread fails with ESTALE (errno 116) a few times per 600 renames; the kernel's one \
            LOOKUP_REVAL retry is not enough under churn"]
fn rename_over_one_name_never_gives_estale() {
    rename_race(true);
}

fn rename_race(strict: bool) {
    let store = tempfile::tempdir().unwrap();
    let m = Mount::new(store.path(), "");
    let dir = m.path("hot");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.clone();
    watchdog("rename/unlink races", move || {
        let versions: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..4)
                .map(|v| content(100 + v, 30_000 + v as usize * 977))
                .collect(),
        );
        let target = d.join("current");
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let misses = Arc::new(AtomicUsize::new(0));
        let stale = Arc::new(AtomicUsize::new(0));
        let mut hs = Vec::new();
        for w in 0..4usize {
            let (d, target, versions) = (d.clone(), target.clone(), versions.clone());
            hs.push(std::thread::spawn(move || {
                for i in 0..150 {
                    let tmp = d.join(format!("w{w}.{i}.tmp"));
                    std::fs::write(&tmp, &versions[w]).unwrap();
                    std::fs::rename(&tmp, &target).unwrap();
                    if i % 5 == w % 5 {
                        // Unlink may lose the race against another unlink: ENOENT is fine.
                        match std::fs::remove_file(&target) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => panic!("unlink: {e}"),
                        }
                    }
                }
            }));
        }
        let mut readers = Vec::new();
        for _ in 0..3 {
            let (target, versions, stop) = (target.clone(), versions.clone(), stop.clone());
            let (reads, misses, stale) = (reads.clone(), misses.clone(), stale.clone());
            readers.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match std::fs::read(&target) {
                        Ok(b) => {
                            assert!(
                                versions.contains(&b),
                                "read {} bytes that are no writer's content",
                                b.len()
                            );
                            reads.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            misses.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if !strict && e.raw_os_error() == Some(libc::ESTALE) => {
                            stale.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("read: {e}"),
                    }
                }
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        // No temporaries left; the final name (if present) is one whole version.
        let left: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.iter().all(|n| n == "current"), "{left:?}");
        eprintln!(
            "600 renames over one name, {} whole reads, {} ENOENT, {} ESTALE",
            reads.load(Ordering::Relaxed),
            misses.load(Ordering::Relaxed),
            stale.load(Ordering::Relaxed)
        );
    });
    drop(m);
}

/// `mkdir -p`/`rmdir` of the same tree from several threads: only EEXIST/ENOENT/ENOTEMPTY,
/// no hang, and the store ends consistent with the view.
#[test]
fn mkdir_rmdir_storms_in_one_directory() {
    let store = tempfile::tempdir().unwrap();
    let m = Mount::new(store.path(), "");
    let root = m.path("storm");
    let r = root.clone();
    let start = Instant::now();
    watchdog("mkdir/rmdir storm", move || {
        let hs: Vec<_> = (0..6)
            .map(|t| {
                let r = r.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let p = r
                            .join(format!("a{}", i % 4))
                            .join(format!("b{}", (i + t) % 3));
                        let _ = std::fs::create_dir_all(&p);
                        for q in [&p, p.parent().unwrap()] {
                            if let Err(e) = std::fs::remove_dir(q) {
                                let c = e.raw_os_error().unwrap();
                                assert!(
                                    [libc::ENOENT, libc::ENOTEMPTY, libc::EEXIST].contains(&c),
                                    "rmdir {}: {e}",
                                    q.display()
                                );
                            }
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    let view = harness::walk(&root);
    let st = harness::walk(&store.path().join("storm"));
    let rel = |v: Vec<PathBuf>, b: &Path| -> Vec<PathBuf> {
        v.into_iter()
            .map(|p| p.strip_prefix(b).unwrap().to_path_buf())
            .collect()
    };
    assert_eq!(rel(view, &root), rel(st, &store.path().join("storm")));
    eprintln!("1200 mkdir -p + 2400 rmdir in {:.1?}", start.elapsed());
    drop(m);
}
