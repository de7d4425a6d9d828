//! `kcptun bench tunnel`: the whole product measured end to end on loopback, directly or
//! through an emulated path (`--path`: the client dials a [`Relay`] that delays, loses,
//! rate-limits and reorders on the way to the server).
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
//!
//! Parts: [`traffic`] (target, pinger, data), [`report`] (figures, table, ratios); the child
//! processes are `bench::procs`.

mod report;
pub(super) mod traffic;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use self::report::{percentile, ratio_json, render, sorted_ms, Metrics};
use self::traffic::{continues, establish, random_data, Pinger, Target};
use super::path::{PathSpec, Relay};
use super::procs::{
    check_all, clock_ticks, cpu_ticks, free_tcp_port, free_udp_port, status_mib, ChildProc,
};
use super::{err, num, print_json, Progress};
use crate::cmd::{BenchTunnelArgs, RunError};

const GO_CLIENT: &str = "/usr/bin/kcptun-client";
const GO_SERVER: &str = "/usr/bin/kcptun-server";
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
    /// The emulated path (up, down) between client and server; `None`: direct on loopback.
    path: Option<(PathSpec, PathSpec)>,
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
            path: path_of(a),
        }
    }

    /// Where the datagrams go: loopback, or the emulated path.
    fn route(&self) -> String {
        match &self.path {
            None => "loopback".into(),
            Some((up, down)) if up == down => format!("path {up} each way"),
            Some((up, down)) => format!("path up {up}, down {down}"),
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
        let mut v = json!({
            "crypt": self.crypt, "mode": self.mode, "ds": self.ds, "ps": self.ps,
            "compression": self.comp, "sndwnd": self.sndwnd, "rcvwnd": self.rcvwnd,
        });
        if let Some((up, down)) = &self.path {
            v["path_up"] = json!(up.to_string());
            v["path_down"] = json!(down.to_string());
        }
        v
    }
}

/// The path of `--path`, `--path-up`, `--path-down` (a direction not given is clean); `None`
/// when none is given.
fn path_of(a: &BenchTunnelArgs) -> Option<(PathSpec, PathSpec)> {
    if a.path.is_none() && a.path_up.is_none() && a.path_down.is_none() {
        return None;
    }
    let both = a.path.clone().unwrap_or_default();
    Some((
        a.path_up.clone().unwrap_or_else(|| both.clone()),
        a.path_down.clone().unwrap_or(both),
    ))
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
    /// The emulated path the client dials, if any; it stays up across a server restart.
    _relay: Option<Relay>,
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
        let relay = match &self.cfg.path {
            Some((up, down)) => Some(Relay::start(
                SocketAddr::from(([127, 0, 0, 1], udp)),
                up.clone(),
                down.clone(),
                1,
            )?),
            None => None,
        };
        let remote = relay
            .as_ref()
            .map_or_else(|| SocketAddr::from(([127, 0, 0, 1], udp)), |r| r.addr());
        let mut client_args = self.imp.client.1.clone();
        client_args.extend([
            "-l".into(),
            format!("127.0.0.1:{local_port}"),
            "-r".into(),
            remote.to_string(),
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
            _relay: relay,
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
        m.rtt_load_n = Some(loaded.len() as f64);
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

/// `kcptun bench tunnel`.
pub(super) fn run(a: &BenchTunnelArgs) -> Result<(), RunError> {
    let user = Config::from_args(a);
    let defaults = user.crypt == "aes"
        && user.mode == "fast3"
        && (user.ds, user.ps) == (10, 3)
        && !user.comp
        && (user.sndwnd, user.rcvwnd) == (1024, 1024)
        && user.path.is_none();
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
    let mut ours = Impl::ours()?;
    if a.delaywnd {
        ours.client.1.push("--delaywnd".into());
        ours.server.1.push("--delaywnd".into());
    }
    let mut imps = vec![ours];
    if a.vs_go {
        imps.push(Impl::go()?);
        if a.mixed {
            let (ours, go) = (&imps[0], &imps[1]);
            let pairs = [
                Impl {
                    name: "ours-Go",
                    client: ours.client.clone(),
                    server: go.server.clone(),
                },
                Impl {
                    name: "Go-ours",
                    client: go.client.clone(),
                    server: ours.server.clone(),
                },
            ];
            imps.extend(pairs);
        }
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
                "kcptun bench tunnel: {}; {} s each way, {}",
                cfg.label(),
                a.duration,
                cfg.route()
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
            if let [ours, go, ..] = &results[..] {
                o.insert("ratio".into(), ratio_json(ours, go));
            }
            runs.push(Value::Object(o));
        } else {
            print!("{}", render(&imps, &results));
            if a.mixed {
                println!("(ours-Go: our client, Go's server; Go-ours: Go's client, our server)");
            }
            println!();
        }
    }
    if a.json {
        print_json(&json!({ "bench": "tunnel", "runs": runs }))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            path: None,
        };
        let f = c.flags().join(" ");
        assert!(f.contains("--crypt none --mode fast3 --ds 0 --ps 0 --sndwnd 1024 --rcvwnd 512"));
        assert!(f.ends_with("--nocomp"));
        assert!(c.label().contains("FEC off"));
    }
}
