//! The Samba gateway: `smbd` on loopback exports an hfcachefs mount with the shares of
//! `platform/samba/smb.conf.snippet` (loaded as it is; only the path, the owner account and
//! guest access are set for the test), and `smbclient` lists and fetches through it.
//!
//! Needs the apt packages `samba` and `smbclient` (scripts/install-deps.sh installs them); the
//! test fails, not skips, without them.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use harness::{C1, C2, Mount, REPO, Store, content, sha1ish, sha256ish, walk};

/// The account that owns the store and that the read-write share writes as (`force user`).
/// Any ordinary account works; `daemon` exists on every Debian system. (The guest account
/// `nobody` does not: Samba refuses creating entries as the guest account's owner.)
const OWNER: &str = "daemon";

/// `name` on PATH or in the sbin directories, or a panic naming the package to install.
fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found: the Samba gateway test needs the apt packages samba and \
                 smbclient (`{package}` provides {name}); run scripts/install-deps.sh"
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// `smbd` in the foreground with its own configuration and state in a temporary directory.
/// Dropping it ends it by PID (then its process group, which holds its forked workers).
struct Smbd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    conf: PathBuf,
}

impl Smbd {
    fn start(shares: &str) -> Smbd {
        let smbd = tool("smbd", "samba");
        tool("smbclient", "smbclient");
        let dir = tempfile::Builder::new()
            .prefix("hfcfs-smbd")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        for sub in [
            "run", "lock", "state", "cache", "private", "ncalrpc", "binddns",
        ] {
            fs::create_dir(d.join(sub)).unwrap();
        }
        let port = free_port();
        let global = format!(
            "[global]\n\
             server role = standalone server\n\
             workgroup = WORKGROUP\n\
             netbios name = HFCFSTEST\n\
             smb ports = {port}\n\
             interfaces = 127.0.0.1\n\
             bind interfaces only = yes\n\
             disable netbios = yes\n\
             server min protocol = SMB2_10\n\
             map to guest = Bad User\n\
             guest account = nobody\n\
             pid directory = {d}/run\n\
             lock directory = {d}/lock\n\
             state directory = {d}/state\n\
             cache directory = {d}/cache\n\
             private dir = {d}/private\n\
             ncalrpc dir = {d}/ncalrpc\n\
             binddns dir = {d}/binddns\n\
             passdb backend = tdbsam:{d}/private/passdb.tdb\n\
             load printers = no\n\
             printing = bsd\n\
             printcap name = /dev/null\n\
             disable spoolss = yes\n\
             rpc start on demand helpers = no\n\
             usershare max shares = 0\n\
             log level = 1\n\n",
            d = d.display()
        );
        let conf = d.join("smb.conf");
        fs::write(&conf, format!("{global}{shares}")).unwrap();
        let log = fs::File::create(d.join("smbd.log")).unwrap();
        let child = Command::new(smbd)
            .args(["--foreground", "--no-process-group", "--debug-stdout", "-s"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own process group: the workers it forks are ended with it.
            .process_group(0)
            .spawn()
            .expect("start smbd");
        let mut s = Smbd {
            child: Some(child),
            dir,
            port,
            conf,
        };
        let log_path = s.dir.path().join("smbd.log");
        harness::wait_for_port("smbd", port, &mut s.child, || {
            fs::read_to_string(&log_path).unwrap_or_default()
        });
        s
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("smbd.log")).unwrap_or_default()
    }

    /// Runs `smbclient` as a guest on `share` with the `;`-separated commands `cmds`.
    fn client(&self, share: &str, cmds: &str) -> (bool, String) {
        let out = Command::new(tool("smbclient", "smbclient"))
            .arg(format!("//127.0.0.1/{share}"))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-s")
            .arg(&self.conf)
            .args(["-N", "-c", cmds])
            .stdin(Stdio::null())
            .output()
            .expect("run smbclient");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // smbclient exits 0 even when a command in -c failed; errors are NT_STATUS_ lines.
        (out.status.success() && !text.contains("NT_STATUS_"), text)
    }

    fn must(&self, share: &str, cmds: &str) -> String {
        let (ok, text) = self.client(share, cmds);
        assert!(
            ok,
            "smbclient //127.0.0.1/{share} -c '{cmds}':\n{text}\nsmbd log:\n{}",
            self.log()
        );
        text
    }
}

impl Drop for Smbd {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        harness::end_child(&mut child);
    }
}

/// The shares of the snippet for a test: the mountpoint as path, `OWNER` as the store owner,
/// guests allowed (smbclient -N).
fn shares_for(mp: &Path) -> String {
    let snippet = Path::new(env!("CARGO_MANIFEST_DIR")).join("platform/samba/smb.conf.snippet");
    let text = fs::read_to_string(&snippet).expect("platform/samba/smb.conf.snippet");
    assert!(text.contains("path = /srv/hf-hub") && text.contains("force user = hfcache"));
    let mut out = String::new();
    for line in text.lines() {
        let line = line
            .replace("/srv/hf-hub", &mp.display().to_string())
            .replace("= hfcache", &format!("= {OWNER}"));
        out.push_str(&line);
        out.push('\n');
        if line.starts_with('[') {
            out.push_str("   guest ok = yes\n");
        }
    }
    out
}

fn chown_tree(root: &Path, user: &str) {
    let st = Command::new("chown")
        .args(["-R", "-h", &format!("{user}:{user}")])
        .arg(root)
        .status()
        .expect("chown");
    assert!(st.success(), "chown -R {user} {}", root.display());
}

/// A hub store owned by `OWNER`, mounted read-write with allow_other (smbd opens files as the
/// client's user), with hostile entries, a file written and a link made through the mount.
struct Gateway {
    // Field order is drop order: smbd first, then the mount, then the store.
    smbd: Smbd,
    m: Mount,
    store: Store,
    hostile: Vec<&'static str>,
}

const WRITTEN: &str = "written.bin";
const LINKED: &str = "linked.txt";

fn gateway() -> Gateway {
    let store = Store::hub();
    let hostile = store.add_hostile();
    chown_tree(store.root(), OWNER);
    fs::set_permissions(store.root(), fs::Permissions::from_mode(0o755)).unwrap();
    let m = Mount::new(store.root(), "rw,allow_other");
    // smbd changes into the share as the client's user: the mountpoint's parent must let it.
    fs::set_permissions(m.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // A client writes through the mount before the gateway serves it.
    fs::write(
        m.path(&format!("{REPO}/snapshots/{C1}/{WRITTEN}")),
        content(77, 300_000),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        format!("../../blobs/{}", sha1ish(3)),
        m.path(&format!("{REPO}/snapshots/{C2}/{LINKED}")),
    )
    .unwrap();
    let smbd = Smbd::start(&shares_for(&m.mp));
    Gateway {
        smbd,
        m,
        store,
        hostile,
    }
}

/// Parses `recurse ON; ls` output into path -> (attributes, size); paths use `/`.
fn parse_listing(text: &str) -> BTreeMap<String, (String, u64)> {
    let mut out = BTreeMap::new();
    let mut dir = String::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix('\\') {
            dir = h.replace('\\', "/");
            continue;
        }
        if !line.starts_with("  ") {
            continue;
        }
        // "  NAME   ATTRS   SIZE  Www Mmm dd hh:mm:ss yyyy"
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.len() < 8 {
            continue;
        }
        let n = toks.len();
        let Ok(size) = toks[n - 6].parse::<u64>() else {
            continue;
        };
        let attrs = toks[n - 7].to_string();
        let name = toks[..n - 7].join(" ");
        if name == "." || name == ".." {
            continue;
        }
        let path = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        out.insert(path, (attrs, size));
    }
    out
}

#[test]
fn read_only_share_lists_every_entry_as_a_file_with_the_right_bytes() {
    let g = gateway();
    let listing = g.smbd.must("hf-hub-ro", "recurse ON; ls");
    let got = parse_listing(&listing);
    // The view, walked locally: what SMB must show, entry for entry.
    let mut want = BTreeMap::new();
    for p in walk(&g.m.mp) {
        let rel = p
            .strip_prefix(&g.m.mp)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let md = fs::symlink_metadata(&p).unwrap();
        assert!(md.is_file() || md.is_dir(), "{rel} in the view");
        want.insert(rel, (md.is_dir(), if md.is_dir() { 0 } else { md.len() }));
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "SMB listing vs the view:\n{listing}"
    );
    for (path, (attrs, size)) in &got {
        let (is_dir, len) = want[path];
        assert!(
            attrs.chars().all(|c| "DANRHS".contains(c)),
            "{path}: attributes {attrs}"
        );
        assert_eq!(attrs.contains('D'), is_dir, "{path}: attributes {attrs}");
        if !is_dir {
            assert_eq!(*size, len, "{path}: size over SMB");
        }
    }
    // Hostile store entries are absent over SMB too.
    let snap = format!("{REPO}/snapshots/{C1}");
    for h in &g.hostile {
        assert!(!got.contains_key(&format!("{snap}/{h}")), "{h} listed");
    }
    // No entry of a snapshot is a reparse point (FILE_ATTRIBUTE_REPARSE_POINT 0x400): a
    // Windows client has nothing to follow.
    let files: Vec<&String> = got
        .iter()
        .filter(|(p, (a, _))| p.starts_with(&format!("{REPO}/snapshots/")) && !a.contains('D'))
        .map(|(p, _)| p)
        .collect();
    assert!(files.len() >= 8, "{files:?}");
    let cmds: Vec<String> = files.iter().map(|p| format!("allinfo \"{p}\"")).collect();
    let info = g.smbd.must("hf-hub-ro", &cmds.join("; "));
    let mut seen = 0;
    for line in info.lines().filter(|l| l.starts_with("attributes:")) {
        let hex = line
            .rsplit_once('(')
            .and_then(|(_, h)| h.strip_suffix(')'))
            .unwrap_or_else(|| panic!("attributes line {line:?}"));
        let bits = u32::from_str_radix(hex, 16).unwrap();
        assert_eq!(bits & 0x400, 0, "reparse point: {line}");
        assert_eq!(bits & 0x10, 0, "directory: {line}");
        seen += 1;
    }
    assert_eq!(seen, files.len(), "{info}");

    // Fetch every snapshot file (including the one written and the link made through the
    // mount) and compare with the store's bytes.
    let dl = tempfile::tempdir().unwrap();
    let mut gets = Vec::new();
    for (i, p) in files.iter().enumerate() {
        gets.push(format!(
            "get \"{p}\" {}",
            dl.path().join(i.to_string()).display()
        ));
    }
    g.smbd.must("hf-hub-ro", &gets.join("; "));
    for (i, p) in files.iter().enumerate() {
        let want = fs::read(g.store.root().join(p)).unwrap();
        let got = fs::read(dl.path().join(i.to_string())).unwrap();
        assert!(got == want, "{p}: bytes over SMB differ from the store");
    }
    assert!(files.contains(&&format!("{snap}/{WRITTEN}")));
    assert_eq!(
        fs::read(
            dl.path().join(
                files
                    .iter()
                    .position(|p| p.ends_with(WRITTEN))
                    .unwrap()
                    .to_string()
            )
        )
        .unwrap(),
        content(77, 300_000)
    );
    assert!(files.contains(&&format!("{REPO}/snapshots/{C2}/{LINKED}")));
    // The read-only share refuses writes.
    let up = dl.path().join("up");
    fs::write(&up, b"x").unwrap();
    let (ok, text) = g
        .smbd
        .client("hf-hub-ro", &format!("put {} new.txt", up.display()));
    assert!(!ok && text.contains("NT_STATUS_ACCESS_DENIED"), "{text}");
    assert!(!g.store.p("new.txt").exists());
}

#[test]
fn read_write_share_downloads_land_in_the_store() {
    let g = gateway();
    let dl = tempfile::tempdir().unwrap();
    let up = dl.path().join("up.bin");
    fs::write(&up, content(88, 1_000_000)).unwrap();
    // A Windows-style download: a temporary name, then a rename into the snapshot.
    g.smbd.must(
        "hf-hub",
        &format!(
            "mkdir uploads; put {} uploads/part.incomplete; rename uploads/part.incomplete \
             uploads/model.bin; mkdir {REPO}/snapshots/{C2}/sub",
            up.display()
        ),
    );
    let landed = g.store.p("uploads/model.bin");
    let md = fs::symlink_metadata(&landed).unwrap();
    assert!(md.is_file());
    assert_eq!(fs::read(&landed).unwrap(), content(88, 1_000_000));
    let owner = Command::new("id").args(["-u", OWNER]).output().unwrap();
    let uid: u32 = String::from_utf8_lossy(&owner.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(md.uid(), uid, "written as the forced user");
    assert!(g.store.p(&format!("{REPO}/snapshots/{C2}/sub")).is_dir());
    assert!(!g.store.p("uploads/part.incomplete").exists());
    // Deleting a snapshot name over SMB removes the link only: the blob and the other
    // revision's name keep the content.
    g.smbd
        .must("hf-hub", &format!("del {REPO}/snapshots/{C2}/config.json"));
    assert!(
        fs::symlink_metadata(g.store.p(&format!("{REPO}/snapshots/{C2}/config.json"))).is_err()
    );
    assert_eq!(
        fs::read(g.store.p(&format!("{REPO}/blobs/{}", sha1ish(1)))).unwrap(),
        content(1, 300)
    );
    assert_eq!(
        fs::read(g.m.path(&format!("{REPO}/snapshots/{C1}/config.json"))).unwrap(),
        content(1, 300)
    );
    // Blobs are immutable through the view, also over SMB: overwriting one is refused and
    // the bytes stay.
    let (ok, text) = g.smbd.client(
        "hf-hub",
        &format!(
            "put {} {REPO}/snapshots/{C1}/model.safetensors",
            up.display()
        ),
    );
    assert!(!ok, "overwriting a blob over SMB succeeded: {text}");
    assert_eq!(
        fs::read(g.store.p(&format!("{REPO}/blobs/{}", sha256ish(2)))).unwrap(),
        content(2, 200_000)
    );
    // The store keeps its links.
    assert!(
        fs::symlink_metadata(
            g.store
                .p(&format!("{REPO}/snapshots/{C1}/model.safetensors"))
        )
        .unwrap()
        .is_symlink()
    );
}

/// What the view adds over a share of the bare store, claim by claim (docs/OPERATIONS.md,
/// "The Samba gateway"). With Samba's defaults (`follow symlinks = yes`) the bare store
/// already reads as plain files; the view differs in what `follow symlinks = no` leaves
/// visible, and in what a write through a snapshot name does.
#[test]
fn what_the_view_adds_over_sharing_the_bare_store() {
    let store = Store::hub();
    store.add_hostile();
    chown_tree(store.root(), OWNER);
    fs::set_permissions(store.root(), fs::Permissions::from_mode(0o755)).unwrap();
    let m = Mount::new(store.root(), "rw,allow_other");
    fs::set_permissions(m.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let share = |name: &str, path: &Path, follow: &str| {
        format!(
            "[{name}]\n   path = {}\n   read only = no\n   guest ok = yes\n   \
             force user = {OWNER}\n   force group = {OWNER}\n   follow symlinks = {follow}\n\n",
            path.display()
        )
    };
    let smbd = Smbd::start(&format!(
        "{}{}{}",
        share("store", store.root(), "yes"),
        share("store-nofollow", store.root(), "no"),
        share("view-nofollow", &m.mp, "no"),
    ));
    let dl = tempfile::tempdir().unwrap();
    let fetch = |share: &str, rel: &str| -> Option<Vec<u8>> {
        let local = dl.path().join(format!("{share}.out"));
        let _ = fs::remove_file(&local);
        let (ok, _) = smbd.client(share, &format!("get {rel} {}", local.display()));
        ok.then(|| fs::read(&local).unwrap())
    };
    let config = format!("{REPO}/snapshots/{C1}/config.json");

    // 1. Samba's defaults: the bare store already reads as plain files with the right bytes.
    assert_eq!(fetch("store", &config), Some(content(1, 300)));
    // 2. Hardened with `follow symlinks = no`: the bare store's snapshot files are gone for
    //    clients, the view's are all there.
    assert_eq!(fetch("store-nofollow", &config), None);
    assert_eq!(fetch("view-nofollow", &config), Some(content(1, 300)));
    assert_eq!(
        fetch(
            "view-nofollow",
            &format!("{REPO}/snapshots/{C2}/shared.bin")
        ),
        Some(content(9, 5000)),
        "a two-level shared-blob chain, hardened share"
    );
    // A link out of the store (to /etc/passwd): refused by both, by Samba's default
    // `wide links = no` on the bare store, by the view's own rule through the view.
    let escape = format!("{REPO}/snapshots/{C1}/abs_escape");
    assert_eq!(fetch("store", &escape), None);
    assert_eq!(fetch("view-nofollow", &escape), None);
    // 3. A client overwriting a snapshot file: through the bare store, Samba follows the link
    //    and rewrites the blob, so every revision sharing it changes; through the view the
    //    blob is refused and stays intact.
    let up = dl.path().join("up.bin");
    fs::write(&up, content(99, 300)).unwrap();
    let model = format!("{REPO}/snapshots/{C1}/model.safetensors");
    let (ok, text) = smbd.client("view-nofollow", &format!("put {} {model}", up.display()));
    assert!(!ok, "overwriting a blob through the view succeeded: {text}");
    let blob2 = store.p(&format!("{REPO}/blobs/{}", sha256ish(2)));
    assert_eq!(fs::read(&blob2).unwrap(), content(2, 200_000));
    smbd.must("store", &format!("put {} {config}", up.display()));
    assert_eq!(
        fs::read(store.p(&format!("{REPO}/blobs/{}", sha1ish(1)))).unwrap(),
        content(99, 300),
        "the bare store's blob was rewritten through the link"
    );
    assert_eq!(
        fs::read(store.p(&format!("{REPO}/snapshots/{C2}/config.json"))).unwrap(),
        content(99, 300),
        "and with it the other revision"
    );
}

/// Waits (up to 60 s) until store entry `p` is a link: a copy is converted when its last
/// close reaches the daemon, after the client's close returned.
fn wait_for_link(p: &Path, smbd: &Smbd, m: &Mount) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !fs::symlink_metadata(p).is_ok_and(|md| md.is_symlink()) {
        assert!(
            std::time::Instant::now() < deadline,
            "{} is still not a link\nsmbd log:\n{}\nmount log:\n{}",
            p.display(),
            smbd.log(),
            m.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A Windows copy-mode client over SMB, doing what huggingface_hub does without symlinks: it
/// downloads a blob (temporary name, rename), moves it into one revision, copies it into
/// another, and puts a new file in place with a rename. The store ends with links only and
/// one blob per content.
#[test]
fn copy_mode_client_over_smb_leaves_links_and_one_blob_per_content() {
    let g = gateway();
    let x = content(91, 400_000);
    let y = content(92, 12_345);
    let dl = tempfile::tempdir().unwrap();
    fs::write(dl.path().join("x.bin"), &x).unwrap();
    fs::write(dl.path().join("y.bin"), &y).unwrap();
    let digests = |d: &[u8]| hfcachefs::hub::hash::digest_bytes(d);
    let ex = digests(&x).git_sha1.unwrap();
    let ey = digests(&y).git_sha1.unwrap();
    let xs = dl.path().join("x.bin");
    let ys = dl.path().join("y.bin");
    g.smbd.must(
        "hf-hub",
        &format!(
            "put {xs} {REPO}/blobs/{ex}.incomplete; \
             rename {REPO}/blobs/{ex}.incomplete {REPO}/blobs/{ex}; \
             rename {REPO}/blobs/{ex} {REPO}/snapshots/{C1}/x.bin; \
             put {xs} {REPO}/snapshots/{C2}/x.bin; \
             put {ys} {REPO}/snapshots/{C2}/y.tmp; \
             rename {REPO}/snapshots/{C2}/y.tmp {REPO}/snapshots/{C2}/y.bin",
            xs = xs.display(),
            ys = ys.display(),
        ),
    );
    for (rev, name, etag) in [(C1, "x.bin", &ex), (C2, "x.bin", &ex), (C2, "y.bin", &ey)] {
        let p = g.store.p(&format!("{REPO}/snapshots/{rev}/{name}"));
        wait_for_link(&p, &g.smbd, &g.m);
        assert_eq!(
            fs::read_link(&p).unwrap(),
            PathBuf::from(format!("../../blobs/{etag}")),
            "{}",
            p.display()
        );
    }
    // The moved blob stayed; each content is held by exactly one file of the repo.
    for (etag, data) in [(&ex, &x), (&ey, &y)] {
        let b = g.store.p(&format!("{REPO}/blobs/{etag}"));
        assert!(fs::symlink_metadata(&b).unwrap().is_file());
        assert_eq!(&fs::read(&b).unwrap(), data);
    }
    let holders = walk(&g.store.p(REPO))
        .into_iter()
        .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
        .filter(|p| fs::read(p).is_ok_and(|d| d == x || d == y))
        .count();
    assert_eq!(holders, 2, "one file per content");
    assert!(!g.store.p(&format!("{REPO}/snapshots/{C2}/y.tmp")).exists());
    // The client reads its files back over SMB.
    let back = dl.path().join("back.bin");
    g.smbd.must(
        "hf-hub",
        &format!("get {REPO}/snapshots/{C2}/y.bin {}", back.display()),
    );
    assert_eq!(fs::read(&back).unwrap(), y);
}
