//! The hub's content names and how to compute them: the sha256 of the bytes (64 hex, LFS
//! files) and the git blob sha1, `sha1("blob <len>\0" + bytes)` (40 hex, regular files), in one
//! pass over a file ([`hash_path`]) or while a file is written ([`Stream`]).
//!
//! Invariants: files are opened through the store (no link followed); a file whose size
//! changes while it is read is reported as [`HashError::Changed`], never given a digest; the
//! stop flag is checked after every buffer, so Ctrl-C is prompt even inside a large blob.
//! A [`Stream`] gives a digest only for bytes it saw in order from offset 0.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::store::OFlags;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::path::StorePath;
use crate::store::{Kind, Meta, Store};

/// Read size: large enough to amortise syscalls, small enough to stay in the L2 cache.
const BUF: usize = 256 * 1024;

/// Which digests to compute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Algos {
    /// sha256 of the content.
    pub sha256: bool,
    /// git blob sha1 of the content.
    pub git_sha1: bool,
}

impl Algos {
    /// The algorithm a content name of this length implies (64 hex: sha256, 40 hex: git sha1).
    pub fn for_name(name: &str) -> Algos {
        Algos {
            sha256: name.len() == 64,
            git_sha1: name.len() == 40,
        }
    }

    /// Both sets together.
    pub fn union(self, o: Algos) -> Algos {
        Algos {
            sha256: self.sha256 || o.sha256,
            git_sha1: self.git_sha1 || o.git_sha1,
        }
    }
}

/// Lower-case hex digests of one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    /// sha256, if asked for.
    pub sha256: Option<String>,
    /// git blob sha1, if asked for.
    pub git_sha1: Option<String>,
}

impl Digests {
    /// The digest a name of this length is compared with (`None` if not computed).
    pub fn for_name(&self, name: &str) -> Option<&str> {
        match name.len() {
            64 => self.sha256.as_deref(),
            40 => self.git_sha1.as_deref(),
            _ => None,
        }
    }

    /// The algorithm name used in reports for a content name of this length.
    pub fn algorithm(name: &str) -> &'static str {
        if name.len() == 64 {
            "sha256"
        } else {
            "git-sha1"
        }
    }
}

/// Why a file has no digest.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The size changed while reading (someone writes the file).
    #[error("the file changed while it was read")]
    Changed,
    /// Not a regular file.
    #[error("not a regular file")]
    NotFile,
    /// The stop flag was raised.
    #[error("interrupted")]
    Interrupted,
}

/// Hashes an open file of `meta.size` bytes. `on_bytes` is called after every buffer.
pub fn hash_file(
    file: &mut File,
    size: u64,
    algos: Algos,
    stop: &AtomicBool,
    on_bytes: &dyn Fn(u64),
) -> Result<Digests, HashError> {
    #[cfg(unix)]
    let _ = rustix::fs::fadvise(&*file, 0, None, rustix::fs::Advice::Sequential);
    let mut sha256 = algos.sha256.then(Sha256::new);
    let mut sha1 = algos.git_sha1.then(|| {
        let mut h = Sha1::new();
        h.update(format!("blob {size}\0").as_bytes());
        h
    });
    let mut buf = vec![0u8; BUF];
    let mut total: u64 = 0;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(HashError::Interrupted);
        }
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        let chunk = &buf[..n];
        if let Some(h) = sha256.as_mut() {
            h.update(chunk);
        }
        if let Some(h) = sha1.as_mut() {
            h.update(chunk);
        }
        total += n as u64;
        on_bytes(n as u64);
        if total > size {
            return Err(HashError::Changed);
        }
    }
    if total != size {
        return Err(HashError::Changed);
    }
    Ok(Digests {
        sha256: sha256.map(|h| hex(&h.finalize())),
        git_sha1: sha1.map(|h| hex(&h.finalize())),
    })
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Digests of a byte slice (tests and small files).
pub fn digest_bytes(data: &[u8]) -> Digests {
    let mut s1 = Sha1::new();
    s1.update(format!("blob {}\0", data.len()).as_bytes());
    s1.update(data);
    Digests {
        sha256: Some(hex(&Sha256::digest(data))),
        git_sha1: Some(hex(&s1.finalize())),
    }
}

/// A hashed file: its metadata when opened (to detect later changes) and its digests.
#[derive(Debug)]
pub struct Hashed {
    /// `fstat` of the file that was read.
    pub meta: Meta,
    /// The digests.
    pub digests: Digests,
}

/// Opens `path` through the store and hashes it.
pub fn hash_path(
    store: &Store,
    path: &StorePath,
    algos: Algos,
    stop: &AtomicBool,
    on_bytes: &dyn Fn(u64),
) -> Result<Hashed, HashError> {
    let fd = store.open(path, OFlags::RDONLY, 0)?;
    let meta = Meta::of_fd(&fd)?;
    if meta.kind != Kind::File {
        return Err(HashError::NotFile);
    }
    let mut file = File::from(fd);
    let digests = hash_file(&mut file, meta.size, algos, stop, on_bytes)?;
    let after = Meta::of_fd(&file)?;
    if after.size != meta.size || after.mtime != meta.mtime {
        return Err(HashError::Changed);
    }
    Ok(Hashed { meta, digests })
}

/// The digests of a file computed while it is written, for bytes that arrive in order from
/// offset 0. sha256 needs nothing in advance; the git blob sha1 needs the final length first
/// (`"blob <len>\0"` precedes the bytes), so the first [`super::LFS_THRESHOLD`] bytes are
/// kept in memory — the hub names larger files by sha256 only — within a process-wide budget
/// ([`STREAM_BUDGET`]); past it, the git sha1 is left to a read at the end.
#[derive(Debug)]
pub struct Stream {
    sha256: Option<Sha256>,
    len: u64,
    head: Option<Vec<u8>>,
}

/// Memory all [`Stream`]s together may keep for git sha1s.
pub const STREAM_BUDGET: u64 = 256 << 20;

static STREAM_USED: AtomicU64 = AtomicU64::new(0);

impl Default for Stream {
    fn default() -> Self {
        Stream {
            sha256: Some(Sha256::new()),
            len: 0,
            head: Some(Vec::new()),
        }
    }
}

impl Stream {
    /// Takes bytes written at `offset`; anything but the next bytes in order breaks the stream
    /// for good (the file must then be read to be hashed).
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if offset != self.len || self.sha256.is_none() {
            self.broken();
            return;
        }
        if let Some(h) = self.sha256.as_mut() {
            h.update(data);
        }
        self.len += data.len() as u64;
        let keep = self.len <= super::LFS_THRESHOLD
            && STREAM_USED
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                    let n = u + data.len() as u64;
                    (n <= STREAM_BUDGET).then_some(n)
                })
                .is_ok();
        match (&mut self.head, keep) {
            (Some(head), true) => head.extend_from_slice(data),
            (Some(_), false) => self.drop_head(),
            (None, true) => {
                STREAM_USED.fetch_sub(data.len() as u64, Ordering::AcqRel);
            }
            (None, false) => {}
        }
    }

    /// The bytes seen are no longer the file's (written out of order, truncated, or written
    /// where this stream could not see it).
    pub fn broken(&mut self) {
        self.sha256 = None;
        self.drop_head();
    }

    /// True while every byte of the file so far came through [`Stream::write`] in order.
    pub fn intact(&self) -> bool {
        self.sha256.is_some()
    }

    /// Bytes seen in order.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if no byte was seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn drop_head(&mut self) {
        if let Some(h) = self.head.take() {
            STREAM_USED.fetch_sub(h.len() as u64, Ordering::AcqRel);
        }
    }

    /// The digests of the `len()` bytes seen, if the stream is intact: sha256 always, the git
    /// sha1 if the bytes were kept.
    pub fn finish(mut self) -> Option<Digests> {
        let sha256 = self.sha256.take()?;
        let git_sha1 = self.head.as_ref().map(|head| {
            let mut h = Sha1::new();
            h.update(format!("blob {}\0", head.len()).as_bytes());
            h.update(head);
            hex(&h.finalize())
        });
        Some(Digests {
            sha256: Some(hex(&sha256.finalize())),
            git_sha1,
        })
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.drop_head();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_equals_the_bytes_digests_and_breaks_out_of_order() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
        let mut s = Stream::default();
        for (i, chunk) in data.chunks(70_000).enumerate() {
            s.write(i as u64 * 70_000, chunk);
        }
        assert!(s.intact());
        assert_eq!(s.len(), data.len() as u64);
        assert_eq!(s.finish(), Some(digest_bytes(&data)));
        let mut s = Stream::default();
        s.write(0, &data[..10]);
        s.write(20, &data[20..30]);
        assert!(!s.intact());
        assert_eq!(s.finish(), None);
        // Above the LFS threshold only sha256 is streamed.
        let big = vec![7u8; (super::super::LFS_THRESHOLD + 1) as usize];
        let mut s = Stream::default();
        s.write(0, &big);
        let d = s.finish().unwrap();
        assert_eq!(d.sha256, digest_bytes(&big).sha256);
        assert_eq!(d.git_sha1, None);
    }
}
