#!/usr/bin/env python3
"""A fake Hugging Face Hub for tests (standard library only).

Run:
    python3 tests/hub/fake_hub.py            # serve on 127.0.0.1:<ephemeral>, prints "PORT <n>"
    python3 tests/hub/fake_hub.py --manifest # print the fixture manifest as JSON, no server

The fixture (repos, commits, file contents) is built deterministically in code, see
`build_fixture()`. Point clients at it with HF_ENDPOINT=http://127.0.0.1:<n> and
HF_HUB_DISABLE_XET=1.

Endpoints (what huggingface_hub 0.36.x and 2.x use for hf_hub_download / snapshot_download):
    HEAD/GET /{repo}/resolve/{rev}/{path}             models
    HEAD/GET /datasets/{repo}/resolve/{rev}/{path}    datasets
    GET      /api/{models|datasets}/{repo}[/revision/{rev}]
    GET      /api/{models|datasets}/{repo}/tree/{rev}[/{path}]?recursive=..&expand=..&cursor=..
    POST     /api/{models|datasets}/{repo}/paths-info/{rev}
    GET      /_cdn/{sha256}                            LFS payloads when FAKE_HUB_LFS_REDIRECT=1
                                                      (served on a second port: another origin)
Test controls (not part of the Hub protocol):
    GET      /_fake/config[?slow_path=..&slow_delay=..&slow_chunk=..&lfs_redirect=0|1]
    GET      /_fake/log      JSON list of requests seen so far
    POST     /_fake/log/clear

Environment knobs:
    FAKE_HUB_LOG=1              log every request to stderr ("fake-hub: HEAD /... -> 200")
    FAKE_HUB_SLOW_PATH=<p>      GETs of that file stream slowly; <p> is a path in the repo
                                ("model.safetensors") or "<repo_id>/<path>"; comma-separated list
    FAKE_HUB_SLOW_DELAY=0.05    seconds to sleep between chunks of a slow file
    FAKE_HUB_SLOW_CHUNK=16384   chunk size of a slow file
    FAKE_HUB_LFS_REDIRECT=1     resolve of an LFS file answers 302 to /_cdn/<sha256> (like the real
                                Hub's CDN redirect), with X-Linked-Etag/X-Linked-Size on the 302
    FAKE_HUB_TREE_PAGE_SIZE=N   paginate tree listings with a Link: rel="next" header (default 1000)
"""

import hashlib
import json
import os
import signal
import struct
import sys
import threading
import time
from array import array
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

# --------------------------------------------------------------------------------------------
# Fixture
# --------------------------------------------------------------------------------------------

LFS_POINTER_SPEC = "https://git-lfs.github.com/spec/v1"


def prng_bytes(seed, n):
    """Deterministic pseudo-random bytes: sha256 in counter mode."""
    seed_b = seed.encode()
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed_b + i.to_bytes(8, "little")).digest()
        i += 1
    return bytes(out[:n])


def big_bytes(n, block=65536):
    """Cheap deterministic bytes for large files: a 64 KiB pseudo-random block whose first
    8 bytes are replaced by the block index, so every block (and every offset) is distinct."""
    base = prng_bytes("big-block", block)
    out = bytearray()
    k = 0
    while len(out) < n:
        out += struct.pack("<Q", k) + base[8:]
        k += 1
    return bytes(out[:n])


def git_blob_sha1(data):
    h = hashlib.sha1()
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def make_safetensors(rows, cols, seed_offset=0.0):
    """A valid safetensors file: u64 LE header length + JSON header + raw tensor bytes.

    Tensors:
      "weight": F32 [rows, cols], element i = (i % 4096) * 0.25 + seed_offset (exact in f32)
      "bias":   F32 [cols],       element j = -j
    """
    n = rows * cols
    weight = array("f", [((i % 4096) * 0.25 + seed_offset) for i in range(n)])
    bias = array("f", [float(-j) for j in range(cols)])
    if sys.byteorder != "little":
        weight.byteswap()
        bias.byteswap()
    wbytes = weight.tobytes()
    bbytes = bias.tobytes()
    header = {
        "__metadata__": {"format": "pt", "fixture": "hfcachefs"},
        "weight": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [0, len(wbytes)]},
        "bias": {
            "dtype": "F32",
            "shape": [cols],
            "data_offsets": [len(wbytes), len(wbytes) + len(bbytes)],
        },
    }
    hjson = json.dumps(header, separators=(",", ":")).encode()
    # Pad the header with spaces so the tensor data starts 8-byte aligned.
    pad = (-(8 + len(hjson))) % 8
    hjson += b" " * pad
    return struct.pack("<Q", len(hjson)) + hjson + wbytes + bbytes


def text_lines(prefix, n):
    return "".join("%s%05d\n" % (prefix, i) for i in range(n)).encode()


class FileEntry:
    __slots__ = ("path", "data", "lfs", "size", "sha256", "git_oid", "etag", "pointer")

    def __init__(self, path, data, lfs):
        self.path = path
        self.data = data
        self.lfs = lfs
        self.size = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        if lfs:
            self.pointer = (
                "version %s\noid sha256:%s\nsize %d\n" % (LFS_POINTER_SPEC, self.sha256, self.size)
            ).encode()
            # The git object of an LFS file is its pointer file.
            self.git_oid = git_blob_sha1(self.pointer)
            self.etag = self.sha256
        else:
            self.pointer = None
            self.git_oid = git_blob_sha1(data)
            self.etag = self.git_oid


class Repo:
    def __init__(self, repo_id, repo_type):
        self.repo_id = repo_id
        self.repo_type = repo_type  # "model" | "dataset"
        self.refs = {}  # revision name -> commit sha
        self.commits = {}  # commit sha -> {path: FileEntry}
        self.commit_order = []

    @property
    def folder(self):
        return "--".join([self.repo_type + "s"] + self.repo_id.split("/"))

    def add_commit(self, label, files):
        sha = hashlib.sha1(("%s:%s:%s" % (self.repo_type, self.repo_id, label)).encode()).hexdigest()
        self.commits[sha] = {f.path: f for f in files}
        self.commit_order.append(sha)
        return sha

    def resolve(self, rev):
        if rev in self.refs:
            return self.refs[rev]
        if rev in self.commits:
            return rev
        return None


def build_fixture():
    """Build all repos. Returns {(repo_type, repo_id): Repo}."""
    F = FileEntry
    repos = {}

    # ---- acme/tiny-model --------------------------------------------------------------------
    safetensors_main = make_safetensors(512, 1024)  # 2 MiB + 4 KiB + header
    vocab = text_lines("tok", 2000)
    config_a = json.dumps(
        {"model_type": "tiny", "hidden_size": 1024, "num_layers": 1, "revision": "A"}, indent=2
    ).encode() + b"\n"
    config_b = json.dumps(
        {"model_type": "tiny", "hidden_size": 1024, "num_layers": 2, "revision": "B"}, indent=2
    ).encode() + b"\n"
    weights_a = prng_bytes("tiny-model/weights/A", 1048576 + 7)  # odd size on purpose
    weights_b = prng_bytes("tiny-model/weights/B", 1310720 + 13)

    tiny = Repo("acme/tiny-model", "model")
    common = [
        F("model.safetensors", safetensors_main, True),
        F("tokenizer/vocab.txt", vocab, False),
    ]
    sha_a = tiny.add_commit(
        "A",
        [F("config.json", config_a, False), F("nested/dir/weights.bin", weights_a, True)] + common,
    )
    files_b = [
        F("config.json", config_b, False),
        F("nested/dir/weights.bin", weights_b, True),
        F("README.md", b"# tiny-model\n\nA fixture repo for hfcachefs tests.\n", False),
    ] + common
    sha_b = tiny.add_commit("B", files_b)
    sha_c = tiny.add_commit(
        "C", files_b + [F("pr-note.txt", b"This commit only exists on refs/pr/1.\n", False)]
    )
    tiny.refs = {"main": sha_b, "v1": sha_a, "refs/pr/1": sha_c}
    repos[("model", tiny.repo_id)] = tiny

    # ---- acme/other-model: shares model.safetensors (LFS) and vocab.txt (non-LFS) ----------
    other = Repo("acme/other-model", "model")
    sha_o = other.add_commit(
        "main",
        [
            F("model.safetensors", safetensors_main, True),
            F("tokenizer/vocab.txt", vocab, False),
            F("config.json", b'{"model_type": "other", "hidden_size": 1024}\n', False),
            F("extra/other.bin", prng_bytes("other-model/extra", 200000 + 3), True),
        ],
    )
    other.refs = {"main": sha_o}
    repos[("model", other.repo_id)] = other

    # ---- acme/big-model: one LFS file larger than the clients' 10 MiB download chunk, so a
    # download killed part-way leaves a non-empty .incomplete file (smaller files are written in
    # a single chunk at the very end of the transfer). ------------------------------------------
    big = Repo("acme/big-model", "model")
    sha_big = big.add_commit("main", [F("big.bin", big_bytes(12 * 1024 * 1024 + 5), True)])
    big.refs = {"main": sha_big}
    repos[("model", big.repo_id)] = big

    # ---- acme/tiny-data (dataset) -----------------------------------------------------------
    csv = b"id,text,label\n" + b"".join(
        b"%d,sample %d,%d\n" % (i, i, i % 3) for i in range(300)
    )
    data = Repo("acme/tiny-data", "dataset")
    sha_d = data.add_commit(
        "main",
        [
            F("README.md", b"---\nlicense: mit\n---\n# tiny-data\n", False),
            F("data/train.csv", csv, False),
            F("data/nested/part-00000.bin", prng_bytes("tiny-data/part0", 300000 + 1), True),
            F("docs/with space.txt", b"a file name with a space\n", False),
            F("empty.txt", b"", False),
        ],
    )
    data.refs = {"main": sha_d}
    repos[("dataset", data.repo_id)] = data

    return repos


def manifest(repos):
    out = {"repos": {}}
    for (rtype, rid), repo in sorted(repos.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        commits = {}
        blobs = {}
        for sha in repo.commit_order:
            files = {}
            for path in sorted(repo.commits[sha]):
                f = repo.commits[sha][path]
                files[path] = {
                    "size": f.size,
                    "sha256": f.sha256,
                    "etag": f.etag,
                    "lfs": f.lfs,
                    "git_oid": f.git_oid,
                }
                blobs[f.etag] = f.size
            commits[sha] = {"files": files}
        out["repos"][rid] = {
            "type": rtype,
            "folder": repo.folder,
            "revisions": dict(repo.refs),
            "commit_order": list(repo.commit_order),
            "commits": commits,
            "blobs": dict(sorted(blobs.items())),
        }
    return out


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


class Config:
    def __init__(self):
        self.lock = threading.Lock()
        self.log_stderr = os.environ.get("FAKE_HUB_LOG", "") not in ("", "0")
        self.slow_paths = set(p for p in os.environ.get("FAKE_HUB_SLOW_PATH", "").split(",") if p)
        self.slow_delay = float(os.environ.get("FAKE_HUB_SLOW_DELAY", "0.05"))
        self.slow_chunk = int(os.environ.get("FAKE_HUB_SLOW_CHUNK", "16384"))
        self.lfs_redirect = os.environ.get("FAKE_HUB_LFS_REDIRECT", "") not in ("", "0")
        self.tree_page_size = int(os.environ.get("FAKE_HUB_TREE_PAGE_SIZE", "1000"))
        self.requests = []

    def as_dict(self):
        return {
            "slow_paths": sorted(self.slow_paths),
            "slow_delay": self.slow_delay,
            "slow_chunk": self.slow_chunk,
            "lfs_redirect": self.lfs_redirect,
            "tree_page_size": self.tree_page_size,
        }


class HubError(Exception):
    def __init__(self, status, code, message, commit=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.commit = commit  # sent as X-Repo-Commit (the real Hub does so for EntryNotFound)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-hub/1.0"
    # set on the class by serve()
    repos = None
    config = None
    blobs_by_sha256 = None
    cdn_port = None

    # -- plumbing ---------------------------------------------------------------------------

    def log_message(self, fmt, *args):  # silence the default access log
        pass

    def _record(self, status):
        entry = {
            "method": self.command,
            "path": self.path,
            "range": self.headers.get("Range"),
            "status": status,
        }
        with self.config.lock:
            self.config.requests.append(entry)
        if self.config.log_stderr:
            rng = (" [Range: %s]" % entry["range"]) if entry["range"] else ""
            sys.stderr.write("fake-hub: %s %s%s -> %d\n" % (self.command, self.path, rng, status))
            sys.stderr.flush()

    def _send(self, status, body=b"", headers=None, content_type="application/json"):
        self._record(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_json(self, obj, status=200, headers=None):
        self._send(status, json.dumps(obj).encode(), headers)

    def _send_error(self, err):
        body = json.dumps({"error": err.message}).encode()
        headers = {"X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        if err.commit:
            headers["X-Repo-Commit"] = err.commit
        self._send(err.status, body, headers)

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _dispatch(self):
        try:
            url = urlsplit(self.path)
            # Split before unquoting: a revision like "refs%2Fpr%2F1" is a single segment.
            segs = [unquote(s) for s in url.path.split("/")[1:]]
            query = parse_qs(url.query, keep_blank_values=True)
            self._route(segs, query)
        except HubError as e:
            self._send_error(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # pragma: no cover - surfaced to the test as a 500
            import traceback

            traceback.print_exc()
            try:
                self._send_error(HubError(500, None, "internal error: %r" % (e,)))
            except Exception:
                self.close_connection = True

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    # -- routing ----------------------------------------------------------------------------

    def _route(self, segs, query):
        if segs and segs[0] == "_fake":
            return self._control(segs[1:], query)
        if segs and segs[0] == "_cdn" and len(segs) == 2 and self.command in ("GET", "HEAD"):
            f = self.blobs_by_sha256.get(segs[1])
            if f is None:
                raise HubError(404, None, "no such object")
            return self._serve_file(None, None, f, cdn=True)
        if segs and segs[0] == "api":
            return self._api(segs[1:], query)
        # /{repo}/resolve/{rev}/{path...} or /datasets/{repo}/resolve/...
        rtype = "model"
        rest = segs
        if rest and rest[0] in ("datasets", "spaces"):
            rtype = rest[0][:-1]
            rest = rest[1:]
        if "resolve" in rest and self.command in ("GET", "HEAD"):
            i = rest.index("resolve")
            repo_id = "/".join(rest[:i])
            if len(rest) > i + 2:
                rev = rest[i + 1]
                path = "/".join(rest[i + 2 :])
                return self._resolve(rtype, repo_id, rev, path)
        raise HubError(404, None, "Not Found: %s %s" % (self.command, self.path))

    def _repo(self, rtype, repo_id):
        repo = self.repos.get((rtype, repo_id))
        if repo is None:
            raise HubError(404, "RepoNotFound", "Repository Not Found for url: %s." % self.path)
        return repo

    def _commit(self, repo, rev):
        sha = repo.resolve(rev)
        if sha is None:
            raise HubError(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
        return sha

    # -- resolve ----------------------------------------------------------------------------

    def _resolve(self, rtype, repo_id, rev, path):
        repo = self._repo(rtype, repo_id)
        sha = self._commit(repo, rev)
        f = repo.commits[sha].get(path)
        if f is None:
            raise HubError(404, "EntryNotFound", "%s does not exist on \"%s\"" % (path, rev), commit=sha)
        return self._serve_file(repo, sha, f)

    def _is_slow(self, repo, f):
        with self.config.lock:
            paths = set(self.config.slow_paths)
        if not paths:
            return False
        if f.path in paths or f.sha256 in paths:
            return True
        return repo is not None and ("%s/%s" % (repo.repo_id, f.path)) in paths

    def _serve_file(self, repo, sha, f, cdn=False):
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Disposition": 'inline; filename="%s"' % quote(f.path.rsplit("/", 1)[-1]),
        }
        if repo is not None:
            headers["X-Repo-Commit"] = sha
        if cdn:
            headers["ETag"] = '"%s"' % f.sha256
        else:
            headers["ETag"] = '"%s"' % f.etag
            if f.lfs:
                headers["X-Linked-Etag"] = '"%s"' % f.sha256
                headers["X-Linked-Size"] = str(f.size)
                if self.config.lfs_redirect:
                    # The real Hub answers 302 to its CDN (another host) for LFS files. Here the
                    # "CDN" is a second listener on another port, i.e. another origin.
                    headers["Location"] = "http://127.0.0.1:%d/_cdn/%s" % (self.cdn_port, f.sha256)
                    return self._send(302, b"", headers, content_type="text/plain")

        data = f.data
        size = len(data)
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            parsed = parse_range(rng, size)
            if parsed is None:
                headers["Content-Range"] = "bytes */%d" % size
                return self._send(416, b"", headers, content_type="text/plain")
            start, end = parsed
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)

        body_len = max(0, end - start + 1)
        self._record(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(body_len))
        self.end_headers()
        if self.command == "HEAD" or body_len == 0:
            return
        view = memoryview(data)[start : end + 1]
        if self._is_slow(repo, f):
            with self.config.lock:
                chunk, delay = self.config.slow_chunk, self.config.slow_delay
            for off in range(0, body_len, chunk):
                self.wfile.write(view[off : off + chunk])
                self.wfile.flush()
                time.sleep(delay)
        else:
            self.wfile.write(view)

    # -- API --------------------------------------------------------------------------------

    def _api(self, segs, query):
        # segs: [models|datasets, org, name, (revision|tree|paths-info), rev, path...]
        if not segs or segs[0] not in ("models", "datasets", "spaces"):
            raise HubError(404, None, "Not Found")
        rtype = segs[0][:-1]
        rest = segs[1:]
        for kw in ("revision", "tree", "paths-info"):
            if kw in rest:
                i = rest.index(kw)
                repo_id = "/".join(rest[:i])
                args = rest[i + 1 :]
                break
        else:
            kw, repo_id, args = "info", "/".join(rest), []
        repo = self._repo(rtype, repo_id)

        if kw in ("info", "revision") and self.command in ("GET", "HEAD"):
            rev = args[0] if args else "main"
            if len(args) > 1:
                rev = "/".join(args)  # unencoded refs/pr/1
            sha = self._commit(repo, rev)
            return self._send_json(self._info(repo, sha, query))
        if kw == "tree" and self.command in ("GET", "HEAD"):
            if not args:
                raise HubError(404, None, "Not Found")
            sha = self._commit(repo, args[0])
            return self._tree(repo, sha, "/".join(args[1:]).strip("/"), query)
        if kw == "paths-info" and self.command == "POST":
            if not args:
                raise HubError(404, None, "Not Found")
            sha = self._commit(repo, "/".join(args))
            return self._paths_info(repo, sha)
        raise HubError(404, None, "Not Found")

    def _info(self, repo, sha, query):
        files = repo.commits[sha]
        blobs = query.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for path in sorted(files):
            s = {"rfilename": path}
            if blobs:
                f = files[path]
                s["size"] = f.size
                s["blobId"] = f.git_oid
                if f.lfs:
                    s["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": len(f.pointer)}
            siblings.append(s)
        return {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": sha,
            "lastModified": "2024-01-01T00:00:00.000Z",
            "createdAt": "2024-01-01T00:00:00.000Z",
            "private": False,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }

    def _tree_entries(self, repo, sha, base, recursive):
        files = repo.commits[sha]
        dirs = set()
        for path in files:
            parts = path.split("/")
            for k in range(1, len(parts)):
                dirs.add("/".join(parts[:k]))
        if base and base not in dirs:
            if base in files:
                raise HubError(400, None, "%s is a file, not a directory" % base)
            raise HubError(404, "EntryNotFound", "%s does not exist on \"%s\"" % (base, sha))
        prefix = base + "/" if base else ""

        def wanted(p):
            if not p.startswith(prefix):
                return False
            return recursive or "/" not in p[len(prefix) :]

        entries = []
        for d in sorted(dirs):
            if wanted(d):
                oid = hashlib.sha1(("tree:%s:%s" % (sha, d)).encode()).hexdigest()
                entries.append({"type": "directory", "oid": oid, "size": 0, "path": d})
        for p in sorted(files):
            if wanted(p):
                f = files[p]
                e = {"type": "file", "oid": f.git_oid, "size": f.size, "path": p}
                if f.lfs:
                    e["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(f.pointer)}
                entries.append(e)
        # The real Hub lists directories before files at each level; order is not relied upon.
        return entries

    def _tree(self, repo, sha, base, query):
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        entries = self._tree_entries(repo, sha, base, recursive)
        page = max(1, self.config.tree_page_size)
        try:
            cursor = int(query.get("cursor", ["0"])[0] or 0)
        except ValueError:
            raise HubError(400, None, "bad cursor")
        chunk = entries[cursor : cursor + page]
        headers = {}
        if cursor + page < len(entries):
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in query.items() if k != "cursor"}
            q["cursor"] = str(cursor + page)
            qs = "&".join("%s=%s" % (quote(k), quote(v)) for k, v in q.items())
            host = self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_address[1]
            headers["Link"] = '<http://%s%s?%s>; rel="next"' % (host, url.path, qs)
        return self._send_json(chunk, headers=headers)

    def _paths_info(self, repo, sha):
        body = self._read_body()
        ctype = self.headers.get("Content-Type", "")
        paths = []
        if "json" in ctype:
            try:
                paths = json.loads(body or b"{}").get("paths", [])
            except ValueError:
                paths = []
        else:
            paths = parse_qs(body.decode(), keep_blank_values=True).get("paths", [])
        if isinstance(paths, str):
            paths = [paths]
        files = repo.commits[sha]
        out = []
        all_entries = {e["path"]: e for e in self._tree_entries(repo, sha, "", True)}
        for p in paths:
            p = p.strip("/")
            if p in all_entries:
                out.append(all_entries[p])
            elif p in files:  # pragma: no cover
                pass
        return self._send_json(out)

    # -- test controls ----------------------------------------------------------------------

    def _control(self, segs, query):
        cfg = self.config
        if segs == ["config"]:
            with cfg.lock:
                if "slow_path" in query:
                    cfg.slow_paths = set(p for p in ",".join(query["slow_path"]).split(",") if p)
                if "slow_delay" in query:
                    cfg.slow_delay = float(query["slow_delay"][0])
                if "slow_chunk" in query:
                    cfg.slow_chunk = max(1, int(query["slow_chunk"][0]))
                if "lfs_redirect" in query:
                    cfg.lfs_redirect = query["lfs_redirect"][0] not in ("", "0", "false")
                if "tree_page_size" in query:
                    cfg.tree_page_size = max(1, int(query["tree_page_size"][0]))
                state = cfg.as_dict()
            return self._send_json(state)
        if segs == ["log"] and self.command in ("GET", "HEAD"):
            with cfg.lock:
                log = list(cfg.requests)
            return self._send_json(log)
        if segs == ["log", "clear"]:
            with cfg.lock:
                cfg.requests.clear()
            return self._send_json({"ok": True})
        raise HubError(404, None, "Not Found")


def parse_range(header, size):
    """Parse a single 'bytes=a-b' / 'bytes=a-' / 'bytes=-n' range. None if unsatisfiable."""
    h = header.strip()
    if not h.startswith("bytes=") or "," in h:
        return None
    spec = h[len("bytes=") :].strip()
    a, _, b = spec.partition("-")
    try:
        if a == "":
            n = int(b)
            if n <= 0:
                return None
            return max(0, size - n), size - 1
        start = int(a)
        end = int(b) if b else size - 1
    except ValueError:
        return None
    if start >= size or start < 0:
        return None
    end = min(end, size - 1)
    if end < start:
        return None
    return start, end


def serve(host="127.0.0.1", port=0):
    repos = build_fixture()
    Handler.repos = repos
    Handler.config = Config()
    Handler.blobs_by_sha256 = {
        f.sha256: f for repo in repos.values() for files in repo.commits.values() for f in files.values()
    }
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.block_on_close = False  # don't wait for slow streams on exit
    # A second listener standing in for the CDN that LFS downloads are redirected to
    # (FAKE_HUB_LFS_REDIRECT=1); another port is another origin for the clients.
    cdn = ThreadingHTTPServer((host, 0), Handler)
    cdn.daemon_threads = True
    cdn.block_on_close = False
    Handler.cdn_port = cdn.server_address[1]
    threading.Thread(target=cdn.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    def on_term(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    sys.stdout.write("PORT %d\n" % server.server_address[1])
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        server.server_close()
        cdn.server_close()


def main(argv):
    if "--manifest" in argv:
        json.dump(manifest(build_fixture()), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    port = 0
    if "--port" in argv:
        port = int(argv[argv.index("--port") + 1])
    serve(port=port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
