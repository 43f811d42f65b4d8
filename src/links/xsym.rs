//! Minshall-French symlinks ("XSym" files): how the Linux SMB client with `mfsymlinks`, and
//! macOS/Samba clients that emulate links on servers without Unix extensions, store a
//! symlink as a plain file.
//!
//! Layout (as the Linux SMB client's `fs/smb/client/link.c` writes and checks it):
//!
//! ```text
//! offset  size  content
//!      0     5  "XSym\n"
//!      5     5  target length, 4 decimal digits, then "\n"      ("0018\n")
//!     10    33  MD5 of the target, 32 lower-case hex digits, "\n"
//!     43  1024  the target (length as above), then "\n" and ' ' up to the end
//! ```
//!
//! The file is always exactly [`XSYM_SIZE`] = 1067 bytes. A file is taken as a link only if
//! every field checks out, including the MD5 of the target; anything else is the regular file
//! it is (a 1067-byte blob that happens to start with "XSym\n" stays a blob).

use md5::{Digest, Md5};

use super::LinkText;

/// The size of every XSym file.
pub const XSYM_SIZE: u64 = 1067;
/// The magic at the start.
pub const MAGIC: &[u8] = b"XSym\n";
/// The longest target an XSym file holds.
pub const MAX_TARGET: usize = 1024;
const LEN_AT: usize = 5;
const MD5_AT: usize = 10;
const TARGET_AT: usize = 43;

/// True if a file of this size can be an XSym link (the cheap test before reading it).
pub fn may_be_xsym(size: u64) -> bool {
    size == XSYM_SIZE
}

/// The link in an XSym file's bytes (the whole file), or `None` if it is not one.
pub fn parse(buf: &[u8]) -> Option<LinkText> {
    if buf.len() as u64 != XSYM_SIZE || !buf.starts_with(MAGIC) {
        return None;
    }
    let digits = &buf[LEN_AT..LEN_AT + 4];
    if buf[LEN_AT + 4] != b'\n' || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = digits
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    if len > MAX_TARGET || buf[MD5_AT + 32] != b'\n' {
        return None;
    }
    let target = &buf[TARGET_AT..TARGET_AT + len];
    let want = hex(&Md5::digest(target));
    if !buf[MD5_AT..MD5_AT + 32].eq_ignore_ascii_case(want.as_bytes()) {
        return None;
    }
    LinkText::new(target.to_vec())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The XSym file for `target` (as the Linux client writes it). `None` if the target is
/// longer than [`MAX_TARGET`].
pub fn format(target: &[u8]) -> Option<Vec<u8>> {
    if target.len() > MAX_TARGET {
        return None;
    }
    let mut out =
        format!("XSym\n{:04}\n{}\n", target.len(), hex(&Md5::digest(target))).into_bytes();
    out.extend_from_slice(target);
    if out.len() < XSYM_SIZE as usize {
        out.push(b'\n');
    }
    out.resize(XSYM_SIZE as usize, b' ');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let f = format(b"../../blobs/e1").unwrap();
        assert_eq!(f.len(), 1067);
        assert!(f.starts_with(b"XSym\n0014\n"));
        // MD5("../../blobs/e1") in lower-case hex, then the target.
        assert_eq!(&f[42..43], b"\n");
        assert_eq!(&f[43..57], b"../../blobs/e1");
        assert_eq!(f[57], b'\n');
        assert!(f[58..].iter().all(|&c| c == b' '));
        let l = parse(&f).unwrap();
        assert_eq!(l.text, b"../../blobs/e1");
        assert!(!l.absolute);
        assert!(parse(&format(b"/abs/x").unwrap()).unwrap().absolute);
    }

    #[test]
    fn known_md5() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661 (RFC 1321 test suite).
        let f = format(b"a").unwrap();
        assert_eq!(&f[10..42], b"0cc175b9c0f1b6a831c399e269772661");
        // Upper-case hex is accepted.
        let mut up = f.clone();
        up[10..42].make_ascii_uppercase();
        assert!(parse(&up).is_some());
    }

    #[test]
    fn longest_target_fills_the_file() {
        let t = vec![b'x'; MAX_TARGET];
        let f = format(&t).unwrap();
        assert_eq!(f.len(), 1067);
        assert_eq!(parse(&f).unwrap().text.len(), MAX_TARGET);
        assert!(format(&vec![b'x'; MAX_TARGET + 1]).is_none());
    }

    #[test]
    fn anything_else_is_a_regular_file() {
        let good = format(b"../../blobs/e1").unwrap();
        assert!(parse(&good[..1066]).is_none(), "size");
        let mut bad = good.clone();
        bad[0] = b'x';
        assert!(parse(&bad).is_none(), "magic");
        let mut bad = good.clone();
        bad[12] = b'a';
        assert!(parse(&bad).is_none(), "length digits");
        let mut bad = good.clone();
        bad[44] = b'X';
        assert!(parse(&bad).is_none(), "md5 mismatch");
        let mut bad = good.clone();
        bad[5..9].copy_from_slice(b"1025");
        assert!(parse(&bad).is_none(), "length over the maximum");
        let mut bad = good.clone();
        bad[14] = b' ';
        assert!(parse(&bad).is_none(), "missing newline after length");
        assert!(parse(&format(b"").unwrap()).is_none(), "empty target");
        assert!(may_be_xsym(1067) && !may_be_xsym(1066));
    }
}
