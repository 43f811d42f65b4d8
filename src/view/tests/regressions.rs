//! Regressions: bugs found by these tests, each kept with the test that found it.

use super::*;

#[test]
fn symlink_to_an_ancestor_directory_is_refused() {
    let h = hub();
    let s = h.snap_ino();
    // `symlink()` promises to refuse a link the view would hide; a link to an ancestor is
    // hidden (the lookup below says "not found"), so creating it must fail and leave nothing.
    let got = h
        .view
        .symlink(s, os("up2"), Path::new(".."), Caller::default());
    let looked = h.view.lookup(s, os("up2"));
    assert!(matches!(looked, Err(FsError::NotFound)), "{looked:?}");
    assert!(got.is_err(), "created a link the view hides: {got:?}");
    assert!(!h.exists(&format!("{}/up2", snap_path())));
}

#[test]
fn mkdir_over_a_hidden_ancestor_link_replaces_it() {
    let h = hub();
    let s = h.snap_ino();
    assert!(matches!(h.view.lookup(s, os("up")), Err(FsError::NotFound)));
    let got = h.view.mkdir(s, os("up"), 0o755, 0, Caller::default());
    assert!(
        got.is_ok(),
        "lookup says `up` does not exist, mkdir says: {got:?}"
    );
    assert!(
        std::fs::symlink_metadata(h.path(&format!("{}/up", snap_path())))
            .unwrap()
            .is_dir()
    );
}

#[test]
fn create_over_a_hidden_ancestor_link_replaces_it() {
    let h = hub_keeping_copies();
    let s = h.snap_ino();
    let got = h.create(s, "up");
    let (entry, opened) = got.expect("lookup says `up` does not exist");
    h.view.release(opened.fh, None);
    assert_eq!(entry.attr.kind, AttrKind::File);
    assert!(
        std::fs::symlink_metadata(h.path(&format!("{}/up", snap_path())))
            .unwrap()
            .is_file()
    );
}

#[test]
fn create_over_a_hidden_fifo_is_exists() {
    let h = hub();
    let s = h.snap_ino();
    let got = h.create(s, "fifo");
    assert!(matches!(got, Err(FsError::Exists)), "{:?}", got.map(drop));
    let meta = std::fs::symlink_metadata(h.path(&format!("{}/fifo", snap_path()))).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()));
}

#[test]
fn writability_of_a_file_does_not_depend_on_lookup_history() {
    let h = hub();
    symlink("CACHEDIR.TAG", h.path("tag-link")).unwrap();
    let tag = h.ino("CACHEDIR.TAG");
    let open_for_write = || match h.view.open(tag, OpenFlags::from_raw(libc::O_WRONLY)) {
        Ok(o) => {
            h.view.release(o.fh, None);
            Ok(())
        }
        Err(e) => Err(e.errno()),
    };
    let before = open_for_write();
    assert_eq!(h.ino("tag-link"), tag, "both names share the inode");
    let after = open_for_write();
    assert_eq!(
        before, after,
        "looking up another name changed what `open` allows"
    );
}

#[test]
fn a_blob_cannot_be_written_through_a_hard_link() {
    let h = hub();
    let config = h.ino(&format!("{}/config.json", snap_path()));
    let linked = h.view.link(config, ROOT_INO, os("copy"));
    if linked.is_ok() {
        // The kernel forgets the inode; later the new name is looked up on its own.
        h.view.forget(config, 2);
        let copy = h.ino("copy");
        if let Ok(o) = h.view.open(copy, OpenFlags::from_raw(libc::O_WRONLY)) {
            let _ = h.view.write(o.fh, 0, b"XX");
            h.view.release(o.fh, None);
        }
    }
    assert_eq!(
        std::fs::read(h.path(&format!("{REPO}/blobs/{E40}"))).unwrap(),
        CONFIG,
        "the blob shared by every snapshot was modified through the view"
    );
}

#[test]
fn hard_linked_file_survives_unlink_of_its_other_name() {
    let h = hub();
    let tag = h.ino("CACHEDIR.TAG");
    h.view.link(tag, ROOT_INO, os("hard")).unwrap();
    h.view.unlink(ROOT_INO, os("hard")).unwrap();
    // `ln a b; rm b; stat a`: the kernel still holds `a`'s dentry and asks for its inode.
    let got = h.view.getattr(tag, None);
    assert!(got.is_ok(), "{got:?}");
    let h2 = h.view.open(tag, OpenFlags::from_raw(libc::O_RDONLY));
    assert!(h2.is_ok(), "{h2:?}");
}

#[test]
fn rename_exchange_of_links_across_directories_is_refused_and_changes_nothing() {
    let h = hub();
    let s = h.snap_ino();
    let deep = h.ino(&format!("{}/sub/deep", snap_path()));
    let weights_ino = h.ino(&format!("{REPO}/blobs/{H64}"));
    let r = h.view.rename(
        s,
        os("model.safetensors"),
        deep,
        os("tok.json"),
        libc::RENAME_EXCHANGE,
    );
    assert!(matches!(r, Err(FsError::Invalid)), "{r:?}");
    let top = h.view.lookup(s, os("model.safetensors"));
    assert_eq!(top.map(|e| e.attr.ino).ok(), Some(weights_ino));
    assert!(h.view.lookup(deep, os("tok.json")).is_ok());
}

// ---- Copies written into snapshots become links (`view::copies`) ----

/// A second repo for the copy tests, whose blob names are their contents' digests.
const CREPO: &str = "models--acme--copies";
const C1: &str = "1111111111111111111111111111111111111111";
const C0: &str = "0000000000000000000000000000000000000000";

fn git_sha1(data: &[u8]) -> String {
    crate::hub::hash::digest_bytes(data).git_sha1.unwrap()
}

fn sha256(data: &[u8]) -> String {
    crate::hub::hash::digest_bytes(data).sha256.unwrap()
}

/// `CREPO` with `blobs/<git sha1 of A>` = A and empty snapshots `C0`, `C1/nested`.
fn copies_hub(config: ViewConfig) -> (Hub, Vec<u8>) {
    let h = hub_with(config);
    let a: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::create_dir_all(h.path(&format!("{CREPO}/blobs"))).unwrap();
    std::fs::create_dir_all(h.path(&format!("{CREPO}/snapshots/{C1}/nested"))).unwrap();
    std::fs::create_dir_all(h.path(&format!("{CREPO}/snapshots/{C0}"))).unwrap();
    std::fs::write(h.path(&format!("{CREPO}/blobs/{}", git_sha1(&a))), &a).unwrap();
    (h, a)
}

impl Hub {
    /// Creates `name` in view directory `dir` and writes `chunks` at their offsets through one
    /// handle; returns the handle (not yet released).
    fn write_open(&self, dir: Ino, name: &str, chunks: &[(u64, &[u8])]) -> Fh {
        let (_, o) = self
            .view
            .create(
                dir,
                os(name),
                0o644,
                0o022,
                OpenFlags::from_raw(libc::O_WRONLY | libc::O_EXCL),
                caller(),
            )
            .unwrap();
        for (off, data) in chunks {
            self.view.write(o.fh, *off, data).unwrap();
        }
        o.fh
    }

    fn is_link(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.path(rel))
            .unwrap()
            .is_symlink()
    }

    fn counters(&self) -> (u64, u64) {
        let c = self.view.dedupe_counters();
        (
            c.linked.load(std::sync::atomic::Ordering::Relaxed),
            c.bytes_saved.load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

fn caller() -> Caller {
    Caller {
        uid: 0,
        gid: 0,
        pid: 0,
    }
}

#[test]
fn a_copy_of_a_blob_becomes_a_link_to_it_when_closed() {
    let (h, a) = copies_hub(ViewConfig::default());
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let entry = format!("{CREPO}/snapshots/{C1}/a.bin");
    let fh = h.write_open(snap, "a.bin", &[(0, &a[..40_000]), (40_000, &a[40_000..])]);
    assert!(!h.is_link(&entry), "converted before it was closed");
    // A reader holding the copy open keeps its bytes across the replacement.
    let reader = h
        .view
        .open(h.ino(&entry), OpenFlags::from_raw(libc::O_RDONLY))
        .unwrap();
    h.view.release(fh, None);
    assert!(h.is_link(&entry));
    assert_eq!(h.view.read(reader.fh, 0, 1 << 20).unwrap(), a);
    h.view.release(reader.fh, None);
    assert_eq!(
        h.link_text(&entry),
        PathBuf::from(format!("../../blobs/{}", git_sha1(&a)))
    );
    assert_eq!(h.counters(), (1, a.len() as u64));
    assert_eq!(h.read_all(h.ino(&entry)), a);
    // The blob is untouched and still the only file with the content.
    let blobs: Vec<_> = std::fs::read_dir(h.path(&format!("{CREPO}/blobs")))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(blobs, vec![OsString::from(git_sha1(&a))]);
}

#[test]
fn new_content_becomes_the_blob_the_hub_would_name() {
    let (h, _) = copies_hub(ViewConfig::default());
    let nested = h.ino(&format!("{CREPO}/snapshots/{C1}/nested"));
    let b = b"new small content\n".to_vec();
    let fh = h.write_open(nested, "b.txt", &[(0, &b)]);
    h.view.release(fh, None);
    let entry = format!("{CREPO}/snapshots/{C1}/nested/b.txt");
    // Small and no other rule: the git blob sha1, one more ../ for the sub-directory.
    assert_eq!(
        h.link_text(&entry),
        PathBuf::from(format!("../../../blobs/{}", git_sha1(&b)))
    );
    let blob = format!("{CREPO}/blobs/{}", git_sha1(&b));
    assert!(std::fs::symlink_metadata(h.path(&blob)).unwrap().is_file());
    assert_eq!(std::fs::read(h.path(&blob)).unwrap(), b);
    assert_eq!(h.counters(), (1, 0));
    // It is a blob now: immutable through the view, also through the inode the writer had.
    let ino = h.ino(&entry);
    assert!(matches!(
        h.view.open(ino, OpenFlags::from_raw(libc::O_WRONLY)),
        Err(FsError::NotPermitted(_))
    ));
    // trees/<commit>.json names the path by its sha256: that is the name.
    let tree = format!(
        "{{\"files\": {{\"c.txt\": {{\"blob_id\": \"{}\", \"lfs_sha256\": \"{}\"}}}}}}",
        git_sha1(b"c"),
        sha256(b"c")
    );
    std::fs::create_dir_all(h.path(&format!("{CREPO}/trees"))).unwrap();
    std::fs::write(h.path(&format!("{CREPO}/trees/{C1}.json")), tree).unwrap();
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let fh = h.write_open(snap, "c.txt", &[(0, b"c")]);
    h.view.release(fh, None);
    assert_eq!(
        h.link_text(&format!("{CREPO}/snapshots/{C1}/c.txt")),
        PathBuf::from(format!("../../blobs/{}", sha256(b"c")))
    );
    // Content that does not match the etag trees/ lists stays a copy.
    let bad = format!(
        "{{\"files\": {{\"d.txt\": {{\"blob_id\": \"{}\"}}}}}}",
        git_sha1(b"something else")
    );
    std::fs::write(h.path(&format!("{CREPO}/trees/{C1}.json")), bad).unwrap();
    let fh = h.write_open(snap, "d.txt", &[(0, b"d")]);
    h.view.release(fh, None);
    let d = format!("{CREPO}/snapshots/{C1}/d.txt");
    assert!(!h.is_link(&d));
    assert_eq!(std::fs::read(h.path(&d)).unwrap(), b"d");
}

#[test]
fn the_same_path_in_another_revision_decides_the_name_kind() {
    let (h, _) = copies_hub(ViewConfig::default());
    let e = b"small, but named by sha256 in the other revision".to_vec();
    let other = format!("{CREPO}/blobs/{}", sha256(b"older"));
    std::fs::write(h.path(&other), b"older").unwrap();
    symlink(
        format!("../../blobs/{}", sha256(b"older")),
        h.path(&format!("{CREPO}/snapshots/{C0}/e.bin")),
    )
    .unwrap();
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let fh = h.write_open(snap, "e.bin", &[(0, &e)]);
    h.view.release(fh, None);
    assert_eq!(
        h.link_text(&format!("{CREPO}/snapshots/{C1}/e.bin")),
        PathBuf::from(format!("../../blobs/{}", sha256(&e)))
    );
}

#[test]
fn a_blob_renamed_into_snapshots_is_stored_as_a_link_and_stays() {
    let (h, _) = copies_hub(ViewConfig::default());
    let c = b"downloaded blob".to_vec();
    let name = git_sha1(&c);
    let blobs = h.ino(&format!("{CREPO}/blobs"));
    let fh = h.write_open(blobs, &format!("{name}.incomplete"), &[(0, &c)]);
    h.view.release(fh, None);
    h.view
        .rename(
            blobs,
            os(&format!("{name}.incomplete")),
            blobs,
            os(&name),
            0,
        )
        .unwrap();
    let blob_ino = h.ino(&format!("{CREPO}/blobs/{name}"));
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    h.view
        .rename(blobs, os(&name), snap, os("c.txt"), 0)
        .unwrap();
    let entry = format!("{CREPO}/snapshots/{C1}/c.txt");
    assert_eq!(
        h.link_text(&entry),
        PathBuf::from(format!("../../blobs/{name}"))
    );
    // The old name still shows the blob: one inode under both names, as with a hard link.
    assert_eq!(h.ino(&entry), blob_ino);
    assert_eq!(h.read_all(h.ino(&format!("{CREPO}/blobs/{name}"))), c);
    assert_eq!(h.counters(), (1, 0));
    // A rename with RENAME_NOREPLACE over an existing entry still fails.
    let e = h
        .view
        .rename(blobs, os(&name), snap, os("c.txt"), libc::RENAME_NOREPLACE)
        .unwrap_err();
    assert_eq!(e.errno(), libc::EEXIST);
}

#[test]
fn a_file_is_converted_only_when_its_last_writer_closes() {
    let (h, a) = copies_hub(ViewConfig::default());
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let entry = format!("{CREPO}/snapshots/{C1}/a.bin");
    let first = h.write_open(snap, "a.bin", &[(0, &a[..1000])]);
    let ino = h.ino(&entry);
    let second = h
        .view
        .open(ino, OpenFlags::from_raw(libc::O_WRONLY))
        .unwrap();
    h.view.write(second.fh, 1000, &a[1000..]).unwrap();
    h.view.release(first, None);
    assert!(
        !h.is_link(&entry),
        "converted while another handle writes it"
    );
    h.view.release(second.fh, None);
    assert!(h.is_link(&entry));
}

#[test]
fn out_of_order_writes_are_hashed_by_reading_the_file() {
    let (h, a) = copies_hub(ViewConfig::default());
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let fh = h.write_open(snap, "a.bin", &[(50_000, &a[50_000..]), (0, &a[..50_000])]);
    h.view.release(fh, None);
    let entry = format!("{CREPO}/snapshots/{C1}/a.bin");
    assert_eq!(
        h.link_text(&entry),
        PathBuf::from(format!("../../blobs/{}", git_sha1(&a)))
    );
    // Bytes that differ from every blob by one byte become a blob of their own.
    let mut other = a.clone();
    other[69_999] ^= 1;
    let fh = h.write_open(snap, "other.bin", &[(0, &other)]);
    h.view.release(fh, None);
    assert_eq!(
        h.link_text(&format!("{CREPO}/snapshots/{C1}/other.bin")),
        PathBuf::from(format!("../../blobs/{}", git_sha1(&other)))
    );
}

#[test]
fn a_complete_file_renamed_into_a_snapshot_becomes_a_link() {
    let (h, a) = copies_hub(ViewConfig::default());
    let repo = h.ino(CREPO);
    let fh = h.write_open(repo, "upload.tmp", &[(0, &a)]);
    h.view.release(fh, None);
    assert!(!h.is_link(&format!("{CREPO}/upload.tmp")));
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    h.view
        .rename(repo, os("upload.tmp"), snap, os("a.bin"), 0)
        .unwrap();
    assert!(h.is_link(&format!("{CREPO}/snapshots/{C1}/a.bin")));
    assert_eq!(h.counters(), (1, a.len() as u64));
}

#[test]
fn nodedupe_keeps_copies_as_written() {
    let (h, a) = copies_hub(ViewConfig {
        dedupe: false,
        ..ViewConfig::default()
    });
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let fh = h.write_open(snap, "a.bin", &[(0, &a)]);
    h.view.release(fh, None);
    assert!(!h.is_link(&format!("{CREPO}/snapshots/{C1}/a.bin")));
    let c = b"x".to_vec();
    let blobs = h.ino(&format!("{CREPO}/blobs"));
    let fh = h.write_open(blobs, &git_sha1(&c), &[(0, &c)]);
    h.view.release(fh, None);
    h.view
        .rename(blobs, os(&git_sha1(&c)), snap, os("c.txt"), 0)
        .unwrap();
    assert!(!h.is_link(&format!("{CREPO}/snapshots/{C1}/c.txt")));
    assert!(!h.exists(&format!("{CREPO}/blobs/{}", git_sha1(&c))));
    assert_eq!(h.counters(), (0, 0));
}

#[test]
fn a_copy_that_already_is_a_blob_file_becomes_a_link_to_that_blob() {
    let (h, _) = copies_hub(ViewConfig::default());
    // An interrupted conversion: the file is already hard-linked into blobs/.
    let x = b"half-way converted".to_vec();
    std::fs::write(h.path(&format!("{CREPO}/x.tmp")), &x).unwrap();
    std::fs::hard_link(
        h.path(&format!("{CREPO}/x.tmp")),
        h.path(&format!("{CREPO}/blobs/{}", git_sha1(&x))),
    )
    .unwrap();
    let repo = h.ino(CREPO);
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    h.view
        .rename(repo, os("x.tmp"), snap, os("x.bin"), 0)
        .unwrap();
    assert_eq!(
        h.link_text(&format!("{CREPO}/snapshots/{C1}/x.bin")),
        PathBuf::from(format!("../../blobs/{}", git_sha1(&x)))
    );
    assert_eq!(h.counters(), (1, 0));
}

#[test]
fn a_blob_that_links_into_the_shared_store_is_compared_byte_for_byte() {
    let (h, _) = copies_hub(ViewConfig::default());
    let p = b"payload of the shared store".to_vec();
    let q = b"what the name promises".to_vec();
    std::fs::create_dir_all(h.path("blobs/cd")).unwrap();
    // A good repo blob link, and one whose payload does not hold what its name says.
    for (content, payload) in [(&p, &p), (&q, &b"other bytes".to_vec())] {
        let x = format!("cd{}", &sha256(payload)[2..]);
        std::fs::write(h.path(&format!("blobs/cd/{x}")), payload).unwrap();
        symlink(
            format!("../../blobs/cd/{x}"),
            h.path(&format!("{CREPO}/blobs/{}", sha256(content))),
        )
        .unwrap();
    }
    // The digests decide which blob; sizes must match, so pad q's payload to q's length.
    let x = format!("cd{}", &sha256(b"other bytes")[2..]);
    let padded: Vec<u8> = b"other bytes"
        .iter()
        .copied()
        .cycle()
        .take(q.len())
        .collect();
    std::fs::write(h.path(&format!("blobs/cd/{x}")), &padded).unwrap();
    let snap = h.ino(&format!("{CREPO}/snapshots/{C1}"));
    let fh = h.write_open(snap, "p.bin", &[(0, &p)]);
    h.view.release(fh, None);
    assert_eq!(
        h.link_text(&format!("{CREPO}/snapshots/{C1}/p.bin")),
        PathBuf::from(format!("../../blobs/{}", sha256(&p)))
    );
    let fh = h.write_open(snap, "q.bin", &[(0, &q)]);
    h.view.release(fh, None);
    let qe = format!("{CREPO}/snapshots/{C1}/q.bin");
    assert!(!h.is_link(&qe), "linked to a blob with other bytes");
    assert_eq!(std::fs::read(h.path(&qe)).unwrap(), q);
}

/// A failed request names its object by the store path the inode reads (for a snapshot name,
/// the blob behind it), while the kernel holds the inode; `fs_error!` asks for it only when
/// the message is logged.
#[test]
fn failures_name_the_store_path_of_their_inode() {
    let h = hub();
    let s = snap_path();
    let config = h.ino(&format!("{s}/config.json"));
    let path = h.view.store_path(config).map(|p| p.to_string());
    assert_eq!(path, Some(format!("/{REPO}/blobs/{E40}")));
    let mut e = FsError::Stale.during("getattr", config);
    crate::fs_error!(&h.view, &mut e);
    assert_eq!(e.errno(), libc::ESTALE);
    h.view.forget(config, h.lookups(config));
    assert_eq!(h.view.store_path(config), None);
}

/// A symlink whose target leads back into a directory above it is `ELOOP`, as on Linux.
#[test]
fn a_symlink_into_a_loop_is_eloop() {
    let h = hub();
    let snap = h.ino(&snap_path());
    let sub = h.view.lookup(snap, os("sub")).unwrap().attr.ino;
    let got = h
        .view
        .symlink(sub, os("again"), Path::new(".."), Caller::default());
    assert!(matches!(got, Err(FsError::Loop)), "{got:?}");
    assert_eq!(FsError::Loop.errno(), libc::ELOOP);
}
