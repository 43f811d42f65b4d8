//! The Windows front end: the same view as the FUSE mount, served through WinFsp.
//!
//! Layering: the mount lifecycle (`mount`, Windows only) loads WinFsp (`sys`: the DLL and
//! the few Win32 calls outside WinFsp) and serves the WinFsp adapter (`adapter`, Windows
//! only), which receives path-based requests,
//! walks them through the core's inode-based [`crate::view::CacheView`] and answers; every
//! decision it needs is a pure function in the modules below, which are compiled and
//! unit-tested on every platform:
//! - [`status`]: NTSTATUS ↔ errno ↔ Win32 error translation, exhaustive over `FsError`;
//! - [`attrs`]: file attributes (never `FILE_ATTRIBUTE_REPARSE_POINT`), FILETIME
//!   conversion, security descriptor, access mask → open flags;
//! - [`names`]: store names ↔ Windows names (forbidden characters, trailing dot/space,
//!   reserved device names) and case-insensitive lookup with a defined collision rule;
//! - [`pattern`]: directory search patterns (`*`, `?`, and the DOS wildcards).
//!
//! The store underneath is reached through `crate::store` (on Windows: `store::win`), which
//! opens every entry with `FILE_OPEN_REPARSE_POINT`, reads link targets itself and never
//! lets Windows follow a link.

pub mod attrs;
pub mod names;
pub mod pattern;
pub mod status;

#[cfg(windows)]
mod adapter;
#[cfg(windows)]
mod mount;
#[cfg(windows)]
mod sys;
#[cfg(windows)]
pub use mount::{MountOptions, run};
