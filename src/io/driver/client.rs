//! Client role: accepting local connections, picking (or dialing) the session for each new stream.

use super::*;

impl Driver {
    pub(super) fn on_accept(&mut self) {
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
                self.ratelog.warn(
                    self.now,
                    "too many connections",
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
                    self.ratelog
                        .warn(self.now, "open stream", format_args!("open stream: {e}"));
                    self.sessions[si].retiring = true;
                    continue;
                }
            };
            let ci = self.conns.insert(self.new_conn(local, si, sid, false));
            self.sessions[si].streams.insert(sid, ci);
            self.counters.active_opens += 0;
            if !self.common.quiet {
                info!(
                    target: crate::io::report::STREAM_TARGET,
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

    /// Out of file descriptors (or another accept error): the pending connection stays in the
    /// backlog and, the poll being edge-triggered, no new event would come for it; retry soon.
    pub(super) fn accept_failed(&mut self, e: io::Error) {
        let now = self.now;
        self.ratelog.warn(
            now,
            "accept",
            format_args!(
                "accept: {e} (raise the open-files limit, e.g. LimitNOFILE=65536); retrying"
            ),
        );
        self.timers
            .set(TimerKey::Accept, now + Duration::from_millis(100));
    }

    /// Round-robin slot; a missing, dead, retiring or expired session is replaced synchronously.
    pub(super) fn client_session_for_new_stream(&mut self) -> Option<usize> {
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

    pub(super) fn remote_addr(&mut self) -> io::Result<SocketAddr> {
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

    pub(super) fn new_client_session(&mut self) -> io::Result<usize> {
        let remote = self.remote_addr()?;
        let sock = UdpSock::connect_unbound(remote, &self.common.sock)?;
        let conv = self.rng.next_u32();
        let tunnel = Tunnel::new(&self.common.tunnel, conv, true, self.rng.fork(), self.now)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let si = self.sessions.vacant_key();
        let ui = self.add_sock(sock, Some(si))?;
        self.sessions.insert(Sess {
            tunnel: Box::new(tunnel),
            sock: ui,
            peer: remote,
            streams: HashMap::new(),
            created: self.now,
            retiring: false,
            armed: None,
            bucket: Bucket::new(self.now),
            rate_wait: None,
            sent: 0,
            sent_turn: 0,
        });
        self.counters.active_opens += 1;
        self.counters.max_conn = self.counters.max_conn.max(self.sessions.len() as u64);
        info!("smux session established: conv {conv:08x} to {remote}");
        Ok(si)
    }
}
