//! Detaching a mount from the terminal (Unix): fork, a new session, stdio onto the log.
//!
//! Invariants: [`daemonize`] runs before any thread exists (the child of a fork may only
//! continue ordinary code if it owns every lock); the parent's exit code and message are
//! what the child reported about the mount (live, or why not), or that it died first.

use std::io::Read;

/// Forks: the parent waits until the child reports the mount live (exit 0) or failed (its
/// message, exit 1); the child carries on detached. Must run before any thread exists.
pub(crate) fn daemonize(log_file: Option<&std::fs::File>) -> Result<std::io::PipeWriter, String> {
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
