//! The hand-written mio event loop shared by `kcptun client` and `kcptun server`.
//!
//! One turn: wait for readiness or the earliest timer → read the clock once → drain every ready
//! source (to `WouldBlock`, with a per-source budget; sources cut short go on a `still_ready` list
//! and the next wait does not block) → fire expired timers → for every session touched in this
//! turn, dispatch its stream events and drain its transmit queue, at most [`SEND_BUDGET`]
//! datagrams (a session cut short is `deferred` to the next turn, whose wait does not block
//! either) → re-arm its single timer.
//! Sessions without work are not touched: there is no per-tick sweep over all sessions, except a
//! cheap liveness check once a second.
//!
//! Roles: [`Role::Client`] listens locally and carries each accepted connection on one of
//! `--conn` sessions it dials; [`Role::Server`] demultiplexes datagrams per peer into sessions and
//! dials the target for every stream the peer opens. Both share sessions, connections, timers,
//! signals and reporting here.

mod client;
mod conn;
mod ctl;
mod metrics;
mod server;
mod session;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::net::{self, BindError};
use super::ratelog::RateLog;
use super::relay::{Conn, Local};
use super::report::Reporter;
use super::signals::{Signal, Signals};
use super::timers::TimerQueue;
use super::udp::{RxBatch, SockOpts, TxBatch, UdpSock};
use crate::proto::kcp::KcpConfig;
use crate::proto::qpp::{Qpp, QppPrng};
use crate::proto::rng::Rng;
use crate::proto::smux::{Event, ReadError, StreamId, WriteError};
use crate::proto::snmp::Snmp;
use crate::proto::tunnel::{Input, Liveness, Tunnel, TunnelConfig};

/// Where the server sends the streams / where the client listens: TCP address or unix socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalAddr {
    Tcp(String),
    Unix(PathBuf),
}

/// Settings both roles share.
#[derive(Clone, Debug)]
pub struct CommonConfig {
    pub tunnel: TunnelConfig,
    pub sock: SockOpts,
    pub quiet: bool,
    /// After one direction of a connection ended, close it when the other is idle this long.
    pub halfclose: Duration,
    pub snmplog: Option<String>,
    pub snmpperiod: Duration,
    pub ctl: Option<PathBuf>,
    /// `--metrics`: `host:port` serving Prometheus' `GET /metrics`.
    pub metrics: Option<String>,
    /// SIP003 plugin mode: stop (as on SIGTERM) once the parent process is gone.
    pub watch_parent: bool,
    /// `--QPP`: the pads (built once) and the raw key that seeds each stream direction's PRNG.
    pub qpp: Option<(Arc<Qpp>, Vec<u8>)>,
    /// `--ratelimit`: bytes per second per session (datagram bytes, FEC and crypto included); 0 = off.
    pub ratelimit: u64,
}

/// Token bucket of `--ratelimit` (Go: rate N bytes/s, burst 64 × 1500 bytes).
struct Bucket {
    tokens: f64,
    last: Instant,
}

const RATE_BURST: f64 = 64.0 * 1500.0;

impl Bucket {
    fn new(now: Instant) -> Self {
        Bucket {
            tokens: RATE_BURST,
            last: now,
        }
    }

    /// Refills; `None` if a datagram may go now, else how long until one may.
    fn wait(&mut self, now: Instant, rate: u64) -> Option<Duration> {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * rate as f64).min(RATE_BURST);
        if self.tokens > 0.0 {
            None
        } else {
            Some(Duration::from_secs_f64(-self.tokens / rate as f64).max(Duration::from_millis(1)))
        }
    }
}

/// Client role settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub common: CommonConfig,
    pub listen: LocalAddr,
    /// Server host and port range (a single port has min == max).
    pub remote_host: String,
    pub remote_ports: (u16, u16),
    pub conns: usize,
    pub autoexpire: Option<Duration>,
    pub scavenge_ttl: Duration,
}

/// Server role settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub common: CommonConfig,
    pub listen_host: String,
    pub listen_ports: (u16, u16),
    pub target: LocalAddr,
    /// KCP settings applied to sessions (the first datagram is handled with them too).
    pub kcp: KcpConfig,
}

/// A fatal error of the loop (startup or OS failure), shown to the user as one line.
#[derive(Debug)]
pub enum RunError {
    Bind(BindError),
    Resolve { addr: String, err: String },
    Io(io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Bind(e) => write!(f, "{e}"),
            RunError::Resolve { addr, err } => write!(f, "cannot resolve {addr}: {err}"),
            RunError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

impl From<io::Error> for RunError {
    fn from(e: io::Error) -> Self {
        RunError::Io(e)
    }
}

/// `host:port` with brackets around IPv6 literals.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

// Token layout: low 3 bits = kind, the rest = index.
const K_SIGNAL: usize = 0;
const K_LISTEN_LOCAL: usize = 1;
const K_UDP: usize = 2;
const K_CONN: usize = 4;
const K_CTL: usize = 5;
const K_METRICS: usize = 6;

fn token(kind: usize, idx: usize) -> Token {
    Token(idx << 3 | kind)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum TimerKey {
    Session(usize),
    Conn(usize),
    Tick,
    /// Retry accepting after an accept error.
    Accept,
    /// A `--metrics` connection ran out of time.
    Metrics(usize),
}

/// A UDP socket of the loop with its send batch.
struct Sock {
    sock: UdpSock,
    tx: TxBatch,
    /// Client: the session owning this socket; server listener: `None`.
    owner: Option<usize>,
    /// Sessions that stopped draining because `tx` could not be flushed.
    waiting: Vec<usize>,
    /// WRITABLE is registered (only while `tx` holds datagrams the kernel refused).
    want_write: bool,
}

struct Sess {
    /// Boxed: the session table grows by doubling, and its slack should cost pointers.
    tunnel: Box<Tunnel>,
    /// The socket (index into `udp`) and the peer address datagrams go to.
    sock: usize,
    peer: SocketAddr,
    streams: HashMap<StreamId, usize>,
    created: Instant,
    /// Client: no new streams (expired or stale); the slot gets a fresh session.
    retiring: bool,
    armed: Option<Instant>,
    bucket: Bucket,
    /// `--ratelimit` holds sending until this instant.
    rate_wait: Option<Instant>,
    /// Datagrams sent in loop turn `sent_turn` (see [`SEND_BUDGET`]).
    sent: usize,
    sent_turn: u64,
}

/// Local listener of the client.
enum LocalListener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Role-specific state.
enum Role {
    Client {
        cfg: ClientConfig,
        listener: LocalListener,
        slots: Vec<Option<usize>>,
        next_slot: usize,
        remote_cache: Option<(SocketAddr, Instant)>,
        /// The server stopped answering (logged once; cleared by the next answer).
        unreachable: bool,
        /// Session setup failed (resolve, socket): no retry before this instant; next back-off.
        backoff: Option<(Instant, Duration)>,
    },
    Server {
        cfg: ServerConfig,
        /// Sessions by (listener socket, peer address).
        by_peer: HashMap<(usize, SocketAddr), usize>,
        /// Crypt that opens datagrams of peers without a session.
        peek: crate::proto::crypt::Crypt,
        /// Outbound half used for reset hints.
        hint_out: Box<crate::proto::codec::Outbound>,
        /// Last reset hint per peer (bounded).
        hinted: HashMap<SocketAddr, Instant>,
    },
}

/// The event loop.
pub struct Driver {
    poll: Poll,
    role: Role,
    common: CommonConfig,
    sessions: Slab<Sess>,
    conns: Slab<Conn>,
    udp: Slab<Sock>,
    timers: TimerQueue<TimerKey>,
    signals: Signals,
    rng: Rng,
    now: Instant,
    dirty: Vec<usize>,
    dirty_socks: Vec<usize>,
    still_ready: Vec<Token>,
    /// Sessions that spent this turn's [`SEND_BUDGET`] with more to send: dirty next turn.
    deferred: Vec<usize>,
    /// Loop turns so far.
    turn: u64,
    rx: Option<Box<RxBatch>>,
    relay: Vec<u8>,
    events_scratch: Vec<Event>,
    /// Sessions freed memory since the last tick: give it back to the OS at the next one.
    trim_due: bool,
    retired: Snmp,
    counters: Snmp,
    reporter: Reporter,
    stopping: bool,
    /// `--ctl`: the control socket answering `kcptun snmp`.
    ctl: Option<UnixListener>,
    /// Warnings a flood can trigger, at most one line per cause per second.
    ratelog: RateLog,
    /// Control connections waiting for their request line (bounded by `MAX_CTL_PENDING`).
    ctl_conns: Slab<(mio::net::UnixStream, Instant)>,
    started: Instant,
    /// `--metrics` listener and its connections (bounded by `MAX_METRICS_CONNS`).
    metrics: Option<TcpListener>,
    metrics_conns: Slab<metrics::MetricsConn>,
    /// Plugin mode: the parent process id seen at start (a change means it is gone).
    parent: Option<u32>,
}

/// Datagrams read per socket per turn before other sources get their turn. 64 rather than 256:
/// a turn that reads 256 datagrams keeps a small message waiting on a TCP socket for about a
/// millisecond under a loopback transfer. Five alternated 4 s runs of `kcptun bench tunnel`
/// (loopback, 2026-12-07): loaded p99 4.73–6.24 ms against 5.51–6.52, same goodput.
const UDP_BUDGET: usize = 64;

/// Datagrams one session sends per turn before the loop looks at its sockets again. A
/// window-bound sender on loopback otherwise sends ~300 datagrams (about a millisecond of
/// encryption) per turn, and a request or an answer that arrives meanwhile, on the UDP socket
/// or on a TCP connection, waits for the whole burst. `kcptun bench tunnel` on loopback, 3
/// alternated 6 s runs per budget, all loaded samples together (2026-12-07):
///
/// | budget | p50 (ms) | p99 (ms) | over 5 ms | goodput up / down (MB/s) |
/// |---|---|---|---|---|
/// | none | 1.47 | 3.45 | 0.30 % | 355 / 359 |
/// | 64 | 0.95 | 3.80 | 0.18 % | 355 / 331 |
/// | 96 | 0.78 | 3.27 | 0 | 356 / 343 |
/// | 128 | 0.85 | 3.03–3.10 | 0–0.12 % | 356–361 / 344–352 |
/// | 256 | 1.31 | 3.80 | 0.06 % | 356 / 349 |
///
/// 128 is two full `sendmmsg` batches.
pub const SEND_BUDGET: usize = 128;

/// Control connections awaiting their request at most.
const MAX_CTL_PENDING: usize = 16;
/// Connections accepted per turn.
const ACCEPT_BUDGET: usize = 64;
/// Relay buffer (one, shared by all connections).
const RELAY_BUF: usize = 32 * 1024;
/// Sessions a server keeps at most (bounds memory under a flood of authenticated peers). A quiet
/// session holds ~20 KB and one right after traffic ~200 KB, so 16,384 of them bound memory about
/// as 8,192 did when every session kept ~370 KB.
const MAX_SERVER_SESSIONS: usize = 16384;
/// Connections per process at most (each may hold a relay buffer's worth each way when blocked).
const MAX_CONNS: usize = 16384;

impl Driver {
    fn base(common: CommonConfig, role: Role, poll: Poll, signals: Signals, rng: Rng) -> Self {
        let now = Instant::now();
        let reporter = Reporter::new(common.snmplog.clone(), common.snmpperiod);
        let parent = common.watch_parent.then(std::os::unix::process::parent_id);
        Driver {
            poll,
            role,
            common,
            sessions: Slab::new(),
            conns: Slab::new(),
            udp: Slab::new(),
            timers: TimerQueue::new(),
            signals,
            rng,
            now,
            dirty: Vec::new(),
            dirty_socks: Vec::new(),
            still_ready: Vec::new(),
            deferred: Vec::new(),
            turn: 0,
            rx: Some(Box::new(RxBatch::new())),
            relay: vec![0; RELAY_BUF],
            events_scratch: Vec::new(),
            trim_due: false,
            retired: Snmp::default(),
            counters: Snmp::default(),
            reporter,
            stopping: false,
            ctl: None,
            ratelog: RateLog::new(),
            ctl_conns: Slab::new(),
            started: now,
            metrics: None,
            metrics_conns: Slab::new(),
            parent,
        }
    }

    fn os_rng() -> Rng {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).expect("the OS random source works");
        Rng::from_seed(seed)
    }

    /// Sets up the client: binds the local listener. Fails with a clear error if it is taken.
    pub fn client(cfg: ClientConfig) -> Result<Self, RunError> {
        let poll = Poll::new()?;
        let signals = Signals::new(poll.registry(), token(K_SIGNAL, 0))?;
        let mut listener = match &cfg.listen {
            LocalAddr::Tcp(a) => {
                let addr = net::resolve(a).map_err(|e| RunError::Resolve {
                    addr: a.clone(),
                    err: e.to_string(),
                })?;
                LocalListener::Tcp(net::bind_tcp(addr).map_err(RunError::Bind)?)
            }
            LocalAddr::Unix(p) => LocalListener::Unix(net::bind_unix(p).map_err(RunError::Bind)?),
        };
        match &mut listener {
            LocalListener::Tcp(l) => {
                poll.registry()
                    .register(l, token(K_LISTEN_LOCAL, 0), Interest::READABLE)?
            }
            LocalListener::Unix(l) => {
                poll.registry()
                    .register(l, token(K_LISTEN_LOCAL, 0), Interest::READABLE)?
            }
        }
        let slots = vec![None; cfg.conns.max(1)];
        let common = cfg.common.clone();
        let mut d = Self::base(
            common,
            Role::Client {
                cfg,
                listener,
                slots,
                next_slot: 0,
                remote_cache: None,
                unreachable: false,
                backoff: None,
            },
            poll,
            signals,
            Self::os_rng(),
        );
        d.open_ctl()?;
        d.open_metrics()?;
        Ok(d)
    }

    /// Sets up the server: binds one UDP socket per port of the listen range.
    pub fn server(cfg: ServerConfig) -> Result<Self, RunError> {
        let poll = Poll::new()?;
        let signals = Signals::new(poll.registry(), token(K_SIGNAL, 0))?;
        let mut socks = Vec::new();
        for port in cfg.listen_ports.0..=cfg.listen_ports.1 {
            let text = join_host_port(&cfg.listen_host, port);
            let addr = net::resolve(&text).map_err(|e| RunError::Resolve {
                addr: text.clone(),
                err: e.to_string(),
            })?;
            socks.push(net::bind_udp(addr, &cfg.common.sock).map_err(RunError::Bind)?);
        }
        let common = cfg.common.clone();
        let mut rng = Self::os_rng();
        let peek = crate::proto::crypt::Crypt::new(common.tunnel.method, &common.tunnel.pass);
        let (hint_out, _) = crate::proto::codec::pipeline(
            common.tunnel.method,
            &common.tunnel.pass,
            None,
            rng.fork(),
            Instant::now(),
        )
        .map_err(|e| RunError::Io(io::Error::new(io::ErrorKind::InvalidInput, e.to_string())))?;
        let mut d = Self::base(
            common,
            Role::Server {
                cfg,
                by_peer: HashMap::new(),
                peek,
                hint_out: Box::new(hint_out),
                hinted: HashMap::new(),
            },
            poll,
            signals,
            rng,
        );
        for sock in socks {
            d.add_sock(sock, None)?;
        }
        d.open_ctl()?;
        d.open_metrics()?;
        Ok(d)
    }

    fn add_sock(&mut self, mut sock: UdpSock, owner: Option<usize>) -> io::Result<usize> {
        let entry = self.udp.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(sock.socket_mut(), token(K_UDP, key), Interest::READABLE)?;
        entry.insert(Sock {
            sock,
            tx: TxBatch::new(),
            owner,
            waiting: Vec::new(),
            want_write: false,
        });
        Ok(key)
    }

    /// The address the client listens on, or the server's first UDP port (tests bind port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.role {
            Role::Client {
                listener: LocalListener::Tcp(l),
                ..
            } => l.local_addr().ok(),
            Role::Server { .. } => self
                .udp
                .iter()
                .next()
                .and_then(|(_, s)| s.sock.local_addr().ok()),
            _ => None,
        }
    }

    /// Runs until SIGTERM/SIGINT. Returns Ok on a graceful stop. Asks the kernel for a short
    /// scheduler slice for this thread first (see [`sched`](super::sched)).
    pub fn run(&mut self) -> Result<(), RunError> {
        match super::sched::request_slice(super::sched::SLICE) {
            Ok(true) => debug!("scheduler slice: asked for {:?}", super::sched::SLICE),
            Ok(false) => debug!("scheduler slice: left as it is (not a normal task)"),
            Err(e) => debug!("scheduler slice: the kernel refused a short one ({e})"),
        }
        let mut events = Events::with_capacity(1024);
        while self.turn(&mut events, None)? {}
        Ok(())
    }

    /// One turn of [`Driver::run`], waiting at most `max_wait` for something to do (tests step
    /// a loop with it). Returns false once the loop has shut down.
    pub fn step(&mut self, max_wait: Duration) -> Result<bool, RunError> {
        let mut events = Events::with_capacity(1024);
        self.turn(&mut events, Some(max_wait))
    }

    fn turn(&mut self, events: &mut Events, max_wait: Option<Duration>) -> Result<bool, RunError> {
        if self.turn == 0 {
            self.timers
                .set(TimerKey::Tick, self.now + Duration::from_secs(1));
        }
        let timeout = if self.still_ready.is_empty() && self.deferred.is_empty() {
            self.timers
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()))
        } else {
            Some(Duration::ZERO)
        };
        let timeout = match (timeout, max_wait) {
            (Some(t), Some(m)) => Some(t.min(m)),
            (t, m) => t.or(m),
        };
        if let Err(e) = self.poll.poll(events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e.into());
            }
        }
        self.now = Instant::now();
        self.turn += 1;
        for si in std::mem::take(&mut self.deferred) {
            self.mark(si);
        }
        let mut ready: Vec<Token> = std::mem::take(&mut self.still_ready);
        ready.extend(events.iter().map(|e| e.token()));
        ready.dedup();
        for t in ready {
            self.dispatch(t);
        }
        while let Some(key) = self.timers.pop_expired(self.now) {
            self.fire(key);
        }
        self.flush_dirty();
        if self.stopping {
            self.shutdown();
            return Ok(false);
        }
        Ok(true)
    }

    fn dispatch(&mut self, t: Token) {
        let (kind, idx) = (t.0 & 7, t.0 >> 3);
        match kind {
            K_SIGNAL => self.on_signals(),
            K_LISTEN_LOCAL => self.on_accept(),
            K_UDP => self.on_udp(idx),
            K_CONN => self.on_conn(idx),
            K_CTL if idx == 0 => self.on_ctl(),
            K_CTL => self.on_ctl_conn(idx - 1),
            K_METRICS if idx == 0 => self.on_metrics_accept(),
            K_METRICS => self.on_metrics_conn(idx - 1),
            _ => {}
        }
    }

    fn on_signals(&mut self) {
        let sigs: Vec<Signal> = self.signals.drain().collect();
        for s in sigs {
            match s {
                Signal::Usr1 => {
                    let snap = self.snapshot();
                    info!("{}", super::report::sigusr1_line(&snap));
                }
                Signal::Term | Signal::Int => {
                    info!("signal received, shutting down");
                    self.stopping = true;
                }
                Signal::Hup => super::report::reopen_log(),
            }
        }
    }

    /// Process-wide counters: retired sessions + live ones + loop counters.
    pub fn snapshot(&self) -> Snmp {
        let mut s = self.retired;
        s.add(&self.counters);
        for (_, sess) in self.sessions.iter() {
            s.add(&sess.tunnel.stats());
        }
        s.curr_estab = self.sessions.len() as u64;
        s
    }

    fn mark(&mut self, si: usize) {
        if !self.dirty.contains(&si) {
            self.dirty.push(si);
        }
    }

    fn shutdown(&mut self) {
        // Close every stream (an smux FIN each, so the peer closes its side now rather than at
        // its keep-alive timeout), send what the sessions still have queued, then close.
        let ids: Vec<usize> = self.sessions.iter().map(|(k, _)| k).collect();
        for si in ids.iter().copied() {
            if let Some(s) = self.sessions.get_mut(si) {
                let sids: Vec<StreamId> = s.streams.keys().copied().collect();
                for sid in sids {
                    s.tunnel.close(sid);
                }
            }
            self.session_send(si, usize::MAX);
        }
        let socks: Vec<usize> = self.udp.iter().map(|(k, _)| k).collect();
        for ui in socks {
            self.flush_sock(ui);
        }
        for si in ids {
            self.close_session(si, "shutting down");
        }
        let snap = self.snapshot();
        self.reporter.tick(&snap);
        if let (Some(_), Some(path)) = (self.ctl.take(), &self.common.ctl) {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn display_target(t: &LocalAddr) -> String {
    match t {
        LocalAddr::Tcp(a) => a.clone(),
        LocalAddr::Unix(p) => p.display().to_string(),
    }
}
