//! Shared-store manifests `blobs/<hh>/<hash>.refs`: the hub's record of which repo blob links
//! reference a payload (one store path per line, relative to the cache root). The view reads
//! them to keep a payload's referrers when its name goes away; `gc` reads them to leave a
//! payload alone while an entry still links to it.
//!
//! Invariants:
//! - One parser and one read limit ([`MANIFEST_LIMIT`]) for everyone. Lines are trimmed;
//!   blank, non-UTF-8, absolute and `..`-bearing lines are skipped (a manifest is data
//!   anyone on the share can write: it must never name a path outside the store).
//! - Entries keep the manifest's order, duplicates removed, so callers act in a stable order.
//! - Reading never follows a link and never blocks on a FIFO ([`super::read_small`]).

use super::names::manifest_path;
use super::read_small;
use crate::path::StorePath;
use crate::store::Store;

/// The most of a manifest that is read. Large on purpose: a truncated manifest silently
/// drops referrers, and a dropped referrer is a payload the view strands or `gc` deletes
/// (one line is ~100 bytes, so this is over 100k referencing blobs).
pub const MANIFEST_LIMIT: u64 = 16 << 20;

/// The entries of a manifest's text.
pub fn parse(text: &[u8]) -> Vec<StorePath> {
    let mut out: Vec<StorePath> = Vec::new();
    for line in text.split(|&c| c == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('/') || line.split('/').any(|c| c == "..") {
            continue;
        }
        if let Some(entry) = StorePath::parse(line)
            && !out.contains(&entry)
        {
            out.push(entry);
        }
    }
    out
}

/// The entries of the manifest of the payload `payload` (empty if it has none or it cannot
/// be read).
pub fn read(store: &Store, payload: &StorePath) -> Vec<StorePath> {
    manifest_path(payload)
        .and_then(|m| read_small(store, &m, MANIFEST_LIMIT))
        .map(|t| parse(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_parser_skips_what_could_leave_the_store() {
        let e = "models--a--b/blobs/".to_string() + &"1".repeat(64);
        let text = format!(
            "{e}\n  {e}  \n\n/etc/passwd\nmodels--a--b/../../x\n\u{0}\nmodels--c--d/blobs/y\r\n"
        );
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\n");
        let got: Vec<String> = parse(&bytes)
            .iter()
            .map(|p| {
                // Compared by components: Windows joins them with `\`.
                p.components()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        assert_eq!(got, [e.as_str(), "models--c--d/blobs/y"]);
    }
}
