#!/usr/bin/env python3
"""Drive huggingface_hub against the fake Hub and check what lands in / reads from a cache.

Run it with one of the test venvs' python (huggingface_hub 2.4.0 or 0.36.x):

    HF_HUB_CACHE=/some/dir HF_ENDPOINT=http://127.0.0.1:PORT .venv/hub2/bin/python tests/hub/client.py populate
    HF_HUB_CACHE=/some/dir .venv/hub2/bin/python tests/hub/client.py check-offline
    HF_HUB_CACHE=/mnt/point HF_ENDPOINT=... .venv/hub036/bin/python tests/hub/client.py download
    HF_HUB_CACHE=/mnt/point .venv/hub2/bin/python tests/hub/client.py delete-revisions --exclude-commit SHA

Subcommands:
    populate       download every repo / revision of the fixture (snapshot_download + hf_hub_download)
    download       populate, then read back every file of every revision from the snapshot paths
    check-offline  with HF_HUB_OFFLINE=1: hf_hub_download / snapshot_download (local_files_only),
                   scan_cache_dir, mmap and safetensors checks; no network
    check-layout   the on-disk layout of a plain (symlinked) cache, e.g. the backing store under
                   a mount: every snapshot entry is a relative symlink ../../blobs/<etag> (one
                   more ../ per sub-folder), blobs/ holds exactly one file per distinct content
    snapshot       snapshot_download of every revision name of each repo, checking the returned
                   directories and bytes; nothing else (safe to run in several processes at once)
    get            hf_hub_download of each --file at `main` of each repo, checking path and bytes
    scan           scan_cache_dir: prints one line "SCAN <json>" (totals, warnings, incomplete
                   files, repos with nb_files/size and revisions with refs/nb_files/size), then
                   checks the repos/revisions/refs/nb_files of the (filtered) fixture
    delete-revisions
                   scan_cache_dir().delete_revisions(<the --exclude-commit shas>): prints
                   "STRATEGY <json>" (paths relative to the cache), executes it, then checks that
                   the deleted snapshots and refs are gone and every remaining revision still
                   reads with the right bytes
Options:
    --repo REPO_ID       restrict to this repo (repeatable)
    --exclude-commit SHA the fixture without this commit (repeatable): its snapshot, the revision
                         names pointing at it and blobs only it uses are not expected; a repo
                         left with no commit is dropped. For delete-revisions: the commits to delete
    --file PATH          file of the repo for `get` (repeatable)
    --allow-incomplete   do not fail on leftover blobs/*.incomplete files (after a killed download:
                         2.x never reuses another process's `<etag>.<8hex>.incomplete`)
    -v                   print each step to stderr

Each subcommand prints "OK" as its last line and exits 0 on success; on failure it prints the
failed checks to stderr and exits 1. The expected content comes from fake_hub.py's manifest
(imported from this directory), so no server is needed for check-offline.
"""

import hashlib
import json
import mmap
import os
import struct
import sys
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))

COMMANDS = ("populate", "download", "check-offline", "check-layout", "snapshot", "get", "scan", "delete-revisions")
USAGE = (
    "usage: client.py {%s} [--repo REPO_ID]... [--exclude-commit SHA]... [--file PATH]... "
    "[--allow-incomplete] [-v]" % "|".join(COMMANDS)
)


def parse_args(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        print(__doc__)
        sys.exit(0 if argv else 2)
    cmd = argv[0]
    if cmd not in COMMANDS:
        sys.stderr.write(USAGE + "\n")
        sys.exit(2)
    repos = []
    excluded = []
    files = []
    verbose = False
    allow_incomplete = False
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--repo" and i + 1 < len(argv):
            repos.append(argv[i + 1])
            i += 2
        elif a == "--exclude-commit" and i + 1 < len(argv):
            excluded.append(argv[i + 1])
            i += 2
        elif a == "--file" and i + 1 < len(argv):
            files.append(argv[i + 1])
            i += 2
        elif a == "-v":
            verbose = True
            i += 1
        elif a == "--allow-incomplete":
            allow_incomplete = True
            i += 1
        else:
            sys.stderr.write("unknown argument %r\n%s\n" % (a, USAGE))
            sys.exit(2)
    if cmd == "delete-revisions" and not excluded:
        sys.stderr.write("delete-revisions needs --exclude-commit SHA\n%s\n" % USAGE)
        sys.exit(2)
    if cmd == "get" and not files:
        sys.stderr.write("get needs --file PATH\n%s\n" % USAGE)
        sys.exit(2)
    return cmd, repos, excluded, files, verbose, allow_incomplete


CMD, ONLY_REPOS, EXCLUDED_COMMITS, FILES, VERBOSE, ALLOW_INCOMPLETE = parse_args(sys.argv[1:])

# Environment must be set before huggingface_hub is imported (constants are read at import).
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
os.environ.setdefault("HF_HUB_DISABLE_SHARED_BLOBS", "1")
if CMD in ("check-offline", "check-layout", "scan", "delete-revisions"):
    os.environ["HF_HUB_OFFLINE"] = "1"

CACHE = os.environ.get("HF_HUB_CACHE")
if not CACHE:
    sys.stderr.write("HF_HUB_CACHE must be set\n")
    sys.exit(2)
if CMD in ("populate", "download", "snapshot", "get") and not os.environ.get("HF_ENDPOINT"):
    sys.stderr.write("HF_ENDPOINT must be set (http://127.0.0.1:PORT of fake_hub.py)\n")
    sys.exit(2)

import huggingface_hub  # noqa: E402
from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download  # noqa: E402

sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import fake_hub  # noqa: E402  (stdlib only; provides the expected manifest)

HUB_VERSION = huggingface_hub.__version__
MANIFEST = fake_hub.manifest(fake_hub.build_fixture())["repos"]
if ONLY_REPOS:
    unknown = [r for r in ONLY_REPOS if r not in MANIFEST]
    if unknown:
        sys.stderr.write("unknown repo(s): %s\n" % unknown)
        sys.exit(2)
    MANIFEST = {k: v for k, v in MANIFEST.items() if k in ONLY_REPOS}
if EXCLUDED_COMMITS:
    known = {sha for info in MANIFEST.values() for sha in info["commits"]}
    unknown = [c for c in EXCLUDED_COMMITS if c not in known]
    if unknown:
        sys.stderr.write("unknown commit(s): %s\n" % unknown)
        sys.exit(2)


def _without_commits(info, excluded):
    """A repo's manifest entry without some commits (None if nothing is left)."""
    commits = {sha: c for sha, c in info["commits"].items() if sha not in excluded}
    if not commits:
        return None
    out = dict(info)
    out["commits"] = commits
    out["revisions"] = {name: sha for name, sha in info["revisions"].items() if sha not in excluded}
    out["commit_order"] = [sha for sha in info["commit_order"] if sha not in excluded]
    out["blobs"] = {m["etag"]: m["size"] for c in commits.values() for m in c["files"].values()}
    return out


# The full (repo-filtered) fixture, and what the cache should hold without the excluded commits.
FULL_MANIFEST = MANIFEST
MANIFEST = {}
for _repo_id, _info in FULL_MANIFEST.items():
    _kept = _without_commits(_info, set(EXCLUDED_COMMITS))
    if _kept is not None:
        MANIFEST[_repo_id] = _kept

# The client resolves the cache root itself (Path(cache_dir).resolve()), so accept either
# spelling of the root, but never resolve the returned paths.
ROOTS = sorted({os.path.abspath(CACHE), os.path.realpath(CACHE)}, key=len, reverse=True)

FAILURES = []


def log(msg):
    if VERBOSE:
        sys.stderr.write("[client %s] %s\n" % (HUB_VERSION, msg))
        sys.stderr.flush()


def fail(msg):
    FAILURES.append(msg)
    sys.stderr.write("FAIL: %s\n" % msg)
    sys.stderr.flush()


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def step(desc, fn, *args, **kwargs):
    """Run fn, recording any exception as a failure. Returns fn's result or None."""
    log(desc)
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        fail("%s: %s: %s\n%s" % (desc, type(e).__name__, e, traceback.format_exc()))
        return None


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def repo_args(repo_id):
    return {"repo_id": repo_id, "repo_type": MANIFEST[repo_id]["type"]}


def under_cache(path):
    path = str(path)
    return any(path.startswith(root + os.sep) for root in ROOTS)


def expected_snapshot_path(repo_id, sha, filename=None):
    """Expected path, with the root spelled like the returned one (the client may resolve it)."""
    info = MANIFEST[repo_id]
    parts = [info["folder"], "snapshots", sha]
    if filename:
        parts += filename.split("/")
    return [os.path.join(root, *parts) for root in ROOTS]


def verify_file(path, repo_id, sha, filename, what):
    """Check that `path` is the snapshot path of filename@sha and holds the right bytes."""
    meta = MANIFEST[repo_id]["commits"][sha]["files"][filename]
    path = str(path)
    if not check(under_cache(path), "%s: returned path %r is not inside HF_HUB_CACHE %r" % (what, path, CACHE)):
        return
    check(
        path in expected_snapshot_path(repo_id, sha, filename),
        "%s: returned path %r, expected %r" % (what, path, expected_snapshot_path(repo_id, sha, filename)[0]),
    )
    if not check(os.path.isfile(path), "%s: %r is not a file" % (what, path)):
        return
    size = os.path.getsize(path)
    check(size == meta["size"], "%s: %r has size %d, expected %d" % (what, path, size, meta["size"]))
    digest = sha256_file(path)
    check(digest == meta["sha256"], "%s: %r has sha256 %s, expected %s" % (what, path, digest, meta["sha256"]))


def verify_snapshot_dir(path, repo_id, sha, what, allow_patterns=None):
    path = str(path)
    if not check(under_cache(path), "%s: returned dir %r is not inside HF_HUB_CACHE" % (what, path)):
        return
    check(
        path in expected_snapshot_path(repo_id, sha),
        "%s: returned dir %r, expected %r" % (what, path, expected_snapshot_path(repo_id, sha)[0]),
    )
    files = MANIFEST[repo_id]["commits"][sha]["files"]
    wanted = sorted(files)
    if allow_patterns is not None:
        import fnmatch

        wanted = [f for f in wanted if any(fnmatch.fnmatch(f, p) for p in allow_patterns)]
    for filename in wanted:
        verify_file(os.path.join(path, *filename.split("/")), repo_id, sha, filename, "%s: %s" % (what, filename))


def list_tree(path):
    """Relative paths of all non-directory entries below `path` (follows file symlinks)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames:
            full = os.path.join(dirpath, name)
            out.add(os.path.relpath(full, path).replace(os.sep, "/"))
    return out


def expect_entry_not_found(fn, what):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        names = {c.__name__ for c in type(e).__mro__}
        check(
            names & {"EntryNotFoundError", "RemoteEntryNotFoundError", "LocalEntryNotFoundError"},
            "%s: expected an EntryNotFound error, got %s: %s" % (what, type(e).__name__, e),
        )
        return
    fail("%s: expected an EntryNotFound error, call succeeded" % what)


# --------------------------------------------------------------------------------------------
# populate / download
# --------------------------------------------------------------------------------------------


def do_populate():
    """Download every revision of every repo; checks the returned paths and bytes."""
    t0 = time.monotonic()
    for repo_id, info in MANIFEST.items():
        ra = repo_args(repo_id)
        revs = info["revisions"]

        if repo_id == "acme/tiny-model" and "v1" in revs:
            # A few single-file downloads first (refs written by hf_hub_download), in the order a
            # user might do them: old tag, then the default branch.
            sha_v1 = revs["v1"]
            for filename in ("config.json", "model.safetensors"):
                p = step(
                    "hf_hub_download %s %s@v1" % (repo_id, filename),
                    hf_hub_download,
                    filename=filename,
                    revision="v1",
                    **ra,
                )
                if p is not None:
                    verify_file(p, repo_id, sha_v1, filename, "hf_hub_download %s@v1" % filename)
            p = step("hf_hub_download %s config.json@main" % repo_id, hf_hub_download, filename="config.json", **ra)
            if p is not None:
                verify_file(p, repo_id, revs["main"], "config.json", "hf_hub_download config.json@main")
            # A missing file: creates .no_exist/<commit>/<path>
            expect_entry_not_found(
                lambda: hf_hub_download(filename="does-not-exist.txt", **ra),
                "hf_hub_download does-not-exist.txt",
            )
            # Partial snapshot (allow_patterns), then the full one.
            pats = ["*.json", "nested/*"]
            d = step(
                "snapshot_download %s@v1 allow_patterns=%s" % (repo_id, pats),
                snapshot_download,
                revision="v1",
                allow_patterns=pats,
                **ra,
            )
            if d is not None:
                verify_snapshot_dir(d, repo_id, sha_v1, "snapshot_download v1 allow_patterns", allow_patterns=pats)

        for rev in sorted(revs, key=lambda r: (r != "main", r)):
            sha = revs[rev]
            d = step("snapshot_download %s@%s" % (repo_id, rev), snapshot_download, revision=rev, **ra)
            if d is not None:
                verify_snapshot_dir(d, repo_id, sha, "snapshot_download %s@%s" % (repo_id, rev))
        # By commit hash (no ref written, no repo_info call).
        for sha in info["commit_order"]:
            d = step("snapshot_download %s@%s" % (repo_id, sha[:8]), snapshot_download, revision=sha, **ra)
            if d is not None:
                verify_snapshot_dir(d, repo_id, sha, "snapshot_download %s@%s" % (repo_id, sha[:8]))

        if info["type"] == "dataset":
            # A single nested file by hf_hub_download, after the snapshot (already cached).
            lfs = sorted(f for f, m in info["commits"][revs["main"]]["files"].items() if m["lfs"])
            for filename in lfs:
                p = step("hf_hub_download %s %s" % (repo_id, filename), hf_hub_download, filename=filename, **ra)
                if p is not None:
                    verify_file(p, repo_id, revs["main"], filename, "hf_hub_download %s" % filename)
    log("populate took %.2fs" % (time.monotonic() - t0))


def check_cache_layout():
    """Facts about the cache directory that hold for any backing store."""
    for repo_id, info in MANIFEST.items():
        base = os.path.join(CACHE, info["folder"])
        for rev, sha in info["revisions"].items():
            ref = os.path.join(base, "refs", *rev.split("/"))
            if check(os.path.isfile(ref), "refs file %r missing" % ref):
                with open(ref) as f:
                    content = f.read()
                check(content == sha, "refs file %r holds %r, expected %r" % (ref, content, sha))
        for sha, c in info["commits"].items():
            snap = os.path.join(base, "snapshots", sha)
            if not check(os.path.isdir(snap), "snapshot dir %r missing" % snap):
                continue
            found = list_tree(snap)
            check(
                found == set(c["files"]),
                "%s: snapshot %s lists %s, expected %s" % (repo_id, sha[:8], sorted(found), sorted(c["files"])),
            )
        # Probe files/dirs (symlink probe tmpXXXXXXXX/, 0.36's chmod probe tmp_<uuid>) must be gone.
        extra = sorted(set(os.listdir(base)) - {"blobs", "refs", "snapshots", "trees", ".no_exist"})
        check(not extra, "%s: unexpected entries in %s: %s" % (repo_id, base, extra))
        blobs_dir = os.path.join(base, "blobs")
        if os.path.isdir(blobs_dir):
            leftovers = [
                n
                for n in os.listdir(blobs_dir)
                if (n.endswith(".incomplete") and not ALLOW_INCOMPLETE) or n.startswith("tmp")
            ]
            check(not leftovers, "%s: leftover temporary files in blobs/: %s" % (repo_id, leftovers))


def do_download():
    do_populate()
    # Read back every file of every commit straight from the snapshot paths (no hub API).
    for repo_id, info in MANIFEST.items():
        for sha, c in info["commits"].items():
            for filename in sorted(c["files"]):
                p = os.path.join(CACHE, info["folder"], "snapshots", sha, *filename.split("/"))
                step("read back %s@%s %s" % (repo_id, sha[:8], filename), verify_file, p, repo_id, sha, filename,
                     "read back %s@%s" % (repo_id, sha[:8]))
    check_cache_layout()
    # A second round must be served entirely from the cache (and still return the same paths).
    t0 = time.monotonic()
    for repo_id, info in MANIFEST.items():
        for rev, sha in info["revisions"].items():
            d = step("snapshot_download (again) %s@%s" % (repo_id, rev), snapshot_download, revision=rev,
                     **repo_args(repo_id))
            if d is not None:
                verify_snapshot_dir(d, repo_id, sha, "snapshot_download (again) %s@%s" % (repo_id, rev))
    log("second round took %.2fs" % (time.monotonic() - t0))


# --------------------------------------------------------------------------------------------
# check-offline
# --------------------------------------------------------------------------------------------


def check_safetensors_bytes(path, what):
    """Parse the safetensors header by hand over an mmap and check some tensor values."""
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            (hlen,) = struct.unpack("<Q", mm[:8])
            header = json.loads(bytes(mm[8 : 8 + hlen]).decode())
            base = 8 + hlen
            w = header["weight"]
            check(w["dtype"] == "F32" and w["shape"] == [512, 1024], "%s: bad weight header %r" % (what, w))
            start = base + w["data_offsets"][0]
            # A slice from the middle of the tensor and its last element.
            for first in (0, 300000, 512 * 1024 - 16):
                vals = struct.unpack("<16f", mm[start + 4 * first : start + 4 * first + 64])
                exp = tuple(((i % 4096) * 0.25) for i in range(first, first + 16))
                check(vals == exp, "%s: weight[%d:%d] = %r, expected %r" % (what, first, first + 16, vals, exp))
            b = header["bias"]
            bstart = base + b["data_offsets"][0]
            n = b["shape"][0]
            vals = struct.unpack("<%df" % n, mm[bstart : bstart + 4 * n])
            check(vals == tuple(float(-j) for j in range(n)), "%s: bias values differ" % what)
            check(base + b["data_offsets"][1] == len(mm), "%s: file size does not match header" % what)
        finally:
            mm.close()


def check_safetensors_lib(path, what):
    try:
        import numpy as np  # noqa: F401
        from safetensors import safe_open
    except ImportError:
        log("safetensors/numpy not importable: header parsed by hand only")
        return False
    with safe_open(path, framework="numpy") as st:
        keys = sorted(st.keys())
        check(keys == ["bias", "weight"], "%s: safetensors keys %r" % (what, keys))
        w = st.get_tensor("weight")
        check(tuple(w.shape) == (512, 1024), "%s: weight shape %r" % (what, w.shape))
        flat = w.reshape(-1)
        idx = np.arange(flat.shape[0])
        check(bool((flat == (idx % 4096) * 0.25).all()), "%s: weight values differ (safetensors)" % what)
        sl = st.get_slice("weight")[100:102, 5:9]
        exp = np.array([[((r * 1024 + c) % 4096) * 0.25 for c in range(5, 9)] for r in range(100, 102)])
        check(bool((sl == exp).all()), "%s: weight slice differs (safetensors)" % what)
    return True


def check_scan():
    """scan_cache_dir(HF_HUB_CACHE): no warnings, and the fixture's repos/revisions/refs/nb_files.

    Returns the HFCacheInfo (or None if the scan raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache_info = step("scan_cache_dir", scan_cache_dir, CACHE)
    for w in caught:
        fail("scan_cache_dir emitted warning: %s" % (w.message,))
    if cache_info is not None:
        for w in cache_info.warnings:
            if "CACHEDIR.TAG" in str(w):
                # 0.36 predates CACHEDIR.TAG (written by 1.x/2.x) and reports it as a bad repo
                # folder: a property of mixing client versions, not of the cache.
                log("ignored scan_cache_dir warning: %s" % (w,))
                continue
            fail("scan_cache_dir warning: %s" % (w,))
        incomplete = getattr(cache_info, "incomplete_files", None)
        if incomplete and not ALLOW_INCOMPLETE:
            fail("scan_cache_dir reports incomplete files: %s" % sorted(str(getattr(x, "file_path", x)) for x in incomplete))
        by_id = {(r.repo_type, r.repo_id): r for r in cache_info.repos}
        for repo_id, info in MANIFEST.items():
            r = by_id.get((info["type"], repo_id))
            if not check(r is not None, "scan_cache_dir: %s %s not listed (found %s)" % (info["type"], repo_id, sorted(by_id))):
                continue
            revs = {rv.commit_hash: rv for rv in r.revisions}
            check(set(revs) == set(info["commits"]),
                  "scan_cache_dir %s: revisions %s, expected %s" % (repo_id, sorted(revs), sorted(info["commits"])))
            for sha, c in info["commits"].items():
                rv = revs.get(sha)
                if rv is None:
                    continue
                exp_refs = {name for name, s in info["revisions"].items() if s == sha}
                check(set(rv.refs) == exp_refs,
                      "scan_cache_dir %s@%s: refs %s, expected %s" % (repo_id, sha[:8], sorted(rv.refs), sorted(exp_refs)))
                check(rv.nb_files == len(c["files"]),
                      "scan_cache_dir %s@%s: nb_files %d, expected %d" % (repo_id, sha[:8], rv.nb_files, len(c["files"])))
                exp_size = sum({m["etag"]: m["size"] for m in c["files"].values()}.values())
                # Symlinked cache: distinct blobs; regular files: one per snapshot entry.
                alt_size = sum(m["size"] for m in c["files"].values())
                check(rv.size_on_disk in (exp_size, alt_size),
                      "scan_cache_dir %s@%s: size_on_disk %d, expected %d" % (repo_id, sha[:8], rv.size_on_disk, exp_size))
            # Repo-level nb_files counts distinct blob paths: equal to the number of distinct blobs
            # when snapshot entries are symlinks, to the number of snapshot entries otherwise.
            nblobs = len(info["blobs"])
            nentries = sum(len(c["files"]) for c in info["commits"].values())
            check(r.nb_files in (nblobs, nentries),
                  "scan_cache_dir %s: nb_files %d, expected %d (blobs) or %d (entries)" % (repo_id, r.nb_files, nblobs, nentries))
            log("scan_cache_dir %s: nb_files=%d (blobs %d, entries %d) size_on_disk=%d" % (
                repo_id, r.nb_files, nblobs, nentries, r.size_on_disk))
    return cache_info


def do_check_offline():
    from huggingface_hub import constants

    check(constants.HF_HUB_OFFLINE, "HF_HUB_OFFLINE is not in effect")

    for repo_id, info in MANIFEST.items():
        ra = repo_args(repo_id)
        targets = list(info["revisions"].items()) + [(sha, sha) for sha in info["commit_order"]]
        for rev, sha in targets:
            files = info["commits"][sha]["files"]
            for filename in sorted(files):
                what = "hf_hub_download(local_files_only) %s@%s %s" % (repo_id, rev, filename)
                p = step(what, hf_hub_download, filename=filename, revision=rev, local_files_only=True, **ra)
                if p is not None:
                    verify_file(p, repo_id, sha, filename, what)
            what = "snapshot_download(local_files_only) %s@%s" % (repo_id, rev)
            d = step(what, snapshot_download, revision=rev, local_files_only=True, **ra)
            if d is not None:
                verify_snapshot_dir(d, repo_id, sha, what)
                found = list_tree(d)
                check(found == set(files), "%s: dir lists %s, expected %s" % (what, sorted(found), sorted(files)))
        if repo_id == "acme/tiny-model":
            # Known-missing file: .no_exist marker written by populate.
            expect_entry_not_found(
                lambda: hf_hub_download(filename="does-not-exist.txt", local_files_only=True, **ra),
                "offline hf_hub_download does-not-exist.txt",
            )
            try:
                from huggingface_hub import try_to_load_from_cache
            except ImportError:  # pragma: no cover
                try_to_load_from_cache = None
            if try_to_load_from_cache is not None:
                r = step("try_to_load_from_cache", try_to_load_from_cache, repo_id, "config.json", cache_dir=CACHE)
                if r is not None:
                    verify_file(r, repo_id, info["revisions"]["main"], "config.json", "try_to_load_from_cache")
                r = step("try_to_load_from_cache missing", try_to_load_from_cache, repo_id, "does-not-exist.txt",
                         cache_dir=CACHE)
                # _CACHED_NO_EXIST sentinel (an object, not a str) when .no_exist has the marker
                check(r is not None and not isinstance(r, str),
                      "try_to_load_from_cache(does-not-exist.txt) = %r, expected the no-exist sentinel" % (r,))

    # safetensors: mmap + optional library load, for every commit holding model.safetensors
    used_lib = False
    for repo_id, info in MANIFEST.items():
        for sha, c in info["commits"].items():
            if "model.safetensors" not in c["files"]:
                continue
            p = os.path.join(CACHE, info["folder"], "snapshots", sha, "model.safetensors")
            what = "%s@%s model.safetensors" % (repo_id, sha[:8])
            step("mmap " + what, check_safetensors_bytes, p, what)
            used_lib = bool(step("safetensors " + what, check_safetensors_lib, p, what)) or used_lib
    log("safetensors library used: %s" % used_lib)

    check_scan()
    check_cache_layout()


def do_check_layout():
    """Symlinked layout as written by huggingface_hub on a plain filesystem."""
    for repo_id, info in MANIFEST.items():
        base = os.path.join(CACHE, info["folder"])
        blobs_dir = os.path.join(base, "blobs")
        for sha, c in info["commits"].items():
            for filename, meta in sorted(c["files"].items()):
                p = os.path.join(base, "snapshots", sha, *filename.split("/"))
                if not check(os.path.islink(p), "%s is not a symlink" % p):
                    continue
                target = os.readlink(p)
                exp = "../" * (1 + filename.count("/")) + "../blobs/" + meta["etag"]
                check(target == exp, "%s -> %r, expected %r" % (p, target, exp))
                blob = os.path.join(blobs_dir, meta["etag"])
                if check(os.path.isfile(blob) and not os.path.islink(blob), "%s is not a regular file" % blob):
                    digest = sha256_file(blob)
                    check(digest == meta["sha256"], "%s has sha256 %s, expected %s" % (blob, digest, meta["sha256"]))
        if os.path.isdir(blobs_dir):
            names = set(os.listdir(blobs_dir))
            if ALLOW_INCOMPLETE:
                names = {n for n in names if not n.endswith(".incomplete")}
            check(names == set(info["blobs"]),
                  "%s: blobs/ holds %s, expected %s" % (repo_id, sorted(names), sorted(info["blobs"])))
        else:
            fail("%s missing" % blobs_dir)
    check_cache_layout()


# --------------------------------------------------------------------------------------------
# snapshot / get (downloads only: safe to run from several processes at once)
# --------------------------------------------------------------------------------------------


def do_snapshot():
    """snapshot_download of every revision name of each repo (main first)."""
    for repo_id, info in MANIFEST.items():
        revs = info["revisions"]
        for rev in sorted(revs, key=lambda r: (r != "main", r)):
            d = step("snapshot_download %s@%s" % (repo_id, rev), snapshot_download, revision=rev,
                     **repo_args(repo_id))
            if d is not None:
                verify_snapshot_dir(d, repo_id, revs[rev], "snapshot_download %s@%s" % (repo_id, rev))


def do_get():
    """hf_hub_download of each --file at `main`."""
    for repo_id, info in MANIFEST.items():
        sha = info["revisions"]["main"]
        for filename in FILES:
            if not check(filename in info["commits"][sha]["files"], "%s has no file %r" % (repo_id, filename)):
                continue
            t0 = time.monotonic()
            p = step("hf_hub_download %s %s" % (repo_id, filename), hf_hub_download, filename=filename,
                     **repo_args(repo_id))
            if p is not None:
                verify_file(p, repo_id, sha, filename, "hf_hub_download %s" % filename)
            log("hf_hub_download %s %s took %.2fs" % (repo_id, filename, time.monotonic() - t0))


# --------------------------------------------------------------------------------------------
# scan / delete-revisions
# --------------------------------------------------------------------------------------------


def _rel(path):
    """A path returned by the cache manager, relative to the cache root (either spelling)."""
    path = str(path)
    for root in ROOTS:
        if path == root:
            return "."
        if path.startswith(root + os.sep):
            return path[len(root) + 1 :]
    return path


def scan_report(cache_info):
    """A JSON-able summary of an HFCacheInfo."""
    incomplete = getattr(cache_info, "incomplete_files", None) or []
    return {
        "version": HUB_VERSION,
        "size_on_disk": cache_info.size_on_disk,
        "warnings": [str(w) for w in cache_info.warnings],
        "incomplete": sorted([_rel(getattr(x, "file_path", x)), getattr(x, "size_on_disk", None)] for x in incomplete),
        "repos": [
            {
                "repo_id": r.repo_id,
                "repo_type": r.repo_type,
                "nb_files": r.nb_files,
                "size_on_disk": r.size_on_disk,
                "revisions": [
                    {
                        "commit_hash": rv.commit_hash,
                        "refs": sorted(rv.refs),
                        "nb_files": rv.nb_files,
                        "size_on_disk": rv.size_on_disk,
                    }
                    for rv in sorted(r.revisions, key=lambda rv: rv.commit_hash)
                ],
            }
            for r in sorted(cache_info.repos, key=lambda r: (r.repo_type, r.repo_id))
        ],
    }


def do_scan():
    cache_info = check_scan()
    if cache_info is not None:
        print("SCAN " + json.dumps(scan_report(cache_info), sort_keys=True))
        sys.stdout.flush()


def do_delete_revisions():
    cache_info = step("scan_cache_dir", scan_cache_dir, CACHE)
    if cache_info is None:
        return
    strategy = step("delete_revisions", cache_info.delete_revisions, *EXCLUDED_COMMITS)
    if strategy is None:
        return
    report = {
        "expected_freed_size": strategy.expected_freed_size,
        "blobs": sorted(_rel(p) for p in strategy.blobs),
        "refs": sorted(_rel(p) for p in strategy.refs),
        "repos": sorted(_rel(p) for p in strategy.repos),
        "snapshots": sorted(_rel(p) for p in strategy.snapshots),
    }
    print("STRATEGY " + json.dumps(report, sort_keys=True))
    sys.stdout.flush()
    t0 = time.monotonic()
    nfail = len(FAILURES)
    step("execute", strategy.execute)
    if len(FAILURES) > nfail:
        return
    log("execute took %.2fs" % (time.monotonic() - t0))
    # The deleted revisions are gone ...
    for repo_id, info in FULL_MANIFEST.items():
        base = os.path.join(CACHE, info["folder"])
        for sha in EXCLUDED_COMMITS:
            if sha not in info["commits"]:
                continue
            snap = os.path.join(base, "snapshots", sha)
            check(not os.path.exists(snap), "%s: snapshot %s still exists after delete" % (repo_id, sha[:8]))
            for name, s in info["revisions"].items():
                if s == sha:
                    ref = os.path.join(base, "refs", *name.split("/"))
                    check(not os.path.exists(ref), "%s: ref %s still exists after delete" % (repo_id, name))
        if repo_id not in MANIFEST:
            check(not os.path.exists(base), "%s: repo folder still exists after deleting every revision" % repo_id)
    # ... and every remaining revision still reads with the right bytes.
    for repo_id, info in MANIFEST.items():
        if not any(sha in FULL_MANIFEST[repo_id]["commits"] for sha in EXCLUDED_COMMITS):
            continue
        for sha, c in info["commits"].items():
            for filename in sorted(c["files"]):
                p = os.path.join(CACHE, info["folder"], "snapshots", sha, *filename.split("/"))
                verify_file(p, repo_id, sha, filename, "after delete: %s@%s" % (repo_id, sha[:8]))


def main():
    log("huggingface_hub %s, HF_HUB_CACHE=%s, HF_ENDPOINT=%s" % (HUB_VERSION, CACHE, os.environ.get("HF_ENDPOINT")))
    t0 = time.monotonic()
    if CMD == "populate":
        do_populate()
    elif CMD == "download":
        do_download()
    elif CMD == "check-offline":
        do_check_offline()
    elif CMD == "check-layout":
        do_check_layout()
    elif CMD == "snapshot":
        do_snapshot()
    elif CMD == "get":
        do_get()
    elif CMD == "scan":
        do_scan()
    elif CMD == "delete-revisions":
        do_delete_revisions()
    dt = time.monotonic() - t0
    if FAILURES:
        sys.stderr.write("%d check(s) failed in %s (huggingface_hub %s, %.2fs)\n" % (len(FAILURES), CMD, HUB_VERSION, dt))
        return 1
    log("%s passed in %.2fs" % (CMD, dt))
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
