//! Directory listings for WinFsp: the view's listing of a directory context, in Windows
//! names, filtered by the search pattern, into the context's directory buffer.
//!
//! Invariants: every lookup the listing makes is forgotten at once; of names that differ
//! only in case one is listed ([`crate::winfsp::names::shown_in_listing`]); `.` and `..` are
//! listed everywhere but at the root, and match every pattern.

use std::ffi::{OsStr, OsString};

use winfsp::U16CStr;
use winfsp::filesystem::{DirInfo, DirMarker, WideNameInfo};

use super::{FileCtx, HfFs, begin, nt};
use crate::inode::ROOT_INO;
use crate::view::Attr;
use crate::winfsp::{names, pattern, status};

impl HfFs {
    /// Lists directory context `ctx` into `buffer` from `marker` on (WinFsp's `ReadDirectory`).
    pub(super) fn list_into(
        &self,
        ctx: &FileCtx,
        pattern: Option<&U16CStr>,
        marker: DirMarker,
        buffer: &mut [u8],
    ) -> winfsp::Result<u32> {
        if !ctx.is_dir {
            return Err(nt(status::STATUS_NOT_A_DIRECTORY));
        }
        begin();
        let dir_fh = self
            .dir_handle(ctx)
            .map_err(|e| self.fail(e.during("read_directory", ctx.ino)))?;
        if let Ok(lock) = ctx.dir_buffer.acquire(marker.is_none(), None) {
            let pattern = pattern.map(|p| p.to_string_lossy());
            let mut entries: Vec<(String, Attr)> = Vec::new();
            if ctx.ino != ROOT_INO {
                let a = self
                    .attr_of(ctx)
                    .map_err(|e| self.fail(e.during("read_directory", ctx.ino)))?;
                entries.push((".".into(), a.clone()));
                entries.push(("..".into(), a));
            }
            let mut listed: Vec<(OsString, Attr)> = Vec::new();
            self.view
                .readdirplus(dir_fh, 0, |name, _off, e| {
                    if name != "." && name != ".." {
                        listed.push((name.to_os_string(), e.attr.clone()));
                        self.view.forget(e.attr.ino, 1);
                    }
                    false
                })
                .map_err(|e| self.fail(e.during("read_directory", ctx.ino)))?;
            let strs: Vec<String> = listed
                .iter()
                .map(|(n, _)| n.to_string_lossy().into_owned())
                .collect();
            let refs: Vec<&str> = strs.iter().map(String::as_str).collect();
            let shown = names::shown_in_listing(&refs);
            for ((name, attr), show) in strs
                .iter()
                .zip(listed.into_iter().map(|(_, a)| a))
                .zip(shown)
            {
                if !show {
                    log::debug!("listing: {name:?} hidden behind a name that differs only in case");
                    continue;
                }
                entries.push((names::to_windows(name).into_owned(), attr));
            }
            for (name, attr) in entries {
                if let Some(p) = &pattern
                    && name != "."
                    && name != ".."
                    && !pattern::matches(p, &name)
                {
                    continue;
                }
                let mut di: DirInfo = DirInfo::new();
                if di.set_name(OsStr::new(&name)).is_err() {
                    continue; // longer than a WinFsp name buffer: not listable
                }
                self.fill(di.file_info_mut(), &attr);
                lock.write(&mut di)?;
            }
        }
        Ok(ctx.dir_buffer.read(marker, buffer))
    }
}
