//! The `hfcachefs` command on Windows: `mount` serves the store through WinFsp in the
//! foreground (the WinFsp launcher or a scheduled task keeps it running detached; see
//! `platform/windows/`). `unmount` and `status` of the FUSE mount do not apply: a WinFsp mount
//! ends when its process is stopped.

use std::path::Path;

use super::args::MountArgs;

/// `hfcachefs mount [-o OPTS] [SOURCE] MOUNTPOINT`: serves until Ctrl-C or the launcher
/// stops it. `-f` is accepted (the mount is always attached here).
pub fn run_mount(args: MountArgs) -> Result<(), String> {
    let (source, mountpoint, cfg) = args.parse()?;
    init_log(args.log_level.as_deref(), args.log_file.as_deref())?;
    hfcachefs::winfsp::run(
        &source,
        &mountpoint,
        &cfg,
        &hfcachefs::winfsp::MountOptions::default(),
    )
}

fn init_log(level: Option<&str>, file: Option<&Path>) -> Result<(), String> {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if let Some(l) = level {
        b.parse_filters(l);
    }
    if let Some(p) = file {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| format!("log file {}: {e}", p.display()))?;
        b.target(env_logger::Target::Pipe(Box::new(f)));
    }
    b.format_timestamp_millis().init();
    Ok(())
}

/// `unmount` on Windows: the mount belongs to its process.
pub fn unmount(mountpoint: &Path, _lazy: bool) -> Result<(), String> {
    Err(format!(
        "{}: on Windows stop the hfcachefs process that serves it (Ctrl-C in its console, \
         or platform\\windows\\unregister.ps1 for a launcher or logon mount)",
        mountpoint.display()
    ))
}

/// `status` on Windows: not tracked.
pub fn status(_only: Option<&Path>, _json: bool) -> Result<(), String> {
    Err(
        "status is not available on Windows; the WinFsp launcher lists running mounts \
         (launchctl-x64.exe list)"
            .into(),
    )
}
