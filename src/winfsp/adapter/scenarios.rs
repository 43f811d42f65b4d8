//! What Windows clients do to a hub cache, replayed through the WinFsp host harness
//! ([`super::harness`]) over a real store, each checked on disk afterwards.
//!
//! Stores are built the way they reach Windows: written by Windows clients (plain files,
//! copies), or by Linux machines (links; here XSym files, the link form the Windows store
//! layer reads and wine can hold). Each rule of `docs/WINDOWS.md` names the test here that
//! shows it.

use super::harness::*;
use winfsp::filesystem::FileSystemContext as _;

const REPO: &str = "models--org--model";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const ETAG: &str = "57b91535f7cc552c96df8e57bb8fba2167e2ce038a6e6b817e12e791d1235d48";

fn blob(etag: &str) -> String {
    format!("{REPO}/blobs/{etag}")
}

fn snap(path: &str) -> String {
    format!("{REPO}/snapshots/{COMMIT}/{path}")
}

/// A repository as a Linux machine leaves it: blob, snapshot link, ref.
fn linux_store() -> Host {
    let h = Host::new();
    h.put(&blob(ETAG), b"{\"model_type\": \"bert\"}");
    h.put_link(&snap("config.json"), &format!("../../blobs/{ETAG}"));
    h.put(&format!("{REPO}/refs/main"), COMMIT.as_bytes());
    h
}

/// `os.makedirs`: each missing directory created with `FILE_CREATE | FILE_DIRECTORY_FILE`.
fn makedirs(h: &Host, path: &str) {
    let mut cur = String::new();
    for part in path.split('/') {
        cur = if cur.is_empty() {
            part.to_string()
        } else {
            format!("{cur}/{part}")
        };
        match h.create(&cur, true) {
            Ok(o) => h.close(o),
            Err(STATUS_OBJECT_NAME_COLLISION) => {}
            Err(e) => panic!("mkdir {cur}: {e:#x}"),
        }
    }
}

/// huggingface_hub's download on Windows without symlink rights: `.incomplete` written and
/// renamed into `blobs/`, the symlink refused (by the system, before the volume), the new
/// blob moved into `snapshots/`; a second file that is already cached is copied.
#[test]
fn hub_download_without_symlink_rights() {
    let h = linux_store();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let etag = "e".repeat(64);
    makedirs(&h, &format!("{REPO}/blobs"));
    let incomplete = format!("{}.incomplete", blob(&etag));
    h.write_new(&incomplete, &data).expect("write .incomplete");
    h.rename(&incomplete, &blob(&etag), false)
        .expect("rename into blobs/");
    makedirs(&h, &format!("{REPO}/snapshots/{COMMIT}"));
    // No symlink rights: `_create_symlink` falls back to moving the new blob.
    h.rename(&blob(&etag), &snap("model.safetensors"), false)
        .expect("move the new blob into snapshots/");
    // An already cached file: copied from its blob (`shutil.copyfile`).
    let cfg = h.read_all(&blob(ETAG)).expect("read cached blob");
    h.write_always(&snap("config2.json"), &cfg)
        .expect("copy into snapshots/");

    // The store ends as a symlinking client would have left it (docs/SEMANTICS.md, "Copies
    // become links"): the moved blob stays and its new name is a link to it; the copy of a
    // cached file is a link to the blob it copied.
    assert_eq!(
        h.link_text(&snap("model.safetensors")),
        Some(format!("../../blobs/{etag}"))
    );
    assert_eq!(std::fs::read(h.disk(&blob(&etag))).unwrap(), data);
    assert!(!h.disk(&incomplete).exists());
    assert_eq!(
        h.link_text(&snap("config2.json")),
        Some(format!("../../blobs/{ETAG}"))
    );
    // The client reads its files back.
    assert_eq!(h.read_all(&snap("model.safetensors")).unwrap(), data);
    assert_eq!(h.read_all(&snap("config2.json")).unwrap(), cfg);
    // The Linux link and its blob are untouched.
    assert_eq!(
        h.read_all(&snap("config.json")).unwrap(),
        b"{\"model_type\": \"bert\"}"
    );
    assert!(h.disk(&blob(ETAG)).exists());
}

/// `force_download=True` in a store Windows clients wrote (snapshot entries are copies):
/// the new `.incomplete` lands, the rename over the existing copy fails (`os.rename` never
/// replaces on Windows), and `shutil.move` copies over it and removes the source.
#[test]
fn force_download_over_a_windows_copy() {
    let h = Host::new();
    h.put(&snap("config.json"), b"old");
    makedirs(&h, &format!("{REPO}/blobs"));
    let incomplete = format!("{}.incomplete", blob(ETAG));
    h.write_new(&incomplete, b"new content").unwrap();
    h.rename(&incomplete, &blob(ETAG), false).unwrap();
    assert_eq!(
        h.rename(&blob(ETAG), &snap("config.json"), false),
        Err(STATUS_OBJECT_NAME_COLLISION)
    );
    let data = h.read_all(&blob(ETAG)).unwrap();
    h.write_always(&snap("config.json"), &data).unwrap();
    // The copy became a link to a blob of its content (a new one: the fake download's bytes
    // are not ETAG's), so `shutil.move` removing its source, the old blob, loses nothing.
    h.delete(&blob(ETAG), false).unwrap();
    assert_eq!(h.read_all(&snap("config.json")).unwrap(), b"new content");
    let on_disk = match h.link_text(&snap("config.json")) {
        Some(text) => std::fs::read(h.disk(&format!("{REPO}/snapshots/{COMMIT}/{text}"))).unwrap(),
        None => std::fs::read(h.disk(&snap("config.json"))).unwrap(),
    };
    assert_eq!(on_disk, b"new content");
}

/// `force_download=True` over a store a Linux machine wrote: the re-download must end with
/// one blob with the new bytes (Linux's rename replaces).
#[test]
fn force_download_over_a_linux_blob() {
    let h = linux_store();
    let incomplete = format!("{}.incomplete", blob(ETAG));
    h.write_new(&incomplete, b"{\"model_type\": \"bert\"}")
        .unwrap();
    // Readers of the old blob keep reading it while it is replaced.
    let reader = h
        .open(
            &snap("config.json"),
            FILE_NON_DIRECTORY_FILE,
            FILE_GENERIC_READ,
        )
        .unwrap();
    if h.rename(&incomplete, &blob(ETAG), false).is_err() {
        let data = h.read_all(&incomplete).unwrap();
        h.write_always(&blob(ETAG), &data)
            .expect("shutil.move's copy over the blob");
        h.delete(&incomplete, false).unwrap();
    }
    assert_eq!(
        h.read_ctx(&reader.ctx).unwrap(),
        b"{\"model_type\": \"bert\"}"
    );
    h.close(reader);
    assert!(!h.disk(&incomplete).exists());
    assert_eq!(
        std::fs::read(h.disk(&blob(ETAG))).unwrap(),
        b"{\"model_type\": \"bert\"}"
    );
    // One blob, and the snapshot still reaches it.
    let blobs = names(&h.list(&format!("{REPO}/blobs"), None, 4096).unwrap());
    assert_eq!(blobs, [ETAG]);
    assert_eq!(
        h.read_all(&snap("config.json")).unwrap(),
        b"{\"model_type\": \"bert\"}"
    );
}

/// Two machines download the same file: the second one's rename of its `.incomplete` onto
/// the blob the first one stored succeeds (on Linux it replaces; on Windows `os.rename`
/// asks not to), with no copy: the blob name never shows a half-written file. Anything
/// but a hub download keeps Windows' rule.
#[test]
fn second_download_of_a_blob_replaces_it() {
    let h = Host::new();
    makedirs(&h, &format!("{REPO}/blobs"));
    h.put(&blob(ETAG), b"same bytes");
    let incomplete = format!("{}.incomplete", blob(ETAG));
    h.write_new(&incomplete, b"same bytes").unwrap();
    h.rename(&incomplete, &blob(ETAG), false)
        .expect("the download's rename onto its blob");
    assert!(!h.disk(&incomplete).exists());
    assert_eq!(std::fs::read(h.disk(&blob(ETAG))).unwrap(), b"same bytes");
    // Not a download: another name onto the blob, or the temp file of another blob.
    h.write_new(&format!("{REPO}/blobs/other"), b"x").unwrap();
    assert_eq!(
        h.rename(&format!("{REPO}/blobs/other"), &blob(ETAG), false),
        Err(STATUS_OBJECT_NAME_COLLISION)
    );
    let other = "b".repeat(64);
    h.put(&blob(&other), b"B");
    assert_eq!(
        h.rename(&format!("{REPO}/blobs/other"), &blob(&other), false),
        Err(STATUS_OBJECT_NAME_COLLISION)
    );
    assert_eq!(std::fs::read(h.disk(&blob(ETAG))).unwrap(), b"same bytes");
}

/// `scan_cache_dir` (listings and file information) and deleting a revision
/// (`shutil.rmtree` of the snapshot, then the blobs nothing else uses, then the ref).
#[test]
fn scan_cache_dir_and_delete_revision() {
    let h = linux_store();
    h.put(&blob(&"f".repeat(64)), b"weights");
    h.put_link(
        &snap("sub/model.safetensors"),
        &format!("../../../blobs/{}", "f".repeat(64)),
    );
    let root = names(&h.list("", None, 4096).unwrap());
    assert_eq!(root, [REPO]);
    let repo = names(&h.list(REPO, None, 4096).unwrap());
    assert_eq!(repo, ["blobs", "refs", "snapshots"]);
    let files = h
        .list(&format!("{REPO}/snapshots/{COMMIT}"), None, 4096)
        .unwrap();
    let cfg = files.iter().find(|e| e.name == "config.json").unwrap();
    // Through the mount a link is its blob: a regular file with the blob's size.
    assert_eq!(cfg.size, 22);
    assert_eq!(cfg.attributes & 0x400, 0, "no FILE_ATTRIBUTE_REPARSE_POINT");

    h.delete(&snap("sub/model.safetensors"), false).unwrap();
    h.delete(&format!("{REPO}/snapshots/{COMMIT}/sub"), true)
        .unwrap();
    h.delete(&snap("config.json"), false).unwrap();
    h.delete(&format!("{REPO}/snapshots/{COMMIT}"), true)
        .unwrap();
    h.delete(&blob(ETAG), false).unwrap();
    h.delete(&blob(&"f".repeat(64)), false).unwrap();
    h.delete(&format!("{REPO}/refs/main"), false).unwrap();

    assert!(!h.disk(&format!("{REPO}/snapshots/{COMMIT}")).exists());
    assert!(!h.disk(&blob(ETAG)).exists());
    assert!(!h.disk(&format!("{REPO}/refs/main")).exists());
    assert_eq!(
        std::fs::read_dir(h.disk(&format!("{REPO}/blobs")))
            .unwrap()
            .count(),
        0
    );
}

/// Explorer and `dir`: a listing bigger than one directory buffer, continued with markers;
/// patterns.
#[test]
fn big_listings_and_patterns() {
    let h = Host::new();
    let dir = format!("{REPO}/snapshots/{COMMIT}");
    let mut want = Vec::new();
    for i in 0..1000 {
        let n = format!("file-{i:04}.json");
        h.put(&format!("{dir}/{n}"), b"x");
        want.push(n);
    }
    for n in [
        "model1.safetensors",
        "model2.safetensors",
        "model10.safetensors",
    ] {
        h.put(&format!("{dir}/{n}"), b"y");
        want.push(n.to_string());
    }
    want.sort();
    // 4 KiB holds about 30 entries: the listing takes many reads.
    let all = h.list(&dir, None, 4096).unwrap();
    let mut got = names(&all);
    got.sort();
    assert_eq!(got, want);
    assert_eq!(all.iter().filter(|e| e.name == ".").count(), 1);

    let json = names(&h.list(&dir, Some("*.json"), 4096).unwrap());
    assert_eq!(json.len(), 1000);
    assert!(json.iter().all(|n| n.ends_with(".json")));
    let mut models = names(&h.list(&dir, Some("model?.safetensors"), 4096).unwrap());
    models.sort();
    assert_eq!(models, ["model1.safetensors", "model2.safetensors"]);
    let mut upper = names(&h.list(&dir, Some("MODEL?.SAFETENSORS"), 4096).unwrap());
    upper.sort();
    assert_eq!(upper, models, "patterns are case-insensitive");
}

/// Delete of files and directories; a non-empty directory is refused at the disposition,
/// as NTFS does.
#[test]
fn deletes() {
    let h = Host::new();
    h.put("d/f", b"1");
    h.put("d/sub/g", b"2");
    assert_eq!(h.delete("d/sub", true), Err(STATUS_DIRECTORY_NOT_EMPTY));
    assert!(h.disk("d/sub/g").exists());
    h.delete("d/sub/g", false).unwrap();
    h.delete("d/sub", true).unwrap();
    h.delete("d/f", false).unwrap();
    assert!(!h.disk("d/sub").exists() && !h.disk("d/f").exists());
    assert!(h.disk("d").is_dir());
    assert_eq!(h.delete("d/f", false), Err(STATUS_OBJECT_NAME_NOT_FOUND));
}

/// Rename with and without replace.
#[test]
fn renames() {
    let h = Host::new();
    h.put("a", b"A");
    h.put("b", b"B");
    assert_eq!(h.rename("a", "b", false), Err(STATUS_OBJECT_NAME_COLLISION));
    assert_eq!(std::fs::read(h.disk("b")).unwrap(), b"B");
    h.rename("a", "b", true).unwrap();
    assert_eq!(std::fs::read(h.disk("b")).unwrap(), b"A");
    assert!(!h.disk("a").exists());
    h.put("dir/x", b"X");
    h.rename("dir", "dir2", false).unwrap();
    assert_eq!(std::fs::read(h.disk("dir2/x")).unwrap(), b"X");
}

/// A store that fails a rename (an injected `EIO`, as a NAS dropping the request): the
/// client gets `STATUS_IO_DEVICE_ERROR`, both names stay as they were, and the same rename
/// succeeds once the store answers again.
#[test]
fn failed_store_rename_is_reported_and_loses_nothing() {
    use crate::store::faulty::{Fault, FaultOp};
    let (h, faults) = Host::with_faults();
    h.put("a", b"A");
    faults.fail(
        Some(FaultOp::Rename),
        0,
        1,
        Fault::Errno(crate::compat::libc::EIO),
    );
    assert_eq!(h.rename("a", "b", false), Err(STATUS_IO_DEVICE_ERROR));
    assert_eq!(
        faults.injected(),
        vec![(FaultOp::Rename, Fault::Errno(crate::compat::libc::EIO))]
    );
    assert_eq!(std::fs::read(h.disk("a")).unwrap(), b"A");
    assert!(!h.disk("b").exists());
    assert_eq!(h.read_all("a"), Ok(b"A".to_vec()));
    h.rename("a", "b", false).unwrap();
    assert_eq!(std::fs::read(h.disk("b")).unwrap(), b"A");
    assert!(!h.disk("a").exists());
}

/// A store that fails the check of a delete (the Windows-only `open_for_delete`, an injected
/// `EIO`): the client's `DeleteFileW` gets `STATUS_IO_DEVICE_ERROR` and the file stays; the
/// same delete succeeds once the store answers.
#[test]
fn failed_store_delete_check_is_reported_and_loses_nothing() {
    use crate::store::faulty::{Fault, FaultOp};
    let (h, faults) = Host::with_faults();
    h.put("d/f", b"F");
    let eio = Fault::Errno(crate::compat::libc::EIO);
    faults.fail(Some(FaultOp::OpenForDelete), 0, 1, eio);
    assert_eq!(h.delete("d/f", false), Err(STATUS_IO_DEVICE_ERROR));
    assert_eq!(faults.injected(), vec![(FaultOp::OpenForDelete, eio)]);
    assert_eq!(std::fs::read(h.disk("d/f")).unwrap(), b"F");
    h.delete("d/f", false).unwrap();
    assert!(!h.disk("d/f").exists());
    assert!(h.disk("d").is_dir());
}

/// Opens of snapshot files for reading, and different-case spellings.
#[test]
fn opens_and_case() {
    let h = linux_store();
    let want = b"{\"model_type\": \"bert\"}".to_vec();
    assert_eq!(h.read_all(&snap("config.json")).unwrap(), want);
    assert_eq!(h.read_all(&snap("Config.JSON")).unwrap(), want);
    assert_eq!(
        h.read_all(&format!("{REPO}/BLOBS/{ETAG}")).unwrap(),
        want,
        "BLOBS\\<hash> reaches blobs/<hash>"
    );
    // Delete access without deleting (Explorer's properties, `os.stat` on some paths).
    let o = h
        .open(
            &snap("config.json"),
            FILE_NON_DIRECTORY_FILE,
            DELETE | SYNCHRONIZE | FILE_READ_ATTRIBUTES,
        )
        .expect("open with DELETE access");
    h.close(o);
    assert!(h.disk(&snap("config.json")).exists());
    assert!(h.disk(&blob(ETAG)).exists());
}

/// A blob is immutable under every spelling: writing through `BLOBS\<hash>` is refused as
/// through `blobs\<hash>`.
#[test]
fn blobs_are_immutable_in_any_case() {
    let h = linux_store();
    for dir in ["blobs", "BLOBS"] {
        let r = h.write_always(&format!("{REPO}/{dir}/{ETAG}"), b"overwritten");
        assert!(r.is_err(), "{dir}: write accepted");
    }
    assert_eq!(
        std::fs::read(h.disk(&blob(ETAG))).unwrap(),
        b"{\"model_type\": \"bert\"}"
    );
}

/// An open in another case reports the store's spelling as the normalized name (what
/// Explorer and `GetFinalPathNameByHandle` show).
#[test]
fn normalized_name_has_the_store_spelling() {
    let h = linux_store();
    let o = h
        .open(
            &snap("CONFIG.json"),
            FILE_NON_DIRECTORY_FILE,
            FILE_GENERIC_READ,
        )
        .unwrap();
    let normalized = o.normalized.clone();
    assert_eq!(o.info.file_size, 22);
    h.close(o);
    assert!(
        normalized.ends_with("\\config.json"),
        "normalized name {normalized:?}"
    );
}

/// An open with `MAXIMUM_ALLOWED` (WinFsp grants what the descriptor allows: all) or
/// read+write of a link-backed snapshot file reads; only writing is refused.
#[test]
fn maximum_allowed_open_of_a_snapshot_file_reads() {
    let h = linux_store();
    for granted in [FILE_ALL_ACCESS, FILE_GENERIC_READ | FILE_GENERIC_WRITE] {
        let o = h
            .open(&snap("config.json"), FILE_NON_DIRECTORY_FILE, granted)
            .expect("open as NTFS would allow");
        assert_eq!(h.read_ctx(&o.ctx).unwrap(), b"{\"model_type\": \"bert\"}");
        assert!(h.write_ctx(&o.ctx, b"x").is_err());
        h.close(o);
    }
    assert_eq!(
        std::fs::read(h.disk(&blob(ETAG))).unwrap(),
        b"{\"model_type\": \"bert\"}"
    );
}

/// Paths longer than 260 characters (`\\?\` paths, or long-path-aware programs such as
/// Python) work: WinFsp passes up to 32,767 characters.
///
/// Names Windows forbids (`a:b` shown as `a\u{F03A}b`) cannot be replayed here: wine's drive
/// mapping does not show Unix names that contain them, so the store under wine never has
/// one; `names.rs`'s unit tests cover the mapping.
#[test]
fn long_paths() {
    let h = Host::new();
    let long: Vec<String> = (0..6).map(|i| format!("{i}{}", "x".repeat(59))).collect();
    let dir = long.join("/");
    makedirs(&h, &dir);
    let file = format!("{dir}/model.safetensors");
    assert!(file.len() > 260);
    h.write_new(&file, b"deep").unwrap();
    assert_eq!(h.read_all(&file).unwrap(), b"deep");
    assert_eq!(std::fs::read(h.disk(&file)).unwrap(), b"deep");
    let l = names(&h.list(&dir, None, 4096).unwrap());
    assert_eq!(l, ["model.safetensors"]);
}

/// Store calls per Windows operation: printed (run with `--nocapture`; docs/WINDOWS.md lists
/// the figures). Asserted: a listing reads its directory once, and opening an existing file
/// lists nothing. (A lookup miss: `lookup_miss_lists_nothing`, issue 12.)
#[test]
fn store_calls_per_operation() {
    let h = linux_store();
    let dir = format!("{REPO}/snapshots/{COMMIT}");
    for i in 0..1000 {
        h.put(&format!("{dir}/f{i:04}"), b"x");
    }
    // Warm: the first access of a path may fill caches; Windows clients repeat operations.
    let _ = h.read_all(&snap("config.json"));
    let (r, open_read) = counted(|| h.read_all(&snap("config.json")));
    assert!(r.is_ok());
    let (r, listing) = counted(|| h.list(&dir, None, 64 * 1024));
    assert_eq!(r.unwrap().len(), 1003);
    let (r, miss) = counted(|| h.open(&snap("missing.json"), 0, FILE_GENERIC_READ));
    assert_eq!(r.err(), Some(STATUS_OBJECT_NAME_NOT_FOUND));
    eprintln!("store calls: open+read {open_read:?}");
    eprintln!("store calls: list 1000 {listing:?}");
    eprintln!("store calls: lookup miss {miss:?}");
    assert_eq!(listing.read_dir, 1, "{listing:?}");
    assert_eq!(open_read.read_dir, 0, "{open_read:?}");
}

/// A lookup miss must not list the directory; an open must not walk its path twice.
#[test]
fn lookup_miss_lists_nothing() {
    let h = linux_store();
    let (r, miss) = counted(|| h.open(&snap("missing.json"), 0, FILE_GENERIC_READ));
    assert_eq!(r.err(), Some(STATUS_OBJECT_NAME_NOT_FOUND));
    assert_eq!(miss.read_dir, 0, "{miss:?}");
}

/// A delete the store refuses is refused at the disposition, where the client is told: a
/// file another client holds open without sharing delete access (a sharing violation on
/// the NAS) stays, and the client gets `STATUS_SHARING_VIOLATION`, not success.
#[test]
fn delete_refused_by_the_store_is_reported() {
    use std::os::windows::fs::OpenOptionsExt;
    let h = Host::new();
    h.put("d/f", b"1");
    const FILE_SHARE_READ: u32 = 1;
    let other = std::fs::OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ)
        .open(h.disk("d/f"))
        .unwrap();
    assert_eq!(h.delete("d/f", false), Err(STATUS_SHARING_VIOLATION));
    assert!(h.disk("d/f").exists());
    drop(other);
    h.delete("d/f", false).unwrap();
    assert!(!h.disk("d/f").exists());
}

/// Deleting a blob that two snapshot names still reach moves its content onto the first
/// and re-points the second with a new link ("nothing lost"), which needs the right to
/// create links in the store. The delete is decided at the disposition: either refused
/// there with the store unchanged (no right: NTFS symlinks without the privilege), or done
/// with every name still reading the content — never reported done with a name left
/// dangling. In this store links are XSym files, which need no right: the delete is done.
#[test]
fn delete_of_a_linked_blob_loses_nothing() {
    let h = linux_store();
    let link = format!("../../blobs/{ETAG}");
    h.put_link(&snap("config-copy.json"), &link);
    let before = std::fs::read(h.disk(&snap("config.json"))).unwrap();
    match h.delete(&blob(ETAG), false) {
        Ok(()) => assert!(!h.disk(&blob(ETAG)).exists()),
        Err(e) => {
            eprintln!("delete refused at the disposition: {e:#x}");
            assert!(h.disk(&blob(ETAG)).exists());
            assert_eq!(std::fs::read(h.disk(&snap("config.json"))).unwrap(), before);
            assert_eq!(
                std::fs::read(h.disk(&snap("config-copy.json"))).unwrap(),
                before
            );
        }
    }
    for name in ["config.json", "config-copy.json"] {
        assert_eq!(
            h.read_all(&snap(name)).unwrap(),
            b"{\"model_type\": \"bert\"}",
            "{name}"
        );
    }
}

/// A store file with the read-only attribute (a Linux mode 0444 on a share) is deleted,
/// as `unlink` on Linux ignores the mode — where the store does not understand the request
/// to ignore the attribute (wine's does not), it is cleared first. Reported done and kept
/// would be the bug.
#[test]
fn delete_of_a_read_only_store_file() {
    let h = Host::new();
    h.put("d/ro", b"1");
    let mut p = std::fs::metadata(h.disk("d/ro")).unwrap().permissions();
    p.set_readonly(true);
    std::fs::set_permissions(h.disk("d/ro"), p).unwrap();
    h.delete("d/ro", false).unwrap();
    assert!(!h.disk("d/ro").exists());
}

/// A path through a missing directory, or through a file, is `STATUS_OBJECT_PATH_NOT_FOUND`
/// as on NTFS (Python's `os.makedirs` and `pathlib` tell the two apart); a missing last
/// name is `STATUS_OBJECT_NAME_NOT_FOUND`.
#[test]
fn path_not_found_as_ntfs() {
    let h = Host::new();
    h.put("d/f", b"1");
    let r = |p: &str| h.open(p, 0, FILE_GENERIC_READ).err();
    assert_eq!(r("d/f/x"), Some(STATUS_OBJECT_PATH_NOT_FOUND));
    assert_eq!(r("missing/x"), Some(STATUS_OBJECT_PATH_NOT_FOUND));
    assert_eq!(r("d/missing/x"), Some(STATUS_OBJECT_PATH_NOT_FOUND));
    assert_eq!(r("d/missing"), Some(STATUS_OBJECT_NAME_NOT_FOUND));
    assert_eq!(
        h.create("missing/x", false).err(),
        Some(STATUS_OBJECT_PATH_NOT_FOUND)
    );
    assert_eq!(
        h.create("d/f/x", false).err(),
        Some(STATUS_OBJECT_PATH_NOT_FOUND)
    );
}

/// The store's own status reaches the client, not its round trip through errno: a name
/// the store cannot hold (here a `|`, which the volume shows as U+F07C) is the store's
/// `STATUS_OBJECT_NAME_INVALID` (errno `EINVAL` would come back as
/// `STATUS_INVALID_PARAMETER`). `STATUS_DELETE_PENDING` and `STATUS_CANNOT_DELETE` (also
/// lost in errno) reach the client the same way; wine's store produces neither.
#[test]
fn store_status_is_kept() {
    const STATUS_OBJECT_NAME_INVALID: i32 = 0xC000_0033u32 as i32;
    let h = Host::new();
    h.put("d/f", b"1");
    assert_eq!(
        h.create("d/a\u{F07C}b", false).err(),
        Some(STATUS_OBJECT_NAME_INVALID)
    );
    assert!(h.disk("d/f").exists());
}

/// One walk per open: `GetSecurityByName` and the `Open` after it cost what one walk
/// costs; an open for attributes or deletion opens no store file; a write stats once.
#[test]
fn one_walk_per_open_and_one_stat_per_write() {
    let h = linux_store();
    let name = snap("config.json");
    let wname = winfsp::U16CString::from_str_truncate(format!("\\{}", name.replace('/', "\\")));
    // Warm: the first access of a path may fill caches.
    h.close(h.open(&name, 0, FILE_READ_ATTRIBUTES).unwrap());
    let (r, walk) = counted(|| {
        h.fs.get_security_by_name(&wname, None, |_| None)
            .map(|_| ())
            .map_err(|e| e.to_ntstatus())
    });
    r.unwrap();
    let (r, open) = counted(|| h.open(&name, FILE_NON_DIRECTORY_FILE, FILE_READ_ATTRIBUTES));
    let o = r.unwrap();
    h.close(o);
    eprintln!("store calls: walk {walk:?}; open for attributes {open:?}");
    assert_eq!(
        open.open, walk.open,
        "an open for attributes opens no store file: {open:?} vs {walk:?}"
    );
    assert_eq!(open.lstat, walk.lstat, "one walk: {open:?} vs {walk:?}");
    assert_eq!(
        open.nt_create_file, walk.nt_create_file,
        "{open:?} vs {walk:?}"
    );
    assert_eq!(open.dir_query, walk.dir_query, "{open:?} vs {walk:?}");

    let o = h.create("new.bin", false).unwrap();
    let (r, write) = counted(|| h.write_ctx(&o.ctx, b"sixteen bytes..."));
    r.unwrap();
    h.close(o);
    eprintln!("store calls: write {write:?}");
    assert_eq!(write.fstat, 1, "{write:?}");
    assert_eq!(write.lstat + write.nt_create_file, 0, "{write:?}");
}

/// A client with the right to create symbolic links (Developer Mode, administrator) keeps
/// deduplication: huggingface_hub's relative symlink `..\..\blobs\<hash>` from
/// `snapshots\<commit>\` becomes a relative POSIX link in the store — here an XSym file, the
/// form of links in this store — and the name shows as the blob. A link that would lead out
/// of the store is refused. (A client without the right never reaches the file system:
/// WinFsp's driver answers `STATUS_PRIVILEGE_NOT_HELD`, see
/// `adapter::tests::the_volume_is_a_network_volume`.)
#[test]
fn symlinks_of_clients_with_the_right_are_store_links() {
    let h = linux_store();
    let name = snap("tokenizer.json");
    h.symlink(&name, &format!("..\\..\\blobs\\{ETAG}"))
        .expect("symlink");
    let stored = std::fs::read(h.disk(&name)).unwrap();
    let link = crate::links::xsym::parse(&stored).expect("an XSym link in the store");
    assert_eq!(link.text, format!("../../blobs/{ETAG}").into_bytes());
    assert_eq!(h.read_all(&name).unwrap(), b"{\"model_type\": \"bert\"}");
    let l = h
        .list(&format!("{REPO}/snapshots/{COMMIT}"), None, 4096)
        .unwrap();
    let e = l.iter().find(|e| e.name == "tokenizer.json").unwrap();
    assert_eq!((e.size, e.attributes & 0x400), (22, 0));
    // Out of the store: refused, and the file the client created is gone again.
    let out = snap("escape.json");
    assert!(h.symlink(&out, "..\\..\\..\\..\\..\\etc\\passwd").is_err());
    assert!(!h.disk(&out).exists());
}

/// huggingface_hub's download lock on Windows (`filelock`: open `.locks/<repo>/<etag>.lock`
/// for writing, `LockFileEx` of its first byte, unlock, close) holds across machines on one
/// store: the lock is taken in the store by the open for writing, so a second machine's
/// open fails with `STATUS_SHARING_VIOLATION` (`filelock`'s "held, try again") until the
/// first closes, and a lock taken directly on the store file (`hfcachefs gc` on Windows, a
/// Linux client through Samba) excludes both and is excluded by them. Reading the lock file
/// takes nothing.
#[test]
fn hub_locks_hold_across_machines() {
    use crate::store::lock_exclusive_now;
    let a = Host::new();
    let b = a.another_machine();
    let lock = format!(".locks/{REPO}/{ETAG}.lock");
    makedirs(&a, &format!(".locks/{REPO}"));
    let direct = || {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(a.disk(&lock))
            .unwrap();
        lock_exclusive_now(&f).unwrap().then_some(f)
    };

    let held = a.open_always(&lock).expect("first machine takes the lock");
    assert_eq!(b.open_always(&lock).err(), Some(STATUS_SHARING_VIOLATION));
    // `filelock`'s clean-up on the other machine cannot delete a held lock file (a lock on
    // a deleted file would exclude nobody who opens the name anew).
    assert_eq!(b.delete(&lock, false), Err(STATUS_SHARING_VIOLATION));
    assert!(a.disk(&lock).exists());
    assert!(direct().is_none(), "a direct lock while a machine holds it");
    let reader = b
        .open(&lock, FILE_NON_DIRECTORY_FILE, FILE_GENERIC_READ)
        .expect("reading takes no lock");
    b.close(reader);
    a.close(held);

    let held = b.open_always(&lock).expect("second machine, once released");
    assert_eq!(a.open_always(&lock).err(), Some(STATUS_SHARING_VIOLATION));
    b.close(held);

    let tool = direct().expect("a direct lock once released");
    assert_eq!(a.open_always(&lock).err(), Some(STATUS_SHARING_VIOLATION));
    drop(tool);
    a.close(a.open_always(&lock).unwrap());
    b.delete(&lock, false)
        .expect("deleted once nobody holds it");
    // Other files are not locked by opens for writing.
    let other = format!(".locks/{REPO}/notes.json");
    let o1 = a.open_always(&other).unwrap();
    let o2 = b.open_always(&other).unwrap();
    a.close(o1);
    b.close(o2);
}
/// What a Linux client runs, as a Linux process beside the harness: the lock hfcachefs
/// takes in the store for a Linux client's `flock` (an OFD lock of the whole file), tried
/// while the harness client holds the hub lock, then held until told to release it. It
/// reports through files in the store directory (wine cannot wait for a Linux process).
const LINUX_CLIENT: &str = r#"
import fcntl, os, struct, sys, time
lock, out, go = sys.argv[1:4]
def say(s):
    with open(out + ".tmp", "w") as f:
        f.write(s)
    os.rename(out + ".tmp", out + s[0])
def wait(p):
    for _ in range(1200):
        if os.path.exists(p):
            return
        time.sleep(0.05)
    sys.exit("the harness did not go on")
fl = lambda t: struct.pack("hhqqi4x", t, 0, 0, 0, 0)
fd = os.open(lock, os.O_RDWR)
try:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, fl(fcntl.F_WRLCK))
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, fl(fcntl.F_UNLCK))
    say("1 taken")
except OSError:
    say("1 refused")
wait(go + "1")
try:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, fl(fcntl.F_WRLCK))
    say("2 taken")
except OSError as e:
    say("2 refused %d" % e.errno)
wait(go + "2")
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, fl(fcntl.F_UNLCK))
say("3 released")
"#;

/// The hub lock across OSes: a Windows client through the adapter and a Linux client (a
/// real Linux process, taking the OFD lock hfcachefs takes for a Linux client's `flock`)
/// exclude each other on one store, both ways. Needs wine (the store must be a Linux
/// directory too: `Z:\tmp`) and Linux's `python3`; elsewhere it says so and checks nothing.
#[test]
fn hub_locks_hold_across_oses() {
    let (unix_tmp, python) = (std::path::Path::new("Z:\\tmp"), "Z:\\usr\\bin\\python3");
    if !unix_tmp.is_dir() || !std::path::Path::new(python).is_file() {
        eprintln!("not under wine with python3: cross-OS lock test not run");
        return;
    }
    let h = Host::new_in(unix_tmp);
    makedirs(&h, &format!(".locks/{REPO}"));
    let lock = format!(".locks/{REPO}/{ETAG}.lock");
    let held = h
        .open_always(&lock)
        .expect("the Windows client takes the lock");
    // The store directory as the Linux process sees it: `Z:\tmp\x` is `/tmp/x`.
    let unix = |rel: &str| {
        let p = h.disk(rel).to_string_lossy().replace('\\', "/");
        p.strip_prefix("Z:")
            .map(str::to_owned)
            .expect("a path on Z:")
    };
    let (out, go) = (unix("linux-out"), unix("linux-go"));
    // Wine starts the Linux process but cannot wait for it: it reports through files.
    let _ = std::process::Command::new(python)
        .args(["-c", LINUX_CLIENT, &unix(&lock), &out, &go])
        .spawn();
    let said = |n: u32| -> String {
        let p = h.disk(&format!("linux-out{n}"));
        for _ in 0..1200 {
            if let Ok(s) = std::fs::read_to_string(&p) {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the Linux client did not answer (step {n})");
    };
    assert_eq!(said(1), "1 refused", "Linux locked what Windows holds");
    h.close(held);
    h.put("linux-go1", b"");
    assert_eq!(
        said(2),
        "2 taken",
        "Linux could not lock once Windows released"
    );
    assert_eq!(
        h.open_always(&lock).err(),
        Some(STATUS_SHARING_VIOLATION),
        "Windows locked what Linux holds"
    );
    h.put("linux-go2", b"");
    assert_eq!(said(3), "3 released");
    h.close(h.open_always(&lock).expect("Windows, once Linux released"));
}
