//! Rendering a scan report for people: one row per repo and a total, what could be
//! reclaimed, then the details (copies, orphans, temporaries, broken links, errors).
//!
//! Invariant: rendering only reads the report, so the table and `--json` never disagree.

use std::fmt::Write as _;

use super::{AgedItem, BrokenLink, ScanReport, SizedItem, Totals};
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
    // One line format per kind of finding, whether in a repo or the shared store.
    let orphans = |d: &mut String, list: &[SizedItem]| {
        for o in list {
            let _ = writeln!(d, "orphan      {} ({})", o.path, human(o.size));
        }
    };
    let aged = |d: &mut String, label: &str, list: &[AgedItem]| {
        for i in list {
            let stale = if i.stale { "stale" } else { "recent" };
            let _ = writeln!(d, "{label:<11} {} ({}, {stale})", i.path, human(i.size));
        }
    };
    let broken = |d: &mut String, list: &[BrokenLink]| {
        for b in list {
            let _ = writeln!(d, "broken      {} -> {} ({})", b.path, b.target, b.problem);
        }
    };
    for repo in &r.repos {
        for c in &repo.copies {
            let what = match &c.blob {
                Some(b) => format!("= {b}"),
                None => "no blob yet (dedupe moves it into blobs/)".into(),
            };
            let _ = writeln!(details, "copy        {} ({}) {what}", c.path, human(c.size));
        }
        orphans(&mut details, &repo.orphan_blobs);
        aged(&mut details, "incomplete", &repo.incomplete);
        aged(&mut details, "temp", &repo.temp_files);
        broken(&mut details, &repo.broken_links);
    }
    orphans(&mut details, &r.shared.orphans);
    aged(&mut details, "temp", &r.shared.temp_files);
    broken(&mut details, &r.other_broken_links);
    for e in &r.errors {
        let _ = writeln!(details, "error       {}: {}", e.path, e.error);
    }
    if !details.is_empty() {
        s.push('\n');
        s.push_str(&details);
    }
    s
}
