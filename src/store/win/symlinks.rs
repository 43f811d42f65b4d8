//! Links in the Windows store: reparse points read (`FSCTL_GET_REPARSE_POINT`) and classified,
//! link texts read ([`WinStore::readlink`]) and made ([`WinStore::symlink`], or XSym files in
//! a store whose links are XSym files), hard links, and the probe of the right to make links.
//!
//! Invariants: no link is followed here; absolute link texts below the store root are
//! rewritten relative to the link's directory, any other absolute text is left for the core
//! to refuse; a successful link probe is remembered, a failed one is asked again.

use super::*;

pub(super) fn reparse_tag(h: &impl AsRawHandle) -> io::Result<u32> {
    let mut info = [0u32; 2]; // FILE_ATTRIBUTE_TAG_INFO { FileAttributes, ReparseTag }
    // SAFETY: the buffer is 8 writable bytes, the size of FILE_ATTRIBUTE_TAG_INFO.
    let ok = unsafe {
        ffi::GetFileInformationByHandleEx(
            raw(h),
            FILE_ATTRIBUTE_TAG_INFO,
            info.as_mut_ptr().cast::<c_void>(),
            8,
        )
    };
    if ok == 0 {
        return Err(last_error());
    }
    Ok(info[1])
}

/// The reparse buffer of an open reparse point.
pub(super) fn reparse_buffer(h: &impl AsRawHandle) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; reparse::MAXIMUM_REPARSE_DATA_BUFFER_SIZE + 8];
    let mut got = 0u32;
    // SAFETY: the output buffer is `buf.len()` writable bytes; no input buffer; `got` is a
    // valid out-parameter; the handle is open and synchronous (no OVERLAPPED).
    let ok = unsafe {
        ffi::DeviceIoControl(
            raw(h),
            FSCTL_GET_REPARSE_POINT,
            std::ptr::null(),
            0,
            buf.as_mut_ptr().cast::<c_void>(),
            buf.len() as u32,
            &mut got,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(last_error());
    }
    buf.truncate(got as usize);
    Ok(buf)
}

/// How a reparse point shows: as a link, a special file, or the file/dir itself.
pub(super) fn reparse_kind(h: &impl AsRawHandle, tag: u32, is_dir: bool) -> Kind {
    let plain = if is_dir { Kind::Dir } else { Kind::File };
    match tag {
        reparse::IO_REPARSE_TAG_SYMLINK
        | reparse::IO_REPARSE_TAG_MOUNT_POINT
        | reparse::IO_REPARSE_TAG_LX_SYMLINK => Kind::Symlink,
        reparse::IO_REPARSE_TAG_NFS => {
            match reparse_buffer(h).ok().and_then(|b| reparse::parse(&b)) {
                Some(reparse::Reparse::Link(_)) => Kind::Symlink,
                _ => Kind::Special,
            }
        }
        reparse::IO_REPARSE_TAG_AF_UNIX
        | reparse::IO_REPARSE_TAG_LX_FIFO
        | reparse::IO_REPARSE_TAG_LX_CHR
        | reparse::IO_REPARSE_TAG_LX_BLK => Kind::Special,
        // Another link kind: never followed, hidden.
        t if t & reparse::NAME_SURROGATE_BIT != 0 => Kind::Special,
        // Not a link (deduplication, cloud placeholder, …): the file or directory itself.
        _ => plain,
    }
}

impl WinStore {
    /// The text of the link at `p`: a reparse point's target, or an XSym file's; `EINVAL` for
    /// anything else. An absolute text below the store root comes back relative to the
    /// link's directory.
    pub fn readlink(&self, p: &StorePath) -> io::Result<Vec<u8>> {
        calls::add(|c| c.readlink += 1);
        let h = self.open_entry(p, FILE_READ_ATTRIBUTES | FILE_READ_DATA, FILE_OPEN, 0)?;
        let info = by_handle(&h)?;
        if info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT == 0 {
            let size = u64::from(info.nFileSizeHigh) << 32 | u64::from(info.nFileSizeLow);
            if info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY == 0
                && xsym::may_be_xsym(size)
                && self.xsym_links(p)
            {
                let mut buf = vec![0u8; xsym::XSYM_SIZE as usize];
                let f = File::from(h);
                let n = FileExt::read_at(&f, &mut buf, 0)?;
                if let Some(l) = xsym::parse(&buf[..n]) {
                    return Ok(l.text);
                }
            }
            return Err(errno(libc::EINVAL));
        }
        let link = match reparse::parse(&reparse_buffer(&h)?) {
            Some(reparse::Reparse::Link(l)) => l,
            _ => return Err(errno(libc::EINVAL)),
        };
        if link.absolute {
            for root in &self.roots {
                if let Some(rest) = links::strip_root(&link.text, root) {
                    let inside = crate::path::link_target(&StorePath::root(), rest, &[])
                        .map_err(|_| errno(libc::EXDEV))?;
                    let rel = inside.relative_from(&p.parent());
                    return Ok(rel.as_os_str().as_encoded_bytes().to_vec());
                }
            }
        }
        Ok(link.text)
    }

    /// Checks that links can be created in directory `dir` (the right to create symbolic
    /// links on the store): creates a link under a temporary name and removes it. A success
    /// is remembered for the life of the store (rights do not come and go); a failure is
    /// asked again next time.
    pub fn can_symlink(&self, dir: &StorePath) -> io::Result<()> {
        use std::sync::atomic::Ordering;
        if self.symlinks_ok.load(Ordering::Relaxed) {
            return Ok(());
        }
        let name = format!(".hfcachefs-linkprobe-{}", std::process::id());
        let p = dir
            .join(OsStr::new(&name))
            .ok_or_else(|| errno(libc::EINVAL))?;
        self.symlink(Path::new("."), &p)?;
        let _ = self.unlink(&p);
        self.symlinks_ok.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Creates a relative link at `p` with the given text: an NTFS symlink (needs the right
    /// to create symbolic links on the store: `EPERM` otherwise), or, in a store whose links
    /// are XSym files (the `xsym` option; never in `blobs/`), an XSym file — the form Linux
    /// SMB clients with `mfsymlinks` write and read, which needs no right beyond writing.
    pub fn symlink(&self, text: &Path, p: &StorePath) -> io::Result<()> {
        let t = text.to_str().ok_or_else(|| errno(libc::EINVAL))?;
        if links::is_absolute(t.as_bytes()) {
            return Err(errno(libc::EXDEV));
        }
        if self.xsym_links(p) {
            // XSym texts are POSIX paths: Linux clients that read them take `\` for a name
            // character, so the Windows separators become `/`.
            let posix = t.replace('\\', "/");
            let body = xsym::format(posix.as_bytes()).ok_or_else(|| errno(libc::ENAMETOOLONG))?;
            let h = self.open_entry(
                p,
                FILE_WRITE_DATA | DELETE,
                FILE_CREATE,
                FILE_NON_DIRECTORY_FILE,
            )?;
            let f = File::from(h);
            if let Err(e) = FileExt::write_all_at(&f, &body, 0) {
                let _ = Self::delete(&OwnedHandle::from(f));
                return Err(e);
            }
            return Ok(());
        }
        let buf = reparse::relative_symlink_buffer(t).ok_or_else(|| errno(libc::ENAMETOOLONG))?;
        let h = self.open_entry(
            p,
            FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES | DELETE,
            FILE_CREATE,
            FILE_NON_DIRECTORY_FILE,
        )?;
        let mut got = 0u32;
        // SAFETY: the input buffer is `buf.len()` readable bytes; no output buffer; `got` is
        // a valid out-parameter; the handle is open and synchronous.
        let ok = unsafe {
            ffi::DeviceIoControl(
                h.as_raw_handle() as ffi::HANDLE,
                FSCTL_SET_REPARSE_POINT,
                buf.as_ptr().cast::<c_void>(),
                buf.len() as u32,
                std::ptr::null_mut(),
                0,
                &mut got,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            let e = last_error();
            let _ = Self::delete(&h);
            return Err(e);
        }
        Ok(())
    }

    /// Creates a hard link `to` of the non-link entry `from`.
    pub fn link(&self, from: &StorePath, to: &StorePath) -> io::Result<()> {
        let h = self.open_entry(
            from,
            FILE_READ_ATTRIBUTES,
            FILE_OPEN,
            FILE_NON_DIRECTORY_FILE,
        )?;
        let (tdir, tname) = self.parent_and_name(to)?;
        nt_result(set_info(
            &h,
            FILE_LINK_INFORMATION,
            &rename_info(0, tdir.as_raw_handle(), &wide(tname)),
        ))
    }
}
