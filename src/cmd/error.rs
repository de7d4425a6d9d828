//! Errors of the command line: [`CliError`] (parsing and settings) and [`RunError`] (running).
//!
//! Every error renders as one line (no trailing newline); `main` prints it as `kcptun: <line>`.
//! Exit codes: [`CliError::Usage`] → 2, [`CliError::Config`] → 1 (see `docs/cli-errors.md`).

use std::fmt;
use std::path::PathBuf;

/// A command line or configuration that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// Bad flag, bad value, unsupported option, out-of-range setting (from a flag or a config
    /// file): the user must change the invocation. Exit code 2.
    Usage(String),
    /// The config file could not be read or parsed (I/O error, malformed JSON/YAML, a key of the
    /// wrong type). Exit code 1.
    Config { path: PathBuf, msg: String },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) => f.write_str(m),
            CliError::Config { path, msg } => write!(f, "config file {}: {msg}", path.display()),
        }
    }
}

impl std::error::Error for CliError {}

/// Failure of a running subcommand (exit code 1).
#[derive(Debug)]
pub enum RunError {
    /// The subcommand is not connected to the event loop yet.
    NotWired(&'static str),
    /// Any other fatal runtime error, as one line.
    Other(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::NotWired(what) => write!(f, "{what}: not wired yet"),
            RunError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RunError {}
