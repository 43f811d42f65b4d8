//! Changes to the Windows store: directories made, entries deleted (by disposition on a
//! handle opened with delete access) and renamed.
//!
//! Invariants: an entry is deleted or renamed through a handle of the entry itself (never
//! following it); the `…Ex` information classes are tried first and the classic ones taken
//! where the server does not know them; a delete refused by the store is reported, never
//! taken as done.

use super::*;

impl WinStore {
    /// Opens `p` with delete access (not following it), as a delete or rename of it would:
    /// the store's answer (`ACCESS_DENIED`, `SHARING_VIOLATION`, `DELETE_PENDING`, …) comes
    /// now. While the returned handle is open, nobody can open `p` in a way that would make
    /// the delete fail (the store refuses opens that do not share delete access).
    pub fn open_for_delete(&self, p: &StorePath) -> io::Result<File> {
        let h = self.open_entry(p, DELETE | FILE_READ_ATTRIBUTES, FILE_OPEN, 0)?;
        Ok(File::from(h))
    }

    /// Creates a directory.
    pub fn mkdir(&self, p: &StorePath, _mode: u32) -> io::Result<()> {
        self.open_entry(p, FILE_LIST_DIRECTORY, FILE_CREATE, FILE_DIRECTORY_FILE)
            .map(drop)
    }

    /// Marks an open entry deleted (POSIX semantics where the server has them).
    ///
    /// The read-only attribute never stops it, as the mode of a file never stops `unlink` on
    /// Linux: where the server does not understand `IGNORE_READONLY_ATTRIBUTE` (the classic
    /// disposition answers `STATUS_CANNOT_DELETE`), the attribute is cleared first.
    pub(super) fn delete(h: &OwnedHandle) -> io::Result<()> {
        // FILE_DISPOSITION_DELETE | POSIX_SEMANTICS | IGNORE_READONLY_ATTRIBUTE
        let st = set_info(h, FILE_DISPOSITION_INFORMATION_EX, &0x13u32.to_le_bytes());
        if !class_unsupported(st) {
            return nt_result(st);
        }
        let st = set_info(h, FILE_DISPOSITION_INFORMATION, &[1]);
        if st != STATUS_CANNOT_DELETE {
            return nt_result(st);
        }
        let attrs = by_handle(h)?.dwFileAttributes;
        if attrs & FILE_ATTRIBUTE_READONLY == 0 {
            return nt_result(st);
        }
        // FILE_BASIC_INFORMATION: four times (0: unchanged), then the attributes.
        let mut basic = [0u8; 40];
        let keep = attrs & !FILE_ATTRIBUTE_READONLY;
        let keep = if keep == 0 {
            FILE_ATTRIBUTE_NORMAL
        } else {
            keep
        };
        basic[32..36].copy_from_slice(&keep.to_le_bytes());
        let w = nt_reopen(h.as_raw_handle(), FILE_WRITE_ATTRIBUTES, 0)?;
        nt_result(set_info(&w, FILE_BASIC_INFORMATION, &basic))?;
        nt_result(set_info(h, FILE_DISPOSITION_INFORMATION, &[1]))
    }

    /// Removes a non-directory entry (a file, or a link itself).
    pub fn unlink(&self, p: &StorePath) -> io::Result<()> {
        let h = self.open_entry(p, DELETE | FILE_READ_ATTRIBUTES, FILE_OPEN, 0)?;
        let info = by_handle(&h)?;
        let attrs = info.dwFileAttributes;
        if attrs & FILE_ATTRIBUTE_DIRECTORY != 0 && attrs & FILE_ATTRIBUTE_REPARSE_POINT == 0 {
            return Err(errno(libc::EISDIR));
        }
        Self::delete(&h)
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, p: &StorePath) -> io::Result<()> {
        let h = self.open_entry(
            p,
            DELETE | FILE_READ_ATTRIBUTES,
            FILE_OPEN,
            FILE_DIRECTORY_FILE,
        )?;
        if by_handle(&h)?.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            return Err(errno(libc::ENOTDIR));
        }
        Self::delete(&h)
    }

    /// Renames `from` to `to`; `flags` are `renameat2` flags (`RENAME_NOREPLACE`;
    /// `RENAME_EXCHANGE` is `EINVAL`).
    pub fn rename(&self, from: &StorePath, to: &StorePath, flags: u32) -> io::Result<()> {
        if flags & libc::RENAME_EXCHANGE != 0 || flags & !libc::RENAME_NOREPLACE != 0 {
            return Err(errno(libc::EINVAL));
        }
        let replace = flags & libc::RENAME_NOREPLACE == 0;
        let h = self.open_entry(from, DELETE | FILE_READ_ATTRIBUTES, FILE_OPEN, 0)?;
        let (tdir, tname) = self.parent_and_name(to)?;
        let name = wide(tname);
        // FILE_RENAME_REPLACE_IF_EXISTS | FILE_RENAME_POSIX_SEMANTICS
        let ex_flags = if replace { 0x1 | 0x2 } else { 0x2 };
        let st = set_info(
            &h,
            FILE_RENAME_INFORMATION_EX,
            &rename_info(ex_flags, tdir.as_raw_handle(), &name),
        );
        if class_unsupported(st) {
            let st = set_info(
                &h,
                FILE_RENAME_INFORMATION,
                &rename_info(u32::from(replace), tdir.as_raw_handle(), &name),
            );
            return nt_result(st);
        }
        nt_result(st)
    }
}
