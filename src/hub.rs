//! The hub's layout rules: the one place both the view and the tools ask how a hub cache is
//! laid out (`<repo>/blobs/<etag>`, `<repo>/snapshots/<commit>/<path>` links, `refs/`,
//! `.locks/`, the shared store `blobs/<hh>/<hash>` with its `.refs` manifests).
//!
//! - [`names`]: repo folders and kinds, blob and payload names, temporary names, lock and
//!   manifest paths (pure functions of names);
//! - [`files`]: reading small files, the one temporary-name generator, comparing files;
//! - [`manifest`]: the one manifest parser and read limit;
//! - [`walk`]: what counts as a link (symlink or XSym), confined directory listings, and the
//!   one walk over a repo's snapshots;
//! - [`blobs`]: naming a copy's content, creating blobs without replacing, replacing entries
//!   by links;
//! - [`locks`]: taking the hub's own locks;
//! - [`hash`]: the digests blob names are made of.
//!
//! Invariants: this module sits below the view and the tools and depends only on `path`,
//! `resolve`, `links` and `store`; a layout rule that two modules need lives here, once.

pub mod blobs;
pub mod files;
pub mod hash;
pub mod locks;
pub mod manifest;
pub mod names;
pub mod walk;

pub use blobs::{
    LFS_THRESHOLD, NameRule, ReplaceError, make_blob, naming_rule, new_blob_name,
    replace_with_link, rule_is_sha256, sibling_len, tree_etags,
};
pub use files::{read_small, same_bytes, temp_name, temp_sibling, unchanged};
pub use names::{
    OWN_TEMP_PREFIX, SHARED_MARKER, SnapshotEntry, TempKind, blob_dir_temp, is_blob_path,
    is_content_name, is_fixed_name, is_hex, is_repo_folder, repo_blob, repo_kind, repo_of,
};
pub use walk::{is_link, link_kind};
