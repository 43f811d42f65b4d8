//! Renames: links follow, blobs stay, nothing reached by a link is lost.

use super::*;

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
    let (notes, opened) = h.create(deep, "notes.txt").unwrap();
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
    let (notes, opened) = h.create(deep, "notes.txt").unwrap();
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
