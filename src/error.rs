//! The core's error type and how a failed request is reported.
//!
//! [`FsError`] is what the core decides; adapters map it to errno (FUSE) or NTSTATUS (WinFsp)
//! with an exhaustive `match`, so a new variant cannot be forgotten by either. Each error
//! knows how loudly it is logged ([`FsError::level`]): answers a client expects in normal
//! work (not found, exists) at debug, refusals and stale handles at info, store failures
//! at warn.
//!
//! A failed request becomes an [`OpError`] at the adapter boundary ([`FsError::during`]):
//! the error with the operation and the object (view inode, name) it was applied to. Both
//! adapters log it through the one macro [`fs_error!`](crate::fs_error), which adds the
//! object's store path from the view, only when the message is logged at all.
//!
//! Invariant: building an [`OpError`] costs no lookup and no allocation beyond the name's
//! copy; the store path is looked up only for a message that is logged.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;

use log::Level;

#[cfg(windows)]
use crate::compat::libc;
use crate::path::StorePath;
use crate::view::Ino;

/// An error of a view operation.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// No such entry (also for hidden odd entries).
    #[error("no such file or directory")]
    NotFound,
    /// The name exists already.
    #[error("file exists")]
    Exists,
    /// A directory was expected.
    #[error("not a directory")]
    NotDir,
    /// A non-directory was expected.
    #[error("is a directory")]
    IsDir,
    /// The directory is not empty.
    #[error("directory not empty")]
    NotEmpty,
    /// The mount is read-only.
    #[error("read-only mount")]
    ReadOnly,
    /// Refused by the view's rules (e.g. writing a shared blob).
    #[error("operation not permitted: {0}")]
    NotPermitted(&'static str),
    /// The inode or handle no longer matches the store.
    #[error("stale file handle")]
    Stale,
    /// Bad argument (e.g. `readlink` of a regular file).
    #[error("invalid argument")]
    Invalid,
    /// Unknown file handle.
    #[error("bad file handle")]
    BadHandle,
    /// A target outside the store.
    #[error("target outside the store")]
    CrossStore,
    /// A link (or a directory shown through one) would lead into a loop.
    #[error("too many levels of symbolic links")]
    Loop,
    /// Not supported by the view.
    #[error("operation not supported")]
    Unsupported,
    /// The store (or the OS) returned this error; passed through unchanged.
    #[error("store: {0}")]
    Store(#[from] io::Error),
}

#[cfg(unix)]
impl From<rustix::io::Errno> for FsError {
    fn from(e: rustix::io::Errno) -> Self {
        FsError::Store(e.into())
    }
}

impl FsError {
    /// The errno this error is reported as on POSIX systems (on Windows, the errno the
    /// WinFsp adapter turns into an NTSTATUS).
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Exists => libc::EEXIST,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::ReadOnly => libc::EROFS,
            FsError::NotPermitted(_) => libc::EPERM,
            FsError::Stale => libc::ESTALE,
            FsError::Invalid => libc::EINVAL,
            FsError::BadHandle => libc::EBADF,
            FsError::CrossStore => libc::EXDEV,
            FsError::Loop => libc::ELOOP,
            FsError::Unsupported => libc::EOPNOTSUPP,
            FsError::Store(e) => e.raw_os_error().unwrap_or(libc::EIO),
        }
    }

    /// How loudly a request that failed with this error is logged: debug for answers that
    /// normal work produces (absent, taken, not empty — also when the store said so); info
    /// for refusals, wrong types and stale handles (a client's or the kernel's view is
    /// out of date); warn for handles the view does not know and for other store failures.
    pub fn level(&self) -> Level {
        match self {
            FsError::NotFound | FsError::Exists | FsError::NotEmpty => Level::Debug,
            FsError::NotDir
            | FsError::IsDir
            | FsError::ReadOnly
            | FsError::NotPermitted(_)
            | FsError::Stale
            | FsError::Invalid
            | FsError::CrossStore
            | FsError::Loop
            | FsError::Unsupported => Level::Info,
            FsError::BadHandle => Level::Warn,
            FsError::Store(e) => match e.raw_os_error() {
                Some(libc::ENOENT | libc::EEXIST | libc::ENOTEMPTY) => Level::Debug,
                Some(
                    libc::EACCES
                    | libc::EPERM
                    | libc::EAGAIN
                    | libc::EROFS
                    | libc::EXDEV
                    | libc::ELOOP
                    | libc::ENAMETOOLONG
                    | libc::ENOTDIR
                    | libc::EISDIR
                    | libc::EINVAL
                    | libc::ESTALE
                    | libc::EBUSY,
                ) => Level::Info,
                _ => Level::Warn,
            },
        }
    }

    /// This error as the failure of operation `op` on `ino` (see [`OpError`]).
    pub fn during(self, op: &'static str, ino: impl Into<Option<Ino>>) -> OpError {
        OpError {
            op,
            ino: ino.into(),
            name: None,
            path: None,
            error: self,
        }
    }
}

/// A failed request: the core's error with the operation and the object it was applied to.
#[derive(Debug)]
pub struct OpError {
    /// The operation (`"lookup"`, `"open"`, …).
    pub op: &'static str,
    /// The view inode the operation was applied to (the parent, for operations on a name).
    pub ino: Option<Ino>,
    /// The name within `ino`, for operations on a name.
    pub name: Option<OsString>,
    /// The store path of the object, when known (see [`fs_error!`](crate::fs_error)).
    pub path: Option<StorePath>,
    /// What went wrong.
    pub error: FsError,
}

impl OpError {
    /// The same failure, on `name` within the inode.
    pub fn name(mut self, name: &OsStr) -> OpError {
        self.name = Some(name.to_os_string());
        self
    }

    /// How loudly it is logged (see [`FsError::level`]).
    pub fn level(&self) -> Level {
        self.error.level()
    }

    /// The errno it is reported as.
    pub fn errno(&self) -> i32 {
        self.error.errno()
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        if let Some(ino) = self.ino {
            write!(f, " {ino}")?;
        }
        if let Some(path) = &self.path {
            write!(f, " ({path})")?;
        }
        if let Some(name) = &self.name {
            write!(f, " name {name:?}")?;
        }
        write!(f, ": {}", self.error)
    }
}

/// Logs a failed request ([`OpError`]) at its level, with the store path of its inode from
/// `$view` (a [`CacheView`](crate::view::CacheView)) looked up only if the message is
/// logged. The one place both adapters log failures.
#[macro_export]
macro_rules! fs_error {
    ($view:expr, $err:expr) => {{
        let err: &mut $crate::error::OpError = $err;
        let level = err.level();
        if ::log::log_enabled!(level) {
            if err.path.is_none() {
                err.path = err.ino.and_then(|ino| $view.store_path(ino));
            }
            ::log::log!(level, "{err}");
        }
    }};
}

/// Result of a view operation.
pub type FsResult<T> = Result<T, FsError>;

/// [`FsError::during`] for results, so an adapter names each request's operation and object
/// where it calls the core.
pub trait ResultExt<T> {
    /// The error as the failure of `op` on `ino`.
    fn during(self, op: &'static str, ino: impl Into<Option<Ino>>) -> Result<T, OpError>;
    /// The error as the failure of `op` on `name` in directory `dir`.
    fn during_at(self, op: &'static str, dir: Ino, name: &OsStr) -> Result<T, OpError>;
}

impl<T> ResultExt<T> for FsResult<T> {
    fn during(self, op: &'static str, ino: impl Into<Option<Ino>>) -> Result<T, OpError> {
        self.map_err(|e| e.during(op, ino))
    }

    fn during_at(self, op: &'static str, dir: Ino, name: &OsStr) -> Result<T, OpError> {
        self.map_err(|e| e.during(op, dir).name(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_what_failed() {
        let e = FsError::Stale.during("getattr", Ino(5));
        assert_eq!(e.to_string(), "getattr inode 5: stale file handle");
        let mut e = FsError::NotFound
            .during("lookup", Ino(1))
            .name(OsStr::new("x"));
        e.path = StorePath::root().join(OsStr::new("models--a--b"));
        assert_eq!(
            e.to_string(),
            "lookup inode 1 (/models--a--b) name \"x\": no such file or directory"
        );
        assert_eq!(FsError::Loop.during("symlink", None).errno(), libc::ELOOP);
    }

    #[test]
    fn levels_follow_how_normal_the_failure_is() {
        assert_eq!(FsError::NotFound.level(), Level::Debug);
        assert_eq!(FsError::Exists.level(), Level::Debug);
        let store = |n| FsError::Store(io::Error::from_raw_os_error(n));
        assert_eq!(store(libc::ENOENT).level(), Level::Debug);
        assert_eq!(FsError::Stale.level(), Level::Info);
        assert_eq!(store(libc::EACCES).level(), Level::Info);
        assert_eq!(store(libc::EIO).level(), Level::Warn);
        assert_eq!(FsError::Store(io::Error::other("x")).level(), Level::Warn);
        assert_eq!(FsError::BadHandle.level(), Level::Warn);
    }
}
