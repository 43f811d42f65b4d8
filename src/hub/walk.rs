//! Walking the store the way every user of the hub layout must: what counts as a link, how a
//! directory is listed without following anything, and the one walk over a repo's
//! `snapshots/` that the view (finding the links that point at a file, one repo) and the
//! tools' inventory (every repo, with progress and errors) share.
//!
//! Invariants:
//! - **What counts as a link** is one rule, [`is_link`]: a symlink, or a regular file that
//!   encodes one (an XSym file, where the store counts them; see
//!   [`LinkSource::is_link`]). Every walk here reports such a file with [`Kind::Symlink`].
//! - Directories are opened through [`Store::open`] (`openat2` beneath the root, no links);
//!   on Unix entries are examined with `fstatat(AT_SYMLINK_NOFOLLOW)` / `readlinkat` on single
//!   names relative to that descriptor, so nothing outside the store is ever touched.
//! - Listings are sorted by name, so walks visit entries in a stable order.
//! - Entries that vanish during a walk (another machine deleted them) are skipped; a
//!   directory that vanishes is not an error.
//! - The snapshot walk never descends through a link: a linked directory is an entry.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::ops::ControlFlow;
#[cfg(unix)]
use std::os::fd::OwnedFd;
#[cfg(unix)]
use std::os::unix::ffi::OsStrExt;

#[cfg(unix)]
use rustix::fs::OFlags;

#[cfg(windows)]
use crate::compat::libc;
use crate::path::StorePath;
use crate::resolve::{LinkSource, hop_of};
use crate::store::{Kind, Meta, Store};

/// True if the entry `p` with metadata `meta` is a link: a symlink, or an XSym file where the
/// store counts those ([`LinkSource::is_link`]). The view, `keep`, `gc` and the inventory all
/// ask this, so a link the view shows as a hard link is a link to the tools too.
pub fn is_link(store: &Store, p: &StorePath, meta: &Meta) -> bool {
    store.is_link(p, meta)
}

/// The entry's kind with links that are files (XSym) counted as [`Kind::Symlink`].
pub fn link_kind(store: &Store, p: &StorePath, meta: &Meta) -> Kind {
    if meta.kind == Kind::File && is_link(store, p, meta) {
        Kind::Symlink
    } else {
        meta.kind
    }
}

/// Where the link at `p` points (one hop), if `p` is a link whose text stays in the store;
/// `None` if it is gone or no link, an error if the store cannot tell (a caller that keeps
/// content for a link's sake must not take an unreadable link for none).
pub fn first_hop(store: &Store, p: &StorePath) -> io::Result<Option<StorePath>> {
    let meta = match store.lstat(p) {
        Ok(m) => m,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !is_link(store, p, &meta) {
        return Ok(None);
    }
    hop_from(p, store.readlink(p), store)
}

/// The first hop of the link `p` whose text was read as `text`: a link removed or replaced
/// meanwhile (`ENOENT`, `EINVAL`) is none; any other error is the store's.
fn hop_from(
    p: &StorePath,
    text: io::Result<Vec<u8>>,
    store: &Store,
) -> io::Result<Option<StorePath>> {
    match text {
        Ok(t) => Ok(hop_of(p, &t, store.aliases()).ok()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINVAL)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A directory listing: the open directory and its entries (sorted by name) with `lstat`.
pub struct Listing {
    /// The open directory (Unix: links are read relative to it); `None` for a store whose
    /// backend has no directory descriptors (listed by path, see [`list_by_path`]).
    #[cfg(unix)]
    fd: Option<OwnedFd>,
    /// Names and `lstat`s, sorted by name.
    pub entries: Vec<(OsString, Meta)>,
    /// Texts of the symlinks among them, read with the `lstat`s.
    texts: HashMap<OsString, Vec<u8>>,
}

impl Listing {
    /// The text of the link `path` (named `name` in this directory, `lstat` `meta`): the text
    /// read with the listing, else read now (an XSym file's text is in its content).
    pub fn link_text(
        &self,
        store: &Store,
        path: &StorePath,
        name: &OsStr,
        meta: &Meta,
    ) -> io::Result<Vec<u8>> {
        if let Some(t) = self.texts.get(name) {
            return Ok(t.clone());
        }
        #[cfg(unix)]
        if meta.kind == Kind::Symlink
            && let Some(fd) = &self.fd
        {
            return rustix::fs::readlinkat(fd, name, Vec::new())
                .map(|t| t.into_bytes())
                .map_err(io::Error::from);
        }
        let _ = meta;
        store.readlink(path)
    }
}

/// Directories at least this large are examined on [`STAT_THREADS`] threads when the caller
/// asks for it: on a NAS (and for uncached links, whose text is in a data block) each
/// `fstatat`/`readlinkat` waits for the disk or the network, and the waits overlap.
#[cfg(unix)]
const PAR_MIN: usize = 64;
#[cfg(unix)]
const STAT_THREADS: usize = 8;

#[cfg(unix)]
type Examined = Option<(Meta, Option<Vec<u8>>)>;

/// Lists `dir`; `parallel` examines large directories on several threads (the tools' whole
/// store walks; a request of the view stays on its own thread).
#[cfg(unix)]
pub fn list(store: &Store, dir: &StorePath, parallel: bool) -> io::Result<Listing> {
    let fd = match store.open(dir, OFlags::DIRECTORY | OFlags::RDONLY, 0) {
        Ok(fd) => fd,
        // A backend without directory descriptors (the in-memory model store).
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            return list_by_path(store, dir);
        }
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    {
        let mut d = rustix::fs::Dir::read_from(&fd)?;
        while let Some(ent) = d.read() {
            let ent = ent?;
            let name = ent.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_os_string());
            }
        }
    }
    names.sort();
    let one = |name: &OsString| -> io::Result<Examined> {
        match Meta::at(&fd, name) {
            Ok(meta) => {
                let text = (meta.kind == Kind::Symlink)
                    .then(|| rustix::fs::readlinkat(&fd, name, Vec::new()).ok())
                    .flatten()
                    .map(|t| t.into_bytes());
                Ok(Some((meta, text)))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None), // removed meanwhile
            Err(e) => Err(e),
        }
    };
    let examined: Vec<io::Result<Examined>> = if !parallel || names.len() < PAR_MIN {
        names.iter().map(one).collect()
    } else {
        let chunk = names.len().div_ceil(STAT_THREADS);
        let one = &one;
        std::thread::scope(|s| {
            let handles: Vec<_> = names
                .chunks(chunk)
                .map(|c| s.spawn(move || c.iter().map(one).collect::<Vec<_>>()))
                .collect();
            let mut all = Vec::with_capacity(names.len());
            for h in handles {
                all.extend(
                    h.join()
                        .map_err(|_| io::Error::other("walker thread panicked"))?,
                );
            }
            Ok::<_, io::Error>(all)
        })?
    };
    let mut entries = Vec::with_capacity(names.len());
    let mut texts = HashMap::new();
    for (name, r) in names.into_iter().zip(examined) {
        if let Some((meta, text)) = r? {
            if let Some(t) = text {
                texts.insert(name.clone(), t);
            }
            entries.push((name, meta));
        }
    }
    Ok(Listing {
        fd: Some(fd),
        entries,
        texts,
    })
}

/// Windows: the store layer has no descriptor-relative calls.
#[cfg(windows)]
pub fn list(store: &Store, dir: &StorePath, _parallel: bool) -> io::Result<Listing> {
    list_by_path(store, dir)
}

/// Lists `dir` through the store's path calls: every entry is examined by its store path,
/// which the store walks one component at a time without following links (Windows, and
/// stores without directory descriptors). Errors of the store are passed on, an entry
/// removed meanwhile is left out.
fn list_by_path(store: &Store, dir: &StorePath) -> io::Result<Listing> {
    let mut names: Vec<OsString> = store.read_dir(dir)?.into_iter().map(|e| e.name).collect();
    names.sort();
    let mut entries = Vec::with_capacity(names.len());
    let mut texts = HashMap::new();
    for name in names {
        let Some(p) = dir.join(&name) else { continue };
        let meta = match store.lstat(&p) {
            Ok(m) => m,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        if meta.kind == Kind::Symlink
            && let Ok(t) = store.readlink(&p)
        {
            texts.insert(name.clone(), t);
        }
        entries.push((name, meta));
    }
    Ok(Listing {
        #[cfg(unix)]
        fd: None,
        entries,
        texts,
    })
}

/// One non-directory entry met below `<repo>/snapshots/`.
pub struct Found<'a> {
    /// Its store path.
    pub path: StorePath,
    /// Its name in its directory.
    pub name: &'a OsStr,
    /// Its `lstat`.
    pub meta: &'a Meta,
    /// Its kind, XSym files counted as links ([`link_kind`]).
    pub kind: Kind,
    /// The revision (commit directory) it is in; `None` directly in `snapshots/`.
    pub commit: Option<&'a str>,
    /// Its path inside the revision, `/`-separated.
    pub rel: String,
    /// The directory listing it came from (for [`Found::link_text`]).
    pub listing: &'a Listing,
}

impl Found<'_> {
    /// The text of this entry if it is a link.
    pub fn link_text(&self, store: &Store) -> io::Result<Vec<u8>> {
        self.listing
            .link_text(store, &self.path, self.name, self.meta)
    }

    /// Where this link points (one hop), as [`first_hop`] tells it.
    pub fn first_hop(&self, store: &Store) -> io::Result<Option<StorePath>> {
        if self.kind != Kind::Symlink {
            return Ok(None);
        }
        hop_from(&self.path, self.link_text(store), store)
    }
}

/// What a walk over `snapshots/` tells its user. Every method but [`SnapshotVisitor::entry`]
/// has a default that ignores the event.
pub trait SnapshotVisitor {
    /// Before `dir` is listed: `Break` ends the whole walk (interrupted, budget spent).
    fn enter(&mut self, _dir: &StorePath) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// `dir` was listed with `n` entries.
    fn listed(&mut self, _dir: &StorePath, _n: usize) {}
    /// `dir` could not be listed (a directory removed meanwhile is not reported).
    fn error(&mut self, _dir: &StorePath, _e: io::Error) {}
    /// A revision (a directory in `snapshots/`) begins; its entries follow.
    fn begin_revision(&mut self, _commit: &str) {}
    /// The revision begun last is complete.
    fn end_revision(&mut self) {}
    /// A non-directory entry (a file, a link, a special file).
    fn entry(&mut self, found: Found<'_>);
}

/// Walks the `snapshots/` directory `snaps` (of one repo), depth first in name order.
pub fn walk_snapshots(
    store: &Store,
    snaps: &StorePath,
    parallel: bool,
    v: &mut impl SnapshotVisitor,
) -> ControlFlow<()> {
    walk_dir(store, None, snaps, "", parallel, v)
}

/// Walks `dir`: `snapshots/` itself when `commit` is `None` (its directories are revisions),
/// else a directory of revision `commit` at path `rel` (`""` or ending in `/`) inside it.
fn walk_dir(
    store: &Store,
    commit: Option<&str>,
    dir: &StorePath,
    rel: &str,
    parallel: bool,
    v: &mut impl SnapshotVisitor,
) -> ControlFlow<()> {
    let Some(l) = list_for(store, dir, parallel, v)? else {
        return ControlFlow::Continue(());
    };
    for (name, meta) in &l.entries {
        let Some(p) = dir.join(name) else { continue };
        let k = link_kind(store, &p, meta);
        let rel = format!("{rel}{}", name.to_string_lossy());
        match (k, commit) {
            (Kind::Dir, None) => {
                v.begin_revision(&rel);
                let flow = walk_dir(store, Some(&rel), &p, "", parallel, v);
                v.end_revision();
                flow?;
            }
            (Kind::Dir, Some(c)) => walk_dir(store, Some(c), &p, &format!("{rel}/"), parallel, v)?,
            _ => v.entry(Found {
                path: p,
                name,
                meta,
                kind: k,
                commit,
                rel,
                listing: &l,
            }),
        }
    }
    ControlFlow::Continue(())
}

fn list_for(
    store: &Store,
    dir: &StorePath,
    parallel: bool,
    v: &mut impl SnapshotVisitor,
) -> ControlFlow<(), Option<Listing>> {
    v.enter(dir)?;
    ControlFlow::Continue(match list(store, dir, parallel) {
        Ok(l) => {
            v.listed(dir, l.entries.len());
            Some(l)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
        Err(e) => {
            v.error(dir, e);
            None
        }
    })
}

// The tests build stores with Unix symlinks.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[derive(Default)]
    struct Seen {
        revs: Vec<String>,
        entries: Vec<(Option<String>, String, Kind, Option<StorePath>)>,
        budget: Option<usize>,
    }

    impl SnapshotVisitor for (&Store, &mut Seen) {
        fn enter(&mut self, _dir: &StorePath) -> ControlFlow<()> {
            match self.1.budget {
                Some(0) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
        fn listed(&mut self, _dir: &StorePath, n: usize) {
            if let Some(b) = &mut self.1.budget {
                *b = b.saturating_sub(n);
            }
        }
        fn begin_revision(&mut self, commit: &str) {
            self.1.revs.push(commit.to_string());
        }
        fn entry(&mut self, f: Found<'_>) {
            let hop = f.first_hop(self.0).unwrap();
            self.1
                .entries
                .push((f.commit.map(str::to_string), f.rel, f.kind, hop));
        }
    }

    #[test]
    fn walks_revisions_in_order_with_links_and_xsym() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let snaps = root.join("models--a--b/snapshots");
        std::fs::create_dir_all(snaps.join("c2/sub")).unwrap();
        std::fs::create_dir_all(snaps.join("c1")).unwrap();
        symlink("../../../blobs/x", snaps.join("c2/sub/s")).unwrap();
        std::fs::write(snaps.join("c2/f"), b"copy").unwrap();
        std::fs::write(
            snaps.join("c1/x"),
            crate::links::xsym::format(b"../../blobs/y").unwrap(),
        )
        .unwrap();
        symlink("c2", snaps.join("latest")).unwrap();
        let store = Store::open_root(root).unwrap();
        store.set_xsym(true);
        let sp = |s: &str| StorePath::parse(s).unwrap();
        let mut seen = Seen::default();
        let flow = walk_snapshots(
            &store,
            &sp("models--a--b/snapshots"),
            false,
            &mut (&store, &mut seen),
        );
        assert!(flow.is_continue());
        assert_eq!(seen.revs, ["c1", "c2"]);
        let got: Vec<_> = seen
            .entries
            .iter()
            .map(|(c, r, k, h)| (c.as_deref(), r.as_str(), *k, h.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Some("c1"),
                    "x",
                    Kind::Symlink,
                    Some(sp("models--a--b/blobs/y"))
                ),
                (Some("c2"), "f", Kind::File, None),
                (
                    Some("c2"),
                    "sub/s",
                    Kind::Symlink,
                    Some(sp("models--a--b/blobs/x"))
                ),
                (
                    None,
                    "latest",
                    Kind::Symlink,
                    Some(sp("models--a--b/snapshots/c2"))
                ),
            ]
        );
        // A spent budget stops the walk before the next directory.
        let mut seen = Seen {
            budget: Some(1),
            ..Seen::default()
        };
        let flow = walk_snapshots(
            &store,
            &sp("models--a--b/snapshots"),
            true,
            &mut (&store, &mut seen),
        );
        assert!(flow.is_break());
        assert!(seen.entries.is_empty());
    }

    /// One link rule: a symlink anywhere; an XSym file only where the store counts them
    /// (the `xsym` option) and never in `blobs/` (Hub content); every walk reports a link
    /// file as a link.
    #[test]
    fn one_link_rule() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let xsym = crate::links::xsym::format(b"../x").unwrap();
        std::fs::create_dir_all(root.join("models--a--b/blobs")).unwrap();
        std::fs::create_dir_all(root.join("models--a--b/snapshots/c1")).unwrap();
        std::fs::write(root.join("models--a--b/snapshots/c1/f"), &xsym).unwrap();
        std::fs::write(root.join("models--a--b/blobs/f"), &xsym).unwrap();
        symlink("../x", root.join("models--a--b/blobs/l")).unwrap();
        let store = Store::open_root(root).unwrap();
        let sp = |s: &str| StorePath::parse(s).unwrap();
        let is = |s: &str| {
            let p = sp(s);
            let m = store.lstat(&p).unwrap();
            (is_link(&store, &p, &m), link_kind(&store, &p, &m))
        };
        assert_eq!(is("models--a--b/blobs/l"), (true, Kind::Symlink));
        assert_eq!(is("models--a--b/snapshots/c1/f"), (false, Kind::File));
        store.set_xsym(true);
        assert_eq!(is("models--a--b/snapshots/c1/f"), (true, Kind::Symlink));
        assert_eq!(is("models--a--b/blobs/f"), (false, Kind::File));
        assert_eq!(
            first_hop(&store, &sp("models--a--b/snapshots/c1/f")).unwrap(),
            Some(sp("models--a--b/snapshots/x"))
        );
    }
}
