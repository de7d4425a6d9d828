//! The relay threads: per direction a receiver that asks the [`Link`] and queues survivors in a
//! delivery-time heap, and a sender that sleeps until the earliest delivery time.
//!
//! Invariant: memory is bounded: with a rate the link's queue bounds what waits; without one, at
//! most [`MAX_IN_FLIGHT`] datagrams are in the delay line (more are dropped as queue drops).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{Link, LinkStats, PathSpec, Verdict};
use crate::cmd::bench::err;
use crate::cmd::RunError;
use crate::proto::rng::Rng;

/// Datagrams the delay line may hold when no rate (and so no queue) bounds it.
pub(super) const MAX_IN_FLIGHT: usize = 1 << 16;
/// Largest datagram relayed (UDP's maximum payload).
const MAX_DGRAM: usize = 65_535;
/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

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
        // The sender counts a datagram just after sending it.
        let t0 = Instant::now();
        while relay.down.snapshot()[1] == 0 && t0.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(relay.up.snapshot()[..2], [1, 1]);
        assert_eq!(relay.down.snapshot()[..2], [1, 1]);
    }
}
