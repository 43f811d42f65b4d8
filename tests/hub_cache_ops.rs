//! Cache management through a read-write mount, with the real clients: `scan_cache_dir`,
//! `delete_revisions`, `hf cache rm`, `hf cache prune` (also on a shared-blob-store layout),
//! several processes downloading at once, and a download killed mid-file then retried.
//!
//! Every test owns its fake Hub, store, mount and client processes; all of them are ended by
//! PID when the test ends, also on failure. Run with `--nocapture` to see the reports (what
//! `scan_cache_dir` says through the mount and on the store, timings, what was left behind).

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use harness::{FakeHub, Mount, venv_python, walk};
use serde_json::Value;

const TINY: &str = "acme/tiny-model";
const OTHER: &str = "acme/other-model";
const BIG: &str = "acme/big-model";
const DATA: &str = "acme/tiny-data";
const ALL: [&str; 4] = [TINY, OTHER, BIG, DATA];

/// Any client command taking longer than this is killed and fails the test.
const TIMEOUT: Duration = Duration::from_secs(120);

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ------------------------------------------------------------------------------------------
// Processes
// ------------------------------------------------------------------------------------------

/// A child process whose output goes to files; killed by PID on drop if still running.
struct Proc {
    child: Option<Child>,
    out: PathBuf,
    what: String,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits up to `TIMEOUT`; returns (success, stdout+stderr).
    fn wait(mut self) -> (bool, String) {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                break Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let text = self.output();
        match status {
            Some(st) => (st.success(), text),
            None => (
                false,
                format!("{}: timed out after {TIMEOUT:?}\n{text}", self.what),
            ),
        }
    }

    /// SIGKILL by PID, then reap.
    fn kill(mut self) -> String {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
        self.output()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One test's fake Hub and scratch directory (client output files, `HF_HOME`).
struct Env {
    hub: FakeHub,
    work: tempfile::TempDir,
    n: std::cell::Cell<usize>,
}

impl Env {
    fn new() -> Env {
        let hub = FakeHub::start(&venv_python("hub2"));
        let work = tempfile::Builder::new()
            .prefix("hfcfs-ops")
            .tempdir()
            .unwrap();
        std::fs::create_dir(work.path().join("home")).unwrap();
        Env {
            hub,
            work,
            n: std::cell::Cell::new(0),
        }
    }

    fn base(&self, cmd: &mut Command, cache: &Path) {
        cmd.env("HF_HUB_CACHE", cache)
            .env("HF_HOME", self.work.path().join("home"))
            .env("HF_ENDPOINT", &self.hub.endpoint)
            .env("HF_HUB_DISABLE_XET", "1")
            .env("HF_HUB_DISABLE_TELEMETRY", "1")
            .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            .env("NO_COLOR", "1")
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("HF_TOKEN")
            .stdin(Stdio::null());
    }

    /// `tests/hub/client.py ARGS` with the venv's python against `cache`.
    fn client(&self, venv: &str, cache: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(venv_python(venv));
        cmd.arg(manifest_dir().join("tests/hub/client.py"))
            .args(args);
        self.base(&mut cmd, cache);
        cmd
    }

    /// The `hf` CLI of huggingface_hub 2.4 with `--cache-dir cache` appended.
    fn hf(&self, cache: &Path, args: &[&str]) -> Command {
        let hf = manifest_dir().join(".venv/hub2/bin/hf");
        assert!(
            hf.exists(),
            "{} missing: run scripts/setup-python.sh",
            hf.display()
        );
        let mut cmd = Command::new(hf);
        cmd.args(args).arg("--cache-dir").arg(cache);
        self.base(&mut cmd, cache);
        // The cache commands never need the Hub.
        cmd.env("HF_HUB_OFFLINE", "1");
        cmd
    }

    fn spawn(&self, mut cmd: Command, what: &str) -> Proc {
        let i = self.n.get();
        self.n.set(i + 1);
        let out = self.work.path().join(format!("proc{i}.out"));
        let f = std::fs::File::create(&out).unwrap();
        cmd.stdout(f.try_clone().unwrap()).stderr(f);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        Proc {
            child: Some(child),
            out,
            what: what.to_string(),
        }
    }

    /// Runs `cmd` to completion; panics with its output (and `extra`) on failure.
    fn run(&self, cmd: Command, what: &str, extra: &dyn Fn() -> String) -> String {
        let t = Instant::now();
        let (ok, out) = self.spawn(cmd, what).wait();
        eprintln!("[{:>6.2}s] {what}", t.elapsed().as_secs_f64());
        assert!(ok, "{what} failed:\n{out}\n{}", extra());
        out
    }

    /// Plain HTTP/1.0 request to the fake Hub (its control endpoints); returns the body.
    fn http(&self, method: &str, path: &str) -> String {
        let addr = self.hub.endpoint.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("http response");
        assert!(head.contains(" 200 "), "{method} {path}: {head}");
        body.to_string()
    }

    /// Sets fake Hub knobs (`GET /_fake/config?QUERY`).
    fn config(&self, query: &str) {
        self.http("GET", &format!("/_fake/config?{query}"));
    }

    /// The fake Hub's request log: (method, path, range) of every request seen.
    fn requests(&self) -> Vec<(String, String, Option<String>)> {
        let log: Value = serde_json::from_str(&self.http("GET", "/_fake/log")).unwrap();
        log.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["method"].as_str().unwrap().to_string(),
                    e["path"].as_str().unwrap().to_string(),
                    e["range"].as_str().map(str::to_string),
                )
            })
            .collect()
    }
}

fn no_log() -> String {
    String::new()
}

/// The value of the last line of `out` starting with `tag ` (JSON).
fn tagged_json(out: &str, tag: &str) -> Value {
    let prefix = format!("{tag} ");
    let line = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {tag} line in:\n{out}"));
    serde_json::from_str(line).unwrap()
}

// ------------------------------------------------------------------------------------------
// Fixture facts (from fake_hub.py's manifest)
// ------------------------------------------------------------------------------------------

fn manifest() -> &'static Value {
    static M: OnceLock<Value> = OnceLock::new();
    M.get_or_init(|| {
        let out = Command::new(venv_python("hub2"))
            .arg(manifest_dir().join("tests/hub/fake_hub.py"))
            .arg("--manifest")
            .output()
            .expect("fake_hub.py --manifest");
        assert!(out.status.success());
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["repos"].clone()
    })
}

fn repo(id: &str) -> &'static Value {
    &manifest()[id]
}

fn folder(id: &str) -> &'static str {
    repo(id)["folder"].as_str().unwrap()
}

fn sha_of(id: &str, rev: &str) -> &'static str {
    repo(id)["revisions"][rev].as_str().unwrap()
}

/// commit -> path -> (size, etag), without `excluded` commits.
fn commits(id: &str, excluded: &[&str]) -> BTreeMap<String, BTreeMap<String, (u64, String)>> {
    repo(id)["commits"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(sha, _)| !excluded.contains(&sha.as_str()))
        .map(|(sha, c)| {
            let files = c["files"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(p, m)| {
                    (
                        p.clone(),
                        (
                            m["size"].as_u64().unwrap(),
                            m["etag"].as_str().unwrap().to_string(),
                        ),
                    )
                })
                .collect();
            (sha.clone(), files)
        })
        .collect()
}

/// Distinct blobs (etag -> size) the given commits use.
fn blobs_of(c: &BTreeMap<String, BTreeMap<String, (u64, String)>>) -> BTreeMap<String, u64> {
    c.values()
        .flat_map(|f| f.values().map(|(s, e)| (e.clone(), *s)))
        .collect()
}

/// What `scan_cache_dir` must say about `repos` (minus `excluded` commits). `view`: through the
/// mount every snapshot entry is a regular file, so the scanner counts one "blob" per entry
/// (repo `nb_files` = entries, sizes summed per entry); on the symlinked store it counts each
/// distinct blob once.
fn assert_scan(scan: &Value, repos: &[&str], excluded: &[&str], view: bool, what: &str) {
    assert_eq!(scan["warnings"], serde_json::json!([]), "{what}: warnings");
    assert_eq!(
        scan["incomplete"],
        serde_json::json!([]),
        "{what}: incomplete"
    );
    let listed: BTreeMap<&str, &Value> = scan["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["repo_id"].as_str().unwrap(), r))
        .collect();
    let want: BTreeSet<&str> = repos.iter().copied().collect();
    assert_eq!(
        listed.keys().copied().collect::<BTreeSet<_>>(),
        want,
        "{what}: repos"
    );
    let mut total = 0;
    for id in repos {
        let r = listed[id];
        let c = commits(id, excluded);
        let blobs = blobs_of(&c);
        let entries: usize = c.values().map(BTreeMap::len).sum();
        let (nb, size) = if view {
            (
                entries as u64,
                c.values().flat_map(|f| f.values().map(|v| v.0)).sum(),
            )
        } else {
            (blobs.len() as u64, blobs.values().sum::<u64>())
        };
        assert_eq!(r["nb_files"].as_u64(), Some(nb), "{what}: {id} nb_files");
        assert_eq!(r["size_on_disk"].as_u64(), Some(size), "{what}: {id} size");
        total += size;
        let revs: BTreeMap<&str, &Value> = r["revisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["commit_hash"].as_str().unwrap(), v))
            .collect();
        assert_eq!(
            revs.keys().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
            c.keys().cloned().collect::<BTreeSet<_>>(),
            "{what}: {id} revisions"
        );
        for (sha, files) in &c {
            let v = revs[sha.as_str()];
            let refs: BTreeSet<String> = repo(id)["revisions"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, s)| s.as_str() == Some(sha))
                .map(|(n, _)| n.clone())
                .collect();
            let got: BTreeSet<String> = v["refs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            assert_eq!(got, refs, "{what}: {id}@{sha} refs");
            assert_eq!(
                v["nb_files"].as_u64(),
                Some(files.len() as u64),
                "{what}: {id}@{sha} nb_files"
            );
            let rsize: u64 = if view {
                files.values().map(|v| v.0).sum()
            } else {
                files
                    .values()
                    .map(|(s, e)| (e, *s))
                    .collect::<BTreeMap<_, _>>()
                    .values()
                    .sum()
            };
            assert_eq!(
                v["size_on_disk"].as_u64(),
                Some(rsize),
                "{what}: {id}@{sha} size"
            );
        }
    }
    assert_eq!(scan["size_on_disk"].as_u64(), Some(total), "{what}: total");
}

/// One line per repo: what the scanner reported.
fn scan_summary(scan: &Value) -> String {
    let mut s = format!(
        "huggingface_hub {}: size_on_disk={}",
        scan["version"].as_str().unwrap_or("?"),
        scan["size_on_disk"]
    );
    for r in scan["repos"].as_array().unwrap() {
        s.push_str(&format!(
            "\n    {} nb_files={} size={} revisions={}",
            r["repo_id"].as_str().unwrap(),
            r["nb_files"],
            r["size_on_disk"],
            r["revisions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| format!(
                    "{}{:?}:{}f/{}B",
                    &v["commit_hash"].as_str().unwrap()[..8],
                    v["refs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap())
                        .collect::<Vec<_>>(),
                    v["nb_files"],
                    v["size_on_disk"]
                ))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    s
}

// ------------------------------------------------------------------------------------------
// Store checks
// ------------------------------------------------------------------------------------------

/// The store keeps the hub layout: every non-directory below a `snapshots/` is a relative
/// symlink, and no hfcachefs temporary (`.hfcachefs-*`) is left anywhere.
fn assert_store_snapshots_are_links(store: &Path) {
    for p in walk(store) {
        let rel = p.strip_prefix(store).unwrap();
        let name = p.file_name().unwrap().to_string_lossy();
        assert!(
            !name.starts_with(".hfcachefs"),
            "leftover temporary {}",
            rel.display()
        );
        if rel.components().any(|c| c.as_os_str() == "snapshots") {
            let md = p.symlink_metadata().unwrap();
            if !md.is_dir() {
                assert!(md.is_symlink(), "store {} is not a link", rel.display());
                let t = std::fs::read_link(&p).unwrap();
                assert!(t.is_relative(), "{} -> {}", rel.display(), t.display());
            }
        }
    }
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn store_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

// ------------------------------------------------------------------------------------------
// 1-3: scan_cache_dir, delete_revisions, hf cache rm
// ------------------------------------------------------------------------------------------

fn scan_delete_and_rm(venv: &str) {
    let t0 = Instant::now();
    let env = Env::new();
    let store = store_dir("hfcfs-ops-store");
    let m = Mount::new(store.path(), "");
    let log = || m.log_text();

    // A full download through the mount.
    env.run(
        env.client(venv, &m.mp, &["populate"]),
        &format!("{venv}: populate through the mount"),
        &log,
    );

    // 1. scan_cache_dir through the mount, and on the store for comparison.
    let out = env.run(
        env.client(venv, &m.mp, &["scan"]),
        &format!("{venv}: scan_cache_dir through the mount"),
        &log,
    );
    let via_view = tagged_json(&out, "SCAN");
    let out = env.run(
        env.client(venv, store.path(), &["scan"]),
        &format!("{venv}: scan_cache_dir on the store"),
        &no_log,
    );
    let on_store = tagged_json(&out, "SCAN");
    eprintln!(
        "{venv}: scan_cache_dir through the mount: {}",
        scan_summary(&via_view)
    );
    eprintln!(
        "{venv}: scan_cache_dir on the store:      {}",
        scan_summary(&on_store)
    );
    assert_scan(&via_view, &ALL, &[], true, "scan through the mount");
    assert_scan(&on_store, &ALL, &[], false, "scan on the store");

    // 2. delete_revisions(<v1 of tiny-model>).execute() through the mount.
    let v1 = sha_of(TINY, "v1");
    let mut store_copy = None;
    if venv == "hub2" {
        // The same deletion on a plain copy of the store, for contrast.
        let copy = store_dir("hfcfs-ops-copy");
        copy_tree(store.path(), &copy.path().join("c"));
        store_copy = Some(copy);
    }
    let out = env.run(
        env.client(
            venv,
            &m.mp,
            &["delete-revisions", "--repo", TINY, "--exclude-commit", v1],
        ),
        &format!("{venv}: delete_revisions(v1) through the mount"),
        &log,
    );
    let strategy = tagged_json(&out, "STRATEGY");
    eprintln!("{venv}: delete strategy through the mount: {strategy}");
    let tiny = folder(TINY);
    let snap_v1 = format!("{tiny}/snapshots/{v1}");
    assert_eq!(strategy["snapshots"], serde_json::json!([snap_v1]));
    assert_eq!(
        strategy["refs"],
        serde_json::json!([format!("{tiny}/refs/v1")])
    );
    // Through the view the snapshot entries are regular files, so the client takes each entry
    // for its own blob: 2.4 lists no blob at all (it knows those entries go with the snapshot
    // dir), 0.36 lists the entries themselves (and then warns "Couldn't delete blob: file not
    // found" after removing the snapshot dir, harmlessly). Never a real `blobs/` file.
    for b in strategy["blobs"].as_array().unwrap() {
        let b = b.as_str().unwrap();
        assert!(b.starts_with(&format!("{snap_v1}/")), "strategy blob {b}");
    }
    // The remaining revisions still read correctly (offline, through the mount).
    env.run(
        env.client(
            venv,
            &m.mp,
            &["check-offline", "--repo", TINY, "--exclude-commit", v1],
        ),
        &format!("{venv}: check-offline of the remaining tiny-model revisions"),
        &log,
    );
    assert!(!store.path().join(&snap_v1).exists());
    assert!(!store.path().join(tiny).join("refs/v1").exists());
    assert_store_snapshots_are_links(store.path());
    // Known limitation of the regular-file view (docs: hub-cache-facts.md): the blobs only v1
    // used are orphaned in the store's blobs/, since the client never saw them.
    let all_blobs: BTreeSet<String> = blobs_of(&commits(TINY, &[])).into_keys().collect();
    let kept: BTreeSet<String> = blobs_of(&commits(TINY, &[v1])).into_keys().collect();
    let orphans: BTreeSet<String> = all_blobs.difference(&kept).cloned().collect();
    let in_store = names_in(&store.path().join(tiny).join("blobs"));
    eprintln!("{venv}: blobs orphaned by delete_revisions through the mount: {orphans:?}");
    assert_eq!(
        in_store, all_blobs,
        "store blobs after delete_revisions through the mount (expected the remaining ones plus \
         the orphans {orphans:?})"
    );
    if let Some(copy) = &store_copy {
        // On the plain symlinked store the same call removes them.
        let c = copy.path().join("c");
        env.run(
            env.client(
                venv,
                &c,
                &["delete-revisions", "--repo", TINY, "--exclude-commit", v1],
            ),
            &format!("{venv}: delete_revisions(v1) on a plain copy of the store"),
            &no_log,
        );
        assert_eq!(names_in(&c.join(tiny).join("blobs")), kept);
    }

    // 3. hf cache rm model/acme/tiny-model -y through the mount.
    let out = env.run(
        env.hf(&m.mp, &["cache", "rm", "model/acme/tiny-model", "-y"]),
        &format!("{venv}: hf cache rm model/acme/tiny-model -y through the mount"),
        &log,
    );
    assert!(out.contains("Deleted 1 repo(s)"), "{out}");
    assert!(
        !store.path().join(tiny).exists(),
        "tiny-model left in store"
    );
    assert!(!m.path(tiny).exists());
    let rest = [OTHER, BIG, DATA];
    let mut args = vec!["check-offline"];
    for r in rest {
        args.extend(["--repo", r]);
    }
    env.run(
        env.client(venv, &m.mp, &args),
        &format!("{venv}: check-offline of the other repos through the mount"),
        &log,
    );
    args[0] = "check-layout";
    env.run(
        env.client(venv, store.path(), &args),
        &format!("{venv}: check-layout of the other repos in the store"),
        &no_log,
    );
    args[0] = "scan";
    let out = env.run(
        env.client(venv, &m.mp, &args),
        &format!("{venv}: scan_cache_dir after rm"),
        &log,
    );
    let after = tagged_json(&out, "SCAN");
    assert_scan(&after, &rest, &[], true, "scan after hf cache rm");
    assert_store_snapshots_are_links(store.path());
    // The client leaves `.locks/<repo>/` behind (it never deletes lock files).
    eprintln!(
        "{venv}: store top level after rm: {:?}; .locks: {:?}",
        names_in(store.path()),
        names_in(&store.path().join(".locks"))
    );
    eprintln!("{venv}: scenarios 1-3 took {:.2?}", t0.elapsed());
}

#[test]
fn scan_delete_revision_and_cache_rm_hub_2_4() {
    scan_delete_and_rm("hub2");
}

#[test]
fn scan_delete_revision_and_cache_rm_hub_0_36() {
    scan_delete_and_rm("hub036");
}

// ------------------------------------------------------------------------------------------
// 4: hf cache prune on a shared-blob-store layout
// ------------------------------------------------------------------------------------------

/// A store holding tiny-model and other-model (downloaded directly, by 2.4) rearranged into
/// the hub's shared-blob-store layout for the LFS file both repos share.
struct SharedStore {
    dir: tempfile::TempDir,
    /// Etag (repo blob name) of the shared file.
    etag: String,
    /// The payload's name: `blobs/<hh>/<xet>`.
    xet: String,
    size: u64,
    /// other-model's files at `main`: path -> (size, etag).
    other_files: BTreeMap<String, (u64, String)>,
}

impl SharedStore {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn payload(&self, root: &Path) -> PathBuf {
        root.join("blobs").join(&self.xet[..2]).join(&self.xet)
    }

    fn repo_blob(&self, root: &Path, id: &str) -> PathBuf {
        root.join(folder(id)).join("blobs").join(&self.etag)
    }

    fn build(env: &Env) -> SharedStore {
        let dir = store_dir("hfcfs-ops-shared");
        let s = dir.path();
        env.run(
            env.client("hub2", s, &["populate", "--repo", TINY, "--repo", OTHER]),
            "populate tiny-model + other-model directly into the store",
            &no_log,
        );
        // The LFS file both repos share (same etag).
        let other_files = commits(OTHER, &[]).remove(sha_of(OTHER, "main")).unwrap();
        let tiny_etags: BTreeSet<String> = commits(TINY, &[])
            .values()
            .flat_map(|f| f.values().map(|v| v.1.clone()))
            .collect();
        let (path, (size, etag)) = other_files
            .iter()
            .find(|(p, (_, e))| {
                repo(OTHER)["commits"][sha_of(OTHER, "main")]["files"][p.as_str()]["lfs"]
                    .as_bool()
                    .unwrap()
                    && tiny_etags.contains(e)
            })
            .expect("an LFS file shared by tiny-model and other-model");
        eprintln!("shared LFS file: {path} ({size} bytes, etag {etag})");
        let st = SharedStore {
            etag: etag.clone(),
            xet: format!("{:064x}", 0x5eed_f00d_u64 << 40),
            size: *size,
            other_files: other_files.clone(),
            dir,
        };
        // By hand: payload blobs/<hh>/<xethash>, marker, manifest listing both repo blobs, and
        // both repo blobs replaced by links to the payload (snapshots -> repo blob -> payload).
        let s = st.root();
        let payload = st.payload(s);
        std::fs::create_dir_all(payload.parent().unwrap()).unwrap();
        std::fs::rename(st.repo_blob(s, TINY), &payload).unwrap();
        std::fs::remove_file(st.repo_blob(s, OTHER)).unwrap();
        std::fs::write(s.join("blobs/.huggingface-shared-blobs"), "1\n").unwrap();
        std::fs::write(
            payload.with_file_name(format!("{}.refs", st.xet)),
            format!(
                "{}/blobs/{etag}\n{}/blobs/{etag}\n",
                folder(TINY),
                folder(OTHER)
            ),
        )
        .unwrap();
        let link = format!("../../blobs/{}/{}", &st.xet[..2], st.xet);
        std::os::unix::fs::symlink(&link, st.repo_blob(s, TINY)).unwrap();
        std::os::unix::fs::symlink(&link, st.repo_blob(s, OTHER)).unwrap();
        st
    }

    /// other-model's files read with the right bytes through the mount and in the store.
    fn assert_other_model_intact(&self, env: &Env, m: &Mount) {
        let log = || m.log_text();
        env.run(
            env.client("hub2", &m.mp, &["check-offline", "--repo", OTHER]),
            "check-offline other-model through the mount",
            &log,
        );
        env.run(
            env.client("hub2", self.root(), &["check-offline", "--repo", OTHER]),
            "check-offline other-model directly in the store",
            &no_log,
        );
        let rel = Path::new(folder(OTHER))
            .join("snapshots")
            .join(sha_of(OTHER, "main"));
        for (p, (size, _)) in &self.other_files {
            let in_store = std::fs::read(self.root().join(&rel).join(p)).unwrap();
            assert_eq!(in_store.len() as u64, *size, "{p}");
            let via_view = std::fs::read(m.mp.join(&rel).join(p)).unwrap();
            assert!(via_view == in_store, "{p} differs between view and store");
        }
        assert_store_snapshots_are_links(self.root());
    }
}

#[test]
fn cache_rm_and_prune_keep_shared_store_payload() {
    let t0 = Instant::now();
    let env = Env::new();
    let st = SharedStore::build(&env);
    let s = st.root();
    let (etag, xet, shared_size) = (&st.etag, &st.xet, st.size);
    let payload = st.payload(s);
    let other_blob = st.repo_blob(s, OTHER);
    // A plain copy for the run without the mount.
    let copy = store_dir("hfcfs-ops-shared-copy");
    let c = copy.path().join("c");
    copy_tree(s, &c);

    let m = Mount::new(s, "");
    let log = || m.log_text();
    let ls = env.run(
        env.hf(&m.mp, &["cache", "ls"]),
        "hf cache ls through the mount",
        &log,
    );
    // Through the view the repo blobs are regular files: the hub's reference check (is any
    // manifest entry a symlink to the payload?) finds none, so the payload already looks
    // unreferenced although both repos use it.
    eprintln!("hf cache ls through the mount:\n{ls}");
    assert!(ls.contains("1 unreferenced shared blob"), "{ls}");
    let rm = env.run(
        env.hf(&m.mp, &["cache", "rm", "model/acme/tiny-model", "-y"]),
        "hf cache rm model/acme/tiny-model -y through the mount",
        &log,
    );
    assert!(rm.contains("Deleted 1 repo(s)"), "{rm}");
    assert!(!s.join(folder(TINY)).exists());
    let prune = env.run(
        env.hf(&m.mp, &["cache", "prune", "-y"]),
        "hf cache prune -y through the mount",
        &log,
    );
    eprintln!("hf cache prune through the mount:\n{prune}");
    // The client deletes the payload it thinks unreferenced; hfcachefs keeps the content by
    // moving it onto the repo blob link the manifest lists (src/view/keep.rs).
    assert!(
        prune.contains("Deleted 1 unreferenced shared blob"),
        "{prune}"
    );
    assert!(!payload.exists(), "payload still in the shared store");
    let md = other_blob.symlink_metadata().unwrap();
    assert!(
        md.is_file() && md.len() == shared_size,
        "other-model's blob is {md:?}, expected the {shared_size}-byte content"
    );
    assert!(
        m.log_text().contains("content still linked; kept as"),
        "{}",
        m.log_text()
    );
    // Nothing lost: other-model reads with the right bytes through the mount and in the store.
    st.assert_other_model_intact(&env, &m);
    drop(m);

    // The same two commands directly on the symlinked copy: the hub sees other-model's link,
    // rewrites the manifest to that one reference and keeps the payload; prune finds nothing.
    let rm = env.run(
        env.hf(&c, &["cache", "rm", "model/acme/tiny-model", "-y"]),
        "hf cache rm model/acme/tiny-model -y on the plain copy",
        &no_log,
    );
    assert!(rm.contains("Deleted 1 repo(s)"), "{rm}");
    let prune = env.run(
        env.hf(&c, &["cache", "prune", "-y"]),
        "hf cache prune -y on the plain copy",
        &no_log,
    );
    eprintln!("hf cache prune on the plain copy:\n{prune}");
    assert!(prune.contains("Nothing to prune"), "{prune}");
    let cpayload = st.payload(&c);
    assert_eq!(std::fs::metadata(&cpayload).unwrap().len(), shared_size);
    assert_eq!(
        std::fs::read_to_string(cpayload.with_file_name(format!("{xet}.refs"))).unwrap(),
        format!("{}/blobs/{etag}\n", folder(OTHER))
    );
    assert!(st.repo_blob(&c, OTHER).is_symlink());
    env.run(
        env.client("hub2", &c, &["check-offline", "--repo", OTHER]),
        "check-offline other-model on the plain copy",
        &no_log,
    );
    eprintln!("scenario 4 took {:.2?}", t0.elapsed());
}

/// The other order loses data through the mount (it does not on the plain store, where prune
/// finds nothing to do and rm keeps the payload for other-model).
///
/// `hf cache prune` while both repos are present: the payload looks unreferenced through the
/// view, so the client unlinks `blobs/<hh>/<xet>`; keep.rs renames the payload onto the first
/// manifest entry, `models--acme--tiny-model/blobs/<etag>`, and re-points
/// `models--acme--other-model/blobs/<etag>` at it: a link *across repos*. `hf cache rm
/// model/acme/tiny-model` then unlinks tiny-model's blob; for a repo blob, keep.rs only looks
/// for referrers below the same repo's `snapshots/`, so it moves the content into tiny-model's
/// snapshots (which the same rmtree deletes next) and other-model's blob link is left dangling:
/// other-model's `model.safetensors` is gone. All syscalls succeed; no errno to see.
#[test]
fn prune_then_rm_keeps_other_model_content() {
    let env = Env::new();
    let st = SharedStore::build(&env);
    let m = Mount::new(st.root(), "");
    let log = || m.log_text();
    let prune = env.run(
        env.hf(&m.mp, &["cache", "prune", "-y"]),
        "hf cache prune -y through the mount (both repos present)",
        &log,
    );
    assert!(
        prune.contains("Deleted 1 unreferenced shared blob"),
        "{prune}"
    );
    let other_blob = st.repo_blob(st.root(), OTHER);
    eprintln!(
        "after prune: other-model blob -> {:?}",
        std::fs::read_link(&other_blob)
    );
    env.run(
        env.hf(&m.mp, &["cache", "rm", "model/acme/tiny-model", "-y"]),
        "hf cache rm model/acme/tiny-model -y through the mount",
        &log,
    );
    assert!(
        other_blob.exists(),
        "other-model's blob {} dangles ({:?}): its content was deleted with tiny-model\n{}",
        other_blob.display(),
        std::fs::read_link(&other_blob),
        m.log_text()
    );
    st.assert_other_model_intact(&env, &m);
}

// ------------------------------------------------------------------------------------------
// 5: several processes downloading the same repos at once
// ------------------------------------------------------------------------------------------

#[test]
fn concurrent_downloads_of_the_same_repos() {
    let t0 = Instant::now();
    let env = Env::new();
    let store = store_dir("hfcfs-ops-conc");
    let m = Mount::new(store.path(), "");
    let log = || m.log_text();
    // big.bin streams in ~0.6 s so that the processes overlap inside the download.
    env.config("slow_path=big.bin&slow_chunk=2097152&slow_delay=0.1");
    let repos = ["--repo", TINY, "--repo", BIG];
    let mut procs = Vec::new();
    for (i, venv) in ["hub2", "hub2", "hub2", "hub2", "hub036"]
        .iter()
        .enumerate()
    {
        let mut args = vec!["populate"];
        args.extend(repos);
        procs.push((
            *venv,
            env.spawn(
                env.client(venv, &m.mp, &args),
                &format!("client {i} ({venv})"),
            ),
        ));
    }
    let mut failed = Vec::new();
    for (venv, p) in procs {
        let what = p.what.clone();
        let (ok, out) = p.wait();
        if !ok {
            failed.push(format!("{what} ({venv}):\n{out}"));
        }
    }
    assert!(failed.is_empty(), "{}\n{}", failed.join("\n"), m.log_text());
    eprintln!("5 concurrent populate runs took {:.2?}", t0.elapsed());
    let gets = env
        .requests()
        .iter()
        .filter(|(meth, p, _)| meth == "GET" && p.ends_with("/big.bin"))
        .count();
    eprintln!("GETs of big.bin: {gets} (5 processes)");
    env.config("slow_path=");
    // One blob per content, no .incomplete, no probe leftovers; everything reads back.
    let mut args = vec!["check-layout"];
    args.extend(repos);
    env.run(
        env.client("hub2", store.path(), &args),
        "check-layout of the store",
        &no_log,
    );
    args[0] = "check-offline";
    env.run(
        env.client("hub2", &m.mp, &args),
        "check-offline through the mount",
        &log,
    );
    assert_store_snapshots_are_links(store.path());
    eprintln!("scenario 5 took {:.2?}", t0.elapsed());
}

// ------------------------------------------------------------------------------------------
// 6: a download killed mid-file, then retried
// ------------------------------------------------------------------------------------------

/// `*.incomplete` files in `dir` with their sizes.
fn incomplete_files(dir: &Path) -> Vec<(String, u64)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| {
        let e = e.ok()?;
        let n = e.file_name().to_string_lossy().into_owned();
        n.ends_with(".incomplete")
            .then(|| (n, e.metadata().map(|m| m.len()).unwrap_or(0)))
    })
    .collect()
}

fn killed_download_is_retried(venv: &str) {
    let t0 = Instant::now();
    let env = Env::new();
    let store = store_dir("hfcfs-ops-kill");
    let m = Mount::new(store.path(), "");
    let log = || m.log_text();
    let big = folder(BIG);
    let blobs = store.path().join(big).join("blobs");
    let files = commits(BIG, &[]).remove(sha_of(BIG, "main")).unwrap();
    let (size, etag) = files["big.bin"].clone();
    // The first 11 MiB at once, then a 30 s pause: the client writes its first 10 MiB chunk
    // to the .incomplete file and then waits, so the kill lands mid-file deterministically.
    env.config("slow_path=big.bin&slow_chunk=11534336&slow_delay=30");
    let get = ["get", "--repo", BIG, "--file", "big.bin"];
    let p = env.spawn(env.client(venv, &m.mp, &get), "client (to be killed)");
    let deadline = Instant::now() + Duration::from_secs(60);
    let partial = loop {
        if let Some(f) = incomplete_files(&blobs).into_iter().find(|f| f.1 > 0) {
            break f;
        }
        assert!(
            Instant::now() < deadline,
            "no growing .incomplete in the store after 60 s:\n{}\n{}",
            p.output(),
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let pid = p.pid();
    let seen = partial.1;
    let out = p.kill();
    // Through FUSE the client's 10 MiB write(2) reaches the store in max_write pieces, so the
    // kill usually lands inside that write: wait for the size to settle (a prefix either way).
    let mut partial = partial;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = incomplete_files(&blobs)
            .into_iter()
            .find(|f| f.0 == partial.0)
            .expect("the .incomplete file vanished");
        if now == partial {
            break;
        }
        partial = now;
    }
    eprintln!(
        "{venv}: killed client PID {pid} at {:.2?} when {} held {seen} bytes; {} bytes after \
         the kill",
        t0.elapsed(),
        partial.0,
        partial.1
    );
    assert!(partial.1 < size, "download finished before the kill: {out}");
    assert!(!blobs.join(&etag).exists(), "blob present before the retry");
    env.config("slow_path=");
    env.http("POST", "/_fake/log/clear");
    env.run(
        env.client(venv, &m.mp, &get),
        &format!("{venv}: retry after the kill"),
        &log,
    );
    let ranges: Vec<Option<String>> = env
        .requests()
        .into_iter()
        .filter(|(meth, p, _)| meth == "GET" && p.ends_with("/big.bin"))
        .map(|r| r.2)
        .collect();
    eprintln!("{venv}: retry GETs of big.bin with Range: {ranges:?}");
    let left = incomplete_files(&blobs);
    eprintln!("{venv}: .incomplete files after the retry: {left:?}");
    assert_eq!(std::fs::metadata(blobs.join(&etag)).unwrap().len(), size);
    if venv == "hub036" {
        // 0.36 resumes its shared `<etag>.incomplete` with a Range request and appends.
        assert_eq!(ranges, vec![Some(format!("bytes={}-", partial.1))]);
        assert!(left.is_empty(), "{left:?}");
        env.run(
            env.client(venv, store.path(), &["check-layout", "--repo", BIG]),
            "check-layout of the store",
            &no_log,
        );
    } else {
        // 2.4 starts a fresh `<etag>.<8hex>.incomplete` and leaves the killed one behind for
        // good (documented client behaviour); `hf cache prune` removes it, through the mount.
        assert_eq!(ranges, vec![None]);
        assert_eq!(left, vec![partial.clone()]);
        env.run(
            env.client(
                venv,
                store.path(),
                &["check-layout", "--repo", BIG, "--allow-incomplete"],
            ),
            "check-layout of the store (allowing .incomplete)",
            &no_log,
        );
        let prune = env.run(
            env.hf(&m.mp, &["cache", "prune", "-y"]),
            "hf cache prune -y through the mount",
            &log,
        );
        assert!(prune.contains("1 incomplete download"), "{prune}");
        assert!(incomplete_files(&blobs).is_empty());
        env.run(
            env.client(venv, store.path(), &["check-layout", "--repo", BIG]),
            "check-layout of the store after prune",
            &no_log,
        );
    }
    env.run(
        env.client(venv, &m.mp, &["check-offline", "--repo", BIG]),
        &format!("{venv}: check-offline big-model through the mount"),
        &log,
    );
    eprintln!("{venv}: scenario 6 took {:.2?}", t0.elapsed());
}

#[test]
fn killed_download_is_retried_hub_2_4() {
    killed_download_is_retried("hub2");
}

#[test]
fn killed_download_is_retried_hub_0_36() {
    killed_download_is_retried("hub036");
}
