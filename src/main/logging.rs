//! Where a mount's log goes (Unix): stderr (the terminal, the journal, or a `--log-file`
//! stderr points at), or syslog when detached without a log file.
//!
//! Invariants: a log file is opened with its path in the error, before any fork, so a bad
//! path reaches the terminal; after rotation, SIGHUP points stderr at the file again
//! ([`reopen_log`]), and if that fails stderr stays where it was.

use std::io::Write;
use std::path::Path;

/// Logs to stderr: with `<N>` priority prefixes (and no timestamp: the journal has its own)
/// when stderr is the journal, else timestamped lines.
pub(crate) fn init_log(level: Option<&str>) {
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

/// Opens (creates) a log file for appending; the error names the path.
pub(crate) fn open_log(p: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| format!("log file {}: {e}", p.display()))
}

/// True if a syslog socket accepts datagrams (the places the syslog logger tries).
pub(crate) fn syslog_reachable() -> bool {
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

/// Detached without a log file: log to syslog (journald reads it too). False if there is no
/// syslog socket.
pub(crate) fn init_syslog(level: Option<&str>) -> bool {
    let level = level
        .map(str::to_string)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|l| l.parse::<log::LevelFilter>().ok())
        .unwrap_or(log::LevelFilter::Info);
    syslog::init_unix(syslog::Facility::LOG_DAEMON, level).is_ok()
}

/// Points stderr (the log) at `path` again: after log rotation, on SIGHUP.
pub(crate) fn reopen_log(path: &Path) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    rustix::stdio::dup2_stderr(f.as_fd())?;
    Ok(())
}
