//! Nothing lost through the view: removing or moving a name never strands content that
//! store links still reach.
//!
//! The view shows links as hard links of their target, so it must keep hard-link semantics
//! when the *target's own name* goes away. Before a real file in the hub layout is unlinked
//! or renamed, the links that point straight at it ("referrers") are found:
//! - for a shared-store payload `blobs/<hh>/<hash>`: the repo blob links its manifest
//!   `<hash>.refs` lists (the hub's own reference record);
//! - for a repo blob `<repo>/blobs/<name>`: the links below `<repo>/snapshots/`.
//!
//! On unlink, the file is renamed onto its first referrer (replacing that link, atomically)
//! and the other referrers are re-pointed at it; on rename, the referrers are re-pointed at
//! the new name. Links that reach the file through other links follow automatically.
//! Files outside the hub layout are not tracked (no store-wide reverse index).

use std::ffi::OsStr;
use std::io;
use std::ops::ControlFlow;

use super::CacheView;
#[cfg(windows)]
use crate::compat::libc;
use crate::error::{FsError, FsResult};
use crate::hub::walk::{self, Found, SnapshotVisitor};
use crate::hub::{self, manifest};
use crate::path::StorePath;
use crate::store::{Kind, OFlags, Store};

/// At most this many directory entries are visited when looking for referrers.
const MAX_SCAN: usize = 1_000_000;

impl CacheView {
    /// Links that point straight at the real file `path`, in a stable order. A store error
    /// while looking fails the search: a referrer missed would be left dangling by the
    /// unlink or rename that asked.
    pub(super) fn referrers(&self, path: &StorePath) -> FsResult<Vec<StorePath>> {
        let mut out = Vec::new();
        let comps: Vec<&OsStr> = path.components().collect();
        match comps.as_slice() {
            // A payload: its referrers are the repo blob links its manifest lists.
            _ if hub::names::payload(path).is_some() => {
                for entry in manifest::read(&self.store, path) {
                    if walk::first_hop(&self.store, &entry)?.as_ref() == Some(path)
                        && !out.contains(&entry)
                    {
                        out.push(entry);
                    }
                }
            }
            // A repo blob, or a real file in a snapshot (a copy, or content kept there by an
            // earlier unlink): its referrers are snapshot links of the same repo. Temp files
            // (`*.incomplete`) are never link targets and skip the scan.
            [repo, b, _name] if *b == "blobs" && hub::is_blob_path(path) => {
                self.scan_repo_snapshots(repo, path, &mut out)?;
            }
            [repo, s, _, ..] if *s == "snapshots" => {
                self.scan_repo_snapshots(repo, path, &mut out)?;
            }
            _ => {}
        }
        Ok(out)
    }

    /// The links below `<repo>/snapshots/` whose first hop is `target`, in walk order.
    fn scan_repo_snapshots(
        &self,
        repo: &OsStr,
        target: &StorePath,
        out: &mut Vec<StorePath>,
    ) -> FsResult<()> {
        let snaps = StorePath::root()
            .join(repo)
            .and_then(|r| r.join(OsStr::new("snapshots")));
        if let Some(snaps) = snaps {
            let mut v = Referrers {
                store: &self.store,
                target,
                out,
                budget: MAX_SCAN,
                failed: None,
            };
            // One repo on a request path: no extra threads.
            let _ = walk::walk_snapshots(&self.store, &snaps, false, &mut v);
            if let Some(e) = v.failed {
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Re-points the link at `link` to `target`, atomically (temporary link + rename).
    pub(super) fn repoint(&self, link: &StorePath, target: &StorePath) -> FsResult<()> {
        self.place_link(&target.relative_from(&link.parent()), link, 0)
    }

    /// Unlinks the real file `path`, first moving it onto a referrer if links still reach it.
    /// Returns the name the content moved to, if it moved.
    pub(super) fn unlink_keeping(&self, path: &StorePath) -> FsResult<Option<StorePath>> {
        let refs = self.referrers(path)?;
        let Some((first, rest)) = refs.split_first() else {
            self.store.unlink(path)?;
            return Ok(None);
        };
        // The other referrers are moved first, the file last: `first` is still a link to
        // `path` meanwhile, so a store error at any step leaves every name resolving (a
        // chain rest -> first -> path, or the finished layout), never a dangling referrer.
        self.keep_for(rest, first, path)?;
        self.store.rename(path, first, 0)?;
        log::info!(
            "unlink {path}: content still linked; kept as {first} ({} other referrer(s) updated)",
            rest.len()
        );
        Ok(Some(first.clone()))
    }

    /// Before a rename of `from` replaces `to`: if `to` is a real file that store links
    /// reach, its first referrer becomes a hard link of it and the others are re-pointed
    /// there (as [`CacheView::unlink_keeping`] does, but `to` stays until the rename replaces
    /// it atomically). Each step leaves every name resolving. Returns the referrer that now
    /// holds the content, if any.
    pub(super) fn keep_replaced(
        &self,
        from: &StorePath,
        to: &StorePath,
    ) -> FsResult<Option<StorePath>> {
        let meta = match self.store.lstat(to) {
            Ok(m) => m,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if meta.kind != Kind::File || walk::is_link(&self.store, to, &meta) {
            return Ok(None);
        }
        let refs = self.referrers(to)?;
        let Some((first, rest)) = refs.split_first() else {
            return Ok(None);
        };
        if first == from {
            // The file's own referrer moving over it: nothing else to keep it for.
            return Ok(None);
        }
        self.replace_with_hard_link(first, to)?;
        let rest: Vec<StorePath> = rest.iter().filter(|r| *r != from).cloned().collect();
        self.keep_for(&rest, first, to)?;
        log::info!("rename over {to}: content still linked; kept as {first}");
        Ok(Some(first.clone()))
    }

    /// Gives the referrers `rest` of the real file `real` its content at `first` (which is, or
    /// is about to become, that file): re-pointed there within its repo, a hard link of the
    /// file in another repo.
    fn keep_for(&self, rest: &[StorePath], first: &StorePath, real: &StorePath) -> FsResult<()> {
        for r in rest {
            if hub::repo_of(r) == hub::repo_of(first) {
                self.repoint(r, first)?;
            } else {
                // Never make one repo depend on another's folder (removing that repo would
                // strand this one): give this repo its own name of the content.
                self.replace_with_hard_link(r, real)?;
            }
        }
        Ok(())
    }

    /// Replaces the link at `link` with a hard link to the real file `target` (a copy where
    /// the store refuses hard links), atomically.
    fn replace_with_hard_link(&self, link: &StorePath, target: &StorePath) -> FsResult<()> {
        let tmp = hub::temp_sibling(link, "keep").ok_or(FsError::Invalid)?;
        if let Err(e) = self.store.link(target, &tmp) {
            log::info!("hard link {target} -> {tmp} refused ({e}); copying");
            self.copy_file(target, &tmp)?;
        }
        if let Err(e) = self.store.rename(&tmp, link, 0) {
            let _ = self.store.unlink(&tmp);
            return Err(e.into());
        }
        Ok(())
    }

    /// Copies the store file `from` to the new name `to` (same mode).
    fn copy_file(&self, from: &StorePath, to: &StorePath) -> FsResult<()> {
        let src = std::fs::File::from(self.store.open(from, OFlags::RDONLY, 0)?);
        let mode = crate::store::Meta::of_fd(&src)?.perm;
        let dst = self.store.open(
            to,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
            mode.into(),
        )?;
        let mut dst = std::fs::File::from(dst);
        let res = std::io::copy(&mut &src, &mut dst).and_then(|_| dst.sync_all());
        if let Err(e) = res {
            let _ = self.store.unlink(to);
            return Err(e.into());
        }
        Ok(())
    }
}

/// True for a path whose referrers [`CacheView::referrers`] finds (a shared payload, a repo
/// blob, a snapshot entry): the only places a file that links reach may move to, or a later
/// unlink or rename of it would leave those links dangling.
pub(super) fn referrers_tracked(p: &StorePath) -> bool {
    let comps: Vec<&OsStr> = p.components().collect();
    match comps.as_slice() {
        _ if hub::names::payload(p).is_some() => true,
        [_repo, b, _name] if *b == "blobs" => hub::is_blob_path(p),
        [_repo, s, _, _, ..] if *s == "snapshots" => true,
        _ => false,
    }
}

/// Collects the snapshot links whose first hop is `target`, within a budget of entries; the
/// first store error ends the walk and is kept.
struct Referrers<'a> {
    store: &'a Store,
    target: &'a StorePath,
    out: &'a mut Vec<StorePath>,
    budget: usize,
    failed: Option<io::Error>,
}

impl SnapshotVisitor for Referrers<'_> {
    fn enter(&mut self, _dir: &StorePath) -> ControlFlow<()> {
        if self.budget == 0 || self.failed.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn listed(&mut self, _dir: &StorePath, n: usize) {
        self.budget = self.budget.saturating_sub(n);
    }

    fn error(&mut self, _dir: &StorePath, e: io::Error) {
        self.failed.get_or_insert(e);
    }

    fn entry(&mut self, found: Found<'_>) {
        if self.failed.is_some() {
            return;
        }
        match found.first_hop(self.store) {
            Ok(hop) if hop.as_ref() == Some(self.target) => self.out.push(found.path),
            Ok(_) => {}
            Err(e) => self.failed = Some(e),
        }
    }
}
