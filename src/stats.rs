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
}

/// Where status files live: `$HFCACHEFS_STATE_DIR`, else `/run/hfcachefs` for root, else
/// `$XDG_RUNTIME_DIR/hfcachefs`, else the temp dir.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HFCACHEFS_STATE_DIR").filter(|d| !d.is_empty()) {
        return d.into();
    }
    if euid().0 {
        return PathBuf::from("/run/hfcachefs");
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("hfcachefs");
    }
    std::env::temp_dir().join(format!("hfcachefs-{}", euid().1))
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
        std::fs::create_dir_all(&dir)?;
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
    let Ok(rd) = std::fs::read_dir(state_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<StatusFile> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|path| {
            let b = std::fs::read(&path).ok()?;
            let status = serde_json::from_slice::<Status>(&b).ok()?;
            Some(StatusFile { path, status })
        })
        .collect();
    out.sort_by(|a, b| a.status.mountpoint.cmp(&b.status.mountpoint));
    out
}

/// True if `pid` is an hfcachefs process that has not finished exiting: gone once every one
/// of its threads is a zombie (every descriptor, including the store's, is closed by then;
/// the main thread alone being a zombie is not enough, the others may still be exiting). A
/// reused PID of another program counts as gone. An exiting process has an empty command
/// line before it closes its files, so an empty one counts as ours.
pub fn daemon_alive(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let running = tasks.filter_map(Result::ok).any(|t| {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            return false;
        };
        // "tid (comm) S ...": the state follows the last ')' (comm may contain anything).
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        !matches!(state, None | Some("Z" | "X"))
    });
    running
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.is_empty() || c.windows(9).any(|w| w == b"hfcachefs"))
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
