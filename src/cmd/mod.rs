//! Subcommands and settings: the command line of `kcptun`, a drop-in for Go kcptun's.
//!
//! `kcptun client|server [flags]` take Go kcptun's flags (`-name` or `--name`, urfave/cli style)
//! and its `-c` JSON config (or YAML), merged once into plain validated [`ClientSettings`] /
//! [`ServerSettings`]. `kcptun bench …` and `kcptun snmp …` are ours. When the program is started
//! under a client or server name (`kcptun-client`, `client_linux_amd64`, …; see [`parse`]) it acts
//! as that subcommand, so it can replace Go's binaries through symlinks.
//!
//! Call order: [`parse`] → on error print `kcptun: {err}` and exit with [`exit_code`]; otherwise
//! [`run`] the [`Command`] (help and version are printed by `main`).

mod args;
pub mod bench;
mod config;
mod endpoint;
mod error;
pub mod launch;
pub mod plugin;
mod printout;
mod settings;
pub mod snmp;

use std::ffi::{OsStr, OsString};
use std::path::Path;

use clap::error::ErrorKind;
use clap::Parser;

pub use args::{
    BenchArgs, BenchCmd, BenchCryptArgs, BenchFecArgs, BenchSessionsArgs, BenchSoakArgs,
    BenchTunnelArgs, SnmpArgs,
};
pub use endpoint::{parse_endpoint, parse_stream_addr, Endpoint, StreamAddr};
pub use error::{CliError, RunError};
pub use plugin::PluginEnv;
pub use printout::{
    client_settings_lines, log_client_settings, log_server_settings, server_settings_lines,
};
pub use settings::{
    check_crypt, ClientSettings, CommonSettings, Mode, NoDelay, ServerSettings, MTU_MAX, MTU_MIN,
};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Client(ClientSettings),
    Server(ServerSettings),
    Bench(BenchArgs),
    Snmp(SnmpArgs),
    /// Print [`version_line`] to stdout, exit 0.
    Version,
    /// Print this help text to stdout, exit 0.
    Help(String),
}

/// `kcptun version <ver>` (LuCI and scripts look for "kcptun").
pub fn version_line() -> String {
    format!("kcptun version {}", env!("CARGO_PKG_VERSION"))
}

const TOP_HELP: &str = "\
kcptun: a KCP-over-UDP TCP tunnel, wire-compatible with Go kcptun

Usage: kcptun <COMMAND> [FLAGS]

Commands:
  client   listen on TCP, tunnel connections to a kcptun server
  server   accept tunnels, forward connections to a TCP target
  bench    measure this build (tunnel, crypt, fec, soak)
  snmp     show counters of a running kcptun (via --ctl) or of a --snmplog file

Run `kcptun <COMMAND> -h` for its flags. Named kcptun-client or kcptun-server (e.g. through a
symlink), kcptun acts as that command.

  -h, --help     print this help
  -v, --version  print the version
";

/// The subcommand implied by the program name, if any: `kcptun-client`, `kcptun_client`,
/// `client`, `client_<anything>` (Go release names like `client_linux_amd64`), same for server;
/// a trailing `.exe` is ignored.
fn multicall(argv0: &OsStr) -> Option<&'static str> {
    let base = Path::new(argv0).file_name()?.to_str()?;
    let base = base.strip_suffix(".exe").unwrap_or(base);
    for sub in ["client", "server"] {
        let hit = base == sub
            || base.starts_with(&format!("{sub}_"))
            || base.strip_prefix("kcptun").is_some_and(|r| {
                r.strip_prefix(['-', '_'])
                    .is_some_and(|r| r == sub || r.starts_with(&format!("{sub}_")))
            });
        if hit {
            return Some(sub);
        }
    }
    None
}

/// Parses the whole argv (argv[0] included), reading `KCPTUN_KEY` and the SIP003 plugin
/// variables (`SS_REMOTE_HOST`, …; see [`plugin`]) from the environment.
pub fn parse(argv: Vec<OsString>) -> Result<Command, CliError> {
    parse_with(
        argv,
        std::env::var_os("KCPTUN_KEY"),
        PluginEnv::from_env().as_ref(),
    )
}

/// [`parse`] with the value of `KCPTUN_KEY` given explicitly and no plugin environment (for
/// tests).
pub fn parse_env(argv: Vec<OsString>, key_env: Option<OsString>) -> Result<Command, CliError> {
    parse_with(argv, key_env, None)
}

/// [`parse`] with `KCPTUN_KEY` and the SIP003 variables given explicitly. With `plugin` set and
/// none of `-l/-r/-t` on the command line, kcptun runs as a shadowsocks plugin.
pub fn parse_with(
    argv: Vec<OsString>,
    key_env: Option<OsString>,
    plugin: Option<&PluginEnv>,
) -> Result<Command, CliError> {
    let mut it = argv.into_iter();
    let argv0 = it.next().unwrap_or_default();
    let mut rest: Vec<OsString> = it.collect();
    let sub = match multicall(&argv0) {
        // urfave's built-in `help`/`h` command
        Some(s) if rest.len() == 1 && (rest[0] == "help" || rest[0] == "h") => {
            let text = args::side_command(s == "client").render_help().to_string();
            return Ok(Command::Help(text));
        }
        Some(s) => s.to_string(),
        None => {
            // shadowsocks-libev starts plugins without arguments; shadowsocks-rust may pass
            // flags (its plugin_args) to a plain `kcptun`
            let flags_only = rest.first().and_then(|a| a.to_str()).map_or(true, |a| {
                a.starts_with('-')
                    && !["-h", "--help", "-help", "-v", "--version", "-version"].contains(&a)
            });
            if let (true, Some(env)) = (flags_only, plugin) {
                return plugin_command(env, None, rest, key_env);
            }
            if rest.is_empty() {
                return Err(CliError::Usage(
                    "missing command: use `kcptun client`, `kcptun server`, `kcptun bench` or `kcptun snmp` (see kcptun -h)".into(),
                ));
            }
            let first = rest.remove(0);
            first.to_string_lossy().into_owned()
        }
    };
    match sub.as_str() {
        "client" | "server" => {
            let client = sub == "client";
            let cmd = args::side_command(client);
            let m = clap_parse(cmd, &sub, rest.clone())?;
            let m = match m {
                Ok(m) => m,
                Err(c) => return Ok(c),
            };
            if m.get_flag("version") {
                return Ok(Command::Version);
            }
            let addressed = ["localaddr", "remoteaddr", "listen", "target"]
                .iter()
                .any(|n| m.try_get_one::<String>(n).ok().flatten().is_some());
            if let (false, Some(env)) = (addressed, plugin) {
                return plugin_command(env, Some(client), rest, key_env);
            }
            if client {
                settings::resolve_client(&m, key_env).map(Command::Client)
            } else {
                settings::resolve_server(&m, key_env).map(Command::Server)
            }
        }
        "bench" => {
            derive_parse::<BenchArgs>(&sub, rest).map(|r| r.map_or_else(|c| c, Command::Bench))
        }
        "snmp" => match derive_parse::<SnmpArgs>(&sub, rest)? {
            Ok(a) => snmp::check_args(&a).map(|()| Command::Snmp(a)),
            Err(c) => Ok(c),
        },
        "-v" | "--version" | "-version" | "version" => Ok(Command::Version),
        "-h" | "--help" | "-help" | "help" => Ok(Command::Help(TOP_HELP.to_string())),
        other => Err(CliError::Usage(format!(
            "unknown command {other:?}: use client, server, bench or snmp (see kcptun -h)"
        ))),
    }
}

/// SIP003 plugin mode: the command line (`rest`, without `-l/-r/-t`), then the options of
/// `SS_PLUGIN_OPTIONS` as flags, then the addresses from the `SS_*` variables, resolved like
/// any command line. `client`: the role from the subcommand or program name; `None`: from the
/// options (a bare `server` key), else client.
fn plugin_command(
    env: &PluginEnv,
    client: Option<bool>,
    rest: Vec<OsString>,
    key_env: Option<OsString>,
) -> Result<Command, CliError> {
    let opts = plugin::parse_options(env.options.as_deref().unwrap_or(""))?;
    let client = client.or(plugin::role_in(&opts)).unwrap_or(true);
    let sub = if client { "client" } else { "server" };
    let (remote, local) = (env.addr(true)?, env.addr(false)?);
    let mut argv = rest;
    argv.extend(plugin::option_args(&opts, client)?);
    let in_opts = |e: CliError| match e {
        CliError::Usage(m) => CliError::Usage(format!("SS_PLUGIN_OPTIONS: {m}")),
        e => e,
    };
    let m = match clap_parse(args::side_command(client), sub, argv).map_err(in_opts)? {
        Ok(m) => m,
        Err(c) => return Ok(c),
    };
    // The addresses are set after resolution so that a config file (`c=…`) cannot move them.
    if client {
        let mut s = settings::resolve_client(&m, key_env).map_err(in_opts)?;
        s.localaddr = parse_stream_addr(&local).map_err(|e| plugin_addr_err("SS_LOCAL", e))?;
        s.remoteaddr =
            parse_endpoint(&remote, false).map_err(|e| plugin_addr_err("SS_REMOTE", e))?;
        s.common.plugin = true;
        Ok(Command::Client(s))
    } else {
        let mut s = settings::resolve_server(&m, key_env).map_err(in_opts)?;
        s.listen = parse_endpoint(&remote, false).map_err(|e| plugin_addr_err("SS_REMOTE", e))?;
        s.target = parse_stream_addr(&local).map_err(|e| plugin_addr_err("SS_LOCAL", e))?;
        s.common.plugin = true;
        Ok(Command::Server(s))
    }
}

fn plugin_addr_err(var: &str, e: String) -> CliError {
    CliError::Usage(format!(
        "plugin mode: {var}_HOST/{var}_PORT do not form an address: {e}"
    ))
}

/// The whole command line as one clap command (`kcptun` with the subcommands client, server,
/// bench and snmp), for man pages and shell completions. Parsing does not go through it: see
/// [`parse`] (multi-call names, urfave-style `-flag` spellings).
pub fn clap_command() -> clap::Command {
    use clap::CommandFactory;
    clap::Command::new("kcptun")
        .version(env!("CARGO_PKG_VERSION"))
        .about("a KCP-over-UDP TCP tunnel, wire-compatible with Go kcptun")
        .long_about(
            "kcptun tunnels TCP connections over KCP on UDP, wire-compatible with Go kcptun: \
             the client listens on TCP and carries each connection as a stream of a KCP session \
             to the server, which forwards it to its target. Flags may also be spelled with one \
             dash (-mtu 1400), as Go kcptun accepts. Started under the name kcptun-client or \
             kcptun-server (for example through a symlink), kcptun acts as that command.",
        )
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .subcommand_required(true)
        .arg(
            clap::Arg::new("version")
                .short('v')
                .long("version")
                .action(clap::ArgAction::Version)
                .help("print the version"),
        )
        .subcommand(args::side_command(true))
        .subcommand(args::side_command(false))
        .subcommand(
            BenchArgs::command()
                .about("measure this build: tunnel, sessions, cipher and FEC throughput; soak"),
        )
        .subcommand(SnmpArgs::command())
}

/// Runs clap on a rewritten argv. `Ok(Err(cmd))`: clap asked to show help/version.
fn clap_parse(
    cmd: clap::Command,
    sub: &str,
    rest: Vec<OsString>,
) -> Result<Result<clap::ArgMatches, Command>, CliError> {
    let mut full = vec![OsString::from(sub)];
    full.extend(args::rewrite(&cmd, rest));
    match cmd.try_get_matches_from(full) {
        Ok(m) => Ok(Ok(m)),
        Err(e) => clap_error(e).map(Err),
    }
}

fn derive_parse<T: Parser + clap::CommandFactory>(
    sub: &str,
    rest: Vec<OsString>,
) -> Result<Result<T, Command>, CliError> {
    let cmd = T::command();
    let mut full = vec![OsString::from(sub)];
    full.extend(args::rewrite(&cmd, rest));
    match T::try_parse_from(full) {
        Ok(t) => Ok(Ok(t)),
        Err(e) => clap_error(e).map(Err),
    }
}

/// Help/version requests become commands; real clap errors become one-line usage errors.
fn clap_error(e: clap::Error) -> Result<Command, CliError> {
    match e.kind() {
        ErrorKind::DisplayHelp => Ok(Command::Help(e.render().to_string())),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => Err(CliError::Usage(
            "missing subcommand: `kcptun bench tunnel|crypt|fec|soak` (see -h)".into(),
        )),
        ErrorKind::DisplayVersion => Ok(Command::Version),
        _ => {
            // The message, with what clap lists on the lines below it (e.g. the required
            // arguments that are missing), up to the usage block.
            let text = e.render().to_string();
            let parts: Vec<&str> = text
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            let msg = parts.join(" ");
            let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
            let msg = if msg.is_empty() {
                "invalid command line"
            } else {
                msg
            };
            Err(CliError::Usage(format!("{msg} (see -h)")))
        }
    }
}

/// Process exit code for an error: 2 for usage errors, 1 for config-file errors.
pub fn exit_code(e: &CliError) -> i32 {
    match e {
        CliError::Usage(_) => 2,
        CliError::Config { .. } => 1,
    }
}

/// Runs a client, server, bench or snmp command.
pub fn run(cmd: Command) -> Result<(), RunError> {
    match cmd {
        Command::Client(s) => launch::run_client(&s),
        Command::Server(s) => launch::run_server(&s),
        Command::Bench(b) => bench::run_bench(&b),
        Command::Snmp(a) => snmp::run(&a),
        Command::Version | Command::Help(_) => Ok(()),
    }
}
