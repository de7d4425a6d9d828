//! Sessions of either role: reading the UDP sockets, draining transmit queues under back-pressure, timers, liveness checks and closing.

use super::*;

impl Driver {
    /// A UDP socket is ready: flush what it holds, then read datagrams in batches.
    pub(super) fn on_udp(&mut self, ui: usize) {
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
                    self.ratelog
                        .warn(self.now, "udp recv", format_args!("udp recv: {e}"));
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

    /// Drains the session's datagrams into its socket's batch, flushing the batch when full.
    /// Stops (and waits for WRITABLE) when the kernel refuses more: KCP keeps the rest. Stops too
    /// once the session sent `budget` datagrams in this turn: it is then `deferred`, and the next
    /// turn (whose wait does not block) goes on where this one stopped.
    pub(super) fn session_send(&mut self, si: usize, budget: usize) {
        let now = self.now;
        let rate = self.common.ratelimit;
        let Some(sess) = self.sessions.get_mut(si) else {
            return;
        };
        let ui = sess.sock;
        sess.rate_wait = None;
        if sess.sent_turn != self.turn {
            sess.sent_turn = self.turn;
            sess.sent = 0;
        }
        loop {
            if sess.sent >= budget {
                if !self.deferred.contains(&si) {
                    self.deferred.push(si);
                }
                break;
            }
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
                Ok(Some(n)) => {
                    sess.bucket.tokens -= n as f64;
                    sess.sent += 1;
                }
                Ok(None) => break,
                Err(_) => continue,
            }
        }
        if !self.udp[ui].tx.is_empty() && !self.dirty_socks.contains(&ui) {
            self.dirty_socks.push(ui);
        }
    }

    pub(super) fn want_write(poll: &Poll, ui: usize, sock: &mut Sock) {
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
    pub(super) fn flush_sock(&mut self, ui: usize) {
        let Some(sock) = self.udp.get_mut(ui) else {
            return;
        };
        if !sock.tx.is_empty() {
            if let Err(e) = sock.sock.send_batch(&mut sock.tx) {
                self.ratelog
                    .warn(self.now, "udp send", format_args!("udp send: {e}"));
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

    pub(super) fn flush_dirty(&mut self) {
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
                self.session_send(si, SEND_BUDGET);
                self.session_events(si);
                self.arm_session(si);
                self.check_session(si);
            }
        }
        for ui in std::mem::take(&mut self.dirty_socks) {
            self.flush_sock(ui);
        }
    }

    pub(super) fn arm_session(&mut self, si: usize) {
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

    pub(super) fn session_events(&mut self, si: usize) {
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

    pub(super) fn fire(&mut self, key: TimerKey) {
        match key {
            TimerKey::Session(si) => {
                if let Some(s) = self.sessions.get_mut(si) {
                    s.armed = None;
                    let held = s.tunnel.holds_traffic_memory();
                    s.tunnel.handle_timeout(self.now);
                    // A client session owns its socket: when the session gives its memory back,
                    // so does the socket's send batch.
                    if held && !s.tunnel.holds_traffic_memory() {
                        self.trim_due = true;
                        if let Some(sock) = self.udp.get_mut(s.sock) {
                            if sock.owner == Some(si) {
                                sock.tx.release();
                            }
                        }
                    }
                    self.mark(si);
                }
            }
            TimerKey::Conn(ci) => self.check_conn_idle(ci),
            TimerKey::Accept => self.on_accept(),
            TimerKey::Metrics(k) => self.close_metrics(k),
            TimerKey::Tick => {
                self.tick();
                self.timers
                    .set(TimerKey::Tick, self.now + Duration::from_secs(1));
            }
        }
    }

    /// Once a second: rate-limited warnings left out, freed memory back to the OS if sessions
    /// released some, the snmplog reporter (it sums the counters only when it writes a row).
    pub(super) fn tick(&mut self) {
        self.ratelog.flush(self.now);
        if let Some(ppid) = self.parent {
            // Reparented (to init or a subreaper): the shadowsocks process that started us is
            // gone. Stop as on SIGTERM.
            if std::os::unix::process::parent_id() != ppid && !self.stopping {
                info!("parent process {ppid} is gone, shutting down");
                self.stopping = true;
            }
        }
        if std::mem::take(&mut self.trim_due) {
            // Process-wide buffers sized by the traffic peak go too: the receive arena's pages
            // and the listeners' send batches (a client's own sockets release with their session).
            if let Some(rx) = &mut self.rx {
                rx.release_pages();
            }
            for (_, sock) in self.udp.iter_mut() {
                if sock.owner.is_none() {
                    sock.tx.release();
                }
            }
            crate::io::heap::give_back();
        }
        if self.reporter.is_enabled() {
            let snap = self.snapshot();
            self.reporter.tick(&snap);
        }
    }

    /// Liveness and expiry of a session that had work in this turn (a session with nothing to
    /// do cannot change its liveness: silence only matters while data is outstanding, and then
    /// its retransmission timer keeps touching it).
    pub(super) fn check_session(&mut self, si: usize) {
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
    pub(super) fn note_unreachable(&mut self, silent: bool, conv: u32, peer: SocketAddr) {
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

    pub(super) fn close_session(&mut self, si: usize, why: &str) {
        let Some(mut s) = self.sessions.try_remove(si) else {
            return;
        };
        info!("session {:08x} closed: {why}", s.tunnel.conv());
        self.trim_due = true;
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
}
