//! Property tests of the parsers a hostile store or a bad fstab line can reach: link-text
//! resolution (`path::link_target`), XSym files, Windows reparse buffers and `-o` option
//! lists. They stand in for fuzzing (`cargo fuzz` needs nightly): every property runs
//! `PROPTEST_CASES` random inputs (256 by default; `scripts/fuzz.sh` raises it).
//!
//! Properties: no parser panics on arbitrary bytes; `link_target` never returns a path that
//! leaves the store (checked against an independent lexical model), its results are
//! idempotent (re-resolving the relative text it implies gives the same path), and `\` is a
//! separator; unknown mount options are rejected.

#![cfg(test)]

use std::ffi::OsStr;
use std::path::PathBuf;

use hfcachefs::config::{MountConfig, OptionError};
use hfcachefs::links::{reparse, xsym};
use hfcachefs::path::{StorePath, link_target, valid_name};
use proptest::prelude::*;

/// One link-text component: names, `.`/`..`, empty (doubled separators), odd bytes.
fn comp() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-c]{1,3}",
        3 => Just("..".to_string()),
        1 => Just(".".to_string()),
        1 => Just(String::new()),
        1 => Just("...".to_string()),
        1 => Just("blobs".to_string()),
    ]
}

fn rel_text() -> impl Strategy<Value = (Vec<String>, bool)> {
    (prop::collection::vec(comp(), 0..12), any::<bool>())
}

fn store_dir() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-c]{1,2}", 0..6)
}

fn sp(parts: &[String]) -> StorePath {
    StorePath::from_components(parts.iter().map(OsStr::new)).expect("valid dir")
}

/// The independent model: resolve lexically with a stack; `None` = escapes.
fn model(dir: &[String], text: &[String]) -> Option<Vec<String>> {
    let mut stack: Vec<String> = dir.to_vec();
    for c in text {
        match c.as_str() {
            "" | "." => {}
            ".." => {
                stack.pop()?;
            }
            n => stack.push(n.to_string()),
        }
    }
    Some(stack)
}

fn components(p: &StorePath) -> Vec<String> {
    p.components()
        .map(|c| c.to_string_lossy().into_owned())
        .collect()
}

const ROOT: &str = "/srv/hub";

proptest! {
    /// Relative texts: the result equals the lexical model, escapes exactly when the model
    /// climbs above the root, and every component of a result is a valid name.
    #[test]
    fn link_target_matches_the_lexical_model((text, trailing) in rel_text(), dir in store_dir()) {
        let mut s = text.join("/");
        if trailing { s.push('/'); }
        let r = link_target(&sp(&dir), s.as_bytes(), &[PathBuf::from(ROOT)]);
        // A text starting with '/' (empty first component and more) is absolute.
        if s.starts_with('/') {
            return Ok(());
        }
        match (model(&dir, &text), r) {
            (Some(want), Ok(got)) => {
                prop_assert_eq!(components(&got), want);
                prop_assert!(got.components().all(valid_name));
            }
            (None, Err(_)) => {}
            (want, got) => prop_assert!(false, "{s:?} in {dir:?}: model {want:?}, got {got:?}"),
        }
    }

    /// `\` is a separator exactly like `/`.
    #[test]
    fn backslash_is_a_separator((text, _) in rel_text(), dir in store_dir()) {
        let fwd = text.join("/");
        let back = text.join("\\");
        let a = link_target(&sp(&dir), fwd.as_bytes(), &[]);
        let b = link_target(&sp(&dir), back.as_bytes(), &[]);
        prop_assert_eq!(a, b);
    }

    /// Idempotence: the relative text from any directory to a resolved path resolves to it
    /// again, and resolving a resolved path's own text from the root is the identity.
    #[test]
    fn resolved_paths_round_trip((text, _) in rel_text(), dir in store_dir(), other in store_dir()) {
        let s = text.join("/");
        if let Ok(p) = link_target(&sp(&dir), s.as_bytes(), &[]) {
            let from = sp(&other);
            let rel = p.relative_from(&from);
            let again = link_target(&from, rel.as_os_str().as_encoded_bytes(), &[]);
            prop_assert_eq!(again.as_ref(), Ok(&p));
            let own = components(&p).join("/");
            prop_assert_eq!(link_target(&StorePath::root(), own.as_bytes(), &[]), Ok(p));
        }
    }

    /// Absolute texts: inside the store only below a root alias, and then equal to the
    /// normalised rest; anything else (other prefixes, `..` past the alias) escapes.
    #[test]
    fn absolute_texts_stay_below_a_root_alias(
        prefix in prop_oneof![
            Just("/srv/hub".to_string()),
            Just("/srv/hubx".to_string()),
            Just("/srv".to_string()),
            Just("/etc".to_string()),
            Just("/".to_string()),
            Just("/srv/./hub".to_string()),
            Just("/srv/hub/..".to_string()),
        ],
        (text, _) in rel_text(),
        dir in store_dir(),
    ) {
        let s = format!("{prefix}/{}", text.join("/"));
        let r = link_target(&sp(&dir), s.as_bytes(), &[PathBuf::from(ROOT)]);
        // Model: normalise the absolute path; inside iff it starts with srv/hub.
        let mut abs: Vec<String> = Vec::new();
        for c in s.split('/') {
            match c {
                "" | "." => {}
                ".." => { abs.pop(); }
                n => abs.push(n.to_string()),
            }
        }
        let inside = abs.len() >= 2 && abs[0] == "srv" && abs[1] == "hub";
        match r {
            Ok(p) => {
                prop_assert!(inside, "{s:?} resolved to {p} but is outside {ROOT}");
                prop_assert_eq!(components(&p), abs[2..].to_vec());
            }
            Err(_) => prop_assert!(!inside, "{s:?} is inside {ROOT} but escaped"),
        }
    }

    /// Drive-letter and UNC texts never resolve.
    #[test]
    fn windows_absolute_texts_escape(d in "[a-zA-Z]", (text, _) in rel_text(), dir in store_dir()) {
        let t = text.join("\\");
        for s in [format!("{d}:\\{t}"), format!("{d}:{t}"), format!("\\\\server\\{t}")] {
            let r = link_target(&sp(&dir), s.as_bytes(), &[PathBuf::from(ROOT)]);
            prop_assert!(r.is_err(), "{s:?} resolved to {r:?}");
        }
    }

    /// Arbitrary bytes never panic, and a result never holds `.`/`..`/empty components.
    #[test]
    fn link_target_never_panics(text in prop::collection::vec(any::<u8>(), 0..200), dir in store_dir()) {
        if let Ok(p) = link_target(&sp(&dir), &text, &[PathBuf::from(ROOT), PathBuf::from("/")]) {
            prop_assert!(p.components().all(valid_name));
        }
    }

    /// XSym: arbitrary bytes (also of exactly the XSym size, with the magic) never panic;
    /// a formatted link parses back to its target.
    #[test]
    fn xsym_never_panics(mut buf in prop::collection::vec(any::<u8>(), 0..1100), magic in any::<bool>()) {
        let _ = xsym::parse(&buf);
        buf.resize(xsym::XSYM_SIZE as usize, b' ');
        if magic {
            buf[..5].copy_from_slice(xsym::MAGIC);
        }
        let _ = xsym::parse(&buf);
    }

    #[test]
    fn xsym_round_trips(target in prop::collection::vec(1u8..=255, 1..1100)) {
        match xsym::format(&target) {
            Some(f) => {
                prop_assert_eq!(f.len() as u64, xsym::XSYM_SIZE);
                let lt = xsym::parse(&f).expect("formatted XSym parses");
                prop_assert_eq!(lt.text, target);
            }
            None => prop_assert!(target.len() > xsym::MAX_TARGET),
        }
    }

    /// A formatted XSym file with one byte changed parses to nothing or to some text, never
    /// panics.
    #[test]
    fn xsym_mutations_never_panic(target in "[a-z./]{1,64}", at in 0usize..1067, b in any::<u8>()) {
        let mut f = xsym::format(target.as_bytes()).unwrap();
        f[at] = b;
        if let Some(lt) = xsym::parse(&f) {
            prop_assert!(!lt.text.is_empty() && !lt.text.contains(&0));
        }
    }

    /// Reparse buffers: arbitrary bytes, and arbitrary bytes behind each known tag, never
    /// panic; a link's text is never empty and never holds NUL.
    #[test]
    fn reparse_never_panics(
        tag in prop_oneof![
            Just(reparse::IO_REPARSE_TAG_SYMLINK),
            Just(reparse::IO_REPARSE_TAG_MOUNT_POINT),
            Just(reparse::IO_REPARSE_TAG_LX_SYMLINK),
            Just(reparse::IO_REPARSE_TAG_NFS),
            any::<u32>(),
        ],
        len in prop_oneof![any::<u16>(), 0u16..64],
        data in prop::collection::vec(any::<u8>(), 0..300),
        raw in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = reparse::parse(&raw);
        let _ = reparse::tag(&raw);
        let mut buf = tag.to_le_bytes().to_vec();
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&data);
        if let Some(reparse::Reparse::Link(lt)) = reparse::parse(&buf) {
            prop_assert!(!lt.text.is_empty() && !lt.text.contains(&0));
        }
        let _ = reparse::utf16le_to_utf8(&data);
        let _ = reparse::nt_to_win32(&data);
    }

    /// A valid relative symlink buffer with one byte changed never panics.
    #[test]
    fn reparse_mutations_never_panic(target in "[a-z.\\\\]{1,40}", at in any::<prop::sample::Index>(), b in any::<u8>()) {
        if let Some(mut buf) = reparse::relative_symlink_buffer(&target) {
            let i = at.index(buf.len());
            buf[i] = b;
            let _ = reparse::parse(&buf);
        }
    }

    /// Arbitrary option strings never panic.
    #[test]
    fn apply_options_never_panics(lists in prop::collection::vec(".{0,40}", 0..4)) {
        let _ = MountConfig::default().apply_options(&lists);
    }

    /// Option-shaped garbage never panics either (keys near the real ones, odd values).
    #[test]
    fn apply_options_values_never_panic(
        key in prop_oneof![
            Just("uid"), Just("gid"), Just("threads"), Just("attr_timeout"),
            Just("entry_timeout"), Just("blob_timeout"), Just("fsname"), Just("ro"),
        ],
        value in prop_oneof![
            ".{0,12}".boxed(),
            any::<f64>().prop_map(|f| f.to_string()).boxed(),
            any::<i64>().prop_map(|f| f.to_string()).boxed(),
            Just("NaN".to_string()).boxed(),
            Just("inf".to_string()).boxed(),
            Just("1e308".to_string()).boxed(),
        ],
    ) {
        let mut c = MountConfig::default();
        if c.apply_options(&[format!("{key}={value}")]).is_ok() {
            prop_assert!(c.threads >= 1 && c.threads <= 64);
            prop_assert!(c.view.attr_ttl.as_secs() <= 86_400);
            prop_assert!(c.view.entry_ttl.as_secs() <= 86_400);
            prop_assert!(c.view.blob_attr_ttl.as_secs() <= 86_400);
        }
    }

    /// Unknown option names are rejected with `Unknown`, also among valid ones.
    #[test]
    fn unknown_options_are_rejected(name in "[a-z_]{1,16}", val in proptest::option::of("[a-z0-9]{0,6}")) {
        const KNOWN: &[&str] = &[
            "ro", "rw", "allow_other", "allow_root", "default_permissions", "uid", "gid",
            "fsname", "subtype", "entry_timeout", "attr_timeout", "blob_timeout", "threads",
            "passthrough", "nopassthrough", "noopen", "dev", "nodev", "suid", "nosuid", "exec", "noexec",
            "atime", "noatime", "sync", "async", "dirsync", "defaults", "auto", "noauto",
            "user", "users", "nouser", "owner", "group", "_netdev", "nofail", "relatime",
            "norelatime", "strictatime", "comment",
        ];
        prop_assume!(!KNOWN.contains(&name.as_str()));
        let opt = match &val { Some(v) => format!("{name}={v}"), None => name.clone() };
        let e = MountConfig::default().apply_options(&[format!("ro,{opt},noatime")]);
        prop_assert_eq!(e.unwrap_err(), OptionError::Unknown(opt));
    }
}
