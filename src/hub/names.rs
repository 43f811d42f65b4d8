//! Names in the hub layout: repo folders and their kinds, content (blob and payload) names,
//! the temporary names clients and hfcachefs leave behind, and the lock and manifest paths
//! that go with a blob. Pure functions of names: nothing here touches a store.
//!
//! Invariants:
//! - A content name is 40 or 64 lower-case hex digits (a git blob sha1 or a sha256); a shared
//!   payload is `blobs/<hh>/<64 hex>` with `hh` its first two digits. Nothing else is a blob.
//! - A repo folder is `models--…`, `datasets--…`, `spaces--…` or `kernels--…` with a
//!   non-empty id ([`repo_kind`]); a repo blob lies directly in such a folder's `blobs/`.
//! - Temporary names never collide with content names: every temporary rule requires a
//!   character (`.`, `_`, `-`) that a content name cannot hold.

use std::ffi::OsStr;

use crate::path::StorePath;

/// Prefix of this program's own temporary names (`gc` removes stale ones).
pub const OWN_TEMP_PREFIX: &str = ".hfcachefs-";

/// Marker file of a shared blob store (`blobs/.huggingface-shared-blobs`, content `1\n`).
pub const SHARED_MARKER: &str = ".huggingface-shared-blobs";

/// True for `len` lower-case hex digits.
pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// True for a 40- or 64-digit lower-case hex name (a git sha1 or a sha256: a content name).
pub fn is_content_name(s: &str) -> bool {
    is_hex(s, 40) || is_hex(s, 64)
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

/// True for a name the hub puts at the root of a cache: a repo folder, `.locks`,
/// `CACHEDIR.TAG` or the shared `blobs/` store.
pub fn is_cache_root_entry(name: &str) -> bool {
    matches!(name, ".locks" | "CACHEDIR.TAG" | "blobs") || repo_kind(name).is_some()
}

/// The repo folder a store path lies in, if any.
pub fn repo_of(p: &StorePath) -> Option<&OsStr> {
    let first = p.components().next()?;
    is_repo_folder(first).then_some(first)
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

/// True for a shared-store payload name `<name>` in `blobs/<hh>/` (64 hex starting with `hh`).
pub fn is_payload_name(hh: &str, name: &str) -> bool {
    is_hex(name, 64) && name.starts_with(hh)
}

/// The hash of a shared-store payload path `blobs/<hh>/<64 hex>`.
pub fn payload(p: &StorePath) -> Option<&str> {
    let comps: Vec<&str> = p.components().map(OsStr::to_str).collect::<Option<_>>()?;
    match comps.as_slice() {
        [b, hh, name] if *b == "blobs" && is_hex(hh, 2) && is_payload_name(hh, name) => Some(name),
        _ => None,
    }
}

/// True for a path that names an immutable blob: a repo blob `<repo>/blobs/<etag>` (see
/// [`repo_blob`]) or a shared payload `blobs/<hh>/<hash>` (see [`payload`]). Such a name may
/// disappear, never hold other content.
pub fn is_blob_path(p: &StorePath) -> bool {
    repo_blob(p).is_some() || payload(p).is_some()
}

/// True for a name whose content is fixed by the name: a snapshot entry (fixed by its
/// commit) or a blob (fixed by its hash).
pub fn is_fixed_name(p: &StorePath) -> bool {
    let mut comps = p.components();
    let (_repo, kind, _commit) = (comps.next(), comps.next(), comps.next());
    (kind == Some(OsStr::new("snapshots")) && comps.next().is_some()) || is_blob_path(p)
}

/// What a non-blob file left by a client or by hfcachefs is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TempKind {
    /// A download in progress or abandoned (`<etag>[.<8hex>].incomplete`).
    Incomplete,
    /// Any other temporary name (probes, `*.tmp`, `.hfcachefs-*`, …).
    Temp,
}

/// `.<name>.<8hex>.<suffix>`, the hub's temporary names next to a blob.
fn hub_dot_temp(name: &str, suffixes: &[&str]) -> bool {
    let Some(body) = name.strip_prefix('.') else {
        return false;
    };
    suffixes.iter().any(|suf| {
        body.strip_suffix(suf)
            .and_then(|b| b.strip_suffix('.'))
            .and_then(|b| b.rsplit_once('.'))
            .is_some_and(|(_, token)| is_hex(token, 8))
    })
}

/// True for a name hfcachefs itself made ([`crate::hub::temp_name`]).
pub fn is_own_temp(name: &str) -> bool {
    name.starts_with(OWN_TEMP_PREFIX)
}

/// The temporary kind of a name in `<repo>/blobs/`, if it is one.
pub fn blob_dir_temp(name: &str) -> Option<TempKind> {
    if name.ends_with(".incomplete") {
        Some(TempKind::Incomplete)
    } else if is_own_temp(name)
        || name.starts_with("tmp_")
        || hub_dot_temp(name, &["shared", "new", "old"])
    {
        Some(TempKind::Temp)
    } else {
        None
    }
}

/// The hub's download lock of a repo blob: `.locks/<repo>/<etag>.lock`.
pub fn blob_lock(repo: &str, etag: &str) -> Option<StorePath> {
    StorePath::parse(&format!(".locks/{repo}/{etag}.lock"))
}

/// The download lock of an `.incomplete` file `<etag>[.<8hex>].incomplete` in `<repo>/blobs/`,
/// if its name starts with an etag.
pub fn incomplete_lock(repo: &str, name: &str) -> Option<StorePath> {
    let etag = name.split('.').next().unwrap_or("");
    is_content_name(etag)
        .then(|| blob_lock(repo, etag))
        .flatten()
}

/// The shared store's lock of a payload: `blobs/<hh>/<hash>.lock`, as the hub's sweep takes it.
pub fn payload_lock(payload: &StorePath) -> Option<StorePath> {
    sibling_with_suffix(payload, ".lock")
}

/// The manifest of a payload: `blobs/<hh>/<hash>.refs`.
pub fn manifest_path(payload: &StorePath) -> Option<StorePath> {
    sibling_with_suffix(payload, ".refs")
}

fn sibling_with_suffix(p: &StorePath, suffix: &str) -> Option<StorePath> {
    let mut name = p.file_name()?.to_os_string();
    name.push(suffix);
    p.parent().join(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(s: &str) -> StorePath {
        StorePath::parse(s).unwrap()
    }

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
        assert_eq!(
            repo_of(&sp("models--a--b/x")),
            Some(OsStr::new("models--a--b"))
        );
        assert_eq!(repo_of(&sp("other/x")), None);
        for (name, want) in [
            ("models--a--b", true),
            (".locks", true),
            ("CACHEDIR.TAG", true),
            ("blobs", true),
            ("usr", false),
        ] {
            assert_eq!(is_cache_root_entry(name), want, "{name}");
        }
    }

    #[test]
    fn layout_paths() {
        let e = SnapshotEntry::parse(&sp("models--a--b/snapshots/c1/x/y.bin")).unwrap();
        assert_eq!(
            (e.repo.as_str(), e.commit.as_str(), e.rel.as_str()),
            ("models--a--b", "c1", "x/y.bin")
        );
        assert!(SnapshotEntry::parse(&sp("models--a--b/snapshots/c1")).is_none());
        assert!(SnapshotEntry::parse(&sp("other/snapshots/c1/f")).is_none());
        let b = sp(&format!("datasets--a--b/blobs/{}", "0".repeat(40)));
        assert_eq!(repo_blob(&b).map(|r| r.0), Some("datasets--a--b"));
        assert!(repo_blob(&sp("models--a--b/blobs/x.incomplete")).is_none());
    }

    /// One blob rule for the view (immutability) and the tools (candidates): a repo blob
    /// lies in a repo folder, a payload's prefix directory is its first two digits.
    #[test]
    fn blob_paths_by_one_rule() {
        let e40 = "a".repeat(40);
        let p64 = "ab".to_string() + &"c".repeat(62);
        assert!(is_blob_path(&sp(&format!("models--a--b/blobs/{e40}"))));
        assert!(is_blob_path(&sp(&format!("blobs/ab/{p64}"))));
        assert_eq!(payload(&sp(&format!("blobs/ab/{p64}"))), Some(p64.as_str()));
        // Not a repo folder: not a blob (the tools never counted it; neither does the view).
        assert!(!is_blob_path(&sp(&format!("elsewhere/blobs/{e40}"))));
        assert!(!is_blob_path(&sp(&format!("blobs/cd/{p64}"))));
        assert!(!is_blob_path(&sp(&format!("blobs/ab/{p64}.refs"))));
        assert!(is_fixed_name(&sp("models--a--b/snapshots/c1/f")));
        assert!(!is_fixed_name(&sp("models--a--b/refs/main")));
        let p = sp(&format!("blobs/ab/{p64}"));
        assert_eq!(
            manifest_path(&p),
            StorePath::parse(&format!("blobs/ab/{p64}.refs"))
        );
        assert_eq!(
            payload_lock(&p),
            StorePath::parse(&format!("blobs/ab/{p64}.lock"))
        );
        assert_eq!(
            incomplete_lock("models--a--b", &format!("{e40}.0123abcd.incomplete")),
            StorePath::parse(&format!(".locks/models--a--b/{e40}.lock"))
        );
        assert_eq!(incomplete_lock("models--a--b", "x.incomplete"), None);
    }

    #[test]
    fn temp_names() {
        let etag = "a".repeat(40);
        assert_eq!(
            blob_dir_temp(&format!("{etag}.incomplete")),
            Some(TempKind::Incomplete)
        );
        assert_eq!(
            blob_dir_temp(&format!("{etag}.0123abcd.incomplete")),
            Some(TempKind::Incomplete)
        );
        assert_eq!(blob_dir_temp("tmp_5b7e-11aa"), Some(TempKind::Temp));
        assert_eq!(
            blob_dir_temp(&format!(".{etag}.0123abcd.shared")),
            Some(TempKind::Temp)
        );
        assert_eq!(
            blob_dir_temp(&format!(".{etag}.0123abcd.old")),
            Some(TempKind::Temp)
        );
        assert_eq!(blob_dir_temp(".hfcachefs-link-1-2"), Some(TempKind::Temp));
        assert_eq!(blob_dir_temp(&etag), None);
        assert_eq!(blob_dir_temp(&format!(".{etag}.xyz.shared")), None);
    }
}
