//! Error translation between the core (errno, [`FsError`]) and Windows (NTSTATUS, Win32
//! error codes). Pure tables, unit-tested on every platform.
//!
//! Direction of use: the Windows store layer turns NTSTATUS and Win32 errors of the store
//! into errno values ([`nt_to_errno`], [`win32_to_errno`]) so the core's decisions
//! (`ENOENT` means "absent", `EEXIST` "taken", …) hold unchanged; the WinFsp adapter turns
//! the core's [`FsError`] into the NTSTATUS a Windows client sees ([`ntstatus`]). Codes not
//! in a table become `EIO` / `STATUS_IO_DEVICE_ERROR`.

#[cfg(windows)]
use crate::compat::libc;
use crate::error::FsError;

macro_rules! statuses {
    ($($name:ident = $v:expr;)*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`")]
            pub const $name: i32 = $v as u32 as i32;
        )*
    };
}

statuses! {
    STATUS_SUCCESS = 0x0000_0000u32;
    STATUS_INVALID_HANDLE = 0xC000_0008u32;
    STATUS_INVALID_PARAMETER = 0xC000_000Du32;
    STATUS_INVALID_DEVICE_REQUEST = 0xC000_0010u32;
    STATUS_END_OF_FILE = 0xC000_0011u32;
    STATUS_ACCESS_DENIED = 0xC000_0022u32;
    STATUS_OBJECT_NAME_INVALID = 0xC000_0033u32;
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC000_0034u32;
    STATUS_OBJECT_NAME_COLLISION = 0xC000_0035u32;
    STATUS_OBJECT_PATH_NOT_FOUND = 0xC000_003Au32;
    STATUS_SHARING_VIOLATION = 0xC000_0043u32;
    STATUS_FILE_LOCK_CONFLICT = 0xC000_0054u32;
    STATUS_DELETE_PENDING = 0xC000_0056u32;
    STATUS_PRIVILEGE_NOT_HELD = 0xC000_0061u32;
    STATUS_DISK_FULL = 0xC000_007Fu32;
    STATUS_FILE_INVALID = 0xC000_0098u32;
    STATUS_INSUFFICIENT_RESOURCES = 0xC000_009Au32;
    STATUS_MEDIA_WRITE_PROTECTED = 0xC000_00A2u32;
    STATUS_IO_TIMEOUT = 0xC000_00B5u32;
    STATUS_FILE_IS_A_DIRECTORY = 0xC000_00BAu32;
    STATUS_NOT_SUPPORTED = 0xC000_00BBu32;
    STATUS_NOT_SAME_DEVICE = 0xC000_00D4u32;
    STATUS_DIRECTORY_NOT_EMPTY = 0xC000_0101u32;
    STATUS_NOT_A_DIRECTORY = 0xC000_0103u32;
    STATUS_NAME_TOO_LONG = 0xC000_0106u32;
    STATUS_TOO_MANY_OPENED_FILES = 0xC000_011Fu32;
    STATUS_CANCELLED = 0xC000_0120u32;
    STATUS_CANNOT_DELETE = 0xC000_0121u32;
    STATUS_IO_DEVICE_ERROR = 0xC000_0185u32;
    STATUS_NOT_A_REPARSE_POINT = 0xC000_0275u32;
    STATUS_IO_REPARSE_TAG_NOT_HANDLED = 0xC000_0279u32;
    STATUS_IO_REPARSE_DATA_INVALID = 0xC000_0278u32;
    STATUS_REPARSE_POINT_NOT_RESOLVED = 0xC000_0280u32;
    STATUS_FILE_TOO_LARGE = 0xC000_0904u32;
    STATUS_STOPPED_ON_SYMLINK = 0x8000_002Du32;
    STATUS_NETWORK_NAME_DELETED = 0xC000_00C9u32;
    STATUS_BAD_NETWORK_PATH = 0xC000_00BEu32;
    STATUS_BAD_NETWORK_NAME = 0xC000_00CCu32;
}

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

/// errno ↔ NTSTATUS pairs; the first pair with a given errno (or status) is the canonical
/// translation in that direction.
fn errno_status() -> [(i32, i32); 27] {
    [
        (libc::ENOENT, STATUS_OBJECT_NAME_NOT_FOUND),
        (libc::EEXIST, STATUS_OBJECT_NAME_COLLISION),
        (libc::ENOTDIR, STATUS_NOT_A_DIRECTORY),
        (libc::EISDIR, STATUS_FILE_IS_A_DIRECTORY),
        (libc::ENOTEMPTY, STATUS_DIRECTORY_NOT_EMPTY),
        (libc::EACCES, STATUS_ACCESS_DENIED),
        (libc::EPERM, STATUS_ACCESS_DENIED),
        (libc::EROFS, STATUS_MEDIA_WRITE_PROTECTED),
        (libc::ENOSPC, STATUS_DISK_FULL),
        (libc::ENAMETOOLONG, STATUS_NAME_TOO_LONG),
        (libc::EINVAL, STATUS_INVALID_PARAMETER),
        (libc::EBADF, STATUS_INVALID_HANDLE),
        (libc::EXDEV, STATUS_NOT_SAME_DEVICE),
        (libc::EOPNOTSUPP, STATUS_NOT_SUPPORTED),
        (libc::ENOSYS, STATUS_INVALID_DEVICE_REQUEST),
        (libc::EBUSY, STATUS_SHARING_VIOLATION),
        (libc::EAGAIN, STATUS_FILE_LOCK_CONFLICT),
        (libc::ENOMEM, STATUS_INSUFFICIENT_RESOURCES),
        (libc::EMFILE, STATUS_TOO_MANY_OPENED_FILES),
        (libc::ETIMEDOUT, STATUS_IO_TIMEOUT),
        (libc::EINTR, STATUS_CANCELLED),
        (libc::EFBIG, STATUS_FILE_TOO_LARGE),
        (libc::ELOOP, STATUS_REPARSE_POINT_NOT_RESOLVED),
        (libc::ESTALE, STATUS_FILE_INVALID),
        (libc::EIO, STATUS_IO_DEVICE_ERROR),
        (libc::ENOENT, STATUS_OBJECT_PATH_NOT_FOUND),
        (libc::ENOENT, STATUS_DELETE_PENDING),
    ]
}

/// The NTSTATUS for an errno from the store.
pub fn errno_to_ntstatus(errno: i32) -> i32 {
    errno_status()
        .iter()
        .find(|(e, _)| *e == errno)
        .map_or(STATUS_IO_DEVICE_ERROR, |(_, s)| *s)
}

/// The errno for an NTSTATUS from the store (`NtCreateFile`, `NtSetInformationFile`, …).
pub fn nt_to_errno(status: i32) -> i32 {
    let extra = [
        (libc::ELOOP, STATUS_STOPPED_ON_SYMLINK),
        (libc::ELOOP, STATUS_IO_REPARSE_TAG_NOT_HANDLED),
        (libc::EINVAL, STATUS_NOT_A_REPARSE_POINT),
        (libc::EINVAL, STATUS_OBJECT_NAME_INVALID),
        (libc::EPERM, STATUS_PRIVILEGE_NOT_HELD),
        (libc::EPERM, STATUS_CANNOT_DELETE),
        (libc::EIO, STATUS_NETWORK_NAME_DELETED),
        (libc::ENOENT, STATUS_BAD_NETWORK_PATH),
        (libc::ENOENT, STATUS_BAD_NETWORK_NAME),
    ];
    errno_status()
        .iter()
        .chain(extra.iter())
        .find(|(_, s)| *s == status)
        .map_or(libc::EIO, |(e, _)| *e)
}

/// The errno for a Win32 error code (what `std` and the Win32 API report).
pub fn win32_to_errno(code: u32) -> i32 {
    let table: [(u32, i32); 36] = [
        (1, libc::ENOSYS),         // ERROR_INVALID_FUNCTION
        (2, libc::ENOENT),         // ERROR_FILE_NOT_FOUND
        (3, libc::ENOENT),         // ERROR_PATH_NOT_FOUND
        (4, libc::EMFILE),         // ERROR_TOO_MANY_OPEN_FILES
        (5, libc::EACCES),         // ERROR_ACCESS_DENIED
        (6, libc::EBADF),          // ERROR_INVALID_HANDLE
        (8, libc::ENOMEM),         // ERROR_NOT_ENOUGH_MEMORY
        (17, libc::EXDEV),         // ERROR_NOT_SAME_DEVICE
        (19, libc::EROFS),         // ERROR_WRITE_PROTECT
        (32, libc::EBUSY),         // ERROR_SHARING_VIOLATION
        (33, libc::EAGAIN),        // ERROR_LOCK_VIOLATION
        (39, libc::ENOSPC),        // ERROR_HANDLE_DISK_FULL
        (50, libc::EOPNOTSUPP),    // ERROR_NOT_SUPPORTED
        (53, libc::ENOENT),        // ERROR_BAD_NETPATH
        (64, libc::EIO),           // ERROR_NETNAME_DELETED
        (67, libc::ENOENT),        // ERROR_BAD_NET_NAME
        (80, libc::EEXIST),        // ERROR_FILE_EXISTS
        (87, libc::EINVAL),        // ERROR_INVALID_PARAMETER
        (112, libc::ENOSPC),       // ERROR_DISK_FULL
        (120, libc::ENOSYS),       // ERROR_CALL_NOT_IMPLEMENTED
        (121, libc::ETIMEDOUT),    // ERROR_SEM_TIMEOUT
        (123, libc::EINVAL),       // ERROR_INVALID_NAME
        (145, libc::ENOTEMPTY),    // ERROR_DIR_NOT_EMPTY
        (170, libc::EBUSY),        // ERROR_BUSY
        (183, libc::EEXIST),       // ERROR_ALREADY_EXISTS
        (206, libc::ENAMETOOLONG), // ERROR_FILENAME_EXCED_RANGE
        (223, libc::EFBIG),        // ERROR_FILE_TOO_LARGE
        (267, libc::ENOTDIR),      // ERROR_DIRECTORY
        (303, libc::ENOENT),       // ERROR_DELETE_PENDING
        (336, libc::EISDIR),       // ERROR_DIRECTORY_NOT_SUPPORTED
        (681, libc::ELOOP),        // ERROR_STOPPED_ON_SYMLINK
        (1314, libc::EPERM),       // ERROR_PRIVILEGE_NOT_HELD
        (1920, libc::EACCES),      // ERROR_CANT_ACCESS_FILE
        (1921, libc::ELOOP),       // ERROR_CANT_RESOLVE_FILENAME
        (4390, libc::EINVAL),      // ERROR_NOT_A_REPARSE_POINT
        (1463, libc::ELOOP),       // ERROR_SYMLINK_NOT_SUPPORTED
    ];
    table
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(libc::EIO, |(_, e)| *e)
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

    #[test]
    fn errno_round_trips_through_ntstatus() {
        for (errno, _) in errno_status() {
            let back = nt_to_errno(errno_to_ntstatus(errno));
            let same_status = errno_to_ntstatus(back) == errno_to_ntstatus(errno);
            assert!(back == errno || same_status, "errno {errno}");
        }
        assert_eq!(nt_to_errno(STATUS_OBJECT_PATH_NOT_FOUND), libc::ENOENT);
        assert_eq!(nt_to_errno(STATUS_STOPPED_ON_SYMLINK), libc::ELOOP);
        assert_eq!(nt_to_errno(0x1234_5678), libc::EIO);
        assert_eq!(errno_to_ntstatus(123_456), STATUS_IO_DEVICE_ERROR);
    }

    #[test]
    fn win32_codes() {
        assert_eq!(win32_to_errno(2), libc::ENOENT);
        assert_eq!(win32_to_errno(183), libc::EEXIST);
        assert_eq!(win32_to_errno(145), libc::ENOTEMPTY);
        assert_eq!(win32_to_errno(1463), libc::ELOOP, "WinError 1463");
        assert_eq!(win32_to_errno(99_999), libc::EIO);
    }
}
