//! Checking blobs against their names: the blob names of the chosen repos grouped by the real
//! file holding their content, each file hashed once (on all cores, largest first), and each
//! name compared with the digest of its kind.
//!
//! Invariants: nothing in the store is changed; a blob removed meanwhile is *vanished*, not
//! an error; mismatches, errors and vanished names are sorted by path, whatever order the
//! hashing finished in.

use std::collections::BTreeMap;

use super::{Mismatch, VerifyError, VerifyReport};
use crate::path::StorePath;
use crate::store::{Meta, Store};
use crate::tools::hash::{Algos, Digests, HashError, Job, hash_many};
use crate::tools::inventory::{self, Inventory};
use crate::tools::{Ui, rel};

struct Group {
    meta: Meta,
    names: Vec<(StorePath, String)>,
}

/// Verifies the blobs of the repos matching `repos` (all repos if empty).
pub fn verify(
    store: &Store,
    ui: &Ui,
    repos: &[String],
    threads: usize,
) -> Result<VerifyReport, String> {
    let opts = inventory::Options {
        repos: (!repos.is_empty()).then(|| repos.to_vec()),
    };
    let inv = inventory::build(store, &opts, ui)?;
    if !repos.is_empty() && inv.repos.is_empty() {
        return Err(format!("no repo matches {}", repos.join(", ")));
    }
    let mut report = VerifyReport {
        repos: inv.repos.iter().map(|r| r.folder.clone()).collect(),
        ..VerifyReport::default()
    };
    let groups = group_by_file(&inv, &mut report);
    let jobs: Vec<Job<Group>> = groups
        .into_iter()
        .map(|(path, g)| Job {
            path,
            size: g.meta.size,
            algos: g
                .names
                .iter()
                .fold(Algos::default(), |a, (_, n)| a.union(Algos::for_name(n))),
            tag: g,
        })
        .collect();
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let pb = ui.bytes_bar(total, "verifying");
    let results = hash_many(store, jobs, threads, &pb, ui.stop_flag());
    pb.finish_and_clear();
    for (job, r) in results {
        match r {
            Ok(h) => {
                report.files += 1;
                report.bytes += h.meta.size;
                for (path, name) in &job.tag.names {
                    report.names += 1;
                    let actual = h.digests.for_name(name).unwrap_or_default();
                    if actual != name {
                        report.mismatches.push(Mismatch {
                            path: rel(path),
                            file: rel(&job.path),
                            algorithm: Digests::algorithm(name),
                            expected: name.clone(),
                            actual: actual.to_string(),
                            size: h.meta.size,
                        });
                    }
                }
            }
            Err(HashError::Interrupted) => {}
            Err(HashError::Io(e)) if e.raw_os_error() == Some(libc::ENOENT) => {
                report
                    .vanished
                    .extend(job.tag.names.iter().map(|(p, _)| rel(p)));
            }
            Err(e) => {
                for (path, _) in &job.tag.names {
                    report.errors.push(VerifyError {
                        path: rel(path),
                        error: e.to_string(),
                    });
                }
            }
        }
    }
    report.mismatches.sort_by(|a, b| a.path.cmp(&b.path));
    report.errors.sort_by(|a, b| a.path.cmp(&b.path));
    report.vanished.sort();
    report.interrupted = ui.interrupted();
    Ok(report)
}

/// Groups blob names by the real file holding their content; records unreadable blobs.
fn group_by_file(inv: &Inventory, report: &mut VerifyReport) -> BTreeMap<StorePath, Group> {
    let mut groups: BTreeMap<StorePath, Group> = BTreeMap::new();
    for repo in &inv.repos {
        for b in &repo.blobs {
            match inv.blob_file(b) {
                Some((real, meta)) => groups
                    .entry(real.clone())
                    .or_insert_with(|| Group {
                        meta: meta.clone(),
                        names: Vec::new(),
                    })
                    .names
                    .push((b.path.clone(), b.name.clone())),
                None => {
                    let why = match b.link.map(|i| inv.links[i].outcome()) {
                        Some(Err(odd)) => odd.describe(),
                        _ => "not a regular file".into(),
                    };
                    report.errors.push(VerifyError {
                        path: rel(&b.path),
                        error: why,
                    });
                }
            }
        }
    }
    for p in &inv.payloads {
        if p.link.is_none() && !groups.contains_key(&p.path) {
            report.unchecked.push(rel(&p.path));
        }
    }
    groups
}
