//! `hfcachefs scan`: what a store holds and what could be reclaimed, per repo and in total.
//!
//! Figures (exact definitions in `docs/TOOLS.md`):
//! - *logical bytes*: what clients see — the size of every snapshot entry that shows a file,
//!   summed over all revisions;
//! - *physical bytes*: content on disk, each file once (by device and inode): blobs, shared
//!   payloads, snapshot copies, `.incomplete`/temporary files. Per repo it includes the
//!   payloads the repo reaches, so repo figures may add up to more than the total;
//! - *copies*: snapshot entries that are regular files. One equal to a blob of its repo (same
//!   size, content hash equal to the blob's name) is reclaimable by `dedupe`, and so is every
//!   copy but one of content that has no blob yet;
//! - *orphans*: blobs and payloads no root reaches ([`super::inventory::Reach`]);
//! - *broken links*: every link in the store that dangles, loops, leaves the store or reaches
//!   a device/FIFO/socket.
//!
//! Scan changes nothing. It trusts blob names (that is `verify`'s job) and hashes only copies
//! that have a blob or another copy of the same size. Exit 1 if broken links or unreadable
//! entries were found.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use super::hash::{Algos, Job, hash_many};
use super::inventory::{self, Entry, Inventory, Repo, TempKind};
use super::{Outcome, ScanArgs, Ui, age, human, rel};
use crate::store::{Kind, Meta, Store};

/// Entry point of `hfcachefs scan`.
pub fn main(args: ScanArgs, default_store: PathBuf) -> ExitCode {
    super::exit(run(args, default_store))
}

fn run(args: ScanArgs, default_store: PathBuf) -> Result<Outcome, String> {
    let (path, store) = super::open_store(args.store, default_store)?;
    let ui = Ui::new();
    let report = scan(&store, &ui, args.min_age, super::threads(args.jobs))?;
    let mut report = report;
    report.store = path.display().to_string();
    super::emit(&report, args.json, table)?;
    let problems = report.total.broken_links > 0 || !report.errors.is_empty();
    Ok(Outcome::from(problems, report.interrupted))
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct ScanReport {
    /// The store as given.
    pub store: String,
    /// Per repo, sorted by folder.
    pub repos: Vec<RepoReport>,
    /// The shared blob store.
    pub shared: SharedReport,
    /// Store-wide figures (shared payloads once).
    pub total: Totals,
    /// Broken links outside repo folders.
    pub other_broken_links: Vec<BrokenLink>,
    /// Entries that could not be read.
    pub errors: Vec<PathError>,
    /// The scan was stopped early.
    pub interrupted: bool,
}

/// One repo.
#[derive(Debug, Serialize)]
pub struct RepoReport {
    /// `org/name`.
    pub repo_id: String,
    /// `model`, `dataset`, `space`, `kernel`.
    pub repo_type: String,
    /// Folder name.
    pub folder: String,
    /// Ref name → commit.
    pub refs: BTreeMap<String, String>,
    /// Snapshots.
    pub revisions: Vec<RevisionReport>,
    /// Figures.
    pub totals: Totals,
    /// Snapshot entries that are regular files.
    pub copies: Vec<CopyItem>,
    /// Blobs nothing reaches.
    pub orphan_blobs: Vec<SizedItem>,
    /// `.incomplete` files.
    pub incomplete: Vec<AgedItem>,
    /// Other temporary files.
    pub temp_files: Vec<AgedItem>,
    /// Broken links in the repo folder.
    pub broken_links: Vec<BrokenLink>,
}

/// One snapshot.
#[derive(Debug, Serialize)]
pub struct RevisionReport {
    /// Directory name (commit).
    pub commit: String,
    /// Refs holding this commit.
    pub refs: Vec<String>,
    /// Entries showing a file.
    pub files: u64,
    /// Their bytes.
    pub logical_bytes: u64,
}

/// Figures of a repo or of the store.
#[derive(Debug, Default, Serialize)]
pub struct Totals {
    /// Number of snapshots.
    pub revisions: u64,
    /// Snapshot entries showing a file.
    pub files: u64,
    /// What clients see.
    pub logical_bytes: u64,
    /// Content on disk, each file once.
    pub physical_bytes: u64,
    /// logical / physical (1 when both are 0), 3 decimals.
    pub dedup_ratio: f64,
    /// Snapshot entries that are regular files.
    pub copies: u64,
    /// Bytes `dedupe` would free.
    pub dedupe_reclaimable_bytes: u64,
    /// Orphan blobs and payloads.
    pub orphans: u64,
    /// Their bytes.
    pub orphan_bytes: u64,
    /// `.incomplete` files.
    pub incomplete: u64,
    /// Stale `.incomplete` and temporary files.
    pub stale: u64,
    /// Their bytes (what `gc` with the same min age would free besides orphans).
    pub stale_bytes: u64,
    /// Broken links.
    pub broken_links: u64,
}

/// The shared blob store.
#[derive(Debug, Default, Serialize)]
pub struct SharedReport {
    /// `blobs/.huggingface-shared-blobs` holds `1\n`.
    pub marked: bool,
    /// Payload files.
    pub payloads: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Payloads nothing reaches.
    pub orphans: Vec<SizedItem>,
    /// Temporaries.
    pub temp_files: Vec<AgedItem>,
}

/// A snapshot copy.
#[derive(Clone, Debug, Serialize)]
pub struct CopyItem {
    /// Store path.
    pub path: String,
    /// Size.
    pub size: u64,
    /// The blob with the same content, if any.
    pub blob: Option<String>,
    /// Bytes `dedupe` frees for this entry.
    pub reclaimable_bytes: u64,
}

/// A path with a size.
#[derive(Debug, Serialize)]
pub struct SizedItem {
    /// Store path.
    pub path: String,
    /// Size (0 for a link).
    pub size: u64,
}

/// A path with a size and staleness.
#[derive(Debug, Serialize)]
pub struct AgedItem {
    /// Store path.
    pub path: String,
    /// Size.
    pub size: u64,
    /// Older than the min age.
    pub stale: bool,
}

/// A link that shows nothing.
#[derive(Debug, Serialize)]
pub struct BrokenLink {
    /// Where the link is.
    pub path: String,
    /// Its text.
    pub target: String,
    /// `dangling`, `loop`, `escapes`, `special` or `unreadable`.
    pub problem: &'static str,
}

/// An unreadable entry.
#[derive(Debug, Serialize)]
pub struct PathError {
    /// Store path.
    pub path: String,
    /// The error.
    pub error: String,
}

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

/// The table for people.
pub fn table(r: &ScanReport) -> String {
    let mut s = String::new();
    if r.repos.is_empty() {
        // Said first: a mistyped store path (or one that is no hub cache) otherwise shows up
        // only as a table of zeros and many "broken links".
        let _ = writeln!(
            s,
            "no repos found in {} (no models--*, datasets--* or spaces--* folders): is it a \
             Hugging Face hub cache?",
            r.store
        );
    }
    // The name column is as wide as the longest repo id, so long names keep the columns
    // aligned instead of pushing the rest of their row out of line.
    let w = r
        .repos
        .iter()
        .map(|repo| repo.repo_id.chars().count())
        .max()
        .unwrap_or(0)
        .max(32);
    let _ = writeln!(
        s,
        "{:<w$} {:<7} {:>4} {:>6} {:>12} {:>12} {:>7} {:>6} {:>7} {:>10} {:>6}  REFS",
        "REPO",
        "TYPE",
        "REVS",
        "FILES",
        "LOGICAL",
        "PHYSICAL",
        "RATIO",
        "COPIES",
        "ORPHANS",
        "INCOMPLETE",
        "BROKEN"
    );
    let row = |s: &mut String, name: &str, kind: &str, t: &Totals, refs: &str| {
        let line = format!(
            "{:<w$} {:<7} {:>4} {:>6} {:>12} {:>12} {:>6.2}x {:>6} {:>7} {:>10} {:>6}  {}",
            name,
            kind,
            t.revisions,
            t.files,
            human(t.logical_bytes),
            human(t.physical_bytes),
            t.dedup_ratio,
            t.copies,
            t.orphans,
            t.incomplete,
            t.broken_links,
            refs
        );
        let _ = writeln!(s, "{}", line.trim_end());
    };
    for repo in &r.repos {
        let refs: Vec<&str> = repo.refs.keys().map(String::as_str).collect();
        row(
            &mut s,
            &repo.repo_id,
            &repo.repo_type,
            &repo.totals,
            &refs.join(", "),
        );
    }
    row(&mut s, "TOTAL", "", &r.total, "");
    if r.shared.marked {
        let _ = writeln!(
            s,
            "shared blob store: {} payload(s), {}, {} orphan(s)",
            r.shared.payloads,
            human(r.shared.bytes),
            r.shared.orphans.len()
        );
    }
    let _ = writeln!(
        s,
        "reclaimable: {} by dedupe, {} by gc ({} in orphans, {} in stale temporary files)",
        human(r.total.dedupe_reclaimable_bytes),
        human(r.total.orphan_bytes + r.total.stale_bytes),
        human(r.total.orphan_bytes),
        human(r.total.stale_bytes)
    );
    let mut details = String::new();
    for repo in &r.repos {
        for c in &repo.copies {
            let what = match &c.blob {
                Some(b) => format!("= {b}"),
                None => "no blob yet (dedupe moves it into blobs/)".into(),
            };
            let _ = writeln!(details, "copy        {} ({}) {what}", c.path, human(c.size));
        }
        for o in &repo.orphan_blobs {
            let _ = writeln!(details, "orphan      {} ({})", o.path, human(o.size));
        }
        for (label, list) in [("incomplete", &repo.incomplete), ("temp", &repo.temp_files)] {
            for i in list {
                let stale = if i.stale { "stale" } else { "recent" };
                let _ = writeln!(
                    details,
                    "{label:<11} {} ({}, {stale})",
                    i.path,
                    human(i.size)
                );
            }
        }
        for b in &repo.broken_links {
            let _ = writeln!(
                details,
                "broken      {} -> {} ({})",
                b.path, b.target, b.problem
            );
        }
    }
    for o in &r.shared.orphans {
        let _ = writeln!(details, "orphan      {} ({})", o.path, human(o.size));
    }
    for i in &r.shared.temp_files {
        let stale = if i.stale { "stale" } else { "recent" };
        let _ = writeln!(
            details,
            "temp        {} ({}, {stale})",
            i.path,
            human(i.size)
        );
    }
    for b in &r.other_broken_links {
        let _ = writeln!(
            details,
            "broken      {} -> {} ({})",
            b.path, b.target, b.problem
        );
    }
    for e in &r.errors {
        let _ = writeln!(details, "error       {}: {}", e.path, e.error);
    }
    if !details.is_empty() {
        s.push('\n');
        s.push_str(&details);
    }
    s
}
