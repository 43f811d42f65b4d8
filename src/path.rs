//! Store-relative paths and the lexical rules that confine link targets to the store.
//!
//! Invariants of [`StorePath`]: it is relative to the store root, holds only normal
//! components (no `.`, `..`, root or prefix components, no empty names), and the empty path
//! is the root itself. Every path the core hands to the store layer is a `StorePath`, so a
//! path that climbs out of the store cannot even be represented.
//!
//! [`link_target`] turns the text of a symlink into a `StorePath` purely lexically: it never
//! asks the OS to follow anything. `\` counts as a separator (links written by Windows tools),
//! `.` and `..` are folded, and any target that leaves the store root is an [`Escape`].

use std::ffi::{OsStr, OsString};
use std::fmt;
#[cfg(unix)]
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// A normalised path relative to the store root; empty for the root.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorePath(PathBuf);

/// A link target that leaves the store (absolute elsewhere, or `..` past the root).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Escape;

impl StorePath {
    /// The store root.
    pub fn root() -> Self {
        StorePath(PathBuf::new())
    }

    /// Builds a path from components, checking each one with [`valid_name`].
    pub fn from_components<'a>(parts: impl IntoIterator<Item = &'a OsStr>) -> Option<Self> {
        let mut p = PathBuf::new();
        for part in parts {
            if !valid_name(part) {
                return None;
            }
            p.push(part);
        }
        Some(StorePath(p))
    }

    /// Parses a `/`-separated relative path (as written in tests and tools).
    pub fn parse(s: &str) -> Option<Self> {
        Self::from_components(s.split('/').filter(|c| !c.is_empty()).map(OsStr::new))
    }

    /// True for the store root.
    pub fn is_root(&self) -> bool {
        self.0.as_os_str().is_empty()
    }

    /// The path as a relative `Path` (`.` for the root, as `*at` calls want).
    pub fn as_rel(&self) -> &Path {
        if self.is_root() {
            Path::new(".")
        } else {
            &self.0
        }
    }

    /// The path without the `.` substitution; empty for the root.
    pub fn as_path(&self) -> &Path {
        &self.0
    }

    /// This path with one more component. `name` must be a valid single name.
    pub fn join(&self, name: &OsStr) -> Option<Self> {
        if !valid_name(name) {
            return None;
        }
        Some(StorePath(self.0.join(name)))
    }

    /// The parent directory; the root is its own parent.
    pub fn parent(&self) -> StorePath {
        StorePath(self.0.parent().map(Path::to_path_buf).unwrap_or_default())
    }

    /// The last component, or `None` for the root.
    pub fn file_name(&self) -> Option<&OsStr> {
        self.0.file_name()
    }

    /// The components, outermost first.
    pub fn components(&self) -> impl Iterator<Item = &OsStr> {
        self.0.iter()
    }

    /// Number of components (0 for the root).
    pub fn depth(&self) -> usize {
        self.0.iter().count()
    }

    /// True if `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &StorePath) -> bool {
        self.0.starts_with(&other.0)
    }

    /// Replaces the prefix `from` with `to`, if `self` starts with `from`.
    pub fn rebase(&self, from: &StorePath, to: &StorePath) -> Option<StorePath> {
        let rest = self.0.strip_prefix(&from.0).ok()?;
        if rest.as_os_str().is_empty() {
            // `join("")` would add a trailing separator, which names a directory.
            return Some(to.clone());
        }
        Some(StorePath(to.0.join(rest)))
    }

    /// True for anything inside a repo's `blobs/` or the shared store's `blobs/`: Hub
    /// content lives there, so nothing there is ever taken for an XSym link.
    pub fn in_blobs(&self) -> bool {
        let mut comps = self.components();
        let (first, second) = (comps.next(), comps.next());
        first == Some(OsStr::new("blobs")) || second == Some(OsStr::new("blobs"))
    }

    /// The relative link text that reaches `target` from a link living in directory `dir`.
    pub fn relative_from(&self, dir: &StorePath) -> PathBuf {
        let a: Vec<&OsStr> = dir.components().collect();
        let b: Vec<&OsStr> = self.components().collect();
        let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let mut out = PathBuf::new();
        for _ in common..a.len() {
            out.push("..");
        }
        for c in &b[common..] {
            out.push(c);
        }
        if out.as_os_str().is_empty() {
            out.push(".");
        }
        out
    }
}

/// Shown with control characters, backslashes and invalid UTF-8 escaped (`\n`, `\x1b`,
/// `\\`): names come from the store, where anyone may create them, and a newline in a
/// name must never forge a line of a log.
impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str("/");
        }
        for c in self.components() {
            f.write_str("/")?;
            escape_name(c.as_encoded_bytes(), f)?;
        }
        Ok(())
    }
}

/// Writes `bytes` with everything that is not printable UTF-8 escaped.
fn escape_name(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() => write!(f, "{}", c.escape_default())?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        for b in chunk.invalid() {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// True for a single directory-entry name: not empty, not `.`/`..`, no `/` and no NUL.
/// On Windows also no `\` (a separator there) and no `:` (it would name a stream or a drive).
pub fn valid_name(name: &OsStr) -> bool {
    let b = name.as_encoded_bytes();
    !b.is_empty()
        && b != b"."
        && b != b".."
        && !b.contains(&b'/')
        && !b.contains(&0)
        && !(cfg!(windows) && (b.contains(&b'\\') || b.contains(&b':')))
}

/// A name from link-text bytes. On Unix the bytes are the name; on Windows names are
/// Unicode, so bytes that are not UTF-8 (possible only in links written on Unix) are
/// converted lossily and then name nothing in the store.
pub fn os_from_bytes(b: &[u8]) -> OsString {
    #[cfg(unix)]
    {
        OsString::from_vec(b.to_vec())
    }
    #[cfg(not(unix))]
    {
        OsString::from(String::from_utf8_lossy(b).into_owned())
    }
}

/// Resolves the text of a link that lives in directory `link_dir` to a store path,
/// lexically and confined to the store.
///
/// `root_aliases` are absolute paths under which the store root is known (the path the
/// user gave and its canonical form); an absolute target below one of them is taken as a
/// path inside the store, any other absolute target escapes. Windows drive (`C:`) and UNC
/// (`\\server`) targets always escape.
pub fn link_target(
    link_dir: &StorePath,
    text: &[u8],
    root_aliases: &[PathBuf],
) -> Result<StorePath, Escape> {
    let text: Vec<u8> = text
        .iter()
        .map(|&c| if c == b'\\' { b'/' } else { c })
        .collect();
    if text.len() >= 2 && text[1] == b':' && text[0].is_ascii_alphabetic() {
        return Err(Escape);
    }
    let mut parts: Vec<OsString> = Vec::new();
    if text.first() == Some(&b'/') {
        let abs = normalize_abs(&text);
        let rest = root_aliases
            .iter()
            .find_map(|root| {
                abs.strip_prefix(normalize_abs(root.as_os_str().as_encoded_bytes()))
                    .ok()
            })
            .ok_or(Escape)?;
        return StorePath::from_components(rest.iter()).ok_or(Escape);
    }
    parts.extend(link_dir.components().map(OsStr::to_os_string));
    for comp in text.split(|&c| c == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop().ok_or(Escape)?;
            }
            name => parts.push(os_from_bytes(name)),
        }
    }
    StorePath::from_components(parts.iter().map(OsString::as_os_str)).ok_or(Escape)
}

/// For a link text that any reader of the store follows exactly as [`link_target`] maps it
/// — relative, `/`-separated, with `..` only as leading components and no empty or `.`
/// components — the number of leading `..`; `None` for any other text.
///
/// A `..` after a name is where the OS and a lexical reading part ways (when the name is
/// itself a link, `..` leaves the link's *target*), so only plain texts keep a link inside
/// the store for every reader; a plain text in directory `dir` stays inside while its
/// leading `..` count is at most `dir.depth()`.
pub fn plain_link(text: &[u8]) -> Option<usize> {
    if text.is_empty() || text.first() == Some(&b'/') || text.contains(&b'\\') {
        return None;
    }
    let mut ups = 0;
    let mut names = 0;
    for comp in text.split(|&c| c == b'/') {
        match comp {
            b"" | b"." => return None,
            b".." if names == 0 => ups += 1,
            b".." => return None,
            _ => names += 1,
        }
    }
    (names > 0).then_some(ups)
}

/// Lexically normalises an absolute path (`.` and `..` folded, `..` at `/` stays at `/`).
fn normalize_abs(text: &[u8]) -> PathBuf {
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in text.split(|&c| c == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    let mut p = PathBuf::from("/");
    for part in parts {
        p.push(os_from_bytes(part));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(s: &str) -> StorePath {
        StorePath::parse(s).expect("valid test path")
    }

    #[test]
    fn display_escapes_what_could_forge_a_log_line() {
        let p = StorePath::from_components([OsStr::new("a\nWARN forged"), OsStr::new("b\x1b[31m")])
            .unwrap();
        assert_eq!(p.to_string(), "/a\\nWARN forged/b\\u{1b}[31m");
        assert!(!p.to_string().contains('\n'));
        // A backslash is a name character on Unix (a separator on Windows).
        #[cfg(unix)]
        assert_eq!(sp("a\\b").to_string(), "/a\\\\b");
    }

    #[test]
    fn plain_links_have_leading_dotdots_only() {
        assert_eq!(plain_link(b"../../blobs/abc"), Some(2));
        assert_eq!(plain_link(b"config.json"), Some(0));
        assert_eq!(plain_link(b"sub/dir/f"), Some(0));
        for odd in [
            &b"dl/../../etc/passwd"[..],
            b"/etc/passwd",
            b"../",
            b"..",
            b"./x",
            b"a//b",
            b"..\\x",
            b"",
        ] {
            assert_eq!(plain_link(odd), None, "{:?}", String::from_utf8_lossy(odd));
        }
    }

    #[test]
    fn relative_hub_pointer_resolves_to_blob() {
        let dir = sp("models--a--b/snapshots/0123/nested/dir");
        let t = link_target(&dir, b"../../../../blobs/abc", &[]).unwrap();
        assert_eq!(t, sp("models--a--b/blobs/abc"));
    }

    #[test]
    fn backslashes_are_separators() {
        let dir = sp("models--a--b/snapshots/0123");
        let t = link_target(&dir, b"..\\..\\blobs\\abc", &[]).unwrap();
        assert_eq!(t, sp("models--a--b/blobs/abc"));
    }

    #[test]
    fn dot_and_double_slash_are_folded() {
        let t = link_target(&sp("a/b"), b"././/c/../d", &[]).unwrap();
        assert_eq!(t, sp("a/b/d"));
    }

    #[test]
    fn climbing_past_root_escapes() {
        assert_eq!(link_target(&sp("a"), b"../../etc/passwd", &[]), Err(Escape));
        assert_eq!(link_target(&StorePath::root(), b"..", &[]), Err(Escape));
        // Climbing out and back in by name still escapes: the store's own name is unknown.
        assert_eq!(link_target(&sp("a"), b"../../hub/a", &[]), Err(Escape));
    }

    #[test]
    fn target_equal_to_root_is_allowed_lexically() {
        assert_eq!(link_target(&sp("a"), b"..", &[]), Ok(StorePath::root()));
    }

    #[test]
    fn absolute_inside_store_is_relative_to_root() {
        let aliases = [PathBuf::from("/srv/hub"), PathBuf::from("/mnt/nas/hub/")];
        let t = link_target(&sp("x/y"), b"/mnt/nas/hub/blobs/aa/123", &aliases).unwrap();
        assert_eq!(t, sp("blobs/aa/123"));
        let t = link_target(&sp("x"), b"/srv/./hub/q/../r", &aliases).unwrap();
        assert_eq!(t, sp("r"));
    }

    #[test]
    fn absolute_outside_store_escapes() {
        let aliases = [PathBuf::from("/srv/hub")];
        assert_eq!(link_target(&sp("x"), b"/etc/passwd", &aliases), Err(Escape));
        assert_eq!(link_target(&sp("x"), b"/srv/hubx/a", &aliases), Err(Escape));
        assert_eq!(
            link_target(&sp("x"), b"/srv/hub/../etc", &aliases),
            Err(Escape)
        );
    }

    #[test]
    fn windows_absolute_targets_escape() {
        assert_eq!(link_target(&sp("x"), b"C:\\Windows", &[]), Err(Escape));
        assert_eq!(
            link_target(&sp("x"), b"\\\\server\\share\\f", &[]),
            Err(Escape)
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_and_long_names_survive() {
        use std::os::unix::ffi::OsStrExt;
        let name = [b'n', 0xff, 0xfe, b'x'];
        let t = link_target(&sp("d"), &name, &[]).unwrap();
        assert_eq!(t.file_name().unwrap().as_bytes(), &name);
        let long = vec![b'a'; 255];
        let t = link_target(&sp("d"), &long, &[]).unwrap();
        assert_eq!(t.file_name().unwrap().len(), 255);
    }

    #[test]
    fn relative_from_is_inverse_of_link_target() {
        let target = sp("models--a/blobs/abc");
        for dir in [
            "models--a/snapshots/c1",
            "models--a/snapshots/c1/x/y",
            "",
            "models--a/blobs",
        ] {
            let dir = StorePath::parse(dir).unwrap();
            let text = target.relative_from(&dir);
            let back = link_target(&dir, text.as_os_str().as_encoded_bytes(), &[]).unwrap();
            assert_eq!(back, target, "from {dir}");
        }
    }

    #[test]
    fn rebase_exact_and_below() {
        let (from, to) = (sp("refs/main.tmp"), sp("refs/main"));
        assert_eq!(
            sp("refs/main.tmp").rebase(&from, &to),
            Some(sp("refs/main"))
        );
        assert_eq!(sp("d/x/y").rebase(&sp("d"), &sp("e")), Some(sp("e/x/y")));
        assert_eq!(sp("dx").rebase(&sp("d"), &sp("e")), None);
        assert_eq!(sp("refs/main").as_path().as_os_str().len(), 9);
    }

    #[test]
    fn invalid_names_rejected() {
        for bad in ["", ".", "..", "a/b"] {
            assert!(!valid_name(OsStr::new(bad)), "{bad:?}");
        }
        assert!(StorePath::root().join(OsStr::new("..")).is_none());
    }
}
