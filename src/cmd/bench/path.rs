//! A network path emulated in userspace: a UDP relay between a kcptun client and server that
//! delays, jitters, loses, rate-limits (with a drop-tail queue) and reorders datagrams, each
//! direction on its own terms. `kcptun bench tunnel --path …` and `kcptun bench soak` put it
//! between the two children so a user can see what to expect on a path like their own.
//!
//! Two parts:
//! * [`Link`]: one direction's decisions, deterministic: [`Link::offer`] takes the arrival time,
//!   the datagram size and a seeded [`Rng`] and answers "drop (lost / queue full)" or "deliver
//!   at this instant". No clock, no sockets, so the unit tests check it exactly.
//! * [`Relay`]: two UDP sockets on 127.0.0.1 (one faces the client, one the server) and, per
//!   direction, a receiving thread that asks the [`Link`] and a sending thread that releases
//!   datagrams from a delivery-time heap. The sender sleeps on a condition variable until the
//!   earliest delivery time (woken early only when a datagram becomes the new earliest), so an
//!   idle or slow path costs no CPU and a 100 Mbit/s one a few percent of a core.
//!
//! The model, per direction: a datagram is first lost with probability `loss` (independently, or
//! in bursts of mean length `burst`); a survivor enters the rate limiter, a FIFO serializer at
//! `rate` bit/s whose backlog may hold at most `queue` bytes (drop-tail beyond); once serialized
//! it travels `delay` plus a uniform `0..=jitter`, never overtaking an earlier datagram; with
//! probability `reorder` it is instead held back an extra 1–10 ms and overtaken by those behind.
//!
//! Invariant: memory is bounded. With a rate the queue bounds what waits; without one, at most
//! [`MAX_IN_FLIGHT`] datagrams are in the delay line (more are dropped and counted as queue drops).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::err;
use crate::cmd::RunError;
use crate::proto::rng::Rng;

/// Datagrams the delay line may hold when no rate (and so no queue) bounds it.
pub(super) const MAX_IN_FLIGHT: usize = 1 << 16;
/// Largest datagram relayed (UDP's maximum payload).
const MAX_DGRAM: usize = 65_535;
/// Extra hold of a reordered datagram: uniform in this range.
const REORDER_HOLD_US: (u64, u64) = (1_000, 10_000);
/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

const KEYS: &str = "delay, jitter, loss, burst, rate, queue, reorder";
const EXAMPLE: &str = "e.g. delay=20ms,jitter=2ms,loss=1%,rate=100mbit,queue=1mb,reorder=1%";

/// One direction of a path. `Default` is a clean path (no delay, loss, limit or reordering).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathSpec {
    /// One-way delay every datagram gets (the minimum).
    pub delay: Duration,
    /// Extra delay, uniform in `0..=jitter`.
    pub jitter: Duration,
    /// Loss probability in parts per million.
    pub loss_ppm: u32,
    /// Mean length of a loss burst in datagrams (1: independent losses).
    pub burst: u32,
    /// Bottleneck rate in bit/s; `None`: unlimited.
    pub rate_bps: Option<u64>,
    /// Drop-tail queue ahead of the bottleneck, bytes (only with a rate).
    pub queue_bytes: u64,
    /// Reordering probability in parts per million.
    pub reorder_ppm: u32,
}

impl PathSpec {
    /// Whether the path changes nothing.
    pub fn is_clean(&self) -> bool {
        self.delay.is_zero()
            && self.jitter.is_zero()
            && self.loss_ppm == 0
            && self.rate_bps.is_none()
            && self.reorder_ppm == 0
    }

    /// Parses `key=value,…` (`none` or an empty string: a clean path). Errors are one line
    /// naming the part at fault and the accepted form.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut p = PathSpec {
            burst: 1,
            ..PathSpec::default()
        };
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("none") {
            return Ok(p);
        }
        let mut queue = None;
        for part in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!(
                    "{part:?} is not key=value; keys are {KEYS} ({EXAMPLE})"
                ));
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            let bad = |what: &str| format!("{k}={v}: {what} ({EXAMPLE})");
            match k.as_str() {
                "delay" => {
                    p.delay =
                        duration(v).ok_or_else(|| bad("not a duration like 20ms, 1.5s or 500us"))?
                }
                "jitter" => p.jitter = duration(v).ok_or_else(|| bad("not a duration like 2ms"))?,
                "loss" => {
                    p.loss_ppm = fraction_ppm(v)
                        .ok_or_else(|| bad("not a probability like 2% or 0.02 (at most 100%)"))?
                }
                "reorder" => {
                    p.reorder_ppm = fraction_ppm(v)
                        .ok_or_else(|| bad("not a probability like 1% or 0.01 (at most 100%)"))?
                }
                "burst" => {
                    p.burst = v
                        .parse::<u32>()
                        .ok()
                        .filter(|b| (1..=1000).contains(b))
                        .ok_or_else(|| bad("not a mean burst length in datagrams, 1 to 1000"))?
                }
                "rate" => {
                    p.rate_bps = Some(rate(v).ok_or_else(|| {
                        bad("not a rate like 100mbit, 512kbit or 1gbit (bits per second, above 0)")
                    })?)
                }
                "queue" => {
                    queue = Some(bytes(v).ok_or_else(|| {
                        bad("not a size like 1mb, 256kb or 64kib (at least 1500 bytes)")
                    })?)
                }
                _ => return Err(format!("unknown key {k:?}; keys are {KEYS} ({EXAMPLE})")),
            }
        }
        match (p.rate_bps, queue) {
            (None, Some(_)) => {
                return Err(format!(
                    "queue= needs a rate= (the queue sits ahead of the bottleneck; {EXAMPLE})"
                ))
            }
            // Default queue: 50 ms at the rate, at least 64 KiB.
            (Some(r), None) => p.queue_bytes = (r / 8 / 20).max(64 * 1024),
            (_, Some(q)) => p.queue_bytes = q,
            (None, None) => {}
        }
        Ok(p)
    }
}

impl fmt::Display for PathSpec {
    /// The compact form [`PathSpec::parse`] reads back (`none` for a clean path).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let ms = |d: Duration| {
            let us = d.as_micros();
            if us % 1000 == 0 {
                format!("{}ms", us / 1000)
            } else {
                format!("{us}us")
            }
        };
        let pct = |ppm: u32| {
            let s = format!("{:.4}", f64::from(ppm) / 1e4);
            let s = s.trim_end_matches('0').trim_end_matches('.');
            format!("{s}%")
        };
        if !self.delay.is_zero() {
            parts.push(format!("delay={}", ms(self.delay)));
        }
        if !self.jitter.is_zero() {
            parts.push(format!("jitter={}", ms(self.jitter)));
        }
        if self.loss_ppm > 0 {
            parts.push(format!("loss={}", pct(self.loss_ppm)));
            if self.burst > 1 {
                parts.push(format!("burst={}", self.burst));
            }
        }
        if let Some(r) = self.rate_bps {
            parts.push(if r % 1_000_000 == 0 {
                format!("rate={}mbit", r / 1_000_000)
            } else if r % 1000 == 0 {
                format!("rate={}kbit", r / 1000)
            } else {
                format!("rate={r}bit")
            });
            parts.push(if self.queue_bytes % 1024 == 0 {
                format!("queue={}kib", self.queue_bytes / 1024)
            } else {
                format!("queue={}b", self.queue_bytes)
            });
        }
        if self.reorder_ppm > 0 {
            parts.push(format!("reorder={}", pct(self.reorder_ppm)));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

/// Splits `"20ms"` into (20.0, "ms").
fn number_unit(v: &str) -> Option<(f64, String)> {
    let at = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let n: f64 = v[..at].parse().ok()?;
    (n.is_finite() && n >= 0.0).then(|| (n, v[at..].trim().to_ascii_lowercase()))
}

fn duration(v: &str) -> Option<Duration> {
    let (n, u) = number_unit(v)?;
    let us = match u.as_str() {
        "us" | "µs" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => return None,
    };
    // At most an hour: anything longer is a typo, and it keeps the arithmetic far from overflow.
    (us <= 3.6e9).then(|| Duration::from_micros(us.round() as u64))
}

fn fraction_ppm(v: &str) -> Option<u32> {
    let f = match v.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => v.parse::<f64>().ok()?,
    };
    (0.0..=1.0).contains(&f).then(|| (f * 1e6).round() as u32)
}

fn rate(v: &str) -> Option<u64> {
    let (n, u) = number_unit(v)?;
    let mult = match u.as_str() {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => return None,
    };
    let r = n * mult;
    (r >= 1.0 && r <= 1e12).then(|| r.round() as u64)
}

fn bytes(v: &str) -> Option<u64> {
    let (n, u) = number_unit(v)?;
    let mult = match u.as_str() {
        "b" | "" => 1.0,
        "kb" => 1e3,
        "kib" => 1024.0,
        "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "gb" => 1e9,
        _ => return None,
    };
    let b = n * mult;
    (b >= 1500.0 && b <= 1e11).then(|| b.round() as u64)
}

/// What [`Link::offer`] decided for one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Lost on the way (the `loss` model).
    Lost,
    /// Dropped at the tail of a full queue.
    QueueFull,
    /// To be delivered at `at`; `held`: held back so that later datagrams overtake it.
    Deliver { at: Instant, held: bool },
}

/// Counters of one direction.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub offered: AtomicU64,
    pub delivered: AtomicU64,
    pub lost: AtomicU64,
    pub queue_drops: AtomicU64,
    pub reordered: AtomicU64,
}

impl LinkStats {
    /// `(offered, delivered, lost, queue drops, reordered)`.
    pub fn snapshot(&self) -> [u64; 5] {
        [
            &self.offered,
            &self.delivered,
            &self.lost,
            &self.queue_drops,
            &self.reordered,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

/// One direction's decisions; see the module doc for the model. Call [`Link::offer`] once per
/// arriving datagram with non-decreasing `now`.
#[derive(Debug)]
pub struct Link {
    spec: PathSpec,
    /// When the serializer has sent everything accepted so far (`None`: idle since start).
    busy_until: Option<Instant>,
    /// Delivery time of the last in-order datagram (later ones never overtake it).
    last_delivery: Option<Instant>,
    /// In a loss burst (burst > 1 only).
    in_burst: bool,
}

impl Link {
    pub fn new(spec: PathSpec) -> Self {
        Link {
            spec,
            busy_until: None,
            last_delivery: None,
            in_burst: false,
        }
    }

    fn chance(rng: &mut Rng, ppm: u32) -> bool {
        ppm > 0 && rng.below(1_000_000) < u64::from(ppm)
    }

    fn lose(&mut self, rng: &mut Rng) -> bool {
        let s = &self.spec;
        if s.loss_ppm == 0 {
            return false;
        }
        if s.burst <= 1 {
            return Self::chance(rng, s.loss_ppm);
        }
        // Two states: a burst ends after each loss with probability 1/burst (mean length
        // `burst`); one starts with the probability that makes the long-run loss `loss`:
        // p = loss / (burst · (1 − loss)).
        if self.in_burst {
            self.in_burst = rng.below(u64::from(s.burst)) != 0;
            return true;
        }
        let loss = f64::from(s.loss_ppm) / 1e6;
        let start = if loss >= 1.0 {
            1.0
        } else {
            loss / (f64::from(s.burst) * (1.0 - loss))
        };
        if Self::chance(rng, (start.min(1.0) * 1e6).round() as u32) {
            self.in_burst = rng.below(u64::from(s.burst)) != 0;
            return true;
        }
        false
    }

    /// Decides the fate of a datagram of `len` bytes arriving at `now`.
    pub fn offer(&mut self, now: Instant, len: usize, rng: &mut Rng) -> Verdict {
        if self.lose(rng) {
            return Verdict::Lost;
        }
        let sent = match self.spec.rate_bps {
            None => now,
            Some(rate) => {
                let start = self.busy_until.filter(|&b| b > now).unwrap_or(now);
                let backlog_ns = start.duration_since(now).as_nanos();
                let backlog_bytes = backlog_ns * u128::from(rate) / 8 / 1_000_000_000;
                if backlog_bytes + len as u128 > u128::from(self.spec.queue_bytes) {
                    return Verdict::QueueFull;
                }
                let tx_ns = (len as u128 * 8 * 1_000_000_000).div_ceil(u128::from(rate));
                let done = start + Duration::from_nanos(tx_ns.min(u128::from(u64::MAX)) as u64);
                self.busy_until = Some(done);
                done
            }
        };
        let jitter_us = self.spec.jitter.as_micros() as u64;
        let extra = if jitter_us > 0 {
            Duration::from_micros(rng.below(jitter_us + 1))
        } else {
            Duration::ZERO
        };
        let at = sent + self.spec.delay + extra;
        if Self::chance(rng, self.spec.reorder_ppm) {
            let (lo, hi) = REORDER_HOLD_US;
            let hold = lo + rng.below(hi - lo + 1);
            let base = self.last_delivery.map_or(at, |l| l.max(at));
            return Verdict::Deliver {
                at: base + Duration::from_micros(hold),
                held: true,
            };
        }
        let at = self.last_delivery.map_or(at, |l| l.max(at));
        self.last_delivery = Some(at);
        Verdict::Deliver { at, held: false }
    }
}

/// Datagrams waiting for their delivery time, earliest first (ties in arrival order).
#[derive(Default)]
struct Pending {
    heap: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    seq: u64,
}

/// The delay line of one direction between its receiving and its sending thread.
struct Line {
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// Where the down direction sends: the client's address, learnt from its datagrams.
type ClientAddr = Arc<Mutex<Option<SocketAddr>>>;

/// A running path: client → [`Relay::addr`] → (up link) → server, and back through the down
/// link to wherever the client last sent from. Stopped and joined on drop.
pub struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    lines: [Arc<Line>; 2],
    threads: Vec<JoinHandle<()>>,
    /// Counters of the up (client → server) and down direction.
    pub up: Arc<LinkStats>,
    pub down: Arc<LinkStats>,
}

impl Relay {
    /// Starts relaying between a new 127.0.0.1 socket (the address the client should dial,
    /// [`Relay::addr`]) and `server`. `seed` makes the losses and delays repeatable.
    pub fn start(
        server: SocketAddr,
        up: PathSpec,
        down: PathSpec,
        seed: u64,
    ) -> Result<Self, RunError> {
        let bind = |what: &str| {
            let s = UdpSocket::bind("127.0.0.1:0")
                .map_err(|e| err(format!("bench path: cannot bind the {what} socket: {e}")))?;
            s.set_read_timeout(Some(POLL))
                .map_err(|e| err(format!("bench path: socket timeout: {e}")))?;
            Ok::<_, RunError>(s)
        };
        let front = Arc::new(bind("client-facing")?);
        let back = Arc::new(bind("server-facing")?);
        back.connect(server)
            .map_err(|e| err(format!("bench path: cannot connect to {server}: {e}")))?;
        for s in [&front, &back] {
            // Big socket buffers: the relay, not the kernel, should decide what is dropped.
            let s2 = socket2::SockRef::from(&**s);
            let _ = s2.set_recv_buffer_size(4 << 20);
            let _ = s2.set_send_buffer_size(4 << 20);
        }
        let addr = front
            .local_addr()
            .map_err(|e| err(format!("bench path: local address: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let client: ClientAddr = Arc::new(Mutex::new(None));
        let new_line = || {
            Arc::new(Line {
                pending: Mutex::new(Pending::default()),
                wake: Condvar::new(),
            })
        };
        let lines = [new_line(), new_line()];
        let (up_stats, down_stats) = (
            Arc::new(LinkStats::default()),
            Arc::new(LinkStats::default()),
        );
        let mut rng = Rng::from_seed({
            let mut s = [0u8; 32];
            s[..8].copy_from_slice(&seed.to_le_bytes());
            s[8..16].copy_from_slice(b"kcptunpa");
            s
        });
        let mut threads = Vec::new();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| err(format!("bench path: cannot start a thread: {e}")))
        };
        // Up: front → link → back.
        {
            let (rx, line, st, stats, cl) = (
                front.clone(),
                lines[0].clone(),
                stop.clone(),
                up_stats.clone(),
                client.clone(),
            );
            let (mut link, mut r) = (Link::new(up), rng.fork());
            threads.push(spawn(
                "path-up-rx",
                Box::new(move || receive(&rx, &line, &st, &stats, &mut link, &mut r, Some(&cl))),
            )?);
            let (tx, line, st, stats) = (
                back.clone(),
                lines[0].clone(),
                stop.clone(),
                up_stats.clone(),
            );
            threads.push(spawn(
                "path-up-tx",
                Box::new(move || release(&line, &st, &stats, |d| tx.send(d).map(|_| ()))),
            )?);
        }
        // Down: back → link → front (to the client's last address).
        {
            let (rx, line, st, stats) = (
                back.clone(),
                lines[1].clone(),
                stop.clone(),
                down_stats.clone(),
            );
            let (mut link, mut r) = (Link::new(down), rng.fork());
            threads.push(spawn(
                "path-down-rx",
                Box::new(move || receive(&rx, &line, &st, &stats, &mut link, &mut r, None)),
            )?);
            let (tx, line, st, stats) = (
                front.clone(),
                lines[1].clone(),
                stop.clone(),
                down_stats.clone(),
            );
            threads.push(spawn(
                "path-down-tx",
                Box::new(move || {
                    release(&line, &st, &stats, |d| {
                        let to = *client.lock().unwrap_or_else(|p| p.into_inner());
                        match to {
                            Some(a) => tx.send_to(d, a).map(|_| ()),
                            None => Ok(()),
                        }
                    })
                }),
            )?);
        }
        Ok(Relay {
            addr,
            stop,
            lines,
            threads,
            up: up_stats,
            down: down_stats,
        })
    }

    /// The address the client sends to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for l in &self.lines {
            l.wake.notify_all();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The receiving thread of one direction: reads datagrams, asks the link, queues survivors.
fn receive(
    sock: &UdpSocket,
    line: &Line,
    stop: &AtomicBool,
    stats: &LinkStats,
    link: &mut Link,
    rng: &mut Rng,
    learn: Option<&ClientAddr>,
) {
    let mut buf = vec![0u8; MAX_DGRAM];
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            // ICMP errors (a peer not yet listening) surface here; they are not fatal.
            Err(_) => continue,
        };
        if let Some(c) = learn {
            let mut g = c.lock().unwrap_or_else(|p| p.into_inner());
            if *g != Some(from) {
                *g = Some(from);
            }
        }
        stats.offered.fetch_add(1, Ordering::Relaxed);
        match link.offer(Instant::now(), n, rng) {
            Verdict::Lost => {
                stats.lost.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::QueueFull => {
                stats.queue_drops.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Deliver { at, held } => {
                if held {
                    stats.reordered.fetch_add(1, Ordering::Relaxed);
                }
                let mut p = line.pending.lock().unwrap_or_else(|p| p.into_inner());
                if p.heap.len() >= MAX_IN_FLIGHT {
                    stats.queue_drops.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let earliest = p.heap.peek().map_or(true, |Reverse((t, _, _))| at < *t);
                p.seq += 1;
                let seq = p.seq;
                p.heap.push(Reverse((at, seq, buf[..n].to_vec())));
                drop(p);
                if earliest {
                    line.wake.notify_one();
                }
            }
        }
    }
}

/// The sending thread of one direction: sleeps until the earliest delivery time, sends.
fn release(
    line: &Line,
    stop: &AtomicBool,
    stats: &LinkStats,
    mut send: impl FnMut(&[u8]) -> std::io::Result<()>,
) {
    let mut due = Vec::new();
    let mut p = line.pending.lock().unwrap_or_else(|p| p.into_inner());
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while let Some(Reverse((t, _, _))) = p.heap.peek() {
            if *t > now {
                break;
            }
            if let Some(Reverse((_, _, d))) = p.heap.pop() {
                due.push(d);
            }
        }
        if !due.is_empty() {
            drop(p);
            for d in due.drain(..) {
                // A full socket buffer or an ICMP error loses the datagram, as a real path might.
                if send(&d).is_ok() {
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            p = line.pending.lock().unwrap_or_else(|p| p.into_inner());
            continue;
        }
        let wait = p.heap.peek().map_or(POLL, |Reverse((t, _, _))| {
            t.saturating_duration_since(now).min(POLL)
        });
        p = line
            .wake
            .wait_timeout(p, wait)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> Rng {
        Rng::from_seed([42; 32])
    }

    #[test]
    fn parses_the_compact_form() {
        let p = PathSpec::parse("delay=20ms,jitter=2ms,loss=2%,rate=100mbit,queue=1mb,reorder=1%")
            .unwrap();
        assert_eq!(p.delay, Duration::from_millis(20));
        assert_eq!(p.jitter, Duration::from_millis(2));
        assert_eq!(p.loss_ppm, 20_000);
        assert_eq!(p.burst, 1);
        assert_eq!(p.rate_bps, Some(100_000_000));
        assert_eq!(p.queue_bytes, 1_000_000);
        assert_eq!(p.reorder_ppm, 10_000);
        let q = PathSpec::parse(" Delay=1.5s , loss=0.001, burst=4, rate=512kbit ").unwrap();
        assert_eq!(q.delay, Duration::from_millis(1500));
        assert_eq!(q.loss_ppm, 1000);
        assert_eq!(q.burst, 4);
        // Default queue: 50 ms at the rate, at least 64 KiB.
        assert_eq!(q.queue_bytes, 64 * 1024);
        assert_eq!(
            PathSpec::parse("rate=1gbit").unwrap().queue_bytes,
            6_250_000
        );
        assert_eq!(
            PathSpec::parse("delay=500us").unwrap().delay,
            Duration::from_micros(500)
        );
        assert_eq!(
            PathSpec::parse("queue=64kib,rate=1mbit")
                .unwrap()
                .queue_bytes,
            65536
        );
        assert!(PathSpec::parse("none").unwrap().is_clean());
        assert!(PathSpec::parse("").unwrap().is_clean());
        assert!(!p.is_clean());
    }

    #[test]
    fn display_reads_back() {
        for s in [
            "delay=20ms,jitter=2ms,loss=2%,rate=100mbit,queue=1mb,reorder=1%",
            "delay=50ms,loss=10%,burst=3",
            "delay=250us,loss=0.05%,rate=1500kbit,queue=3000b",
            "none",
        ] {
            let p = PathSpec::parse(s).unwrap();
            let shown = p.to_string();
            assert_eq!(PathSpec::parse(&shown).unwrap(), p, "{s} → {shown}");
        }
        assert_eq!(
            PathSpec::parse("delay=20ms,loss=1%,reorder=0.5%")
                .unwrap()
                .to_string(),
            "delay=20ms,loss=1%,reorder=0.5%"
        );
    }

    #[test]
    fn parse_errors_are_one_line_and_name_the_part() {
        for (s, needle) in [
            ("dely=20ms", "unknown key \"dely\""),
            ("delay=20", "delay=20: not a duration"),
            ("delay=2h", "delay=2h: not a duration"),
            ("loss=120%", "loss=120%: not a probability"),
            ("loss=-1%", "loss=-1%: not a probability"),
            ("reorder=x", "reorder=x: not a probability"),
            ("rate=100mbps", "rate=100mbps: not a rate"),
            ("rate=0mbit", "rate=0mbit: not a rate"),
            ("rate=1mbit,queue=100b", "queue=100b: not a size"),
            ("queue=1mb", "queue= needs a rate="),
            ("burst=0", "burst=0: not a mean burst length"),
            ("delay", "\"delay\" is not key=value"),
        ] {
            let e = PathSpec::parse(s).unwrap_err();
            assert!(e.contains(needle), "{s}: {e}");
            assert!(!e.contains('\n'), "{s}: {e}");
            assert!(e.contains("e.g. delay=20ms"), "{s}: {e}");
        }
    }

    #[test]
    fn loss_fraction_matches_over_many_datagrams() {
        let t0 = Instant::now();
        for (spec, lo, hi) in [
            ("loss=2%", 0.018, 0.022),
            ("loss=10%", 0.095, 0.105),
            ("loss=10%,burst=5", 0.09, 0.11),
            ("none", 0.0, 0.0),
        ] {
            let mut l = Link::new(PathSpec::parse(spec).unwrap());
            let mut r = rng();
            let n = 100_000;
            let mut lost = 0;
            let mut runs = 0;
            let mut prev_lost = false;
            for i in 0..n {
                let v = l.offer(t0 + Duration::from_micros(i), 1000, &mut r);
                let is_lost = v == Verdict::Lost;
                lost += usize::from(is_lost);
                runs += usize::from(is_lost && !prev_lost);
                prev_lost = is_lost;
            }
            let f = lost as f64 / n as f64;
            assert!((lo..=hi).contains(&f), "{spec}: lost fraction {f}");
            if spec.contains("burst=5") {
                let mean = lost as f64 / runs as f64;
                assert!((4.0..6.0).contains(&mean), "mean burst {mean}");
            } else if lost > 0 {
                // Independent losses: runs are mostly single datagrams.
                assert!((lost as f64 / runs as f64) < 1.2);
            }
        }
    }

    #[test]
    fn delay_is_at_least_configured_and_order_is_kept() {
        let mut l = Link::new(PathSpec::parse("delay=20ms,jitter=5ms").unwrap());
        let mut r = rng();
        let t0 = Instant::now();
        let mut last = t0;
        let mut max_extra = Duration::ZERO;
        for i in 0..10_000u64 {
            let now = t0 + Duration::from_micros(i * 100);
            let Verdict::Deliver { at, held } = l.offer(now, 1200, &mut r) else {
                panic!("a clean-loss path dropped a datagram");
            };
            assert!(!held);
            assert!(at >= now + Duration::from_millis(20));
            assert!(at >= last, "jitter reordered datagram {i}");
            max_extra = max_extra.max(at - now - Duration::from_millis(20));
            last = at;
        }
        // Jitter is used (and bounded by FIFO order plus 5 ms spread).
        assert!(max_extra > Duration::from_millis(3), "{max_extra:?}");
        assert!(max_extra <= Duration::from_millis(6), "{max_extra:?}");
    }

    #[test]
    fn rate_limits_and_queue_drops_the_tail() {
        // 8 Mbit/s = 1 byte/µs; queue 10 000 bytes; datagrams of 1000 bytes every 500 µs
        // (twice the rate): the queue fills, then about half are dropped.
        let mut l = Link::new(PathSpec::parse("rate=8mbit,queue=10000b").unwrap());
        let mut r = rng();
        let t0 = Instant::now();
        let (mut ok, mut full) = (0u64, 0u64);
        let mut last = t0;
        for i in 0..4000u64 {
            let now = t0 + Duration::from_micros(i * 500);
            match l.offer(now, 1000, &mut r) {
                Verdict::Deliver { at, .. } => {
                    ok += 1;
                    // Serialization: at least 1000 µs after the previous delivery.
                    if ok > 1 {
                        assert!(at - last >= Duration::from_micros(1000));
                    }
                    // Never more than a full queue plus one datagram behind.
                    assert!(at - now <= Duration::from_micros(11_000));
                    last = at;
                }
                Verdict::QueueFull => full += 1,
                Verdict::Lost => panic!("no loss configured"),
            }
        }
        // 2 s at 1 byte/µs = 2000 datagrams (+ the queue's 10).
        assert!((1990..=2015).contains(&ok), "delivered {ok}");
        assert_eq!(ok + full, 4000);
        // Below the rate nothing is dropped and nothing waits.
        let mut l = Link::new(PathSpec::parse("rate=8mbit,queue=10000b").unwrap());
        for i in 0..1000u64 {
            let now = t0 + Duration::from_micros(i * 2000);
            assert_eq!(
                l.offer(now, 1000, &mut r),
                Verdict::Deliver {
                    at: now + Duration::from_micros(1000),
                    held: false
                }
            );
        }
    }

    #[test]
    fn reordering_holds_some_back_to_be_overtaken() {
        let mut l = Link::new(PathSpec::parse("delay=10ms,reorder=5%").unwrap());
        let mut r = rng();
        let t0 = Instant::now();
        let mut held = Vec::new();
        let mut order = Vec::new();
        for i in 0..20_000u64 {
            let now = t0 + Duration::from_micros(i * 200);
            let Verdict::Deliver { at, held: h } = l.offer(now, 100, &mut r) else {
                panic!("dropped");
            };
            if h {
                held.push(i);
                // Held 1–10 ms beyond its in-order time.
                let extra = at - (now + Duration::from_millis(10));
                assert!(extra >= Duration::from_millis(1) && extra <= Duration::from_millis(10));
            }
            order.push((at, i));
        }
        let f = held.len() as f64 / 20_000.0;
        assert!((0.045..=0.055).contains(&f), "reordered fraction {f}");
        // Delivered in time order, the held datagrams arrive after later ones.
        order.sort();
        let overtaken = order.windows(2).filter(|w| w[0].1 > w[1].1).count();
        assert!(
            overtaken >= held.len() * 9 / 10,
            "{overtaken} of {}",
            held.len()
        );
    }

    #[test]
    fn relay_carries_both_ways_with_the_configured_delay() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let delay = PathSpec::parse("delay=30ms").unwrap();
        let relay = Relay::start(server.local_addr().unwrap(), delay.clone(), delay, 1).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let t = Instant::now();
        client.send_to(b"ping", relay.addr()).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert!(t.elapsed() >= Duration::from_millis(30));
        server.send_to(b"pong", from).unwrap();
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
        assert_eq!(from, relay.addr());
        assert!(t.elapsed() >= Duration::from_millis(60));
        assert_eq!(relay.up.snapshot()[..2], [1, 1]);
        assert_eq!(relay.down.snapshot()[..2], [1, 1]);
    }
}
