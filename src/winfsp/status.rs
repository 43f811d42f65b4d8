//! The NTSTATUS a Windows client sees for a core error ([`ntstatus`], exhaustive over
//! [`FsError`]). Pure, unit-tested on every platform.
//!
//! The NTSTATUS values and the errno ↔ NTSTATUS ↔ Win32 tables live below both the store and
//! this front end, in [`crate::nt`], and are re-exported here; the Windows store layer uses
//! them from there (`ENOENT` means "absent", `EEXIST` "taken", … for the core's decisions).

#[cfg(windows)]
use crate::compat::libc;
use crate::error::FsError;

pub use crate::nt::*;

/// The NTSTATUS a Windows client gets for a view error. Exhaustive, like
/// [`FsError::errno`]: a new variant cannot be forgotten.
pub fn ntstatus(e: &FsError) -> i32 {
    match e {
        FsError::NotFound => STATUS_OBJECT_NAME_NOT_FOUND,
        FsError::Exists => STATUS_OBJECT_NAME_COLLISION,
        FsError::NotDir => STATUS_NOT_A_DIRECTORY,
        FsError::IsDir => STATUS_FILE_IS_A_DIRECTORY,
        FsError::NotEmpty => STATUS_DIRECTORY_NOT_EMPTY,
        FsError::ReadOnly => STATUS_MEDIA_WRITE_PROTECTED,
        FsError::NotPermitted(_) => STATUS_ACCESS_DENIED,
        FsError::Stale => STATUS_FILE_INVALID,
        FsError::Invalid => STATUS_INVALID_PARAMETER,
        FsError::BadHandle => STATUS_INVALID_HANDLE,
        FsError::CrossStore => STATUS_NOT_SAME_DEVICE,
        FsError::Loop => STATUS_REPARSE_POINT_NOT_RESOLVED,
        FsError::Unsupported => STATUS_NOT_SUPPORTED,
        FsError::Store(e) => errno_to_ntstatus(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn is_error(s: i32) -> bool {
        (s as u32) >> 30 == 3
    }

    #[test]
    fn every_view_error_is_an_error_status() {
        let all = [
            FsError::NotFound,
            FsError::Exists,
            FsError::NotDir,
            FsError::IsDir,
            FsError::NotEmpty,
            FsError::ReadOnly,
            FsError::NotPermitted("x"),
            FsError::Stale,
            FsError::Invalid,
            FsError::BadHandle,
            FsError::CrossStore,
            FsError::Loop,
            FsError::Unsupported,
            FsError::Store(io::Error::from_raw_os_error(libc::ENOSPC)),
            FsError::Store(io::Error::other("no errno")),
        ];
        for e in &all {
            assert!(is_error(ntstatus(e)), "{e:?} -> {:#x}", ntstatus(e));
        }
        assert_eq!(ntstatus(&FsError::NotFound), STATUS_OBJECT_NAME_NOT_FOUND);
        assert_eq!(
            ntstatus(&FsError::NotPermitted("blob")),
            STATUS_ACCESS_DENIED
        );
        assert_eq!(ntstatus(&FsError::ReadOnly), STATUS_MEDIA_WRITE_PROTECTED);
        assert_eq!(
            ntstatus(&FsError::Store(io::Error::other("x"))),
            STATUS_IO_DEVICE_ERROR
        );
    }

    #[test]
    fn view_errors_agree_with_their_errno() {
        // The NTSTATUS of a view error equals that of its errno, except where Windows has a
        // more precise code (not permitted vs. access denied are the same for Windows).
        for e in [
            FsError::NotFound,
            FsError::Exists,
            FsError::NotDir,
            FsError::IsDir,
            FsError::NotEmpty,
            FsError::ReadOnly,
            FsError::Stale,
            FsError::Invalid,
            FsError::BadHandle,
            FsError::CrossStore,
            FsError::Loop,
            FsError::Unsupported,
        ] {
            assert_eq!(ntstatus(&e), errno_to_ntstatus(e.errno()), "{e:?}");
        }
    }
}
