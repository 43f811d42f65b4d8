//! Whole-directory listings of the Windows store ([`WinStore::read_dir`]) and the parser of
//! `FILE_ID_BOTH_DIR_INFO` chains.
//!
//! Invariants: a listing never includes `.` and `..`; the parser never reads past the buffer
//! (a short record ends the chain); reparse points are listed without a kind, so the core
//! looks at each.

use super::*;

/// Entries of a `FILE_ID_BOTH_DIR_INFO` chain: (name, attributes, reparse tag, file id).
pub(super) fn parse_dir_info(buf: &[u8]) -> Vec<(Vec<u16>, u32, u32, u64)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let u32_at = |b: &[u8], i: usize| {
        b.get(i..i + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    loop {
        let e = match buf.get(at..) {
            Some(e) if e.len() >= 104 => e,
            _ => break,
        };
        let (Some(next), Some(attrs), Some(len), Some(ea)) =
            (u32_at(e, 0), u32_at(e, 56), u32_at(e, 60), u32_at(e, 64))
        else {
            break;
        };
        let id = e
            .get(96..104)
            .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])));
        if let Some(name) = e.get(104..104 + len as usize) {
            let name: Vec<u16> = name
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            out.push((name, attrs, ea, id));
        }
        if next == 0 {
            break;
        }
        at += next as usize;
    }
    out
}

impl WinStore {
    /// Lists directory `p` (without `.` and `..`). Reparse points are listed without a kind,
    /// so the core looks at each.
    pub fn read_dir(&self, p: &StorePath) -> io::Result<Vec<RawEntry>> {
        calls::add(|c| c.read_dir += 1);
        // A handle of its own: the listing position lives in the handle.
        let h = nt_reopen(
            self.walk_dir(p)?.as_raw_handle(),
            FILE_LIST_DIRECTORY,
            FILE_DIRECTORY_FILE | FILE_OPEN_FOR_BACKUP_INTENT,
        )?;
        let mut out = Vec::new();
        let mut buf = vec![0u64; 64 * 1024 / 8];
        let mut class = FILE_ID_BOTH_DIRECTORY_RESTART_INFO;
        loop {
            calls::add(|c| c.dir_query += 1);
            // SAFETY: `buf` is 64 KiB of writable, 8-byte aligned memory; the handle is an
            // open, synchronous directory handle.
            let ok = unsafe {
                ffi::GetFileInformationByHandleEx(
                    h.as_raw_handle() as ffi::HANDLE,
                    class,
                    buf.as_mut_ptr().cast::<c_void>(),
                    (buf.len() * 8) as u32,
                )
            };
            if ok == 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(ERROR_NO_MORE_FILES) {
                    break;
                }
                return Err(errno_error(e));
            }
            class = FILE_ID_BOTH_DIRECTORY_INFO;
            // SAFETY: reinterpreting the u64 buffer as bytes of the same length.
            let bytes =
                unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), buf.len() * 8) };
            for (name, attrs, _tag, id) in parse_dir_info(bytes) {
                if name == [b'.' as u16] || name == [b'.' as u16, b'.' as u16] {
                    continue;
                }
                let kind = if attrs & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
                    None
                } else if attrs & FILE_ATTRIBUTE_DIRECTORY != 0 {
                    Some(Kind::Dir)
                } else {
                    Some(Kind::File)
                };
                out.push(RawEntry {
                    name: OsString::from_wide(&name),
                    kind,
                    ino: id,
                });
            }
        }
        Ok(out)
    }
}
