//! Store names as Windows names, and back; case-insensitive lookup over a case-sensitive
//! store. Pure, unit-tested everywhere.
//!
//! **Characters Windows forbids** in a name (`"` `*` `:` `<` `>` `?` `\` `|`, control
//! characters U+0001–U+001F) and a **trailing dot or space** (Win32 strips them) are shown
//! as the private-use character U+F000 + the character's code, the convention of Cygwin,
//! MSYS2, WSL and the SFU mapping of SMB clients: `a:b` is shown as `a\u{F03A}b` and is
//! opened by that name. Only the last character of a name is mapped for a trailing dot or
//! space. A store name that already contains such a private-use character is shown as it is
//! but cannot be told from a mapped one: it is reached under its unmapped meaning only.
//! **Reserved device names** (`CON`, `PRN`, `AUX`, `NUL`, `COM1`–`COM9`, `LPT1`–`LPT9`, with
//! any extension) are valid NT names and are shown unchanged; Win32 programs reach them with
//! `\\?\` paths only. Hub caches contain none of these in practice.
//!
//! **Case.** The volume is case-insensitive and case-preserving; the store may be either.
//! A lookup takes the exact name if it exists, else the name that folds to the same upper
//! case and sorts first in ordinal (code point) order (among the spellings the store
//! reports for the name: `docs/WINDOWS.md`, *Case*). A listing shows only that first name
//! of each group of names that differ only in case; the others stay reachable by their exact
//! spelling and are logged once.

use std::borrow::Cow;

/// The private-use block the mapping uses.
const PUA: u32 = 0xF000;

fn forbidden(c: char) -> bool {
    matches!(
        c,
        '"' | '*' | ':' | '<' | '>' | '?' | '\\' | '|' | '\u{1}'..='\u{1f}'
    )
}

fn pua(c: char) -> char {
    char::from_u32(PUA + c as u32).unwrap_or(c)
}

/// The Windows name of a store name.
pub fn to_windows(name: &str) -> Cow<'_, str> {
    let last = name.chars().count().saturating_sub(1);
    let needs = name.chars().any(forbidden) || name.ends_with(['.', ' ']);
    if !needs {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                if forbidden(c) || (i == last && (c == '.' || c == ' ')) {
                    pua(c)
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// The store name of a Windows name (inverse of [`to_windows`]).
pub fn from_windows(name: &str) -> Cow<'_, str> {
    let mapped = |c: char| {
        let v = c as u32;
        (PUA..PUA + 0x80)
            .contains(&v)
            .then(|| char::from_u32(v - PUA))
            .flatten()
    };
    if !name.chars().any(|c| mapped(c).is_some()) {
        return Cow::Borrowed(name);
    }
    let last = name.chars().count().saturating_sub(1);
    Cow::Owned(
        name.chars()
            .enumerate()
            .map(|(i, c)| match mapped(c) {
                Some(a) if forbidden(a) || (i == last && (a == '.' || a == ' ')) => a,
                _ => c,
            })
            .collect(),
    )
}

/// True for names Win32 reserves for devices (`CON`, `nul.txt`, `COM1`, …).
pub fn is_reserved_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").trim_end_matches(' ');
    let up = stem.to_ascii_uppercase();
    matches!(up.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (up.len() == 4
            && (up.starts_with("COM") || up.starts_with("LPT"))
            && matches!(up.as_bytes()[3], b'1'..=b'9'))
}

/// The case-folded form of a name: each character's simple upper case (as NTFS's upcase
/// table: characters whose upper case is several characters, like `ß`, stay as they are).
pub fn fold(name: &str) -> String {
    name.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// The store name a case-insensitive lookup of `wanted` finds among `names`: the exact name,
/// else the ordinal-first name with the same fold.
pub fn resolve_case<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    case_candidates(wanted, names).into_iter().next()
}

/// The names among `names` that a case-insensitive lookup of `wanted` may find, in the rule's
/// order: the exact name first, then the others with the same fold in ordinal order (a
/// caller whose first candidate turns out hidden takes the next).
pub fn case_candidates<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let key = fold(wanted);
    let mut out: Vec<&'a str> = names.into_iter().filter(|n| fold(n) == key).collect();
    out.sort_by(|a, b| (*a != wanted).cmp(&(*b != wanted)).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// For a listing: `true` for each name that is shown, `false` for names hidden because an
/// ordinal-earlier name differs from them only in case.
pub fn shown_in_listing(names: &[&str]) -> Vec<bool> {
    let mut first: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for n in names {
        first
            .entry(fold(n))
            .and_modify(|b| {
                if *n < *b {
                    *b = n;
                }
            })
            .or_insert(n);
    }
    names
        .iter()
        .map(|n| first.get(&fold(n)) == Some(n))
        .collect()
}

/// Splits a WinFsp file name (`\dir\sub\name`, `\` for the root) into store names.
pub fn components(path: &str) -> Vec<Cow<'_, str>> {
    path.split('\\')
        .filter(|c| !c.is_empty())
        .map(from_windows)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_characters_round_trip() {
        for (store, win) in [
            ("a:b", "a\u{f03a}b"),
            ("what?*", "what\u{f03f}\u{f02a}"),
            ("x\"<>|\\y", "x\u{f022}\u{f03c}\u{f03e}\u{f07c}\u{f05c}y"),
            ("tab\there", "tab\u{f009}here"),
            ("trailing.", "trailing\u{f02e}"),
            ("space ", "space\u{f020}"),
            ("two..", "two.\u{f02e}"),
            ("config.json", "config.json"),
            ("models--org--name", "models--org--name"),
            ("ünïcödé", "ünïcödé"),
        ] {
            assert_eq!(to_windows(store), win, "{store:?}");
            assert_eq!(from_windows(win), store, "{win:?}");
        }
        assert!(matches!(to_windows("plain"), Cow::Borrowed(_)));
        assert!(matches!(from_windows("plain"), Cow::Borrowed(_)));
        // A mapped dot or space inside a name is not a mapping: left alone.
        assert_eq!(from_windows("a\u{f02e}b"), "a\u{f02e}b");
    }

    #[test]
    fn reserved_names() {
        for n in ["CON", "con", "nul.txt", "COM1", "lpt9.log", "AUX.tar.gz"] {
            assert!(is_reserved_device_name(n), "{n}");
        }
        for n in ["CONFIG", "COM0", "COM10", "console", "nul_", "x.con"] {
            assert!(!is_reserved_device_name(n), "{n}");
        }
        // Shown unchanged.
        assert_eq!(to_windows("CON"), "CON");
    }

    #[test]
    fn case_insensitive_lookup() {
        let names = [
            "Config.json",
            "config.JSON",
            "model.safetensors",
            "README.md",
        ];
        assert_eq!(resolve_case("readme.MD", names), Some("README.md"));
        assert_eq!(
            resolve_case("config.JSON", names),
            Some("config.JSON"),
            "exact wins"
        );
        assert_eq!(
            resolve_case("CONFIG.JSON", names),
            Some("Config.json"),
            "ordinal first"
        );
        assert_eq!(resolve_case("missing", names), None);
        assert_eq!(
            case_candidates("CONFIG.json", names),
            ["Config.json", "config.JSON"]
        );
        assert_eq!(
            case_candidates("config.JSON", names),
            ["config.JSON", "Config.json"]
        );
        assert_eq!(fold("straße"), "STRAßE");
        assert_eq!(fold("ÄÖü"), "ÄÖÜ");
    }

    #[test]
    fn listing_hides_case_twins() {
        let names = ["b", "Config.json", "config.json", "A", "a"];
        assert_eq!(shown_in_listing(&names), [true, true, false, true, false]);
    }

    #[test]
    fn path_components() {
        assert!(components("\\").is_empty());
        assert_eq!(
            components("\\models--a--b\\snapshots\\c\\a\u{f03a}b"),
            ["models--a--b", "snapshots", "c", "a:b"]
        );
    }
}
