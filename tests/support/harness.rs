//! Shared test harness: real mounts of the `hfcachefs` binary with a guard that always
//! unmounts and ends the daemon by PID, and store fixtures.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hfcachefs"))
}

/// True if `path` is an hfcachefs mount right now.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.as_os_str().as_bytes();
    text.lines().any(|l| {
        let mut f = l.split(' ');
        let mp = f.nth(4).unwrap_or("");
        mp.as_bytes() == want && l.contains(" - fuse.hfcachefs ")
    })
}

/// A mounted view. Dropping it unmounts (lazily if needed) and ends the daemon by PID.
pub struct Mount {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
    pub mp: PathBuf,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Mount {
    /// Mounts `store` in the foreground as a child process with extra `-o` options.
    pub fn new(store: &Path, opts: &str) -> Mount {
        Self::try_new(store, opts).expect("mount failed")
    }

    pub fn try_new(store: &Path, opts: &str) -> Result<Mount, String> {
        let dir = tempfile::Builder::new()
            .prefix("hfcfs-mp")
            .tempdir()
            .expect("tempdir");
        let mp = dir.path().join("mnt");
        std::fs::create_dir(&mp).expect("mkdir mp");
        let mp = std::fs::canonicalize(&mp).expect("canon");
        let log = dir.path().join("daemon.log");
        let logf = std::fs::File::create(&log).expect("log");
        let mut cmd = Command::new(bin());
        cmd.arg("mount").arg("-f");
        if !opts.is_empty() {
            cmd.arg("-o").arg(opts);
        }
        cmd.arg(store)
            .arg(&mp)
            .env("RUST_LOG", "info")
            .env("HFCACHEFS_STATE_DIR", dir.path().join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logf);
        let child = cmd.spawn().map_err(|e| e.to_string())?;
        let mut m = Mount {
            dir,
            store: store.to_path_buf(),
            mp,
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !is_mounted(&m.mp) {
            if let Some(c) = m.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                m.child = None;
                return Err(format!("daemon exited {st}: {}", m.log_text()));
            }
            if Instant::now() > deadline {
                return Err(format!("mount not live after 20 s: {}", m.log_text()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(m)
    }

    /// `hfcachefs status --json` for this mount, parsed (after the next status write).
    pub fn status(&self) -> serde_json::Value {
        std::thread::sleep(Duration::from_millis(700));
        let out = Command::new(bin())
            .args(["status", "--json"])
            .arg(&self.mp)
            .env("HFCACHEFS_STATE_DIR", self.dir.path().join("state"))
            .output()
            .expect("status");
        assert!(
            out.status.success(),
            "{} (state dir: {:?}; log: {})",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_dir(self.dir.path().join("state")).map(|d| d
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect::<Vec<_>>()),
            self.log_text()
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v.as_array()
            .and_then(|a| a.first())
            .cloned()
            .expect("one mount in status")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A path inside the mount.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mp.join(rel)
    }

    /// PID of the daemon.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the daemon with SIGKILL and reaps it, leaving its dead mount and status file
    /// behind as a crash would.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// True once the daemon has exited (it is reaped then).
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(_))) => {
                self.child = None;
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// The state dir the daemon writes its status file to.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Stops the daemon with SIGTERM and waits for it; returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: plain kill(2) on our own child's PID.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's PID.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if is_mounted(&self.mp) {
            let _ = Command::new("umount").arg("-l").arg(&self.mp).status();
        }
    }
}

/// Runs the binary with `args`; returns (success, stderr).
pub fn run(args: &[&OsStr]) -> (bool, String) {
    let out = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hfcachefs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A 40-hex etag made from `n`.
pub fn sha1ish(n: u32) -> String {
    format!("{:040x}", 0xabc0_0000_u64 + n as u64)
}

/// A 64-hex etag made from `n`.
pub fn sha256ish(n: u32) -> String {
    format!("{:064x}", 0xdef0_0000_u64 + n as u64)
}

/// Deterministic content of `len` bytes.
pub fn content(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// An empty directory for a store that a client fills (removed when dropped).
pub fn empty_store() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hfcfs-hub")
        .tempdir()
        .expect("tempdir")
}

/// A hub-like store fixture.
pub struct Store {
    pub dir: tempfile::TempDir,
}

pub const REPO: &str = "models--acme--m";
pub const C1: &str = "1111111111111111111111111111111111111111";
pub const C2: &str = "2222222222222222222222222222222222222222";

impl Store {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A repo with two revisions sharing blobs, a shared-store chain and nested paths.
    pub fn hub() -> Store {
        let dir = tempfile::Builder::new()
            .prefix("hfcfs-store")
            .tempdir()
            .expect("tempdir");
        let s = Store { dir };
        let repo = s.p(REPO);
        for d in [
            "blobs",
            "refs",
            &format!("snapshots/{C1}/nested/deep"),
            &format!("snapshots/{C2}"),
        ] {
            std::fs::create_dir_all(repo.join(d)).unwrap();
        }
        std::fs::write(repo.join("refs/main"), C2).unwrap();
        std::fs::write(repo.join("blobs").join(sha1ish(1)), content(1, 300)).unwrap();
        std::fs::write(repo.join("blobs").join(sha256ish(2)), content(2, 200_000)).unwrap();
        std::fs::write(repo.join("blobs").join(sha1ish(3)), content(3, 10)).unwrap();
        // Shared blob store: payload + repo blob link.
        std::fs::create_dir_all(s.p("blobs/00")).unwrap();
        std::fs::write(s.p("blobs/.huggingface-shared-blobs"), "1\n").unwrap();
        std::fs::write(s.p("blobs/00").join(sha256ish(9)), content(9, 5000)).unwrap();
        symlink(
            format!("../../blobs/00/{}", sha256ish(9)),
            repo.join("blobs").join(sha256ish(4)),
        )
        .unwrap();
        for c in [C1, C2] {
            symlink(
                format!("../../blobs/{}", sha1ish(1)),
                repo.join(format!("snapshots/{c}/config.json")),
            )
            .unwrap();
            symlink(
                format!("../../blobs/{}", sha256ish(2)),
                repo.join(format!("snapshots/{c}/model.safetensors")),
            )
            .unwrap();
            symlink(
                format!("../../blobs/{}", sha256ish(4)),
                repo.join(format!("snapshots/{c}/shared.bin")),
            )
            .unwrap();
        }
        symlink(
            format!("../../../../blobs/{}", sha1ish(3)),
            repo.join(format!("snapshots/{C1}/nested/deep/w.txt")),
        )
        .unwrap();
        s
    }

    /// Adds hostile entries to snapshot C1; returns their names (relative to the snapshot).
    pub fn add_hostile(&self) -> Vec<&'static str> {
        let snap = self.p(&format!("{REPO}/snapshots/{C1}"));
        symlink("/etc/passwd", snap.join("abs_escape")).unwrap();
        symlink("../../../../../../../../etc/passwd", snap.join("up_escape")).unwrap();
        symlink("../../blobs/missing", snap.join("dangling")).unwrap();
        symlink("self_loop", snap.join("self_loop")).unwrap();
        symlink("loop_b", snap.join("loop_a")).unwrap();
        symlink("loop_a", snap.join("loop_b")).unwrap();
        symlink("..", snap.join("dir_loop")).unwrap();
        let fifo = snap.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        symlink("fifo", snap.join("to_fifo")).unwrap();
        vec![
            "abs_escape",
            "up_escape",
            "dangling",
            "self_loop",
            "loop_a",
            "loop_b",
            "dir_loop",
            "fifo",
            "to_fifo",
        ]
    }
}

/// Every path below `root` (not following links), depth first.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", d.display()))
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let m = std::fs::symlink_metadata(&p)
                .unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// Python of the pinned huggingface_hub venv, or a panic telling how to create it.
pub fn venv_python(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv")
        .join(name)
        .join("bin/python");
    assert!(
        p.exists(),
        "{} missing: run scripts/setup-python.sh",
        p.display()
    );
    p
}

/// The fake Hub on loopback; killed by PID on drop.
pub struct FakeHub {
    child: Child,
    pub endpoint: String,
}

impl FakeHub {
    pub fn start(python: &Path) -> FakeHub {
        use std::io::BufRead;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hub/fake_hub.py");
        let mut child = Command::new(python)
            .arg(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start fake hub");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("port line");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("bad fake hub line {line:?}"))
            .to_string();
        FakeHub {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tests/hub/client.py SUBCOMMAND` with the venv's python against `cache`.
pub fn hub_client(
    python: &Path,
    hub: &FakeHub,
    cache: &Path,
    sub: &str,
    extra_env: &[(&str, &str)],
) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hub/client.py");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .arg(sub)
        .env("HF_HUB_CACHE", cache)
        .env("HF_ENDPOINT", &hub.endpoint)
        .env("HF_HUB_DISABLE_XET", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_HOME")
        .env_remove("HF_HUB_OFFLINE")
        .stdin(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run client.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Waits until a daemon started as `child` listens on 127.0.0.1:`port`; panics with its log
/// (read by `log`) if it exits or is not listening within 20 s.
pub fn wait_for_port(what: &str, port: u16, child: &mut Option<Child>, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(Ok(Some(st))) = child.as_mut().map(Child::try_wait) {
            *child = None;
            panic!("{what} exited {st}:\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "{what} not listening on 127.0.0.1:{port} after 20 s:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The download round trip every real-client write test makes: `client.py download` through
/// the mount `mp` (no degraded-cache warning), `check-layout` of the store directory `store`
/// (as a Linux client writing directly would leave it), `check-offline` through the mount, and
/// no symlink visible in the mount. `label` names the case in failure messages.
pub fn download_round_trip(python: &Path, hub: &FakeHub, store: &Path, m: &Mount, label: &str) {
    download_round_trip_with(python, hub, store, m, label, &[], |_| {});
}

/// [`download_round_trip`] with extra client environment `env` (for every client run), and
/// `settled(store)` called after the download, before the store's layout is checked.
pub fn download_round_trip_with(
    python: &Path,
    hub: &FakeHub,
    store: &Path,
    m: &Mount,
    label: &str,
    env: &[(&str, &str)],
    settled: impl Fn(&Path),
) {
    let (ok, out) = hub_client(python, hub, &m.mp, "download", env);
    assert!(
        ok,
        "download through the mount ({label}): {out}\n{}",
        m.log_text()
    );
    assert!(
        !out.contains("degraded"),
        "degraded-cache warning ({label}): {out}"
    );
    settled(store);
    let (ok, out) = hub_client(python, hub, store, "check-layout", env);
    assert!(ok, "store layout after the download ({label}): {out}");
    let offline: Vec<(&str, &str)> = env
        .iter()
        .copied()
        .chain([("HF_HUB_OFFLINE", "1")])
        .collect();
    let (ok, out) = hub_client(python, hub, &m.mp, "check-offline", &offline);
    assert!(ok, "offline reload through the mount ({label}): {out}");
    for p in walk(&m.mp) {
        assert!(
            !p.symlink_metadata()
                .map(|md| md.is_symlink())
                .unwrap_or(false),
            "{}",
            p.display()
        );
    }
}

/// Ends a child by PID: SIGTERM, a grace period, then SIGKILL of it and of the process group
/// it leads (created at spawn), and reaps it.
pub fn end_child(child: &mut Child) {
    let pid = child.id() as i32;
    // SAFETY: kill(2) on our own child's PID.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the process group created for this child (its PID as group ID,
    // which is not reused while a member lives).
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads the hub store's model blob through `m` every way a client does (`read`, `mmap`,
/// `pread`) and a blob behind the shared-store chain, checking the bytes.
pub fn read_all_ways(m: &Mount) {
    let p = m.path(&format!("{REPO}/snapshots/{C1}/model.safetensors"));
    let want = content(2, 200_000);
    assert_eq!(std::fs::read(&p).unwrap(), want);
    let f = std::fs::File::open(&p).unwrap();
    // SAFETY: the file is not modified while mapped.
    let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
    assert_eq!(&map[..], &want[..]);
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 4096];
    f.read_exact_at(&mut buf, 150_000).unwrap();
    assert_eq!(&buf[..], &want[150_000..154_096]);
    // The shared-store chain too.
    let s = m.path(&format!("{REPO}/snapshots/{C2}/shared.bin"));
    assert_eq!(std::fs::read(s).unwrap(), content(9, 5000));
}
