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
//! that have a blob or another copy of the same size.
//!
//! Computing and rendering are apart: [`report`] walks the store and computes the
//! [`ScanReport`] (changing nothing), [`render`] turns a report into the table for people;
//! `--json` prints the report itself.
//!
//! Exit 1 if broken links or unreadable entries were found.

pub mod render;
pub mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

pub use render::table;
pub use report::scan;

use super::{Outcome, ScanArgs, Ui};

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
