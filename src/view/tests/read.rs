//! Opens and reads: exact blob bytes, directories refused, blobs never opened for writing.

use super::*;

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
