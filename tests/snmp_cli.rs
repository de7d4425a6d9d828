//! `kcptun snmp` end to end: the binary against fake control sockets (a unix listener in a
//! thread answering like kcptun, or garbage, or nothing) and against generated `--snmplog` files.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kcptun::proto::snmp::Snmp;
use serde_json::{json, Map, Value};

fn kcptun() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kcptun"))
}

/// A fresh directory of its own for each test (unix socket paths must stay short).
fn tmpdir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "kcptun-snmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The answer of a kcptun at its `n`-th request: counters grow by a fixed step each second.
fn answer(n: u64) -> Value {
    let snmp = Snmp {
        bytes_sent: 1234 + 1000 * n,
        bytes_received: 5678 + 2000 * n,
        in_pkts: 10 + 5 * n,
        out_pkts: 20 + 6 * n,
        in_segs: 30 + 7 * n,
        out_segs: 40 + 8 * n,
        retrans_segs: 3 * n,
        fast_retrans_segs: 2 * n,
        lost_segs: n,
        fec_recovered: 4 * n,
        curr_estab: 2,
        ..Snmp::default()
    };
    let counters: Map<String, Value> = snmp
        .fields()
        .iter()
        .map(|(k, v)| ((*k).to_string(), json!(v)))
        .collect();
    json!({
        "kcptun": "0.1.0",
        "role": "server",
        "pid": 4242,
        "uptime_secs": 100.0 + n as f64,
        "sessions": 2,
        "streams": 5,
        "snmp": counters,
    })
}

/// A fake control socket: for each connection, reads one request line, sends it on `lines`,
/// then behaves as `mode` says.
#[derive(Clone, Copy)]
enum Peer {
    Kcptun,
    Garbage,
    Silent,
}

fn serve(path: &Path, mode: Peer) -> mpsc::Receiver<String> {
    let l = UnixListener::bind(path).unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for (n, conn) in l.incoming().enumerate() {
            let Ok(mut c) = conn else { return };
            let tx = tx.clone();
            thread::spawn(move || {
                let mut line = String::new();
                let mut r = BufReader::new(c.try_clone().unwrap());
                let _ = r.read_line(&mut line);
                let _ = tx.send(line);
                match mode {
                    Peer::Kcptun => {
                        let _ = c.write_all(answer(n as u64).to_string().as_bytes());
                    }
                    Peer::Garbage => {
                        let _ = c.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
                    }
                    Peer::Silent => {
                        // hold the connection open without a word
                        let mut sink = [0u8; 64];
                        let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                        let _ = c.read(&mut sink);
                    }
                }
            });
        }
    });
    rx
}

/// Asserts a failed run printed exactly one line `kcptun: …` on stderr; returns it.
fn one_line_error(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got {:?}",
        out.status
    );
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("kcptun: "), "{err:?}");
    err.trim_end().to_string()
}

#[test]
fn ctl_prints_go_style_line_and_header() {
    let d = tmpdir();
    let sock = d.join("ctl.sock");
    let requests = serve(&sock, Peer::Kcptun);
    let out = kcptun()
        .args(["snmp", "--ctl"])
        .arg(&sock)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].contains("server, pid 4242, up 1m40s, 2 sessions, 5 streams"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("KCP SNMP:&{BytesSent:1234 BytesReceived:5678 MaxConn:0 "),
        "{stdout}"
    );
    assert!(lines[1].ends_with(" OOBPackets:0}"), "{stdout}");
    assert_eq!(
        requests.recv_timeout(Duration::from_secs(1)).unwrap(),
        "snmp\n"
    );
}

#[test]
fn ctl_json_is_the_answer_pretty_printed() {
    let d = tmpdir();
    let sock = d.join("ctl.sock");
    let _rq = serve(&sock, Peer::Kcptun);
    let out = kcptun()
        .args(["snmp", "--json", "--ctl"])
        .arg(&sock)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v, answer(0));
    assert!(stdout.lines().count() > 30, "pretty: {stdout}");
    // order as received: "kcptun" first, counters in Go order
    assert!(stdout
        .lines()
        .nth(1)
        .unwrap()
        .contains("\"kcptun\": \"0.1.0\""));
    assert!(stdout.find("BytesSent").unwrap() < stdout.find("OOBPackets").unwrap());
}

#[test]
fn ctl_missing_socket() {
    let d = tmpdir();
    let sock = d.join("nothing.sock");
    let out = kcptun()
        .args(["snmp", "--ctl"])
        .arg(&sock)
        .output()
        .unwrap();
    let err = one_line_error(&out);
    let p = sock.display();
    assert_eq!(
        err,
        format!("kcptun: no control socket at {p}: start kcptun with --ctl {p}")
    );
}

#[test]
fn ctl_stale_socket_is_refused() {
    let d = tmpdir();
    let sock = d.join("stale.sock");
    drop(UnixListener::bind(&sock).unwrap()); // the file stays, nobody listens
    let out = kcptun()
        .args(["snmp", "--ctl"])
        .arg(&sock)
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains("stale"), "{err}");
}

#[test]
fn ctl_peer_answering_garbage() {
    let d = tmpdir();
    let sock = d.join("web.sock");
    let _rq = serve(&sock, Peer::Garbage);
    let out = kcptun()
        .args(["snmp", "--ctl"])
        .arg(&sock)
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert_eq!(
        err,
        format!("kcptun: {} did not answer like kcptun", sock.display())
    );
}

#[test]
fn ctl_peer_that_never_answers_times_out() {
    let d = tmpdir();
    let sock = d.join("mute.sock");
    let _rq = serve(&sock, Peer::Silent);
    let t = Instant::now();
    let out = kcptun()
        .args(["snmp", "--ctl"])
        .arg(&sock)
        .output()
        .unwrap();
    let took = t.elapsed();
    let err = one_line_error(&out);
    assert!(err.ends_with("did not answer like kcptun"), "{err}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

#[test]
fn snmp_without_source_is_a_usage_error() {
    let out = kcptun().args(["snmp", "--json"]).output().unwrap();
    let err = one_line_error(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("--ctl") && err.contains("--file"), "{err}");
    let out = kcptun()
        .args(["snmp", "--ctl", "a", "--file", "b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    one_line_error(&out);
}

/// Runs `kcptun snmp --watch …` until it printed `want` lines (or 8 s passed), then kills it.
fn watch_lines(sock: &Path, extra: &[&str], want: usize) -> Vec<String> {
    let mut child = kcptun()
        .args(["snmp", "--watch", "--ctl"])
        .arg(sock)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { return };
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut lines = Vec::new();
    while lines.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn watch_json_prints_one_line_per_second_with_rates() {
    let d = tmpdir();
    let sock = d.join("ctl.sock");
    let _rq = serve(&sock, Peer::Kcptun);
    let t = Instant::now();
    let lines = watch_lines(&sock, &["--json"], 3);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "paced at 1/s: {:?}",
        t.elapsed()
    );
    let v: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(v[0]["rates"].is_null(), "no rate before a second sample");
    // the fake peer's uptime moves 1 s per answer: rates are the per-answer steps
    for x in &v[1..] {
        assert_eq!(x["rates"]["BytesSent"], 1000.0);
        assert_eq!(x["rates"]["BytesReceived"], 2000.0);
        assert_eq!(x["rates"]["RetransSegs"], 3.0);
        assert_eq!(x["rates"]["LostSegs"], 1.0);
        assert_eq!(x["rates"]["FECRecovered"], 4.0);
        assert_eq!(x["sessions"], 2);
        assert_eq!(x["streams"], 5);
    }
    assert_eq!(v[2]["totals"]["BytesSent"], 3234);
}

#[test]
fn watch_table_without_terminal_has_no_escapes() {
    let d = tmpdir();
    let sock = d.join("ctl.sock");
    let _rq = serve(&sock, Peer::Kcptun);
    // two frames of 16 lines, one blank line between them
    let lines = watch_lines(&sock, &[], 33);
    let all = lines.join("\n");
    assert!(!all.contains('\x1b'), "{all}");
    let rows: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("RetransSegs"))
        .collect();
    assert_eq!(rows.len(), 2, "{all}");
    assert!(
        rows[0].trim_end().ends_with('-'),
        "first frame has no rate: {all}"
    );
    assert!(rows[1].trim_end().ends_with(" 3"), "{all}");
    assert!(all.contains("1000 B/s"), "{all}");
}

// ---------------------------------------------------------------------------------------------
// --file

const HEADER_2021: &str = "Unix,BytesSent,BytesReceived,MaxConn,ActiveOpens,PassiveOpens,\
    CurrEstab,InErrs,InCsumErrors,KCPInErrors,InPkts,OutPkts,InSegs,OutSegs,InBytes,OutBytes,\
    RetransSegs,FastRetransSegs,EarlyRetransSegs,LostSegs,RepeatSegs,FECParityShards,FECErrs,\
    FECRecovered,FECShortShards";

/// A latest-layout snmplog: 6 rows 60 s apart, a malformed line 4.
fn latest_log() -> String {
    let mut s = Snmp::csv_header() + "\n";
    let t0 = 1_795_576_320;
    for i in 0..6u64 {
        if i == 2 {
            s += "1795576440,12,oops\n"; // line 4
        }
        let c = Snmp {
            bytes_sent: 600_000 * i,
            bytes_received: 60_000 * i,
            out_bytes: 700_000 * i,
            in_bytes: 80_000 * i * i,
            out_segs: 500 * i,
            in_segs: 300 * i,
            out_pkts: 400 * i,
            in_pkts: 250 * i,
            retrans_segs: 25 * i,
            fast_retrans_segs: 20 * i,
            lost_segs: 5 * i,
            fec_recovered: 10 * i,
            in_csum_errors: 7 * i,
            curr_estab: 1,
            ..Snmp::default()
        };
        s += &c.csv_row(t0 + 60 * i as i64);
        s.push('\n');
    }
    s
}

fn log_2021() -> String {
    let mut s = String::from(HEADER_2021) + "\n";
    for i in 0..4u64 {
        // 25 columns: Unix, BytesSent(1) … RepeatSegs(20), FECParityShards(21), FECErrs(22),
        // FECRecovered(23), FECShortShards(24)
        let mut v = vec!["0".to_string(); 25];
        v[0] = (1_795_576_323 + i as i64).to_string();
        v[1] = (1000 * i).to_string(); // BytesSent
        v[2] = (3000 * i).to_string(); // BytesReceived
        v[11] = (40 * i).to_string(); // OutPkts
        v[13] = (50 * i).to_string(); // OutSegs
        v[16] = (5 * i).to_string(); // RetransSegs
        v[21] = (3 * i).to_string();
        v[23] = (2 * i).to_string();
        v[24] = i.to_string();
        assert_eq!(v.len(), 25);
        s += &v.join(",");
        s.push('\n');
        if i == 1 {
            s += "1795576325,1,2,3\n"; // line 4: too few fields
        }
    }
    s
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn file_latest_layout_summary_and_warning() {
    let d = tmpdir();
    let csv = write(&d, "snmp.csv", &latest_log());
    let out = kcptun()
        .args(["snmp", "--file"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(stderr.contains("skipped"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stdout.contains("latest layout, 6 rows, 1 line skipped"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "2026-11-25 03:12:00 UTC .. 2026-11-25 03:17:00 UTC (5m00s, a row every 60s)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("sent 2.9 MiB"), "{stdout}"); // 3_000_000 bytes
    assert!(
        stdout.contains("retransmit 125 of 2500 segments sent (5.00%)"),
        "{stdout}"
    );
    assert!(stdout.contains("LostSegs/OutSegs 1.00%"), "{stdout}");
    assert!(stdout.contains("checksum 35"), "{stdout}");
    // InBytes grows quadratically: the last interval is the peak, 80_000*9/60 B/s
    assert!(stdout.contains("InBytes"), "{stdout}");
    assert!(stdout.contains("at 2026-11-25 03:17:00 UTC"), "{stdout}");
    // sparklines when no --svg
    assert!(stdout.contains("retrans/s"), "{stdout}");
    assert!(stdout.contains('█'), "{stdout}");
}

#[test]
fn file_json_for_scripts() {
    let d = tmpdir();
    let csv = write(&d, "snmp.csv", &latest_log());
    let out = kcptun()
        .args(["snmp", "--json", "--file"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["layout"], "latest");
    assert_eq!(v["rows"], 6);
    assert_eq!(v["skipped_lines"], 1);
    assert_eq!(v["totals"]["BytesSent"], 3_000_000);
    assert_eq!(v["totals"]["OutSegs"], 2500);
    assert_eq!(v["checksum_errors"], 35);
    assert_eq!(v["retrans_ratio"], 0.05);
    assert_eq!(v["period_secs"], 60);
    assert_eq!(v["peaks"]["InBytes"]["per_sec"], 12_000.0);
    assert_eq!(v["peaks"]["BytesSent"]["per_sec"], 10_000.0);
}

#[test]
fn file_2021_layout() {
    let d = tmpdir();
    let csv = write(&d, "deb-20261125.log", &log_2021());
    let out = kcptun()
        .args(["snmp", "--json", "--file"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("line 4"),
        "{}",
        text(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["layout"], "2021");
    assert_eq!(v["rows"], 4);
    assert_eq!(v["totals"]["BytesSent"], 3000);
    assert_eq!(v["totals"]["BytesReceived"], 9000);
    assert_eq!(v["totals"]["OutPkts"], 120);
    assert_eq!(v["totals"]["OutSegs"], 150);
    assert_eq!(v["totals"]["FECParityShards"], 9);
    assert_eq!(v["totals"]["FECRecovered"], 6);
    assert_eq!(v["totals"]["FECShortShards"], 3);
    assert!(v["totals"].get("FECFullShards").is_none());
    assert_eq!(v["retrans_ratio"], 0.1);
    // and as text
    let out = kcptun()
        .args(["snmp", "--file"])
        .arg(&csv)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(stdout.contains("2021 layout, 4 rows"), "{stdout}");
}

#[test]
fn file_without_rows_fails() {
    let d = tmpdir();
    let csv = write(&d, "empty.csv", &(Snmp::csv_header() + "\n"));
    let out = kcptun()
        .args(["snmp", "--file"])
        .arg(&csv)
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("no data rows"), "{err}");
    let out = kcptun()
        .args(["snmp", "--file"])
        .arg(d.join("absent.csv"))
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("cannot read"), "{err}");
}

/// Checks that every element opened is closed in order; returns the element names seen.
fn balanced(svg: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut seen = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        let after = &rest[i + 1..];
        let j = after.find('>').expect("unclosed tag bracket");
        let tag = &after[..j];
        rest = &after[j + 1..];
        assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name.trim(), "mismatched close");
        } else {
            let name: String = tag
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '/')
                .collect();
            seen.push(name.clone());
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    // text between tags must not hold a raw '>' or '&' that is not an entity
    seen
}

#[test]
fn svg_chart_is_well_formed() {
    let d = tmpdir();
    let csv = write(&d, "a&b.csv", &latest_log());
    let svg_path = d.join("chart.svg");
    let out = kcptun()
        .args(["snmp", "--file"])
        .arg(&csv)
        .arg("--svg")
        .arg(&svg_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains('█'), "no sparklines with --svg: {stdout}");
    assert!(stdout.contains("chart.svg"), "{stdout}");
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
    assert!(svg.trim_end().ends_with("</svg>"));
    let names = balanced(&svg);
    assert_eq!(names.iter().filter(|n| *n == "svg").count(), 1);
    assert!(
        names.iter().filter(|n| *n == "polyline").count() >= 3,
        "{names:?}"
    );
    for label in [
        "bytes/s",
        "retransmissions/s",
        "time (UTC",
        "out bytes/s",
        "in bytes/s",
    ] {
        assert!(svg.contains(label), "axis/legend label {label}");
    }
    assert!(svg.contains("a&amp;b.csv"), "title escaped");
    assert!(!svg.contains("a&b"), "raw & escaped");
    // JSON and a chart together
    let out = kcptun()
        .args(["snmp", "--json", "--file"])
        .arg(&csv)
        .arg("--svg")
        .arg(d.join("c2.svg"))
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice::<Value>(&out.stdout).unwrap();
    assert!(d.join("c2.svg").exists());
}

#[test]
fn flags_that_do_not_fit_the_source() {
    let out = kcptun()
        .args(["snmp", "--ctl", "/nonexistent.sock", "--svg", "x.svg"])
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("--svg") && err.contains("--file"), "{err}");
    let out = kcptun()
        .args(["snmp", "--file", "/nonexistent.csv", "--watch"])
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("--watch") && err.contains("--ctl"), "{err}");
}

#[test]
fn ctl_path_that_is_not_a_socket() {
    let d = tmpdir();
    let f = write(&d, "plain.txt", "hello");
    let out = kcptun().args(["snmp", "--ctl"]).arg(&f).output().unwrap();
    let err = one_line_error(&out);
    assert!(err.ends_with("did not answer like kcptun"), "{err}");
}
