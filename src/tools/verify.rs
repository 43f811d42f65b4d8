//! `hfcachefs verify`: re-hashes every blob and compares the digest with the blob's name —
//! sha256 for 64-hex names, the git blob sha1 (`"blob <len>\0"` + content) for 40-hex names.
//!
//! A repo blob that links into the shared store is checked through its link: the payload's
//! content must hash to the repo blob's name (payload names are Xet hashes, which are not
//! content digests this tool can recompute). Each real file is read once, however many names
//! reach it; files are hashed on all cores, largest first. Verify changes nothing.
//!
//! Exit 1 if any digest differs from its name, or a blob cannot be read (a dangling blob link,
//! an I/O error). A blob removed while verify runs is not a problem (counted as vanished).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use super::hash::{Algos, Digests, HashError, Job, hash_many};
use super::inventory::{self, Inventory};
use super::{Outcome, Ui, VerifyArgs, human, rel};
use crate::path::StorePath;
use crate::store::{Meta, Store};

/// Entry point of `hfcachefs verify`.
pub fn main(args: VerifyArgs, default_store: PathBuf) -> ExitCode {
    super::exit(run(args, default_store))
}

fn run(args: VerifyArgs, default_store: PathBuf) -> Result<Outcome, String> {
    let (path, store) = super::open_store(args.store, default_store)?;
    let ui = Ui::new();
    let mut report = verify(&store, &ui, &args.repos, super::threads(args.jobs))?;
    report.store = path.display().to_string();
    super::emit(&report, args.json, text)?;
    let problems = !report.mismatches.is_empty() || !report.errors.is_empty();
    Ok(Outcome::from(problems, report.interrupted))
}

/// The verify report.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    /// The store as given.
    pub store: String,
    /// Repo folders checked.
    pub repos: Vec<String>,
    /// Blob names checked.
    pub names: u64,
    /// Distinct files read.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Names whose content hashes to something else.
    pub mismatches: Vec<Mismatch>,
    /// Blobs that could not be read.
    pub errors: Vec<VerifyError>,
    /// Blobs removed while verify ran.
    pub vanished: Vec<String>,
    /// Shared payloads no blob name reaches (nothing to compare them with).
    pub unchecked: Vec<String>,
    /// Stopped early.
    pub interrupted: bool,
}

/// A blob whose content does not match its name.
#[derive(Debug, Serialize)]
pub struct Mismatch {
    /// The blob name's path.
    pub path: String,
    /// The file holding the content (differs from `path` for links into the shared store).
    pub file: String,
    /// `sha256` or `git-sha1`.
    pub algorithm: &'static str,
    /// The name.
    pub expected: String,
    /// The digest of the content.
    pub actual: String,
    /// Content size.
    pub size: u64,
}

/// A blob that could not be checked.
#[derive(Debug, Serialize)]
pub struct VerifyError {
    /// The blob name's path.
    pub path: String,
    /// Why.
    pub error: String,
}

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

/// The report for people.
pub fn text(r: &VerifyReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "verified {} blob name(s) in {} file(s), {}, {} repo(s): {} mismatch(es), {} error(s)",
        r.names,
        r.files,
        human(r.bytes),
        r.repos.len(),
        r.mismatches.len(),
        r.errors.len()
    );
    for m in &r.mismatches {
        let via = if m.file != m.path {
            format!(" (content in {})", m.file)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "MISMATCH {}{via}: {} is {}",
            m.path, m.algorithm, m.actual
        );
    }
    for e in &r.errors {
        let _ = writeln!(s, "ERROR    {}: {}", e.path, e.error);
    }
    for v in &r.vanished {
        let _ = writeln!(s, "vanished {v}");
    }
    for u in &r.unchecked {
        let _ = writeln!(s, "unchecked {u} (no blob name reaches this payload)");
    }
    s
}
