//! The checking target and `transfer` (the protocol in the module doc of `support`): both ends
//! verify SHA-256 of what they received.

use super::*;

/// What the target saw on one connection.
#[derive(Clone, Debug, Default)]
pub struct TargetRecord {
    pub received: u64,
    pub sha256: [u8; 32],
    pub error: Option<String>,
}

/// A checking target server in a thread (see the module doc for its protocol). Stops on drop.
pub struct Target {
    pub dest: Dest,
    stop: Arc<AtomicBool>,
    pub conns: Arc<AtomicUsize>,
    pub records: Arc<Mutex<Vec<TargetRecord>>>,
    handle: Option<JoinHandle<()>>,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn accept(&self) -> io::Result<Conn> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Conn::Tcp(s)),
            Listener::Unix(l) => l.accept().map(|(s, _)| Conn::Unix(s)),
        }
    }
    fn set_nonblocking(&self, nb: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(nb),
            Listener::Unix(l) => l.set_nonblocking(nb),
        }
    }
}

impl Target {
    /// The protocol of the module doc, on 127.0.0.1:0.
    pub fn start() -> Target {
        Target::on_tcp("127.0.0.1:0", false)
    }
    /// On `[::1]:0`.
    pub fn start_v6() -> Target {
        Target::on_tcp("[::1]:0", false)
    }
    /// On a unix socket at `path`.
    pub fn start_unix(path: &Path) -> Target {
        let l = UnixListener::bind(path)
            .unwrap_or_else(|e| panic!("bind unix {}: {e}", path.display()));
        Target::run(Listener::Unix(l), Dest::Unix(path.to_path_buf()), false)
    }
    /// Half-close variant: reads the header and `up` bytes and then waits for EOF before it
    /// sends anything (`down` bytes, then the trailer).
    pub fn start_after_eof() -> Target {
        Target::on_tcp("127.0.0.1:0", true)
    }

    fn on_tcp(addr: &str, after_eof: bool) -> Target {
        let l = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let a = l.local_addr().unwrap();
        Target::run(Listener::Tcp(l), Dest::Tcp(a), after_eof)
    }

    fn run(l: Listener, dest: Dest, after_eof: bool) -> Target {
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(AtomicUsize::new(0));
        let records = Arc::new(Mutex::new(Vec::new()));
        let (s, c, r) = (stop.clone(), conns.clone(), records.clone());
        let handle = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok(conn) => {
                        c.fetch_add(1, Ordering::Relaxed);
                        let r = r.clone();
                        thread::spawn(move || {
                            let rec = serve(conn, after_eof);
                            r.lock().unwrap().push(rec);
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(2))
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Target {
            dest,
            stop,
            conns,
            records,
            handle: Some(handle),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match &self.dest {
            Dest::Tcp(a) => *a,
            Dest::Unix(p) => panic!("unix target {} has no socket address", p.display()),
        }
    }

    /// The `-t` argument for a kcptun server.
    pub fn arg(&self) -> String {
        self.dest.to_string()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        if let Dest::Unix(p) = &self.dest {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Read exactly `buf.len()` bytes or fail with the count read so far.
fn read_full(c: &mut Conn, buf: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match c.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF after {got} of {} bytes", buf.len()),
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn send_stream(c: &mut Conn, seed: u64, mut n: u64, buf: &mut [u8]) -> io::Result<()> {
    let mut s = Stream::new(seed);
    while n > 0 {
        let k = (buf.len() as u64).min(n) as usize;
        s.fill(&mut buf[..k]);
        c.write_all(&buf[..k])?;
        n -= k as u64;
    }
    Ok(())
}

fn serve(mut conn: Conn, after_eof: bool) -> TargetRecord {
    let mut rec = TargetRecord::default();
    let _ = conn.set_timeouts(Duration::from_secs(60));
    let mut hdr = [0u8; 24];
    if let Err(e) = read_full(&mut conn, &mut hdr) {
        rec.error = Some(format!("header: {e}"));
        return rec;
    }
    let up = u64::from_le_bytes(hdr[0..8].try_into().unwrap());
    let down = u64::from_le_bytes(hdr[8..16].try_into().unwrap());
    let seed = u64::from_le_bytes(hdr[16..24].try_into().unwrap());
    let mut w = match conn.try_clone() {
        Ok(w) => w,
        Err(e) => {
            rec.error = Some(format!("clone: {e}"));
            return rec;
        }
    };
    let (tx, rx) = mpsc::channel::<(u64, [u8; 32])>();
    let writer = thread::spawn(move || -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        if after_eof {
            let (n, d) = rx.recv().map_err(|_| io::Error::other("reader gone"))?;
            send_stream(&mut w, !seed, down, &mut buf)?;
            w.write_all(&d)?;
            w.write_all(&n.to_le_bytes())?;
        } else {
            send_stream(&mut w, !seed, down, &mut buf)?;
            let (n, d) = rx.recv().map_err(|_| io::Error::other("reader gone"))?;
            w.write_all(&d)?;
            w.write_all(&n.to_le_bytes())?;
        }
        Ok(())
    });
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    let mut err = None;
    loop {
        if !after_eof && got == up {
            break;
        }
        let want = if after_eof {
            buf.len()
        } else {
            (buf.len() as u64).min(up - got) as usize
        };
        match conn.read(&mut buf[..want]) {
            Ok(0) => {
                if !after_eof {
                    err = Some(format!("EOF after {got} of {up} bytes"));
                }
                break;
            }
            Ok(n) => {
                h.update(&buf[..n]);
                got += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                err = Some(format!("read after {got} of {up} bytes: {e}"));
                break;
            }
        }
    }
    let digest: [u8; 32] = h.finalize().into();
    rec.received = got;
    rec.sha256 = digest;
    if err.is_none() {
        let _ = tx.send((got, digest));
    }
    drop(tx);
    match writer.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => err = err.or(Some(format!("write: {e}"))),
        Err(_) => err = err.or(Some("writer panicked".into())),
    }
    if err.is_none() {
        // Wait for the client to close (it reads the trailer first); bounded by the timeout.
        let _ = conn.read(&mut buf);
    }
    rec.error = err;
    rec
}

// ---------------------------------------------------------------------------------------------
// transfer

/// The outcome of one or more checked transfers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub up: u64,
    pub down: u64,
    pub elapsed: Duration,
}

impl Stats {
    /// (up + down) / elapsed in MB/s (10^6 bytes).
    pub fn mbps(&self) -> f64 {
        (self.up + self.down) as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
    }
}

/// Options of [`transfer_with`].
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    /// Whole-transfer deadline.
    pub deadline: Duration,
    /// Socket read/write timeout (no progress for this long fails).
    pub idle: Duration,
    /// Half-close: send `up`, `shutdown(Write)`, then read the reply (target `start_after_eof`).
    pub half_close: bool,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            deadline: Duration::from_secs(90),
            idle: Duration::from_secs(20),
            half_close: false,
        }
    }
}

/// Connects to `dest` (the tunnel client's local port), sends `up` bytes while reading `down`
/// bytes, and checks SHA-256 at both ends (see the module doc).
pub fn transfer(dest: impl Into<Dest>, up: u64, down: u64) -> Result<Stats, String> {
    transfer_with(dest, up, down, Opts::default())
}

pub fn transfer_with(dest: impl Into<Dest>, up: u64, down: u64, o: Opts) -> Result<Stats, String> {
    let dest = dest.into();
    let conn = Conn::connect(&dest, o.idle).map_err(|e| format!("connect {dest}: {e}"))?;
    transfer_over(conn, up, down, o)
}

/// [`transfer_with`] on a connection already open to the target (e.g. through a SOCKS5 proxy).
pub fn transfer_over(conn: Conn, up: u64, down: u64, o: Opts) -> Result<Stats, String> {
    let t0 = Instant::now();
    let end = t0 + o.deadline;
    let seed = next_seed();
    conn.set_timeouts(o.idle)
        .map_err(|e| format!("socket timeouts: {e}"))?;
    let mut w = conn.try_clone().map_err(|e| format!("clone: {e}"))?;
    let mut r = conn;
    let half = o.half_close;
    let idle = o.idle;
    let writer = thread::spawn(move || -> Result<[u8; 32], String> {
        let mut hdr = [0u8; 24];
        hdr[0..8].copy_from_slice(&up.to_le_bytes());
        hdr[8..16].copy_from_slice(&down.to_le_bytes());
        hdr[16..24].copy_from_slice(&seed.to_le_bytes());
        w.write_all(&hdr).map_err(|e| format!("send header: {e}"))?;
        let mut s = Stream::new(seed);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = up;
        while left > 0 {
            if Instant::now() > end {
                return Err(format!("deadline: sent {} of {up} bytes", up - left));
            }
            let k = (buf.len() as u64).min(left) as usize;
            s.fill(&mut buf[..k]);
            h.update(&buf[..k]);
            w.write_all(&buf[..k]).map_err(|e| {
                format!("send after {} of {up} bytes: {}", up - left, why(&e, idle))
            })?;
            left -= k as u64;
        }
        if half {
            w.shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown(Write): {e}"))?;
        }
        Ok(h.finalize().into())
    });
    // Read `down` bytes and the 40-byte trailer, comparing with the expected stream.
    let mut expect = Stream::new(!seed);
    let mut hr = Sha256::new();
    let mut he = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut ebuf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    let mut first_diff: Option<u64> = None;
    let mut read_err = None;
    while got < down {
        if Instant::now() > end {
            read_err = Some(format!("deadline: received {got} of {down} bytes"));
            break;
        }
        let want = (buf.len() as u64).min(down - got) as usize;
        match r.read(&mut buf[..want]) {
            Ok(0) => {
                read_err = Some(format!("EOF after {got} of {down} bytes"));
                break;
            }
            Ok(n) => {
                expect.fill(&mut ebuf[..n]);
                hr.update(&buf[..n]);
                he.update(&ebuf[..n]);
                if first_diff.is_none() {
                    if let Some(i) = (0..n).find(|&i| buf[i] != ebuf[i]) {
                        first_diff = Some(got + i as u64);
                    }
                }
                got += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                read_err = Some(format!(
                    "receive after {got} of {down} bytes: {}",
                    why(&e, o.idle)
                ));
                break;
            }
        }
    }
    let mut trailer = [0u8; 40];
    if read_err.is_none() {
        if let Err(e) = read_full(&mut r, &mut trailer) {
            read_err = Some(format!(
                "trailer (after all {down} bytes): {}",
                why(&e, o.idle)
            ));
        }
    }
    let elapsed = t0.elapsed();
    if read_err.is_some() {
        // Unblock the writer.
        let _ = r.shutdown(Shutdown::Both);
    }
    let sent = writer
        .join()
        .map_err(|_| "writer thread panicked".to_string())?;
    let _ = r.shutdown(Shutdown::Both);
    if let Some(e) = read_err {
        return Err(match sent {
            Err(w) => format!("{e}; {w}"),
            Ok(_) => e,
        });
    }
    let sent = sent?;
    let down_sha: [u8; 32] = hr.finalize().into();
    let exp_sha: [u8; 32] = he.finalize().into();
    if let Some(at) = first_diff {
        return Err(format!(
            "down data corrupted: first wrong byte at offset {at} of {down}; sha256 {} != {}",
            hex::encode(down_sha),
            hex::encode(exp_sha)
        ));
    }
    assert_eq!(down_sha, exp_sha);
    let n = u64::from_le_bytes(trailer[32..40].try_into().unwrap());
    if n != up || trailer[..32] != sent {
        return Err(format!(
            "up data corrupted: target received {n} of {up} bytes with sha256 {}, sent {}",
            hex::encode(&trailer[..32]),
            hex::encode(sent)
        ));
    }
    Ok(Stats { up, down, elapsed })
}

/// A socket error, with timeouts spelled out.
fn why(e: &io::Error, idle: Duration) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no progress for {idle:?} (socket timeout)")
        }
        _ => e.to_string(),
    }
}

/// `conns` concurrent transfers splitting `up`/`down` between them; the stats sum the bytes and
/// take the wall time of the whole.
pub fn transfer_many(
    dest: impl Into<Dest>,
    conns: usize,
    up: u64,
    down: u64,
) -> Result<Stats, String> {
    let dest = dest.into();
    let t0 = Instant::now();
    let n = conns.max(1) as u64;
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let d = dest.clone();
            let u = up / n + u64::from(i < up % n);
            let w = down / n + u64::from(i < down % n);
            thread::spawn(move || transfer(d, u, w))
        })
        .collect();
    let mut errs = Vec::new();
    for (i, h) in hs.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => errs.push(format!("connection {i}: {e}")),
            Err(_) => errs.push(format!("connection {i}: panicked")),
        }
    }
    if errs.is_empty() {
        Ok(Stats {
            up,
            down,
            elapsed: t0.elapsed(),
        })
    } else {
        Err(errs.join("; "))
    }
}

/// Retries a small round trip (16 bytes each way, 3 s per try) until it succeeds or `deadline`
/// passes; returns the time it took. `alive` is polled between tries so a crashed tunnel end
/// fails at once instead of after the deadline.
pub fn wait_for_tunnel_with(
    dest: impl Into<Dest>,
    deadline: Duration,
    mut alive: impl FnMut() -> Result<(), String>,
) -> Result<Duration, String> {
    let dest = dest.into();
    let t0 = Instant::now();
    let mut last = String::from("no attempt");
    loop {
        alive()?;
        if t0.elapsed() >= deadline {
            return Err(format!(
                "tunnel at {dest} did not answer within {deadline:?}; last error: {last}"
            ));
        }
        let left = deadline.saturating_sub(t0.elapsed());
        let per_try = left.clamp(Duration::from_millis(200), Duration::from_secs(3));
        let o = Opts {
            deadline: per_try,
            idle: per_try,
            half_close: false,
        };
        match transfer_with(dest.clone(), 16, 16, o) {
            Ok(_) => return Ok(t0.elapsed()),
            Err(e) => last = e,
        }
        thread::sleep(Duration::from_millis(100));
    }
}

pub fn wait_for_tunnel(dest: impl Into<Dest>, deadline: Duration) -> Result<Duration, String> {
    wait_for_tunnel_with(dest, deadline, || Ok(()))
}
