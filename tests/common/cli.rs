//! Helpers of the command-line tests (`cli.rs`, `cli_config.rs`): parse a command line as the
//! binary would, and write throwaway config files.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use kcptun::cmd::{
    exit_code, parse_env, CliError, ClientSettings, Command, Endpoint, ServerSettings,
};

pub fn argv(argv0: &str, args: &[&str]) -> Vec<OsString> {
    std::iter::once(argv0)
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect()
}

pub fn run(args: &[&str]) -> Result<Command, CliError> {
    parse_env(argv("kcptun", args), None)
}

pub fn client(args: &[&str]) -> ClientSettings {
    let mut full = vec!["client"];
    full.extend_from_slice(args);
    match run(&full) {
        Ok(Command::Client(c)) => c,
        other => panic!("{args:?}: {other:?}"),
    }
}

pub fn server(args: &[&str]) -> ServerSettings {
    let mut full = vec!["server"];
    full.extend_from_slice(args);
    match run(&full) {
        Ok(Command::Server(s)) => s,
        other => panic!("{args:?}: {other:?}"),
    }
}

/// The usage error of a client command line (panics if it parses or fails otherwise).
pub fn client_err(args: &[&str]) -> String {
    let mut full = vec!["client"];
    full.extend_from_slice(args);
    match run(&full) {
        Err(e @ CliError::Usage(_)) => {
            assert_eq!(exit_code(&e), 2);
            let s = e.to_string();
            assert!(!s.contains('\n'), "one line: {s}");
            s
        }
        other => panic!("{args:?}: expected a usage error, got {other:?}"),
    }
}

pub fn ep(host: &str, lo: u16, hi: u16) -> Endpoint {
    Endpoint {
        host: host.into(),
        port_min: lo,
        port_max: hi,
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh temp dir for this test process.
pub fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "kcptun-cli-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn write(name: &str, text: &str) -> PathBuf {
    let p = temp_dir().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
