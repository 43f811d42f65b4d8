//! What a Windows client sees of a view entry: file attributes, times, security descriptor,
//! and how its requested access becomes the view's open flags. Pure, unit-tested everywhere.
//!
//! Invariants: `FILE_ATTRIBUTE_REPARSE_POINT` is never set on anything the view shows (it is
//! never produced here, and [`file_attributes`] asserts it); blobs are not marked read-only
//! (that would make `os.remove`/`hf cache rm` fail on Windows), only a read-only mount marks
//! files read-only.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::view::{AttrKind, OpenFlags};

/// `FILE_ATTRIBUTE_READONLY`.
pub const FILE_ATTRIBUTE_READONLY: u32 = 0x0000_0001;
/// `FILE_ATTRIBUTE_DIRECTORY`.
pub const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x0000_0010;
/// `FILE_ATTRIBUTE_ARCHIVE`.
pub const FILE_ATTRIBUTE_ARCHIVE: u32 = 0x0000_0020;
/// `FILE_ATTRIBUTE_NORMAL`.
pub const FILE_ATTRIBUTE_NORMAL: u32 = 0x0000_0080;
/// `FILE_ATTRIBUTE_REPARSE_POINT`: never shown.
pub const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x0000_0400;

/// 100-ns intervals between 1601-01-01 (Windows' epoch) and 1970-01-01.
pub const UNIX_EPOCH_AS_FILETIME: u64 = 116_444_736_000_000_000;

/// The attributes of a view entry.
pub fn file_attributes(kind: AttrKind, read_only_mount: bool) -> u32 {
    let a = match kind {
        AttrKind::Dir => FILE_ATTRIBUTE_DIRECTORY,
        AttrKind::File | AttrKind::Symlink if read_only_mount => FILE_ATTRIBUTE_READONLY,
        AttrKind::File | AttrKind::Symlink => FILE_ATTRIBUTE_NORMAL,
    };
    debug_assert_eq!(a & FILE_ATTRIBUTE_REPARSE_POINT, 0);
    a
}

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

/// `FILE_WRITE_DATA`.
pub const FILE_WRITE_DATA: u32 = 0x0002;
/// `FILE_APPEND_DATA`.
pub const FILE_APPEND_DATA: u32 = 0x0004;
/// `GENERIC_WRITE`.
pub const GENERIC_WRITE: u32 = 0x4000_0000;
/// `GENERIC_ALL`.
pub const GENERIC_ALL: u32 = 0x1000_0000;
/// `MAXIMUM_ALLOWED`.
pub const MAXIMUM_ALLOWED: u32 = 0x0200_0000;

/// The view's open flags for the access a client was granted. Writing opens read-write (the
/// cache manager reads through write handles too); anything else, including `DELETE` and
/// attribute access, opens read-only, so such opens of immutable blobs succeed.
pub fn open_flags(granted_access: u32) -> OpenFlags {
    let writes = FILE_WRITE_DATA | FILE_APPEND_DATA | GENERIC_WRITE | GENERIC_ALL;
    if granted_access & writes != 0 {
        OpenFlags::READ_WRITE
    } else {
        OpenFlags::READ
    }
}

/// The security descriptor (SDDL) every entry carries: owner and group Administrators;
/// SYSTEM full control; on a writable mount Administrators and Authenticated Users full
/// control, Everyone read and execute; on a read-only mount read and execute for all but
/// SYSTEM. Protected (`P`): nothing is inherited from the mountpoint.
pub fn sddl(read_only_mount: bool) -> &'static str {
    if read_only_mount {
        "O:BAG:BAD:P(A;;FA;;;SY)(A;;FRFX;;;BA)(A;;FRFX;;;AU)(A;;FRFX;;;WD)"
    } else {
        "O:BAG:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;AU)(A;;FRFX;;;WD)"
    }
}

/// Permission bits for an entry a Windows client creates (Windows clients send none).
pub fn new_mode(dir: bool) -> u32 {
    if dir { 0o755 } else { 0o644 }
}

/// `CreateOptions` bit: the object is a directory.
pub const FILE_DIRECTORY_FILE: u32 = 0x0000_0001;

/// True if `create_options` ask for a directory.
pub fn wants_directory(create_options: u32) -> bool {
    create_options & FILE_DIRECTORY_FILE != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_never_show_reparse_points() {
        for kind in [AttrKind::File, AttrKind::Dir, AttrKind::Symlink] {
            for ro in [false, true] {
                assert_eq!(file_attributes(kind, ro) & FILE_ATTRIBUTE_REPARSE_POINT, 0);
            }
        }
        assert_eq!(
            file_attributes(AttrKind::Dir, false),
            FILE_ATTRIBUTE_DIRECTORY
        );
        assert_eq!(
            file_attributes(AttrKind::File, false),
            FILE_ATTRIBUTE_NORMAL
        );
        assert_eq!(
            file_attributes(AttrKind::File, true),
            FILE_ATTRIBUTE_READONLY
        );
        assert_eq!(
            file_attributes(AttrKind::Dir, true),
            FILE_ATTRIBUTE_DIRECTORY
        );
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

    #[test]
    fn access_to_open_flags() {
        let read = 0x0012_0089; // FILE_GENERIC_READ
        assert_eq!(open_flags(read), OpenFlags::READ);
        assert_eq!(open_flags(0x0001_0000), OpenFlags::READ, "DELETE only");
        assert_eq!(
            open_flags(0x0000_0100),
            OpenFlags::READ,
            "FILE_WRITE_ATTRIBUTES"
        );
        assert_eq!(open_flags(read | FILE_WRITE_DATA), OpenFlags::READ_WRITE);
        assert_eq!(open_flags(FILE_APPEND_DATA), OpenFlags::READ_WRITE);
        assert_eq!(open_flags(GENERIC_WRITE), OpenFlags::READ_WRITE);
        assert!(wants_directory(FILE_DIRECTORY_FILE | 0x20));
        assert!(!wants_directory(0x40));
    }

    #[test]
    fn security_descriptors() {
        assert!(sddl(false).contains("(A;;FA;;;AU)"));
        assert!(sddl(false).contains("(A;;FRFX;;;WD)"));
        assert!(!sddl(true).contains("(A;;FA;;;AU)"));
        assert!(sddl(true).contains("(A;;FRFX;;;AU)"));
        assert_eq!((new_mode(true), new_mode(false)), (0o755, 0o644));
    }
}
