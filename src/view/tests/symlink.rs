//! `symlink()` through the view: plain relative texts inside the store only.

use super::*;

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
