//! The `--ctl` control socket: accepts local connections and answers `kcptun snmp` requests.

use super::*;

impl Driver {
    /// Binds `--ctl` (a unix socket, mode 0600) if asked.
    pub(super) fn open_ctl(&mut self) -> Result<(), RunError> {
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
    pub(super) fn on_ctl(&mut self) {
        for _ in 0..ACCEPT_BUDGET {
            let Some(l) = &self.ctl else {
                return;
            };
            let mut stream = match l.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.ratelog
                        .warn(self.now, "ctl accept", format_args!("ctl accept: {e}"));
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
    pub(super) fn on_ctl_conn(&mut self, k: usize) {
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
}
