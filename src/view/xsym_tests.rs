//! XSym links in the store (files written by Linux SMB clients with `mfsymlinks`) as the
//! view shows them: exactly like symlinks.

use std::ffi::OsStr;
use std::path::Path;

use super::*;
use crate::inode::ROOT_INO;
use crate::links::xsym;

const REPO: &str = "models--acme--x";
const BLOB: &str = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3";

fn xsym_link(target: &str, at: &Path) {
    std::fs::write(at, xsym::format(target.as_bytes()).unwrap()).unwrap();
}

/// `<REPO>/blobs/<BLOB>` and a snapshot `c` whose entries are XSym files.
fn store() -> (tempfile::TempDir, CacheView) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join(REPO);
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("snapshots/c/sub")).unwrap();
    std::fs::write(repo.join("blobs").join(BLOB), b"blob bytes").unwrap();
    let snap = repo.join("snapshots/c");
    xsym_link(&format!("../../blobs/{BLOB}"), &snap.join("config.json"));
    xsym_link(
        &format!("../../../blobs/{BLOB}"),
        &snap.join("sub/tok.json"),
    );
    xsym_link("sub", &snap.join("linked"));
    xsym_link("../../blobs/missing", &snap.join("dangling"));
    xsym_link("/etc/passwd", &snap.join("passwd"));
    let store = Store::open_root(dir.path()).unwrap();
    let config = ViewConfig {
        xsym: true,
        ..ViewConfig::default()
    };
    (dir, CacheView::new(store, config))
}

fn walk(view: &CacheView, rel: &str) -> FsResult<Entry> {
    let mut parent = ROOT_INO;
    let mut last = None;
    for name in rel.split('/') {
        let e = view.lookup(parent, OsStr::new(name))?;
        parent = e.attr.ino;
        last = Some(e);
    }
    last.ok_or(FsError::NotFound)
}

#[test]
fn xsym_names_show_as_the_blob() {
    let (_dir, view) = store();
    let snap = format!("{REPO}/snapshots/c");
    let a = walk(&view, &format!("{snap}/config.json")).unwrap().attr;
    let b = walk(&view, &format!("{snap}/sub/tok.json")).unwrap().attr;
    let blob = walk(&view, &format!("{REPO}/blobs/{BLOB}")).unwrap().attr;
    assert_eq!(a.kind, AttrKind::File);
    assert_eq!(a.size, 10);
    assert_eq!(
        (a.ino, b.ino),
        (blob.ino, blob.ino),
        "one inode for all names"
    );
    let h = view
        .open(a.ino, OpenFlags::from_raw(libc::O_RDONLY))
        .unwrap();
    assert!(h.keep_cache, "reached through a link: an immutable blob");
    assert_eq!(view.read(h.fh, 0, 100).unwrap(), b"blob bytes");
    view.release(h.fh, None);
    let d = walk(&view, &format!("{snap}/linked")).unwrap().attr;
    assert_eq!(d.kind, AttrKind::Dir);
    for hidden in ["dangling", "passwd"] {
        assert!(matches!(
            walk(&view, &format!("{snap}/{hidden}")),
            Err(FsError::NotFound)
        ));
    }
}

#[test]
fn readdir_reports_xsym_links_by_their_target_and_skips_hidden_ones() {
    let (_dir, view) = store();
    let snap = walk(&view, &format!("{REPO}/snapshots/c"))
        .unwrap()
        .attr
        .ino;
    let fh = view.opendir(snap).unwrap();
    let mut got = Vec::new();
    view.readdir(fh, 0, |e| {
        got.push((e.name.to_string_lossy().into_owned(), e.kind));
        false
    })
    .unwrap();
    view.releasedir(fh);
    let want = [
        (".", AttrKind::Dir),
        ("..", AttrKind::Dir),
        ("config.json", AttrKind::File),
        ("linked", AttrKind::Dir),
        ("sub", AttrKind::Dir),
    ];
    let want: Vec<(String, AttrKind)> = want.iter().map(|(n, k)| (n.to_string(), *k)).collect();
    assert_eq!(got, want);
}

#[test]
fn unlinking_an_xsym_name_removes_only_that_file() {
    let (dir, view) = store();
    let snap = walk(&view, &format!("{REPO}/snapshots/c"))
        .unwrap()
        .attr
        .ino;
    view.unlink(snap, OsStr::new("config.json")).unwrap();
    let repo = dir.path().join(REPO);
    assert!(!repo.join("snapshots/c/config.json").exists());
    assert_eq!(
        std::fs::read(repo.join("blobs").join(BLOB)).unwrap(),
        b"blob bytes"
    );
}

#[test]
fn unlinking_the_blob_keeps_it_for_its_xsym_names() {
    let (dir, view) = store();
    let blobs = walk(&view, &format!("{REPO}/blobs")).unwrap().attr.ino;
    let res = view.unlink(blobs, OsStr::new(BLOB));
    let repo = dir.path().join(REPO);
    assert!(!repo.join("blobs").join(BLOB).exists());
    if cfg!(windows)
        && let Err(FsError::Store(e)) = &res
        && matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EPERM))
    {
        // A store that refuses symlinks (Windows without the right to create them; wine):
        // the other names cannot be re-pointed and the unlink says so, but the content is
        // kept under the first name.
        assert_eq!(
            std::fs::read(repo.join("snapshots/c/config.json")).unwrap(),
            b"blob bytes"
        );
        return;
    }
    res.unwrap();
    // The content moved onto the first referrer; the other one was re-pointed.
    assert_eq!(
        std::fs::read(repo.join("snapshots/c/config.json")).unwrap(),
        b"blob bytes"
    );
    let tok = walk(&view, &format!("{REPO}/snapshots/c/sub/tok.json")).unwrap();
    let h = view
        .open(tok.attr.ino, OpenFlags::from_raw(libc::O_RDONLY))
        .unwrap();
    assert_eq!(view.read(h.fh, 0, 100).unwrap(), b"blob bytes");
    view.release(h.fh, None);
}

#[test]
fn creating_over_a_hidden_xsym_link_replaces_it() {
    let (dir, view) = store();
    let snap = walk(&view, &format!("{REPO}/snapshots/c"))
        .unwrap()
        .attr
        .ino;
    let (_e, o) = view
        .create(
            snap,
            OsStr::new("dangling"),
            0o644,
            0,
            OpenFlags::from_raw(libc::O_WRONLY),
            Caller::default(),
        )
        .unwrap();
    view.write(o.fh, 0, b"new").unwrap();
    view.release(o.fh, None);
    // The name now holds the new bytes (as a file, or as a link to a blob of them once the
    // copy is deduplicated), seen through the view and no longer the dangling link's text.
    let e = walk(&view, &format!("{REPO}/snapshots/c/dangling")).unwrap();
    let h = view
        .open(e.attr.ino, OpenFlags::from_raw(libc::O_RDONLY))
        .unwrap();
    assert_eq!(view.read(h.fh, 0, 100).unwrap(), b"new");
    view.release(h.fh, None);
    let p = dir.path().join(REPO).join("snapshots/c/dangling");
    let text = crate::links::xsym::parse(&std::fs::read(p).unwrap()).map(|l| l.text);
    assert_ne!(text.as_deref(), Some(&b"../../blobs/missing"[..]));
}
