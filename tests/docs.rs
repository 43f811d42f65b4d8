//! The documents that promise behaviour name the tests that show it; this checks that every
//! named test exists, so renaming or deleting a test cannot leave a promise unbacked.
//!
//! Syntax (see the head of `docs/SEMANTICS.md`): a bracket holding backticked names,
//! `[`binary::test`, …; unit: `module::tests::test`, …]`. A name before any `unit:` in its
//! `;`-separated part is an integration test: `tests/<binary>.rs` defines `fn <test>`. After
//! `unit:` it is a unit test in `src/`: its first component is a module of the crate
//! (`src/<m>.rs` or `src/<m>/`) and `fn <test>` is defined in that module's files; a bare
//! name is a test defined anywhere in `src/`; `*` stands for a module's whole test set,
//! which must exist.

#![cfg(unix)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read source dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A named test: integration (`binary`, `name`) or unit (`path`, `name`).
#[derive(Debug)]
enum Named {
    Integration {
        binary: String,
        name: String,
    },
    Unit {
        path: Vec<String>,
        name: String,
    },
    /// Neither form: an integration test must be `binary::test`.
    Malformed(String),
}

/// The test references of a document, with the line each starts on.
fn references(doc: &str) -> Vec<(usize, Named)> {
    references_in(doc, false)
}

/// [`references`], where names before any `unit:` are unit tests if `unit_by_default`.
fn references_in(doc: &str, unit_by_default: bool) -> Vec<(usize, Named)> {
    let mut out = Vec::new();
    let bytes: Vec<char> = doc.chars().collect();
    let mut i = 0;
    let mut line = 1;
    while i < bytes.len() {
        if bytes[i] == '\n' {
            line += 1;
        }
        if bytes[i] != '[' {
            i += 1;
            continue;
        }
        let Some(len) = bytes[i..].iter().position(|&c| c == ']') else {
            break;
        };
        let span: String = bytes[i + 1..i + len].iter().collect();
        let start_line = line;
        line += span.matches('\n').count();
        i += len + 1;
        // A Markdown link's text, or a bracket without backticked names: not a reference.
        if bytes.get(i) == Some(&'(') || !span.contains('`') {
            continue;
        }
        for part in span.split(';') {
            let part = part.trim();
            let (unit, names) = match part.strip_prefix("unit:") {
                Some(rest) => (true, rest),
                None => (unit_by_default, part),
            };
            for name in names.split('`').skip(1).step_by(2) {
                let mut comps: Vec<String> = name.split("::").map(str::to_string).collect();
                let last = comps.pop().unwrap_or_default();
                let named = if unit {
                    Named::Unit {
                        path: comps,
                        name: last,
                    }
                } else if comps.len() == 1 {
                    Named::Integration {
                        binary: comps.remove(0),
                        name: last,
                    }
                } else {
                    Named::Malformed(name.to_string())
                };
                out.push((start_line, named));
            }
        }
    }
    out
}

fn defines_test(text: &str, name: &str) -> bool {
    text.contains(&format!("fn {name}("))
}

/// Why `named` does not exist, if it does not.
fn missing(named: &Named, sources: &[(PathBuf, String)]) -> Option<String> {
    match named {
        Named::Malformed(name) => Some(format!(
            "`{name}` is not `binary::test` (a unit test needs `unit:` before it)"
        )),
        Named::Integration { binary, name } => {
            let file = root().join("tests").join(format!("{binary}.rs"));
            let Ok(text) = std::fs::read_to_string(&file) else {
                return Some(format!("no test binary tests/{binary}.rs"));
            };
            (name != "*" && !defines_test(&text, name))
                .then(|| format!("tests/{binary}.rs defines no test `{name}`"))
        }
        Named::Unit { path, name } => {
            // The files of the module the path starts with (the whole crate for a bare name).
            let in_module: Vec<&(PathBuf, String)> = match path.first() {
                None => sources.iter().collect(),
                // `m.rs` or a file under a directory `m/`, at any depth of `src/` (documents
                // about one part, such as WINDOWS.md, name modules relative to it).
                Some(m) => sources
                    .iter()
                    .filter(|(p, _)| {
                        let rel = p.strip_prefix(root().join("src")).unwrap_or(p);
                        rel.file_stem().is_some_and(|s| s == m.as_str())
                            || rel
                                .parent()
                                .is_some_and(|d| d.iter().any(|c| c == m.as_str()))
                    })
                    .collect(),
            };
            if in_module.is_empty() {
                return Some(format!("no module `{}` in src/", path.join("::")));
            }
            if name == "*" {
                let last = path.last().map(String::as_str).unwrap_or("tests");
                let has = in_module.iter().any(|(p, t)| {
                    t.contains(&format!("mod {last}")) || p.file_stem().is_some_and(|s| s == last)
                });
                return (!has).then(|| format!("no test module `{}`", path.join("::")));
            }
            (!in_module.iter().any(|(_, t)| defines_test(t, name)))
                .then(|| format!("no unit test `{name}` in `{}`", path.join("::")))
        }
    }
}

/// Checks `doc`; returns one line per reference that names no existing test.
fn check(doc_path: &str, unit_by_default: bool) -> (usize, Vec<String>) {
    let doc = std::fs::read_to_string(root().join(doc_path)).expect("read document");
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let sources: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|p| {
            let t = std::fs::read_to_string(&p).expect("read source");
            (p, t)
        })
        .collect();
    let refs = references_in(&doc, unit_by_default);
    let bad = refs
        .iter()
        .filter_map(|(line, n)| missing(n, &sources).map(|why| format!("{doc_path}:{line}: {why}")))
        .collect();
    (refs.len(), bad)
}

#[test]
fn every_test_the_semantics_name_exists() {
    let (n, bad) = check("docs/SEMANTICS.md", false);
    assert!(
        n > 50,
        "only {n} test references found: the parser lost them"
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn every_test_the_security_and_windows_notes_name_exists() {
    let (n, mut bad) = check("docs/SECURITY.md", false);
    assert!(n >= 10, "only {n} test references in SECURITY.md");
    // WINDOWS.md names the library's tests (most run only under wine) by their bare names.
    let (n, more) = check("docs/WINDOWS.md", true);
    assert!(n >= 10, "only {n} test references in WINDOWS.md");
    bad.extend(more);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn every_section_of_the_semantics_names_a_test() {
    let doc = std::fs::read_to_string(root().join("docs/SEMANTICS.md")).expect("read");
    let mut unbacked = Vec::new();
    // Sections are split at headings; the text before the first heading is the preamble.
    for s in doc.split("\n#").skip(1) {
        let title = s
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches('#')
            .trim();
        let body: String = s.lines().skip(1).collect::<Vec<_>>().join("\n");
        // A heading followed at once by its sub-headings has no rule of its own.
        if body.trim().is_empty() {
            continue;
        }
        if references(&body).is_empty() {
            unbacked.push(title.to_string());
        }
    }
    assert!(unbacked.is_empty(), "sections naming no test: {unbacked:?}");
}

#[test]
fn the_reference_parser_reads_every_form() {
    let refs = references(
        "a [`b::c`, `d::e`] f [unit: `g`, `h::tests::*`;\n`i::j`] [text](link) [plain]\n[`k`]",
    );
    let shown: Vec<String> = refs
        .iter()
        .map(|(l, n)| match n {
            Named::Integration { binary, name } => format!("{l} {binary}::{name}"),
            Named::Unit { path, name } => format!("{l} unit {}::{name}", path.join("::")),
            Named::Malformed(name) => format!("{l} malformed {name}"),
        })
        .collect();
    assert_eq!(
        shown,
        [
            "1 b::c",
            "1 d::e",
            "1 unit ::g",
            "1 unit h::tests::*",
            "1 i::j",
            "3 malformed k"
        ]
    );
    // A name that does not exist is reported.
    let n = Named::Integration {
        binary: "docs".into(),
        name: "no_such_test".into(),
    };
    assert!(missing(&n, &[]).is_some());
    let n = Named::Integration {
        binary: "docs".into(),
        name: "the_reference_parser_reads_every_form".into(),
    };
    assert!(missing(&n, &[]).is_none());
}
