//! Carrying out a `dedupe` [`Plan`]: blobs are created without replacing anything and copies
//! are replaced by links only if still the file that was hashed, so every step either
//! completes or leaves the copy as it was.
//!
//! Invariants:
//! - A new blob is published with [`hub::make_blob`] (no-replace); if its name appeared
//!   meanwhile the copy is left for the next run.
//! - A copy is replaced by [`hub::replace_with_link`] (a complete link renamed over it after
//!   checking it is unchanged); a changed copy is left for the next run.
//! - A copy is never linked to a blob this run meant to create and did not: the link would
//!   dangle.

use std::collections::HashSet;

use super::plan::{Decision, Plan};
use super::{Action, DedupeReport, Note};
#[cfg(windows)]
use crate::compat::libc;
use crate::hub;
use crate::path::StorePath;
use crate::store::{Meta, Store};
use crate::tools::{Ui, rel};

/// Carries out `plan`; the report lists what was done, in plan order.
pub fn apply(store: &Store, ui: &Ui, plan: Plan) -> DedupeReport {
    let mut report = DedupeReport {
        dry_run: false,
        interrupted: plan.interrupted,
        ..DedupeReport::default()
    };
    let mut not_created: HashSet<StorePath> = HashSet::new();
    for d in plan.decisions {
        if ui.interrupted() {
            break;
        }
        let path = match &d {
            Decision::Link { copy, .. } | Decision::Move { copy, .. } => rel(&copy.path),
            Decision::Skip(n) | Decision::Problem(n) => n.path.clone(),
        };
        let done = match &d {
            Decision::Skip(n) => Ok(Err(n.reason.clone())),
            Decision::Problem(n) => Err(n.reason.clone()),
            Decision::Link { target, .. } if not_created.contains(&target.path) => Ok(Err(
                format!("{} was not created; run dedupe again", rel(&target.path)),
            )),
            Decision::Link {
                copy, meta, target, ..
            } => replace(store, &copy.path, &target.path, meta),
            Decision::Move {
                copy,
                meta,
                blob,
                name,
            } => match hub::make_blob(store, &copy.path, blob, name, meta) {
                Ok(()) => replace(store, &copy.path, blob, meta),
                Err(e) => {
                    not_created.insert(blob.clone());
                    if e.raw_os_error() == Some(libc::EEXIST) {
                        Ok(Err(format!(
                            "{} appeared meanwhile; run dedupe again",
                            rel(blob)
                        )))
                    } else {
                        Err(format!("creating {}: {e}", rel(blob)))
                    }
                }
            },
        };
        match done {
            Ok(Ok(())) => {
                if let Ok(a) = d.as_planned() {
                    record(&mut report, a);
                }
            }
            Ok(Err(reason)) => report.skipped.push(Note { path, reason }),
            Err(reason) => report.problems.push(Note { path, reason }),
        }
    }
    report.interrupted |= ui.interrupted();
    report
}

/// The plan as the report of a run that changes nothing (`--dry-run`).
pub fn preview(plan: Plan) -> DedupeReport {
    let mut report = DedupeReport {
        dry_run: true,
        interrupted: plan.interrupted,
        ..DedupeReport::default()
    };
    for d in &plan.decisions {
        match (d, d.as_planned()) {
            (_, Ok(a)) => record(&mut report, a),
            (Decision::Problem(n), _) => report.problems.push(n.clone()),
            (_, Err(n)) => report.skipped.push(n.clone()),
        }
    }
    report
}

fn record(report: &mut DedupeReport, a: Action) {
    report.reclaimed_bytes += a.reclaimed_bytes;
    report.actions.push(a);
}

/// Replaces the copy with a link to `blob`, if it is still the file that was hashed:
/// `Ok(Err(reason))` if it is left for the next run.
fn replace(
    store: &Store,
    copy: &StorePath,
    blob: &StorePath,
    was: &Meta,
) -> Result<Result<(), String>, String> {
    match hub::replace_with_link(store, copy, blob, was, "dedupe") {
        Ok(()) => Ok(Ok(())),
        Err(hub::ReplaceError::Changed) => Ok(Err("changed meanwhile; run dedupe again".into())),
        Err(e) => Err(format!("replacing it: {e}")),
    }
}
