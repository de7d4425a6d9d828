//! `kcptun snmp`: the counters of a running kcptun, read through its control socket, or a summary
//! of a `--snmplog` CSV file.
//!
//! Control socket protocol (client side; the server side lives with the event loop): connect to
//! the unix stream socket given to the client/server as `--ctl PATH`, write the line `snmp\n`, read
//! ONE JSON object, `{"kcptun":VER,"role":"client"|"server","pid":N,"uptime_secs":F,"sessions":N,
//! "streams":N,"snmp":{GoFieldName:N,…}}`, until the peer closes (or the object is complete).
//! Anything else within [`CTL_TIMEOUT`] means the peer is not kcptun.
//!
//! The CSV side reads Go's `--snmplog` files (latest header and the 2021 one, SPEC §7.11; the
//! layout is taken from the header line, columns are matched by name), skips malformed lines with
//! a line-numbered warning, and derives per-interval deltas of the cumulative counters. A counter
//! that goes down marks a restart of the logging process: that interval counts from zero.
//!
//! Call order: [`check_args`] at parse time (usage errors), then [`run`]. The pieces are public
//! for tests: [`query`] → [`CtlReply`]; [`parse_log`] → [`SnmpLog`] → [`summarize`] →
//! [`Summary`], [`render_summary`], [`sparklines`], [`svg_chart`].

use std::fmt::Write as _;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::{CliError, RunError, SnmpArgs};
use crate::proto::snmp::Snmp;

/// How long a control socket may take to answer.
pub const CTL_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest control reply accepted (a real one is about 1 KiB).
const MAX_REPLY: usize = 1 << 20;

/// Usage check at parse time (exit code 2): exactly one source, `--ctl` or `--file`.
pub fn check_args(a: &SnmpArgs) -> Result<(), CliError> {
    let usage = |m: &str| Err(CliError::Usage(m.to_string()));
    match (&a.ctl, &a.file) {
        (None, None) => usage(
            "kcptun snmp needs --ctl PATH (a running kcptun's control socket) or --file CSV (a --snmplog file) (see -h)",
        ),
        (Some(_), Some(_)) => usage("--ctl and --file cannot be used together (see -h)"),
        _ => Ok(()),
    }
}

/// Flags that do not fit the source, refused when the command runs: `--svg` draws a `--file`,
/// `--watch` polls a `--ctl`.
fn check_combination(a: &SnmpArgs) -> Result<(), String> {
    if a.ctl.is_some() && a.svg.is_some() {
        return Err("--svg draws a --snmplog file: use it with --file CSV".into());
    }
    if a.file.is_some() && a.watch {
        return Err("--watch polls a running kcptun: use it with --ctl PATH".into());
    }
    Ok(())
}

/// Runs `kcptun snmp` as parsed.
pub fn run(a: &SnmpArgs) -> Result<(), RunError> {
    check_args(a).map_err(|e| RunError::Other(e.to_string()))?;
    check_combination(a).map_err(RunError::Other)?;
    let res = match (&a.ctl, &a.file) {
        (Some(p), _) if a.watch => watch(p, a.json),
        (Some(p), _) => once(p, a.json),
        (None, Some(f)) => file(f, a.json, a.svg.as_deref()),
        (None, None) => Ok(()),
    };
    match res {
        // `kcptun snmp … | head` is not a failure
        Err(Fail::Out(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(Fail::Out(e)) => Err(RunError::Other(format!("writing to stdout: {e}"))),
        Err(Fail::Run(m)) => Err(RunError::Other(m)),
        Ok(()) => Ok(()),
    }
}

/// Internal failure: stdout trouble (a closed pipe is fine) or a one-line error.
enum Fail {
    Out(io::Error),
    Run(String),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Out(e)
    }
}

impl From<CtlError> for Fail {
    fn from(e: CtlError) -> Self {
        Fail::Run(e.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// control socket client

/// Why a control socket query failed.
#[derive(Debug)]
pub enum CtlError {
    /// Nothing at the path.
    Missing(PathBuf),
    /// A socket file nobody listens on (kcptun died without removing it).
    Refused(PathBuf),
    /// The peer did not answer within [`CTL_TIMEOUT`] or not with kcptun's JSON.
    NotKcptun(PathBuf),
    /// Any other connect/read error.
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for CtlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CtlError::Missing(p) => write!(
                f,
                "no control socket at {0}: start kcptun with --ctl {0}",
                p.display()
            ),
            CtlError::Refused(p) => write!(
                f,
                "{}: connection refused: stale control socket (is kcptun still running?)",
                p.display()
            ),
            CtlError::NotKcptun(p) => write!(f, "{} did not answer like kcptun", p.display()),
            CtlError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for CtlError {}

/// One answer of a control socket.
#[derive(Debug, Clone, PartialEq)]
pub struct CtlReply {
    /// `kcptun` version string of the peer.
    pub version: String,
    /// `client` or `server`.
    pub role: String,
    pub pid: u64,
    pub uptime_secs: f64,
    pub sessions: u64,
    pub streams: u64,
    pub snmp: Snmp,
    /// The JSON text exactly as received.
    pub raw: String,
}

/// Asks the kcptun listening at `path` for its counters.
pub fn query(path: &Path, timeout: Duration) -> Result<CtlReply, CtlError> {
    let mut s = UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => CtlError::Missing(path.to_path_buf()),
        io::ErrorKind::ConnectionRefused if !is_socket(path) => {
            CtlError::NotKcptun(path.to_path_buf())
        }
        io::ErrorKind::ConnectionRefused => CtlError::Refused(path.to_path_buf()),
        _ => CtlError::Io(path.to_path_buf(), e),
    })?;
    let not_us = || CtlError::NotKcptun(path.to_path_buf());
    let deadline = Instant::now() + timeout;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| CtlError::Io(path.to_path_buf(), e))?;
    // A peer that closes at once may make this fail (EPIPE): not kcptun either way.
    s.write_all(b"snmp\n").map_err(|_| not_us())?;
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(not_us());
        }
        s.set_read_timeout(Some(left))
            .map_err(|e| CtlError::Io(path.to_path_buf(), e))?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_REPLY {
                    return Err(not_us());
                }
                // a peer that keeps the connection open after a complete answer is fine
                if buf.trim_ascii_end().ends_with(b"}")
                    && serde_json::from_slice::<Value>(&buf).is_ok()
                {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // timed out (WouldBlock/TimedOut) or reset: not kcptun
            Err(_) => return Err(not_us()),
        }
    }
    let raw = String::from_utf8(buf).map_err(|_| not_us())?;
    parse_reply(&raw).ok_or_else(not_us)
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Reads a control reply; `None` if it is not kcptun's JSON. Unknown keys and counters are
/// ignored (a newer peer), missing counters read 0.
pub fn parse_reply(raw: &str) -> Option<CtlReply> {
    let v: Value = serde_json::from_str(raw).ok()?;
    let o = v.as_object()?;
    let version = o.get("kcptun")?.as_str()?.to_string();
    let counters = o.get("snmp")?.as_object()?;
    let mut snmp = Snmp::default();
    for (k, val) in counters {
        let n = val.as_u64()?;
        set_counter(&mut snmp, k, n);
    }
    let num = |k: &str| -> Option<u64> {
        match o.get(k) {
            None => Some(0),
            Some(x) => x.as_u64(),
        }
    };
    let role = match o.get("role") {
        None => String::from("?"),
        Some(r) => r.as_str()?.to_string(),
    };
    let uptime_secs = match o.get("uptime_secs") {
        None => 0.0,
        Some(x) => x.as_f64()?,
    };
    Some(CtlReply {
        version,
        role,
        pid: num("pid")?,
        uptime_secs,
        sessions: num("sessions")?,
        streams: num("streams")?,
        snmp,
        raw: raw.to_string(),
    })
}

/// Sets the counter named `go_name` (Go's field name); unknown names are ignored.
fn set_counter(s: &mut Snmp, go_name: &str, v: u64) {
    let f = match go_name {
        "BytesSent" => &mut s.bytes_sent,
        "BytesReceived" => &mut s.bytes_received,
        "MaxConn" => &mut s.max_conn,
        "ActiveOpens" => &mut s.active_opens,
        "PassiveOpens" => &mut s.passive_opens,
        "CurrEstab" => &mut s.curr_estab,
        "InErrs" => &mut s.in_errs,
        "InCsumErrors" => &mut s.in_csum_errors,
        "KCPInErrors" => &mut s.kcp_in_errors,
        "InPkts" => &mut s.in_pkts,
        "OutPkts" => &mut s.out_pkts,
        "InSegs" => &mut s.in_segs,
        "OutSegs" => &mut s.out_segs,
        "InBytes" => &mut s.in_bytes,
        "OutBytes" => &mut s.out_bytes,
        "RetransSegs" => &mut s.retrans_segs,
        "FastRetransSegs" => &mut s.fast_retrans_segs,
        "EarlyRetransSegs" => &mut s.early_retrans_segs,
        "LostSegs" => &mut s.lost_segs,
        "RepeatSegs" => &mut s.repeat_segs,
        "FECFullShardSet" => &mut s.fec_full_shard_set,
        "FECRecovered" => &mut s.fec_recovered,
        "FECErrs" => &mut s.fec_errs,
        "FECParityShards" => &mut s.fec_parity_shards,
        "FECShardSet" => &mut s.fec_shard_set,
        "FECShardMin" => &mut s.fec_shard_min,
        "RingBufferSndQueue" => &mut s.ring_buffer_snd_queue,
        "RingBufferRcvQueue" => &mut s.ring_buffer_rcv_queue,
        "RingBufferSndBuffer" => &mut s.ring_buffer_snd_buffer,
        "OOBPackets" => &mut s.oob_packets,
        _ => return,
    };
    *f = v;
}

fn counter(s: &Snmp, go_name: &str) -> u64 {
    s.fields()
        .iter()
        .find(|(n, _)| *n == go_name)
        .map_or(0, |&(_, v)| v)
}

/// The header line printed above the counters: who answered and its gauges.
pub fn reply_header(r: &CtlReply) -> String {
    format!(
        "kcptun {} {}, pid {}, up {}, {} session{}, {} stream{}",
        r.version,
        r.role,
        r.pid,
        fmt_duration(r.uptime_secs),
        r.sessions,
        if r.sessions == 1 { "" } else { "s" },
        r.streams,
        if r.streams == 1 { "" } else { "s" },
    )
}

fn once(path: &Path, as_json: bool) -> Result<(), Fail> {
    let r = query(path, CTL_TIMEOUT)?;
    let mut out = io::stdout().lock();
    if as_json {
        writeln!(out, "{}", pretty_json(&r.raw))?;
    } else {
        writeln!(out, "{}", reply_header(&r))?;
        writeln!(out, "KCP SNMP:{}", r.snmp.sigusr1_text())?;
    }
    out.flush()?;
    Ok(())
}

/// Re-indents valid JSON text (two spaces, `"key": value`), keeping key order and number
/// spelling as they are (serde_json's `Value` would sort the keys).
pub fn pretty_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut chars = raw.trim().chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.extend(chars.next());
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// --watch

/// Counters shown by `--watch`, with whether they count bytes.
const WATCHED: [(&str, bool); 10] = [
    ("BytesSent", true),
    ("BytesReceived", true),
    ("InPkts", false),
    ("OutPkts", false),
    ("InSegs", false),
    ("OutSegs", false),
    ("RetransSegs", false),
    ("FastRetransSegs", false),
    ("LostSegs", false),
    ("FECRecovered", false),
];

/// Per-second rates of [`WATCHED`] between two replies of the same process; `None` if the
/// process changed (other pid, counters went back) or no time passed.
pub fn watch_rates(prev: &CtlReply, cur: &CtlReply, local_secs: f64) -> Option<[f64; 10]> {
    if prev.pid != cur.pid {
        return None;
    }
    // the peer's uptime is the better clock; fall back on ours if it did not move
    let up = cur.uptime_secs - prev.uptime_secs;
    let dt = if up > 0.05 { up } else { local_secs };
    if dt.is_nan() || dt <= 0.0 {
        return None;
    }
    let mut r = [0.0; 10];
    for (slot, (name, _)) in r.iter_mut().zip(WATCHED) {
        let d = counter(&cur.snmp, name).checked_sub(counter(&prev.snmp, name))?;
        *slot = d as f64 / dt;
    }
    Some(r)
}

/// The `--watch` screen: header line, then `counter  total  per second` rows.
pub fn watch_table(cur: &CtlReply, rates: Option<&[f64; 10]>) -> String {
    let mut s = reply_header(cur);
    s.push_str("\n\n");
    let _ = writeln!(s, "{:<16} {:>12} {:>14}", "counter", "total", "per second");
    for (i, (name, bytes)) in WATCHED.iter().enumerate() {
        let v = counter(&cur.snmp, name);
        let total = if *bytes {
            fmt_bytes(v as f64)
        } else {
            fmt_count(v as f64)
        };
        let rate = match rates {
            None => "-".to_string(),
            Some(r) if *bytes => format!("{}/s", fmt_bytes(r[i])),
            Some(r) => fmt_count(r[i]),
        };
        let _ = writeln!(s, "{name:<16} {total:>12} {rate:>14}");
    }
    let _ = writeln!(s, "{:<16} {:>12}", "sessions", cur.sessions);
    let _ = writeln!(s, "{:<16} {:>12}", "streams", cur.streams);
    s
}

/// One `--watch --json` line: the gauges, the totals and the rates (`null` on the first line and
/// after a restart).
pub fn watch_json(cur: &CtlReply, rates: Option<&[f64; 10]>, unix: f64) -> String {
    let mut totals = Map::new();
    let mut rate_map = Map::new();
    for (i, (name, _)) in WATCHED.iter().enumerate() {
        totals.insert((*name).into(), counter(&cur.snmp, name).into());
        if let Some(r) = rates {
            rate_map.insert((*name).into(), json!(round3(r[i])));
        }
    }
    let v = json!({
        "unix": round3(unix),
        "kcptun": cur.version,
        "role": cur.role,
        "pid": cur.pid,
        "uptime_secs": cur.uptime_secs,
        "sessions": cur.sessions,
        "streams": cur.streams,
        "totals": totals,
        "rates": if rates.is_some() { Value::Object(rate_map) } else { Value::Null },
    });
    v.to_string()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn watch(path: &Path, as_json: bool) -> Result<(), Fail> {
    let tty = io::stdout().is_terminal();
    let mut next = Instant::now();
    let mut prev: Option<(Instant, CtlReply)> = None;
    loop {
        let r = query(path, CTL_TIMEOUT)?;
        let now = Instant::now();
        let rates = prev
            .as_ref()
            .and_then(|(t, p)| watch_rates(p, &r, now.duration_since(*t).as_secs_f64()));
        let mut out = io::stdout().lock();
        if as_json {
            let unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            writeln!(out, "{}", watch_json(&r, rates.as_ref(), unix))?;
        } else {
            if tty {
                // home, clear screen
                out.write_all(b"\x1b[H\x1b[2J")?;
            } else if prev.is_some() {
                writeln!(out)?;
            }
            out.write_all(watch_table(&r, rates.as_ref()).as_bytes())?;
        }
        out.flush()?;
        drop(out);
        prev = Some((now, r));
        // one frame a second, on a steady beat; after a slow answer, start a new beat
        next += Duration::from_secs(1);
        let now = Instant::now();
        if next < now {
            next = now + Duration::from_secs(1);
        }
        std::thread::sleep(next - now);
    }
}

// ---------------------------------------------------------------------------------------------
// --snmplog files

/// Columns we read from a snmplog file: the latest Go header's (after `Unix`) plus 2021's
/// `FECShortShards`. Values are kept by this index whatever the file's column order.
pub const LOG_COLUMNS: [&str; 31] = [
    "BytesSent",
    "BytesReceived",
    "MaxConn",
    "ActiveOpens",
    "PassiveOpens",
    "CurrEstab",
    "InErrs",
    "InCsumErrors",
    "KCPInErrors",
    "InPkts",
    "OutPkts",
    "InSegs",
    "OutSegs",
    "InBytes",
    "OutBytes",
    "RetransSegs",
    "FastRetransSegs",
    "EarlyRetransSegs",
    "LostSegs",
    "RepeatSegs",
    "FECFullShards",
    "FECParityShards",
    "FECErrs",
    "FECRecovered",
    "FECShardSet",
    "FECShardMin",
    "RingBufferSndQueue",
    "RingBufferRcvQueue",
    "RingBufferSndBuffer",
    "OOBPackets",
    "FECShortShards",
];

/// Columns that are levels, not running totals (no deltas are taken of them).
const GAUGES: [&str; 7] = [
    "MaxConn",
    "CurrEstab",
    "FECShardSet",
    "FECShardMin",
    "RingBufferSndQueue",
    "RingBufferRcvQueue",
    "RingBufferSndBuffer",
];

fn col(name: &str) -> usize {
    LOG_COLUMNS
        .iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| unreachable!("column {name} is in LOG_COLUMNS"))
}

fn is_gauge(i: usize) -> bool {
    GAUGES.contains(&LOG_COLUMNS[i])
}

/// Which Go kcptun wrote a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Latest kcptun (`…,FECFullShards,…,OOBPackets`).
    Latest,
    /// kcptun 2021 (`…,RepeatSegs,FECParityShards,FECErrs,FECRecovered,FECShortShards`).
    Go2021,
    /// A header with other columns; those we know are read by name.
    Other,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Latest => "latest",
            Layout::Go2021 => "2021",
            Layout::Other => "unknown",
        }
    }
}

/// One data row: Unix seconds and the [`LOG_COLUMNS`] values the file has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    /// 1-based line number in the file.
    pub line: usize,
    pub unix: i64,
    pub vals: [Option<u64>; 31],
}

impl LogRow {
    pub fn get(&self, name: &str) -> Option<u64> {
        self.vals[col(name)]
    }
}

/// A parsed snmplog file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnmpLog {
    /// Layout of the last header seen (`None`: no header at all).
    pub layout: Option<Layout>,
    pub rows: Vec<LogRow>,
    /// `(line number, what is wrong)` of each skipped line.
    pub skipped: Vec<(usize, String)>,
    /// `(line number, remark)` about lines that were read all the same (no header line).
    pub notes: Vec<(usize, String)>,
}

/// Header columns: for each file column, its [`LOG_COLUMNS`] index (`None` for `Unix` and for
/// unknown names); plus the index of `Unix`.
struct Header {
    map: Vec<Option<usize>>,
    unix: usize,
    layout: Layout,
}

impl Header {
    fn from_names(names: &[&str]) -> Header {
        let map = names
            .iter()
            .map(|n| LOG_COLUMNS.iter().position(|c| c == n))
            .collect();
        let unix = names.iter().position(|n| *n == "Unix").unwrap_or(0);
        let layout = if names.contains(&"FECShortShards") {
            Layout::Go2021
        } else if names.contains(&"FECFullShards") {
            Layout::Latest
        } else {
            Layout::Other
        };
        Header { map, unix, layout }
    }

    /// The header Go writes, guessed from a row's column count when a file has none.
    fn guess(fields: usize) -> Option<Header> {
        let mut names = vec!["Unix"];
        if fields == 31 {
            names.extend_from_slice(&LOG_COLUMNS[..30]);
        } else if fields == 25 {
            names.extend_from_slice(&LOG_COLUMNS[..20]);
            names.extend_from_slice(&["FECParityShards", "FECErrs", "FECRecovered"]);
            names.push("FECShortShards");
        } else {
            return None;
        }
        Some(Header::from_names(&names))
    }
}

/// Reads a snmplog CSV. Malformed lines are listed in [`SnmpLog::skipped`], never fatal; only
/// I/O errors are. A header line may appear again later (the file was appended to by another
/// kcptun); the columns then follow the new header.
pub fn parse_log(r: impl BufRead) -> io::Result<SnmpLog> {
    let mut log = SnmpLog {
        layout: None,
        rows: Vec::new(),
        skipped: Vec::new(),
        notes: Vec::new(),
    };
    let mut header: Option<Header> = None;
    for (i, line) in r.split(b'\n').enumerate() {
        let n = i + 1;
        let line = line?;
        let Ok(text) = std::str::from_utf8(&line) else {
            log.skipped.push((n, "not UTF-8 text".into()));
            continue;
        };
        let text = text.strip_suffix('\r').unwrap_or(text);
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = text.split(',').map(|f| unquote(f.trim())).collect();
        if fields.contains(&"Unix") {
            let h = Header::from_names(&fields);
            log.layout = Some(h.layout);
            header = Some(h);
            continue;
        }
        if header.is_none() {
            match Header::guess(fields.len()) {
                Some(h) => {
                    log.notes.push((
                        n,
                        format!(
                            "no header line before the data: read as the {} layout ({} columns)",
                            h.layout.name(),
                            fields.len()
                        ),
                    ));
                    log.layout = Some(h.layout);
                    header = Some(h);
                }
                None => {
                    log.skipped.push((
                        n,
                        format!(
                            "no header line, and {} fields match no Go layout",
                            fields.len()
                        ),
                    ));
                    continue;
                }
            }
        }
        let Some(h) = &header else { continue };
        match parse_row(n, &fields, h) {
            Ok(row) => log.rows.push(row),
            Err(e) => log.skipped.push((n, e)),
        }
    }
    Ok(log)
}

fn unquote(f: &str) -> &str {
    f.strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(f)
}

fn parse_row(line: usize, fields: &[&str], h: &Header) -> Result<LogRow, String> {
    if fields.len() != h.map.len() {
        return Err(format!(
            "{} fields where the header has {}",
            fields.len(),
            h.map.len()
        ));
    }
    let unix_text = fields.get(h.unix).copied().unwrap_or("");
    let unix: i64 = unix_text
        .parse()
        .map_err(|_| format!("Unix time {unix_text:?} is not a number"))?;
    let mut vals = [None; 31];
    for (f, slot) in fields.iter().zip(&h.map) {
        if let Some(c) = slot {
            let v: u64 = f
                .parse()
                .map_err(|_| format!("{} {f:?} is not a counter", LOG_COLUMNS[*c]))?;
            vals[*c] = Some(v);
        }
    }
    Ok(LogRow { line, unix, vals })
}

/// Deltas between two consecutive rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// Unix time at the start and end.
    pub t0: i64,
    pub t1: i64,
    /// A counter went down: the logging process restarted; deltas count from zero.
    pub restart: bool,
    /// Deltas of the cumulative counters (0 for gauges and absent columns).
    pub delta: [u64; 31],
}

impl Interval {
    pub fn get(&self, name: &str) -> u64 {
        self.delta[col(name)]
    }

    /// Per-second rate of `name`, if this interval has a meaningful length and no restart.
    pub fn rate(&self, name: &str) -> Option<f64> {
        let dt = self.t1.checked_sub(self.t0)?;
        (dt > 0 && !self.restart).then(|| self.get(name) as f64 / dt as f64)
    }
}

/// The intervals between consecutive rows of `log`.
pub fn intervals(log: &SnmpLog) -> Vec<Interval> {
    log.rows
        .windows(2)
        .map(|w| {
            let (a, b) = (&w[0], &w[1]);
            let cumulative = |i: usize| !is_gauge(i);
            let restart = (0..31)
                .filter(|&i| cumulative(i))
                .any(|i| matches!((a.vals[i], b.vals[i]), (Some(x), Some(y)) if y < x));
            let mut delta = [0u64; 31];
            for (i, d) in delta.iter_mut().enumerate() {
                if !cumulative(i) {
                    continue;
                }
                *d = match (a.vals[i], b.vals[i]) {
                    (_, None) => 0,
                    (Some(x), Some(y)) if !restart => y - x.min(y),
                    (_, Some(y)) => y,
                };
            }
            Interval {
                t0: a.unix,
                t1: b.unix,
                restart,
                delta,
            }
        })
        .collect()
}

/// Largest per-second rate of one counter over the intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct Peak {
    pub name: &'static str,
    pub per_sec: f64,
    /// End of the interval where it happened.
    pub at: i64,
}

/// What `kcptun snmp --file` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub layout: Option<Layout>,
    pub rows: usize,
    pub skipped: usize,
    pub first_unix: i64,
    pub last_unix: i64,
    /// Median spacing of the rows (the `--snmpperiod`), seconds.
    pub period_secs: Option<i64>,
    pub restarts: usize,
    /// Sum of the deltas of each cumulative counter present in the file.
    pub totals: Vec<(&'static str, u64)>,
    pub peaks: Vec<Peak>,
    /// RetransSegs / OutSegs.
    pub retrans_ratio: Option<f64>,
    /// LostSegs / OutSegs.
    pub loss_ratio: Option<f64>,
    /// FECRecovered / InPkts.
    pub fec_recovered_ratio: Option<f64>,
    pub max_curr_estab: Option<u64>,
}

impl Summary {
    pub fn total(&self, name: &str) -> Option<u64> {
        self.totals
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v)
    }
}

/// Counters whose peak rate is reported.
const PEAKED: [&str; 7] = [
    "BytesSent",
    "BytesReceived",
    "OutBytes",
    "InBytes",
    "OutSegs",
    "InSegs",
    "RetransSegs",
];

/// Summarises a parsed log; `None` if it has no data row.
pub fn summarize(log: &SnmpLog) -> Option<Summary> {
    let first = log.rows.first()?;
    let last = log.rows.last()?;
    let iv = intervals(log);
    let present = |i: usize| log.rows.iter().any(|r| r.vals[i].is_some());
    let totals: Vec<(&'static str, u64)> = (0..31)
        .filter(|&i| !is_gauge(i) && present(i))
        .map(|i| {
            let sum = iv
                .iter()
                .fold(0u64, |acc, x| acc.saturating_add(x.delta[i]));
            (LOG_COLUMNS[i], sum)
        })
        .collect();
    let peaks = PEAKED
        .iter()
        .filter(|n| present(col(n)))
        .filter_map(|&name| {
            iv.iter()
                .filter_map(|x| x.rate(name).map(|r| (r, x.t1)))
                .fold(None, |best: Option<(f64, i64)>, (r, t)| match best {
                    Some((b, _)) if b >= r => best,
                    _ => Some((r, t)),
                })
                .map(|(per_sec, at)| Peak { name, per_sec, at })
        })
        .collect();
    let mut gaps: Vec<i64> = iv
        .iter()
        .filter_map(|x| x.t1.checked_sub(x.t0))
        .filter(|d| *d > 0)
        .collect();
    gaps.sort_unstable();
    let period_secs = gaps.get(gaps.len() / 2).copied();
    let t = |n: &str| totals.iter().find(|(c, _)| *c == n).map(|&(_, v)| v);
    let ratio = |num: &str, den: &str| match (t(num), t(den)) {
        (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
        _ => None,
    };
    let estab = col("CurrEstab");
    Some(Summary {
        layout: log.layout,
        rows: log.rows.len(),
        skipped: log.skipped.len(),
        first_unix: first.unix,
        last_unix: last.unix,
        period_secs,
        restarts: iv.iter().filter(|x| x.restart).count(),
        retrans_ratio: ratio("RetransSegs", "OutSegs"),
        loss_ratio: ratio("LostSegs", "OutSegs"),
        fec_recovered_ratio: ratio("FECRecovered", "InPkts"),
        max_curr_estab: log.rows.iter().filter_map(|r| r.vals[estab]).max(),
        totals,
        peaks,
    })
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_string(), |r| format!("{:.2}%", r * 100.0))
}

/// The human-readable summary.
pub fn render_summary(s: &Summary, file: &Path) -> String {
    let mut o = String::new();
    let t = |n: &str| s.total(n);
    let opt = |v: Option<u64>| v.map_or_else(|| "n/a".to_string(), |v| v.to_string());
    let optb = |v: Option<u64>| v.map_or_else(|| "n/a".to_string(), |v| fmt_bytes(v as f64));
    let _ = writeln!(
        o,
        "snmplog {}: {} layout, {} row{}{}",
        file.display(),
        s.layout.map_or("unknown", Layout::name),
        s.rows,
        if s.rows == 1 { "" } else { "s" },
        if s.skipped > 0 {
            format!(
                ", {} line{} skipped",
                s.skipped,
                if s.skipped == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    );
    let span = s.last_unix.saturating_sub(s.first_unix);
    let _ = writeln!(
        o,
        "period     {} .. {} ({}{})",
        fmt_unix(s.first_unix),
        fmt_unix(s.last_unix),
        fmt_duration(span as f64),
        s.period_secs
            .map_or_else(String::new, |p| format!(", a row every {p}s")),
    );
    if s.restarts > 0 {
        let _ = writeln!(
            o,
            "restarts   {} (counters went back to zero; totals count across them)",
            s.restarts
        );
    }
    let _ = writeln!(
        o,
        "data       sent {}, received {} (BytesSent, BytesReceived)",
        optb(t("BytesSent")),
        optb(t("BytesReceived"))
    );
    let _ = writeln!(
        o,
        "udp        bytes out {} / in {}, packets out {} / in {}, segments out {} / in {}",
        optb(t("OutBytes")),
        optb(t("InBytes")),
        opt(t("OutPkts")),
        opt(t("InPkts")),
        opt(t("OutSegs")),
        opt(t("InSegs")),
    );
    for p in &s.peaks {
        let rate = if p.name.contains("Bytes") {
            format!("{}/s", fmt_bytes(p.per_sec))
        } else {
            format!("{}/s", fmt_count(p.per_sec))
        };
        let _ = writeln!(
            o,
            "peak       {:<16} {:>14}  at {}",
            p.name,
            rate,
            fmt_unix(p.at)
        );
    }
    if s.peaks.is_empty() {
        let _ = writeln!(o, "peak       n/a (fewer than two rows)");
    }
    let _ = writeln!(
        o,
        "retransmit {} of {} segments sent ({}): fast {}, early {}, lost {}",
        opt(t("RetransSegs")),
        opt(t("OutSegs")),
        pct(s.retrans_ratio),
        opt(t("FastRetransSegs")),
        opt(t("EarlyRetransSegs")),
        opt(t("LostSegs")),
    );
    let _ = writeln!(
        o,
        "loss hint  LostSegs/OutSegs {} (segments resent after a timeout)",
        pct(s.loss_ratio)
    );
    let _ = writeln!(
        o,
        "fec        recovered {} ({} of packets in), errors {}",
        opt(t("FECRecovered")),
        pct(s.fec_recovered_ratio),
        opt(t("FECErrs")),
    );
    let _ = writeln!(
        o,
        "errors     checksum {}, InErrs {}, KCPInErrors {}",
        opt(t("InCsumErrors")),
        opt(t("InErrs")),
        opt(t("KCPInErrors")),
    );
    if let Some(m) = s.max_curr_estab {
        let _ = writeln!(o, "sessions   at most {m} established (CurrEstab)");
    }
    o
}

/// The summary as JSON for scripts.
pub fn summary_json(s: &Summary, file: &Path) -> Value {
    let totals: Map<String, Value> = s
        .totals
        .iter()
        .map(|(n, v)| ((*n).to_string(), json!(v)))
        .collect();
    let peaks: Map<String, Value> = s
        .peaks
        .iter()
        .map(|p| {
            (
                p.name.to_string(),
                json!({"per_sec": round3(p.per_sec), "unix": p.at}),
            )
        })
        .collect();
    json!({
        "file": file.display().to_string(),
        "layout": s.layout.map(Layout::name),
        "rows": s.rows,
        "skipped_lines": s.skipped,
        "first_unix": s.first_unix,
        "last_unix": s.last_unix,
        "period_secs": s.period_secs,
        "restarts": s.restarts,
        "totals": totals,
        "peaks": peaks,
        "retrans_ratio": s.retrans_ratio,
        "loss_ratio": s.loss_ratio,
        "fec_recovered_ratio": s.fec_recovered_ratio,
        "checksum_errors": s.total("InCsumErrors"),
        "max_curr_estab": s.max_curr_estab,
    })
}

/// Series drawn by the chart and the sparklines: (label, counter, colour).
const CHARTED: [(&str, &str, &str); 3] = [
    ("out bytes/s", "OutBytes", "#1f77b4"),
    ("in bytes/s", "InBytes", "#2ca02c"),
    ("retrans/s", "RetransSegs", "#d62728"),
];

/// A few terminal lines, one per charted series: `label ▁▂▅█▃ peak`.
pub fn sparklines(log: &SnmpLog, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let iv = intervals(log);
    let mut o = String::new();
    if iv.is_empty() || width == 0 {
        return o;
    }
    for (label, name, _) in CHARTED {
        let vals: Vec<f64> = iv.iter().map(|x| x.rate(name).unwrap_or(0.0)).collect();
        let buckets = vals.len().min(width);
        let mut b = vec![0.0f64; buckets];
        for (i, v) in vals.iter().enumerate() {
            let k = i * buckets / vals.len();
            b[k] = b[k].max(*v);
        }
        let max = b.iter().copied().fold(0.0, f64::max);
        let line: String = b
            .iter()
            .map(|v| {
                if max <= 0.0 {
                    BARS[0]
                } else {
                    let k = ((v / max) * 7.0).round() as usize;
                    BARS[k.min(7)]
                }
            })
            .collect();
        let peak = if name.contains("Bytes") {
            fmt_bytes(max)
        } else {
            fmt_count(max)
        };
        let _ = writeln!(o, "{label:<12} {line} peak {peak}/s");
    }
    o
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

/// A round step ≥ `raw` (1, 2 or 5 times a power of ten).
fn nice_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= raw {
            return m * p;
        }
    }
    10.0 * p
}

/// Thins a long line to at most two points (lowest and highest) per pixel column, so a year of
/// one-second rows still makes a small file with every peak visible. Short lines pass as they are.
fn decimate(run: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if run.len() <= 1600 {
        return run.to_vec();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < run.len() {
        let column = run[i].0.round();
        let (mut lo, mut hi) = (run[i].1, run[i].1);
        let mut j = i;
        while j < run.len() && run[j].0.round() == column {
            lo = lo.min(run[j].1);
            hi = hi.max(run[j].1);
            j += 1;
        }
        out.push((column, lo));
        if hi != lo {
            out.push((column, hi));
        }
        i = j;
    }
    out
}

/// An SVG chart of a log: bytes/s out and in (top panel) and retransmissions/s (bottom panel)
/// over time (UTC), with labelled axes. `None` if the log has fewer than two rows.
pub fn svg_chart(log: &SnmpLog, title: &str) -> Option<String> {
    let iv = intervals(log);
    let t_min = log.rows.first()?.unix;
    let t_max = log.rows.last()?.unix.max(t_min + 1);
    if iv.is_empty() {
        return None;
    }
    let (w, h) = (900.0, 520.0);
    let (x0, x1) = (100.0, 870.0);
    // (top, bottom, series, axis label)
    let panels: [(f64, f64, &[usize], &str); 2] = [
        (50.0, 290.0, &[0, 1], "bytes/s"),
        (330.0, 450.0, &[2], "retransmissions/s"),
    ];
    let xs = |t: i64| x0 + (t.saturating_sub(t_min)) as f64 / (t_max - t_min) as f64 * (x1 - x0);
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        o,
        r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#
    );
    let _ = writeln!(
        o,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        w / 2.0,
        xml_escape(title)
    );
    for (top, bottom, series, label) in panels {
        let max = series
            .iter()
            .flat_map(|&k| iv.iter().filter_map(move |x| x.rate(CHARTED[k].1)))
            .fold(0.0f64, f64::max);
        // bytes step in round binary units (256 KiB, 1 MiB, …), counts in round decimals
        let step = if label.starts_with("bytes") {
            let unit = 1024f64.powi((max.max(1.0).log2() / 10.0).floor() as i32);
            nice_step(max / 4.0 / unit) * unit
        } else {
            nice_step(max / 4.0)
        };
        let ymax = (max / step).ceil().max(1.0) * step;
        let ys = |v: f64| bottom - v / ymax * (bottom - top);
        let _ = writeln!(
            o,
            r##"<rect x="{x0}" y="{top}" width="{}" height="{}" fill="none" stroke="#888"/>"##,
            x1 - x0,
            bottom - top
        );
        let mut v = 0.0;
        while v <= ymax * 1.0001 {
            let y = ys(v);
            let text = if label.starts_with("bytes") {
                fmt_bytes(v)
            } else {
                fmt_count(v)
            };
            let _ = writeln!(
                o,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                x0 - 6.0,
                y + 4.0,
                xml_escape(&text)
            );
            v += step;
        }
        let mid = (top + bottom) / 2.0;
        let _ = writeln!(
            o,
            r#"<text x="18" y="{mid}" text-anchor="middle" transform="rotate(-90 18 {mid})">{label}</text>"#
        );
        for (n, &k) in series.iter().enumerate() {
            let (name, counter, colour) = CHARTED[k];
            // a restart breaks the line
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for x in &iv {
                match x.rate(counter) {
                    Some(r) => runs.last_mut().map_or((), |l| l.push((xs(x.t1), ys(r)))),
                    None => runs.push(Vec::new()),
                }
            }
            for run in runs.iter().filter(|r| !r.is_empty()) {
                let run = decimate(run);
                let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                if run.len() == 1 {
                    let (x, y) = run[0];
                    let _ = writeln!(
                        o,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="2" fill="{colour}"/>"#
                    );
                } else {
                    let _ = writeln!(
                        o,
                        r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
                        pts.join(" ")
                    );
                }
            }
            // legend above the panel, right-aligned
            let lx = x1 - 120.0 * (series.len() - n) as f64;
            let ly = top - 8.0;
            let _ = writeln!(
                o,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{name}</text>"#,
                lx + 20.0,
                lx + 26.0,
                ly + 4.0
            );
        }
    }
    // time axis under the bottom panel
    let bottom = panels[1].1;
    let span = t_max - t_min;
    let tick = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
    ]
    .into_iter()
    .find(|&st| span / st <= 6)
    .unwrap_or_else(|| (span / 6 / 86400 + 1) * 86400);
    let mut t = t_min.div_euclid(tick) * tick;
    if t < t_min {
        t += tick;
    }
    while t <= t_max {
        let x = xs(t);
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" y1="{bottom}" x2="{x:.1}" y2="{}" stroke="#888"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            bottom + 5.0,
            bottom + 20.0,
            if tick >= 86400 {
                fmt_unix(t)[..10].to_string()
            } else {
                fmt_clock(t)
            }
        );
        t += tick;
    }
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">time (UTC, from {} to {})</text>"#,
        (x0 + x1) / 2.0,
        bottom + 48.0,
        fmt_unix(t_min),
        fmt_unix(t_max)
    );
    o.push_str("</svg>\n");
    Some(o)
}

fn file(path: &Path, as_json: bool, svg: Option<&Path>) -> Result<(), Fail> {
    let f = std::fs::File::open(path)
        .map_err(|e| Fail::Run(format!("cannot read {}: {e}", path.display())))?;
    let log = parse_log(io::BufReader::new(f))
        .map_err(|e| Fail::Run(format!("cannot read {}: {e}", path.display())))?;
    for (n, why) in &log.notes {
        eprintln!("kcptun: {} line {n}: {why}", path.display());
    }
    for (n, why) in &log.skipped {
        eprintln!(
            "kcptun: {} line {n}: malformed: {why}; skipped",
            path.display()
        );
    }
    let Some(sum) = summarize(&log) else {
        return Err(Fail::Run(format!(
            "{}: no data rows (is it a --snmplog file?)",
            path.display()
        )));
    };
    let mut out = io::stdout().lock();
    if as_json {
        writeln!(out, "{:#}", summary_json(&sum, path))?;
    } else {
        out.write_all(render_summary(&sum, path).as_bytes())?;
    }
    if let Some(svg_path) = svg {
        let title = format!("kcptun snmplog {}", path.display());
        let Some(doc) = svg_chart(&log, &title) else {
            return Err(Fail::Run(format!(
                "{}: a chart needs at least two rows",
                path.display()
            )));
        };
        std::fs::write(svg_path, doc)
            .map_err(|e| Fail::Run(format!("cannot write {}: {e}", svg_path.display())))?;
        if !as_json {
            writeln!(out, "chart      {}", svg_path.display())?;
        }
    } else if !as_json {
        writeln!(out)?;
        out.write_all(sparklines(&log, 60).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// formatting

/// `12.3 MiB`; whole bytes below 1 KiB.
pub fn fmt_bytes(v: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if v.is_nan() || v < 1024.0 {
        return format!("{:.0} B", v.max(0.0));
    }
    let mut x = v;
    let mut u = 0;
    while x >= 1024.0 && u < UNITS.len() - 1 {
        x /= 1024.0;
        u += 1;
    }
    format!("{x:.1} {}", UNITS[u])
}

/// `987`, `12.3k`, `4.5M`; one decimal below 10 for rates.
pub fn fmt_count(v: f64) -> String {
    if v.is_nan() || v <= 0.0 {
        return "0".into();
    }
    if v < 10.0 && v.fract() != 0.0 {
        return format!("{v:.1}");
    }
    if v < 10_000.0 {
        return format!("{v:.0}");
    }
    let mut x = v;
    let mut u = 0;
    const UNITS: [&str; 5] = ["", "k", "M", "G", "T"];
    while x >= 1000.0 && u < UNITS.len() - 1 {
        x /= 1000.0;
        u += 1;
    }
    format!("{x:.1}{}", UNITS[u])
}

/// `45s`, `3m05s`, `1h02m03s`, `2d03h04m`.
pub fn fmt_duration(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 {
        secs as u64
    } else {
        0
    };
    let (d, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d{h:02}h{m:02}m")
    } else if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `2026-11-25 03:12:00 UTC`.
pub fn fmt_unix(t: i64) -> String {
    let (y, mo, d) = civil(t.div_euclid(86400));
    format!("{y:04}-{mo:02}-{d:02} {} UTC", fmt_clock(t))
}

/// `03:12:00` (UTC).
fn fmt_clock(t: i64) -> String {
    let s = t.rem_euclid(86400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distinct() -> Snmp {
        let mut s = Snmp::default();
        for (i, (name, _)) in Snmp::default().fields().iter().enumerate() {
            set_counter(&mut s, name, 1000 + i as u64);
        }
        s
    }

    #[test]
    fn every_go_field_can_be_set_by_name() {
        let s = distinct();
        for (i, (name, v)) in s.fields().iter().enumerate() {
            assert_eq!(*v, 1000 + i as u64, "{name}");
        }
    }

    #[test]
    fn reply_round_trip_and_rejections() {
        let s = distinct();
        let counters: Map<String, Value> = s
            .fields()
            .iter()
            .map(|(n, v)| ((*n).to_string(), json!(v)))
            .collect();
        let raw = json!({"kcptun":"0.1.0","role":"server","pid":7,"uptime_secs":1.5,
            "sessions":2,"streams":3,"snmp":counters, "future":"ignored"})
        .to_string();
        let r = parse_reply(&raw).expect("valid reply");
        assert_eq!(r.snmp, s);
        assert_eq!((r.pid, r.sessions, r.streams), (7, 2, 3));
        assert_eq!(r.role, "server");
        assert!(reply_header(&r).contains("server, pid 7, up 1s, 2 sessions, 3 streams"));
        for bad in [
            "",
            "hello",
            "[]",
            r#"{"snmp":{}}"#,
            r#"{"kcptun":1,"snmp":{}}"#,
            r#"{"kcptun":"x"}"#,
            r#"{"kcptun":"x","snmp":{"BytesSent":-1}}"#,
            r#"{"kcptun":"x","snmp":{},"pid":"7"}"#,
        ] {
            assert!(parse_reply(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn pretty_json_keeps_order_and_matches_serde_layout() {
        let raw = r#"{"b":1,"a":[1, 2],"e":{},"s":"x,{\"y\":[]}","n":{"z":-1.5e3}}"#;
        let p = pretty_json(raw);
        assert!(p.find("\"b\"").unwrap() < p.find("\"a\"").unwrap());
        // same text as serde's pretty printer on the same (re-ordered) value
        let v: Value = serde_json::from_str(&p).unwrap();
        assert_eq!(v, serde_json::from_str::<Value>(raw).unwrap());
        let sorted = r#"{"a":[1,2],"b":{"c":"d:e"},"e":[]}"#;
        assert_eq!(
            pretty_json(sorted),
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(sorted).unwrap()).unwrap()
        );
    }

    fn reply(pid: u64, up: f64, sent: u64, retrans: u64) -> CtlReply {
        let snmp = Snmp {
            bytes_sent: sent,
            retrans_segs: retrans,
            ..Snmp::default()
        };
        CtlReply {
            version: "0.1.0".into(),
            role: "client".into(),
            pid,
            uptime_secs: up,
            sessions: 1,
            streams: 4,
            snmp,
            raw: String::new(),
        }
    }

    #[test]
    fn watch_rates_use_peer_uptime_and_detect_restarts() {
        let a = reply(1, 10.0, 1000, 5);
        let b = reply(1, 12.0, 5000, 9);
        let r = watch_rates(&a, &b, 1.0).unwrap();
        assert_eq!(r[0], 2000.0, "BytesSent over the peer's 2 s");
        assert_eq!(r[6], 2.0, "RetransSegs");
        assert!(watch_rates(&a, &reply(2, 12.0, 5000, 9), 1.0).is_none());
        assert!(watch_rates(&b, &reply(1, 13.0, 10, 9), 1.0).is_none());
        // uptime did not move: our own clock
        let r = watch_rates(&a, &reply(1, 10.0, 1500, 5), 0.5).unwrap();
        assert_eq!(r[0], 1000.0);
        let t = watch_table(&b, Some(&r));
        assert!(t.contains("BytesSent"), "{t}");
        assert!(t.contains("1000 B/s"), "{t}");
        assert!(t.lines().all(|l| l.len() < 80));
        let j: Value = serde_json::from_str(&watch_json(&b, None, 1.0)).unwrap();
        assert!(j["rates"].is_null());
        assert_eq!(j["totals"]["BytesSent"], 5000);
    }

    #[test]
    fn decimate_keeps_extremes_per_pixel() {
        let run: Vec<(f64, f64)> = (0..10_000)
            .map(|i| {
                (
                    i as f64 / 100.0,
                    if i == 5_555 { -7.0 } else { (i % 13) as f64 },
                )
            })
            .collect();
        let d = decimate(&run);
        assert!(d.len() <= 2 * 101, "{}", d.len());
        assert!(d.contains(&(56.0, -7.0)), "the spike survives");
        assert_eq!(decimate(&run[..10]), run[..10].to_vec());
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_bytes(512.0), "512 B");
        assert_eq!(fmt_bytes(1536.0), "1.5 KiB");
        assert_eq!(fmt_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
        assert_eq!(fmt_count(0.5), "0.5");
        assert_eq!(fmt_count(9999.0), "9999");
        assert_eq!(fmt_count(12_345.0), "12.3k");
        assert_eq!(fmt_duration(3723.9), "1h02m03s");
        assert_eq!(fmt_duration(65.0), "1m05s");
        assert_eq!(
            fmt_duration(2.0 * 86400.0 + 3.0 * 3600.0 + 240.0),
            "2d03h04m"
        );
        assert_eq!(fmt_unix(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_unix(1_795_576_323), "2026-11-25 03:12:03 UTC");
        assert_eq!(fmt_unix(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(fmt_unix(-1), "1969-12-31 23:59:59 UTC");
    }

    fn latest_row(t: i64, s: &Snmp) -> String {
        s.csv_row(t)
    }

    #[test]
    fn log_summary_counts_deltas_peaks_and_restarts() {
        let mut text = Snmp::csv_header() + "\n";
        let mut s = Snmp::default();
        let base = 1_795_576_320;
        for i in 0..5u64 {
            s.bytes_sent = 1000 * i * i;
            s.out_segs = 100 * i;
            s.retrans_segs = 10 * i;
            s.lost_segs = i;
            s.in_pkts = 50 * i;
            s.fec_recovered = i;
            s.in_csum_errors = 3;
            s.curr_estab = i;
            text += &latest_row(base + 10 * i as i64, &s);
            text.push('\n');
        }
        text += "garbage,line\n";
        // restart: counters back near zero
        s.bytes_sent = 500;
        s.out_segs = 20;
        s.retrans_segs = 1;
        s.lost_segs = 0;
        s.in_pkts = 10;
        s.fec_recovered = 0;
        s.in_csum_errors = 0;
        text += &latest_row(base + 50, &s);
        text.push('\n');
        let log = parse_log(text.as_bytes()).unwrap();
        assert_eq!(log.layout, Some(Layout::Latest));
        assert_eq!(log.rows.len(), 6);
        assert_eq!(log.skipped.len(), 1);
        assert_eq!(log.skipped[0].0, 7, "line number of the garbage line");
        let sum = summarize(&log).unwrap();
        assert_eq!(sum.restarts, 1);
        assert_eq!(sum.total("BytesSent"), Some(16_000 + 500));
        assert_eq!(sum.total("OutSegs"), Some(400 + 20));
        assert_eq!(sum.total("RetransSegs"), Some(41));
        assert_eq!(sum.total("InCsumErrors"), Some(0));
        assert_eq!(
            sum.total("FECShortShards"),
            None,
            "not in the latest layout"
        );
        assert_eq!(sum.period_secs, Some(10));
        assert_eq!(sum.max_curr_estab, Some(4));
        let peak = sum.peaks.iter().find(|p| p.name == "BytesSent").unwrap();
        assert_eq!((peak.per_sec, peak.at), (700.0, base + 40));
        assert!((sum.retrans_ratio.unwrap() - 41.0 / 420.0).abs() < 1e-12);
        assert!((sum.loss_ratio.unwrap() - 4.0 / 420.0).abs() < 1e-12);
        assert!((sum.fec_recovered_ratio.unwrap() - 4.0 / 210.0).abs() < 1e-12);
        let text = render_summary(&sum, Path::new("x.csv"));
        assert!(
            text.contains("1 restart") || text.contains("restarts   1"),
            "{text}"
        );
        assert!(text.contains("9.76%"), "{text}");
        let sp = sparklines(&log, 60);
        assert_eq!(sp.lines().count(), 3);
        let svg = svg_chart(&log, "t<&>").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("t&lt;&amp;&gt;"));
    }

    #[test]
    fn log_2021_layout_and_headerless_files() {
        let mut names = vec!["Unix"];
        names.extend_from_slice(&LOG_COLUMNS[..20]);
        names.extend_from_slice(&[
            "FECParityShards",
            "FECErrs",
            "FECRecovered",
            "FECShortShards",
        ]);
        let header = names.join(",");
        let row = |t: i64, sent: u64, short: u64| {
            let mut v = vec![t.to_string()];
            v.push(sent.to_string());
            v.extend((0..19).map(|_| "0".to_string()));
            v.extend(["3", "0", "2", &short.to_string()].map(String::from));
            v.join(",")
        };
        let text = format!("{header}\n{}\n{}\n", row(100, 10, 1), row(160, 70, 4));
        let log = parse_log(text.as_bytes()).unwrap();
        assert_eq!(log.layout, Some(Layout::Go2021));
        let sum = summarize(&log).unwrap();
        assert_eq!(sum.total("BytesSent"), Some(60));
        assert_eq!(sum.total("FECShortShards"), Some(3));
        assert_eq!(sum.total("FECFullShards"), None);
        // without a header: guessed from the column count, noted once
        let text = format!("{}\n{}\n", row(100, 10, 1), row(160, 70, 4));
        let log = parse_log(text.as_bytes()).unwrap();
        assert_eq!(log.layout, Some(Layout::Go2021));
        assert_eq!(log.rows.len(), 2);
        assert!(log.skipped.is_empty());
        assert_eq!(log.notes.len(), 1);
        // only malformed lines: no summary
        let log = parse_log(&b"a,b\n\xff\xfe\n"[..]).unwrap();
        assert_eq!(log.skipped.len(), 2);
        assert!(summarize(&log).is_none());
    }

    #[test]
    fn usage_checks() {
        let a = |ctl: bool, file: bool, watch: bool, svg: bool| SnmpArgs {
            ctl: ctl.then(|| "c".into()),
            file: file.then(|| "f".into()),
            watch,
            json: false,
            svg: svg.then(|| "s".into()),
        };
        assert!(check_args(&a(true, false, true, false)).is_ok());
        assert!(check_args(&a(false, true, false, true)).is_ok());
        for bad in [a(false, false, false, false), a(true, true, false, false)] {
            assert!(
                matches!(check_args(&bad), Err(CliError::Usage(_))),
                "{bad:?}"
            );
        }
        assert!(check_combination(&a(true, false, true, false)).is_ok());
        assert!(check_combination(&a(false, true, false, true)).is_ok());
        for bad in [a(true, false, false, true), a(false, true, true, false)] {
            assert!(check_combination(&bad).is_err(), "{bad:?}");
        }
    }
}
