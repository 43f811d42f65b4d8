//! The core's own numbers: view inode numbers ([`Ino`]), open handles ([`Fh`]), lock owners
//! ([`LockOwner`]) and a client's open flags ([`OpenFlags`]). Each is a distinct type, so an
//! adapter cannot hand a handle where an inode is meant; adapters convert at their boundary
//! (`fuser`'s `INodeNo`/`FileHandle`/`LockOwner`, WinFsp's file contexts).
//!
//! Invariants: the wrappers add no meaning to the numbers — `Ino(n)` is FUSE's inode `n`
//! ([`Ino::ROOT`] is FUSE's root, 1), `Fh(n)` the handle number the kernel hands back, and
//! [`OpenFlags`] keeps the client's raw POSIX bits (on Windows, the `compat::libc` names).

use std::fmt;

#[cfg(windows)]
use crate::compat::libc;

/// A view inode number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ino(pub u64);

impl Ino {
    /// The root's inode number (FUSE's convention).
    pub const ROOT: Ino = Ino(1);
}

impl fmt::Display for Ino {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inode {}", self.0)
    }
}

/// The number of an open file or directory handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fh(pub u64);

impl fmt::Display for Fh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handle {}", self.0)
    }
}

/// The owner of POSIX or `flock` locks, as the kernel names it (an opaque number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockOwner(pub u64);

/// The access mode of an open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessMode {
    /// `O_RDONLY`.
    Read,
    /// `O_WRONLY`.
    Write,
    /// `O_RDWR`.
    ReadWrite,
}

/// A client's open flags (`open(2)`'s `flags`), read through accessors.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OpenFlags(i32);

impl OpenFlags {
    /// `O_RDONLY` and nothing else.
    pub const READ: OpenFlags = OpenFlags(libc::O_RDONLY);
    /// `O_RDWR` and nothing else.
    pub const READ_WRITE: OpenFlags = OpenFlags(libc::O_RDWR);

    /// The flags as the client gave them.
    pub const fn from_raw(raw: i32) -> OpenFlags {
        OpenFlags(raw)
    }

    /// The raw bits.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The access mode (an invalid mode, 3, counts as read-write, as Linux treats it).
    pub fn access_mode(self) -> AccessMode {
        match self.0 & libc::O_ACCMODE {
            libc::O_RDONLY => AccessMode::Read,
            libc::O_WRONLY => AccessMode::Write,
            _ => AccessMode::ReadWrite,
        }
    }

    /// The access mode allows writing.
    pub fn writes(self) -> bool {
        self.access_mode() != AccessMode::Read
    }

    /// The open may change the file: it writes, or truncates (`O_RDONLY | O_TRUNC` does too).
    pub fn modifies(self) -> bool {
        self.writes() || self.truncate()
    }

    /// `O_TRUNC`.
    pub fn truncate(self) -> bool {
        self.0 & libc::O_TRUNC != 0
    }

    /// `O_APPEND`.
    pub fn append(self) -> bool {
        self.0 & libc::O_APPEND != 0
    }

    /// `O_CREAT`.
    pub fn create(self) -> bool {
        self.0 & libc::O_CREAT != 0
    }

    /// `O_EXCL`.
    pub fn exclusive(self) -> bool {
        self.0 & libc::O_EXCL != 0
    }

    /// These flags without `O_CREAT` (and so without `O_EXCL`'s meaning).
    pub fn without_create(self) -> OpenFlags {
        OpenFlags(self.0 & !libc::O_CREAT)
    }

    /// The bits that change how the store file is opened and written: the access mode,
    /// `O_APPEND`, `O_TRUNC`, `O_SYNC`, `O_DSYNC` (never creation or link-following bits).
    pub fn store_bits(self) -> i32 {
        let keep = libc::O_ACCMODE | libc::O_APPEND | libc::O_TRUNC | libc::O_SYNC | libc::O_DSYNC;
        self.0 & keep
    }
}

impl fmt::Debug for OpenFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpenFlags({:#o})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_modes_and_bits() {
        let ro = OpenFlags::from_raw(libc::O_RDONLY);
        assert_eq!(ro.access_mode(), AccessMode::Read);
        assert!(!ro.writes() && !ro.modifies());
        let rot = OpenFlags::from_raw(libc::O_RDONLY | libc::O_TRUNC);
        assert!(!rot.writes() && rot.modifies() && rot.truncate());
        let wo = OpenFlags::from_raw(libc::O_WRONLY | libc::O_APPEND);
        assert_eq!(wo.access_mode(), AccessMode::Write);
        assert!(wo.writes() && wo.append() && !wo.truncate());
        let c = OpenFlags::from_raw(libc::O_RDWR | libc::O_CREAT | libc::O_EXCL);
        assert!(c.create() && c.exclusive());
        assert_eq!(c.access_mode(), AccessMode::ReadWrite);
        assert!(!c.without_create().create());
        assert_eq!(c.store_bits(), libc::O_RDWR);
        assert_eq!(OpenFlags::from_raw(3).access_mode(), AccessMode::ReadWrite);
    }

    #[test]
    fn ids_print_what_they_are() {
        assert_eq!(Ino(7).to_string(), "inode 7");
        assert_eq!(Fh(3).to_string(), "handle 3");
        assert_eq!(Ino::ROOT, Ino(1));
    }
}
