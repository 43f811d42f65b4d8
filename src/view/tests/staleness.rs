//! Staleness: store changes behind the view become visible; gone files are stale.

use super::*;

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

#[test]
fn a_file_that_gets_a_deleted_files_inode_number_is_another_file() {
    use std::os::unix::fs::MetadataExt;
    let h = hub();
    std::fs::write(h.path("reused"), b"the first file").unwrap();
    let meta = std::fs::metadata(h.path("reused")).unwrap();
    if meta.created().is_err() {
        eprintln!("the store's file system keeps no birth time: nothing to show here");
        return;
    }
    let first = h.ino("reused");
    // Deleted and created anew directly in the store until the file system hands out the
    // same inode number again (ext4 does so at once); other numbers are kept aside meanwhile.
    std::fs::remove_file(h.path("reused")).unwrap();
    let mut reused = false;
    for i in 0..200 {
        std::fs::write(h.path("reused"), format!("a later file {i}")).unwrap();
        if std::fs::metadata(h.path("reused")).unwrap().ino() == meta.ino() {
            reused = true;
            break;
        }
        std::fs::rename(h.path("reused"), h.path(&format!("spare{i}"))).unwrap();
    }
    if !reused {
        eprintln!("the store's file system never reused the inode number: nothing to show here");
        return;
    }
    let later = h.ino("reused");
    assert_ne!(
        later, first,
        "the later file was given the deleted file's node"
    );
    assert!(h.read_all(later).starts_with(b"a later file"));
    assert!(matches!(h.view.getattr(first, None), Err(FsError::Stale)));
}
