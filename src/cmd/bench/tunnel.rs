//! `kcptun bench tunnel`: the whole product measured end to end on loopback.
//!
//! One measurement ([`measure`]) starts an embedded TCP target in this process (threads), then a
//! server and a client as child processes on free 127.0.0.1 ports (ours: this executable with
//! `server …`/`client …`; with `--vs-go` also `/usr/bin/kcptun-server`/`-client`). Every
//! connection to the target starts with one mode byte: `U` sink (counts bytes), `D` source
//! (sends a pre-generated pseudo-random buffer forever), `P` echo. Order of a measurement:
//! establish (one 64-byte round trip), 1 s idle → VmRSS, 200 idle ping-pongs, `duration` s of
//! upload then of download while a second connection keeps ping-ponging, VmHWM, optionally the
//! server restart. Goodput counts bytes that arrived at the far end (target for up, bench for
//! down). CPU is utime+stime of both children over each bulk phase.
//!
//! Invariant: children are killed on every exit path ([`ChildProc`]'s `Drop`); their stderr goes
//! to a temp file that is shown when one of them dies.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::{num, print_json, table, Progress};
use crate::cmd::{BenchTunnelArgs, RunError};
use crate::proto::rng::Rng;

pub(super) const GO_CLIENT: &str = "/usr/bin/kcptun-client";
pub(super) const GO_SERVER: &str = "/usr/bin/kcptun-server";
/// Size of the incompressible buffer the source and the uploader send over and over.
const DATA_LEN: usize = 1 << 20;
const PING_LEN: usize = 64;
const IDLE_PINGS: usize = 200;
/// How long the tunnel may take to answer its first round trip.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(20);
/// A ping-pong slower than this marks the ping connection broken (it is then replaced).
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between ping-pongs under load.
const LOADED_PING_GAP: Duration = Duration::from_millis(20);
/// How long `--restart` waits for the tunnel to answer again.
const RESTART_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) fn err(msg: impl Into<String>) -> RunError {
    RunError::Other(msg.into())
}

/// One tunnel configuration.
#[derive(Debug, Clone)]
struct Config {
    crypt: String,
    mode: String,
    ds: u16,
    ps: u16,
    comp: bool,
    sndwnd: u32,
    rcvwnd: u32,
}

impl Config {
    fn from_args(a: &BenchTunnelArgs) -> Self {
        Config {
            crypt: a.crypt.clone(),
            mode: a.mode.clone(),
            ds: a.datashard,
            ps: a.parityshard,
            comp: a.comp,
            sndwnd: a.sndwnd,
            rcvwnd: a.rcvwnd,
        }
    }

    fn label(&self) -> String {
        let fec = if self.ds == 0 || self.ps == 0 {
            "FEC off".to_string()
        } else {
            format!("FEC {}/{}", self.ds, self.ps)
        };
        format!(
            "{}, crypt {}, {fec}, windows {}/{}, compression {}, smux v1",
            self.mode,
            self.crypt,
            self.sndwnd,
            self.rcvwnd,
            if self.comp { "on" } else { "off" }
        )
    }

    /// Flags common to client and server.
    fn flags(&self) -> Vec<String> {
        let mut f: Vec<String> = [
            "--key",
            "kcptun-bench",
            "--crypt",
            &self.crypt,
            "--mode",
            &self.mode,
            "--ds",
            &self.ds.to_string(),
            "--ps",
            &self.ps.to_string(),
            "--sndwnd",
            &self.sndwnd.to_string(),
            "--rcvwnd",
            &self.rcvwnd.to_string(),
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !self.comp {
            f.push("--nocomp".into());
        }
        f
    }

    fn to_json(&self) -> Value {
        json!({
            "crypt": self.crypt, "mode": self.mode, "ds": self.ds, "ps": self.ps,
            "compression": self.comp, "sndwnd": self.sndwnd, "rcvwnd": self.rcvwnd,
        })
    }
}

/// Which client/server binaries a measurement runs.
#[derive(Debug, Clone)]
pub(super) struct Impl {
    pub(super) name: &'static str,
    pub(super) client: (PathBuf, Vec<String>),
    pub(super) server: (PathBuf, Vec<String>),
}

impl Impl {
    pub(super) fn ours() -> Result<Self, RunError> {
        let exe = std::env::current_exe()
            .map_err(|e| err(format!("bench: cannot find this executable: {e}")))?;
        // Go 2021 speaks smux v1 by default; ours is told to, so both run the same protocol.
        let v1 = ["--smuxver".to_string(), "1".to_string()];
        Ok(Impl {
            name: "ours",
            client: (exe.clone(), [vec!["client".into()], v1.to_vec()].concat()),
            server: (exe, [vec!["server".into()], v1.to_vec()].concat()),
        })
    }

    pub(super) fn go() -> Result<Self, RunError> {
        for p in [GO_CLIENT, GO_SERVER] {
            if !Path::new(p).exists() {
                return Err(err(format!(
                    "bench --vs-go: {p} not found; install with apt-get install -y kcptun"
                )));
            }
        }
        Ok(Impl {
            name: "Go",
            client: (GO_CLIENT.into(), vec![]),
            server: (GO_SERVER.into(), vec![]),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// child processes

/// A running client or server; killed and reaped on drop. Its stderr goes to `log`.
pub(super) struct ChildProc {
    what: String,
    child: Child,
    log: PathBuf,
}

impl ChildProc {
    pub(super) fn spawn(what: String, prog: &Path, args: &[String]) -> Result<Self, RunError> {
        let log = std::env::temp_dir().join(format!(
            "kcptun-bench-{}-{}.log",
            std::process::id(),
            what.replace(' ', "-")
        ));
        let f = File::create(&log)
            .map_err(|e| err(format!("bench: cannot create {}: {e}", log.display())))?;
        let mut cmd = Command::new(prog);
        // If the bench dies without unwinding (SIGKILL, SIGTERM), the kernel kills the child.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        #[cfg(target_os = "linux")]
        #[allow(unsafe_code)]
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .map_err(|e| err(format!("bench: cannot start {}: {e}", prog.display())))?;
        Ok(ChildProc { what, child, log })
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the child's stderr.
    pub(super) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(15)..];
        if tail.is_empty() {
            "(no output)".into()
        } else {
            tail.join("\n  ")
        }
    }

    /// `Err` with the child's stderr if it has exited.
    pub(super) fn check(&mut self) -> Result<(), RunError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(err(format!(
                "bench: {} exited ({status}); its stderr ({}):\n  {}",
                self.what,
                self.log.display(),
                self.log_tail()
            ))),
            _ => Ok(()),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

pub(super) fn check_all(children: &mut [&mut ChildProc]) -> Result<(), RunError> {
    children.iter_mut().try_for_each(|c| c.check())
}

/// utime+stime of `pid` in clock ticks.
pub(super) fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

pub(super) fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    #[allow(unsafe_code)]
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// A `/proc/<pid>/status` field in kB (VmRSS, VmHWM), as MiB.
pub(super) fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line[field.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

pub(super) fn free_tcp_port() -> Result<u16, RunError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| err(format!("bench: no free TCP port: {e}")))
}

pub(super) fn free_udp_port() -> Result<u16, RunError> {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| err(format!("bench: no free UDP port: {e}")))
}

// ---------------------------------------------------------------------------------------------
// the embedded target

/// The TCP target the server forwards to: sink, source or echo per connection (first byte).
struct Target {
    addr: SocketAddr,
    /// Bytes received by sink connections.
    sunk: Arc<AtomicU64>,
    /// Set when a sink received bytes that are not the bench's data stream.
    corrupt: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Target {
    fn start(data: Arc<Vec<u8>>) -> Result<Self, RunError> {
        let l = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| err(format!("bench: cannot listen for the target: {e}")))?;
        let addr = l
            .local_addr()
            .map_err(|e| err(format!("bench: target address: {e}")))?;
        let sunk = Arc::new(AtomicU64::new(0));
        let corrupt = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2, c2) = (sunk.clone(), stop.clone(), corrupt.clone());
        let accept = thread::spawn(move || {
            for conn in l.incoming() {
                if st2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s3, d3, c3) = (s2.clone(), data.clone(), c2.clone());
                thread::spawn(move || serve(conn, &s3, &c3, &d3));
            }
        });
        Ok(Target {
            addr,
            sunk,
            corrupt,
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// One target connection; returns when the peer closes or an I/O error occurs.
fn serve(mut c: TcpStream, sunk: &AtomicU64, corrupt: &AtomicBool, data: &[u8]) {
    let _ = c.set_nodelay(true);
    let mut mode = [0u8; 1];
    if c.read_exact(&mut mode).is_err() {
        return;
    }
    match mode[0] {
        b'U' => {
            let mut buf = vec![0u8; 1 << 16];
            let mut off = 0;
            while let Ok(n @ 1..) = c.read(&mut buf) {
                if !continues(data, &mut off, &buf[..n]) {
                    corrupt.store(true, Ordering::Relaxed);
                    return;
                }
                sunk.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        b'D' => while c.write_all(data).is_ok() {},
        b'P' => {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = c.read(&mut buf) {
                if c.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
        _ => {}
    }
}

/// Whether `chunk` continues the endless repetition of `data` at stream offset `*off`
/// (advanced past the chunk).
fn continues(data: &[u8], off: &mut usize, mut chunk: &[u8]) -> bool {
    while !chunk.is_empty() {
        let at = *off % data.len();
        let n = chunk.len().min(data.len() - at);
        if chunk[..n] != data[at..at + n] {
            return false;
        }
        *off += n;
        chunk = &chunk[n..];
    }
    true
}

// ---------------------------------------------------------------------------------------------
// the bench side

/// A ping-pong connection through the tunnel.
struct Pinger {
    conn: TcpStream,
    msg: [u8; PING_LEN],
    echo: [u8; PING_LEN],
}

impl Pinger {
    /// Connects to the client and waits for a first echo, `timeout` per attempt.
    fn open(local: SocketAddr, timeout: Duration) -> std::io::Result<Self> {
        let mut conn = TcpStream::connect_timeout(&local, Duration::from_secs(2))?;
        conn.set_nodelay(true)?;
        conn.set_read_timeout(Some(timeout))?;
        conn.write_all(b"P")?;
        let mut p = Pinger {
            conn,
            msg: [0; PING_LEN],
            echo: [0; PING_LEN],
        };
        p.round_trip(0)?;
        p.conn.set_read_timeout(Some(PING_TIMEOUT))?;
        Ok(p)
    }

    /// One 64-byte round trip; checks the echo.
    fn round_trip(&mut self, seq: u64) -> std::io::Result<Duration> {
        self.msg[..8].copy_from_slice(&seq.to_le_bytes());
        let t = Instant::now();
        self.conn.write_all(&self.msg)?;
        self.conn.read_exact(&mut self.echo)?;
        let d = t.elapsed();
        if self.echo != self.msg {
            return Err(std::io::Error::other("echo differs"));
        }
        Ok(d)
    }
}

/// Waits until a new connection through the client is echoed, up to `limit`.
fn establish(
    local: SocketAddr,
    limit: Duration,
    children: &mut [&mut ChildProc],
) -> Result<Pinger, RunError> {
    let t0 = Instant::now();
    let mut last = String::new();
    while t0.elapsed() < limit {
        check_all(children)?;
        match Pinger::open(local, Duration::from_secs(2)) {
            Ok(p) => return Ok(p),
            Err(e) => {
                last = e.to_string();
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let logs: Vec<String> = children
        .iter()
        .map(|c| format!("{} stderr:\n  {}", c.what, c.log_tail()))
        .collect();
    Err(err(format!(
        "bench: the tunnel did not answer within {} s (last error: {last})\n{}",
        limit.as_secs(),
        logs.join("\n")
    )))
}

fn percentile(sorted: &[f64], p: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[(sorted.len() * p / 100).min(sorted.len() - 1)])
}

fn sorted_ms(v: &[Duration]) -> Vec<f64> {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    ms
}

/// Figures of one measurement; `None` where it could not be taken.
#[derive(Debug, Default, Clone)]
struct Metrics {
    up_mbps: f64,
    down_mbps: f64,
    cpu_up: Option<f64>,
    cpu_down: Option<f64>,
    rss_idle_client: Option<f64>,
    rss_idle_server: Option<f64>,
    rss_peak_client: Option<f64>,
    rss_peak_server: Option<f64>,
    rtt_idle_p50: Option<f64>,
    rtt_idle_p99: Option<f64>,
    rtt_load_p50: Option<f64>,
    rtt_load_p99: Option<f64>,
    restart_s: Option<f64>,
    restart_asked: bool,
}

impl Metrics {
    /// `(json key, table label, value)` of every figure, in table order.
    fn figures(&self) -> Vec<(&'static str, &'static str, Option<f64>)> {
        let mut v = vec![
            ("up_MBps", "goodput up (MB/s)", Some(self.up_mbps)),
            ("down_MBps", "goodput down (MB/s)", Some(self.down_mbps)),
            (
                "cpu_s_per_GB_up",
                "CPU s/GB up (client+server)",
                self.cpu_up,
            ),
            (
                "cpu_s_per_GB_down",
                "CPU s/GB down (client+server)",
                self.cpu_down,
            ),
            (
                "rss_idle_client_MiB",
                "RSS idle client (MiB)",
                self.rss_idle_client,
            ),
            (
                "rss_idle_server_MiB",
                "RSS idle server (MiB)",
                self.rss_idle_server,
            ),
            (
                "rss_peak_client_MiB",
                "RSS peak client (MiB)",
                self.rss_peak_client,
            ),
            (
                "rss_peak_server_MiB",
                "RSS peak server (MiB)",
                self.rss_peak_server,
            ),
            ("rtt_idle_p50_ms", "RTT idle p50 (ms)", self.rtt_idle_p50),
            ("rtt_idle_p99_ms", "RTT idle p99 (ms)", self.rtt_idle_p99),
            (
                "rtt_load_p50_ms",
                "RTT under load p50 (ms)",
                self.rtt_load_p50,
            ),
            (
                "rtt_load_p99_ms",
                "RTT under load p99 (ms)",
                self.rtt_load_p99,
            ),
        ];
        if self.restart_asked {
            v.push(("restart_s", "server restart → answer (s)", self.restart_s));
        }
        v
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, _, v) in self.figures() {
            m.insert(k.into(), v.map_or(Value::Null, |x| json!(x)));
        }
        Value::Object(m)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Up,
    Down,
}

/// Everything one measurement needs.
struct Run<'a> {
    imp: &'a Impl,
    cfg: &'a Config,
    duration: Duration,
    data: Arc<Vec<u8>>,
    progress: &'a mut Progress,
    ticks: f64,
}

/// The running tunnel of a measurement.
struct Tunnel {
    target: Target,
    server: ChildProc,
    client: ChildProc,
    server_args: Vec<String>,
    local: SocketAddr,
}

impl Tunnel {
    fn children(&mut self) -> [&mut ChildProc; 2] {
        [&mut self.server, &mut self.client]
    }

    fn check(&mut self) -> Result<(), RunError> {
        check_all(&mut self.children())
    }

    fn cpu(&self) -> Option<u64> {
        Some(cpu_ticks(self.server.pid())? + cpu_ticks(self.client.pid())?)
    }
}

impl Run<'_> {
    fn start(&mut self) -> Result<Tunnel, RunError> {
        let target = Target::start(self.data.clone())?;
        let udp = free_udp_port()?;
        let local_port = free_tcp_port()?;
        let flags = self.cfg.flags();
        let mut server_args = self.imp.server.1.clone();
        server_args.extend([
            "-l".into(),
            format!("127.0.0.1:{udp}"),
            "-t".into(),
            target.addr.to_string(),
        ]);
        server_args.extend(flags.iter().cloned());
        let mut client_args = self.imp.client.1.clone();
        client_args.extend([
            "-l".into(),
            format!("127.0.0.1:{local_port}"),
            "-r".into(),
            format!("127.0.0.1:{udp}"),
        ]);
        client_args.extend(flags);
        let server = ChildProc::spawn(
            format!("{} server", self.imp.name),
            &self.imp.server.0,
            &server_args,
        )?;
        let client = ChildProc::spawn(
            format!("{} client", self.imp.name),
            &self.imp.client.0,
            &client_args,
        )?;
        Ok(Tunnel {
            target,
            server,
            client,
            server_args,
            local: SocketAddr::from(([127, 0, 0, 1], local_port)),
        })
    }

    fn measure(&mut self, restart: bool) -> Result<Metrics, RunError> {
        let name = self.imp.name;
        self.progress.show(&format!("{name}: starting"));
        let mut t = self.start()?;
        let mut ping = establish(t.local, ESTABLISH_TIMEOUT, &mut t.children())?;
        let mut m = Metrics {
            restart_asked: restart,
            ..Metrics::default()
        };

        // Idle RSS: one small round trip done, then 1 s without traffic.
        thread::sleep(Duration::from_secs(1));
        t.check()?;
        m.rss_idle_client = status_mib(t.client.pid(), "VmRSS");
        m.rss_idle_server = status_mib(t.server.pid(), "VmRSS");

        self.progress.show(&format!("{name}: idle latency"));
        let mut idle = Vec::with_capacity(IDLE_PINGS);
        for i in 0..IDLE_PINGS {
            match ping.round_trip(i as u64 + 1) {
                Ok(d) => idle.push(d),
                Err(e) => {
                    // A dead child explains the failure better than the socket error.
                    t.check()?;
                    return Err(err(format!("bench: {name}: idle ping-pong failed: {e}")));
                }
            }
        }
        let idle = sorted_ms(&idle);
        m.rtt_idle_p50 = percentile(&idle, 50);
        m.rtt_idle_p99 = percentile(&idle, 99);

        let mut loaded = Vec::new();
        let (up, cpu_up, ping2) = self.bulk(&mut t, Dir::Up, Some(ping), &mut loaded)?;
        let (down, cpu_down, _) = self.bulk(&mut t, Dir::Down, ping2, &mut loaded)?;
        m.up_mbps = up.0 as f64 / up.1 / 1e6;
        m.down_mbps = down.0 as f64 / down.1 / 1e6;
        let per_gb = |cpu: Option<u64>, bytes: u64| {
            cpu.filter(|_| bytes > 0)
                .map(|c| c as f64 / self.ticks / (bytes as f64 / 1e9))
        };
        m.cpu_up = per_gb(cpu_up, up.0);
        m.cpu_down = per_gb(cpu_down, down.0);
        let loaded = sorted_ms(&loaded);
        m.rtt_load_p50 = percentile(&loaded, 50);
        m.rtt_load_p99 = percentile(&loaded, 99);
        t.check()?;
        m.rss_peak_client = status_mib(t.client.pid(), "VmHWM");
        m.rss_peak_server = status_mib(t.server.pid(), "VmHWM");

        if restart {
            m.restart_s = self.restart(&mut t)?;
        }
        self.progress.clear();
        Ok(m)
    }

    /// One bulk phase: `duration` seconds of data in `dir` while `ping` keeps ping-ponging.
    /// Returns ((bytes, seconds), CPU ticks of both children, the pinger if still usable).
    #[allow(clippy::type_complexity)]
    fn bulk(
        &mut self,
        t: &mut Tunnel,
        dir: Dir,
        ping: Option<Pinger>,
        loaded: &mut Vec<Duration>,
    ) -> Result<((u64, f64), Option<u64>, Option<Pinger>), RunError> {
        let name = self.imp.name;
        let what = if dir == Dir::Up { "up" } else { "down" };
        let mut conn = TcpStream::connect(t.local)
            .map_err(|e| err(format!("bench: connect to the client: {e}")))?;
        let _ = conn.set_nodelay(true);
        conn.write_all(if dir == Dir::Up { b"U" } else { b"D" })
            .map_err(|e| err(format!("bench: write to the client: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let counter = if dir == Dir::Up {
            t.target.sunk.clone()
        } else {
            received.clone()
        };

        // The pinger: a new connection if the last one broke.
        let ping = match ping {
            Some(p) => Some(p),
            None => Pinger::open(t.local, PING_TIMEOUT).ok(),
        };
        let st = stop.clone();
        let pinger = thread::spawn(move || {
            let mut samples = Vec::new();
            let Some(mut p) = ping else {
                return (samples, None);
            };
            let mut seq = 1u64 << 32;
            while !st.load(Ordering::Relaxed) {
                seq += 1;
                let t = Instant::now();
                match p.round_trip(seq) {
                    Ok(d) => samples.push(d),
                    Err(_) => {
                        // Unanswered (timeout or reset): count the wait, a lower bound.
                        samples.push(t.elapsed());
                        return (samples, None);
                    }
                }
                thread::sleep(LOADED_PING_GAP);
            }
            (samples, Some(p))
        });

        let mut io_conn = conn
            .try_clone()
            .map_err(|e| err(format!("bench: clone socket: {e}")))?;
        let bad = Arc::new(AtomicBool::new(false));
        let (st, data, rc, bad2) = (
            stop.clone(),
            self.data.clone(),
            received.clone(),
            bad.clone(),
        );
        let mover = thread::spawn(move || match dir {
            Dir::Up => while !st.load(Ordering::Relaxed) && io_conn.write_all(&data).is_ok() {},
            Dir::Down => {
                let mut buf = vec![0u8; 1 << 16];
                let mut off = 0;
                while let Ok(n @ 1..) = io_conn.read(&mut buf) {
                    if !continues(&data, &mut off, &buf[..n]) {
                        bad2.store(true, Ordering::Relaxed);
                        return;
                    }
                    rc.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        });

        let c0 = counter.load(Ordering::Relaxed);
        let cpu0 = t.cpu();
        let t0 = Instant::now();
        let mut failure = None;
        loop {
            let el = t0.elapsed();
            if el >= self.duration {
                break;
            }
            if let Err(e) = t.check() {
                failure = Some(e);
                break;
            }
            let bytes = counter.load(Ordering::Relaxed) - c0;
            self.progress.show(&format!(
                "{name}: {what} {:.1}/{} s, {} MB/s",
                el.as_secs_f64(),
                self.duration.as_secs(),
                num(bytes as f64 / el.as_secs_f64().max(1e-3) / 1e6)
            ));
            thread::sleep((self.duration - el).min(Duration::from_millis(200)));
        }
        let bytes = counter.load(Ordering::Relaxed) - c0;
        let secs = t0.elapsed().as_secs_f64();
        let cpu1 = t.cpu();
        stop.store(true, Ordering::Relaxed);
        let _ = conn.shutdown(Shutdown::Both);
        drop(conn);
        let _ = mover.join();
        let (samples, ping) = pinger.join().unwrap_or_default();
        loaded.extend(samples);
        if let Some(e) = failure {
            return Err(e);
        }
        if bad.load(Ordering::Relaxed) || t.target.corrupt.load(Ordering::Relaxed) {
            return Err(err(format!(
                "bench: {name}: the data arrived corrupted through the tunnel ({what})"
            )));
        }
        let cpu = match (cpu0, cpu1) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        Ok(((bytes, secs), cpu, ping))
    }

    /// Kills the server, starts it again on the same port, and returns the seconds until a new
    /// connection through the (untouched) client is echoed; `None` if it never is.
    fn restart(&mut self, t: &mut Tunnel) -> Result<Option<f64>, RunError> {
        let name = self.imp.name;
        t.server.kill();
        t.server = ChildProc::spawn(
            format!("{name} server (restarted)"),
            &self.imp.server.0,
            &t.server_args,
        )?;
        let t0 = Instant::now();
        while t0.elapsed() < RESTART_TIMEOUT {
            t.check()?;
            self.progress.show(&format!(
                "{name}: waiting for the tunnel after a server restart, {:.0} s",
                t0.elapsed().as_secs_f64()
            ));
            if Pinger::open(t.local, Duration::from_secs(1)).is_ok() {
                return Ok(Some(t0.elapsed().as_secs_f64()));
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(None)
    }
}

/// Pseudo-random (incompressible) bytes, the same every run.
fn random_data() -> Arc<Vec<u8>> {
    let mut rng = Rng::from_seed(*b"kcptun bench: incompressible!!!!");
    let mut v = vec![0u8; DATA_LEN];
    rng.fill(&mut v);
    Arc::new(v)
}

/// `kcptun bench tunnel`.
pub(super) fn run(a: &BenchTunnelArgs) -> Result<(), RunError> {
    let user = Config::from_args(a);
    let defaults = user.crypt == "aes"
        && user.mode == "fast3"
        && (user.ds, user.ps) == (10, 3)
        && !user.comp
        && (user.sndwnd, user.rcvwnd) == (1024, 1024);
    let configs = if a.vs_go && defaults {
        // The two configurations of the comparison: (a) the default, (b) no crypto, no FEC.
        let b = Config {
            crypt: "none".into(),
            ds: 0,
            ps: 0,
            ..user.clone()
        };
        vec![user, b]
    } else {
        vec![user]
    };
    let mut imps = vec![Impl::ours()?];
    if a.vs_go {
        imps.push(Impl::go()?);
        if matches!(a.crypt.as_str(), "aes-128-gcm" | "null") {
            eprintln!(
                "kcptun bench: note: the Go 2021 build does not know --crypt {}, it silently uses aes",
                a.crypt
            );
        }
    }
    let data = random_data();
    let mut progress = Progress::new();
    let ticks = clock_ticks();
    let duration = Duration::from_secs(a.duration);

    let mut runs = Vec::new();
    for cfg in &configs {
        if !a.json {
            println!(
                "kcptun bench tunnel: {}; {} s each way, loopback",
                cfg.label(),
                a.duration
            );
        }
        let mut results = Vec::new();
        for imp in &imps {
            let mut run = Run {
                imp,
                cfg,
                duration,
                data: data.clone(),
                progress: &mut progress,
                ticks,
            };
            let m = run.measure(a.restart);
            progress.clear();
            results.push(m?);
        }
        if a.json {
            let mut o = Map::new();
            o.insert("config".into(), cfg.to_json());
            o.insert("duration_s".into(), json!(a.duration));
            for (imp, m) in imps.iter().zip(&results) {
                o.insert(imp.name.to_lowercase(), m.to_json());
            }
            if let [ours, go] = &results[..] {
                o.insert("ratio".into(), ratio_json(ours, go));
            }
            runs.push(Value::Object(o));
        } else {
            print!("{}", render(&imps, &results));
            println!();
        }
    }
    if a.json {
        print_json(&json!({ "bench": "tunnel", "runs": runs }))?;
    }
    Ok(())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn ratio_json(ours: &Metrics, go: &Metrics) -> Value {
    let mut m = Map::new();
    for ((k, _, a), (_, _, b)) in ours.figures().into_iter().zip(go.figures()) {
        m.insert(k.into(), ratio(a, b).map_or(Value::Null, |x| json!(x)));
    }
    Value::Object(m)
}

/// A ratio with two significant digits at least (0.0013, 0.20, 3.94, 12.5).
fn ratio_str(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 0.1 || x <= 0.0 {
        format!("{x:.2}")
    } else {
        let decimals = (1.0 - x.log10().floor()).min(9.0) as usize;
        format!("{x:.decimals$}")
    }
}

/// The table: one row per figure, one column per implementation, then ours/Go.
fn render(imps: &[Impl], results: &[Metrics]) -> String {
    let mut header = vec!["figure"];
    header.extend(imps.iter().map(|i| i.name));
    if results.len() == 2 {
        header.push("ours/Go");
    }
    let figs: Vec<_> = results.iter().map(Metrics::figures).collect();
    let show = |v: Option<f64>| v.map_or("n/a".to_string(), num);
    let rows: Vec<Vec<String>> = (0..figs[0].len())
        .map(|i| {
            let mut r = vec![figs[0][i].1.to_string()];
            r.extend(figs.iter().map(|f| show(f[i].2)));
            if figs.len() == 2 {
                r.push(ratio(figs[0][i].2, figs[1][i].2).map_or("n/a".into(), ratio_str));
            }
            r
        })
        .collect();
    table(&header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_readers_see_this_process() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(status_mib(me, "VmRSS").unwrap() > 0.0);
        assert!(status_mib(me, "VmHWM").unwrap() > 0.0);
        assert!(clock_ticks() > 0.0);
    }

    #[test]
    fn continues_checks_the_repeated_stream() {
        let data = [1u8, 2, 3, 4];
        let mut off = 0;
        assert!(continues(&data, &mut off, &[1, 2, 3]));
        assert!(continues(&data, &mut off, &[4, 1, 2, 3, 4, 1]));
        assert_eq!(off, 9);
        assert!(!continues(&data, &mut off, &[2, 9]));
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&v, 50), Some(101.0));
        assert_eq!(percentile(&v, 99), Some(199.0));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn target_modes() {
        let t = Target::start(Arc::new(vec![7u8; 1000])).unwrap();
        let mut e = TcpStream::connect(t.addr).unwrap();
        e.write_all(b"Phello").unwrap();
        let mut b = [0u8; 5];
        e.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello");
        let mut d = TcpStream::connect(t.addr).unwrap();
        d.write_all(b"D").unwrap();
        let mut b = [0u8; 3000];
        d.read_exact(&mut b).unwrap();
        assert!(b.iter().all(|&x| x == 7));
        let mut u = TcpStream::connect(t.addr).unwrap();
        u.write_all(b"U").unwrap();
        u.write_all(&[7u8; 5000]).unwrap();
        drop(u);
        let t0 = Instant::now();
        while t.sunk.load(Ordering::Relaxed) < 5000 && t0.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(t.sunk.load(Ordering::Relaxed), 5000);
        assert!(!t.corrupt.load(Ordering::Relaxed));
        let mut u = TcpStream::connect(t.addr).unwrap();
        u.write_all(b"U").unwrap();
        u.write_all(&[1u8; 10]).unwrap();
        drop(u);
        let t0 = Instant::now();
        while !t.corrupt.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(5));
        }
        assert!(t.corrupt.load(Ordering::Relaxed));
    }

    #[test]
    fn comparison_table_and_ratios() {
        let ours = Metrics {
            up_mbps: 200.0,
            down_mbps: 100.0,
            restart_asked: true,
            restart_s: Some(1.0),
            ..Metrics::default()
        };
        let go = Metrics {
            up_mbps: 50.0,
            down_mbps: 100.0,
            restart_asked: true,
            ..Metrics::default()
        };
        let imps = [Impl::ours().unwrap(), {
            let mut g = Impl::ours().unwrap();
            g.name = "Go";
            g
        }];
        let t = render(&imps, &[ours.clone(), go.clone()]);
        let lines: Vec<Vec<&str>> = t
            .lines()
            .map(|l| {
                l.split("  ")
                    .filter(|c| !c.is_empty())
                    .map(str::trim)
                    .collect()
            })
            .collect();
        assert_eq!(lines[0], ["figure", "ours", "Go", "ours/Go"]);
        assert_eq!(lines[2], ["goodput up (MB/s)", "200", "50.0", "4.00"]);
        assert_eq!(lines[3], ["goodput down (MB/s)", "100", "100", "1.00"]);
        assert_eq!(
            lines[4],
            ["CPU s/GB up (client+server)", "n/a", "n/a", "n/a"]
        );
        assert_eq!(
            lines.last().unwrap(),
            &["server restart → answer (s)", "1.00", "n/a", "n/a"]
        );
        let r = ratio_json(&ours, &go);
        assert_eq!(r["up_MBps"], 4.0);
        assert_eq!(r["restart_s"], Value::Null);
        assert_eq!(ours.to_json()["restart_s"], 1.0);
        assert!(Metrics::default().to_json().get("restart_s").is_none());
    }

    #[test]
    fn ratio_strings() {
        assert_eq!(ratio_str(12.345), "12.3");
        assert_eq!(ratio_str(3.944), "3.94");
        assert_eq!(ratio_str(0.2), "0.20");
        assert_eq!(ratio_str(0.0013), "0.0013");
        assert_eq!(ratio_str(0.05), "0.050");
        assert_eq!(ratio_str(0.0), "0.00");
    }

    #[test]
    fn flags_follow_the_config() {
        let c = Config {
            crypt: "none".into(),
            mode: "fast3".into(),
            ds: 0,
            ps: 0,
            comp: false,
            sndwnd: 1024,
            rcvwnd: 512,
        };
        let f = c.flags().join(" ");
        assert!(f.contains("--crypt none --mode fast3 --ds 0 --ps 0 --sndwnd 1024 --rcvwnd 512"));
        assert!(f.ends_with("--nocomp"));
        assert!(c.label().contains("FEC off"));
    }
}
