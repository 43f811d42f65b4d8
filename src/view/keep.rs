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
use std::ops::ControlFlow;

use super::CacheView;
use crate::error::{FsError, FsResult};
use crate::hub::walk::{self, Found, SnapshotVisitor};
use crate::hub::{self, manifest};
use crate::path::StorePath;
use crate::store::{OFlags, Store};

/// At most this many directory entries are visited when looking for referrers.
const MAX_SCAN: usize = 1_000_000;

impl CacheView {
    /// Links that point straight at the real file `path`, in a stable order.
    pub(super) fn referrers(&self, path: &StorePath) -> FsResult<Vec<StorePath>> {
        let mut out = Vec::new();
        let comps: Vec<&OsStr> = path.components().collect();
        match comps.as_slice() {
            // A payload: its referrers are the repo blob links its manifest lists.
            _ if hub::names::payload(path).is_some() => {
                for entry in manifest::read(&self.store, path) {
                    if walk::first_hop(&self.store, &entry).as_ref() == Some(path) {
                        out.push(entry);
                    }
                }
            }
            // A repo blob, or a real file in a snapshot (a copy, or content kept there by an
            // earlier unlink): its referrers are snapshot links of the same repo. Temp files
            // (`*.incomplete`) are never link targets and skip the scan.
            [repo, b, _name] if *b == "blobs" && hub::is_blob_path(path) => {
                self.scan_repo_snapshots(repo, path, &mut out);
            }
            [repo, s, _, ..] if *s == "snapshots" => {
                self.scan_repo_snapshots(repo, path, &mut out);
            }
            _ => {}
        }
        Ok(out)
    }

    /// The links below `<repo>/snapshots/` whose first hop is `target`, in walk order.
    fn scan_repo_snapshots(&self, repo: &OsStr, target: &StorePath, out: &mut Vec<StorePath>) {
        let snaps = StorePath::root()
            .join(repo)
            .and_then(|r| r.join(OsStr::new("snapshots")));
        if let Some(snaps) = snaps {
            let mut v = Referrers {
                store: &self.store,
                target,
                out,
                budget: MAX_SCAN,
            };
            // One repo on a request path: no extra threads.
            let _ = walk::walk_snapshots(&self.store, &snaps, false, &mut v);
        }
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
        self.store.rename(path, first, 0)?;
        for r in rest {
            if hub::repo_of(r) == hub::repo_of(first) {
                self.repoint(r, first)?;
            } else {
                // Never make one repo depend on another's folder (removing that repo would
                // strand this one): give this repo its own name of the content.
                self.replace_with_hard_link(r, first)?;
            }
        }
        log::info!(
            "unlink {path}: content still linked; kept as {first} ({} other referrer(s) updated)",
            rest.len()
        );
        Ok(Some(first.clone()))
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

/// Collects the snapshot links whose first hop is `target`, within a budget of entries.
struct Referrers<'a> {
    store: &'a Store,
    target: &'a StorePath,
    out: &'a mut Vec<StorePath>,
    budget: usize,
}

impl SnapshotVisitor for Referrers<'_> {
    fn enter(&mut self, _dir: &StorePath) -> ControlFlow<()> {
        if self.budget == 0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn listed(&mut self, _dir: &StorePath, n: usize) {
        self.budget = self.budget.saturating_sub(n);
    }

    fn entry(&mut self, found: Found<'_>) {
        if found.first_hop(self.store).as_ref() == Some(self.target) {
            self.out.push(found.path);
        }
    }
}
