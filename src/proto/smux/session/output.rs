//! The output side of the smux [`Session`](super::Session): control frames first, then PSH/FIN
//! round-robin over streams, optionally only from streams whose whole backlog fits (see
//! [`Session::poll_transmit_small`]), and the application events.

use std::collections::VecDeque;
use std::time::Instant;

use super::super::frame::{emit_upd, Cmd, Header, HEADER_LEN, UPD_LEN};
use super::super::stream::trim;
use super::super::Event;
use super::{Ctrl, Session};

impl Session {
    /// Writes the next outgoing frame into `out` and returns its length; `None` when nothing is
    /// queued (or the session is dead, or a server has not learned the version yet). `out` should
    /// hold `8 + max_frame_size` bytes; PSH payloads shrink to fit a smaller `out`, and nothing is
    /// produced when `out` is shorter than 16 bytes. Control frames (SYN, UPD, NOP, refusal FIN) go
    /// first, in request order; then PSH/FIN round-robin over streams.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        self.transmit(now, out, false)
    }

    /// As [`Session::poll_transmit`], but a PSH frame only from a stream whose whole backlog
    /// fits in `out` (an interactive message rather than a slice of a bulk transfer); that
    /// stream goes first, the round-robin order of the others stays. Control frames as usual.
    pub fn poll_transmit_small(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        self.transmit(now, out, true)
    }

    fn transmit(&mut self, _now: Instant, out: &mut [u8], whole_only: bool) -> Option<usize> {
        if self.dead.is_some() || out.len() < HEADER_LEN + UPD_LEN {
            return None;
        }
        let ver = self.version?.byte();
        let v2 = ver == 2;
        if self.nop_queued {
            self.nop_queued = false;
            self.ctrl.push_back(Ctrl::Nop);
        }
        while let Some(c) = self.ctrl.pop_front() {
            let (cmd, sid, upd) = match c {
                Ctrl::Nop => (Cmd::Nop, 0, None),
                Ctrl::Syn(sid) => match self.streams.get_mut(&sid) {
                    Some(s) if s.syn_pending => {
                        s.syn_pending = false;
                        (Cmd::Syn, sid, None)
                    }
                    _ => continue, // closed before its SYN left: nothing to tell the peer
                },
                Ctrl::Refuse(sid) => {
                    self.refusals -= 1;
                    (Cmd::Fin, sid, None)
                }
                Ctrl::Upd(sid) => match self.streams.get_mut(&sid) {
                    Some(s) => match s.upd_queued.take() {
                        Some(consumed) if !s.local_closed => {
                            s.upd_sent_consumed = consumed;
                            (Cmd::Upd, sid, Some(consumed))
                        }
                        _ => continue,
                    },
                    None => continue,
                },
            };
            let length = if upd.is_some() { UPD_LEN as u16 } else { 0 };
            Header {
                ver,
                cmd: cmd as u8,
                length,
                sid,
            }
            .emit(out);
            if let Some(consumed) = upd {
                emit_upd(
                    consumed,
                    self.cfg.max_stream_buffer,
                    &mut out[HEADER_LEN..HEADER_LEN + UPD_LEN],
                );
            }
            return Some(HEADER_LEN + usize::from(length));
        }
        let frame_cap = usize::from(self.cfg.max_frame_size).min(out.len() - HEADER_LEN);
        loop {
            let next = if whole_only {
                let streams = &self.streams;
                let cap = frame_cap;
                self.ready
                    .iter()
                    .position(|id| streams.get(id).is_some_and(|s| s.sendable_whole(cap, v2)))
                    .and_then(|i| self.ready.remove(i))
            } else {
                self.ready.pop_front()
            };
            let Some(sid) = next else {
                break;
            };
            let Some(s) = self.streams.get_mut(&sid) else {
                continue;
            };
            s.in_ready = false;
            let len;
            if !s.sbuf.is_empty() {
                let mut n = s.sbuf.len().min(frame_cap);
                if v2 {
                    n = n.min(s.window_room());
                }
                if n == 0 && s.abandoned() {
                    self.unsent -= s.sbuf.len();
                    s.sbuf = VecDeque::new();
                    self.ready.push_front(sid);
                    s.in_ready = true;
                    continue; // now sends the FIN
                }
                if n == 0 {
                    continue; // window closed: an UPD puts it back in `ready`
                }
                let (a, b) = s.sbuf.as_slices();
                let na = n.min(a.len());
                out[HEADER_LEN..HEADER_LEN + na].copy_from_slice(&a[..na]);
                out[HEADER_LEN + na..HEADER_LEN + n].copy_from_slice(&b[..n - na]);
                s.sbuf.drain(..n);
                trim(&mut s.sbuf);
                self.unsent -= n;
                // n <= 65535.
                s.num_written = s.num_written.wrapping_add(n as u32);
                Header {
                    ver,
                    cmd: Cmd::Psh as u8,
                    length: n as u16,
                    sid,
                }
                .emit(out);
                len = HEADER_LEN + n;
                if s.write_blocked {
                    s.write_blocked = false;
                    self.events.push_back(Event::Writable(sid));
                }
            } else if s.fin_queued && !s.fin_sent {
                s.fin_sent = true;
                Header {
                    ver,
                    cmd: Cmd::Fin as u8,
                    length: 0,
                    sid,
                }
                .emit(out);
                len = HEADER_LEN;
            } else {
                continue;
            }
            if s.has_sendable(v2) {
                s.in_ready = true;
                self.ready.push_back(sid);
            } else {
                self.maybe_forget(sid);
            }
            return Some(len);
        }
        None
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
