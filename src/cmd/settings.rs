//! Resolved, validated settings of `kcptun client` and `kcptun server`.
//!
//! Resolution order, per key (later wins): table default → `KCPTUN_KEY` (key only) → command-line
//! flag → config file (`-c`). The `--mode` profile is applied after the merge, then every value is
//! range-checked. A value that no kcptun could run with is a [`CliError::Usage`] (exit 2) naming
//! the flag (or config key and file), the allowed range and the fix; questionable but workable
//! values become warnings in `warnings` (printed by [`log_client_settings`] /
//! [`log_server_settings`] once logging is set up).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::args::{Kind, Spec, SPECS};
use super::config::{self, FileValues};
use super::endpoint::{parse_endpoint, parse_stream_addr, Endpoint, StreamAddr};
use super::error::CliError;
use crate::proto::crypt::Method;

/// Smallest `--mtu` accepted: room for the largest per-datagram overhead (aes-128-gcm nonce and
/// tag 28 bytes, FEC header 8 + size 2, KCP header 24) with payload to spare.
pub const MTU_MIN: i64 = 100;
/// Largest `--mtu`: one Ethernet frame's IP payload; Go clamps larger values, we refuse them.
pub const MTU_MAX: i64 = 1500;

/// Checks a cipher name, returning it or a message listing the valid names.
pub fn check_crypt(s: &str) -> Result<&str, String> {
    match s.parse::<Method>() {
        Ok(_) => Ok(s),
        Err(_) => Err(format!(
            "unknown cipher; valid names: {}",
            Method::ALL.map(Method::name).join(", ")
        )),
    }
}

/// `--mode` profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Fast,
    Fast2,
    Fast3,
    /// Uses `--nodelay/--interval/--resend/--nc`.
    Manual,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Fast => "fast",
            Mode::Fast2 => "fast2",
            Mode::Fast3 => "fast3",
            Mode::Manual => "manual",
        }
    }
}

/// KCP `NoDelay` parameters after applying the mode table (SPEC §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoDelay {
    pub nodelay: bool,
    /// Milliseconds, in [10, 5000].
    pub interval: u32,
    /// Fast-resend threshold (0: off).
    pub resend: u32,
    /// No congestion control.
    pub nc: bool,
}

/// Settings shared by client and server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonSettings {
    /// Pre-shared secret (flag > `KCPTUN_KEY` > default; a config file overrides all).
    pub key: String,
    /// Cipher name, one of [`Method::ALL`]'s names.
    pub crypt: String,
    pub mode: Mode,
    /// Resolved KCP parameters (mode table applied; manual mode uses the hidden flags).
    pub nodelay: NoDelay,
    pub qpp: bool,
    /// In 1..=65535.
    pub qpp_count: u16,
    /// In [`MTU_MIN`]..=[`MTU_MAX`].
    pub mtu: u16,
    /// Bytes/s per session, 0 = unlimited.
    pub ratelimit: u64,
    pub sndwnd: u16,
    pub rcvwnd: u16,
    /// FEC shards; ds + ps <= 256; 0 in either disables FEC.
    pub datashard: u16,
    pub parityshard: u16,
    /// In 0..=63.
    pub dscp: u8,
    pub nocomp: bool,
    pub acknodelay: bool,
    /// Send window sized by queueing delay (ours).
    pub delaywnd: bool,
    /// Socket buffer bytes (0: leave the OS default).
    pub sockbuf: usize,
    /// smux session receive budget (> 0).
    pub smuxbuf: usize,
    /// smux max frame size, 1..=65535.
    pub framesize: u16,
    /// smux v2 per-stream window (> 0, <= smuxbuf).
    pub streambuf: usize,
    /// smux keep-alive interval (> 0).
    pub keepalive: Duration,
    /// Linger after one pipe direction ends before closing both sides.
    pub closewait: Duration,
    /// Once one direction has ended, close when the other stays idle this long; zero = never.
    pub halfclose: Duration,
    pub snmplog: Option<PathBuf>,
    /// > 0.
    pub snmpperiod: Duration,
    pub log: Option<PathBuf>,
    pub quiet: bool,
    /// Control socket path.
    pub ctl: Option<PathBuf>,
    /// `--metrics`: `host:port` (brackets around IPv6; empty host = every address) serving
    /// Prometheus' `GET /metrics`.
    pub metrics: Option<String>,
    /// Started by shadowsocks as a SIP003 plugin (addresses from `SS_*`): stop when the parent
    /// process goes away.
    pub plugin: bool,
    pub daemon: bool,
    pub pidfile: Option<PathBuf>,
    /// The config file that was merged, if any.
    pub config: Option<PathBuf>,
    /// Non-fatal findings (unknown config keys, suspicious values), to be logged at start.
    pub warnings: Vec<String>,
}

/// `kcptun client` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// `-l`: TCP listen endpoint (single port; empty host = all addresses) or unix socket path.
    pub localaddr: StreamAddr,
    /// `-r`: server endpoint, possibly a port range (a random port per session).
    pub remoteaddr: Endpoint,
    /// Number of sessions, 1..=65535.
    pub conn: u16,
    /// A session takes new connections this long after creation; `None`: forever.
    pub autoexpire: Option<Duration>,
    /// How long an expired session may still live.
    pub scavengettl: Duration,
    /// smux version, 1 or 2 (default 2).
    pub smuxver: u8,
    pub common: CommonSettings,
}

/// `kcptun server` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// `-l`: UDP listen endpoint; a port range means one listener per port.
    pub listen: Endpoint,
    /// `-t`: where streams go: TCP endpoint or unix socket path.
    pub target: StreamAddr,
    /// `Some(1|2)` when given; `None` (default): detect the version per session from the first
    /// smux frame, so both 2021 (v1) and latest (v2) Go clients work with default flags.
    pub smuxver: Option<u8>,
    pub common: CommonSettings,
}

// ---------------------------------------------------------------------------------------------
// resolution

#[derive(Debug, Clone)]
enum Source {
    Default,
    Env,
    Flag,
    File,
}

#[derive(Debug, Clone)]
enum Raw {
    Str(String),
    Int(i64),
    Bool(bool),
}

/// The merged raw values of one subcommand, with where each came from.
struct Vals<'a> {
    map: HashMap<&'static str, (Raw, Source)>,
    file: Option<&'a FileValues>,
    warnings: Vec<String>,
}

fn spec(name: &str) -> &'static Spec {
    SPECS
        .iter()
        .find(|s| s.name == name)
        .expect("flag in table")
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: decimal, `0x`, `0o`/`0`, `0b`, optional sign, `_` separators.
fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) =
        if let Some(d) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, d)
        } else if let Some(d) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, d)
        } else if let Some(d) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, d)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let v = i128::from(u64::from_str_radix(&digits, radix).ok()?);
    i64::try_from(if neg { -v } else { v }).ok()
}

fn flag_value(s: &Spec, text: &str) -> Result<Raw, CliError> {
    match s.kind {
        Kind::Str => Ok(Raw::Str(text.to_string())),
        Kind::Int => parse_int(text).map(Raw::Int).ok_or_else(|| {
            CliError::Usage(format!(
                "invalid value {text:?} for --{}: expected an integer",
                s.name
            ))
        }),
        Kind::Bool => parse_bool(text).map(Raw::Bool).ok_or_else(|| {
            CliError::Usage(format!(
                "invalid value {text:?} for --{}: expected true or false",
                s.name
            ))
        }),
    }
}

fn file_value(s: &Spec, key: &str, v: &Value, f: &FileValues) -> Result<Raw, CliError> {
    let want = match s.kind {
        Kind::Str => "a string",
        Kind::Int => "an integer",
        Kind::Bool => "a boolean (true/false)",
    };
    let r = match (s.kind, v) {
        (Kind::Str, Value::String(x)) => Some(Raw::Str(x.clone())),
        (Kind::Int, Value::Number(n)) => n.as_i64().map(Raw::Int),
        (Kind::Bool, Value::Bool(b)) => Some(Raw::Bool(*b)),
        _ => None,
    };
    r.ok_or_else(|| {
        let found = match v {
            Value::Number(n) if n.as_i64().is_none() && (n.is_u64()) => "an integer too large",
            other => config::type_name(other),
        };
        f.key_error(key, &format!("expected {want}, found {found}"))
    })
}

impl<'a> Vals<'a> {
    fn new(
        client: bool,
        m: &clap::ArgMatches,
        env_key: Option<OsString>,
        file: Option<&'a FileValues>,
    ) -> Result<Self, CliError> {
        let mut v = Vals {
            map: HashMap::new(),
            file,
            warnings: Vec::new(),
        };
        for s in SPECS.iter().filter(|s| s.side.has(client)) {
            let d = s.default_for(client);
            if !(d.is_empty() && s.kind != Kind::Str) {
                v.map.insert(s.name, (flag_value(s, d)?, Source::Default));
            }
        }
        if let Some(k) = env_key {
            let k = k.into_string().map_err(|_| {
                CliError::Usage("KCPTUN_KEY is not valid UTF-8; use --key or a config file".into())
            })?;
            v.map.insert("key", (Raw::Str(k), Source::Env));
        }
        for s in SPECS.iter().filter(|s| s.side.has(client)) {
            if let Some(text) = m.get_one::<String>(s.name) {
                v.map.insert(s.name, (flag_value(s, text)?, Source::Flag));
            }
        }
        if let Some(f) = file {
            let mut unknown = Vec::new();
            for (key, val) in &f.entries {
                let lk = key.to_lowercase();
                let hit = SPECS.iter().find(|s| {
                    s.side.has(client) && s.json.is_some_and(|j| j.eq_ignore_ascii_case(&lk))
                });
                match hit {
                    Some(s) => {
                        let raw = file_value(s, key, val, f)?;
                        v.map.insert(s.name, (raw, Source::File));
                    }
                    None => unknown.push(key.as_str()),
                }
            }
            if !unknown.is_empty() {
                v.warnings.push(format!(
                    "config file {}: ignoring unknown keys: {}",
                    f.path.display(),
                    unknown.join(", ")
                ));
            }
        }
        Ok(v)
    }

    /// How to name `name` in a message: `--mtu` or `"mtu" in FILE`.
    fn what(&self, name: &'static str) -> String {
        let s = spec(name);
        match (&self.map.get(name).map(|x| &x.1), self.file, s.json) {
            (Some(Source::File), Some(f), Some(j)) => format!("\"{j}\" in {}", f.path.display()),
            (Some(Source::Env), _, _) => "KCPTUN_KEY".to_string(),
            _ => format!("--{name}"),
        }
    }

    fn bad(&self, name: &'static str, shown: impl fmt::Display, why: &str) -> CliError {
        CliError::Usage(format!("invalid {} {shown}: {why}", self.what(name)))
    }

    fn present(&self, name: &'static str) -> bool {
        self.map.contains_key(name)
    }

    fn str(&self, name: &'static str) -> String {
        match self.map.get(name) {
            Some((Raw::Str(s), _)) => s.clone(),
            _ => String::new(),
        }
    }

    fn opt_path(&self, name: &'static str) -> Option<PathBuf> {
        let s = self.str(name);
        (!s.is_empty()).then(|| PathBuf::from(s))
    }

    fn int(&self, name: &'static str) -> i64 {
        match self.map.get(name) {
            Some((Raw::Int(i), _)) => *i,
            _ => 0,
        }
    }

    fn bool(&self, name: &'static str) -> bool {
        matches!(self.map.get(name), Some((Raw::Bool(true), _)))
    }

    /// Integer in `lo..=hi`, else a usage error with `fix`.
    fn range(&self, name: &'static str, lo: i64, hi: i64, fix: &str) -> Result<i64, CliError> {
        let v = self.int(name);
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(self.bad(name, v, &format!("must be in {lo}..={hi}; {fix}")))
        }
    }

    fn secs(&self, name: &'static str, lo: i64) -> Result<Duration, CliError> {
        let v = self.int(name);
        if v < lo || v > i64::from(u32::MAX) {
            return Err(self.bad(name, v, &format!("must be a number of seconds >= {lo}")));
        }
        Ok(Duration::from_secs(v as u64))
    }

    fn refuse(&self, name: &'static str, what: &str) -> Result<(), CliError> {
        if self.bool(name) {
            let how = match self.map.get(name).map(|x| &x.1) {
                Some(Source::File) => format!("remove \"{name}\" from the config file"),
                _ => "remove it".to_string(),
            };
            return Err(CliError::Usage(format!(
                "--{name} ({what}) is not supported by this kcptun; {how}"
            )));
        }
        Ok(())
    }

    fn common(&mut self) -> Result<CommonSettings, CliError> {
        self.refuse("tcp", "fake-TCP transport")?;
        self.refuse("pprof", "Go profiler")?;
        let crypt = self.str("crypt");
        check_crypt(&crypt).map_err(|e| self.bad("crypt", format!("{crypt:?}"), &e))?;
        let mode_s = self.str("mode");
        let mode = match mode_s.as_str() {
            "normal" => Mode::Normal,
            "fast" => Mode::Fast,
            "fast2" => Mode::Fast2,
            "fast3" => Mode::Fast3,
            "manual" => Mode::Manual,
            _ => {
                return Err(self.bad(
                    "mode",
                    format!("{mode_s:?}"),
                    "valid modes: normal, fast, fast2, fast3, manual",
                ))
            }
        };
        let nodelay = match mode {
            Mode::Normal => NoDelay {
                nodelay: false,
                interval: 40,
                resend: 2,
                nc: true,
            },
            Mode::Fast => NoDelay {
                nodelay: false,
                interval: 30,
                resend: 2,
                nc: true,
            },
            Mode::Fast2 => NoDelay {
                nodelay: true,
                interval: 20,
                resend: 2,
                nc: true,
            },
            Mode::Fast3 => NoDelay {
                nodelay: true,
                interval: 10,
                resend: 2,
                nc: true,
            },
            Mode::Manual => {
                let nd = self.range("nodelay", 0, i64::from(i32::MAX), "use 0 (off) or 1 (on)")?;
                let nc = self.range("nc", 0, i64::from(i32::MAX), "use 0 (off) or 1 (on)")?;
                let resend = self.range("resend", 0, 65535, "0 turns fast resend off")?;
                let iv = self.int("interval");
                if iv < 0 {
                    return Err(self.bad("interval", iv, "must be milliseconds in 10..=5000"));
                }
                let interval = iv.clamp(10, 5000);
                if interval != iv {
                    self.warnings.push(format!(
                        "--interval {iv} ms clamped to {interval} (range 10..=5000)"
                    ));
                }
                NoDelay {
                    nodelay: nd != 0,
                    interval: interval as u32,
                    resend: resend as u32,
                    nc: nc != 0,
                }
            }
        };
        let qpp = self.bool("QPP");
        let qpp_count =
            self.range("QPPCount", 1, 65535, "a prime such as 61 is recommended")? as u16;
        if qpp {
            let keylen = self.str("key").len();
            if keylen < 211 {
                self.warnings.push(format!(
                    "QPP: the key has {keylen} bytes; at least 211 are recommended for full strength"
                ));
            }
            if qpp_count < 7 {
                self.warnings.push(format!(
                    "QPP: QPPCount {qpp_count} is small; use at least 7"
                ));
            }
            if qpp_count % 2 == 0 {
                self.warnings.push(format!(
                    "QPP: QPPCount {qpp_count} is not coprime to 8; an odd prime is best"
                ));
            }
        }
        let mtu = self.range(
            "mtu",
            MTU_MIN,
            MTU_MAX,
            "larger datagrams would be fragmented or dropped; 1350 is the default",
        )? as u16;
        let mut ratelimit = self.int("ratelimit");
        if ratelimit < 0 {
            self.warnings.push(format!(
                "ratelimit {ratelimit} is negative; using 0 (unlimited)"
            ));
            ratelimit = 0;
        }
        let sndwnd = self.range("sndwnd", 1, 65535, "it is a number of packets")? as u16;
        let rcvwnd = self.range("rcvwnd", 1, 65535, "it is a number of packets")? as u16;
        let ds = self.range("datashard", 0, 256, "0 disables FEC")?;
        let ps = self.range("parityshard", 0, 256, "0 disables FEC")?;
        if ds + ps > 256 {
            return Err(CliError::Usage(format!(
                "invalid {} {ds} + {} {ps}: datashard + parityshard must be at most 256; lower them (10 and 3 are the defaults)",
                self.what("datashard"),
                self.what("parityshard")
            )));
        }
        let dscp = self.range("dscp", 0, 63, "DSCP is 6 bits")? as u8;
        let sockbuf =
            self.range("sockbuf", 0, i64::from(i32::MAX), "0 keeps the OS default")? as usize;
        let smuxbuf = self.range("smuxbuf", 1, i64::from(i32::MAX), "give bytes")? as usize;
        let framesize =
            self.range("framesize", 1, 65535, "smux frames carry a 16-bit length")? as u16;
        let streambuf = self.range("streambuf", 1, i64::from(i32::MAX), "give bytes")? as usize;
        if streambuf > smuxbuf {
            return Err(CliError::Usage(format!(
                "invalid {} {streambuf}: must not be larger than {} {smuxbuf}; raise smuxbuf or lower streambuf",
                self.what("streambuf"),
                self.what("smuxbuf")
            )));
        }
        let keepalive = self.secs("keepalive", 1)?;
        if keepalive >= Duration::from_secs(30) {
            self.warnings.push(format!(
                "keepalive {}s: a Go peer drops sessions after 30 s without traffic; use less than 30",
                keepalive.as_secs()
            ));
        }
        let closewait = self.secs("closewait", 0)?;
        let halfclose = self.secs("halfclose", 0)?;
        let snmpperiod = self.secs("snmpperiod", 1)?;
        let metrics = match self.str("metrics") {
            m if m.is_empty() => None,
            m => {
                let e = parse_endpoint(&m, false).map_err(|e| self.addr_err("metrics", e))?;
                Some(e.with_port(e.port_min))
            }
        };
        Ok(CommonSettings {
            key: self.str("key"),
            crypt,
            mode,
            nodelay,
            qpp,
            qpp_count,
            mtu,
            ratelimit: ratelimit as u64,
            sndwnd,
            rcvwnd,
            datashard: ds as u16,
            parityshard: ps as u16,
            dscp,
            nocomp: self.bool("nocomp"),
            acknodelay: self.bool("acknodelay"),
            delaywnd: self.bool("delaywnd"),
            sockbuf,
            smuxbuf,
            framesize,
            streambuf,
            keepalive,
            closewait,
            halfclose,
            snmplog: self.opt_path("snmplog"),
            snmpperiod,
            log: self.opt_path("log"),
            quiet: self.bool("quiet"),
            ctl: self.opt_path("ctl"),
            metrics,
            plugin: false,
            daemon: self.bool("daemon"),
            pidfile: self.opt_path("pidfile"),
            config: self.file.map(|f| f.path.clone()),
            warnings: Vec::new(),
        })
    }

    fn smuxver(&self) -> Result<Option<u8>, CliError> {
        if !self.present("smuxver") {
            return Ok(None);
        }
        let v = self.int("smuxver");
        match v {
            1 | 2 => Ok(Some(v as u8)),
            _ => Err(self.bad("smuxver", v, "must be 1 (Go kcptun 2021) or 2 (latest)")),
        }
    }

    fn addr_err(&self, name: &'static str, e: String) -> CliError {
        let v = self.str(name);
        self.bad(name, format!("{v:?}"), &e)
    }
}

fn load_file(m: &clap::ArgMatches) -> Result<Option<FileValues>, CliError> {
    m.get_one::<PathBuf>("c")
        .map(|p| config::load(Path::new(p)))
        .transpose()
}

/// Resolves `kcptun client` settings from parsed flags, the `KCPTUN_KEY` value and `-c`.
pub(crate) fn resolve_client(
    m: &clap::ArgMatches,
    env_key: Option<OsString>,
) -> Result<ClientSettings, CliError> {
    let file = load_file(m)?;
    let mut v = Vals::new(true, m, env_key, file.as_ref())?;
    let mut common = v.common()?;
    let localaddr =
        parse_stream_addr(&v.str("localaddr")).map_err(|e| v.addr_err("localaddr", e))?;
    let remoteaddr =
        parse_endpoint(&v.str("remoteaddr"), true).map_err(|e| v.addr_err("remoteaddr", e))?;
    let conn = v.range("conn", 1, 65535, "it is the number of UDP sessions")? as u16;
    let autoexpire = v.secs("autoexpire", 0)?;
    let scavengettl = v.secs("scavengettl", 0)?;
    if !autoexpire.is_zero() && scavengettl > autoexpire {
        v.warnings.push(format!(
            "scavengettl {}s is larger than autoexpire {}s: expired sessions outlive their successors",
            scavengettl.as_secs(),
            autoexpire.as_secs()
        ));
    }
    let smuxver = v.smuxver()?.unwrap_or(2);
    common.warnings = std::mem::take(&mut v.warnings);
    Ok(ClientSettings {
        localaddr,
        remoteaddr,
        conn,
        autoexpire: (!autoexpire.is_zero()).then_some(autoexpire),
        scavengettl,
        smuxver,
        common,
    })
}

/// Resolves `kcptun server` settings from parsed flags, the `KCPTUN_KEY` value and `-c`.
pub(crate) fn resolve_server(
    m: &clap::ArgMatches,
    env_key: Option<OsString>,
) -> Result<ServerSettings, CliError> {
    let file = load_file(m)?;
    let mut v = Vals::new(false, m, env_key, file.as_ref())?;
    let mut common = v.common()?;
    let listen = parse_endpoint(&v.str("listen"), true).map_err(|e| v.addr_err("listen", e))?;
    let target = parse_stream_addr(&v.str("target")).map_err(|e| v.addr_err("target", e))?;
    let smuxver = v.smuxver()?;
    common.warnings = std::mem::take(&mut v.warnings);
    Ok(ServerSettings {
        listen,
        target,
        smuxver,
        common,
    })
}

// ---------------------------------------------------------------------------------------------
// paths under --daemon

fn absolute(p: &mut PathBuf) {
    if let Ok(a) = std::path::absolute(&*p) {
        *p = a;
    }
}

fn absolute_opt(p: &mut Option<PathBuf>) {
    if let Some(p) = p {
        absolute(p);
    }
}

fn absolute_stream(a: &mut StreamAddr) {
    if let StreamAddr::Unix(p) = a {
        absolute(p);
    }
}

impl CommonSettings {
    /// `--daemon` changes directory to `/`: every path used after that (log reopen, snmplog,
    /// ctl and pidfile removal, unix sockets) is made absolute first.
    fn absolutize_paths(&mut self) {
        absolute_opt(&mut self.log);
        absolute_opt(&mut self.snmplog);
        absolute_opt(&mut self.ctl);
        absolute_opt(&mut self.pidfile);
    }
}

impl ClientSettings {
    /// See [`CommonSettings`]' paths under `--daemon`.
    pub fn absolutize_paths(&mut self) {
        self.common.absolutize_paths();
        absolute_stream(&mut self.localaddr);
    }
}

impl ServerSettings {
    /// See [`CommonSettings`]' paths under `--daemon`.
    pub fn absolutize_paths(&mut self) {
        self.common.absolutize_paths();
        absolute_stream(&mut self.target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_like_go() {
        assert_eq!(parse_int("10"), Some(10));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("0x10"), Some(16));
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("--1"), None);
        assert_eq!(parse_int("1.5"), None);
        assert_eq!(parse_int("99999999999999999999"), None);
    }
}
