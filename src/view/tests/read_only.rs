//! A read-only view refuses every mutation and leaves the store untouched.

use super::*;

#[test]
fn read_only_view_refuses_every_mutation() {
    let h = hub_with(ViewConfig {
        read_only: true,
        ..Default::default()
    });
    let before = store_state(h.dir.path());
    let s = h.snap_ino();
    let sub = h.ino(&format!("{}/sub", snap_path()));
    let config = h.ino(&format!("{}/config.json", snap_path()));
    let tag = h.ino("CACHEDIR.TAG");
    let c = Caller::default();
    let ro = |what: &str, r: FsResult<()>| {
        assert!(matches!(r, Err(FsError::ReadOnly)), "{what}: {r:?}");
    };
    ro(
        "create",
        h.view
            .create(
                s,
                os("new"),
                0o644,
                0,
                OpenFlags::from_raw(libc::O_WRONLY | libc::O_CREAT),
                c,
            )
            .map(drop),
    );
    ro(
        "mknod",
        h.view
            .mknod(ROOT_INO, os("n"), libc::S_IFREG | 0o644, 0, c)
            .map(drop),
    );
    ro("mkdir", h.view.mkdir(s, os("d"), 0o755, 0, c).map(drop));
    ro("unlink link", h.view.unlink(s, os("config.json")));
    ro("unlink file", h.view.unlink(ROOT_INO, os("CACHEDIR.TAG")));
    ro("unlink hidden", h.view.unlink(s, os("dangling")));
    ro("rmdir", h.view.rmdir(sub, os("deep")));
    ro(
        "rename",
        h.view.rename(s, os("config.json"), sub, os("c"), 0),
    );
    ro(
        "rename in place",
        h.view.rename(s, os("config.json"), s, os("c"), 0),
    );
    ro(
        "symlink",
        h.view
            .symlink(s, os("l"), Path::new("config.json"), c)
            .map(drop),
    );
    ro("link", h.view.link(tag, s, os("tag")).map(drop));
    let size = SetAttr {
        size: Some(0),
        ..Default::default()
    };
    let mode = SetAttr {
        mode: Some(0o600),
        ..Default::default()
    };
    let times = SetAttr {
        mtime: Some(TimeSet::Now),
        ..Default::default()
    };
    for (what, set) in [("size", &size), ("mode", &mode), ("mtime", &times)] {
        ro(
            &format!("setattr {what} file"),
            h.view.setattr(tag, set, None).map(drop),
        );
        ro(
            &format!("setattr {what} blob"),
            h.view.setattr(config, set, None).map(drop),
        );
    }
    ro("setattr mode dir", h.view.setattr(s, &mode, None).map(drop));
    for flags in [
        OpenFlags::from_raw(libc::O_WRONLY),
        OpenFlags::from_raw(libc::O_RDWR),
        OpenFlags::from_raw(libc::O_RDONLY | libc::O_TRUNC),
    ] {
        ro("open for write", h.view.open(tag, flags).map(drop));
    }
    // Reads still work, and an empty setattr is a getattr.
    assert_eq!(h.read_all(config), CONFIG);
    assert!(h.view.setattr(tag, &SetAttr::default(), None).is_ok());
    assert_eq!(store_state(h.dir.path()), before, "the store is unchanged");
}
