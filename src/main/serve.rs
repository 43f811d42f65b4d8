//! Mounting (Unix): checks, logging, detaching, then serving the mount until it is unmounted
//! or a signal ends it.
//!
//! Invariants:
//! - Everything that can be checked before the mount (options, the store, the mountpoint,
//!   the log file) is checked in the caller's process, so errors reach the terminal and the
//!   exit code; detached, the parent exits only once the child reports the mount live or
//!   failed ([`super::daemon`]).
//! - Signal handlers are registered before the mount goes live, so a SIGTERM right after it
//!   unmounts cleanly instead of leaving the mount behind.
//! - A detached mount never logs silently nowhere: the log file, else syslog, else a file in
//!   the state dir; the terminal is told about the fallback, or that logs are discarded.

use std::io::Write;
use std::path::{Path, PathBuf};

use hfcachefs::config::MountConfig;
use hfcachefs::mount::{self, MountError};

use super::args::MountArgs;
use super::daemon::daemonize;
use super::logging::{init_log, init_syslog, open_log, reopen_log, syslog_reachable};

/// `hfcachefs mount` (and the FUSE form): mounts `[SOURCE] MOUNTPOINT`, detached unless
/// `-f`; returns when the mount ends, or at once with the error that prevented it.
pub(crate) fn run_mount(args: MountArgs) -> Result<(), String> {
    let (source, mountpoint, cfg) = args.parse()?;
    let options = args.options.join(",");
    // Everything that can be checked before the mount is checked in the caller's process,
    // so errors reach the terminal and the exit code.
    hfcachefs::store::Store::open_root(&source).map_err(|e| e.to_string())?;
    let mountpoint =
        mount::preflight(&source, &mountpoint, cfg.nonempty).map_err(|e| e.to_string())?;
    // Detached, the log may be far away: say it on the terminal too. In the foreground the
    // log is the terminal.
    if !args.foreground && !mount::looks_like_hub_cache(&source) {
        eprintln!("hfcachefs: warning: {}", not_hub_warning(&source));
    }
    // The log file is opened here, before any fork, so a bad path is reported on the terminal
    // with the path in it.
    let log_file = match &args.log_file {
        Some(p) => Some((p.clone(), open_log(p)?)),
        None => None,
    };
    let level = args.log_level.as_deref();
    if args.foreground {
        if let Some((_, f)) = &log_file {
            use std::os::fd::AsFd;
            rustix::stdio::dup2_stderr(f.as_fd()).map_err(|e| format!("log file: {e}"))?;
        }
        init_log(level);
        let path = log_file.map(|(p, _)| p);
        return serve_with_log(&source, &mountpoint, &cfg, &options, None, path);
    }
    // Detached: the log file, else syslog, else (no syslog socket, as in many containers) a
    // file in the state dir, announced on the terminal: never silently nowhere.
    let mut use_syslog = false;
    let log_file = match log_file {
        Some(l) => Some(l),
        None if syslog_reachable() => {
            use_syslog = true;
            None
        }
        None => {
            let p = hfcachefs::stats::state_dir().join("hfcachefs.log");
            let opened = p
                .parent()
                .map_or(Ok(()), hfcachefs::stats::create_private_dir)
                .map_err(|e| format!("log file {}: {e}", p.display()))
                .and_then(|()| open_log(&p));
            match opened {
                Ok(f) => {
                    eprintln!(
                        "hfcachefs: warning: no syslog socket (/dev/log); logging to {}",
                        p.display()
                    );
                    Some((p, f))
                }
                Err(e) => {
                    eprintln!(
                        "hfcachefs: warning: no syslog socket (/dev/log) and {e}; logs are discarded (use --log-file)"
                    );
                    None
                }
            }
        }
    };
    let ready = daemonize(log_file.as_ref().map(|(_, f)| f))?;
    if !(use_syslog && init_syslog(level)) {
        init_log(level);
    }
    let path = log_file.map(|(p, _)| p);
    serve_with_log(&source, &mountpoint, &cfg, &options, Some(ready), path)
}

/// The warning for a source with no repo folders (it is mounted anyway).
fn not_hub_warning(source: &Path) -> String {
    format!(
        "{} does not look like a Hugging Face hub cache (no models--*, datasets--* or \
         spaces--* folders); mounting it anyway",
        source.display()
    )
}

/// Mounts and serves until unmounted or signalled: tells the waiting parent (`ready`) and
/// systemd once the mount is live, and reopens `log_file` on SIGHUP.
fn serve_with_log(
    source: &Path,
    mountpoint: &Path,
    cfg: &MountConfig,
    options: &str,
    ready: Option<std::io::PipeWriter>,
    log_file: Option<PathBuf>,
) -> Result<(), String> {
    // Registered before the mount goes live, so a SIGTERM right after it unmounts cleanly
    // instead of killing the process with the mount left behind.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(|e| format!("signals: {e}"))?;
    // Logged before the mount goes live, so whoever sees the mount can see the warning too.
    if !mount::looks_like_hub_cache(source) {
        log::warn!("{}", not_hub_warning(source));
    }
    let mut mounted = match mount::mount(source, mountpoint, cfg) {
        Ok(m) => m,
        Err(e) => {
            let msg = hint(&e);
            if let Some(mut w) = ready {
                let _ = w.write_all(msg.as_bytes());
            }
            return Err(msg);
        }
    };
    let access = if cfg.view.read_only { "ro" } else { "rw" };
    let mode = if mounted
        .stats
        .passthrough
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        "passthrough"
    } else {
        "userspace"
    };
    let opens = if cfg.noopen {
        ", zero-message opens"
    } else {
        ""
    };
    log::info!(
        "mounted {} at {} ({access}, {mode} reads{opens}, {} threads)",
        source.display(),
        mountpoint.display(),
        cfg.threads
    );
    let status = hfcachefs::stats::Status::new(
        std::process::id(),
        std::path::absolute(source).unwrap_or_else(|_| source.to_path_buf()),
        mountpoint.to_path_buf(),
        options.to_string(),
        access.into(),
        mode.into(),
        hfcachefs::stats::now(),
    );
    let _status_file = hfcachefs::stats::StatusWriter::start(status, mounted.stats.clone())
        .map_err(|e| log::warn!("status file: {e}"))
        .ok();
    let mut unmounter = mounted.unmounter();
    let mp = mountpoint.to_path_buf();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == signal_hook::consts::SIGHUP {
                    match &log_file {
                        Some(p) => match reopen_log(p) {
                            Ok(()) => log::info!("SIGHUP: log file {} reopened", p.display()),
                            Err(e) => log::error!("SIGHUP: cannot reopen {}: {e}", p.display()),
                        },
                        None => log::info!("SIGHUP: no log file to reopen"),
                    }
                    continue;
                }
                log::info!("signal {sig}: unmounting {}", mp.display());
                let _ = hfcachefs::sdnotify::notify("STOPPING=1");
                if let Err(e) = unmounter.unmount() {
                    log::error!("unmount {}: {e}; retrying lazily", mp.display());
                    let _ = mount::unmount(&mp, true, mount::DAEMON_EXIT_WAIT);
                }
                break;
            }
        })
        .map_err(|e| format!("signal thread: {e}"))?;
    if let Some(mut w) = ready {
        let _ = w.write_all(b"ok");
    }
    // Readiness for a Type=notify unit: the mount is live and the status file written.
    let ready_msg = format!(
        "READY=1\nSTATUS=serving {} at {}",
        source.display(),
        mountpoint.display()
    );
    if let Err(e) = hfcachefs::sdnotify::notify(&ready_msg) {
        log::warn!("sd_notify (NOTIFY_SOCKET): {e}");
    }
    let res = mounted.run();
    log::info!("unmounted {}", mountpoint.display());
    res.map_err(|e| format!("serving {}: {e}", mountpoint.display()))
}

/// The message for a failed mount, with what to do about the usual causes (no access to
/// `/dev/fuse`, no `fusermount3`).
fn hint(e: &MountError) -> String {
    let fuse_dev_denied = || {
        rustix::fs::access(
            "/dev/fuse",
            rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK,
        )
        .is_err()
    };
    match e {
        MountError::Io(what, io)
            if matches!(io.raw_os_error(), Some(libc::EACCES | libc::EPERM))
                && fuse_dev_denied() =>
        {
            format!(
                "{what}: cannot open /dev/fuse: {io} (mount as root, or give your user read \
                 and write access to /dev/fuse, usually through its group)"
            )
        }
        MountError::Io(what, io) if io.raw_os_error() == Some(libc::EPERM) => {
            format!("{what}: {io} (mounting needs root, or fuse3's fusermount3 installed)")
        }
        MountError::Io(what, io) if io.kind() == std::io::ErrorKind::NotFound => {
            format!("{what}: {io} (install fuse3 for fusermount3)")
        }
        other => other.to_string(),
    }
}
