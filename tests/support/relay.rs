//! The lossy UDP relay of the tunnel tests: per-client upstream sockets, loss, duplication,
//! hold-back reordering, a black-hole switch and a replay of each direction's first datagram.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::mix;
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
