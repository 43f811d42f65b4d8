//! Directory patterns: `FsRtlIsNameInExpression` semantics, case-insensitive. Pure,
//! unit-tested everywhere.
//!
//! `*` matches any run of characters, `?` one character; the DOS wildcards that Win32
//! produces when it translates `*.*`-style patterns are `<` (DOS_STAR: any run up to the last
//! dot), `>` (DOS_QM: one character, or nothing before a dot or at the end) and `"`
//! (DOS_DOT: a dot, or nothing at the end).

use super::names::fold;

/// True if `name` matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = fold(pattern).chars().collect();
    let n: Vec<char> = fold(name).chars().collect();
    if p.is_empty() || (p.len() == 1 && p[0] == '*') {
        return true;
    }
    let last_dot = n.iter().rposition(|&c| c == '.');
    go(&p, &n, 0, 0, last_dot, &mut 0)
}

/// Backtracking matcher; `budget` bounds pathological patterns.
fn go(
    p: &[char],
    n: &[char],
    i: usize,
    j: usize,
    last_dot: Option<usize>,
    budget: &mut u32,
) -> bool {
    *budget += 1;
    if *budget > 100_000 {
        return false;
    }
    if i == p.len() {
        return j == n.len();
    }
    match p[i] {
        '*' => (j..=n.len()).any(|k| go(p, n, i + 1, k, last_dot, budget)),
        '<' => {
            // Any run that does not pass the name's last dot.
            let end = last_dot.map_or(n.len(), |d| if j <= d { d } else { n.len() });
            (j..=end).any(|k| go(p, n, i + 1, k, last_dot, budget))
        }
        '?' => j < n.len() && go(p, n, i + 1, j + 1, last_dot, budget),
        '>' => {
            if j == n.len() || n[j] == '.' {
                go(p, n, i + 1, j, last_dot, budget)
            } else {
                go(p, n, i + 1, j + 1, last_dot, budget)
            }
        }
        '"' => {
            if j == n.len() {
                go(p, n, i + 1, j, last_dot, budget)
            } else {
                n[j] == '.' && go(p, n, i + 1, j + 1, last_dot, budget)
            }
        }
        c => j < n.len() && n[j] == c && go(p, n, i + 1, j + 1, last_dot, budget),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_wildcards() {
        assert!(matches("*", "anything"));
        assert!(matches("", "anything"));
        assert!(matches("*.json", "config.json"));
        assert!(matches("*.JSON", "config.json"), "case-insensitive");
        assert!(!matches("*.json", "config.jsonl"));
        assert!(matches("config.*", "config.json"));
        assert!(matches(
            "model-?????-of-00002.safetensors",
            "model-00001-of-00002.safetensors"
        ));
        assert!(!matches("?", ""));
        assert!(matches("exact", "EXACT"));
        assert!(!matches("exact", "exactly"));
        assert!(matches("*a*b*", "xxaxxbxx"));
    }

    #[test]
    fn dos_wildcards() {
        // Win32 "*.*" arrives as "<\"*"? No: as "*"; "*." arrives as "<\"" (names without an
        // extension), "file.?" as "file\">".
        assert!(matches("<\"", "README"));
        assert!(!matches("<\"", "README.md"));
        assert!(matches("<.md", "README.md"));
        assert!(matches("<.gz", "a.tar.gz"));
        assert!(matches("file\">", "file.c"));
        assert!(matches("file\">", "file."));
        assert!(matches("file\">", "file"));
        assert!(!matches("file\">", "file.cc"));
        assert!(matches("ab>>", "ab"));
        assert!(matches("ab>>", "abcd"));
        assert!(!matches("ab>>", "abcde"));
    }

    #[test]
    fn pathological_patterns_terminate() {
        let name = "a".repeat(200);
        assert!(!matches(&"*a".repeat(30).replace("a", "b"), &name));
    }
}
