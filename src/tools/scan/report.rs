//! Computing the scan report: one walk of the store ([`crate::tools::inventory`]), copies
//! hashed where a blob or another copy could match, and the figures of each repo and of the
//! store.
//!
//! Invariants: nothing in the store is changed; each file counts once in physical bytes (by
//! device and inode); only copies with a blob or another copy of the same size are hashed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::{
    AgedItem, BrokenLink, CopyItem, PathError, RepoReport, RevisionReport, ScanReport,
    SharedReport, SizedItem, Totals,
};
use crate::store::{Kind, Meta, Store};
use crate::tools::hash::{Algos, Job, hash_many};
use crate::tools::inventory::{self, Entry, Inventory, Repo, TempKind};
use crate::tools::{Ui, age, rel};

fn problem_name(o: &crate::resolve::Odd) -> &'static str {
    use crate::resolve::Odd;
    match o {
        Odd::Escapes => "escapes",
        Odd::Dangling => "dangling",
        Odd::Loop => "loop",
        Odd::Special => "special",
        Odd::Unreadable(_) => "unreadable",
    }
}

fn ratio(logical: u64, physical: u64) -> f64 {
    if physical == 0 {
        return 1.0;
    }
    (logical as f64 / physical as f64 * 1000.0).round() / 1000.0
}

/// Scans the store.
pub fn scan(
    store: &Store,
    ui: &Ui,
    min_age: Duration,
    threads: usize,
) -> Result<ScanReport, String> {
    let inv = inventory::build(store, &inventory::Options::default(), ui)?;
    let reach = inv.reach();
    let copies = classify_copies(store, &inv, ui, threads);
    let mut total = Totals::default();
    let mut all_physical: HashMap<(u64, u64), u64> = HashMap::new();
    let mut repos = Vec::new();
    let mut in_repo_links = HashSet::new();
    for repo in &inv.repos {
        let mut phys: HashMap<(u64, u64), u64> = HashMap::new();
        let mut add = |m: &Meta| {
            if m.kind == Kind::File {
                phys.insert((m.dev, m.ino), m.size);
            }
        };
        let mut t = Totals {
            revisions: repo.revisions.len() as u64,
            ..Totals::default()
        };
        let mut revisions = Vec::new();
        for rev in &repo.revisions {
            let (mut files, mut bytes) = (0, 0);
            for e in &rev.entries {
                if let Some((_, m)) = inv.entry_file(e) {
                    files += 1;
                    bytes += m.size;
                    add(m);
                }
            }
            t.files += files;
            t.logical_bytes += bytes;
            revisions.push(RevisionReport {
                commit: rev.commit.clone(),
                refs: repo
                    .refs
                    .iter()
                    .filter(|(_, c)| **c == rev.commit)
                    .map(|(n, _)| n.clone())
                    .collect(),
                files,
                logical_bytes: bytes,
            });
        }
        let mut orphan_blobs = Vec::new();
        for b in &repo.blobs {
            if let Some((_, m)) = inv.blob_file(b) {
                add(m);
            }
            if !reach.reaches(&b.path, &b.meta) {
                let size = if b.link.is_none() { b.meta.size } else { 0 };
                orphan_blobs.push(SizedItem {
                    path: rel(&b.path),
                    size,
                });
                t.orphans += 1;
                t.orphan_bytes += size;
            }
        }
        let (mut incomplete, mut temp_files) = (Vec::new(), Vec::new());
        for tmp in &repo.temps {
            add(&tmp.meta);
            let stale = age(&tmp.meta) >= min_age;
            let size = if tmp.meta.kind == Kind::File {
                tmp.meta.size
            } else {
                0
            };
            let item = AgedItem {
                path: rel(&tmp.path),
                size,
                stale,
            };
            if stale {
                t.stale += 1;
                t.stale_bytes += size;
            }
            match tmp.kind {
                TempKind::Incomplete => {
                    t.incomplete += 1;
                    incomplete.push(item)
                }
                TempKind::Temp => temp_files.push(item),
            }
        }
        let repo_copies = copies.get(&repo.folder).map(Vec::as_slice).unwrap_or(&[]);
        t.copies = repo_copies.len() as u64;
        t.dedupe_reclaimable_bytes = repo_copies.iter().map(|c| c.reclaimable_bytes).sum();
        let broken_links = broken_links_under(&inv, repo, &mut in_repo_links);
        t.broken_links = broken_links.len() as u64;
        t.physical_bytes = phys.values().sum();
        t.dedup_ratio = ratio(t.logical_bytes, t.physical_bytes);
        add_totals(&mut total, &t);
        all_physical.extend(phys);
        repos.push(RepoReport {
            repo_id: repo.id.clone(),
            repo_type: repo.kind.to_string(),
            folder: repo.folder.clone(),
            refs: repo.refs.clone(),
            revisions,
            totals: t,
            copies: copies.get(&repo.folder).cloned().unwrap_or_default(),
            orphan_blobs,
            incomplete,
            temp_files,
            broken_links,
        });
    }
    let mut shared = SharedReport {
        marked: inv.shared_marker,
        ..SharedReport::default()
    };
    for p in &inv.payloads {
        if let Some((_, m)) = inv.blob_file(p) {
            shared.payloads += 1;
            shared.bytes += m.size;
            all_physical.insert((m.dev, m.ino), m.size);
        }
        if !reach.reaches(&p.path, &p.meta) {
            let size = if p.link.is_none() { p.meta.size } else { 0 };
            shared.orphans.push(SizedItem {
                path: rel(&p.path),
                size,
            });
            total.orphans += 1;
            total.orphan_bytes += size;
        }
    }
    for tmp in &inv.shared_temps {
        let stale = age(&tmp.meta) >= min_age;
        let size = if tmp.meta.kind == Kind::File {
            tmp.meta.size
        } else {
            0
        };
        if tmp.meta.kind == Kind::File {
            all_physical.insert((tmp.meta.dev, tmp.meta.ino), size);
        }
        if stale {
            total.stale += 1;
            total.stale_bytes += size;
        }
        shared.temp_files.push(AgedItem {
            path: rel(&tmp.path),
            size,
            stale,
        });
    }
    let other_broken_links: Vec<BrokenLink> = inv
        .links
        .iter()
        .enumerate()
        .filter(|(i, _)| !in_repo_links.contains(i))
        .filter_map(|(_, l)| broken(l))
        .collect();
    total.broken_links += other_broken_links.len() as u64;
    total.physical_bytes = all_physical.values().sum();
    total.dedup_ratio = ratio(total.logical_bytes, total.physical_bytes);
    Ok(ScanReport {
        store: String::new(),
        repos,
        shared,
        total,
        other_broken_links,
        errors: inv
            .errors
            .iter()
            .map(|(p, e)| PathError {
                path: rel(p),
                error: e.clone(),
            })
            .collect(),
        interrupted: ui.interrupted(),
    })
}

fn add_totals(total: &mut Totals, t: &Totals) {
    total.revisions += t.revisions;
    total.files += t.files;
    total.logical_bytes += t.logical_bytes;
    total.copies += t.copies;
    total.dedupe_reclaimable_bytes += t.dedupe_reclaimable_bytes;
    total.orphans += t.orphans;
    total.orphan_bytes += t.orphan_bytes;
    total.incomplete += t.incomplete;
    total.stale += t.stale;
    total.stale_bytes += t.stale_bytes;
    total.broken_links += t.broken_links;
}

fn broken(l: &inventory::Link) -> Option<BrokenLink> {
    let odd = l.outcome().err()?;
    Some(BrokenLink {
        path: rel(&l.path),
        target: String::from_utf8_lossy(&l.text).into_owned(),
        problem: problem_name(&odd),
    })
}

fn broken_links_under(inv: &Inventory, repo: &Repo, seen: &mut HashSet<usize>) -> Vec<BrokenLink> {
    let mut out = Vec::new();
    for (i, l) in inv.links.iter().enumerate() {
        if l.path
            .components()
            .next()
            .is_some_and(|c| c == repo.folder.as_str())
        {
            seen.insert(i);
            out.extend(broken(l));
        }
    }
    out
}

/// Classifies every snapshot copy, per repo folder.
fn classify_copies(
    store: &Store,
    inv: &Inventory,
    ui: &Ui,
    threads: usize,
) -> HashMap<String, Vec<CopyItem>> {
    struct Tag<'a> {
        repo: &'a str,
        path: &'a crate::path::StorePath,
        meta: &'a Meta,
    }
    let mut jobs = Vec::new();
    let mut unhashed = Vec::new();
    for repo in &inv.repos {
        let mut blob_sizes: HashMap<u64, Algos> = HashMap::new();
        for b in &repo.blobs {
            if let Some((_, m)) = inv.blob_file(b) {
                let a = blob_sizes.entry(m.size).or_default();
                *a = a.union(Algos::for_name(&b.name));
            }
        }
        let mut copy_sizes: HashMap<u64, usize> = HashMap::new();
        let copies: Vec<_> = repo
            .revisions
            .iter()
            .flat_map(|r| &r.entries)
            .filter_map(|e| match &e.entry {
                Entry::File(m) => Some((&e.path, m)),
                _ => None,
            })
            .collect();
        for (_, m) in &copies {
            *copy_sizes.entry(m.size).or_default() += 1;
        }
        for (path, meta) in copies {
            let mut algos = blob_sizes.get(&meta.size).copied().unwrap_or_default();
            if copy_sizes.get(&meta.size).copied().unwrap_or(0) > 1 {
                algos.sha256 = true;
            }
            let tag = Tag {
                repo: &repo.folder,
                path,
                meta,
            };
            if algos == Algos::default() {
                unhashed.push(tag);
            } else {
                jobs.push(Job {
                    path: path.clone(),
                    size: meta.size,
                    algos,
                    tag,
                });
            }
        }
    }
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let pb = ui.bytes_bar(total, "hashing copies");
    let hashed = hash_many(store, jobs, threads, &pb, ui.stop_flag());
    pb.finish_and_clear();
    let mut out: HashMap<String, Vec<CopyItem>> = HashMap::new();
    // Content without a blob: the first copy (in path order) would become the blob.
    let mut first_of: HashSet<(String, String)> = HashSet::new();
    let mut items: Vec<(&str, CopyItem, Option<String>)> = Vec::new();
    for (job, r) in hashed {
        let repo = inv.repos.iter().find(|r| r.folder == job.tag.repo);
        let digests = r.ok().map(|h| h.digests);
        let mut blob = None;
        if let (Some(repo), Some(d)) = (repo, digests.as_ref()) {
            blob = repo.blobs.iter().find(|b| {
                inv.blob_file(b)
                    .is_some_and(|(_, m)| m.size == job.tag.meta.size)
                    && d.for_name(&b.name) == Some(b.name.as_str())
            });
        }
        let same_inode = repo.and_then(|r| {
            r.blobs.iter().find(|b| {
                inv.blob_file(b)
                    .is_some_and(|(_, m)| (m.dev, m.ino) == (job.tag.meta.dev, job.tag.meta.ino))
            })
        });
        let blob = same_inode.or(blob);
        let reclaim = match blob {
            Some(_) if same_inode.is_none() && job.tag.meta.nlink == 1 => job.tag.meta.size,
            _ => 0,
        };
        let key = digests.and_then(|d| d.sha256).filter(|_| blob.is_none());
        items.push((
            job.tag.repo,
            CopyItem {
                path: rel(job.tag.path),
                size: job.tag.meta.size,
                blob: blob.map(|b| rel(&b.path)),
                reclaimable_bytes: reclaim,
            },
            key,
        ));
    }
    for t in unhashed {
        items.push((
            t.repo,
            CopyItem {
                path: rel(t.path),
                size: t.meta.size,
                blob: None,
                reclaimable_bytes: 0,
            },
            None,
        ));
    }
    items.sort_by(|a, b| a.1.path.cmp(&b.1.path));
    for (repo, mut item, key) in items {
        if let Some(k) = key
            && !first_of.insert((repo.to_string(), k))
        {
            item.reclaimable_bytes = item.size;
        }
        out.entry(repo.to_string()).or_default().push(item);
    }
    out
}
