//! The POSIX vocabulary of the core on Windows.
//!
//! The core speaks errno and POSIX open flags on every platform: the Windows store layer
//! (`store::win`) translates Windows errors into errno values and open flags into
//! `NtCreateFile` arguments, and the WinFsp adapter translates back to NTSTATUS. The `libc`
//! crate's Windows module (the C runtime's names) lacks a few of the names the core uses;
//! this module adds them. A core module that needs them says
//! `#[cfg(windows)] use crate::compat::libc;`, which shadows the crate for that module only,
//! so on Unix nothing changes.
//!
//! Invariant: every value defined here is distinct from every CRT value it could be compared
//! with (errno values above the CRT's range, flag bits above the CRT's `_O_*` bits).

/// `libc` plus the names the CRT lacks.
#[cfg(windows)]
pub mod libc {
    pub use ::libc::*;

    /// Stale file handle (WinSock's `WSAESTALE` value: outside the CRT's errno range).
    pub const ESTALE: i32 = 10070;
    /// Mask of the access mode (`O_RDONLY`/`O_WRONLY`/`O_RDWR` are 0, 1, 2 as on POSIX).
    pub const O_ACCMODE: i32 = 3;
    /// Synchronous writes (write-through).
    pub const O_SYNC: i32 = 0x0010_0000;
    /// Synchronous data writes (write-through).
    pub const O_DSYNC: i32 = 0x0020_0000;
    /// `renameat2`: fail if the target exists.
    pub const RENAME_NOREPLACE: u32 = 1;
    /// `renameat2`: exchange the two names (refused on Windows).
    pub const RENAME_EXCHANGE: u32 = 2;
    /// File type mask of a mode (as `mode_t`).
    pub const S_IFMT: u32 = 0o170_000;
    /// Regular file type.
    pub const S_IFREG: u32 = 0o100_000;
}

/// `std::os::unix::ffi::OsStrExt` for Windows: names as bytes (their WTF-8 encoding, which
/// is UTF-8 for every valid Unicode name).
#[cfg(windows)]
pub trait OsStrExt {
    /// The name's bytes.
    fn as_bytes(&self) -> &[u8];
}

#[cfg(windows)]
impl OsStrExt for std::ffi::OsStr {
    fn as_bytes(&self) -> &[u8] {
        self.as_encoded_bytes()
    }
}
