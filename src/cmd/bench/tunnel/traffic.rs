//! The traffic of `kcptun bench tunnel`: the embedded TCP target (sink, source or echo per
//! connection, chosen by its first byte), the ping-pong connection through the tunnel, and the
//! incompressible data both sides agree on.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{err, DATA_LEN, PING_LEN, PING_TIMEOUT};
use crate::cmd::bench::procs::{check_all, ChildProc};
use crate::cmd::RunError;
use crate::proto::rng::Rng;

/// A TCP listener on 127.0.0.1 that serves each connection on its own thread; stopped (and its
/// accept thread joined) on drop. Both benches' targets are one.
pub(in crate::cmd::bench) struct Acceptor {
    pub(in crate::cmd::bench) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Listens on a free port; `serve` runs once per accepted connection, on a new thread.
    pub(in crate::cmd::bench) fn start(
        serve: impl Fn(TcpStream) + Clone + Send + 'static,
    ) -> Result<Self, RunError> {
        let l = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| err(format!("bench: cannot listen for the target: {e}")))?;
        let addr = l
            .local_addr()
            .map_err(|e| err(format!("bench: target address: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let accept = thread::spawn(move || {
            for conn in l.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let f = serve.clone();
                thread::spawn(move || f(conn));
            }
        });
        Ok(Acceptor {
            addr,
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// The TCP target the server forwards to: sink, source or echo per connection (first byte).
pub(super) struct Target {
    pub(super) addr: SocketAddr,
    /// Bytes received by sink connections.
    pub(super) sunk: Arc<AtomicU64>,
    /// Set when a sink received bytes that are not the bench's data stream.
    pub(super) corrupt: Arc<AtomicBool>,
    _acceptor: Acceptor,
}

impl Target {
    pub(super) fn start(data: Arc<Vec<u8>>) -> Result<Self, RunError> {
        let sunk = Arc::new(AtomicU64::new(0));
        let corrupt = Arc::new(AtomicBool::new(false));
        let (s2, c2) = (sunk.clone(), corrupt.clone());
        let acceptor = Acceptor::start(move |conn| serve(conn, &s2, &c2, &data))?;
        Ok(Target {
            addr: acceptor.addr,
            sunk,
            corrupt,
            _acceptor: acceptor,
        })
    }
}

/// One target connection; returns when the peer closes or an I/O error occurs.
pub(super) fn serve(mut c: TcpStream, sunk: &AtomicU64, corrupt: &AtomicBool, data: &[u8]) {
    let _ = c.set_nodelay(true);
    let mut mode = [0u8; 1];
    if c.read_exact(&mut mode).is_err() {
        return;
    }
    match mode[0] {
        b'U' => {
            let mut buf = vec![0u8; 1 << 16];
            let mut off = 0;
            while let Ok(n @ 1..) = c.read(&mut buf) {
                if !continues(data, &mut off, &buf[..n]) {
                    corrupt.store(true, Ordering::Relaxed);
                    return;
                }
                sunk.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        b'D' => while c.write_all(data).is_ok() {},
        b'P' => {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = c.read(&mut buf) {
                if c.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
        _ => {}
    }
}

/// Whether `chunk` continues the endless repetition of `data` at stream offset `*off`
/// (advanced past the chunk).
pub(in crate::cmd::bench) fn continues(data: &[u8], off: &mut usize, mut chunk: &[u8]) -> bool {
    while !chunk.is_empty() {
        let at = *off % data.len();
        let n = chunk.len().min(data.len() - at);
        if chunk[..n] != data[at..at + n] {
            return false;
        }
        *off += n;
        chunk = &chunk[n..];
    }
    true
}

/// A ping-pong connection through the tunnel.
pub(super) struct Pinger {
    conn: TcpStream,
    msg: [u8; PING_LEN],
    echo: [u8; PING_LEN],
}

impl Pinger {
    /// Connects to the client and waits for a first echo, `timeout` per attempt.
    pub(super) fn open(local: SocketAddr, timeout: Duration) -> std::io::Result<Self> {
        let mut conn = TcpStream::connect_timeout(&local, Duration::from_secs(2))?;
        conn.set_nodelay(true)?;
        conn.set_read_timeout(Some(timeout))?;
        conn.write_all(b"P")?;
        let mut p = Pinger {
            conn,
            msg: [0; PING_LEN],
            echo: [0; PING_LEN],
        };
        p.round_trip(0)?;
        p.conn.set_read_timeout(Some(PING_TIMEOUT))?;
        Ok(p)
    }

    /// One 64-byte round trip; checks the echo.
    pub(super) fn round_trip(&mut self, seq: u64) -> std::io::Result<Duration> {
        self.msg[..8].copy_from_slice(&seq.to_le_bytes());
        let t = Instant::now();
        self.conn.write_all(&self.msg)?;
        self.conn.read_exact(&mut self.echo)?;
        let d = t.elapsed();
        if self.echo != self.msg {
            return Err(std::io::Error::other("echo differs"));
        }
        Ok(d)
    }
}

/// Waits until a new connection through the client is echoed, up to `limit`.
pub(super) fn establish(
    local: SocketAddr,
    limit: Duration,
    children: &mut [&mut ChildProc],
) -> Result<Pinger, RunError> {
    let t0 = Instant::now();
    let mut last = String::new();
    while t0.elapsed() < limit {
        check_all(children)?;
        match Pinger::open(local, Duration::from_secs(2)) {
            Ok(p) => return Ok(p),
            Err(e) => {
                last = e.to_string();
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let logs: Vec<String> = children
        .iter()
        .map(|c| format!("{} stderr:\n  {}", c.what, c.log_tail()))
        .collect();
    Err(err(format!(
        "bench: the tunnel did not answer within {} s (last error: {last})\n{}",
        limit.as_secs(),
        logs.join("\n")
    )))
}

/// Pseudo-random (incompressible) bytes, the same every run.
pub(in crate::cmd::bench) fn random_data() -> Arc<Vec<u8>> {
    let mut rng = Rng::from_seed(*b"kcptun bench: incompressible!!!!");
    let mut v = vec![0u8; DATA_LEN];
    rng.fill(&mut v);
    Arc::new(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_checks_the_repeated_stream() {
        let data = [1u8, 2, 3, 4];
        let mut off = 0;
        assert!(continues(&data, &mut off, &[1, 2, 3]));
        assert!(continues(&data, &mut off, &[4, 1, 2, 3, 4, 1]));
        assert_eq!(off, 9);
        assert!(!continues(&data, &mut off, &[2, 9]));
    }

    #[test]
    fn target_modes() {
        let t = Target::start(Arc::new(vec![7u8; 1000])).unwrap();
        let mut e = TcpStream::connect(t.addr).unwrap();
        e.write_all(b"Phello").unwrap();
        let mut b = [0u8; 5];
        e.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello");
        let mut d = TcpStream::connect(t.addr).unwrap();
        d.write_all(b"D").unwrap();
        let mut b = [0u8; 3000];
        d.read_exact(&mut b).unwrap();
        assert!(b.iter().all(|&x| x == 7));
        let mut u = TcpStream::connect(t.addr).unwrap();
        u.write_all(b"U").unwrap();
        u.write_all(&[7u8; 5000]).unwrap();
        drop(u);
        let t0 = Instant::now();
        while t.sunk.load(Ordering::Relaxed) < 5000 && t0.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(t.sunk.load(Ordering::Relaxed), 5000);
        assert!(!t.corrupt.load(Ordering::Relaxed));
        let mut u = TcpStream::connect(t.addr).unwrap();
        u.write_all(b"U").unwrap();
        u.write_all(&[1u8; 10]).unwrap();
        drop(u);
        let t0 = Instant::now();
        while !t.corrupt.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(5));
        }
        assert!(t.corrupt.load(Ordering::Relaxed));
    }
}
