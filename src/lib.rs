//! hfcachefs: a userspace filesystem that presents a Hugging Face hub cache with every
//! symlink resolved inside the store, so clients see only regular files and directories
//! while the store keeps its links and deduplication.
//!
//! The core ([`view`], [`resolve`], [`path`], [`inode`], [`store`]) is platform-neutral in
//! its decisions; [`fuse`] is the thin FUSE adapter.

pub mod config;
pub mod error;
#[cfg(unix)]
pub mod fuse;
pub mod inode;
#[cfg(unix)]
pub mod mount;
pub mod path;
pub mod resolve;
pub mod stats;
pub mod store;
pub mod view;
