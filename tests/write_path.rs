//! Integration tests of the write path over a real read-write mount.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use harness::{C1, C2, Mount, REPO, Store, content, sha1ish, sha256ish};

fn errno_of<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("expected an error")
        .raw_os_error()
        .expect("os error")
}

fn snap(m: &Mount, c: &str, f: &str) -> std::path::PathBuf {
    m.path(&format!("{REPO}/snapshots/{c}/{f}"))
}

#[test]
fn files_create_write_truncate_chmod_utimens_rename_unlink() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "");
    let d = m.path("work");
    fs::create_dir(&d).unwrap();
    let f = d.join("a.txt");
    // O_CREAT|O_EXCL, then EEXIST.
    let mut w = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(&f)
        .unwrap();
    w.write_all(b"hello world").unwrap();
    w.sync_all().unwrap();
    assert_eq!(
        errno_of(OpenOptions::new().write(true).create_new(true).open(&f)),
        libc::EEXIST
    );
    // Positional writes and ftruncate through the same handle.
    w.write_all_at(b"HELLO", 0).unwrap();
    w.set_len(8).unwrap();
    drop(w);
    assert_eq!(fs::read(&f).unwrap(), b"HELLO wo");
    assert_eq!(fs::read(store.p("work/a.txt")).unwrap(), b"HELLO wo");
    // O_TRUNC and O_APPEND from two descriptors.
    fs::write(&f, b"x").unwrap();
    let mut a1 = OpenOptions::new().append(true).open(&f).unwrap();
    let mut a2 = OpenOptions::new().append(true).open(&f).unwrap();
    a1.write_all(b"1").unwrap();
    a2.write_all(b"2").unwrap();
    a1.write_all(b"3").unwrap();
    drop((a1, a2));
    assert_eq!(fs::read(&f).unwrap(), b"x123");
    // truncate by path, chmod, utimens.
    let t = OpenOptions::new().write(true).open(&f).unwrap();
    t.set_len(2).unwrap();
    drop(t);
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        fs::metadata(store.p("work/a.txt")).unwrap().mode() & 0o777,
        0o600
    );
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(when)
        .unwrap();
    assert_eq!(
        fs::metadata(store.p("work/a.txt")).unwrap().mtime(),
        1_000_000_000
    );
    assert_eq!(fs::metadata(&f).unwrap().mtime(), 1_000_000_000);
    // rename and os.replace over an existing name.
    fs::write(d.join("b.txt"), b"bbb").unwrap();
    fs::rename(&f, d.join("b.txt")).unwrap();
    assert_eq!(fs::read(d.join("b.txt")).unwrap(), b"x1");
    assert!(!f.exists());
    // unlink of an open file: the handle keeps reading.
    let mut open = fs::File::open(d.join("b.txt")).unwrap();
    fs::remove_file(d.join("b.txt")).unwrap();
    let mut s = String::new();
    open.read_to_string(&mut s).unwrap();
    assert_eq!(s, "x1");
    assert!(!store.p("work/b.txt").exists());
    fs::remove_dir(&d).unwrap();
    assert!(!store.p("work").exists());
}

#[test]
fn o_tmpfile_is_refused_cleanly() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "");
    let r = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(&m.mp);
    let e = errno_of(r);
    assert!(e == libc::EOPNOTSUPP || e == libc::EISDIR, "errno {e}");
}

#[test]
fn threads_write_disjoint_ranges_of_one_file() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "");
    let f = Arc::new(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(m.path("par.bin"))
            .unwrap(),
    );
    let chunk = 256 * 1024;
    let hs: Vec<_> = (0..8)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || {
                f.write_all_at(&content(100 + i, chunk), (i as usize * chunk) as u64)
                    .unwrap()
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let got = fs::read(store.p("par.bin")).unwrap();
    for i in 0..8u32 {
        assert_eq!(
            &got[i as usize * chunk..(i as usize + 1) * chunk],
            &content(100 + i, chunk)[..]
        );
    }
}

#[test]
fn mkdir_p_races_and_readdir_while_adding() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "");
    let deep = m.path("r/a/b/c/d");
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let deep = deep.clone();
            std::thread::spawn(move || fs::create_dir_all(&deep).unwrap())
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert!(store.p("r/a/b/c/d").is_dir());
    // Two processes racing too.
    let script = format!(
        "import os\nos.makedirs({:?}, exist_ok=True)",
        m.path("p/q/r").display().to_string()
    );
    let kids: Vec<_> = (0..4)
        .map(|_| {
            Command::new("python3")
                .arg("-c")
                .arg(&script)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
    // readdir while entries are added: every name seen is real, and a fresh listing has all.
    let d = m.path("r/a");
    let mut it = fs::read_dir(&d).unwrap();
    let first = it.next();
    for i in 0..50 {
        fs::write(d.join(format!("f{i}")), b"x").unwrap();
    }
    let rest: Vec<_> = it.map(|e| e.unwrap().file_name()).collect();
    assert!(first.is_some() || !rest.is_empty());
    assert_eq!(fs::read_dir(&d).unwrap().count(), 51);
}

#[test]
fn python_rmtree_fd_based_removal() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "");
    let t = m.path("tree");
    for i in 0..5 {
        fs::create_dir_all(t.join(format!("d{i}/e"))).unwrap();
        fs::write(t.join(format!("d{i}/e/f")), b"x").unwrap();
        std::os::unix::fs::symlink("f", t.join(format!("d{i}/e/l"))).unwrap();
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import shutil; assert shutil.rmtree.avoids_symlink_attacks; shutil.rmtree({:?})",
            t.display().to_string()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!store.p("tree").exists());
}

#[test]
fn symlink_makes_a_real_link_and_shows_a_file() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "");
    let snapdir = m.path(&format!("{REPO}/snapshots/{C1}"));
    let target = format!("../../blobs/{}", sha1ish(3));
    std::os::unix::fs::symlink(&target, snapdir.join("new.txt")).unwrap();
    // In the store: a relative link with the client's text.
    let in_store = store.p(&format!("{REPO}/snapshots/{C1}/new.txt"));
    assert_eq!(fs::read_link(&in_store).unwrap(), Path::new(&target));
    // In the view: a regular file at once, with the blob's bytes and inode.
    let md = fs::symlink_metadata(snapdir.join("new.txt")).unwrap();
    assert!(md.is_file());
    assert_eq!(fs::read(snapdir.join("new.txt")).unwrap(), content(3, 10));
    let blob = fs::metadata(m.path(&format!("{REPO}/blobs/{}", sha1ish(3)))).unwrap();
    assert_eq!(md.ino(), blob.ino());
    // EEXIST over an existing name.
    assert_eq!(
        errno_of(std::os::unix::fs::symlink(
            &target,
            snapdir.join("config.json")
        )),
        libc::EEXIST
    );
    // Absolute targets inside the mount become relative links in the store.
    let abs = m.path(&format!("{REPO}/blobs/{}", sha1ish(1)));
    std::os::unix::fs::symlink(&abs, snapdir.join("abs.json")).unwrap();
    assert_eq!(
        fs::read_link(store.p(&format!("{REPO}/snapshots/{C1}/abs.json"))).unwrap(),
        Path::new(&format!("../../blobs/{}", sha1ish(1)))
    );
    // A target outside the store or missing is refused and nothing is created.
    assert_eq!(
        errno_of(std::os::unix::fs::symlink(
            "/etc/passwd",
            snapdir.join("evil")
        )),
        libc::EXDEV
    );
    assert_eq!(
        errno_of(std::os::unix::fs::symlink(
            "../../blobs/none",
            snapdir.join("none")
        )),
        libc::ENOENT
    );
    assert!(fs::symlink_metadata(store.p(&format!("{REPO}/snapshots/{C1}/evil"))).is_err());
}

#[test]
fn hidden_broken_link_can_be_replaced_for_a_redownload() {
    let store = Store::hub();
    // A snapshot link whose blob was lost.
    let lost = store.p(&format!("{REPO}/snapshots/{C1}/lost.bin"));
    std::os::unix::fs::symlink(format!("../../blobs/{}", sha256ish(77)), &lost).unwrap();
    let m = Mount::new(store.root(), "");
    let v = snap(&m, C1, "lost.bin");
    assert_eq!(errno_of(fs::metadata(&v)), libc::ENOENT);
    // The hub re-downloads the blob, then recreates the pointer.
    fs::write(
        m.path(&format!("{REPO}/blobs/{}", sha256ish(77))),
        b"restored",
    )
    .unwrap();
    let _ = fs::remove_file(&v);
    std::os::unix::fs::symlink(format!("../../blobs/{}", sha256ish(77)), &v).unwrap();
    assert_eq!(fs::read(&v).unwrap(), b"restored");
    // Also when the new link is made while the old one still dangles.
    std::os::unix::fs::symlink(
        "../../blobs/gone",
        store.p(&format!("{REPO}/snapshots/{C1}/again")),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        format!("../../blobs/{}", sha256ish(77)),
        snap(&m, C1, "again"),
    )
    .unwrap();
    assert_eq!(fs::read(snap(&m, C1, "again")).unwrap(), b"restored");
}

#[test]
fn moving_a_link_to_another_depth_keeps_it_resolving() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "");
    let from = snap(&m, C1, "config.json");
    let to = snap(&m, C1, "nested/deep/config.json");
    fs::rename(&from, &to).unwrap();
    assert_eq!(fs::read(&to).unwrap(), content(1, 300));
    let text =
        fs::read_link(store.p(&format!("{REPO}/snapshots/{C1}/nested/deep/config.json"))).unwrap();
    assert_eq!(
        text,
        Path::new(&format!("../../../../blobs/{}", sha1ish(1)))
    );
    // And back up to the repo root.
    fs::rename(&to, m.path(&format!("{REPO}/top.json"))).unwrap();
    assert_eq!(
        fs::read(m.path(&format!("{REPO}/top.json"))).unwrap(),
        content(1, 300)
    );
}

#[test]
fn writing_a_shared_blob_is_refused_and_the_blob_is_unchanged() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "");
    let f = snap(&m, C1, "config.json");
    assert_eq!(
        errno_of(OpenOptions::new().write(true).open(&f)),
        libc::EPERM
    );
    assert_eq!(
        errno_of(OpenOptions::new().append(true).open(&f)),
        libc::EPERM
    );
    assert_eq!(
        errno_of(OpenOptions::new().write(true).truncate(true).open(&f)),
        libc::EPERM
    );
    assert_eq!(
        fs::read(snap(&m, C2, "config.json")).unwrap(),
        content(1, 300)
    );
    assert_eq!(
        fs::read(store.p(&format!("{REPO}/blobs/{}", sha1ish(1)))).unwrap(),
        content(1, 300)
    );
    // Replacing the name is the way to change it, and leaves the other revision alone.
    fs::write(m.path("tmp.json"), b"mine").unwrap();
    fs::rename(m.path("tmp.json"), &f).unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"mine");
    assert_eq!(
        fs::read(snap(&m, C2, "config.json")).unwrap(),
        content(1, 300)
    );
}

#[test]
fn unlinking_a_linked_blob_keeps_its_content_for_other_names() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "");
    let blob = m.path(&format!("{REPO}/blobs/{}", sha1ish(1)));
    // Keep the inode alive in the kernel, so its number can be compared afterwards.
    let held = fs::File::open(snap(&m, C1, "config.json")).unwrap();
    let ino = held.metadata().unwrap().ino();
    assert_eq!(fs::metadata(&blob).unwrap().ino(), ino);
    fs::remove_file(&blob).unwrap();
    assert!(!blob.exists());
    for c in [C1, C2] {
        let p = snap(&m, c, "config.json");
        assert_eq!(fs::read(&p).unwrap(), content(1, 300), "{c}");
        assert_eq!(fs::metadata(&p).unwrap().ino(), ino, "still one inode");
    }
    // Moving a linked blob: the links follow it.
    let b2 = m.path(&format!("{REPO}/blobs/{}", sha256ish(2)));
    fs::rename(&b2, m.path(&format!("{REPO}/blobs/{}", sha256ish(22)))).unwrap();
    assert_eq!(
        fs::read(snap(&m, C1, "model.safetensors")).unwrap(),
        content(2, 200_000)
    );
    // Removing a whole repo through the mount (as `hf cache rm` does) still works.
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import shutil; shutil.rmtree({:?})",
            m.path(REPO).display().to_string()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!store.p(REPO).exists());
}

#[test]
fn shared_payload_survives_removal_through_the_view() {
    let store = Store::hub();
    // Manifest of the payload: the repo blob link that references it.
    let payload = format!("blobs/00/{}", sha256ish(9));
    fs::write(
        store.p(&format!("{payload}.refs")),
        format!("{REPO}/blobs/{}\n", sha256ish(4)),
    )
    .unwrap();
    let m = Mount::new(store.root(), "");
    fs::remove_file(m.path(&payload)).unwrap();
    assert_eq!(
        fs::read(snap(&m, C1, "shared.bin")).unwrap(),
        content(9, 5000)
    );
    // The content now lives at the repo blob's name, as a regular file.
    let rb = store.p(&format!("{REPO}/blobs/{}", sha256ish(4)));
    assert!(fs::symlink_metadata(&rb).unwrap().is_file());
}

fn flock_holder(path: &Path, secs: u32) -> std::process::Child {
    // --close: the lock stays with `flock` itself, so killing it releases the lock.
    Command::new("flock")
        .arg("--close")
        .arg("-x")
        .arg(path)
        .arg("sleep")
        .arg(secs.to_string())
        .spawn()
        .unwrap()
}

fn wait_until(f: impl Fn() -> bool) {
    let t = std::time::Instant::now();
    while !f() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "timed out"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn locks_exclude_across_processes_and_reach_the_store() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "");
    let lock = m.path("x.lock");
    fs::write(&lock, b"").unwrap();
    let mut holder = flock_holder(&lock, 30);
    // Another process through the mount cannot take it.
    let try_flock = || {
        Command::new("flock")
            .arg("-n")
            .arg("-x")
            .arg(&lock)
            .arg("true")
            .status()
            .unwrap()
            .success()
    };
    wait_until(|| !try_flock());
    // A process locking the store file directly (fcntl, as NFS does for every lock) is
    // excluded too: the lock reached the store.
    let direct = store.p("x.lock");
    let py = format!(
        "import fcntl,sys\nf=open({:?},'r+')\ntry:\n fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB)\nexcept OSError:\n sys.exit(3)\nsys.exit(0)",
        direct.display().to_string()
    );
    let st = Command::new("python3").arg("-c").arg(&py).status().unwrap();
    assert_eq!(st.code(), Some(3), "direct lock on the store must conflict");
    let _ = holder.kill();
    let _ = holder.wait();
    wait_until(try_flock);
    let st = Command::new("python3").arg("-c").arg(&py).status().unwrap();
    assert_eq!(st.code(), Some(0));
    // POSIX byte-range locks through the mount exclude each other too.
    let f = m.path("range.bin");
    fs::write(&f, vec![0u8; 100]).unwrap();
    // The holder waits for its lock (a probe may hold the range for a moment first); probes
    // do not wait.
    let pyrange = |start: u32| {
        format!(
            "import fcntl,sys,time\nf=open({:?},'r+')\nhold=len(sys.argv)>1\ntry:\n fcntl.lockf(f, fcntl.LOCK_EX if hold else fcntl.LOCK_EX|fcntl.LOCK_NB, 10, {start})\nexcept OSError:\n sys.exit(3)\nif hold: time.sleep(30)\n",
            f.display().to_string()
        )
    };
    let mut held = Command::new("python3")
        .arg("-c")
        .arg(pyrange(0))
        .arg("hold")
        .spawn()
        .unwrap();
    wait_until(|| {
        Command::new("python3")
            .arg("-c")
            .arg(pyrange(5))
            .status()
            .unwrap()
            .code()
            == Some(3)
    });
    assert_eq!(
        Command::new("python3")
            .arg("-c")
            .arg(pyrange(50))
            .status()
            .unwrap()
            .code(),
        Some(0)
    );
    let _ = held.kill();
    let _ = held.wait();
}

#[test]
fn store_errors_reach_the_client_unchanged() {
    // A tiny tmpfs store: ENOSPC mid-write.
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    struct Umount<'a>(&'a Path);
    impl Drop for Umount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _u = Umount(dir.path());
    {
        let m = Mount::new(dir.path(), "");
        let mut f = fs::File::create(m.path("big")).unwrap();
        let r = (0..64).try_for_each(|_| f.write_all(&[7u8; 65536]));
        assert_eq!(r.expect_err("ENOSPC").raw_os_error(), Some(libc::ENOSPC));
        drop(f);
        // The mount keeps serving.
        fs::remove_file(m.path("big")).unwrap();
        fs::write(m.path("small"), b"ok").unwrap();
        assert_eq!(fs::read(m.path("small")).unwrap(), b"ok");
    }
    // A read-only store: EROFS from the store itself on a read-write mount.
    let st = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let m = Mount::new(dir.path(), "");
    assert_eq!(errno_of(fs::write(m.path("new"), b"x")), libc::EROFS);
    assert_eq!(fs::read(m.path("small")).unwrap(), b"ok");
    let mut f = fs::File::open(m.path("small")).unwrap();
    f.seek(SeekFrom::Start(1)).unwrap();
}

#[test]
fn rmdir_removes_a_directory_that_holds_only_hidden_links() {
    let store = Store::hub();
    let d = store.p("gone");
    fs::create_dir(&d).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.join("escape")).unwrap();
    std::os::unix::fs::symlink("missing", d.join("dangling")).unwrap();
    fs::create_dir(store.p("keep")).unwrap();
    std::os::unix::fs::symlink("missing", store.p("keep/dangling")).unwrap();
    fs::write(store.p("keep/real"), b"x").unwrap();
    let m = Mount::new(store.root(), "");
    assert_eq!(fs::read_dir(m.path("gone")).unwrap().count(), 0);
    fs::remove_dir(m.path("gone")).unwrap();
    assert!(!d.exists());
    // A directory with a visible entry is not empty.
    assert_eq!(errno_of(fs::remove_dir(m.path("keep"))), libc::ENOTEMPTY);
    assert!(store.p("keep/real").exists());
}

#[test]
fn xattrs_are_not_supported() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "");
    fs::write(m.path("x"), b"x").unwrap();
    let c = std::ffi::CString::new(m.path("x").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: valid NUL-terminated strings and a valid buffer.
    let r = unsafe { libc::setxattr(c.as_ptr(), c"user.k".as_ptr(), b"v".as_ptr().cast(), 1, 0) };
    assert_eq!(r, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EOPNOTSUPP)
    );
}

#[test]
fn moving_a_linked_blob_to_another_repo_copies_instead() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "");
    fs::create_dir_all(m.path("models--acme--other/blobs")).unwrap();
    let from = m.path(&format!("{REPO}/blobs/{}", sha1ish(1)));
    let to = m.path(&format!("models--acme--other/blobs/{}", sha1ish(1)));
    // A plain rename(2) is refused, so nothing in this repo comes to depend on the other.
    assert_eq!(errno_of(fs::rename(&from, &to)), libc::EXDEV);
    // `mv` falls back to copy + unlink; the snapshots keep their content.
    let st = Command::new("mv").arg(&from).arg(&to).status().unwrap();
    assert!(st.success());
    assert_eq!(fs::read(&to).unwrap(), content(1, 300));
    assert_eq!(
        fs::read(snap(&m, C1, "config.json")).unwrap(),
        content(1, 300)
    );
    // Removing the other repo leaves this one whole.
    fs::remove_dir_all(m.path("models--acme--other")).unwrap();
    assert_eq!(
        fs::read(snap(&m, C2, "config.json")).unwrap(),
        content(1, 300)
    );
}

#[test]
fn fstat_of_an_unlinked_open_file_works() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "attr_timeout=0,entry_timeout=0");
    let p = m.path("gone-but-open");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&p)
        .unwrap();
    f.write_all(b"still here").unwrap();
    fs::remove_file(&p).unwrap();
    let md = f.metadata().unwrap();
    assert_eq!(md.nlink(), 0);
    assert_eq!(md.len(), 10);
}
