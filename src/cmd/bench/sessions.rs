//! `kcptun bench sessions N`: memory and idle CPU per tunnel session, ours next to Go's.
//!
//! One measurement starts an echo target (one mio thread, in a child process), a server,
//! and client processes whose `--conn` add up to N (at most `--per-client` each), all on
//! 127.0.0.1, both builds speaking smux v1 (Go 2021's default) as in `bench tunnel`. It then
//! opens N TCP connections through the clients; both kcptun builds spread connections over
//! their sessions round robin, so each session carries exactly one echoed connection. RSS (`VmRSS`) of the server and the clients is read:
//!
//! 1. *before*: the processes started, no connection yet (plus private/shared memory of the
//!    server from `/proc/PID/smaps_rollup`);
//! 2. *idle*: every connection echoed a hello, then [`SETTLE`] of quiet;
//! 3. *after*: `--bytes` went through every connection each way (echoed, checked);
//! 4. *quiet*: [`SETTLE`] later.
//!
//! Per-session figures are `(RSS at the step - RSS before) / N`. Idle CPU is the server's and
//! clients' utime+stime over [`IDLE_WINDOW`] with all N sessions idle. Children are killed on
//! every exit path ([`ChildProc`]'s `Drop`).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream as MioStream};
use mio::{Events, Interest, Poll, Token};
use serde_json::{json, Value};

use super::procs::{
    check_all, clock_ticks, cpu_ticks, free_tcp_port, free_udp_port, status_mib, ChildProc,
};
use super::tunnel::Impl as Build;
use super::{err, num, print_json, table, Progress};
use crate::cmd::{BenchSessionsArgs, RunError};

/// Quiet time before the "idle" and "quiet" readings (our sessions give memory back after 2 s).
const SETTLE: Duration = Duration::from_secs(3);
/// Window over which idle CPU is measured.
const IDLE_WINDOW: Duration = Duration::from_secs(10);
const HELLO: &[u8] = b"hello, session\n";
/// Time allowed for all N connections to be echoed once.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// the echo target: one thread, every connection echoes what it reads

struct Echo {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The echo target in a child process (`bench sessions --echo-target`): the target's ends of
/// the N connections then count against the child's open-files limit, not ours.
struct EchoChild {
    addr: SocketAddr,
    child: std::process::Child,
}

impl EchoChild {
    fn spawn() -> Result<Self, RunError> {
        use std::io::BufRead;
        let exe = std::env::current_exe()
            .map_err(|e| err(format!("bench: cannot find this executable: {e}")))?;
        let mut child = std::process::Command::new(exe)
            .args(["bench", "sessions", "--echo-target"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| err(format!("bench: cannot start the echo target: {e}")))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        match line.trim().parse() {
            Ok(addr) => Ok(EchoChild { addr, child }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(err(format!(
                    "bench: the echo target did not start (said {line:?})"
                )))
            }
        }
    }
}

impl Drop for EchoChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--echo-target`: serves until killed (or until the bench that started it is gone).
fn serve_echo_target() -> Result<(), RunError> {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_PDEATHSIG only sets a flag of this process.
    #[allow(unsafe_code)]
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    raise_nofile(1 << 20);
    let echo = Echo::start()?;
    println!("{}", echo.addr);
    let _ = std::io::stdout().flush();
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

impl Echo {
    fn start() -> Result<Self, RunError> {
        let mut l = TcpListener::bind("127.0.0.1:0".parse().expect("literal address"))
            .map_err(|e| err(format!("bench: cannot listen for the echo target: {e}")))?;
        let addr = l
            .local_addr()
            .map_err(|e| err(format!("bench: echo target address: {e}")))?;
        let poll = Poll::new().map_err(|e| err(format!("bench: poll: {e}")))?;
        poll.registry()
            .register(&mut l, Token(0), Interest::READABLE)
            .map_err(|e| err(format!("bench: poll: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = thread::spawn(move || echo_loop(poll, l, &st));
        Ok(Echo {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One echoed connection: bytes read and not yet written back.
struct EchoConn {
    s: MioStream,
    pending: Vec<u8>,
    writable: bool,
}

fn echo_loop(mut poll: Poll, l: TcpListener, stop: &AtomicBool) {
    let mut events = Events::with_capacity(1024);
    let mut conns: HashMap<usize, EchoConn> = HashMap::new();
    let mut next = 1usize;
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if poll
            .poll(&mut events, Some(Duration::from_millis(100)))
            .is_err()
        {
            continue;
        }
        for ev in events.iter() {
            let Token(t) = ev.token();
            if t == 0 {
                while let Ok((mut s, _)) = l.accept() {
                    let _ = s.set_nodelay(true);
                    let tok = Token(next);
                    if poll
                        .registry()
                        .register(&mut s, tok, Interest::READABLE | Interest::WRITABLE)
                        .is_ok()
                    {
                        conns.insert(
                            next,
                            EchoConn {
                                s,
                                pending: Vec::new(),
                                writable: true,
                            },
                        );
                    }
                    next += 1;
                }
                continue;
            }
            let Some(c) = conns.get_mut(&t) else { continue };
            if ev.is_writable() {
                c.writable = true;
            }
            let closed = echo_pump(c, &mut buf);
            if closed {
                if let Some(mut c) = conns.remove(&t) {
                    let _ = poll.registry().deregister(&mut c.s);
                }
            }
        }
    }
}

/// Reads and echoes until the socket would block either way; returns whether it closed.
fn echo_pump(c: &mut EchoConn, buf: &mut [u8]) -> bool {
    loop {
        // Write back what is pending first (back-pressure: no reading while it is not gone).
        while !c.pending.is_empty() && c.writable {
            match c.s.write(&c.pending) {
                Ok(n) => {
                    c.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => c.writable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        if !c.pending.is_empty() {
            return false;
        }
        match c.s.read(buf) {
            Ok(0) => return true,
            Ok(n) => c.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// one measurement

/// RSS readings (MiB) of one process.
#[derive(Clone, Copy, Debug, Default)]
struct Rss {
    before: f64,
    idle: f64,
    after: f64,
    quiet: f64,
}

impl Rss {
    /// KB per session at each step after `before`.
    fn per_session_kb(&self, n: usize) -> [f64; 3] {
        let kb = |mib: f64| (mib - self.before) * 1024.0 / n as f64;
        [kb(self.idle), kb(self.after), kb(self.quiet)]
    }

    fn to_json(self, n: usize) -> Value {
        let [idle, after, quiet] = self.per_session_kb(n);
        json!({
            "rss_mib": {"before": self.before, "idle": self.idle, "after": self.after, "quiet": self.quiet},
            "kb_per_session": {"idle": idle, "after": after, "quiet": quiet},
        })
    }
}

/// What one build measured.
#[derive(Debug, Default)]
struct Outcome {
    server: Rss,
    /// Sums over the client processes.
    clients: Rss,
    /// Server private / shared memory before any session (MiB).
    server_private: f64,
    server_shared: f64,
    /// CPU seconds per second (100% = one core) while all sessions are idle.
    server_idle_cpu: f64,
    clients_idle_cpu: f64,
}

/// `Private_*` and `Shared_*` of `/proc/PID/smaps_rollup`, in MiB.
fn private_shared(pid: u32) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let (mut private, mut shared) = (0.0, 0.0);
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(key), Some(kb)) = (it.next(), it.next().and_then(|v| v.parse::<f64>().ok()))
        else {
            continue;
        };
        if key.starts_with("Private_") {
            private += kb / 1024.0;
        } else if key.starts_with("Shared_") {
            shared += kb / 1024.0;
        }
    }
    (private, shared)
}

fn rss(pid: u32) -> f64 {
    status_mib(pid, "VmRSS").unwrap_or(0.0)
}

/// Flags both ends share, as the issue's measurement sets them (Go's defaults otherwise).
fn common_flags() -> Vec<String> {
    ["--key", "kcptun-bench-sessions", "--quiet"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Sends `bytes` through `c` and checks they come back, interleaving writes and reads so neither
/// direction's window can stall the other.
fn echo_bulk(c: &mut TcpStream, bytes: usize, seed: u8) -> Result<(), RunError> {
    let pattern = |i: usize| (i as u8).wrapping_mul(31).wrapping_add(seed);
    c.set_nonblocking(true)
        .map_err(|e| err(format!("bench: set_nonblocking: {e}")))?;
    let mut out = vec![0u8; 16 * 1024];
    let mut inb = vec![0u8; 64 * 1024];
    let (mut sent, mut got) = (0usize, 0usize);
    let limit = Instant::now() + Duration::from_secs(60);
    while got < bytes {
        if Instant::now() > limit {
            return Err(err(format!(
                "bench: an echo of {bytes} bytes stalled at {got} bytes back"
            )));
        }
        let mut progress = false;
        if sent < bytes {
            let n = out.len().min(bytes - sent);
            for (k, b) in out[..n].iter_mut().enumerate() {
                *b = pattern(sent + k);
            }
            match c.write(&out[..n]) {
                Ok(w) => {
                    sent += w;
                    progress = w > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(err(format!("bench: echo write: {e}"))),
            }
        }
        match c.read(&mut inb) {
            Ok(0) => return Err(err("bench: an echoed connection closed early")),
            Ok(r) => {
                if let Some(k) = (0..r).find(|&k| inb[k] != pattern(got + k)) {
                    return Err(err(format!("bench: echo corrupted at byte {}", got + k)));
                }
                got += r;
                progress = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(err(format!("bench: echo read: {e}"))),
        }
        if !progress {
            thread::sleep(Duration::from_micros(200));
        }
    }
    c.set_nonblocking(false)
        .map_err(|e| err(format!("bench: set_nonblocking: {e}")))
}

/// Opens one connection through `local` and has it echo the hello.
fn hello(local: SocketAddr) -> std::io::Result<TcpStream> {
    let mut c = TcpStream::connect_timeout(&local, Duration::from_secs(5))?;
    c.set_nodelay(true)?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    c.write_all(HELLO)?;
    let mut back = [0u8; HELLO.len()];
    c.read_exact(&mut back)?;
    if back != HELLO {
        return Err(std::io::Error::other("the hello came back different"));
    }
    Ok(c)
}

/// Raises this process's open-files limit to `need` where allowed (children inherit it): N
/// sessions need about N descriptors in each process. Beyond the hard
/// limit only root can go; returns the limit in force.
fn raise_nofile(need: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft >= need {
        return soft;
    }
    if setrlimit(Resource::RLIMIT_NOFILE, need, need.max(hard)).is_ok() {
        return need;
    }
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

fn measure(b: &Build, a: &BenchSessionsArgs, progress: &mut Progress) -> Result<Outcome, RunError> {
    let n = a.sessions as usize;
    let echo = EchoChild::spawn()?;
    let udp = free_udp_port()?;
    let remote = format!("127.0.0.1:{udp}");
    let mut server = ChildProc::spawn(
        format!("{} server", b.name),
        &b.server.0,
        &[
            b.server.1.clone(),
            common_flags(),
            vec![
                "-l".into(),
                remote.clone(),
                "-t".into(),
                echo.addr.to_string(),
            ],
        ]
        .concat(),
    )?;
    let per = a.per_client.max(1) as usize;
    let mut clients = Vec::new();
    let mut locals = Vec::new();
    let mut left = n;
    while left > 0 {
        let conns = left.min(per);
        left -= conns;
        let port = free_tcp_port()?;
        let local: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .map_err(|e| err(format!("bench: {e}")))?;
        clients.push(ChildProc::spawn(
            format!("{} client {}", b.name, clients.len() + 1),
            &b.client.0,
            &[
                b.client.1.clone(),
                common_flags(),
                vec![
                    "-l".into(),
                    local.to_string(),
                    "-r".into(),
                    remote.clone(),
                    "--conn".into(),
                    conns.to_string(),
                ],
            ]
            .concat(),
        )?);
        locals.push((local, conns));
    }
    // Before: started and listening (Go's client dials all its sessions at start-up; ours
    // creates them for the first connections), nothing carried yet.
    progress.show(&format!("{}: starting", b.name));
    let start_limit = Instant::now() + Duration::from_secs(20);
    for &(local, _) in &locals {
        while TcpStream::connect_timeout(&local, Duration::from_millis(200)).is_err() {
            let mut all: Vec<&mut ChildProc> = clients.iter_mut().collect();
            all.push(&mut server);
            check_all(&mut all)?;
            if Instant::now() > start_limit {
                return Err(err(format!("bench: {} client did not listen", b.name)));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
    thread::sleep(Duration::from_secs(1));
    let mut out = Outcome::default();
    let clients_rss = |clients: &[ChildProc]| clients.iter().map(|c| rss(c.pid())).sum::<f64>();
    let clients_cpu = |clients: &[ChildProc]| {
        clients
            .iter()
            .filter_map(|c| cpu_ticks(c.pid()))
            .sum::<u64>()
    };
    out.server.before = rss(server.pid());
    out.clients.before = clients_rss(&clients);
    (out.server_private, out.server_shared) = private_shared(server.pid());

    // N connections, one per session, each echoing a hello.
    let t0 = Instant::now();
    let mut conns = Vec::with_capacity(n);
    for &(local, k) in &locals {
        for _ in 0..k {
            let c = loop {
                match hello(local) {
                    Ok(c) => break c,
                    Err(e) if t0.elapsed() > CONNECT_TIMEOUT => {
                        return Err(err(format!(
                            "bench: {}: connection {} of {n} not echoed: {e}",
                            b.name,
                            conns.len() + 1
                        )))
                    }
                    Err(_) => {
                        let mut all: Vec<&mut ChildProc> = clients.iter_mut().collect();
                        all.push(&mut server);
                        check_all(&mut all)?;
                        thread::sleep(Duration::from_millis(50));
                    }
                }
            };
            conns.push(c);
            if conns.len() % 100 == 0 {
                progress.show(&format!("{}: {} of {n} sessions", b.name, conns.len()));
            }
        }
    }
    thread::sleep(SETTLE);
    out.server.idle = rss(server.pid());
    out.clients.idle = clients_rss(&clients);

    progress.show(&format!("{}: idle CPU", b.name));
    let (s0, c0) = (cpu_ticks(server.pid()), clients_cpu(&clients));
    thread::sleep(IDLE_WINDOW);
    let (s1, c1) = (cpu_ticks(server.pid()), clients_cpu(&clients));
    let secs = IDLE_WINDOW.as_secs_f64() * clock_ticks();
    out.server_idle_cpu = s1.zip(s0).map_or(0.0, |(a, b)| (a - b) as f64 / secs);
    out.clients_idle_cpu = c1.saturating_sub(c0) as f64 / secs;

    for (i, c) in conns.iter_mut().enumerate() {
        if i % 50 == 0 {
            progress.show(&format!("{}: traffic {i} of {n}", b.name));
        }
        echo_bulk(c, a.bytes as usize, i as u8)?;
    }
    out.server.after = rss(server.pid());
    out.clients.after = clients_rss(&clients);
    thread::sleep(SETTLE);
    out.server.quiet = rss(server.pid());
    out.clients.quiet = clients_rss(&clients);
    let mut all: Vec<&mut ChildProc> = clients.iter_mut().collect();
    all.push(&mut server);
    check_all(&mut all)?;
    drop(conns);
    Ok(out)
}

/// Runs `kcptun bench sessions`.
pub(super) fn run(a: &BenchSessionsArgs) -> Result<(), RunError> {
    if a.echo_target {
        return serve_echo_target();
    }
    let n = a.sessions as usize;
    let need = n as u64 + 256;
    let nofile = raise_nofile(need);
    if nofile < need {
        return Err(err(format!(
            "bench sessions: {n} sessions need about {need} open files, the limit is {nofile}; \
             raise it (ulimit -n {need}) or measure fewer sessions"
        )));
    }
    let mut ours = Build::ours()?;
    if let Some(p) = &a.ours {
        if !p.exists() {
            return Err(err(format!(
                "bench sessions --ours: {} not found; give the path of a kcptun binary",
                p.display()
            )));
        }
        ours.client.0 = p.clone();
        ours.server.0 = p.clone();
    }
    let mut builds = vec![ours];
    if a.vs_go {
        builds.push(Build::go()?);
    }
    let mut progress = Progress::new();
    let mut results = Vec::new();
    for b in &builds {
        results.push(measure(b, a, &mut progress)?);
    }
    progress.clear();
    if a.json {
        let mut v = json!({
            "sessions": n,
            "bytes_each_way": a.bytes,
            "per_client": a.per_client,
        });
        for (b, r) in builds.iter().zip(&results) {
            v[b.name.to_lowercase()] = json!({
                "server": r.server.to_json(n),
                "clients": r.clients.to_json(n),
                "server_private_mib": r.server_private,
                "server_shared_mib": r.server_shared,
                "server_idle_cpu": r.server_idle_cpu,
                "clients_idle_cpu": r.clients_idle_cpu,
            });
        }
        return print_json(&v);
    }
    print!("{}", render(a, &builds, &results));
    Ok(())
}

fn render(a: &BenchSessionsArgs, builds: &[Build], results: &[Outcome]) -> String {
    let n = a.sessions as usize;
    let mut header = vec!["per session".to_string()];
    for b in builds {
        header.push(format!("{} server", b.name));
        header.push(format!("{} client", b.name));
    }
    if results.len() == 2 {
        header.push("ours/Go server".into());
        header.push("ours/Go client".into());
    }
    let kb: Vec<([f64; 3], [f64; 3])> = results
        .iter()
        .map(|r| (r.server.per_session_kb(n), r.clients.per_session_kb(n)))
        .collect();
    let mut rows = Vec::new();
    for (i, what) in ["idle (KB)", "after traffic (KB)", "quiet, 3 s later (KB)"]
        .iter()
        .enumerate()
    {
        let mut row = vec![what.to_string()];
        for (s, c) in &kb {
            row.push(num(s[i]));
            row.push(num(c[i]));
        }
        if kb.len() == 2 {
            for (o, g) in [(kb[0].0[i], kb[1].0[i]), (kb[0].1[i], kb[1].1[i])] {
                row.push(if g > 0.0 {
                    format!("{:.2}", o / g)
                } else {
                    "-".into()
                });
            }
        }
        rows.push(row);
    }
    let mut proc_rows = Vec::new();
    for (b, r) in builds.iter().zip(results) {
        for (what, rss) in [("server", r.server), ("clients", r.clients)] {
            proc_rows.push(vec![
                format!("{} {what}", b.name),
                num(rss.before),
                num(rss.idle),
                num(rss.after),
                num(rss.quiet),
            ]);
        }
    }
    let mut cpu_rows = Vec::new();
    for (b, r) in builds.iter().zip(results) {
        cpu_rows.push(vec![
            b.name.to_string(),
            format!("{:.2}", 100.0 * r.server_idle_cpu),
            format!("{:.2}", 100.0 * r.clients_idle_cpu),
            num(r.server_private),
            num(r.server_shared),
        ]);
    }
    let hdr: Vec<&str> = header.iter().map(String::as_str).collect();
    format!(
        "{n} sessions (clients of at most {} --conn), one echoed connection each, {} bytes each \
         way, defaults otherwise\n\n{}\nRSS (MiB)\n{}\nidle, {} s window\n{}",
        a.per_client,
        a.bytes,
        table(&hdr, &rows),
        table(&["process", "before", "idle", "after", "quiet"], &proc_rows),
        IDLE_WINDOW.as_secs(),
        table(
            &[
                "build",
                "server CPU %",
                "clients CPU %",
                "server private MiB (before)",
                "shared MiB"
            ],
            &cpu_rows
        ),
    )
}
