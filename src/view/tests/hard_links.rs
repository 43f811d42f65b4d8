//! Hard links through the view.

use super::*;

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
