//! Inventory of a store: one confined walk that classifies every entry the tools care about.
//!
//! Invariants:
//! - Directories are opened through [`Store::open`](crate::store::Store::open) (`openat2` beneath the root, no links);
//!   entries are examined with `fstatat(AT_SYMLINK_NOFOLLOW)` / `readlinkat` on single names
//!   relative to that descriptor, so nothing outside the store is ever touched.
//! - Every symlink met anywhere in the store is recorded with its [`Resolution`], done by
//!   [`Resolver`](crate::resolve::Resolver) over a tracing [`LinkSource`](crate::resolve::LinkSource) that notes every link crossed on the way
//!   (snapshot → repo blob → shared payload), so reachability counts intermediate hops too.
//! - *Candidates* are the entries `gc` may delete: repo blobs `<repo>/blobs/<40|64 hex>` and,
//!   in a marked shared store, payloads `blobs/<hh>/<64 hex>`. Every other link is a *root*.
//! - Entries that vanish during the walk (another machine deleted them) are skipped; any other
//!   error is recorded in [`Inventory::errors`] (and makes `gc` keep every blob).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::path::StorePath;
use crate::resolve::Odd;
use crate::store::{Kind, Meta};

pub use crate::hub::{
    OWN_TEMP_PREFIX, SHARED_MARKER, TempKind, blob_dir_temp, is_content_name, is_hex, read_small,
    repo_kind,
};

/// A temporary file or link.
#[derive(Clone, Debug)]
pub struct Temp {
    /// Where it is.
    pub path: StorePath,
    /// `lstat` of it.
    pub meta: Meta,
    /// What it is.
    pub kind: TempKind,
    /// The hub lock a live writer of it holds (`.locks/<repo>/<etag>.lock`), if known.
    pub lock: Option<StorePath>,
}

/// Where a link leads, with every link crossed after the link itself.
#[derive(Clone, Debug)]
pub struct Resolution {
    /// The link text as a store path (`None` if empty or leaving the store).
    pub first_hop: Option<StorePath>,
    /// The final file or directory, or why there is none.
    pub target: Result<(StorePath, Meta), Odd>,
    /// Links crossed after the first hop (including the first hop if it is a link).
    pub hops: Vec<StorePath>,
}

/// One symlink of the store.
#[derive(Clone, Debug)]
pub struct Link {
    /// Where the link is.
    pub path: StorePath,
    /// Its raw text.
    pub text: Vec<u8>,
    /// `lstat` of the link itself.
    pub meta: Meta,
    /// Its resolution (shared by links with the same first hop).
    pub res: Arc<Resolution>,
    /// A repo blob or payload position (not a root for reachability).
    pub candidate: bool,
    /// It points at a directory containing it: a loop for any recursive reader.
    pub ancestor_loop: bool,
}

impl Link {
    /// The final target, with links to an enclosing directory counted as loops.
    pub fn outcome(&self) -> Result<(&StorePath, &Meta), Odd> {
        if self.ancestor_loop {
            return Err(Odd::Loop);
        }
        match &self.res.target {
            Ok((p, m)) => Ok((p, m)),
            Err(o) => Err(o.clone()),
        }
    }

    /// The target if it is a regular file.
    pub fn file(&self) -> Option<(&StorePath, &Meta)> {
        self.outcome().ok().filter(|(_, m)| m.kind == Kind::File)
    }
}

/// One entry of a snapshot.
#[derive(Clone, Debug)]
pub enum Entry {
    /// A regular file (a copy, or content moved there).
    File(Meta),
    /// A link: index into [`Inventory::links`].
    Link(usize),
    /// A FIFO, socket or device.
    Special,
}

/// One non-directory entry of `snapshots/<commit>/`.
#[derive(Clone, Debug)]
pub struct SnapEntry {
    /// Store path of the entry.
    pub path: StorePath,
    /// Path inside the revision (`nested/dir/w.bin`).
    pub rel: String,
    /// What it is.
    pub entry: Entry,
}

/// `snapshots/<commit>/` of a repo.
#[derive(Clone, Debug)]
pub struct Revision {
    /// The directory name (a commit hash).
    pub commit: String,
    /// Entries, sorted by path.
    pub entries: Vec<SnapEntry>,
}

/// A content-named entry of `<repo>/blobs/` or of the shared store.
#[derive(Clone, Debug)]
pub struct Blob {
    /// Where it is.
    pub path: StorePath,
    /// Its name: the content hash (40 or 64 hex).
    pub name: String,
    /// `lstat` of the entry.
    pub meta: Meta,
    /// Index into [`Inventory::links`] when the entry is a link (to a shared payload).
    pub link: Option<usize>,
}

/// One repo folder (`models--org--name`, `datasets--…`, `spaces--…`, `kernels--…`).
#[derive(Clone, Debug)]
pub struct Repo {
    /// The folder name.
    pub folder: String,
    /// `model`, `dataset`, `space` or `kernel`.
    pub kind: &'static str,
    /// `org/name`.
    pub id: String,
    /// Ref name (`main`, `refs/pr/1`) → its content (a commit).
    pub refs: BTreeMap<String, String>,
    /// Revisions, sorted by commit.
    pub revisions: Vec<Revision>,
    /// Content-named entries of `blobs/`, sorted by name.
    pub blobs: Vec<Blob>,
    /// `.incomplete` files and temporaries anywhere in the repo.
    pub temps: Vec<Temp>,
}

/// Everything the tools need to know about a store.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Repos, sorted by folder.
    pub repos: Vec<Repo>,
    /// `blobs/` at the root holds the marker of a shared store.
    pub shared_marker: bool,
    /// Payloads of the shared store (only when marked), sorted by path.
    pub payloads: Vec<Blob>,
    /// Temporaries of the shared store.
    pub shared_temps: Vec<Temp>,
    /// Every symlink met.
    pub links: Vec<Link>,
    /// Entries that could not be read (path, error).
    pub errors: Vec<(StorePath, String)>,
    /// True if the whole store was walked (no repo filter, not interrupted).
    pub complete: bool,
}

/// True if `query` names the repo: its folder, its id, or `<type>s/<id>`.
pub fn repo_matches(repo: &Repo, query: &str) -> bool {
    let q = query.trim_end_matches('/');
    q == repo.folder || q == repo.id || q == format!("{}s/{}", repo.kind, repo.id)
}

mod walk;
pub use walk::{Options, build};

/// What the roots of a store (every link that is not a candidate, and every regular file in
/// a snapshot) reach.
#[derive(Debug, Default)]
pub struct Reach {
    paths: HashSet<StorePath>,
    dirs: Vec<StorePath>,
    inodes: HashSet<(u64, u64)>,
}

impl Reach {
    /// True if a root reaches the entry at `p` (by path, through a directory link, or as
    /// the same inode as a snapshot file).
    pub fn reaches(&self, p: &StorePath, meta: &Meta) -> bool {
        self.paths.contains(p)
            || self.dirs.iter().any(|d| p.starts_with(d))
            || (meta.kind == Kind::File && self.inodes.contains(&(meta.dev, meta.ino)))
    }
}

impl Inventory {
    /// The regular file a blob or payload entry holds or links to (its real path and meta).
    pub fn blob_file<'a>(&'a self, b: &'a Blob) -> Option<(&'a StorePath, &'a Meta)> {
        match b.link {
            None => (b.meta.kind == Kind::File).then_some((&b.path, &b.meta)),
            Some(i) => self.links[i].file(),
        }
    }

    /// The regular file a snapshot entry shows (itself, or its link's target).
    pub fn entry_file<'a>(&'a self, e: &'a SnapEntry) -> Option<(&'a StorePath, &'a Meta)> {
        match &e.entry {
            Entry::File(m) => Some((&e.path, m)),
            Entry::Link(i) => self.links[*i].file(),
            Entry::Special => None,
        }
    }

    /// Reachability from the roots.
    pub fn reach(&self) -> Reach {
        let mut r = Reach::default();
        for link in self.links.iter().filter(|l| !l.candidate) {
            r.add(link);
        }
        for repo in &self.repos {
            for rev in &repo.revisions {
                for e in &rev.entries {
                    if let Entry::File(m) = &e.entry {
                        r.inodes.insert((m.dev, m.ino));
                    }
                }
            }
        }
        r
    }
}

impl Reach {
    /// Adds everything one link reaches.
    pub fn add(&mut self, link: &Link) {
        if let Some(f) = &link.res.first_hop {
            self.paths.insert(f.clone());
        }
        self.paths.extend(link.res.hops.iter().cloned());
        if let Ok((p, m)) = &link.res.target {
            self.paths.insert(p.clone());
            if m.kind == Kind::Dir && !link.ancestor_loop {
                self.dirs.push(p.clone());
            }
        }
    }
}

// The tests build stores with Unix symlinks.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::tools::Ui;
    use std::os::unix::fs::symlink;

    #[test]
    fn walk_traces_chains_and_classifies() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (e1, e2, p) = (
            "1".repeat(40),
            "2".repeat(64),
            "ab".to_string() + &"c".repeat(62),
        );
        let repo = root.join("models--a--b");
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots/c1/sub")).unwrap();
        std::fs::create_dir_all(repo.join("refs/refs/pr")).unwrap();
        std::fs::create_dir_all(root.join("blobs/ab")).unwrap();
        std::fs::write(root.join("blobs").join(SHARED_MARKER), "1\n").unwrap();
        std::fs::write(root.join("blobs/ab").join(&p), b"payload").unwrap();
        std::fs::write(repo.join("blobs").join(&e1), b"one").unwrap();
        symlink(format!("../../blobs/ab/{p}"), repo.join("blobs").join(&e2)).unwrap();
        std::fs::write(repo.join("blobs").join(format!("{e1}.incomplete")), b"x").unwrap();
        symlink(
            format!("../../../blobs/{e2}"),
            repo.join("snapshots/c1/sub/s"),
        )
        .unwrap();
        symlink(format!("../../blobs/{e1}"), repo.join("snapshots/c1/f")).unwrap();
        std::fs::write(repo.join("snapshots/c1/copy"), b"one").unwrap();
        std::fs::write(repo.join("refs/main"), "c1").unwrap();
        std::fs::write(repo.join("refs/refs/pr/1"), "c1\n").unwrap();
        let store = Store::open_root(root).unwrap();
        let inv = build(&store, &Options::default(), &Ui::quiet()).unwrap();
        assert!(inv.complete && inv.shared_marker && inv.errors.is_empty());
        let r = &inv.repos[0];
        assert_eq!((r.kind, r.id.as_str()), ("model", "a/b"));
        assert_eq!(r.refs.get("refs/pr/1").map(String::as_str), Some("c1"));
        let rels: Vec<_> = r.revisions[0]
            .entries
            .iter()
            .map(|e| e.rel.as_str())
            .collect();
        assert_eq!(rels, ["copy", "f", "sub/s"]);
        assert_eq!(r.blobs.len(), 2);
        assert_eq!(r.temps.len(), 1);
        assert_eq!(
            r.temps[0].lock,
            StorePath::parse(&format!(".locks/models--a--b/{e1}.lock"))
        );
        assert_eq!(inv.payloads.len(), 1);
        let reach = inv.reach();
        // The payload is reached through the repo blob link (two hops).
        assert!(reach.reaches(&inv.payloads[0].path, &inv.payloads[0].meta));
        assert!(reach.reaches(&r.blobs[1].path, &r.blobs[1].meta));
        let Entry::Link(i) = r.revisions[0].entries[2].entry else {
            panic!("link expected")
        };
        assert_eq!(inv.links[i].file().unwrap().1.size, 7);
    }
}
