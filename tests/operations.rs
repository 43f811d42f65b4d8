//! Day-2 operations of a mount, over real FUSE mounts: `status` telling live, stale and dead
//! mounts apart (exit code, `--json` state, clean-up of leftover status files), `unmount`
//! returning only once the daemon has exited, a mistyped subcommand never mounting, and the
//! mount-time guard rails.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::path::Path;
use std::process::{Command, Stdio};

use harness::{Mount, Store, bin, is_mounted};

/// `hfcachefs status --json [MP]` with the state dir `state`: (exit code, parsed output).
fn status_json(state: &Path, mp: Option<&Path>) -> (i32, serde_json::Value) {
    let mut cmd = Command::new(bin());
    cmd.args(["status", "--json"]);
    if let Some(mp) = mp {
        cmd.arg(mp);
    }
    let out = cmd
        .env("HFCACHEFS_STATE_DIR", state)
        .stdin(Stdio::null())
        .output()
        .expect("status");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// Runs the binary with `args` and the state dir `state`: (exit code, stdout + stderr).
fn run_in(state: &Path, args: &[&std::ffi::OsStr]) -> (i32, String) {
    let out = Command::new(bin())
        .args(args)
        .env("HFCACHEFS_STATE_DIR", state)
        .stdin(Stdio::null())
        .output()
        .expect("run hfcachefs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Unmounts (lazily) with the state dir `.1` on drop: for detached mounts made by a test.
struct LazyUnmount<'a>(&'a Path, &'a Path);

impl Drop for LazyUnmount<'_> {
    fn drop(&mut self) {
        run_in(
            self.1,
            &["unmount".as_ref(), "--lazy".as_ref(), self.0.as_os_str()],
        );
    }
}

/// The `/proc/self/mountinfo` line of the mount at `mp` (options are its 6th field).
fn mountinfo_line(mp: &Path) -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find(|l| l.split(' ').nth(4) == mp.to_str())
        .unwrap_or_else(|| panic!("{} not in mountinfo", mp.display()))
        .to_string()
}

/// A scratch directory with an empty mountpoint `mnt` (canonical) and a state dir path.
fn workdir() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let mp = work.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let mp = std::fs::canonicalize(&mp).unwrap();
    let state = work.path().join("state");
    (work, mp, state)
}

fn json_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn status_tells_live_stale_and_dead_apart_and_cleans_up() {
    let store = Store::hub();
    let mut m = Mount::new(store.root(), "ro");
    let state = m.state_dir();
    let pid = m.pid().expect("daemon pid");
    wait_status_file(&m);
    let (code, v) = status_json(&state, Some(&m.mp));
    assert_eq!((code, &v[0]["state"]), (0, &"live".into()), "{v}");
    assert_eq!(v[0]["pid"], u64::from(pid));
    // The logrotate hook's list: the live daemon's PID, nothing else.
    let (code, text) = run_in(&state, &["status".as_ref(), "--pids".as_ref()]);
    assert_eq!((code, text.trim()), (0, pid.to_string().as_str()));

    // A file left by a daemon that is gone, for a mount that is gone: deleted by `status`.
    let mut leftover = v[0].clone();
    leftover["pid"] = 999_999_999u64.into();
    leftover["mountpoint"] = "/nonexistent/hfcachefs-test".into();
    std::fs::write(state.join("999999999.json"), leftover.to_string()).unwrap();
    // (Without a mountpoint, dead mounts of other tests on this machine may be listed too.)
    let (_, v) = status_json(&state, None);
    let listed: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["mountpoint"])
        .collect();
    assert!(listed.contains(&&m.mp.to_str().unwrap().into()), "{v}");
    assert!(
        !listed.contains(&&"/nonexistent/hfcachefs-test".into()),
        "{v}"
    );
    assert!(!state.join("999999999.json").exists(), "leftover kept");

    // A daemon that does not answer (stopped): stale, exit 1.
    // SAFETY: kill(2) on our own child's PID.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0);
    // The kernel wakes one thread for the stop; the others stop only once it has run, and
    // until then they still answer requests. Wait for all of them.
    wait_all_stopped(pid);
    let (code, v) = status_json(&state, Some(&m.mp));
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGCONT) }, 0);
    assert_eq!((code, &v[0]["state"]), (1, &"stale".into()), "{v}");

    // A crash: the kernel keeps the dead mount; status says dead, in text and JSON, exit 1.
    m.crash();
    assert!(is_mounted(&m.mp), "the dead mount stays in the table");
    let (code, v) = status_json(&state, Some(&m.mp));
    assert_eq!((code, &v[0]["state"]), (1, &"dead".into()), "{v}");
    let (code, text) = run_in(&state, &["status".as_ref()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("DEAD") && text.contains("not live"), "{text}");
    assert_eq!(
        json_files(&state).len(),
        1,
        "kept while the dead mount is there"
    );

    // Cleaning up the dead mount removes its status file; nothing is listed any more.
    let (code, text) = run_in(
        &state,
        &["unmount".as_ref(), "--lazy".as_ref(), m.mp.as_os_str()],
    );
    assert_eq!(code, 0, "{text}");
    assert!(json_files(&state).is_empty(), "{:?}", json_files(&state));
    let (code, v) = status_json(&state, Some(&m.mp));
    assert_eq!((code, v), (1, serde_json::json!([])));
    let (code, text) = run_in(&state, &["status".as_ref(), m.mp.as_os_str()]);
    assert_eq!(code, 1, "{text}");
}

/// Waits until every thread of `pid` is stopped (state `T`).
fn wait_all_stopped(pid: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let states: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("task list")
            .filter_map(Result::ok)
            .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
            .filter_map(|st| {
                let (_, rest) = st.rsplit_once(')')?;
                rest.split_whitespace().next().map(str::to_string)
            })
            .collect();
        if !states.is_empty() && states.iter().all(|s| s == "T") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not stopped: {states:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Waits until the daemon of `m` has written its status file.
fn wait_status_file(m: &Mount) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while json_files(&m.state_dir()).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no status file");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn unmount_returns_once_the_daemon_has_exited() {
    let store = Store::hub();
    let mut m = Mount::new(store.root(), "ro");
    wait_status_file(&m);
    let (code, text) = run_in(&m.state_dir(), &["unmount".as_ref(), m.mp.as_os_str()]);
    assert_eq!(code, 0, "{text}");
    // Checked right after the command returned: the daemon must be gone already, so the
    // store's own mount could be unmounted now.
    let pid = m.pid();
    let tasks = std::fs::read_dir(format!("/proc/{}/task", pid.unwrap_or(0)))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|t| std::fs::read_to_string(t.path().join("stat")).unwrap_or_default())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert!(
        m.has_exited(),
        "unmount returned before the daemon exited: {text}; tasks {tasks:?}"
    );
    assert!(!is_mounted(&m.mp));
}

#[test]
fn a_mistyped_subcommand_is_an_error_and_never_mounts() {
    let store = Store::hub();
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("stauts")).unwrap();
    for args in [&["stauts"][..], &["stauts", "x"], &["sttaus", "-o", "ro"]] {
        let out = Command::new(bin())
            .args(args)
            .current_dir(cwd.path())
            .env("HF_HUB_CACHE", store.root())
            .env("HFCACHEFS_STATE_DIR", cwd.path().join("state"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("did you mean 'status'?"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        let mp = std::fs::canonicalize(cwd.path().join("stauts")).unwrap();
        assert!(!is_mounted(&mp), "{args:?} mounted the store");
    }
}

#[test]
fn a_non_empty_mountpoint_is_refused_unless_nonempty() {
    let store = Store::hub();
    let work = tempfile::tempdir().unwrap();
    let mp = work.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    std::fs::write(mp.join("local.txt"), b"mine").unwrap();
    let state = work.path().join("state");
    let mount = |opts: &str| {
        run_in(
            &state,
            &[
                "mount".as_ref(),
                "-o".as_ref(),
                opts.as_ref(),
                store.root().as_os_str(),
                mp.as_os_str(),
            ],
        )
    };
    let (code, text) = mount("ro");
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("is not empty") && text.contains("-o nonempty"),
        "{text}"
    );
    let mp = std::fs::canonicalize(&mp).unwrap();
    assert!(!is_mounted(&mp));
    let (code, text) = mount("ro,nonempty");
    assert_eq!(code, 0, "{text}");
    let _guard = LazyUnmount(&mp, &state);
    assert!(is_mounted(&mp));
    // `hfcachefs mount` is nodev,nosuid unless dev/suid are asked for.
    let line = mountinfo_line(&mp);
    let opts: Vec<&str> = line.split(' ').nth(5).unwrap_or("").split(',').collect();
    assert!(
        opts.contains(&"nodev") && opts.contains(&"nosuid"),
        "{line}"
    );
    assert!(
        mp.join(harness::REPO).is_dir(),
        "the view covers the directory"
    );
    assert!(!mp.join("local.txt").exists());
}

#[test]
fn a_store_that_is_no_hub_cache_is_named_at_mount_and_in_scan() {
    let store = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(store.path().join("doc/pkg")).unwrap();
    std::fs::write(store.path().join("doc/pkg/README"), b"text").unwrap();
    let m = Mount::new(store.path(), "ro");
    let log = m.log_text();
    assert!(
        log.contains("does not look like a Hugging Face hub cache"),
        "{log}"
    );
    drop(m);
    let out = Command::new(bin())
        .arg("scan")
        .arg(store.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("no repos found in "), "{text}");
    // A real hub cache earns neither.
    let hub = Store::hub();
    let m = Mount::new(hub.root(), "ro");
    assert!(
        !m.log_text().contains("does not look like"),
        "{}",
        m.log_text()
    );
    let out = Command::new(bin())
        .arg("scan")
        .arg(hub.root())
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("no repos found"));
}

/// A foreground daemon started by a test with its own environment; dropping it ends the
/// daemon by PID and lazily unmounts what is left.
struct Daemon {
    child: Option<std::process::Child>,
    mp: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's PID.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !matches!(c.try_wait(), Ok(Some(_))) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if is_mounted(&self.mp) {
            let _ = Command::new("umount").arg("-l").arg(&self.mp).status();
        }
    }
}

#[test]
fn under_systemd_readiness_is_notified_and_lines_carry_journal_priorities() {
    use std::os::unix::fs::MetadataExt;
    // A store that is no hub cache, so that the log has a warning next to its info lines.
    let store = tempfile::tempdir().unwrap();
    std::fs::write(store.path().join("README"), b"x").unwrap();
    let (work, mp, _) = workdir();
    let sock_path = work.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    // The daemon's stderr is "the journal stream": a file whose device and inode are named.
    let journal = work.path().join("journal");
    let f = std::fs::File::create(&journal).unwrap();
    let md = f.metadata().unwrap();
    let child = Command::new(bin())
        .args(["mount", "-f", "-o", "ro"])
        .arg(store.path())
        .arg(&mp)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("JOURNAL_STREAM", format!("{}:{}", md.dev(), md.ino()))
        .env("HFCACHEFS_STATE_DIR", work.path().join("state"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(f)
        .spawn()
        .unwrap();
    let _d = Daemon {
        child: Some(child),
        mp: mp.clone(),
    };
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("no READY=1 from the daemon");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.starts_with("READY=1\n"), "{msg}");
    // READY means live: no polling needed.
    assert!(is_mounted(&mp), "READY=1 before the mount was live");
    let log = std::fs::read_to_string(&journal).unwrap();
    assert!(
        log.lines()
            .any(|l| l.starts_with("<6>") && l.contains("mounted")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with("<4>") && l.contains("does not look like")),
        "{log}"
    );
    assert!(log.lines().all(|l| l.starts_with('<')), "{log}");
}

#[test]
fn log_files_are_honoured_in_the_foreground_and_named_when_missing() {
    let store = Store::hub();
    let (work, mp, state) = workdir();
    // A log file in a directory that does not exist: the error names it, nothing is mounted.
    let missing = work.path().join("no-such-dir/h.log");
    let (code, text) = run_in(
        &state,
        &[
            "mount".as_ref(),
            "--log-file".as_ref(),
            missing.as_os_str(),
            store.root().as_os_str(),
            mp.as_os_str(),
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(missing.to_str().unwrap()), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(!is_mounted(&mp));

    // -f --log-file: the log goes to the file, not to stderr.
    let log = work.path().join("fg.log");
    let stderr = work.path().join("stderr");
    let child = Command::new(bin())
        .args(["mount", "-f", "--log-file"])
        .arg(&log)
        .arg(store.root())
        .arg(&mp)
        .env("HFCACHEFS_STATE_DIR", &state)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let d = Daemon {
        child: Some(child),
        mp: mp.clone(),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("mounted")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing in the log file; stderr: {}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(d);
    assert!(
        !std::fs::read_to_string(&stderr)
            .unwrap()
            .contains("mounted"),
        "logged to stderr too"
    );
}

/// True if a syslog socket accepts datagrams here (as the daemon checks).
fn syslog_reachable() -> bool {
    ["/dev/log", "/var/run/syslog", "/var/run/log"]
        .iter()
        .any(|p| {
            std::os::unix::net::UnixDatagram::unbound().is_ok_and(|s| match s.connect(p) {
                Ok(()) => true,
                Err(e) => e.raw_os_error() == Some(libc::EPROTOTYPE),
            })
        })
}

#[test]
fn detached_without_syslog_logs_to_a_file_it_names() {
    let store = Store::hub();
    let (_work, mp, state) = workdir();
    let (code, text) = run_in(
        &state,
        &[
            "mount".as_ref(),
            "-o".as_ref(),
            "ro".as_ref(),
            store.root().as_os_str(),
            mp.as_os_str(),
        ],
    );
    assert_eq!(code, 0, "{text}");
    let _u = LazyUnmount(&mp, &state);
    let fallback = state.join("hfcachefs.log");
    if syslog_reachable() {
        // With a syslog socket the lines go there, and nothing is said.
        assert!(!text.contains("no syslog socket"), "{text}");
        assert!(!fallback.exists());
    } else {
        assert!(
            text.contains("no syslog socket") && text.contains(fallback.to_str().unwrap()),
            "{text}"
        );
        let log = std::fs::read_to_string(&fallback).unwrap();
        assert!(log.contains("mounted"), "{log}");
    }
}

#[test]
fn mount_help_man_pages_completions_and_flag_aliases() {
    let out = Command::new(bin())
        .args(["mount", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for want in [
        "nonempty",
        "allow_other",
        "hfcachefs SOURCE /ABSOLUTE/MOUNTPOINT",
        "--read-only",
        "--allow-other",
        "--debug",
    ] {
        assert!(help.contains(want), "mount --help lacks {want}:\n{help}");
    }

    // Man pages and completions come from the same definitions.
    let out_dir = tempfile::tempdir().unwrap();
    let (code, text) = run_in(
        out_dir.path(),
        &["generate".as_ref(), out_dir.path().as_os_str()],
    );
    assert_eq!(code, 0, "{text}");
    for page in [
        "hfcachefs.1",
        "hfcachefs-mount.1",
        "hfcachefs-status.1",
        "hfcachefs-gc.1",
    ] {
        let t = std::fs::read_to_string(out_dir.path().join("man1").join(page)).unwrap();
        assert!(t.starts_with(".ie") || t.contains(".TH"), "{page}: {t}");
    }
    let bash = out_dir.path().join("completions/hfcachefs.bash");
    assert!(std::fs::read_to_string(&bash).unwrap().contains("unmount"));
    assert!(
        Command::new("bash")
            .arg("-n")
            .arg(&bash)
            .status()
            .unwrap()
            .success()
    );
    for f in ["_hfcachefs", "hfcachefs.fish"] {
        assert!(out_dir.path().join("completions").join(f).is_file(), "{f}");
    }

    // --read-only --allow-other -d: a read-only allow_other mount in the foreground with
    // debug logging.
    let store = Store::hub();
    let (work, mp, _) = workdir();
    let log = work.path().join("stderr");
    let child = Command::new(bin())
        .args(["mount", "--read-only", "--allow-other", "-d"])
        .arg(store.root())
        .arg(&mp)
        .env("HFCACHEFS_STATE_DIR", work.path().join("state"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut d = Daemon {
        child: Some(child),
        mp: mp.clone(),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !is_mounted(&mp) {
        assert!(
            std::time::Instant::now() < deadline,
            "not mounted: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = std::fs::read_dir(&mp).unwrap().count();
    let line = mountinfo_line(&mp);
    assert!(
        line.split(' ')
            .nth(5)
            .unwrap()
            .split(',')
            .any(|o| o == "ro"),
        "{line}"
    );
    assert!(line.contains("allow_other"), "{line}");
    let child = d.child.as_mut().unwrap();
    assert!(
        child.try_wait().unwrap().is_none(),
        "-d must stay in the foreground"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("DEBUG"), "-d logs at debug level: {text}");
}
