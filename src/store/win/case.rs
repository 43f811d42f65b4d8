//! Names in another case: the spellings of one name in a directory, found by directory
//! queries for that name (or its case pattern), never by listing the directory.
//!
//! Invariants: lookups never list; whether the store is case-insensitive is learnt once, at
//! the first query that finds a name with a cased letter, and only ever saves queries.

use super::*;

pub(super) const CASE_UNKNOWN: u8 = 0;
pub(super) const CASE_INSENSITIVE: u8 = 1;
pub(super) const CASE_SENSITIVE: u8 = 2;

/// `name` with the case of its first cased letter swapped (`None` without one): a spelling
/// only a case-insensitive store takes for `name`.
pub(super) fn swap_case(name: &str) -> Option<String> {
    let i = name
        .char_indices()
        .find(|(_, c)| c.to_lowercase().ne(c.to_uppercase()))?
        .0;
    let c = name[i..].chars().next()?;
    let swapped: String = if c.is_uppercase() {
        c.to_lowercase().collect()
    } else {
        c.to_uppercase().collect()
    };
    Some(format!(
        "{}{swapped}{}",
        &name[..i],
        &name[i + c.len_utf8()..]
    ))
}

/// A directory-query pattern matching every spelling of `name` in another case: each cased
/// letter is `?` (`None` if `name` has no cased letter: no other spelling exists).
pub(super) fn case_pattern(name: &str) -> Option<String> {
    let mut cased = false;
    let p = name
        .chars()
        .map(|c| {
            if c.to_lowercase().ne(c.to_uppercase()) {
                cased = true;
                '?'
            } else {
                c
            }
        })
        .collect();
    cased.then_some(p)
}

impl WinStore {
    /// The names in directory `dir` that may be `name` in another case, in the store's own
    /// spelling, without listing the directory: one directory query with `name` as its file
    /// name (`NtQueryDirectoryFile`). A case-insensitive store (NTFS, SMB servers, Samba's
    /// default) answers with every spelling it has. A case-sensitive one answers only the
    /// exact name; where it has none, one more query with every cased letter of `name`
    /// replaced by `?` returns the names of the same shape, among which the caller compares.
    /// Whether the store is case-insensitive is learnt at the first query that finds a name
    /// with a cased letter (one query more, once); until then a miss takes the second query.
    pub fn find_names(&self, dir: &StorePath, name: &OsStr) -> io::Result<Vec<OsString>> {
        use std::sync::atomic::Ordering;
        let found = self.query_names(dir, name)?;
        let mode = self.case_mode.load(Ordering::Relaxed);
        if !found.is_empty() {
            if mode == CASE_UNKNOWN
                && let Some(other) = name.to_str().and_then(swap_case)
                && found.iter().any(|f| f == name)
            {
                let again = self.query_names(dir, OsStr::new(&other))?;
                let insensitive = again.iter().any(|f| f == name);
                self.case_mode.store(
                    if insensitive {
                        CASE_INSENSITIVE
                    } else {
                        CASE_SENSITIVE
                    },
                    Ordering::Relaxed,
                );
            }
            return Ok(found);
        }
        if mode == CASE_INSENSITIVE {
            return Ok(found);
        }
        match name.to_str().and_then(case_pattern) {
            Some(p) => self.query_names(dir, OsStr::new(&p)),
            None => Ok(found),
        }
    }

    /// Treat the store as case-sensitive (tests: wine's drive is case-insensitive).
    #[cfg(test)]
    pub fn assume_case_sensitive(&self) {
        self.case_mode
            .store(CASE_SENSITIVE, std::sync::atomic::Ordering::Relaxed);
    }

    /// One directory query (continued while a pattern matches more) of `name` in `dir`.
    pub(super) fn query_names(&self, dir: &StorePath, name: &OsStr) -> io::Result<Vec<OsString>> {
        // A handle of its own (a new file object): a query's file name is kept by the file
        // object for every later query, so the root's shared handle cannot be used.
        let h = if dir.is_root() {
            nt_reopen(
                self.root.as_raw_handle(),
                FILE_LIST_DIRECTORY,
                FILE_DIRECTORY_FILE | FILE_OPEN_FOR_BACKUP_INTENT,
            )?
        } else {
            self.walk_dir(dir)?
        };
        let mut w = wide(name);
        if w.is_empty() || w.len() > 32_000 {
            return Err(errno(libc::EINVAL));
        }
        let bytes = (w.len() * 2) as u16;
        let us = ffi::UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: w.as_mut_ptr(),
        };
        let has_wildcards = w
            .iter()
            .any(|&c| matches!(c, 0x2A | 0x3F | 0x3C | 0x3E | 0x22));
        let mut out = Vec::new();
        let mut buf = vec![0u64; 16 * 1024 / 8];
        let mut restart = true;
        loop {
            calls::add(|c| c.dir_query += 1);
            let mut iosb = ffi::IO_STATUS_BLOCK::default();
            // SAFETY: `buf` is 16 KiB of writable, 8-byte aligned memory; `us` borrows `w`,
            // both live for the call; the handle is an open, synchronous directory handle
            // (no event, no APC).
            let st = unsafe {
                ffi::NtQueryDirectoryFile(
                    raw(&h),
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null(),
                    &mut iosb,
                    buf.as_mut_ptr().cast::<c_void>(),
                    (buf.len() * 8) as u32,
                    FILE_ID_BOTH_DIRECTORY_INFORMATION,
                    false,
                    &us,
                    restart,
                )
            };
            restart = false;
            if st == STATUS_NO_SUCH_FILE || st == STATUS_NO_MORE_FILES {
                return Ok(out);
            }
            nt_result(st)?;
            // SAFETY: reinterpreting the u64 buffer as bytes of the same length.
            let bytes =
                unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), buf.len() * 8) };
            let n = iosb.Information.min(bytes.len());
            for (found, _, _, _) in parse_dir_info(&bytes[..n]) {
                if found != [b'.' as u16] && found != [b'.' as u16, b'.' as u16] {
                    out.push(OsString::from_wide(&found));
                }
            }
            // A name without wildcards matches one entry per spelling, and every spelling
            // fits one 16 KiB answer: no second round trip to hear "no more". A pattern
            // matching a whole directory: what was found is enough to choose.
            if !has_wildcards || out.len() > 4096 {
                return Ok(out);
            }
        }
    }
}
