//! The hand-written mio event loop shared by `kcptun client` and `kcptun server`.
//!
//! One turn: wait for readiness or the earliest timer → read the clock once → drain every ready
//! source (to `WouldBlock`, with a per-source budget; sources cut short go on a `still_ready` list
//! and the next wait does not block) → fire expired timers → for every session touched in this
//! turn, dispatch its stream events and drain its transmit queue → re-arm its single timer.
//! Sessions without work are not touched: there is no per-tick sweep over all sessions, except a
//! cheap liveness check once a second.
//!
//! Roles: [`Role::Client`] listens locally and carries each accepted connection on one of
//! `--conn` sessions it dials; [`Role::Server`] demultiplexes datagrams per peer into sessions and
//! dials the target for every stream the peer opens. Both share sessions, connections, timers,
//! signals and reporting here.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::net::{self, BindError};
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
    tunnel: Tunnel,
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
        /// Last time an accept error was logged (logged at most every 10 s).
        accept_warned: Option<Instant>,
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
    rx: Option<Box<RxBatch>>,
    relay: Vec<u8>,
    events_scratch: Vec<Event>,
    retired: Snmp,
    counters: Snmp,
    reporter: Reporter,
    stopping: bool,
    /// `--ctl`: the control socket answering `kcptun snmp`.
    ctl: Option<UnixListener>,
    /// When each limit was last reported (a flood must not flood the log too).
    limit_warned: [Option<Instant>; 2],
    /// Control connections waiting for their request line (bounded by `MAX_CTL_PENDING`).
    ctl_conns: Slab<(mio::net::UnixStream, Instant)>,
    started: Instant,
}

/// Datagrams read per socket per turn before other sources get their turn.
const UDP_BUDGET: usize = 256;
/// Limits whose hits are logged at most every 10 s.
#[derive(Clone, Copy)]
enum Limit {
    Conns = 0,
    Sessions = 1,
}

/// Control connections awaiting their request at most.
const MAX_CTL_PENDING: usize = 16;
/// Connections accepted per turn.
const ACCEPT_BUDGET: usize = 64;
/// Relay buffer (one, shared by all connections).
const RELAY_BUF: usize = 32 * 1024;
/// Sessions a server keeps at most (bounds memory under a flood of authenticated peers).
const MAX_SERVER_SESSIONS: usize = 8192;
/// Connections per process at most (each may hold a relay buffer's worth each way when blocked).
const MAX_CONNS: usize = 16384;

impl Driver {
    fn base(common: CommonConfig, role: Role, poll: Poll, signals: Signals, rng: Rng) -> Self {
        let now = Instant::now();
        let reporter = Reporter::new(common.snmplog.clone(), common.snmpperiod);
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
            rx: Some(Box::new(RxBatch::new())),
            relay: vec![0; RELAY_BUF],
            events_scratch: Vec::new(),
            retired: Snmp::default(),
            counters: Snmp::default(),
            reporter,
            stopping: false,
            ctl: None,
            limit_warned: [None; 2],
            ctl_conns: Slab::new(),
            started: now,
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
                accept_warned: None,
            },
            poll,
            signals,
            Self::os_rng(),
        );
        d.open_ctl()?;
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
        Ok(d)
    }

    /// Binds `--ctl` (a unix socket, mode 0600) if asked.
    fn open_ctl(&mut self) -> Result<(), RunError> {
        let Some(path) = self.common.ctl.clone() else {
            return Ok(());
        };
        let mut l = net::bind_unix(&path).map_err(RunError::Bind)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        self.poll
            .registry()
            .register(&mut l, token(K_CTL, 0), Interest::READABLE)?;
        self.ctl = Some(l);
        Ok(())
    }

    /// Accepts control connections; each is answered once its request line arrives.
    fn on_ctl(&mut self) {
        for _ in 0..ACCEPT_BUDGET {
            let Some(l) = &self.ctl else {
                return;
            };
            let mut stream = match l.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!("ctl accept: {e}");
                    return;
                }
            };
            if self.ctl_conns.len() >= MAX_CTL_PENDING {
                // Drop the oldest silent client rather than grow.
                if let Some(k) = self
                    .ctl_conns
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k)
                {
                    let (mut old, _) = self.ctl_conns.remove(k);
                    let _ = self.poll.registry().deregister(&mut old);
                }
            }
            let entry = self.ctl_conns.vacant_entry();
            if self
                .poll
                .registry()
                .register(
                    &mut stream,
                    token(K_CTL, entry.key() + 1),
                    Interest::READABLE,
                )
                .is_ok()
            {
                entry.insert((stream, self.now));
            }
        }
        self.still_ready.push(token(K_CTL, 0));
    }

    /// Reads a control request (one line) and answers it with a JSON snapshot.
    fn on_ctl_conn(&mut self, k: usize) {
        let Some((stream, _)) = self.ctl_conns.get_mut(k) else {
            return;
        };
        let mut buf = [0u8; 256];
        let complete = loop {
            match std::io::Read::read(stream, &mut buf) {
                Ok(0) => break true,
                Ok(n) if buf[..n].contains(&b'\n') => break true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if !complete {
            return;
        }
        let (mut stream, _) = self.ctl_conns.remove(k);
        let _ = self.poll.registry().deregister(&mut stream);
        let mut body = self.ctl_json().to_string();
        body.push('\n');
        // The answer is small: it fits the fresh socket's buffer in one write.
        let _ = std::io::Write::write_all(&mut stream, body.as_bytes());
    }

    /// The control socket's answer (see `kcptun snmp`).
    pub fn ctl_json(&self) -> serde_json::Value {
        let snap = self.snapshot();
        let mut counters = serde_json::Map::new();
        for (name, v) in snap.fields() {
            counters.insert(name.to_string(), serde_json::Value::from(v));
        }
        serde_json::json!({
            "kcptun": env!("CARGO_PKG_VERSION"),
            "role": if matches!(self.role, Role::Client { .. }) { "client" } else { "server" },
            "pid": std::process::id(),
            "uptime_secs": Instant::now().duration_since(self.started).as_secs_f64(),
            "sessions": self.sessions.len(),
            "streams": self.conns.len(),
            "snmp": counters,
        })
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

    /// Runs until SIGTERM/SIGINT. Returns Ok on a graceful stop.
    pub fn run(&mut self) -> Result<(), RunError> {
        let mut events = Events::with_capacity(1024);
        self.timers
            .set(TimerKey::Tick, self.now + Duration::from_secs(1));
        loop {
            let timeout = if self.still_ready.is_empty() {
                self.timers
                    .next_deadline()
                    .map(|d| d.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e.into());
                }
            }
            self.now = Instant::now();
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
                return Ok(());
            }
        }
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

    // ---------------- client ----------------

    fn on_accept(&mut self) {
        for _ in 0..ACCEPT_BUDGET {
            let local = {
                let Role::Client { listener, .. } = &mut self.role else {
                    return;
                };
                match listener {
                    LocalListener::Tcp(l) => match l.accept() {
                        Ok((s, _)) => {
                            let _ = s.set_nodelay(true);
                            Local::Tcp(s)
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) => return self.accept_failed(e),
                    },
                    LocalListener::Unix(l) => match l.accept() {
                        Ok((s, _)) => Local::Unix(s),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) => return self.accept_failed(e),
                    },
                }
            };
            if self.conns.len() >= MAX_CONNS {
                self.warn_limit(
                    Limit::Conns,
                    format_args!("too many connections ({MAX_CONNS}); refusing new ones"),
                );
                continue;
            }
            let Some(si) = self.client_session_for_new_stream() else {
                continue;
            };
            let sid = match self.sessions[si].tunnel.open() {
                Ok(id) => id,
                Err(e) => {
                    warn!("open stream: {e}");
                    self.sessions[si].retiring = true;
                    continue;
                }
            };
            let ci = self.conns.insert(self.new_conn(local, si, sid, false));
            self.sessions[si].streams.insert(sid, ci);
            self.counters.active_opens += 0;
            if !self.common.quiet {
                info!(
                    target: super::report::STREAM_TARGET,
                    "stream opened in: {} out: session {:08x}",
                    sid,
                    self.sessions[si].tunnel.conv()
                );
            }
            self.pump_conn(ci);
            self.mark(si);
        }
        self.still_ready.push(token(K_LISTEN_LOCAL, 0));
    }

    /// Logs that a limit was hit, at most every 10 s per limit.
    fn warn_limit(&mut self, which: Limit, msg: std::fmt::Arguments<'_>) {
        let last = &mut self.limit_warned[which as usize];
        if last.map_or(true, |t| {
            self.now.duration_since(t) >= Duration::from_secs(10)
        }) {
            warn!("{msg}");
            *last = Some(self.now);
        }
    }

    /// Out of file descriptors (or another accept error): the pending connection stays in the
    /// backlog and, the poll being edge-triggered, no new event would come for it; retry soon.
    fn accept_failed(&mut self, e: io::Error) {
        let now = self.now;
        if let Role::Client { accept_warned, .. } = &mut self.role {
            if accept_warned.map_or(true, |t| now.duration_since(t) >= Duration::from_secs(10)) {
                warn!("accept: {e} (raise the open-files limit, e.g. LimitNOFILE=65536); retrying");
                *accept_warned = Some(now);
            }
        }
        self.timers
            .set(TimerKey::Accept, now + Duration::from_millis(100));
    }

    /// Round-robin slot; a missing, dead, retiring or expired session is replaced synchronously.
    fn client_session_for_new_stream(&mut self) -> Option<usize> {
        let now = self.now;
        let (slot, existing, autoexpire) = {
            let Role::Client {
                slots,
                next_slot,
                cfg,
                ..
            } = &mut self.role
            else {
                return None;
            };
            let slot = *next_slot % slots.len();
            *next_slot = next_slot.wrapping_add(1);
            (slot, slots[slot], cfg.autoexpire)
        };
        if let Some(si) = existing {
            if let Some(s) = self.sessions.get_mut(si) {
                let expired = autoexpire.is_some_and(|ttl| now.duration_since(s.created) >= ttl);
                if expired {
                    s.retiring = true;
                }
                if !s.retiring
                    && !matches!(s.tunnel.liveness(now), Liveness::Dead(_) | Liveness::Stale)
                {
                    return Some(si);
                }
                s.retiring = true;
                // Checked at the end of this turn: without streams it closes at once.
                self.mark(si);
            }
        }
        if let Role::Client {
            backoff: Some((until, _)),
            ..
        } = &self.role
        {
            if now < *until {
                return None; // still backing off: the connection is refused at once
            }
        }
        match self.new_client_session() {
            Ok(si) => {
                if let Role::Client { slots, backoff, .. } = &mut self.role {
                    slots[slot] = Some(si);
                    if backoff.take().is_some() {
                        info!("re-connected");
                    }
                }
                Some(si)
            }
            Err(e) => {
                if let Role::Client { backoff, .. } = &mut self.role {
                    let next = match backoff {
                        None => {
                            warn!("re-connecting: {e} (retrying with back-off; connections meanwhile are refused)");
                            Duration::from_secs(1)
                        }
                        Some((_, d)) => (*d * 2).min(Duration::from_secs(30)),
                    };
                    *backoff = Some((now + next, next));
                }
                None
            }
        }
    }

    fn remote_addr(&mut self) -> io::Result<SocketAddr> {
        let Role::Client {
            cfg, remote_cache, ..
        } = &mut self.role
        else {
            return Err(io::ErrorKind::Unsupported.into());
        };
        let (lo, hi) = cfg.remote_ports;
        let port = if hi > lo {
            lo + self.rng.below(u64::from(hi - lo) + 1) as u16
        } else {
            lo
        };
        // Resolve again at most every 30 s (a server behind DNS may move).
        let base = match remote_cache {
            Some((a, at)) if self.now.duration_since(*at) < Duration::from_secs(30) => *a,
            _ => {
                let a = net::resolve(&join_host_port(&cfg.remote_host, lo))
                    .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e.to_string()))?;
                *remote_cache = Some((a, self.now));
                a
            }
        };
        let mut a = base;
        a.set_port(port);
        Ok(a)
    }

    fn new_client_session(&mut self) -> io::Result<usize> {
        let remote = self.remote_addr()?;
        let sock = UdpSock::connect_unbound(remote, &self.common.sock)?;
        let conv = self.rng.next_u32();
        let tunnel = Tunnel::new(&self.common.tunnel, conv, true, self.rng.fork(), self.now)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let si = self.sessions.vacant_key();
        let ui = self.add_sock(sock, Some(si))?;
        self.sessions.insert(Sess {
            tunnel,
            sock: ui,
            peer: remote,
            streams: HashMap::new(),
            created: self.now,
            retiring: false,
            armed: None,
            bucket: Bucket::new(self.now),
            rate_wait: None,
        });
        self.counters.active_opens += 1;
        self.counters.max_conn = self.counters.max_conn.max(self.sessions.len() as u64);
        info!("smux session established: conv {conv:08x} to {remote}");
        Ok(si)
    }

    /// A UDP socket is ready: flush what it holds, then read datagrams in batches.
    fn on_udp(&mut self, ui: usize) {
        if !self.udp.contains(ui) {
            return;
        }
        self.flush_sock(ui);
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        let mut reads = 0;
        let mut answered = None;
        loop {
            let n = match self.udp[ui].sock.recv_batch(&mut rx) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("udp recv: {e}");
                    break;
                }
            };
            reads += n;
            let owner = self.udp[ui].owner;
            for (from, dgram) in rx.iter_mut() {
                match owner {
                    Some(si) => {
                        // Any source is accepted if it authenticates (multi-homed servers); we
                        // keep sending to the configured address, so a spoofed source redirects
                        // nothing.
                        if let Some(s) = self.sessions.get_mut(si) {
                            if s.tunnel.handle_datagram(self.now, dgram) == Input::Delivered {
                                answered = Some((s.tunnel.conv(), s.peer));
                            }
                        }
                    }
                    None => self.server_datagram(ui, from, dgram),
                }
            }
            if let Some(si) = owner {
                self.mark(si);
            }
            if reads >= UDP_BUDGET {
                self.still_ready.push(token(K_UDP, ui));
                break;
            }
        }
        self.rx = Some(rx);
        if let (
            Some((conv, peer)),
            Role::Client {
                unreachable: true, ..
            },
        ) = (answered, &self.role)
        {
            self.note_unreachable(false, conv, peer);
        }
    }

    // ---------------- server ----------------

    fn server_datagram(&mut self, ui: usize, from: SocketAddr, dgram: &mut [u8]) {
        let now = self.now;
        let existing = match &self.role {
            Role::Server { by_peer, .. } => by_peer.get(&(ui, from)).copied(),
            _ => return,
        };
        if let Some(si) = existing {
            let r = self.sessions[si].tunnel.handle_datagram(now, dgram);
            self.mark(si);
            let Input::ForeignConv(pk) = r else {
                return;
            };
            if !pk.starts_conversation {
                return;
            }
            // The peer started a new conversation from the same address (a restarted client).
            info!("peer {from} started a new conversation; replacing its old session");
            self.close_session(si, "replaced by a new conversation");
            self.new_server_session(ui, from, pk.conv, None);
            // The datagram was opened in place above; its KCP bytes are lost to the new
            // session, which gets them again by retransmission.
            return;
        }
        // Unknown peer: open the datagram in place to learn its conversation.
        let payload = {
            let Role::Server { peek, .. } = &mut self.role else {
                return;
            };
            match peek.open(dgram) {
                Ok(p) => p,
                Err(_) => {
                    self.counters.in_csum_errors += 1;
                    return;
                }
            }
        };
        let Some(pk) = crate::proto::demux::peek(payload) else {
            return; // parity or too short: nothing to start a session with
        };
        if !pk.starts_conversation {
            // Mid-conversation datagram for a session we do not have: we restarted (or the
            // client's address changed). Tell the client at once: a segment whose una is 0 makes
            // our client drop the dead session; Go clients ignore it.
            self.send_reset_hint(ui, from, pk.conv);
            return;
        }
        self.new_server_session(ui, from, pk.conv, Some(payload));
    }

    fn new_server_session(&mut self, ui: usize, from: SocketAddr, conv: u32, first: Option<&[u8]>) {
        let now = self.now;
        if self.sessions.len() >= MAX_SERVER_SESSIONS {
            self.warn_limit(
                Limit::Sessions,
                format_args!("session limit ({MAX_SERVER_SESSIONS}) reached; dropping new peers"),
            );
            return;
        }
        let mut tcfg = self.common.tunnel.clone();
        if let Role::Server { cfg, .. } = &self.role {
            tcfg.kcp = cfg.kcp.clone();
        }
        let tunnel = match Tunnel::new(&tcfg, conv, false, self.rng.fork(), now) {
            Ok(t) => t,
            Err(e) => {
                warn!("session: {e}");
                return;
            }
        };
        let si = self.sessions.insert(Sess {
            tunnel,
            sock: ui,
            peer: from,
            streams: HashMap::new(),
            created: now,
            retiring: false,
            armed: None,
            bucket: Bucket::new(now),
            rate_wait: None,
        });
        if let Role::Server { by_peer, .. } = &mut self.role {
            by_peer.insert((ui, from), si);
        }
        self.counters.passive_opens += 1;
        self.counters.max_conn = self.counters.max_conn.max(self.sessions.len() as u64);
        info!("smux session accepted: conv {conv:08x} from {from}");
        if let Some(p) = first {
            self.sessions[si].tunnel.handle_opened(now, p);
        }
        self.mark(si);
    }

    fn send_reset_hint(&mut self, ui: usize, to: SocketAddr, conv: u32) {
        let now = self.now;
        let Role::Server {
            hinted, hint_out, ..
        } = &mut self.role
        else {
            return;
        };
        if hinted
            .get(&to)
            .is_some_and(|t| now.duration_since(*t) < Duration::from_millis(500))
        {
            return;
        }
        if hinted.len() >= 4096 {
            hinted.retain(|_, t| now.duration_since(*t) < Duration::from_secs(1));
            if hinted.len() >= 4096 {
                return;
            }
        }
        hinted.insert(to, now);
        let sock = &mut self.udp[ui];
        let _ = sock.tx.push_with(to, |buf| {
            let h = hint_out.headroom();
            let k = crate::proto::demux::write_reset_hint(conv, &mut buf[h..]);
            hint_out.seal(now, buf, k)
        });
        if !self.dirty_socks.contains(&ui) {
            self.dirty_socks.push(ui);
        }
    }

    // ---------------- sessions ----------------

    /// Drains the session's datagrams into its socket's batch, flushing the batch when full.
    /// Stops (and waits for WRITABLE) when the kernel refuses more: KCP keeps the rest.
    fn session_send(&mut self, si: usize) {
        let now = self.now;
        let rate = self.common.ratelimit;
        let Some(sess) = self.sessions.get_mut(si) else {
            return;
        };
        let ui = sess.sock;
        sess.rate_wait = None;
        loop {
            if rate > 0 {
                if let Some(wait) = sess.bucket.wait(now, rate) {
                    sess.rate_wait = Some(now + wait);
                    break;
                }
            }
            let sock = &mut self.udp[ui];
            if sock.tx.is_full() {
                let _ = sock.sock.send_batch(&mut sock.tx);
                if sock.tx.is_full() {
                    if !sock.waiting.contains(&si) {
                        sock.waiting.push(si);
                    }
                    Self::want_write(&self.poll, ui, sock);
                    break;
                }
            }
            let peer = sess.peer;
            let tunnel = &mut sess.tunnel;
            match sock
                .tx
                .push_try_with(peer, |buf| tunnel.poll_transmit(now, buf))
            {
                Ok(Some(n)) => sess.bucket.tokens -= n as f64,
                Ok(None) => break,
                Err(_) => continue,
            }
        }
        if !self.udp[ui].tx.is_empty() && !self.dirty_socks.contains(&ui) {
            self.dirty_socks.push(ui);
        }
    }

    fn want_write(poll: &Poll, ui: usize, sock: &mut Sock) {
        if !sock.want_write {
            sock.want_write = true;
            let _ = poll.registry().reregister(
                sock.sock.socket_mut(),
                token(K_UDP, ui),
                Interest::READABLE | Interest::WRITABLE,
            );
        }
    }

    /// Sends what a socket's batch holds; on success wakes the sessions that waited for it.
    fn flush_sock(&mut self, ui: usize) {
        let Some(sock) = self.udp.get_mut(ui) else {
            return;
        };
        if !sock.tx.is_empty() {
            if let Err(e) = sock.sock.send_batch(&mut sock.tx) {
                warn!("udp send: {e}");
                sock.tx.clear();
            }
        }
        if sock.tx.is_empty() {
            if sock.want_write {
                sock.want_write = false;
                let _ = self.poll.registry().reregister(
                    sock.sock.socket_mut(),
                    token(K_UDP, ui),
                    Interest::READABLE,
                );
            }
            let waiting = std::mem::take(&mut sock.waiting);
            for si in waiting {
                self.mark(si);
            }
        } else {
            Self::want_write(&self.poll, ui, sock);
        }
    }

    fn flush_dirty(&mut self) {
        let mut guard = 0;
        while !self.dirty.is_empty() {
            guard += 1;
            if guard > 64 {
                break;
            }
            let dirty = std::mem::take(&mut self.dirty);
            for si in dirty {
                if !self.sessions.contains(si) {
                    continue;
                }
                self.session_events(si);
                self.session_send(si);
                self.session_events(si);
                self.arm_session(si);
                self.check_session(si);
            }
        }
        for ui in std::mem::take(&mut self.dirty_socks) {
            self.flush_sock(ui);
        }
    }

    fn arm_session(&mut self, si: usize) {
        // A client session also wakes up when autoexpire + scavengettl retire it for good.
        let scavenge = match &self.role {
            Role::Client { cfg, .. } => cfg.autoexpire.map(|a| a + cfg.scavenge_ttl),
            Role::Server { .. } => None,
        };
        let Some(s) = self.sessions.get_mut(si) else {
            return;
        };
        let mut at = s.tunnel.poll_timeout();
        for w in [s.rate_wait, scavenge.map(|d| s.created + d)]
            .into_iter()
            .flatten()
        {
            at = Some(at.map_or(w, |a| a.min(w)));
        }
        if at != s.armed {
            s.armed = at;
            match at {
                Some(t) => self.timers.set(TimerKey::Session(si), t),
                None => self.timers.cancel(TimerKey::Session(si)),
            }
        }
    }

    fn session_events(&mut self, si: usize) {
        let mut evs = std::mem::take(&mut self.events_scratch);
        if let Some(s) = self.sessions.get_mut(si) {
            while let Some(ev) = s.tunnel.poll_event() {
                evs.push(ev);
            }
        }
        for ev in evs.drain(..) {
            match ev {
                Event::Readable(id) | Event::Writable(id) | Event::Finished(id) => {
                    if let Some(&ci) = self.sessions.get(si).and_then(|s| s.streams.get(&id)) {
                        self.pump_conn(ci);
                    }
                }
                Event::Closed(id) => {
                    if let Some(ci) = self
                        .sessions
                        .get_mut(si)
                        .and_then(|s| s.streams.remove(&id))
                    {
                        self.drop_conn(ci, false);
                    }
                }
                _ => {}
            }
        }
        self.events_scratch = evs;
        // Server: streams the peer opened.
        if matches!(self.role, Role::Server { .. }) {
            while let Some(id) = self.sessions.get_mut(si).and_then(|s| s.tunnel.accept()) {
                self.server_stream(si, id);
            }
        }
    }

    fn server_stream(&mut self, si: usize, sid: StreamId) {
        let target = match &self.role {
            Role::Server { cfg, .. } => cfg.target.clone(),
            _ => return,
        };
        if self.conns.len() >= MAX_CONNS {
            self.warn_limit(
                Limit::Conns,
                format_args!("too many connections ({MAX_CONNS}); refusing new streams"),
            );
            self.sessions[si].tunnel.close(sid);
            return;
        }
        let local = match &target {
            LocalAddr::Tcp(a) => net::resolve(a)
                .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e.to_string()))
                .and_then(|addr| net::connect_tcp(addr).map(Local::Tcp)),
            LocalAddr::Unix(p) => net::connect_unix(p).map(Local::Unix),
        };
        match local {
            Ok(local) => {
                let ci = self.conns.insert(self.new_conn(local, si, sid, true));
                self.sessions[si].streams.insert(sid, ci);
                if !self.common.quiet {
                    info!(target: super::report::STREAM_TARGET, "stream opened in: {sid} out: {}", display_target(&target));
                }
                self.sync_conn(ci);
            }
            Err(e) => {
                warn!(
                    "connect to target {}: {e}; closing stream {sid}",
                    display_target(&target)
                );
                self.sessions[si].tunnel.close(sid);
            }
        }
    }

    fn fire(&mut self, key: TimerKey) {
        match key {
            TimerKey::Session(si) => {
                if let Some(s) = self.sessions.get_mut(si) {
                    s.armed = None;
                    s.tunnel.handle_timeout(self.now);
                    self.mark(si);
                }
            }
            TimerKey::Conn(ci) => self.check_conn_idle(ci),
            TimerKey::Accept => self.on_accept(),
            TimerKey::Tick => {
                self.tick();
                self.timers
                    .set(TimerKey::Tick, self.now + Duration::from_secs(1));
            }
        }
    }

    /// Once a second: the snmplog reporter (it sums the counters only when it writes a row).
    fn tick(&mut self) {
        if self.reporter.is_enabled() {
            let snap = self.snapshot();
            self.reporter.tick(&snap);
        }
    }

    /// Liveness and expiry of a session that had work in this turn (a session with nothing to
    /// do cannot change its liveness: silence only matters while data is outstanding, and then
    /// its retransmission timer keeps touching it).
    fn check_session(&mut self, si: usize) {
        let now = self.now;
        let is_client = matches!(self.role, Role::Client { .. });
        let scavenge = match &self.role {
            Role::Client { cfg, .. } => cfg.autoexpire.map(|a| a + cfg.scavenge_ttl),
            Role::Server { .. } => None,
        };
        let Some(s) = self.sessions.get_mut(si) else {
            return;
        };
        let why = match s.tunnel.liveness(now) {
            Liveness::Dead(r) => Some(r.to_string()),
            Liveness::Stale if is_client && !s.retiring => {
                s.retiring = true;
                let (conv, peer) = (s.tunnel.conv(), s.peer);
                // Streams that never got a byte back: reset them so their applications retry
                // at once (on a fresh session) instead of hanging until the keep-alive timeout.
                // Streams that did get answers keep their chance to resume.
                let unanswered: Vec<(StreamId, usize)> = s
                    .streams
                    .iter()
                    .filter(|(_, &ci)| self.conns.get(ci).is_some_and(|c| !c.answered))
                    .map(|(&sid, &ci)| (sid, ci))
                    .collect();
                for &(sid, _) in &unanswered {
                    s.tunnel.close(sid);
                    s.streams.remove(&sid);
                }
                for (_, ci) in unanswered {
                    self.drop_conn(ci, true);
                }
                self.note_unreachable(true, conv, peer);
                None
            }
            _ => None,
        };
        let why = why.or_else(|| {
            let s = &self.sessions[si];
            if scavenge.is_some_and(|limit| now.duration_since(s.created) >= limit) {
                Some("expired (autoexpire + scavengettl)".to_string())
            } else if is_client && s.retiring && s.streams.is_empty() {
                Some("retired".to_string())
            } else {
                None
            }
        });
        if let Some(why) = why {
            self.close_session(si, &why);
        }
    }

    /// Logs a change of the server's reachability once, not once per session or second.
    fn note_unreachable(&mut self, silent: bool, conv: u32, peer: SocketAddr) {
        let Role::Client { unreachable, .. } = &mut self.role else {
            return;
        };
        if silent && !*unreachable {
            warn!(
                "server {peer} is not answering (session {conv:08x} silent for {:?} with data outstanding); new connections use a new session",
                self.common.tunnel.stale_after
            );
        } else if !silent && *unreachable {
            info!("server {peer} is answering again");
        }
        *unreachable = silent;
    }

    fn close_session(&mut self, si: usize, why: &str) {
        let Some(mut s) = self.sessions.try_remove(si) else {
            return;
        };
        info!("session {:08x} closed: {why}", s.tunnel.conv());
        for (_, ci) in s.streams.drain() {
            self.drop_conn(ci, true);
        }
        let mut st = s.tunnel.stats();
        st.curr_estab = 0;
        self.retired.add(&st);
        self.timers.cancel(TimerKey::Session(si));
        match &mut self.role {
            Role::Client { .. } => {
                // The session owns its socket: send what is queued, then close it.
                self.flush_sock(s.sock);
                if let Some(mut sock) = self.udp.try_remove(s.sock) {
                    let _ = self.poll.registry().deregister(sock.sock.socket_mut());
                }
                self.dirty_socks.retain(|&u| u != s.sock);
            }
            Role::Server { by_peer, .. } => {
                if by_peer.get(&(s.sock, s.peer)) == Some(&si) {
                    by_peer.remove(&(s.sock, s.peer));
                }
            }
        }
        if let Role::Client { slots, .. } = &mut self.role {
            for slot in slots.iter_mut() {
                if *slot == Some(si) {
                    *slot = None;
                }
            }
        }
        self.dirty.retain(|&d| d != si);
    }

    // ---------------- connections ----------------

    fn new_conn(&self, local: Local, si: usize, sid: StreamId, connecting: bool) -> Conn {
        let mut c = Conn::new(local, si, sid, connecting, self.now);
        if let Some((_, seed)) = &self.common.qpp {
            c.qpp = Some((QppPrng::new(seed), QppPrng::new(seed)));
        }
        c
    }

    fn on_conn(&mut self, ci: usize) {
        if self.conns.contains(ci) {
            self.pump_conn(ci);
        }
    }

    /// Moves bytes both ways for one connection as far as both ends allow.
    fn pump_conn(&mut self, ci: usize) {
        let now = self.now;
        let Some(c) = self.conns.get_mut(ci) else {
            return;
        };
        let si = c.sess;
        let Some(sess) = self.sessions.get_mut(si) else {
            self.drop_conn(ci, true);
            return;
        };
        if c.connecting {
            match c.local.take_error() {
                Ok(None) if c.local.is_connected() => c.connecting = false,
                Ok(None) => {
                    self.sync_conn(ci);
                    return;
                }
                Ok(Some(e)) | Err(e) => {
                    warn!("connect to target failed: {e}; closing stream {}", c.sid);
                    sess.tunnel.close(c.sid);
                    sess.streams.remove(&c.sid);
                    self.drop_conn(ci, false);
                    self.mark(si);
                    return;
                }
            }
        }
        let mut failed = false;
        // Local → stream.
        loop {
            if c.up_pending() {
                match sess.tunnel.write(c.sid, &c.up[c.up_off..]) {
                    Ok(0) | Err(WriteError::Blocked) => break,
                    Ok(n) => {
                        c.up_off += n;
                        c.last_active = now;
                        continue;
                    }
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            c.up.clear();
            c.up_off = 0;
            if c.local_eof {
                break;
            }
            match c.local.read(&mut self.relay) {
                Ok(0) => {
                    c.local_eof = true;
                    sess.tunnel.shutdown_write(c.sid);
                    break;
                }
                Ok(n) => {
                    c.last_active = now;
                    if let (Some((qpp, _)), Some((enc, _))) = (&self.common.qpp, &mut c.qpp) {
                        qpp.encrypt(enc, &mut self.relay[..n]);
                    }
                    match sess.tunnel.write(c.sid, &self.relay[..n]) {
                        Ok(w) if w == n => {}
                        Ok(w) => c.up.extend_from_slice(&self.relay[w..n]),
                        Err(WriteError::Blocked) => c.up.extend_from_slice(&self.relay[..n]),
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        // Stream → local.
        if !failed {
            loop {
                if c.down_pending() {
                    if c.flush_down(now).is_err() {
                        failed = true;
                    }
                    if c.down_pending() || failed {
                        break;
                    }
                }
                if c.stream_eof {
                    if c.flush_down(now).is_err() {
                        failed = true;
                    }
                    break;
                }
                match sess.tunnel.read(now, c.sid, &mut self.relay) {
                    Ok(0) => {
                        c.stream_eof = true;
                    }
                    Ok(n) => {
                        if let (Some((qpp, _)), Some((_, dec))) = (&self.common.qpp, &mut c.qpp) {
                            qpp.decrypt(dec, &mut self.relay[..n]);
                        }
                        c.answered = true;
                        c.down.clear();
                        c.down_off = 0;
                        c.down.extend_from_slice(&self.relay[..n]);
                        c.last_active = now;
                    }
                    Err(ReadError::WouldBlock) => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
        }
        let (sid, done, half, last) = (c.sid, c.done(), c.half_closed(), c.last_active);
        self.mark(si);
        if failed || done {
            if let Some(s) = self.sessions.get_mut(si) {
                s.tunnel.close(sid);
                s.streams.remove(&sid);
            }
            self.drop_conn(ci, false);
            return;
        }
        if half {
            self.timers
                .set(TimerKey::Conn(ci), last + self.common.halfclose);
        }
        self.sync_conn(ci);
    }

    fn check_conn_idle(&mut self, ci: usize) {
        let Some(c) = self.conns.get(ci) else {
            return;
        };
        if !c.half_closed() {
            return;
        }
        let at = c.last_active + self.common.halfclose;
        if self.now >= at {
            let (si, sid) = (c.sess, c.sid);
            if let Some(s) = self.sessions.get_mut(si) {
                s.tunnel.close(sid);
                s.streams.remove(&sid);
                self.mark(si);
            }
            self.drop_conn(ci, false);
        } else {
            self.timers.set(TimerKey::Conn(ci), at);
        }
    }

    fn sync_conn(&mut self, ci: usize) {
        let Some(c) = self.conns.get_mut(ci) else {
            return;
        };
        if let Err(e) = c.sync_interest(self.poll.registry(), token(K_CONN, ci)) {
            warn!("register connection: {e}");
        }
    }

    fn drop_conn(&mut self, ci: usize, _session_gone: bool) {
        if let Some(mut c) = self.conns.try_remove(ci) {
            c.deregister(self.poll.registry());
            self.timers.cancel(TimerKey::Conn(ci));
            if !self.common.quiet {
                info!(target: super::report::STREAM_TARGET, "stream closed in: {}", c.sid);
            }
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
            self.session_send(si);
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
