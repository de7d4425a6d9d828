//! `kcptun` binary: parses the command line ([`kcptun::cmd::parse`]) and runs the command.
//!
//! Errors print one line `kcptun: <error>` to stderr. Exit codes: 0 success (help, version),
//! 2 usage error, 1 config-file or runtime error (see `docs/cli-errors.md`).

use std::process::ExitCode;

use kcptun::cmd::{self, Command};
use kcptun::io::report;

fn main() -> ExitCode {
    let mut command = match cmd::parse(std::env::args_os().collect()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kcptun: {e}");
            return ExitCode::from(cmd::exit_code(&e) as u8);
        }
    };
    // --daemon changes directory to "/": relative paths must not change meaning.
    match &mut command {
        Command::Client(s) if s.common.daemon => s.absolutize_paths(),
        Command::Server(s) if s.common.daemon => s.absolutize_paths(),
        _ => {}
    }
    match command {
        Command::Version => {
            println!("{}", cmd::version_line());
            return ExitCode::SUCCESS;
        }
        Command::Help(text) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Command::Client(ref s) => {
            if let Err(e) = report::init_logging(s.common.log.as_deref(), s.common.quiet) {
                eprintln!("kcptun: {e}");
                return ExitCode::from(1);
            }
            cmd::log_client_settings(s);
        }
        Command::Server(ref s) => {
            if let Err(e) = report::init_logging(s.common.log.as_deref(), s.common.quiet) {
                eprintln!("kcptun: {e}");
                return ExitCode::from(1);
            }
            cmd::log_server_settings(s);
        }
        Command::Bench(_) | Command::Snmp(_) => {}
    }
    match cmd::run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kcptun: {e}");
            ExitCode::from(1)
        }
    }
}
