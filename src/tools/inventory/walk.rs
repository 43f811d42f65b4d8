//! The walk that builds an [`Inventory`]: directories opened through [`Store::open`]
//! (`openat2` beneath the root, no links), entries examined with `fstatat(AT_SYMLINK_NOFOLLOW)`
//! and `readlinkat` on single names relative to that descriptor, links resolved by
//! [`Resolver`] over a [`Tracer`] that notes every link crossed. Resolutions are memoised by
//! first hop (100k snapshot links to a few thousand blobs resolve each blob once).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io;
#[cfg(unix)]
use std::os::fd::OwnedFd;
#[cfg(unix)]
use std::os::unix::ffi::OsStrExt;

#[cfg(windows)]
use crate::compat::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use indicatif::ProgressBar;
#[cfg(unix)]
use rustix::fs::{AtFlags, OFlags};

use super::{
    Blob, Entry, Inventory, Link, OWN_TEMP_PREFIX, Repo, Resolution, Revision, SHARED_MARKER,
    SnapEntry, Temp, TempKind, blob_dir_temp, is_content_name, is_hex, read_small, repo_kind,
    repo_matches,
};
use crate::path::{StorePath, link_target};
use crate::resolve::{LinkSource, Odd, Resolver};
use crate::store::{Kind, Meta, Store};
use crate::tools::Ui;

/// A directory listing: the open directory and its entries (sorted by name) with `lstat`.
struct Listing {
    /// The open directory (Unix: links are read relative to it).
    #[cfg(unix)]
    fd: OwnedFd,
    entries: Vec<(OsString, Meta)>,
    /// Texts of the symlinks among them, read with the `lstat`s.
    texts: HashMap<OsString, Vec<u8>>,
}

/// Directories at least this large are examined on [`STAT_THREADS`] threads: on a NAS (and
/// for uncached links, whose text is in a data block) each `fstatat`/`readlinkat` waits for
/// the disk or the network, and the waits overlap.
#[cfg(unix)]
const PAR_MIN: usize = 64;
#[cfg(unix)]
const STAT_THREADS: usize = 8;

#[cfg(unix)]
type Examined = Option<(Meta, Option<Vec<u8>>)>;

#[cfg(unix)]
fn list(store: &Store, dir: &StorePath) -> io::Result<Listing> {
    let fd = store.open(dir, OFlags::DIRECTORY | OFlags::RDONLY, 0)?;
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
        match rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let meta = Meta::from_stat(&st);
                let text = (meta.kind == Kind::Symlink)
                    .then(|| rustix::fs::readlinkat(&fd, name, Vec::new()).ok())
                    .flatten()
                    .map(|t| t.into_bytes());
                Ok(Some((meta, text)))
            }
            Err(rustix::io::Errno::NOENT) => Ok(None), // removed meanwhile
            Err(e) => Err(e.into()),
        }
    };
    let examined: Vec<io::Result<Examined>> = if names.len() < PAR_MIN {
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
    Ok(Listing { fd, entries, texts })
}

/// Windows: the store layer has no descriptor-relative calls; every entry is examined by its
/// store path, which `store::win` walks one component at a time without following links.
#[cfg(windows)]
fn list(store: &Store, dir: &StorePath) -> io::Result<Listing> {
    let mut names: Vec<OsString> = store.read_dir(dir)?.into_iter().map(|e| e.name).collect();
    names.sort();
    let mut entries = Vec::with_capacity(names.len());
    let mut texts = HashMap::new();
    for name in names {
        let Some(p) = dir.join(&name) else { continue };
        let meta = match store.lstat(&p) {
            Ok(m) => m,
            Err(e) if e.raw_os_error() == Some(crate::compat::libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        if meta.kind == Kind::Symlink
            && let Ok(t) = store.readlink(&p)
        {
            texts.insert(name.clone(), t);
        }
        entries.push((name, meta));
    }
    Ok(Listing { entries, texts })
}

/// The text of the link `path` (named `name` in the listed directory `dir`).
#[cfg(unix)]
fn read_link(
    store: &Store,
    dir: &Listing,
    path: &StorePath,
    name: &OsStr,
    meta: &Meta,
) -> io::Result<Vec<u8>> {
    if meta.kind == Kind::Symlink {
        rustix::fs::readlinkat(&dir.fd, name, Vec::new())
            .map(|t| t.into_bytes())
            .map_err(io::Error::from)
    } else {
        store.readlink(path)
    }
}

/// The text of the link `path`: read by its store path (see [`list`]).
#[cfg(windows)]
fn read_link(
    store: &Store,
    _dir: &Listing,
    path: &StorePath,
    _name: &OsStr,
    _meta: &Meta,
) -> io::Result<Vec<u8>> {
    store.readlink(path)
}

/// A [`LinkSource`] that notes every link the resolver reads.
struct Tracer<'s> {
    store: &'s Store,
    hops: RefCell<Vec<StorePath>>,
}

impl LinkSource for Tracer<'_> {
    fn lstat(&self, p: &StorePath) -> io::Result<Meta> {
        self.store.lstat(p)
    }
    fn readlink(&self, p: &StorePath) -> io::Result<Vec<u8>> {
        self.hops.borrow_mut().push(p.clone());
        self.store.readlink(p)
    }
    fn aliases(&self) -> &[PathBuf] {
        self.store.aliases()
    }
    fn read_head(&self, p: &StorePath, max: usize) -> io::Result<Vec<u8>> {
        self.store.read_head(p, max)
    }
    fn xsym_links(&self, p: &StorePath) -> bool {
        self.store.xsym_links(p)
    }
}

/// What to walk.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Only repos matching one of these queries (see [`repo_matches`]); `None` walks all.
    pub repos: Option<Vec<String>>,
}

struct Walker<'s> {
    store: &'s Store,
    memo: HashMap<StorePath, Arc<Resolution>>,
    inv: Inventory,
    progress: ProgressBar,
    ui: &'s Ui,
}

/// Walks the store. Fails only if the store root cannot be listed.
pub fn build(store: &Store, opts: &Options, ui: &Ui) -> Result<Inventory, String> {
    let root = StorePath::root();
    let listing = list(store, &root).map_err(|e| format!("cannot list the store: {e}"))?;
    let mut w = Walker {
        store,
        memo: HashMap::new(),
        inv: Inventory::default(),
        progress: ui.spinner("walking the store"),
        ui,
    };
    let full = opts.repos.is_none();
    w.progress.inc(listing.entries.len() as u64);
    for (name, meta) in &listing.entries {
        let Some(path) = root.join(name) else {
            continue;
        };
        let text = name.to_string_lossy();
        let kind = w.kind(&path, meta);
        match (kind, repo_kind(&text)) {
            (Kind::Dir, Some((kind, id))) => {
                let repo = Repo {
                    folder: text.into_owned(),
                    kind,
                    id,
                    refs: BTreeMap::new(),
                    revisions: Vec::new(),
                    blobs: Vec::new(),
                    temps: Vec::new(),
                };
                let wanted = opts
                    .repos
                    .as_ref()
                    .is_none_or(|qs| qs.iter().any(|q| repo_matches(&repo, q)));
                if wanted {
                    w.repo(repo, &path);
                }
            }
            (Kind::Dir, None) if full && text == "blobs" => w.shared(&path),
            (Kind::Dir, None) if full => w.generic(&path),
            (Kind::Symlink, _) if full => {
                w.link(&listing, &path, meta, false);
            }
            _ => {}
        }
    }
    w.progress.finish_and_clear();
    let mut inv = w.inv;
    inv.complete = full && !ui.interrupted();
    Ok(inv)
}

impl Walker<'_> {
    /// The entry's kind with link files that encode a symlink (XSym, see
    /// [`LinkSource::is_link`]) counted as links, as the view counts them.
    fn kind(&self, p: &StorePath, meta: &Meta) -> Kind {
        if meta.kind == Kind::File && self.store.is_link(p, meta) {
            Kind::Symlink
        } else {
            meta.kind
        }
    }

    fn list(&mut self, dir: &StorePath) -> Option<Listing> {
        if self.ui.interrupted() {
            return None;
        }
        match list(self.store, dir) {
            Ok(l) => {
                self.progress.inc(l.entries.len() as u64);
                Some(l)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
            Err(e) => {
                self.inv.errors.push((dir.clone(), e.to_string()));
                None
            }
        }
    }

    /// Records the link `path` (in the directory `dir`); returns its index.
    fn link(&mut self, dir: &Listing, path: &StorePath, meta: &Meta, candidate: bool) -> usize {
        let name = path.file_name().unwrap_or_default();
        let text = if let Some(t) = dir.texts.get(name) {
            Ok(t.clone())
        } else {
            read_link(self.store, dir, path, name, meta)
        };
        let res = match &text {
            Err(e) => Arc::new(Resolution {
                first_hop: None,
                target: Err(Odd::Unreadable(e.raw_os_error().unwrap_or(libc::EIO))),
                hops: Vec::new(),
            }),
            Ok(t) => self.resolve(path, t),
        };
        let ancestor_loop = matches!(&res.target,
            Ok((p, m)) if m.kind == Kind::Dir && path.parent().starts_with(p));
        self.inv.links.push(Link {
            path: path.clone(),
            text: text.unwrap_or_default(),
            meta: meta.clone(),
            res,
            candidate,
            ancestor_loop,
        });
        self.inv.links.len() - 1
    }

    fn resolve(&mut self, path: &StorePath, text: &[u8]) -> Arc<Resolution> {
        let odd = |o| {
            Arc::new(Resolution {
                first_hop: None,
                target: Err(o),
                hops: Vec::new(),
            })
        };
        if text.is_empty() {
            return odd(Odd::Dangling);
        }
        let Ok(first) = link_target(&path.parent(), text, self.store.aliases()) else {
            return odd(Odd::Escapes);
        };
        if let Some(r) = self.memo.get(&first) {
            return r.clone();
        }
        let tracer = Tracer {
            store: self.store,
            hops: RefCell::new(Vec::new()),
        };
        let target = Resolver::new(&tracer)
            .resolve_path(&first)
            .map(|t| (t.path, t.meta));
        let r = Arc::new(Resolution {
            first_hop: Some(first.clone()),
            target,
            hops: tracer.hops.into_inner(),
        });
        self.memo.insert(first, r.clone());
        r
    }

    /// Any directory outside the hub layout: only its links matter.
    fn generic(&mut self, dir: &StorePath) {
        let Some(l) = self.list(dir) else { return };
        for (name, meta) in &l.entries {
            let Some(p) = dir.join(name) else { continue };
            let k = self.kind(&p, meta);
            match k {
                Kind::Dir => self.generic(&p),
                Kind::Symlink => {
                    self.link(&l, &p, meta, false);
                }
                _ => {}
            }
        }
    }

    fn repo(&mut self, mut repo: Repo, dir: &StorePath) {
        if let Some(l) = self.list(dir) {
            for (name, meta) in &l.entries {
                let Some(p) = dir.join(name) else { continue };
                let k = self.kind(&p, meta);
                match (k, name.to_str()) {
                    (Kind::Dir, Some("blobs")) => self.repo_blobs(&mut repo, &p),
                    (Kind::Dir, Some("snapshots")) => self.snapshots(&mut repo, &p),
                    (Kind::Dir, Some("refs")) => self.refs(&mut repo, &p, ""),
                    (Kind::Dir, Some("trees")) => self.trees(&mut repo, &p),
                    (Kind::Dir, _) => self.generic(&p),
                    (Kind::Symlink, _) => {
                        self.link(&l, &p, meta, false);
                    }
                    _ => {}
                }
            }
        }
        self.inv.repos.push(repo);
    }

    fn repo_blobs(&mut self, repo: &mut Repo, dir: &StorePath) {
        let Some(l) = self.list(dir) else { return };
        for (name, meta) in &l.entries {
            let Some(p) = dir.join(name) else { continue };
            let k = self.kind(&p, meta);
            let text = name.to_str().unwrap_or("");
            let file_or_link = matches!(k, Kind::File | Kind::Symlink);
            if file_or_link && is_content_name(text) {
                let link = (k == Kind::Symlink).then(|| self.link(&l, &p, meta, true));
                repo.blobs.push(Blob {
                    path: p,
                    name: text.to_string(),
                    meta: meta.clone(),
                    link,
                });
            } else if let Some(kind) = blob_dir_temp(text).filter(|_| file_or_link) {
                if k == Kind::Symlink {
                    self.link(&l, &p, meta, false);
                }
                let etag = text.split('.').next().unwrap_or("");
                let lock = (kind == TempKind::Incomplete && is_content_name(etag))
                    .then(|| StorePath::parse(&format!(".locks/{}/{etag}.lock", repo.folder)))
                    .flatten();
                repo.temps.push(Temp {
                    path: p,
                    meta: meta.clone(),
                    kind,
                    lock,
                });
            } else if k == Kind::Symlink {
                self.link(&l, &p, meta, false);
            } else if k == Kind::Dir {
                self.generic(&p);
            }
        }
    }

    fn snapshots(&mut self, repo: &mut Repo, dir: &StorePath) {
        let Some(l) = self.list(dir) else { return };
        for (name, meta) in &l.entries {
            let Some(p) = dir.join(name) else { continue };
            let k = self.kind(&p, meta);
            match k {
                Kind::Dir => {
                    let mut rev = Revision {
                        commit: name.to_string_lossy().into_owned(),
                        entries: Vec::new(),
                    };
                    self.snapshot_dir(repo, &mut rev, &p, "");
                    repo.revisions.push(rev);
                }
                Kind::Symlink => {
                    self.link(&l, &p, meta, false);
                }
                _ => {}
            }
        }
    }

    fn snapshot_dir(&mut self, repo: &mut Repo, rev: &mut Revision, dir: &StorePath, rel: &str) {
        let Some(l) = self.list(dir) else { return };
        for (name, meta) in &l.entries {
            let Some(p) = dir.join(name) else { continue };
            let k = self.kind(&p, meta);
            let rel = format!("{rel}{}", name.to_string_lossy());
            if k != Kind::Dir && name.as_bytes().starts_with(OWN_TEMP_PREFIX.as_bytes()) {
                if k == Kind::Symlink {
                    self.link(&l, &p, meta, false);
                }
                repo.temps.push(Temp {
                    path: p,
                    meta: meta.clone(),
                    kind: TempKind::Temp,
                    lock: None,
                });
                continue;
            }
            let entry = match k {
                Kind::Dir => {
                    self.snapshot_dir(repo, rev, &p, &format!("{rel}/"));
                    continue;
                }
                Kind::File => Entry::File(meta.clone()),
                Kind::Symlink => Entry::Link(self.link(&l, &p, meta, false)),
                Kind::Special => Entry::Special,
            };
            rev.entries.push(SnapEntry {
                path: p,
                rel,
                entry,
            });
        }
    }

    fn refs(&mut self, repo: &mut Repo, dir: &StorePath, prefix: &str) {
        let Some(l) = self.list(dir) else { return };
        for (name, meta) in &l.entries {
            let Some(p) = dir.join(name) else { continue };
            let k = self.kind(&p, meta);
            let text = name.to_string_lossy();
            let temp = text.ends_with(".tmp") || text.starts_with(OWN_TEMP_PREFIX);
            match k {
                Kind::Dir => self.refs(repo, &p, &format!("{prefix}{text}/")),
                Kind::File | Kind::Symlink if temp => {
                    if k == Kind::Symlink {
                        self.link(&l, &p, meta, false);
                    }
                    repo.temps.push(Temp {
                        path: p,
                        meta: meta.clone(),
                        kind: TempKind::Temp,
                        lock: None,
                    });
                }
                Kind::File => {
                    let content = read_small(self.store, &p, 4096).unwrap_or_default();
                    let commit = String::from_utf8_lossy(&content).trim().to_string();
                    repo.refs.insert(format!("{prefix}{text}"), commit);
                }
                Kind::Symlink => {
                    self.link(&l, &p, meta, false);
                }
                Kind::Special => {}
            }
        }
    }

    fn trees(&mut self, repo: &mut Repo, dir: &StorePath) {
        let Some(l) = self.list(dir) else { return };
        for (name, meta) in &l.entries {
            let Some(p) = dir.join(name) else { continue };
            let k = self.kind(&p, meta);
            let text = name.to_string_lossy();
            match k {
                Kind::File if text.ends_with(".tmp") || text.starts_with(OWN_TEMP_PREFIX) => {
                    repo.temps.push(Temp {
                        path: p,
                        meta: meta.clone(),
                        kind: TempKind::Temp,
                        lock: None,
                    });
                }
                Kind::Symlink => {
                    self.link(&l, &p, meta, false);
                }
                Kind::Dir => self.generic(&p),
                _ => {}
            }
        }
    }

    fn shared(&mut self, dir: &StorePath) {
        let marker = dir
            .join(OsStr::new(SHARED_MARKER))
            .and_then(|m| read_small(self.store, &m, 16));
        if marker.as_deref() != Some(b"1\n") {
            // Not a shared store the hub would use: nothing in it is a candidate.
            return self.generic(dir);
        }
        self.inv.shared_marker = true;
        let Some(l) = self.list(dir) else { return };
        for (name, meta) in &l.entries {
            let Some(p) = dir.join(name) else { continue };
            let k = self.kind(&p, meta);
            let text = name.to_str().unwrap_or("");
            let temp = text.starts_with(OWN_TEMP_PREFIX)
                || (text.starts_with(SHARED_MARKER) && text.ends_with(".tmp"));
            match k {
                Kind::Dir if is_hex(text, 2) => self.prefix_dir(&p, text),
                Kind::Dir => self.generic(&p),
                Kind::File | Kind::Symlink if temp => self.shared_temp(&l, &p, meta, k),
                Kind::Symlink => {
                    self.link(&l, &p, meta, false);
                }
                _ => {}
            }
        }
    }

    fn prefix_dir(&mut self, dir: &StorePath, hh: &str) {
        let Some(l) = self.list(dir) else { return };
        for (name, meta) in &l.entries {
            let Some(p) = dir.join(name) else { continue };
            let k = self.kind(&p, meta);
            let text = name.to_str().unwrap_or("");
            let file_or_link = matches!(k, Kind::File | Kind::Symlink);
            if file_or_link && is_hex(text, 64) && text.starts_with(hh) {
                let link = (k == Kind::Symlink).then(|| self.link(&l, &p, meta, true));
                self.inv.payloads.push(Blob {
                    path: p,
                    name: text.to_string(),
                    meta: meta.clone(),
                    link,
                });
            } else if file_or_link
                && (text.starts_with(OWN_TEMP_PREFIX)
                    || (text.ends_with(".tmp") && text.contains(".refs.")))
            {
                self.shared_temp(&l, &p, meta, k);
            } else if k == Kind::Symlink {
                self.link(&l, &p, meta, false);
            } else if k == Kind::Dir {
                self.generic(&p);
            }
        }
    }

    fn shared_temp(&mut self, fd: &Listing, p: &StorePath, meta: &Meta, k: Kind) {
        if k == Kind::Symlink {
            self.link(fd, p, meta, false);
        }
        self.inv.shared_temps.push(Temp {
            path: p.clone(),
            meta: meta.clone(),
            kind: TempKind::Temp,
            lock: None,
        });
    }
}
