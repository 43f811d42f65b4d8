//! Rendering a scan report for people: one row per repo and a total, what could be
//! reclaimed, then the details (copies, orphans, temporaries, broken links, errors).
//!
//! Invariant: rendering only reads the report, so the table and `--json` never disagree.

use std::fmt::Write as _;

use super::{ScanReport, Totals};
use crate::tools::human;

/// The table for people.
pub fn table(r: &ScanReport) -> String {
    let mut s = String::new();
    if r.repos.is_empty() {
        // Said first: a mistyped store path (or one that is no hub cache) otherwise shows up
        // only as a table of zeros and many "broken links".
        let _ = writeln!(
            s,
            "no repos found in {} (no models--*, datasets--* or spaces--* folders): is it a \
             Hugging Face hub cache?",
            r.store
        );
    }
    // The name column is as wide as the longest repo id, so long names keep the columns
    // aligned instead of pushing the rest of their row out of line.
    let w = r
        .repos
        .iter()
        .map(|repo| repo.repo_id.chars().count())
        .max()
        .unwrap_or(0)
        .max(32);
    let _ = writeln!(
        s,
        "{:<w$} {:<7} {:>4} {:>6} {:>12} {:>12} {:>7} {:>6} {:>7} {:>10} {:>6}  REFS",
        "REPO",
        "TYPE",
        "REVS",
        "FILES",
        "LOGICAL",
        "PHYSICAL",
        "RATIO",
        "COPIES",
        "ORPHANS",
        "INCOMPLETE",
        "BROKEN"
    );
    let row = |s: &mut String, name: &str, kind: &str, t: &Totals, refs: &str| {
        let line = format!(
            "{:<w$} {:<7} {:>4} {:>6} {:>12} {:>12} {:>6.2}x {:>6} {:>7} {:>10} {:>6}  {}",
            name,
            kind,
            t.revisions,
            t.files,
            human(t.logical_bytes),
            human(t.physical_bytes),
            t.dedup_ratio,
            t.copies,
            t.orphans,
            t.incomplete,
            t.broken_links,
            refs
        );
        let _ = writeln!(s, "{}", line.trim_end());
    };
    for repo in &r.repos {
        let refs: Vec<&str> = repo.refs.keys().map(String::as_str).collect();
        row(
            &mut s,
            &repo.repo_id,
            &repo.repo_type,
            &repo.totals,
            &refs.join(", "),
        );
    }
    row(&mut s, "TOTAL", "", &r.total, "");
    if r.shared.marked {
        let _ = writeln!(
            s,
            "shared blob store: {} payload(s), {}, {} orphan(s)",
            r.shared.payloads,
            human(r.shared.bytes),
            r.shared.orphans.len()
        );
    }
    let _ = writeln!(
        s,
        "reclaimable: {} by dedupe, {} by gc ({} in orphans, {} in stale temporary files)",
        human(r.total.dedupe_reclaimable_bytes),
        human(r.total.orphan_bytes + r.total.stale_bytes),
        human(r.total.orphan_bytes),
        human(r.total.stale_bytes)
    );
    let mut details = String::new();
    for repo in &r.repos {
        for c in &repo.copies {
            let what = match &c.blob {
                Some(b) => format!("= {b}"),
                None => "no blob yet (dedupe moves it into blobs/)".into(),
            };
            let _ = writeln!(details, "copy        {} ({}) {what}", c.path, human(c.size));
        }
        for o in &repo.orphan_blobs {
            let _ = writeln!(details, "orphan      {} ({})", o.path, human(o.size));
        }
        for (label, list) in [("incomplete", &repo.incomplete), ("temp", &repo.temp_files)] {
            for i in list {
                let stale = if i.stale { "stale" } else { "recent" };
                let _ = writeln!(
                    details,
                    "{label:<11} {} ({}, {stale})",
                    i.path,
                    human(i.size)
                );
            }
        }
        for b in &repo.broken_links {
            let _ = writeln!(
                details,
                "broken      {} -> {} ({})",
                b.path, b.target, b.problem
            );
        }
    }
    for o in &r.shared.orphans {
        let _ = writeln!(details, "orphan      {} ({})", o.path, human(o.size));
    }
    for i in &r.shared.temp_files {
        let stale = if i.stale { "stale" } else { "recent" };
        let _ = writeln!(
            details,
            "temp        {} ({}, {stale})",
            i.path,
            human(i.size)
        );
    }
    for b in &r.other_broken_links {
        let _ = writeln!(
            details,
            "broken      {} -> {} ({})",
            b.path, b.target, b.problem
        );
    }
    for e in &r.errors {
        let _ = writeln!(details, "error       {}: {}", e.path, e.error);
    }
    if !details.is_empty() {
        s.push('\n');
        s.push_str(&details);
    }
    s
}
