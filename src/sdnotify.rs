//! systemd's service protocol, the two parts a mount daemon needs, without a dependency:
//! readiness (`sd_notify`: a datagram such as `READY=1` to the socket named by
//! `NOTIFY_SOCKET`) and journal priorities (`<N>` line prefixes on stderr when stderr is
//! the journal stream named by `JOURNAL_STREAM`).
//!
//! Invariants: without `NOTIFY_SOCKET` nothing is sent; priority prefixes are written only
//! when stderr *is* the stream `JOURNAL_STREAM` names (device and inode match), so a child
//! that inherited the variable but logs to a file or terminal writes plain lines.

use std::io;
use std::os::unix::net::UnixDatagram;

/// Sends `state` (newline-separated `KEY=VALUE` pairs) to the service manager. `Ok(false)`
/// when not started by one (no `NOTIFY_SOCKET`).
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET").filter(|p| !p.is_empty()) else {
        return Ok(false);
    };
    let sock = UnixDatagram::unbound()?;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket (Linux only): '@' stands for the leading NUL byte.
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
            return Ok(true);
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return Err(io::Error::other(
                "abstract NOTIFY_SOCKET on a system without them",
            ));
        }
    }
    sock.send_to(state.as_bytes(), &path)?;
    Ok(true)
}

/// True if stderr is the journal stream named by `JOURNAL_STREAM` (`DEVICE:INODE`).
// The casts are no-ops on Linux; st_dev/st_ino are narrower or signed elsewhere.
#[allow(clippy::unnecessary_cast)]
pub fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var("JOURNAL_STREAM").ok() else {
        return false;
    };
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    use std::os::fd::AsFd;
    let stderr = io::stderr();
    rustix::fs::fstat(stderr.as_fd())
        .is_ok_and(|st| st.st_dev as u64 == dev && st.st_ino as u64 == ino)
}

/// The syslog priority journald reads from a `<N>` line prefix.
pub fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_syslogs() {
        assert_eq!(priority(log::Level::Error), 3);
        assert_eq!(priority(log::Level::Warn), 4);
        assert_eq!(priority(log::Level::Info), 6);
        assert_eq!(priority(log::Level::Trace), 7);
    }
}
