//! The inode table: view inode numbers, what they stand for in the store, and the kernel's
//! lookup counts.
//!
//! Invariants:
//! - Inode numbers come from a counter and are never reused while the mount lives; the root
//!   is [`ROOT_INO`]. A node is dropped when the kernel forgets its last lookup.
//! - Files are keyed by the store identity `(dev, ino)` of the file they resolve to, so every
//!   name that reaches one blob (snapshot links, the blob itself) shares one inode: hard-link
//!   semantics, and one copy in the page cache.
//! - Directories are keyed by their *view* position `(parent inode, name)`. A directory shown
//!   through a link therefore never aliases another view directory (the kernel allows no
//!   directory aliases), and loops are caught by walking view ancestors ([`InodeTable::is_view_loop`]).

use std::collections::HashMap;
use std::ffi::OsString;

use crate::path::StorePath;
use crate::view::access::Guards;

pub use crate::view::ids::Ino;

/// The root's inode number (FUSE's convention).
pub const ROOT_INO: Ino = Ino::ROOT;

/// What a node stands for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// The root directory.
    Root,
    /// A directory at this view position.
    Dir(Ino, OsString),
    /// A file with this store identity: device, inode number and birth time (0 where the
    /// store does not tell), so a file that got the number of a deleted one is another file.
    File(u64, u64, u64),
    /// A node that no name leads to any more: a symlink just created through the view (the
    /// kernel insists on a link-typed reply to `symlink()`; the next lookup of the name gives
    /// the target's inode instead), or a directory replaced by a rename. Keyed by its own
    /// number, so it is never shared.
    Detached(Ino),
}

/// One inode of the view.
#[derive(Clone, Debug)]
pub struct Node {
    /// The identity.
    pub key: Key,
    /// The real (link-free) store path the node's data and metadata are read from.
    pub real: StorePath,
    /// True if the node is a directory.
    pub is_dir: bool,
    /// True for files whose real store path is a blob (see `view::is_blob_path`).
    pub immutable: bool,
    /// Outstanding kernel lookups.
    pub lookups: u64,
    /// Other real paths this file was seen under (hard links), most recent first; tried
    /// when `real` is gone. At most [`MAX_ALIASES`].
    pub aliases: Vec<StorePath>,
    /// Reached through a link, or inside a directory that was: the view path is not the
    /// store path, so the kernel's checks along the view path are not the store's.
    pub via_link: bool,
    /// Directories on `real` that not everyone may search (see `view::access`); checked
    /// for the caller on every access. Empty unless `via_link`.
    pub guards: Guards,
    /// Size of an immutable blob when last looked up (its size never changes); 0 otherwise.
    pub blob_size: u64,
    /// When the store file was last seen to be this node's (at a lookup, or an open that
    /// checked); `None` before.
    pub checked: Option<std::time::Instant>,
}

/// How many other names of a hard-linked file are remembered.
pub const MAX_ALIASES: usize = 4;

/// The table; callers hold it under a lock and do no I/O while holding it.
#[derive(Debug)]
pub struct InodeTable {
    nodes: HashMap<Ino, Node>,
    by_key: HashMap<Key, Ino>,
    next: u64,
}

impl Default for InodeTable {
    fn default() -> Self {
        let mut t = InodeTable {
            nodes: HashMap::new(),
            by_key: HashMap::new(),
            next: ROOT_INO.0 + 1,
        };
        let root = Node {
            key: Key::Root,
            real: StorePath::root(),
            is_dir: true,
            immutable: false,
            lookups: 1,
            aliases: Vec::new(),
            via_link: false,
            guards: Guards::default(),
            blob_size: 0,
            checked: None,
        };
        t.by_key.insert(Key::Root, ROOT_INO);
        t.nodes.insert(ROOT_INO, root);
        t
    }
}

impl InodeTable {
    /// The node for `ino`.
    pub fn get(&self, ino: Ino) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    /// Records one kernel lookup of the node with `key`, creating it if needed, and
    /// refreshes its store path. Returns the inode number.
    pub fn lookup(&mut self, key: Key, real: StorePath, is_dir: bool, immutable: bool) -> Ino {
        if let Some(&ino) = self.by_key.get(&key)
            && let Some(node) = self.nodes.get_mut(&ino)
        {
            node.lookups += 1;
            if node.real != real {
                let old = std::mem::replace(&mut node.real, real);
                node.aliases.retain(|a| *a != node.real && *a != old);
                node.aliases.insert(0, old);
                node.aliases.truncate(MAX_ALIASES);
            }
            node.immutable = immutable;
            return ino;
        }
        let ino = Ino(self.next);
        self.next += 1;
        self.by_key.insert(key.clone(), ino);
        self.nodes.insert(
            ino,
            Node {
                key,
                real,
                is_dir,
                immutable,
                lookups: 1,
                aliases: Vec::new(),
                via_link: false,
                guards: Guards::default(),
                blob_size: 0,
                checked: None,
            },
        );
        ino
    }

    /// The inode number of the node with `key`, if the kernel holds one.
    pub fn ino_of(&self, key: &Key) -> Option<Ino> {
        self.by_key.get(key).copied()
    }

    /// Detaches the node with `key` (see [`Key::Detached`]): the store file it stood for was
    /// replaced behind the kernel's back, and its store inode number may be reused for
    /// another file, which must get a node of its own. The kernel's next use of the old node
    /// gets `ESTALE` and looks the name up again.
    pub fn detach_key(&mut self, key: &Key) {
        if let Some(ino) = self.by_key.remove(key)
            && let Some(node) = self.nodes.get_mut(&ino)
        {
            node.key = Key::Detached(ino);
        }
    }

    /// Records how the node was last reached (see [`Node::via_link`], [`Node::guards`]) and
    /// the size of an immutable blob ([`Node::blob_size`]).
    pub fn set_reach(&mut self, ino: Ino, via_link: bool, guards: Guards, blob_size: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.via_link = via_link;
            node.guards = guards;
            node.blob_size = blob_size;
            node.checked = Some(std::time::Instant::now());
        }
    }

    /// True if `ino` was reached through a link (see [`Node::via_link`]); false if unknown.
    pub fn via_link(&self, ino: Ino) -> bool {
        self.nodes.get(&ino).is_some_and(|n| n.via_link)
    }

    /// Notes that the store file of `ino` was just seen to be its own.
    pub fn set_checked(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.checked = Some(std::time::Instant::now());
        }
    }

    /// Makes `real` the node's current path (it was found there after `real` went away).
    pub fn relocate(&mut self, ino: Ino, real: &StorePath) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.aliases.retain(|a| a != real);
            node.real = real.clone();
            node.immutable = !node.is_dir && crate::hub::is_blob_path(&node.real);
        }
    }

    /// A new detached node with one lookup (see [`Key::Detached`]).
    pub fn detached(&mut self, real: StorePath) -> Ino {
        let ino = Ino(self.next);
        self.next += 1;
        let node = Node {
            key: Key::Detached(ino),
            real,
            is_dir: false,
            immutable: false,
            lookups: 1,
            aliases: Vec::new(),
            via_link: false,
            guards: Guards::default(),
            blob_size: 0,
            checked: None,
        };
        self.nodes.insert(ino, node);
        ino
    }

    /// Drops `n` kernel lookups; the node goes away at zero (the root never does).
    pub fn forget(&mut self, ino: Ino, n: u64) {
        if ino == ROOT_INO {
            return;
        }
        let gone = match self.nodes.get_mut(&ino) {
            Some(node) => {
                node.lookups = node.lookups.saturating_sub(n);
                node.lookups == 0
            }
            None => false,
        };
        if gone
            && let Some(node) = self.nodes.remove(&ino)
            && self.by_key.get(&node.key) == Some(&ino)
        {
            self.by_key.remove(&node.key);
        }
    }

    /// True if showing store directory `target` inside view directory `parent` would put a
    /// directory inside itself: `target` is the real path of `parent` or of one of its view
    /// ancestors, or lies above one of them.
    pub fn is_view_loop(&self, parent: Ino, target: &StorePath) -> bool {
        let mut cur = Some(parent);
        let mut steps = 0;
        while let Some(ino) = cur {
            let Some(node) = self.nodes.get(&ino) else {
                return false;
            };
            if node.real.starts_with(target) {
                return true;
            }
            cur = match &node.key {
                Key::Dir(p, _) => Some(*p),
                _ => None,
            };
            steps += 1;
            if steps > 4096 {
                return true;
            }
        }
        false
    }

    /// After a rename in the store from `from` to `to`: moves the directory node at view
    /// position `(old_parent, old_name)` to its new position, and rewrites the store path of
    /// every node at or below `from`.
    pub fn renamed(
        &mut self,
        old_pos: (Ino, OsString),
        new_pos: (Ino, OsString),
        from: &StorePath,
        to: &StorePath,
    ) {
        let old_key = Key::Dir(old_pos.0, old_pos.1);
        let new_key = Key::Dir(new_pos.0, new_pos.1);
        // A directory that was at the destination is replaced: unhook its key.
        if let Some(ino) = self.by_key.remove(&new_key)
            && let Some(node) = self.nodes.get_mut(&ino)
        {
            node.key = Key::Detached(ino);
        }
        if let Some(ino) = self.by_key.remove(&old_key) {
            if let Some(node) = self.nodes.get_mut(&ino) {
                node.key = new_key.clone();
            }
            self.by_key.insert(new_key, ino);
        }
        self.rebase_paths(from, to);
    }

    /// Rewrites the store path of every node at or below `from` to lie at or below `to`.
    pub fn rebase_paths(&mut self, from: &StorePath, to: &StorePath) {
        for node in self.nodes.values_mut() {
            if let Some(p) = node.real.rebase(from, to) {
                node.real = p;
                // Immutability is a property of where the file now is.
                node.immutable = !node.is_dir && crate::hub::is_blob_path(&node.real);
            }
            for a in node.aliases.iter_mut() {
                if let Some(p) = a.rebase(from, to) {
                    *a = p;
                }
            }
        }
    }

    /// Number of live nodes (for status and tests).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if only the root is left.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(s: &str) -> StorePath {
        StorePath::parse(s).unwrap()
    }

    #[test]
    fn same_file_key_shares_inode_and_numbers_are_not_reused() {
        let mut t = InodeTable::default();
        let a = t.lookup(Key::File(1, 7, 0), sp("r/blobs/x"), false, true);
        let b = t.lookup(Key::File(1, 7, 0), sp("r/blobs/x"), false, true);
        assert_eq!(a, b);
        t.forget(a, 2);
        assert!(t.get(a).is_none());
        let c = t.lookup(Key::File(1, 7, 0), sp("r/blobs/x"), false, true);
        assert_ne!(a, c, "numbers are never reused");
    }

    #[test]
    fn forget_counts() {
        let mut t = InodeTable::default();
        let a = t.lookup(Key::File(1, 1, 0), sp("f"), false, false);
        t.lookup(Key::File(1, 1, 0), sp("f"), false, false);
        t.forget(a, 1);
        assert!(t.get(a).is_some());
        t.forget(a, 1);
        assert!(t.get(a).is_none());
        t.forget(ROOT_INO, 100);
        assert!(t.get(ROOT_INO).is_some());
    }

    #[test]
    fn view_loops() {
        let mut t = InodeTable::default();
        let a = t.lookup(Key::Dir(ROOT_INO, "a".into()), sp("a"), true, false);
        let x = t.lookup(Key::Dir(a, "x".into()), sp("b"), true, false);
        assert!(t.is_view_loop(x, &sp("a")), "a/x -> b, b/y -> a");
        assert!(t.is_view_loop(x, &StorePath::root()));
        assert!(t.is_view_loop(x, &sp("b")));
        assert!(!t.is_view_loop(x, &sp("c")));
        assert!(!t.is_view_loop(x, &sp("b/c")));
    }

    #[test]
    fn rename_rewrites_paths_and_keys() {
        let mut t = InodeTable::default();
        let d = t.lookup(Key::Dir(ROOT_INO, "d".into()), sp("d"), true, false);
        let f = t.lookup(Key::File(1, 9, 0), sp("d/f"), false, false);
        t.renamed(
            (ROOT_INO, "d".into()),
            (ROOT_INO, "e".into()),
            &sp("d"),
            &sp("e"),
        );
        assert_eq!(t.get(d).unwrap().real, sp("e"));
        assert_eq!(t.get(f).unwrap().real, sp("e/f"));
        let again = t.lookup(Key::Dir(ROOT_INO, "e".into()), sp("e"), true, false);
        assert_eq!(again, d);
    }
}
