//! The command line as clap defines it: the subcommands, the `mount` flags, and the FUSE
//! form's parser. Help text, man pages and completions are all generated from these
//! definitions ([`super::generate`]), so what is written here is what users read.
//!
//! Invariant: a flag alias (`--read-only`, `--allow-other`, `-d`) means exactly the mount
//! option or flags it stands for ([`MountArgs::apply_aliases`]); nothing downstream looks at
//! the alias itself.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "hfcachefs",
    version,
    about = "Mount a Hugging Face hub cache with links resolved"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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

#[derive(Args, Debug)]
pub(crate) struct MountArgs {
    /// Stay in the foreground and log to stderr.
    #[arg(short, long)]
    pub(crate) foreground: bool,
    /// Foreground with debug logging (as -f --log-level debug).
    #[arg(short, long)]
    pub(crate) debug: bool,
    /// Mount options, comma-separated (may repeat); listed below.
    #[arg(short = 'o', value_name = "OPT[,OPT...]")]
    pub(crate) options: Vec<String>,
    /// Read-only (as -o ro).
    #[arg(long)]
    pub(crate) read_only: bool,
    /// Let other users (and Samba) in (as -o allow_other).
    #[arg(long)]
    pub(crate) allow_other: bool,
    /// Log level (error, warn, info, debug, trace); RUST_LOG also works.
    #[arg(long)]
    pub(crate) log_level: Option<String>,
    /// Log to this file (appended; reopened on SIGHUP) instead of syslog or stderr.
    #[arg(long)]
    pub(crate) log_file: Option<PathBuf>,
    /// The store and the mountpoint, or just the mountpoint.
    #[arg(num_args = 1..=2, required = true, value_name = "[SOURCE] MOUNTPOINT")]
    pub(crate) paths: Vec<PathBuf>,
}

impl MountArgs {
    /// Folds the flag aliases into the options they stand for.
    pub(crate) fn apply_aliases(&mut self) {
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
pub(crate) struct FuseForm {
    #[command(flatten)]
    pub(crate) args: MountArgs,
}

impl MountArgs {
    /// The store and mountpoint of `[SOURCE] MOUNTPOINT` (the default store when only the
    /// mountpoint is given) and the mount options parsed: what every platform's mount starts
    /// from.
    pub(crate) fn parse(
        &self,
    ) -> Result<(PathBuf, PathBuf, hfcachefs::config::MountConfig), String> {
        let (source, mountpoint) = match self.paths.as_slice() {
            [mp] => (default_store(), mp.clone()),
            [src, mp] => (src.clone(), mp.clone()),
            _ => return Err("expected [SOURCE] MOUNTPOINT".into()),
        };
        let mut cfg = hfcachefs::config::MountConfig::default();
        cfg.apply_options(&self.options)
            .map_err(|e| e.to_string())?;
        Ok((source, mountpoint, cfg))
    }
}

/// The store when none is given, as the hub's own clients find it: `$HF_HUB_CACHE`, then
/// `$HF_HOME/hub`, then `~/.cache/huggingface/hub`.
pub(crate) fn default_store() -> PathBuf {
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
