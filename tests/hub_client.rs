//! Real-client end-to-end tests: the real `huggingface_hub` (pinned, in `.venv/`) against the
//! fake Hub on 127.0.0.1, reading and writing through a real mount.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::path::Path;

use harness::{FakeHub, Mount, hub_client, venv_python, walk};

/// Every entry below `snapshots/` of the store is a relative symlink, and every file of the
/// mount is a regular file.
fn assert_store_links_and_view_files(store: &Path, mp: &Path) {
    let mut links = 0;
    for p in walk(store) {
        let rel = p.strip_prefix(store).unwrap();
        if rel.components().any(|c| c.as_os_str() == "snapshots") {
            let md = p.symlink_metadata().unwrap();
            if !md.is_dir() {
                assert!(md.is_symlink(), "store {} is not a link", rel.display());
                let t = std::fs::read_link(&p).unwrap();
                assert!(t.is_relative(), "{} -> {}", rel.display(), t.display());
                links += 1;
            }
        }
    }
    assert!(links > 10, "only {links} snapshot links");
    for p in walk(mp) {
        assert!(
            !p.symlink_metadata().unwrap().is_symlink(),
            "{}",
            p.display()
        );
    }
}

#[test]
fn cache_written_directly_reads_through_a_read_only_mount() {
    let py = venv_python("hub2");
    let hub = FakeHub::start(&py);
    let store = tempfile::Builder::new()
        .prefix("hfcfs-hub")
        .tempdir()
        .unwrap();
    let (ok, out) = hub_client(&py, &hub, store.path(), "populate", &[]);
    assert!(ok, "populate: {out}");
    let m = Mount::new(store.path(), "ro");
    // The hub is stopped for the reads: they must not need it.
    drop(hub);
    let offline = FakeHub::start(&py);
    let (ok, out) = hub_client(
        &py,
        &offline,
        &m.mp,
        "check-offline",
        &[("HF_HUB_OFFLINE", "1")],
    );
    assert!(
        ok,
        "check-offline through the mount: {out}\n{}",
        m.log_text()
    );
    assert!(out.trim_end().ends_with("OK"), "{out}");
    assert_store_links_and_view_files(store.path(), &m.mp);
}

fn download_through_rw_mount(venv: &str) {
    let py = venv_python(venv);
    let hub = FakeHub::start(&py);
    let store = tempfile::Builder::new()
        .prefix("hfcfs-hub")
        .tempdir()
        .unwrap();
    let m = Mount::new(store.path(), "");
    harness::download_round_trip(&py, &hub, store.path(), &m, venv);
    assert_store_links_and_view_files(store.path(), &m.mp);
}

#[test]
fn huggingface_hub_2_4_downloads_through_the_mount() {
    download_through_rw_mount("hub2");
}

#[test]
fn huggingface_hub_0_36_downloads_through_the_mount() {
    download_through_rw_mount("hub036");
}
