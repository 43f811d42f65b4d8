//! The two ways `tests/model_prop.rs` drives the view: calling `CacheView` in-process as the
//! kernel would (path walks by lookup, create/open/write/release, the VFS's own rename
//! checks), and through a real FUSE mount with `std::fs`.
//!
//! Invariant: both report errors as errno values and the tree as path → directory or bytes,
//! plus each file's inode number, so one comparison judges both.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use hfcachefs::inode::{Ino, ROOT_INO};
use hfcachefs::store::Store;
use hfcachefs::view::{AttrKind, CacheView, Caller, Fh, OpenFlags, ViewConfig};

use super::harness::Mount;
use super::reference::{self, Outcome, Reference, Shown};

/// One way of reaching the view.
pub trait Driver {
    /// The store, without injected faults (for the oracle and changes behind the view).
    fn store(&self) -> &Store;
    fn write_new(&mut self, p: &str, bytes: &[u8]) -> Outcome;
    fn overwrite(&mut self, p: &str, bytes: &[u8]) -> Outcome;
    fn unlink(&mut self, p: &str) -> Outcome;
    fn rename(&mut self, a: &str, b: &str) -> Outcome;
    fn mkdir(&mut self, p: &str) -> Outcome;
    fn rmdir(&mut self, p: &str) -> Outcome;
    /// Everything visible, and each file's inode number.
    fn tree(&mut self) -> Result<(Shown, BTreeMap<String, u64>), String>;
    /// Waits until work the view finishes after an operation returned (copy conversions on
    /// converter threads) shows in the store, as the reference `r` predicts.
    fn settle(&mut self, _r: &Reference) {}
    /// True if listings may be cached by the kernel until the directory itself changes (a
    /// link hidden or shown by a change elsewhere is then listed stale; see
    /// `a_blob_removed_behind_the_mount_is_listed_until_its_links_directory_changes`).
    fn caches_listings(&self) -> bool {
        false
    }
}

fn split(p: &str) -> (&str, &OsStr) {
    match p.rsplit_once('/') {
        Some((d, n)) => (d, OsStr::new(n)),
        None => ("", OsStr::new(p)),
    }
}

/// `CacheView` called directly, with no converter threads: conversions are made by the
/// request that completes a file, so every step is finished when its call returns.
pub struct InProcess {
    view: CacheView,
    plain: Store,
}

impl InProcess {
    /// A view over `store` (which may inject faults); `plain` is the same store without.
    pub fn new(store: Store, plain: Store) -> InProcess {
        let config = ViewConfig {
            entry_ttl: Duration::ZERO,
            attr_ttl: Duration::ZERO,
            ..ViewConfig::default()
        };
        InProcess {
            view: CacheView::new(store, config),
            plain,
        }
    }

    /// Looks every component up from the root, as the kernel does before an operation.
    fn walk(&self, p: &str) -> Result<Ino, i32> {
        let mut ino = ROOT_INO;
        for c in p.split('/').filter(|c| !c.is_empty()) {
            ino = self
                .view
                .lookup(ino, OsStr::new(c))
                .map_err(|e| e.errno())?
                .attr
                .ino;
        }
        Ok(ino)
    }

    fn write_all(&self, fh: Fh, bytes: &[u8]) -> Outcome {
        let res = self.view.write(fh, 0, bytes).map_err(|e| e.errno());
        self.view.release(fh, None);
        match res {
            Ok(n) if n as usize == bytes.len() => Ok(()),
            Ok(_) => Err(libc::EIO),
            Err(e) => Err(e),
        }
    }

    fn read_all(&self, ino: Ino) -> Result<Vec<u8>, String> {
        let h = self
            .view
            .open(ino, OpenFlags::READ)
            .map_err(|e| format!("open {ino}: {e}"))?;
        let data = self.view.read(h.fh, 0, 1 << 20);
        self.view.release(h.fh, None);
        data.map_err(|e| format!("read {ino}: {e}"))
    }
}

impl Driver for InProcess {
    fn store(&self) -> &Store {
        &self.plain
    }

    fn write_new(&mut self, p: &str, bytes: &[u8]) -> Outcome {
        let (dir, name) = split(p);
        let parent = self.walk(dir)?;
        // The kernel creates only names its lookup did not find.
        if self.view.lookup(parent, name).is_ok() {
            return Err(libc::EEXIST);
        }
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
        let (_, opened) = self
            .view
            .create(
                parent,
                name,
                0o644,
                0o022,
                OpenFlags::from_raw(flags),
                Caller::default(),
            )
            .map_err(|e| e.errno())?;
        self.write_all(opened.fh, bytes)
    }

    fn overwrite(&mut self, p: &str, bytes: &[u8]) -> Outcome {
        let ino = self.walk(p)?;
        let opened = self
            .view
            .open(ino, OpenFlags::from_raw(libc::O_WRONLY | libc::O_TRUNC))
            .map_err(|e| e.errno())?;
        self.write_all(opened.fh, bytes)
    }

    fn unlink(&mut self, p: &str) -> Outcome {
        let (dir, name) = split(p);
        self.walk(p)?;
        let parent = self.walk(dir)?;
        self.view.unlink(parent, name).map_err(|e| e.errno())
    }

    fn rename(&mut self, a: &str, b: &str) -> Outcome {
        let from = self.walk(a)?;
        let (bdir, bname) = split(b);
        let to_parent = self.walk(bdir)?;
        // The VFS: renaming a name onto another name of the same inode does nothing, and a
        // directory cannot move into itself.
        if let Ok(e) = self.view.lookup(to_parent, bname)
            && e.attr.ino == from
        {
            return Ok(());
        }
        if b.starts_with(&format!("{a}/")) {
            return Err(libc::EINVAL);
        }
        if a.starts_with(&format!("{b}/")) {
            return Err(libc::ENOTEMPTY);
        }
        let (adir, aname) = split(a);
        let from_parent = self.walk(adir)?;
        self.view
            .rename(from_parent, aname, to_parent, bname, 0)
            .map_err(|e| e.errno())
    }

    fn mkdir(&mut self, p: &str) -> Outcome {
        let (dir, name) = split(p);
        let parent = self.walk(dir)?;
        if self.view.lookup(parent, name).is_ok() {
            return Err(libc::EEXIST);
        }
        self.view
            .mkdir(parent, name, 0o755, 0o022, Caller::default())
            .map(|_| ())
            .map_err(|e| e.errno())
    }

    fn rmdir(&mut self, p: &str) -> Outcome {
        let (dir, name) = split(p);
        let ino = self.walk(p)?;
        let parent = self.walk(dir)?;
        if self
            .view
            .getattr(ino, None)
            .is_ok_and(|(a, _)| a.kind != AttrKind::Dir)
        {
            return Err(libc::ENOTDIR);
        }
        self.view.rmdir(parent, name).map_err(|e| e.errno())
    }

    fn tree(&mut self) -> Result<(Shown, BTreeMap<String, u64>), String> {
        let mut shown = Shown::new();
        let mut inos = BTreeMap::new();
        let mut stack = vec![(String::new(), ROOT_INO)];
        while let Some((dir, ino)) = stack.pop() {
            let fh = self
                .view
                .opendir(ino)
                .map_err(|e| format!("opendir {dir}: {e}"))?;
            let mut names = Vec::new();
            let res = self.view.readdir(fh, 0, |e| {
                names.push((e.name, e.kind));
                false
            });
            self.view.releasedir(fh);
            res.map_err(|e| format!("readdir {dir}: {e}"))?;
            for (name, listed) in names {
                if name == "." || name == ".." {
                    continue;
                }
                let n = name.to_str().ok_or("non-utf-8 name")?;
                let p = if dir.is_empty() {
                    n.to_string()
                } else {
                    format!("{dir}/{n}")
                };
                let e = self
                    .view
                    .lookup(ino, &name)
                    .map_err(|e| format!("lookup {p} (listed): {e}"))?;
                if e.attr.kind != listed {
                    return Err(format!(
                        "{p}: listed as {listed:?}, looked up as {:?}",
                        e.attr.kind
                    ));
                }
                match e.attr.kind {
                    AttrKind::Dir => {
                        stack.push((p.clone(), e.attr.ino));
                        shown.insert(p, None);
                    }
                    AttrKind::File => {
                        let bytes = self.read_all(e.attr.ino)?;
                        if bytes.len() as u64 != e.attr.size {
                            return Err(format!(
                                "{p}: size {} but {} bytes",
                                e.attr.size,
                                bytes.len()
                            ));
                        }
                        inos.insert(p.clone(), e.attr.ino.0);
                        shown.insert(p, Some(bytes));
                    }
                    other => return Err(format!("{p}: shown as {other:?}")),
                }
            }
        }
        Ok((shown, inos))
    }
}

/// A real mount of a real store, driven with `std::fs`.
pub struct Mounted {
    /// Unmounted when dropped, also when a step panics.
    mount: Mount,
    store: Store,
}

impl Mounted {
    pub fn new(mount: Mount, store: Store) -> Mounted {
        Mounted { mount, store }
    }
}

fn errno(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

impl Driver for Mounted {
    fn store(&self) -> &Store {
        &self.store
    }

    fn write_new(&mut self, p: &str, bytes: &[u8]) -> Outcome {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.mount.path(p))
            .map_err(errno)?;
        f.write_all(bytes).map_err(errno)
    }

    fn overwrite(&mut self, p: &str, bytes: &[u8]) -> Outcome {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.mount.path(p))
            .map_err(errno)?;
        f.write_all(bytes).map_err(errno)
    }

    fn unlink(&mut self, p: &str) -> Outcome {
        std::fs::remove_file(self.mount.path(p)).map_err(errno)
    }

    fn rename(&mut self, a: &str, b: &str) -> Outcome {
        std::fs::rename(self.mount.path(a), self.mount.path(b)).map_err(errno)
    }

    fn mkdir(&mut self, p: &str) -> Outcome {
        std::fs::create_dir(self.mount.path(p)).map_err(errno)
    }

    fn rmdir(&mut self, p: &str) -> Outcome {
        std::fs::remove_dir(self.mount.path(p)).map_err(errno)
    }

    fn tree(&mut self) -> Result<(Shown, BTreeMap<String, u64>), String> {
        let mut shown = Shown::new();
        let mut inos = BTreeMap::new();
        let root = self.mount.mp.clone();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            let rd = std::fs::read_dir(&d).map_err(|e| format!("read_dir {}: {e}", d.display()))?;
            for e in rd {
                let e = e.map_err(|e| format!("readdir {}: {e}", d.display()))?;
                let path = e.path();
                let rel = path
                    .strip_prefix(&root)
                    .map_err(|e| e.to_string())?
                    .to_str()
                    .ok_or("non-utf-8 name")?
                    .to_string();
                let m =
                    std::fs::symlink_metadata(&path).map_err(|e| format!("lstat {rel}: {e}"))?;
                if m.is_dir() {
                    stack.push(path);
                    shown.insert(rel, None);
                } else if m.is_file() {
                    let bytes = std::fs::read(&path).map_err(|e| format!("read {rel}: {e}"))?;
                    inos.insert(rel.clone(), m.ino());
                    shown.insert(rel, Some(bytes));
                } else {
                    return Err(format!("{rel}: neither file nor directory"));
                }
            }
        }
        Ok((shown, inos))
    }

    fn caches_listings(&self) -> bool {
        true
    }

    /// Copy conversions run on the daemon's converter threads after the client's close:
    /// wait (bounded) until every name the reference shows as a link to a blob is one in
    /// the store, and the store shows the predicted names.
    fn settle(&mut self, r: &Reference) {
        let want = reference::shown(r);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let store = reference::oracle(&self.store);
            let linked = r.iter().all(|(p, e)| match (e, store.get(p)) {
                (
                    reference::Ent::File { real, .. },
                    Some(reference::Ent::File { real: now, .. }),
                ) => reference::is_blob(real) == reference::is_blob(now),
                _ => true,
            });
            if linked && reference::shown(&store) == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
