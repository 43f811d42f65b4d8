//! Windows' NT vocabulary, pure and unit-tested on every platform: NTSTATUS values, the
//! errno ↔ NTSTATUS ↔ Win32 error translation tables, and FILETIME conversion. It lies below
//! both users — the Windows store layer (`store::win`, which turns NTSTATUS and Win32 errors
//! of the store into errno values so the core's decisions hold unchanged) and the WinFsp
//! front end (`winfsp::status`, which turns the core's errors into the NTSTATUS a client
//! sees) — so the store depends on no front end.
//!
//! Invariants: codes not in a table become `EIO` / `STATUS_IO_DEVICE_ERROR`; every errno in
//! the errno ↔ NTSTATUS table comes back from its NTSTATUS as itself or as an errno with the
//! same NTSTATUS.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[cfg(windows)]
use crate::compat::libc;

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

/// 100-ns intervals between 1601-01-01 (Windows' epoch) and 1970-01-01.
pub const UNIX_EPOCH_AS_FILETIME: u64 = 116_444_736_000_000_000;

/// A time as a FILETIME value (100-ns units since 1601); times before 1601 are 0.
pub fn filetime(t: SystemTime) -> u64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH_AS_FILETIME
            .saturating_add(d.as_secs().saturating_mul(10_000_000))
            .saturating_add(u64::from(d.subsec_nanos() / 100)),
        Err(e) => {
            let before = e.duration();
            let ticks = before.as_secs().saturating_mul(10_000_000)
                + u64::from(before.subsec_nanos().div_ceil(100));
            UNIX_EPOCH_AS_FILETIME.saturating_sub(ticks)
        }
    }
}

/// A FILETIME from `SetBasicInfo` as a time to set: `None` for 0 ("leave as is") and for
/// `u64::MAX` ("stop updating", which the view does not do on its own anyway).
pub fn from_filetime(ft: u64) -> Option<SystemTime> {
    if ft == 0 || ft == u64::MAX {
        return None;
    }
    Some(if ft >= UNIX_EPOCH_AS_FILETIME {
        let d = ft - UNIX_EPOCH_AS_FILETIME;
        UNIX_EPOCH + Duration::new(d / 10_000_000, (d % 10_000_000) as u32 * 100)
    } else {
        let d = UNIX_EPOCH_AS_FILETIME - ft;
        UNIX_EPOCH - Duration::new(d / 10_000_000, (d % 10_000_000) as u32 * 100)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn filetimes() {
        assert_eq!(filetime(UNIX_EPOCH), UNIX_EPOCH_AS_FILETIME);
        // 2024-01-01T00:00:00Z = 1704067200 s.
        let t = UNIX_EPOCH + Duration::new(1_704_067_200, 123_456_789);
        let ft = filetime(t);
        assert_eq!(ft, 133_485_408_001_234_567);
        // 100-ns resolution: the last two nanosecond digits are lost.
        assert_eq!(
            from_filetime(ft),
            Some(UNIX_EPOCH + Duration::new(1_704_067_200, 123_456_700))
        );
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(filetime(before), UNIX_EPOCH_AS_FILETIME - 864_000_000_000);
        assert_eq!(from_filetime(filetime(before)), Some(before));
        // Before 1601 (not representable in Windows' SystemTime at all).
        if let Some(t) = UNIX_EPOCH.checked_sub(Duration::from_secs(400 * 365 * 86_400)) {
            assert_eq!(filetime(t), 0);
        }
        assert_eq!(from_filetime(0), None);
        assert_eq!(from_filetime(u64::MAX), None);
    }
}
