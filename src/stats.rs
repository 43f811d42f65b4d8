//! Counters of a live mount and the status file `hfcachefs status` reads.
//!
//! Counters are relaxed atomics bumped on the request path (no lock). A detached or
//! foreground mount writes a JSON snapshot of them, with what was mounted and how, to
//! `<state dir>/<pid>.json` when the mount is live and then every half second in which a
//! counter moved (each write a rename of a complete file), and removes it when the mount ends. A file whose
//! daemon died (SIGKILL, crash) stays behind: `status` and `unmount` remove it once the mount
//! is gone ([`read_files`] returns every file, [`daemon_alive`] tells which daemons run).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Request counters of one mount.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests served.
    pub requests: AtomicU64,
    /// Requests answered with an error (not counting "not found").
    pub errors: AtomicU64,
    /// Bytes read in userspace (reads served by kernel passthrough are not seen here).
    pub bytes_read: AtomicU64,
    /// Bytes written.
    pub bytes_written: AtomicU64,
    /// Opens served with kernel passthrough.
    pub passthrough_opens: AtomicU64,
    /// Kernel passthrough is in use.
    pub passthrough: AtomicBool,
    /// The view's deduplication counters (set once the view is known).
    pub dedupe: std::sync::OnceLock<Arc<DedupeCounters>>,
}

/// What the view's deduplication of copies did (see `view::copies`).
#[derive(Debug, Default)]
pub struct DedupeCounters {
    /// Snapshot entries stored as links instead of copies.
    pub linked: AtomicU64,
    /// Bytes of copies freed by linking them to a blob that already held their content.
    pub bytes_saved: AtomicU64,
    /// Conversions in progress (hashing or linking).
    pub pending: AtomicU64,
}

impl Stats {
    /// Adds one to a counter.
    pub fn bump(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// What the status file holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    /// Daemon process id.
    pub pid: u32,
    /// The store.
    pub store: PathBuf,
    /// The mountpoint.
    pub mountpoint: PathBuf,
    /// The `-o` options as given.
    pub options: String,
    /// `ro` or `rw`.
    pub access: String,
    /// `passthrough` or `userspace`.
    pub mode: String,
    /// Mount time, seconds since the epoch.
    pub started: u64,
    /// Requests served.
    pub requests: u64,
    /// Error replies.
    pub errors: u64,
    /// Bytes read in userspace.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Opens served with passthrough.
    pub passthrough_opens: u64,
    /// Snapshot entries written as copies and stored as links.
    #[serde(default)]
    pub dedupe_linked: u64,
    /// Bytes freed by storing copies as links.
    #[serde(default)]
    pub dedupe_bytes_saved: u64,
    /// Conversions of copies in progress.
    #[serde(default)]
    pub dedupe_pending: u64,
}

impl Status {
    /// What a mount is, with every counter at zero (the daemon's first status file, or a
    /// dead mount found only in the mount table).
    pub fn new(
        pid: u32,
        store: PathBuf,
        mountpoint: PathBuf,
        options: String,
        access: String,
        mode: String,
        started: u64,
    ) -> Status {
        Status {
            pid,
            store,
            mountpoint,
            options,
            access,
            mode,
            started,
            requests: 0,
            errors: 0,
            bytes_read: 0,
            bytes_written: 0,
            passthrough_opens: 0,
            dedupe_linked: 0,
            dedupe_bytes_saved: 0,
            dedupe_pending: 0,
        }
    }
}

/// Where status files live: `$HFCACHEFS_STATE_DIR`, else `/run/hfcachefs` for root, else
/// `$XDG_RUNTIME_DIR/hfcachefs`, else `$XDG_STATE_HOME/hfcachefs` or
/// `~/.local/state/hfcachefs` — never a fixed name in the shared temp dir, which another user
/// could create first (or point elsewhere with a symlink).
pub fn state_dir() -> PathBuf {
    let (root, uid) = euid();
    state_dir_for(root, uid, |k| std::env::var_os(k).filter(|v| !v.is_empty()))
}

/// [`state_dir`] for a given user and environment.
fn state_dir_for(
    root: bool,
    uid: u32,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> PathBuf {
    if let Some(d) = env("HFCACHEFS_STATE_DIR") {
        return d.into();
    }
    if root {
        return PathBuf::from("/run/hfcachefs");
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        return PathBuf::from(d).join("hfcachefs");
    }
    if let Some(d) = env("XDG_STATE_HOME") {
        return PathBuf::from(d).join("hfcachefs");
    }
    if let Some(h) = env("HOME").or_else(|| env("USERPROFILE")) {
        return PathBuf::from(h).join(".local/state/hfcachefs");
    }
    // No home at all: a per-user name in the temp dir, which `create_private_dir` refuses
    // unless it is a real directory of this user that nobody else can write.
    std::env::temp_dir().join(format!("hfcachefs-{uid}"))
}

/// Creates `dir` (mode 0700 where new) and checks that it is a directory, not a symlink, owned
/// by this user and not writable by others: status and log files go there.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let m = std::fs::symlink_metadata(dir)?;
        if !m.is_dir() || m.uid() != euid().1 || m.mode() & 0o022 != 0 {
            return Err(std::io::Error::other(format!(
                "{} is not a private directory of this user (a symlink, another owner, or \
                 writable by others): set HFCACHEFS_STATE_DIR or XDG_RUNTIME_DIR",
                dir.display()
            )));
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// The effective user: (is root, uid); (false, 0) where there are no uids (Windows).
fn euid() -> (bool, u32) {
    #[cfg(unix)]
    {
        let u = rustix::process::geteuid();
        (u.is_root(), u.as_raw())
    }
    #[cfg(not(unix))]
    {
        (false, 0)
    }
}

/// Writes the status file every second until dropped; removes it then.
pub struct StatusWriter {
    path: PathBuf,
    /// Dropping it wakes the writer thread at once.
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StatusWriter {
    /// Starts writing `base` (with live counters from `stats`) to the state dir.
    pub fn start(base: Status, stats: Arc<Stats>) -> std::io::Result<StatusWriter> {
        let dir = state_dir();
        create_private_dir(&dir)?;
        let path = dir.join(format!("{}.json", base.pid));
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let p = path.clone();
        write_status(&p, &snapshot(&base, &stats))?;
        let thread = std::thread::Builder::new()
            .name("status".into())
            .spawn(move || {
                let mut last = snapshot(&base, &stats);
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_millis(500))
                {
                    // Rewritten only when a counter moved: fewer renames for readers to race.
                    let now = snapshot(&base, &stats);
                    if now != last {
                        let _ = write_status(&p, &now);
                        last = now;
                    }
                }
            })?;
        Ok(StatusWriter {
            path,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for StatusWriter {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn snapshot(base: &Status, stats: &Stats) -> Status {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    Status {
        mode: if stats.passthrough.load(Ordering::Relaxed) {
            "passthrough".into()
        } else {
            "userspace".into()
        },
        requests: get(&stats.requests),
        errors: get(&stats.errors),
        bytes_read: get(&stats.bytes_read),
        bytes_written: get(&stats.bytes_written),
        passthrough_opens: get(&stats.passthrough_opens),
        dedupe_linked: stats.dedupe.get().map_or(0, |d| get(&d.linked)),
        dedupe_bytes_saved: stats.dedupe.get().map_or(0, |d| get(&d.bytes_saved)),
        dedupe_pending: stats.dedupe.get().map_or(0, |d| get(&d.pending)),
        ..base.clone()
    }
}

fn write_status(path: &Path, st: &Status) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(st).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, path)
}

/// A status file as read from the state dir.
#[derive(Clone, Debug)]
pub struct StatusFile {
    /// Where it is.
    pub path: PathBuf,
    /// What it says.
    pub status: Status,
}

/// Every readable status file in the state dir, whether its daemon runs or not, sorted by
/// mountpoint.
pub fn read_files() -> Vec<StatusFile> {
    let list = || -> Vec<PathBuf> {
        std::fs::read_dir(state_dir())
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default()
    };
    // A listing that runs while a daemon renames its fresh status file over the old one can
    // miss that name (tmpfs puts the renamed entry before the listing's position). Daemons
    // rewrite at most every 500 ms, so of two listings taken back to back at most one races
    // a given rewrite: their union has every file.
    let mut paths = list();
    paths.extend(list());
    paths.sort();
    paths.dedup();
    let mut out: Vec<StatusFile> = paths
        .into_iter()
        .filter_map(|path| {
            let b = std::fs::read(&path).ok()?;
            let status = serde_json::from_slice::<Status>(&b).ok()?;
            Some(StatusFile { path, status })
        })
        .collect();
    out.sort_by(|a, b| a.status.mountpoint.cmp(&b.status.mountpoint));
    out
}

/// True if `pid` is an hfcachefs process that has not finished exiting: gone once its main
/// thread is a zombie and no other thread is left (the last thread closes every descriptor,
/// including the store's, before it goes; the main thread alone being a zombie is not
/// enough, the others may still be exiting). A reused PID of another program counts as gone.
/// An exiting process has an empty command line before it closes its files, so an empty one
/// counts as ours.
///
/// Read from `/proc/<pid>/status`, which the kernel renders in one piece: a listing of
/// `/proc/<pid>/task` is no proof, as it ends early at a thread that exits while it is read,
/// hiding the threads after it.
pub fn daemon_alive(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    if !status_says_running(&status) {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.is_empty() || c.windows(9).any(|w| w == b"hfcachefs"))
}

/// Whether a `/proc/<pid>/status` text shows a process not yet done exiting: its main thread
/// is not a zombie, or other threads are still counted.
fn status_says_running(status: &str) -> bool {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let zombie = field("State:").is_none_or(|s| s.starts_with('Z') || s.starts_with('X'));
    let threads = field("Threads:")
        .and_then(|t| t.parse::<u32>().ok())
        .unwrap_or(0);
    !zombie || threads > 1
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exiting_process_is_alive_until_its_last_thread_is_gone() {
        let st = |state: &str, threads: u32| {
            format!("Name:\thfcachefs\nState:\t{state}\nTgid:\t7\nThreads:\t{threads}\n")
        };
        assert!(status_says_running(&st("S (sleeping)", 9)));
        assert!(status_says_running(&st("T (stopped)", 1)));
        // Main thread done, one thread still closing files: not gone yet.
        assert!(status_says_running(&st("Z (zombie)", 2)));
        assert!(!status_says_running(&st("Z (zombie)", 1)));
        assert!(!status_says_running(&st("X (dead)", 1)));
        assert!(!status_says_running(""));
        // This test process runs, from a binary whose name holds the project's.
        assert!(daemon_alive(std::process::id()));
        assert!(!daemon_alive(u32::MAX));
    }

    #[test]
    fn state_dir_is_never_a_guessable_temp_name_while_there_is_a_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert_eq!(
            state_dir_for(false, 1000, env(&[("HOME", "/home/a")])),
            PathBuf::from("/home/a/.local/state/hfcachefs")
        );
        assert_eq!(
            state_dir_for(
                false,
                1000,
                env(&[("XDG_RUNTIME_DIR", "/run/user/1000"), ("HOME", "/h")])
            ),
            PathBuf::from("/run/user/1000/hfcachefs")
        );
        assert_eq!(
            state_dir_for(true, 0, env(&[("HOME", "/root")])),
            PathBuf::from("/run/hfcachefs")
        );
        assert_eq!(
            state_dir_for(false, 7, env(&[("HFCACHEFS_STATE_DIR", "/x")])),
            PathBuf::from("/x")
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_state_dir_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let ok = t.path().join("mine");
        create_private_dir(&ok).unwrap();
        let mode = std::fs::metadata(&ok).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        let open = t.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(create_private_dir(&open).is_err());
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&ok, &link).unwrap();
        assert!(create_private_dir(&link).is_err());
    }
}
