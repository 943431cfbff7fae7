//! `dafctl`: the maintenance CLI for dafstore containers. `main` stays thin: parse, dispatch,
//! map errors to exit codes. Each command lives in its own module under `cmd/` and uses only the
//! engine's public API.

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Maintain dafstore containers of memory-mapped arrays.
#[derive(Parser)]
#[command(name = "dafctl", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a dense and a sparse array to a container, reopen them, and show what happened.
    ///
    /// Example: `dafctl demo` (a temporary container, removed at the end) or
    /// `dafctl demo /dev/shm/mydemo` (kept).
    Demo {
        /// Container directory to use (created if missing, kept afterwards). Default: a temporary
        /// directory under /dev/shm (or the system temp dir), removed at the end.
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { dir } => cmd::demo::run(dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dafctl: error: {e}");
            ExitCode::from(1)
        }
    }
}
