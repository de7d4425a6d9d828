//! Harness for the tunnel tests (`tests/interop.rs`, `tests/e2e.rs`): free loopback ports, child
//! processes killed on drop with their output captured to a log file, a checking TCP/unix target,
//! `transfer` through a tunnel with SHA-256 verified at both ends, `wait_for_tunnel`, and a lossy
//! UDP relay.
//!
//! Wire protocol between `transfer` and the [`Target`] (so both directions are checked without
//! needing TCP half-close, which Go kcptun does not carry through the tunnel):
//! 1. the client sends a 24-byte header: `up` u64 LE, `down` u64 LE, `seed` u64 LE;
//! 2. the client then sends `up` bytes of `stream(seed)`; concurrently the target sends `down`
//!    bytes of `stream(!seed)`;
//! 3. once it has read `up` bytes, the target sends a trailer: SHA-256 of what it received (32
//!    bytes) and the count (u64 LE), after its `down` bytes;
//! 4. the client checks the down bytes against `stream(!seed)` and the trailer against the
//!    SHA-256 of what it sent, then closes.
//!
//! With `Target::start_after_eof` the target instead reads until EOF and only then replies
//! (for the half-close test: the client must `shutdown(Write)` and still read the reply).
//!
//! Everything is bounded by socket timeouts and per-call deadlines: a broken tunnel makes a test
//! fail with a message naming the case and the captured logs, never hang.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub const MIB: u64 = 1 << 20;

/// Go kcptun from Debian's `kcptun` package (the 2021 build).
pub const GO_CLIENT: &str = "/usr/bin/kcptun-client";
pub const GO_SERVER: &str = "/usr/bin/kcptun-server";

/// Our binary: the one cargo built for these tests, or `$KCPTUN_BIN` (e.g. a release build).
pub fn ours() -> PathBuf {
    match std::env::var_os("KCPTUN_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_kcptun")),
    }
}

/// Fails (never skips) when Debian's Go kcptun is missing.
pub fn require_go() {
    for p in [GO_CLIENT, GO_SERVER] {
        assert!(
            Path::new(p).is_file(),
            "Go kcptun not found: install it with `apt-get install -y kcptun` ({p} is missing)"
        );
    }
}

/// Serialises the heavy tests of one test binary (cargo runs `#[test]`s in parallel; the machine
/// has 2 shared cores and loss/timing tests must not starve each other).
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// ports and temp dirs

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind udp 127.0.0.1:0");
    s.local_addr().unwrap().port()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    let s = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind tcp 127.0.0.1:0");
    s.local_addr().unwrap().port()
}

/// A port free for both UDP and TCP on `ip` (e.g. `"::1"`).
pub fn free_port_on(ip: &str) -> u16 {
    for _ in 0..100 {
        let s = UdpSocket::bind((ip, 0)).expect("bind udp :0");
        let p = s.local_addr().unwrap().port();
        drop(s);
        if TcpListener::bind((ip, p)).is_ok() {
            return p;
        }
    }
    panic!("no free port on {ip}");
}

/// `n` consecutive UDP ports on 127.0.0.1 that were all free a moment ago.
pub fn free_udp_port_range(n: u16) -> (u16, u16) {
    for _ in 0..200 {
        let first = free_udp_port();
        if first.checked_add(n).is_none() {
            continue;
        }
        let held: Vec<_> = (first..first + n)
            .map_while(|p| UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).ok())
            .collect();
        if held.len() == n as usize {
            return (first, first + n - 1);
        }
    }
    panic!("no {n} consecutive free UDP ports");
}

pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "kcptun-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !thread::panicking() || std::env::var_os("KCPTUN_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// child processes

/// A child process killed (SIGKILL) and reaped on drop, also when the test panics. Its stdout
/// and stderr go to a log file whose tail [`Proc::log`] returns for failure messages.
pub struct Proc {
    pub name: String,
    child: Child,
    log_path: PathBuf,
    _dir: Option<TempDir>,
}

impl Proc {
    /// Starts `program args…` with its output captured to a fresh temp file.
    pub fn spawn(name: &str, program: &Path, args: &[String]) -> Proc {
        let dir = TempDir::new("log");
        let stem: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let log_path = dir.join(&format!("{stem}.log"));
        let mut p = Proc::spawn_logged(name, program, args, &log_path);
        p._dir = Some(dir);
        p
    }

    /// Like [`Proc::spawn`] but appends to `log_path` (kept by the caller, e.g. across restarts).
    pub fn spawn_logged(name: &str, program: &Path, args: &[String], log_path: &Path) -> Proc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .expect("open log file");
        let _ = writeln!(&log, "### {} {}", program.display(), args.join(" "));
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {}: {e}", program.display()));
        Proc {
            name: name.to_string(),
            child,
            log_path: log_path.to_path_buf(),
            _dir: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status text)` once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(st.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("wait failed: {e}")),
        }
    }

    /// The last 60 lines of the captured output, headed by the process name.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(60)..];
        format!(
            "----- {} ({}) -----\n{}\n",
            self.name,
            self.log_path.display(),
            tail.join("\n")
        )
    }

    /// Kills and reaps the process now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The logs of several processes, for failure messages.
pub fn logs(procs: &mut [&mut Proc]) -> String {
    procs
        .iter_mut()
        .map(|p| {
            let st = p
                .exited()
                .map(|s| format!(" [exited: {s}]"))
                .unwrap_or_default();
            format!("{}{st}", p.log())
        })
        .collect()
}

/// `Err` naming the first process that has already exited (a tunnel end must stay up).
pub fn check_alive(procs: &mut [&mut Proc]) -> Result<(), String> {
    for p in procs.iter_mut() {
        if let Some(st) = p.exited() {
            return Err(format!("{} exited early ({st})", p.name));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// deterministic data

/// splitmix64.
fn mix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A deterministic byte stream: 4 KiB blocks, about half random (incompressible) and half
/// repetitive (so snappy emits both compressed and stored chunks).
pub struct Stream {
    state: u64,
    block: Vec<u8>,
    pos: usize,
}

const BLOCK: usize = 4096;

impl Stream {
    pub fn new(seed: u64) -> Stream {
        Stream {
            state: seed ^ 0x6B63_7074_756E_2121,
            block: vec![0; BLOCK],
            pos: BLOCK,
        }
    }

    fn refill(&mut self) {
        let kind = mix(&mut self.state);
        if kind & 1 == 0 {
            for c in self.block.chunks_mut(8) {
                let v = mix(&mut self.state).to_le_bytes();
                c.copy_from_slice(&v[..c.len()]);
            }
        } else {
            let period = 1 + (kind >> 8) as usize % 64;
            let pat: Vec<u8> = (0..period).map(|_| mix(&mut self.state) as u8).collect();
            for (i, b) in self.block.iter_mut().enumerate() {
                *b = pat[i % period];
            }
        }
        self.pos = 0;
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            if self.pos == BLOCK {
                self.refill();
            }
            let n = (BLOCK - self.pos).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.block[self.pos..self.pos + n]);
            self.pos += n;
            done += n;
        }
    }
}

fn next_seed() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    let mut x = N.fetch_add(1, Ordering::Relaxed) ^ ((std::process::id() as u64) << 32);
    mix(&mut x)
}

// ---------------------------------------------------------------------------------------------
// connections (TCP or unix)

/// Where to connect: a TCP address or a unix socket path.
#[derive(Clone, Debug)]
pub enum Dest {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl From<SocketAddr> for Dest {
    fn from(a: SocketAddr) -> Dest {
        Dest::Tcp(a)
    }
}
impl From<&Path> for Dest {
    fn from(p: &Path) -> Dest {
        Dest::Unix(p.to_path_buf())
    }
}
impl From<PathBuf> for Dest {
    fn from(p: PathBuf) -> Dest {
        Dest::Unix(p)
    }
}

impl fmt::Display for Dest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dest::Tcp(a) => write!(f, "{a}"),
            Dest::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A connected byte stream of either kind.
pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    pub fn connect(dest: &Dest, timeout: Duration) -> io::Result<Conn> {
        let c = match dest {
            Dest::Tcp(a) => Conn::Tcp(TcpStream::connect_timeout(a, timeout)?),
            Dest::Unix(p) => Conn::Unix(UnixStream::connect(p)?),
        };
        c.set_timeouts(timeout)?;
        if let Conn::Tcp(t) = &c {
            t.set_nodelay(true)?;
        }
        Ok(c)
    }
    pub fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
            Conn::Unix(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
        }
    }
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
        })
    }
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.shutdown(how),
            Conn::Unix(s) => s.shutdown(how),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(b),
            Conn::Unix(s) => s.read(b),
        }
    }
}
impl Write for Conn {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(b),
            Conn::Unix(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// target

/// What the target saw on one connection.
#[derive(Clone, Debug, Default)]
pub struct TargetRecord {
    pub received: u64,
    pub sha256: [u8; 32],
    pub error: Option<String>,
}

/// A checking target server in a thread (see the module doc for its protocol). Stops on drop.
pub struct Target {
    pub dest: Dest,
    stop: Arc<AtomicBool>,
    pub conns: Arc<AtomicUsize>,
    pub records: Arc<Mutex<Vec<TargetRecord>>>,
    handle: Option<JoinHandle<()>>,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn accept(&self) -> io::Result<Conn> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Conn::Tcp(s)),
            Listener::Unix(l) => l.accept().map(|(s, _)| Conn::Unix(s)),
        }
    }
    fn set_nonblocking(&self, nb: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(nb),
            Listener::Unix(l) => l.set_nonblocking(nb),
        }
    }
}

impl Target {
    /// The protocol of the module doc, on 127.0.0.1:0.
    pub fn start() -> Target {
        Target::on_tcp("127.0.0.1:0", false)
    }
    /// On `[::1]:0`.
    pub fn start_v6() -> Target {
        Target::on_tcp("[::1]:0", false)
    }
    /// On a unix socket at `path`.
    pub fn start_unix(path: &Path) -> Target {
        let l = UnixListener::bind(path)
            .unwrap_or_else(|e| panic!("bind unix {}: {e}", path.display()));
        Target::run(Listener::Unix(l), Dest::Unix(path.to_path_buf()), false)
    }
    /// Half-close variant: reads the header and `up` bytes and then waits for EOF before it
    /// sends anything (`down` bytes, then the trailer).
    pub fn start_after_eof() -> Target {
        Target::on_tcp("127.0.0.1:0", true)
    }

    fn on_tcp(addr: &str, after_eof: bool) -> Target {
        let l = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let a = l.local_addr().unwrap();
        Target::run(Listener::Tcp(l), Dest::Tcp(a), after_eof)
    }

    fn run(l: Listener, dest: Dest, after_eof: bool) -> Target {
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(AtomicUsize::new(0));
        let records = Arc::new(Mutex::new(Vec::new()));
        let (s, c, r) = (stop.clone(), conns.clone(), records.clone());
        let handle = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok(conn) => {
                        c.fetch_add(1, Ordering::Relaxed);
                        let r = r.clone();
                        thread::spawn(move || {
                            let rec = serve(conn, after_eof);
                            r.lock().unwrap().push(rec);
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(2))
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Target {
            dest,
            stop,
            conns,
            records,
            handle: Some(handle),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match &self.dest {
            Dest::Tcp(a) => *a,
            Dest::Unix(p) => panic!("unix target {} has no socket address", p.display()),
        }
    }

    /// The `-t` argument for a kcptun server.
    pub fn arg(&self) -> String {
        self.dest.to_string()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        if let Dest::Unix(p) = &self.dest {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Read exactly `buf.len()` bytes or fail with the count read so far.
fn read_full(c: &mut Conn, buf: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match c.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF after {got} of {} bytes", buf.len()),
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn send_stream(c: &mut Conn, seed: u64, mut n: u64, buf: &mut [u8]) -> io::Result<()> {
    let mut s = Stream::new(seed);
    while n > 0 {
        let k = (buf.len() as u64).min(n) as usize;
        s.fill(&mut buf[..k]);
        c.write_all(&buf[..k])?;
        n -= k as u64;
    }
    Ok(())
}

fn serve(mut conn: Conn, after_eof: bool) -> TargetRecord {
    let mut rec = TargetRecord::default();
    let _ = conn.set_timeouts(Duration::from_secs(60));
    let mut hdr = [0u8; 24];
    if let Err(e) = read_full(&mut conn, &mut hdr) {
        rec.error = Some(format!("header: {e}"));
        return rec;
    }
    let up = u64::from_le_bytes(hdr[0..8].try_into().unwrap());
    let down = u64::from_le_bytes(hdr[8..16].try_into().unwrap());
    let seed = u64::from_le_bytes(hdr[16..24].try_into().unwrap());
    let mut w = match conn.try_clone() {
        Ok(w) => w,
        Err(e) => {
            rec.error = Some(format!("clone: {e}"));
            return rec;
        }
    };
    let (tx, rx) = mpsc::channel::<(u64, [u8; 32])>();
    let writer = thread::spawn(move || -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        if after_eof {
            let (n, d) = rx.recv().map_err(|_| io::Error::other("reader gone"))?;
            send_stream(&mut w, !seed, down, &mut buf)?;
            w.write_all(&d)?;
            w.write_all(&n.to_le_bytes())?;
        } else {
            send_stream(&mut w, !seed, down, &mut buf)?;
            let (n, d) = rx.recv().map_err(|_| io::Error::other("reader gone"))?;
            w.write_all(&d)?;
            w.write_all(&n.to_le_bytes())?;
        }
        Ok(())
    });
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    let mut err = None;
    loop {
        if !after_eof && got == up {
            break;
        }
        let want = if after_eof {
            buf.len()
        } else {
            (buf.len() as u64).min(up - got) as usize
        };
        match conn.read(&mut buf[..want]) {
            Ok(0) => {
                if !after_eof {
                    err = Some(format!("EOF after {got} of {up} bytes"));
                }
                break;
            }
            Ok(n) => {
                h.update(&buf[..n]);
                got += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                err = Some(format!("read after {got} of {up} bytes: {e}"));
                break;
            }
        }
    }
    let digest: [u8; 32] = h.finalize().into();
    rec.received = got;
    rec.sha256 = digest;
    if err.is_none() {
        let _ = tx.send((got, digest));
    }
    drop(tx);
    match writer.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => err = err.or(Some(format!("write: {e}"))),
        Err(_) => err = err.or(Some("writer panicked".into())),
    }
    if err.is_none() {
        // Wait for the client to close (it reads the trailer first); bounded by the timeout.
        let _ = conn.read(&mut buf);
    }
    rec.error = err;
    rec
}

// ---------------------------------------------------------------------------------------------
// transfer

/// The outcome of one or more checked transfers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub up: u64,
    pub down: u64,
    pub elapsed: Duration,
}

impl Stats {
    /// (up + down) / elapsed in MB/s (10^6 bytes).
    pub fn mbps(&self) -> f64 {
        (self.up + self.down) as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
    }
}

/// Options of [`transfer_with`].
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    /// Whole-transfer deadline.
    pub deadline: Duration,
    /// Socket read/write timeout (no progress for this long fails).
    pub idle: Duration,
    /// Half-close: send `up`, `shutdown(Write)`, then read the reply (target `start_after_eof`).
    pub half_close: bool,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            deadline: Duration::from_secs(90),
            idle: Duration::from_secs(20),
            half_close: false,
        }
    }
}

/// Connects to `dest` (the tunnel client's local port), sends `up` bytes while reading `down`
/// bytes, and checks SHA-256 at both ends (see the module doc).
pub fn transfer(dest: impl Into<Dest>, up: u64, down: u64) -> Result<Stats, String> {
    transfer_with(dest, up, down, Opts::default())
}

pub fn transfer_with(dest: impl Into<Dest>, up: u64, down: u64, o: Opts) -> Result<Stats, String> {
    let dest = dest.into();
    let t0 = Instant::now();
    let end = t0 + o.deadline;
    let seed = next_seed();
    let conn = Conn::connect(&dest, o.idle).map_err(|e| format!("connect {dest}: {e}"))?;
    let mut w = conn.try_clone().map_err(|e| format!("clone: {e}"))?;
    let mut r = conn;
    let half = o.half_close;
    let idle = o.idle;
    let writer = thread::spawn(move || -> Result<[u8; 32], String> {
        let mut hdr = [0u8; 24];
        hdr[0..8].copy_from_slice(&up.to_le_bytes());
        hdr[8..16].copy_from_slice(&down.to_le_bytes());
        hdr[16..24].copy_from_slice(&seed.to_le_bytes());
        w.write_all(&hdr).map_err(|e| format!("send header: {e}"))?;
        let mut s = Stream::new(seed);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = up;
        while left > 0 {
            if Instant::now() > end {
                return Err(format!("deadline: sent {} of {up} bytes", up - left));
            }
            let k = (buf.len() as u64).min(left) as usize;
            s.fill(&mut buf[..k]);
            h.update(&buf[..k]);
            w.write_all(&buf[..k]).map_err(|e| {
                format!("send after {} of {up} bytes: {}", up - left, why(&e, idle))
            })?;
            left -= k as u64;
        }
        if half {
            w.shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown(Write): {e}"))?;
        }
        Ok(h.finalize().into())
    });
    // Read `down` bytes and the 40-byte trailer, comparing with the expected stream.
    let mut expect = Stream::new(!seed);
    let mut hr = Sha256::new();
    let mut he = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut ebuf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    let mut first_diff: Option<u64> = None;
    let mut read_err = None;
    while got < down {
        if Instant::now() > end {
            read_err = Some(format!("deadline: received {got} of {down} bytes"));
            break;
        }
        let want = (buf.len() as u64).min(down - got) as usize;
        match r.read(&mut buf[..want]) {
            Ok(0) => {
                read_err = Some(format!("EOF after {got} of {down} bytes"));
                break;
            }
            Ok(n) => {
                expect.fill(&mut ebuf[..n]);
                hr.update(&buf[..n]);
                he.update(&ebuf[..n]);
                if first_diff.is_none() {
                    if let Some(i) = (0..n).find(|&i| buf[i] != ebuf[i]) {
                        first_diff = Some(got + i as u64);
                    }
                }
                got += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                read_err = Some(format!(
                    "receive after {got} of {down} bytes: {}",
                    why(&e, o.idle)
                ));
                break;
            }
        }
    }
    let mut trailer = [0u8; 40];
    if read_err.is_none() {
        if let Err(e) = read_full(&mut r, &mut trailer) {
            read_err = Some(format!(
                "trailer (after all {down} bytes): {}",
                why(&e, o.idle)
            ));
        }
    }
    let elapsed = t0.elapsed();
    if read_err.is_some() {
        // Unblock the writer.
        let _ = r.shutdown(Shutdown::Both);
    }
    let sent = writer
        .join()
        .map_err(|_| "writer thread panicked".to_string())?;
    let _ = r.shutdown(Shutdown::Both);
    if let Some(e) = read_err {
        return Err(match sent {
            Err(w) => format!("{e}; {w}"),
            Ok(_) => e,
        });
    }
    let sent = sent?;
    let down_sha: [u8; 32] = hr.finalize().into();
    let exp_sha: [u8; 32] = he.finalize().into();
    if let Some(at) = first_diff {
        return Err(format!(
            "down data corrupted: first wrong byte at offset {at} of {down}; sha256 {} != {}",
            hex::encode(down_sha),
            hex::encode(exp_sha)
        ));
    }
    assert_eq!(down_sha, exp_sha);
    let n = u64::from_le_bytes(trailer[32..40].try_into().unwrap());
    if n != up || trailer[..32] != sent {
        return Err(format!(
            "up data corrupted: target received {n} of {up} bytes with sha256 {}, sent {}",
            hex::encode(&trailer[..32]),
            hex::encode(sent)
        ));
    }
    Ok(Stats { up, down, elapsed })
}

/// A socket error, with timeouts spelled out.
fn why(e: &io::Error, idle: Duration) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no progress for {idle:?} (socket timeout)")
        }
        _ => e.to_string(),
    }
}

/// `conns` concurrent transfers splitting `up`/`down` between them; the stats sum the bytes and
/// take the wall time of the whole.
pub fn transfer_many(
    dest: impl Into<Dest>,
    conns: usize,
    up: u64,
    down: u64,
) -> Result<Stats, String> {
    let dest = dest.into();
    let t0 = Instant::now();
    let n = conns.max(1) as u64;
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let d = dest.clone();
            let u = up / n + u64::from(i < up % n);
            let w = down / n + u64::from(i < down % n);
            thread::spawn(move || transfer(d, u, w))
        })
        .collect();
    let mut errs = Vec::new();
    for (i, h) in hs.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => errs.push(format!("connection {i}: {e}")),
            Err(_) => errs.push(format!("connection {i}: panicked")),
        }
    }
    if errs.is_empty() {
        Ok(Stats {
            up,
            down,
            elapsed: t0.elapsed(),
        })
    } else {
        Err(errs.join("; "))
    }
}

/// Retries a small round trip (16 bytes each way, 3 s per try) until it succeeds or `deadline`
/// passes; returns the time it took. `alive` is polled between tries so a crashed tunnel end
/// fails at once instead of after the deadline.
pub fn wait_for_tunnel_with(
    dest: impl Into<Dest>,
    deadline: Duration,
    mut alive: impl FnMut() -> Result<(), String>,
) -> Result<Duration, String> {
    let dest = dest.into();
    let t0 = Instant::now();
    let mut last = String::from("no attempt");
    loop {
        alive()?;
        if t0.elapsed() >= deadline {
            return Err(format!(
                "tunnel at {dest} did not answer within {deadline:?}; last error: {last}"
            ));
        }
        let left = deadline.saturating_sub(t0.elapsed());
        let per_try = left.clamp(Duration::from_millis(200), Duration::from_secs(3));
        let o = Opts {
            deadline: per_try,
            idle: per_try,
            half_close: false,
        };
        match transfer_with(dest.clone(), 16, 16, o) {
            Ok(_) => return Ok(t0.elapsed()),
            Err(e) => last = e,
        }
        thread::sleep(Duration::from_millis(100));
    }
}

pub fn wait_for_tunnel(dest: impl Into<Dest>, deadline: Duration) -> Result<Duration, String> {
    wait_for_tunnel_with(dest, deadline, || Ok(()))
}

// ---------------------------------------------------------------------------------------------
// lossy UDP relay

/// Impairments of a [`Relay`], applied independently in each direction.
#[derive(Clone, Copy, Debug)]
pub struct Impair {
    /// Probability a datagram is dropped.
    pub loss: f64,
    /// Probability a datagram is sent twice.
    pub duplicate: f64,
    /// Probability a datagram is held back `hold_ms` (so later ones overtake it).
    pub reorder: f64,
    /// Hold-back range in milliseconds (uniform).
    pub hold_ms: (u64, u64),
    pub seed: u64,
}

impl Impair {
    pub fn none() -> Impair {
        Impair {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            hold_ms: (0, 0),
            seed: 1,
        }
    }
}

/// Relay counters (both directions together).
#[derive(Debug, Default)]
pub struct RelayCounts {
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub held: AtomicU64,
}

/// The first datagram a relay forwarded in one direction: when, what, and for which client.
type First = Arc<Mutex<Option<(Instant, Vec<u8>, SocketAddr)>>>;

/// A userspace UDP relay on 127.0.0.1: clients send to [`Relay::addr`]; each client address gets
/// its own upstream socket to `server`. It can black-hole everything ([`Relay::set_blackhole`])
/// and replay the first datagram of each direction ([`Relay::replay_first`]). Stops on drop.
pub struct Relay {
    pub addr: SocketAddr,
    pub counts: Arc<RelayCounts>,
    stop: Arc<AtomicBool>,
    hole: Arc<AtomicBool>,
    handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
    upstream: Arc<Mutex<HashMap<SocketAddr, UdpSocket>>>,
    front: UdpSocket,
    first_up: First,
    first_down: First,
}

/// Keeps `d` as the first datagram of a direction unless one is kept already.
fn keep_first(first: &First, d: &[u8], client: SocketAddr) {
    let mut f = first.lock().unwrap();
    if f.is_none() {
        *f = Some((Instant::now(), d.to_vec(), client));
    }
}

struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        (mix(&mut self.0) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + mix(&mut self.0) % (hi.saturating_sub(lo) + 1)
    }
}

/// One direction: receive on `rx`, impair, send with `send`.
fn pump(
    rx: UdpSocket,
    mut send: impl FnMut(&[u8], Option<SocketAddr>),
    mut on_new: impl FnMut(SocketAddr),
    imp: Impair,
    counts: Arc<RelayCounts>,
    stop: Arc<AtomicBool>,
    hole: Arc<AtomicBool>,
) {
    let mut rng = Rng(imp.seed);
    let mut held: Vec<(Instant, Vec<u8>, SocketAddr)> = Vec::new();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let wait = held
            .iter()
            .map(|h| h.0.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_millis(20))
            .clamp(Duration::from_millis(1), Duration::from_millis(20));
        let _ = rx.set_read_timeout(Some(wait));
        if let Ok((n, from)) = rx.recv_from(&mut buf) {
            on_new(from);
            let d = &buf[..n];
            if hole.load(Ordering::Relaxed) || rng.unit() < imp.loss {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
            } else if rng.unit() < imp.reorder {
                counts.held.fetch_add(1, Ordering::Relaxed);
                let ms = rng.range(imp.hold_ms);
                held.push((Instant::now() + Duration::from_millis(ms), d.to_vec(), from));
            } else {
                send(d, Some(from));
                counts.forwarded.fetch_add(1, Ordering::Relaxed);
                if rng.unit() < imp.duplicate {
                    send(d, Some(from));
                    counts.duplicated.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let now = Instant::now();
        let mut i = 0;
        while i < held.len() {
            if held[i].0 <= now {
                let (_, d, from) = held.swap_remove(i);
                if hole.load(Ordering::Relaxed) {
                    counts.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                send(&d, Some(from));
                counts.forwarded.fetch_add(1, Ordering::Relaxed);
            } else {
                i += 1;
            }
        }
    }
}

impl Relay {
    pub fn start(server: SocketAddr, imp: Impair) -> Relay {
        let front = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind relay");
        let addr = front.local_addr().unwrap();
        let counts = Arc::new(RelayCounts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let hole = Arc::new(AtomicBool::new(false));
        let handles: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let upstream: Arc<Mutex<HashMap<SocketAddr, UdpSocket>>> = Arc::default();
        let (first_up, first_down): (First, First) = Default::default();
        let (f2, c2, s2, h2, u2) = (
            front.try_clone().unwrap(),
            counts.clone(),
            stop.clone(),
            handles.clone(),
            upstream.clone(),
        );
        let (hole2, fu2, fd2) = (hole.clone(), first_up.clone(), first_down.clone());
        let upstream = upstream.clone();
        let mut n_dirs = 0u64;
        let h = thread::spawn(move || {
            let up_for_new = u2.clone();
            let (fc, cc, sc, hc) = (f2.try_clone().unwrap(), c2.clone(), s2.clone(), h2.clone());
            let hole_down = hole2.clone();
            let on_new = move |client: SocketAddr| {
                let mut map = up_for_new.lock().unwrap();
                if map.contains_key(&client) {
                    return;
                }
                let back = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind upstream");
                back.connect(server).expect("connect upstream");
                let rx = back.try_clone().unwrap();
                map.insert(client, back);
                n_dirs += 1;
                let mut imp_down = imp;
                imp_down.seed = imp.seed.wrapping_add(n_dirs * 7919);
                let (fc, cc, sc) = (fc.try_clone().unwrap(), cc.clone(), sc.clone());
                let (hd, fd) = (hole_down.clone(), fd2.clone());
                hc.lock().unwrap().push(thread::spawn(move || {
                    pump(
                        rx,
                        move |d, _| {
                            keep_first(&fd, d, client);
                            let _ = fc.send_to(d, client);
                        },
                        |_| {},
                        imp_down,
                        cc,
                        sc,
                        hd,
                    )
                }));
            };
            let fwd = move |d: &[u8], from: Option<SocketAddr>| {
                if let Some(f) = from {
                    if let Some(back) = u2.lock().unwrap().get(&f) {
                        keep_first(&fu2, d, f);
                        let _ = back.send(d);
                    }
                }
            };
            pump(f2, fwd, on_new, imp, c2, s2, hole2);
        });
        handles.lock().unwrap().push(h);
        Relay {
            addr,
            counts,
            stop,
            hole,
            handles,
            upstream,
            front,
            first_up,
            first_down,
        }
    }

    /// Black hole on: every datagram, both ways, is dropped (and counted) until it is off again.
    pub fn set_blackhole(&self, on: bool) {
        self.hole.store(on, Ordering::Relaxed);
    }

    /// When the first datagram (client to server) was forwarded, if one was.
    pub fn first_seen(&self) -> Option<Instant> {
        self.first_up.lock().unwrap().as_ref().map(|f| f.0)
    }

    /// Sends the first datagram of each direction again, as it was (a stale or replayed
    /// datagram): the client's first to the server from the same upstream socket, the server's
    /// first to the client. Returns how many were replayed (0..=2).
    pub fn replay_first(&self) -> usize {
        let mut n = 0;
        if let Some((_, d, client)) = self.first_up.lock().unwrap().clone() {
            if let Some(back) = self.upstream.lock().unwrap().get(&client) {
                n += usize::from(back.send(&d).is_ok());
            }
        }
        if let Some((_, d, client)) = self.first_down.lock().unwrap().clone() {
            n += usize::from(self.front.send_to(&d, client).is_ok());
        }
        n
    }

    /// NAT rebinding: every client's next datagram leaves from a new upstream port, so the
    /// server sees the same conversation arrive from a new address.
    pub fn rebind(&self) {
        self.upstream.lock().unwrap().clear();
    }

    pub fn summary(&self) -> String {
        let c = &self.counts;
        format!(
            "relay: forwarded {}, dropped {}, duplicated {}, held back {}",
            c.forwarded.load(Ordering::Relaxed),
            c.dropped.load(Ordering::Relaxed),
            c.duplicated.load(Ordering::Relaxed),
            c.held.load(Ordering::Relaxed)
        )
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let hs: Vec<_> = self.handles.lock().unwrap().drain(..).collect();
        for h in hs {
            let _ = h.join();
        }
        // Threads spawned while joining the first one.
        let hs: Vec<_> = self.handles.lock().unwrap().drain(..).collect();
        for h in hs {
            let _ = h.join();
        }
    }
}
