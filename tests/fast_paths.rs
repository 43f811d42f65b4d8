//! Correctness of the fast paths: kernel passthrough (open, read, mmap), the userspace path
//! with the page cache kept for immutable blobs, and status counters that tell them apart.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{C1, C2, Mount, REPO, Store, content, sha256ish};

fn read_all_ways(m: &Mount) {
    let p = m.path(&format!("{REPO}/snapshots/{C1}/model.safetensors"));
    let want = content(2, 200_000);
    assert_eq!(std::fs::read(&p).unwrap(), want);
    let f = std::fs::File::open(&p).unwrap();
    // SAFETY: the file is not modified while mapped.
    let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
    assert_eq!(&map[..], &want[..]);
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 4096];
    f.read_exact_at(&mut buf, 150_000).unwrap();
    assert_eq!(&buf[..], &want[150_000..154_096]);
    // The shared-store chain too.
    let s = m.path(&format!("{REPO}/snapshots/{C2}/shared.bin"));
    assert_eq!(std::fs::read(s).unwrap(), content(9, 5000));
}

#[test]
fn passthrough_serves_blob_reads_in_the_kernel() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro");
    read_all_ways(&m);
    let st = m.status();
    assert_eq!(st["mode"], "passthrough", "{st}");
    assert!(st["passthrough_opens"].as_u64().unwrap() >= 2, "{st}");
    assert_eq!(
        st["bytes_read"], 0,
        "blob bytes must not pass through userspace: {st}"
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
    let m = Mount::new(store.root(), "");
    let blob = m.path(&format!("{REPO}/blobs/{}", harness::sha1ish(3)));
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
    let mut want = content(3, 10);
    want.push(b'!');
    assert_eq!(std::fs::read(&moved).unwrap(), want);
}

/// A fixed name (a snapshot entry of a blob) is kept by the kernel until an access shows it
/// gone; new names elsewhere appear at once.
#[test]
fn fixed_names_are_kept_until_an_open_shows_them_gone() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro");
    let rel = format!("{REPO}/snapshots/{C1}/model.safetensors");
    assert_eq!(std::fs::read(m.path(&rel)).unwrap(), content(2, 200_000));
    // Deleted on another machine: the name and its blob.
    std::fs::remove_file(store.p(&rel)).unwrap();
    std::fs::remove_file(store.p(&format!("{REPO}/blobs/{}", sha256ish(2)))).unwrap();
    // Past entry_timeout, when a mutable name would be looked up again.
    std::thread::sleep(Duration::from_millis(1500));
    // The open finds it gone (ESTALE inside, the kernel looks again) and so does all after it.
    let err = std::fs::read(m.path(&rel)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    assert!(std::fs::metadata(m.path(&rel)).is_err());
    // A file downloaded elsewhere appears at once: no negative lookup is kept.
    let new = format!("{REPO}/snapshots/{C1}/new.txt");
    assert!(std::fs::metadata(m.path(&new)).is_err());
    std::fs::write(store.p(&new), b"new").unwrap();
    assert_eq!(std::fs::read(m.path(&new)).unwrap(), b"new");
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
    // 2 per open, and a few for the status probe of the mountpoint.
    assert!(spent <= 2 * 20 + 4, "{spent} requests for 20 opens");
}
