//! Command-line grammar: the flag table shared by flags and config files, the clap commands built
//! from it, and the urfave/cli-compatible argv rewrite.
//!
//! Go kcptun uses urfave/cli v1, where every flag is spelled `-name` or `--name`, bool flags take
//! `--flag` or `--flag=true|false`, and a value flag takes the next argument whatever it looks like
//! (`-key -secret-` sets the key to `-secret-`). clap only knows `--name`, so [`rewrite`] turns a
//! single-dash multi-letter token naming a known long flag into its double-dash form, leaving alone
//! a lone `-`, everything after `--`, and any token that is the value of the previous flag.
//!
//! Client and server flags are one table ([`SPECS`]): name, aliases, kind, JSON key, defaults per
//! side. The settings resolver reads the same table, so a flag, its config key and its default can
//! never drift apart. Every value is collected as a string here and typed by the resolver, which
//! owns the error messages.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, Command};

use super::bench::path::PathSpec;

/// Value kind of a flag / config key (Go's `string`, `int`, `bool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Int,
    Bool,
}

/// Which subcommand(s) a flag belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
    Both,
}

impl Side {
    pub(crate) fn has(self, client: bool) -> bool {
        match self {
            Side::Both => true,
            Side::Client => client,
            Side::Server => !client,
        }
    }
}

/// One flag of the client or server.
#[derive(Debug)]
pub(crate) struct Spec {
    /// Long flag name as Go spells it (case-sensitive: `QPPCount`).
    pub name: &'static str,
    /// Further long names (`ds` for `datashard`).
    pub aliases: &'static [&'static str],
    pub short: Option<char>,
    pub kind: Kind,
    pub side: Side,
    /// Key in a JSON/YAML config file (matched case-insensitively); `None`: not settable there.
    pub json: Option<&'static str>,
    /// Defaults as text, parsed like a flag value; `""` for a string means "unset".
    pub def_client: &'static str,
    pub def_server: &'static str,
    pub hidden: bool,
    pub help: &'static str,
}

impl Spec {
    pub(crate) fn default_for(&self, client: bool) -> &'static str {
        if client {
            self.def_client
        } else {
            self.def_server
        }
    }
}

const fn spec(
    name: &'static str,
    kind: Kind,
    side: Side,
    def_client: &'static str,
    def_server: &'static str,
    help: &'static str,
) -> Spec {
    Spec {
        name,
        aliases: &[],
        short: None,
        kind,
        side,
        json: Some(name),
        def_client,
        def_server,
        hidden: false,
        help,
    }
}

const fn both(name: &'static str, kind: Kind, def: &'static str, help: &'static str) -> Spec {
    spec(name, kind, Side::Both, def, def, help)
}

const fn hidden(s: Spec) -> Spec {
    Spec { hidden: true, ..s }
}

use Kind::{Bool, Int, Str};

/// The client and server flags of Go kcptun (latest), plus ours (`ctl`, `metrics`, `daemon`,
/// `pidfile`, `halfclose`). `-c` is handled separately (it is not a config key).
pub(crate) static SPECS: &[Spec] = &[
    Spec {
        short: Some('l'),
        ..spec("localaddr", Str, Side::Client, ":12948", "", "local listen address: host:port, or a unix socket path")
    },
    Spec {
        short: Some('r'),
        ..spec("remoteaddr", Str, Side::Client, "vps:29900", "", "kcp server address: host:port or host:min-max")
    },
    Spec {
        short: Some('l'),
        ..spec("listen", Str, Side::Server, "", ":29900", "kcp server listen address: host:port or host:min-max")
    },
    Spec {
        short: Some('t'),
        ..spec("target", Str, Side::Server, "", "127.0.0.1:12948", "target server address, or a unix socket path")
    },
    both("key", Str, "it's a secrect", "pre-shared secret between client and server [env: KCPTUN_KEY]"),
    both("crypt", Str, "aes", "aes, aes-128, aes-192, aes-128-gcm, salsa20, blowfish, twofish, cast5, 3des, tea, xtea, xor, sm4, none, null"),
    both("mode", Str, "fast", "profiles: fast3, fast2, fast, normal, manual"),
    Spec { json: Some("qpp"), ..both("QPP", Bool, "false", "enable Quantum Permutation Pads on stream payloads") },
    Spec { json: Some("qpp-count"), ..both("QPPCount", Int, "61", "number of QPP pads (a prime is best)") },
    spec("conn", Int, Side::Client, "1", "", "number of UDP sessions to the server"),
    spec("autoexpire", Int, Side::Client, "0", "", "seconds a session takes new connections, 0: forever"),
    spec("scavengettl", Int, Side::Client, "600", "", "seconds an expired session may still live"),
    both("mtu", Int, "1350", "maximum UDP payload in bytes"),
    both("ratelimit", Int, "0", "bytes per second per session, 0: unlimited"),
    spec("sndwnd", Int, Side::Both, "128", "1024", "send window (packets)"),
    spec("rcvwnd", Int, Side::Both, "512", "1024", "receive window (packets)"),
    Spec { aliases: &["ds"], ..both("datashard", Int, "10", "Reed-Solomon data shards") },
    Spec { aliases: &["ps"], ..both("parityshard", Int, "3", "Reed-Solomon parity shards") },
    both("dscp", Int, "0", "DSCP (6 bits)"),
    both("nocomp", Bool, "false", "disable compression"),
    hidden(both("acknodelay", Bool, "false", "flush ACKs immediately")),
    both("delaywnd", Bool, "false", "size the send window by queueing delay: short queues behind a bottleneck link (costs goodput on paths without one, most under heavy random loss)"),
    hidden(both("nodelay", Int, "0", "manual mode: nodelay")),
    hidden(both("interval", Int, "50", "manual mode: interval (ms)")),
    hidden(both("resend", Int, "0", "manual mode: fast resend")),
    hidden(both("nc", Int, "0", "manual mode: no congestion control")),
    both("sockbuf", Int, "4194304", "per-socket buffer in bytes"),
    spec("smuxver", Int, Side::Both, "2", "", "smux version, 1 or 2 (server default: detect per session)"),
    both("smuxbuf", Int, "4194304", "overall de-mux buffer in bytes"),
    both("framesize", Int, "8192", "smux max frame size"),
    both("streambuf", Int, "2097152", "per-stream receive buffer in bytes (smux v2)"),
    both("keepalive", Int, "10", "seconds between heartbeats"),
    spec("closewait", Int, Side::Both, "0", "30", "seconds to wait before closing both sides of a connection"),
    both("halfclose", Int, "120", "seconds a half-closed connection may stay idle, 0: forever"),
    both("snmplog", Str, "", "collect SNMP to this CSV file (Go time layout in the name)"),
    both("snmpperiod", Int, "60", "SNMP collect period in seconds"),
    both("log", Str, "", "log to this file instead of stderr"),
    both("quiet", Bool, "false", "suppress the 'stream open/close' messages"),
    both("ctl", Str, "", "control socket path (for `kcptun snmp`)"),
    both("metrics", Str, "", "serve Prometheus metrics at http://ADDR/metrics (host:port)"),
    both("daemon", Bool, "false", "detach and run in the background"),
    both("pidfile", Str, "", "write the process id to this file"),
    hidden(both("tcp", Bool, "false", "not supported (fake-TCP transport)")),
    hidden(both("pprof", Bool, "false", "not supported (Go profiler)")),
];

/// How the client and server behave as a shadowsocks plugin (shown after their flags).
const PLUGIN_HELP: &str = "\
Shadowsocks plugin (SIP003): with SS_REMOTE_HOST set and none of -l/-r/-t, the client listens on \
SS_LOCAL_HOST:SS_LOCAL_PORT and dials SS_REMOTE_HOST:SS_REMOTE_PORT; the server listens on \
SS_REMOTE_* and forwards to SS_LOCAL_*. SS_PLUGIN_OPTIONS (--plugin-opts) holds key=value;key2 \
with the flag names as keys (a bare key means true, backslash escapes ; = and \\). A plain \
`kcptun` is a server when the options hold `server`. The plugin stops when its parent is gone.";

/// Builds the clap command of `kcptun client` (`client == true`) or `kcptun server`.
pub(crate) fn side_command(client: bool) -> Command {
    let (name, about) = if client {
        (
            "client",
            "kcptun client: TCP listener tunnelled over KCP/UDP to a kcptun server",
        )
    } else {
        (
            "server",
            "kcptun server: accepts KCP/UDP sessions and forwards streams to a TCP target",
        )
    };
    let mut cmd = Command::new(name)
        .bin_name(format!("kcptun {name}"))
        .about(about)
        .disable_version_flag(true)
        .args_override_self(true)
        .after_help(PLUGIN_HELP)
        .arg(
            Arg::new("version")
                .short('v')
                .long("version")
                .action(ArgAction::SetTrue)
                .help("print the version"),
        )
        .arg(
            Arg::new("c")
                .short('c')
                .long("c")
                .visible_alias("config")
                .value_name("FILE")
                .num_args(1)
                .allow_hyphen_values(true)
                .value_parser(clap::value_parser!(PathBuf))
                .value_hint(clap::ValueHint::FilePath)
                .help("config from a JSON (or .yaml/.yml) file, overriding the command line"),
        );
    for s in SPECS.iter().filter(|s| s.side.has(client)) {
        let def = s.default_for(client);
        let help = if def.is_empty() || s.kind == Bool {
            s.help.to_string()
        } else {
            format!("{} [default: {def:?}]", s.help)
        };
        let mut a = Arg::new(s.name).long(s.name).help(help).hide(s.hidden);
        for al in s.aliases {
            a = a.visible_alias(*al);
        }
        if let Some(ch) = s.short {
            // urfave also takes `--l`; clap's names are `&'static str`
            let long: &'static str = match ch {
                'l' => "l",
                'r' => "r",
                't' => "t",
                _ => unreachable!("short flags are l, r, t"),
            };
            a = a.short(ch).alias(long);
        }
        a = match s.kind {
            Bool => a
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .value_name("BOOL")
                .action(ArgAction::Set),
            Int | Str => a
                .num_args(1)
                .allow_hyphen_values(true)
                .value_name("VALUE")
                .action(ArgAction::Set),
        };
        // for shell completion: these take a file name
        if matches!(s.name, "log" | "pidfile" | "snmplog" | "ctl") {
            a = a.value_hint(clap::ValueHint::FilePath);
        }
        cmd = cmd.arg(a);
    }
    cmd
}

// ---------------------------------------------------------------------------------------------
// bench and snmp (parsing only; the implementations live elsewhere)

/// `kcptun bench …`: measurements of this build.
#[derive(Debug, Clone, PartialEq, Eq, clap::Parser)]
#[command(name = "bench", bin_name = "kcptun bench", disable_version_flag = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: BenchCmd,
}

/// What `kcptun bench` measures.
// Parsed once per process: the size of the larger variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum BenchCmd {
    /// A loopback tunnel end to end: our client and server as child processes (--vs-go: and Go's).
    Tunnel(BenchTunnelArgs),
    /// Cipher throughput, every method.
    Crypt(BenchCryptArgs),
    /// FEC encoder/decoder throughput.
    Fec(BenchFecArgs),
    /// Client + server for a while through a lossy path with connection churn; RSS and fds.
    Soak(BenchSoakArgs),
    /// Memory and idle CPU per session: N sessions, idle and after traffic (--vs-go: and Go's).
    Sessions(BenchSessionsArgs),
}

/// `kcptun bench tunnel`: our client and server as child processes on loopback, an embedded
/// TCP target, incompressible data each way. With `--vs-go` and no tuning or path flag, both
/// issue configurations run: (a) fast3, aes, FEC 10/3 and (b) fast3, crypt none, FEC off.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BenchTunnelArgs {
    /// Cipher (same names as `--crypt` of client/server).
    #[arg(long, default_value = "aes", value_parser = parse_crypt_arg)]
    pub crypt: String,
    /// Mode profile: normal, fast, fast2, fast3.
    #[arg(long, default_value = "fast3", value_parser = parse_mode_arg)]
    pub mode: String,
    /// FEC data shards.
    #[arg(long = "ds", visible_alias = "datashard", default_value_t = 10)]
    pub datashard: u16,
    /// FEC parity shards.
    #[arg(long = "ps", visible_alias = "parityshard", default_value_t = 3)]
    pub parityshard: u16,
    /// Disable compression (the default for the bench: the data is incompressible).
    #[arg(long)]
    pub nocomp: bool,
    /// Enable snappy compression (off by default in the bench).
    #[arg(long, conflicts_with = "nocomp")]
    pub comp: bool,
    /// KCP send window (segments), both sides.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub sndwnd: u32,
    /// KCP receive window (segments), both sides.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub rcvwnd: u32,
    /// Seconds of bulk transfer in each direction.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,
    /// Also run the Go binaries (/usr/bin/kcptun-client, -server) and compare.
    #[arg(long = "vs-go")]
    pub vs_go: bool,
    /// Also measure how long a new connection through the client takes to be answered after
    /// the server is killed and restarted.
    #[arg(long)]
    pub restart: bool,
    /// Run through an emulated path, both directions, e.g.
    /// "delay=20ms,jitter=2ms,loss=2%,rate=100mbit,queue=1mb,reorder=1%" (keys: delay, jitter,
    /// loss, burst, rate, queue, reorder).
    #[arg(long, value_name = "SPEC", value_parser = parse_path_arg)]
    pub path: Option<PathSpec>,
    /// The path from client to server only (overrides --path for that direction).
    #[arg(long = "path-up", value_name = "SPEC", value_parser = parse_path_arg)]
    pub path_up: Option<PathSpec>,
    /// The path from server to client only (overrides --path for that direction).
    #[arg(long = "path-down", value_name = "SPEC", value_parser = parse_path_arg)]
    pub path_down: Option<PathSpec>,
    /// With --vs-go, also run the mixed pairs: our client with Go's server ("ours-Go") and Go's
    /// client with our server ("Go-ours").
    #[arg(long, requires = "vs_go")]
    pub mixed: bool,
    /// Run our client and server with --delaywnd (the send window sized by queueing delay).
    #[arg(long)]
    pub delaywnd: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The path of a soak run unless --path says otherwise: a 40 ms RTT with loss and reordering,
/// limited to 40 Mbit/s so the churn fills the link without taking a 2-core machine's CPU.
pub const SOAK_PATH: &str = "delay=20ms,jitter=2ms,loss=1%,reorder=1%,rate=40mbit,queue=256kb";

/// `kcptun bench soak`: our client and server as child processes for a while, through an
/// emulated lossy path, with connections opened, used (checked data both ways) and closed
/// continuously; RSS and open fds of both sampled; fails on fd growth, RSS growth above
/// --max-rss-growth, corrupted data or connection errors above 0.1 %.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BenchSoakArgs {
    /// How long to run, in minutes (fractions allowed, e.g. 0.5).
    #[arg(long, value_name = "N", value_parser = parse_minutes_arg, conflicts_with = "seconds")]
    pub minutes: Option<Duration>,
    /// How long to run, in seconds (default: 10 minutes).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(10..=604_800))]
    pub seconds: Option<u64>,
    /// Seconds between samples of RSS and open fds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval: u64,
    /// Fail if RSS grows more than this many percent after warm-up (client or server).
    #[arg(long = "max-rss-growth", value_name = "PCT", default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub max_rss_growth: u32,
    /// Connections kept busy at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: u32,
    /// The emulated path, both directions (see bench tunnel --path).
    #[arg(long, value_name = "SPEC", default_value = SOAK_PATH, value_parser = parse_path_arg)]
    pub path: PathSpec,
    /// The path from client to server only (overrides --path for that direction).
    #[arg(long = "path-up", value_name = "SPEC", value_parser = parse_path_arg)]
    pub path_up: Option<PathSpec>,
    /// The path from server to client only (overrides --path for that direction).
    #[arg(long = "path-down", value_name = "SPEC", value_parser = parse_path_arg)]
    pub path_down: Option<PathSpec>,
}

impl BenchSoakArgs {
    /// The run's length: --minutes, --seconds, else 10 minutes.
    pub fn duration(&self) -> Duration {
        self.minutes
            .or(self.seconds.map(Duration::from_secs))
            .unwrap_or(Duration::from_secs(600))
    }
}

/// `kcptun bench sessions N`: a server and clients with `--conn` adding up to N, one echoed
/// connection per session; RSS per session idle, after traffic and once quiet, and idle CPU.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BenchSessionsArgs {
    /// Sessions (and connections, one per session).
    #[arg(default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub sessions: u32,
    /// Bytes echoed through every connection in each direction after the idle reading.
    #[arg(long, default_value_t = 262_144, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub bytes: u64,
    /// Most sessions per client process (--conn of each client).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub per_client: u32,
    /// Internal: run only the echo target and print its address (the bench starts one such
    /// child so that the connections' two ends are spread over two open-files limits).
    #[arg(long, hide = true)]
    pub echo_target: bool,
    /// The kcptun binary measured as "ours" (default: this one), e.g. an older build to compare.
    #[arg(long, value_name = "PATH")]
    pub ours: Option<std::path::PathBuf>,
    /// Also run the Go binaries (/usr/bin/kcptun-client, -server) and compare.
    #[arg(long = "vs-go")]
    pub vs_go: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `kcptun bench crypt`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BenchCryptArgs {
    /// Bytes per encrypted datagram.
    #[arg(long, default_value_t = 1350, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub size: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `kcptun bench fec`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BenchFecArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `kcptun snmp`: reads the counters of a running kcptun (through `--ctl`) or a `--snmplog` CSV.
#[derive(Debug, Clone, PartialEq, Eq, clap::Parser)]
#[command(
    name = "snmp",
    bin_name = "kcptun snmp",
    about = "show the counters of a running kcptun (through its --ctl socket) or summarise a --snmplog CSV file",
    disable_version_flag = true,
    after_help = SNMP_EXAMPLES
)]
pub struct SnmpArgs {
    /// Control socket of a running kcptun client or server (the PATH given to its --ctl)
    #[arg(long, value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    pub ctl: Option<PathBuf>,
    /// With --ctl: redraw the rates every second until interrupted
    #[arg(long)]
    pub watch: bool,
    /// Print JSON: the control socket's answer (one line per second with --watch), or the
    /// summary of --file
    #[arg(long)]
    pub json: bool,
    /// Summarise a --snmplog CSV file (latest or 2021 Go kcptun layout)
    #[arg(long, value_name = "CSV", value_hint = clap::ValueHint::FilePath)]
    pub file: Option<PathBuf>,
    /// With --file: draw bytes/s and retransmissions/s over time as an SVG chart to OUT
    #[arg(long, value_name = "OUT", value_hint = clap::ValueHint::FilePath)]
    pub svg: Option<PathBuf>,
}

const SNMP_EXAMPLES: &str = "\
Examples:
  kcptun snmp --ctl /run/kcptun.sock          counters once, as Go's SIGUSR1 line
  kcptun snmp --ctl /run/kcptun.sock --watch  rates every second
  kcptun snmp --file snmp.csv --svg snmp.svg  summary of a --snmplog file, and a chart";

fn parse_crypt_arg(s: &str) -> Result<String, String> {
    super::settings::check_crypt(s).map(str::to_string)
}

fn parse_path_arg(s: &str) -> Result<PathSpec, String> {
    PathSpec::parse(s)
}

fn parse_minutes_arg(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(m) if (1.0 / 6.0..=10_080.0).contains(&m) => Ok(Duration::from_secs_f64(m * 60.0)),
        _ => Err("expected minutes from 0.17 (10 s) to 10080 (a week), e.g. 60 or 0.5".into()),
    }
}

fn parse_mode_arg(s: &str) -> Result<String, String> {
    match s {
        "normal" | "fast" | "fast2" | "fast3" => Ok(s.to_string()),
        _ => Err("expected one of normal, fast, fast2, fast3".to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// argv rewrite

/// Long names (with whether they take the next token as value) of `cmd` and its subcommands.
fn long_names(cmd: &Command, out: &mut Vec<(String, bool)>) {
    for a in cmd.get_arguments() {
        let takes_next = a.get_action().takes_values() && !a.is_require_equals_set();
        for l in a.get_long_and_visible_aliases().into_iter().flatten() {
            out.push((l.to_string(), takes_next));
        }
        if let Some(al) = a.get_all_aliases() {
            for l in al {
                out.push((l.to_string(), takes_next));
            }
        }
        if let Some(s) = a.get_short() {
            out.push((s.to_string(), takes_next));
        }
    }
    for sub in cmd.get_subcommands() {
        long_names(sub, out);
    }
}

/// Rewrites urfave/cli spellings for clap: `-name[=v]` → `--name[=v]` when `name` is a known
/// multi-letter flag of `cmd`. Values of value-taking flags, a lone `-`, negative numbers and
/// everything after `--` pass through untouched.
pub(crate) fn rewrite(cmd: &Command, args: Vec<OsString>) -> Vec<OsString> {
    let mut names = vec![("help".to_string(), false)];
    long_names(cmd, &mut names);
    let lookup = |n: &str| names.iter().find(|(l, _)| l == n).map(|&(_, t)| t);
    let mut out = Vec::with_capacity(args.len());
    let mut value_next = false;
    let mut rest = false;
    for tok in args {
        if rest || value_next {
            value_next = false;
            out.push(tok);
            continue;
        }
        let Some(s) = tok.to_str() else {
            out.push(tok);
            continue;
        };
        if s == "--" {
            rest = true;
            out.push(tok);
            continue;
        }
        if let Some(body) = s.strip_prefix("--") {
            let (name, has_eq) = split_eq(body);
            value_next = !has_eq && lookup(name).unwrap_or(false);
            out.push(tok);
            continue;
        }
        if let Some(body) = s.strip_prefix('-') {
            let (name, has_eq) = split_eq(body);
            if name.chars().count() > 1 {
                if let Some(takes) = lookup(name) {
                    value_next = !has_eq && takes;
                    out.push(OsString::from(format!("-{s}")));
                    continue;
                }
                // `-l:1234` is a short flag with its value attached; anything else that is not a
                // number is an unknown long flag, reported as `--name` rather than as `-n`.
                let first = name.chars().next().map(String::from).unwrap_or_default();
                let attached = lookup(&first).unwrap_or(false);
                let number = body.starts_with(|c: char| c.is_ascii_digit() || c == '.');
                if !attached && !number {
                    out.push(OsString::from(format!("-{s}")));
                    continue;
                }
            } else if name.chars().count() == 1 {
                // `-l value` (but not `-l:1234` / `-l=x`, whose value is attached)
                value_next = !has_eq && body.chars().count() == 1 && lookup(name).unwrap_or(false);
            }
        }
        out.push(tok);
    }
    out
}

fn split_eq(body: &str) -> (&str, bool) {
    match body.split_once('=') {
        Some((n, _)) => (n, true),
        None => (body, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(args: &[&str]) -> Vec<String> {
        let cmd = side_command(true);
        let v = args.iter().map(OsString::from).collect();
        rewrite(&cmd, v)
            .into_iter()
            .map(|o| o.into_string().unwrap())
            .collect()
    }

    #[test]
    fn rewrite_rules() {
        assert_eq!(rw(&["-mtu", "5"]), ["--mtu", "5"]);
        assert_eq!(rw(&["-mtu=5", "-nocomp"]), ["--mtu=5", "--nocomp"]);
        assert_eq!(rw(&["-ds", "1", "-ps", "2"]), ["--ds", "1", "--ps", "2"]);
        assert_eq!(
            rw(&["-key", "-mtu"]),
            ["--key", "-mtu"],
            "value of -key untouched"
        );
        assert_eq!(rw(&["-l", "-mtu"]), ["-l", "-mtu"], "value of -l untouched");
        assert_eq!(rw(&["-l:1", "-mtu", "1"]), ["-l:1", "--mtu", "1"]);
        assert_eq!(rw(&["-ratelimit", "-5"]), ["--ratelimit", "-5"]);
        assert_eq!(rw(&["-"]), ["-"]);
        assert_eq!(rw(&["-5"]), ["-5"]);
        assert_eq!(rw(&["--", "-mtu"]), ["--", "-mtu"]);
        assert_eq!(
            rw(&["-nocomp", "-mtu"]),
            ["--nocomp", "--mtu"],
            "bool takes no next token"
        );
        assert_eq!(
            rw(&["-frob"]),
            ["--frob"],
            "unknown long names reported as such"
        );
        assert_eq!(
            rw(&["-help", "-version", "-QPPCount", "3"]),
            ["--help", "--version", "--QPPCount", "3"]
        );
    }

    #[test]
    fn table_is_consistent() {
        for s in SPECS {
            for client in [true, false] {
                if s.side.has(client) && s.kind != Kind::Str {
                    let d = s.default_for(client);
                    assert!(
                        d.is_empty() || d.parse::<i64>().is_ok() || d == "true" || d == "false",
                        "{}",
                        s.name
                    );
                }
            }
        }
        // building the commands runs clap's debug assertions (duplicate names, …)
        side_command(true).debug_assert();
        side_command(false).debug_assert();
    }
}
