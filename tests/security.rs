//! A shared machine and a hostile store: one `allow_other` mount, an attacker user and a
//! victim user (made with `useradd`, removed by a guard), clients run with `runuser`.
//! One test per finding of the security review (docs/SECURITY.md names them); the races
//! are bounded stress runs. Every attack is also tried directly in the store where that
//! shows what the store itself allows: the view must allow exactly that.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use harness::{C1, C2, Mount, REPO, Store, sha1ish, sha256ish};

/// The system's Python (other users cannot reach a toolchain under /root).
const PY: &str = "/usr/bin/python3";

/// A user made for one test; removed (with its group) when dropped.
struct User {
    name: String,
    uid: u32,
    gid: u32,
}

impl User {
    fn new(tag: &str) -> User {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "hfc{tag}{}x{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::Relaxed)
        );
        // useradd takes a lock on /etc/passwd; tests running at once may meet it held.
        let mut tries = 0;
        loop {
            let out = Command::new("useradd")
                .args(["-M", "-U", "-d", "/nonexistent", "-s", "/usr/sbin/nologin"])
                .arg(&name)
                .output()
                .expect("useradd");
            if out.status.success() {
                break;
            }
            tries += 1;
            assert!(
                tries < 50,
                "useradd {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").arg(flag).arg(&name).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        User { name, uid, gid }
    }

    /// A command run as this user (cwd `/`, no stdin).
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", &self.name, "--", "timeout", "30", prog])
            .current_dir("/")
            .stdin(Stdio::null());
        c
    }

    /// Runs `sh -c script` as this user.
    fn sh(&self, script: &str) -> Output {
        self.cmd("sh").args(["-c", script]).output().unwrap()
    }

    /// Runs a Python program as this user, with `args` as `sys.argv[1:]`.
    fn py(&self, program: &str, args: &[&Path]) -> Output {
        self.cmd(PY)
            .arg("-c")
            .arg(program)
            .args(args)
            .output()
            .unwrap()
    }

    fn chown(&self, p: &Path) {
        std::os::unix::fs::lchown(p, Some(self.uid), Some(self.gid)).unwrap();
    }
}

impl Drop for User {
    fn drop(&mut self) {
        // End anything still running as the user, then remove it.
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .status();
        for _ in 0..50 {
            let ok = Command::new("userdel")
                .arg(&self.name)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}; stdout {:?}; stderr {:?}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits at most `secs` for `child`. A process blocked in a FUSE request cannot be killed
/// until the daemon answers; if it is still there, the test fails and the mount guard's end
/// of the daemon releases it.
fn finishes(mut child: Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < deadline, "still blocked after {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The harness's hub store, reachable by every user.
fn hub() -> Store {
    let store = Store::hub();
    chmod(store.root(), 0o755);
    store
}

/// The store mounted read-write with `allow_other`, the mountpoint reachable by everyone.
fn shared_mount(store: &Store, extra: &str) -> Mount {
    let opts = if extra.is_empty() {
        "allow_other".to_string()
    } else {
        format!("allow_other,{extra}")
    };
    let m = Mount::new(store.root(), &opts);
    chmod(m.dir.path(), 0o755);
    m
}

/// Each of `attacks`, run by `who`, fails with "Permission denied".
fn refused(who: &User, attacks: &[String]) {
    for attack in attacks {
        let o = who.sh(attack);
        assert!(!o.status.success(), "{attack}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
            "{attack}: {}",
            text(&o)
        );
    }
}

/// A directory in the store with this mode (and owner).
fn dir_in(store: &Store, rel: &str, mode: u32, owner: Option<&User>) -> PathBuf {
    let p = store.p(rel);
    std::fs::create_dir_all(&p).unwrap();
    if let Some(u) = owner {
        u.chown(&p);
    }
    chmod(&p, mode);
    p
}

fn file_in(store: &Store, rel: &str, bytes: &[u8], mode: u32, owner: Option<&User>) -> PathBuf {
    let p = store.p(rel);
    std::fs::write(&p, bytes).unwrap();
    if let Some(u) = owner {
        u.chown(&p);
    }
    chmod(&p, mode);
    p
}

/// Every symlink below `root` that the OS can follow must stay below `root`.
fn assert_no_link_escapes(root: &Path) {
    let root = std::fs::canonicalize(root).unwrap();
    for p in harness::walk(&root) {
        let md = std::fs::symlink_metadata(&p).unwrap();
        if md.file_type().is_symlink()
            && let Ok(real) = std::fs::canonicalize(&p)
        {
            assert!(
                real.starts_with(&root),
                "{} -> {:?} leads to {} outside the store",
                p.display(),
                std::fs::read_link(&p).unwrap(),
                real.display()
            );
        }
    }
}

/// Finding 1: links do not bypass the permissions of the directories they pass through.
#[test]
fn links_do_not_reach_what_the_store_refuses() {
    let store = hub();
    let victim = User::new("v");
    let attacker = User::new("a");
    let private = dir_in(&store, "vpriv", 0o700, Some(&victim));
    file_in(&store, "vpriv/secret", b"secret", 0o644, Some(&victim));
    let rw = file_in(&store, "vpriv/rw", b"orig", 0o666, Some(&victim));
    dir_in(&store, "pub", 0o777, None);
    // The attacker places links directly in the store, where it may write.
    let placed = attacker.sh(&format!(
        "cd {pub_} && ln -s ../vpriv/secret d1 && ln -s ../vpriv/rw d2 && ln -s ../vpriv ddir",
        pub_ = store.p("pub").display()
    ));
    assert!(placed.status.success(), "{}", text(&placed));
    let m = shared_mount(&store, "");
    let mp = m.mp.display().to_string();

    // The victim reads first, so the kernel holds the names.
    let v = victim.sh(&format!(
        "cat {mp}/pub/d1 && ls {mp}/pub/ddir && stat {mp}/pub/d2"
    ));
    assert!(v.status.success(), "{}", text(&v));
    assert!(
        String::from_utf8_lossy(&v.stdout).starts_with("secret"),
        "{}",
        text(&v)
    );

    // Directly in the store the attacker gets nothing ...
    let direct = attacker.sh(&format!("cat {}/pub/d1", store.root().display()));
    assert!(!direct.status.success(), "{}", text(&direct));
    // ... and through the view neither: read, write, list, stat.
    refused(
        &attacker,
        &[
            format!("cat {mp}/pub/d1"),
            format!("echo pwned > {mp}/pub/d2"),
            format!("ls {mp}/pub/ddir"),
            format!("cat {mp}/pub/ddir/secret"),
            format!("stat {mp}/pub/d1"),
        ],
    );
    assert_eq!(std::fs::read(&rw).unwrap(), b"orig");
    // Making such a link through the view is refused the same way whether the target
    // exists or not: no existence oracle.
    let a = attacker.sh(&format!("ln -s ../vpriv/secret {mp}/pub/l1"));
    let b = attacker.sh(&format!("ln -s ../vpriv/missing {mp}/pub/l2"));
    assert!(
        !a.status.success() && !b.status.success(),
        "{} / {}",
        text(&a),
        text(&b)
    );
    let msg = |o: &Output| String::from_utf8_lossy(&o.stderr).replace("l1", "l2");
    assert_eq!(msg(&a), msg(&b));
    assert!(msg(&a).contains("Permission denied"), "{}", msg(&a));
    // The victim keeps its access.
    let v = victim.sh(&format!("cat {mp}/pub/d1"));
    assert!(v.status.success(), "{}", text(&v));
    assert!(private.exists());
}

/// Finding 2: Hub content is never taken for a link; with `-o xsym`, a link written as a
/// file through the view gets the checks `symlink()` gets.
#[test]
fn hub_content_in_xsym_format_stays_content() {
    use hfcachefs::links::xsym;
    let store = hub();
    let snap = |c: &str| store.p(&format!("{REPO}/snapshots/{c}"));
    let forged = xsym::format(format!("../../blobs/{}", sha1ish(3)).as_bytes()).unwrap();
    let evil_blob = store.p(&format!("{REPO}/blobs/{}", sha256ish(20)));
    std::fs::write(&evil_blob, &forged).unwrap();
    symlink(
        format!("../../blobs/{}", sha256ish(20)),
        snap(C1).join("evil.json"),
    )
    .unwrap();
    std::fs::write(snap(C2).join("copy.json"), &forged).unwrap();
    let shadow = xsym::format(b"/etc/shadow").unwrap();

    for opts in ["", "xsym"] {
        let m = shared_mount(&store, opts);
        let view = |c: &str, n: &str| m.path(&format!("{REPO}/snapshots/{c}/{n}"));
        // A blob is bytes, whatever they look like, with or without `xsym`.
        assert_eq!(
            std::fs::read(view(C1, "evil.json")).unwrap(),
            forged,
            "{opts}"
        );
        if opts.is_empty() {
            // Without `xsym`, no file is a link.
            assert_eq!(std::fs::read(view(C2, "copy.json")).unwrap(), forged);
            std::fs::write(view(C2, "w.json"), &shadow).unwrap();
            assert_eq!(std::fs::read(view(C2, "w.json")).unwrap(), shadow);
        } else {
            // With it, a written XSym link that leads out of the store fails at close and
            // leaves no link behind.
            let f = std::fs::File::create(view(C2, "w2.json")).unwrap();
            (&f).write_all(&shadow).unwrap();
            use std::os::fd::IntoRawFd;
            let fd = f.into_raw_fd();
            // SAFETY: closing a descriptor we own, once.
            let rc = unsafe { libc::close(fd) };
            let err = std::io::Error::last_os_error().raw_os_error();
            assert_eq!((rc, err), (-1, Some(libc::EPERM)));
            assert_eq!(
                std::fs::metadata(snap(C2).join("w2.json")).unwrap().len(),
                0
            );
        }
    }
}

/// Finding 3: no store entry type stalls a worker or the mount.
#[test]
fn fifos_in_the_store_stall_nobody() {
    let store = hub();
    let victim = User::new("v");
    let m = shared_mount(&store, "threads=2");
    let snap = format!("{REPO}/snapshots/{C1}");
    blobs_become_fifos_under_held_names(
        &store,
        &m,
        &[("config.json", 1), ("nested/deep/w.txt", 3)],
    );
    // Everyone else is served all along.
    let served = victim
        .cmd("sh")
        .arg("-c")
        .arg(format!(
            "ls -l {mp}/{snap} && cat {mp}/{snap}/model.safetensors > /dev/null",
            mp = m.mp.display()
        ))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(finishes(served, 30).success());

    // A FIFO where a payload's manifest belongs: removing the payload does not block.
    let payload = format!("blobs/00/{}", sha256ish(9));
    let refs = store.p(&format!("{payload}.refs"));
    let c = std::ffi::CString::new(refs.to_str().unwrap()).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    let rm = Command::new("rm")
        .arg("-f")
        .arg(m.path(&payload))
        .spawn()
        .unwrap();
    finishes(rm, 30);

    // Truncating a name whose file became a FIFO.
    std::fs::write(m.path("notes.txt"), b"notes").unwrap();
    std::fs::remove_file(store.p("notes.txt")).unwrap();
    let c = std::ffi::CString::new(store.p("notes.txt").to_str().unwrap()).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    let tr = Command::new("truncate")
        .args(["-s", "0"])
        .arg(m.path("notes.txt"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    finishes(tr, 30);
}

/// Finding 4: new entries are given to their creator through the entry itself; an entry
/// swapped in under the name meanwhile is never given away (bounded race).
#[test]
fn ownership_is_never_given_to_a_swapped_in_entry() {
    let store = hub();
    let victim = User::new("v");
    let attacker = User::new("a");
    let drop_dir = dir_in(&store, "drop", 0o777, None);
    const N: usize = 300;
    // Decoys owned by the attacker, marked by their content (files) or a marker (dirs).
    let decoys = dir_in(&store, "decoys", 0o755, Some(&attacker));
    for i in 0..N {
        file_in(
            &store,
            &format!("decoys/f{i}"),
            b"decoy",
            0o644,
            Some(&attacker),
        );
        let d = dir_in(&store, &format!("decoys/d{i}"), 0o755, Some(&attacker));
        file_in(
            &store,
            &format!("decoys/d{i}/decoy"),
            b"",
            0o644,
            Some(&attacker),
        );
        assert!(d.exists());
    }
    let m = shared_mount(&store, "");
    // The attacker swaps a decoy in as soon as the victim's entry shows in the store.
    let swapper = attacker
        .cmd(PY)
        .arg("-c")
        .arg(
            r#"
import os, sys, time
drop, decoys, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
end = time.time() + 25
todo = {f"{k}{i}" for i in range(n) for k in "fd"}
while todo and time.time() < end:
    for name in list(todo):
        if os.path.lexists(os.path.join(drop, name)):
            try:
                os.rename(os.path.join(decoys, name), os.path.join(drop, name))
            except OSError:
                pass
            todo.discard(name)
"#,
        )
        .arg(&drop_dir)
        .arg(&decoys)
        .arg(N.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let made = victim.py(
        r#"
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    try:
        os.close(os.open(os.path.join(d, f"f{i}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except OSError:
        pass
    try:
        os.mkdir(os.path.join(d, f"d{i}"))
    except OSError:
        pass
"#,
        &[&m.path("drop"), Path::new(&N.to_string())],
    );
    assert!(made.status.success(), "{}", text(&made));
    let mut swapper = swapper;
    harness::end_child(&mut swapper);
    let mut swapped = 0;
    for e in std::fs::read_dir(&drop_dir).unwrap() {
        let p = e.unwrap().path();
        let md = std::fs::symlink_metadata(&p).unwrap();
        let decoy = if md.is_dir() {
            p.join("decoy").exists()
        } else {
            std::fs::read(&p).is_ok_and(|b| b == b"decoy")
        };
        if decoy {
            swapped += 1;
            assert_eq!(md.uid(), attacker.uid, "{} was given away", p.display());
        } else {
            assert_eq!(md.uid(), victim.uid, "{} is not the victim's", p.display());
        }
    }
    eprintln!("{swapped} decoys were swapped in during creation");
}

/// Finding 5: sticky directories and directory write permission hold through the view.
#[test]
fn sticky_bit_and_directory_write_rules_hold() {
    let store = hub();
    let victim = User::new("v");
    let attacker = User::new("a");
    dir_in(&store, "tmp", 0o1777, None);
    file_in(&store, "tmp/a.bin", b"attacker's", 0o644, Some(&attacker));
    let vlink = store.p("tmp/vlink");
    symlink("a.bin", &vlink).unwrap();
    victim.chown(&vlink);
    dir_in(&store, "open", 0o777, None);
    let vdir = dir_in(&store, "open/vdir", 0o755, Some(&victim));
    let gone = vdir.join("gone");
    symlink("missing", &gone).unwrap();
    victim.chown(&gone);
    let m = shared_mount(&store, "");
    let (mp, st) = (m.mp.display(), store.root().display());

    // What the store refuses the attacker directly ...
    for direct in [
        format!("rm -f {st}/tmp/vlink"),
        format!("rmdir {st}/open/vdir"),
    ] {
        let o = attacker.sh(&direct);
        assert!(!o.status.success(), "{direct}: {}", text(&o));
    }
    // ... the view refuses too.
    for attack in [
        format!("rm -f {mp}/tmp/vlink"),
        format!("mv -f {mp}/tmp/a.bin {mp}/tmp/vlink"),
        format!("rmdir {mp}/open/vdir"),
    ] {
        let o = attacker.sh(&attack);
        assert!(!o.status.success(), "{attack}: {}", text(&o));
    }
    assert!(std::fs::symlink_metadata(&vlink).is_ok());
    assert!(std::fs::symlink_metadata(&gone).is_ok());
    // The owner may empty and remove its directory. (Its link in the sticky directory it
    // may only remove directly in the store: the kernel judges the sticky bit by the owner
    // of the file the view shows, the link's target — a refusal, never a grant; see
    // docs/SECURITY.md.)
    let o = victim.sh(&format!("rmdir {mp}/open/vdir"));
    assert!(o.status.success(), "{}", text(&o));
    assert!(!vdir.exists());
}

/// Finding 6: links made through the view resolve inside the store for every reader of the
/// store, before and after renames.
#[test]
fn links_made_through_the_view_never_lead_out_of_the_store() {
    let store = hub();
    let deep = store.p(&format!("{REPO}/snapshots/{C1}/nested/deep"));
    // A link to a shallower directory, and a decoy where the lexical reading lands.
    symlink("../../../..", deep.join("dl")).unwrap();
    std::fs::create_dir_all(store.p("etc")).unwrap();
    std::fs::write(store.p("etc/passwd"), b"decoy").unwrap();
    let m = shared_mount(&store, "");
    let vdeep = m.path(&format!("{REPO}/snapshots/{C1}/nested/deep"));
    let text_in = "dl/../../../../../../etc/passwd";
    symlink(text_in, vdeep.join("x")).unwrap();
    assert_eq!(std::fs::read(vdeep.join("x")).unwrap(), b"decoy");
    let stored = std::fs::read_link(deep.join("x")).unwrap();
    assert_ne!(stored, Path::new(text_in), "stored verbatim");
    assert_eq!(std::fs::read(deep.join("x")).unwrap(), b"decoy");
    // Absolute texts inside the mount are stored relative, too.
    let abs = m.path(&format!("{REPO}/blobs/{}", sha1ish(1)));
    symlink(&abs, vdeep.join("y")).unwrap();
    assert!(std::fs::read_link(deep.join("y")).unwrap().is_relative());
    assert_no_link_escapes(store.root());

    // A directory with relative links inside may not move up: its links would climb out.
    std::fs::remove_file(deep.join("dl")).unwrap();
    let from = m.path(&format!("{REPO}/snapshots/{C1}/nested"));
    let err = std::fs::rename(&from, m.path("nested")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EXDEV));
    assert!(deep.join("w.txt").exists());
    // At the same depth it may.
    std::fs::rename(&from, m.path(&format!("{REPO}/snapshots/{C2}/nested"))).unwrap();
    // A link moved up is rewritten for its new place.
    std::fs::rename(
        m.path(&format!("{REPO}/snapshots/{C2}/nested/deep/w.txt")),
        m.path(&format!("{REPO}/w.txt")),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(store.p(&format!("{REPO}/w.txt")))
            .unwrap()
            .len(),
        10
    );
    assert_no_link_escapes(store.root());
}

/// Finding 7: a read-only handle never takes an exclusive lock in the store; waiting locks
/// hold a bounded number of daemon threads.
#[test]
fn locks_follow_the_handle_and_waiters_are_bounded() {
    let store = hub();
    let attacker = User::new("a");
    let m = shared_mount(&store, "");
    let blob = m.path(&format!("{REPO}/snapshots/{C1}/config.json"));
    let o = attacker.py(
        r#"
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("locked")
except OSError as e:
    print(e.errno)
"#,
        &[&blob],
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        libc::EBADF.to_string(),
        "{}",
        text(&o)
    );
    // Nothing of it in the store: an exclusive lock there is free.
    let direct = store.p(&format!("{REPO}/blobs/{}", sha1ish(1)));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&direct)
        .unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own.
    assert_eq!(
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    drop(f);

    // One holder, many waiters: the daemon's threads stay bounded, the rest get ENOLCK.
    let lockfile = m.path("l.lock");
    std::fs::write(&lockfile, b"").unwrap();
    let holder = std::fs::OpenOptions::new()
        .write(true)
        .open(&lockfile)
        .unwrap();
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::lockf(holder.as_raw_fd(), libc::F_TLOCK, 0) },
        0
    );
    const WAITERS: usize = 100;
    let waiters: Vec<Child> = (0..WAITERS)
        .map(|_| {
            Command::new(PY)
                .arg("-c")
                .arg(
                    r#"
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX)
except OSError as e:
    sys.exit(3 if e.errno == 37 else 4)
"#,
                )
                .arg(&lockfile)
                .spawn()
                .unwrap()
        })
        .collect();
    let pid = m.pid().unwrap();
    let threads = || -> usize {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    // Wait until every waiter is either waiting in the daemon or was refused.
    let mut waiters = waiters;
    let mut refused = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut most = 0;
    loop {
        most = most.max(threads());
        refused += waiters
            .iter_mut()
            .filter_map(|w| w.try_wait().unwrap())
            .filter(|s| s.code() == Some(3))
            .count();
        waiters.retain_mut(|w| w.try_wait().unwrap().is_none());
        if refused + 64 >= WAITERS || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(refused > 0, "no waiter was refused");
    assert!(most <= 64 + 40, "daemon ran {most} threads");
    drop(holder);
    for w in &mut waiters {
        harness::end_child(w);
    }
}

/// Finding 8: listing memory is bounded by directories, not by handles.
#[test]
fn many_handles_on_a_huge_directory_share_one_listing() {
    let store = hub();
    let big = store.p("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..200_000u32 {
        std::fs::File::create(big.join(format!("{i:064x}"))).unwrap();
    }
    // A listing is shared once the directory has been still for a moment.
    std::thread::sleep(Duration::from_millis(1200));
    let m = shared_mount(&store, "");
    let lister = Command::new(PY)
        .arg("-c")
        .arg(
            r#"
import os, sys
its = [os.scandir(sys.argv[1]) for _ in range(40)]
for it in its:
    next(it)
print("ready", flush=True)
sys.stdin.read()
"#,
        )
        .arg(m.path("big"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lister = lister;
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(lister.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let pid = m.pid().unwrap();
    let rss_kib: u64 = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    drop(lister.stdin.take());
    harness::end_child(&mut lister);
    eprintln!(
        "daemon RSS with 40 handles on 200,000 entries: {} MiB",
        rss_kib / 1024
    );
    assert!(rss_kib <= 100 * 1024, "RSS {rss_kib} KiB");
}

/// Finding 9: a name with a newline cannot forge a log line.
#[test]
fn names_are_escaped_in_logs() {
    let store = hub();
    let snap = store.p(&format!("{REPO}/snapshots/{C1}"));
    symlink("missing", snap.join("evil\nWARN hfcachefs: forged line")).unwrap();
    let m = shared_mount(&store, "");
    let _ = std::fs::read_dir(m.path(&format!("{REPO}/snapshots/{C1}")))
        .unwrap()
        .count();
    let _ = std::fs::metadata(m.path(&format!(
        "{REPO}/snapshots/{C1}/evil\nWARN hfcachefs: forged line"
    )));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !m.log_text().contains("evil") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = m.log_text();
    assert!(log.contains("evil\\nWARN"), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("WARN hfcachefs: forged")),
        "{log}"
    );
}

/// Waits (at most 60 s) until the daemon's log contains `needle`.
fn wait_log(m: &Mount, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !m.log_text().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no log line {needle:?}:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Rule 10: a copy written through the view becomes a link only as its writer could have
/// made it in the store: a user who may write a snapshot but not the repo's `blobs/` gets
/// no new blob made for them; their copy of an existing blob still becomes a link (replacing
/// their own entry is theirs to do), and once they may write `blobs/`, new content becomes a
/// blob too.
#[test]
fn copies_become_links_only_as_their_writer_could_make_them() {
    let store = hub();
    let user = User::new("c");
    let repo = "models--acme--sec";
    let x = b"content already held by a blob\n".to_vec();
    let ex = hfcachefs::hub::hash::digest_bytes(&x).git_sha1.unwrap();
    dir_in(&store, repo, 0o755, None);
    let blobs = dir_in(&store, &format!("{repo}/blobs"), 0o755, None);
    file_in(&store, &format!("{repo}/blobs/{ex}"), &x, 0o644, None);
    dir_in(&store, &format!("{repo}/snapshots"), 0o755, None);
    let snap = dir_in(&store, &format!("{repo}/snapshots/{C1}"), 0o777, None);
    let m = shared_mount(&store, "");
    let mp = m.mp.join(format!("{repo}/snapshots/{C1}"));
    let write = |name: &str, bytes: &str| {
        let o = user.sh(&format!("printf '%s' '{bytes}' > {}/{name}", mp.display()));
        assert!(o.status.success(), "{}", text(&o));
    };
    write("new.bin", "new content of the user");
    wait_log(&m, "new.bin left as a copy: the caller may not add to");
    assert!(
        std::fs::symlink_metadata(snap.join("new.bin"))
            .unwrap()
            .is_file()
    );
    assert_eq!(
        std::fs::read_dir(&blobs).unwrap().count(),
        1,
        "a blob was made for them"
    );
    write("copy.bin", std::str::from_utf8(&x).unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::symlink_metadata(snap.join("copy.bin"))
        .unwrap()
        .is_symlink()
    {
        assert!(
            Instant::now() < deadline,
            "copy not linked:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_link(snap.join("copy.bin")).unwrap(),
        PathBuf::from(format!("../../blobs/{ex}"))
    );
    chmod(&blobs, 0o777);
    write("new2.bin", "more new content");
    while !std::fs::symlink_metadata(snap.join("new2.bin"))
        .unwrap()
        .is_symlink()
    {
        assert!(
            Instant::now() < deadline,
            "new2 not linked:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_no_link_escapes(store.root());
}

/// A `noopen` mount (the kernel opens files without asking the daemon): links still do not
/// reach what the store refuses — also after the owner's reads put the names and bytes in
/// the kernel's cache — and a blob that became a FIFO fails its readers instead of stalling
/// the mount.
#[test]
fn a_noopen_mount_keeps_the_read_rules() {
    let store = hub();
    let victim = User::new("v");
    let attacker = User::new("a");
    dir_in(&store, "vpriv", 0o700, Some(&victim));
    file_in(&store, "vpriv/secret", b"secret", 0o644, Some(&victim));
    dir_in(&store, "pub", 0o777, None);
    let placed = attacker.sh(&format!(
        "cd {pub_} && ln -s ../vpriv/secret d1 && ln -s ../vpriv ddir",
        pub_ = store.p("pub").display()
    ));
    assert!(placed.status.success(), "{}", text(&placed));
    let m = shared_mount(&store, "ro,noopen,threads=2");
    let mp = m.mp.display().to_string();
    let v = victim.sh(&format!("cat {mp}/pub/d1 && cat {mp}/pub/ddir/secret"));
    assert!(
        String::from_utf8_lossy(&v.stdout).starts_with("secretsecret"),
        "{}",
        text(&v)
    );
    refused(
        &attacker,
        &[
            format!("cat {mp}/pub/d1"),
            format!("cat {mp}/pub/ddir/secret"),
            format!("ls {mp}/pub/ddir"),
            format!("stat {mp}/pub/d1"),
        ],
    );

    blobs_become_fifos_under_held_names(&store, &m, &[("config.json", 1)]);
    let snap = format!("{REPO}/snapshots/{C1}");
    let served = victim
        .cmd("sh")
        .arg("-c")
        .arg(format!("cat {mp}/{snap}/model.safetensors > /dev/null"))
        .spawn()
        .unwrap();
    assert!(finishes(served, 30).success());
}

/// Looks the snapshot entries `names` (with their blobs' `sha1ish` numbers) up through `m`, so
/// the kernel holds the names, turns their blobs into FIFOs in the store, and checks that
/// readers of those names (more than there are worker threads) fail instead of hanging.
fn blobs_become_fifos_under_held_names(store: &Store, m: &Mount, names: &[(&str, u32)]) {
    let snap = format!("{REPO}/snapshots/{C1}");
    for (n, _) in names {
        std::fs::metadata(m.path(&format!("{snap}/{n}"))).unwrap();
    }
    for (_, b) in names {
        let tmp = store.p("fifo.tmp");
        let c = std::ffi::CString::new(tmp.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
        std::fs::rename(&tmp, store.p(&format!("{REPO}/blobs/{}", sha1ish(*b)))).unwrap();
    }
    let readers: Vec<Child> = (0..4)
        .flat_map(|_| names.iter().map(|(n, _)| *n))
        .map(|n| {
            Command::new("cat")
                .arg(m.path(&format!("{snap}/{n}")))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in readers {
        assert!(!finishes(r, 30).success());
    }
}
