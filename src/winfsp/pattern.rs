//! Directory patterns: `FsRtlIsNameInExpression` semantics, case-insensitive. Pure,
//! unit-tested everywhere.
//!
//! `*` matches any run of characters, `?` one character; the DOS wildcards that Win32
//! produces when it translates `*.*`-style patterns are `<` (DOS_STAR: any run up to the last
//! dot), `>` (DOS_QM: one character, or nothing before a dot or at the end) and `"`
//! (DOS_DOT: a dot, or nothing at the end).

use super::names::fold;

/// True if `name` matches `pattern`. Decided for every name: states (pattern position, name
/// position) already known not to match are not explored again, so any pattern over any
/// name takes at most (pattern length + 1) × (name length + 1) states. Should the step
/// budget still run out, the entry is *included*: WinFsp's driver applies the pattern to
/// every entry again, so including costs nothing while dropping would lose the entry.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = fold(pattern).chars().collect();
    let n: Vec<char> = fold(name).chars().collect();
    if p.is_empty() || (p.len() == 1 && p[0] == '*') {
        return true;
    }
    let mut m = Matcher {
        last_dot: n.iter().rposition(|&c| c == '.'),
        failed: vec![false; (p.len() + 1) * (n.len() + 1)],
        budget: BUDGET,
        p,
        n,
    };
    match m.go(0, 0) {
        Some(found) => found,
        None => {
            log::debug!("pattern {pattern:?} on {name:?}: step budget spent; entry included");
            true
        }
    }
}

/// Steps a single match may take.
const BUDGET: u32 = 1_000_000;

struct Matcher {
    p: Vec<char>,
    n: Vec<char>,
    last_dot: Option<usize>,
    /// States (i, j) that cannot match, at `i * (n.len() + 1) + j`.
    failed: Vec<bool>,
    budget: u32,
}

impl Matcher {
    /// Whether `p[i..]` matches `n[j..]`; `None` once the budget is spent.
    fn go(&mut self, i: usize, j: usize) -> Option<bool> {
        let slot = i * (self.n.len() + 1) + j;
        if self.failed[slot] {
            return Some(false);
        }
        self.budget = self.budget.checked_sub(1)?;
        let found = self.step(i, j)?;
        if !found {
            self.failed[slot] = true;
        }
        Some(found)
    }

    fn step(&mut self, i: usize, j: usize) -> Option<bool> {
        let (p, n) = (&self.p, &self.n);
        if i == p.len() {
            return Some(j == n.len());
        }
        let len = n.len();
        match p[i] {
            '*' => self.any(i + 1, j, len),
            '<' => {
                // Any run that does not pass the name's last dot.
                let end = self.last_dot.map_or(len, |d| if j <= d { d } else { len });
                self.any(i + 1, j, end)
            }
            '?' => Some(j < len && self.go(i + 1, j + 1)?),
            '>' => {
                if j == len || n[j] == '.' {
                    self.go(i + 1, j)
                } else {
                    self.go(i + 1, j + 1)
                }
            }
            '"' => {
                if j == len {
                    self.go(i + 1, j)
                } else {
                    Some(n[j] == '.' && self.go(i + 1, j + 1)?)
                }
            }
            c => Some(j < len && n[j] == c && self.go(i + 1, j + 1)?),
        }
    }

    /// Whether `p[i..]` matches `n[k..]` for some `k` in `from..=to`.
    fn any(&mut self, i: usize, from: usize, to: usize) -> Option<bool> {
        for k in from..=to {
            if self.go(i, k)? {
                return Some(true);
            }
        }
        Some(false)
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

    /// DOS stars (`<`, what Win32 makes of `*` before a dot) can make a plain backtracking
    /// search explore a great many placements before it finds a match: this one takes more
    /// than 100,000 steps that way. It is found, not dropped.
    #[test]
    fn long_searches_are_decided_not_dropped() {
        let (pattern, name) = ("<.<<<<<<<>", "b.bb..b...aab.");
        assert!(matches(pattern, name));
        assert!(!matches(pattern, "bbb"));
        let name = format!("{}c{}b", "a".repeat(150), "a".repeat(30));
        let pattern = format!("{}b", "*a".repeat(30));
        assert!(matches(&pattern, &name));
        assert!(!matches(&format!("{pattern}x"), &name));
    }
}
