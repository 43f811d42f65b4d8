//! The write path: create, mknod, mkdir, unlink and rmdir on the store.

use super::*;

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
