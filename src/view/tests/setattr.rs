//! `setattr`: the rules both platforms share (immutable blobs, stale nodes).

use super::*;

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
