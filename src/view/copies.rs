//! Copies become links as they are written: a client that writes no symlinks (Windows through
//! WinFsp or Samba, `HF_HUB_DISABLE_SYMLINKS=1`, other tools) leaves the store as a symlinking
//! client would have — one `blobs/<etag>` per content, each snapshot entry a relative link.
//!
//! - **A repo blob renamed into the same repo's `snapshots/`** (the hub's move of a new blob)
//!   is stored as a link to the blob; the blob stays (see [`CacheView::rename_blob_as_link`]).
//! - **A regular file in `<repo>/snapshots/`** written through the view is examined when it
//!   is complete: at the release of its last writable handle, and when a rename puts it in
//!   place with no writer left. If a blob of the repo has its content (looked up by the
//!   content's names, `blobs/<sha256>` and `blobs/<git sha1>`: no listing of `blobs/`) it
//!   becomes a link to it; otherwise its content becomes the blob under the name the hub would use
//!   ([`crate::hub::naming_rule`]) and the entry a link to it.
//! - **Hashing**: bytes written in order through the view are hashed as they arrive
//!   ([`Stream`]), so deciding at the end reads nothing again; a file written out of order,
//!   truncated, or written where the view does not see its writes (kernel passthrough) is
//!   read once at the end instead.
//! - **Where**: on converter threads of their own once a mount starts them
//!   ([`CacheView::start_converters`]), so that hashing never holds a request worker; without
//!   them (unit tests, other front ends) in the request that completed the file.
//!
//! Invariants (never a wrong link):
//! - A link is made only to a blob whose name equals the entry's digest (sha256 or git blob
//!   sha1 as its name's length says); a blob reached through a link (a shared payload, whose
//!   own name is not a hash the view can compute) is also compared byte for byte.
//! - A blob name is never replaced (`link(2)` / `RENAME_NOREPLACE`).
//! - The replacement is one `rename` of a complete link over the entry, made under
//!   [`Copies::name_lock`] after checking that the entry is still the file that was hashed
//!   and that no handle has it open for writing; writable opens, renames, unlinks and
//!   truncations through the view take the same lock, so none of them interleaves with it.
//! - A conversion is made as the one who completed the file (the writer, whose identity
//!   and groups are kept from their writable open, or the renaming caller): only if they may
//!   replace the entry and, for a new blob, add to `blobs/` in the store themselves.
//! - A conversion that cannot be made leaves the copy as it is (logged); the client's
//!   operation never fails because of it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use super::CacheView;
use super::ids::Fh;
#[cfg(windows)]
use crate::compat::libc;
use crate::hub::hash::{Algos, Digests, Stream, hash_path};
use crate::hub::{self, SnapshotEntry};
use crate::inode::{Ino, Key};
use crate::path::StorePath;
use crate::resolve::{LinkSource, Resolver};
use crate::stats::DedupeCounters;
use crate::store::{Kind, Meta};

/// One file being written through the view.
#[derive(Debug, Default)]
struct Tracker {
    stream: Stream,
    /// Created, written or truncated since it was opened.
    dirty: bool,
    /// Who opened it for writing last: the conversion at its last close is made for them
    /// (the kernel passes that close on without the writer's identity).
    writer: Option<super::access::Held>,
}

/// A conversion to make: the entry, what was seen of its writes, and for whom.
#[derive(Debug)]
struct Job {
    path: StorePath,
    stream: Option<Stream>,
    caller: Option<super::access::Held>,
    /// Counted as pending until made.
    _pending: Pending,
}

/// The view's state for deduplicating copies.
#[derive(Debug, Default)]
pub(super) struct Copies {
    trackers: Mutex<HashMap<Ino, Arc<Mutex<Tracker>>>>,
    name_lock: Mutex<()>,
    /// Where conversions go once converter threads run ([`CacheView::start_converters`]);
    /// without them conversions are made at once, by the request that completes the file.
    queue: Mutex<Option<crossbeam_channel::Sender<Job>>>,
    /// The last `trees/<commit>.json` read: (repo, commit), its identity, its etags.
    #[allow(clippy::type_complexity)]
    trees: Mutex<
        Option<(
            (String, String),
            Option<TreeStamp>,
            Arc<HashMap<String, String>>,
        )>,
    >,
    /// What was done (shared with the status file).
    pub counters: Arc<DedupeCounters>,
}

/// What identifies a version of a `trees/` file: device, inode, size, mtime.
type TreeStamp = (u64, u64, u64, std::time::SystemTime);

impl Copies {
    /// Serialises name changes through the view with the replacement of a copy.
    pub(super) fn name_lock(&self) -> MutexGuard<'_, ()> {
        self.name_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tracker(&self, ino: Ino) -> Option<Arc<Mutex<Tracker>>> {
        self.trackers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&ino)
            .cloned()
    }

    fn with(&self, ino: Ino, f: impl FnOnce(&mut Tracker)) {
        if let Some(t) = self.tracker(ino) {
            f(&mut t.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// Starts (or joins) tracking the writes to `ino`; `dirty` if the open created or
    /// truncated it.
    pub(super) fn track(&self, ino: Ino, dirty: bool) {
        let t = self
            .trackers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(ino)
            .or_default()
            .clone();
        let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
        t.writer = super::access::hold();
        if dirty {
            // Created or truncated: its content starts afresh.
            t.stream = Stream::default();
            t.dirty = true;
        }
    }

    /// Bytes written at `offset` through the view.
    pub(super) fn wrote(&self, ino: Ino, offset: u64, data: &[u8]) {
        self.with(ino, |t| {
            t.dirty = true;
            t.stream.write(offset, data);
        });
    }

    /// The file changed in a way the stream cannot follow (truncation, preallocation,
    /// writes the view does not see).
    pub(super) fn broken(&self, ino: Ino) {
        self.with(ino, |t| {
            t.dirty = true;
            t.stream.broken();
        });
    }

    /// Stops tracking `ino`; its stream and last writer if it was written.
    fn finish(&self, ino: Ino) -> Option<(Stream, Option<super::access::Held>)> {
        let t = self
            .trackers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ino)?;
        let t = std::mem::take(&mut *t.lock().unwrap_or_else(|e| e.into_inner()));
        t.dirty.then_some((t.stream, t.writer))
    }
}

/// A blob a copy may become a link to.
struct Candidate {
    /// `<repo>/blobs/<name>`.
    path: StorePath,
    /// The file with the content (the blob itself, or what its link leads to).
    real: StorePath,
    meta: Meta,
}

/// What a conversion did.
enum Done {
    /// Linked to an existing blob; `saved` bytes freed.
    Linked { blob: StorePath, saved: u64 },
    /// The content became the blob.
    Moved { blob: StorePath },
}

/// Counts a queued or running conversion until dropped.
#[derive(Debug)]
struct Pending(Arc<DedupeCounters>);

impl Pending {
    fn new(c: &Arc<DedupeCounters>) -> Self {
        c.pending.fetch_add(1, Ordering::Relaxed);
        Pending(c.clone())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

impl CacheView {
    /// True if copies written through this view are deduplicated.
    pub(super) fn dedupes(&self) -> bool {
        self.config.dedupe && !self.config.read_only
    }

    /// Makes conversions on `threads` threads of their own from now on, so that hashing a
    /// large file never holds a request worker (a user closing many large files must not
    /// stall the mount). The threads end when the view is dropped.
    pub fn start_converters(self: &Arc<Self>, threads: usize) {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let mut queue = self.copies.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.is_some() {
            return;
        }
        for i in 0..threads.max(1) {
            let (rx, view) = (rx.clone(), Arc::downgrade(self));
            let spawned = std::thread::Builder::new()
                .name(format!("dedupe-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        let Some(view) = view.upgrade() else { return };
                        view.run(job);
                    }
                });
            if let Err(e) = spawned {
                log::warn!("cannot start a converter thread ({e}); converting in requests");
                return;
            }
        }
        *queue = Some(tx);
    }

    /// Queues a conversion for `caller`, or makes it at once if no converter runs.
    fn convert(
        &self,
        path: StorePath,
        stream: Option<Stream>,
        caller: Option<super::access::Held>,
    ) {
        if SnapshotEntry::parse(&path).is_none() {
            return;
        }
        let job = Job {
            path,
            stream,
            caller,
            _pending: Pending::new(&self.copies.counters),
        };
        let queue = self.copies.queue.lock().unwrap_or_else(|e| e.into_inner());
        let job = match queue.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(e) => e.into_inner(),
            },
            None => job,
        };
        drop(queue);
        self.run(job);
    }

    /// Makes one conversion, checked as its caller.
    fn run(&self, job: Job) {
        // The checks of the one who completed the file (see `check_delete`): the view does
        // for them only what they could do themselves.
        let _as_caller = job.caller.map(super::access::serving_held);
        self.dedupe_copy(&job.path, job.stream);
    }

    /// The deduplication counters (for the status file).
    pub fn dedupe_counters(&self) -> Arc<DedupeCounters> {
        self.copies.counters.clone()
    }

    /// Tracks a writable open of `ino` at store path `real` if it is a snapshot entry.
    pub(super) fn track_writes(&self, ino: Ino, real: &StorePath, dirty: bool) {
        if self.dedupes() && SnapshotEntry::parse(real).is_some() {
            self.copies.track(ino, dirty);
        }
    }

    /// The writes of handle `fh` bypass the view (kernel passthrough): the file must be read
    /// to be hashed.
    pub fn writes_bypass(&self, fh: Fh) {
        if let Some(h) = self.handles.file(fh) {
            self.copies.broken(h.ino);
        }
    }

    /// Number of handles open for writing on the view inode of the store file `meta`.
    pub(super) fn writers_of(&self, meta: &Meta) -> usize {
        let Some(ino) = self
            .table()
            .ino_of(&Key::File(meta.dev, meta.ino, meta.born))
        else {
            return 0;
        };
        self.handles.writers(ino)
    }

    /// After the last writable handle of `ino` was closed: deduplicates the file if it is a
    /// snapshot entry that was written.
    pub(super) fn written_and_closed(&self, ino: Ino) {
        if self.handles.writers(ino) > 0 {
            return;
        }
        let Some((stream, writer)) = self.copies.finish(ino) else {
            return;
        };
        let Ok(node) = self.node(ino) else {
            return;
        };
        // Made as the writer (the kernel passes the last close on without their identity).
        self.convert(node.real, Some(stream), writer);
    }

    /// `rename(from → to)` of a repo blob into the same repo's snapshots (the hub's move of a
    /// new blob when it makes no links): a link to the blob is placed at `to` and the blob
    /// stays. Returns false (nothing done) if this is not such a rename.
    pub(super) fn rename_blob_as_link(
        &self,
        from: &StorePath,
        to: &StorePath,
        meta: &Meta,
        flags: u32,
    ) -> super::FsResult<bool> {
        if !self.dedupes() || flags & libc::RENAME_EXCHANGE != 0 {
            return Ok(false);
        }
        let Some((repo, _)) = hub::repo_blob(from) else {
            return Ok(false);
        };
        if SnapshotEntry::parse(to).is_none_or(|e| e.repo != repo) {
            return Ok(false);
        }
        // The blob must show a regular file nobody writes (a link is followed to its file).
        let file = if meta.kind == Kind::File && !self.store.is_link(from, meta) {
            meta.clone()
        } else {
            match Resolver::new(&self.store).resolve_link(from) {
                Ok(t) if t.meta.kind == Kind::File => t.meta,
                _ => return Ok(false),
            }
        };
        if self.writers_of(&file) > 0 {
            return Ok(false);
        }
        self.place_link(&from.relative_from(&to.parent()), to, flags)?;
        self.copies.counters.linked.fetch_add(1, Ordering::Relaxed);
        log::info!("rename {from} -> {to}: stored as a link to the blob, which stays");
        Ok(true)
    }

    /// A complete regular file was put in place at `path` (a rename): converted if it is a
    /// snapshot entry.
    pub(super) fn put_in_place(&self, path: StorePath) {
        self.convert(path, None, super::access::hold());
    }

    /// Deduplicates the regular file at snapshot entry `path` (see the module doc); `stream`
    /// holds what was seen of its writes. Never fails: what cannot be done is logged.
    fn dedupe_copy(&self, path: &StorePath, stream: Option<Stream>) {
        let Some(entry) = SnapshotEntry::parse(path) else {
            return;
        };
        log::debug!("dedupe: examining {path}");
        match self.try_dedupe(path, &entry, stream) {
            Ok(None) => {}
            Ok(Some(Done::Linked { blob, saved })) => {
                let c = &self.copies.counters;
                c.linked.fetch_add(1, Ordering::Relaxed);
                c.bytes_saved.fetch_add(saved, Ordering::Relaxed);
                log::info!("dedupe: {path} is now a link to {blob} ({saved} bytes freed)");
            }
            Ok(Some(Done::Moved { blob })) => {
                self.copies.counters.linked.fetch_add(1, Ordering::Relaxed);
                log::info!("dedupe: {path} became blob {blob} and a link to it");
            }
            Err(why) => log::info!("dedupe: {path} left as a copy: {why}"),
        }
    }

    fn try_dedupe(
        &self,
        path: &StorePath,
        entry: &SnapshotEntry,
        stream: Option<Stream>,
    ) -> Result<Option<Done>, String> {
        let meta = match self.store.lstat(path) {
            Ok(m) => m,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        if meta.kind != Kind::File || self.store.is_link(path, &meta) {
            return Ok(None);
        }
        let blobs = entry.blobs_dir().ok_or("bad repo name")?;
        if meta.nlink > 1
            && let Some(c) = self.same_inode_blob(&blobs, &meta)
        {
            // Already a blob's file under another name (an interrupted conversion).
            self.commit(path, &meta, &c.path, None)?;
            return Ok(Some(Done::Linked {
                blob: c.path,
                saved: 0,
            }));
        }
        // Both names a blob of this content can have, as far as the hub gives them: the
        // git blob sha1 only below the LFS threshold (the Hub keeps larger files in LFS).
        let small = meta.size <= hub::LFS_THRESHOLD;
        let mut algos = Algos {
            sha256: true,
            git_sha1: small,
        };
        let mut digests = self.digests(path, &meta, stream, algos)?;
        for name in [digests.sha256.clone(), digests.git_sha1.clone()]
            .into_iter()
            .flatten()
        {
            let Some(c) = self.blob_named(&blobs, &name, &meta) else {
                continue;
            };
            if c.real != c.path && !hub::same_bytes(&self.store, path, &c.real).unwrap_or(false) {
                return Err(format!("{} has the same name but other bytes", c.path));
            }
            let saved = if meta.nlink > 1 { 0 } else { meta.size };
            self.commit(path, &meta, &c.path, None)?;
            return Ok(Some(Done::Linked {
                blob: c.path,
                saved,
            }));
        }
        // No blob has the content: it becomes one, named as the hub would name it.
        let trees = self.tree_etags(entry);
        let tree = trees.get(&entry.rel).map(String::as_str);
        let sibling = if tree.is_none() {
            hub::sibling_len(&self.store, entry)
        } else {
            None
        };
        let (rule, wanted) = hub::naming_rule(tree, sibling, meta.size);
        if wanted.git_sha1 && digests.git_sha1.is_none() {
            // A large file the hub would name by its git sha1 (rare): read it for that.
            algos = wanted;
            digests.git_sha1 = self.digests(path, &meta, None, algos)?.git_sha1;
        }
        let name = hub::new_blob_name(&rule, &digests, meta.size)?;
        let blob = blobs
            .join(std::ffi::OsStr::new(&name))
            .ok_or("bad blob name")?;
        if self.store.lstat(&blob).is_ok() {
            return Err(format!("{blob} exists with other content or shows no file"));
        }
        self.commit(path, &meta, &blob, Some(&name))?;
        Ok(Some(Done::Moved { blob }))
    }

    /// The blob `<blobs>/<name>` if it shows a regular file of `meta`'s size.
    fn blob_named(&self, blobs: &StorePath, name: &str, meta: &Meta) -> Option<Candidate> {
        let p = blobs.join(std::ffi::OsStr::new(name))?;
        let c = self.candidate(p)?;
        (c.meta.size == meta.size).then_some(c)
    }

    /// A blob of the repo that is the file `meta` itself (a hard link), if any: one pass over
    /// `blobs/`, made only for files with more than one name.
    fn same_inode_blob(&self, blobs: &StorePath, meta: &Meta) -> Option<Candidate> {
        let mut entries = self.store.read_dir(blobs).ok()?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.into_iter().find_map(|e| {
            e.name.to_str().filter(|n| hub::is_content_name(n))?;
            let c = self.candidate(blobs.join(&e.name)?)?;
            ((c.meta.dev, c.meta.ino) == (meta.dev, meta.ino) && c.real == c.path).then_some(c)
        })
    }

    /// The blob at `p` with the file that holds its content: itself, or what its link leads
    /// to inside the store.
    fn candidate(&self, p: StorePath) -> Option<Candidate> {
        let m = self.store.lstat(&p).ok()?;
        let (real, m) = if m.kind == Kind::File && !self.store.is_link(&p, &m) {
            (p.clone(), m)
        } else {
            match Resolver::new(&self.store).resolve_link(&p) {
                Ok(t) if t.meta.kind == Kind::File => (t.path, t.meta),
                _ => return None,
            }
        };
        Some(Candidate {
            path: p,
            real,
            meta: m,
        })
    }

    /// The etags `trees/<commit>.json` lists for the entry's revision, parsed once per
    /// version of the file (a snapshot's files are converted one after another).
    fn tree_etags(&self, entry: &SnapshotEntry) -> Arc<HashMap<String, String>> {
        let key = (entry.repo.clone(), entry.commit.clone());
        let stamp = StorePath::parse(&format!("{}/trees/{}.json", entry.repo, entry.commit))
            .and_then(|p| self.store.lstat(&p).ok())
            .map(|m| (m.dev, m.ino, m.size, m.mtime));
        let mut cache = self.copies.trees.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, st, map)) = cache.as_ref()
            && *k == key
            && *st == stamp
        {
            return map.clone();
        }
        let map = Arc::new(if stamp.is_some() {
            hub::tree_etags(&self.store, &entry.repo, &entry.commit)
        } else {
            HashMap::new()
        });
        *cache = Some((key, stamp, map.clone()));
        map
    }

    /// The digests of the file at `path` (`meta`): from the stream when it saw every byte in
    /// order and computed what `algos` asks, else by reading the file once.
    fn digests(
        &self,
        path: &StorePath,
        meta: &Meta,
        stream: Option<Stream>,
        algos: Algos,
    ) -> Result<Digests, String> {
        let streamed = stream
            .filter(|s| s.intact() && s.len() == meta.size)
            .and_then(Stream::finish)
            .filter(|d| {
                (!algos.sha256 || d.sha256.is_some()) && (!algos.git_sha1 || d.git_sha1.is_some())
            });
        if let Some(d) = streamed {
            return Ok(d);
        }
        log::info!("dedupe: reading {path} to hash it");
        let stop = std::sync::atomic::AtomicBool::new(false);
        let h = hash_path(&self.store, path, algos, &stop, &|_| {}).map_err(|e| e.to_string())?;
        if !hub::unchanged(meta, &h.meta) {
            return Err("changed while it was hashed".into());
        }
        Ok(h.digests)
    }

    /// Replaces the entry at `path` (still the file `meta`) with a link to `blob`; with
    /// `new_name`, first makes the entry's file that blob. Under the name lock, and only if
    /// no handle has the file open for writing.
    fn commit(
        &self,
        path: &StorePath,
        meta: &Meta,
        blob: &StorePath,
        new_name: Option<&str>,
    ) -> Result<(), String> {
        let _names = self.copies.name_lock();
        if self.writers_of(meta) > 0 {
            return Err("open for writing again".into());
        }
        match self.store.lstat(path) {
            Ok(now) if hub::unchanged(meta, &now) => {}
            _ => return Err("changed meanwhile".into()),
        }
        // The caller (the writer closing the file, or renaming it) must be allowed to make
        // both changes in the store themselves: replace the entry, and add to `blobs/`.
        self.check_delete(path, meta)
            .map_err(|e| format!("the caller may not replace it: {e}"))?;
        if new_name.is_some() {
            self.check_delete(blob, meta)
                .map_err(|e| format!("the caller may not add to {}: {e}", blob.parent()))?;
        }
        if let Some(name) = new_name {
            hub::make_blob(&self.store, path, blob, name, meta)
                .map_err(|e| format!("creating {blob}: {e}"))?;
        }
        hub::replace_with_link(&self.store, path, blob, meta, "copy")
            .map_err(|e| format!("replacing it: {e}"))?;
        let key = Key::File(meta.dev, meta.ino, meta.born);
        let mut table = self.table();
        match (new_name, table.ino_of(&key)) {
            // The file is a blob now: immutable through the view from here on.
            (Some(_), Some(ino)) => table.relocate(ino, blob),
            // The copy's file is gone (or lives on under other names only): its store inode
            // number may be reused by a new file, which must not inherit this node.
            (None, Some(_)) => table.detach_key(&key),
            (_, None) => {}
        }
        Ok(())
    }
}
