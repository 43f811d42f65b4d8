//! Link resolution confined to the store.
//!
//! The view never asks the OS to follow a link. [`Resolver::resolve_link`] reads the link
//! text, maps it lexically to a store path ([`crate::path::link_target`]), and walks that
//! path component by component, resolving every link it meets the same way, until it reaches
//! a regular file or a directory. Chains (snapshot → repo blob → shared payload) are followed
//! up to [`MAX_HOPS`] links; a link met twice is a loop.
//!
//! The store is reached through the [`LinkSource`] trait, the test seam of this module.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;

#[cfg(windows)]
use crate::compat::libc;
use crate::links::xsym;
use crate::path::{StorePath, link_target};
use crate::store::{Kind, Meta, Store};

/// At most this many links are followed for one name (as Linux's `MAXSYMLINKS`).
pub const MAX_HOPS: usize = 40;

/// What the resolver needs from a store.
///
/// A *link* is a symlink, or a regular file that encodes one: a Minshall-French XSym file
/// ([`crate::links::xsym`], what Linux SMB clients with `mfsymlinks` write on servers
/// without Unix extensions). [`LinkSource::is_link`] tells them apart; `readlink` returns
/// the text of either.
pub trait LinkSource {
    /// `lstat` that follows no link anywhere in the path (a link in the middle fails).
    fn lstat(&self, p: &StorePath) -> io::Result<Meta>;
    /// The raw link text of a symlink or an XSym file (`EINVAL` for anything else).
    fn readlink(&self, p: &StorePath) -> io::Result<Vec<u8>>;
    /// Absolute paths of the store root, for absolute link targets.
    fn aliases(&self) -> &[PathBuf];
    /// Up to `max` first bytes of the regular file `p`, opened without following links.
    fn read_head(&self, p: &StorePath, max: usize) -> io::Result<Vec<u8>>;

    /// True if an XSym file at `p` counts as a link (the store's policy; see
    /// [`Store::xsym_links`]).
    fn xsym_links(&self, p: &StorePath) -> bool;

    /// True if the entry `p` with metadata `meta` is a link: a symlink, or — where
    /// [`LinkSource::xsym_links`] allows — a regular file of exactly [`xsym::XSYM_SIZE`]
    /// bytes that parses as an XSym link (an unreadable one is a regular file).
    fn is_link(&self, p: &StorePath, meta: &Meta) -> bool {
        match meta.kind {
            Kind::Symlink => true,
            Kind::File if xsym::may_be_xsym(meta.size) && self.xsym_links(p) => self
                .read_head(p, xsym::XSYM_SIZE as usize + 1)
                .is_ok_and(|head| xsym::parse(&head).is_some()),
            _ => false,
        }
    }
}

impl LinkSource for Store {
    fn lstat(&self, p: &StorePath) -> io::Result<Meta> {
        Store::lstat(self, p)
    }
    fn readlink(&self, p: &StorePath) -> io::Result<Vec<u8>> {
        Store::readlink(self, p)
    }
    fn aliases(&self) -> &[PathBuf] {
        Store::aliases(self)
    }
    fn read_head(&self, p: &StorePath, max: usize) -> io::Result<Vec<u8>> {
        Store::read_head(self, p, max)
    }
    fn xsym_links(&self, p: &StorePath) -> bool {
        Store::xsym_links(self, p)
    }
}

/// Why a link is not shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Odd {
    /// The target leaves the store root.
    Escapes,
    /// The target (or a directory on the way) does not exist.
    Dangling,
    /// The link reaches itself, or more than [`MAX_HOPS`] links.
    Loop,
    /// The target is a FIFO, socket or device.
    Special,
    /// The store refused to tell (an errno other than "not found").
    Unreadable(i32),
}

impl Odd {
    /// A short human description for logs and reports.
    pub fn describe(&self) -> String {
        match self {
            Odd::Escapes => "link leaves the store".into(),
            Odd::Dangling => "dangling link".into(),
            Odd::Loop => "link loop".into(),
            Odd::Special => "link to a device, FIFO or socket".into(),
            Odd::Unreadable(e) => {
                format!("link cannot be read: {}", io::Error::from_raw_os_error(*e))
            }
        }
    }
}

/// Where a link leads: a regular file or a directory inside the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The real (link-free) store path of the target.
    pub path: StorePath,
    /// Its metadata; `kind` is `File` or `Dir`.
    pub meta: Meta,
    /// The first link text, as a store path (used to rewrite links on rename).
    pub first_hop: StorePath,
}

/// Resolves links over a [`LinkSource`].
pub struct Resolver<'s, S: LinkSource> {
    src: &'s S,
    seen: HashSet<StorePath>,
}

impl<'s, S: LinkSource> Resolver<'s, S> {
    /// A resolver for one name.
    pub fn new(src: &'s S) -> Self {
        Resolver {
            src,
            seen: HashSet::new(),
        }
    }

    /// Resolves the link at `link` (a symlink or an XSym file) to its final target.
    pub fn resolve_link(mut self, link: &StorePath) -> Result<Target, Odd> {
        let first_hop = self.hop(link)?;
        let (path, meta) = self.walk(&first_hop)?;
        Ok(Target {
            path,
            meta,
            first_hop,
        })
    }

    /// Resolves a plain store path (links anywhere on it are followed) to a file or directory.
    pub fn resolve_path(mut self, path: &StorePath) -> Result<Target, Odd> {
        let (real, meta) = self.walk(path)?;
        Ok(Target {
            path: real,
            meta,
            first_hop: path.clone(),
        })
    }

    /// Follows one link: its text mapped into the store.
    fn hop(&mut self, link: &StorePath) -> Result<StorePath, Odd> {
        if !self.seen.insert(link.clone()) || self.seen.len() > MAX_HOPS {
            return Err(Odd::Loop);
        }
        let text = self.src.readlink(link).map_err(io_odd)?;
        hop_of(link, &text, self.src.aliases())
    }

    /// Resolves every component of `path`, following links, to a file or directory.
    fn walk(&mut self, path: &StorePath) -> Result<(StorePath, Meta), Odd> {
        // Fast path: no link anywhere on the way (the hub's `../../blobs/<etag>`).
        match self.src.lstat(path) {
            Ok(m) if self.src.is_link(path, &m) => {
                let next = self.hop(path)?;
                return self.walk(&next);
            }
            Ok(m) => return finish(path.clone(), m),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Err(Odd::Dangling),
            Err(_) => {} // a link or a non-directory on the way: walk it
        }
        let mut cur = StorePath::root();
        let comps: Vec<_> = path.components().map(|c| c.to_os_string()).collect();
        for (i, c) in comps.iter().enumerate() {
            let next = cur.join(c).ok_or(Odd::Dangling)?;
            let mut meta = self.src.lstat(&next).map_err(io_odd)?;
            cur = next;
            if self.src.is_link(&cur, &meta) {
                let target = self.hop(&cur)?;
                let (p, m) = self.walk(&target)?;
                cur = p;
                meta = m;
            }
            if i + 1 < comps.len() && meta.kind != Kind::Dir {
                return Err(Odd::Dangling);
            }
            if i + 1 == comps.len() {
                return finish(cur, meta);
            }
        }
        // The path was the root itself.
        let meta = self.src.lstat(&cur).map_err(io_odd)?;
        finish(cur, meta)
    }
}

/// Where one hop of the link at `link` with text `text` leads: the text mapped into the store
/// (the first step of [`Resolver::resolve_link`], shared with everyone who reads link texts
/// themselves, so an empty or escaping text means the same everywhere).
pub fn hop_of(link: &StorePath, text: &[u8], aliases: &[PathBuf]) -> Result<StorePath, Odd> {
    if text.is_empty() {
        return Err(Odd::Dangling);
    }
    link_target(&link.parent(), text, aliases).map_err(|_| Odd::Escapes)
}

fn finish(path: StorePath, meta: Meta) -> Result<(StorePath, Meta), Odd> {
    match meta.kind {
        Kind::File | Kind::Dir => Ok((path, meta)),
        Kind::Special => Err(Odd::Special),
        Kind::Symlink => Err(Odd::Loop),
    }
}

fn io_odd(e: io::Error) -> Odd {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Odd::Dangling,
        Some(libc::ELOOP) => Odd::Loop,
        Some(code) => Odd::Unreadable(code),
        None => Odd::Unreadable(libc::EIO),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    struct Fixture {
        dir: tempfile::TempDir,
        store: Store,
    }

    fn fixture(build: impl FnOnce(&Path)) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let store = Store::open_root(dir.path()).unwrap();
        store.set_xsym(true);
        Fixture { dir, store }
    }

    fn resolve(f: &Fixture, p: &str) -> Result<Target, Odd> {
        Resolver::new(&f.store).resolve_link(&StorePath::parse(p).unwrap())
    }

    fn hub(root: &Path) {
        let repo = root.join("models--a--b");
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots/c1/x/y")).unwrap();
        std::fs::write(repo.join("blobs/e1"), b"one").unwrap();
        symlink("../../blobs/e1", repo.join("snapshots/c1/f")).unwrap();
        symlink("../../../../blobs/e1", repo.join("snapshots/c1/x/y/g")).unwrap();
    }

    #[test]
    fn relative_and_nested_links() {
        let f = fixture(hub);
        let t = resolve(&f, "models--a--b/snapshots/c1/f").unwrap();
        assert_eq!(t.path, StorePath::parse("models--a--b/blobs/e1").unwrap());
        assert_eq!(t.meta.kind, Kind::File);
        assert_eq!(t.meta.size, 3);
        let t2 = resolve(&f, "models--a--b/snapshots/c1/x/y/g").unwrap();
        assert_eq!(t2.path, t.path);
    }

    #[test]
    fn shared_blob_chain_two_levels() {
        let f = fixture(|root| {
            hub(root);
            std::fs::create_dir_all(root.join("blobs/ab")).unwrap();
            std::fs::write(root.join("blobs/ab/abcd"), b"payload").unwrap();
            symlink("../../blobs/ab/abcd", root.join("models--a--b/blobs/e2")).unwrap();
            symlink(
                "../../blobs/e2",
                root.join("models--a--b/snapshots/c1/shared"),
            )
            .unwrap();
        });
        let t = resolve(&f, "models--a--b/snapshots/c1/shared").unwrap();
        assert_eq!(t.path, StorePath::parse("blobs/ab/abcd").unwrap());
        assert_eq!(
            t.first_hop,
            StorePath::parse("models--a--b/blobs/e2").unwrap()
        );
        assert_eq!(t.meta.size, 7);
    }

    #[test]
    fn backslash_links_and_absolute_inside() {
        let f = fixture(|root| {
            hub(root);
            symlink(
                "..\\..\\blobs\\e1",
                root.join("models--a--b/snapshots/c1/win"),
            )
            .unwrap();
            let abs = std::fs::canonicalize(root)
                .unwrap()
                .join("models--a--b/blobs/e1");
            symlink(abs, root.join("models--a--b/snapshots/c1/abs")).unwrap();
        });
        assert_eq!(
            resolve(&f, "models--a--b/snapshots/c1/win")
                .unwrap()
                .meta
                .size,
            3
        );
        assert_eq!(
            resolve(&f, "models--a--b/snapshots/c1/abs")
                .unwrap()
                .meta
                .size,
            3
        );
    }

    #[test]
    fn escapes_are_refused() {
        let f = fixture(|root| {
            symlink("/etc/passwd", root.join("abs")).unwrap();
            symlink("../../../../../../etc/passwd", root.join("up")).unwrap();
            std::fs::create_dir(root.join("d")).unwrap();
            symlink("/", root.join("d/slash")).unwrap();
            symlink("d/slash/etc/passwd", root.join("via")).unwrap();
        });
        for p in ["abs", "up", "d/slash", "via"] {
            assert_eq!(resolve(&f, p), Err(Odd::Escapes), "{p}");
        }
    }

    #[test]
    fn loops_and_dangling() {
        let f = fixture(|root| {
            symlink("self", root.join("self")).unwrap();
            symlink("b", root.join("a")).unwrap();
            symlink("a", root.join("b")).unwrap();
            symlink("missing", root.join("dangling")).unwrap();
            symlink("", root.join("empty")).unwrap_or(());
            std::fs::write(root.join("file"), b"x").unwrap();
            symlink("file/below", root.join("notdir")).unwrap();
        });
        assert_eq!(resolve(&f, "self"), Err(Odd::Loop));
        assert_eq!(resolve(&f, "a"), Err(Odd::Loop));
        assert_eq!(resolve(&f, "dangling"), Err(Odd::Dangling));
        assert_eq!(resolve(&f, "notdir"), Err(Odd::Dangling));
        let _ = &f.dir;
    }

    #[test]
    fn long_chain_is_cut() {
        let f = fixture(|root| {
            std::fs::write(root.join("end"), b"x").unwrap();
            symlink("end", root.join("l0")).unwrap();
            for i in 1..=MAX_HOPS + 2 {
                symlink(format!("l{}", i - 1), root.join(format!("l{i}"))).unwrap();
            }
        });
        assert!(resolve(&f, "l5").is_ok());
        assert_eq!(resolve(&f, &format!("l{}", MAX_HOPS + 2)), Err(Odd::Loop));
    }

    #[test]
    fn link_through_linked_directory() {
        let f = fixture(|root| {
            hub(root);
            symlink("models--a--b/blobs", root.join("alias")).unwrap();
            symlink("alias/e1", root.join("via")).unwrap();
            symlink("models--a--b", root.join("repo")).unwrap();
        });
        let t = resolve(&f, "via").unwrap();
        assert_eq!(t.path, StorePath::parse("models--a--b/blobs/e1").unwrap());
        let d = resolve(&f, "repo").unwrap();
        assert_eq!(d.meta.kind, Kind::Dir);
    }

    /// Writes an XSym link file (as a Linux SMB client with `mfsymlinks` does).
    fn xsym_link(target: &str, at: &Path) {
        std::fs::write(at, crate::links::xsym::format(target.as_bytes()).unwrap()).unwrap();
    }

    #[test]
    fn xsym_files_are_links() {
        let f = fixture(|root| {
            hub(root);
            let snap = root.join("models--a--b/snapshots/c1");
            xsym_link("../../blobs/e1", &snap.join("x1"));
            // A chain: XSym -> symlink -> blob, and symlink -> XSym -> blob.
            xsym_link("f", &snap.join("x2"));
            symlink("x1", snap.join("s1")).unwrap();
            // XSym to a directory, and through it.
            xsym_link("../../blobs", &snap.join("xdir"));
            xsym_link("xdir/e1", &snap.join("x3"));
            // Hostile XSym links.
            xsym_link("/etc/passwd", &snap.join("xabs"));
            xsym_link("../../../../../etc/passwd", &snap.join("xup"));
            xsym_link("missing", &snap.join("xdangling"));
            xsym_link("xloop", &snap.join("xloop"));
        });
        let blob = StorePath::parse("models--a--b/blobs/e1").unwrap();
        for name in ["x1", "x2", "s1", "x3"] {
            let t = resolve(&f, &format!("models--a--b/snapshots/c1/{name}")).unwrap();
            assert_eq!(t.path, blob, "{name}");
            assert_eq!(t.meta.size, 3, "{name}");
        }
        let d = resolve(&f, "models--a--b/snapshots/c1/xdir").unwrap();
        assert_eq!(d.meta.kind, Kind::Dir);
        let odd = |n: &str| resolve(&f, &format!("models--a--b/snapshots/c1/{n}"));
        assert_eq!(odd("xabs"), Err(Odd::Escapes));
        assert_eq!(odd("xup"), Err(Odd::Escapes));
        assert_eq!(odd("xdangling"), Err(Odd::Dangling));
        assert_eq!(odd("xloop"), Err(Odd::Loop));
    }

    #[test]
    fn xsym_is_a_link_only_where_the_store_says_and_never_in_blobs() {
        let f = fixture(|root| {
            hub(root);
            // Hub content in the XSym format: a blob, and a snapshot entry that is a copy.
            let x = crate::links::xsym::format(b"../../blobs/e1").unwrap();
            std::fs::write(root.join("models--a--b/blobs/xs"), &x).unwrap();
            std::fs::write(root.join("models--a--b/snapshots/c1/copy"), &x).unwrap();
        });
        let blob = StorePath::parse("models--a--b/blobs/xs").unwrap();
        let copy = StorePath::parse("models--a--b/snapshots/c1/copy").unwrap();
        let (mb, mc) = (f.store.lstat(&blob).unwrap(), f.store.lstat(&copy).unwrap());
        // With `xsym`: a link outside blobs/, never inside.
        assert!(!f.store.is_link(&blob, &mb));
        assert!(f.store.readlink(&blob).is_err());
        assert!(f.store.is_link(&copy, &mc));
        // Without (the default): bytes are bytes.
        f.store.set_xsym(false);
        assert!(!f.store.is_link(&copy, &mc));
        assert!(f.store.readlink(&copy).is_err());
    }

    #[test]
    fn a_1067_byte_file_that_is_not_xsym_stays_a_file() {
        let f = fixture(|root| {
            hub(root);
            let mut fake = crate::links::xsym::format(b"../../blobs/e1").unwrap();
            fake[20] ^= 1; // md5 no longer matches
            std::fs::write(root.join("models--a--b/blobs/fake"), &fake).unwrap();
            std::fs::write(root.join("models--a--b/blobs/plain"), vec![b'x'; 1067]).unwrap();
            symlink(
                "../../blobs/fake",
                root.join("models--a--b/snapshots/c1/tofake"),
            )
            .unwrap();
        });
        let t = resolve(&f, "models--a--b/snapshots/c1/tofake").unwrap();
        assert_eq!(t.path, StorePath::parse("models--a--b/blobs/fake").unwrap());
        assert_eq!(t.meta.size, 1067);
        for p in ["models--a--b/blobs/fake", "models--a--b/blobs/plain"] {
            let p = StorePath::parse(p).unwrap();
            let m = f.store.lstat(&p).unwrap();
            assert!(!f.store.is_link(&p, &m));
            assert!(f.store.readlink(&p).is_err());
        }
    }

    #[test]
    fn special_targets_are_odd() {
        let f = fixture(|root| {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                root.join("fifo"),
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o644),
                0,
            )
            .unwrap();
            symlink("fifo", root.join("tofifo")).unwrap();
        });
        assert_eq!(resolve(&f, "tofifo"), Err(Odd::Special));
    }
}
