use super::*;

#[test]
fn spellings_in_another_case() {
    assert_eq!(swap_case("config.json").as_deref(), Some("Config.json"));
    assert_eq!(swap_case("01-Ä.bin").as_deref(), Some("01-ä.bin"));
    assert_eq!(swap_case("0123-45"), None);
    assert_eq!(
        case_pattern("Config-01.json").as_deref(),
        Some("??????-01.????")
    );
    assert_eq!(case_pattern("0123"), None);
}

/// The store's case is learnt once from a name it has: wine's drive is case-insensitive,
/// so after the first hit a miss costs one query; a store taken as case-sensitive asks
/// once more with the letters as `?` and finds the other spellings that way, still
/// without listing.
#[test]
fn case_is_learnt_and_misses_never_list() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d").join("config.json"), b"x").unwrap();
    let store = WinStore::open_root(dir.path()).unwrap();
    let d = StorePath::parse("d").unwrap();
    calls::take();
    assert_eq!(
        store.find_names(&d, OsStr::new("config.json")).unwrap(),
        ["config.json"]
    );
    assert_eq!(
        calls::take().dir_query,
        2,
        "the hit and the one probe of the case"
    );
    assert!(
        store
            .find_names(&d, OsStr::new("nothing.json"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        calls::take().dir_query,
        1,
        "a miss on a case-insensitive store"
    );
    store.assume_case_sensitive();
    let found = store.find_names(&d, OsStr::new("other.json")).unwrap();
    let c = calls::take();
    assert_eq!((c.dir_query, c.read_dir), (2, 0), "{c:?}");
    // `?????.????` matches the names of that shape: here none of five letters.
    assert!(found.is_empty(), "{found:?}");
    let found = store.find_names(&d, OsStr::new("xxxxxx.yyyy")).unwrap();
    assert_eq!(
        found,
        ["config.json"],
        "same shape, for the caller to compare"
    );
}

#[test]
fn dir_info_chain_is_parsed() {
    let entry = |name: &str, attrs: u32, next: u32| {
        let w: Vec<u16> = name.encode_utf16().collect();
        let mut e = vec![0u8; 104];
        e[0..4].copy_from_slice(&next.to_le_bytes());
        e[56..60].copy_from_slice(&attrs.to_le_bytes());
        e[60..64].copy_from_slice(&((w.len() * 2) as u32).to_le_bytes());
        e[96..104].copy_from_slice(&42u64.to_le_bytes());
        for c in w {
            e.extend_from_slice(&c.to_le_bytes());
        }
        e.resize(e.len().next_multiple_of(8), 0);
        e
    };
    let mut a = entry("config.json", FILE_ATTRIBUTE_REPARSE_POINT, 0);
    let next = a.len() as u32;
    a[0..4].copy_from_slice(&next.to_le_bytes());
    a.extend(entry("sub", FILE_ATTRIBUTE_DIRECTORY, 0));
    let got = parse_dir_info(&a);
    assert_eq!(got.len(), 2);
    assert_eq!(String::from_utf16_lossy(&got[0].0), "config.json");
    assert_eq!(got[0].1, FILE_ATTRIBUTE_REPARSE_POINT);
    assert_eq!(got[1].3, 42);
}

#[test]
fn rename_info_layout() {
    let b = rename_info(3, 0x1234 as RawHandle, &[b'a' as u16, b'b' as u16]);
    assert_eq!(&b[0..4], &3u32.to_le_bytes());
    assert_eq!(&b[8..16], &0x1234u64.to_le_bytes());
    assert_eq!(&b[16..20], &4u32.to_le_bytes());
    assert_eq!(&b[20..24], &[b'a', 0, b'b', 0]);
}

fn sp(p: &str) -> StorePath {
    StorePath::parse(p).unwrap()
}

fn code(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// The store operations on a local directory (NTFS on Windows, wine's Unix-backed drive
/// under the project's check).
#[test]
fn store_operations_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    std::fs::write(dir.path().join("a/f"), b"hello").unwrap();
    std::fs::write(dir.path().join("a/x"), xsym::format(b"f").unwrap()).unwrap();
    let s = WinStore::open_root(dir.path()).unwrap();
    s.set_xsym(true);

    let m = s.lstat(&sp("a/f")).unwrap();
    assert_eq!((m.kind, m.size), (Kind::File, 5));
    assert_eq!(s.lstat(&sp("a")).unwrap().kind, Kind::Dir);
    assert_eq!(s.lstat(&StorePath::root()).unwrap().kind, Kind::Dir);
    assert_eq!(code(s.lstat(&sp("a/missing")).unwrap_err()), libc::ENOENT);
    assert_eq!(code(s.lstat(&sp("nodir/x")).unwrap_err()), libc::ENOENT);

    assert_eq!(s.readlink(&sp("a/x")).unwrap(), b"f");
    assert_eq!(code(s.readlink(&sp("a/f")).unwrap_err()), libc::EINVAL);
    assert_eq!(s.read_head(&sp("a/f"), 3).unwrap(), b"hel");

    let mut names: Vec<String> = s
        .read_dir(&sp("a"))
        .unwrap()
        .into_iter()
        .map(|e| e.name.to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["b", "f", "x"]);
    assert!(
        s.read_dir(&StorePath::root())
            .unwrap()
            .iter()
            .any(|e| e.name == "a")
    );

    let f = s.open(&sp("a/f"), OFlags::RDONLY, 0).unwrap();
    let mut buf = [0u8; 10];
    assert_eq!(FileExt::read_at(&f, &mut buf, 1).unwrap(), 4);
    assert_eq!(&buf[..4], b"ello");
    assert_eq!(FileExt::read_at(&f, &mut buf, 5).unwrap(), 0);
    assert_eq!(Meta::of_fd(&f).unwrap().ino, m.ino);
    drop(f);
    assert_eq!(
        code(s.open(&sp("a"), OFlags::RDONLY, 0).unwrap_err()),
        libc::EISDIR
    );

    let w = s
        .open(
            &sp("a/new"),
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL,
            0o644,
        )
        .unwrap();
    FileExt::write_all_at(&w, b"0123456789", 0).unwrap();
    drop(w);
    assert_eq!(
        code(
            s.open(
                &sp("a/new"),
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL,
                0
            )
            .unwrap_err()
        ),
        libc::EEXIST
    );
    assert_eq!(
        std::fs::read(dir.path().join("a/new")).unwrap(),
        b"0123456789"
    );

    s.mkdir(&sp("a/d"), 0o755).unwrap();
    assert_eq!(code(s.mkdir(&sp("a/d"), 0o755).unwrap_err()), libc::EEXIST);
    s.rename(&sp("a/new"), &sp("a/d/moved"), 0).unwrap();
    assert!(dir.path().join("a/d/moved").exists());
    assert_eq!(
        code(
            s.rename(&sp("a/f"), &sp("a/d/moved"), libc::RENAME_NOREPLACE)
                .unwrap_err()
        ),
        libc::EEXIST
    );
    s.rename(&sp("a/f"), &sp("a/d/moved"), 0).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("a/d/moved")).unwrap(),
        b"hello"
    );
    assert_eq!(code(s.rmdir(&sp("a/d")).unwrap_err()), libc::ENOTEMPTY);
    assert_eq!(code(s.unlink(&sp("a/d")).unwrap_err()), libc::EISDIR);
    s.unlink(&sp("a/d/moved")).unwrap();
    s.rmdir(&sp("a/d")).unwrap();
    assert!(!dir.path().join("a/d").exists());
    assert!(s.statfs().unwrap().blocks > 0);
}
