//! `--metrics`: Prometheus' text exposition format (version 0.0.4) and the little HTTP/1.x it
//! is served over. Everything here is pure (bytes in, bytes out) except [`ProcStats::read`];
//! the listener and its connections live in the event loop (`driver/metrics.rs`).
//!
//! Names: every monotonic SNMP counter is `kcptun_<field>_total` (the snake_case of Go's field
//! name: `BytesSent` → `kcptun_bytes_sent_total`). The SNMP fields that are levels rather than
//! running counts (`CurrEstab`, `MaxConn`, `FECShardSet`, `FECShardMin` and the three
//! `RingBuffer*` fields) are gauges without the suffix, so that `rate()` is never applied to
//! them by mistake. Further gauges: `kcptun_sessions`, `kcptun_streams`,
//! `kcptun_build_info{version,role}` (always 1) and, when `/proc` is readable,
//! `process_resident_memory_bytes` and `process_open_fds` (the names Prometheus' own client
//! libraries use).
//!
//! HTTP: only `GET` (and `HEAD`) of `/metrics` (a query string is ignored) is answered 200;
//! another path is 404, another method 405, a malformed request 400, a head larger than
//! [`MAX_REQUEST`] 431. Every answer closes the connection.

use std::fmt::Write as _;

use crate::proto::snmp::Snmp;

/// Largest request head read (request line and headers); a larger one is answered 431.
pub const MAX_REQUEST: usize = 8 * 1024;

/// SNMP fields exposed as gauges (levels, not running counts).
const GAUGES: [&str; 7] = [
    "curr_estab",
    "max_conn",
    "fec_shard_set",
    "fec_shard_min",
    "ring_buffer_snd_queue",
    "ring_buffer_rcv_queue",
    "ring_buffer_snd_buffer",
];

/// Process figures read from `/proc/self` (Linux); each `None` where unreadable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcStats {
    pub rss_bytes: Option<u64>,
    pub open_fds: Option<u64>,
}

impl ProcStats {
    /// Reads `VmRSS` from `/proc/self/status` and counts `/proc/self/fd` (a few syscalls).
    pub fn read() -> ProcStats {
        let rss_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| vm_rss_bytes(&s));
        // The directory handle itself is one of the entries.
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| (d.count() as u64).saturating_sub(1));
        ProcStats {
            rss_bytes,
            open_fds,
        }
    }
}

/// `VmRSS:   1234 kB` of a `/proc/PID/status` text, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut it = line["VmRSS:".len()..].split_whitespace();
    let n: u64 = it.next()?.parse().ok()?;
    match it.next() {
        Some("kB") | None => n.checked_mul(1024),
        _ => None,
    }
}

/// What the loop knows besides the counters.
#[derive(Clone, Copy, Debug)]
pub struct Gauges {
    pub sessions: u64,
    pub streams: u64,
    /// `"client"` or `"server"`.
    pub role: &'static str,
}

/// One line of help per SNMP field (Go's field names in parentheses for grep-ability).
fn help(field: &str) -> &'static str {
    match field {
        "bytes_sent" => "Payload bytes sent by KCP (BytesSent)",
        "bytes_received" => "Payload bytes received by KCP (BytesReceived)",
        "max_conn" => "Most KCP sessions open at once (MaxConn)",
        "active_opens" => "KCP sessions opened by this client (ActiveOpens)",
        "passive_opens" => "KCP sessions accepted by this server (PassiveOpens)",
        "curr_estab" => "KCP sessions currently open (CurrEstab)",
        "in_errs" => "Datagrams dropped as malformed (InErrs)",
        "in_csum_errors" => "Datagrams failing the checksum after decryption (InCsumErrors)",
        "kcp_in_errors" => "KCP segments refused by the state machine (KCPInErrors)",
        "in_pkts" => "UDP datagrams received (InPkts)",
        "out_pkts" => "UDP datagrams sent (OutPkts)",
        "in_segs" => "KCP segments received (InSegs)",
        "out_segs" => "KCP segments sent (OutSegs)",
        "in_bytes" => "UDP bytes received (InBytes)",
        "out_bytes" => "UDP bytes sent (OutBytes)",
        "retrans_segs" => "KCP segments retransmitted, all causes (RetransSegs)",
        "fast_retrans_segs" => "KCP fast retransmissions (FastRetransSegs)",
        "early_retrans_segs" => "KCP early retransmissions (EarlyRetransSegs)",
        "lost_segs" => "KCP segments retransmitted on timeout (LostSegs)",
        "repeat_segs" => "Duplicate KCP segments received (RepeatSegs)",
        "fec_full_shard_set" => "FEC groups complete without recovery (FECFullShardSet)",
        "fec_recovered" => "Data shards recovered by FEC (FECRecovered)",
        "fec_errs" => "FEC decoding errors (FECErrs)",
        "fec_parity_shards" => "FEC parity shards received (FECParityShards)",
        "fec_shard_set" => "FEC groups being tracked (FECShardSet)",
        "fec_shard_min" => "Newest FEC group id seen (FECShardMin)",
        "ring_buffer_snd_queue" => "KCP send queue length (RingBufferSndQueue)",
        "ring_buffer_rcv_queue" => "KCP receive queue length (RingBufferRcvQueue)",
        "ring_buffer_snd_buffer" => "KCP send buffer length (RingBufferSndBuffer)",
        "oob_packets" => "Out-of-band packets (OOBPackets)",
        _ => "SNMP counter",
    }
}

/// Go's field name (`FECShardMin`) → snake_case (`fec_shard_min`).
fn snake(go: &str) -> String {
    let b = go.as_bytes();
    let mut s = String::with_capacity(go.len() + 4);
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_uppercase() {
            // a new word starts at an upper-case letter after a lower-case one, or at the last
            // capital of an acronym (the `S` of `FECShard`)
            let prev_lower = i > 0 && b[i - 1].is_ascii_lowercase();
            let acronym_end = i > 0
                && b[i - 1].is_ascii_uppercase()
                && b.get(i + 1).is_some_and(u8::is_ascii_lowercase);
            if prev_lower || acronym_end {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase() as char);
        } else {
            s.push(c as char);
        }
    }
    s
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    );
}

/// The `/metrics` body.
pub fn render(snap: &Snmp, g: &Gauges, proc: &ProcStats) -> String {
    let mut out = String::with_capacity(6 * 1024);
    for (go, v) in snap.fields() {
        let field = snake(go);
        if GAUGES.contains(&field.as_str()) {
            family(
                &mut out,
                &format!("kcptun_{field}"),
                "gauge",
                help(&field),
                v,
            );
        } else {
            let name = format!("kcptun_{field}_total");
            family(&mut out, &name, "counter", help(&field), v);
        }
    }
    family(
        &mut out,
        "kcptun_sessions",
        "gauge",
        "KCP sessions of this process",
        g.sessions,
    );
    family(
        &mut out,
        "kcptun_streams",
        "gauge",
        "Tunnelled connections (smux streams) open",
        g.streams,
    );
    let _ = write!(
        out,
        "# HELP kcptun_build_info Version and role of this kcptun; always 1\n\
         # TYPE kcptun_build_info gauge\n\
         kcptun_build_info{{version=\"{}\",role=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION"),
        g.role
    );
    if let Some(rss) = proc.rss_bytes {
        family(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes",
            rss,
        );
    }
    if let Some(fds) = proc.open_fds {
        family(
            &mut out,
            "process_open_fds",
            "gauge",
            "Open file descriptors",
            fds,
        );
    }
    out
}

/// What a request head asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// The head is not complete yet: read more (up to [`MAX_REQUEST`]).
    Incomplete,
    /// `GET /metrics` (`head`: `HEAD /metrics`, no body in the answer).
    Metrics { head: bool },
    /// Answer with this status and a short text body.
    Error(u16),
}

/// Parses the bytes received so far on a connection.
pub fn parse_request(buf: &[u8]) -> Request {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n"));
    if end.is_none() {
        return if buf.len() >= MAX_REQUEST {
            Request::Error(431)
        } else {
            Request::Incomplete
        };
    }
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let Ok(line) = std::str::from_utf8(&buf[..line_end]) else {
        return Request::Error(400);
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Error(400);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Request::Error(400);
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Request::Error(405),
    };
    if path != "/metrics" {
        return Request::Error(404);
    }
    Request::Metrics { head }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// A complete HTTP/1.1 answer that closes the connection. `head`: the body is left out (its
/// length still announced), as HEAD requires.
pub fn response(status: u16, body: &str, head: bool) -> Vec<u8> {
    let ctype = if status == 200 {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// The answer to an error status: a one-line body saying what to ask for instead.
pub fn error_response(status: u16) -> Vec<u8> {
    let body = match status {
        404 => "not found: metrics are served at /metrics\n".to_string(),
        405 => "method not allowed: use GET /metrics\n".to_string(),
        s => format!("{s} {}: send GET /metrics HTTP/1.1\n", reason(s)),
    };
    response(status, &body, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_of_go_names() {
        assert_eq!(snake("BytesSent"), "bytes_sent");
        assert_eq!(snake("KCPInErrors"), "kcp_in_errors");
        assert_eq!(snake("FECShardMin"), "fec_shard_min");
        assert_eq!(snake("OOBPackets"), "oob_packets");
        assert_eq!(snake("InCsumErrors"), "in_csum_errors");
        // every Go name maps to our own field name (the struct uses the same snake_case)
        let s = Snmp::default();
        for (go, _) in s.fields() {
            assert_ne!(help(&snake(go)), "SNMP counter", "{go} has no help text");
        }
    }

    #[test]
    fn exposition_names_types_and_values() {
        let snap = Snmp {
            bytes_sent: 5,
            bytes_received: 7,
            curr_estab: 2,
            retrans_segs: 3,
            fec_recovered: 1,
            ..Snmp::default()
        };
        let g = Gauges {
            sessions: 2,
            streams: 4,
            role: "server",
        };
        let proc = ProcStats {
            rss_bytes: Some(4096),
            open_fds: Some(9),
        };
        let text = render(&snap, &g, &proc);
        for line in [
            "# TYPE kcptun_bytes_sent_total counter",
            "kcptun_bytes_sent_total 5",
            "kcptun_bytes_received_total 7",
            "kcptun_in_segs_total 0",
            "kcptun_retrans_segs_total 3",
            "kcptun_fec_recovered_total 1",
            "# TYPE kcptun_curr_estab gauge",
            "kcptun_curr_estab 2",
            "kcptun_sessions 2",
            "kcptun_streams 4",
            "kcptun_build_info{version=\"0.1.0\",role=\"server\"} 1",
            "process_resident_memory_bytes 4096",
            "process_open_fds 9",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("kcptun_curr_estab_total"));
        // every sample has a TYPE line and a HELP line, and no name is declared twice
        let types: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let mut dedup = types.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(types.len(), dedup.len());
        assert_eq!(types.len(), 30 + 3 + 2);
        assert!(text.ends_with('\n'));
        let without = render(&snap, &g, &ProcStats::default());
        assert!(!without.contains("process_"));
    }

    #[test]
    fn requests() {
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"),
            Request::Incomplete
        );
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Metrics { head: false }
        );
        assert_eq!(
            parse_request(b"HEAD /metrics?x=1 HTTP/1.0\n\n"),
            Request::Metrics { head: true }
        );
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\n\r\n"),
            Request::Error(404)
        );
        assert_eq!(
            parse_request(b"GET /metricsx HTTP/1.1\r\n\r\n"),
            Request::Error(404)
        );
        assert_eq!(
            parse_request(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Request::Error(405)
        );
        assert_eq!(parse_request(b"GET /metrics\r\n\r\n"), Request::Error(400));
        assert_eq!(
            parse_request(b"GET metrics HTTP/1.1\r\n\r\n"),
            Request::Error(400)
        );
        assert_eq!(
            parse_request(b"\xff\xfe /metrics HTTP/1.1\r\n\r\n"),
            Request::Error(400)
        );
        let big = vec![b'a'; MAX_REQUEST];
        assert_eq!(parse_request(&big), Request::Error(431));
        assert_eq!(parse_request(&big[..MAX_REQUEST - 1]), Request::Incomplete);
    }

    #[test]
    fn responses() {
        let r = String::from_utf8(response(200, "a 1\n", false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(
            r.contains("Content-Length: 4\r\n") && r.ends_with("\r\n\r\na 1\n"),
            "{r}"
        );
        assert!(r.contains("version=0.0.4"));
        let h = String::from_utf8(response(200, "a 1\n", true)).unwrap();
        assert!(
            h.ends_with("\r\n\r\n") && h.contains("Content-Length: 4"),
            "{h}"
        );
        let e = String::from_utf8(error_response(404)).unwrap();
        assert!(
            e.starts_with("HTTP/1.1 404 Not Found\r\n") && e.contains("/metrics"),
            "{e}"
        );
    }

    #[test]
    fn rss_from_status() {
        assert_eq!(
            vm_rss_bytes("Name:\tk\nVmRSS:\t    1234 kB\n"),
            Some(1234 * 1024)
        );
        assert_eq!(vm_rss_bytes("Name:\tk\n"), None);
        assert!(ProcStats::read().rss_bytes.is_some_and(|r| r > 0));
        assert!(ProcStats::read().open_fds.is_some_and(|n| n >= 3));
    }
}
