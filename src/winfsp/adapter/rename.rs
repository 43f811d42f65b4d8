//! Renames from Windows clients, by the adapter's one case rule on both names: the source is
//! looked up in the store's spelling; a target the store has in another case is that name
//! (refused without replace, replaced keeping its spelling with it) unless it is the source
//! itself (a rename that only changes case).
//!
//! Invariants: Windows' `os.rename` never replaces, except the hub's download onto its blob,
//! which replaces as on Linux (a blob another machine stored meanwhile has the same bytes;
//! one held open by a reader is settled by comparing them); every lookup taken is released.

use winfsp::U16CStr;

use super::{HfFs, begin};
use crate::compat::libc;
use crate::error::FsError;
use crate::store::last_status;

impl HfFs {
    /// Renames `file_name` to `new_file_name` (WinFsp's `Rename`).
    pub(super) fn rename_path(
        &self,
        file_name: &U16CStr,
        new_file_name: &U16CStr,
        replace_if_exists: bool,
    ) -> winfsp::Result<()> {
        begin();
        // The access check of the new name may have kept a walk: not ours to use.
        self.drop_cached_walk();
        let (from_dir, from_name) = self.walk_parent(file_name)?;
        let (source, from_real) = match self.lookup(from_dir, &from_name.to_string_lossy()) {
            Ok(x) => x,
            Err(e) => {
                self.release_parent(from_dir);
                return Err(self.fail(e.during("rename", from_dir).name(&from_name)));
            }
        };
        let (to_dir, to_name) = match self.walk_parent(new_file_name) {
            Ok(x) => x,
            Err(e) => {
                self.release_entry(&source);
                self.release_parent(from_dir);
                return Err(e);
            }
        };
        let release = || {
            self.release_entry(&source);
            self.release_parent(from_dir);
            self.release_parent(to_dir);
        };
        // The case rule for the target: a name the store has in another case is that name
        // (refused without replace; replaced, keeping its spelling, with it) — unless it is
        // the source itself (a rename that only changes case).
        let mut target = to_name.clone();
        match self.lookup(to_dir, &to_name.to_string_lossy()) {
            Ok((e, real)) => {
                let is_source = self.view.same_store_entry(e.attr.ino, source.attr.ino);
                self.release_entry(&e);
                if !is_source {
                    target = real;
                }
            }
            Err(FsError::NotFound) => last_status::clear(),
            Err(e) => {
                release();
                return Err(self.fail(e.during("rename", from_dir).name(&from_name)));
            }
        }
        // Windows' `os.rename` never replaces; the hub's download ends with one onto its
        // blob, which on Linux replaces a blob another machine stored meanwhile.
        let download = !replace_if_exists
            && self
                .view
                .is_blob_download(from_dir, &from_real, to_dir, &target);
        let flags = if replace_if_exists || download {
            0
        } else {
            libc::RENAME_NOREPLACE
        };
        let mut res = self
            .view
            .rename(from_dir, &from_real, to_dir, &target, flags);
        if download && matches!(res, Err(FsError::Store(_))) {
            // The blob is in use (a reader holds it open): done if it has these bytes.
            match self.view.settle_blob_download(to_dir, &from_real, &target) {
                Ok(true) => res = Ok(()),
                Ok(false) => {}
                Err(e) => log::debug!("blob download: comparing with the blob: {e}"),
            }
        }
        release();
        self.changed();
        res.map_err(|e| self.fail(e.during("rename", from_dir).name(&from_name)))
    }
}
