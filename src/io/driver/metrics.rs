//! The `--metrics` HTTP listener inside the loop: non-blocking, bounded in connections
//! ([`MAX_METRICS_CONNS`], the oldest is dropped for a new one), request size
//! ([`metrics::MAX_REQUEST`]) and time ([`METRICS_TIMEOUT`] from accept to the last byte
//! written). Rendering and request parsing are in [`crate::io::metrics`].

use mio::net::TcpStream;

use super::*;
use crate::io::metrics::{self, Gauges, ProcStats, Request};

/// Scrape connections open at most.
pub(super) const MAX_METRICS_CONNS: usize = 8;
/// A connection must send its request and take its answer within this time.
pub(super) const METRICS_TIMEOUT: Duration = Duration::from_secs(5);

/// One scrape in progress.
pub(super) struct MetricsConn {
    stream: TcpStream,
    /// The request head read so far (at most `MAX_REQUEST` bytes).
    req: Vec<u8>,
    /// The answer, once the request is complete; `sent` bytes of it are written.
    out: Vec<u8>,
    sent: usize,
    since: Instant,
}

impl Driver {
    /// Binds `--metrics` if asked.
    pub(super) fn open_metrics(&mut self) -> Result<(), RunError> {
        let Some(addr) = self.common.metrics.clone() else {
            return Ok(());
        };
        let sa = net::resolve(&addr).map_err(|e| RunError::Resolve {
            addr: addr.clone(),
            err: e.to_string(),
        })?;
        let mut l = net::bind_tcp(sa).map_err(RunError::Bind)?;
        self.poll
            .registry()
            .register(&mut l, token(K_METRICS, 0), Interest::READABLE)?;
        if let Ok(a) = l.local_addr() {
            info!("metrics: http://{a}/metrics");
        }
        self.metrics = Some(l);
        Ok(())
    }

    /// The address `--metrics` is bound to.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub(super) fn on_metrics_accept(&mut self) {
        for _ in 0..ACCEPT_BUDGET {
            let Some(l) = &self.metrics else {
                return;
            };
            let mut stream = match l.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.ratelog.warn(
                        self.now,
                        "metrics accept",
                        format_args!("metrics accept: {e}"),
                    );
                    return;
                }
            };
            if self.metrics_conns.len() >= MAX_METRICS_CONNS {
                if let Some(k) = self
                    .metrics_conns
                    .iter()
                    .min_by_key(|(_, c)| c.since)
                    .map(|(k, _)| k)
                {
                    self.close_metrics(k);
                }
            }
            let entry = self.metrics_conns.vacant_entry();
            let k = entry.key();
            if self
                .poll
                .registry()
                .register(&mut stream, token(K_METRICS, k + 1), Interest::READABLE)
                .is_ok()
            {
                entry.insert(MetricsConn {
                    stream,
                    req: Vec::new(),
                    out: Vec::new(),
                    sent: 0,
                    since: self.now,
                });
                self.timers
                    .set(TimerKey::Metrics(k), self.now + METRICS_TIMEOUT);
            }
        }
        self.still_ready.push(token(K_METRICS, 0));
    }

    pub(super) fn close_metrics(&mut self, k: usize) {
        if let Some(mut c) = self.metrics_conns.try_remove(k) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.timers.cancel(TimerKey::Metrics(k));
        }
    }

    /// Reads the request; once complete, writes the answer (as far as the socket takes it) and
    /// closes.
    pub(super) fn on_metrics_conn(&mut self, k: usize) {
        let Some(c) = self.metrics_conns.get_mut(k) else {
            return;
        };
        if c.out.is_empty() {
            let mut buf = [0u8; 1024];
            let parsed = loop {
                let room = metrics::MAX_REQUEST - c.req.len();
                match std::io::Read::read(&mut c.stream, &mut buf[..room.min(1024)]) {
                    Ok(0) => break None,
                    Ok(n) => {
                        c.req.extend_from_slice(&buf[..n]);
                        match metrics::parse_request(&c.req) {
                            Request::Incomplete => {}
                            r => break Some(r),
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break None,
                }
            };
            let answer = match parsed {
                Some(Request::Metrics { head }) => {
                    metrics::response(200, &self.metrics_body(), head)
                }
                Some(Request::Error(status)) => metrics::error_response(status),
                // the peer closed (or failed) before its request was complete
                None | Some(Request::Incomplete) => {
                    self.close_metrics(k);
                    return;
                }
            };
            let Some(c) = self.metrics_conns.get_mut(k) else {
                return;
            };
            c.out = answer;
        }
        self.write_metrics(k);
    }

    fn write_metrics(&mut self, k: usize) {
        let Some(c) = self.metrics_conns.get_mut(k) else {
            return;
        };
        while c.sent < c.out.len() {
            match std::io::Write::write(&mut c.stream, &c.out[c.sent..]) {
                Ok(0) => break,
                Ok(n) => c.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = self.poll.registry().reregister(
                        &mut c.stream,
                        token(K_METRICS, k + 1),
                        Interest::WRITABLE,
                    );
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = c.stream.shutdown(std::net::Shutdown::Write);
        self.close_metrics(k);
    }

    fn metrics_body(&self) -> String {
        let g = Gauges {
            sessions: self.sessions.len() as u64,
            streams: self.conns.len() as u64,
            role: if matches!(self.role, Role::Client { .. }) {
                "client"
            } else {
                "server"
            },
        };
        metrics::render(&self.snapshot(), &g, &ProcStats::read())
    }
}
