//! Correctness of the fast paths: kernel passthrough (open, read, mmap), the userspace path
//! with the page cache kept for immutable blobs, and status counters that tell them apart.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{C1, C2, Mount, REPO, Store, content, read_all_ways, sha256ish};

#[test]
fn passthrough_serves_blob_reads_in_the_kernel() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro");
    read_all_ways(&m);
    let st = m.status();
    assert_eq!(st["mode"], "passthrough", "{st}");
    assert!(st["passthrough_opens"].as_u64().unwrap() >= 2, "{st}");
    // Blobs over 64 KiB never pass through userspace; smaller ones (the 5,000-byte shared
    // payload) are read once through the page cache.
    assert_eq!(
        st["bytes_read"], 5000,
        "only small blobs pass through userspace: {st}"
    );
    assert!(
        m.log_text().contains("passthrough reads"),
        "{}",
        m.log_text()
    );
}

#[test]
fn userspace_mode_reads_the_same_bytes() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro,nopassthrough");
    read_all_ways(&m);
    let st = m.status();
    assert_eq!(st["mode"], "userspace", "{st}");
    assert_eq!(st["passthrough_opens"], 0);
    assert!(st["bytes_read"].as_u64().unwrap() >= 200_000, "{st}");
}

#[test]
fn re_pointed_name_shows_new_bytes_despite_kept_cache() {
    // Names of blobs are kept for immutable_timeout, their attributes for blob_timeout: keep
    // every lifetime short here (a name re-pointed to other bytes breaks the hub's rule).
    let short = "entry_timeout=0.2,attr_timeout=0.2,blob_timeout=0.2,immutable_timeout=0.2";
    for opts in [short.to_string(), format!("{short},nopassthrough")] {
        let store = Store::hub();
        let m = Mount::new(store.root(), &opts);
        let name = m.path(&format!("{REPO}/snapshots/{C1}/model.safetensors"));
        assert_eq!(std::fs::read(&name).unwrap(), content(2, 200_000));
        // Another machine downloads a new blob and re-points the name.
        let repo = store.p(REPO);
        std::fs::write(repo.join("blobs").join(sha256ish(50)), content(50, 123_456)).unwrap();
        let link = repo.join(format!("snapshots/{C1}/model.safetensors"));
        let tmp = repo.join(format!("snapshots/{C1}/.tmp-link"));
        std::os::unix::fs::symlink(format!("../../blobs/{}", sha256ish(50)), &tmp).unwrap();
        std::fs::rename(&tmp, &link).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        assert!(
            std::fs::read(&name).unwrap() == content(50, 123_456),
            "re-pointed name shows old bytes ({opts})"
        );
        // The other revision still has the old blob, from the kept cache or the store.
        let other = m.path(&format!("{REPO}/snapshots/{C2}/model.safetensors"));
        assert!(
            std::fs::read(other).unwrap() == content(2, 200_000),
            "other revision changed ({opts})"
        );
    }
}

#[test]
fn many_open_files_at_once() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro");
    let p = m.path(&format!("{REPO}/snapshots/{C1}/config.json"));
    let q = m.path(&format!("{REPO}/snapshots/{C2}/model.safetensors"));
    let files: Vec<_> = (0..2000)
        .map(|i| std::fs::File::open(if i % 2 == 0 { &p } else { &q }).unwrap())
        .collect();
    use std::os::unix::fs::FileExt;
    for (i, f) in files.iter().enumerate().rev() {
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, 0).unwrap();
        let want = if i % 2 == 0 {
            content(1, 300)
        } else {
            content(2, 200_000)
        };
        assert_eq!(&b[..], &want[..8]);
    }
}

#[test]
fn a_blob_held_open_through_passthrough_refuses_writers_until_closed() {
    let store = Store::hub();
    // Blobs that links reach never move out of the tracked layout (EXDEV: see SEMANTICS,
    // "Nothing lost"); these two are left without snapshot links first.
    drop_links_to(&store, &sha256ish(2));
    drop_links_to(&store, &harness::sha1ish(3));
    let m = Mount::new(store.root(), "");
    // A blob over 64 KiB (smaller ones are read through the page cache, see below).
    let blob = m.path(&format!("{REPO}/blobs/{}", sha256ish(2)));
    let reader = std::fs::File::open(&blob).unwrap();
    // Moved out of blobs/ (by a client or another machine), the file is no longer a blob
    // and may be written, but not while a passthrough reader holds the inode.
    let moved = m.path(&format!("{REPO}/notablob.txt"));
    std::fs::rename(&blob, &moved).unwrap();
    let w = std::fs::OpenOptions::new().write(true).open(&moved);
    let st = m.status();
    if st["mode"] == "passthrough" {
        assert_eq!(w.unwrap_err().raw_os_error(), Some(libc::ETXTBSY));
    } else {
        drop(w.unwrap());
    }
    drop(reader);
    let mut w = std::fs::OpenOptions::new()
        .append(true)
        .open(&moved)
        .unwrap();
    use std::io::Write;
    w.write_all(b"!").unwrap();
    drop(w);
    let mut want = content(2, 200_000);
    want.push(b'!');
    assert_eq!(std::fs::read(&moved).unwrap(), want);

    // A small blob's reader holds the page cache, never passthrough: a writer of the file
    // moved out of blobs/ shares that mode instead of being refused.
    let small = m.path(&format!("{REPO}/blobs/{}", harness::sha1ish(3)));
    let reader = std::fs::File::open(&small).unwrap();
    let moved = m.path(&format!("{REPO}/small.txt"));
    std::fs::rename(&small, &moved).unwrap();
    let mut w = std::fs::OpenOptions::new()
        .append(true)
        .open(&moved)
        .unwrap();
    w.write_all(b"?").unwrap();
    drop(w);
    drop(reader);
    let mut want = content(3, 10);
    want.push(b'?');
    assert_eq!(std::fs::read(&moved).unwrap(), want);
}

/// Drops the kernel's pages of the file at `p`, if it opens.
fn drop_pages(p: &std::path::Path) {
    use std::os::fd::AsRawFd;
    if let Ok(f) = std::fs::File::open(p) {
        // SAFETY: fadvise on a descriptor we own.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
}

/// A fixed name (a snapshot entry of a blob) is kept by the kernel until an access that needs
/// the store shows it gone; never wrong bytes; new names elsewhere appear at once. With and
/// without passthrough (without it, opens of blobs wait for a read that needs the store).
#[test]
fn fixed_names_are_kept_until_an_access_shows_them_gone() {
    for opts in ["ro", "ro,nopassthrough"] {
        let store = Store::hub();
        let m = Mount::new(store.root(), opts);
        let rel = format!("{REPO}/snapshots/{C1}/model.safetensors");
        let want = content(2, 200_000);
        assert_eq!(std::fs::read(m.path(&rel)).unwrap(), want);
        // Deleted on another machine: the name and its blob.
        std::fs::remove_file(store.p(&rel)).unwrap();
        std::fs::remove_file(store.p(&format!("{REPO}/blobs/{}", sha256ish(2)))).unwrap();
        // Past entry_timeout, when a mutable name would be looked up again.
        std::thread::sleep(Duration::from_millis(1500));
        // Bytes the kernel still holds may be served (they cannot be wrong)...
        if let Ok(bytes) = std::fs::read(m.path(&rel)) {
            assert_eq!(bytes, want, "{opts}");
        }
        // ... a read that needs the store fails, and from the next open on the name is gone.
        drop_pages(&m.path(&rel));
        assert!(std::fs::read(m.path(&rel)).is_err(), "{opts}");
        let err = std::fs::read(m.path(&rel)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{opts}: {err}");
        assert!(std::fs::metadata(m.path(&rel)).is_err(), "{opts}");
        // A file downloaded elsewhere appears at once: no negative lookup is kept.
        let new = format!("{REPO}/snapshots/{C1}/new.txt");
        assert!(std::fs::metadata(m.path(&new)).is_err());
        std::fs::write(store.p(&new), b"new").unwrap();
        assert_eq!(std::fs::read(m.path(&new)).unwrap(), b"new", "{opts}");
    }
}

/// Without passthrough, a warm reader of a blob never opens the store file: the bytes come
/// from the kernel's cache, so its open and close touch no store (on a network store, no
/// round trip). Shown by removing the store file, which an open of it would find gone.
#[test]
fn warm_readers_of_blobs_leave_the_store_alone() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro,nopassthrough");
    let rel = format!("{REPO}/snapshots/{C1}/model.safetensors");
    let want = content(2, 200_000);
    assert_eq!(std::fs::read(m.path(&rel)).unwrap(), want);
    std::fs::remove_file(store.p(&rel)).unwrap();
    std::fs::remove_file(store.p(&format!("{REPO}/blobs/{}", sha256ish(2)))).unwrap();
    for _ in 0..10 {
        assert_eq!(std::fs::read(m.path(&rel)).unwrap(), want);
    }
}

/// Opening and closing a blob whose name the kernel holds costs OPEN and RELEASE only: no
/// LOOKUP (the name is fixed), no GETATTR (attributes kept), no FLUSH (a reader has nothing
/// to flush).
#[test]
fn reopening_a_blob_costs_two_requests() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro,nopassthrough");
    let p = m.path(&format!("{REPO}/snapshots/{C1}/model.safetensors"));
    assert_eq!(std::fs::read(&p).unwrap().len(), 200_000);
    let requests = || m.status()["requests"].as_u64().unwrap();
    let before = requests();
    for _ in 0..20 {
        drop(std::fs::File::open(&p).unwrap());
    }
    let spent = requests() - before;
    // 2 per open, and some for the status probes of the mountpoint and the kernel's own
    // asides; a FLUSH or a LOOKUP per open would add 20.
    assert!(spent <= 2 * 20 + 10, "{spent} requests for 20 opens");
}

/// Removes, directly in the store, every snapshot link of the test repo whose text ends with
/// `blob`.
fn drop_links_to(store: &Store, blob: &str) {
    fn walk(dir: &std::path::Path, blob: &str) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk(&p, blob);
            } else if ft.is_symlink()
                && std::fs::read_link(&p)
                    .unwrap()
                    .to_string_lossy()
                    .ends_with(blob)
            {
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
    walk(&store.p(&format!("{REPO}/snapshots")), blob);
}
