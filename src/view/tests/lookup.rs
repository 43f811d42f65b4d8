//! Lookups and inode identity: names of one file share an inode, numbers are not reused, directories never alias.

use super::*;

#[test]
fn snapshot_names_show_as_files_with_the_blob_size() {
    let h = hub();
    let s = snap_path();
    for (name, size) in [
        ("config.json", CONFIG.len()),
        ("model.safetensors", weights().len()),
        ("shared.bin", SHARED.len()),
        ("sub/deep/tok.json", CONFIG.len()),
    ] {
        let a = h.attr(&format!("{s}/{name}"));
        assert_eq!(a.kind, AttrKind::File, "{name}");
        assert_eq!(a.size, size as u64, "{name}");
    }
    assert_eq!(h.attr(&format!("{s}/sub")).kind, AttrKind::Dir);
    assert_eq!(
        h.attr(&format!("{REPO}/refs/main")).size,
        COMMIT.len() as u64
    );
}

#[test]
fn blobs_get_the_long_attr_ttl_and_mutable_files_the_short_one() {
    let h = hub();
    let blob = h.walk(&format!("{}/config.json", snap_path())).unwrap();
    assert_eq!(blob.attr_ttl, Duration::from_secs(60));
    let tag = h.walk("CACHEDIR.TAG").unwrap();
    assert_eq!(tag.attr_ttl, Duration::from_secs(1));
    let dir = h.walk(REPO).unwrap();
    assert_eq!(dir.attr_ttl, Duration::from_secs(1));
    assert_eq!(dir.entry_ttl, Duration::from_secs(1));
}

#[test]
fn fixed_names_of_blobs_are_kept_long_and_mutable_names_briefly() {
    let h = hub();
    let day = Duration::from_secs(86_400);
    // A snapshot entry leading to a blob, and the blob's own name: fixed.
    let snap = h.walk(&format!("{}/config.json", snap_path())).unwrap();
    assert_eq!(snap.entry_ttl, day);
    let blob = h.walk(&format!("{REPO}/blobs/{E40}")).unwrap();
    assert_eq!(blob.entry_ttl, day);
    // A name in a snapshot through a linked directory is fixed too; the shared chain's
    // repo blob name (a link to the payload) as well.
    assert_eq!(
        h.walk(&format!("{REPO}/blobs/{R64}")).unwrap().entry_ttl,
        day
    );
    // Refs and other mutable names: the short timeout.
    assert_eq!(
        h.walk(&format!("{REPO}/refs/main")).unwrap().entry_ttl,
        Duration::from_secs(1)
    );
    assert_eq!(
        h.walk("CACHEDIR.TAG").unwrap().entry_ttl,
        Duration::from_secs(1)
    );
}

#[test]
fn windowed_listings_on_a_network_store_match_and_keep_the_caller() {
    let mut h = hub();
    let s = h.snap_ino();
    let plain = readdirplus_all(&h.view, s);
    h.view.remote_store = true;
    let windowed = readdirplus_all(&h.view, s);
    let names = |l: &[(OsString, u64, Entry)]| {
        l.iter()
            .map(|(n, off, e)| (n.clone(), *off, e.attr.ino))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&plain), names(&windowed));
    // A link into a directory only root may search: listed for root, left out for another
    // user, also when looked up on the window's threads.
    std::fs::set_permissions(h.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let private = h.path("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::write(private.join("secret"), b"s").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(
        "../../../private/secret",
        h.path(&format!("{}/secret", snap_path())),
    )
    .unwrap();
    let listed = |v: &CacheView| {
        readdirplus_all(v, s)
            .into_iter()
            .any(|(n, _, _)| n == "secret")
    };
    assert!(listed(&h.view));
    let _user = crate::view::access::serving(Caller {
        uid: 1000,
        gid: 1000,
        pid: 0,
    });
    assert!(!listed(&h.view));
}

#[test]
fn names_of_one_blob_share_one_inode() {
    let h = hub();
    let s = snap_path();
    let config = h.ino(&format!("{s}/config.json"));
    assert_eq!(h.ino(&format!("{s}/sub/deep/tok.json")), config);
    assert_eq!(h.ino(&format!("{s}/linked/deep/tok.json")), config);
    assert_eq!(h.ino(&format!("{REPO}/blobs/{E40}")), config);
    assert_ne!(h.ino(&format!("{s}/model.safetensors")), config);
    assert_eq!(h.lookups(config), 4, "each name counts one lookup");
}

#[test]
fn shared_chain_names_share_the_payload_inode() {
    let h = hub();
    let payload = h.ino(&format!("blobs/ab/{X64}"));
    assert_eq!(h.ino(&format!("{}/shared.bin", snap_path())), payload);
    assert_eq!(h.ino(&format!("{REPO}/blobs/{R64}")), payload);
    let (attr, ttl) = h.view.getattr(payload, None).unwrap();
    assert_eq!(attr.size, SHARED.len() as u64);
    assert_eq!(ttl, Duration::from_secs(60));
    assert_eq!(h.read_all(payload), SHARED);
}

#[test]
fn inode_numbers_are_not_reused_after_forget() {
    let h = hub();
    let path = format!("{}/config.json", snap_path());
    let first = h.ino(&path);
    let count = h.view.inode_count();
    h.view.forget(first, 1);
    assert_eq!(h.lookups(first), 0);
    assert_eq!(h.view.inode_count(), count - 1);
    assert!(matches!(h.view.getattr(first, None), Err(FsError::Stale)));
    let again = h.ino(&path);
    assert_ne!(again, first, "a forgotten number is never handed out again");
    assert!(again > first);
}

#[test]
fn directories_never_alias_even_through_a_link() {
    let h = hub();
    let s = snap_path();
    let sub = h.ino(&format!("{s}/sub"));
    let linked = h.attr(&format!("{s}/linked"));
    assert_eq!(linked.kind, AttrKind::Dir);
    assert_ne!(linked.ino, sub);
    assert_ne!(
        h.ino(&format!("{s}/linked/deep")),
        h.ino(&format!("{s}/sub/deep"))
    );
}

#[test]
fn lookup_in_a_file_is_not_a_directory() {
    let h = hub();
    let f = h.ino(&format!("{}/config.json", snap_path()));
    assert!(matches!(h.view.lookup(f, os("x")), Err(FsError::NotDir)));
    assert!(matches!(h.view.opendir(f), Err(FsError::NotDir)));
    assert!(matches!(h.view.readlink(f), Err(FsError::Invalid)));
}
