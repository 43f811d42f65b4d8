//! The administrators' cache tools: `scan`, `verify`, `dedupe` and `gc`, working directly on a
//! store (not through a mount), safe while mounts and downloads run on other machines.
//!
//! Invariants shared by every tool (the exact rules are in `docs/TOOLS.md`):
//! - **Confinement.** The store is read through [`Store`] (`openat2` beneath the root, no link
//!   ever followed by the OS) and links are resolved by [`crate::resolve::Resolver`]: a link
//!   that leaves the store is reported, never followed.
//! - **Readers never see a missing or partial file.** Every change to a name a client may read
//!   is a single `rename` of a complete entry over it (or of a fresh name into an empty place).
//! - **Nothing a link reaches is deleted**, and nothing modified within `--min-age`.
//! - **Deciding, acting and rendering are apart.** `dedupe` and `gc` make a plan (walking and
//!   hashing, changing nothing), apply it (re-checking each decision against the store as it
//!   is then), and render the report; `--dry-run` renders the plan without applying it.
//!   `scan` and `verify` compute their report (changing nothing) apart from rendering it. The
//!   hub layout's rules (names, manifests, locks, links, temporary names) are
//!   [`crate::hub`]'s, shared with the view.
//! - **Interruptible.** SIGINT/SIGTERM/SIGHUP set a flag that the tools check between entries; the entry
//!   in progress is finished, the partial report is printed and the exit code is 130. A second
//!   signal ends the process at once (at worst a `.hfcachefs-*` temporary is left, which `gc`
//!   removes once stale).
//!
//! Exit codes: 0 done and nothing wrong, 1 problems found (see each tool), 2 usage or I/O error
//! (e.g. the store cannot be opened), 130 interrupted.

pub mod dedupe;
pub mod gc;
pub mod hash;
pub mod inventory;
pub mod scan;
pub mod verify;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::path::StorePath;
use crate::store::{Meta, Store};

/// `hfcachefs scan`.
#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// The store (default: $HF_HUB_CACHE, then $HF_HOME/hub, then ~/.cache/huggingface/hub).
    pub store: Option<PathBuf>,
    /// Machine-readable output (JSON on stdout).
    #[arg(long)]
    pub json: bool,
    /// An .incomplete or temporary file older than this is stale (e.g. 30m, 2h, 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub min_age: Duration,
    /// Hashing threads (default: all cores).
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
}

/// `hfcachefs verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The store (default: $HF_HUB_CACHE, then $HF_HOME/hub, then ~/.cache/huggingface/hub).
    pub store: Option<PathBuf>,
    /// Only this repo: `org/name` (any type), `datasets/org/name`, or the folder name
    /// `models--org--name` (may repeat).
    #[arg(long = "repo", value_name = "ID")]
    pub repos: Vec<String>,
    /// Machine-readable output (JSON on stdout).
    #[arg(long)]
    pub json: bool,
    /// Hashing threads (default: all cores).
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
}

/// `hfcachefs dedupe`.
#[derive(clap::Args, Debug)]
pub struct DedupeArgs {
    /// The store (default: $HF_HUB_CACHE, then $HF_HOME/hub, then ~/.cache/huggingface/hub).
    pub store: Option<PathBuf>,
    /// Report what would be done; change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Machine-readable output (JSON on stdout).
    #[arg(long)]
    pub json: bool,
    /// A copy with no blob is moved into blobs/ only if unmodified for this long (it may still
    /// be being written).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub min_age: Duration,
    /// Hashing threads (default: all cores).
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
}

/// `hfcachefs gc`.
#[derive(clap::Args, Debug)]
pub struct GcArgs {
    /// The store (default: $HF_HUB_CACHE, then $HF_HOME/hub, then ~/.cache/huggingface/hub).
    pub store: Option<PathBuf>,
    /// Report what would be deleted; change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Machine-readable output (JSON on stdout).
    #[arg(long)]
    pub json: bool,
    /// Delete only what was not modified for this long (e.g. 30m, 2h, 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub min_age: Duration,
}

/// How a tool run ended (errors that stop a tool are `Err(String)` instead: exit code 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done, nothing wrong: exit 0.
    Clean,
    /// Done, problems reported: exit 1.
    Problems,
    /// Stopped by SIGINT/SIGTERM/SIGHUP after a partial run: exit 130.
    Interrupted,
}

impl Outcome {
    /// `Problems` if `problems`, else `Clean`; `Interrupted` wins over both.
    pub fn from(problems: bool, interrupted: bool) -> Outcome {
        match (interrupted, problems) {
            (true, _) => Outcome::Interrupted,
            (false, true) => Outcome::Problems,
            (false, false) => Outcome::Clean,
        }
    }
}

/// Turns a tool's result into the process exit code, printing a fatal error on stderr.
pub fn exit(result: Result<Outcome, String>) -> ExitCode {
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Ok(Outcome::Interrupted) => {
            eprintln!("hfcachefs: interrupted; the report above is partial");
            ExitCode::from(130)
        }
        Err(msg) => {
            eprintln!("hfcachefs: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Opens the store given on the command line, or `default` (the same default as `mount`).
pub fn open_store(arg: Option<PathBuf>, default: PathBuf) -> Result<(PathBuf, Store), String> {
    let path = arg.unwrap_or(default);
    let store = Store::open_root(&path).map_err(|e| e.to_string())?;
    Ok((path, store))
}

/// Terminal and signal state of one tool run.
pub struct Ui {
    stop: Arc<AtomicBool>,
    tty: bool,
}

impl Ui {
    /// Registers SIGINT/SIGTERM/SIGHUP: the first sets the stop flag, a second one ends the
    /// process with status 130. SIGHUP is among them because a closed terminal or a careless
    /// logrotate hook must not kill a run without its report. Progress bars are drawn only
    /// when stderr is a terminal.
    pub fn new() -> Ui {
        let stop = Arc::new(AtomicBool::new(false));
        #[cfg(unix)]
        for sig in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            // Order matters: the conditional shutdown sees the flag as it was before this
            // signal, so only a second signal exits.
            let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone());
            let _ = signal_hook::flag::register(sig, stop.clone());
        }
        #[cfg(windows)]
        win_console::register(stop.clone());
        Ui {
            stop,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// A `Ui` that never draws and owns its own flag (tests, library use).
    pub fn quiet() -> Ui {
        Ui {
            stop: Arc::new(AtomicBool::new(false)),
            tty: false,
        }
    }

    /// The stop flag, for workers.
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }

    /// True once SIGINT/SIGTERM/SIGHUP arrived.
    pub fn interrupted(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// A byte-count progress bar (bytes, rate, ETA), hidden when stderr is not a terminal.
    pub fn bytes_bar(&self, total: u64, msg: &str) -> ProgressBar {
        if !self.tty {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template(
            "{msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        pb.set_style(style.progress_chars("=> "));
        pb.set_message(msg.to_string());
        pb
    }

    /// A counting spinner for walks, hidden when stderr is not a terminal.
    pub fn spinner(&self, msg: &str) -> ProgressBar {
        if !self.tty {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template("{spinner} {msg}: {pos} entries ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        pb.set_style(style);
        pb.set_message(msg.to_string());
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    }
}

impl Default for Ui {
    fn default() -> Self {
        Ui::new()
    }
}

/// Number of hashing threads: `--jobs`, else every core.
pub fn threads(jobs: Option<usize>) -> usize {
    jobs.filter(|&n| n > 0).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Parses `--jobs`: 1 or more (0 threads would hash nothing).
pub fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("bad number of jobs '{text}' (use 1 or more)")),
    }
}

/// Parses `30s`, `30m`, `2h`, `7d`, `1w`, combinations such as `1h30m`, and `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("bad duration '{text}' (use e.g. 30m, 2h, 7d, 1h30m, 0)");
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        num.clear();
    }
    if !num.is_empty() || t.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// How long ago `meta` was last modified; zero if in the future (clock skew counts as fresh).
pub fn age(meta: &Meta) -> Duration {
    SystemTime::now()
        .duration_since(meta.mtime)
        .unwrap_or(Duration::ZERO)
}

/// A store path as reports show it: relative to the store root, `/`-separated.
pub fn rel(p: &StorePath) -> String {
    p.as_path().to_string_lossy().into_owned()
}

/// `1 entry`, `2 entries`: a count with its noun in the right number.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Bytes for people (`1.50 MiB`).
pub fn human(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// Prints a report: JSON with `--json`, else the text `human` makes of it.
pub fn emit<T: serde::Serialize>(
    report: &T,
    json: bool,
    human: fn(&T) -> String,
) -> Result<(), String> {
    if json {
        print_json(report)
    } else {
        print!("{}", human(report));
        Ok(())
    }
}

/// Prints a serializable report as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(report: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("45s").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("1w").unwrap(), Duration::from_secs(604_800));
        for bad in ["", "h", "10", "5x", "1.5h", "-1h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jobs_and_counts() {
        assert_eq!(parse_jobs("4"), Ok(4));
        for bad in ["0", "-1", "x", ""] {
            assert!(parse_jobs(bad).is_err(), "{bad}");
        }
        assert_eq!(count(1, "entry", "entries"), "1 entry");
        assert_eq!(count(0, "entry", "entries"), "0 entries");
    }

    #[test]
    fn outcome_precedence() {
        assert_eq!(Outcome::from(true, true), Outcome::Interrupted);
        assert_eq!(Outcome::from(true, false), Outcome::Problems);
        assert_eq!(Outcome::from(false, false), Outcome::Clean);
    }
}

/// Ctrl-C and Ctrl-Break on Windows, with the meaning SIGINT has on Unix: the first sets the
/// stop flag, a second ends the process with status 130.
#[cfg(windows)]
mod win_console {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, OnceLock};

    static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn SetConsoleCtrlHandler(
            handler: Option<unsafe extern "system" fn(u32) -> i32>,
            add: i32,
        ) -> i32;
    }

    unsafe extern "system" fn on_event(_event: u32) -> i32 {
        if let Some(stop) = STOP.get()
            && stop.swap(true, Ordering::SeqCst)
        {
            std::process::exit(130);
        }
        1 // handled: the tool finishes its entry and exits 130 itself
    }

    pub fn register(stop: Arc<AtomicBool>) {
        if STOP.set(stop).is_ok() {
            // SAFETY: `on_event` is a valid handler for the life of the process and touches
            // only the static flag.
            unsafe { SetConsoleCtrlHandler(Some(on_event), 1) };
        }
    }
}
