//! Deciding what `dedupe` does: every copy is hashed and given a [`Decision`] — link it to an
//! existing blob, move it into `blobs/` (it becomes the blob) and link it, or leave it — in
//! the order the report lists them. Nothing here changes the store, so a dry run is exactly
//! this plan, rendered.
//!
//! Invariants:
//! - A copy is linked to an existing blob only after a byte-for-byte comparison (or if it is
//!   the same inode): a corrupt blob never replaces a good copy.
//! - A copy becomes a blob only if no blob of its name exists and it was not modified within
//!   `--min-age`; blobs the plan creates count as existing for the copies after it.
//! - Copies too young to become a blob are decided again after the others: another copy of
//!   the same content may be planned as the blob, and linking needs no age.

use std::collections::HashMap;
use std::time::Duration;

use super::{Action, Note, corrupt_blob};
#[cfg(windows)]
use crate::compat::libc;
use crate::hub::hash::{Algos, Digests};
use crate::hub::{self, NameRule, naming_rule};
use crate::path::StorePath;
use crate::store::{Meta, Store};
use crate::tools::hash::{HashError, Hashed, Job, hash_many};
use crate::tools::inventory::{self, Entry, Inventory, Repo};
use crate::tools::{Ui, age, rel};

/// A blob a copy may link to.
#[derive(Clone, Debug)]
pub struct Target {
    /// The blob name's path (`<repo>/blobs/<name>`).
    pub path: StorePath,
    /// The blob name.
    pub name: String,
    /// The real file with the content (the copy itself for a blob this plan creates).
    pub real: StorePath,
    /// Its metadata.
    pub meta: Meta,
}

/// One copy to examine.
#[derive(Clone, Debug)]
pub struct Copy {
    repo: usize,
    /// The snapshot entry.
    pub path: StorePath,
    rule: NameRule,
}

/// What to do with one copy.
#[derive(Debug)]
pub enum Decision {
    /// Replace the copy with a link to the existing blob `target`.
    Link {
        /// The copy and what hashing it found.
        copy: Copy,
        /// Its `lstat` when hashed: it is replaced only if still that file.
        meta: Meta,
        /// The blob.
        target: Target,
        /// Bytes this frees.
        freed: u64,
    },
    /// Make the copy the blob `blob` (named `name`), then replace it with a link to it.
    Move {
        /// The copy.
        copy: Copy,
        /// Its `lstat` when hashed.
        meta: Meta,
        /// `<repo>/blobs/<name>`.
        blob: StorePath,
        /// The blob name.
        name: String,
    },
    /// Leave it for now.
    Skip(Note),
    /// It cannot be deduplicated (a conflict or an error).
    Problem(Note),
}

/// What `dedupe` would do.
#[derive(Debug, Default)]
pub struct Plan {
    /// Decisions in report order.
    pub decisions: Vec<Decision>,
    /// Hashing or deciding was interrupted.
    pub interrupted: bool,
}

/// Walks the store, hashes every copy on `threads` threads and decides what to do with it.
pub fn plan(store: &Store, ui: &Ui, min_age: Duration, threads: usize) -> Result<Plan, String> {
    let inv = inventory::build(store, &inventory::Options::default(), ui)?;
    let mut targets: Vec<Vec<Target>> = inv.repos.iter().map(|r| blob_targets(&inv, r)).collect();
    let mut jobs = Vec::new();
    for (ri, repo) in inv.repos.iter().enumerate() {
        let siblings = sibling_lengths(&inv, repo);
        for rev in &repo.revisions {
            let trees = hub::tree_etags(store, &repo.folder, &rev.commit);
            for e in &rev.entries {
                let Entry::File(meta) = &e.entry else {
                    continue;
                };
                let (rule, mut algos) = naming_rule(
                    trees.get(&e.rel).map(String::as_str),
                    siblings.get(&e.rel).copied(),
                    meta.size,
                );
                for t in targets[ri].iter().filter(|t| t.meta.size == meta.size) {
                    algos = algos.union(Algos::for_name(&t.name));
                }
                jobs.push(Job {
                    path: e.path.clone(),
                    size: meta.size,
                    algos,
                    tag: Copy {
                        repo: ri,
                        path: e.path.clone(),
                        rule,
                    },
                });
            }
        }
    }
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let pb = ui.bytes_bar(total, "hashing copies");
    let mut hashed = hash_many(store, jobs, threads, &pb, ui.stop_flag());
    pb.finish_and_clear();
    hashed.sort_by(|a, b| a.0.tag.path.cmp(&b.0.tag.path));
    let d = Decider { store, min_age };
    let mut plan = Plan::default();
    let mut deferred = Vec::new();
    for (job, result) in hashed {
        if ui.interrupted() {
            break;
        }
        let path = rel(&job.tag.path);
        let h = match result {
            Ok(h) => h,
            Err(HashError::Interrupted) => break,
            Err(HashError::Io(e)) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(HashError::Changed) => {
                plan.decisions.push(Decision::Skip(Note {
                    path,
                    reason: "changed while it was read".into(),
                }));
                continue;
            }
            Err(e) => {
                plan.decisions.push(Decision::Problem(Note {
                    path,
                    reason: e.to_string(),
                }));
                continue;
            }
        };
        let repo = &inv.repos[job.tag.repo];
        match d.decide(repo, &job.tag, &h, &mut targets) {
            Decision::Skip(_) if age(&h.meta) < min_age => deferred.push((job.tag, h)),
            done => plan.decisions.push(done),
        }
    }
    for (copy, h) in deferred {
        if ui.interrupted() {
            break;
        }
        let done = d.decide(&inv.repos[copy.repo], &copy, &h, &mut targets);
        plan.decisions.push(done);
    }
    plan.interrupted = ui.interrupted();
    Ok(plan)
}

/// Blobs of a repo that hold a regular file.
fn blob_targets(inv: &Inventory, repo: &Repo) -> Vec<Target> {
    repo.blobs
        .iter()
        .filter_map(|b| {
            let (real, meta) = inv.blob_file(b)?;
            Some(Target {
                path: b.path.clone(),
                name: b.name.clone(),
                real: real.clone(),
                meta: meta.clone(),
            })
        })
        .collect()
}

/// For each path inside a revision, the name length of a blob it links to in some revision.
fn sibling_lengths(inv: &Inventory, repo: &Repo) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for e in repo.revisions.iter().flat_map(|r| &r.entries) {
        let Entry::Link(i) = e.entry else { continue };
        let Some(hop) = &inv.links[i].res.first_hop else {
            continue;
        };
        if let Some((r, name)) = hub::repo_blob(hop)
            && r == repo.folder
        {
            out.entry(e.rel.clone()).or_insert(name.len());
        }
    }
    out
}

struct Decider<'s> {
    store: &'s Store,
    min_age: Duration,
}

impl Decider<'_> {
    fn decide(
        &self,
        repo: &Repo,
        copy: &Copy,
        h: &Hashed,
        targets: &mut [Vec<Target>],
    ) -> Decision {
        let path = rel(&copy.path);
        let ri = copy.repo;
        match self.one(repo, copy, h, &mut targets[ri]) {
            Ok(d) => d,
            Err(reason) => Decision::Problem(Note { path, reason }),
        }
    }

    fn one(
        &self,
        repo: &Repo,
        copy: &Copy,
        h: &Hashed,
        targets: &mut Vec<Target>,
    ) -> Result<Decision, String> {
        let m = &h.meta;
        let same_inode = targets
            .iter()
            .find(|t| (t.meta.dev, t.meta.ino) == (m.dev, m.ino));
        let by_name = || {
            targets.iter().find(|t| {
                t.meta.size == m.size && h.digests.for_name(&t.name) == Some(t.name.as_str())
            })
        };
        if let Some(t) = same_inode.or_else(by_name).cloned() {
            let shared_inode = (t.meta.dev, t.meta.ino) == (m.dev, m.ino);
            if !shared_inode && !self.same_bytes(&copy.path, &t.real)? {
                // The copy's own hash is the blob's name: the blob is the corrupt one.
                return Err(corrupt_blob(&rel(&t.path), Digests::algorithm(&t.name)));
            }
            let freed = if shared_inode || m.nlink > 1 {
                0
            } else {
                m.size
            };
            return Ok(Decision::Link {
                copy: copy.clone(),
                meta: m.clone(),
                target: t,
                freed,
            });
        }
        let name = hub::new_blob_name(&copy.rule, &h.digests, m.size)?;
        let blob = StorePath::parse(&format!("{}/blobs/{name}", repo.folder)).ok_or("bad name")?;
        if let Some(t) = targets.iter().find(|t| t.name == name) {
            // The copy hashes to `name`, so the blob of that name is the corrupt one.
            return Err(corrupt_blob(&rel(&t.path), Digests::algorithm(&name)));
        }
        if repo.blobs.iter().any(|b| b.name == name) {
            return Err(format!(
                "{} exists but shows no file (dangling link?)",
                rel(&blob)
            ));
        }
        if age(m) < self.min_age {
            return Ok(Decision::Skip(Note {
                path: rel(&copy.path),
                reason: format!(
                    "no blob yet and modified within the last {}s (may still be written)",
                    self.min_age.as_secs()
                ),
            }));
        }
        // Later copies of the same content link to this blob (their bytes are compared
        // with this copy, which the blob will be).
        targets.push(Target {
            path: blob.clone(),
            name: name.clone(),
            real: copy.path.clone(),
            meta: m.clone(),
        });
        Ok(Decision::Move {
            copy: copy.clone(),
            meta: m.clone(),
            blob,
            name,
        })
    }

    /// Byte-for-byte comparison of two store files.
    fn same_bytes(&self, a: &StorePath, b: &StorePath) -> Result<bool, String> {
        hub::same_bytes(self.store, a, b).map_err(|e| format!("{} or {}: {e}", rel(a), rel(b)))
    }
}

impl Decision {
    /// The report entry of this decision carried out as planned.
    pub fn as_planned(&self) -> Result<Action, &Note> {
        match self {
            Decision::Link {
                copy,
                meta,
                target,
                freed,
            } => Ok(Action {
                path: rel(&copy.path),
                action: "link",
                blob: rel(&target.path),
                size: meta.size,
                reclaimed_bytes: *freed,
            }),
            Decision::Move {
                copy, meta, blob, ..
            } => Ok(Action {
                path: rel(&copy.path),
                action: "move",
                blob: rel(blob),
                size: meta.size,
                reclaimed_bytes: 0,
            }),
            Decision::Skip(n) | Decision::Problem(n) => Err(n),
        }
    }
}
