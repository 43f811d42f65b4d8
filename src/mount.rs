//! Mounting and unmounting on Linux/macOS: pre-flight checks with one-line errors that name
//! the cause and the fix, the FUSE session, `unmount`, and the state of each mount for
//! `status`.
//!
//! Invariants: `unmount` returns only once the daemon that served the mount has exited (or
//! says that it has not, after a bounded wait), so the store's own mount can be unmounted
//! right after it; `survey` reports a mount as live only if its daemon runs *and* its
//! mountpoint answers, and never hangs on a mountpoint that does not answer.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::MountConfig;
use crate::fuse::FuseFs;
use crate::stats::{Stats, Status, StatusFile};
use crate::store::Store;
use crate::view::CacheView;

/// Why a mount or unmount failed, phrased for the person who ran it.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The store cannot be used.
    #[error(transparent)]
    Store(#[from] crate::store::OpenStoreError),
    /// The mountpoint does not exist.
    #[error("mountpoint {0} does not exist (create it with: mkdir -p {0})")]
    NoMountpoint(PathBuf),
    /// The mountpoint is not a directory.
    #[error("mountpoint {0} is not a directory")]
    MountpointNotDir(PathBuf),
    /// Something is mounted there already.
    #[error("{0} is already a mount point ({1}); unmount it first: hfcachefs unmount {0}")]
    AlreadyMounted(PathBuf, String),
    /// A dead FUSE mount is left there.
    #[error(
        "{0} is a stale FUSE mount (transport endpoint is not connected); clean it up: hfcachefs unmount {0}"
    )]
    Stale(PathBuf),
    /// No FUSE device.
    #[error("/dev/fuse is missing: load the module (modprobe fuse) and install fuse3")]
    NoFuseDevice,
    /// The mountpoint is the store or inside it.
    #[error("mountpoint {0} is inside the store {1}: pick a mountpoint outside the store")]
    InsideStore(PathBuf, PathBuf),
    /// The mountpoint has entries the mount would hide.
    #[error(
        "mountpoint {0} is not empty (the mount would hide its entries); empty it, pick another, or mount over it with -o nonempty"
    )]
    NotEmpty(PathBuf),
    /// Nothing of ours is mounted there.
    #[error("{0} is not a mount point")]
    NotMounted(PathBuf),
    /// Busy.
    #[error(
        "{0} is busy (files or directories are open in it); close them, or detach lazily: hfcachefs unmount --lazy {0}"
    )]
    Busy(PathBuf),
    /// The kernel or helper refused.
    #[error("{0}: {1}")]
    Io(String, io::Error),
    /// Unmounted, but the daemon did not exit in time.
    #[error(
        "{0} is unmounted, but its daemon (pid {1}) has not exited after {2} s; it may still hold the store"
    )]
    DaemonLingers(PathBuf, u32, u64),
}

/// One line of `/proc/self/mountinfo`.
#[derive(Clone, Debug)]
pub struct MountInfo {
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// File system type (`fuse.hfcachefs`, …).
    pub fstype: String,
    /// Mount source.
    pub source: String,
    /// Mount options.
    pub options: String,
}

/// The mounts of this mount namespace (empty where `/proc` is missing).
pub fn mounts() -> Vec<MountInfo> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines().filter_map(parse_mountinfo).collect()
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(line: &str) -> Option<MountInfo> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    Some(MountInfo {
        mountpoint: PathBuf::from(unescape(l.get(4)?)),
        options: l.get(5)?.to_string(),
        fstype: r.first()?.to_string(),
        source: unescape(r.get(1)?),
    })
}

/// The mount at exactly `path`, if any (the last one wins, as the kernel stacks them).
pub fn mount_at(path: &Path) -> Option<MountInfo> {
    mounts().into_iter().rev().find(|m| m.mountpoint == path)
}

/// Checks that `mountpoint` can take a mount of `store_path`; returns its absolute path.
/// A non-empty mountpoint is refused unless `nonempty`: its entries would silently vanish
/// under the mount (and reappear, confusingly, when it ends).
pub fn preflight(
    store_path: &Path,
    mountpoint: &Path,
    nonempty: bool,
) -> Result<PathBuf, MountError> {
    let abs = std::path::absolute(mountpoint)
        .map_err(|e| MountError::Io(mountpoint.display().to_string(), e))?;
    match std::fs::metadata(&abs) {
        Ok(m) if !m.is_dir() => return Err(MountError::MountpointNotDir(abs)),
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => return Err(MountError::Stale(abs)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(MountError::NoMountpoint(abs)),
        Err(e) => return Err(MountError::Io(abs.display().to_string(), e)),
    }
    let canon = std::fs::canonicalize(&abs).unwrap_or(abs.clone());
    if let Some(m) = mount_at(&canon) {
        return Err(MountError::AlreadyMounted(canon, m.fstype));
    }
    if let Ok(store) = std::fs::canonicalize(store_path)
        && canon.starts_with(&store)
    {
        return Err(MountError::InsideStore(canon, store));
    }
    if !nonempty
        && std::fs::read_dir(&canon)
            .map_err(|e| MountError::Io(canon.display().to_string(), e))?
            .next()
            .is_some()
    {
        return Err(MountError::NotEmpty(canon));
    }
    if cfg!(target_os = "linux") && !Path::new("/dev/fuse").exists() {
        return Err(MountError::NoFuseDevice);
    }
    Ok(canon)
}

/// True if `store` looks like a Hugging Face hub cache: empty (a new cache), or holding a
/// repo folder (`models--…`, `datasets--…`, `spaces--…`), `.locks`, `CACHEDIR.TAG` or the
/// shared `blobs/` store. Anything else (a typo such as `/usr/share`) earns a warning at
/// mount time: the view would show it, and accept writes into it, all the same.
pub fn looks_like_hub_cache(store: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(store) else {
        // Unreadable here: the mount reports the real error.
        return true;
    };
    let mut empty = true;
    for e in rd.filter_map(Result::ok) {
        empty = false;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if crate::hub::names::is_cache_root_entry(&name) {
            return true;
        }
    }
    empty
}

/// A live mount: run it with [`Mounted::run`]; [`Mounted::unmounter`] stops it from another
/// thread.
pub struct Mounted {
    session: fuser::Session<FuseFs>,
    /// The view being served.
    pub view: Arc<CacheView>,
    /// Request counters.
    pub stats: Arc<Stats>,
}

impl Mounted {
    /// A handle that unmounts the session (for signal handlers).
    pub fn unmounter(&mut self) -> fuser::SessionUnmounter {
        self.session.unmount_callable()
    }

    /// Serves requests until the file system is unmounted.
    pub fn run(self) -> io::Result<()> {
        self.session.run()
    }
}

/// Opens the store and mounts the view at `mountpoint` (already checked by [`preflight`]).
pub fn mount(source: &Path, mountpoint: &Path, cfg: &MountConfig) -> Result<Mounted, MountError> {
    let store = Store::open_root(source)?;
    let passthrough = cfg.passthrough.unwrap_or_else(|| {
        let on_fuse = store.is_on_fuse();
        if on_fuse {
            log::info!(
                "the store is on a FUSE file system: passthrough off (-o passthrough forces it)"
            );
        }
        !on_fuse
    });
    let mut view_cfg = cfg.view.clone();
    view_cfg.mountpoint = Some(mountpoint.to_path_buf());
    let view = Arc::new(CacheView::new(store, view_cfg));
    let mut options = vec![
        fuser::MountOption::FSName(cfg.fsname.clone().unwrap_or_else(|| {
            std::path::absolute(source)
                .unwrap_or_else(|_| source.to_path_buf())
                .display()
                .to_string()
        })),
        // Passed to the kernel, which then reports the type as `fuse.hfcachefs`.
        fuser::MountOption::CUSTOM("subtype=hfcachefs".into()),
        if cfg.view.read_only {
            fuser::MountOption::RO
        } else {
            fuser::MountOption::RW
        },
    ];
    if cfg.default_permissions {
        options.push(fuser::MountOption::DefaultPermissions);
    }
    for flag in &cfg.kernel_flags {
        options.extend(kernel_flag(flag));
    }
    // Safe by default, as fusermount3 always is for users: no device files and no
    // set-user-ID programs through the view unless `dev`/`suid` are asked for (mount.fuse3
    // passes them explicitly when root mounts without nodev/nosuid).
    for (on, off, opt) in [
        ("dev", "nodev", fuser::MountOption::NoDev),
        ("suid", "nosuid", fuser::MountOption::NoSuid),
    ] {
        if !cfg.kernel_flags.iter().any(|f| f == on || f == off) {
            options.push(opt);
        }
    }
    let stats = Arc::new(Stats::default());
    let mut fcfg = fuser::Config::default();
    fcfg.mount_options = options;
    fcfg.acl = if cfg.allow_other {
        fuser::SessionACL::All
    } else if cfg.allow_root {
        fuser::SessionACL::RootAndOwner
    } else {
        fuser::SessionACL::Owner
    };
    fcfg.n_threads = Some(cfg.threads.max(1));
    fcfg.clone_fd = cfg!(target_os = "linux") && cfg.threads > 1;
    let session = fuser::Session::new(
        FuseFs::new(view.clone(), passthrough, stats.clone()).with_noopen(cfg.noopen),
        mountpoint,
        &fcfg,
    )
    .map_err(|e| MountError::Io(format!("mounting {}", mountpoint.display()), e))?;
    Ok(Mounted {
        session,
        view,
        stats,
    })
}

/// The `fuser` option for a generic kernel mount flag accepted by the option parser.
fn kernel_flag(flag: &str) -> Option<fuser::MountOption> {
    use fuser::MountOption as M;
    Some(match flag {
        "dev" => M::Dev,
        "nodev" => M::NoDev,
        "suid" => M::Suid,
        "nosuid" => M::NoSuid,
        "exec" => M::Exec,
        "noexec" => M::NoExec,
        "atime" => M::Atime,
        "noatime" => M::NoAtime,
        "sync" => M::Sync,
        "async" => M::Async,
        "dirsync" => M::DirSync,
        _ => return None,
    })
}

/// How long `unmount` asks again while the kernel says the mount is busy.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// How long `unmount` waits for the daemon to exit after the kernel let the mount go.
pub const DAEMON_EXIT_WAIT: Duration = Duration::from_secs(10);

/// Unmounts the hfcachefs (or any FUSE) mount at `mountpoint`; `lazy` detaches it even
/// while busy. A plain unmount then waits (at most `wait`) for the daemon named by the
/// mount's status file to exit, so the store is no longer held when it returns; a lazy one
/// does not wait (the daemon exits when the last open file is closed). Status files left by
/// a daemon that died are removed.
pub fn unmount(mountpoint: &Path, lazy: bool, wait: Duration) -> Result<(), MountError> {
    let abs = std::path::absolute(mountpoint)
        .map_err(|e| MountError::Io(mountpoint.display().to_string(), e))?;
    // A stale mount cannot be canonicalized; fall back to the absolute path.
    let path = std::fs::canonicalize(&abs).unwrap_or(abs);
    // A listing taken while the daemon renames a fresh status file over its old one may miss
    // it (readdir and rename race), so an empty answer is asked again a few times.
    let mut daemons: Vec<StatusFile> = Vec::new();
    for _ in 0..5 {
        daemons = crate::stats::read_files()
            .into_iter()
            .filter(|f| f.status.mountpoint == path)
            .collect();
        if !daemons.is_empty() || mount_at(&path).is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A busy answer may come from a moment's reference (a `status` probe's `statfs`, a
    // shell's `stat` of the mountpoint), not from open files: asked again for a short while.
    let deadline = Instant::now() + BUSY_RETRY;
    loop {
        match unmount_kernel(&path, lazy) {
            Err(MountError::Busy(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            r => break r?,
        }
    }
    for f in &daemons {
        if !lazy {
            let deadline = Instant::now() + wait;
            while crate::stats::daemon_alive(f.status.pid) {
                if Instant::now() >= deadline {
                    return Err(MountError::DaemonLingers(
                        path,
                        f.status.pid,
                        wait.as_secs(),
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if !crate::stats::daemon_alive(f.status.pid) {
            let _ = std::fs::remove_file(&f.path);
        }
    }
    Ok(())
}

fn unmount_kernel(path: &Path, lazy: bool) -> Result<(), MountError> {
    let path = path.to_path_buf();
    let Some(info) = mount_at(&path) else {
        return Err(MountError::NotMounted(path));
    };
    if !info.fstype.starts_with("fuse") {
        return Err(MountError::Io(
            path.display().to_string(),
            io::Error::other(format!("not a FUSE mount ({}); use umount", info.fstype)),
        ));
    }
    if rustix::process::geteuid().is_root() {
        let flags = if lazy {
            rustix::mount::UnmountFlags::DETACH
        } else {
            rustix::mount::UnmountFlags::empty()
        };
        return match rustix::mount::unmount(&path, flags) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::BUSY) => Err(MountError::Busy(path)),
            Err(e) => Err(MountError::Io(
                format!("unmount {}", path.display()),
                e.into(),
            )),
        };
    }
    let mut cmd = std::process::Command::new("fusermount3");
    cmd.arg("-u");
    if lazy {
        cmd.arg("-z");
    }
    let out = cmd
        .arg(&path)
        .output()
        .map_err(|e| MountError::Io("running fusermount3 (install fuse3)".into(), e))?;
    if out.status.success() {
        return Ok(());
    }
    let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if msg.contains("busy") {
        return Err(MountError::Busy(path));
    }
    Err(MountError::Io(
        format!("fusermount3 -u {}", path.display()),
        io::Error::other(msg),
    ))
}

/// What `status` makes of a mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The daemon runs and the mountpoint answers.
    Live,
    /// The daemon runs, but its mountpoint does not answer in time or is no longer mounted
    /// there (hung, or detached lazily while files are still open).
    Stale,
    /// The daemon is gone and the kernel still has its mount: every access fails with
    /// "transport endpoint is not connected".
    Dead,
}

/// One mount as `status` reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MountReport {
    /// Live, stale or dead.
    pub state: State,
    /// The status file's contents (pid 0 and empty counters for a dead mount found in the
    /// mount table without a status file).
    #[serde(flatten)]
    pub status: Status,
}

/// How long `survey` waits for a mountpoint to answer.
const PROBE_WAIT: Duration = Duration::from_secs(2);

/// `statfs` of `path` in a child process, so a hung daemon cannot hang the caller: `None` if
/// no answer within `wait`. `statfs` because the kernel always asks the daemon for it, where a
/// `stat` may be answered from the attribute cache. A process and not a thread: a thread
/// blocked on a hung FUSE request keeps the whole process (and its stdout pipe) from ending,
/// so `status` could not exit; a child left blocked is on its own and holds none of our
/// descriptors but its own copy of `/dev/null`.
fn probe(path: &Path, wait: Duration) -> Option<io::Result<()>> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let null = std::ffi::CString::new("/dev/null").ok()?;
    // SAFETY: fork(2); the child below only makes async-signal-safe calls (open, dup2,
    // statfs, _exit) on memory prepared before the fork, so no lock or allocator state
    // inherited from other threads is touched.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Some(Err(io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: in the child: async-signal-safe calls on valid NUL-terminated strings and a
        // zeroed statfs buffer; _exit never returns. Standard streams are pointed at
        // /dev/null so a child stuck on the mount holds no pipe of the caller open.
        unsafe {
            let fd = libc::open(null.as_ptr(), libc::O_RDWR);
            if fd >= 0 {
                for std_fd in 0..3 {
                    libc::dup2(fd, std_fd);
                }
            }
            let mut buf: libc::statfs = std::mem::zeroed();
            let rc = libc::statfs(c_path.as_ptr(), &mut buf);
            // Reading errno allocates nothing (a raw OS error is stored inline).
            let code = if rc == 0 {
                0
            } else {
                io::Error::last_os_error().raw_os_error().unwrap_or(255)
            };
            libc::_exit(code.clamp(0, 255));
        }
    }
    let deadline = Instant::now() + wait;
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) on the child just forked, with a valid status pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            if !libc::WIFEXITED(status) {
                return Some(Err(io::Error::other("probe killed")));
            }
            return Some(match libc::WEXITSTATUS(status) {
                0 => Ok(()),
                e => Err(io::Error::from_raw_os_error(e)),
            });
        }
        if rc < 0 || Instant::now() >= deadline {
            // Left behind: it ends when the daemon answers or the mount goes away.
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `probe` of every path at once (one thread each, each with its own child process), so
/// several hung mounts cost one `PROBE_WAIT`, not one each.
fn probe_all(paths: &[&Path]) -> Vec<Option<io::Result<()>>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .iter()
            .map(|p| scope.spawn(move || probe(p, PROBE_WAIT)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(None))
            .collect()
    })
}

/// The state of every hfcachefs mount this user's state dir knows of, plus dead
/// `fuse.hfcachefs` mounts in the mount table that have no status file; only the one at
/// `only` if given (no other mount is probed then). Status files of daemons that are gone and
/// whose mount is gone too are deleted (nothing is left to report).
pub fn survey(only: Option<&Path>) -> Vec<MountReport> {
    let table = mounts();
    let wanted = |mp: &Path| only.is_none_or(|o| o == mp);
    let in_table = |mp: &Path| {
        table
            .iter()
            .any(|m| m.mountpoint == mp && m.fstype.starts_with("fuse"))
    };
    // (report, needs a probe); the probes run together below.
    let mut found: Vec<(MountReport, bool)> = Vec::new();
    for f in crate::stats::read_files() {
        let st = f.status;
        let alive = crate::stats::daemon_alive(st.pid);
        let mounted = in_table(&st.mountpoint);
        if !alive && !mounted {
            let _ = std::fs::remove_file(&f.path);
            continue;
        }
        if !wanted(&st.mountpoint) {
            continue;
        }
        let state = if alive { State::Stale } else { State::Dead };
        found.push((MountReport { state, status: st }, alive && mounted));
    }
    let mut unknown: Vec<&MountInfo> = table
        .iter()
        .filter(|m| m.fstype == "fuse.hfcachefs" && wanted(&m.mountpoint))
        .filter(|m| {
            !found
                .iter()
                .any(|(r, _)| r.status.mountpoint == m.mountpoint)
        })
        .collect();
    unknown.dedup_by(|a, b| a.mountpoint == b.mountpoint);
    let paths: Vec<&Path> = found
        .iter()
        .filter(|(_, p)| *p)
        .map(|(r, _)| r.status.mountpoint.as_path())
        .chain(unknown.iter().map(|m| m.mountpoint.as_path()))
        .collect();
    let mut answers = probe_all(&paths).into_iter();
    let mut out = Vec::new();
    for (mut r, needs_probe) in found {
        // Daemon alive and mounted: live only if the mountpoint answered.
        if needs_probe && matches!(answers.next(), Some(Some(Ok(())))) {
            r.state = State::Live;
        }
        out.push(r);
    }
    for (m, answer) in unknown.into_iter().zip(answers) {
        // A mount of another user or state dir that answers is not ours to report; one that
        // fails with ENOTCONN is dead whoever owned it.
        if let Some(Err(e)) = answer
            && e.raw_os_error() == Some(libc::ENOTCONN)
        {
            out.push(MountReport {
                state: State::Dead,
                status: Status::new(
                    0,
                    PathBuf::from(&m.source),
                    m.mountpoint.clone(),
                    m.options.clone(),
                    if m.options.split(',').any(|o| o == "ro") {
                        "ro".into()
                    } else {
                        "rw".into()
                    },
                    String::new(),
                    0,
                ),
            });
        }
    }
    out.sort_by(|a, b| a.status.mountpoint.cmp(&b.status.mountpoint));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let l =
            "36 35 0:31 / /mnt/a\\040b rw,nosuid shared:1 - fuse.hfcachefs /srv/hub rw,user_id=0";
        let m = parse_mountinfo(l).unwrap();
        assert_eq!(m.mountpoint, PathBuf::from("/mnt/a b"));
        assert_eq!(m.fstype, "fuse.hfcachefs");
        assert_eq!(m.source, "/srv/hub");
    }
}
