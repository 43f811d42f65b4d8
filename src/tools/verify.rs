//! `hfcachefs verify`: re-hashes every blob and compares the digest with the blob's name —
//! sha256 for 64-hex names, the git blob sha1 (`"blob <len>\0"` + content) for 40-hex names.
//!
//! A repo blob that links into the shared store is checked through its link: the payload's
//! content must hash to the repo blob's name (payload names are Xet hashes, which are not
//! content digests this tool can recompute). Each real file is read once, however many names
//! reach it; files are hashed on all cores, largest first. Verify changes nothing.
//!
//! Checking and rendering are apart: [`check`] hashes the blobs and computes the
//! [`VerifyReport`] (changing nothing), [`render`] turns a report into text for people;
//! `--json` prints the report itself.
//!
//! Exit 1 if any digest differs from its name, or a blob cannot be read (a dangling blob link,
//! an I/O error). A blob removed while verify runs is not a problem (counted as vanished).

pub mod check;
pub mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

pub use check::verify;
pub use render::text;

use super::{Outcome, Ui, VerifyArgs};

/// Entry point of `hfcachefs verify`.
pub fn main(args: VerifyArgs, default_store: PathBuf) -> ExitCode {
    super::exit(run(args, default_store))
}

fn run(args: VerifyArgs, default_store: PathBuf) -> Result<Outcome, String> {
    let (path, store) = super::open_store(args.store, default_store)?;
    let ui = Ui::new();
    let mut report = verify(&store, &ui, &args.repos, super::threads(args.jobs))?;
    report.store = path.display().to_string();
    super::emit(&report, args.json, text)?;
    let problems = !report.mismatches.is_empty() || !report.errors.is_empty();
    Ok(Outcome::from(problems, report.interrupted))
}

/// The verify report.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    /// The store as given.
    pub store: String,
    /// Repo folders checked.
    pub repos: Vec<String>,
    /// Blob names checked.
    pub names: u64,
    /// Distinct files read.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Names whose content hashes to something else.
    pub mismatches: Vec<Mismatch>,
    /// Blobs that could not be read.
    pub errors: Vec<VerifyError>,
    /// Blobs removed while verify ran.
    pub vanished: Vec<String>,
    /// Shared payloads no blob name reaches (nothing to compare them with).
    pub unchecked: Vec<String>,
    /// Stopped early.
    pub interrupted: bool,
}

/// A blob whose content does not match its name.
#[derive(Debug, Serialize)]
pub struct Mismatch {
    /// The blob name's path.
    pub path: String,
    /// The file holding the content (differs from `path` for links into the shared store).
    pub file: String,
    /// `sha256` or `git-sha1`.
    pub algorithm: &'static str,
    /// The name.
    pub expected: String,
    /// The digest of the content.
    pub actual: String,
    /// Content size.
    pub size: u64,
}

/// A blob that could not be checked.
#[derive(Debug, Serialize)]
pub struct VerifyError {
    /// The blob name's path.
    pub path: String,
    /// Why.
    pub error: String,
}
