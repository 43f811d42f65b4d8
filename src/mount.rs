//! Mounting and unmounting on Linux/macOS: pre-flight checks with one-line errors that name
//! the cause and the fix, the FUSE session, and `unmount`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::MountConfig;
use crate::fuse::FuseFs;
use crate::stats::Stats;
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
pub fn preflight(store_path: &Path, mountpoint: &Path) -> Result<PathBuf, MountError> {
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
    if cfg!(target_os = "linux") && !Path::new("/dev/fuse").exists() {
        return Err(MountError::NoFuseDevice);
    }
    Ok(canon)
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
        FuseFs::new(view.clone(), passthrough, stats.clone()),
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

/// Unmounts the hfcachefs (or any FUSE) mount at `mountpoint`; `lazy` detaches it even
/// while busy.
pub fn unmount(mountpoint: &Path, lazy: bool) -> Result<(), MountError> {
    let abs = std::path::absolute(mountpoint)
        .map_err(|e| MountError::Io(mountpoint.display().to_string(), e))?;
    // A stale mount cannot be canonicalized; fall back to the absolute path.
    let path = std::fs::canonicalize(&abs).unwrap_or(abs);
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
