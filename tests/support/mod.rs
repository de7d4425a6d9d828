//! Harness for the tunnel tests (`tests/interop.rs`, `tests/e2e.rs`, …): free loopback ports, child
//! processes killed on drop with their output captured to a log file, a checking TCP/unix target
//! and `transfer` through a tunnel with SHA-256 verified at both ends, `wait_for_tunnel`
//! (`target.rs`), a lossy UDP relay (`relay.rs`) and plain HTTP requests (`http.rs`).
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

mod http;
mod relay;
mod target;

// Each test binary uses a part of the harness.
#[allow(unused_imports)]
pub use http::*;
#[allow(unused_imports)]
pub use relay::*;
#[allow(unused_imports)]
pub use target::*;

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

    /// Everything the process wrote so far.
    pub fn full_log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
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
