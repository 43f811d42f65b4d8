//! Attributes as the view presents them, and the cache lifetimes that go with them.

use std::time::{Duration, SystemTime};

use super::CacheView;
use crate::inode::Ino;
use crate::store::{Kind, Meta};

/// The type an entry has in the view. `Symlink` is used only for the reply to `symlink()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// The transient reply to `symlink()` (see [`crate::inode::Key::Detached`]).
    Symlink,
}

/// Attributes of a view inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// View inode number.
    pub ino: Ino,
    /// Type.
    pub kind: AttrKind,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks.
    pub blocks: u64,
    /// Permission bits.
    pub perm: u16,
    /// Link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Preferred I/O size.
    pub blksize: u32,
    /// Access time.
    pub atime: SystemTime,
    /// Modification time.
    pub mtime: SystemTime,
    /// Change time.
    pub ctime: SystemTime,
}

/// A lookup reply: attributes plus cache lifetimes.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The attributes.
    pub attr: Attr,
    /// How long the attributes may be cached.
    pub attr_ttl: Duration,
    /// How long the name → inode mapping may be cached.
    pub entry_ttl: Duration,
}

/// A time to set: a given time or "now".
#[derive(Clone, Copy, Debug)]
pub enum TimeSet {
    /// Now.
    Now,
    /// This time.
    At(SystemTime),
}

/// The changes of a `setattr`.
#[derive(Clone, Debug, Default)]
pub struct SetAttr {
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size.
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<TimeSet>,
    /// New modification time.
    pub mtime: Option<TimeSet>,
}

impl SetAttr {
    /// True if nothing is to change.
    pub fn is_empty(&self) -> bool {
        self.mode.is_none()
            && self.uid.is_none()
            && self.gid.is_none()
            && self.size.is_none()
            && self.atime.is_none()
            && self.mtime.is_none()
    }
}

impl CacheView {
    /// Attributes of view inode `ino` whose store metadata is `meta`.
    pub(super) fn attr(&self, ino: Ino, meta: &Meta) -> Attr {
        Attr {
            ino,
            kind: if meta.kind == Kind::Dir {
                AttrKind::Dir
            } else {
                AttrKind::File
            },
            size: meta.size,
            blocks: meta.blocks,
            perm: meta.perm,
            nlink: meta.nlink,
            uid: self.config.uid.unwrap_or(meta.uid),
            gid: self.config.gid.unwrap_or(meta.gid),
            blksize: meta.blksize,
            atime: meta.atime,
            mtime: meta.mtime,
            ctime: meta.ctime,
        }
    }

    /// How long attributes of this entry may be cached.
    pub(super) fn attr_ttl(&self, meta: &Meta, immutable: bool) -> Duration {
        if immutable && meta.kind == Kind::File {
            self.config.blob_attr_ttl
        } else {
            self.config.attr_ttl
        }
    }

    /// A lookup reply for `ino`.
    pub(super) fn entry(&self, ino: Ino, meta: &Meta, immutable: bool) -> Entry {
        Entry {
            attr: self.attr(ino, meta),
            attr_ttl: self.attr_ttl(meta, immutable),
            entry_ttl: self.config.entry_ttl,
        }
    }
}
