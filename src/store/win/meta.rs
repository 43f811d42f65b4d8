//! Metadata of an open store handle as the core's [`Meta`].
//!
//! Invariants: a name-surrogate reparse point shows as a link, other reparse points as what
//! they contain or a special file; modes are fixed (0644/0444 files, 0755 directories,
//! owner 0); a server that reports no file ID gets one hashed from the final path.

use super::*;

impl Meta {
    /// Metadata of an open store file or directory.
    pub fn of_fd(f: &impl AsRawHandle) -> io::Result<Meta> {
        calls::add(|c| c.fstat += 1);
        let info = by_handle(f)?;
        let attrs = info.dwFileAttributes;
        let is_dir = attrs & FILE_ATTRIBUTE_DIRECTORY != 0;
        let kind = if attrs & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            reparse_kind(f, reparse_tag(f)?, is_dir)
        } else if is_dir {
            Kind::Dir
        } else {
            Kind::File
        };
        let ft = |t: ffi::FILETIME| {
            from_filetime(u64::from(t.dwHighDateTime) << 32 | u64::from(t.dwLowDateTime))
                .unwrap_or(std::time::UNIX_EPOCH)
        };
        let size = u64::from(info.nFileSizeHigh) << 32 | u64::from(info.nFileSizeLow);
        let mut ino = u64::from(info.nFileIndexHigh) << 32 | u64::from(info.nFileIndexLow);
        if ino == 0 {
            // The server reports no file IDs: one per final path instead.
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            final_path(f).unwrap_or_default().hash(&mut hasher);
            ino = hasher.finish() | 1 << 63;
        }
        let perm = match (is_dir, attrs & FILE_ATTRIBUTE_READONLY != 0) {
            (true, _) => 0o755,
            (false, true) => 0o444,
            (false, false) => 0o644,
        };
        Ok(Meta {
            kind,
            dev: u64::from(info.dwVolumeSerialNumber),
            ino,
            size: if is_dir { 0 } else { size },
            blocks: size.div_ceil(512),
            perm,
            nlink: info.nNumberOfLinks.max(1),
            uid: 0,
            gid: 0,
            blksize: 4096,
            atime: ft(info.ftLastAccessTime),
            mtime: ft(info.ftLastWriteTime),
            ctime: ft(info.ftLastWriteTime),
            // NTFS file ids carry a sequence number: a reused record gets a new id.
            born: 0,
        })
    }
}
