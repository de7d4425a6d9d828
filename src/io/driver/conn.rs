//! Local connections (TCP or unix): pumping bytes between a socket and its smux stream, half-close and idle handling.

use super::*;

impl Driver {
    pub(super) fn new_conn(
        &self,
        local: Local,
        si: usize,
        sid: StreamId,
        connecting: bool,
    ) -> Conn {
        let mut c = Conn::new(local, si, sid, connecting, self.now);
        if let Some((_, seed)) = &self.common.qpp {
            c.qpp = Some((QppPrng::new(seed), QppPrng::new(seed)));
        }
        c
    }

    pub(super) fn on_conn(&mut self, ci: usize) {
        if self.conns.contains(ci) {
            self.pump_conn(ci);
        }
    }

    /// Moves bytes both ways for one connection as far as both ends allow.
    pub(super) fn pump_conn(&mut self, ci: usize) {
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
                    self.ratelog.warn(
                        self.now,
                        "connect to target",
                        format_args!("connect to target failed: {e}; closing stream {}", c.sid),
                    );
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
            // Drained: give the buffer back (it only exists while the stream pushes back).
            c.up = Vec::new();
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

    pub(super) fn check_conn_idle(&mut self, ci: usize) {
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

    pub(super) fn sync_conn(&mut self, ci: usize) {
        let Some(c) = self.conns.get_mut(ci) else {
            return;
        };
        if let Err(e) = c.sync_interest(self.poll.registry(), token(K_CONN, ci)) {
            self.ratelog.warn(
                self.now,
                "register connection",
                format_args!("register connection: {e}"),
            );
        }
    }

    pub(super) fn drop_conn(&mut self, ci: usize, _session_gone: bool) {
        if let Some(mut c) = self.conns.try_remove(ci) {
            c.deregister(self.poll.registry());
            self.timers.cancel(TimerKey::Conn(ci));
            if !self.common.quiet {
                info!(target: crate::io::report::STREAM_TARGET, "stream closed in: {}", c.sid);
            }
        }
    }
}
