//! Interactive latency on a simulated path: a 64-byte request, a 64-byte answer, one at a time,
//! while the tunnel is otherwise idle or while a bulk transfer shares it — the "ping through the
//! tunnel" a user feels in an SSH session or a game. Every request is answered by the server side
//! of the tunnel itself (an echo), so the figure is the tunnel's own round trip in virtual time:
//! two link delays plus whatever loss recovery and queueing add.

use std::time::{Duration, Instant};

use super::{Link, LinkConfig, SimError};
use crate::proto::codec::MTU_LIMIT;
use crate::proto::rng::Rng;
use crate::proto::smux::{ReadError, StreamId, WriteError};
use crate::proto::tunnel::{Liveness, Tunnel, TunnelConfig};

/// One probe run.
#[derive(Clone, Debug)]
pub struct ProbeScenario {
    pub name: String,
    pub client: TunnelConfig,
    pub server: TunnelConfig,
    pub up: LinkConfig,
    pub down: LinkConfig,
    /// Requests sent (one at a time).
    pub probes: usize,
    /// Pause between an answer and the next request.
    pub gap: Duration,
    /// A bulk download (server → client) runs on another stream of the same session meanwhile.
    pub bulk_down: bool,
    /// A bulk upload (client → server) runs on that stream instead. With both, the download
    /// starts after half of the probes and the upload stops [`UPLOAD_TAIL`] probes later, as
    /// `kcptun bench tunnel` measures one direction after the other.
    pub bulk_up: bool,
    pub seed: u64,
}

/// Round-trip times of the probes (virtual time).
#[derive(Clone, Debug)]
pub struct ProbeReport {
    pub name: String,
    /// Sorted ascending.
    pub rtts: Vec<Duration>,
    /// Path round trip without loss or queueing: up delay + down delay.
    pub path_rtt: Duration,
}

impl ProbeReport {
    /// The `p`-th percentile (0..=100), nearest rank.
    pub fn percentile(&self, p: usize) -> Duration {
        if self.rtts.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p * self.rtts.len())
            .div_ceil(100)
            .clamp(1, self.rtts.len());
        self.rtts[rank - 1]
    }

    /// How many probes took longer than `times` × the path's round trip.
    pub fn over(&self, times: f64) -> usize {
        let limit = self.path_rtt.mul_f64(times);
        self.rtts.len() - self.rtts.partition_point(|&d| d <= limit)
    }

    /// One aligned row: p50, p90, p99 and max in ms, and p99 as a multiple of the path's RTT.
    pub fn row(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "{:<40} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>6.2}x",
            self.name,
            ms(self.percentile(50)),
            ms(self.percentile(90)),
            ms(self.percentile(99)),
            ms(self.percentile(100)),
            ms(self.percentile(99)) / ms(self.path_rtt).max(1e-9)
        )
    }

    /// Header of [`ProbeReport::row`].
    pub fn header() -> String {
        format!(
            "{:<40} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "probe (64 B request/answer)", "p50 ms", "p90 ms", "p99 ms", "max ms", "p99/rtt"
        )
    }
}

const PROBE_LEN: usize = 64;

/// Probes the upload goes on for after the download starts (both set): when the bench stops
/// writing, the client still has the kernel's socket buffer to send, about half a second at
/// 9 MB/s, which queues on the way back of the download's first round trips.
pub const UPLOAD_TAIL: usize = 6;

/// Runs the probes; fails if a session dies, an answer is wrong, or a probe takes over 60 s.
pub fn run_probe(s: &ProbeScenario, t0: Instant) -> Result<ProbeReport, SimError> {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&s.seed.to_le_bytes());
    let mut rng = Rng::from_seed(seed_bytes);
    let conv = rng.next_u32();
    let setup = |e: crate::proto::fec::FecConfigError| SimError::Setup(e.to_string());
    let mut client = Tunnel::new(&s.client, conv, true, rng.fork(), t0).map_err(setup)?;
    let mut server = Tunnel::new(&s.server, conv, false, rng.fork(), t0).map_err(setup)?;
    let mut up = Link::new(s.up.clone(), rng.fork());
    let mut down = Link::new(s.down.clone(), rng.fork());
    let open = |t: &mut Tunnel| t.open().map_err(|e| SimError::Setup(format!("open: {e}")));
    let probe_id = open(&mut client)?;
    let bulk_id = if s.bulk_down || s.bulk_up {
        Some(open(&mut client)?)
    } else {
        None
    };
    // The first stream the server accepts is the probe stream (opened first).
    let mut server_probe: Option<StreamId> = None;
    let mut server_bulk: Option<StreamId> = None;
    let mut echo = Vec::with_capacity(PROBE_LEN);
    let mut answer = Vec::with_capacity(PROBE_LEN);
    let mut sent_at: Option<Instant> = None;
    let mut next_at = t0 + Duration::from_millis(200);
    let mut rtts = Vec::with_capacity(s.probes);
    let mut now = t0;
    let mut dgram = vec![0u8; MTU_LIMIT];
    let mut scratch = vec![0u8; 32 * 1024];
    let bulk_chunk = vec![0x5a_u8; 16 * 1024];
    while rtts.len() < s.probes {
        up.deliver(now, |d| {
            server.handle_datagram(now, d);
        });
        down.deliver(now, |d| {
            client.handle_datagram(now, d);
        });
        for t in [&mut client, &mut server] {
            if t.poll_timeout().is_some_and(|d| d <= now) {
                t.handle_timeout(now);
            }
        }
        for _round in 0..64 {
            let mut moved = false;
            // Client: send the next request when due; read the answer; drain the bulk stream.
            if sent_at.is_none() && now >= next_at {
                let req = [(rtts.len() % 251) as u8; PROBE_LEN];
                match client.write(probe_id, &req) {
                    Ok(PROBE_LEN) => {
                        sent_at = Some(now);
                        moved = true;
                    }
                    Ok(_) | Err(WriteError::Blocked) => {}
                    Err(e) => return Err(SimError::Dead(format!("probe write: {e}"))),
                }
            }
            loop {
                match client.read(now, probe_id, &mut scratch[..PROBE_LEN - answer.len()]) {
                    Ok(0) => return Err(SimError::Dead("probe stream ended".into())),
                    Ok(n) => {
                        answer.extend_from_slice(&scratch[..n]);
                        moved = true;
                        if answer.len() == PROBE_LEN {
                            let want = [(rtts.len() % 251) as u8; PROBE_LEN];
                            let (Some(at), true) = (sent_at.take(), answer == want) else {
                                return Err(SimError::Corrupt {
                                    side: "client",
                                    stream: probe_id,
                                    offset: (rtts.len() * PROBE_LEN) as u64,
                                });
                            };
                            rtts.push(now - at);
                            answer.clear();
                            next_at = now + s.gap;
                        }
                    }
                    Err(ReadError::WouldBlock) => break,
                    Err(e) => return Err(SimError::Dead(format!("probe read: {e}"))),
                }
            }
            if let Some(id) = bulk_id {
                while let Ok(n) = client.read(now, id, &mut scratch) {
                    if n == 0 {
                        break;
                    }
                    moved = true;
                }
                let upload =
                    s.bulk_up && !(s.bulk_down && rtts.len() >= s.probes / 2 + UPLOAD_TAIL);
                if upload {
                    while let Ok(n) = client.write(id, &bulk_chunk) {
                        if n == 0 {
                            break;
                        }
                        moved = true;
                    }
                }
            }
            // Server: accept, echo the probe stream, keep the bulk stream's buffer full.
            while let Some(id) = server.accept() {
                if server_probe.is_none() {
                    server_probe = Some(id);
                } else {
                    server_bulk = Some(id);
                }
            }
            if let Some(id) = server_probe {
                loop {
                    if echo.is_empty() {
                        match server.read(now, id, &mut scratch[..PROBE_LEN]) {
                            Ok(0) | Err(ReadError::WouldBlock) => break,
                            Ok(n) => echo.extend_from_slice(&scratch[..n]),
                            Err(e) => return Err(SimError::Dead(format!("echo read: {e}"))),
                        }
                    }
                    match server.write(id, &echo) {
                        Ok(n) => {
                            echo.drain(..n);
                            moved = true;
                        }
                        Err(WriteError::Blocked) => break,
                        Err(e) => return Err(SimError::Dead(format!("echo write: {e}"))),
                    }
                }
            }
            if let Some(id) = server_bulk {
                while let Ok(n) = server.read(now, id, &mut scratch) {
                    if n == 0 {
                        break;
                    }
                    moved = true;
                }
            }
            let download = s.bulk_down && !(s.bulk_up && rtts.len() < s.probes / 2);
            if let Some(id) = server_bulk.filter(|_| download) {
                while let Ok(n) = server.write(id, &bulk_chunk) {
                    if n == 0 {
                        break;
                    }
                    moved = true;
                }
            }
            while client.poll_event().is_some() {}
            while server.poll_event().is_some() {}
            while let Some(n) = client.poll_transmit(now, &mut dgram) {
                up.send(now, &dgram[..n]);
                moved = true;
            }
            while let Some(n) = server.poll_transmit(now, &mut dgram) {
                down.send(now, &dgram[..n]);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        for (side, t) in [("client", &client), ("server", &server)] {
            if let Liveness::Dead(r) = t.liveness(now) {
                return Err(SimError::Dead(format!("{side}: {r}")));
            }
        }
        if sent_at.is_some_and(|at| now.duration_since(at) > Duration::from_secs(60)) {
            return Err(SimError::Timeout {
                delivered_up: rtts.len() as u64,
                delivered_down: rtts.len() as u64,
            });
        }
        let wake = if sent_at.is_none() {
            Some(next_at)
        } else {
            None
        };
        let next = [
            client.poll_timeout(),
            server.poll_timeout(),
            up.next_delivery(),
            down.next_delivery(),
            wake,
        ]
        .into_iter()
        .flatten()
        .min();
        now = match next {
            Some(t) => t.max(now + Duration::from_micros(1000)),
            None => now + Duration::from_millis(1),
        };
    }
    rtts.sort();
    Ok(ProbeReport {
        name: s.name.clone(),
        rtts,
        path_rtt: s.up.delay + s.down.delay,
    })
}
