//! The walk that builds an [`Inventory`]: directories listed by [`hub::walk::list`] (confined,
//! no links followed, large directories examined on several threads), links counted by the
//! hub's one rule ([`hub::walk::link_kind`]: symlinks and XSym files), snapshots walked by the
//! hub's one snapshot walker, links resolved by [`Resolver`] over a [`Tracer`] that notes
//! every link crossed. Resolutions are memoised by first hop (100k snapshot links to a few
//! thousand blobs resolve each blob once).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use indicatif::ProgressBar;

use super::{
    Blob, Entry, Inventory, Link, Repo, Resolution, Revision, SHARED_MARKER, SnapEntry, Temp,
    TempKind, blob_dir_temp, is_content_name, is_hex, read_small, repo_kind, repo_matches,
};
#[cfg(windows)]
use crate::compat::libc;
use crate::hub::names::{incomplete_lock, is_own_temp, is_payload_name};
use crate::hub::walk::{self as hubwalk, Found, Listing, SnapshotVisitor};
use crate::path::StorePath;
use crate::resolve::{LinkSource, Odd, Resolver, hop_of};
use crate::store::{Kind, Meta, Store};
use crate::tools::Ui;

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
    let listing =
        hubwalk::list(store, &root, true).map_err(|e| format!("cannot list the store: {e}"))?;
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
    /// The entry's kind by the hub's one link rule (XSym files are links).
    fn kind(&self, p: &StorePath, meta: &Meta) -> Kind {
        hubwalk::link_kind(self.store, p, meta)
    }

    fn list(&mut self, dir: &StorePath) -> Option<Listing> {
        if self.ui.interrupted() {
            return None;
        }
        match hubwalk::list(self.store, dir, true) {
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
        let text = dir.link_text(self.store, path, name, meta);
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
        let first = match hop_of(path, text, self.store.aliases()) {
            Ok(f) => f,
            Err(o) => return odd(o),
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
                let lock = (kind == TempKind::Incomplete)
                    .then(|| incomplete_lock(&repo.folder, text))
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

    /// `<repo>/snapshots/` by the hub's snapshot walker: revisions with their entries;
    /// hfcachefs's own temporaries in them are temps, links directly in `snapshots/` roots.
    fn snapshots(&mut self, repo: &mut Repo, dir: &StorePath) {
        let store = self.store;
        let mut v = Snapshots {
            w: self,
            repo,
            rev: None,
        };
        let _ = hubwalk::walk_snapshots(store, dir, true, &mut v);
    }

    fn refs(&mut self, repo: &mut Repo, dir: &StorePath, prefix: &str) {
        let Some(l) = self.list(dir) else { return };
        for (name, meta) in &l.entries {
            let Some(p) = dir.join(name) else { continue };
            let k = self.kind(&p, meta);
            let text = name.to_string_lossy();
            let temp = text.ends_with(".tmp") || is_own_temp(&text);
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
                Kind::File if text.ends_with(".tmp") || is_own_temp(&text) => {
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
            let temp =
                is_own_temp(text) || (text.starts_with(SHARED_MARKER) && text.ends_with(".tmp"));
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
            if file_or_link && is_payload_name(hh, text) {
                let link = (k == Kind::Symlink).then(|| self.link(&l, &p, meta, true));
                self.inv.payloads.push(Blob {
                    path: p,
                    name: text.to_string(),
                    meta: meta.clone(),
                    link,
                });
            } else if file_or_link
                && (is_own_temp(text) || (text.ends_with(".tmp") && text.contains(".refs.")))
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

/// The inventory's view of a snapshot walk.
struct Snapshots<'w, 's> {
    w: &'w mut Walker<'s>,
    repo: &'w mut Repo,
    rev: Option<Revision>,
}

impl SnapshotVisitor for Snapshots<'_, '_> {
    fn enter(&mut self, _dir: &StorePath) -> ControlFlow<()> {
        // An interrupted walk stops listing; what was listed is kept.
        if self.w.ui.interrupted() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn listed(&mut self, _dir: &StorePath, n: usize) {
        self.w.progress.inc(n as u64);
    }

    fn error(&mut self, dir: &StorePath, e: io::Error) {
        self.w.inv.errors.push((dir.clone(), e.to_string()));
    }

    fn begin_revision(&mut self, commit: &str) {
        self.rev = Some(Revision {
            commit: commit.to_string(),
            entries: Vec::new(),
        });
    }

    fn end_revision(&mut self) {
        if let Some(rev) = self.rev.take() {
            self.repo.revisions.push(rev);
        }
    }

    fn entry(&mut self, f: Found<'_>) {
        let link = |w: &mut Walker<'_>| w.link(f.listing, &f.path, f.meta, false);
        let Some(rev) = self.rev.as_mut() else {
            // Directly in `snapshots/`: only a link matters (a root).
            if f.kind == Kind::Symlink {
                link(self.w);
            }
            return;
        };
        if is_own_temp(&f.name.to_string_lossy()) {
            if f.kind == Kind::Symlink {
                link(self.w);
            }
            self.repo.temps.push(Temp {
                path: f.path.clone(),
                meta: f.meta.clone(),
                kind: TempKind::Temp,
                lock: None,
            });
            return;
        }
        let entry = match f.kind {
            Kind::File => Entry::File(f.meta.clone()),
            Kind::Symlink => Entry::Link(link(self.w)),
            Kind::Special | Kind::Dir => Entry::Special,
        };
        rev.entries.push(SnapEntry {
            path: f.path.clone(),
            rel: f.rel.clone(),
            entry,
        });
    }
}
