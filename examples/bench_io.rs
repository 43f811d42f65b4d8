//! I/O helper for `scripts/bench.sh`: builds the benchmark stores and runs the timed I/O
//! patterns that plain shell tools cannot time precisely (sequential read, random `mmap`
//! reads, a large write). Every timed command prints its result on one line of stdout.
//!
//! ```text
//! bench_io mkrepo ROOT REPO SNAPNAME SIZE SEED     one blob of SIZE bytes behind snapshots/<commit>/SNAPNAME
//! bench_io mksmall ROOT REPO COUNT DIRS SIZE SEED LIST
//!                                                 COUNT blobs of SIZE bytes behind links in DIRS
//!                                                 directories d00..; LIST gets the snapshot paths
//!                                                 (relative to ROOT, NUL-separated)
//! bench_io seqread FILE                           -> "<bytes> <seconds>"
//! bench_io mmaprand FILE COUNT SEED               -> "<seconds> <checksum>"
//! bench_io write FILE SIZE                        -> "<write seconds> <fsync seconds>"
//! ```
//!
//! Paths printed by `mkrepo` (stdout): the snapshot path relative to ROOT.

// Unix only (the benchmark drives a FUSE mount); an empty crate elsewhere.
#![cfg_attr(not(unix), no_main)]
#![cfg(unix)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Instant;

/// splitmix64: a fast deterministic generator, enough for data and offsets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len + 16);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(len);
        s
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn die(msg: String) -> ! {
    eprintln!("bench_io: {msg}");
    std::process::exit(2)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i)
        .unwrap_or_else(|| die(format!("missing argument {what}")))
        .parse()
        .unwrap_or_else(|_| die(format!("bad argument {what}: {}", args[i])))
}

/// Creates `ROOT/REPO/{blobs,refs,snapshots/<commit>}` and returns (repo dir, commit).
fn repo_dirs(root: &Path, repo: &str, rng: &mut Rng) -> (std::path::PathBuf, String) {
    let dir = root.join(repo);
    let commit = rng.hex(40);
    fs::create_dir_all(dir.join("blobs")).unwrap_or_else(|e| die(format!("mkdir: {e}")));
    fs::create_dir_all(dir.join("refs")).unwrap_or_else(|e| die(format!("mkdir: {e}")));
    fs::create_dir_all(dir.join("snapshots").join(&commit))
        .unwrap_or_else(|e| die(format!("mkdir: {e}")));
    fs::write(dir.join("refs/main"), &commit).unwrap_or_else(|e| die(format!("refs: {e}")));
    (dir, commit)
}

fn write_random(path: &Path, size: u64, rng: &mut Rng) {
    let mut f = File::create(path).unwrap_or_else(|e| die(format!("{}: {e}", path.display())));
    let mut buf = vec![0u8; 4 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n])
            .unwrap_or_else(|e| die(format!("{}: {e}", path.display())));
        left -= n as u64;
    }
}

fn mkrepo(args: &[String]) {
    let root: String = arg(args, 0, "ROOT");
    let repo: String = arg(args, 1, "REPO");
    let name: String = arg(args, 2, "SNAPNAME");
    let size: u64 = arg(args, 3, "SIZE");
    let seed: u64 = arg(args, 4, "SEED");
    let mut rng = Rng(seed);
    let (dir, commit) = repo_dirs(Path::new(&root), &repo, &mut rng);
    let etag = rng.hex(64);
    write_random(&dir.join("blobs").join(&etag), size, &mut rng);
    let link = dir.join("snapshots").join(&commit).join(&name);
    symlink(format!("../../blobs/{etag}"), &link).unwrap_or_else(|e| die(format!("link: {e}")));
    println!("{repo}/snapshots/{commit}/{name}");
}

fn mksmall(args: &[String]) {
    let root: String = arg(args, 0, "ROOT");
    let repo: String = arg(args, 1, "REPO");
    let count: usize = arg(args, 2, "COUNT");
    let dirs: usize = arg(args, 3, "DIRS");
    let size: usize = arg(args, 4, "SIZE");
    let seed: u64 = arg(args, 5, "SEED");
    let list: String = arg(args, 6, "LIST");
    let mut rng = Rng(seed);
    let (dir, commit) = repo_dirs(Path::new(&root), &repo, &mut rng);
    let snap = dir.join("snapshots").join(&commit);
    let per_dir = count.div_ceil(dirs.max(1));
    let dwidth = format!("{}", dirs.saturating_sub(1)).len().max(2);
    let fwidth = format!("{}", count.saturating_sub(1)).len().max(4);
    let mut out = Vec::new();
    let mut buf = vec![0u8; size];
    for i in 0..count {
        let d = i / per_dir;
        let dname = format!("d{d:0dwidth$}");
        let fname = format!("f{i:0fwidth$}");
        if i % per_dir == 0 {
            fs::create_dir_all(snap.join(&dname)).unwrap_or_else(|e| die(format!("mkdir: {e}")));
        }
        let etag = rng.hex(40);
        rng.fill(&mut buf);
        fs::write(dir.join("blobs").join(&etag), &buf)
            .unwrap_or_else(|e| die(format!("blob: {e}")));
        symlink(
            format!("../../../blobs/{etag}"),
            snap.join(&dname).join(&fname),
        )
        .unwrap_or_else(|e| die(format!("link: {e}")));
        out.extend_from_slice(format!("{repo}/snapshots/{commit}/{dname}/{fname}").as_bytes());
        out.push(0);
    }
    fs::write(&list, out).unwrap_or_else(|e| die(format!("{list}: {e}")));
    println!("{repo}/snapshots/{commit}");
}

fn seqread(args: &[String]) {
    let path: String = arg(args, 0, "FILE");
    let t = Instant::now();
    let mut f = File::open(&path).unwrap_or_else(|e| die(format!("{path}: {e}")));
    let mut buf = vec![0u8; 1 << 20];
    let mut total: u64 = 0;
    loop {
        let n = f
            .read(&mut buf)
            .unwrap_or_else(|e| die(format!("{path}: {e}")));
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    drop(f);
    println!("{total} {:.6}", t.elapsed().as_secs_f64());
}

fn mmaprand(args: &[String]) {
    let path: String = arg(args, 0, "FILE");
    let count: usize = arg(args, 1, "COUNT");
    let seed: u64 = arg(args, 2, "SEED");
    let mut rng = Rng(seed);
    let t = Instant::now();
    let f = File::open(&path).unwrap_or_else(|e| die(format!("{path}: {e}")));
    // SAFETY: the file is not modified while mapped (the benchmark owns the store).
    let map = unsafe { memmap2::Mmap::map(&f) }.unwrap_or_else(|e| die(format!("mmap: {e}")));
    let pages = (map.len() / 4096) as u64;
    if pages == 0 {
        die(format!("{path}: smaller than one page"));
    }
    let mut page = [0u8; 4096];
    let mut sum: u64 = 0;
    for _ in 0..count {
        let off = (rng.next() % pages) as usize * 4096;
        page.copy_from_slice(&map[off..off + 4096]);
        let p = std::hint::black_box(&page);
        sum = sum
            .wrapping_add(u64::from_le_bytes(p[..8].try_into().unwrap()))
            .wrapping_add(p[4095] as u64);
    }
    drop(map);
    drop(f);
    println!("{:.6} {sum:x}", t.elapsed().as_secs_f64());
}

fn write(args: &[String]) {
    let path: String = arg(args, 0, "FILE");
    let size: u64 = arg(args, 1, "SIZE");
    let mut rng = Rng(42);
    let mut buf = vec![0u8; 1 << 20];
    rng.fill(&mut buf);
    let t = Instant::now();
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap_or_else(|e| die(format!("{path}: {e}")));
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        // Vary the first bytes so no two chunks are equal.
        buf[..8].copy_from_slice(&left.to_le_bytes());
        f.write_all(&buf[..n])
            .unwrap_or_else(|e| die(format!("{path}: {e}")));
        left -= n as u64;
    }
    let t_write = t.elapsed().as_secs_f64();
    let t2 = Instant::now();
    f.sync_all()
        .unwrap_or_else(|e| die(format!("fsync {path}: {e}")));
    drop(f);
    println!("{t_write:.6} {:.6}", t2.elapsed().as_secs_f64());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        die("usage: bench_io mkrepo|mksmall|seqread|mmaprand|write ...".into())
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "mkrepo" => mkrepo(rest),
        "mksmall" => mksmall(rest),
        "seqread" => seqread(rest),
        "mmaprand" => mmaprand(rest),
        "write" => write(rest),
        _ => die(format!("unknown command {cmd}")),
    }
}
