//! Differential property test: random sequences of file-system operations applied to a
//! read-write mount over a plain store (no links) and to a plain reference directory must
//! give the same result (errno included) at every step, and afterwards the same tree (names,
//! types, sizes, bytes) through the mount, in the store and in the reference.
//!
//! Some steps are applied "behind the mount", directly to the store (and to the reference):
//! another machine changing the store. The mount uses `attr_timeout=0,entry_timeout=0` so
//! such changes are visible at once (SEMANTICS.md: otherwise within the timeouts).
//!
//! Bounded for CI: 200 cases x up to 30 steps (about 3 s) on one mount (each case in a fresh directory).
//! `PROPTEST_CASES=N` scales the number of cases, `HFCFS_PROP_SEED=N` changes the seed
//! (fixed by default, so a run is reproducible). Shrunk failures become named tests below.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use harness::{Mount, content};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

/// Paths the operations pick from: files and directories at three depths, so renames move
/// entries across depths and into/out of directories.
const PATHS: &[&str] = &[
    "a", "b", "d", "d/a", "d/b", "d/e", "d/e/a", "d/e/c", "f", "f/a",
];

#[derive(Clone, Debug)]
enum Op {
    /// `open(O_CREAT|O_EXCL|O_WRONLY)`.
    Create(&'static str),
    /// `open(O_WRONLY)` + `pwrite(len bytes at off)`.
    Write(&'static str, u64, usize, u32),
    /// `open(O_WRONLY)` + `ftruncate(len)`.
    Truncate(&'static str, u64),
    Rename(&'static str, &'static str),
    Unlink(&'static str),
    Mkdir(&'static str),
    Rmdir(&'static str),
    /// Whole-file read.
    Read(&'static str),
}

/// One step: an operation through the mount, or directly on the store ("behind" it).
#[derive(Clone, Debug)]
struct Step {
    op: Op,
    behind: bool,
}

fn path() -> impl Strategy<Value = &'static str> {
    prop::sample::select(PATHS)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => path().prop_map(Op::Create),
        3 => (path(), 0u64..6000, 0usize..3000, any::<u32>())
            .prop_map(|(p, o, l, s)| Op::Write(p, o, l, s)),
        2 => (path(), 0u64..8000).prop_map(|(p, l)| Op::Truncate(p, l)),
        3 => (path(), path()).prop_map(|(a, b)| Op::Rename(a, b)),
        2 => path().prop_map(Op::Unlink),
        3 => path().prop_map(Op::Mkdir),
        2 => path().prop_map(Op::Rmdir),
        2 => path().prop_map(Op::Read),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (op(), prop::bool::weighted(0.2)).prop_map(|(op, behind)| Step { op, behind })
}

/// Result of one operation: bytes read (for `Read`) or the errno.
type Outcome = Result<Option<Vec<u8>>, i32>;

fn errno(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

fn apply(base: &Path, op: &Op) -> Outcome {
    let p = |r: &str| base.join(r);
    match op {
        Op::Create(r) => OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p(r))
            .map(|_| None)
            .map_err(errno),
        Op::Write(r, off, len, seed) => {
            let f = OpenOptions::new().write(true).open(p(r)).map_err(errno)?;
            f.write_all_at(&content(*seed, *len), *off).map_err(errno)?;
            Ok(None)
        }
        Op::Truncate(r, len) => {
            let f = OpenOptions::new().write(true).open(p(r)).map_err(errno)?;
            f.set_len(*len).map_err(errno)?;
            Ok(None)
        }
        Op::Rename(a, b) => std::fs::rename(p(a), p(b)).map(|_| None).map_err(errno),
        Op::Unlink(r) => std::fs::remove_file(p(r)).map(|_| None).map_err(errno),
        Op::Mkdir(r) => std::fs::create_dir(p(r)).map(|_| None).map_err(errno),
        Op::Rmdir(r) => std::fs::remove_dir(p(r)).map(|_| None).map_err(errno),
        Op::Read(r) => std::fs::read(p(r)).map(Some).map_err(errno),
    }
}

/// A tree: relative path -> None for a directory, Some(bytes) for a file.
type Tree = BTreeMap<PathBuf, Option<Vec<u8>>>;

fn tree(root: &Path) -> Result<Tree, String> {
    let mut out = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| format!("read_dir {}: {e}", d.display()))?;
        for e in rd {
            let e = e.map_err(|e| format!("readdir {}: {e}", d.display()))?;
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let m =
                std::fs::symlink_metadata(&p).map_err(|e| format!("lstat {}: {e}", p.display()))?;
            let ft = e
                .file_type()
                .map_err(|e| format!("d_type {}: {e}", p.display()))?;
            if ft.is_dir() != m.is_dir() {
                return Err(format!("{}: readdir and lstat disagree", p.display()));
            }
            if m.is_dir() {
                stack.push(p);
                out.insert(rel, None);
            } else if m.is_file() {
                let bytes = std::fs::read(&p).map_err(|e| format!("read {}: {e}", p.display()))?;
                if bytes.len() as u64 != m.len() {
                    return Err(format!(
                        "{}: lstat size {} but read {} bytes",
                        p.display(),
                        m.len(),
                        bytes.len()
                    ));
                }
                out.insert(rel, Some(bytes));
            } else {
                return Err(format!("{}: neither file nor directory", p.display()));
            }
        }
    }
    Ok(out)
}

fn show(t: &Tree) -> String {
    t.iter()
        .map(|(p, v)| match v {
            None => format!("{}/", p.display()),
            Some(b) => format!("{} ({} B)", p.display(), b.len()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The state shared by all cases: one mount, one reference directory.
struct Harness {
    m: Mount,
    reference: tempfile::TempDir,
    n: std::cell::Cell<usize>,
}

impl Harness {
    fn new(store: &Path) -> Harness {
        Harness {
            m: Mount::new(store, "attr_timeout=0,entry_timeout=0"),
            reference: tempfile::Builder::new()
                .prefix("hfcfs-diff-ref")
                .tempdir()
                .unwrap(),
            n: std::cell::Cell::new(0),
        }
    }

    /// Runs `steps` in a fresh case directory; returns the first difference.
    fn run(&self, steps: &[Step]) -> Result<(), String> {
        let i = self.n.get();
        self.n.set(i + 1);
        let case = format!("case{i}");
        let store = self.m.store.join(&case);
        let reference = self.reference.path().join(&case);
        let view = self.m.mp.join(&case);
        std::fs::create_dir(&store).unwrap();
        std::fs::create_dir(&reference).unwrap();
        for (k, s) in steps.iter().enumerate() {
            let want = apply(&reference, &s.op);
            let got = apply(if s.behind { &store } else { &view }, &s.op);
            if want != got {
                return Err(format!(
                    "step {k} {s:?}: reference {:?}, {} {:?}",
                    short(&want),
                    if s.behind { "store" } else { "mount" },
                    short(&got)
                ));
            }
            let r = tree(&reference)?;
            let v = tree(&view).map_err(|e| format!("step {k} {s:?}: view: {e}"))?;
            let st = tree(&store)?;
            if v != r {
                return Err(format!(
                    "step {k} {s:?}: view differs\n  reference: {}\n  view:      {}",
                    show(&r),
                    show(&v)
                ));
            }
            if st != r {
                return Err(format!(
                    "step {k} {s:?}: store differs\n  reference: {}\n  store:     {}",
                    show(&r),
                    show(&st)
                ));
            }
        }
        Ok(())
    }
}

fn short(o: &Outcome) -> String {
    match o {
        Ok(None) => "ok".into(),
        Ok(Some(b)) => format!("{} bytes", b.len()),
        Err(e) => format!("errno {e} ({})", std::io::Error::from_raw_os_error(*e)),
    }
}

fn store_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hfcfs-diff-store")
        .tempdir()
        .unwrap()
}

#[test]
fn mount_behaves_like_a_plain_directory() {
    let store = store_dir();
    let h = Harness::new(store.path());
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("HFCFS_PROP_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6866_6366);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: 2000,
        ..Config::default()
    });
    let t = Instant::now();
    let steps = std::cell::Cell::new(0usize);
    let result = runner.run(&prop::collection::vec(step(), 1..30), |s| {
        steps.set(steps.get() + s.len());
        h.run(&s).map_err(TestCaseError::fail)
    });
    eprintln!(
        "differential: seed {seed}, {cases} cases, {} steps (incl. shrinking), {:.1?}",
        steps.get(),
        t.elapsed()
    );
    if let Err(e) = result {
        panic!("{e}\n(daemon log: {})", h.m.log_text());
    }
}

// ------------------------------------------------------------------------------------------
// Regressions: named replays of shrunk sequences (plus hand-picked edge cases).
// ------------------------------------------------------------------------------------------

fn replay(steps: &[Step]) {
    let store = store_dir();
    let h = Harness::new(store.path());
    if let Err(e) = h.run(steps) {
        panic!("{e}\n(daemon log: {})", h.m.log_text());
    }
}

fn via(op: Op) -> Step {
    Step { op, behind: false }
}

fn behind(op: Op) -> Step {
    Step { op, behind: true }
}

#[test]
fn rename_a_directory_into_its_own_subtree_fails_like_the_reference() {
    replay(&[
        via(Op::Mkdir("d")),
        via(Op::Mkdir("d/e")),
        via(Op::Rename("d", "d/e/a")),
        via(Op::Rename("d", "d")),
        via(Op::Rename("d/e", "d")),
    ]);
}

#[test]
fn file_replaced_by_a_directory_behind_the_mount() {
    replay(&[
        via(Op::Create("f")),
        via(Op::Write("f", 10, 100, 1)),
        via(Op::Read("f")),
        behind(Op::Unlink("f")),
        behind(Op::Mkdir("f")),
        via(Op::Read("f")),
        via(Op::Create("f/a")),
        via(Op::Rmdir("f")),
    ]);
}

#[test]
fn truncate_and_write_behind_the_mount_are_seen_at_the_next_open() {
    replay(&[
        via(Op::Create("a")),
        via(Op::Write("a", 0, 3000, 2)),
        via(Op::Read("a")),
        behind(Op::Truncate("a", 7)),
        via(Op::Read("a")),
        behind(Op::Write("a", 5000, 10, 3)),
        via(Op::Read("a")),
        via(Op::Truncate("a", 4096)),
        behind(Op::Read("a")),
    ]);
}
