//! The `hfcachefs` command: turns the command line into a [`MountConfig`] and runs it.
//!
//! Two forms are accepted: `hfcachefs mount [-f] [-o OPTS] [SOURCE] MOUNTPOINT` (and the other
//! subcommands), and the FUSE convention `hfcachefs SOURCE MOUNTPOINT [-o OPTS]` that
//! `mount -t fuse.hfcachefs` and fstab use.

#[cfg(unix)]
use std::io::{Read, Write};
#[cfg_attr(windows, allow(unused_imports))]
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[cfg(unix)]
use hfcachefs::config::MountConfig;
#[cfg(unix)]
use hfcachefs::mount::{self, MountError};

#[cfg(windows)]
#[path = "main_windows.rs"]
mod windows;
#[cfg(windows)]
use windows::{run_mount, status, unmount};

#[derive(Parser, Debug)]
#[command(
    name = "hfcachefs",
    version,
    about = "Mount a Hugging Face hub cache with links resolved"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Mount a store (default: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub).
    Mount(MountArgs),
    /// Unmount a mountpoint.
    Unmount {
        /// The mountpoint.
        mountpoint: PathBuf,
        /// Detach even if busy (the mount goes away when the last file is closed).
        #[arg(long, short = 'z')]
        lazy: bool,
    },
    /// List live hfcachefs mounts with store, options, mode, uptime and counters.
    Status {
        /// Only this mountpoint.
        mountpoint: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Report sizes, copies, orphan blobs, stale downloads and broken links of a store.
    Scan(hfcachefs::tools::ScanArgs),
    /// Re-hash every blob and report those whose content does not match their name.
    Verify(hfcachefs::tools::VerifyArgs),
    /// Turn snapshot files that are copies of a blob back into links to it.
    Dedupe(hfcachefs::tools::DedupeArgs),
    /// Delete blobs nothing links to, and stale .incomplete and temporary files.
    Gc(hfcachefs::tools::GcArgs),
}

#[derive(Args, Debug)]
struct MountArgs {
    /// Stay in the foreground and log to stderr.
    #[arg(short, long)]
    foreground: bool,
    /// Mount options, comma-separated (may repeat).
    #[arg(short = 'o', value_name = "OPT[,OPT...]")]
    options: Vec<String>,
    /// Log level (error, warn, info, debug, trace); RUST_LOG also works.
    #[arg(long)]
    log_level: Option<String>,
    /// Append logs to this file when detached.
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// The store and the mountpoint, or just the mountpoint.
    #[arg(num_args = 1..=2, required = true, value_name = "[SOURCE] MOUNTPOINT")]
    paths: Vec<PathBuf>,
}

/// The FUSE-convention form: `hfcachefs SOURCE MOUNTPOINT [-o OPTS]`.
#[derive(Parser, Debug)]
#[command(name = "hfcachefs")]
struct FuseForm {
    #[command(flatten)]
    args: MountArgs,
}

fn default_store() -> PathBuf {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|p| !p.is_empty()) {
        return p.into();
    }
    if let Some(p) = std::env::var_os("HF_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("hub");
    }
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    home.join(".cache/huggingface/hub")
}

#[cfg(unix)]
fn init_log(level: Option<&str>) {
    let mut b = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,fuser::session=error"),
    );
    if let Some(l) = level {
        b.parse_filters(l);
    }
    b.format_timestamp_millis().init();
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let subcommand = argv.get(1).map(String::as_str);
    let is_sub = matches!(
        subcommand,
        Some(
            "mount"
                | "unmount"
                | "status"
                | "scan"
                | "verify"
                | "dedupe"
                | "gc"
                | "help"
                | "-h"
                | "--help"
                | "-V"
                | "--version"
        ) | None
    );
    let result = if is_sub {
        match Cli::parse().command {
            Command::Mount(args) => run_mount(args),
            #[cfg(unix)]
            Command::Unmount { mountpoint, lazy } => {
                init_log(None);
                mount::unmount(&mountpoint, lazy).map_err(|e| e.to_string())
            }
            #[cfg(windows)]
            Command::Unmount { mountpoint, lazy } => unmount(&mountpoint, lazy),
            Command::Status { mountpoint, json } => status(mountpoint.as_deref(), json),
            Command::Scan(a) => return hfcachefs::tools::scan::main(a, default_store()),
            Command::Verify(a) => return hfcachefs::tools::verify::main(a, default_store()),
            Command::Dedupe(a) => return hfcachefs::tools::dedupe::main(a, default_store()),
            Command::Gc(a) => return hfcachefs::tools::gc::main(a, default_store()),
        }
    } else {
        run_mount(FuseForm::parse().args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("hfcachefs: {msg}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(unix)]
fn run_mount(args: MountArgs) -> Result<(), String> {
    let (source, mountpoint) = match args.paths.as_slice() {
        [mp] => (default_store(), mp.clone()),
        [src, mp] => (src.clone(), mp.clone()),
        _ => return Err("expected [SOURCE] MOUNTPOINT".into()),
    };
    let mut cfg = MountConfig::default();
    cfg.apply_options(&args.options)
        .map_err(|e| e.to_string())?;
    let options = args.options.join(",");
    // Everything that can be checked before the mount is checked in the caller's process,
    // so errors reach the terminal and the exit code.
    hfcachefs::store::Store::open_root(&source).map_err(|e| e.to_string())?;
    let mountpoint = mount::preflight(&source, &mountpoint).map_err(|e| e.to_string())?;
    if args.foreground {
        init_log(args.log_level.as_deref());
        return serve_with_log(&source, &mountpoint, &cfg, &options, None, None);
    }
    let ready = daemonize(args.log_file.as_deref())?;
    if args.log_file.is_some() || !init_syslog(args.log_level.as_deref()) {
        init_log(args.log_level.as_deref());
    }
    let log_file = args.log_file.clone();
    serve_with_log(&source, &mountpoint, &cfg, &options, Some(ready), log_file)
}

#[cfg(unix)]
/// Forks: the parent waits until the child reports the mount live (exit 0) or failed (its
/// message, exit 1); the child carries on detached. Must run before any thread exists.
fn daemonize(log_file: Option<&Path>) -> Result<std::io::PipeWriter, String> {
    let (mut reader, writer) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: called from main before any other thread is started, so the child's single
    // thread owns every lock; it only continues ordinary Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid > 0 {
        drop(writer);
        let mut msg = String::new();
        let _ = reader.read_to_string(&mut msg);
        if msg == "ok" {
            std::process::exit(0);
        }
        if msg.is_empty() {
            msg = "the mount process died before the mount was live".into();
        }
        eprintln!("hfcachefs: {}", msg.trim_end());
        std::process::exit(1);
    }
    drop(reader);
    let _ = rustix::process::setsid();
    redirect_stdio(log_file).map_err(|e| format!("log file: {e}"))?;
    Ok(writer)
}

#[cfg(unix)]
/// Detached without a log file: log to syslog (journald reads it too). False if there is no
/// syslog socket.
fn init_syslog(level: Option<&str>) -> bool {
    let level = level
        .map(str::to_string)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|l| l.parse::<log::LevelFilter>().ok())
        .unwrap_or(log::LevelFilter::Info);
    syslog::init_unix(syslog::Facility::LOG_DAEMON, level).is_ok()
}

#[cfg(unix)]
/// Points stderr (the log) at `path` again: after log rotation, on SIGHUP.
fn reopen_log(path: &Path) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    rustix::stdio::dup2_stderr(f.as_fd())?;
    Ok(())
}

#[cfg(unix)]
fn redirect_stdio(log_file: Option<&Path>) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let log = match log_file {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)?,
        None => null.try_clone()?,
    };
    rustix::stdio::dup2_stdin(null.as_fd())?;
    rustix::stdio::dup2_stdout(log.as_fd())?;
    rustix::stdio::dup2_stderr(log.as_fd())?;
    Ok(())
}

#[cfg(unix)]
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
    log::info!(
        "mounted {} at {} ({access}, {mode} reads, {} threads)",
        source.display(),
        mountpoint.display(),
        cfg.threads
    );
    let status = hfcachefs::stats::Status {
        pid: std::process::id(),
        store: std::path::absolute(source).unwrap_or_else(|_| source.to_path_buf()),
        mountpoint: mountpoint.to_path_buf(),
        options: options.to_string(),
        access: access.into(),
        mode: mode.into(),
        started: hfcachefs::stats::now(),
        requests: 0,
        errors: 0,
        bytes_read: 0,
        bytes_written: 0,
        passthrough_opens: 0,
        dedupe_linked: 0,
        dedupe_bytes_saved: 0,
        dedupe_pending: 0,
    };
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
                if let Err(e) = unmounter.unmount() {
                    log::error!("unmount {}: {e}; retrying lazily", mp.display());
                    let _ = mount::unmount(&mp, true);
                }
                break;
            }
        })
        .map_err(|e| format!("signal thread: {e}"))?;
    if let Some(mut w) = ready {
        let _ = w.write_all(b"ok");
    }
    let res = mounted.run();
    log::info!("unmounted {}", mountpoint.display());
    res.map_err(|e| format!("serving {}: {e}", mountpoint.display()))
}

#[cfg(unix)]
/// `hfcachefs status`: live mounts from their status files, checked against the mount table.
fn status(only: Option<&Path>, json: bool) -> Result<(), String> {
    let only = only.map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()));
    let live: Vec<_> = hfcachefs::stats::read_all()
        .into_iter()
        .filter(|s| mount::mount_at(&s.mountpoint).is_some())
        .filter(|s| only.as_ref().is_none_or(|o| *o == s.mountpoint))
        .collect();
    if json {
        let text = serde_json::to_string_pretty(&live).map_err(|e| e.to_string())?;
        println!("{text}");
    } else if live.is_empty() {
        println!("no hfcachefs mounts");
    } else {
        let now = hfcachefs::stats::now();
        for s in &live {
            println!(
                "{} <- {}\n  pid {}, {}, {} reads, options '{}', up {}s\n  requests {}, errors {}, read {} B (userspace), written {} B, passthrough opens {}\n  copies stored as links {}, bytes saved {}",
                s.mountpoint.display(),
                s.store.display(),
                s.pid,
                s.access,
                s.mode,
                s.options,
                now.saturating_sub(s.started),
                s.requests,
                s.errors,
                s.bytes_read,
                s.bytes_written,
                s.passthrough_opens,
                s.dedupe_linked,
                s.dedupe_bytes_saved
            );
        }
    }
    if only.is_some() && live.is_empty() {
        return Err("no hfcachefs mount there".into());
    }
    Ok(())
}

#[cfg(unix)]
fn hint(e: &MountError) -> String {
    match e {
        MountError::Io(what, io) if io.raw_os_error() == Some(libc::EPERM) => {
            format!("{what}: {io} (mounting needs root, or fuse3's fusermount3 installed)")
        }
        MountError::Io(what, io) if io.kind() == std::io::ErrorKind::NotFound => {
            format!("{what}: {io} (install fuse3 for fusermount3)")
        }
        other => other.to_string(),
    }
}
