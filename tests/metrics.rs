//! `--metrics`: our client and server serve Prometheus' text format; Debian's `promtool check
//! metrics` accepts it, and a real Prometheus (Debian package `prometheus`) scraping every second
//! reads the counters after a transfer. The HTTP side is bounded: 404 elsewhere, a too-large
//! request head is refused, idle connections neither block a scrape nor pile up.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

fn require_prometheus() {
    for p in [PROMETHEUS, PROMTOOL] {
        assert!(
            Path::new(p).is_file(),
            "Prometheus not found: install it with `apt-get install -y prometheus` ({p} is missing)"
        );
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The value of the sample line `name value`.
fn sample(body: &str, name: &str) -> Option<u64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The metric names used by `packaging/grafana/kcptun.json`.
fn dashboard_metrics() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/grafana/kcptun.json");
    let text = std::fs::read_to_string(&path).expect("packaging/grafana/kcptun.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut names = Vec::new();
    for panel in v["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr");
            for (i, _) in expr
                .match_indices("kcptun_")
                .chain(expr.match_indices("process_"))
            {
                let name: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    assert!(names.len() >= 10, "{names:?}");
    names
}

/// Our server and client with `--metrics` each, and the client's local address.
struct Pair {
    server: Proc,
    client: Proc,
    local: SocketAddr,
    server_metrics: SocketAddr,
    client_metrics: SocketAddr,
    _target: Target,
}

impl Pair {
    fn start() -> Pair {
        let target = Target::start();
        let udp = free_udp_port();
        let local_addr = local(free_tcp_port());
        let server_metrics = local(free_tcp_port());
        let client_metrics = local(free_tcp_port());
        let server = Proc::spawn(
            "server",
            &ours(),
            &strs(&[
                "server",
                "-l",
                &format!("127.0.0.1:{udp}"),
                "-t",
                &target.arg(),
                "--key",
                "m",
                "--nocomp",
                "--metrics",
                &server_metrics.to_string(),
            ]),
        );
        let client = Proc::spawn(
            "client",
            &ours(),
            &strs(&[
                "client",
                "-l",
                &local_addr.to_string(),
                "-r",
                &format!("127.0.0.1:{udp}"),
                "--key",
                "m",
                "--nocomp",
                "--metrics",
                &client_metrics.to_string(),
            ]),
        );
        let mut p = Pair {
            server,
            client,
            local: local_addr,
            server_metrics,
            client_metrics,
            _target: target,
        };
        for a in [server_metrics, client_metrics] {
            let end = Instant::now() + Duration::from_secs(15);
            while http_get(a, "/metrics").is_err() {
                if let Err(e) = check_alive(&mut [&mut p.server, &mut p.client]) {
                    panic!("{e}");
                }
                assert!(Instant::now() < end, "no metrics on {a}\n{}", p.logs());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        p
    }

    fn logs(&mut self) -> String {
        logs(&mut [&mut self.server, &mut self.client])
    }
}

#[test]
fn metrics_endpoint_counts_traffic_and_passes_promtool() {
    require_prometheus();
    let _g = serial();
    let mut p = Pair::start();
    let (status, before) = http_get(p.server_metrics, "/metrics").unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(sample(&before, "kcptun_bytes_received_total"), Some(0));
    // Scrapes while data moves are answered, and the counters never go backwards.
    let local = p.local;
    let mover = std::thread::spawn(move || transfer(local, 16 * MIB, 16 * MIB));
    let mut seen = Vec::new();
    while !mover.is_finished() {
        let (status, body) = http_get(p.server_metrics, "/metrics").unwrap();
        assert_eq!(status, "HTTP/1.1 200 OK");
        seen.push(sample(&body, "kcptun_bytes_received_total").unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Err(e) = mover.join().unwrap() {
        panic!("transfer: {e}\n{}", p.logs());
    }
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    eprintln!(
        "{} scrapes answered during a 16 MiB each-way transfer",
        seen.len()
    );
    for (who, addr) in [("server", p.server_metrics), ("client", p.client_metrics)] {
        let (status, body) = http_get(addr, "/metrics").unwrap();
        assert_eq!(status, "HTTP/1.1 200 OK", "{who}");
        for name in [
            "kcptun_bytes_sent_total",
            "kcptun_bytes_received_total",
            "kcptun_in_segs_total",
            "kcptun_out_pkts_total",
        ] {
            let v = sample(&body, name).unwrap_or_else(|| panic!("{who}: no {name} in\n{body}"));
            assert!(
                v >= 2 * MIB || !name.starts_with("kcptun_bytes"),
                "{who}: {name} {v}"
            );
            assert!(v > 0, "{who}: {name} is 0");
        }
        assert!(sample(&body, "kcptun_retrans_segs_total").is_some());
        assert!(sample(&body, "kcptun_fec_recovered_total").is_some());
        assert_eq!(sample(&body, "kcptun_curr_estab"), Some(1), "{who}\n{body}");
        assert_eq!(sample(&body, "kcptun_sessions"), Some(1), "{who}");
        assert!(sample(&body, "kcptun_streams").is_some(), "{who}");
        assert!(
            body.contains(&format!(
                "kcptun_build_info{{version=\"{}\",role=\"{who}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{who}\n{body}"
        );
        assert!(sample(&body, "process_resident_memory_bytes").is_some_and(|r| r > 1 << 20));
        assert!(sample(&body, "process_open_fds").is_some_and(|n| n >= 3));
        // every series the example Grafana dashboard plots exists
        for name in dashboard_metrics() {
            assert!(
                body.lines()
                    .any(|l| l.starts_with(&format!("{name} "))
                        || l.starts_with(&format!("{name}{{"))),
                "{who}: packaging/grafana/kcptun.json uses {name}, which /metrics lacks"
            );
        }
        // Prometheus' own linter: exit 0 and nothing to report
        let mut lint = Command::new(PROMTOOL)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        lint.stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = lint.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{who}: promtool: {said}"
        );
    }
}

#[test]
fn metrics_http_is_bounded() {
    let _g = serial();
    let mut p = Pair::start();
    let a = p.server_metrics;
    let (status, body) = http_get(a, "/").unwrap();
    assert_eq!(status, "HTTP/1.1 404 Not Found", "{body}");
    assert_eq!(
        http_get(a, "/metrics/x").unwrap().0,
        "HTTP/1.1 404 Not Found"
    );
    let r = http_send(a, b"POST /metrics HTTP/1.1\r\n\r\n").unwrap();
    assert!(r.starts_with("HTTP/1.1 405 "), "{r}");
    let r = http_send(a, b"HEAD /metrics HTTP/1.0\r\n\r\n").unwrap();
    assert!(
        r.starts_with("HTTP/1.1 200 OK") && r.ends_with("\r\n\r\n"),
        "{r}"
    );
    // a request head larger than 8 KiB is refused, not buffered
    let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    big.resize(9000, b'a');
    let r = http_send(a, &big).unwrap_or_default();
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 431 "), "{r}");
    // Idle connections that never send a request: the oldest are dropped to make room, and a
    // scrape is still answered at once.
    let idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(a).expect("connect idle"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (status, body) = http_get(a, "/metrics").unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    let fds = sample(&body, "process_open_fds").unwrap();
    // the server holds its sockets plus at most 8 scrape connections, not all 40
    assert!(fds < 40, "{fds} fds open with 40 idle scrapers\n{body}");
    // an idle connection is closed by the server within its 5 s limit
    let mut first = idle.into_iter().last().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 16];
    let n = first.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "an idle connection gets no answer");
    assert!(t0.elapsed() < Duration::from_secs(12), "{:?}", t0.elapsed());
    check_alive(&mut [&mut p.server, &mut p.client]).unwrap();
}

#[test]
fn prometheus_scrapes_the_counters() {
    require_prometheus();
    let _g = serial();
    let mut p = Pair::start();
    let dir = TempDir::new("prometheus");
    let prom = local(free_tcp_port());
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: kcptun\n    static_configs:\n      - targets: ['{}', '{}']\n",
            p.server_metrics, p.client_metrics
        ),
    )
    .unwrap();
    let mut prometheus = Proc::spawn(
        "prometheus",
        Path::new(PROMETHEUS),
        &[
            format!("--config.file={}", cfg.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address={prom}"),
        ],
    );
    if let Err(e) = transfer(p.local, 4 * MIB, 4 * MIB) {
        panic!("transfer: {e}\n{}", p.logs());
    }
    let query = "/api/v1/query?query=kcptun_bytes_received_total";
    let end = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    loop {
        if let Some(st) = prometheus.exited() {
            panic!("prometheus exited ({st})\n{}", prometheus.log());
        }
        if let Ok((_, body)) = http_get(prom, query) {
            // one result per target, both above the 4 MiB each side received
            let values: Vec<f64> = body
                .split("\"value\":[")
                .skip(1)
                .filter_map(|v| v.split('"').nth(1)?.parse().ok())
                .collect();
            if values.len() == 2 && values.iter().all(|&v| v >= (4 * MIB) as f64) {
                eprintln!("prometheus read kcptun_bytes_received_total = {values:?}");
                break;
            }
            last = body;
        }
        assert!(
            Instant::now() < end,
            "Prometheus did not read the counters within 90 s; last answer: {last}\n{}{}",
            prometheus.log(),
            p.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Both targets are up in Prometheus' own view.
    let (_, up) = http_get(prom, "/api/v1/query?query=up%7Bjob%3D%22kcptun%22%7D").unwrap();
    assert_eq!(up.matches("\"value\":[").count(), 2, "{up}");
    assert!(!up.contains("\"0\"]"), "a target is down: {up}");
}
