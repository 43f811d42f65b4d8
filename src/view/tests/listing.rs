//! Listings: `readdirplus` lookup counting, offsets, resumption and listing snapshots.

use super::*;

#[test]
fn readdirplus_counts_one_lookup_per_entry() {
    let h = hub();
    let s = h.snap_ino();
    let before = h.view.inode_count();
    let entries = readdirplus_all(&h.view, s);
    let inos: Vec<Ino> = entries
        .iter()
        .filter(|(n, ..)| n != "." && n != "..")
        .map(|(.., e)| e.attr.ino)
        .collect();
    assert_eq!(inos.len(), SNAPSHOT_VISIBLE.len());
    assert_eq!(h.view.inode_count(), before + inos.len());
    for &ino in &inos {
        assert_eq!(h.lookups(ino), 1, "ino {ino}");
    }
    assert_eq!(h.lookups(s), 1, "`.` and `..` count no lookup");
    for &ino in &inos {
        h.view.forget(ino, 1);
    }
    assert_eq!(h.view.inode_count(), before);
}

#[test]
fn readdirplus_full_buffer_forgets_the_refused_entry() {
    let h = hub();
    let s = h.snap_ino();
    let before = h.view.inode_count();
    let fh = h.view.opendir(s).unwrap();
    let mut accepted = Vec::new();
    let mut refused = None;
    h.view
        .readdirplus(fh, 0, |name, off, e| {
            if accepted.len() == 3 {
                refused = Some((name.to_os_string(), e.attr.ino));
                return true;
            }
            accepted.push((name.to_os_string(), off, e.attr.ino));
            false
        })
        .unwrap();
    h.view.releasedir(fh);
    let (refused_name, refused_ino) = refused.expect("the buffer filled up");
    assert_eq!(refused_name, "linked");
    assert_eq!(h.lookups(refused_ino), 0, "the refused entry was forgotten");
    assert_eq!(accepted[2].0, "config.json");
    assert_eq!(h.lookups(accepted[2].2), 1);
    assert_eq!(h.view.inode_count(), before + 1);
}

/// Drives `readdirplus` with room for `room` entries per call, resuming from the offset of
/// the last accepted entry as the kernel does.
fn readdirplus_in_chunks(h: &Hub, dir: Ino, room: usize) -> Vec<(OsString, Ino)> {
    let fh = h.view.opendir(dir).unwrap();
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let mut got = Vec::new();
        h.view
            .readdirplus(fh, offset, |name, off, e| {
                if got.len() == room {
                    return true;
                }
                got.push((name.to_os_string(), off, e.attr.ino));
                false
            })
            .unwrap();
        let Some(last) = got.last() else { break };
        offset = last.1;
        all.extend(got.into_iter().map(|(n, _, ino)| (n, ino)));
    }
    h.view.releasedir(fh);
    all
}

#[test]
fn readdirplus_resumes_from_the_last_offset() {
    let h = hub();
    let s = h.snap_ino();
    let before = h.view.inode_count();
    let all = readdirplus_in_chunks(&h, s, 2);
    let listed: Vec<_> = all.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names(&listed), with_dots(&SNAPSHOT_VISIBLE));
    for (name, ino) in all.iter().skip(2) {
        assert_eq!(h.lookups(*ino), 1, "{name:?} counted exactly once");
    }
    assert_eq!(h.view.inode_count(), before + SNAPSHOT_VISIBLE.len());
}

#[test]
fn readdir_resumes_from_the_last_offset() {
    let h = hub();
    let s = h.snap_ino();
    let fh = h.view.opendir(s).unwrap();
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let mut got: Vec<DirEntry> = Vec::new();
        h.view
            .readdir(fh, offset, |e| {
                if got.len() == 2 {
                    return true;
                }
                got.push(e);
                false
            })
            .unwrap();
        let Some(last) = got.last() else { break };
        offset = last.offset;
        all.extend(got.into_iter().map(|e| e.name));
    }
    h.view.releasedir(fh);
    assert_eq!(names(&all), with_dots(&SNAPSHOT_VISIBLE));
}

#[test]
fn listing_is_a_snapshot_until_rewound() {
    let h = hub();
    let s = h.snap_ino();
    let fh = h.view.opendir(s).unwrap();
    let mut first = Vec::new();
    h.view
        .readdir(fh, 0, |e| {
            first.push(e);
            first.len() == 3
        })
        .unwrap();
    // An entry that sorts first appears meanwhile: the resumed listing does not shift.
    std::fs::write(h.path(&format!("{}/aaa", snap_path())), b"new").unwrap();
    let resume = first[1].offset;
    let mut rest = Vec::new();
    h.view
        .readdir(fh, resume, |e| {
            rest.push(e.name);
            false
        })
        .unwrap();
    assert_eq!(names(&rest), SNAPSHOT_VISIBLE);
    let mut rewound = Vec::new();
    h.view
        .readdir(fh, 0, |e| {
            rewound.push(e.name);
            false
        })
        .unwrap();
    assert!(rewound.iter().any(|n| n == "aaa"));
    h.view.releasedir(fh);
    assert!(matches!(
        h.view.readdir(fh, 0, |_| false),
        Err(FsError::BadHandle)
    ));
}
