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

// ---------------------------------------------------------------------------------------
// Lookup and inode identity
// ---------------------------------------------------------------------------------------

#[test]
fn snapshot_names_show_as_files_with_the_blob_size() {
    let h = hub();
    let s = snap_path();
    for (name, size) in [
        ("config.json", CONFIG.len()),
        ("model.safetensors", weights().len()),
        ("shared.bin", SHARED.len()),
        ("sub/deep/tok.json", CONFIG.len()),
    ] {
        let a = h.attr(&format!("{s}/{name}"));
        assert_eq!(a.kind, AttrKind::File, "{name}");
        assert_eq!(a.size, size as u64, "{name}");
    }
    assert_eq!(h.attr(&format!("{s}/sub")).kind, AttrKind::Dir);
    assert_eq!(
        h.attr(&format!("{REPO}/refs/main")).size,
        COMMIT.len() as u64
    );
}

#[test]
fn blobs_get_the_long_attr_ttl_and_mutable_files_the_short_one() {
    let h = hub();
    let blob = h.walk(&format!("{}/config.json", snap_path())).unwrap();
    assert_eq!(blob.attr_ttl, Duration::from_secs(60));
    let tag = h.walk("CACHEDIR.TAG").unwrap();
    assert_eq!(tag.attr_ttl, Duration::from_secs(1));
    let dir = h.walk(REPO).unwrap();
    assert_eq!(dir.attr_ttl, Duration::from_secs(1));
    assert_eq!(dir.entry_ttl, Duration::from_secs(1));
}

#[test]
fn fixed_names_of_blobs_are_kept_long_and_mutable_names_briefly() {
    let h = hub();
    let day = Duration::from_secs(86_400);
    // A snapshot entry leading to a blob, and the blob's own name: fixed.
    let snap = h.walk(&format!("{}/config.json", snap_path())).unwrap();
    assert_eq!(snap.entry_ttl, day);
    let blob = h.walk(&format!("{REPO}/blobs/{E40}")).unwrap();
    assert_eq!(blob.entry_ttl, day);
    // A name in a snapshot through a linked directory is fixed too; the shared chain's
    // repo blob name (a link to the payload) as well.
    assert_eq!(
        h.walk(&format!("{REPO}/blobs/{R64}")).unwrap().entry_ttl,
        day
    );
    // Refs and other mutable names: the short timeout.
    assert_eq!(
        h.walk(&format!("{REPO}/refs/main")).unwrap().entry_ttl,
        Duration::from_secs(1)
    );
    assert_eq!(
        h.walk("CACHEDIR.TAG").unwrap().entry_ttl,
        Duration::from_secs(1)
    );
}

#[test]
fn windowed_listings_on_a_network_store_match_and_keep_the_caller() {
    let mut h = hub();
    let s = h.snap_ino();
    let plain = readdirplus_all(&h.view, s);
    h.view.remote_store = true;
    let windowed = readdirplus_all(&h.view, s);
    let names = |l: &[(OsString, u64, Entry)]| {
        l.iter()
            .map(|(n, off, e)| (n.clone(), *off, e.attr.ino))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&plain), names(&windowed));
    // A link into a directory only root may search: listed for root, left out for another
    // user, also when looked up on the window's threads.
    std::fs::set_permissions(h.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let private = h.path("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::write(private.join("secret"), b"s").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(
        "../../../private/secret",
        h.path(&format!("{}/secret", snap_path())),
    )
    .unwrap();
    let listed = |v: &CacheView| {
        readdirplus_all(v, s)
            .into_iter()
            .any(|(n, _, _)| n == "secret")
    };
    assert!(listed(&h.view));
    let _user = crate::view::access::serving(Caller {
        uid: 1000,
        gid: 1000,
        pid: 0,
    });
    assert!(!listed(&h.view));
}

#[test]
fn names_of_one_blob_share_one_inode() {
    let h = hub();
    let s = snap_path();
    let config = h.ino(&format!("{s}/config.json"));
    assert_eq!(h.ino(&format!("{s}/sub/deep/tok.json")), config);
    assert_eq!(h.ino(&format!("{s}/linked/deep/tok.json")), config);
    assert_eq!(h.ino(&format!("{REPO}/blobs/{E40}")), config);
    assert_ne!(h.ino(&format!("{s}/model.safetensors")), config);
    assert_eq!(h.lookups(config), 4, "each name counts one lookup");
}

#[test]
fn shared_chain_names_share_the_payload_inode() {
    let h = hub();
    let payload = h.ino(&format!("blobs/ab/{X64}"));
    assert_eq!(h.ino(&format!("{}/shared.bin", snap_path())), payload);
    assert_eq!(h.ino(&format!("{REPO}/blobs/{R64}")), payload);
    let (attr, ttl) = h.view.getattr(payload, None).unwrap();
    assert_eq!(attr.size, SHARED.len() as u64);
    assert_eq!(ttl, Duration::from_secs(60));
    assert_eq!(h.read_all(payload), SHARED);
}

#[test]
fn inode_numbers_are_not_reused_after_forget() {
    let h = hub();
    let path = format!("{}/config.json", snap_path());
    let first = h.ino(&path);
    let count = h.view.inode_count();
    h.view.forget(first, 1);
    assert_eq!(h.lookups(first), 0);
    assert_eq!(h.view.inode_count(), count - 1);
    assert!(matches!(h.view.getattr(first, None), Err(FsError::Stale)));
    let again = h.ino(&path);
    assert_ne!(again, first, "a forgotten number is never handed out again");
    assert!(again > first);
}

#[test]
fn directories_never_alias_even_through_a_link() {
    let h = hub();
    let s = snap_path();
    let sub = h.ino(&format!("{s}/sub"));
    let linked = h.attr(&format!("{s}/linked"));
    assert_eq!(linked.kind, AttrKind::Dir);
    assert_ne!(linked.ino, sub);
    assert_ne!(
        h.ino(&format!("{s}/linked/deep")),
        h.ino(&format!("{s}/sub/deep"))
    );
}

#[test]
fn lookup_in_a_file_is_not_a_directory() {
    let h = hub();
    let f = h.ino(&format!("{}/config.json", snap_path()));
    assert!(matches!(h.view.lookup(f, os("x")), Err(FsError::NotDir)));
    assert!(matches!(h.view.opendir(f), Err(FsError::NotDir)));
    assert!(matches!(h.view.readlink(f), Err(FsError::Invalid)));
}

// ---------------------------------------------------------------------------------------
// Hidden entries
// ---------------------------------------------------------------------------------------

#[test]
fn hostile_entries_are_not_found() {
    let h = hub();
    let s = h.snap_ino();
    for name in SNAPSHOT_HIDDEN {
        let got = h.view.lookup(s, os(name));
        assert!(matches!(got, Err(FsError::NotFound)), "{name}: {got:?}");
    }
}

#[test]
fn link_to_a_view_ancestor_is_hidden_on_every_path() {
    let h = hub();
    let s = snap_path();
    for dir in ["sub/deep", "linked/deep"] {
        let d = h.ino(&format!("{s}/{dir}"));
        let got = h.view.lookup(d, os("back"));
        assert!(matches!(got, Err(FsError::NotFound)), "{dir}/back: {got:?}");
        let listed: Vec<_> = readdir_all(&h.view, d)
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names(&listed), with_dots(&["tok.json"]), "{dir}");
    }
}

#[test]
fn dir_link_to_a_sibling_can_be_looked_into() {
    let h = hub();
    let s = snap_path();
    let linked = h.ino(&format!("{s}/linked"));
    let listed = readdir_all(&h.view, linked);
    assert_eq!(
        listed.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
        [".", "..", "deep"]
    );
    assert_eq!(listed[2].kind, AttrKind::Dir);
    let tok = h.attr(&format!("{s}/linked/deep/tok.json"));
    assert_eq!(tok.kind, AttrKind::File);
    assert_eq!(h.read_all(tok.ino), CONFIG);
}

#[test]
fn readdir_lists_exactly_the_visible_names() {
    let h = hub();
    let entries = readdir_all(&h.view, h.snap_ino());
    let listed: Vec<_> = entries.iter().map(|e| e.name.clone()).collect();
    assert_eq!(names(&listed), with_dots(&SNAPSHOT_VISIBLE));
    for e in &entries {
        let want = match e.name.to_str() {
            Some(".." | "." | "linked" | "sub") => AttrKind::Dir,
            _ => AttrKind::File,
        };
        assert_eq!(e.kind, want, "{:?}", e.name);
    }
    let offsets: Vec<u64> = entries.iter().map(|e| e.offset).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
}

#[test]
fn readdirplus_lists_exactly_the_visible_names() {
    let h = hub();
    let s = h.snap_ino();
    let entries = readdirplus_all(&h.view, s);
    let listed: Vec<_> = entries.iter().map(|(n, ..)| n.clone()).collect();
    assert_eq!(names(&listed), with_dots(&SNAPSHOT_VISIBLE));
    for (name, _, e) in &entries {
        let want = match name.to_str() {
            Some(".." | "." | "linked" | "sub") => AttrKind::Dir,
            _ => AttrKind::File,
        };
        assert_eq!(e.attr.kind, want, "{name:?}");
    }
    let config = &entries[2];
    assert_eq!(config.0, "config.json");
    assert_eq!(config.2.attr.size, CONFIG.len() as u64);
    assert_eq!(h.ino(&format!("{REPO}/blobs/{E40}")), config.2.attr.ino);
}

#[test]
fn root_listing_shows_the_store_top_level() {
    let h = hub();
    let listed: Vec<_> = readdir_all(&h.view, ROOT_INO)
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names(&listed), with_dots(&["CACHEDIR.TAG", "blobs", REPO]));
}

// ---------------------------------------------------------------------------------------
// readdirplus lookup counting and offsets
// ---------------------------------------------------------------------------------------

#[test]
fn readdirplus_counts_one_lookup_per_entry() {
    let h = hub();
    let s = h.snap_ino();
    let before = h.view.inode_count();
    let entries = readdirplus_all(&h.view, s);
    let inos: Vec<Ino> = entries
        .iter()
        .filter(|(n, ..)| n != "." && n != "..")
        .map(|(.., e)| e.attr.ino)
        .collect();
    assert_eq!(inos.len(), SNAPSHOT_VISIBLE.len());
    assert_eq!(h.view.inode_count(), before + inos.len());
    for &ino in &inos {
        assert_eq!(h.lookups(ino), 1, "ino {ino}");
    }
    assert_eq!(h.lookups(s), 1, "`.` and `..` count no lookup");
    for &ino in &inos {
        h.view.forget(ino, 1);
    }
    assert_eq!(h.view.inode_count(), before);
}

#[test]
fn readdirplus_full_buffer_forgets_the_refused_entry() {
    let h = hub();
    let s = h.snap_ino();
    let before = h.view.inode_count();
    let fh = h.view.opendir(s).unwrap();
    let mut accepted = Vec::new();
    let mut refused = None;
    h.view
        .readdirplus(fh, 0, |name, off, e| {
            if accepted.len() == 3 {
                refused = Some((name.to_os_string(), e.attr.ino));
                return true;
            }
            accepted.push((name.to_os_string(), off, e.attr.ino));
            false
        })
        .unwrap();
    h.view.releasedir(fh);
    let (refused_name, refused_ino) = refused.expect("the buffer filled up");
    assert_eq!(refused_name, "linked");
    assert_eq!(h.lookups(refused_ino), 0, "the refused entry was forgotten");
    assert_eq!(accepted[2].0, "config.json");
    assert_eq!(h.lookups(accepted[2].2), 1);
    assert_eq!(h.view.inode_count(), before + 1);
}

/// Drives `readdirplus` with room for `room` entries per call, resuming from the offset of
/// the last accepted entry as the kernel does.
fn readdirplus_in_chunks(h: &Hub, dir: Ino, room: usize) -> Vec<(OsString, Ino)> {
    let fh = h.view.opendir(dir).unwrap();
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let mut got = Vec::new();
        h.view
            .readdirplus(fh, offset, |name, off, e| {
                if got.len() == room {
                    return true;
                }
                got.push((name.to_os_string(), off, e.attr.ino));
                false
            })
            .unwrap();
        let Some(last) = got.last() else { break };
        offset = last.1;
        all.extend(got.into_iter().map(|(n, _, ino)| (n, ino)));
    }
    h.view.releasedir(fh);
    all
}

#[test]
fn readdirplus_resumes_from_the_last_offset() {
    let h = hub();
    let s = h.snap_ino();
    let before = h.view.inode_count();
    let all = readdirplus_in_chunks(&h, s, 2);
    let listed: Vec<_> = all.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names(&listed), with_dots(&SNAPSHOT_VISIBLE));
    for (name, ino) in all.iter().skip(2) {
        assert_eq!(h.lookups(*ino), 1, "{name:?} counted exactly once");
    }
    assert_eq!(h.view.inode_count(), before + SNAPSHOT_VISIBLE.len());
}

#[test]
fn readdir_resumes_from_the_last_offset() {
    let h = hub();
    let s = h.snap_ino();
    let fh = h.view.opendir(s).unwrap();
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let mut got: Vec<DirEntry> = Vec::new();
        h.view
            .readdir(fh, offset, |e| {
                if got.len() == 2 {
                    return true;
                }
                got.push(e);
                false
            })
            .unwrap();
        let Some(last) = got.last() else { break };
        offset = last.offset;
        all.extend(got.into_iter().map(|e| e.name));
    }
    h.view.releasedir(fh);
    assert_eq!(names(&all), with_dots(&SNAPSHOT_VISIBLE));
}

#[test]
fn listing_is_a_snapshot_until_rewound() {
    let h = hub();
    let s = h.snap_ino();
    let fh = h.view.opendir(s).unwrap();
    let mut first = Vec::new();
    h.view
        .readdir(fh, 0, |e| {
            first.push(e);
            first.len() == 3
        })
        .unwrap();
    // An entry that sorts first appears meanwhile: the resumed listing does not shift.
    std::fs::write(h.path(&format!("{}/aaa", snap_path())), b"new").unwrap();
    let resume = first[1].offset;
    let mut rest = Vec::new();
    h.view
        .readdir(fh, resume, |e| {
            rest.push(e.name);
            false
        })
        .unwrap();
    assert_eq!(names(&rest), SNAPSHOT_VISIBLE);
    let mut rewound = Vec::new();
    h.view
        .readdir(fh, 0, |e| {
            rewound.push(e.name);
            false
        })
        .unwrap();
    assert!(rewound.iter().any(|n| n == "aaa"));
    h.view.releasedir(fh);
    assert!(matches!(
        h.view.readdir(fh, 0, |_| false),
        Err(FsError::BadHandle)
    ));
}

// ---------------------------------------------------------------------------------------
// open and read
// ---------------------------------------------------------------------------------------

#[test]
fn read_returns_exactly_the_blob_bytes() {
    let h = hub();
    let w = weights();
    let len = w.len() as u64;
    let ino = h.ino(&format!("{}/model.safetensors", snap_path()));
    let opened = h
        .view
        .open(ino, OpenFlags::from_raw(libc::O_RDONLY))
        .unwrap();
    assert!(opened.keep_cache, "blobs may keep the page cache");
    let fh = opened.fh;
    assert_eq!(h.view.read(fh, 0, len as u32 + 100).unwrap(), w);
    assert_eq!(h.view.read(fh, 100, 50).unwrap(), &w[100..150]);
    assert_eq!(h.view.read(fh, len - 5, 100).unwrap(), &w[w.len() - 5..]);
    assert!(h.view.read(fh, len, 10).unwrap().is_empty());
    assert!(h.view.read(fh, len + 1000, 10).unwrap().is_empty());
    let (attr, _) = h.view.getattr(ino, Some(fh)).unwrap();
    assert_eq!(attr.size, len);
    assert_eq!(h.view.open_files(), 1);
    h.view.release(fh, None);
    assert_eq!(h.view.open_files(), 0);
    assert!(matches!(h.view.read(fh, 0, 10), Err(FsError::BadHandle)));
}

#[test]
fn open_of_a_directory_is_isdir() {
    let h = hub();
    assert!(matches!(
        h.view
            .open(h.snap_ino(), OpenFlags::from_raw(libc::O_RDONLY)),
        Err(FsError::IsDir)
    ));
}

#[test]
fn open_for_write_of_a_blob_is_not_permitted() {
    let h = hub();
    let s = snap_path();
    for name in [
        format!("{s}/config.json"),
        format!("{s}/shared.bin"),
        format!("{REPO}/blobs/{H64}"),
    ] {
        let ino = h.ino(&name);
        for flags in [
            OpenFlags::from_raw(libc::O_WRONLY),
            OpenFlags::from_raw(libc::O_RDWR),
            OpenFlags::from_raw(libc::O_RDONLY | libc::O_TRUNC),
        ] {
            let got = h.view.open(ino, flags);
            assert!(
                matches!(got, Err(FsError::NotPermitted(_))),
                "{name} {flags:?}: {got:?}"
            );
        }
    }
    assert_eq!(
        std::fs::read(h.path(&format!("{REPO}/blobs/{E40}"))).unwrap(),
        CONFIG
    );
    assert_eq!(h.view.open_files(), 0);
}

#[test]
fn write_on_a_read_only_handle_is_refused() {
    let h = hub();
    let ino = h.ino("CACHEDIR.TAG");
    let opened = h
        .view
        .open(ino, OpenFlags::from_raw(libc::O_RDONLY))
        .unwrap();
    assert!(
        !opened.keep_cache,
        "mutable files do not keep the page cache"
    );
    let fh = opened.fh;
    assert!(matches!(h.view.write(fh, 0, b"x"), Err(FsError::BadHandle)));
    h.view.release(fh, None);
    assert_eq!(std::fs::read(h.path("CACHEDIR.TAG")).unwrap(), TAG);
}

// ---------------------------------------------------------------------------------------
// Read-only view
// ---------------------------------------------------------------------------------------

#[test]
fn read_only_view_refuses_every_mutation() {
    let h = hub_with(ViewConfig {
        read_only: true,
        ..Default::default()
    });
    let before = store_state(h.dir.path());
    let s = h.snap_ino();
    let sub = h.ino(&format!("{}/sub", snap_path()));
    let config = h.ino(&format!("{}/config.json", snap_path()));
    let tag = h.ino("CACHEDIR.TAG");
    let c = Caller::default();
    let ro = |what: &str, r: FsResult<()>| {
        assert!(matches!(r, Err(FsError::ReadOnly)), "{what}: {r:?}");
    };
    ro(
        "create",
        h.view
            .create(
                s,
                os("new"),
                0o644,
                0,
                OpenFlags::from_raw(libc::O_WRONLY | libc::O_CREAT),
                c,
            )
            .map(drop),
    );
    ro(
        "mknod",
        h.view
            .mknod(ROOT_INO, os("n"), libc::S_IFREG | 0o644, 0, c)
            .map(drop),
    );
    ro("mkdir", h.view.mkdir(s, os("d"), 0o755, 0, c).map(drop));
    ro("unlink link", h.view.unlink(s, os("config.json")));
    ro("unlink file", h.view.unlink(ROOT_INO, os("CACHEDIR.TAG")));
    ro("unlink hidden", h.view.unlink(s, os("dangling")));
    ro("rmdir", h.view.rmdir(sub, os("deep")));
    ro(
        "rename",
        h.view.rename(s, os("config.json"), sub, os("c"), 0),
    );
    ro(
        "rename in place",
        h.view.rename(s, os("config.json"), s, os("c"), 0),
    );
    ro(
        "symlink",
        h.view
            .symlink(s, os("l"), Path::new("config.json"), c)
            .map(drop),
    );
    ro("link", h.view.link(tag, s, os("tag")).map(drop));
    let size = SetAttr {
        size: Some(0),
        ..Default::default()
    };
    let mode = SetAttr {
        mode: Some(0o600),
        ..Default::default()
    };
    let times = SetAttr {
        mtime: Some(TimeSet::Now),
        ..Default::default()
    };
    for (what, set) in [("size", &size), ("mode", &mode), ("mtime", &times)] {
        ro(
            &format!("setattr {what} file"),
            h.view.setattr(tag, set, None).map(drop),
        );
        ro(
            &format!("setattr {what} blob"),
            h.view.setattr(config, set, None).map(drop),
        );
    }
    ro("setattr mode dir", h.view.setattr(s, &mode, None).map(drop));
    for flags in [
        OpenFlags::from_raw(libc::O_WRONLY),
        OpenFlags::from_raw(libc::O_RDWR),
        OpenFlags::from_raw(libc::O_RDONLY | libc::O_TRUNC),
    ] {
        ro("open for write", h.view.open(tag, flags).map(drop));
    }
    // Reads still work, and an empty setattr is a getattr.
    assert_eq!(h.read_all(config), CONFIG);
    assert!(h.view.setattr(tag, &SetAttr::default(), None).is_ok());
    assert_eq!(store_state(h.dir.path()), before, "the store is unchanged");
}

// ---------------------------------------------------------------------------------------
// Write path
// ---------------------------------------------------------------------------------------

#[test]
fn create_write_release_then_read_back() {
    let h = hub();
    let (entry, opened) = h
        .view
        .create(
            ROOT_INO,
            os("new.txt"),
            0o666,
            0o022,
            OpenFlags::from_raw(libc::O_WRONLY | libc::O_CREAT),
            Caller::default(),
        )
        .unwrap();
    assert_eq!(entry.attr.kind, AttrKind::File);
    assert_eq!(entry.attr.size, 0);
    assert_eq!(entry.attr.perm, 0o644);
    assert!(!opened.keep_cache);
    assert_eq!(h.view.write(opened.fh, 0, b"hello").unwrap(), 5);
    assert_eq!(h.view.write(opened.fh, 5, b", world").unwrap(), 7);
    h.view.fsync(opened.fh, true).unwrap();
    h.view.release(opened.fh, None);
    let again = h.walk("new.txt").unwrap();
    assert_eq!(again.attr.ino, entry.attr.ino);
    assert_eq!(again.attr.size, 12);
    assert_eq!(h.read_all(entry.attr.ino), b"hello, world");
    assert_eq!(std::fs::read(h.path("new.txt")).unwrap(), b"hello, world");
}

#[test]
fn create_exclusive_over_a_visible_name_is_exists() {
    let h = hub();
    let s = h.snap_ino();
    for name in ["config.json", "sub"] {
        let got = h.view.create(
            s,
            os(name),
            0o644,
            0,
            OpenFlags::from_raw(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL),
            Caller::default(),
        );
        assert!(matches!(got, Err(FsError::Exists)), "{name}: {got:?}");
    }
    assert_eq!(
        h.link_text(&format!("{}/config.json", snap_path())),
        Path::new(&format!("../../blobs/{E40}"))
    );
}

#[test]
fn create_without_excl_over_a_blob_name_opens_it_and_refuses_writing() {
    let h = hub();
    let s = h.snap_ino();
    let config = h.ino(&format!("{}/config.json", snap_path()));
    let got = h.view.create(
        s,
        os("config.json"),
        0o644,
        0,
        OpenFlags::from_raw(libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC),
        Caller::default(),
    );
    assert!(matches!(got, Err(FsError::NotPermitted(_))), "{got:?}");
    assert_eq!(
        std::fs::read(h.path(&format!("{REPO}/blobs/{E40}"))).unwrap(),
        CONFIG
    );
    assert_eq!(
        h.lookups(config),
        1,
        "the failed open left no lookup behind"
    );
}

#[test]
fn create_over_a_hidden_dangling_link_replaces_it() {
    let h = hub_keeping_copies();
    let s = h.snap_ino();
    let (entry, opened) = h
        .view
        .create(
            s,
            os("dangling"),
            0o644,
            0,
            OpenFlags::from_raw(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL),
            Caller::default(),
        )
        .unwrap();
    h.view.write(opened.fh, 0, b"re-downloaded").unwrap();
    h.view.release(opened.fh, None);
    let path = h.path(&format!("{}/dangling", snap_path()));
    assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
    assert_eq!(h.read_all(entry.attr.ino), b"re-downloaded");
}

#[test]
fn mknod_makes_regular_files_only() {
    let h = hub();
    let c = Caller::default();
    let e = h
        .view
        .mknod(ROOT_INO, os("empty"), libc::S_IFREG | 0o640, 0, c)
        .unwrap();
    assert_eq!(e.attr.kind, AttrKind::File);
    assert!(
        std::fs::symlink_metadata(h.path("empty"))
            .unwrap()
            .is_file()
    );
    let got = h.view.mknod(ROOT_INO, os("p"), libc::S_IFIFO | 0o644, 0, c);
    assert!(matches!(got, Err(FsError::NotPermitted(_))), "{got:?}");
    assert!(!h.exists("p"));
}

#[test]
fn mkdir_creates_a_store_directory() {
    let h = hub();
    let s = h.snap_ino();
    let e = h
        .view
        .mkdir(s, os("newdir"), 0o777, 0o022, Caller::default())
        .unwrap();
    assert_eq!(e.attr.kind, AttrKind::Dir);
    assert_eq!(e.attr.perm, 0o755);
    let path = h.path(&format!("{}/newdir", snap_path()));
    assert!(std::fs::symlink_metadata(&path).unwrap().is_dir());
    assert_eq!(h.ino(&format!("{}/newdir", snap_path())), e.attr.ino);
    let again = h.view.mkdir(s, os("newdir"), 0o755, 0, Caller::default());
    assert!(matches!(again, Err(FsError::Exists)), "{again:?}");
    let over_link = h
        .view
        .mkdir(s, os("config.json"), 0o755, 0, Caller::default());
    assert!(matches!(over_link, Err(FsError::Exists)), "{over_link:?}");
}

#[test]
fn mkdir_over_a_hidden_looping_link_replaces_it() {
    let h = hub();
    let e = h
        .view
        .mkdir(h.snap_ino(), os("self_loop"), 0o755, 0, Caller::default())
        .unwrap();
    assert_eq!(e.attr.kind, AttrKind::Dir);
    assert!(
        std::fs::symlink_metadata(h.path(&format!("{}/self_loop", snap_path())))
            .unwrap()
            .is_dir()
    );
}

#[test]
fn unlink_of_a_snapshot_name_removes_only_the_link() {
    let h = hub();
    let s = h.snap_ino();
    let blob = h.ino(&format!("{REPO}/blobs/{E40}"));
    h.view.unlink(s, os("config.json")).unwrap();
    assert!(!h.exists(&format!("{}/config.json", snap_path())));
    assert_eq!(
        std::fs::read(h.path(&format!("{REPO}/blobs/{E40}"))).unwrap(),
        CONFIG
    );
    let gone = h.view.lookup(s, os("config.json"));
    assert!(matches!(&gone, Err(e) if is_enoent(e)), "{gone:?}");
    assert_eq!(h.ino(&format!("{}/sub/deep/tok.json", snap_path())), blob);
    assert_eq!(
        h.view.getattr(blob, None).unwrap().0.size,
        CONFIG.len() as u64
    );
}

#[test]
fn unlink_of_a_directory_is_isdir_and_rmdir_needs_empty() {
    let h = hub();
    let s = h.snap_ino();
    assert!(matches!(h.view.unlink(s, os("sub")), Err(FsError::IsDir)));
    let got = h.view.rmdir(s, os("sub"));
    assert!(
        matches!(&got, Err(e) if e.errno() == libc::ENOTEMPTY),
        "{got:?}"
    );
    h.view
        .mkdir(s, os("empty"), 0o755, 0, Caller::default())
        .unwrap();
    h.view.rmdir(s, os("empty")).unwrap();
    assert!(!h.exists(&format!("{}/empty", snap_path())));
}

// ---------------------------------------------------------------------------------------
// symlink()
// ---------------------------------------------------------------------------------------

#[test]
fn symlink_creates_a_real_relative_link_and_replies_link_typed() {
    let h = hub();
    let s = h.snap_ino();
    let config = h.ino(&format!("{}/config.json", snap_path()));
    let e = h
        .view
        .symlink(
            s,
            os("alias.json"),
            Path::new("config.json"),
            Caller::default(),
        )
        .unwrap();
    assert_eq!(e.attr.kind, AttrKind::Symlink);
    assert_eq!(e.attr_ttl, Duration::ZERO);
    assert_eq!(e.entry_ttl, Duration::ZERO);
    assert_ne!(e.attr.ino, config, "the reply is a transient inode");
    assert_eq!(
        h.link_text(&format!("{}/alias.json", snap_path())),
        Path::new("config.json")
    );
    let looked = h.view.lookup(s, os("alias.json")).unwrap();
    assert_eq!(looked.attr.kind, AttrKind::File);
    assert_eq!(looked.attr.ino, config);
    assert!(matches!(
        h.view.getattr(e.attr.ino, None),
        Err(FsError::Stale)
    ));
}

#[test]
fn symlink_to_a_blob_in_a_nested_directory() {
    let h = hub();
    let deep = h.ino(&format!("{}/sub/deep", snap_path()));
    let weights_ino = h.ino(&format!("{REPO}/blobs/{H64}"));
    let text = format!("../../../../blobs/{H64}");
    h.view
        .symlink(deep, os("w.bin"), Path::new(&text), Caller::default())
        .unwrap();
    assert_eq!(
        h.link_text(&format!("{}/sub/deep/w.bin", snap_path())),
        Path::new(&text)
    );
    assert_eq!(
        h.ino(&format!("{}/linked/deep/w.bin", snap_path())),
        weights_ino
    );
}

#[test]
fn symlink_absolute_inside_the_mountpoint_is_stored_relative() {
    let h = hub_with(ViewConfig {
        mountpoint: Some(PathBuf::from("/mnt/hub")),
        ..Default::default()
    });
    let s = h.snap_ino();
    let target = format!("/mnt/hub/{REPO}/blobs/{E40}");
    h.view
        .symlink(s, os("abs.json"), Path::new(&target), Caller::default())
        .unwrap();
    assert_eq!(
        h.link_text(&format!("{}/abs.json", snap_path())),
        Path::new(&format!("../../blobs/{E40}"))
    );
    assert_eq!(
        h.ino(&format!("{}/abs.json", snap_path())),
        h.ino(&format!("{}/config.json", snap_path()))
    );
}

#[test]
fn symlink_to_a_missing_target_is_not_found_and_creates_nothing() {
    let h = hub();
    let s = h.snap_ino();
    for target in [
        format!("../../blobs/{MISSING40}"),
        "nothing".into(),
        "dangling".into(),
        "sub/nothing/x".into(),
    ] {
        let got = h
            .view
            .symlink(s, os("new"), Path::new(&target), Caller::default());
        assert!(matches!(got, Err(FsError::NotFound)), "{target}: {got:?}");
        assert!(!h.exists(&format!("{}/new", snap_path())), "{target}");
    }
}

#[test]
fn symlink_escaping_the_store_is_cross_store_and_creates_nothing() {
    let h = hub();
    let s = h.snap_ino();
    for target in [
        "/etc/passwd",
        "../../../../../etc/passwd",
        "passwd",
        "escape",
    ] {
        let got = h
            .view
            .symlink(s, os("new"), Path::new(target), Caller::default());
        assert!(matches!(got, Err(FsError::CrossStore)), "{target}: {got:?}");
        assert!(!h.exists(&format!("{}/new", snap_path())), "{target}");
    }
}

#[test]
fn symlink_over_a_hidden_dangling_link_replaces_it() {
    let h = hub();
    let s = h.snap_ino();
    h.view
        .symlink(
            s,
            os("dangling"),
            Path::new("model.safetensors"),
            Caller::default(),
        )
        .unwrap();
    assert_eq!(
        h.link_text(&format!("{}/dangling", snap_path())),
        Path::new("model.safetensors")
    );
    assert_eq!(
        h.view.lookup(s, os("dangling")).unwrap().attr.size,
        weights().len() as u64
    );
}

#[test]
fn symlink_over_a_visible_name_is_exists() {
    let h = hub();
    let s = h.snap_ino();
    for name in ["model.safetensors", "sub", "linked"] {
        let got = h
            .view
            .symlink(s, os(name), Path::new("config.json"), Caller::default());
        assert!(matches!(got, Err(FsError::Exists)), "{name}: {got:?}");
    }
    assert_eq!(
        h.link_text(&format!("{}/model.safetensors", snap_path())),
        Path::new(&format!("../../blobs/{H64}"))
    );
}

// ---------------------------------------------------------------------------------------
// rename
// ---------------------------------------------------------------------------------------

#[test]
fn rename_of_a_link_deeper_rewrites_its_text() {
    let h = hub();
    let s = h.snap_ino();
    let blob = h.ino(&format!("{REPO}/blobs/{E40}"));
    let deep = h.ino(&format!("{}/sub/deep", snap_path()));
    h.view
        .rename(s, os("config.json"), deep, os("moved.json"), 0)
        .unwrap();
    assert_eq!(
        h.link_text(&format!("{}/sub/deep/moved.json", snap_path())),
        Path::new(&format!("../../../../blobs/{E40}"))
    );
    assert!(!h.exists(&format!("{}/config.json", snap_path())));
    assert_eq!(
        h.view.lookup(deep, os("moved.json")).unwrap().attr.ino,
        blob
    );
    let leftovers: Vec<_> = std::fs::read_dir(h.path(&format!("{}/sub/deep", snap_path())))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.as_bytes().starts_with(b".hfcachefs"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn rename_of_a_link_shallower_rewrites_its_text() {
    let h = hub();
    let s = h.snap_ino();
    let payload = h.ino(&format!("blobs/ab/{X64}"));
    h.view
        .rename(s, os("shared.bin"), ROOT_INO, os("top.bin"), 0)
        .unwrap();
    assert_eq!(
        h.link_text("top.bin"),
        Path::new(&format!("{REPO}/blobs/{R64}"))
    );
    assert_eq!(h.ino("top.bin"), payload);
}

#[test]
fn rename_of_a_link_through_a_linked_directory_rewrites_its_text() {
    let h = hub();
    let s = h.snap_ino();
    let linked_deep = h.ino(&format!("{}/linked/deep", snap_path()));
    let weights_ino = h.ino(&format!("{REPO}/blobs/{H64}"));
    h.view
        .rename(s, os("model.safetensors"), linked_deep, os("w"), 0)
        .unwrap();
    assert_eq!(
        h.link_text(&format!("{}/sub/deep/w", snap_path())),
        Path::new(&format!("../../../../blobs/{H64}"))
    );
    assert_eq!(h.ino(&format!("{}/sub/deep/w", snap_path())), weights_ino);
}

#[test]
fn rename_of_a_link_within_its_directory_keeps_its_text() {
    let h = hub();
    let s = h.snap_ino();
    h.view
        .rename(s, os("config.json"), s, os("cfg.json"), 0)
        .unwrap();
    assert_eq!(
        h.link_text(&format!("{}/cfg.json", snap_path())),
        Path::new(&format!("../../blobs/{E40}"))
    );
}

#[test]
fn rename_of_a_directory_link_rewrites_it_and_keeps_its_inode() {
    let h = hub();
    let s = h.snap_ino();
    let linked = h.ino(&format!("{}/linked", snap_path()));
    h.view
        .rename(s, os("linked"), ROOT_INO, os("top"), 0)
        .unwrap();
    assert_eq!(
        h.link_text("top"),
        Path::new(&format!("{}/sub", snap_path()))
    );
    assert_eq!(h.view.lookup(ROOT_INO, os("top")).unwrap().attr.ino, linked);
    assert_eq!(h.view.getattr(linked, None).unwrap().0.kind, AttrKind::Dir);
    assert!(h.view.lookup(linked, os("deep")).is_ok());
}

#[test]
fn rename_noreplace_onto_a_visible_name_fails_and_keeps_both() {
    let h = hub();
    let s = h.snap_ino();
    let deep = h.ino(&format!("{}/sub/deep", snap_path()));
    let got = h.view.rename(
        s,
        os("model.safetensors"),
        deep,
        os("tok.json"),
        libc::RENAME_NOREPLACE,
    );
    assert!(
        matches!(&got, Err(e) if e.errno() == libc::EEXIST),
        "{got:?}"
    );
    assert!(h.exists(&format!("{}/model.safetensors", snap_path())));
    assert_eq!(
        h.link_text(&format!("{}/sub/deep/tok.json", snap_path())),
        Path::new(&format!("../../../../blobs/{E40}"))
    );
    let names: Vec<_> = std::fs::read_dir(h.path(&format!("{}/sub/deep", snap_path())))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temporary link left: {names:?}");
}

#[test]
fn rename_of_a_directory_keeps_looked_up_children_reachable() {
    let h = hub();
    let s = h.snap_ino();
    let sp = snap_path();
    let sub = h.ino(&format!("{sp}/sub"));
    let deep = h.ino(&format!("{sp}/sub/deep"));
    let tok = h.ino(&format!("{sp}/sub/deep/tok.json"));
    let (notes, opened) = h
        .view
        .create(
            deep,
            os("notes.txt"),
            0o644,
            0,
            OpenFlags::from_raw(libc::O_WRONLY | libc::O_CREAT),
            Caller::default(),
        )
        .unwrap();
    h.view.write(opened.fh, 0, b"notes").unwrap();
    h.view.release(opened.fh, None);

    h.view.rename(s, os("sub"), s, os("sub2"), 0).unwrap();

    assert!(h.exists(&format!("{sp}/sub2/deep/notes.txt")));
    assert_eq!(h.view.getattr(sub, None).unwrap().0.kind, AttrKind::Dir);
    assert_eq!(h.view.getattr(deep, None).unwrap().0.kind, AttrKind::Dir);
    assert_eq!(h.view.getattr(notes.attr.ino, None).unwrap().0.size, 5);
    assert_eq!(h.read_all(notes.attr.ino), b"notes");
    assert_eq!(h.view.lookup(deep, os("tok.json")).unwrap().attr.ino, tok);
    assert_eq!(
        h.view.lookup(deep, os("notes.txt")).unwrap().attr.ino,
        notes.attr.ino
    );
    assert_eq!(h.view.lookup(s, os("sub2")).unwrap().attr.ino, sub);
    let old = h.view.lookup(s, os("sub"));
    assert!(matches!(&old, Err(e) if is_enoent(e)), "{old:?}");
}

#[test]
fn rename_of_a_directory_to_another_parent_keeps_children_reachable() {
    let h = hub_keeping_copies();
    let s = h.snap_ino();
    let sp = snap_path();
    let deep = h.ino(&format!("{sp}/sub/deep"));
    let (notes, opened) = h
        .view
        .create(
            deep,
            os("notes.txt"),
            0o644,
            0,
            OpenFlags::from_raw(libc::O_WRONLY | libc::O_CREAT),
            Caller::default(),
        )
        .unwrap();
    h.view.release(opened.fh, None);
    // One level deeper (a move up would let the links inside climb out of the store).
    let other = h
        .view
        .mkdir(s, os("other"), 0o755, 0, Caller::default())
        .unwrap()
        .attr
        .ino;
    h.view.rename(s, os("sub"), other, os("moved"), 0).unwrap();
    assert!(h.exists(&format!("{sp}/other/moved/deep/notes.txt")));
    assert_eq!(h.view.getattr(deep, None).unwrap().0.kind, AttrKind::Dir);
    assert_eq!(h.view.getattr(notes.attr.ino, None).unwrap().0.size, 0);
    assert_eq!(
        h.view.lookup(deep, os("notes.txt")).unwrap().attr.ino,
        notes.attr.ino
    );
}

#[test]
fn rename_of_a_regular_file_follows_its_node() {
    let h = hub_keeping_copies();
    let tag = h.ino("CACHEDIR.TAG");
    let s = h.snap_ino();
    h.view
        .rename(ROOT_INO, os("CACHEDIR.TAG"), s, os("tag"), 0)
        .unwrap();
    assert_eq!(h.view.getattr(tag, None).unwrap().0.size, TAG.len() as u64);
    assert!(
        std::fs::symlink_metadata(h.path(&format!("{}/tag", snap_path())))
            .unwrap()
            .is_file()
    );
}

// ---------------------------------------------------------------------------------------
// Staleness
// ---------------------------------------------------------------------------------------

#[test]
fn getattr_after_the_store_file_is_replaced_is_stale() {
    let h = hub();
    let tag = h.ino("CACHEDIR.TAG");
    std::fs::write(h.path("other"), b"a different file").unwrap();
    std::fs::rename(h.path("other"), h.path("CACHEDIR.TAG")).unwrap();
    assert!(matches!(h.view.getattr(tag, None), Err(FsError::Stale)));
    assert!(matches!(
        h.view.open(tag, OpenFlags::from_raw(libc::O_RDONLY)),
        Err(FsError::Stale)
    ));
    // A new lookup finds the new file under a new number.
    let fresh = h.ino("CACHEDIR.TAG");
    assert_ne!(fresh, tag);
    assert_eq!(h.read_all(fresh), b"a different file");
}

#[test]
fn getattr_after_the_store_file_is_deleted_is_stale_and_the_name_is_gone() {
    let h = hub();
    let tag = h.ino("CACHEDIR.TAG");
    std::fs::remove_file(h.path("CACHEDIR.TAG")).unwrap();
    // `ESTALE` makes the kernel look the name up again, which finds it gone.
    let got = h.view.getattr(tag, None);
    assert!(matches!(&got, Err(FsError::Stale)), "{got:?}");
    let again = h.view.lookup(ROOT_INO, os("CACHEDIR.TAG"));
    assert!(matches!(&again, Err(e) if is_enoent(e)), "{again:?}");
}

#[test]
fn open_handle_keeps_reading_after_the_name_is_replaced() {
    let h = hub();
    let tag = h.ino("CACHEDIR.TAG");
    let fh = h
        .view
        .open(tag, OpenFlags::from_raw(libc::O_RDONLY))
        .unwrap()
        .fh;
    std::fs::write(h.path("other"), b"new").unwrap();
    std::fs::rename(h.path("other"), h.path("CACHEDIR.TAG")).unwrap();
    assert_eq!(h.view.read(fh, 0, 1000).unwrap(), TAG);
    assert_eq!(
        h.view.getattr(tag, Some(fh)).unwrap().0.size,
        TAG.len() as u64
    );
    h.view.release(fh, None);
}

// ---------------------------------------------------------------------------------------
// setattr
// ---------------------------------------------------------------------------------------

#[test]
fn setattr_truncates_a_regular_file() {
    let h = hub();
    let tag = h.ino("CACHEDIR.TAG");
    let set = SetAttr {
        size: Some(3),
        ..Default::default()
    };
    let (attr, ttl) = h.view.setattr(tag, &set, None).unwrap();
    assert_eq!(attr.size, 3);
    assert_eq!(ttl, Duration::from_secs(1));
    assert_eq!(std::fs::read(h.path("CACHEDIR.TAG")).unwrap(), &TAG[..3]);
    // Through an open writable handle too.
    let fh = h
        .view
        .open(tag, OpenFlags::from_raw(libc::O_WRONLY))
        .unwrap()
        .fh;
    let set = SetAttr {
        size: Some(1),
        ..Default::default()
    };
    assert_eq!(h.view.setattr(tag, &set, Some(fh)).unwrap().0.size, 1);
    h.view.release(fh, None);
    assert_eq!(std::fs::read(h.path("CACHEDIR.TAG")).unwrap(), &TAG[..1]);
}

#[test]
fn setattr_mode_and_times_of_a_regular_file() {
    let h = hub();
    let tag = h.ino("CACHEDIR.TAG");
    let when = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let set = SetAttr {
        mode: Some(0o600),
        mtime: Some(TimeSet::At(when)),
        ..Default::default()
    };
    let (attr, _) = h.view.setattr(tag, &set, None).unwrap();
    assert_eq!(attr.perm, 0o600);
    assert_eq!(attr.mtime, when);
    let meta = std::fs::metadata(h.path("CACHEDIR.TAG")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
}

#[test]
fn setattr_truncate_of_a_blob_is_not_permitted() {
    let h = hub();
    let s = snap_path();
    for name in [format!("{s}/config.json"), format!("{REPO}/blobs/{E40}")] {
        let ino = h.ino(&name);
        let set = SetAttr {
            size: Some(0),
            ..Default::default()
        };
        let got = h.view.setattr(ino, &set, None);
        assert!(
            matches!(got, Err(FsError::NotPermitted(_))),
            "{name}: {got:?}"
        );
    }
    assert_eq!(
        std::fs::read(h.path(&format!("{REPO}/blobs/{E40}"))).unwrap(),
        CONFIG
    );
}

// ---------------------------------------------------------------------------------------
// Hard links
// ---------------------------------------------------------------------------------------

#[test]
fn link_of_a_file_shares_its_inode() {
    let h = hub();
    let tag = h.ino("CACHEDIR.TAG");
    let e = h.view.link(tag, h.snap_ino(), os("tag")).unwrap();
    assert_eq!(e.attr.ino, tag);
    assert_eq!(e.attr.nlink, 2);
    let s = h.snap_ino();
    assert!(matches!(
        h.view.link(s, ROOT_INO, os("dir")),
        Err(FsError::NotPermitted(_))
    ));
}

// ---------------------------------------------------------------------------------------
// is_blob_path
// ---------------------------------------------------------------------------------------

#[test]
fn is_blob_path_cases() {
    let yes = |p: &str| is_blob_path(&StorePath::parse(p).unwrap());
    assert!(yes(&format!("{REPO}/blobs/{E40}")));
    assert!(yes(&format!("{REPO}/blobs/{H64}")));
    assert!(yes(&format!("blobs/ab/{X64}")));
    assert!(
        !yes(&format!("datasets--a--b/blobs/{}", E40.to_uppercase())),
        "lower-case only"
    );
    // Not a hash name.
    assert!(!yes(&format!("{REPO}/blobs/{E40}.incomplete")));
    assert!(!yes(&format!("{REPO}/blobs/{H64}.abcd1234.incomplete")));
    assert!(!yes(&format!("{REPO}/blobs/{}", &E40[..39])));
    assert!(!yes(&format!("{REPO}/blobs/{}", &H64[..63])));
    assert!(!yes(&format!("{REPO}/blobs/{E40}0")));
    assert!(!yes(&format!("{REPO}/blobs/{}", "g".repeat(40))));
    assert!(!yes(&format!("{REPO}/blobs/tmp_{}", &E40[..36])));
    assert!(!yes(&format!("blobs/ab/{X64}.refs")));
    assert!(!yes(&format!("blobs/ab/{X64}.lock")));
    assert!(!yes("blobs/.huggingface-shared-blobs"));
    // Not below a `blobs` directory.
    assert!(!yes(&format!("{REPO}/snapshots/{COMMIT}/{E40}")));
    assert!(!yes(&format!("{REPO}/refs/{E40}")));
    assert!(!yes(E40));
    assert!(!yes(&format!("blobsx/{E40}")));
    assert!(!is_blob_path(&StorePath::root()));
}

// ---------------------------------------------------------------------------------------
// Regressions (bugs found by these tests, now fixed)
// ---------------------------------------------------------------------------------------

#[test]
fn symlink_to_an_ancestor_directory_is_refused() {
    let h = hub();
    let s = h.snap_ino();
    // `symlink()` promises to refuse a link the view would hide; a link to an ancestor is
    // hidden (the lookup below says "not found"), so creating it must fail and leave nothing.
    let got = h
        .view
        .symlink(s, os("up2"), Path::new(".."), Caller::default());
    let looked = h.view.lookup(s, os("up2"));
    assert!(matches!(looked, Err(FsError::NotFound)), "{looked:?}");
    assert!(got.is_err(), "created a link the view hides: {got:?}");
    assert!(!h.exists(&format!("{}/up2", snap_path())));
}

#[test]
fn mkdir_over_a_hidden_ancestor_link_replaces_it() {
    let h = hub();
    let s = h.snap_ino();
    assert!(matches!(h.view.lookup(s, os("up")), Err(FsError::NotFound)));
    let got = h.view.mkdir(s, os("up"), 0o755, 0, Caller::default());
    assert!(
        got.is_ok(),
        "lookup says `up` does not exist, mkdir says: {got:?}"
    );
    assert!(
        std::fs::symlink_metadata(h.path(&format!("{}/up", snap_path())))
            .unwrap()
            .is_dir()
    );
}

#[test]
fn create_over_a_hidden_ancestor_link_replaces_it() {
    let h = hub_keeping_copies();
    let s = h.snap_ino();
    let got = h.view.create(
        s,
        os("up"),
        0o644,
        0,
        OpenFlags::from_raw(libc::O_WRONLY | libc::O_CREAT),
        Caller::default(),
    );
    let (entry, opened) = got.expect("lookup says `up` does not exist");
    h.view.release(opened.fh, None);
    assert_eq!(entry.attr.kind, AttrKind::File);
    assert!(
        std::fs::symlink_metadata(h.path(&format!("{}/up", snap_path())))
            .unwrap()
            .is_file()
    );
}

#[test]
fn create_over_a_hidden_fifo_is_exists() {
    let h = hub();
    let s = h.snap_ino();
    let got = h.view.create(
        s,
        os("fifo"),
        0o644,
        0,
        OpenFlags::from_raw(libc::O_WRONLY | libc::O_CREAT),
        Caller::default(),
    );
    assert!(matches!(got, Err(FsError::Exists)), "{:?}", got.map(drop));
    let meta = std::fs::symlink_metadata(h.path(&format!("{}/fifo", snap_path()))).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()));
}

#[test]
fn writability_of_a_file_does_not_depend_on_lookup_history() {
    let h = hub();
    symlink("CACHEDIR.TAG", h.path("tag-link")).unwrap();
    let tag = h.ino("CACHEDIR.TAG");
    let open_for_write = || match h.view.open(tag, OpenFlags::from_raw(libc::O_WRONLY)) {
        Ok(o) => {
            h.view.release(o.fh, None);
            Ok(())
        }
        Err(e) => Err(e.errno()),
    };
    let before = open_for_write();
    assert_eq!(h.ino("tag-link"), tag, "both names share the inode");
    let after = open_for_write();
    assert_eq!(
        before, after,
        "looking up another name changed what `open` allows"
    );
}

#[test]
fn a_blob_cannot_be_written_through_a_hard_link() {
    let h = hub();
    let config = h.ino(&format!("{}/config.json", snap_path()));
    let linked = h.view.link(config, ROOT_INO, os("copy"));
    if linked.is_ok() {
        // The kernel forgets the inode; later the new name is looked up on its own.
        h.view.forget(config, 2);
        let copy = h.ino("copy");
        if let Ok(o) = h.view.open(copy, OpenFlags::from_raw(libc::O_WRONLY)) {
            let _ = h.view.write(o.fh, 0, b"XX");
            h.view.release(o.fh, None);
        }
    }
    assert_eq!(
        std::fs::read(h.path(&format!("{REPO}/blobs/{E40}"))).unwrap(),
        CONFIG,
        "the blob shared by every snapshot was modified through the view"
    );
}

#[test]
fn hard_linked_file_survives_unlink_of_its_other_name() {
    let h = hub();
    let tag = h.ino("CACHEDIR.TAG");
    h.view.link(tag, ROOT_INO, os("hard")).unwrap();
    h.view.unlink(ROOT_INO, os("hard")).unwrap();
    // `ln a b; rm b; stat a`: the kernel still holds `a`'s dentry and asks for its inode.
    let got = h.view.getattr(tag, None);
    assert!(got.is_ok(), "{got:?}");
    let h2 = h.view.open(tag, OpenFlags::from_raw(libc::O_RDONLY));
    assert!(h2.is_ok(), "{h2:?}");
}

#[test]
fn rename_exchange_of_links_across_directories_is_refused_and_changes_nothing() {
    let h = hub();
    let s = h.snap_ino();
    let deep = h.ino(&format!("{}/sub/deep", snap_path()));
    let weights_ino = h.ino(&format!("{REPO}/blobs/{H64}"));
    let r = h.view.rename(
        s,
        os("model.safetensors"),
        deep,
        os("tok.json"),
        libc::RENAME_EXCHANGE,
    );
    assert!(matches!(r, Err(FsError::Invalid)), "{r:?}");
    let top = h.view.lookup(s, os("model.safetensors"));
    assert_eq!(top.map(|e| e.attr.ino).ok(), Some(weights_ino));
    assert!(h.view.lookup(deep, os("tok.json")).is_ok());
}

// ---- Copies written into snapshots become links (`view::copies`) ----

/// A second repo for the copy tests, whose blob names are their contents' digests.
const CREPO: &str = "models--acme--copies";
const C1: &str = "1111111111111111111111111111111111111111";
const C0: &str = "0000000000000000000000000000000000000000";

fn git_sha1(data: &[u8]) -> String {
    crate::hub::hash::digest_bytes(data).git_sha1.unwrap()
}

fn sha256(data: &[u8]) -> String {
    crate::hub::hash::digest_bytes(data).sha256.unwrap()
}

/// `CREPO` with `blobs/<git sha1 of A>` = A and empty snapshots `C0`, `C1/nested`.
fn copies_hub(config: ViewConfig) -> (Hub, Vec<u8>) {
    let h = hub_with(config);
    let a: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::create_dir_all(h.path(&format!("{CREPO}/blobs"))).unwrap();
    std::fs::create_dir_all(h.path(&format!("{CREPO}/snapshots/{C1}/nested"))).unwrap();
    std::fs::create_dir_all(h.path(&format!("{CREPO}/snapshots/{C0}"))).unwrap();
    std::fs::write(h.path(&format!("{CREPO}/blobs/{}", git_sha1(&a))), &a).unwrap();
    (h, a)
}

impl Hub {
    /// Creates `name` in view directory `dir` and writes `chunks` at their offsets through one
    /// handle; returns the handle (not yet released).
    fn write_open(&self, dir: Ino, name: &str, chunks: &[(u64, &[u8])]) -> Fh {
        let (_, o) = self
            .view
            .create(
                dir,
                os(name),
                0o644,
                0o022,
                OpenFlags::from_raw(libc::O_WRONLY | libc::O_EXCL),
                caller(),
            )
            .unwrap();
        for (off, data) in chunks {
            self.view.write(o.fh, *off, data).unwrap();
        }
        o.fh
    }

    fn is_link(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.path(rel))
            .unwrap()
            .is_symlink()
    }

    fn counters(&self) -> (u64, u64) {
        let c = self.view.dedupe_counters();
        (
            c.linked.load(std::sync::atomic::Ordering::Relaxed),
            c.bytes_saved.load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

fn caller() -> Caller {
    Caller {
        uid: 0,
        gid: 0,
        pid: 0,
    }
}

#[test]
fn a_copy_of_a_blob_becomes_a_link_to_it_when_closed() {
    let (h, a) = copies_hub(ViewConfig::default());
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let entry = format!("{CREPO}/snapshots/{C1}/a.bin");
    let fh = h.write_open(snap, "a.bin", &[(0, &a[..40_000]), (40_000, &a[40_000..])]);
    assert!(!h.is_link(&entry), "converted before it was closed");
    // A reader holding the copy open keeps its bytes across the replacement.
    let reader = h
        .view
        .open(h.ino(&entry), OpenFlags::from_raw(libc::O_RDONLY))
        .unwrap();
    h.view.release(fh, None);
    assert!(h.is_link(&entry));
    assert_eq!(h.view.read(reader.fh, 0, 1 << 20).unwrap(), a);
    h.view.release(reader.fh, None);
    assert_eq!(
        h.link_text(&entry),
        PathBuf::from(format!("../../blobs/{}", git_sha1(&a)))
    );
    assert_eq!(h.counters(), (1, a.len() as u64));
    assert_eq!(h.read_all(h.ino(&entry)), a);
    // The blob is untouched and still the only file with the content.
    let blobs: Vec<_> = std::fs::read_dir(h.path(&format!("{CREPO}/blobs")))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(blobs, vec![OsString::from(git_sha1(&a))]);
}

#[test]
fn new_content_becomes_the_blob_the_hub_would_name() {
    let (h, _) = copies_hub(ViewConfig::default());
    let nested = h.ino(&format!("{CREPO}/snapshots/{C1}/nested"));
    let b = b"new small content\n".to_vec();
    let fh = h.write_open(nested, "b.txt", &[(0, &b)]);
    h.view.release(fh, None);
    let entry = format!("{CREPO}/snapshots/{C1}/nested/b.txt");
    // Small and no other rule: the git blob sha1, one more ../ for the sub-directory.
    assert_eq!(
        h.link_text(&entry),
        PathBuf::from(format!("../../../blobs/{}", git_sha1(&b)))
    );
    let blob = format!("{CREPO}/blobs/{}", git_sha1(&b));
    assert!(std::fs::symlink_metadata(h.path(&blob)).unwrap().is_file());
    assert_eq!(std::fs::read(h.path(&blob)).unwrap(), b);
    assert_eq!(h.counters(), (1, 0));
    // It is a blob now: immutable through the view, also through the inode the writer had.
    let ino = h.ino(&entry);
    assert!(matches!(
        h.view.open(ino, OpenFlags::from_raw(libc::O_WRONLY)),
        Err(FsError::NotPermitted(_))
    ));
    // trees/<commit>.json names the path by its sha256: that is the name.
    let tree = format!(
        "{{\"files\": {{\"c.txt\": {{\"blob_id\": \"{}\", \"lfs_sha256\": \"{}\"}}}}}}",
        git_sha1(b"c"),
        sha256(b"c")
    );
    std::fs::create_dir_all(h.path(&format!("{CREPO}/trees"))).unwrap();
    std::fs::write(h.path(&format!("{CREPO}/trees/{C1}.json")), tree).unwrap();
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let fh = h.write_open(snap, "c.txt", &[(0, b"c")]);
    h.view.release(fh, None);
    assert_eq!(
        h.link_text(&format!("{CREPO}/snapshots/{C1}/c.txt")),
        PathBuf::from(format!("../../blobs/{}", sha256(b"c")))
    );
    // Content that does not match the etag trees/ lists stays a copy.
    let bad = format!(
        "{{\"files\": {{\"d.txt\": {{\"blob_id\": \"{}\"}}}}}}",
        git_sha1(b"something else")
    );
    std::fs::write(h.path(&format!("{CREPO}/trees/{C1}.json")), bad).unwrap();
    let fh = h.write_open(snap, "d.txt", &[(0, b"d")]);
    h.view.release(fh, None);
    let d = format!("{CREPO}/snapshots/{C1}/d.txt");
    assert!(!h.is_link(&d));
    assert_eq!(std::fs::read(h.path(&d)).unwrap(), b"d");
}

#[test]
fn the_same_path_in_another_revision_decides_the_name_kind() {
    let (h, _) = copies_hub(ViewConfig::default());
    let e = b"small, but named by sha256 in the other revision".to_vec();
    let other = format!("{CREPO}/blobs/{}", sha256(b"older"));
    std::fs::write(h.path(&other), b"older").unwrap();
    symlink(
        format!("../../blobs/{}", sha256(b"older")),
        h.path(&format!("{CREPO}/snapshots/{C0}/e.bin")),
    )
    .unwrap();
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let fh = h.write_open(snap, "e.bin", &[(0, &e)]);
    h.view.release(fh, None);
    assert_eq!(
        h.link_text(&format!("{CREPO}/snapshots/{C1}/e.bin")),
        PathBuf::from(format!("../../blobs/{}", sha256(&e)))
    );
}

#[test]
fn a_blob_renamed_into_snapshots_is_stored_as_a_link_and_stays() {
    let (h, _) = copies_hub(ViewConfig::default());
    let c = b"downloaded blob".to_vec();
    let name = git_sha1(&c);
    let blobs = h.ino(&format!("{CREPO}/blobs"));
    let fh = h.write_open(blobs, &format!("{name}.incomplete"), &[(0, &c)]);
    h.view.release(fh, None);
    h.view
        .rename(
            blobs,
            os(&format!("{name}.incomplete")),
            blobs,
            os(&name),
            0,
        )
        .unwrap();
    let blob_ino = h.ino(&format!("{CREPO}/blobs/{name}"));
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    h.view
        .rename(blobs, os(&name), snap, os("c.txt"), 0)
        .unwrap();
    let entry = format!("{CREPO}/snapshots/{C1}/c.txt");
    assert_eq!(
        h.link_text(&entry),
        PathBuf::from(format!("../../blobs/{name}"))
    );
    // The old name still shows the blob: one inode under both names, as with a hard link.
    assert_eq!(h.ino(&entry), blob_ino);
    assert_eq!(h.read_all(h.ino(&format!("{CREPO}/blobs/{name}"))), c);
    assert_eq!(h.counters(), (1, 0));
    // A rename with RENAME_NOREPLACE over an existing entry still fails.
    let e = h
        .view
        .rename(blobs, os(&name), snap, os("c.txt"), libc::RENAME_NOREPLACE)
        .unwrap_err();
    assert_eq!(e.errno(), libc::EEXIST);
}

#[test]
fn a_file_is_converted_only_when_its_last_writer_closes() {
    let (h, a) = copies_hub(ViewConfig::default());
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let entry = format!("{CREPO}/snapshots/{C1}/a.bin");
    let first = h.write_open(snap, "a.bin", &[(0, &a[..1000])]);
    let ino = h.ino(&entry);
    let second = h
        .view
        .open(ino, OpenFlags::from_raw(libc::O_WRONLY))
        .unwrap();
    h.view.write(second.fh, 1000, &a[1000..]).unwrap();
    h.view.release(first, None);
    assert!(
        !h.is_link(&entry),
        "converted while another handle writes it"
    );
    h.view.release(second.fh, None);
    assert!(h.is_link(&entry));
}

#[test]
fn out_of_order_writes_are_hashed_by_reading_the_file() {
    let (h, a) = copies_hub(ViewConfig::default());
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let fh = h.write_open(snap, "a.bin", &[(50_000, &a[50_000..]), (0, &a[..50_000])]);
    h.view.release(fh, None);
    let entry = format!("{CREPO}/snapshots/{C1}/a.bin");
    assert_eq!(
        h.link_text(&entry),
        PathBuf::from(format!("../../blobs/{}", git_sha1(&a)))
    );
    // Bytes that differ from every blob by one byte become a blob of their own.
    let mut other = a.clone();
    other[69_999] ^= 1;
    let fh = h.write_open(snap, "other.bin", &[(0, &other)]);
    h.view.release(fh, None);
    assert_eq!(
        h.link_text(&format!("{CREPO}/snapshots/{C1}/other.bin")),
        PathBuf::from(format!("../../blobs/{}", git_sha1(&other)))
    );
}

#[test]
fn a_complete_file_renamed_into_a_snapshot_becomes_a_link() {
    let (h, a) = copies_hub(ViewConfig::default());
    let repo = h.ino(CREPO);
    let fh = h.write_open(repo, "upload.tmp", &[(0, &a)]);
    h.view.release(fh, None);
    assert!(!h.is_link(&format!("{CREPO}/upload.tmp")));
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    h.view
        .rename(repo, os("upload.tmp"), snap, os("a.bin"), 0)
        .unwrap();
    assert!(h.is_link(&format!("{CREPO}/snapshots/{C1}/a.bin")));
    assert_eq!(h.counters(), (1, a.len() as u64));
}

#[test]
fn nodedupe_keeps_copies_as_written() {
    let (h, a) = copies_hub(ViewConfig {
        dedupe: false,
        ..ViewConfig::default()
    });
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let fh = h.write_open(snap, "a.bin", &[(0, &a)]);
    h.view.release(fh, None);
    assert!(!h.is_link(&format!("{CREPO}/snapshots/{C1}/a.bin")));
    let c = b"x".to_vec();
    let blobs = h.ino(&format!("{CREPO}/blobs"));
    let fh = h.write_open(blobs, &git_sha1(&c), &[(0, &c)]);
    h.view.release(fh, None);
    h.view
        .rename(blobs, os(&git_sha1(&c)), snap, os("c.txt"), 0)
        .unwrap();
    assert!(!h.is_link(&format!("{CREPO}/snapshots/{C1}/c.txt")));
    assert!(!h.exists(&format!("{CREPO}/blobs/{}", git_sha1(&c))));
    assert_eq!(h.counters(), (0, 0));
}

#[test]
fn a_copy_that_already_is_a_blob_file_becomes_a_link_to_that_blob() {
    let (h, _) = copies_hub(ViewConfig::default());
    // An interrupted conversion: the file is already hard-linked into blobs/.
    let x = b"half-way converted".to_vec();
    std::fs::write(h.path(&format!("{CREPO}/x.tmp")), &x).unwrap();
    std::fs::hard_link(
        h.path(&format!("{CREPO}/x.tmp")),
        h.path(&format!("{CREPO}/blobs/{}", git_sha1(&x))),
    )
    .unwrap();
    let repo = h.ino(CREPO);
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    h.view
        .rename(repo, os("x.tmp"), snap, os("x.bin"), 0)
        .unwrap();
    assert_eq!(
        h.link_text(&format!("{CREPO}/snapshots/{C1}/x.bin")),
        PathBuf::from(format!("../../blobs/{}", git_sha1(&x)))
    );
    assert_eq!(h.counters(), (1, 0));
}

#[test]
fn a_blob_that_links_into_the_shared_store_is_compared_byte_for_byte() {
    let (h, _) = copies_hub(ViewConfig::default());
    let p = b"payload of the shared store".to_vec();
    let q = b"what the name promises".to_vec();
    std::fs::create_dir_all(h.path("blobs/cd")).unwrap();
    // A good repo blob link, and one whose payload does not hold what its name says.
    for (content, payload) in [(&p, &p), (&q, &b"other bytes".to_vec())] {
        let x = format!("cd{}", &sha256(payload)[2..]);
        std::fs::write(h.path(&format!("blobs/cd/{x}")), payload).unwrap();
        symlink(
            format!("../../blobs/cd/{x}"),
            h.path(&format!("{CREPO}/blobs/{}", sha256(content))),
        )
        .unwrap();
    }
    // The digests decide which blob; sizes must match, so pad q's payload to q's length.
    let x = format!("cd{}", &sha256(b"other bytes")[2..]);
    let padded: Vec<u8> = b"other bytes"
        .iter()
        .copied()
        .cycle()
        .take(q.len())
        .collect();
    std::fs::write(h.path(&format!("blobs/cd/{x}")), &padded).unwrap();
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let fh = h.write_open(snap, "p.bin", &[(0, &p)]);
    h.view.release(fh, None);
    assert_eq!(
        h.link_text(&format!("{CREPO}/snapshots/{C1}/p.bin")),
        PathBuf::from(format!("../../blobs/{}", sha256(&p)))
    );
    let fh = h.write_open(snap, "q.bin", &[(0, &q)]);
    h.view.release(fh, None);
    let qe = format!("{CREPO}/snapshots/{C1}/q.bin");
    assert!(!h.is_link(&qe), "linked to a blob with other bytes");
    assert_eq!(std::fs::read(h.path(&qe)).unwrap(), q);
}

/// A failed request names its object by the store path the inode reads (for a snapshot name,
/// the blob behind it), while the kernel holds the inode; `fs_error!` asks for it only when
/// the message is logged.
#[test]
fn failures_name_the_store_path_of_their_inode() {
    let h = hub();
    let s = snap_path();
    let config = h.ino(&format!("{s}/config.json"));
    let path = h.view.store_path(config).map(|p| p.to_string());
    assert_eq!(path, Some(format!("/{REPO}/blobs/{E40}")));
    let mut e = FsError::Stale.during("getattr", config);
    crate::fs_error!(&h.view, &mut e);
    assert_eq!(e.errno(), libc::ESTALE);
    h.view.forget(config, h.lookups(config));
    assert_eq!(h.view.store_path(config), None);
}

/// A symlink whose target leads back into a directory above it is `ELOOP`, as on Linux.
#[test]
fn a_symlink_into_a_loop_is_eloop() {
    let h = hub();
    let snap = h.ino(&snap_path());
    let sub = h.view.lookup(snap, os("sub")).unwrap().attr.ino;
    let got = h
        .view
        .symlink(sub, os("again"), Path::new(".."), Caller::default());
    assert!(matches!(got, Err(FsError::Loop)), "{got:?}");
    assert_eq!(FsError::Loop.errno(), libc::ELOOP);
}
