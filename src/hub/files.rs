//! Small file helpers every user of the hub layout shares: reading a small file (refs,
//! manifests, markers, trees), the one generator of temporary names, and the checks that a
//! file is still the one examined or holds the same bytes as another.
//!
//! Invariants:
//! - [`read_small`] opens without following links and without blocking (a FIFO swapped in
//!   under the name cannot stall a request or a tool) and reads only regular files.
//! - Every temporary name hfcachefs makes comes from [`temp_name`]: `.hfcachefs-<tag>-<pid>-<n>`
//!   with one process-wide counter, so two users in one process never pick the same name and
//!   `gc` recognises them all by [`super::OWN_TEMP_PREFIX`].

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};

use super::names::OWN_TEMP_PREFIX;
use crate::path::StorePath;
use crate::store::{Kind, Meta, OFlags, Store};

/// Reads at most `limit` bytes of a small regular file of the store; `None` on any error or
/// if it is not a regular file.
pub fn read_small(store: &Store, p: &StorePath, limit: u64) -> Option<Vec<u8>> {
    let fd = store.open(p, OFlags::RDONLY | OFlags::NONBLOCK, 0).ok()?;
    if Meta::of_fd(&fd).ok()?.kind != Kind::File {
        return None;
    }
    let mut buf = Vec::new();
    File::from(fd).take(limit).read_to_end(&mut buf).ok()?;
    Some(buf)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary name in directory `dir`: `.hfcachefs-<tag>-<pid>-<n>`.
pub fn temp_name(dir: &StorePath, tag: &str) -> Option<StorePath> {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{OWN_TEMP_PREFIX}{tag}-{}-{n}", std::process::id());
    dir.join(OsStr::new(&name))
}

/// A fresh temporary name next to `p` (in its directory), see [`temp_name`].
pub fn temp_sibling(p: &StorePath, tag: &str) -> Option<StorePath> {
    temp_name(&p.parent(), tag)
}

/// True if `now` is still the file `then` describes (same inode, kind, size and mtime).
pub fn unchanged(then: &Meta, now: &Meta) -> bool {
    (now.kind, now.dev, now.ino, now.size, now.mtime)
        == (then.kind, then.dev, then.ino, then.size, then.mtime)
}

/// Byte-for-byte comparison of two store files.
pub fn same_bytes(store: &Store, a: &StorePath, b: &StorePath) -> io::Result<bool> {
    let open = |p: &StorePath| {
        store
            .open(p, OFlags::RDONLY | OFlags::NONBLOCK, 0)
            .map(File::from)
    };
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The view and the tools draw from one counter: names never repeat within a process.
    #[test]
    fn one_temp_name_generator() {
        let dir = StorePath::parse("models--a--b/snapshots/c1").unwrap();
        let a = temp_name(&dir, "link").unwrap();
        let b = temp_sibling(&dir.join(OsStr::new("f")).unwrap(), "link").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.parent(), b.parent());
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(super::super::names::is_own_temp(&name), "{name}");
        assert_eq!(
            super::super::names::blob_dir_temp(&name),
            Some(super::super::names::TempKind::Temp)
        );
    }

    #[test]
    fn read_small_reads_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let store = Store::open_root(dir.path()).unwrap();
        let p = |s: &str| StorePath::parse(s).unwrap();
        assert_eq!(
            read_small(&store, &p("f"), 4).as_deref(),
            Some(&b"0123"[..])
        );
        assert_eq!(read_small(&store, &p("d"), 4), None);
        assert_eq!(read_small(&store, &p("missing"), 4), None);
    }
}
