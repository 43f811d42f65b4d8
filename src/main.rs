//! The `hfcachefs` command: turns the command line into a [`MountConfig`] and runs it.
//!
//! Two forms are accepted: `hfcachefs mount [-f] [-o OPTS] [SOURCE] MOUNTPOINT` (and the other
//! subcommands), and the FUSE convention `hfcachefs SOURCE MOUNTPOINT [-o OPTS]` that
//! `mount -t fuse.hfcachefs` and fstab use. The FUSE form is recognised only in exactly that
//! shape ([`is_fuse_form`]); any other first word that is not a subcommand is an error with a
//! suggestion, never a mount.

// Every `unsafe` block says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

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
    #[command(after_help = mount_after_help())]
    Mount(MountArgs),
    /// Unmount a mountpoint.
    Unmount {
        /// The mountpoint.
        mountpoint: PathBuf,
        /// Detach even if busy (the mount goes away when the last file is closed).
        #[arg(long, short = 'z')]
        lazy: bool,
    },
    /// List hfcachefs mounts (live, stale or dead) with store, options, mode, uptime and
    /// counters; exit 1 if any is not live.
    Status {
        /// Only this mountpoint.
        mountpoint: Option<PathBuf>,
        /// Machine-readable output (each mount with its "state": live, stale or dead).
        #[arg(long)]
        json: bool,
        /// Print only the PIDs of live mount daemons, one a line (for `kill -HUP`).
        #[arg(long, conflicts_with = "json")]
        pids: bool,
    },
    /// Report sizes, copies, orphan blobs, stale downloads and broken links of a store.
    Scan(hfcachefs::tools::ScanArgs),
    /// Re-hash every blob and report those whose content does not match their name.
    Verify(hfcachefs::tools::VerifyArgs),
    /// Turn snapshot files that are copies of a blob back into links to it.
    Dedupe(hfcachefs::tools::DedupeArgs),
    /// Delete blobs nothing links to, and stale .incomplete and temporary files.
    Gc(hfcachefs::tools::GcArgs),
    /// Write the man pages (DIR/man1/) and shell completions (DIR/completions/) generated
    /// from these definitions (for packaging).
    #[command(hide = true)]
    Generate {
        /// Output directory.
        dir: PathBuf,
    },
}

/// What `mount --help` adds after the flags: the options and the FUSE form.
fn mount_after_help() -> String {
    format!(
        "Mount options (-o): {}.\n\n\
         The FUSE form, as mount -t fuse.hfcachefs and fstab run it:\n  \
         hfcachefs SOURCE /ABSOLUTE/MOUNTPOINT [-o OPT[,OPT...]]\n\
         e.g. fstab: /mnt/nas/hf-hub /srv/hf-hub fuse.hfcachefs \
         ro,allow_other,nodev,nosuid,_netdev,nofail 0 0\n",
        hfcachefs::config::KNOWN
    )
}

/// `hfcachefs generate DIR`: man pages and completions from the clap definitions, so they
/// never drift from the binary.
fn generate(dir: &Path) -> Result<(), String> {
    use clap::CommandFactory;
    let man = dir.join("man1");
    let comp = dir.join("completions");
    for d in [&man, &comp] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    clap_mangen::generate_to(Cli::command(), &man)
        .map_err(|e| format!("{}: {e}", man.display()))?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut Cli::command(), "hfcachefs", &comp)
            .map_err(|e| format!("{}: {e}", comp.display()))?;
    }
    Ok(())
}

#[derive(Args, Debug)]
struct MountArgs {
    /// Stay in the foreground and log to stderr.
    #[arg(short, long)]
    foreground: bool,
    /// Foreground with debug logging (as -f --log-level debug).
    #[arg(short, long)]
    debug: bool,
    /// Mount options, comma-separated (may repeat); listed below.
    #[arg(short = 'o', value_name = "OPT[,OPT...]")]
    options: Vec<String>,
    /// Read-only (as -o ro).
    #[arg(long)]
    read_only: bool,
    /// Let other users (and Samba) in (as -o allow_other).
    #[arg(long)]
    allow_other: bool,
    /// Log level (error, warn, info, debug, trace); RUST_LOG also works.
    #[arg(long)]
    log_level: Option<String>,
    /// Log to this file (appended; reopened on SIGHUP) instead of syslog or stderr.
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// The store and the mountpoint, or just the mountpoint.
    #[arg(num_args = 1..=2, required = true, value_name = "[SOURCE] MOUNTPOINT")]
    paths: Vec<PathBuf>,
}

impl MountArgs {
    /// Folds the flag aliases into the options they stand for.
    fn apply_aliases(&mut self) {
        if self.read_only {
            self.options.push("ro".into());
        }
        if self.allow_other {
            self.options.push("allow_other".into());
        }
        if self.debug {
            self.foreground = true;
            self.log_level.get_or_insert_with(|| "debug".into());
        }
    }
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
/// Logs to stderr: with `<N>` priority prefixes (and no timestamp: the journal has its own)
/// when stderr is the journal, else timestamped lines.
fn init_log(level: Option<&str>) {
    let mut b = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,fuser::session=error"),
    );
    if let Some(l) = level {
        b.parse_filters(l);
    }
    if hfcachefs::sdnotify::stderr_is_journal() {
        b.format(|buf, rec| {
            writeln!(
                buf,
                "<{}>{} {}: {}",
                hfcachefs::sdnotify::priority(rec.level()),
                rec.level(),
                rec.target(),
                rec.args()
            )
        });
    } else {
        b.format_timestamp_millis();
    }
    b.init();
}

/// The subcommands (and clap's own words) that select the subcommand form.
const SUBCOMMANDS: &[&str] = &[
    "mount", "unmount", "status", "scan", "verify", "dedupe", "gc", "generate", "help",
];

/// True if `args` (without the program name) has the exact shape of the FUSE convention
/// `SOURCE MOUNTPOINT [-o OPTS]...` as `mount.fuse3` passes it: a SOURCE that is a path (has a
/// `/`), an absolute MOUNTPOINT (mount(8) canonicalizes it), then only `-o OPTS` or `-oOPTS`.
/// Anything else that is not a subcommand is a usage error: a typo such as `hfcachefs stauts`
/// must never mount the default store in the current directory.
fn is_fuse_form(args: &[String]) -> bool {
    let [source, mountpoint, rest @ ..] = args else {
        return false;
    };
    if !source.contains('/') || source.starts_with('-') || !mountpoint.starts_with('/') {
        return false;
    }
    let mut rest = rest.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "-o" if rest.next().is_some() => {}
            o if o.starts_with("-o") && o.len() > 2 => {}
            _ => return false,
        }
    }
    true
}

/// Edit distance between two short words (for "did you mean").
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The one-line error for a first argument that is neither a subcommand nor the FUSE form.
fn not_a_command(word: &str) -> String {
    let close = SUBCOMMANDS
        .iter()
        .filter(|c| !matches!(**c, "help" | "generate"))
        // Ties go to the longer common prefix: `umount` means `unmount`, not `mount`.
        .map(|c| {
            let prefix = word
                .chars()
                .zip(c.chars())
                .take_while(|(a, b)| a == b)
                .count();
            (distance(word, c), std::cmp::Reverse(prefix), *c)
        })
        .min()
        .filter(|(d, _, c)| *d <= 2.max(c.len() / 3));
    let hint = match close {
        Some((_, _, c)) => format!("did you mean '{c}'? "),
        None => String::new(),
    };
    format!(
        "'{word}' is not a command; {hint}(commands: mount, unmount, status, scan, verify, \
         dedupe, gc; the FUSE form is: hfcachefs SOURCE /ABSOLUTE/MOUNTPOINT [-o OPTS]; see \
         hfcachefs --help)"
    )
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let first = argv.get(1).map(String::as_str);
    let is_sub = match first {
        None => true,
        Some(w) => SUBCOMMANDS.contains(&w) || w.starts_with('-'),
    };
    let result = if is_sub {
        match Cli::parse().command {
            Command::Mount(mut args) => {
                args.apply_aliases();
                run_mount(args)
            }
            #[cfg(unix)]
            Command::Unmount { mountpoint, lazy } => {
                init_log(None);
                mount::unmount(&mountpoint, lazy, mount::DAEMON_EXIT_WAIT)
                    .map_err(|e| e.to_string())
            }
            #[cfg(windows)]
            Command::Unmount { mountpoint, lazy } => unmount(&mountpoint, lazy),
            #[cfg(unix)]
            Command::Status {
                mountpoint,
                json,
                pids,
            } => status(mountpoint.as_deref(), json, pids),
            #[cfg(windows)]
            Command::Status {
                mountpoint, json, ..
            } => status(mountpoint.as_deref(), json),
            Command::Scan(a) => return hfcachefs::tools::scan::main(a, default_store()),
            Command::Verify(a) => return hfcachefs::tools::verify::main(a, default_store()),
            Command::Dedupe(a) => return hfcachefs::tools::dedupe::main(a, default_store()),
            Command::Gc(a) => return hfcachefs::tools::gc::main(a, default_store()),
            Command::Generate { dir } => generate(&dir),
        }
    } else if is_fuse_form(&argv[1..]) {
        run_mount(FuseForm::parse().args)
    } else {
        eprintln!("hfcachefs: {}", not_a_command(first.unwrap_or_default()));
        return ExitCode::from(2);
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

#[cfg(unix)]
/// Opens (creates) a log file for appending; the error names the path.
fn open_log(p: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| format!("log file {}: {e}", p.display()))
}

#[cfg(unix)]
/// True if a syslog socket accepts datagrams (the places the syslog logger tries).
fn syslog_reachable() -> bool {
    ["/dev/log", "/var/run/syslog", "/var/run/log"]
        .iter()
        .any(|p| match std::os::unix::net::UnixDatagram::unbound() {
            Ok(s) => match s.connect(p) {
                Ok(()) => true,
                // A stream socket: the syslog logger uses it as one.
                Err(e) => e.raw_os_error() == Some(libc::EPROTOTYPE),
            },
            Err(_) => false,
        })
}

#[cfg(unix)]
fn not_hub_warning(source: &Path) -> String {
    format!(
        "{} does not look like a Hugging Face hub cache (no models--*, datasets--* or \
         spaces--* folders); mounting it anyway",
        source.display()
    )
}

#[cfg(unix)]
/// Forks: the parent waits until the child reports the mount live (exit 0) or failed (its
/// message, exit 1); the child carries on detached. Must run before any thread exists.
fn daemonize(log_file: Option<&std::fs::File>) -> Result<std::io::PipeWriter, String> {
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
fn redirect_stdio(log_file: Option<&std::fs::File>) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let log = match log_file {
        Some(f) => f.try_clone()?,
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
    log::info!(
        "mounted {} at {} ({access}, {mode} reads, {} threads)",
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

#[cfg(unix)]
/// `hfcachefs status`: every mount the state dir or the mount table knows of, live, stale or
/// dead. Fails (exit 1) if any listed mount is not live, or if `only` is not an hfcachefs
/// mount; `pids` prints only the PIDs of live daemons (for `kill -HUP`).
fn status(only: Option<&Path>, json: bool, pids: bool) -> Result<(), String> {
    use mount::State;
    let only = only.map(|p| {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        std::fs::canonicalize(&abs).unwrap_or(abs)
    });
    let list = mount::survey(only.as_deref());
    if pids {
        for r in list.iter().filter(|r| r.state == State::Live) {
            println!("{}", r.status.pid);
        }
        return Ok(());
    }
    if json {
        let text = serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?;
        println!("{text}");
    } else if list.is_empty() {
        println!("no hfcachefs mounts");
    } else {
        let now = hfcachefs::stats::now();
        for r in &list {
            let s = &r.status;
            let state = match r.state {
                State::Live => "live",
                State::Stale => "STALE (the daemon runs but the mountpoint does not answer)",
                State::Dead => "DEAD (the daemon is gone; clean up: hfcachefs unmount --lazy)",
            };
            let pid = if s.pid == 0 {
                "pid unknown".to_string()
            } else {
                format!("pid {}", s.pid)
            };
            println!(
                "{} <- {}: {state}\n  {pid}, {}, {} reads, options '{}', up {}s\n  requests {}, errors {}, read {} B (userspace), written {} B, passthrough opens {}\n  copies stored as links {}, bytes saved {}",
                s.mountpoint.display(),
                s.store.display(),
                s.access,
                s.mode,
                s.options,
                if s.started == 0 {
                    0
                } else {
                    now.saturating_sub(s.started)
                },
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
    if let Some(o) = &only
        && list.is_empty()
    {
        return Err(format!("no hfcachefs mount at {}", o.display()));
    }
    let bad: Vec<String> = list
        .iter()
        .filter(|r| r.state != State::Live)
        .map(|r| format!("{} ({:?})", r.status.mountpoint.display(), r.state).to_lowercase())
        .collect();
    if !bad.is_empty() {
        return Err(format!("not live: {}", bad.join(", ")));
    }
    Ok(())
}

#[cfg(unix)]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fuse_form_only_in_its_shape() {
        assert!(is_fuse_form(&v(&["/srv/store", "/mnt/x"])));
        assert!(is_fuse_form(&v(&[
            "/srv/store",
            "/mnt/x",
            "-o",
            "ro,allow_other"
        ])));
        assert!(is_fuse_form(&v(&[
            "./store", "/mnt/x", "-oro", "-o", "nodev"
        ])));
        for bad in [
            &["stauts"][..],
            &["stauts", "/mnt/x"],
            &["/srv/store"],
            &["/srv/store", "mnt"],
            &["/srv/store", "/mnt/x", "-f"],
            &["/srv/store", "/mnt/x", "-o"],
            &["/srv/store", "/mnt/x", "extra"],
            &["-x", "/mnt/x"],
        ] {
            assert!(!is_fuse_form(&v(bad)), "{bad:?}");
        }
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert!(not_a_command("stauts").contains("did you mean 'status'?"));
        assert!(not_a_command("umount").contains("did you mean 'unmount'?"));
        assert!(not_a_command("dedup").contains("did you mean 'dedupe'?"));
        assert!(!not_a_command("frobnicate").contains("did you mean"));
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
