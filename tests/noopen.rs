//! Zero-message opens (`-o ro,noopen`): the kernel opens files without asking the daemon and
//! keeps their pages; reads that need bytes open the store file themselves. What a client
//! observes: the same bytes, no request for a warm open, read and close, mutable files that
//! follow the store within `attr_timeout`, and a blob gone from the store failing the read that
//! needs it, never other bytes.

#![cfg(target_os = "linux")]

#[path = "support/harness.rs"]
mod harness;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use harness::{C1, C2, Mount, REPO, Store, content, read_all_ways, sha256ish};

fn requests(m: &Mount) -> u64 {
    m.status()["requests"].as_u64().unwrap()
}

/// Every way of reading gives the blob's bytes, and once the kernel holds them a reader's
/// open, read and close cost no request at all (a default mount costs OPEN and RELEASE).
#[test]
fn warm_opens_reads_and_closes_cost_no_request() {
    let store = Store::hub();
    // Directories' names are kept a minute here, so that a slow run does not look them up
    // again: what is counted is the files' opens, reads and closes.
    let m = Mount::new(store.root(), "ro,noopen,entry_timeout=60,attr_timeout=60");
    let p = m.path(&format!("{REPO}/snapshots/{C1}/model.safetensors"));
    let want = content(2, 200_000);
    read_all_ways(&m);
    let shared = m.path(&format!("{REPO}/snapshots/{C2}/shared.bin"));
    let st = m.status();
    assert_eq!(st["mode"], "userspace", "{st}");
    assert!(
        m.log_text()
            .contains("noopen: files are opened without a request"),
        "{}",
        m.log_text()
    );

    let before = requests(&m);
    for _ in 0..20 {
        let mut f = std::fs::File::open(&p).unwrap();
        let mut got = Vec::new();
        f.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), want.len());
        assert_eq!(std::fs::read(&shared).unwrap(), content(9, 5000));
    }
    // `status` probes the mountpoint (a STATFS or two); a request per open, read or close of
    // the 40 files read would add at least 40.
    let spent = requests(&m) - before;
    assert!(
        spent <= 3,
        "{spent} requests for 40 warm reads: {}",
        m.status()
    );
}

/// The kernel keeps every file's pages across opens on a `noopen` mount, also a mutable
/// file's: a ref rewritten by another machine (same length, as commit hashes are) is read
/// anew once its attributes expire and show the change.
#[test]
fn a_rewritten_ref_is_read_anew_within_attr_timeout() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro,noopen");
    let rel = format!("{REPO}/refs/main");
    assert_eq!(std::fs::read(m.path(&rel)).unwrap(), C2.as_bytes());
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(store.p(&rel), C1).unwrap();
    // Past attr_timeout (1 s).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        String::from_utf8(std::fs::read(m.path(&rel)).unwrap()).unwrap(),
        C1
    );
}

/// A blob deleted by another machine: bytes the kernel still holds may be served (they are
/// the blob's own); a read that needs the store fails; no name shows other bytes.
#[test]
fn a_blob_gone_from_the_store_fails_the_read_that_needs_it() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro,noopen");
    let rel = format!("{REPO}/snapshots/{C1}/model.safetensors");
    let want = content(2, 200_000);
    assert_eq!(std::fs::read(m.path(&rel)).unwrap(), want);
    std::fs::remove_file(store.p(&rel)).unwrap();
    std::fs::remove_file(store.p(&format!("{REPO}/blobs/{}", sha256ish(2)))).unwrap();
    if let Ok(bytes) = std::fs::read(m.path(&rel)) {
        assert_eq!(bytes, want);
    }
    // The daemon keeps a blob's store file for a second after its last read (the reads of
    // one stream share it); past that, and with the kernel's copy dropped, the next read
    // needs the store.
    std::thread::sleep(Duration::from_millis(1200));
    let f = std::fs::File::open(m.path(&rel)).unwrap();
    // SAFETY: fadvise on a descriptor we own.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    let mut buf = [0u8; 4096];
    let err = f.read_exact_at(&mut buf, 0).unwrap_err();
    assert!(
        matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ESTALE)),
        "{err}"
    );
}

/// Locks on a `noopen` mount are kept by the kernel: they exclude processes on this machine
/// (there is no close the daemon could release a store lock at).
#[test]
fn locks_exclude_processes_on_this_machine() {
    let store = Store::hub();
    let m = Mount::new(store.root(), "ro,noopen");
    let p = m.path(&format!("{REPO}/snapshots/{C1}/model.safetensors"));
    let a = std::fs::File::open(&p).unwrap();
    let b = std::fs::File::open(&p).unwrap();
    // SAFETY: flock on descriptors we own.
    unsafe {
        assert_eq!(libc::flock(a.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB), 0);
        assert_eq!(
            libc::flock(b.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB),
            -1
        );
    }
    drop(a);
    // The first holder's close released it.
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::flock(b.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
}
