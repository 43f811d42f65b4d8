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
//!    only if no entry of its manifest `<hash>.refs` is a link to it; its manifest goes with it
//!    (the lock file stays, as the hub leaves it).
//!
//! Exit 1 if something could not be deleted because of an error, or the walk was incomplete.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use super::inventory::{self, Blob, Inventory, Reach, Temp, TempKind, read_small};
use super::{GcArgs, Outcome, Ui, age, human, rel};
#[cfg(windows)]
use crate::compat::libc;
use crate::path::StorePath;
use crate::resolve::Resolver;
use crate::store::{Kind, Meta, OFlags, Store};

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

/// A hub lock held (or not needed) for the duration of a deletion.
enum Lock {
    Held(#[allow(dead_code)] std::fs::File),
    NotUsed,
    Busy,
}

struct Gc<'s> {
    store: &'s Store,
    ui: &'s Ui,
    dry_run: bool,
    min_age: Duration,
    report: GcReport,
    /// Links deleted (or, dry, to be deleted) in this run.
    gone: HashSet<StorePath>,
}

/// Collects garbage.
pub fn gc(store: &Store, ui: &Ui, dry_run: bool, min_age: Duration) -> Result<GcReport, String> {
    let inv = inventory::build(store, &inventory::Options::default(), ui)?;
    let mut g = Gc {
        store,
        ui,
        dry_run,
        min_age,
        report: GcReport {
            dry_run,
            min_age_secs: min_age.as_secs(),
            ..GcReport::default()
        },
        gone: HashSet::new(),
    };
    if !inv.complete {
        g.report.interrupted = true;
        return Ok(g.report);
    }
    if !inv.errors.is_empty() {
        for (p, e) in &inv.errors {
            g.report.problems.push(Kept {
                path: rel(p),
                reason: format!("unreadable ({e}); nothing deleted"),
            });
        }
        return Ok(g.report);
    }
    let reach = inv.reach();
    for repo in &inv.repos {
        if ui.interrupted() {
            break;
        }
        g.repo(&reach, repo);
    }
    g.payloads(&inv, &reach);
    let shared: Vec<&Temp> = inv.shared_temps.iter().collect();
    g.temps(&reach, &shared);
    g.report.interrupted = ui.interrupted();
    Ok(g.report)
}

impl Gc<'_> {
    fn keep(&mut self, p: &StorePath, reason: impl Into<String>) {
        self.report.kept.push(Kept {
            path: rel(p),
            reason: reason.into(),
        });
    }

    /// True if the entry is old enough; records it as kept otherwise.
    fn old_enough(&mut self, p: &StorePath, m: &Meta) -> bool {
        if age(m) >= self.min_age {
            return true;
        }
        self.keep(p, "modified within --min-age");
        false
    }

    /// Takes the hub lock at `p` without blocking. Dry runs never create lock files.
    fn lock(&self, p: &StorePath, create: bool) -> Lock {
        let mut flags = OFlags::RDWR;
        if create && !self.dry_run {
            flags |= OFlags::CREATE;
        }
        let fd = match self.store.open(p, flags, 0o664) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Lock::NotUsed,
            Err(_) => match self.store.open(p, OFlags::RDONLY, 0) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Lock::NotUsed,
                Err(_) => return Lock::Busy,
            },
        };
        match try_lock_exclusive(fd) {
            Ok(Some(file)) => Lock::Held(file),
            Ok(None) => Lock::Busy,
            // A file system without locks: nobody can hold it either.
            Err(_) => Lock::NotUsed,
        }
    }

    /// Deletes `p` if it is still the entry `m` that was examined.
    fn delete(&mut self, p: &StorePath, m: &Meta, kind: &'static str) -> bool {
        if !self.dry_run {
            match self.store.lstat(p) {
                Ok(now) if (now.dev, now.ino, now.kind) == (m.dev, m.ino, m.kind) => {}
                Ok(_) => {
                    self.keep(p, "replaced meanwhile");
                    return false;
                }
                Err(_) => return false, // gone already
            }
            if let Err(e) = self.store.unlink(p) {
                self.report.problems.push(Kept {
                    path: rel(p),
                    reason: format!("cannot delete: {e}"),
                });
                return false;
            }
        }
        let size = if m.kind == Kind::File { m.size } else { 0 };
        if m.kind == Kind::File && m.nlink <= 1 {
            self.report.freed_bytes += size;
        }
        if m.kind == Kind::Symlink {
            self.gone.insert(p.clone());
        }
        self.report.deleted.push(Item {
            path: rel(p),
            kind,
            size,
        });
        true
    }

    fn repo(&mut self, reach: &Reach, repo: &inventory::Repo) {
        let mut locks = Vec::new();
        let mut doomed: Vec<&Blob> = Vec::new();
        for b in &repo.blobs {
            if reach.reaches(&b.path, &b.meta) {
                continue;
            }
            if b.meta.kind == Kind::File && b.meta.nlink > 1 {
                self.keep(&b.path, "has other hard links");
                continue;
            }
            if !self.old_enough(&b.path, &b.meta) {
                continue;
            }
            let lock_path = StorePath::parse(&format!(".locks/{}/{}.lock", repo.folder, b.name));
            match lock_path.map(|l| self.lock(&l, true)) {
                Some(Lock::Busy) => self.keep(&b.path, "its download lock is held"),
                Some(l) => {
                    locks.push(l);
                    doomed.push(b);
                }
                None => doomed.push(b),
            }
        }
        // Walk the repo again under the locks: a client may have linked a blob meanwhile.
        if !doomed.is_empty() {
            let opts = inventory::Options {
                repos: Some(vec![repo.folder.clone()]),
            };
            let again = match inventory::build(self.store, &opts, self.ui) {
                Ok(inv2) if inv2.errors.is_empty() && !self.ui.interrupted() => Some(inv2.reach()),
                _ => None,
            };
            for b in doomed {
                match &again {
                    Some(r) if !r.reaches(&b.path, &b.meta) => {
                        self.delete(&b.path, &b.meta, "orphan-blob");
                    }
                    Some(_) => self.keep(&b.path, "linked meanwhile"),
                    None => self.keep(&b.path, "second walk failed or was interrupted"),
                }
            }
        }
        drop(locks);
        let temps: Vec<&Temp> = repo.temps.iter().collect();
        self.temps(reach, &temps);
    }

    fn temps(&mut self, reach: &Reach, temps: &[&Temp]) {
        for t in temps {
            if self.ui.interrupted() {
                return;
            }
            if reach.reaches(&t.path, &t.meta) {
                self.keep(&t.path, "a link reaches it");
                continue;
            }
            if !self.old_enough(&t.path, &t.meta) {
                continue;
            }
            let lock = t.lock.as_ref().map(|l| self.lock(l, false));
            if matches!(lock, Some(Lock::Busy)) {
                self.keep(&t.path, "its download lock is held");
                continue;
            }
            let kind = match t.kind {
                TempKind::Incomplete => "incomplete",
                TempKind::Temp => "temp",
            };
            self.delete(&t.path, &t.meta, kind);
        }
    }

    fn payloads(&mut self, inv: &Inventory, reach: &Reach) {
        // Candidate links (repo blobs) through which each payload is reached.
        let mut via: HashMap<&StorePath, Vec<&StorePath>> = HashMap::new();
        for l in inv.links.iter().filter(|l| l.candidate) {
            if let Ok((p, _)) = &l.res.target {
                via.entry(p).or_default().push(&l.path);
            }
            for h in &l.res.hops {
                via.entry(h).or_default().push(&l.path);
            }
        }
        for p in &inv.payloads {
            if self.ui.interrupted() {
                return;
            }
            if reach.reaches(&p.path, &p.meta) {
                continue;
            }
            if p.meta.kind == Kind::File && p.meta.nlink > 1 {
                self.keep(&p.path, "has other hard links");
                continue;
            }
            let live = via
                .get(&p.path)
                .into_iter()
                .flatten()
                .find(|l| !self.gone.contains(**l) && self.store.lstat(l).is_ok());
            if let Some(l) = live {
                self.keep(&p.path, format!("still linked from {}", rel(l)));
                continue;
            }
            if !self.old_enough(&p.path, &p.meta) {
                continue;
            }
            let lock_path = p
                .path
                .parent()
                .join(std::ffi::OsStr::new(&format!("{}.lock", p.name)));
            let _lock = match lock_path.map(|l| self.lock(&l, true)) {
                Some(Lock::Busy) => {
                    self.keep(&p.path, "its shared-store lock is held");
                    continue;
                }
                other => other,
            };
            let manifest = p
                .path
                .parent()
                .join(std::ffi::OsStr::new(&format!("{}.refs", p.name)));
            if let Some(r) = manifest
                .as_ref()
                .and_then(|m| self.manifest_reference(m, &p.path))
            {
                self.keep(&p.path, format!("its manifest lists the link {r}"));
                continue;
            }
            if self.delete(&p.path, &p.meta, "orphan-payload")
                && let Some(m) = manifest
                && let Ok(mm) = self.store.lstat(&m)
                && mm.kind == Kind::File
            {
                self.delete(&m, &mm, "manifest");
            }
        }
    }

    /// The first manifest entry that is a live link resolving to `payload`, as the hub checks.
    fn manifest_reference(&self, manifest: &StorePath, payload: &StorePath) -> Option<String> {
        let text = read_small(self.store, manifest, 16 << 20)?;
        for line in String::from_utf8_lossy(&text).lines() {
            let line = line.trim();
            if line.starts_with('/') || line.split('/').any(|c| c == "..") {
                continue;
            }
            let Some(entry) = StorePath::parse(line) else {
                continue;
            };
            if self.gone.contains(&entry) {
                continue;
            }
            let is_link = self
                .store
                .lstat(&entry)
                .is_ok_and(|m| m.kind == Kind::Symlink);
            if is_link
                && Resolver::new(self.store)
                    .resolve_link(&entry)
                    .is_ok_and(|t| t.path == *payload)
            {
                return Some(line.to_string());
            }
        }
        None
    }
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

/// Takes an exclusive lock on an open lock file without waiting: `Ok(None)` if someone holds
/// it. The hub's own protocol: `flock` on Unix (the `filelock` package), `LockFileEx` of the
/// first byte on Windows (what `filelock` takes there); the lock lasts while the file is open.
#[cfg(unix)]
fn try_lock_exclusive(fd: std::os::fd::OwnedFd) -> std::io::Result<Option<std::fs::File>> {
    use rustix::fs::FlockOperation;
    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(fd.into())),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(windows)]
fn try_lock_exclusive(file: std::fs::File) -> std::io::Result<Option<std::fs::File>> {
    Ok(crate::store::lock_exclusive_now(&file)?.then_some(file))
}

/// The hub's lock protocol on Windows: a second handle cannot take a lock another holds, and
/// can once that one is closed (huggingface_hub's `filelock` uses the same `LockFileEx`).
#[cfg(all(test, windows))]
#[test]
fn lock_file_ex_excludes_a_second_holder() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.lock");
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
            .unwrap()
    };
    let held = try_lock_exclusive(open()).unwrap().expect("first lock");
    assert!(
        try_lock_exclusive(open()).unwrap().is_none(),
        "second lock taken"
    );
    drop(held);
    assert!(
        try_lock_exclusive(open()).unwrap().is_some(),
        "lock not released"
    );
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
}
