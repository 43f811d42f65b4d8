//! Integration tests of the read view over a real FUSE mount, checked from outside with
//! ordinary syscalls.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use harness::{C1, C2, Mount, REPO, Store, content, sha1ish, sha256ish, walk};

fn errno_of<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("expected an error")
        .raw_os_error()
        .expect("os error")
}

#[test]
fn no_symlink_anywhere_and_every_name_lstats() {
    let store = Store::hub();
    let hostile = store.add_hostile();
    let m = Mount::new(store.root(), "ro");
    let all = walk(&m.mp);
    assert!(all.len() > 10, "walk found {}", all.len());
    for p in &all {
        let md = std::fs::symlink_metadata(p).unwrap();
        assert!(
            md.is_file() || md.is_dir(),
            "{} is neither file nor dir",
            p.display()
        );
        if md.is_file() {
            assert_eq!(
                errno_of(std::fs::read_link(p)),
                libc::EINVAL,
                "readlink {}",
                p.display()
            );
        }
    }
    let snap = m.path(&format!("{REPO}/snapshots/{C1}"));
    let names: Vec<String> = std::fs::read_dir(&snap)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for h in hostile {
        assert!(!names.iter().any(|n| n == h), "hostile {h} is listed");
        assert_eq!(
            errno_of(std::fs::symlink_metadata(snap.join(h))),
            libc::ENOENT,
            "{h}"
        );
    }
    // `ls -l` of the directory works.
    let st = std::process::Command::new("ls")
        .arg("-l")
        .arg(&snap)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(
        m.log_text().contains("hidden store entry"),
        "warns about hostile entries"
    );
}

#[test]
fn bytes_sizes_and_listing_match_the_store() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro");
    for p in walk(&m.mp) {
        let rel = p.strip_prefix(&m.mp).unwrap();
        let in_store = store.root().join(rel);
        let md = std::fs::metadata(&p).unwrap();
        if md.is_file() {
            let want = std::fs::read(&in_store).unwrap();
            assert_eq!(std::fs::read(&p).unwrap(), want, "{}", rel.display());
            assert_eq!(md.len(), want.len() as u64);
        } else {
            let mut a: Vec<_> = std::fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            let mut b: Vec<_> = std::fs::read_dir(&in_store)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "listing of {}", rel.display());
        }
    }
    // Deep nested link and the two-level shared-store chain.
    let w = m.path(&format!("{REPO}/snapshots/{C1}/nested/deep/w.txt"));
    assert_eq!(std::fs::read(w).unwrap(), content(3, 10));
    let shared = m.path(&format!("{REPO}/snapshots/{C2}/shared.bin"));
    assert_eq!(std::fs::read(shared).unwrap(), content(9, 5000));
}

#[test]
fn mmap_reads_equal_the_blob() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro");
    let f =
        std::fs::File::open(m.path(&format!("{REPO}/snapshots/{C1}/model.safetensors"))).unwrap();
    // SAFETY: the file is not modified while mapped.
    let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
    assert_eq!(&map[..], &content(2, 200_000)[..]);
    assert_eq!(map[123_456], content(2, 200_000)[123_456]);
}

#[test]
fn names_of_one_blob_share_an_inode() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro");
    let a = std::fs::metadata(m.path(&format!("{REPO}/snapshots/{C1}/config.json"))).unwrap();
    let b = std::fs::metadata(m.path(&format!("{REPO}/snapshots/{C2}/config.json"))).unwrap();
    let blob = std::fs::metadata(m.path(&format!("{REPO}/blobs/{}", sha1ish(1)))).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.ino(), blob.ino());
    let s1 = std::fs::metadata(m.path(&format!("{REPO}/snapshots/{C1}/shared.bin"))).unwrap();
    let payload = std::fs::metadata(m.path(&format!("blobs/00/{}", sha256ish(9)))).unwrap();
    assert_eq!(s1.ino(), payload.ino());
    assert_ne!(a.ino(), s1.ino());
}

#[test]
fn read_only_mount_refuses_every_mutation() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro");
    let snap = m.path(&format!("{REPO}/snapshots/{C1}"));
    let f = snap.join("config.json");
    let erofs = libc::EROFS;
    assert_eq!(errno_of(std::fs::write(snap.join("new"), b"x")), erofs);
    assert_eq!(errno_of(std::fs::create_dir(snap.join("d"))), erofs);
    assert_eq!(errno_of(std::fs::remove_file(&f)), erofs);
    assert_eq!(errno_of(std::fs::rename(&f, snap.join("moved"))), erofs);
    assert_eq!(
        errno_of(std::os::unix::fs::symlink("config.json", snap.join("l"))),
        erofs
    );
    assert_eq!(
        errno_of(std::fs::OpenOptions::new().write(true).open(&f)),
        erofs
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        errno_of(std::fs::set_permissions(
            &f,
            std::fs::Permissions::from_mode(0o600)
        )),
        erofs
    );
    assert_eq!(
        errno_of(std::fs::remove_dir(snap.join("nested/deep"))),
        erofs
    );
    assert!(
        store
            .p(&format!("{REPO}/snapshots/{C1}/config.json"))
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
}

#[test]
fn store_changes_behind_the_mount_become_visible() {
    let store = Store::hub();
    // Fixed names (snapshot entries of blobs) are kept for immutable_timeout: short here, as
    // this test also re-points and deletes such names (fast_paths tests the default).
    let m = Mount::new(
        store.root(),
        "ro,attr_timeout=0.2,entry_timeout=0.2,immutable_timeout=0.2",
    );
    let refp = m.path(&format!("{REPO}/refs/main"));
    assert_eq!(std::fs::read_to_string(&refp).unwrap(), C2);
    let snap = m.path(&format!("{REPO}/snapshots/{C1}"));
    let _ = std::fs::metadata(snap.join("config.json")).unwrap();
    // Another machine: moves the ref, adds a file, re-points a name, deletes a name.
    let repo = store.p(REPO);
    std::fs::write(repo.join("refs/main.tmp"), C1).unwrap();
    std::fs::rename(repo.join("refs/main.tmp"), repo.join("refs/main")).unwrap();
    std::fs::write(repo.join("blobs").join(sha1ish(7)), b"new blob").unwrap();
    std::os::unix::fs::symlink(
        format!("../../blobs/{}", sha1ish(7)),
        repo.join(format!("snapshots/{C1}/added.txt")),
    )
    .unwrap();
    std::fs::remove_file(repo.join(format!("snapshots/{C1}/config.json"))).unwrap();
    std::os::unix::fs::symlink(
        format!("../../blobs/{}", sha1ish(7)),
        repo.join(format!("snapshots/{C1}/config.json")),
    )
    .unwrap();
    std::fs::remove_file(repo.join(format!("snapshots/{C1}/shared.bin"))).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(std::fs::read_to_string(&refp).unwrap(), C1);
    assert_eq!(std::fs::read(snap.join("added.txt")).unwrap(), b"new blob");
    assert_eq!(
        std::fs::read(snap.join("config.json")).unwrap(),
        b"new blob"
    );
    assert_eq!(
        errno_of(std::fs::metadata(snap.join("shared.bin"))),
        libc::ENOENT
    );
    let names: Vec<_> = std::fs::read_dir(&snap)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.iter().any(|n| n == "added.txt"));
    assert!(!names.iter().any(|n| n == "shared.bin"));
}

#[test]
fn seek_data_and_hole_pass_through() {
    let store = Store::hub();
    let blob = store.p(&format!("{REPO}/blobs/{}", sha256ish(5)));
    {
        let f = std::fs::File::create(&blob).unwrap();
        f.set_len(8 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(b"data", 4 << 20).unwrap();
    }
    let m = Mount::new(store.root(), "ro");
    let direct = std::fs::File::open(&blob).unwrap();
    let viewed = std::fs::File::open(m.path(&format!("{REPO}/blobs/{}", sha256ish(5)))).unwrap();
    for (whence, off) in [(libc::SEEK_DATA, 0), (libc::SEEK_HOLE, 4 << 20)] {
        // SAFETY: lseek on open descriptors.
        let a = unsafe { libc::lseek(std::os::fd::AsRawFd::as_raw_fd(&direct), off, whence) };
        // SAFETY: as above.
        let b = unsafe { libc::lseek(std::os::fd::AsRawFd::as_raw_fd(&viewed), off, whence) };
        assert_eq!(a, b, "whence {whence}");
    }
    let mut v = viewed;
    v.seek(SeekFrom::Start(4 << 20)).unwrap();
    let mut buf = [0u8; 4];
    v.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"data");
}

#[test]
fn statfs_is_the_stores() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro");
    let a = rustix::fs::statvfs(store.root()).unwrap();
    let b = rustix::fs::statvfs(&m.mp).unwrap();
    assert_eq!(a.f_blocks, b.f_blocks);
    assert_eq!(a.f_bsize, b.f_bsize);
}

#[test]
fn unmount_busy_then_clean_and_lazy() {
    let store = Store::hub();
    let mut m = Mount::new(store.root(), "ro");
    let open = std::fs::File::open(m.path(&format!("{REPO}/snapshots/{C1}/config.json"))).unwrap();
    let (ok, err) = harness::run(&[OsStr::new("unmount"), m.mp.as_os_str()]);
    assert!(!ok, "unmount of a busy mount must fail");
    assert!(err.contains("busy") && err.contains("--lazy"), "{err}");
    assert!(harness::is_mounted(&m.mp));
    drop(open);
    let (ok, err) = harness::run(&[OsStr::new("unmount"), m.mp.as_os_str()]);
    assert!(ok, "{err}");
    assert!(!harness::is_mounted(&m.mp));
    let st = m.stop().expect("daemon status");
    assert!(st.success(), "daemon exits 0 after unmount: {st}");

    let m2 = Mount::new(store.root(), "ro");
    let mut open =
        std::fs::File::open(m2.path(&format!("{REPO}/snapshots/{C1}/config.json"))).unwrap();
    let (ok, err) = harness::run(&[
        OsStr::new("unmount"),
        OsStr::new("--lazy"),
        m2.mp.as_os_str(),
    ]);
    assert!(ok, "{err}");
    assert!(!harness::is_mounted(&m2.mp));
    let mut s = String::new();
    // The open file still reads after a lazy detach.
    let _ = open.read_to_string(&mut s);
}

#[test]
fn sigterm_unmounts_cleanly() {
    let store = Store::hub();
    let mut m = Mount::new(store.root(), "");
    let st = m.stop().expect("status");
    assert!(st.success(), "{st}");
    assert!(!harness::is_mounted(&m.mp));
}

#[test]
fn cli_errors_are_one_line_and_non_zero() {
    let store = Store::hub();
    let mp = tempfile::tempdir().unwrap();
    let file = mp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let cases: Vec<(Vec<&OsStr>, &str)> = vec![
        (
            vec![
                OsStr::new("mount"),
                OsStr::new("/nonexistent/store"),
                mp.path().as_os_str(),
            ],
            "does not exist",
        ),
        (
            vec![
                OsStr::new("mount"),
                store.root().as_os_str(),
                OsStr::new("/nonexistent/mp"),
            ],
            "mkdir -p",
        ),
        (
            vec![
                OsStr::new("mount"),
                store.root().as_os_str(),
                file.as_os_str(),
            ],
            "not a directory",
        ),
        (
            vec![
                OsStr::new("mount"),
                OsStr::new("-o"),
                OsStr::new("ro,bogus"),
                store.root().as_os_str(),
                mp.path().as_os_str(),
            ],
            "unknown mount option 'bogus'",
        ),
        (
            vec![OsStr::new("unmount"), mp.path().as_os_str()],
            "not a mount point",
        ),
        (
            vec![
                store.root().as_os_str(),
                mp.path().as_os_str(),
                OsStr::new("-o"),
                OsStr::new("uid=x"),
            ],
            "bad value",
        ),
    ];
    for (args, want) in cases {
        let (ok, err) = harness::run(&args);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    let m = Mount::new(store.root(), "ro");
    let (ok, err) = harness::run(&[
        OsStr::new("mount"),
        store.root().as_os_str(),
        m.mp.as_os_str(),
    ]);
    assert!(!ok);
    assert!(err.contains("already a mount point"), "{err}");
}

#[test]
fn detached_mount_is_live_when_the_command_returns() {
    let store = Store::hub();
    let mp = tempfile::tempdir().unwrap();
    let mpp = std::fs::canonicalize(mp.path()).unwrap();
    // FUSE convention form, as mount.fuse3 runs it.
    let (ok, err) = harness::run(&[
        store.root().as_os_str(),
        mpp.as_os_str(),
        OsStr::new("-o"),
        OsStr::new("ro"),
    ]);
    assert!(ok, "{err}");
    let live = harness::is_mounted(&mpp);
    let read = std::fs::read(mpp.join(format!("{REPO}/snapshots/{C1}/config.json")));
    let (uok, uerr) = harness::run(&[OsStr::new("unmount"), mpp.as_os_str()]);
    assert!(live, "mount must be live when the command exits");
    assert_eq!(read.unwrap(), content(1, 300));
    assert!(uok, "{uerr}");
    // The daemon exits by itself after the unmount.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline && daemon_for(&mpp) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!daemon_for(&mpp), "daemon still running after unmount");
}

/// True if some hfcachefs process has `mp` on its command line.
fn daemon_for(mp: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return false;
    };
    rd.filter_map(Result::ok).any(|e| {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let needle = mp.as_os_str().as_encoded_bytes();
        cmd.windows(needle.len()).any(|w| w == needle) && cmd.windows(9).any(|w| w == b"hfcachefs")
    })
}

#[test]
fn store_emptied_behind_the_mount_gives_clean_errors() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro,attr_timeout=0.1,entry_timeout=0.1");
    let f = m.path(&format!("{REPO}/snapshots/{C1}/config.json"));
    assert_eq!(std::fs::read(&f).unwrap(), content(1, 300));
    let open = std::fs::File::open(&f).unwrap();
    for e in std::fs::read_dir(store.root()).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(errno_of(std::fs::metadata(&f)), libc::ENOENT);
    assert_eq!(std::fs::read_dir(&m.mp).unwrap().count(), 0);
    // The open handle still has the (now unlinked) store file.
    let mut s = Vec::new();
    let mut open = open;
    open.read_to_end(&mut s).unwrap();
    assert_eq!(s, content(1, 300));
}

#[test]
fn detached_logs_to_its_file_and_sighup_reopens_it() {
    let store = Store::hub();
    let dir = tempfile::tempdir().unwrap();
    let mp = dir.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let mp = std::fs::canonicalize(&mp).unwrap();
    let log = dir.path().join("h.log");
    let state = dir.path().join("state");
    let out = std::process::Command::new(harness::bin())
        .args(["mount", "--log-file"])
        .arg(&log)
        .args(["-o", "ro"])
        .arg(store.root())
        .arg(&mp)
        .env("HFCACHEFS_STATE_DIR", &state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = harness::run(&[
                OsStr::new("unmount"),
                OsStr::new("--lazy"),
                self.0.as_os_str(),
            ]);
        }
    }
    let _guard = Unmount(mp.clone());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("mounted") && text.contains("reads"),
        "one line per mount with the mode: {text}"
    );
    // Rotate, then SIGHUP: the daemon writes to the new file.
    std::fs::rename(&log, dir.path().join("h.log.1")).unwrap();
    let st = std::process::Command::new(harness::bin())
        .args(["status", "--json"])
        .arg(&mp)
        .env("HFCACHEFS_STATE_DIR", &state)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let pid = v[0]["pid"].as_u64().unwrap() as i32;
    // SAFETY: kill(2) on the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    // The new file appears when the daemon opens it, a moment before the line is written.
    let reopened = || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("reopened"));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !reopened() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(reopened(), "{:?}", std::fs::read_to_string(&log));
    assert!(harness::is_mounted(&mp), "SIGHUP must not unmount");
}

/// Runs `cat PATH` as user `nobody`; returns whether it succeeded.
fn cat_as_nobody(path: &Path) -> bool {
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn uid_gid_options_and_allow_other_with_permission_checks() {
    let store = Store::hub();
    // The tempdir is private to root; let other users reach the mountpoint's parent.
    let private = store.p("private.txt");
    std::fs::write(&private, b"secret").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let m = Mount::new(store.root(), "ro,uid=1234,gid=4321");
    let md = std::fs::metadata(m.path(&format!("{REPO}/snapshots/{C1}/config.json"))).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 4321));
    std::fs::set_permissions(m.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let public = m.path(&format!("{REPO}/snapshots/{C1}/config.json"));
    // Without allow_other, other users are turned away by the kernel.
    assert!(!cat_as_nobody(&public));
    drop(m);

    let m = Mount::new(store.root(), "ro,allow_other");
    std::fs::set_permissions(m.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let public = m.path(&format!("{REPO}/snapshots/{C1}/config.json"));
    let root_mode = std::fs::metadata(&m.mp).unwrap().permissions().mode();
    assert!(
        cat_as_nobody(&public),
        "allow_other lets other users read (root mode {root_mode:o})"
    );
    // default_permissions (implied) keeps the store's mode bits in force.
    assert!(
        !cat_as_nobody(&m.path("private.txt")),
        "a 0600 file stays private"
    );
}
