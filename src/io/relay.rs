//! Local connections (TCP or unix socket) joined to smux streams, with half-close.
//!
//! A [`Conn`] owns the local socket of one stream. Its mio interest is derived from its state on
//! every change ([`Conn::wanted_interest`]): it reads the local socket only while the bytes it read
//! last were all accepted by the stream (so a full stream/KCP window stops reading: back-pressure,
//! not buffering), and asks for writability only while bytes from the stream wait for the socket.
//! Each direction ends on its own: local EOF becomes the smux FIN of that direction, the peer's FIN
//! becomes `shutdown(SHUT_WR)` on the local socket once everything before it was written.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Instant;

use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

use crate::proto::qpp::QppPrng;
use crate::proto::smux::StreamId;

/// A local socket: TCP, or a unix stream socket.
pub enum Local {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Local {
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Local::Tcp(s) => s.read(buf),
            Local::Unix(s) => s.read(buf),
        }
    }

    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Local::Tcp(s) => s.write(buf),
            Local::Unix(s) => s.write(buf),
        }
    }

    pub fn shutdown_write(&self) {
        let _ = match self {
            Local::Tcp(s) => s.shutdown(Shutdown::Write),
            Local::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }

    /// The pending connect error, if any (after a non-blocking connect signalled writability).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Local::Tcp(s) => s.take_error(),
            Local::Unix(s) => s.take_error(),
        }
    }

    /// Whether a non-blocking connect has completed.
    pub fn is_connected(&self) -> bool {
        match self {
            Local::Tcp(s) => s.peer_addr().is_ok(),
            Local::Unix(s) => s.peer_addr().is_ok(),
        }
    }

    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Local::Tcp(s) => s,
            Local::Unix(s) => s,
        }
    }
}

/// One local connection and the stream it is joined to.
pub struct Conn {
    pub local: Local,
    /// Index of the session carrying the stream.
    pub sess: usize,
    pub sid: StreamId,
    /// Bytes read from the local socket that the stream has not accepted yet.
    pub up: Vec<u8>,
    pub up_off: usize,
    /// Bytes read from the stream that the local socket has not accepted yet.
    pub down: Vec<u8>,
    pub down_off: usize,
    /// Local EOF seen and forwarded as smux FIN.
    pub local_eof: bool,
    /// Peer FIN seen (and, once `down` drained, forwarded as SHUT_WR).
    pub stream_eof: bool,
    pub shut_wr_done: bool,
    /// A server-side target connect still in progress.
    pub connecting: bool,
    /// Last time bytes moved in either direction.
    pub last_active: Instant,
    /// Bytes arrived from the peer on this stream (ever).
    pub answered: bool,
    /// Interest currently registered (`None` = not registered).
    pub registered: Option<Interest>,
    /// `--QPP`: (PRNG for local → stream, PRNG for stream → local).
    pub qpp: Option<(QppPrng, QppPrng)>,
}

impl Conn {
    pub fn new(local: Local, sess: usize, sid: StreamId, connecting: bool, now: Instant) -> Self {
        Conn {
            local,
            sess,
            sid,
            up: Vec::new(),
            up_off: 0,
            down: Vec::new(),
            down_off: 0,
            local_eof: false,
            stream_eof: false,
            shut_wr_done: false,
            connecting,
            last_active: now,
            answered: false,
            registered: None,
            qpp: None,
        }
    }

    pub fn up_pending(&self) -> bool {
        self.up_off < self.up.len()
    }

    pub fn down_pending(&self) -> bool {
        self.down_off < self.down.len()
    }

    /// Both directions finished.
    pub fn done(&self) -> bool {
        self.local_eof && self.shut_wr_done
    }

    /// One direction finished, the other not.
    pub fn half_closed(&self) -> bool {
        (self.local_eof || self.shut_wr_done) && !self.done()
    }

    /// The interest the state calls for.
    pub fn wanted_interest(&self) -> Option<Interest> {
        if self.connecting {
            return Some(Interest::WRITABLE);
        }
        let read = !self.local_eof && !self.up_pending();
        let write = self.down_pending();
        match (read, write) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }

    /// Brings the registration in line with [`Conn::wanted_interest`], skipping redundant syscalls.
    pub fn sync_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let want = self.wanted_interest();
        if want == self.registered {
            return Ok(());
        }
        match (self.registered, want) {
            (None, Some(i)) => registry.register(self.local.source(), token, i)?,
            (Some(_), Some(i)) => registry.reregister(self.local.source(), token, i)?,
            (Some(_), None) => registry.deregister(self.local.source())?,
            (None, None) => {}
        }
        self.registered = want;
        Ok(())
    }

    /// Removes the socket from the poll before the connection is dropped.
    pub fn deregister(&mut self, registry: &Registry) {
        if self.registered.take().is_some() {
            let _ = registry.deregister(self.local.source());
        }
    }

    /// Writes pending stream bytes to the local socket; after the peer's FIN drains, shuts down
    /// our write side. Returns `Err` on a local socket error (the connection must be closed).
    pub fn flush_down(&mut self, now: Instant) -> io::Result<()> {
        while self.down_pending() {
            match self.local.write(&self.down[self.down_off..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.down_off += n;
                    self.last_active = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Drained: give the buffer back (it only exists while the local socket pushes back).
        self.down = Vec::new();
        self.down_off = 0;
        if self.stream_eof && !self.shut_wr_done {
            self.local.shutdown_write();
            self.shut_wr_done = true;
        }
        Ok(())
    }
}
