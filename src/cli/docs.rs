//! Shell completions and man pages, generated from the clap definitions.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, ValueEnum};

use crate::cli::{Cli, sign};

/// One of the project's binaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Binary {
    /// `tekton-spire`.
    TektonSpire,
    /// `tekton-spire-sign`.
    TektonSpireSign,
}

impl Binary {
    fn command(self) -> clap::Command {
        match self {
            Self::TektonSpire => Cli::command(),
            Self::TektonSpireSign => sign::Args::command(),
        }
    }
}

/// Writes `bin`'s completion script for `shell`.
///
/// # Errors
/// When writing fails.
pub fn completions(
    shell: clap_complete::Shell,
    bin: Binary,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut command = bin.command();
    let name = command.get_name().to_owned();
    // clap_complete panics if its writer fails (a closed pipe): generate into memory.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    out.write_all(&script)?;
    out.flush()
}

/// Writes the man pages (section 1) of both binaries and of each `tekton-spire`
/// subcommand into `dir`, creating it; returns the files written.
///
/// # Errors
/// When the directory or a page cannot be written.
pub fn man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for bin in [Binary::TektonSpire, Binary::TektonSpireSign] {
        let mut command = bin.command();
        command.build();
        written.push(page(dir, &command)?);
        for sub in command
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            written.push(page(dir, sub)?);
        }
    }
    Ok(written)
}

fn page(dir: &Path, command: &clap::Command) -> io::Result<PathBuf> {
    // A built subcommand's display name is "<parent>-<sub>", the page's name.
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_owned();
    let path = dir.join(format!("{name}.1"));
    let mut bytes = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut bytes)?;
    // Written whole, through a temporary file: never a partial page.
    let partial = dir.join(format!(".{}.1.partial", command.get_name()));
    std::fs::write(&partial, &bytes)?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}
