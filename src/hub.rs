//! The hub's layout rules that both the view (deduplicating copies as clients write them) and
//! the tools (`hfcachefs dedupe`) follow: where a snapshot entry and a repo blob are, which
//! name a new blob gets, how a copy is compared with a blob, and how an entry is replaced by a
//! link atomically.
//!
//! Invariants:
//! - A blob name is never replaced: a new blob is published with `link(2)` (or a checked copy
//!   renamed with `RENAME_NOREPLACE`), both of which fail if the name exists.
//! - An entry is replaced only by a complete link renamed over it, after checking that the
//!   entry is still the file that was hashed; a reader of the name sees the old file or the
//!   link, never a missing or partial entry, and a reader holding the old file keeps it.
//! - Link texts are plain relative paths inside the repo (`../../blobs/<name>`, one more `../`
//!   per sub-directory), exactly as the hub writes them; no link is ever followed here.

pub mod hash;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[cfg(windows)]
use crate::compat::libc;
use crate::path::StorePath;
use crate::store::{Kind, Meta, OFlags, Store};
use hash::{Algos, Digests};

/// Above this size the Hub only stores files in LFS (sha256 etag).
pub const LFS_THRESHOLD: u64 = 10 * 1024 * 1024;

/// Prefix of this program's own temporary names (`gc` removes stale ones).
pub const OWN_TEMP_PREFIX: &str = ".hfcachefs-";

/// True for a 40- or 64-digit lower-case hex name (a git sha1 or a sha256: a content name).
pub fn is_content_name(s: &str) -> bool {
    let hex = |n: usize| s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex(40) || hex(64)
}

/// The repo type and id of a repo folder name (`models--org--name` → `("model",
/// "org/name")`), as the hub's cache scan derives them; `None` for anything else.
pub fn repo_kind(folder: &str) -> Option<(&'static str, String)> {
    let (prefix, rest) = folder.split_once("--")?;
    let kind = match prefix {
        "models" => "model",
        "datasets" => "dataset",
        "spaces" => "space",
        "kernels" => "kernel",
        _ => return None,
    };
    (!rest.is_empty()).then(|| (kind, rest.replace("--", "/")))
}

/// True for a repo folder name (`models--…`, `datasets--…`, `spaces--…`, `kernels--…`): the
/// one rule the view, the copies and the tools share ([`repo_kind`]).
pub fn is_repo_folder(name: &OsStr) -> bool {
    name.to_str().and_then(repo_kind).is_some()
}

/// A path below `<repo>/snapshots/<commit>/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// The repo folder.
    pub repo: String,
    /// The commit directory's name.
    pub commit: String,
    /// The path inside the revision, `/`-separated.
    pub rel: String,
}

impl SnapshotEntry {
    /// The snapshot entry `p` is, if it is one.
    pub fn parse(p: &StorePath) -> Option<SnapshotEntry> {
        let comps: Vec<&str> = p.components().map(OsStr::to_str).collect::<Option<_>>()?;
        match comps.as_slice() {
            [repo, s, commit, rest @ ..] if *s == "snapshots" && !rest.is_empty() => {
                is_repo_folder(OsStr::new(repo)).then(|| SnapshotEntry {
                    repo: repo.to_string(),
                    commit: commit.to_string(),
                    rel: rest.join("/"),
                })
            }
            _ => None,
        }
    }

    /// The repo's `blobs/` directory.
    pub fn blobs_dir(&self) -> Option<StorePath> {
        StorePath::parse(&format!("{}/blobs", self.repo))
    }
}

/// The repo folder and name of a repo blob path `<repo>/blobs/<40 or 64 hex>`.
pub fn repo_blob(p: &StorePath) -> Option<(&str, &str)> {
    let comps: Vec<&str> = p.components().map(OsStr::to_str).collect::<Option<_>>()?;
    match comps.as_slice() {
        [repo, b, name]
            if *b == "blobs" && is_repo_folder(OsStr::new(repo)) && is_content_name(name) =>
        {
            Some((repo, name))
        }
        _ => None,
    }
}

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

/// Reads a small regular file of the store; `None` on any error.
pub fn read_small(store: &Store, p: &StorePath, limit: u64) -> Option<Vec<u8>> {
    let fd = store.open(p, OFlags::RDONLY | OFlags::NONBLOCK, 0).ok()?;
    if Meta::of_fd(&fd).ok()?.kind != Kind::File {
        return None;
    }
    let mut buf = Vec::new();
    File::from(fd).take(limit).read_to_end(&mut buf).ok()?;
    Some(buf)
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

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary name in directory `dir`: `.hfcachefs-<tag>-<pid>-<n>`.
pub fn temp_name(dir: &StorePath, tag: &str) -> Option<StorePath> {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{OWN_TEMP_PREFIX}{tag}-{}-{n}", std::process::id());
    dir.join(OsStr::new(&name))
}

/// True if `now` is still the file `then` describes (same inode, kind, size and mtime).
pub fn unchanged(then: &Meta, now: &Meta) -> bool {
    (now.kind, now.dev, now.ino, now.size, now.mtime)
        == (then.kind, then.dev, then.ino, then.size, then.mtime)
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

/// Byte-for-byte comparison of two store files.
pub fn same_bytes(store: &Store, a: &StorePath, b: &StorePath) -> io::Result<bool> {
    let open = |p: &StorePath| {
        store
            .open(p, OFlags::RDONLY | OFlags::NONBLOCK, 0)
            .map(File::from)
    };
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_folders_by_one_rule() {
        for (folder, want) in [
            ("models--acme--m", Some(("model", "acme/m"))),
            ("datasets--d", Some(("dataset", "d"))),
            ("spaces--o--s", Some(("space", "o/s"))),
            ("kernels--k--x", Some(("kernel", "k/x"))),
            ("models--", None),
            ("blobs", None),
            ("other--a--b", None),
        ] {
            let got = repo_kind(folder);
            assert_eq!(
                got.as_ref().map(|(k, id)| (*k, id.as_str())),
                want,
                "{folder}"
            );
            assert_eq!(
                is_repo_folder(OsStr::new(folder)),
                want.is_some(),
                "{folder}"
            );
        }
    }

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

    #[test]
    fn layout_paths() {
        let e =
            SnapshotEntry::parse(&StorePath::parse("models--a--b/snapshots/c1/x/y.bin").unwrap())
                .unwrap();
        assert_eq!(
            (e.repo.as_str(), e.commit.as_str(), e.rel.as_str()),
            ("models--a--b", "c1", "x/y.bin")
        );
        assert!(
            SnapshotEntry::parse(&StorePath::parse("models--a--b/snapshots/c1").unwrap()).is_none()
        );
        assert!(SnapshotEntry::parse(&StorePath::parse("other/snapshots/c1/f").unwrap()).is_none());
        let b = StorePath::parse(&format!("datasets--a--b/blobs/{}", "0".repeat(40))).unwrap();
        assert_eq!(repo_blob(&b).map(|r| r.0), Some("datasets--a--b"));
        assert!(repo_blob(&StorePath::parse("models--a--b/blobs/x.incomplete").unwrap()).is_none());
    }
}
