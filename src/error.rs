//! The core's error type. Adapters map it to errno (FUSE) or NTSTATUS (WinFsp) with an
//! exhaustive `match`, so a new variant cannot be forgotten by either.

use std::io;

#[cfg(windows)]
use crate::compat::libc;

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
            FsError::Unsupported => libc::EOPNOTSUPP,
            FsError::Store(e) => e.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

/// Result of a view operation.
pub type FsResult<T> = Result<T, FsError>;
