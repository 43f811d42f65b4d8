//! hfcachefs: a userspace filesystem that presents a Hugging Face hub cache with every
//! symlink resolved inside the store, so clients see only regular files and directories
//! while the store keeps its links and deduplication.
//!
//! The core ([`view`], [`resolve`], [`path`], [`inode`], [`store`], [`links`]) is
//! platform-neutral in its decisions; `fuse` is the thin FUSE adapter (Unix), [`winfsp`] the
//! Windows front end (pure decision modules everywhere, the WinFsp adapter on Windows).

// Every `unsafe` block says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(windows)]
mod compat;
pub mod config;
pub mod error;
#[cfg(unix)]
pub mod fuse;
pub mod hub;
pub mod inode;
pub mod links;
#[cfg(unix)]
pub mod mount;
pub mod nt;
pub mod path;
pub mod resolve;
#[cfg(unix)]
pub mod sdnotify;
pub mod stats;
pub mod store;
pub mod tools;
pub mod view;
pub mod winfsp;
