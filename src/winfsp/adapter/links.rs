//! A symlink a Windows client creates (`FSCTL_SET_REPARSE_POINT` on the entry it just made)
//! becomes a link in the store, and the entry the client made gives way to it. Only relative
//! symlinks are kept: junctions and absolute targets mean nothing on the store's other
//! clients (`STATUS_IO_REPARSE_TAG_NOT_HANDLED`).
//!
//! Invariants: the entry is replaced only while it is empty (a new file or directory); if
//! the store refuses the link, the client's entry is put back so its own clean-up finds it.

use std::path::Path;
use std::sync::atomic::Ordering;

use winfsp::U16CStr;

use super::{FileCtx, HfFs, begin, nt};
use crate::compat::libc;
use crate::view::Caller;
use crate::winfsp::{attrs, names, status};

impl HfFs {
    /// Stores the reparse point `buffer` set on `ctx` (`file_name`) as a link.
    pub(super) fn store_link(
        &self,
        ctx: &FileCtx,
        file_name: &U16CStr,
        buffer: &[u8],
    ) -> winfsp::Result<()> {
        begin();
        let text = match crate::links::reparse::parse(buffer) {
            Some(crate::links::reparse::Reparse::Link(l))
                if crate::links::reparse::tag(buffer)
                    == Some(crate::links::reparse::IO_REPARSE_TAG_SYMLINK)
                    && !l.absolute =>
            {
                l.text
            }
            // Junctions, absolute targets (another drive, a UNC path) and other kinds are
            // not links the store can keep for every machine.
            _ => return Err(nt(status::STATUS_IO_REPARSE_TAG_NOT_HANDLED)),
        };
        let text = String::from_utf8_lossy(&text)
            .split('\\')
            .map(|c| names::from_windows(c).into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let a = self
            .attr_of(ctx)
            .map_err(|e| self.fail(e.during("set_reparse_point", ctx.ino)))?;
        let empty = if ctx.is_dir {
            self.list(ctx.ino)
                .map_err(|e| self.fail(e.during("set_reparse_point", ctx.ino)))?
                .is_empty()
        } else {
            a.size == 0
        };
        if !empty {
            return Err(nt(if ctx.is_dir {
                status::STATUS_DIRECTORY_NOT_EMPTY
            } else {
                status::STATUS_IO_REPARSE_DATA_INVALID
            }));
        }
        let (parent, name) = self.walk_parent(file_name)?;
        // The client's own handle on the entry must not keep its name alive (stores without
        // POSIX deletes remove a name at its last close): the context reads nothing more.
        if let Some(fh) = ctx.fh()
            && !ctx.released.swap(true, Ordering::Relaxed)
        {
            self.view.release(fh, None);
        }
        let res = self
            .lookup(parent, &name.to_string_lossy())
            .and_then(|(e, real)| {
                self.release_entry(&e);
                if ctx.is_dir {
                    self.view.rmdir(parent, &real)?;
                } else {
                    self.view.unlink(parent, &real)?;
                }
                let made = self
                    .view
                    .symlink(parent, &real, Path::new(&text), Caller::default());
                if made.is_err() {
                    // Put back what the client created, so its own clean-up finds it.
                    let back = if ctx.is_dir {
                        self.view
                            .mkdir(parent, &real, attrs::new_mode(true), 0, Caller::default())
                    } else {
                        self.view.mknod(
                            parent,
                            &real,
                            libc::S_IFREG | attrs::new_mode(false),
                            0,
                            Caller::default(),
                        )
                    };
                    if let Ok(e) = back {
                        self.release_entry(&e);
                    }
                }
                made
            });
        self.release_parent(parent);
        self.changed();
        let entry = res.map_err(|e| self.fail(e.during("set_reparse_point", ctx.ino)))?;
        // The link's transient entry holds one lookup, as a reply to the kernel would.
        self.view.forget(entry.attr.ino, 1);
        Ok(())
    }
}
