//! Counters of a live mount and the status file `hfcachefs status` reads.
//!
//! Counters are relaxed atomics bumped on the request path (no lock). A detached or
//! foreground mount writes a JSON snapshot of them, with what was mounted and how, to
//! `<state dir>/<pid>.json` once a second, and removes it when the mount ends.

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
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_millis(500))
                {
                    let _ = write_status(&p, &snapshot(&base, &stats));
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

/// Status files of live mounts (files of dead processes are skipped).
pub fn read_all() -> Vec<Status> {
    let Ok(rd) = std::fs::read_dir(state_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<Status> = rd
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<Status>(&b).ok())
        .filter(|s| Path::new(&format!("/proc/{}", s.pid)).exists())
        .collect();
    out.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
    out
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
