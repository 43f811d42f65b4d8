//! `hfcachefs dedupe`: turns snapshot entries that are regular-file copies (written by clients
//! without symlinks) back into relative links to a blob of the same content.
//!
//! For each copy, in path order:
//! 1. **Existing blob.** A blob of the repo with the same size whose name equals the copy's
//!    digest (or that is the same inode) is the target, after a byte-for-byte comparison:
//!    a corrupt blob never replaces a good copy.
//! 2. **No blob.** The copy itself becomes the blob: it is hard-linked to
//!    `<repo>/blobs/<name>` (no-replace; copied through a temp name where hard links are not
//!    supported), but only if unmodified for `--min-age` (it may still be written). The name
//!    follows [`naming_rule`]: the etag from `trees/<commit>.json`; else the kind of name the
//!    same path has in another revision; else sha256 above 10 MiB (the Hub stores such files
//!    in LFS), git blob sha1 otherwise.
//! 3. **Replace.** A link to the blob is made under a temp name in the entry's directory and
//!    renamed over the entry, after checking the entry is still the file that was hashed.
//!    A reader of the name sees the old file or the link, never nothing.
//!
//! Idempotent (links are left alone), interruptible between entries, and safe with other
//! machines: every step either completes or leaves the copy as it was (at worst an extra
//! hard link in `blobs/`, which the next run uses, or a stale `.hfcachefs-dedupe-*` link that
//! `gc` removes). Exit 1 if a copy could not be deduplicated because of a conflict or error.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use super::hash::{Algos, Digests, HashError, Hashed, Job, hash_many};
use super::inventory::{self, Entry, Inventory, Repo, is_content_name};
use super::{DedupeArgs, Outcome, Ui, age, human, rel};
#[cfg(windows)]
use crate::compat::libc;
use crate::hub;
use crate::path::StorePath;
use crate::store::{Meta, Store};

pub use crate::hub::{LFS_THRESHOLD, NameRule, naming_rule};

/// Entry point of `hfcachefs dedupe`.
pub fn main(args: DedupeArgs, default_store: PathBuf) -> ExitCode {
    super::exit(run(args, default_store))
}

fn run(args: DedupeArgs, default_store: PathBuf) -> Result<Outcome, String> {
    let (path, store) = super::open_store(args.store, default_store)?;
    let ui = Ui::new();
    let threads = super::threads(args.jobs);
    let mut report = dedupe(&store, &ui, args.dry_run, args.min_age, threads)?;
    report.store = path.display().to_string();
    super::emit(&report, args.json, text)?;
    Ok(Outcome::from(
        !report.problems.is_empty(),
        report.interrupted,
    ))
}

/// The dedupe report.
#[derive(Debug, Default, Serialize)]
pub struct DedupeReport {
    /// The store as given.
    pub store: String,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Entries turned (or, dry, to be turned) into links.
    pub actions: Vec<Action>,
    /// Entries left alone for now (recently modified, changed meanwhile).
    pub skipped: Vec<Note>,
    /// Entries that could not be deduplicated (conflicts, errors).
    pub problems: Vec<Note>,
    /// Bytes freed.
    pub reclaimed_bytes: u64,
    /// Stopped early.
    pub interrupted: bool,
}

/// One deduplicated entry.
#[derive(Debug, Serialize)]
pub struct Action {
    /// The snapshot entry.
    pub path: String,
    /// `link` (to an existing blob) or `move` (the copy became the blob).
    pub action: &'static str,
    /// The blob it now links to.
    pub blob: String,
    /// Its size.
    pub size: u64,
    /// Bytes freed by this entry.
    pub reclaimed_bytes: u64,
}

/// An entry with a reason.
#[derive(Debug, Serialize)]
pub struct Note {
    /// The snapshot entry.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// A blob a copy may link to.
#[derive(Clone, Debug)]
struct Target {
    /// The blob name's path (`<repo>/blobs/<name>`).
    path: StorePath,
    name: String,
    /// The real file with the content.
    real: StorePath,
    meta: Meta,
}

/// One copy to examine.
struct Copy {
    repo: usize,
    path: StorePath,
    rule: NameRule,
}

/// Deduplicates every repo of the store.
pub fn dedupe(
    store: &Store,
    ui: &Ui,
    dry_run: bool,
    min_age: Duration,
    threads: usize,
) -> Result<DedupeReport, String> {
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
    let mut report = DedupeReport {
        dry_run,
        ..DedupeReport::default()
    };
    let ctx = Ctx {
        store,
        dry_run,
        min_age,
    };
    // Copies too recent to become a blob are retried after the pass: another copy of the
    // same content may have become the blob meanwhile, and linking needs no age.
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
                report.skipped.push(Note {
                    path,
                    reason: "changed while it was read".into(),
                });
                continue;
            }
            Err(e) => {
                report.problems.push(Note {
                    path,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let repo = &inv.repos[job.tag.repo];
        match ctx.one(repo, &job.tag, &h, &mut targets[job.tag.repo]) {
            Ok(Done::Skipped(_)) if age(&h.meta) < min_age => deferred.push((job.tag, h)),
            done => record(&mut report, path, done),
        }
    }
    for (copy, h) in deferred {
        if ui.interrupted() {
            break;
        }
        let done = ctx.one(&inv.repos[copy.repo], &copy, &h, &mut targets[copy.repo]);
        record(&mut report, rel(&copy.path), done);
    }
    report.interrupted = ui.interrupted();
    Ok(report)
}

fn record(report: &mut DedupeReport, path: String, done: Result<Done, String>) {
    match done {
        Ok(Done::Action(a)) => {
            report.reclaimed_bytes += a.reclaimed_bytes;
            report.actions.push(a);
        }
        Ok(Done::Skipped(reason)) => report.skipped.push(Note { path, reason }),
        Err(reason) => report.problems.push(Note { path, reason }),
    }
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
        let comps: Vec<_> = hop.components().collect();
        if let [r, b, name] = comps.as_slice()
            && *r == repo.folder.as_str()
            && *b == "blobs"
            && is_content_name(&name.to_string_lossy())
        {
            out.entry(e.rel.clone()).or_insert(name.len());
        }
    }
    out
}

enum Done {
    Action(Action),
    Skipped(String),
}

struct Ctx<'s> {
    store: &'s Store,
    dry_run: bool,
    min_age: Duration,
}

/// The conflict of a good copy with a corrupt blob: the copy's content hashes to the blob's
/// name, the blob's bytes differ, so the blob is the one that is wrong.
fn corrupt_blob(blob: &str, algorithm: &str) -> String {
    format!(
        "{blob} is corrupt (this copy's {algorithm} is the blob's name, the blob's bytes differ) \
         and this copy is good: copy kept; confirm with hfcachefs verify, then replace the blob \
         with the copy"
    )
}

impl Ctx<'_> {
    fn one(
        &self,
        repo: &Repo,
        copy: &Copy,
        h: &Hashed,
        targets: &mut Vec<Target>,
    ) -> Result<Done, String> {
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
            return self.replace(copy, h, &t, "link", freed);
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
            return Ok(Done::Skipped(format!(
                "no blob yet and modified within the last {}s (may still be written)",
                self.min_age.as_secs()
            )));
        }
        if !self.dry_run {
            match hub::make_blob(self.store, &copy.path, &blob, &name, m) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    return Ok(Done::Skipped(format!(
                        "{} appeared meanwhile; run dedupe again",
                        rel(&blob)
                    )));
                }
                Err(e) => return Err(format!("creating {}: {e}", rel(&blob))),
            }
        }
        let t = Target {
            path: blob.clone(),
            name,
            real: if self.dry_run {
                copy.path.clone()
            } else {
                blob
            },
            meta: m.clone(),
        };
        targets.push(t.clone());
        self.replace(copy, h, &t, "move", 0)
    }

    /// Replaces the copy with a link to `t`, if it is still the file that was hashed.
    fn replace(
        &self,
        copy: &Copy,
        h: &Hashed,
        t: &Target,
        action: &'static str,
        freed: u64,
    ) -> Result<Done, String> {
        let done = Done::Action(Action {
            path: rel(&copy.path),
            action,
            blob: rel(&t.path),
            size: h.meta.size,
            reclaimed_bytes: freed,
        });
        if self.dry_run {
            return Ok(done);
        }
        match hub::replace_with_link(self.store, &copy.path, &t.path, &h.meta, "dedupe") {
            Ok(()) => Ok(done),
            Err(hub::ReplaceError::Changed) => {
                Ok(Done::Skipped("changed meanwhile; run dedupe again".into()))
            }
            Err(e) => Err(format!("replacing it: {e}")),
        }
    }

    /// Byte-for-byte comparison of two store files.
    fn same_bytes(&self, a: &StorePath, b: &StorePath) -> Result<bool, String> {
        hub::same_bytes(self.store, a, b).map_err(|e| format!("{} or {}: {e}", rel(a), rel(b)))
    }
}

/// The report for people.
pub fn text(r: &DedupeReport) -> String {
    let mut s = String::new();
    let verb = if r.dry_run { "would free" } else { "freed" };
    let links = r.actions.iter().filter(|a| a.action == "link").count();
    let _ = writeln!(
        s,
        "{}: {links} linked to an existing blob, {} moved into blobs/; {verb} {}; {} skipped, {} problem(s)",
        super::count(r.actions.len(), "entry", "entries"),
        r.actions.len() - links,
        human(r.reclaimed_bytes),
        r.skipped.len(),
        r.problems.len()
    );
    for a in &r.actions {
        let _ = writeln!(
            s,
            "{:<8} {} -> {} ({})",
            a.action,
            a.path,
            a.blob,
            human(a.size)
        );
    }
    for n in &r.skipped {
        let _ = writeln!(s, "skipped  {}: {}", n.path, n.reason);
    }
    for n in &r.problems {
        let _ = writeln!(s, "PROBLEM  {}: {}", n.path, n.reason);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    // Linking creates symlinks in the store, which wine cannot (see docs/WINDOWS.md).
    #[cfg(unix)]
    #[test]
    fn interrupted_move_is_finished_and_fresh_copies_wait() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let snap = root.join("models--a--b/snapshots/c1");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(root.join("models--a--b/blobs")).unwrap();
        let name = super::super::hash::digest_bytes(b"moved").git_sha1.unwrap();
        // A run that was stopped after the hard link into blobs/ and before the replacement.
        std::fs::write(snap.join("moved.txt"), b"moved").unwrap();
        std::fs::hard_link(
            snap.join("moved.txt"),
            root.join("models--a--b/blobs").join(&name),
        )
        .unwrap();
        std::fs::write(snap.join("fresh.txt"), b"fresh").unwrap();
        let store = Store::open_root(root).unwrap();
        let hour = Duration::from_secs(3600);
        let r = dedupe(&store, &Ui::quiet(), false, hour, 2).unwrap();
        assert_eq!(r.actions.len(), 1);
        assert_eq!((r.actions[0].action, r.reclaimed_bytes), ("link", 0));
        assert_eq!(
            std::fs::read_link(snap.join("moved.txt")).unwrap(),
            std::path::Path::new(&format!("../../blobs/{name}"))
        );
        assert_eq!(r.skipped.len(), 1);
        assert!(r.skipped[0].reason.contains("may still be written"));
        assert!(r.problems.is_empty());
        // Once old enough (here: no min age) the fresh copy becomes a blob.
        let r = dedupe(&store, &Ui::quiet(), false, Duration::ZERO, 1).unwrap();
        assert_eq!(r.actions.len(), 1);
        assert_eq!(r.actions[0].action, "move");
        assert_eq!(std::fs::read(snap.join("fresh.txt")).unwrap(), b"fresh");
        assert!(
            std::fs::symlink_metadata(snap.join("fresh.txt"))
                .unwrap()
                .is_symlink()
        );
    }
}
