//! New blobs and links to them: which name a copy's content gets as a repo blob, how the
//! blob is created without replacing anything, and how a snapshot entry is replaced by a
//! link to it. Both the view (deduplicating copies as clients write them) and `dedupe` use
//! these, so a copy gets the same blob name whichever of them finds it.
//!
//! Invariants:
//! - A blob name is never replaced: a new blob is published with `link(2)` (or a checked copy
//!   renamed with `RENAME_NOREPLACE`), both of which fail if the name exists.
//! - An entry is replaced only by a complete link renamed over it, after checking that the
//!   entry is still the file that was hashed; a reader of the name sees the old file or the
//!   link, never a missing or partial entry, and a reader holding the old file keeps it.
//! - Link texts are plain relative paths inside the repo (`../../blobs/<name>`, one more `../`
//!   per sub-directory), exactly as the hub writes them; no link is ever followed here.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::atomic::AtomicBool;

use super::files::{read_small, temp_name, unchanged};
use super::hash::{self, Algos, Digests};
use super::names::{SnapshotEntry, is_content_name, repo_blob};
#[cfg(windows)]
use crate::compat::libc;
use crate::path::StorePath;
use crate::store::{Kind, Meta, OFlags, Store};

/// Above this size the Hub only stores files in LFS (sha256 etag).
pub const LFS_THRESHOLD: u64 = 10 * 1024 * 1024;

/// How a new blob's name is chosen, with the name kind it implies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// `trees/<commit>.json` gives the etag.
    Tree(String),
    /// The same path links to a blob with a name of this length in another revision.
    Sibling(usize),
    /// By size (sha256 above [`LFS_THRESHOLD`]).
    Size,
}

/// The rule and the digest kind for a copy: the etag `trees/<commit>.json` lists for the path;
/// else the kind of name the same path has in another revision; else sha256 above 10 MiB (the
/// Hub stores such files in LFS), git blob sha1 otherwise.
pub fn naming_rule(
    tree_etag: Option<&str>,
    sibling_len: Option<usize>,
    size: u64,
) -> (NameRule, Algos) {
    if let Some(e) = tree_etag.filter(|e| is_content_name(e)) {
        return (NameRule::Tree(e.to_string()), Algos::for_name(e));
    }
    if let Some(len) = sibling_len.filter(|l| *l == 40 || *l == 64) {
        return (NameRule::Sibling(len), Algos::for_name(&"0".repeat(len)));
    }
    let sha256 = size > LFS_THRESHOLD;
    (
        NameRule::Size,
        Algos {
            sha256,
            git_sha1: !sha256,
        },
    )
}

/// Whether the naming rule picked sha256 for a copy of this size.
pub fn rule_is_sha256(rule: &NameRule, size: u64) -> bool {
    match rule {
        NameRule::Tree(e) => e.len() == 64,
        NameRule::Sibling(len) => *len == 64,
        NameRule::Size => size > LFS_THRESHOLD,
    }
}

/// The blob name a copy with `digests` gets under `rule`, or why it gets none.
pub fn new_blob_name(rule: &NameRule, digests: &Digests, size: u64) -> Result<String, String> {
    match rule {
        NameRule::Tree(etag) => {
            if digests.for_name(etag) != Some(etag.as_str()) {
                return Err(format!(
                    "content does not match the etag {etag} in trees/ (corrupt copy?)"
                ));
            }
            Ok(etag.clone())
        }
        NameRule::Sibling(_) | NameRule::Size => digests
            .sha256
            .clone()
            .filter(|_| rule_is_sha256(rule, size))
            .or_else(|| digests.git_sha1.clone())
            .ok_or_else(|| "no digest".to_string()),
    }
}

/// The etag `<repo>/trees/<commit>.json` records for each path (`lfs_sha256`, else `blob_id`).
pub fn tree_etags(store: &Store, repo: &str, commit: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Some(p) = StorePath::parse(&format!("{repo}/trees/{commit}.json")) else {
        return out;
    };
    let Some(bytes) = read_small(store, &p, 256 << 20) else {
        return out;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return out;
    };
    if let Some(files) = v.get("files").and_then(|f| f.as_object()) {
        for (path, f) in files {
            let etag = f
                .get("lfs_sha256")
                .and_then(|x| x.as_str())
                .or_else(|| f.get("blob_id").and_then(|x| x.as_str()));
            if let Some(e) = etag {
                out.insert(path.clone(), e.to_string());
            }
        }
    }
    out
}

/// The length of the blob name the same path links to in another revision of the repo, if
/// any (one `readlink` per revision; links are not followed).
pub fn sibling_len(store: &Store, e: &SnapshotEntry) -> Option<usize> {
    let snaps = StorePath::parse(&format!("{}/snapshots", e.repo))?;
    let mut revs = store.read_dir(&snaps).ok()?;
    revs.sort_by(|a, b| a.name.cmp(&b.name));
    for rev in revs {
        if rev.name.to_str() == Some(e.commit.as_str()) {
            continue;
        }
        let Some(p) = snaps
            .join(&rev.name)
            .and_then(|d| StorePath::parse(&format!("{}/{}", d.as_rel().display(), e.rel)))
        else {
            continue;
        };
        let Ok(text) = store.readlink(&p) else {
            continue;
        };
        let Ok(target) = crate::path::link_target(&p.parent(), &text, &[]) else {
            continue;
        };
        if let Some((repo, name)) = repo_blob(&target)
            && repo == e.repo
        {
            return Some(name.len());
        }
    }
    None
}

/// Why [`replace_with_link`] did not replace.
#[derive(Debug)]
pub enum ReplaceError {
    /// The entry is no longer the file that was hashed.
    Changed,
    /// A store operation failed.
    Io(io::Error),
}

impl std::fmt::Display for ReplaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplaceError::Changed => write!(f, "changed meanwhile"),
            ReplaceError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Replaces the snapshot entry `entry` (still the file `was`) with a relative link to the
/// repo blob `blob`: the link is made under a temporary name in the entry's directory and
/// renamed over the entry, so readers see the old file or the link, never nothing.
pub fn replace_with_link(
    store: &Store,
    entry: &StorePath,
    blob: &StorePath,
    was: &Meta,
    tag: &str,
) -> Result<(), ReplaceError> {
    let dir = entry.parent();
    let text = blob.relative_from(&dir);
    let tmp = temp_name(&dir, tag)
        .ok_or_else(|| ReplaceError::Io(io::Error::from_raw_os_error(libc::EINVAL)))?;
    store.symlink(&text, &tmp).map_err(ReplaceError::Io)?;
    let res = match store.lstat(entry) {
        Ok(now) if unchanged(was, &now) => store.rename(&tmp, entry, 0).map_err(ReplaceError::Io),
        Ok(_) => Err(ReplaceError::Changed),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(ReplaceError::Changed),
        Err(e) => Err(ReplaceError::Io(e)),
    };
    if res.is_err() {
        let _ = store.unlink(&tmp);
    }
    res
}

/// Makes `blob` (`<repo>/blobs/<name>`) a second name of the file `copy` (metadata `m`), or,
/// where the store has no hard links, a checked copy of it. Never replaces an existing name:
/// `EEXIST` if `blob` exists.
pub fn make_blob(
    store: &Store,
    copy: &StorePath,
    blob: &StorePath,
    name: &str,
    m: &Meta,
) -> io::Result<()> {
    let dir = blob.parent();
    match store.mkdir(&dir, 0o755) {
        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
        _ => {}
    }
    match store.link(copy, blob) {
        // `link(2)` takes whatever holds the name now: if a racing writer swapped the copy
        // for a link or another file since it was hashed, the new name is taken back.
        Ok(()) => {
            return match store.lstat(blob) {
                Ok(b) if b.kind == Kind::File && (b.dev, b.ino) == (m.dev, m.ino) => Ok(()),
                _ => {
                    let _ = store.unlink(blob);
                    Err(io::Error::other(
                        "the copy was replaced while it was linked",
                    ))
                }
            };
        }
        Err(e)
            if !matches!(
                e.raw_os_error(),
                Some(libc::EPERM | libc::EOPNOTSUPP | libc::EMLINK | libc::EXDEV)
            ) =>
        {
            return Err(e);
        }
        Err(_) => {}
    }
    // No hard links here: copy under a temp name, check the bytes, publish without replacing.
    let tmp = temp_name(&dir, "blob").ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let res = (|| {
        let src = File::from(store.open(copy, OFlags::RDONLY, 0)?);
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        let mut dst = File::from(store.open(&tmp, flags, u32::from(m.perm))?);
        let mut reader = src.take(m.size + 1);
        let n = io::copy(&mut reader, &mut dst)?;
        dst.flush()?;
        dst.sync_all()?;
        let stop = AtomicBool::new(false);
        let algos = Algos::for_name(name);
        let hashed = hash::hash_path(store, &tmp, algos, &stop, &|_| {})
            .map_err(|e| io::Error::other(e.to_string()))?;
        if n != m.size || hashed.digests.for_name(name) != Some(name) {
            return Err(io::Error::other("the copy changed while it was copied"));
        }
        store.rename(&tmp, blob, libc::RENAME_NOREPLACE)
    })();
    if res.is_err() {
        let _ = store.unlink(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_rules() {
        let sha = "a".repeat(64);
        let git = "b".repeat(40);
        assert_eq!(
            naming_rule(Some(&sha), Some(40), 1).0,
            NameRule::Tree(sha.clone())
        );
        assert_eq!(
            naming_rule(Some(&git), None, LFS_THRESHOLD + 1).1,
            Algos::for_name(&git)
        );
        // A bad etag in trees/ is ignored.
        assert_eq!(
            naming_rule(Some("xyz"), Some(64), 1).0,
            NameRule::Sibling(64)
        );
        assert!(naming_rule(None, Some(64), 1).1.sha256);
        assert!(naming_rule(None, Some(40), LFS_THRESHOLD * 2).1.git_sha1);
        assert!(naming_rule(None, None, LFS_THRESHOLD).1.git_sha1);
        assert!(naming_rule(None, None, LFS_THRESHOLD + 1).1.sha256);
        assert!(rule_is_sha256(&NameRule::Size, LFS_THRESHOLD + 1));
        assert!(!rule_is_sha256(&NameRule::Sibling(40), LFS_THRESHOLD + 1));
        let d = hash::digest_bytes(b"x");
        assert_eq!(
            new_blob_name(&NameRule::Size, &d, 1).unwrap(),
            d.git_sha1.clone().unwrap()
        );
        assert!(new_blob_name(&NameRule::Tree(sha), &d, 1).is_err());
    }
}
