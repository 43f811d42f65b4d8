//! Which form a command line has: a subcommand, the FUSE convention
//! `hfcachefs SOURCE MOUNTPOINT [-o OPTS]` (as `mount -t fuse.hfcachefs` and fstab run it),
//! or neither.
//!
//! Invariant: the FUSE form is recognised only in exactly its shape ([`is_fuse_form`]); any
//! other first word that is not a subcommand is a usage error with a suggestion
//! ([`not_a_command`]), never a mount.

/// The subcommands (and clap's own words) that select the subcommand form.
pub(crate) const SUBCOMMANDS: &[&str] = &[
    "mount", "unmount", "status", "scan", "verify", "dedupe", "gc", "generate", "help",
];

/// True if `args` (without the program name) has the exact shape of the FUSE convention
/// `SOURCE MOUNTPOINT [-o OPTS]...` as `mount.fuse3` passes it: a SOURCE that is a path (has a
/// `/`), an absolute MOUNTPOINT (mount(8) canonicalizes it), then only `-o OPTS` or `-oOPTS`.
/// Anything else that is not a subcommand is a usage error: a typo such as `hfcachefs stauts`
/// must never mount the default store in the current directory.
pub(crate) fn is_fuse_form(args: &[String]) -> bool {
    let [source, mountpoint, rest @ ..] = args else {
        return false;
    };
    if !source.contains('/') || source.starts_with('-') || !mountpoint.starts_with('/') {
        return false;
    }
    let mut rest = rest.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "-o" if rest.next().is_some() => {}
            o if o.starts_with("-o") && o.len() > 2 => {}
            _ => return false,
        }
    }
    true
}

/// Edit distance between two short words (for "did you mean").
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The one-line error for a first argument that is neither a subcommand nor the FUSE form.
pub(crate) fn not_a_command(word: &str) -> String {
    let close = SUBCOMMANDS
        .iter()
        .filter(|c| !matches!(**c, "help" | "generate"))
        // Ties go to the longer common prefix: `umount` means `unmount`, not `mount`.
        .map(|c| {
            let prefix = word
                .chars()
                .zip(c.chars())
                .take_while(|(a, b)| a == b)
                .count();
            (distance(word, c), std::cmp::Reverse(prefix), *c)
        })
        .min()
        .filter(|(d, _, c)| *d <= 2.max(c.len() / 3));
    let hint = match close {
        Some((_, _, c)) => format!("did you mean '{c}'? "),
        None => String::new(),
    };
    format!(
        "'{word}' is not a command; {hint}(commands: mount, unmount, status, scan, verify, \
         dedupe, gc; the FUSE form is: hfcachefs SOURCE /ABSOLUTE/MOUNTPOINT [-o OPTS]; see \
         hfcachefs --help)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fuse_form_only_in_its_shape() {
        assert!(is_fuse_form(&v(&["/srv/store", "/mnt/x"])));
        assert!(is_fuse_form(&v(&[
            "/srv/store",
            "/mnt/x",
            "-o",
            "ro,allow_other"
        ])));
        assert!(is_fuse_form(&v(&[
            "./store", "/mnt/x", "-oro", "-o", "nodev"
        ])));
        for bad in [
            &["stauts"][..],
            &["stauts", "/mnt/x"],
            &["/srv/store"],
            &["/srv/store", "mnt"],
            &["/srv/store", "/mnt/x", "-f"],
            &["/srv/store", "/mnt/x", "-o"],
            &["/srv/store", "/mnt/x", "extra"],
            &["-x", "/mnt/x"],
        ] {
            assert!(!is_fuse_form(&v(bad)), "{bad:?}");
        }
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert!(not_a_command("stauts").contains("did you mean 'status'?"));
        assert!(not_a_command("umount").contains("did you mean 'unmount'?"));
        assert!(not_a_command("dedup").contains("did you mean 'dedupe'?"));
        assert!(!not_a_command("frobnicate").contains("did you mean"));
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
