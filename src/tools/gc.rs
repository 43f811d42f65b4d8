//! `hfcachefs gc`: deletes blobs nothing reaches, and stale `.incomplete` and temporary files.
//!
//! Safety rules (all must hold for an entry to be deleted; see `docs/TOOLS.md`):
//! 1. The whole store was walked without an unreadable directory (else nothing is deleted:
//!    a link in the unread part could reach anything).
//! 2. No root reaches it: no link outside blob positions (snapshot entries, anything else),
//!    through any chain of links or directory links; no snapshot file is the same inode; a
//!    regular blob has no other hard link.
//! 3. It was not modified within `--min-age` (mtime; a live download keeps writing, and a blob
//!    just renamed into place keeps the download's recent mtime).
//! 4. The hub's lock for it is free (`.locks/<repo>/<etag>.lock` for repo blobs and
//!    `.incomplete` files, `blobs/<hh>/<hash>.lock` for payloads, as the hub's own sweep takes
//!    it); it is held while the repo's snapshots are walked again and the entry is deleted,
//!    so a client that linked it meanwhile keeps it.
//! 5. A payload is deleted only after the repo blob links that reached it were deleted, and
//!    only if no entry of its manifest `<hash>.refs` is a link to it (a link by the hub's one
//!    rule, [`walk::is_link`]); its manifest goes with it
//!    (the lock file stays, as the hub leaves it).
//!
//! Deciding, acting and rendering are apart: [`plan()`] walks the store and decides (changing
//! nothing), [`apply()`] carries a plan out re-checking each decision under its lock,
//! [`preview`] turns a plan into the report of a dry run, and [`text`] renders a report.
//! A dry run is the plan, not applied.
//!
//! Exit 1 if something could not be deleted because of an error, or the walk was incomplete.

pub mod apply;
pub mod plan;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

pub use apply::{apply, preview};
pub use plan::{Decision, Plan, plan};

use super::{GcArgs, Outcome, Ui, human, rel};
use crate::hub::{manifest, walk};
use crate::path::StorePath;
use crate::resolve::Resolver;
use crate::store::Store;

/// Entry point of `hfcachefs gc`.
pub fn main(args: GcArgs, default_store: PathBuf) -> ExitCode {
    super::exit(run(args, default_store))
}

fn run(args: GcArgs, default_store: PathBuf) -> Result<Outcome, String> {
    let (path, store) = super::open_store(args.store, default_store)?;
    let ui = Ui::new();
    let mut report = gc(&store, &ui, args.dry_run, args.min_age)?;
    report.store = path.display().to_string();
    super::emit(&report, args.json, text)?;
    Ok(Outcome::from(
        !report.problems.is_empty(),
        report.interrupted,
    ))
}

/// The gc report.
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    /// The store as given.
    pub store: String,
    /// Nothing was deleted.
    pub dry_run: bool,
    /// `--min-age` in seconds.
    pub min_age_secs: u64,
    /// Deleted (or, dry, to be deleted) entries.
    pub deleted: Vec<Item>,
    /// Unreached or temporary entries kept, with the reason.
    pub kept: Vec<Kept>,
    /// Bytes freed (regular files with no other hard link).
    pub freed_bytes: u64,
    /// Errors.
    pub problems: Vec<Kept>,
    /// Stopped early.
    pub interrupted: bool,
}

/// A deleted entry.
#[derive(Debug, Serialize)]
pub struct Item {
    /// Store path.
    pub path: String,
    /// `orphan-blob`, `orphan-payload`, `manifest`, `incomplete` or `temp`.
    pub kind: &'static str,
    /// Size (0 for links).
    pub size: u64,
}

/// A kept entry.
#[derive(Debug, Serialize)]
pub struct Kept {
    /// Store path.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// Collects garbage: plans, then applies the plan (or, for a dry run, only renders it).
pub fn gc(store: &Store, ui: &Ui, dry_run: bool, min_age: Duration) -> Result<GcReport, String> {
    let plan = plan(store, ui, min_age)?;
    Ok(if dry_run {
        preview(plan)
    } else {
        apply(store, ui, plan)
    })
}

/// The first entry of the manifest of `payload` that is a live link resolving to it, as the
/// hub checks before deleting a payload; links in `gone` do not count. A link is what the
/// hub's one rule calls a link ([`walk::is_link`]: a symlink, or an XSym file where the
/// store counts them), as the view counts it when it keeps a payload's referrers.
fn payload_reference(
    store: &Store,
    gone: &HashSet<StorePath>,
    payload: &StorePath,
) -> Option<String> {
    manifest::read(store, payload)
        .into_iter()
        .filter(|entry| !gone.contains(entry))
        .find(|entry| {
            store
                .lstat(entry)
                .is_ok_and(|m| walk::is_link(store, entry, &m))
                && Resolver::new(store)
                    .resolve_link(entry)
                    .is_ok_and(|t| t.path == *payload)
        })
        .map(|entry| rel(&entry))
}

/// The report for people.
pub fn text(r: &GcReport) -> String {
    let mut s = String::new();
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    let freed = if r.dry_run { "would free" } else { "freed" };
    let _ = writeln!(
        s,
        "{verb} {}, {freed} {}; kept {}; {} problem(s)",
        super::count(r.deleted.len(), "entry", "entries"),
        human(r.freed_bytes),
        r.kept.len(),
        r.problems.len()
    );
    for d in &r.deleted {
        let _ = writeln!(s, "{:<15} {} ({})", d.kind, d.path, human(d.size));
    }
    for k in &r.kept {
        let _ = writeln!(s, "kept            {}: {}", k.path, k.reason);
    }
    for p in &r.problems {
        let _ = writeln!(s, "PROBLEM         {}: {}", p.path, p.reason);
    }
    s
}

// The tests build stores with Unix symlinks.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn old(p: &std::path::Path) {
        let f = std::fs::File::options().write(true).open(p).unwrap();
        let t = std::time::SystemTime::now() - Duration::from_secs(7200);
        f.set_modified(t).unwrap();
    }

    fn deleted(r: &GcReport) -> Vec<&str> {
        r.deleted.iter().map(|d| d.path.as_str()).collect()
    }

    #[test]
    fn only_what_no_link_reaches_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let blobs = root.join("models--a--b/blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::create_dir_all(root.join("models--a--b/snapshots/c1")).unwrap();
        std::fs::create_dir_all(root.join("elsewhere")).unwrap();
        let name = |i: u32| format!("{i:040}");
        for i in 1..=5 {
            std::fs::write(blobs.join(name(i)), format!("blob {i}")).unwrap();
            old(&blobs.join(name(i)));
        }
        // 1: reached from a link outside the hub layout.
        symlink(
            format!("../models--a--b/blobs/{}", name(1)),
            root.join("elsewhere/l"),
        )
        .unwrap();
        // 2: has another hard link (deleting it would free nothing).
        std::fs::hard_link(blobs.join(name(2)), root.join("elsewhere/h")).unwrap();
        // 3: the same inode as a snapshot file (an interrupted dedupe).
        std::fs::hard_link(
            blobs.join(name(3)),
            root.join("models--a--b/snapshots/c1/f"),
        )
        .unwrap();
        // 4: a link chain through another repo blob link keeps both.
        symlink(name(4), blobs.join(name(6))).unwrap();
        symlink(
            format!("../../blobs/{}", name(6)),
            root.join("models--a--b/snapshots/c1/g"),
        )
        .unwrap();
        // 5: an orphan.
        let store = Store::open_root(root).unwrap();
        let r = gc(&store, &Ui::quiet(), false, Duration::from_secs(3600)).unwrap();
        assert_eq!(deleted(&r), [format!("models--a--b/blobs/{}", name(5))]);
        assert!(r.problems.is_empty());
        assert_eq!(r.freed_bytes, 6);
        assert!(blobs.join(name(1)).exists() && blobs.join(name(4)).exists());
        assert!(std::fs::symlink_metadata(blobs.join(name(6))).is_ok());
        // A link to a directory keeps everything below it.
        std::fs::remove_file(root.join("elsewhere/l")).unwrap();
        symlink("../models--a--b/blobs", root.join("elsewhere/d")).unwrap();
        let r = gc(&store, &Ui::quiet(), false, Duration::from_secs(3600)).unwrap();
        assert!(r.deleted.is_empty(), "{:?}", deleted(&r));
        // Without it, blob 1 goes; a zero min age also takes fresh entries.
        std::fs::remove_file(root.join("elsewhere/d")).unwrap();
        std::fs::write(blobs.join(name(7)), "fresh").unwrap();
        let r = gc(&store, &Ui::quiet(), true, Duration::from_secs(3600)).unwrap();
        assert_eq!(deleted(&r), [format!("models--a--b/blobs/{}", name(1))]);
        assert_eq!(r.kept.len(), 2, "{:?}", r.kept); // 2 (hard link) and 7 (fresh)
        let r = gc(&store, &Ui::quiet(), false, Duration::ZERO).unwrap();
        assert_eq!(deleted(&r).len(), 2);
        assert!(blobs.join(name(2)).exists() && blobs.join(name(3)).exists());
    }

    #[test]
    fn unmarked_shared_dir_is_never_collected() {
        let dir = tempfile::tempdir().unwrap();
        let hash = "ab".to_string() + &"0".repeat(62);
        let p = dir.path().join("blobs/ab");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join(&hash), "payload").unwrap();
        old(&p.join(&hash));
        let store = Store::open_root(dir.path()).unwrap();
        let r = gc(&store, &Ui::quiet(), false, Duration::ZERO).unwrap();
        assert!(r.deleted.is_empty());
        std::fs::write(dir.path().join("blobs/.huggingface-shared-blobs"), "1\n").unwrap();
        let r = gc(&store, &Ui::quiet(), false, Duration::ZERO).unwrap();
        assert_eq!(deleted(&r), [format!("blobs/ab/{hash}")]);
    }

    /// A dry run is the plan, not applied: it changes nothing and announces exactly what
    /// the run then does.
    #[test]
    fn dry_run_is_the_plan_unapplied() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let blobs = root.join("models--a--b/blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        for i in 1..=3 {
            let p = blobs.join(format!("{i:040}"));
            std::fs::write(&p, "x").unwrap();
            old(&p);
        }
        let inc = blobs.join(format!("{:040}.incomplete", 9));
        std::fs::write(&inc, "partial").unwrap();
        old(&inc);
        let store = Store::open_root(root).unwrap();
        let ui = Ui::quiet();
        let hour = Duration::from_secs(3600);
        let dry = preview(plan(&store, &ui, hour).unwrap());
        assert!(dry.dry_run);
        assert_eq!(
            std::fs::read_dir(&blobs).unwrap().count(),
            4,
            "dry run deleted"
        );
        let run = apply(&store, &ui, plan(&store, &ui, hour).unwrap());
        assert!(!run.dry_run);
        assert_eq!(deleted(&dry), deleted(&run));
        assert_eq!(dry.freed_bytes, run.freed_bytes);
        assert_eq!(deleted(&run).len(), 4);
        assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), 0);
    }

    /// The manifest check counts links by the hub's one rule, as the view does when it keeps
    /// a payload's referrers: a manifest entry that is a link to the payload keeps it; an
    /// entry that is a regular file (a copy) does not.
    #[test]
    fn manifest_links_keep_a_payload_by_the_one_link_rule() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let hash = "ab".to_string() + &"0".repeat(62);
        let shared = root.join("blobs/ab");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(root.join("blobs/.huggingface-shared-blobs"), "1\n").unwrap();
        std::fs::write(shared.join(&hash), "payload").unwrap();
        old(&shared.join(&hash));
        // The manifest lists a link outside blob positions, so no candidate reaches it
        // (the walk's reach does not see it) but the manifest does.
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("copy"), "payload").unwrap();
        std::fs::write(shared.join(format!("{hash}.refs")), "elsewhere/copy\n").unwrap();
        let store = Store::open_root(root).unwrap();
        let ui = Ui::quiet();
        let dry = preview(plan(&store, &ui, Duration::ZERO).unwrap());
        assert_eq!(
            deleted(&dry),
            [format!("blobs/ab/{hash}"), format!("blobs/ab/{hash}.refs")]
        );
        let gone = HashSet::new();
        let payload = StorePath::parse(&format!("blobs/ab/{hash}")).unwrap();
        assert_eq!(payload_reference(&store, &gone, &payload), None);
        // A link listed in the manifest keeps the payload (checked directly: a link anywhere
        // in the store is also a root of the walk).
        std::fs::remove_file(elsewhere.join("copy")).unwrap();
        symlink(format!("../blobs/ab/{hash}"), elsewhere.join("copy")).unwrap();
        assert_eq!(
            payload_reference(&store, &gone, &payload).as_deref(),
            Some("elsewhere/copy")
        );
        let listed: HashSet<StorePath> = [StorePath::parse("elsewhere/copy").unwrap()].into();
        assert_eq!(payload_reference(&store, &listed, &payload), None);
    }
}
