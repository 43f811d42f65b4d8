//! Mount configuration and the `-o` option language.
//!
//! [`MountConfig`] is what a mount needs; [`MountConfig::apply_options`] parses `-o` lists
//! as `mount(8)`, fstab and `mount.fuse3` pass them. Unknown options are an error that lists
//! the known ones: a typo in fstab must not mount with surprising behaviour.

use std::time::Duration;

use crate::view::ViewConfig;

/// Everything a mount needs besides the source and the mountpoint.
#[derive(Clone, Debug)]
pub struct MountConfig {
    /// The view's behaviour.
    pub view: ViewConfig,
    /// Let other users access the mount (`allow_other`).
    pub allow_other: bool,
    /// Let root access the mount (`allow_root`).
    pub allow_root: bool,
    /// Let the kernel check permissions from the shown mode bits. On by default with
    /// `allow_other`, so one user cannot read another's private files.
    pub default_permissions: bool,
    /// Mount over a non-empty mountpoint (`nonempty`), hiding its entries.
    pub nonempty: bool,
    /// Generic kernel mount flags passed through (`nodev`, `noexec`, `noatime`, …).
    pub kernel_flags: Vec<String>,
    /// Name shown as the mount source (defaults to the store path).
    pub fsname: Option<String>,
    /// FUSE worker threads.
    pub threads: usize,
    /// Kernel passthrough of file I/O: `Some` if asked for explicitly, `None` to decide by the
    /// store (on by default, off for stores on another FUSE file system such as sshfs, where
    /// it doubles the round trips and loses the page cache).
    pub passthrough: Option<bool>,
    /// Zero-message opens (`noopen`, read-only mounts): the kernel opens files without asking
    /// the daemon and keeps their pages; reads that need bytes open the store file themselves.
    /// Warm opens cost no request at all, at the price of kernel passthrough.
    pub noopen: bool,
}

impl Default for MountConfig {
    fn default() -> Self {
        MountConfig {
            view: ViewConfig::default(),
            allow_other: false,
            allow_root: false,
            default_permissions: false,
            nonempty: false,
            kernel_flags: Vec::new(),
            fsname: None,
            threads: 4,
            passthrough: None,
            noopen: false,
        }
    }
}

/// A bad `-o` option.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    /// Not an option hfcachefs knows.
    #[error("unknown mount option '{0}' (known: {KNOWN})")]
    Unknown(String),
    /// A known option with a bad value.
    #[error("bad value in mount option '{0}': {1}")]
    BadValue(String, &'static str),
    /// Two options that contradict each other.
    #[error("mount options '{0}' and '{1}' contradict each other")]
    Conflict(&'static str, &'static str),
    /// An option that only works together with another.
    #[error("mount option '{0}' needs '{1}' ({2})")]
    Needs(&'static str, &'static str, &'static str),
}

/// Every option `-o` accepts, for errors and `mount --help`.
pub const KNOWN: &str = "ro, rw, allow_other, allow_root, default_permissions, nonempty, uid=N, gid=N, \
fsname=NAME, subtype=NAME, entry_timeout=SECS, attr_timeout=SECS, blob_timeout=SECS, immutable_timeout=SECS, \
threads=N, xsym, dedupe, nodedupe, passthrough, nopassthrough, noopen, dev, nodev, suid, nosuid, exec, noexec, atime, noatime, \
sync, async, dirsync; ignored for fstab: defaults, auto, noauto, user, users, nouser, owner, \
_netdev, nofail, comment=…, x-…";

impl MountConfig {
    /// Applies every option of the comma-separated lists in `lists`.
    pub fn apply_options<S: AsRef<str>>(&mut self, lists: &[S]) -> Result<(), OptionError> {
        let mut saw_ro = false;
        let mut saw_rw = false;
        for list in lists {
            for opt in list
                .as_ref()
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
            {
                let (key, value) = match opt.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (opt, None),
                };
                match (key, value) {
                    ("ro", None) => {
                        saw_ro = true;
                        self.view.read_only = true;
                    }
                    ("rw", None) => {
                        saw_rw = true;
                        self.view.read_only = false;
                    }
                    ("allow_other", None) => self.allow_other = true,
                    ("allow_root", None) => self.allow_root = true,
                    ("default_permissions", None) => self.default_permissions = true,
                    ("nonempty", None) => self.nonempty = true,
                    ("uid", Some(v)) => self.view.uid = Some(number(opt, v)?),
                    ("gid", Some(v)) => self.view.gid = Some(number(opt, v)?),
                    ("fsname", Some(v)) => self.fsname = Some(v.to_string()),
                    ("subtype", Some(_)) => {}
                    ("entry_timeout", Some(v)) => self.view.entry_ttl = seconds(opt, v)?,
                    ("attr_timeout", Some(v)) => self.view.attr_ttl = seconds(opt, v)?,
                    ("blob_timeout", Some(v)) => self.view.blob_attr_ttl = seconds(opt, v)?,
                    ("immutable_timeout", Some(v)) => {
                        self.view.immutable_entry_ttl = seconds(opt, v)?
                    }
                    ("threads", Some(v)) => {
                        let n: u32 = number(opt, v)?;
                        if n == 0 || n > 64 {
                            return Err(OptionError::BadValue(
                                opt.into(),
                                "threads must be 1 to 64",
                            ));
                        }
                        self.threads = n as usize;
                    }
                    ("xsym", None) => self.view.xsym = true,
                    ("dedupe" | "nodedupe", None) => self.view.dedupe = key == "dedupe",
                    ("passthrough", None) => self.passthrough = Some(true),
                    ("nopassthrough", None) => self.passthrough = Some(false),
                    ("noopen", None) => self.noopen = true,
                    (
                        "dev" | "nodev" | "suid" | "nosuid" | "exec" | "noexec" | "atime"
                        | "noatime" | "sync" | "async" | "dirsync",
                        None,
                    ) => {
                        if !self.kernel_flags.iter().any(|f| f == key) {
                            self.kernel_flags.push(key.to_string());
                        }
                    }
                    (
                        "defaults" | "auto" | "noauto" | "user" | "users" | "nouser" | "owner"
                        | "group" | "_netdev" | "nofail" | "relatime" | "norelatime"
                        | "strictatime",
                        None,
                    ) => {}
                    ("comment", Some(_)) => {}
                    (k, _) if k.starts_with("x-") => {}
                    _ => return Err(OptionError::Unknown(opt.to_string())),
                }
            }
        }
        if saw_ro && saw_rw {
            return Err(OptionError::Conflict("ro", "rw"));
        }
        if self.allow_other && self.allow_root {
            return Err(OptionError::Conflict("allow_other", "allow_root"));
        }
        if self.allow_other {
            self.default_permissions = true;
        }
        if self.noopen {
            // Without opens the daemon sees no writer's handle, and the kernel could not tell
            // it which file a write is for: only read-only mounts qualify.
            if !self.view.read_only {
                return Err(OptionError::Needs(
                    "noopen",
                    "ro",
                    "a mount without opens cannot take writes",
                ));
            }
            if self.passthrough == Some(true) {
                return Err(OptionError::Conflict("noopen", "passthrough"));
            }
            // Passthrough needs an open to name the backing file.
            self.passthrough = Some(false);
        }
        Ok(())
    }
}

fn number<T: std::str::FromStr>(opt: &str, v: &str) -> Result<T, OptionError> {
    v.parse()
        .map_err(|_| OptionError::BadValue(opt.into(), "expected a whole number"))
}

fn seconds(opt: &str, v: &str) -> Result<Duration, OptionError> {
    let s: f64 = v
        .parse()
        .map_err(|_| OptionError::BadValue(opt.into(), "expected seconds, e.g. 1 or 0.5"))?;
    if !(0.0..=86_400.0).contains(&s) {
        return Err(OptionError::BadValue(
            opt.into(),
            "seconds must be 0 to 86400",
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_style_options() {
        let mut c = MountConfig::default();
        c.apply_options(&[
            "ro,allow_other,_netdev,nofail,x-systemd.requires-mounts-for=/mnt",
            "uid=1000,gid=1000,noatime",
        ])
        .unwrap();
        assert!(c.view.read_only);
        assert!(c.allow_other && c.default_permissions);
        assert_eq!(c.view.uid, Some(1000));
        assert_eq!(c.kernel_flags, vec!["noatime"]);
    }

    #[test]
    fn unknown_and_bad_options_are_errors() {
        let mut c = MountConfig::default();
        let e = c.apply_options(&["ro,bogus"]).unwrap_err();
        assert_eq!(e, OptionError::Unknown("bogus".into()));
        assert!(e.to_string().contains("known:"));
        assert!(matches!(
            MountConfig::default().apply_options(&["uid=abc"]),
            Err(OptionError::BadValue(..))
        ));
        assert!(matches!(
            MountConfig::default().apply_options(&["ro,rw"]),
            Err(OptionError::Conflict(..))
        ));
        assert!(
            MountConfig::default()
                .apply_options(&["threads=0"])
                .is_err()
        );
        assert!(
            MountConfig::default()
                .apply_options(&["attr_timeout=-1"])
                .is_err()
        );
    }

    #[test]
    fn noopen_needs_a_read_only_mount_and_turns_passthrough_off() {
        let e = MountConfig::default()
            .apply_options(&["noopen"])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "mount option 'noopen' needs 'ro' (a mount without opens cannot take writes)"
        );
        assert_eq!(
            MountConfig::default().apply_options(&["ro,noopen,passthrough"]),
            Err(OptionError::Conflict("noopen", "passthrough"))
        );
        let mut c = MountConfig::default();
        c.apply_options(&["ro,noopen"]).unwrap();
        assert!(c.noopen);
        assert_eq!(c.passthrough, Some(false));
    }

    #[test]
    fn timeouts() {
        let mut c = MountConfig::default();
        c.apply_options(&["attr_timeout=0.5,entry_timeout=0,blob_timeout=600"])
            .unwrap();
        assert_eq!(c.view.attr_ttl, Duration::from_millis(500));
        assert_eq!(c.view.entry_ttl, Duration::ZERO);
        assert_eq!(c.view.blob_attr_ttl, Duration::from_secs(600));
    }
}
