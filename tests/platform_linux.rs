//! The Linux integration of `platform/linux/`: `mount -t fuse.hfcachefs` and an fstab line
//! through util-linux `mount` and fuse3's `mount.fuse3`, then `umount`; the install script
//! (staged into a directory: idempotent, uninstall); the systemd units (`systemd-analyze
//! verify` through `platform/linux/verify-units.sh`).
//!
//! `mount` starts helpers with a fixed PATH, so `mount.fuse3` finds `hfcachefs` only in a
//! standard directory. The mount test therefore runs in a private mount namespace
//! (`unshare --mount`) where the binary under test is bind-mounted over /usr/local/bin:
//! nothing is installed on the machine, and nothing the test mounts is visible outside.

#![cfg(unix)]

#[path = "support/harness.rs"]
mod harness;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use harness::{C1, REPO, Store, bin, content};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `name` in the sbin/bin directories or on PATH, or a panic naming the package.
fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` not found: install the apt package {package}"))
}

/// Ends, by PID, every daemon that wrote a status file into `state` (a mount left behind in
/// the test's namespace goes away with its daemon).
struct DaemonReaper(PathBuf);

impl Drop for DaemonReaper {
    fn drop(&mut self) {
        let Ok(rd) = fs::read_dir(&self.0) else {
            return;
        };
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_suffix(".json")
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmd.windows(9).any(|w| w == b"hfcachefs") {
                // SAFETY: kill(2) on the PID of a daemon this test started.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }
}

#[test]
fn mount_t_and_fstab_line_mount_read_and_umount_through_mount_fuse3() {
    tool("mount.fuse3", "fuse3");
    tool("unshare", "util-linux");
    let store = Store::hub();
    let work = tempfile::Builder::new()
        .prefix("hfcfs-fstab")
        .tempdir()
        .unwrap();
    let w = work.path();
    let (mp1, mp2, bindir, state) = (w.join("mp1"), w.join("mp2"), w.join("bin"), w.join("state"));
    for d in [&mp1, &mp2, &bindir, &state] {
        fs::create_dir(d).unwrap();
    }
    let _reaper = DaemonReaper(state.clone());
    std::os::unix::fs::symlink(bin(), bindir.join("hfcachefs")).unwrap();
    let fstab = w.join("fstab");
    fs::write(
        &fstab,
        format!(
            "# hfcachefs test fstab\n{}  {}  fuse.hfcachefs  \
             ro,allow_other,_netdev,nofail,noatime,x-systemd.requires-mounts-for={}  0  0\n",
            store.root().display(),
            mp2.display(),
            store.root().display()
        ),
    )
    .unwrap();
    let rel = format!("{REPO}/snapshots/{C1}/config.json");
    // One mount namespace: the binary over /usr/local/bin, then both forms, each unmounted
    // with umount. Every step prints a marker; the trap detaches whatever is left.
    let script = r#"
set -u
STORE="$1"; MP1="$2"; MP2="$3"; BINDIR="$4"; FSTAB="$5"; REL="$6"
trap 'umount -l "$MP1" 2>/dev/null; umount -l "$MP2" 2>/dev/null' EXIT
mount --bind "$BINDIR" /usr/local/bin || { echo "BIND FAILED"; exit 1; }
daemon_pid() { hfcachefs status --json "$1" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -1; }
wait_gone() { for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.025; done; return 1; }
check() { # check TAG MP
    echo "$1 TYPE $(findmnt -rn -M "$2" -o FSTYPE,OPTIONS)"
    echo "$1 FILE $(stat -c '%F %s' "$2/$REL")"
    cmp -s "$2/$REL" "$STORE/$REL" && echo "$1 BYTES OK"
    if touch "$2/new" 2>/dev/null; then echo "$1 WRITABLE"; else echo "$1 READONLY OK"; fi
    pid="$(daemon_pid "$2")"
    umount "$2" && echo "$1 UMOUNT OK"
    findmnt -rn -M "$2" >/dev/null || echo "$1 GONE OK"
    [ -n "$pid" ] && wait_gone "$pid" && echo "$1 DAEMON EXITED OK"
}
if mount -t fuse.hfcachefs "$STORE" "$MP1" -o ro,allow_other; then check T "$MP1"; else echo "T MOUNT FAILED"; fi
if mount -T "$FSTAB" "$MP2"; then check F "$MP2"; else echo "F MOUNT FAILED"; fi
"#;
    let out = Command::new("timeout")
        .arg("60")
        .arg(tool("unshare", "util-linux"))
        .args([
            "--mount",
            "--propagation",
            "private",
            "bash",
            "-c",
            script,
            "x",
        ])
        .arg(store.root())
        .arg(&mp1)
        .arg(&mp2)
        .arg(&bindir)
        .arg(&fstab)
        .arg(&rel)
        .env("HFCACHEFS_STATE_DIR", &state)
        .stdin(Stdio::null())
        .output()
        .expect("unshare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for tag in ["T", "F"] {
        let line = |what: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{tag} {what}")))
                .unwrap_or_else(|| panic!("no '{tag} {what}' in:\n{text}"))
                .to_string()
        };
        let ty = line("TYPE");
        assert!(ty.contains("fuse.hfcachefs"), "{ty}");
        assert!(ty.contains("ro,") && ty.contains("allow_other"), "{ty}");
        assert_eq!(line("FILE"), format!("{tag} FILE regular file 300"));
        for ok in [
            "BYTES OK",
            "READONLY OK",
            "UMOUNT OK",
            "GONE OK",
            "DAEMON EXITED OK",
        ] {
            line(ok);
        }
    }
    // fstab's own options reach the kernel; the fstab-only ones were accepted and ignored.
    assert!(
        text.lines()
            .any(|l| l.starts_with("F TYPE") && l.contains("noatime")),
        "{text}"
    );
    assert_eq!(
        fs::read(store.p(&rel)).unwrap(),
        content(1, 300),
        "store untouched"
    );
    assert!(!store.p("new").exists());
}

fn run_install(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(repo().join("platform/linux/install.sh"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("install.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "install.sh {args:?}:\n{text}");
    text
}

fn mtime(p: &Path) -> std::time::SystemTime {
    fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn install_script_is_idempotent_and_uninstalls() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let b = bin();
    let b = b.to_str().unwrap();
    // A system with fuse3's helper but no mount.fuse link: the script adds ours.
    fs::create_dir_all(root.path().join("sbin")).unwrap();
    fs::write(root.path().join("sbin/mount.fuse3"), "#!/bin/sh\n").unwrap();

    let first = run_install(&["--root", r, "--binary", b]);
    let installed = [
        "usr/local/bin/hfcachefs",
        "etc/systemd/system/hfcachefs@.service",
        "etc/systemd/system/hfcachefs-dedupe@.service",
        "etc/systemd/system/hfcachefs-dedupe@.timer",
        "etc/systemd/system/hfcachefs-gc@.service",
        "etc/systemd/system/hfcachefs-gc@.timer",
        "etc/hfcachefs/hub.conf.example",
        "usr/local/share/hfcachefs/hfcachefs-example.mount",
        "usr/local/share/hfcachefs/smb.conf.snippet",
        "usr/local/share/hfcachefs/OPERATIONS.md",
        "usr/local/share/man/man1/hfcachefs.1",
        "usr/local/share/man/man1/hfcachefs-mount.1",
        "usr/local/share/bash-completion/completions/hfcachefs",
        "usr/local/share/zsh/site-functions/_hfcachefs",
        "usr/local/share/fish/vendor_completions.d/hfcachefs.fish",
    ];
    for f in installed {
        assert!(root.path().join(f).is_file(), "{f} missing:\n{first}");
    }
    assert_eq!(
        fs::read(root.path().join("usr/local/bin/hfcachefs")).unwrap(),
        fs::read(b).unwrap()
    );
    let link = root.path().join("sbin/mount.fuse.hfcachefs");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("/sbin/mount.fuse3"),
        "{first}"
    );
    let unit =
        fs::read_to_string(root.path().join("etc/systemd/system/hfcachefs@.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/hfcachefs mount -f"));

    // Again: nothing changes.
    let before: Vec<_> = installed
        .iter()
        .map(|f| mtime(&root.path().join(f)))
        .collect();
    let second = run_install(&["--root", r, "--binary", b]);
    assert!(!second.contains("installed "), "{second}");
    let after: Vec<_> = installed
        .iter()
        .map(|f| mtime(&root.path().join(f)))
        .collect();
    assert_eq!(before, after);

    // Another prefix rewrites the unit's path.
    let other = tempfile::tempdir().unwrap();
    let o = other.path().to_str().unwrap();
    let third = run_install(&["--root", o, "--binary", b, "--prefix", "/opt/hfc"]);
    let unit =
        fs::read_to_string(other.path().join("etc/systemd/system/hfcachefs@.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/opt/hfc/bin/hfcachefs mount -f"),
        "{third}"
    );
    assert!(other.path().join("opt/hfc/bin/hfcachefs").is_file());

    // Uninstall: everything of ours goes, the admin's configuration and links stay.
    fs::write(root.path().join("etc/hfcachefs/hub.conf"), "STORE=/x\n").unwrap();
    let wants = root
        .path()
        .join("etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(
        "/etc/systemd/system/hfcachefs@.service",
        wants.join("hfcachefs@hub.service"),
    )
    .unwrap();
    let un = run_install(&["--root", r, "--uninstall"]);
    for f in installed {
        assert!(!root.path().join(f).exists(), "{f} left:\n{un}");
    }
    assert!(fs::symlink_metadata(&link).is_err(), "helper link left");
    assert!(fs::symlink_metadata(wants.join("hfcachefs@hub.service")).is_err());
    assert!(root.path().join("sbin/mount.fuse3").exists());
    assert!(root.path().join("etc/hfcachefs/hub.conf").exists(), "{un}");
    let again = run_install(&["--root", r, "--uninstall"]);
    assert!(again.contains("nothing was installed"), "{again}");
}

#[test]
fn install_script_help_and_failures_are_plain() {
    let out = Command::new("bash")
        .arg(repo().join("platform/linux/install.sh"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(help.contains("--uninstall"), "{help}");
    assert!(
        !help.contains("set -euo") && !help.contains("HERE="),
        "help prints code:\n{help}"
    );
    // A copy that cannot be made is a failure, not "done".
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("usr/local")).unwrap();
    fs::write(
        root.path().join("usr/local/share"),
        "a file where a directory goes",
    )
    .unwrap();
    let out = Command::new("bash")
        .arg(repo().join("platform/linux/install.sh"))
        .arg("--root")
        .arg(root.path())
        .arg("--binary")
        .arg(bin())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("cannot create") && !text.contains("done."),
        "{text}"
    );
    // Without --binary and without a release build it asks for one instead of building.
    let empty = tempfile::tempdir().unwrap();
    let copy = empty.path().join("platform/linux");
    fs::create_dir_all(&copy).unwrap();
    fs::copy(
        repo().join("platform/linux/install.sh"),
        copy.join("install.sh"),
    )
    .unwrap();
    fs::write(empty.path().join("Cargo.toml"), "[package]\n").unwrap();
    let out = Command::new("bash")
        .arg(copy.join("install.sh"))
        .arg("--root")
        .arg(root.path().join("stage"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no binary at") && err.contains("cargo build --release"),
        "{err}"
    );
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    tool("systemd-analyze", "systemd");
    let out = Command::new("bash")
        .arg(repo().join("platform/linux/verify-units.sh"))
        .arg("--binary")
        .arg(bin())
        .stdin(Stdio::null())
        .output()
        .expect("verify-units.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok   hfcachefs@hub.service"), "{text}");
    assert!(text.contains("ok   srv-hf\\x2dhub.mount"), "{text}");
    for unit in [
        "hfcachefs-dedupe@hub.timer",
        "hfcachefs-dedupe@hub.service",
        "hfcachefs-gc@hub.timer",
        "hfcachefs-gc@hub.service",
    ] {
        assert!(text.contains(&format!("ok   {unit}")), "{text}");
    }
}

/// The option lists of every mount example shipped (fstab lines, `Options=`, `OPTIONS=`,
/// `-o` of a mount command) in `text`.
fn example_option_lists(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim_start_matches(['#', ';', ' ']).trim();
        let words: Vec<&str> = l.split_whitespace().collect();
        if let Some(i) = words.iter().position(|w| *w == "fuse.hfcachefs")
            && words.len() == i + 4
        {
            out.push(words[i + 1].to_string());
        }
        for key in ["Options=", "OPTIONS="] {
            if let Some(v) = l.strip_prefix(key) {
                out.push(v.to_string());
            }
        }
        if (l.contains("hfcachefs mount") || l.starts_with("mount -t fuse.hfcachefs"))
            && let Some(i) = words.iter().position(|w| *w == "-o")
        {
            out.push(words.get(i + 1).unwrap_or(&"").to_string());
        }
    }
    out
}

#[test]
fn every_shipped_mount_example_is_nodev_nosuid() {
    let files = [
        "README.md",
        "docs/OPERATIONS.md",
        "platform/linux/hfcachefs-example.mount",
        "platform/linux/hfcachefs@.service",
        "platform/linux/hub.conf.example",
        "platform/samba/smb.conf.snippet",
    ];
    let mut seen = 0;
    for f in files {
        let text = fs::read_to_string(repo().join(f)).unwrap();
        for opts in example_option_lists(&text) {
            // `${OPTIONS}` and the unit's fallback are filled from the configuration.
            if opts.contains("${OPTIONS}") || opts.starts_with("defaults LOG_LEVEL") {
                continue;
            }
            let list: Vec<&str> = opts.split(',').collect();
            assert!(
                list.contains(&"nodev") && list.contains(&"nosuid"),
                "{f}: example mount options without nodev,nosuid: {opts}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 8, "only {seen} examples found: the scan is broken");
}

/// Runs `cmd`; panics with its output unless it succeeds; returns stdout + stderr.
fn ok(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}:\n{text}");
    text
}

/// Purges the package on drop, so a failed test leaves nothing installed.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("apt-get")
            .args([
                "purge",
                "-y",
                "-qq",
                "-o",
                "DPkg::Lock::Timeout=120",
                "hfcachefs",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output();
    }
}

#[test]
fn debian_package_installs_and_removes_cleanly() {
    tool("dpkg-deb", "dpkg");
    tool("systemd-analyze", "systemd");
    let installed_before = Command::new("dpkg")
        .args(["-s", "hfcachefs"])
        .output()
        .unwrap()
        .status
        .success();
    assert!(
        !installed_before,
        "a hfcachefs package is installed on this machine: remove it to run this test"
    );
    let out = tempfile::tempdir().unwrap();
    let built = ok(Command::new("bash")
        .arg(repo().join("scripts/build-deb.sh"))
        .arg("--binary")
        .arg(bin())
        .arg("--out")
        .arg(out.path()));
    let deb = PathBuf::from(built.lines().last().unwrap().trim());
    assert!(deb.is_file(), "{built}");
    let _purge = Purge;
    ok(Command::new("apt-get")
        .args(["install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=120"])
        .arg(&deb)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    let files = [
        "/usr/bin/hfcachefs",
        "/usr/lib/systemd/system/hfcachefs@.service",
        "/usr/lib/systemd/system/hfcachefs-dedupe@.timer",
        "/usr/lib/systemd/system/hfcachefs-gc@.timer",
        "/usr/share/man/man1/hfcachefs.1.gz",
        "/usr/share/man/man1/hfcachefs-mount.1.gz",
        "/usr/share/bash-completion/completions/hfcachefs",
        "/usr/share/doc/hfcachefs/copyright",
        "/usr/share/doc/hfcachefs/examples/hfcachefs-example.mount",
    ];
    for f in files {
        assert!(Path::new(f).is_file(), "{f} not installed");
    }
    // The helper link reaches fuse3's mount.fuse3, and the installed binary runs.
    let helper = fs::canonicalize("/usr/sbin/mount.fuse.hfcachefs").unwrap();
    assert_eq!(helper.file_name().unwrap(), "mount.fuse3");
    let v = ok(Command::new("/usr/bin/hfcachefs").arg("--version"));
    assert!(v.starts_with("hfcachefs "), "{v}");
    // The installed units, from systemd's own search path, pass verification and point at
    // the installed binary.
    let unit = fs::read_to_string("/usr/lib/systemd/system/hfcachefs@.service").unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/hfcachefs mount -f"),
        "{unit}"
    );
    for u in [
        "hfcachefs@hub.service",
        "hfcachefs-dedupe@hub.timer",
        "hfcachefs-dedupe@hub.service",
        "hfcachefs-gc@hub.timer",
        "hfcachefs-gc@hub.service",
    ] {
        let text = ok(Command::new("systemd-analyze").args(["verify", "--man=no", u]));
        assert!(text.trim().is_empty(), "{u}: {text}");
    }
    ok(Command::new("apt-get")
        .args([
            "remove",
            "-y",
            "-qq",
            "-o",
            "DPkg::Lock::Timeout=120",
            "hfcachefs",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive"));
    for f in files {
        assert!(!Path::new(f).exists(), "{f} left after remove");
    }
    assert!(fs::symlink_metadata("/usr/sbin/mount.fuse.hfcachefs").is_err());
}

/// The service's ExecStart with an empty `OPTIONS=` in NAME.conf: whether the empty `${OPTIONS}`
/// becomes an empty argument (systemd's rule for `${VAR}`) or no argument at all, `-o` must
/// not take the store as its value. Run against a missing mountpoint, the command must get
/// as far as complaining about the mountpoint, with the store taken as the store. The units
/// are ordered before smbd so Samba never shares an empty mountpoint.
#[test]
fn service_exec_start_survives_an_empty_options_line() {
    let unit = fs::read_to_string(repo().join("platform/linux/hfcachefs@.service")).unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=");
    let store = Store::hub();
    let missing = store.root().with_extension("no-such-mountpoint");
    for drop_empty in [false, true] {
        let mut words: Vec<String> = Vec::new();
        for w in line.split_whitespace().skip(1) {
            let w = w
                .replace("${LOG_LEVEL}", "info")
                .replace("${OPTIONS}", "")
                .replace("${STORE}", store.root().to_str().unwrap())
                .replace("${MOUNTPOINT}", missing.to_str().unwrap());
            if !(drop_empty && w.is_empty()) {
                words.push(w);
            }
        }
        let out = Command::new(bin())
            .args(&words)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("does not exist") && err.contains("mkdir"),
            "{words:?}: {err}"
        );
    }
    for f in ["hfcachefs@.service", "hfcachefs-example.mount"] {
        let text = fs::read_to_string(repo().join("platform/linux").join(f)).unwrap();
        assert!(text.contains("\nBefore=smbd.service\n"), "{f}");
    }
}
