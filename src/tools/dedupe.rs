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
//! Deciding, acting and rendering are apart: [`plan()`] hashes every copy and decides (changing
//! nothing), [`apply()`] carries the plan out, [`preview`] turns a plan into the report of a
//! dry run, and [`text`] renders a report. A dry run is the plan, not applied.
//!
//! Idempotent (links are left alone), interruptible between entries, and safe with other
//! machines: every step either completes or leaves the copy as it was (at worst an extra
//! hard link in `blobs/`, which the next run uses, or a stale `.hfcachefs-dedupe-*` link that
//! `gc` removes). Exit 1 if a copy could not be deduplicated because of a conflict or error.

pub mod apply;
pub mod plan;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

pub use apply::{apply, preview};
pub use plan::{Decision, Plan, plan};

use super::{DedupeArgs, Outcome, Ui, human};
use crate::store::Store;

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
#[derive(Clone, Debug, Serialize)]
pub struct Note {
    /// The snapshot entry.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// Deduplicates every repo of the store: plans, then applies the plan (or, for a dry run,
/// only renders it).
pub fn dedupe(
    store: &Store,
    ui: &Ui,
    dry_run: bool,
    min_age: Duration,
    threads: usize,
) -> Result<DedupeReport, String> {
    let plan = plan(store, ui, min_age, threads)?;
    Ok(if dry_run {
        preview(plan)
    } else {
        apply(store, ui, plan)
    })
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

// Linking creates symlinks in the store, which wine cannot (see docs/WINDOWS.md).
#[cfg(all(test, unix))]
mod tests {
    use super::*;

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

    /// A dry run is the plan, not applied; the run does what it announced. Two copies of
    /// one content: the first becomes the blob, the second links to it.
    #[test]
    fn dry_run_is_the_plan_and_a_blob_not_created_is_never_linked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let snap = root.join("models--a--b/snapshots/c1");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(root.join("models--a--b/blobs")).unwrap();
        std::fs::write(snap.join("a.txt"), b"same").unwrap();
        std::fs::write(snap.join("b.txt"), b"same").unwrap();
        let store = Store::open_root(root).unwrap();
        let ui = Ui::quiet();
        let dry = preview(plan(&store, &ui, Duration::ZERO, 1).unwrap());
        assert!(dry.dry_run);
        let acts = |r: &DedupeReport| {
            r.actions
                .iter()
                .map(|a| (a.path.clone(), a.action, a.blob.clone()))
                .collect::<Vec<_>>()
        };
        let name = super::super::hash::digest_bytes(b"same").git_sha1.unwrap();
        let blob = format!("models--a--b/blobs/{name}");
        assert_eq!(
            acts(&dry),
            [
                (
                    "models--a--b/snapshots/c1/a.txt".to_string(),
                    "move",
                    blob.clone()
                ),
                (
                    "models--a--b/snapshots/c1/b.txt".to_string(),
                    "link",
                    blob.clone()
                ),
            ]
        );
        assert!(!root.join(&blob).exists(), "the dry run changed the store");
        // The blob name appears between planning and applying: the move is left for the
        // next run, and the copy planned to link to the blob is not linked to what appeared.
        let p = plan(&store, &ui, Duration::ZERO, 1).unwrap();
        std::fs::write(root.join(&blob), b"other").unwrap();
        let r = apply(&store, &ui, p);
        assert!(r.actions.is_empty(), "{:?}", r.actions);
        assert_eq!(r.skipped.len(), 2, "{:?}", r.skipped);
        assert!(r.skipped[0].reason.contains("appeared meanwhile"));
        assert!(r.skipped[1].reason.contains("was not created"));
        assert!(
            !std::fs::symlink_metadata(snap.join("b.txt"))
                .unwrap()
                .is_symlink()
        );
        // Without the intruder the run does what the dry run announced.
        std::fs::remove_file(root.join(&blob)).unwrap();
        let r = apply(&store, &ui, plan(&store, &ui, Duration::ZERO, 1).unwrap());
        assert_eq!(acts(&r), acts(&dry));
        assert_eq!(r.reclaimed_bytes, dry.reclaimed_bytes);
    }
}
