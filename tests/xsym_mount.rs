//! XSym links (files Linux SMB clients with `mfsymlinks` write on servers without Unix
//! extensions) in a store, seen through a real FUSE mount: regular files with the blob's
//! bytes, listed with the right type, hidden when they dangle. XSym files are links only with
//! `-o xsym` (for stores whose own server writes links that way), and never in `blobs/`.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::os::unix::fs::MetadataExt;

use harness::{Mount, REPO, Store};

#[test]
fn xsym_snapshot_entries_read_as_their_blob() {
    let store = Store::hub();
    let snap = store.p(&format!("{REPO}/snapshots/x"));
    std::fs::create_dir_all(snap.join("sub")).unwrap();
    let blob = store.p(&format!(
        "{REPO}/blobs/0123456789abcdef0123456789abcdef01234567"
    ));
    std::fs::write(&blob, b"xsym-reached bytes").unwrap();
    let x = |target: &str, name: &str| {
        let file = hfcachefs::links::xsym::format(target.as_bytes()).unwrap();
        std::fs::write(snap.join(name), file).unwrap();
    };
    x(
        "../../blobs/0123456789abcdef0123456789abcdef01234567",
        "w.bin",
    );
    x(
        "../../../blobs/0123456789abcdef0123456789abcdef01234567",
        "sub/n.bin",
    );
    x("sub", "linked");
    x(
        "../../blobs/ffffffffffffffffffffffffffffffffffffffff",
        "dangling",
    );
    let m = Mount::new(store.root(), "ro,xsym");
    let mp = m.path(&format!("{REPO}/snapshots/x"));
    let w = std::fs::symlink_metadata(mp.join("w.bin")).unwrap();
    assert!(w.is_file());
    assert_eq!(
        std::fs::read(mp.join("w.bin")).unwrap(),
        b"xsym-reached bytes"
    );
    assert_eq!(
        std::fs::read(mp.join("sub/n.bin")).unwrap(),
        b"xsym-reached bytes"
    );
    let blob_ino = std::fs::metadata(m.path(&format!(
        "{REPO}/blobs/0123456789abcdef0123456789abcdef01234567"
    )))
    .unwrap()
    .ino();
    assert_eq!(
        w.ino(),
        blob_ino,
        "one inode for the blob and its XSym names"
    );
    assert!(
        std::fs::symlink_metadata(mp.join("linked"))
            .unwrap()
            .is_dir()
    );
    assert!(mp.join("linked/n.bin").is_file());
    assert!(std::fs::symlink_metadata(mp.join("dangling")).is_err());
    let mut listed: Vec<(String, bool)> = std::fs::read_dir(&mp)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.file_type().unwrap().is_dir(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("linked".to_string(), true),
            ("sub".to_string(), true),
            ("w.bin".to_string(), false)
        ]
    );
}
