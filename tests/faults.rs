//! Faults and limits: the daemon SIGKILLed under a writing client, the store changed
//! underneath open files, a hostile store (links out of it, devices, a directory swapped for
//! a link to `/` while the mount resolves paths beneath it), and resource limits (100,000
//! entries in a directory, 200-level paths, 255-byte names). Every wait is bounded.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harness::{C1, Mount, REPO, Store, bin, content, is_mounted, sha1ish};

/// A foreground mount at a mountpoint the test chooses (so it can be remounted there).
/// Dropping it ends the daemon by PID and lazily unmounts.
struct MountAt {
    child: Option<Child>,
    mp: PathBuf,
}

impl MountAt {
    fn new(store: &Path, mp: &Path, opts: &str) -> MountAt {
        let mut cmd = Command::new(bin());
        cmd.arg("mount").arg("-f");
        if !opts.is_empty() {
            cmd.arg("-o").arg(opts);
        }
        let child = cmd
            .arg(store)
            .arg(mp)
            .env("HFCACHEFS_STATE_DIR", mp.with_extension("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let m = MountAt {
            child: Some(child),
            mp: mp.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !is_mounted(mp) {
            assert!(
                Instant::now() < deadline,
                "mount at {} not live",
                mp.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }
}

impl Drop for MountAt {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's PID.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && !matches!(c.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if is_mounted(&self.mp) {
            let _ = Command::new("umount").arg("-l").arg(&self.mp).status();
        }
    }
}

/// Runs `f` on a thread and returns its result, or `None` after `limit`.
fn bounded<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

// ------------------------------------------------------------------------------------------
// The daemon killed under a client
// ------------------------------------------------------------------------------------------

#[test]
fn sigkill_of_the_daemon_mid_write_errors_and_the_mountpoint_recovers() {
    let store = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mp = work.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let blobs = store.path().join("models--a--b/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let m = MountAt::new(store.path(), &mp, "");
    // A "download": write <etag>.incomplete in 1 MiB pieces, then rename to the final name.
    let etag = sha1ish(77);
    let incomplete = mp
        .join("models--a--b/blobs")
        .join(format!("{etag}.incomplete"));
    let fin = mp.join("models--a--b/blobs").join(&etag);
    let data = Arc::new(content(77, 64 << 20));
    let written = Arc::new(AtomicUsize::new(0));
    let (d, w, inc, f2) = (
        data.clone(),
        written.clone(),
        incomplete.clone(),
        fin.clone(),
    );
    let client = std::thread::spawn(move || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&inc)?;
        for chunk in d.chunks(1 << 20) {
            f.write_all(chunk)?;
            w.fetch_add(chunk.len(), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
        f.sync_all()?;
        drop(f);
        std::fs::rename(&inc, &f2)
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while written.load(Ordering::Relaxed) < 8 << 20 {
        assert!(Instant::now() < deadline, "client made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill(2) on our own child's PID.
    unsafe { libc::kill(m.pid(), libc::SIGKILL) };
    let t = Instant::now();
    let res = bounded(Duration::from_secs(30), move || client.join().unwrap())
        .expect("client hung after the daemon was killed");
    let err = res.expect_err("the write finished although the daemon was killed");
    eprintln!(
        "client error {:.1?} after SIGKILL: {err} (errno {:?})",
        t.elapsed(),
        err.raw_os_error()
    );
    assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN), "{err}");
    // No partial blob under the final name.
    assert!(
        !blobs.join(&etag).exists(),
        "partial blob under its final name"
    );
    // The dead mount: a new mount at the same place is refused with the clean-up hint.
    let out = Command::new(bin())
        .args([OsStr::new("mount"), OsStr::new("-f")])
        .arg(store.path())
        .arg(&mp)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let msg = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("mount over the dead mount: {}", msg.trim());
    assert!(!out.status.success());
    assert!(
        msg.contains("stale FUSE mount") && msg.contains("hfcachefs unmount"),
        "{msg}"
    );
    let out = Command::new(bin())
        .arg("unmount")
        .arg(&mp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hfcachefs unmount of the dead mount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_mounted(&mp));
    drop(m);
    // Remount and retry the download: complete and correct.
    let m2 = MountAt::new(store.path(), &mp, "");
    let mut f = std::fs::File::create(&incomplete).unwrap();
    f.write_all(&data).unwrap();
    drop(f);
    std::fs::rename(&incomplete, &fin).unwrap();
    assert_eq!(std::fs::read(&fin).unwrap(), *data);
    assert_eq!(std::fs::read(blobs.join(&etag)).unwrap(), *data);
    drop(m2);
}

// ------------------------------------------------------------------------------------------
// The store changed underneath
// ------------------------------------------------------------------------------------------

fn snap(rel: &str) -> String {
    format!("{REPO}/snapshots/{C1}/{rel}")
}

#[test]
fn store_changes_under_open_files_never_serve_another_files_bytes() {
    let s = Store::hub();
    let m = Mount::new(s.root(), "attr_timeout=0,entry_timeout=0,blob_timeout=0");
    let cfg = content(1, 300);
    let w = content(3, 10);
    // 1. Blob deleted while open: the handle keeps its bytes; a new open gives ENOENT.
    let mut f = std::fs::File::open(m.path(&snap("config.json"))).unwrap();
    std::fs::remove_file(s.p(&format!("{REPO}/blobs/{}", sha1ish(1)))).unwrap();
    let mut got = Vec::new();
    match f.read_to_end(&mut got) {
        Ok(_) => assert_eq!(got, cfg),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{e}"),
    }
    let e = std::fs::read(m.path(&snap("config.json"))).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    // 2. File replaced (rename over) while open: old handle = old bytes, new open = new bytes.
    let deep = s.p(&format!("{REPO}/blobs/{}", sha1ish(3)));
    let mut f = std::fs::File::open(m.path(&snap("nested/deep/w.txt"))).unwrap();
    let other = content(99, 4000);
    std::fs::write(s.p("tmp.new"), &other).unwrap();
    std::fs::rename(s.p("tmp.new"), &deep).unwrap();
    let mut got = Vec::new();
    match f.read_to_end(&mut got) {
        Ok(_) => assert_eq!(got, w, "old handle served other bytes"),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{e}"),
    }
    let now = std::fs::read(m.path(&snap("nested/deep/w.txt"))).unwrap();
    assert_eq!(now, other, "new open must see the replacement whole");
    // 3. Directory renamed while a file in it is open; 4. snapshot removed.
    let mut f = std::fs::File::open(m.path(&snap("model.safetensors"))).unwrap();
    let c3 = "3333333333333333333333333333333333333333";
    std::fs::rename(
        s.p(&format!("{REPO}/snapshots/{C1}")),
        s.p(&format!("{REPO}/snapshots/{c3}")),
    )
    .unwrap();
    let mut got = Vec::new();
    f.read_to_end(&mut got).unwrap();
    assert_eq!(got, content(2, 200_000));
    let e = std::fs::metadata(m.path(&snap("model.safetensors"))).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    let moved = m.path(&format!("{REPO}/snapshots/{c3}/model.safetensors"));
    assert_eq!(std::fs::read(&moved).unwrap(), content(2, 200_000));
    std::fs::remove_dir_all(s.p(&format!("{REPO}/snapshots/{c3}"))).unwrap();
    assert_eq!(
        std::fs::read_dir(m.path(&format!("{REPO}/snapshots/{c3}")))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOENT)
    );
    drop(m);
}

/// Two names swapped in the store again and again (default timeouts, so the kernel holds
/// cached inodes): every read through the mount is exactly one of the two files, or ESTALE.
#[test]
fn swapped_names_never_mix_bytes() {
    let store = tempfile::tempdir().unwrap();
    let (a, b) = (content(1, 10_000), content(2, 17_000));
    std::fs::write(store.path().join("x"), &a).unwrap();
    std::fs::write(store.path().join("y"), &b).unwrap();
    let m = Mount::new(store.path(), "");
    let stop = Arc::new(AtomicBool::new(false));
    let st = store.path().to_path_buf();
    let stop2 = stop.clone();
    let swapper = std::thread::spawn(move || {
        let mut n = 0;
        while !stop2.load(Ordering::Relaxed) {
            rustix::fs::renameat_with(
                rustix::fs::CWD,
                st.join("x"),
                rustix::fs::CWD,
                st.join("y"),
                rustix::fs::RenameFlags::EXCHANGE,
            )
            .unwrap();
            n += 1;
        }
        n
    });
    let (mut ok, mut stale) = (0, 0);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        for n in ["x", "y"] {
            match std::fs::read(m.path(n)) {
                Ok(got) => {
                    assert!(
                        got == a || got == b,
                        "{n}: {} bytes of neither file",
                        got.len()
                    );
                    ok += 1;
                }
                Err(e) if e.raw_os_error() == Some(libc::ESTALE) => stale += 1,
                Err(e) => panic!("{n}: {e}"),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    eprintln!("{swaps} swaps in the store; {ok} whole reads, {stale} ESTALE");
    drop(m);
}

// ------------------------------------------------------------------------------------------
// Hostile store
// ------------------------------------------------------------------------------------------

fn outside_secrets() -> Vec<Vec<u8>> {
    ["/etc/hostname", "/etc/passwd", "/etc/os-release"]
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|b| b.len() > 2)
        .collect()
}

fn assert_not_outside(bytes: &[u8], what: &Path, secrets: &[Vec<u8>]) {
    for s in secrets {
        assert!(
            bytes != &s[..] && !(bytes.len() >= 16 && s.windows(16).any(|w| w == &bytes[..16])),
            "{} shows content from outside the store",
            what.display()
        );
    }
}

#[test]
fn hostile_store_exposes_nothing_outside() {
    let s = Store::hub();
    let hostile = s.add_hostile();
    let snapdir = s.p(&snap(""));
    for (name, target) in [
        ("etc_dir", "/etc"),
        ("root_dir", "/"),
        ("hostname", "/etc/hostname"),
        ("dotdot_chain", "../../../../../../../../../../etc/hostname"),
        ("dotdot_into_out", "../../blobs/../../../../etc/passwd"),
        ("proc_self", "/proc/self/root/etc/hostname"),
        ("dev_null", "/dev/null"),
        ("dev_zero", "/dev/zero"),
        ("backslash", "..\\..\\..\\..\\..\\..\\etc\\hostname"),
    ] {
        symlink(target, snapdir.join(name)).unwrap();
    }
    // A Unix socket, and a store-absolute link that escapes via `..` after the root.
    let sock = std::os::unix::net::UnixListener::bind(snapdir.join("sock")).unwrap();
    symlink(
        format!("{}/../../etc/hostname", s.root().display()),
        snapdir.join("abs_via_root"),
    )
    .unwrap();
    let m = Mount::new(s.root(), "");
    let secrets = outside_secrets();
    let mut files = 0;
    for p in harness::walk(&m.mp) {
        let md = std::fs::symlink_metadata(&p).unwrap();
        assert!(
            md.is_dir() || md.is_file(),
            "{}: {:?}",
            p.display(),
            md.file_type()
        );
        if md.is_file() {
            let b = std::fs::read(&p).unwrap();
            assert_not_outside(&b, &p, &secrets);
            files += 1;
        }
    }
    let view_snap = m.path(&snap(""));
    for n in hostile.iter().copied().chain([
        "etc_dir",
        "root_dir",
        "hostname",
        "dotdot_chain",
        "dotdot_into_out",
        "proc_self",
        "dev_null",
        "dev_zero",
        "backslash",
        "sock",
        "abs_via_root",
    ]) {
        let e = std::fs::symlink_metadata(view_snap.join(n)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{n} is visible");
        assert!(std::fs::read(view_snap.join(n).join("passwd")).is_err());
    }
    eprintln!("{files} files read through the hostile store; nothing from outside");
    drop(sock);
    drop(m);
}

/// A directory swapped for a link to `/etc` (and to `/`) while threads read through it: a
/// read gives the store file's bytes or an error, never a file outside the store.
#[test]
fn directory_swapped_for_a_link_to_root_never_leaks() {
    let store = tempfile::tempdir().unwrap();
    let root = store.path().to_path_buf();
    std::fs::create_dir(root.join("race")).unwrap();
    let mine = b"store's own hostname file\n".to_vec();
    std::fs::write(root.join("race/hostname"), &mine).unwrap();
    std::fs::create_dir(root.join("race/etc")).unwrap();
    std::fs::write(root.join("race/etc/hostname"), &mine).unwrap();
    symlink("/etc", root.join("alt_etc")).unwrap();
    symlink("/", root.join("alt_root")).unwrap();
    let m = Mount::new(store.path(), "attr_timeout=0,entry_timeout=0");
    let secrets = outside_secrets();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = {
        let (root, stop) = (root.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let alt = if n.is_multiple_of(2) {
                    "alt_etc"
                } else {
                    "alt_root"
                };
                // race <-> link; then back.
                for _ in 0..2 {
                    rustix::fs::renameat_with(
                        rustix::fs::CWD,
                        root.join("race"),
                        rustix::fs::CWD,
                        root.join(alt),
                        rustix::fs::RenameFlags::EXCHANGE,
                    )
                    .unwrap();
                }
                n += 1;
            }
            n
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|i| {
            let (mp, stop, secrets, mine) =
                (m.mp.clone(), stop.clone(), secrets.clone(), mine.clone());
            std::thread::spawn(move || {
                let (mut good, mut err) = (0u64, 0u64);
                let names = [
                    "race/hostname",
                    "race/etc/hostname",
                    "race/passwd",
                    "race/etc/passwd",
                ];
                while !stop.load(Ordering::Relaxed) {
                    let p = mp.join(names[(good + err) as usize % names.len()]);
                    match std::fs::read(&p) {
                        Ok(b) => {
                            assert_not_outside(&b, &p, &secrets);
                            assert_eq!(b, mine, "{}", p.display());
                            good += 1;
                        }
                        Err(_) => err += 1,
                    }
                    if i == 0
                        && let Ok(rd) = std::fs::read_dir(mp.join("race"))
                    {
                        for e in rd.flatten() {
                            let n = e.file_name();
                            assert!(n == "hostname" || n == "etc", "listing of race shows {n:?}");
                        }
                    }
                }
                (good, err)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let n = swaps.join().unwrap();
    let mut tot = (0, 0);
    for r in readers {
        let (g, e) = r.join().unwrap();
        tot.0 += g;
        tot.1 += e;
    }
    eprintln!(
        "{n} swap rounds; {} reads of the store's file, {} errors",
        tot.0, tot.1
    );
    assert!(tot.0 > 0);
    drop(m);
}

// ------------------------------------------------------------------------------------------
// Resource limits
// ------------------------------------------------------------------------------------------

fn big_dir(entries: usize) {
    let store = tempfile::tempdir().unwrap();
    let d = store.path().join("big");
    std::fs::create_dir(&d).unwrap();
    let t = Instant::now();
    for i in 0..entries {
        std::fs::File::create(d.join(format!("entry-{i:06}"))).unwrap();
    }
    let made = t.elapsed();
    let m = Mount::new(store.path(), "");
    let t = Instant::now();
    let names = bounded(Duration::from_secs(120), {
        let p = m.path("big");
        move || {
            std::fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<std::collections::HashSet<_>>()
        }
    })
    .expect("listing did not finish within 120 s");
    eprintln!(
        "{entries} entries: created in {made:.1?}, listed through the mount in {:.1?}",
        t.elapsed()
    );
    assert_eq!(names.len(), entries);
    assert!(names.contains(OsStr::new("entry-000000")));
    assert!(names.contains(OsStr::new(&format!("entry-{:06}", entries - 1))));
    drop(m);
}

#[test]
fn directory_of_20k_entries_lists_completely() {
    big_dir(20_000);
}

#[test]
#[ignore = "slow (about 10-20 s in a debug build); run with --ignored"]
fn directory_of_100k_entries_lists_completely() {
    big_dir(100_000);
}

/// Builds `levels` nested directories of `name_len`-byte names through the mount with *at
/// calls (no client path exceeds PATH_MAX), writes a leaf, checks it in the store; returns
/// the depth reached and the first error.
fn deep(levels: usize, name_len: usize) -> (usize, Option<String>) {
    use rustix::fs::{CWD, Mode, OFlags, mkdirat, open, openat};
    let store = tempfile::tempdir().unwrap();
    let m = Mount::new(store.path(), "");
    let name = "d".repeat(name_len);
    let mut fd = open(&m.mp, OFlags::DIRECTORY, Mode::empty()).unwrap();
    let mut depth = 0;
    let mut failure = None;
    for _ in 0..levels {
        if let Err(e) = mkdirat(&fd, name.as_str(), Mode::from(0o755)) {
            failure = Some(format!("mkdirat at depth {depth}: {e}"));
            break;
        }
        fd = openat(&fd, name.as_str(), OFlags::DIRECTORY, Mode::empty()).unwrap();
        depth += 1;
    }
    if failure.is_none() {
        let f = openat(
            &fd,
            "leaf",
            OFlags::CREATE | OFlags::WRONLY,
            Mode::from(0o644),
        )
        .unwrap();
        rustix::io::write(&f, b"bottom").unwrap();
        drop(f);
        let f = openat(&fd, "leaf", OFlags::RDONLY, Mode::empty()).unwrap();
        let mut buf = [0u8; 16];
        let n = rustix::io::read(&f, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"bottom");
        let mut sfd = openat(CWD, store.path(), OFlags::DIRECTORY, Mode::empty()).unwrap();
        for _ in 0..depth {
            sfd = openat(&sfd, name.as_str(), OFlags::DIRECTORY, Mode::empty()).unwrap();
        }
        let f = openat(&sfd, "leaf", OFlags::RDONLY, Mode::empty()).unwrap();
        let n = rustix::io::read(&f, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"bottom");
    }
    eprintln!("deep {levels} x {name_len}-byte names: reached depth {depth} ({failure:?})");
    drop(m);
    (depth, failure)
}

#[test]
fn two_hundred_levels_and_paths_up_to_path_max() {
    // 200 levels of 8-byte names: 1,800 bytes; 120 levels of 30 bytes: 3,720 bytes.
    assert_eq!(deep(200, 8), (200, None));
    assert_eq!(deep(120, 30), (120, None));
}

/// Regression: store-relative paths longer than PATH_MAX used to give ENAMETOOLONG.
#[test]
fn paths_longer_than_path_max() {
    assert_eq!(deep(200, 30), (200, None));
}

#[test]
fn names_of_255_bytes_work_and_256_are_too_long() {
    let store = tempfile::tempdir().unwrap();
    let m = Mount::new(store.path(), "");
    let long = "n".repeat(255);
    std::fs::write(m.path(&long), b"x").unwrap();
    assert_eq!(std::fs::read(store.path().join(&long)).unwrap(), b"x");
    std::fs::create_dir(m.path(&"m".repeat(255))).unwrap();
    std::fs::rename(m.path(&long), m.path(&"m".repeat(255)).join(&long)).unwrap();
    assert!(
        std::fs::read_dir(m.path(&"m".repeat(255)))
            .unwrap()
            .any(|e| e.unwrap().file_name().as_bytes() == long.as_bytes())
    );
    let e = std::fs::write(m.path(&"n".repeat(256)), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG));
    drop(m);
}

// ------------------------------------------------------------------------------------------
// The daemon killed while a copy becomes a link
// ------------------------------------------------------------------------------------------

/// A client writes copies into a snapshot; the daemon is SIGKILLed as soon as it has begun
/// converting one of them (the log says it is reading it to hash it), i.e. between the write
/// and the link. Whatever moment the kill hit, every snapshot entry is the old state (a
/// regular file) or the new one (a link to a blob with the same bytes), no link dangles, and
/// every blob holds the bytes its name says; after a remount every file the client finished
/// reads back whole.
#[test]
fn daemon_killed_between_write_and_link_leaves_old_or_new_never_broken() {
    use hfcachefs::hub::hash::digest_bytes;
    let store = tempfile::tempdir().unwrap();
    let repo = store.path().join(REPO);
    let snapdir = repo.join(format!("snapshots/{C1}"));
    std::fs::create_dir_all(&snapdir).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    // One blob already there: copies of it become links to it.
    let old = content(500, 3 << 20);
    let old_name = digest_bytes(&old).git_sha1.unwrap();
    std::fs::write(repo.join("blobs").join(&old_name), &old).unwrap();
    let mut m = Mount::new(store.path(), "");
    let files: Vec<(String, Vec<u8>)> = (0..16u32)
        .map(|i| {
            let data = if i % 3 == 0 {
                old.clone()
            } else {
                content(600 + i, 12 << 20)
            };
            (format!("f{i:02}.bin"), data)
        })
        .collect();
    let done = Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
    let client = {
        let (files, done, dir) = (
            files.clone(),
            done.clone(),
            m.path(&format!("{REPO}/snapshots/{C1}")),
        );
        std::thread::spawn(move || {
            for (i, (name, data)) in files.iter().enumerate() {
                let res = std::fs::File::create(dir.join(name)).and_then(|mut f| f.write_all(data));
                if res.is_err() {
                    return;
                }
                done.lock().unwrap().push(i);
            }
        })
    };
    // Kill as soon as the third conversion has started reading its file.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let started = m.log_text().matches("dedupe: reading").count();
        if started >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no conversion started:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: kill(2) on our own child's PID.
    unsafe { libc::kill(m.pid().unwrap() as i32, libc::SIGKILL) };
    let log = m.log_text();
    bounded(Duration::from_secs(60), move || client.join())
        .expect("client hung after the daemon was killed")
        .unwrap();
    let out = Command::new(bin())
        .arg("unmount")
        .arg(&m.mp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = m.stop();
    // The store: old or new state for every entry, never a broken one.
    let mut links = 0;
    for e in std::fs::read_dir(&snapdir).unwrap() {
        let p = e.unwrap().path();
        let md = std::fs::symlink_metadata(&p).unwrap();
        if md.is_symlink() {
            links += 1;
            let target = p.parent().unwrap().join(std::fs::read_link(&p).unwrap());
            let bytes = std::fs::read(&target)
                .unwrap_or_else(|e| panic!("{} dangles: {e}\n{log}", p.display()));
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if let Some((_, data)) = files.iter().find(|(n, _)| *n == name) {
                assert_eq!(&bytes, data, "{} links to other bytes", p.display());
            }
        } else {
            assert!(md.is_file(), "{}", p.display());
        }
    }
    for e in std::fs::read_dir(repo.join("blobs")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let d = digest_bytes(&std::fs::read(&p).unwrap());
        assert_eq!(
            d.for_name(&name),
            Some(name.as_str()),
            "blob {name} holds other bytes"
        );
    }
    eprintln!(
        "killed after {} finished files; {links} entries were links",
        done.lock().unwrap().len()
    );
    // Remounted, every file the client finished reads back whole.
    let m2 = Mount::new(store.path(), "");
    for &i in done.lock().unwrap().iter() {
        let (name, data) = &files[i];
        let got = std::fs::read(m2.path(&format!("{REPO}/snapshots/{C1}/{name}"))).unwrap();
        assert!(got == *data, "{name} reads other bytes after the crash");
    }
}
