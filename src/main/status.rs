//! `hfcachefs status` (Unix): every mount the state dir or the mount table knows of, live,
//! stale or dead, as text, JSON, or live daemons' PIDs.
//!
//! Invariant: except with `--pids` (which only lists), the exit code is 1 whenever a listed
//! mount is not live or the one asked for is no hfcachefs mount, so scripts and monitoring
//! can rely on it without parsing.

use std::path::Path;

use hfcachefs::mount;

/// `hfcachefs status`: every mount the state dir or the mount table knows of, live, stale or
/// dead. Fails (exit 1) if any listed mount is not live, or if `only` is not an hfcachefs
/// mount; `pids` prints only the PIDs of live daemons (for `kill -HUP`).
pub(crate) fn status(only: Option<&Path>, json: bool, pids: bool) -> Result<(), String> {
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
