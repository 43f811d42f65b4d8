//! The reference model of what the view must show, for the model-based property test
//! (`tests/model_prop.rs`), and the oracle that derives it from a store.
//!
//! The reference maps each store path to a directory, a file (its bytes, and the *real* path
//! holding them: itself for a regular file, a link's resolved target otherwise) or a hidden
//! link (a link whose target is missing: shown once the target appears). Operations through
//! the view are predicted with plain file-system rules plus the hub rules of
//! `docs/SEMANTICS.md` (links are hard links of their target, blobs are immutable, copies in
//! snapshots become blobs, a blob renamed into snapshots stays); changes behind the view are
//! not predicted — the reference is re-derived from the store by [`oracle`], an independent
//! walk that resolves links lexically (relative texts only: the test writes no others).
//! Predicted are names, bytes and errors; which name holds a file's bytes after an unlink or
//! a rename over it is the view's choice, so after each compared step the reference is
//! re-read from the store by the oracle.
//!
//! Invariant: the reference never looks at the view; the oracle never looks at the view.

#![allow(dead_code)]

use std::collections::BTreeMap;

use hfcachefs::path::StorePath;
use hfcachefs::store::{Kind, OFlags, Store};

pub const REPO: &str = "models--o--m";

/// What a path holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ent {
    Dir,
    /// `hop` is where the name leads in one step: itself for a regular file, a link's
    /// target path otherwise (the view tracks and re-points links by it).
    File {
        bytes: Vec<u8>,
        real: String,
        hop: String,
    },
    /// A link whose target (a store path) is missing: not shown.
    Hidden {
        target: String,
    },
}

/// Path → entry, for every store path the test cares about.
pub type Reference = BTreeMap<String, Ent>;

/// What a client sees: path → `None` for a directory, `Some(bytes)` for a file.
pub type Shown = BTreeMap<String, Option<Vec<u8>>>;

/// The visible part of a reference.
pub fn shown(r: &Reference) -> Shown {
    r.iter()
        .filter_map(|(p, e)| match e {
            Ent::Dir => Some((p.clone(), None)),
            Ent::File { bytes, .. } => Some((p.clone(), Some(bytes.clone()))),
            Ent::Hidden { .. } => None,
        })
        .collect()
}

/// Git blob sha1 of `bytes`: the name the hub gives small content.
pub fn git_sha1(bytes: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `<repo>/blobs/<40 or 64 hex>`.
pub fn is_blob(p: &str) -> bool {
    let c: Vec<&str> = p.split('/').collect();
    c.len() == 3
        && c[1] == "blobs"
        && [40, 64].contains(&c[2].len())
        && c[2].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `<repo>/snapshots/<commit>/<path…>`.
pub fn is_snapshot_entry(p: &str) -> bool {
    let c: Vec<&str> = p.split('/').collect();
    c.len() >= 4 && c[1] == "snapshots"
}

pub fn parent(p: &str) -> &str {
    p.rsplit_once('/').map_or("", |(d, _)| d)
}

/// How many leading components `a` and `b` share.
fn common(a: &str, b: &str) -> usize {
    a.split('/')
        .zip(b.split('/'))
        .take_while(|(x, y)| x == y)
        .count()
}

fn depth(p: &str) -> usize {
    p.split('/').count()
}

/// Folds a relative link text at `dir` into a store path; `None` if it leaves the store.
fn fold(dir: &str, text: &str) -> Option<String> {
    if text.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
    for c in text.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

fn sp(p: &str) -> StorePath {
    if p.is_empty() {
        StorePath::root()
    } else {
        StorePath::parse(p).expect("a store path")
    }
}

/// Where the link at `p` leads: `Ok(real file path)`, or `Err(Some(missing target))`, or
/// `Err(None)` when it escapes, loops or reaches a directory (none of which the test makes).
fn resolve(store: &Store, p: &str) -> Result<String, Option<String>> {
    let mut at = p.to_string();
    for _ in 0..40 {
        let text = store.readlink(&sp(&at)).map_err(|_| None)?;
        let text = String::from_utf8(text).map_err(|_| None)?;
        let target = fold(parent(&at), &text).ok_or(None)?;
        // Every directory on the way must be a real directory (the test makes no dir links).
        match store.lstat(&sp(&target)) {
            Ok(m) if m.kind == Kind::File => return Ok(target),
            Ok(m) if m.kind == Kind::Symlink => at = target,
            Ok(_) => return Err(None),
            Err(_) => return Err(Some(target)),
        }
    }
    Err(None)
}

/// The target path of the link at `p` (one step).
fn first_hop(store: &Store, p: &str) -> Option<String> {
    let text = String::from_utf8(store.readlink(&sp(p)).ok()?).ok()?;
    fold(parent(p), &text)
}

/// Reads a store file whole.
pub fn read_store(store: &Store, p: &str) -> Vec<u8> {
    try_read_store(store, p).expect("read store file")
}

fn try_read_store(store: &Store, p: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let fd = store.open(&sp(p), OFlags::RDONLY, 0)?;
    let mut out = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut out)?;
    Ok(out)
}

/// The reference a store implies (see the module header). A store that a mount's converter
/// threads are still changing can lose an entry between its listing and its reading: such a
/// reading is taken again, until one sees no entry vanish.
pub fn oracle(store: &Store) -> Reference {
    for _ in 0..200 {
        match try_oracle(store) {
            Ok(r) => return r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("reading the store: {e:?}"),
        }
    }
    panic!("the store kept changing while it was read")
}

fn try_oracle(store: &Store) -> std::io::Result<Reference> {
    let mut out = Reference::new();
    let mut stack = vec![String::new()];
    while let Some(dir) = stack.pop() {
        for e in store.read_dir(&sp(&dir))? {
            let name = e.name.to_str().expect("utf-8 names").to_string();
            let p = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            let meta = store.lstat(&sp(&p))?;
            let ent = match meta.kind {
                Kind::Dir => {
                    stack.push(p.clone());
                    Ent::Dir
                }
                Kind::File => Ent::File {
                    bytes: try_read_store(store, &p)?,
                    real: p.clone(),
                    hop: p.clone(),
                },
                Kind::Symlink => match resolve(store, &p) {
                    Ok(real) => Ent::File {
                        bytes: try_read_store(store, &real)?,
                        real,
                        hop: first_hop(store, &p).unwrap_or_default(),
                    },
                    Err(Some(target)) => Ent::Hidden { target },
                    Err(None) => continue,
                },
                Kind::Special => continue,
            };
            out.insert(p, ent);
        }
    }
    Ok(out)
}

/// An operation's predicted outcome: `Err(errno)` leaves the reference as it was.
pub type Outcome = Result<(), i32>;

/// Checks that `p`'s parent is a directory: `ENOENT` if something on the way is missing (or
/// hidden), `ENOTDIR` if a file is on the way.
fn parent_ok(r: &Reference, p: &str) -> Outcome {
    let mut at = String::new();
    for c in parent(p).split('/').filter(|c| !c.is_empty()) {
        at = if at.is_empty() {
            c.to_string()
        } else {
            format!("{at}/{c}")
        };
        match r.get(&at) {
            Some(Ent::Dir) => {}
            Some(Ent::File { .. }) => return Err(libc::ENOTDIR),
            _ => return Err(libc::ENOENT),
        }
    }
    Ok(())
}

/// The visible entry at `p`, with the errors a lookup gives.
fn visible<'r>(r: &'r Reference, p: &str) -> Result<&'r Ent, i32> {
    parent_ok(r, p)?;
    match r.get(p) {
        Some(e @ (Ent::Dir | Ent::File { .. })) => Ok(e),
        _ => Err(libc::ENOENT),
    }
}

fn real_of(r: &Reference, p: &str) -> Option<String> {
    match r.get(p) {
        Some(Ent::File { real, .. }) => Some(real.clone()),
        _ => None,
    }
}

/// The copy at snapshot entry `p` (a regular file) becomes a link to the blob of its
/// content; the blob is made from it if missing. Names that reached `p` follow.
fn convert(r: &mut Reference, p: &str) {
    let Some(Ent::File { bytes, .. }) = r.get(p).cloned() else {
        return;
    };
    let blob = format!("{REPO}/blobs/{}", git_sha1(&bytes));
    if !matches!(r.get(&blob), Some(Ent::File { .. })) {
        r.insert(
            blob.clone(),
            Ent::File {
                bytes: bytes.clone(),
                real: blob.clone(),
                hop: blob.clone(),
            },
        );
    }
    for (q, e) in r.iter_mut() {
        match e {
            Ent::File { real, hop, .. } if real == p => {
                *real = blob.clone();
                if q == p {
                    *hop = blob.clone();
                }
            }
            Ent::Hidden { target } if *target == blob => {
                *e = Ent::File {
                    bytes: bytes.clone(),
                    real: blob.clone(),
                    hop: blob.clone(),
                }
            }
            _ => {}
        }
    }
}

/// `open(O_CREAT|O_EXCL|O_WRONLY)`, write, close.
pub fn write_new(r: &mut Reference, p: &str, bytes: &[u8]) -> Outcome {
    parent_ok(r, p)?;
    if matches!(r.get(p), Some(Ent::Dir | Ent::File { .. })) {
        return Err(libc::EEXIST);
    }
    r.insert(
        p.to_string(),
        Ent::File {
            bytes: bytes.to_vec(),
            real: p.to_string(),
            hop: p.to_string(),
        },
    );
    if is_snapshot_entry(p) {
        convert(r, p);
    }
    Ok(())
}

/// `open(O_WRONLY|O_TRUNC)`, write, close.
pub fn overwrite(r: &mut Reference, p: &str, bytes: &[u8]) -> Outcome {
    let real = match visible(r, p)? {
        Ent::Dir => return Err(libc::EISDIR),
        Ent::File { real, .. } if is_blob(real) => return Err(libc::EPERM),
        Ent::File { real, .. } => real.clone(),
        Ent::Hidden { .. } => unreachable!(),
    };
    for e in r.values_mut() {
        if let Ent::File {
            bytes: b, real: rl, ..
        } = e
            && *rl == real
        {
            *b = bytes.to_vec();
        }
    }
    if is_snapshot_entry(&real) {
        convert(r, &real);
    }
    Ok(())
}

pub fn unlink(r: &mut Reference, p: &str) -> Outcome {
    match visible(r, p)? {
        Ent::Dir => Err(libc::EISDIR),
        _ => {
            // Nothing lost: other names keep their bytes (where the real file went is the
            // view's choice, re-derived from the store after the step).
            r.remove(p);
            Ok(())
        }
    }
}

pub fn mkdir(r: &mut Reference, p: &str) -> Outcome {
    parent_ok(r, p)?;
    if matches!(r.get(p), Some(Ent::Dir | Ent::File { .. })) {
        return Err(libc::EEXIST);
    }
    r.insert(p.to_string(), Ent::Dir);
    Ok(())
}

pub fn rmdir(r: &mut Reference, p: &str) -> Outcome {
    match visible(r, p)? {
        Ent::Dir => {}
        _ => return Err(libc::ENOTDIR),
    }
    let inside = |q: &String| q.starts_with(&format!("{p}/"));
    if r.iter()
        .any(|(q, e)| inside(q) && !matches!(e, Ent::Hidden { .. }))
    {
        return Err(libc::ENOTEMPTY);
    }
    // The links the view hides go with the directory.
    r.retain(|q, _| q != p && !inside(q));
    Ok(())
}

/// True if a rename of `a` to `b` is one the test makes: a directory only to the same depth
/// (moving one deeper or shallower re-aims or refuses the relative links inside it, see
/// SEMANTICS "Moving a directory up"). Checked on the reference before the step.
pub fn rename_in_scope(r: &Reference, a: &str, b: &str) -> bool {
    match r.get(a) {
        // Links elsewhere that lead into a moved directory are not re-pointed (only the
        // files' own referrers are): a limitation the test does not exercise.
        // Nor are links inside it re-aimed: at the same depth a relative text still climbs
        // as high, but one that stops in the old parent lands in the new one.
        Some(Ent::Dir) => {
            let inside = |q: &str| q.starts_with(&format!("{a}/"));
            let shared = common(a, b);
            depth(a) == depth(b)
                && !r.iter().any(|(q, e)| match e {
                    Ent::File { hop, .. } if !inside(q) => inside(hop),
                    // The minimal relative text climbs to the common ancestor of the link's
                    // directory and its target: still valid if that is above the move.
                    Ent::File { hop, .. } => !inside(hop) && common(parent(q), hop) > shared,
                    _ => false,
                })
        }
        _ => removal_in_scope(r, a) && removal_in_scope(r, b),
    }
}

/// True unless `p` is a regular file that links outside the snapshots lead to: only the
/// hub layout is tracked, such links dangle when it goes (SEMANTICS "Nothing lost").
///
/// Nor a link that other links lead through (a chain: a copy that links reached became a
/// link itself): removing or moving it strands them; recorded by
/// `model_prop::unlinking_a_link_that_other_links_lead_through_keeps_them`.
pub fn removal_in_scope(r: &Reference, p: &str) -> bool {
    let is_link = matches!(r.get(p), Some(Ent::File { hop, .. }) if hop != p);
    !r.iter().any(|(q, e)| {
        q != p
            && (is_link || !is_snapshot_entry(q))
            && matches!(e, Ent::File { hop, .. } if hop == p)
    })
}

pub fn rename(r: &mut Reference, a: &str, b: &str) -> Outcome {
    let src = visible(r, a)?.clone();
    parent_ok(r, b)?;
    let dst = match r.get(b) {
        Some(e @ (Ent::Dir | Ent::File { .. })) => Some(e.clone()),
        _ => None,
    };
    if a == b {
        return Ok(());
    }
    // The VFS's own check: the target is an ancestor of the source.
    if a.starts_with(&format!("{b}/")) {
        return Err(libc::ENOTEMPTY);
    }
    if let (Ent::File { real: x, .. }, Some(Ent::File { real: y, .. })) = (&src, &dst)
        && x == y
    {
        return Ok(());
    }
    let real_a = real_of(r, a);
    // A file that links reach moves only where the view tracks them (see `rename_in_scope`
    // for directories); checked before the store is asked.
    let reached = real_a.as_deref() == Some(a)
        && r.iter().any(|(q, e)| {
            q != a && is_snapshot_entry(q) && matches!(e, Ent::File { hop, .. } if hop == a)
        });
    if reached && !is_snapshot_entry(b) && !is_blob(b) {
        return Err(libc::EXDEV);
    }
    match (&src, &dst) {
        (Ent::Dir, _) if b.starts_with(&format!("{a}/")) => return Err(libc::EINVAL),
        (Ent::Dir, Some(Ent::File { .. })) => return Err(libc::ENOTDIR),
        (Ent::File { .. }, Some(Ent::Dir)) => return Err(libc::EISDIR),
        // Unlike rmdir, a rename keeps a target directory whose entries are all hidden
        // links: it is not empty in the store.
        (Ent::Dir, Some(Ent::Dir)) if r.keys().any(|q| q.starts_with(&format!("{b}/"))) => {
            return Err(libc::ENOTEMPTY);
        }
        _ => {}
    }
    // A replaced file that links reach: they keep its bytes (which name then holds them is
    // the view's choice, re-read from the store after the step).
    if matches!(dst, Some(Ent::File { ref real, .. }) if real == b) {
        for (q, e) in r.iter_mut() {
            if let Ent::File { real, hop, .. } = e
                && q != b
                && (real == b || hop == b)
            {
                *real = format!("kept:{b}");
                *hop = real.clone();
            }
        }
    }
    // The target and what it held go (hidden links included).
    r.retain(|q, _| q != b && !q.starts_with(&format!("{b}/")));
    // A repo blob renamed into the repo's snapshots becomes a link there; the blob stays.
    if is_blob(a) && is_snapshot_entry(b) {
        r.insert(b.to_string(), src);
        return Ok(());
    }
    let rebase = |q: &str| -> Option<String> {
        (q == a || q.starts_with(&format!("{a}/"))).then(|| format!("{b}{}", &q[a.len()..]))
    };
    let moved: Vec<(String, Ent)> = r
        .iter()
        .filter_map(|(q, e)| rebase(q).map(|n| (n, e.clone())))
        .collect();
    r.retain(|q, _| rebase(q).is_none());
    r.extend(moved);
    // Regular files moved: the names that reached them follow (a moved link keeps leading
    // where it led).
    if real_a.as_deref().is_none_or(|x| x == a) {
        for e in r.values_mut() {
            if let Ent::File { real, hop, .. } = e {
                if let Some(n) = rebase(real) {
                    *real = n;
                }
                if let Some(n) = rebase(hop) {
                    *hop = n;
                }
            }
        }
    }
    if real_a.as_deref() == Some(a) {
        // A complete file put in place in a snapshot becomes a link.
        if is_snapshot_entry(b) {
            convert(r, b);
        }
    }
    Ok(())
}
