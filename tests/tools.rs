//! The cache tools (`scan`, `verify`, `dedupe`, `gc`) run as the real binary on fixture
//! stores; reports and the store afterwards are checked exactly. The last test round-trips a
//! store written by the real huggingface_hub client (copy-mode revision, moved blobs) and
//! checks that the client and `hf cache verify` still agree afterwards.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use hfcachefs::tools::hash::digest_bytes;
use serde_json::{Value, json};

use harness::content;

const M: &str = "models--acme--m";
const D: &str = "datasets--acme--d";
const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";
const C3: &str = "3333333333333333333333333333333333333333";
const C4: &str = "4444444444444444444444444444444444444444";
const C5: &str = "5555555555555555555555555555555555555555";

// Sizes, all different so that only intended contents can match.
const CFG1: usize = 300;
const CFG2: usize = 310;
const W: usize = 200_000;
const TOK: usize = 5000;
const SHARED: usize = 7000;
const ORPH: usize = 1234;
const FRESH: usize = 99;
const EXTRA: usize = 4096;
const PY: usize = 3333;
const DATA: usize = 2500;
const README: usize = 150;
const W4: usize = 300_000;
const NOTES: usize = 21;
const TABLE: usize = 5001;
const INC1: usize = 777;
const INC2: usize = 55;
const INC3: usize = 66;
const REFTMP: usize = 10;

fn git(data: &[u8]) -> String {
    digest_bytes(data).git_sha1.unwrap()
}
fn sha(data: &[u8]) -> String {
    digest_bytes(data).sha256.unwrap()
}

/// The fixture's names, computed from contents.
struct Names {
    cfg1: String,
    cfg2: String,
    w: String,
    tok: String,
    sh: String,
    x: String,
    y: String,
    sy: String,
    orph: String,
    fresh: String,
    corr: String,
    data: String,
    readme: String,
    w4: String,
    notes: String,
    table: String,
    inc1: String,
    inc2: String,
    inc3: String,
    missing: String,
}

fn c(seed: u32, len: usize) -> Vec<u8> {
    content(seed, len)
}

fn names() -> Names {
    Names {
        cfg1: git(&c(1, CFG1)),
        cfg2: git(&c(2, CFG2)),
        w: sha(&c(3, W)),
        tok: git(&c(4, TOK)),
        sh: sha(&c(5, SHARED)),
        x: sha(b"xet hash of shared"),
        y: sha(b"xet hash of y"),
        sy: sha(&c(6, PY)),
        orph: git(&c(7, ORPH)),
        fresh: git(&c(8, FRESH)),
        corr: sha(&c(9, EXTRA)),
        data: git(&c(10, DATA)),
        readme: git(&c(11, README)),
        w4: sha(&c(12, W4)),
        notes: git(&c(13, NOTES)),
        table: sha(&c(14, TABLE)),
        inc1: format!("{}.0123abcd.incomplete", sha(&c(3, W))),
        inc2: format!("{}.incomplete", git(&c(4, TOK))),
        inc3: format!("{}.89abcdef.incomplete", sha(b"downloading")),
        missing: "f".repeat(40),
    }
}

fn two_days_ago() -> SystemTime {
    SystemTime::now() - Duration::from_secs(2 * 86_400)
}

/// Sets the mtime of a file or of a link itself.
fn backdate(p: &Path) {
    let t = two_days_ago()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    let ts = rustix::fs::Timespec {
        tv_sec: t.as_secs() as i64,
        tv_nsec: 0,
    };
    let times = rustix::fs::Timestamps {
        last_access: ts,
        last_modification: ts,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn write(p: &Path, data: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn link(text: &str, p: &Path) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    symlink(text, p).unwrap();
}

/// The fixture store (see the module doc of each tool for what each entry exercises).
fn fixture() -> (tempfile::TempDir, Names) {
    let dir = tempfile::Builder::new()
        .prefix("hfcfs-tools")
        .tempdir()
        .unwrap();
    let r = dir.path();
    let n = names();
    let m = r.join(M);
    let b = m.join("blobs");
    // Refs.
    write(&m.join("refs/main"), C2.as_bytes());
    write(&m.join("refs/v1"), C1.as_bytes());
    write(&m.join("refs/refs/pr/1"), C3.as_bytes());
    write(&m.join("refs/moved"), C4.as_bytes());
    write(&m.join("refs/main.abcd1234.tmp"), &c(99, REFTMP));
    // Blobs.
    write(&b.join(&n.cfg1), &c(1, CFG1));
    write(&b.join(&n.cfg2), &c(2, CFG2));
    write(&b.join(&n.w), &c(3, W));
    write(&b.join(&n.tok), &c(4, TOK));
    link(
        &format!("../../blobs/{}/{}", &n.x[..2], n.x),
        &b.join(&n.sh),
    );
    link(
        &format!("../../blobs/{}/{}", &n.y[..2], n.y),
        &b.join(&n.sy),
    );
    backdate(&b.join(&n.sy));
    write(&b.join(&n.orph), &c(7, ORPH));
    backdate(&b.join(&n.orph));
    write(&b.join(&n.fresh), &c(8, FRESH));
    // Corrupted: named after extra content, holding other bytes of the same size.
    write(&b.join(&n.corr), &c(90, EXTRA));
    write(&b.join(&n.inc1), &c(20, INC1));
    backdate(&b.join(&n.inc1));
    write(&b.join(&n.inc2), &c(21, INC2));
    write(&b.join(&n.inc3), &c(22, INC3));
    backdate(&b.join(&n.inc3));
    write(&b.join("tmp_probe"), b"");
    backdate(&b.join("tmp_probe"));
    write(
        &r.join(".locks")
            .join(M)
            .join(format!("{}.lock", n.inc3.split('.').next().unwrap())),
        b"",
    );
    // Two revisions sharing blobs.
    for (commit, cfg) in [(C1, &n.cfg1), (C2, &n.cfg2)] {
        let s = m.join("snapshots").join(commit);
        link(&format!("../../blobs/{cfg}"), &s.join("config.json"));
        link(
            &format!("../../blobs/{}", n.w),
            &s.join("model.safetensors"),
        );
        link(
            &format!("../../../blobs/{}", n.tok),
            &s.join("nested/tok.txt"),
        );
        link(&format!("../../blobs/{}", n.sh), &s.join("shared.bin"));
    }
    let s2 = m.join("snapshots").join(C2);
    link(&format!("../../blobs/{}", n.corr), &s2.join("extra.bin"));
    // Hostile links.
    link("/etc/passwd", &s2.join("escape_abs"));
    link("../../../../../../../../etc/passwd", &s2.join("escape_up"));
    link(&format!("../../blobs/{}", n.missing), &s2.join("dangling"));
    link("loop_self", &s2.join("loop_self"));
    link("loop_b", &s2.join("loop_a"));
    link("loop_a", &s2.join("loop_b"));
    // A temporary link left by an interrupted dedupe.
    link(
        &format!("../../blobs/{}", n.cfg2),
        &s2.join(".hfcachefs-dedupe-9-9"),
    );
    backdate(&s2.join(".hfcachefs-dedupe-9-9"));
    // Copy-mode revision: regular files equal to blobs, one without a blob (its twin in C4),
    // and one with the content the corrupted blob is named after.
    let s3 = m.join("snapshots").join(C3);
    write(&s3.join("config.json"), &c(2, CFG2));
    write(&s3.join("model.safetensors"), &c(3, W));
    write(&s3.join("nested/tok.txt"), &c(4, TOK));
    write(&s3.join("readme.md"), &c(11, README));
    write(&s3.join("extra.bin"), &c(9, EXTRA));
    // Revision moved by a copy-mode client: no blob exists for its files.
    let s4 = m.join("snapshots").join(C4);
    for (name, seed, len) in [
        ("readme.md", 11, README),
        ("model.safetensors", 12, W4),
        ("notes.txt", 13, NOTES),
        ("table.bin", 14, TABLE),
    ] {
        write(&s4.join(name), &c(seed, len));
        backdate(&s4.join(name));
    }
    // trees/<C4>.json names table.bin by its sha256 (an LFS file), although it is small.
    let tree = json!({"format_version": 1, "files": {
        "table.bin": {"size": TABLE, "blob_id": git(&c(14, TABLE)),
                      "lfs_sha256": n.table, "lfs_size": TABLE}}});
    write(
        &m.join(format!("trees/{C4}.json")),
        tree.to_string().as_bytes(),
    );
    // Second repo sharing the payload.
    let d = r.join(D);
    write(&d.join("refs/main"), C5.as_bytes());
    write(&d.join("blobs").join(&n.data), &c(10, DATA));
    link(
        &format!("../../blobs/{}/{}", &n.x[..2], n.x),
        &d.join("blobs").join(&n.sh),
    );
    link(
        &format!("../../blobs/{}", n.data),
        &d.join(format!("snapshots/{C5}/data.csv")),
    );
    link(
        &format!("../../blobs/{}", n.sh),
        &d.join(format!("snapshots/{C5}/shared.bin")),
    );
    // Shared store: a payload referenced from two repos, an orphan payload.
    let sb = r.join("blobs");
    write(&sb.join(".huggingface-shared-blobs"), b"1\n");
    write(&sb.join(&n.x[..2]).join(&n.x), &c(5, SHARED));
    write(
        &sb.join(&n.x[..2]).join(format!("{}.refs", n.x)),
        format!("{M}/blobs/{}\n{D}/blobs/{}\n", n.sh, n.sh).as_bytes(),
    );
    write(&sb.join(&n.y[..2]).join(&n.y), &c(6, PY));
    backdate(&sb.join(&n.y[..2]).join(&n.y));
    write(
        &sb.join(&n.y[..2]).join(format!("{}.refs", n.y)),
        format!("{M}/blobs/{}\n", n.sy).as_bytes(),
    );
    (dir, n)
}

/// Runs the binary; returns (exit code, stdout, stderr).
fn tool(args: &[&str], store: &Path) -> (i32, String, String) {
    let out = Command::new(harness::bin())
        .args(args)
        .arg(store)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tool_json(args: &[&str], store: &Path) -> (i32, Value) {
    let mut a = args.to_vec();
    a.push("--json");
    let (code, out, err) = tool(&a, store);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (code, v)
}

/// Every entry below `root`: `D`, `L <text>`, or `F <size> <sha256>`.
fn listing(root: &Path) -> BTreeMap<String, String> {
    harness::walk(root)
        .into_iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let key = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let v = if m.is_symlink() {
                format!("L {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                "D".into()
            } else {
                let data = std::fs::read(&p).unwrap();
                format!("F {} {}", data.len(), sha(&data))
            };
            (key, v)
        })
        .collect()
}

fn f(data: &[u8]) -> String {
    format!("F {} {}", data.len(), sha(data))
}

fn ratio(l: usize, p: usize) -> f64 {
    (l as f64 / p as f64 * 1000.0).round() / 1000.0
}

fn by_path(mut v: Vec<Value>) -> Value {
    v.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    Value::Array(v)
}

#[allow(clippy::too_many_arguments)]
fn totals(
    revisions: usize,
    files: usize,
    logical: usize,
    physical: usize,
    copies: usize,
    reclaim: usize,
    orphans: usize,
    orphan_bytes: usize,
    incomplete: usize,
    stale: usize,
    stale_bytes: usize,
    broken: usize,
) -> Value {
    json!({
        "revisions": revisions, "files": files, "logical_bytes": logical,
        "physical_bytes": physical, "dedup_ratio": ratio(logical, physical), "copies": copies,
        "dedupe_reclaimable_bytes": reclaim, "orphans": orphans, "orphan_bytes": orphan_bytes,
        "incomplete": incomplete, "stale": stale, "stale_bytes": stale_bytes,
        "broken_links": broken,
    })
}

#[test]
fn scan_reports_every_figure_exactly() {
    let (dir, n) = fixture();
    let root = dir.path();
    let (code, v) = tool_json(&["scan"], root);
    assert_eq!(code, 1, "broken links are problems");
    let snap = |commit: &str, rest: &str| format!("{M}/snapshots/{commit}/{rest}");
    let blob = |name: &str| format!("{M}/blobs/{name}");
    let (l1, l2) = (CFG1 + W + TOK + SHARED, CFG2 + W + TOK + SHARED + EXTRA);
    let (l3, l4) = (CFG2 + W + TOK + README + EXTRA, README + W4 + NOTES + TABLE);
    let m_logical = l1 + l2 + l3 + l4;
    let m_physical = CFG1
        + CFG2
        + W
        + TOK
        + SHARED
        + ORPH
        + FRESH
        + EXTRA
        + PY
        + INC1
        + INC2
        + INC3
        + REFTMP
        + l3
        + l4;
    let d_logical = DATA + SHARED;
    let reclaim = CFG2 + EXTRA + W + TOK + README;
    let copy = |commit: &str, rest: &str, size: usize, blob: Option<String>, r: usize| json!({"path": snap(commit, rest), "size": size, "blob": blob, "reclaimable_bytes": r});
    let broken = |name: &str, target: String, problem: &str| json!({"path": snap(C2, name), "target": target, "problem": problem});
    let expected = json!({
        "store": root.display().to_string(),
        "repos": [
            {
                "repo_id": "acme/d", "repo_type": "dataset", "folder": D,
                "refs": {"main": C5},
                "revisions": [{"commit": C5, "refs": ["main"], "files": 2, "logical_bytes": d_logical}],
                "totals": totals(1, 2, d_logical, DATA + SHARED, 0, 0, 0, 0, 0, 0, 0, 0),
                "copies": [], "orphan_blobs": [], "incomplete": [], "temp_files": [],
                "broken_links": [],
            },
            {
                "repo_id": "acme/m", "repo_type": "model", "folder": M,
                "refs": {"main": C2, "moved": C4, "refs/pr/1": C3, "v1": C1},
                "revisions": [
                    {"commit": C1, "refs": ["v1"], "files": 4, "logical_bytes": l1},
                    {"commit": C2, "refs": ["main"], "files": 5, "logical_bytes": l2},
                    {"commit": C3, "refs": ["refs/pr/1"], "files": 5, "logical_bytes": l3},
                    {"commit": C4, "refs": ["moved"], "files": 4, "logical_bytes": l4},
                ],
                "totals": totals(4, 18, m_logical, m_physical, 9, reclaim, 3, FRESH + ORPH, 3, 4,
                                 INC1 + INC3, 6),
                "copies": [
                    copy(C3, "config.json", CFG2, Some(blob(&n.cfg2)), CFG2),
                    // Scan trusts blob names: the corrupted blob looks like a match.
                    copy(C3, "extra.bin", EXTRA, Some(blob(&n.corr)), EXTRA),
                    copy(C3, "model.safetensors", W, Some(blob(&n.w)), W),
                    copy(C3, "nested/tok.txt", TOK, Some(blob(&n.tok)), TOK),
                    copy(C3, "readme.md", README, None, 0),
                    copy(C4, "model.safetensors", W4, None, 0),
                    copy(C4, "notes.txt", NOTES, None, 0),
                    copy(C4, "readme.md", README, None, README),
                    copy(C4, "table.bin", TABLE, None, 0),
                ],
                "orphan_blobs": by_path(vec![
                    json!({"path": blob(&n.fresh), "size": FRESH}),
                    json!({"path": blob(&n.orph), "size": ORPH}),
                    json!({"path": blob(&n.sy), "size": 0}),
                ]),
                "incomplete": by_path(vec![
                    json!({"path": blob(&n.inc1), "size": INC1, "stale": true}),
                    json!({"path": blob(&n.inc2), "size": INC2, "stale": false}),
                    json!({"path": blob(&n.inc3), "size": INC3, "stale": true}),
                ]),
                "temp_files": [
                    {"path": blob("tmp_probe"), "size": 0, "stale": true},
                    {"path": format!("{M}/refs/main.abcd1234.tmp"), "size": REFTMP, "stale": false},
                    {"path": snap(C2, ".hfcachefs-dedupe-9-9"), "size": 0, "stale": true},
                ],
                "broken_links": [
                    broken("dangling", format!("../../blobs/{}", n.missing), "dangling"),
                    broken("escape_abs", "/etc/passwd".into(), "escapes"),
                    broken("escape_up", "../../../../../../../../etc/passwd".into(), "escapes"),
                    broken("loop_a", "loop_b".into(), "loop"),
                    broken("loop_b", "loop_a".into(), "loop"),
                    broken("loop_self", "loop_self".into(), "loop"),
                ],
            },
        ],
        "shared": {
            "marked": true, "payloads": 2, "bytes": SHARED + PY,
            "orphans": [{"path": format!("blobs/{}/{}", &n.y[..2], n.y), "size": PY}],
            "temp_files": [],
        },
        "total": totals(5, 20, m_logical + d_logical, m_physical + DATA, 9, reclaim, 4,
                        FRESH + ORPH + PY, 3, 4, INC1 + INC3, 6),
        "other_broken_links": [],
        "errors": [],
        "interrupted": false,
    });
    assert_eq!(v, expected, "{v:#}");

    // The table: one row per repo and a total, then one line per finding.
    let (code, table, _) = tool(&["scan"], root);
    assert_eq!(code, 1);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("REPO ") && lines[0].ends_with("BROKEN  REFS"),
        "{table}"
    );
    let cols = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(cols(lines[1])[..4], ["acme/d", "dataset", "1", "2"]);
    assert_eq!(cols(lines[2])[..4], ["acme/m", "model", "4", "18"]);
    assert!(
        lines[2].ends_with("9       3          3      6  main, moved, refs/pr/1, v1"),
        "{}",
        lines[2]
    );
    assert!(lines[3].starts_with("TOTAL "), "{table}");
    assert_eq!(
        lines[4],
        "shared blob store: 2 payload(s), 10.09 KiB, 1 orphan(s)"
    );
    for want in [
        format!(
            "copy        {} (310 B) = {}",
            snap(C3, "config.json"),
            blob(&n.cfg2)
        ),
        format!(
            "copy        {} (150 B) no blob yet (dedupe moves it into blobs/)",
            snap(C4, "readme.md")
        ),
        format!("orphan      {} (1.21 KiB)", blob(&n.orph)),
        format!("incomplete  {} (55 B, recent)", blob(&n.inc2)),
        format!("temp        {} (0 B, stale)", blob("tmp_probe")),
        format!(
            "broken      {} -> /etc/passwd (escapes)",
            snap(C2, "escape_abs")
        ),
        format!("orphan      blobs/{}/{} (3.25 KiB)", &n.y[..2], n.y),
    ] {
        assert!(
            lines.contains(&want.as_str()),
            "missing {want:?} in\n{table}"
        );
    }
    assert_eq!(lines.len(), 5 + 1 + 1 + 9 + 3 + 3 + 3 + 6 + 1, "{table}");
}

#[test]
fn verify_reports_the_corrupted_blob_only() {
    let (dir, n) = fixture();
    let root = dir.path();
    let (code, v) = tool_json(&["verify"], root);
    assert_eq!(code, 1, "a mismatch is a problem");
    let blob = format!("{M}/blobs/{}", n.corr);
    let expected = json!({
        "store": root.display().to_string(),
        "repos": [D, M],
        // acme/d: data + sh; acme/m: cfg1 cfg2 w tok sh sy orph fresh corr.
        "names": 11,
        // sh of both repos is one payload, read once.
        "files": 10,
        "bytes": DATA + SHARED + CFG1 + CFG2 + W + TOK + PY + ORPH + FRESH + EXTRA,
        "mismatches": [{
            "path": blob, "file": blob, "algorithm": "sha256", "expected": n.corr,
            "actual": sha(&c(90, EXTRA)), "size": EXTRA,
        }],
        "errors": [],
        "vanished": [],
        "unchecked": [],
        "interrupted": false,
    });
    assert_eq!(v, expected, "{v:#}");
    let (code, text, _) = tool(&["verify"], root);
    assert_eq!(code, 1);
    assert_eq!(
        text,
        format!(
            "verified 11 blob name(s) in 10 file(s), 218.62 KiB, 2 repo(s): 1 mismatch(es), 0 error(s)\n\
             MISMATCH {blob}: sha256 is {}\n",
            sha(&c(90, EXTRA))
        )
    );
    // Only the dataset: clean; its shared blob is checked through the link.
    let (code, v) = tool_json(&["verify", "--repo", "datasets/acme/d", "-j", "1"], root);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        (v["names"].clone(), v["files"].clone()),
        (json!(2), json!(2))
    );
    let (code, _, err) = tool(&["verify", "--repo", "acme/nope"], root);
    assert_eq!(code, 2);
    assert!(err.contains("no repo matches acme/nope"), "{err}");
    // A payload whose content no longer matches the repo blob names reaching it.
    let payload = root.join("blobs").join(&n.x[..2]).join(&n.x);
    std::fs::write(&payload, c(55, SHARED)).unwrap();
    let (code, v) = tool_json(&["verify", "--repo", "acme/d"], root);
    assert_eq!(code, 1);
    assert_eq!(
        v["mismatches"][0]["file"],
        json!(format!("blobs/{}/{}", &n.x[..2], n.x))
    );
    assert_eq!(
        v["mismatches"][0]["path"],
        json!(format!("{D}/blobs/{}", n.sh))
    );
}

/// The fixture's listing with the changes dedupe must make.
fn after_dedupe(before: &BTreeMap<String, String>, n: &Names) -> BTreeMap<String, String> {
    let mut exp = before.clone();
    let s3 = format!("{M}/snapshots/{C3}");
    let s4 = format!("{M}/snapshots/{C4}");
    for (entry, text) in [
        (
            format!("{s3}/config.json"),
            format!("../../blobs/{}", n.cfg2),
        ),
        (
            format!("{s3}/model.safetensors"),
            format!("../../blobs/{}", n.w),
        ),
        (
            format!("{s3}/nested/tok.txt"),
            format!("../../../blobs/{}", n.tok),
        ),
        (
            format!("{s3}/readme.md"),
            format!("../../blobs/{}", n.readme),
        ),
        (
            format!("{s4}/readme.md"),
            format!("../../blobs/{}", n.readme),
        ),
        (
            format!("{s4}/model.safetensors"),
            format!("../../blobs/{}", n.w4),
        ),
        (
            format!("{s4}/notes.txt"),
            format!("../../blobs/{}", n.notes),
        ),
        (
            format!("{s4}/table.bin"),
            format!("../../blobs/{}", n.table),
        ),
    ] {
        assert!(exp.insert(entry, format!("L {text}")).is_some());
    }
    for (name, data) in [
        (&n.readme, c(11, README)),
        (&n.w4, c(12, W4)),
        (&n.notes, c(13, NOTES)),
        (&n.table, c(14, TABLE)),
    ] {
        assert!(exp.insert(format!("{M}/blobs/{name}"), f(&data)).is_none());
    }
    exp
}

#[test]
fn dedupe_then_gc_leave_exactly_the_expected_store() {
    let (dir, n) = fixture();
    let root = dir.path();
    let before = listing(root);
    let snap = |commit: &str, rest: &str| format!("{M}/snapshots/{commit}/{rest}");
    let blob = |name: &str| format!("{M}/blobs/{name}");

    // Dry run: the full plan, nothing changed.
    let (code, dry) = tool_json(&["dedupe", "--dry-run"], root);
    assert_eq!(code, 1, "the corrupted blob is a conflict: {dry:#}");
    assert_eq!(listing(root), before, "dry run changed the store");

    let (code, v) = tool_json(&["dedupe"], root);
    assert_eq!(code, 1);
    let action = |commit: &str, rest: &str, a: &str, b: &str, size: usize, freed: usize| {
        json!({"path": snap(commit, rest), "action": a, "blob": blob(b), "size": size,
               "reclaimed_bytes": freed})
    };
    let expected = json!({
        "store": root.display().to_string(),
        "dry_run": false,
        "actions": [
            action(C3, "config.json", "link", &n.cfg2, CFG2, CFG2),
            action(C3, "model.safetensors", "link", &n.w, W, W),
            action(C3, "nested/tok.txt", "link", &n.tok, TOK, TOK),
            // Sibling rule: model.safetensors is a 64-hex blob in other revisions.
            action(C4, "model.safetensors", "move", &n.w4, W4, 0),
            // Size rule: small, no sibling, no tree entry: git blob sha1.
            action(C4, "notes.txt", "move", &n.notes, NOTES, 0),
            action(C4, "readme.md", "move", &n.readme, README, 0),
            // Tree rule: trees/<C4>.json gives the sha256 etag.
            action(C4, "table.bin", "move", &n.table, TABLE, 0),
            // Too recent to become a blob, linked once its twin in C4 did.
            action(C3, "readme.md", "link", &n.readme, README, README),
        ],
        "skipped": [],
        "problems": [{
            "path": snap(C3, "extra.bin"),
            "reason": format!(
                "{} is corrupt (this copy's sha256 is the blob's name, the blob's bytes differ) \
                 and this copy is good: copy kept; confirm with hfcachefs verify, then replace \
                 the blob with the copy",
                blob(&n.corr)
            ),
        }],
        "reclaimed_bytes": CFG2 + W + TOK + README,
        "interrupted": false,
    });
    assert_eq!(v, expected, "{v:#}");
    let mut dry_expected = expected.clone();
    dry_expected["dry_run"] = json!(true);
    assert_eq!(dry, dry_expected, "the dry run announced what the run did");
    let after = listing(root);
    assert_eq!(after, after_dedupe(&before, &n));
    // Every entry still shows its bytes.
    for (rel, seed, len) in [
        (snap(C3, "readme.md"), 11, README),
        (snap(C3, "model.safetensors"), 3, W),
        (snap(C4, "table.bin"), 14, TABLE),
        (snap(C4, "model.safetensors"), 12, W4),
    ] {
        assert_eq!(std::fs::read(root.join(rel)).unwrap(), c(seed, len));
    }
    // Idempotent.
    let (code, v) = tool_json(&["dedupe"], root);
    assert_eq!(code, 1);
    assert_eq!(v["actions"], json!([]));
    assert_eq!(v["problems"].as_array().unwrap().len(), 1);
    assert_eq!(listing(root), after);

    // gc, with the lock of one stale download held by a live client.
    let lock_path = root
        .join(".locks")
        .join(M)
        .join(format!("{}.lock", n.inc3.split('.').next().unwrap()));
    let lock = std::fs::File::open(&lock_path).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let (code, dry) = tool_json(&["gc", "--dry-run"], root);
    assert_eq!(code, 0, "{dry:#}");
    assert_eq!(listing(root), after, "dry run changed the store");
    let (code, v) = tool_json(&["gc"], root);
    assert_eq!(code, 0, "{v:#}");
    let y = format!("blobs/{}/{}", &n.y[..2], n.y);
    let manifest = format!("{M}/blobs/{}\n", n.sy);
    let item =
        |path: String, kind: &str, size: usize| json!({"path": path, "kind": kind, "size": size});
    let kept = |path: String, reason: &str| json!({"path": path, "reason": reason});
    let recent = "modified within --min-age";
    let expected = json!({
        "store": root.display().to_string(),
        "dry_run": false,
        "min_age_secs": 86_400,
        "deleted": by_path(vec![
            item(blob(&n.orph), "orphan-blob", ORPH),
            item(blob(&n.sy), "orphan-blob", 0),
            item(blob(&n.inc1), "incomplete", INC1),
            item(blob("tmp_probe"), "temp", 0),
            item(snap(C2, ".hfcachefs-dedupe-9-9"), "temp", 0),
            item(y.clone(), "orphan-payload", PY),
            item(format!("{y}.refs"), "manifest", manifest.len()),
        ]),
        "kept": by_path(vec![
            kept(blob(&n.fresh), recent),
            kept(blob(&n.inc2), recent),
            kept(blob(&n.inc3), "its download lock is held"),
            kept(format!("{M}/refs/main.abcd1234.tmp"), recent),
        ]),
        "freed_bytes": ORPH + INC1 + PY + manifest.len(),
        "problems": [],
        "interrupted": false,
    });
    let mut got = v.clone();
    for k in ["deleted", "kept"] {
        got[k] = by_path(got[k].as_array().unwrap().clone());
    }
    assert_eq!(got, expected, "{v:#}");
    let mut dry_got = dry.clone();
    for k in ["deleted", "kept"] {
        dry_got[k] = by_path(dry_got[k].as_array().unwrap().clone());
    }
    let mut dry_expected = expected.clone();
    dry_expected["dry_run"] = json!(true);
    assert_eq!(
        dry_got, dry_expected,
        "the dry run announced what the run did"
    );
    drop(lock);

    let mut exp = after.clone();
    for gone in [
        blob(&n.orph),
        blob(&n.sy),
        blob(&n.inc1),
        blob("tmp_probe"),
        snap(C2, ".hfcachefs-dedupe-9-9"),
        y.clone(),
        format!("{y}.refs"),
    ] {
        assert!(exp.remove(&gone).is_some(), "{gone}");
    }
    // Locks taken the way the hub takes them stay behind, as the hub leaves its own.
    for lock in [
        format!(".locks/{M}/{}.lock", n.orph),
        format!(".locks/{M}/{}.lock", n.sy),
        format!("{y}.lock"),
    ] {
        exp.insert(lock, f(b""));
    }
    assert_eq!(listing(root), exp);

    // Afterwards: nothing left to reclaim but what is protected.
    let (_, v) = tool_json(&["scan"], root);
    let m = &v["repos"][1];
    assert_eq!(m["totals"]["copies"], json!(1));
    assert_eq!(
        m["orphan_blobs"],
        json!([{"path": blob(&n.fresh), "size": FRESH}])
    );
    assert_eq!(v["shared"]["orphans"], json!([]));
    assert_eq!(v["total"]["broken_links"], json!(6));
    // The corrupted blob is still reported; everything else verifies.
    let (code, v) = tool_json(&["verify"], root);
    assert_eq!(code, 1);
    assert_eq!(v["mismatches"].as_array().unwrap().len(), 1);
    assert_eq!(v["errors"], json!([]));
}

#[test]
fn cli_errors_and_default_store() {
    let (dir, _) = fixture();
    let root = dir.path();
    let (code, _, err) = tool(&["scan"], Path::new("/nonexistent/hfcfs-store"));
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
    let (code, _, err) = tool(&["gc", "--min-age", "5x"], root);
    assert_eq!(code, 2);
    assert!(err.contains("bad duration '5x'"), "{err}");
    // The store defaults as for `mount`: $HF_HUB_CACHE, then $HF_HOME/hub.
    let run = |envs: &[(&str, &Path)]| {
        let mut cmd = Command::new(harness::bin());
        cmd.args(["verify", "--json", "--repo", D])
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_HOME");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), v["store"].clone())
    };
    assert_eq!(
        run(&[("HF_HUB_CACHE", root)]),
        (Some(0), json!(root.display().to_string()))
    );
    let home = tempfile::tempdir().unwrap();
    std::fs::rename(root, home.path().join("hub")).unwrap();
    let hub = home.path().join("hub");
    assert_eq!(
        run(&[("HF_HOME", home.path())]),
        (Some(0), json!(hub.display().to_string()))
    );
    std::fs::rename(&hub, root).unwrap();
}

/// A store whose revisions are all copy-mode copies of one blob.
fn many_copies(revs: usize, per_rev: usize) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = c(77, 512);
    let name = git(&data);
    let m = dir.path().join(M);
    write(&m.join("blobs").join(&name), &data);
    for r in 0..revs {
        for i in 0..per_rev {
            write(&m.join(format!("snapshots/{r:040}/f{i:05}")), &data);
        }
    }
    (dir, name)
}

/// Starts `dedupe --json` on `root` (a [`many_copies`] store), sends `sig` as soon as the
/// first entry has been replaced, and returns its output.
fn dedupe_interrupted(root: &Path, sig: i32) -> std::process::Output {
    let first = root.join(format!("{M}/snapshots/{:040}/f00000", 0));
    let child = Command::new(harness::bin())
        .args(["dedupe", "--json"])
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::symlink_metadata(&first).unwrap().is_symlink() {
        assert!(std::time::Instant::now() < deadline, "dedupe never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: kill(2) on our own child's PID.
    unsafe { libc::kill(child.id() as i32, sig) };
    child.wait_with_output().unwrap()
}

#[test]
fn ctrl_c_leaves_a_consistent_store_and_a_rerun_finishes() {
    let (dir, name) = many_copies(8, 1000);
    let root = dir.path();
    let out = dedupe_interrupted(root, libc::SIGINT);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let done = v["actions"].as_array().unwrap().len();
    if out.status.code() == Some(0) {
        // The machine was so busy that the run ended before the signal: still consistent.
        assert_eq!(done, 8000);
    } else {
        assert_eq!(out.status.code(), Some(130), "{done} done");
        assert_eq!(v["interrupted"], json!(true));
        assert!(done > 0 && done < 8000, "{done}");
    }
    // Every name is either the old copy or a link to the blob; no temporary is left.
    let (mut links, mut files) = (0, 0);
    for (path, what) in listing(root) {
        assert!(!path.contains(".hfcachefs-"), "{path}");
        if path.contains("/snapshots/") && !what.starts_with('D') {
            if what.starts_with('L') {
                assert_eq!(what, format!("L ../../blobs/{name}"));
                links += 1;
            } else {
                assert_eq!(what, f(&c(77, 512)));
                files += 1;
            }
        }
    }
    assert_eq!((links, files), (done, 8000 - done));
    let (code, v) = tool_json(&["dedupe"], root);
    assert_eq!(code, 0);
    assert_eq!(v["actions"].as_array().unwrap().len(), 8000 - done);
    let (_, v) = tool_json(&["scan"], root);
    assert_eq!(v["total"]["copies"], json!(0));
    assert_eq!(v["total"]["physical_bytes"], json!(512));
}

/// logrotate's SIGHUP (or a closed terminal) stops a tool as Ctrl-C does: between entries,
/// with the partial report and exit 130, never killed without a report.
#[test]
fn sighup_stops_a_tool_with_its_report() {
    let (dir, _) = many_copies(2, 1000);
    let out = dedupe_interrupted(dir.path(), libc::SIGHUP);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no report after SIGHUP ({:?}): {e}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let done = v["actions"].as_array().unwrap().len();
    if out.status.code() != Some(0) {
        assert_eq!(out.status.code(), Some(130), "{done} done");
        assert_eq!(v["interrupted"], json!(true));
        assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    } else {
        // The run ended before the signal arrived.
        assert_eq!(done, 2000);
    }
}

fn hf_env(cmd: &mut Command, hub: &harness::FakeHub, home: &Path) {
    cmd.env("HF_ENDPOINT", &hub.endpoint)
        .env("HF_HOME", home)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
        .env("HF_HUB_DISABLE_XET", "1")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_HUB_OFFLINE")
        .stdin(Stdio::null());
}

/// `hf cache verify` of every revision name of every fixture repo; (all passed, output).
fn hf_cache_verify(py: &Path, hub: &harness::FakeHub, cache: &Path, home: &Path) -> (bool, String) {
    let manifest = Command::new(py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hub/fake_hub.py"))
        .arg("--manifest")
        .output()
        .unwrap();
    let manifest: Value = serde_json::from_slice(&manifest.stdout).unwrap();
    let hf = py.parent().unwrap().join("hf");
    let (mut ok, mut text) = (true, String::new());
    for (repo_id, info) in manifest["repos"].as_object().unwrap() {
        for rev in info["revisions"].as_object().unwrap().keys() {
            let mut cmd = Command::new(&hf);
            cmd.args(["cache", "verify", repo_id, "--revision", rev, "--repo-type"])
                .arg(info["type"].as_str().unwrap())
                .arg("--cache-dir")
                .arg(cache)
                .args(["--fail-on-missing-files", "--fail-on-extra-files"]);
            hf_env(&mut cmd, hub, home);
            let out = cmd.output().unwrap();
            ok &= out.status.success();
            text += &format!(
                "{repo_id}@{rev}: {}{}\n",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    (ok, text)
}

#[test]
fn real_client_reads_every_revision_after_dedupe_and_gc() {
    let py = harness::venv_python("hub2");
    let hub = harness::FakeHub::start(&py);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let home = dir.path().join("home");
    let (ok, out) = harness::hub_client(&py, &hub, &cache, "populate", &[]);
    assert!(ok, "{out}");
    let written = listing(&cache);

    // A Windows client without symlink rights rewrote revision v1 of tiny-model: copies of
    // shared blobs, and the blobs only v1 uses moved out of blobs/ into the snapshot.
    let repo = cache.join("models--acme--tiny-model");
    let v1 = std::fs::read_to_string(repo.join("refs/v1")).unwrap();
    let snap = repo.join("snapshots").join(&v1);
    let mut moved = 0;
    for p in harness::walk(&snap) {
        if !std::fs::symlink_metadata(&p).unwrap().is_symlink() {
            continue;
        }
        let blob = std::fs::canonicalize(&p).unwrap();
        let only_v1 = written
            .iter()
            .filter(|(k, v)| {
                k.contains("/snapshots/")
                    && v.ends_with(blob.file_name().unwrap().to_str().unwrap())
            })
            .count()
            == 1;
        std::fs::remove_file(&p).unwrap();
        if only_v1 {
            std::fs::rename(&blob, &p).unwrap();
            moved += 1;
        } else {
            std::fs::copy(&blob, &p).unwrap();
        }
    }
    assert_eq!(
        moved, 2,
        "config.json and nested/dir/weights.bin are v1's own"
    );
    // other-model in copy mode, without its trees/ cache.
    let other = cache.join("models--acme--other-model");
    for p in harness::walk(&other.join("snapshots")) {
        if std::fs::symlink_metadata(&p).unwrap().is_symlink() {
            let data = std::fs::read(&p).unwrap();
            std::fs::remove_file(&p).unwrap();
            std::fs::write(&p, data).unwrap();
        }
    }
    let trees = other.join("trees");
    std::fs::rename(&trees, dir.path().join("other-trees")).unwrap();
    // Leftovers: a dead download and an orphan blob.
    let dead = repo.join(format!("blobs/{}.0badf00d.incomplete", "e".repeat(64)));
    std::fs::write(&dead, b"partial").unwrap();
    backdate(&dead);
    let orphan = repo.join("blobs").join(git(b"orphan"));
    std::fs::write(&orphan, b"orphan").unwrap();
    backdate(&orphan);
    // Hide v1's trees/ entry so that the moved blobs are named by the sibling rule.
    let v1_tree = repo.join(format!("trees/{v1}.json"));
    let hidden = dir.path().join("v1-tree.json");
    std::fs::rename(&v1_tree, &hidden).unwrap();

    let (code, v) = tool_json(&["dedupe", "--min-age", "0"], &cache);
    assert_eq!(code, 0, "{v:#}");
    let moves = v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "move")
        .count();
    assert_eq!(moves, 2, "{v:#}");
    std::fs::rename(&hidden, &v1_tree).unwrap();
    std::fs::rename(dir.path().join("other-trees"), &trees).unwrap();
    let (code, v) = tool_json(&["gc", "--min-age", "1h"], &cache);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["deleted"].as_array().unwrap().len(), 2, "{v:#}");

    // The store is again exactly what the symlinking client wrote (plus hub-style locks).
    let mut now = listing(&cache);
    now.retain(|k, _| !k.starts_with(".locks/"));
    let mut was = written.clone();
    was.retain(|k, _| !k.starts_with(".locks/"));
    assert_eq!(now, was);
    for sub in ["check-layout", "check-offline"] {
        let (ok, out) = harness::hub_client(&py, &hub, &cache, sub, &[("HF_HUB_OFFLINE", "1")]);
        assert!(ok, "{sub}: {out}");
    }
    let (code, v) = tool_json(&["verify"], &cache);
    assert_eq!(code, 0, "{v:#}");
    let (ok, text) = hf_cache_verify(&py, &hub, &cache, &home);
    assert!(ok, "{text}");

    // Both notice the same corruption.
    let vocab =
        std::fs::canonicalize(repo.join(format!("snapshots/{v1}/tokenizer/vocab.txt"))).unwrap();
    let mut bytes = std::fs::read(&vocab).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&vocab, bytes).unwrap();
    let (code, v) = tool_json(&["verify"], &cache);
    assert_eq!(code, 1);
    let bad: Vec<&str> = v["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    let vocab_rel = vocab
        .strip_prefix(std::fs::canonicalize(&cache).unwrap())
        .unwrap();
    // other-model holds the same content in a blob of its own, which stays intact.
    assert_eq!(bad, [vocab_rel.to_str().unwrap()]);
    let (ok, text) = hf_cache_verify(&py, &hub, &cache, &home);
    assert!(!ok);
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("tokenizer/vocab.txt: expected"))
        .collect();
    assert_eq!(failed.len(), 3, "every tiny-model revision: {text}");
}

#[test]
fn reports_for_people_jobs_counts_long_names_and_a_corrupt_blob() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // -j 0 would hash nothing: a usage error.
    let (code, _, err) = tool(&["verify", "-j", "0"], root);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("use 1 or more"), "{err}");

    // A repo with a long name keeps the table's columns aligned.
    let long = "models--a-rather-long-organisation-name--and-an-even-longer-model-name";
    let data = c(5, 100);
    write(&root.join(long).join("blobs").join(git(&data)), &data);
    link(
        &format!("../../blobs/{}", git(&data)),
        &root.join(format!("{long}/snapshots/{C1}/f")),
    );
    write(&root.join(M).join("blobs").join(git(&data)), &data);
    link(
        &format!("../../blobs/{}", git(&data)),
        &root.join(format!("{M}/snapshots/{C1}/f")),
    );
    let (code, table, err) = tool(&["scan"], root);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = table.lines().take(4).collect();
    let type_col = lines[0].find("TYPE").unwrap();
    for l in &lines[1..3] {
        assert_eq!(l.find(" model ").map(|i| i + 1), Some(type_col), "{table}");
    }

    // One orphan, stale: "1 entry".
    let orphan = c(6, 10);
    let p = root.join(M).join("blobs").join(git(&orphan));
    write(&p, &orphan);
    backdate(&p);
    let (code, text, err) = tool(&["gc", "--dry-run"], root);
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with("would delete 1 entry,"), "{text}");

    // A copy whose content hashes to the name of a blob with other bytes: the blob is the
    // corrupt one, and the message says so.
    let good = c(7, 50);
    write(&root.join(M).join("blobs").join(git(&good)), &c(8, 50));
    write(&root.join(format!("{M}/snapshots/{C2}/g")), &good);
    let (code, text, _) = tool(&["dedupe", "--dry-run", "--min-age", "0"], root);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("is corrupt") && text.contains("this copy is good"),
        "{text}"
    );
}
