//! Hidden entries: hostile and looping links are absent from lookups and listings.

use super::*;

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
