//! Deciding what `gc` deletes: one inventory walk turned into a [`Plan`], an ordered list of
//! decisions. Nothing here changes the store (a lock is only probed, never created), so a
//! dry run is exactly this plan, rendered.
//!
//! Invariants:
//! - A [`Decision::Delete`] is made only for an entry no root reaches, with no other hard
//!   link, not modified within `--min-age`, whose lock was free when probed; for a payload,
//!   also no live repo blob link through it and no manifest entry linking to it, counting
//!   the repo blob links this plan deletes as gone.
//! - Decisions keep the order the report lists them in: per repo the kept blobs, then the
//!   repo's blobs to delete (as one group, rechecked together under their locks), then its
//!   temporaries; then payloads; then the shared store's temporaries.
//! - An incomplete walk or an unreadable directory plans nothing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::{Kept, payload_reference, rel};
use crate::hub::locks::{self, Lock};
use crate::hub::names::{blob_lock, manifest_path, payload_lock};
use crate::path::StorePath;
use crate::store::{Kind, Meta, Store};
use crate::tools::inventory::{self, Blob, Inventory, Reach, Temp, TempKind};
use crate::tools::{Ui, age};

/// One entry to delete.
#[derive(Clone, Debug)]
pub struct Step {
    /// The entry.
    pub path: StorePath,
    /// Its `lstat` when examined: it is deleted only if still the same entry.
    pub meta: Meta,
    /// `orphan-blob`, `orphan-payload`, `incomplete` or `temp`.
    pub kind: &'static str,
    /// The hub lock to hold while deleting it, and whether to create the lock file.
    pub lock: Option<(StorePath, bool)>,
    /// For a payload: the repo blob links through which it was reached (all to be deleted
    /// before it), and its manifest with the manifest's `lstat` if it is a regular file.
    pub payload: Option<PayloadStep>,
}

/// What deleting a payload depends on.
#[derive(Clone, Debug, Default)]
pub struct PayloadStep {
    /// Candidate links through which the payload was reached.
    pub via: Vec<StorePath>,
    /// The manifest `<hash>.refs`.
    pub manifest: Option<StorePath>,
    /// The manifest's `lstat`, if it is a regular file (deleted with the payload).
    pub manifest_meta: Option<Meta>,
}

/// One decision, in report order.
#[derive(Debug)]
pub enum Decision {
    /// Left alone, with the reason.
    Keep(Kept),
    /// Delete one entry (a temporary or a payload); boxed, as most decisions are keeps.
    Delete(Box<Step>),
    /// Delete these blobs of one repo, after walking the repo again under their locks.
    RepoBlobs {
        /// The repo folder.
        repo: String,
        /// The blobs, in name order.
        steps: Vec<Step>,
    },
}

/// What `gc` would do.
#[derive(Debug, Default)]
pub struct Plan {
    /// `--min-age`.
    pub min_age: Duration,
    /// Decisions in report order.
    pub decisions: Vec<Decision>,
    /// Why nothing was planned (unreadable directories).
    pub problems: Vec<Kept>,
    /// The walk or the planning was interrupted.
    pub interrupted: bool,
}

impl Plan {
    /// The repo blob links this plan deletes.
    pub fn doomed_links(&self) -> HashSet<StorePath> {
        let mut out = HashSet::new();
        for d in &self.decisions {
            if let Decision::RepoBlobs { steps, .. } = d {
                for s in steps.iter().filter(|s| s.meta.kind == Kind::Symlink) {
                    out.insert(s.path.clone());
                }
            }
        }
        out
    }
}

struct Planner<'s> {
    store: &'s Store,
    ui: &'s Ui,
    plan: Plan,
    /// Repo blob links this plan deletes (a payload reached only through them goes too).
    gone: HashSet<StorePath>,
}

/// Walks the store and decides what to delete.
pub fn plan(store: &Store, ui: &Ui, min_age: Duration) -> Result<Plan, String> {
    let inv = inventory::build(store, &inventory::Options::default(), ui)?;
    let mut p = Planner {
        store,
        ui,
        plan: Plan {
            min_age,
            ..Plan::default()
        },
        gone: HashSet::new(),
    };
    if !inv.complete {
        p.plan.interrupted = true;
        return Ok(p.plan);
    }
    if !inv.errors.is_empty() {
        for (path, e) in &inv.errors {
            p.plan.problems.push(Kept {
                path: rel(path),
                reason: format!("unreadable ({e}); nothing deleted"),
            });
        }
        return Ok(p.plan);
    }
    let reach = inv.reach();
    for repo in &inv.repos {
        if ui.interrupted() {
            break;
        }
        p.repo(&reach, repo);
    }
    p.payloads(&inv, &reach);
    let shared: Vec<&Temp> = inv.shared_temps.iter().collect();
    p.temps(&reach, &shared);
    p.plan.interrupted = ui.interrupted();
    Ok(p.plan)
}

impl Planner<'_> {
    fn keep(&mut self, p: &StorePath, reason: impl Into<String>) {
        self.plan.decisions.push(Decision::Keep(Kept {
            path: rel(p),
            reason: reason.into(),
        }));
    }

    /// True if the entry is old enough; records it as kept otherwise.
    fn old_enough(&mut self, p: &StorePath, m: &Meta) -> bool {
        if age(m) >= self.plan.min_age {
            return true;
        }
        self.keep(p, "modified within --min-age");
        false
    }

    /// True if someone holds the lock at `p` now (probed without creating it).
    fn busy(&self, p: Option<&StorePath>) -> bool {
        p.is_some_and(|l| matches!(locks::try_lock(self.store, l, false), Lock::Busy))
    }

    fn repo(&mut self, reach: &Reach, repo: &inventory::Repo) {
        let mut steps = Vec::new();
        for b in &repo.blobs {
            if reach.reaches(&b.path, &b.meta) {
                continue;
            }
            if b.meta.kind == Kind::File && b.meta.nlink > 1 {
                self.keep(&b.path, "has other hard links");
                continue;
            }
            if !self.old_enough(&b.path, &b.meta) {
                continue;
            }
            let lock = blob_lock(&repo.folder, &b.name);
            if self.busy(lock.as_ref()) {
                self.keep(&b.path, "its download lock is held");
                continue;
            }
            if b.meta.kind == Kind::Symlink {
                self.gone.insert(b.path.clone());
            }
            steps.push(step(b, "orphan-blob", lock.map(|l| (l, true))));
        }
        if !steps.is_empty() {
            self.plan.decisions.push(Decision::RepoBlobs {
                repo: repo.folder.clone(),
                steps,
            });
        }
        let temps: Vec<&Temp> = repo.temps.iter().collect();
        self.temps(reach, &temps);
    }

    fn temps(&mut self, reach: &Reach, temps: &[&Temp]) {
        for t in temps {
            if self.ui.interrupted() {
                return;
            }
            if reach.reaches(&t.path, &t.meta) {
                self.keep(&t.path, "a link reaches it");
                continue;
            }
            if !self.old_enough(&t.path, &t.meta) {
                continue;
            }
            if self.busy(t.lock.as_ref()) {
                self.keep(&t.path, "its download lock is held");
                continue;
            }
            let kind = match t.kind {
                TempKind::Incomplete => "incomplete",
                TempKind::Temp => "temp",
            };
            self.plan.decisions.push(Decision::Delete(Box::new(Step {
                path: t.path.clone(),
                meta: t.meta.clone(),
                kind,
                lock: t.lock.clone().map(|l| (l, false)),
                payload: None,
            })));
        }
    }

    fn payloads(&mut self, inv: &Inventory, reach: &Reach) {
        // Candidate links (repo blobs) through which each payload is reached.
        let mut via: HashMap<&StorePath, Vec<&StorePath>> = HashMap::new();
        for l in inv.links.iter().filter(|l| l.candidate) {
            if let Ok((p, _)) = &l.res.target {
                via.entry(p).or_default().push(&l.path);
            }
            for h in &l.res.hops {
                via.entry(h).or_default().push(&l.path);
            }
        }
        for p in &inv.payloads {
            if self.ui.interrupted() {
                return;
            }
            if reach.reaches(&p.path, &p.meta) {
                continue;
            }
            if p.meta.kind == Kind::File && p.meta.nlink > 1 {
                self.keep(&p.path, "has other hard links");
                continue;
            }
            let via: Vec<StorePath> = via
                .get(&p.path)
                .into_iter()
                .flatten()
                .map(|l| (*l).clone())
                .collect();
            if let Some(l) = live_link(self.store, &self.gone, &via) {
                self.keep(&p.path, format!("still linked from {}", rel(l)));
                continue;
            }
            if !self.old_enough(&p.path, &p.meta) {
                continue;
            }
            let lock = payload_lock(&p.path);
            if self.busy(lock.as_ref()) {
                self.keep(&p.path, "its shared-store lock is held");
                continue;
            }
            let manifest = manifest_path(&p.path);
            if let Some(r) = payload_reference(self.store, &self.gone, &p.path) {
                self.keep(&p.path, format!("its manifest lists the link {r}"));
                continue;
            }
            let manifest_meta = manifest
                .as_ref()
                .and_then(|m| self.store.lstat(m).ok())
                .filter(|m| m.kind == Kind::File);
            let mut s = step(p, "orphan-payload", lock.map(|l| (l, true)));
            s.payload = Some(PayloadStep {
                via,
                manifest,
                manifest_meta,
            });
            self.plan.decisions.push(Decision::Delete(Box::new(s)));
        }
    }
}

fn step(b: &Blob, kind: &'static str, lock: Option<(StorePath, bool)>) -> Step {
    Step {
        path: b.path.clone(),
        meta: b.meta.clone(),
        kind,
        lock,
        payload: None,
    }
}

/// The first of `via` that still exists and is not among the `gone` links.
pub fn live_link<'a>(
    store: &Store,
    gone: &HashSet<StorePath>,
    via: &'a [StorePath],
) -> Option<&'a StorePath> {
    via.iter()
        .find(|l| !gone.contains(*l) && store.lstat(l).is_ok())
}
