//! Carrying out a `gc` [`Plan`]: every deletion re-checks, under the hub's lock, what the
//! plan decided from the walk, because clients on other machines keep working meanwhile.
//!
//! Invariants:
//! - An entry is deleted only while its lock is held and only if it is still the entry the
//!   plan examined (same device, inode and kind); a busy lock or a changed entry is kept
//!   with the reason.
//! - A repo's blobs are deleted only after walking the repo again under their locks: a
//!   client that linked a blob meanwhile keeps it.
//! - A payload is deleted only if the repo blob links it was reached through are really
//!   gone and its manifest lists no link to it now; its manifest goes with it.

use std::collections::HashSet;

use super::plan::{Decision, Plan, Step, live_link};
use super::{GcReport, Item, Kept, payload_reference, rel};
use crate::hub::locks::{self, Lock};
use crate::path::StorePath;
use crate::store::{Kind, Meta, Store};
use crate::tools::{Ui, inventory};

/// What carrying out a plan has done so far.
struct Applier<'s> {
    store: &'s Store,
    ui: &'s Ui,
    report: GcReport,
    /// Links deleted in this run.
    gone: HashSet<StorePath>,
}

/// Carries out `plan`; the report lists what was deleted and what was kept, in plan order.
pub fn apply(store: &Store, ui: &Ui, plan: Plan) -> GcReport {
    let mut a = Applier {
        store,
        ui,
        report: GcReport {
            dry_run: false,
            min_age_secs: plan.min_age.as_secs(),
            problems: plan.problems,
            interrupted: plan.interrupted,
            ..GcReport::default()
        },
        gone: HashSet::new(),
    };
    for d in plan.decisions {
        if ui.interrupted() {
            break;
        }
        match d {
            Decision::Keep(k) => a.report.kept.push(k),
            Decision::RepoBlobs { repo, steps } => a.repo_blobs(&repo, &steps),
            Decision::Delete(s) => a.one(&s),
        }
    }
    a.report.interrupted |= ui.interrupted();
    a.report
}

/// The plan as the report of a run that changes nothing (`--dry-run`).
pub fn preview(plan: Plan) -> GcReport {
    let mut r = GcReport {
        dry_run: true,
        min_age_secs: plan.min_age.as_secs(),
        problems: plan.problems,
        interrupted: plan.interrupted,
        ..GcReport::default()
    };
    for d in plan.decisions {
        match d {
            Decision::Keep(k) => r.kept.push(k),
            Decision::RepoBlobs { steps, .. } => {
                for s in &steps {
                    record(&mut r, &s.path, &s.meta, s.kind);
                }
            }
            Decision::Delete(s) => {
                record(&mut r, &s.path, &s.meta, s.kind);
                if let Some(pay) = &s.payload
                    && let (Some(m), Some(mm)) = (&pay.manifest, &pay.manifest_meta)
                {
                    record(&mut r, m, mm, "manifest");
                }
            }
        }
    }
    r
}

/// Adds a deleted entry to the report.
fn record(r: &mut GcReport, p: &StorePath, m: &Meta, kind: &'static str) {
    let size = if m.kind == Kind::File { m.size } else { 0 };
    if m.kind == Kind::File && m.nlink <= 1 {
        r.freed_bytes += size;
    }
    r.deleted.push(Item {
        path: rel(p),
        kind,
        size,
    });
}

impl Applier<'_> {
    fn keep(&mut self, p: &StorePath, reason: impl Into<String>) {
        self.report.kept.push(Kept {
            path: rel(p),
            reason: reason.into(),
        });
    }

    fn lock(&self, s: &Step) -> Lock {
        match &s.lock {
            Some((l, create)) => locks::try_lock(self.store, l, *create),
            None => Lock::NotUsed,
        }
    }

    /// Deletes `p` if it is still the entry `m` that was examined.
    fn delete(&mut self, p: &StorePath, m: &Meta, kind: &'static str) -> bool {
        match self.store.lstat(p) {
            Ok(now) if (now.dev, now.ino, now.kind) == (m.dev, m.ino, m.kind) => {}
            Ok(_) => {
                self.keep(p, "replaced meanwhile");
                return false;
            }
            Err(_) => return false, // gone already
        }
        if let Err(e) = self.store.unlink(p) {
            self.report.problems.push(Kept {
                path: rel(p),
                reason: format!("cannot delete: {e}"),
            });
            return false;
        }
        if m.kind == Kind::Symlink {
            self.gone.insert(p.clone());
        }
        record(&mut self.report, p, m, kind);
        true
    }

    fn repo_blobs(&mut self, repo: &str, steps: &[Step]) {
        let mut held = Vec::new();
        let mut doomed = Vec::new();
        for s in steps {
            match self.lock(s) {
                Lock::Busy => self.keep(&s.path, "its download lock is held"),
                l => {
                    held.push(l);
                    doomed.push(s);
                }
            }
        }
        if doomed.is_empty() {
            return;
        }
        // Walk the repo again under the locks: a client may have linked a blob meanwhile.
        let opts = inventory::Options {
            repos: Some(vec![repo.to_string()]),
        };
        let again = match inventory::build(self.store, &opts, self.ui) {
            Ok(inv) if inv.errors.is_empty() && !self.ui.interrupted() => Some(inv.reach()),
            _ => None,
        };
        for s in doomed {
            match &again {
                Some(r) if !r.reaches(&s.path, &s.meta) => {
                    self.delete(&s.path, &s.meta, s.kind);
                }
                Some(_) => self.keep(&s.path, "linked meanwhile"),
                None => self.keep(&s.path, "second walk failed or was interrupted"),
            }
        }
        drop(held);
    }

    fn one(&mut self, s: &Step) {
        let Some(pay) = &s.payload else {
            if matches!(self.lock(s), Lock::Busy) {
                self.keep(&s.path, "its download lock is held");
                return;
            }
            self.delete(&s.path, &s.meta, s.kind);
            return;
        };
        // A repo blob link the plan meant to delete may have been kept.
        if let Some(l) = live_link(self.store, &self.gone, &pay.via) {
            self.keep(&s.path, format!("still linked from {}", rel(l)));
            return;
        }
        let _lock = match self.lock(s) {
            Lock::Busy => {
                self.keep(&s.path, "its shared-store lock is held");
                return;
            }
            l => l,
        };
        if let Some(r) = payload_reference(self.store, &self.gone, &s.path) {
            self.keep(&s.path, format!("its manifest lists the link {r}"));
            return;
        }
        if self.delete(&s.path, &s.meta, s.kind)
            && let Some(m) = &pay.manifest
            && let Ok(mm) = self.store.lstat(m)
            && mm.kind == Kind::File
        {
            self.delete(m, &mm, "manifest");
        }
    }
}
