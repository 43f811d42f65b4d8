//! Rendering a verify report for people: a summary line, then each mismatch, error, vanished
//! blob and unchecked payload.
//!
//! Invariant: rendering only reads the report, so the text and `--json` never disagree.

use std::fmt::Write as _;

use super::VerifyReport;
use crate::tools::human;

/// The report for people.
pub fn text(r: &VerifyReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "verified {} blob name(s) in {} file(s), {}, {} repo(s): {} mismatch(es), {} error(s)",
        r.names,
        r.files,
        human(r.bytes),
        r.repos.len(),
        r.mismatches.len(),
        r.errors.len()
    );
    for m in &r.mismatches {
        let via = if m.file != m.path {
            format!(" (content in {})", m.file)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "MISMATCH {}{via}: {} is {}",
            m.path, m.algorithm, m.actual
        );
    }
    for e in &r.errors {
        let _ = writeln!(s, "ERROR    {}: {}", e.path, e.error);
    }
    for v in &r.vanished {
        let _ = writeln!(s, "vanished {v}");
    }
    for u in &r.unchecked {
        let _ = writeln!(s, "unchecked {u} (no blob name reaches this payload)");
    }
    s
}
