//! Server role: demultiplexing datagrams per peer into sessions, reset hints for unknown peers, and dialing the target for every stream a peer opens.

use super::*;

/// Smallest interval between two reset hints to one address.
const HINT_EVERY: Duration = Duration::from_millis(100);

impl Driver {
    pub(super) fn server_datagram(&mut self, ui: usize, from: SocketAddr, dgram: &mut [u8]) {
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

    pub(super) fn new_server_session(
        &mut self,
        ui: usize,
        from: SocketAddr,
        conv: u32,
        first: Option<&[u8]>,
    ) {
        let now = self.now;
        if self.sessions.len() >= MAX_SERVER_SESSIONS {
            self.ratelog.warn(
                self.now,
                "too many sessions",
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
                self.ratelog
                    .warn(self.now, "new session", format_args!("session: {e}"));
                return;
            }
        };
        let si = self.sessions.insert(Sess {
            tunnel: Box::new(tunnel),
            sock: ui,
            peer: from,
            streams: HashMap::new(),
            created: now,
            retiring: false,
            armed: None,
            bucket: Bucket::new(now),
            rate_wait: None,
            sent: 0,
            sent_turn: 0,
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

    pub(super) fn send_reset_hint(&mut self, ui: usize, to: SocketAddr, conv: u32) {
        let now = self.now;
        let Role::Server {
            hinted, hint_out, ..
        } = &mut self.role
        else {
            return;
        };
        // At most one hint per address every HINT_EVERY: a hint is never larger than the
        // datagram that provoked it, and our client confirms a reset after two of them a
        // confirmation gap apart (at least 100 ms), so a faster pace would gain nothing.
        if hinted
            .get(&to)
            .is_some_and(|t| now.duration_since(*t) < HINT_EVERY)
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

    pub(super) fn server_stream(&mut self, si: usize, sid: StreamId) {
        let target = match &self.role {
            Role::Server { cfg, .. } => cfg.target.clone(),
            _ => return,
        };
        if self.conns.len() >= MAX_CONNS {
            self.ratelog.warn(
                self.now,
                "too many connections",
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
                    info!(target: crate::io::report::STREAM_TARGET, "stream opened in: {sid} out: {}", display_target(&target));
                }
                self.sync_conn(ci);
            }
            Err(e) => {
                self.ratelog.warn(
                    self.now,
                    "connect to target",
                    format_args!(
                        "connect to target {}: {e}; closing stream {sid}",
                        display_target(&target)
                    ),
                );
                self.sessions[si].tunnel.close(sid);
            }
        }
    }
}
