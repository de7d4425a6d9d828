//! `kcptun bench soak`: our client and server run for a while through an emulated lossy path
//! with connections churning, and their memory and open fds must stay flat.
//!
//! Parts: an embedded TCP target (threads) that checks what it receives and answers with checked
//! data; our server and client as child processes (this executable), the client dialling the
//! [`Relay`] of the path; K workers that each open a connection through the client, send a
//! random amount (2 KiB–256 KiB) of the bench's incompressible data, read a random amount back,
//! see the target close, close, and start over.
//!
//! Every `--interval` seconds the churn pauses: no new connection starts, the live ones finish,
//! and after the tunnel has had a moment to tear streams down, the open fds of both children are
//! counted (the minimum over a quiet second, so a close still in flight does not count as a
//! leak while a real leak, which never goes away, does) and VmRSS read. Growth is judged after a
//! warm-up (20 % of the run, at least 10 s): the first sample after it is the baseline, the
//! median of the last three samples is compared against it, so one spike decides nothing.
//!
//! The verdict fails on: any fd growth; RSS growth above `--max-rss-growth`; any data
//! corruption; connection errors above 0.1 % of the connections (on a lossy path a stream can
//! be reset on purpose: the client resets streams on a session silent for 3 s, which a long run
//! of losses can, very rarely, cause; anything more frequent is a bug); a child that exits.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::path::Relay;
use super::procs::{check_all, fd_count, free_tcp_port, free_udp_port, status_mib, ChildProc};
use super::tunnel::traffic::{continues, random_data, Acceptor};
use super::{err, num, Progress};
use crate::cmd::{BenchSoakArgs, RunError};
use crate::proto::rng::Rng;

/// Bytes each way per connection: uniform in this range.
const SIZE_RANGE: (u64, u64) = (2 << 10, 256 << 10);
/// A connection that makes no progress for this long is an error.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a sample waits for the live connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause after the last connection closed before fds are counted (streams tear down).
const SETTLE: Duration = Duration::from_millis(500);
/// Window over which the minimum fd count is taken.
const QUIET: Duration = Duration::from_secs(1);
/// Samples whose median is compared with the baseline.
const LAST: usize = 3;
/// First error messages kept for the report.
const KEEP_ERRORS: usize = 5;
/// Connection errors tolerated: one per this many connections.
const ERROR_TOLERANCE: u64 = 1000;
/// The connection header: up length, down length, up offset, down offset (u32 LE each).
const HEADER: usize = 16;

/// One sample of both children.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Sample {
    pub t: f64,
    pub conns: u64,
    pub errors: u64,
    pub client_rss: f64,
    pub client_fds: u64,
    pub server_rss: f64,
    pub server_fds: u64,
    /// Goodput since the previous sample, both directions, MB/s.
    pub mbps: f64,
}

/// The growth of one series after warm-up: (baseline, median of the last samples).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Growth {
    pub base: f64,
    pub last: f64,
}

impl Growth {
    pub fn pct(&self) -> f64 {
        if self.base > 0.0 {
            (self.last - self.base) / self.base * 100.0
        } else {
            0.0
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Baseline (first sample at or after `warmup` s) and the median of the last [`LAST`] samples
/// from the baseline on; `None` if no sample follows the warm-up.
pub(super) fn growth(
    samples: &[Sample],
    warmup: f64,
    f: impl Fn(&Sample) -> f64,
) -> Option<Growth> {
    let b = samples.iter().position(|s| s.t >= warmup)?;
    let after = &samples[b..];
    let mut last: Vec<f64> = after[after.len().saturating_sub(LAST)..]
        .iter()
        .map(&f)
        .collect();
    Some(Growth {
        base: f(&after[0]),
        last: median(&mut last),
    })
}

/// The warm-up of a run of `total`: 20 %, at least 10 s.
pub(super) fn warmup(total: Duration) -> f64 {
    (total.as_secs_f64() * 0.2).max(10.0)
}

/// What the churn has done so far.
#[derive(Default)]
struct Counts {
    done: AtomicU64,
    errors: AtomicU64,
    corrupt: AtomicU64,
    bytes: AtomicU64,
    live: AtomicUsize,
    messages: Mutex<Vec<String>>,
}

impl Counts {
    fn error(&self, msg: String, corrupt: bool) {
        if corrupt {
            self.corrupt.fetch_add(1, Ordering::Relaxed);
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let mut m = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() < KEEP_ERRORS {
            m.push(msg);
        }
    }
}

/// The checking target: reads the header, checks the upload, sends the download, closes its
/// side, waits for the client's close. Errors go to `counts`.
fn start_target(data: Arc<Vec<u8>>, counts: Arc<Counts>) -> Result<Acceptor, RunError> {
    Acceptor::start(move |conn| {
        if let Err((msg, corrupt)) = serve(conn, &data) {
            counts.error(format!("target: {msg}"), corrupt);
        }
    })
}

/// Reads one series out of a sample.
type Series = fn(&Sample) -> f64;

/// `Err((message, corrupt))`.
type ConnResult = Result<(), (String, bool)>;

fn io(what: &'static str) -> impl Fn(std::io::Error) -> (String, bool) {
    move |e| (format!("{what}: {e}"), false)
}

fn serve(mut c: TcpStream, data: &[u8]) -> ConnResult {
    let _ = c.set_read_timeout(Some(IO_TIMEOUT));
    let _ = c.set_write_timeout(Some(IO_TIMEOUT));
    let mut h = [0u8; HEADER];
    if c.read_exact(&mut h).is_err() {
        // The bench's own wake-up connection at the end, or a connection the tunnel reset
        // before its first byte: the client side reports those.
        return Ok(());
    }
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as u64;
    let (up, down, off_up, off_down) = (word(0), word(4), word(8), word(12));
    receive(&mut c, data, off_up as usize, up, "upload")?;
    send(&mut c, data, off_down as usize, down).map_err(io("target write"))?;
    c.shutdown(Shutdown::Write).map_err(io("target shutdown"))?;
    expect_eof(&mut c, "target: the client sent more than announced")
}

/// Reads exactly `len` bytes that continue `data` at `off`.
fn receive(c: &mut TcpStream, data: &[u8], mut off: usize, len: u64, what: &str) -> ConnResult {
    let mut buf = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(left as usize);
        match c.read(&mut buf[..want]) {
            Ok(0) => {
                return Err((
                    format!(
                        "{what}: the connection ended after {} of {len} bytes",
                        len - left
                    ),
                    false,
                ))
            }
            Ok(n) => {
                if !continues(data, &mut off, &buf[..n]) {
                    return Err((format!("{what}: the data arrived corrupted"), true));
                }
                left -= n as u64;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                return Err((
                    format!("{what}: {e} after {} of {len} bytes", len - left),
                    false,
                ))
            }
        }
    }
    Ok(())
}

/// Writes `len` bytes of `data` from `off` on (wrapping).
fn send(c: &mut TcpStream, data: &[u8], mut off: usize, len: u64) -> std::io::Result<()> {
    let mut left = len as usize;
    while left > 0 {
        let at = off % data.len();
        let n = left.min(data.len() - at);
        c.write_all(&data[at..at + n])?;
        off += n;
        left -= n;
    }
    Ok(())
}

fn expect_eof(c: &mut TcpStream, extra: &str) -> ConnResult {
    let mut b = [0u8; 1];
    loop {
        match c.read(&mut b) {
            Ok(0) => return Ok(()),
            Ok(_) => return Err((extra.to_string(), true)),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err((format!("waiting for the close: {e}"), false)),
        }
    }
}

/// One connection of the churn through the client at `local`. Returns bytes moved.
fn one_conn(local: SocketAddr, data: &[u8], rng: &mut Rng) -> Result<u64, (String, bool)> {
    let (lo, hi) = SIZE_RANGE;
    let up = lo + rng.below(hi - lo + 1);
    let down = lo + rng.below(hi - lo + 1);
    let off_up = rng.below(data.len() as u64);
    let off_down = rng.below(data.len() as u64);
    let mut c =
        TcpStream::connect_timeout(&local, Duration::from_secs(5)).map_err(io("connect"))?;
    let _ = c.set_nodelay(true);
    let _ = c.set_read_timeout(Some(IO_TIMEOUT));
    let _ = c.set_write_timeout(Some(IO_TIMEOUT));
    let mut h = [0u8; HEADER];
    for (i, v) in [up, down, off_up, off_down].into_iter().enumerate() {
        h[i * 4..i * 4 + 4].copy_from_slice(&(v as u32).to_le_bytes());
    }
    c.write_all(&h).map_err(io("write header"))?;
    send(&mut c, data, off_up as usize, up).map_err(io("upload"))?;
    receive(&mut c, data, off_down as usize, down, "download")?;
    expect_eof(&mut c, "download: more bytes than announced")?;
    Ok(up + down)
}

/// A churn worker: connections one after another until `stop`, none started while `pause`.
fn worker(
    i: u32,
    local: SocketAddr,
    data: Arc<Vec<u8>>,
    counts: Arc<Counts>,
    pause: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    seed[4..14].copy_from_slice(b"kcptunsoak");
    let mut rng = Rng::from_seed(seed);
    while !stop.load(Ordering::Relaxed) {
        if pause.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        counts.live.fetch_add(1, Ordering::SeqCst);
        // Checked again: the sampler may have paused between the two loads.
        if pause.load(Ordering::SeqCst) {
            counts.live.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let r = one_conn(local, &data, &mut rng);
        counts.live.fetch_sub(1, Ordering::SeqCst);
        match r {
            Ok(b) => {
                counts.bytes.fetch_add(b, Ordering::Relaxed);
                counts.done.fetch_add(1, Ordering::Relaxed);
            }
            Err((msg, corrupt)) => {
                counts.done.fetch_add(1, Ordering::Relaxed);
                counts.error(format!("connection: {msg}"), corrupt);
            }
        }
    }
}

/// One line of the live series: the header for `None`.
fn row_text(s: Option<&Sample>) -> String {
    match s {
        None => format!(
            "{:>6}  {:>8}  {:>6}  {:>14}  {:>10}  {:>14}  {:>10}  {:>6}",
            "t (s)",
            "conns",
            "errors",
            "client RSS MiB",
            "client fds",
            "server RSS MiB",
            "server fds",
            "MB/s"
        ),
        Some(s) => format!(
            "{:>6.0}  {:>8}  {:>6}  {:>14.2}  {:>10}  {:>14.2}  {:>10}  {:>6}",
            s.t,
            s.conns,
            s.errors,
            s.client_rss,
            s.client_fds,
            s.server_rss,
            s.server_fds,
            num(s.mbps)
        ),
    }
}

/// `kcptun bench soak`.
pub(super) fn run(a: &BenchSoakArgs) -> Result<(), RunError> {
    let total = a.duration();
    let interval = Duration::from_secs(a.interval);
    let up = a.path_up.clone().unwrap_or_else(|| a.path.clone());
    let down = a.path_down.clone().unwrap_or_else(|| a.path.clone());
    let exe = std::env::current_exe()
        .map_err(|e| err(format!("bench soak: cannot find this executable: {e}")))?;
    let data = random_data();
    let counts = Arc::new(Counts::default());
    let target = start_target(data.clone(), counts.clone())?;

    let udp = free_udp_port()?;
    let server_addr = SocketAddr::from(([127, 0, 0, 1], udp));
    let relay = Relay::start(server_addr, up.clone(), down.clone(), 1)?;
    let local = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()?));
    let flags: Vec<String> = [
        "--key",
        "kcptun-soak",
        "--crypt",
        "aes",
        "--mode",
        "fast3",
        "--ds",
        "10",
        "--ps",
        "3",
        "--sndwnd",
        "1024",
        "--rcvwnd",
        "1024",
        "--nocomp",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut sargs = vec![
        "server".to_string(),
        "-l".into(),
        server_addr.to_string(),
        "-t".into(),
    ];
    sargs.push(target.addr.to_string());
    sargs.extend(flags.iter().cloned());
    let mut cargs = vec![
        "client".to_string(),
        "-l".into(),
        local.to_string(),
        "-r".into(),
    ];
    cargs.push(relay.addr().to_string());
    cargs.extend(flags);
    let mut server = ChildProc::spawn("soak server".into(), &exe, &sargs)?;
    let mut client = ChildProc::spawn("soak client".into(), &exe, &cargs)?;

    let warm = warmup(total);
    println!(
        "kcptun bench soak: {} s, {} workers, sample every {} s, warm-up {} s, max RSS growth {} %",
        num(total.as_secs_f64()),
        a.workers,
        a.interval,
        num(warm),
        a.max_rss_growth
    );
    println!("path up: {up}; path down: {down}");
    println!("tunnel: aes, fast3, FEC 10/3, windows 1024/1024, no compression; client pid {}, server pid {}", client.pid(), server.pid());

    // Wait for the tunnel to carry a first connection.
    let t_est = Instant::now();
    let mut rng = Rng::from_seed([9; 32]);
    loop {
        check_all(&mut [&mut server, &mut client])?;
        match one_conn(local, &data, &mut rng) {
            Ok(_) => break,
            Err((msg, _)) if t_est.elapsed() > Duration::from_secs(20) => {
                return Err(err(format!(
                    "bench soak: the tunnel did not carry a connection within 20 s ({msg})\nserver stderr:\n  {}\nclient stderr:\n  {}",
                    server.log_tail(),
                    client.log_tail()
                )))
            }
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    }

    let pause = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<JoinHandle<()>> = (0..a.workers)
        .map(|i| {
            let (d, c, p, s) = (data.clone(), counts.clone(), pause.clone(), stop.clone());
            thread::spawn(move || worker(i, local, d, c, p, s))
        })
        .collect();

    println!("{}", row_text(None));
    let mut progress = Progress::new();
    let start = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut failure = None;
    let mut k = 1u32;
    let mut last_bytes = 0u64;
    let mut last_t = 0.0f64;
    'run: loop {
        let due = (interval * k).min(total);
        while start.elapsed() < due {
            if let Err(e) = check_all(&mut [&mut server, &mut client]) {
                failure = Some(e);
                break 'run;
            }
            progress.show(&format!(
                "{:.0}/{:.0} s, {} connections, {} errors",
                start.elapsed().as_secs_f64(),
                total.as_secs_f64(),
                counts.done.load(Ordering::Relaxed),
                counts.errors.load(Ordering::Relaxed) + counts.corrupt.load(Ordering::Relaxed)
            ));
            thread::sleep((due - start.elapsed().min(due)).min(Duration::from_millis(200)));
        }
        // Quiesce: no new connections, the live ones finish, the tunnel tears them down.
        pause.store(true, Ordering::SeqCst);
        let t_drain = Instant::now();
        while counts.live.load(Ordering::SeqCst) > 0 && t_drain.elapsed() < DRAIN_TIMEOUT {
            thread::sleep(Duration::from_millis(10));
        }
        let t = due.as_secs_f64();
        let bytes = counts.bytes.load(Ordering::Relaxed);
        let mbps =
            (bytes - last_bytes) as f64 / (start.elapsed().as_secs_f64() - last_t).max(1e-3) / 1e6;
        last_bytes = bytes;
        last_t = start.elapsed().as_secs_f64();
        thread::sleep(SETTLE);
        let (cp, sp) = (client.pid(), server.pid());
        let (mut cf, mut sf) = (u64::MAX, u64::MAX);
        let t_quiet = Instant::now();
        while t_quiet.elapsed() < QUIET {
            cf = cf.min(fd_count(cp).unwrap_or(u64::MAX));
            sf = sf.min(fd_count(sp).unwrap_or(u64::MAX));
            thread::sleep(Duration::from_millis(100));
        }
        if let Err(e) = check_all(&mut [&mut server, &mut client]) {
            failure = Some(e);
            break 'run;
        }
        let s = Sample {
            t,
            conns: counts.done.load(Ordering::Relaxed),
            errors: counts.errors.load(Ordering::Relaxed) + counts.corrupt.load(Ordering::Relaxed),
            client_rss: status_mib(cp, "VmRSS").unwrap_or(0.0),
            client_fds: cf,
            server_rss: status_mib(sp, "VmRSS").unwrap_or(0.0),
            server_fds: sf,
            mbps,
        };
        pause.store(false, Ordering::SeqCst);
        progress.clear();
        println!("{}", row_text(Some(&s)));
        samples.push(s);
        if due >= total {
            break;
        }
        k += 1;
    }
    stop.store(true, Ordering::SeqCst);
    pause.store(false, Ordering::SeqCst);
    for w in workers {
        let _ = w.join();
    }
    progress.clear();
    let elapsed = start.elapsed().as_secs_f64();
    drop(progress);
    let stats = [("up", relay.up.snapshot()), ("down", relay.down.snapshot())];
    drop(client);
    drop(server);
    drop(relay);
    drop(target);
    if let Some(e) = failure {
        return Err(e);
    }

    // The report.
    println!();
    println!("series (every {} s from {} s):", a.interval, a.interval);
    let series = |name: &str, f: &dyn Fn(&Sample) -> String| {
        let v: Vec<String> = samples.iter().map(f).collect();
        println!("  {name}: {}", v.join(" "));
    };
    series("client RSS MiB", &|s| format!("{:.2}", s.client_rss));
    series("server RSS MiB", &|s| format!("{:.2}", s.server_rss));
    series("client fds", &|s| s.client_fds.to_string());
    series("server fds", &|s| s.server_fds.to_string());
    for (dir, [offered, delivered, lost, qdrop, reord]) in stats {
        println!(
            "path {dir}: {offered} datagrams offered, {delivered} delivered, {lost} lost ({:.2} %), {qdrop} queue drops, {reord} reordered",
            lost as f64 * 100.0 / offered.max(1) as f64
        );
    }
    let done = counts.done.load(Ordering::Relaxed);
    let errors = counts.errors.load(Ordering::Relaxed);
    let corrupt = counts.corrupt.load(Ordering::Relaxed);
    let bytes = counts.bytes.load(Ordering::Relaxed);
    println!(
        "connections: {done} ({:.0} per hour), {} MB moved ({} MB/s), {errors} errors, {corrupt} corrupted",
        done as f64 / elapsed * 3600.0,
        num(bytes as f64 / 1e6),
        num(bytes as f64 / elapsed / 1e6)
    );
    for m in counts
        .messages
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        println!("  error: {m}");
    }

    let mut fails = Vec::new();
    let checks: [(&str, Series, bool); 4] = [
        ("client RSS", |s| s.client_rss, false),
        ("server RSS", |s| s.server_rss, false),
        ("client fds", |s| s.client_fds as f64, true),
        ("server fds", |s| s.server_fds as f64, true),
    ];
    for (name, f, is_fd) in checks {
        let Some(g) = growth(&samples, warm, f) else {
            fails.push(format!("no sample after the {} s warm-up", num(warm)));
            break;
        };
        if is_fd {
            println!(
                "growth after warm-up: {name} {} → {} ({:+})",
                g.base,
                g.last,
                g.last - g.base
            );
            if g.last > g.base {
                fails.push(format!("{name} grew from {} to {}", g.base, g.last));
            }
        } else {
            println!(
                "growth after warm-up: {name} {:.2} → {:.2} MiB ({:+.1} %)",
                g.base,
                g.last,
                g.pct()
            );
            if g.pct() > f64::from(a.max_rss_growth) {
                fails.push(format!(
                    "{name} grew {:.1} % (limit {} %)",
                    g.pct(),
                    a.max_rss_growth
                ));
            }
        }
    }
    if done == 0 {
        fails.push("no connection completed".into());
    }
    if corrupt > 0 {
        fails.push(format!("{corrupt} connections carried corrupted data"));
    }
    let tolerated = done / ERROR_TOLERANCE;
    if errors > tolerated {
        fails.push(format!(
            "{errors} connection errors (tolerated: {tolerated}, 0.1 % of {done})"
        ));
    }
    if fails.is_empty() {
        println!("soak: PASS");
        Ok(())
    } else {
        println!("soak: FAIL: {}", fails.join("; "));
        Err(err(format!("bench soak failed: {}", fails.join("; "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: f64, rss: f64, fds: u64) -> Sample {
        Sample {
            t,
            conns: 0,
            errors: 0,
            client_rss: rss,
            client_fds: fds,
            server_rss: rss,
            server_fds: fds,
            mbps: 0.0,
        }
    }

    #[test]
    fn growth_is_baseline_after_warmup_against_median_of_last() {
        let v = [
            s(10.0, 50.0, 30),
            s(20.0, 10.0, 9),
            s(30.0, 10.5, 9),
            s(40.0, 11.0, 9),
            s(50.0, 30.0, 12),
            s(60.0, 11.2, 9),
        ];
        // Warm-up 12 s: the sample at 20 s is the baseline; the 50 s spike does not decide.
        let g = growth(&v, 12.0, |x| x.client_rss).unwrap();
        assert_eq!(
            g,
            Growth {
                base: 10.0,
                last: 11.2
            }
        );
        assert!((g.pct() - 12.0).abs() < 1e-9);
        let f = growth(&v, 12.0, |x| x.client_fds as f64).unwrap();
        assert_eq!(
            f,
            Growth {
                base: 9.0,
                last: 9.0
            }
        );
        assert!(growth(&v, 61.0, |x| x.client_rss).is_none());
        // A leak that stays shows.
        let w = [
            s(20.0, 10.0, 9),
            s(30.0, 10.0, 10),
            s(40.0, 10.0, 11),
            s(50.0, 10.0, 12),
        ];
        assert_eq!(
            growth(&w, 12.0, |x| x.server_fds as f64).unwrap().last,
            11.0
        );
    }

    #[test]
    fn warmup_is_a_fifth_but_at_least_ten_seconds() {
        assert_eq!(warmup(Duration::from_secs(60)), 12.0);
        assert_eq!(warmup(Duration::from_secs(3600)), 720.0);
        assert_eq!(warmup(Duration::from_secs(20)), 10.0);
    }

    #[test]
    fn a_churn_connection_through_the_target_checks_both_ways() {
        let data = random_data();
        let counts = Arc::new(Counts::default());
        let t = start_target(data.clone(), counts.clone()).unwrap();
        let mut rng = Rng::from_seed([3; 32]);
        for _ in 0..5 {
            let b = one_conn(t.addr, &data, &mut rng).unwrap();
            assert!(b >= 2 * SIZE_RANGE.0 && b <= 2 * SIZE_RANGE.1);
        }
        // A corrupted upload is seen by the target and the connection fails.
        let mut c = TcpStream::connect(t.addr).unwrap();
        let mut h = [0u8; HEADER];
        h[..4].copy_from_slice(&100u32.to_le_bytes());
        c.write_all(&h).unwrap();
        c.write_all(&[0xAA; 100]).unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        let t0 = Instant::now();
        while counts.corrupt.load(Ordering::Relaxed) == 0 && t0.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(counts.corrupt.load(Ordering::Relaxed), 1);
        assert_eq!(counts.errors.load(Ordering::Relaxed), 0);
    }
}
