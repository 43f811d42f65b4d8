//! Windows reparse points that are links, parsed from the buffer `FSCTL_GET_REPARSE_POINT`
//! returns.
//!
//! Byte layouts relied on (all integers little-endian), from MS-FSCC 2.1.2:
//!
//! ```text
//! REPARSE_DATA_BUFFER (2.1.2.1)     offset size
//!   ReparseTag                          0    4
//!   ReparseDataLength                   4    2   bytes of data after this 8-byte header
//!   Reserved                            6    2
//!   data                                8    ReparseDataLength
//!
//! IO_REPARSE_TAG_SYMLINK 0xA000000C (2.1.2.4), data:
//!   SubstituteNameOffset                0    2   offsets/lengths in bytes, relative to
//!   SubstituteNameLength                2    2   PathBuffer; names are UTF-16LE, not
//!   PrintNameOffset                     4    2   NUL-terminated
//!   PrintNameLength                     6    2
//!   Flags                               8    4   SYMLINK_FLAG_RELATIVE = 1
//!   PathBuffer                         12    …
//!
//! IO_REPARSE_TAG_MOUNT_POINT 0xA0000003 (2.1.2.5, junctions), data: as above without
//!   Flags (PathBuffer at 8); always absolute.
//!
//! IO_REPARSE_TAG_LX_SYMLINK 0xA000001D (WSL symlinks; layout as in the Linux SMB client's
//!   reparse_wsl_symlink_data_buffer), data:
//!   Version                             0    4   2
//!   Target                              4    …   UTF-8, not NUL-terminated
//!
//! IO_REPARSE_TAG_NFS 0x80000014 (2.1.2.6; what Windows' NFS client, and Samba and the
//!   Linux SMB client for Unix special files, write), data:
//!   Type                                0    8   NFS_SPECFILE_LNK = 0x014B4E4C ("LNK\x01")
//!   DataBuffer                          8    …   for LNK: UTF-16LE target, no NUL
//! ```
//!
//! The constants agree with the Linux SMB client (`fs/smb/client`), Samba and WinFsp's FUSE
//! layer. UTF-16 that is not valid (an unpaired surrogate) is converted with U+FFFD: such a
//! target cannot name a store entry on any platform and ends up hidden as dangling.

use super::LinkText;

/// NTFS/SMB symbolic link.
pub const IO_REPARSE_TAG_SYMLINK: u32 = 0xA000_000C;
/// NTFS junction (mount point).
pub const IO_REPARSE_TAG_MOUNT_POINT: u32 = 0xA000_0003;
/// WSL symbolic link.
pub const IO_REPARSE_TAG_LX_SYMLINK: u32 = 0xA000_001D;
/// NFS-style special file (symlink, FIFO, socket, device).
pub const IO_REPARSE_TAG_NFS: u32 = 0x8000_0014;
/// WSL Unix socket.
pub const IO_REPARSE_TAG_AF_UNIX: u32 = 0x8000_0023;
/// WSL FIFO.
pub const IO_REPARSE_TAG_LX_FIFO: u32 = 0x8000_0024;
/// WSL character device.
pub const IO_REPARSE_TAG_LX_CHR: u32 = 0x8000_0025;
/// WSL block device.
pub const IO_REPARSE_TAG_LX_BLK: u32 = 0x8000_0026;
/// The "name surrogate" bit: the entry stands for another named entity (a link of some kind).
pub const NAME_SURROGATE_BIT: u32 = 0x2000_0000;
/// `Flags` bit of a symbolic link whose substitute name is relative.
pub const SYMLINK_FLAG_RELATIVE: u32 = 1;
/// NFS type: symbolic link.
pub const NFS_SPECFILE_LNK: u64 = 0x0000_0000_014B_4E4C;
/// NFS type: character device.
pub const NFS_SPECFILE_CHR: u64 = 0x0000_0000_0052_4843;
/// NFS type: block device.
pub const NFS_SPECFILE_BLK: u64 = 0x0000_0000_004B_4C42;
/// NFS type: FIFO.
pub const NFS_SPECFILE_FIFO: u64 = 0x0000_0000_4F46_4946;
/// NFS type: socket.
pub const NFS_SPECFILE_SOCK: u64 = 0x0000_0000_4B43_4F53;
/// The largest reparse buffer a file system returns (16 KiB of data plus the header).
pub const MAXIMUM_REPARSE_DATA_BUFFER_SIZE: usize = 16 * 1024;

/// What a reparse point is, as far as the view cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reparse {
    /// A link with this text (symlink, junction, WSL or NFS-style link).
    Link(LinkText),
    /// A FIFO, socket or device (WSL or NFS-style): hidden like its Unix counterpart.
    Special,
    /// Another name surrogate (a link kind not understood here): hidden, never followed.
    OtherLink(u32),
    /// Not a link (deduplication, cloud placeholder, HSM, …): the file or directory itself.
    NotALink(u32),
}

/// The tag of a reparse buffer.
pub fn tag(buf: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Decodes UTF-16LE bytes (an even number of them) to UTF-8.
pub fn utf16le_to_utf8(b: &[u8]) -> Option<Vec<u8>> {
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let units = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    let s: String = char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    Some(s.into_bytes())
}

/// Classifies and parses a whole reparse buffer (header included). `None` if the buffer is
/// malformed (too short, lengths out of range, empty or NUL-containing target): the caller
/// hides such an entry.
pub fn parse(buf: &[u8]) -> Option<Reparse> {
    let tag = tag(buf)?;
    let len = u16_at(buf, 4)?;
    let data = buf.get(8..8 + len)?;
    match tag {
        IO_REPARSE_TAG_SYMLINK => {
            let flags = u32_at(data, 8)?;
            let path = data.get(12..)?;
            let (sub, print) = (name(data, path, 0)?, name(data, path, 4)?);
            if flags & SYMLINK_FLAG_RELATIVE != 0 {
                let text = utf16le_to_utf8(sub)?;
                let mut lt = LinkText::new(text)?;
                // A relative link whose text looks absolute (`\x`) is rooted at the link's
                // volume: the resolver treats it as absolute, i.e. outside the store.
                lt.absolute = super::is_absolute(&lt.text);
                Some(Reparse::Link(lt))
            } else {
                absolute_link(sub, print)
            }
        }
        IO_REPARSE_TAG_MOUNT_POINT => {
            let path = data.get(8..)?;
            absolute_link(name(data, path, 0)?, name(data, path, 4)?)
        }
        IO_REPARSE_TAG_LX_SYMLINK => {
            // Version 2 is the only one written; others are not guessed at.
            if u32_at(data, 0)? != 2 {
                return None;
            }
            LinkText::new(data.get(4..)?.to_vec()).map(Reparse::Link)
        }
        IO_REPARSE_TAG_NFS => match u64_at(data, 0)? {
            NFS_SPECFILE_LNK => {
                let text = utf16le_to_utf8(data.get(8..)?)?;
                LinkText::new(text).map(Reparse::Link)
            }
            NFS_SPECFILE_CHR | NFS_SPECFILE_BLK | NFS_SPECFILE_FIFO | NFS_SPECFILE_SOCK => {
                Some(Reparse::Special)
            }
            _ => Some(Reparse::OtherLink(tag)),
        },
        IO_REPARSE_TAG_AF_UNIX
        | IO_REPARSE_TAG_LX_FIFO
        | IO_REPARSE_TAG_LX_CHR
        | IO_REPARSE_TAG_LX_BLK => Some(Reparse::Special),
        t if t & NAME_SURROGATE_BIT != 0 => Some(Reparse::OtherLink(t)),
        t => Some(Reparse::NotALink(t)),
    }
}

/// The name at `(offset, length)` fields `at` of `data`, inside `path`.
fn name<'a>(data: &[u8], path: &'a [u8], at: usize) -> Option<&'a [u8]> {
    let off = u16_at(data, at)?;
    let len = u16_at(data, at + 2)?;
    path.get(off..off.checked_add(len)?)
}

/// An absolute symlink or junction: the print name if there is one (`C:\x`, `\\srv\s\x`),
/// else the substitute name turned from NT form into Win32 form.
fn absolute_link(sub: &[u8], print: &[u8]) -> Option<Reparse> {
    let text = match utf16le_to_utf8(print)? {
        p if !p.is_empty() => p,
        _ => nt_to_win32(&utf16le_to_utf8(sub)?),
    };
    let mut lt = LinkText::new(text)?;
    lt.absolute = true;
    Some(Reparse::Link(lt))
}

/// `\??\UNC\srv\share\x` → `\\srv\share\x`; `\??\C:\x` and `\\?\C:\x` → `C:\x`; other text
/// unchanged.
pub fn nt_to_win32(p: &[u8]) -> Vec<u8> {
    for prefix in [&b"\\??\\"[..], b"\\\\?\\"] {
        if let Some(rest) = p.strip_prefix(prefix) {
            if rest.len() >= 4 && rest[..4].eq_ignore_ascii_case(b"UNC\\") {
                let mut out = b"\\\\".to_vec();
                out.extend_from_slice(&rest[4..]);
                return out;
            }
            return rest.to_vec();
        }
    }
    p.to_vec()
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn header(tag: u32, data: Vec<u8>) -> Vec<u8> {
    let mut b = tag.to_le_bytes().to_vec();
    b.extend_from_slice(&(data.len() as u16).to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend(data);
    b
}

/// The `FSCTL_SET_REPARSE_POINT` buffer of a relative NTFS symlink with text `target`
/// (`/` written as `\`), substitute and print name both the text. `None` if the text is
/// too long for a reparse buffer.
pub fn relative_symlink_buffer(target: &str) -> Option<Vec<u8>> {
    let t = utf16(&target.replace('/', "\\"));
    if 12 + 2 * t.len() > MAXIMUM_REPARSE_DATA_BUFFER_SIZE - 8 {
        return None;
    }
    let mut d = Vec::new();
    d.extend_from_slice(&0u16.to_le_bytes());
    d.extend_from_slice(&(t.len() as u16).to_le_bytes());
    d.extend_from_slice(&(t.len() as u16).to_le_bytes());
    d.extend_from_slice(&(t.len() as u16).to_le_bytes());
    d.extend_from_slice(&SYMLINK_FLAG_RELATIVE.to_le_bytes());
    d.extend_from_slice(&t);
    d.extend_from_slice(&t);
    Some(header(IO_REPARSE_TAG_SYMLINK, d))
}

/// Builders of reparse buffers, for tests.
#[cfg(test)]
pub mod build {
    use super::*;

    /// A symlink buffer: substitute name, print name, flags; print name stored first (as
    /// `mklink` does), so offsets are exercised.
    pub fn symlink(sub: &str, print: &str, flags: u32) -> Vec<u8> {
        let (s, p) = (utf16(sub), utf16(print));
        let mut d = Vec::new();
        d.extend_from_slice(&(p.len() as u16).to_le_bytes()); // substitute after print
        d.extend_from_slice(&(s.len() as u16).to_le_bytes());
        d.extend_from_slice(&0u16.to_le_bytes());
        d.extend_from_slice(&(p.len() as u16).to_le_bytes());
        d.extend_from_slice(&flags.to_le_bytes());
        d.extend(p);
        d.extend(s);
        header(IO_REPARSE_TAG_SYMLINK, d)
    }

    /// A junction buffer (substitute first, each NUL-terminated as Windows writes them).
    pub fn junction(sub: &str, print: &str) -> Vec<u8> {
        let (s, p) = (utf16(sub), utf16(print));
        let mut d = Vec::new();
        d.extend_from_slice(&0u16.to_le_bytes());
        d.extend_from_slice(&(s.len() as u16).to_le_bytes());
        d.extend_from_slice(&(s.len() as u16 + 2).to_le_bytes());
        d.extend_from_slice(&(p.len() as u16).to_le_bytes());
        d.extend(s);
        d.extend([0, 0]);
        d.extend(p);
        d.extend([0, 0]);
        header(IO_REPARSE_TAG_MOUNT_POINT, d)
    }

    /// A WSL symlink buffer.
    pub fn lx(target: &[u8]) -> Vec<u8> {
        let mut d = 2u32.to_le_bytes().to_vec();
        d.extend_from_slice(target);
        header(IO_REPARSE_TAG_LX_SYMLINK, d)
    }

    /// An NFS-style buffer of type `typ` with `data` after the type.
    pub fn nfs(typ: u64, data: Vec<u8>) -> Vec<u8> {
        let mut d = typ.to_le_bytes().to_vec();
        d.extend(data);
        header(IO_REPARSE_TAG_NFS, d)
    }

    /// An NFS-style symlink.
    pub fn nfs_link(target: &str) -> Vec<u8> {
        nfs(NFS_SPECFILE_LNK, utf16(target))
    }

    /// Any tag with raw data.
    pub fn raw(tag: u32, data: Vec<u8>) -> Vec<u8> {
        header(tag, data)
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    fn link(buf: &[u8]) -> LinkText {
        match parse(buf) {
            Some(Reparse::Link(l)) => l,
            other => panic!("not a link: {other:?}"),
        }
    }

    #[test]
    fn relative_ntfs_symlink() {
        let l = link(&symlink(
            "..\\..\\blobs\\abc",
            "..\\..\\blobs\\abc",
            SYMLINK_FLAG_RELATIVE,
        ));
        assert_eq!(l.text, b"..\\..\\blobs\\abc");
        assert!(!l.absolute);
    }

    #[test]
    fn absolute_ntfs_symlinks() {
        let l = link(&symlink("\\??\\C:\\hub\\blobs\\x", "C:\\hub\\blobs\\x", 0));
        assert_eq!(l.text, b"C:\\hub\\blobs\\x");
        assert!(l.absolute);
        // No print name: the NT substitute name is converted.
        let l = link(&symlink("\\??\\UNC\\nas\\share\\hub\\x", "", 0));
        assert_eq!(l.text, b"\\\\nas\\share\\hub\\x");
        let l = link(&symlink("\\??\\D:\\y", "", 0));
        assert_eq!(l.text, b"D:\\y");
        // Relative flag but rooted text: still absolute for the resolver.
        let l = link(&symlink("\\hub\\x", "\\hub\\x", SYMLINK_FLAG_RELATIVE));
        assert!(l.absolute);
    }

    #[test]
    fn junctions_are_absolute_links() {
        let l = link(&junction(
            "\\??\\C:\\hub\\models--a--b",
            "C:\\hub\\models--a--b",
        ));
        assert_eq!(l.text, b"C:\\hub\\models--a--b");
        assert!(l.absolute);
    }

    #[test]
    fn wsl_symlinks() {
        let l = link(&lx(b"../../blobs/e1"));
        assert_eq!(l.text, b"../../blobs/e1");
        assert!(!l.absolute);
        assert!(link(&lx(b"/mnt/c/hub")).absolute);
        // Non-UTF-8 bytes survive (the resolver decides whether they name anything).
        assert_eq!(link(&lx(&[b'a', 0xff])).text, [b'a', 0xff]);
        let mut v1 = lx(b"x");
        v1[8] = 1;
        assert_eq!(parse(&v1), None, "unknown version");
        assert_eq!(parse(&lx(b"")), None, "empty target");
    }

    #[test]
    fn nfs_style_links_and_specials() {
        let l = link(&nfs_link("../../blobs/é"));
        assert_eq!(l.text, "../../blobs/é".as_bytes());
        assert!(!l.absolute);
        assert_eq!(NFS_SPECFILE_LNK.to_le_bytes(), *b"LNK\x01\0\0\0\0");
        for t in [
            NFS_SPECFILE_CHR,
            NFS_SPECFILE_BLK,
            NFS_SPECFILE_FIFO,
            NFS_SPECFILE_SOCK,
        ] {
            assert_eq!(parse(&nfs(t, vec![0; 8])), Some(Reparse::Special));
        }
        assert_eq!(
            parse(&nfs(0x1234, vec![])),
            Some(Reparse::OtherLink(IO_REPARSE_TAG_NFS))
        );
        assert_eq!(
            parse(&nfs(NFS_SPECFILE_LNK, vec![b'a'])),
            None,
            "odd length"
        );
    }

    #[test]
    fn other_tags() {
        assert_eq!(
            parse(&raw(IO_REPARSE_TAG_LX_FIFO, vec![])),
            Some(Reparse::Special)
        );
        assert_eq!(
            parse(&raw(IO_REPARSE_TAG_AF_UNIX, vec![])),
            Some(Reparse::Special)
        );
        // A name surrogate we do not know (e.g. a container link) is never followed.
        assert_eq!(
            parse(&raw(0xA000_0027, vec![1, 2])),
            Some(Reparse::OtherLink(0xA000_0027))
        );
        // Deduplication (0x80000013): the file itself.
        assert_eq!(
            parse(&raw(0x8000_0013, vec![])),
            Some(Reparse::NotALink(0x8000_0013))
        );
    }

    #[test]
    fn malformed_buffers_are_refused() {
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[0x0c, 0, 0, 0xa0]), None);
        let mut b = symlink("a", "a", 1);
        b[4] = 0xff; // data length beyond the buffer
        assert_eq!(parse(&b), None);
        let mut b = symlink("a", "a", 1);
        b[8] = 0x40; // name offset beyond the path buffer
        assert_eq!(parse(&b), None);
        let b = symlink("", "", 1);
        assert_eq!(parse(&b), None, "empty target");
        let b = symlink("a\0b", "a", 1);
        assert_eq!(parse(&b), None, "NUL in target");
    }

    #[test]
    fn relative_symlink_buffers_parse_back() {
        let b = relative_symlink_buffer("../../blobs/abc").unwrap();
        let l = link(&b);
        assert_eq!(l.text, b"..\\..\\blobs\\abc");
        assert!(!l.absolute);
        assert!(relative_symlink_buffer(&"x".repeat(9000)).is_none());
    }

    #[test]
    fn nt_paths() {
        assert_eq!(nt_to_win32(b"\\??\\UNC\\s\\x"), b"\\\\s\\x");
        assert_eq!(nt_to_win32(b"\\\\?\\unc\\s\\x"), b"\\\\s\\x");
        assert_eq!(nt_to_win32(b"\\\\?\\C:\\x"), b"C:\\x");
        assert_eq!(nt_to_win32(b"rel\\x"), b"rel\\x");
        assert_eq!(
            utf16le_to_utf8(&[0x00, 0xd8]).unwrap(),
            "\u{fffd}".as_bytes()
        );
    }
}
