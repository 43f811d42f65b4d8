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
    let store = harness::empty_store();
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
    let store = harness::empty_store();
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

/// The environment of a client that writes copies instead of links.
const COPY_MODE: &[(&str, &str)] = &[("HF_HUB_DISABLE_SYMLINKS", "1")];

/// Waits (up to 60 s) until every entry below a `snapshots/` directory of `store` is a link:
/// copies are converted when the kernel passes on their last close, which reaches the daemon
/// after the client's `close()` returned. Panics listing the copies left.
fn wait_for_links(store: &Path, m: &harness::Mount) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let copies: Vec<_> = walk(store)
            .into_iter()
            .filter(|p| {
                let rel = p.strip_prefix(store).unwrap();
                rel.components().any(|c| c.as_os_str() == "snapshots")
                    && p.symlink_metadata().is_ok_and(|md| md.is_file())
            })
            .collect();
        if copies.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "copies left in the store: {copies:?}\n{}",
            m.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Copy-mode clients (HF_HUB_DISABLE_SYMLINKS=1) move a new blob into the snapshot and copy
/// an existing one; through the mount the store still ends with links only and one blob per
/// content, and the client's own offline reads work.
#[test]
fn huggingface_hub_in_copy_mode_leaves_links_through_the_mount() {
    // The mount is dropped (unmounted) before its store.
    let (_store, _m) = copy_mode_through_the_mount("hub2", "");
}

/// Without passthrough the daemon sees every write: the copies are hashed as they are
/// written and none is read again to decide.
#[test]
fn copy_mode_without_passthrough_reads_nothing_twice() {
    // The mount is dropped (unmounted) before its store.
    let (_store, m) = copy_mode_through_the_mount("hub2", "nopassthrough");
    let log = m.log_text();
    assert!(log.contains("is now a link to"), "{log}");
    assert!(!log.contains("to hash it"), "a copy was read again:\n{log}");
}

/// (huggingface_hub 0.36 has no `HF_HUB_DISABLE_SYMLINKS`: on Linux it always makes links.)
fn copy_mode_through_the_mount(venv: &str, opts: &str) -> (tempfile::TempDir, harness::Mount) {
    let py = venv_python(venv);
    let hub = FakeHub::start(&py);
    let store = harness::empty_store();
    let m = Mount::new(store.path(), opts);
    harness::download_round_trip_with(
        &py,
        &hub,
        store.path(),
        &m,
        &format!("{venv} copy mode"),
        COPY_MODE,
        |s| wait_for_links(s, &m),
    );
    assert_store_links_and_view_files(store.path(), &m.mp);
    let st = m.status();
    assert!(
        st["dedupe_linked"].as_u64().unwrap_or(0) > 10,
        "status: {st}"
    );
    // Revisions share files: some copies were replaced by links to blobs already there.
    assert!(
        st["dedupe_bytes_saved"].as_u64().unwrap_or(0) > 0,
        "status: {st}"
    );
    (store, m)
}

/// With `-o nodedupe`, the same client leaves copies (the option is what makes the difference).
#[test]
fn copy_mode_through_a_nodedupe_mount_leaves_copies() {
    let py = venv_python("hub2");
    let hub = FakeHub::start(&py);
    let store = harness::empty_store();
    let m = Mount::new(store.path(), "nodedupe");
    let (ok, out) = harness::hub_client(&py, &hub, &m.mp, "snapshot", COPY_MODE);
    assert!(ok, "{out}\n{}", m.log_text());
    let copies = walk(store.path())
        .into_iter()
        .filter(|p| {
            p.components().any(|c| c.as_os_str() == "snapshots")
                && p.symlink_metadata().is_ok_and(|md| md.is_file())
        })
        .count();
    assert!(copies > 10, "only {copies} copies");
    assert_eq!(m.status()["dedupe_linked"].as_u64(), Some(0));
}

/// Two copy-mode clients downloading the same repos through one mount at once.
#[test]
fn two_copy_mode_clients_at_once_leave_links_only() {
    let py = venv_python("hub2");
    let hub = FakeHub::start(&py);
    let store = harness::empty_store();
    let m = Mount::new(store.path(), "");
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| harness::hub_client(&py, &hub, &m.mp, "snapshot", COPY_MODE)))
            .collect();
        for r in runs {
            let (ok, out) = r.join().unwrap();
            assert!(ok, "concurrent copy-mode client: {out}\n{}", m.log_text());
        }
    });
    wait_for_links(store.path(), &m);
    let (ok, out) = harness::hub_client(&py, &hub, store.path(), "check-layout", COPY_MODE);
    assert!(
        ok,
        "store layout after two clients: {out}\n{}",
        m.log_text()
    );
    // Offline, each revision reads back with the right bytes (`snapshot` checks them; the
    // fuller `check-offline` also expects what only `download` creates, e.g. `.no_exist/`).
    let offline = [("HF_HUB_DISABLE_SYMLINKS", "1"), ("HF_HUB_OFFLINE", "1")];
    let (ok, out) = harness::hub_client(&py, &hub, &m.mp, "snapshot", &offline);
    assert!(ok, "offline reads after two clients: {out}");
}
