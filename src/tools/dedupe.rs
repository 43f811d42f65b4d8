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
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::OFlags;
use serde::Serialize;

use super::hash::{Algos, Digests, HashError, Hashed, Job, hash_many};
use super::inventory::{self, Entry, Inventory, Repo, is_content_name, read_small};
use super::{DedupeArgs, Outcome, Ui, age, human, rel};
#[cfg(windows)]
use crate::compat::libc;
use crate::path::StorePath;
use crate::store::{Meta, Store};

/// Above this size the Hub only stores files in LFS (sha256 etag).
pub const LFS_THRESHOLD: u64 = 10 * 1024 * 1024;

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

/// How a new blob's name is chosen, with the name kind it implies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// `trees/<commit>.json` gives the etag.
    Tree(String),
    /// The same path links to a blob with a name of this length in another revision.
    Sibling(usize),
    /// By size (sha256 above [`LFS_THRESHOLD`]).
    Size,
}

/// The rule and the digest kind for a copy (see the module doc).
pub fn naming_rule(
    tree_etag: Option<&str>,
    sibling_len: Option<usize>,
    size: u64,
) -> (NameRule, Algos) {
    if let Some(e) = tree_etag.filter(|e| is_content_name(e)) {
        return (NameRule::Tree(e.to_string()), Algos::for_name(e));
    }
    if let Some(len) = sibling_len.filter(|l| *l == 40 || *l == 64) {
        return (NameRule::Sibling(len), Algos::for_name(&"0".repeat(len)));
    }
    let sha256 = size > LFS_THRESHOLD;
    (
        NameRule::Size,
        Algos {
            sha256,
            git_sha1: !sha256,
        },
    )
}

/// The etag `trees/<commit>.json` records for each path (`lfs_sha256`, else `blob_id`).
fn tree_etags(store: &Store, repo: &Repo, commit: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Some(p) = StorePath::parse(&format!("{}/trees/{commit}.json", repo.folder)) else {
        return out;
    };
    let Some(bytes) = read_small(store, &p, 256 << 20) else {
        return out;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return out;
    };
    if let Some(files) = v.get("files").and_then(|f| f.as_object()) {
        for (path, f) in files {
            let etag = f
                .get("lfs_sha256")
                .and_then(|x| x.as_str())
                .or_else(|| f.get("blob_id").and_then(|x| x.as_str()));
            if let Some(e) = etag {
                out.insert(path.clone(), e.to_string());
            }
        }
    }
    out
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
            let trees = tree_etags(store, repo, &rev.commit);
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

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_name(dir: &StorePath) -> Option<StorePath> {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!(
        "{}dedupe-{}-{n}",
        inventory::OWN_TEMP_PREFIX,
        std::process::id()
    );
    dir.join(std::ffi::OsStr::new(&name))
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
        let name = match &copy.rule {
            NameRule::Tree(etag) => {
                if h.digests.for_name(etag) != Some(etag.as_str()) {
                    return Err(format!(
                        "content does not match the etag {etag} in trees/ (corrupt copy?)"
                    ));
                }
                etag.clone()
            }
            NameRule::Sibling(_) | NameRule::Size => h
                .digests
                .sha256
                .clone()
                .filter(|_| copy_algo_is_sha256(&copy.rule, m.size))
                .or_else(|| h.digests.git_sha1.clone())
                .ok_or("no digest")?,
        };
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
            match self.make_blob(&copy.path, &blob, &name, m) {
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

    /// Makes `blob` a second name of the copy (or, without hard links, a copy of it).
    fn make_blob(
        &self,
        copy: &StorePath,
        blob: &StorePath,
        name: &str,
        m: &Meta,
    ) -> io::Result<()> {
        let dir = blob.parent();
        match self.store.mkdir(&dir, 0o755) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
            _ => {}
        }
        match self.store.link(copy, blob) {
            Ok(()) => return Ok(()),
            Err(e)
                if !matches!(
                    e.raw_os_error(),
                    Some(libc::EPERM | libc::EOPNOTSUPP | libc::EMLINK | libc::EXDEV)
                ) =>
            {
                return Err(e);
            }
            Err(_) => {}
        }
        // No hard links here: copy under a temp name, check the bytes, publish without replacing.
        let tmp = temp_name(&dir).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let res = (|| {
            let src = File::from(self.store.open(copy, OFlags::RDONLY, 0)?);
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
            let mut dst = File::from(self.store.open(&tmp, flags, u32::from(m.perm))?);
            let mut reader = src.take(m.size + 1);
            let n = io::copy(&mut reader, &mut dst)?;
            dst.flush()?;
            dst.sync_all()?;
            let stop = std::sync::atomic::AtomicBool::new(false);
            let algos = Algos::for_name(name);
            let hashed = super::hash::hash_path(self.store, &tmp, algos, &stop, &|_| {})
                .map_err(|e| io::Error::other(e.to_string()))?;
            if n != m.size || hashed.digests.for_name(name) != Some(name) {
                return Err(io::Error::other("the copy changed while it was copied"));
            }
            self.store.rename(&tmp, blob, libc::RENAME_NOREPLACE)
        })();
        if res.is_err() {
            let _ = self.store.unlink(&tmp);
        }
        res
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
        let now = self.store.lstat(&copy.path).map_err(|e| e.to_string())?;
        let m = &h.meta;
        if (now.kind, now.dev, now.ino, now.size, now.mtime)
            != (m.kind, m.dev, m.ino, m.size, m.mtime)
        {
            return Ok(Done::Skipped("changed meanwhile; run dedupe again".into()));
        }
        let dir = copy.path.parent();
        let text = t.path.relative_from(&dir);
        let tmp = temp_name(&dir).ok_or("bad temp name")?;
        self.store
            .symlink(&text, &tmp)
            .map_err(|e| format!("creating a link in {}: {e}", rel(&dir)))?;
        if let Err(e) = self.store.rename(&tmp, &copy.path, 0) {
            let _ = self.store.unlink(&tmp);
            return Err(format!("replacing it: {e}"));
        }
        Ok(done)
    }

    /// Byte-for-byte comparison of two store files.
    fn same_bytes(&self, a: &StorePath, b: &StorePath) -> Result<bool, String> {
        let open = |p: &StorePath| {
            self.store
                .open(p, OFlags::RDONLY, 0)
                .map(File::from)
                .map_err(|e| format!("{}: {e}", rel(p)))
        };
        let (mut fa, mut fb) = (open(a)?, open(b)?);
        let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
        loop {
            let na = read_full(&mut fa, &mut ba).map_err(|e| e.to_string())?;
            let nb = read_full(&mut fb, &mut bb).map_err(|e| e.to_string())?;
            if na != nb || ba[..na] != bb[..nb] {
                return Ok(false);
            }
            if na == 0 {
                return Ok(true);
            }
        }
    }
}

/// Whether the naming rule picked sha256 for a copy of this size.
fn copy_algo_is_sha256(rule: &NameRule, size: u64) -> bool {
    match rule {
        NameRule::Tree(e) => e.len() == 64,
        NameRule::Sibling(len) => *len == 64,
        NameRule::Size => size > LFS_THRESHOLD,
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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

    #[test]
    fn naming_rules() {
        let sha = "a".repeat(64);
        let git = "b".repeat(40);
        assert_eq!(
            naming_rule(Some(&sha), Some(40), 1).0,
            NameRule::Tree(sha.clone())
        );
        assert_eq!(
            naming_rule(Some(&git), None, LFS_THRESHOLD + 1).1,
            Algos::for_name(&git)
        );
        // A bad etag in trees/ is ignored.
        assert_eq!(
            naming_rule(Some("xyz"), Some(64), 1).0,
            NameRule::Sibling(64)
        );
        assert!(naming_rule(None, Some(64), 1).1.sha256);
        assert!(naming_rule(None, Some(40), LFS_THRESHOLD * 2).1.git_sha1);
        assert!(naming_rule(None, None, LFS_THRESHOLD).1.git_sha1);
        assert!(naming_rule(None, None, LFS_THRESHOLD + 1).1.sha256);
        assert!(copy_algo_is_sha256(&NameRule::Size, LFS_THRESHOLD + 1));
        assert!(!copy_algo_is_sha256(
            &NameRule::Sibling(40),
            LFS_THRESHOLD + 1
        ));
    }

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
