//! What a Windows client sees of a view entry: file attributes, times, security descriptor,
//! and how its requested access becomes the view's open flags. Pure, unit-tested everywhere.
//!
//! Invariants: `FILE_ATTRIBUTE_REPARSE_POINT` is never set on anything the view shows (it is
//! never produced here, and [`file_attributes`] asserts it); blobs are not marked read-only
//! (that would make `os.remove`/`hf cache rm` fail on Windows), only a read-only mount marks
//! files read-only.

pub use crate::nt::{UNIX_EPOCH_AS_FILETIME, filetime, from_filetime};
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
