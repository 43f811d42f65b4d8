//! The POSIX open flags the core passes to [`WinStore::open`] and positional I/O on store files.
//!
//! Invariant: flag values are the CRT's (and `crate::compat::libc`'s for the ones it lacks),
//! so a flag set means the same on both platforms; I/O errors are errno-coded.

use super::*;

/// Open flags of [`WinStore::open`]: the POSIX flags the core uses, with the CRT's values
/// (and `crate::compat::libc`'s for the ones the CRT lacks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OFlags(u32);

impl OFlags {
    /// Read only.
    pub const RDONLY: OFlags = OFlags(0);
    /// Write only.
    pub const WRONLY: OFlags = OFlags(1);
    /// Read and write.
    pub const RDWR: OFlags = OFlags(2);
    /// Append.
    pub const APPEND: OFlags = OFlags(0x8);
    /// Create if missing.
    pub const CREATE: OFlags = OFlags(0x100);
    /// Truncate.
    pub const TRUNC: OFlags = OFlags(0x200);
    /// With `CREATE`: fail if it exists.
    pub const EXCL: OFlags = OFlags(0x400);
    /// Write through.
    pub const SYNC: OFlags = OFlags(0x0010_0000);
    /// Write through (data).
    pub const DSYNC: OFlags = OFlags(0x0020_0000);
    /// Must be a directory.
    pub const DIRECTORY: OFlags = OFlags(0x0040_0000);
    /// Only for metadata.
    pub const PATH: OFlags = OFlags(0x0080_0000);
    /// Accepted, no meaning on Windows.
    pub const NONBLOCK: OFlags = OFlags(0x0100_0000);
    /// Accepted: nothing is ever followed.
    pub const NOFOLLOW: OFlags = OFlags(0x0200_0000);
    /// Accepted: handles are never inherited.
    pub const CLOEXEC: OFlags = OFlags(0x0400_0000);
    /// Windows only: read and write attributes (times), nothing else.
    pub const ATTRS: OFlags = OFlags(0x0800_0000);

    const ALL: u32 = 0x0FF0_070B;

    /// The flags of `bits` that are known.
    pub fn from_bits_truncate(bits: u32) -> OFlags {
        OFlags(bits & Self::ALL)
    }

    /// True if all of `other` is set.
    pub fn contains(self, other: OFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub(super) fn access_mode(self) -> u32 {
        self.0 & 3
    }
}

impl std::ops::BitOr for OFlags {
    type Output = OFlags;
    fn bitor(self, o: OFlags) -> OFlags {
        OFlags(self.0 | o.0)
    }
}

impl std::ops::BitOrAssign for OFlags {
    fn bitor_assign(&mut self, o: OFlags) {
        self.0 |= o.0;
    }
}

/// Positional I/O on store files with errno-coded errors (`std`'s Unix `FileExt` names).
pub trait FileExt {
    /// Reads at `offset`; 0 at the end of the file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
}

impl FileExt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match std::os::windows::fs::FileExt::seek_read(self, buf, offset) {
            Ok(n) => Ok(n),
            Err(e) if e.raw_os_error() == Some(38) => Ok(0), // ERROR_HANDLE_EOF
            Err(e) => Err(errno_error(e)),
        }
    }
    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_write(self, buf, offset) {
                Ok(0) => return Err(io::Error::from_raw_os_error(libc::EIO)),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) => return Err(errno_error(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oflags_match_the_crt() {
        assert_eq!(OFlags::WRONLY.0 as i32, libc::O_WRONLY);
        assert_eq!(OFlags::RDWR.0 as i32, libc::O_RDWR);
        assert_eq!(OFlags::APPEND.0 as i32, libc::O_APPEND);
        assert_eq!(OFlags::CREATE.0 as i32, libc::O_CREAT);
        assert_eq!(OFlags::TRUNC.0 as i32, libc::O_TRUNC);
        assert_eq!(OFlags::EXCL.0 as i32, libc::O_EXCL);
        assert_eq!(OFlags::SYNC.0 as i32, libc::O_SYNC);
        assert_eq!(OFlags::DSYNC.0 as i32, libc::O_DSYNC);
        for f in [
            OFlags::DIRECTORY,
            OFlags::PATH,
            OFlags::ATTRS,
            OFlags::NOFOLLOW,
        ] {
            assert_eq!(OFlags::from_bits_truncate(f.0), f);
        }
    }
}
