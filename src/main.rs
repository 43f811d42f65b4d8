//! The `hfcachefs` command: turns the command line into a [`MountConfig`] and runs it.
//!
//! Two forms are accepted: `hfcachefs mount [-f] [-o OPTS] [SOURCE] MOUNTPOINT` (and the other
//! subcommands), and the FUSE convention `hfcachefs SOURCE MOUNTPOINT [-o OPTS]` that
//! `mount -t fuse.hfcachefs` and fstab use. The FUSE form is recognised only in exactly that
//! shape ([`is_fuse_form`]); any other first word that is not a subcommand is an error with a
//! suggestion, never a mount.
//!
//! This file only dispatches; the parts live in `src/main/`: [`args`] (the clap
//! definitions), [`form`] (which form a command line has), [`generate`] (man pages and
//! completions), and the mount itself: on Unix `serve` (with `logging` and `daemon`) and
//! `status`, on Windows `windows`. Exit codes: 0 done, 1 failed, 2 usage error; the cache
//! tools keep their own ([`hfcachefs::tools`]).
//!
//! [`MountConfig`]: hfcachefs::config::MountConfig

// Every `unsafe` block says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::process::ExitCode;

use clap::Parser;

#[path = "main/args.rs"]
mod args;
#[cfg(unix)]
#[path = "main/daemon.rs"]
mod daemon;
#[path = "main/form.rs"]
mod form;
#[path = "main/generate.rs"]
mod generate;
#[cfg(unix)]
#[path = "main/logging.rs"]
mod logging;
#[cfg(unix)]
#[path = "main/serve.rs"]
mod serve;
#[cfg(unix)]
#[path = "main/status.rs"]
mod status;
#[cfg(windows)]
#[path = "main/windows.rs"]
mod windows;

use args::{Cli, Command, FuseForm, default_store};
use form::{SUBCOMMANDS, is_fuse_form, not_a_command};
use generate::generate;
#[cfg(unix)]
use hfcachefs::mount;
#[cfg(unix)]
use logging::init_log;
#[cfg(unix)]
use serve::run_mount;
#[cfg(unix)]
use status::status;
#[cfg(windows)]
use windows::{run_mount, status, unmount};

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
