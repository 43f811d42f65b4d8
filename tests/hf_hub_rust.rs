//! Second, independent real client: the Rust `hf-hub` crate (1.x, blocking API) against the
//! fake Hub on 127.0.0.1, downloading through a real read-write mount and reading back offline.
//!
//! hf-hub writes the cache with plain `std::fs` calls: `create_dir_all`, `File::create` +
//! `flock` on `.locks/<folder>/<etag>.lock`, `File::create` + writes on
//! `blobs/<etag>.incomplete`, `rename` onto `blobs/<etag>`, `std::fs::write` of `refs/<rev>`,
//! `remove_file` + `symlink` of the snapshot pointer and an empty `.no_exist/<commit>/<path>`.
//! The same scenario also runs against a plain directory, so a failure that shows up only on the
//! mount points at hfcachefs rather than at the client or the fake Hub.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::{FakeHub, Mount, walk};
use hf_hub::{HFClient, HFClientSync, HFError, HFRepositorySync, HFResult, RepoType, split_id};
use serde_json::Value;
use sha2::{Digest, Sha256};

const MODEL: &str = "acme/tiny-model";
const DATASET: &str = "acme/tiny-data";
/// Not in any commit: the Hub answers 404 EntryNotFound and the client writes `.no_exist/`.
const MISSING: &str = "does-not-exist.txt";

/// Single-file downloads `(repo, revision, path)`: branch and tag names, a nested ref and a
/// commit sha (`@v1` stands for the sha `v1` points at); nested LFS paths and a name with a
/// space. `model.safetensors` at `v1` is the same blob as at `main` (no second GET).
const FETCHES: &[(&str, &str, &str)] = &[
    (MODEL, "main", "config.json"),
    (MODEL, "main", "model.safetensors"),
    (MODEL, "main", "nested/dir/weights.bin"),
    (MODEL, "v1", "config.json"),
    (MODEL, "v1", "model.safetensors"),
    (MODEL, "v1", "nested/dir/weights.bin"),
    (MODEL, "@v1", "tokenizer/vocab.txt"),
    (MODEL, "refs/pr/1", "pr-note.txt"),
    (DATASET, "main", "data/nested/part-00000.bin"),
    (DATASET, "main", "docs/with space.txt"),
];

/// Whole-revision downloads `(repo, revision)` after the single files.
const SNAPSHOTS: &[(&str, &str)] = &[(MODEL, "main"), (DATASET, "main")];

/// The fake Hub's fixture, from `fake_hub.py --manifest`.
struct Manifest(Value);

impl Manifest {
    fn load(python: &Path) -> Manifest {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hub/fake_hub.py");
        let out = Command::new(python)
            .arg(script)
            .arg("--manifest")
            .output()
            .expect("run fake_hub.py --manifest");
        assert!(out.status.success(), "manifest: {out:?}");
        Manifest(serde_json::from_slice(&out.stdout).expect("manifest json"))
    }

    fn repo(&self, repo: &str) -> &Value {
        &self.0["repos"][repo]
    }

    fn folder(&self, repo: &str) -> String {
        self.repo(repo)["folder"].as_str().unwrap().to_string()
    }

    /// Commit sha of a revision name; `@name` and 40-hex shas are accepted too.
    fn commit(&self, repo: &str, rev: &str) -> String {
        let name = rev.strip_prefix('@').unwrap_or(rev);
        match self.repo(repo)["revisions"][name].as_str() {
            Some(sha) => sha.to_string(),
            None => {
                assert!(self.repo(repo)["commits"][name].is_object(), "{repo}@{rev}");
                name.to_string()
            }
        }
    }

    /// The revision string given to the client: `@name` becomes the commit sha.
    fn client_rev(&self, repo: &str, rev: &str) -> String {
        if rev.starts_with('@') {
            self.commit(repo, rev)
        } else {
            rev.to_string()
        }
    }

    /// `(sha256, etag)` of a file at a commit.
    fn file(&self, repo: &str, sha: &str, path: &str) -> (String, String) {
        let f = &self.repo(repo)["commits"][sha]["files"][path];
        assert!(f.is_object(), "{repo}@{sha}:{path} not in the manifest");
        (
            f["sha256"].as_str().unwrap().to_string(),
            f["etag"].as_str().unwrap().to_string(),
        )
    }

    fn files(&self, repo: &str, sha: &str) -> Vec<String> {
        self.repo(repo)["commits"][sha]["files"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }
}

/// Python for the fake Hub (standard library only): the pinned venv's if present.
fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/hub2/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

fn sha256_file(p: &Path) -> String {
    let data = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A blocking client with an explicit endpoint, cache dir and a dummy token (so no ambient
/// token is read or sent).
fn client(endpoint: &str, cache: &Path, retries: usize) -> HFClientSync {
    HFClient::builder()
        .endpoint(endpoint)
        .cache_dir(cache)
        .token("hf_fake_token_for_tests")
        .retry_max_attempts(retries)
        .retry_base_delay(Duration::from_millis(10))
        .build_sync()
        .expect("hf-hub client")
}

fn download_in<T: RepoType>(
    r: HFRepositorySync<T>,
    rev: &str,
    path: &str,
    local_only: bool,
) -> HFResult<PathBuf> {
    r.download_file()
        .filename(path)
        .revision(rev)
        .local_files_only(local_only)
        .send()
}

fn snapshot_in<T: RepoType>(
    r: HFRepositorySync<T>,
    rev: &str,
    local_only: bool,
) -> HFResult<PathBuf> {
    r.snapshot_download()
        .revision(rev)
        .local_files_only(local_only)
        .send()
}

fn download(c: &HFClientSync, repo: &str, rev: &str, path: &str, local: bool) -> HFResult<PathBuf> {
    let (owner, name) = split_id(repo);
    if repo == DATASET {
        download_in(c.dataset(owner, name), rev, path, local)
    } else {
        download_in(c.model(owner, name), rev, path, local)
    }
}

fn snapshot(c: &HFClientSync, repo: &str, rev: &str, local: bool) -> HFResult<PathBuf> {
    let (owner, name) = split_id(repo);
    if repo == DATASET {
        snapshot_in(c.dataset(owner, name), rev, local)
    } else {
        snapshot_in(c.model(owner, name), rev, local)
    }
}

/// `GET <path_and_query>` on the fake Hub's control API over a plain socket; the JSON body.
fn fake_get(endpoint: &str, path_and_query: &str) -> Value {
    let addr = endpoint.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).expect("connect fake hub");
    write!(
        s,
        "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    assert!(head.starts_with("HTTP/1.1 200"), "{path_and_query}: {head}");
    serde_json::from_str(body).expect("json body")
}

/// Every request the fake Hub saw so far.
fn hub_log(endpoint: &str) -> Vec<Value> {
    fake_get(endpoint, "/_fake/log").as_array().unwrap().clone()
}

/// Dataset files are served like the real Hub serves LFS files: the resolve URL answers 302 to
/// another origin (the fake CDN listener); model files are served directly.
fn set_lfs_redirect(endpoint: &str, repo: &str) {
    let on = u8::from(repo == DATASET);
    let cfg = fake_get(endpoint, &format!("/_fake/config?lfs_redirect={on}"));
    assert_eq!(cfg["lfs_redirect"], Value::Bool(on == 1));
}

fn log_lines(log: &[Value]) -> Vec<String> {
    log.iter()
        .filter(|e| !e["path"].as_str().unwrap_or("").starts_with("/_fake/"))
        .map(|e| {
            let rng = e["range"]
                .as_str()
                .map(|r| format!(" [Range: {r}]"))
                .unwrap_or_default();
            format!("{} {}{rng} -> {}", e["method"], e["path"], e["status"]).replace('"', "")
        })
        .collect()
}

/// Whether the scenario names revision `name` of `repo` (so the client writes `refs/<name>`).
fn downloaded_by_name(repo: &str, name: &str) -> bool {
    FETCHES
        .iter()
        .map(|f| (f.0, f.1))
        .chain(SNAPSHOTS.iter().copied())
        .any(|(rp, rv)| rp == repo && rv == name)
}

/// What the cache must hold afterwards: `repo -> {(commit, path)}` snapshot entries.
fn expected_entries(m: &Manifest) -> BTreeMap<&'static str, BTreeSet<(String, String)>> {
    let mut want: BTreeMap<&'static str, BTreeSet<(String, String)>> = BTreeMap::new();
    for &(repo, rev, path) in FETCHES {
        want.entry(repo)
            .or_default()
            .insert((m.commit(repo, rev), path.to_string()));
    }
    for &(repo, rev) in SNAPSHOTS {
        let sha = m.commit(repo, rev);
        for path in m.files(repo, &sha) {
            want.entry(repo).or_default().insert((sha.clone(), path));
        }
    }
    want
}

/// Checks a returned path: `<cache>/<folder>/snapshots/<sha>/<path>` with the manifest's bytes.
fn check_returned(m: &Manifest, cache: &Path, repo: &str, rev: &str, path: &str, got: &Path) {
    let sha = m.commit(repo, rev);
    let want = cache
        .join(m.folder(repo))
        .join("snapshots")
        .join(&sha)
        .join(path);
    assert_eq!(got, want, "{repo}@{rev}:{path}");
    assert!(
        got.starts_with(cache),
        "{} outside {}",
        got.display(),
        cache.display()
    );
    assert_eq!(
        sha256_file(got),
        m.file(repo, &sha, path).0,
        "bytes of {repo}@{rev}:{path} at {}",
        got.display()
    );
}

/// The backing store as a Linux client writing directly would leave it: every snapshot entry a
/// relative symlink `../../blobs/<etag>` (plus `../` per sub-folder), one regular blob per
/// distinct content with the right bytes, refs, `.no_exist` marker, no leftovers.
fn check_store_layout(m: &Manifest, store: &Path) {
    for (repo, entries) in expected_entries(m) {
        let root = store.join(m.folder(repo));
        let mut blobs_want = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for p in walk(&root.join("snapshots")) {
            let md = p.symlink_metadata().unwrap();
            if md.is_dir() {
                continue;
            }
            let rel = p.strip_prefix(root.join("snapshots")).unwrap();
            let mut comps = rel.components();
            let sha = comps
                .next()
                .unwrap()
                .as_os_str()
                .to_str()
                .unwrap()
                .to_string();
            let path = comps.as_path().to_str().unwrap().to_string();
            assert!(
                md.is_symlink(),
                "store snapshot entry {} is not a link",
                p.display()
            );
            let target = std::fs::read_link(&p).unwrap();
            let (sha256, etag) = m.file(repo, &sha, &path);
            let depth = path.matches('/').count();
            let want = format!("{}blobs/{etag}", "../".repeat(2 + depth));
            assert_eq!(target, Path::new(&want), "link {}", p.display());
            blobs_want.insert(etag, sha256);
            seen.insert((sha, path));
        }
        assert_eq!(seen, entries, "snapshot entries of {repo}");
        let blobs: BTreeSet<String> = std::fs::read_dir(root.join("blobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            blobs,
            blobs_want.keys().cloned().collect::<BTreeSet<_>>(),
            "blobs/ of {repo}: one per distinct content, no .incomplete"
        );
        for (etag, sha256) in &blobs_want {
            let b = root.join("blobs").join(etag);
            assert!(b.symlink_metadata().unwrap().is_file(), "{}", b.display());
            assert_eq!(&sha256_file(&b), sha256, "{}", b.display());
        }
        let revisions = m.repo(repo)["revisions"].as_object().unwrap();
        for (name, sha) in revisions {
            let r = root.join("refs").join(name);
            if downloaded_by_name(repo, name) {
                let got =
                    std::fs::read_to_string(&r).unwrap_or_else(|e| panic!("{}: {e}", r.display()));
                assert_eq!(got, sha.as_str().unwrap(), "{}", r.display());
            } else {
                assert!(!r.exists(), "{}", r.display());
            }
        }
    }
    let no_exist = store
        .join(m.folder(MODEL))
        .join(".no_exist")
        .join(m.commit(MODEL, "main"))
        .join(MISSING);
    let md = no_exist.symlink_metadata().expect(".no_exist marker");
    assert!(md.is_file() && md.len() == 0, "{}", no_exist.display());
    for p in walk(store) {
        let name = p.file_name().unwrap().to_string_lossy();
        assert!(!name.ends_with(".incomplete"), "leftover {}", p.display());
    }
}

/// Phase 1: downloads with the hub up; `cache` is what the client is given.
fn download_all(m: &Manifest, hub: &FakeHub, cache: &Path) {
    let c = client(&hub.endpoint, cache, 1);
    for &(repo, rev, path) in FETCHES {
        set_lfs_redirect(&hub.endpoint, repo);
        let crev = m.client_rev(repo, rev);
        let got = download(&c, repo, &crev, path, false)
            .unwrap_or_else(|e| panic!("download {repo}@{rev}:{path}: {e:?}"));
        check_returned(m, cache, repo, rev, path, &got);
    }
    for &(repo, rev) in SNAPSHOTS {
        set_lfs_redirect(&hub.endpoint, repo);
        let dir = snapshot(&c, repo, rev, false)
            .unwrap_or_else(|e| panic!("snapshot {repo}@{rev}: {e:?}"));
        let sha = m.commit(repo, rev);
        assert_eq!(dir, cache.join(m.folder(repo)).join("snapshots").join(&sha));
        for path in m.files(repo, &sha) {
            check_returned(m, cache, repo, rev, &path, &dir.join(&path));
        }
    }
    match download(&c, MODEL, "main", MISSING, false) {
        Err(HFError::EntryNotFound { .. }) => {}
        other => panic!("missing file: {other:?}"),
    }
    let first = log_lines(&hub_log(&hub.endpoint));
    assert!(
        first.iter().any(|l| l.starts_with("GET /_cdn/")),
        "no LFS download went through the redirect: {first:#?}"
    );
    // Everything is cached now: a second round only asks for metadata.
    let before = hub_log(&hub.endpoint).len();
    for &(repo, rev, path) in FETCHES {
        set_lfs_redirect(&hub.endpoint, repo);
        let crev = m.client_rev(repo, rev);
        let got = download(&c, repo, &crev, path, false)
            .unwrap_or_else(|e| panic!("second download {repo}@{rev}:{path}: {e:?}"));
        check_returned(m, cache, repo, rev, path, &got);
    }
    let log = hub_log(&hub.endpoint);
    let again = log_lines(&log[before..]);
    assert!(
        again.iter().all(|l| l.starts_with("HEAD ")),
        "second round fetched content again: {again:#?}"
    );
}

/// Phase 2: offline reads. The hub is gone; `endpoint` refuses connections.
fn read_offline(m: &Manifest, endpoint: &str, cache: &Path, through_view: bool) {
    let c = client(endpoint, cache, 0);
    let want = expected_entries(m);
    for (repo, entries) in &want {
        // Every cached file, by commit sha.
        for (sha, path) in entries {
            let got = download(&c, repo, sha, path, true)
                .unwrap_or_else(|e| panic!("offline {repo}@{sha}:{path}: {e:?}"));
            check_returned(m, cache, repo, sha, path, &got);
        }
    }
    // By revision name, both cache-only and as the fallback of a failed online request.
    for local_only in [true, false] {
        for &(repo, rev, path) in FETCHES {
            let crev = m.client_rev(repo, rev);
            let got = download(&c, repo, &crev, path, local_only)
                .unwrap_or_else(|e| panic!("offline({local_only}) {repo}@{rev}:{path}: {e:?}"));
            check_returned(m, cache, repo, rev, path, &got);
        }
    }
    for &(repo, rev) in SNAPSHOTS.iter().chain(&[(MODEL, "v1")]) {
        let dir = snapshot(&c, repo, rev, true)
            .unwrap_or_else(|e| panic!("offline snapshot {repo}@{rev}: {e:?}"));
        let sha = m.commit(repo, rev);
        assert_eq!(dir, cache.join(m.folder(repo)).join("snapshots").join(&sha));
        let listed: BTreeSet<String> = walk(&dir)
            .into_iter()
            .filter(|p| !p.is_dir())
            .map(|p| p.strip_prefix(&dir).unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            listed,
            m.files(repo, &sha).into_iter().collect(),
            "{repo}@{rev}"
        );
    }
    match download(&c, MODEL, "main", MISSING, true) {
        Err(HFError::EntryNotFound { .. }) => {}
        other => panic!("offline .no_exist file: {other:?}"),
    }
    // Exists upstream at refs/pr/1 but was never downloaded.
    match download(&c, MODEL, "refs/pr/1", "config.json", true) {
        Err(HFError::LocalEntryNotFound { .. }) => {}
        other => panic!("offline uncached file: {other:?}"),
    }
    match snapshot(&c, DATASET, "v1", true) {
        Err(HFError::LocalEntryNotFound { .. }) => {}
        other => panic!("offline unknown ref: {other:?}"),
    }

    let info = c.scan_cache().send().expect("scan_cache");
    assert!(
        info.warnings.is_empty(),
        "scan warnings: {:?}",
        info.warnings
    );
    let repos: BTreeMap<&str, _> = info.repos.iter().map(|r| (r.repo_id.as_str(), r)).collect();
    assert_eq!(
        repos.keys().copied().collect::<Vec<_>>(),
        vec![DATASET, MODEL]
    );
    for (repo, entries) in &want {
        let r = repos[repo];
        let commits: BTreeSet<&str> = entries.iter().map(|(s, _)| s.as_str()).collect();
        let revs: BTreeSet<&str> = r.revisions.iter().map(|v| v.commit_hash.as_str()).collect();
        assert_eq!(revs, commits, "{repo}");
        let blobs: BTreeSet<String> = entries.iter().map(|(s, p)| m.file(repo, s, p).1).collect();
        // On the mount a snapshot entry is a regular file: the scan counts one "blob" per entry.
        let nb = if through_view {
            entries.len()
        } else {
            blobs.len()
        };
        assert_eq!(r.nb_files, nb, "{repo} nb_files");
        for v in &r.revisions {
            let mut refs = v.refs.clone();
            refs.sort();
            let mut want_refs: Vec<String> = m.repo(repo)["revisions"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, s)| s.as_str() == Some(v.commit_hash.as_str()))
                .map(|(n, _)| n.clone())
                .filter(|n| downloaded_by_name(repo, n))
                .collect();
            want_refs.sort();
            assert_eq!(refs, want_refs, "{repo} refs of {}", v.commit_hash);
        }
    }
}

/// An endpoint on 127.0.0.1 that refuses connections.
fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// Control: the same client and scenario on a plain directory, no mount.
#[test]
fn hf_hub_rust_downloads_into_a_plain_directory() {
    let py = python();
    let m = Manifest::load(&py);
    let hub = FakeHub::start(&py);
    let store = tempfile::Builder::new()
        .prefix("hfcfs-hfrs")
        .tempdir()
        .unwrap();
    download_all(&m, &hub, store.path());
    drop(hub);
    check_store_layout(&m, store.path());
    read_offline(&m, &dead_endpoint(), store.path(), false);
}

#[test]
fn hf_hub_rust_downloads_through_the_mount() {
    let py = python();
    let m = Manifest::load(&py);
    let hub = FakeHub::start(&py);
    let store = tempfile::Builder::new()
        .prefix("hfcfs-hfrs")
        .tempdir()
        .unwrap();
    let mnt = Mount::new(store.path(), "");
    download_all(&m, &hub, &mnt.mp);
    drop(hub);
    check_store_layout(&m, store.path());
    for p in walk(&mnt.mp) {
        assert!(
            !p.symlink_metadata().unwrap().is_symlink(),
            "symlink visible through the mount: {}",
            p.display()
        );
    }
    read_offline(&m, &dead_endpoint(), &mnt.mp, true);
    assert!(harness::is_mounted(&mnt.mp), "{}", mnt.log_text());
}
