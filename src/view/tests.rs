//! Unit tests of the view core: `CacheView` methods called directly on a temporary store
//! (no kernel involved).
//!
//! The fixture is a small hub cache (see [`hub`]): one repo with plain and shared blobs, a
//! snapshot with nested links, and a set of hostile entries the view must hide.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::inode::ROOT_INO;

const REPO: &str = "models--acme--m";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
/// Git blob sha1 of `config.json` (a regular file in `blobs/`).
const E40: &str = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3";
/// Sha256 etag of `model.safetensors` (a regular file in `blobs/`).
const H64: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// Sha256 etag of `shared.bin`: the repo blob is a link into the shared blob store.
const R64: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
/// Xet hash of the shared payload, stored as `<root>/blobs/ab/<X64>`.
const X64: &str = "ab5df4ab2dc2c4f4b5e3bd7d1a3c2a06e0f7b2e8d1c3b5a4f6e7d8c9b0a1f2e3";
/// An etag no blob has.
const MISSING40: &str = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

const CONFIG: &[u8] = b"{\"model_type\": \"acme\"}\n";
const SHARED: &[u8] = b"payload kept once in the shared blob store";
const TAG: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55\n";

/// The weights: long enough to read at offsets.
fn weights() -> Vec<u8> {
    (0..5000u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// Visible entries of the snapshot directory, sorted.
const SNAPSHOT_VISIBLE: [&str; 5] = [
    "config.json",
    "linked",
    "model.safetensors",
    "shared.bin",
    "sub",
];

/// Hostile entries of the snapshot directory: all hidden.
const SNAPSHOT_HIDDEN: [&str; 9] = [
    "dangling",
    "escape",
    "fifo",
    "loop_a",
    "loop_b",
    "passwd",
    "self_loop",
    "to_fifo",
    "up",
];

/// Store path of the snapshot directory.
fn snap_path() -> String {
    format!("{REPO}/snapshots/{COMMIT}")
}

fn mkfifo(p: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
}

/// Builds the hub-like store:
///
/// ```text
/// CACHEDIR.TAG                               regular file (mutable)
/// blobs/ab/<X64>                             shared payload
/// models--acme--m/refs/main                  <COMMIT>
/// models--acme--m/blobs/<E40>                config bytes
/// models--acme--m/blobs/<H64>                weights bytes
/// models--acme--m/blobs/<R64>             -> ../../blobs/ab/<X64>
/// models--acme--m/snapshots/<C>/
///   config.json                           -> ../../blobs/<E40>
///   model.safetensors                     -> ../../blobs/<H64>
///   shared.bin                            -> ../../blobs/<R64>
///   sub/deep/tok.json                     -> ../../../../blobs/<E40>
///   sub/deep/back                         -> ..                  (view ancestor: hidden)
///   linked                                -> sub                 (sibling directory)
///   up                                    -> ..                  (ancestor: hidden)
///   passwd                                -> /etc/passwd         (escapes)
///   escape                                -> ../../../../../etc/passwd
///   dangling                              -> ../../blobs/<MISSING40>
///   self_loop -> self_loop, loop_a -> loop_b, loop_b -> loop_a
///   fifo                                     a FIFO
///   to_fifo                               -> fifo
/// ```
fn build_hub(root: &Path) {
    let repo = root.join(REPO);
    let snap = root.join(snap_path());
    std::fs::create_dir_all(root.join("blobs/ab")).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(snap.join("sub/deep")).unwrap();
    std::fs::write(root.join("CACHEDIR.TAG"), TAG).unwrap();
    std::fs::write(root.join("blobs/ab").join(X64), SHARED).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    std::fs::write(repo.join("blobs").join(E40), CONFIG).unwrap();
    std::fs::write(repo.join("blobs").join(H64), weights()).unwrap();
    symlink(
        format!("../../blobs/ab/{X64}"),
        repo.join("blobs").join(R64),
    )
    .unwrap();

    symlink(format!("../../blobs/{E40}"), snap.join("config.json")).unwrap();
    symlink(format!("../../blobs/{H64}"), snap.join("model.safetensors")).unwrap();
    symlink(format!("../../blobs/{R64}"), snap.join("shared.bin")).unwrap();
    symlink(
        format!("../../../../blobs/{E40}"),
        snap.join("sub/deep/tok.json"),
    )
    .unwrap();
    symlink("..", snap.join("sub/deep/back")).unwrap();
    symlink("sub", snap.join("linked")).unwrap();

    symlink("..", snap.join("up")).unwrap();
    symlink("/etc/passwd", snap.join("passwd")).unwrap();
    symlink("../../../../../etc/passwd", snap.join("escape")).unwrap();
    symlink(format!("../../blobs/{MISSING40}"), snap.join("dangling")).unwrap();
    symlink("self_loop", snap.join("self_loop")).unwrap();
    symlink("loop_b", snap.join("loop_a")).unwrap();
    symlink("loop_a", snap.join("loop_b")).unwrap();
    mkfifo(&snap.join("fifo"));
    symlink("fifo", snap.join("to_fifo")).unwrap();
}

/// A view over a fresh hub store.
struct Hub {
    dir: tempfile::TempDir,
    view: CacheView,
}

fn hub() -> Hub {
    hub_with(ViewConfig::default())
}

/// A hub view that keeps copies written into snapshots as they are (`-o nodedupe`): for tests
/// of other rules that happen to write there.
fn hub_keeping_copies() -> Hub {
    hub_with(ViewConfig {
        dedupe: false,
        ..ViewConfig::default()
    })
}

fn hub_with(config: ViewConfig) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    build_hub(dir.path());
    let store = Store::open_root(dir.path()).unwrap();
    Hub {
        view: CacheView::new(store, config),
        dir,
    }
}

impl Hub {
    /// The absolute store path of `rel`.
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Looks up every component of `rel` from the root, as the kernel would.
    fn walk(&self, rel: &str) -> FsResult<Entry> {
        let mut parent = ROOT_INO;
        let mut last = None;
        for name in rel.split('/').filter(|c| !c.is_empty()) {
            let e = self.view.lookup(parent, OsStr::new(name))?;
            parent = e.attr.ino;
            last = Some(e);
        }
        Ok(last.expect("a non-empty path"))
    }

    /// The attributes of `rel` (looked up).
    fn attr(&self, rel: &str) -> Attr {
        self.walk(rel)
            .unwrap_or_else(|e| panic!("lookup {rel}: {e}"))
            .attr
    }

    /// The inode of `rel` (looked up).
    fn ino(&self, rel: &str) -> Ino {
        self.attr(rel).ino
    }

    /// The inode of the snapshot directory.
    fn snap_ino(&self) -> Ino {
        self.ino(&snap_path())
    }

    /// Creates `name` in `dir` for writing (mode 0644, no umask) as the default caller.
    fn create(&self, dir: Ino, name: &str) -> FsResult<(Entry, Opened)> {
        self.view.create(
            dir,
            os(name),
            0o644,
            0,
            OpenFlags::from_raw(libc::O_WRONLY | libc::O_CREAT),
            Caller::default(),
        )
    }

    /// Opens `ino` read-only and reads it whole.
    fn read_all(&self, ino: Ino) -> Vec<u8> {
        let h = self
            .view
            .open(ino, OpenFlags::from_raw(libc::O_RDONLY))
            .unwrap();
        let data = self.view.read(h.fh, 0, 1 << 20).unwrap();
        self.view.release(h.fh, None);
        data
    }

    /// The raw link text of store entry `rel`.
    fn link_text(&self, rel: &str) -> PathBuf {
        std::fs::read_link(self.path(rel)).unwrap()
    }

    /// True if anything (even a dangling link) exists at store entry `rel`.
    fn exists(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.path(rel)).is_ok()
    }

    /// Outstanding kernel lookups of `ino` (0 once it is gone).
    fn lookups(&self, ino: Ino) -> u64 {
        self.view.table().get(ino).map_or(0, |n| n.lookups)
    }
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn names(list: &[OsString]) -> Vec<String> {
    list.iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect()
}

/// `.`, `..` and the given names.
fn with_dots(visible: &[&str]) -> Vec<String> {
    [".", ".."]
        .iter()
        .chain(visible)
        .map(|s| s.to_string())
        .collect()
}

/// Every entry of a plain `readdir` of `dir`, in one call.
fn readdir_all(view: &CacheView, dir: Ino) -> Vec<DirEntry> {
    let fh = view.opendir(dir).unwrap();
    let mut out = Vec::new();
    view.readdir(fh, 0, |e| {
        out.push(e);
        false
    })
    .unwrap();
    view.releasedir(fh);
    out
}

/// Every entry of a `readdirplus` of `dir`, in one call: (name, offset, entry).
fn readdirplus_all(view: &CacheView, dir: Ino) -> Vec<(OsString, u64, Entry)> {
    let fh = view.opendir(dir).unwrap();
    let mut out = Vec::new();
    view.readdirplus(fh, 0, |name, off, e| {
        out.push((name.to_os_string(), off, e.clone()));
        false
    })
    .unwrap();
    view.releasedir(fh);
    out
}

/// The whole store as text, without following links: path → what is there.
fn store_state(root: &Path) -> BTreeMap<PathBuf, String> {
    fn visit(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for ent in std::fs::read_dir(dir).unwrap() {
            let p = ent.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let mode = meta.permissions().mode();
            let what = if meta.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else if meta.is_dir() {
                visit(root, &p, out);
                format!("dir {mode:o}")
            } else if meta.is_file() {
                format!("file {mode:o} {:?}", std::fs::read(&p).unwrap())
            } else {
                format!("special {mode:o}")
            };
            out.insert(rel, what);
        }
    }
    let mut out = BTreeMap::new();
    visit(root, root, &mut out);
    out
}

fn is_enoent(e: &FsError) -> bool {
    e.errno() == libc::ENOENT
}

mod blob_names;
mod hard_links;
mod hidden;
mod listing;
mod lookup;
mod read;
mod read_only;
mod regressions;
mod rename;
mod setattr;
mod staleness;
mod symlink;
mod write;
