//! Link encodings that other operating systems leave in a store, parsed without touching the
//! OS: Windows reparse points ([`reparse`]) and Minshall-French `XSym` files ([`xsym`]).
//!
//! Every parser is pure (bytes in, [`LinkText`] out), so all of them are unit-tested on every
//! platform. A parser never decides where a link leads: it returns the link's text with
//! whatever separators it was written with (`\` is allowed, [`crate::path::link_target`]
//! treats it as a separator) and whether the text is absolute. Resolution, and confinement to
//! the store, stay in [`crate::resolve`] and [`crate::path`].
//!
//! Invariants: a parser returns `None` for anything that is not a well-formed link of its
//! kind (the entry is then treated as what it otherwise is: a regular file, or a hidden
//! reparse point); returned text is never empty and never contains NUL.

pub mod reparse;
pub mod xsym;

/// The text of a link found in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkText {
    /// The target as bytes: UTF-8 for links written as UTF-8 (XSym, WSL) or as UTF-16
    /// (NTFS/SMB, NFS-style), which is converted; `\` or `/` separators.
    pub text: Vec<u8>,
    /// True if the target is absolute (`/…`, `C:\…`, `\\server\…`, `\??\…`).
    pub absolute: bool,
}

impl LinkText {
    /// A link text, classified as absolute or relative from its first bytes.
    pub fn new(text: Vec<u8>) -> Option<LinkText> {
        if text.is_empty() || text.contains(&0) {
            return None;
        }
        let absolute = is_absolute(&text);
        Some(LinkText { text, absolute })
    }
}

/// True for a link text that does not depend on the link's directory: a POSIX absolute
/// path, a drive path (`C:` followed by anything), a UNC or NT path (`\\…`, `\??\…`).
pub fn is_absolute(text: &[u8]) -> bool {
    matches!(text.first(), Some(b'/' | b'\\'))
        || (text.len() >= 2 && text[1] == b':' && text[0].is_ascii_alphabetic())
}

/// The rest of an absolute Windows link text below `root` (a store root as a Windows path,
/// `C:\\hub` or `\\\\nas\\share\\hub`), compared without regard to ASCII case or to the kind of
/// separator; `None` if the text is not below `root`. The rest has no leading separator.
pub fn strip_root<'a>(text: &'a [u8], root: &[u8]) -> Option<&'a [u8]> {
    let sep = |c: u8| c == b'/' || c == b'\\';
    let mut root = root;
    while root.len() > 1 && root.last().copied().is_some_and(sep) {
        root = &root[..root.len() - 1];
    }
    if root.is_empty() || text.len() < root.len() {
        return None;
    }
    let same = text[..root.len()]
        .iter()
        .zip(root)
        .all(|(a, b)| a.eq_ignore_ascii_case(b) || (sep(*a) && sep(*b)));
    let rest = &text[root.len()..];
    match rest.first() {
        _ if !same => None,
        None => Some(rest),
        Some(&c) if sep(c) => Some(&rest[1..]),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_forms() {
        for t in ["/etc", "\\\\srv\\s", "\\??\\C:\\x", "C:\\x", "c:rel"] {
            assert!(is_absolute(t.as_bytes()), "{t}");
        }
        for t in ["../../blobs/x", "..\\blobs", "x", "1:x"] {
            assert!(!is_absolute(t.as_bytes()), "{t}");
        }
        assert!(LinkText::new(Vec::new()).is_none());
        assert!(LinkText::new(b"a\0b".to_vec()).is_none());
        assert!(!LinkText::new(b"../x".to_vec()).unwrap().absolute);
    }

    #[test]
    fn absolute_targets_below_the_store_root() {
        let root = b"\\\\nas\\share\\hub";
        let t = b"\\\\NAS\\Share\\hub\\models--a--b\\blobs\\e1";
        assert_eq!(strip_root(t, root), Some(&b"models--a--b\\blobs\\e1"[..]));
        assert_eq!(strip_root(b"C:/hub/x", b"c:\\hub\\"), Some(&b"x"[..]));
        assert_eq!(strip_root(b"C:\\hub", b"C:\\hub"), Some(&b""[..]));
        assert_eq!(strip_root(b"C:\\hubx\\y", b"C:\\hub"), None);
        assert_eq!(strip_root(b"D:\\hub\\y", b"C:\\hub"), None);
        assert_eq!(strip_root(b"C:\\h", b"C:\\hub"), None);
    }
}
