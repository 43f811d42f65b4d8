//! `hfcachefs generate DIR`: the man pages (`DIR/man1/`) and shell completions
//! (`DIR/completions/`) for packaging.
//!
//! Invariant: both are generated from the clap definitions in [`super::args`], never written
//! by hand, so they cannot drift from the binary.

use std::path::Path;

use clap::CommandFactory;

use super::args::Cli;

/// Writes the man pages and the bash, zsh and fish completions under `dir`.
pub(crate) fn generate(dir: &Path) -> Result<(), String> {
    let man = dir.join("man1");
    let comp = dir.join("completions");
    for d in [&man, &comp] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    clap_mangen::generate_to(Cli::command(), &man)
        .map_err(|e| format!("{}: {e}", man.display()))?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut Cli::command(), "hfcachefs", &comp)
            .map_err(|e| format!("{}: {e}", comp.display()))?;
    }
    Ok(())
}
