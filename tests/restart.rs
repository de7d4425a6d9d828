//! Recovery after a server restart, in every case we know of, and after a long black hole.
//!
//! Each case runs a server and our client (`-key K -crypt aes -mode fast2`, defaults otherwise),
//! puts the session in a state (one tiny request, killed 0.3 s after it was established, or in
//! the middle of a bulk transfer), SIGKILLs the server, starts it again on the same port after a
//! gap, and measures how long until a new connection through the same client answers. The
//! servers: ours, Debian's Go kcptun (smux v1) and Debian's Go kcptun with `-smuxver 2` (our
//! client with the matching `--smuxver`). Also measured: Go's own client against our restarted
//! server, and a new connection after a 45 s black hole (every datagram dropped both ways).
//!
//! The slow cases (gaps of 10 s and 40 s, the 45 s black hole, Go's client) run concurrently,
//! each in its own thread with its own ports, so the whole matrix takes about a minute. Every
//! measured time is printed (`restart:` lines, then a table), then the bounds are asserted.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// Flags both ends of every case take (Go's spelling; ours accepts it too).
const COMMON: [&str; 6] = ["-key", "restart-matrix", "-crypt", "aes", "-mode", "fast2"];
/// Required: a new connection answers within this long after the restart.
const LIMIT: Duration = Duration::from_secs(5);
/// Our server, our client: the aim is under 1 s; this bound leaves room for a loaded machine.
const LIMIT_OURS: Duration = Duration::from_millis(2500);
/// After the black hole lifts.
const LIMIT_BLACKHOLE: Duration = Duration::from_secs(2);

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Ours,
    GoV1,
    GoV2,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Ours => "our server",
            Server::GoV1 => "Go server (smux v1)",
            Server::GoV2 => "Go server -smuxver 2",
        }
    }

    fn args(self, udp: u16, target: &str) -> Vec<String> {
        let mut a = strs(&["-l", &format!("127.0.0.1:{udp}"), "-t", target]);
        a.extend(strs(&COMMON));
        if self == Server::GoV2 {
            a.extend(strs(&["-smuxver", "2"]));
        }
        a
    }

    fn spawn(self, args: &[String], log: &Path) -> Proc {
        match self {
            Server::Ours => {
                let mut full = vec!["server".to_string()];
                full.extend_from_slice(args);
                Proc::spawn_logged("our server", &ours(), &full, log)
            }
            Server::GoV1 | Server::GoV2 => {
                Proc::spawn_logged(self.name(), Path::new(GO_SERVER), args, log)
            }
        }
    }
}

/// What the session carried when the server was killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Before {
    /// One tiny request and its answer (a handful of segments), then the kill.
    Tiny,
    /// Killed 0.3 s after the session was established.
    Early,
    /// Killed in the middle of a bulk transfer.
    Bulk,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    server: Server,
    before: Before,
    gap: Duration,
}

/// One measured case.
struct Outcome {
    label: String,
    /// From the restart to the end of the first connection attempt, and whether it answered.
    first: (Duration, bool),
    /// From the restart to the first answered connection (`None`: none within the deadline).
    answered: Option<Duration>,
    limit: Duration,
    /// Anything else that went wrong (setup, or the transfer after recovery).
    problem: Option<String>,
    logs: String,
}

/// `-l 127.0.0.1:<lp> -r 127.0.0.1:<udp>` and [`COMMON`]: what any client (ours or Go's) takes.
fn client_base(lp: u16, udp: u16) -> Vec<String> {
    let mut a = strs(&[
        "-l",
        &format!("127.0.0.1:{lp}"),
        "-r",
        &format!("127.0.0.1:{udp}"),
    ]);
    a.extend(strs(&COMMON));
    a
}

/// Our client's arguments, with the `--smuxver` that matches `server`.
fn client_args(lp: u16, udp: u16, server: Server) -> Vec<String> {
    let mut a = vec!["client".to_string()];
    a.extend(client_base(lp, udp));
    match server {
        Server::Ours => {}
        Server::GoV1 => a.extend(strs(&["--smuxver", "1"])),
        Server::GoV2 => a.extend(strs(&["--smuxver", "2"])),
    }
    a
}

/// One short round trip (16 bytes each way) with `per_try` as its whole budget.
fn round_trip(dest: &Dest, per_try: Duration) -> Result<Stats, String> {
    transfer_with(
        dest.clone(),
        16,
        16,
        Opts {
            deadline: per_try,
            idle: per_try,
            half_close: false,
        },
    )
}

/// New connections every 50 ms (each given 1.5 s) from `t0` until one answers or `deadline`
/// passes; returns the first attempt's end and outcome, and when one answered.
fn measure(
    dest: &Dest,
    t0: Instant,
    deadline: Duration,
    mut alive: impl FnMut() -> Result<(), String>,
) -> ((Duration, bool), Option<Duration>) {
    let mut first = None;
    loop {
        if alive().is_err() {
            return (first.unwrap_or((t0.elapsed(), false)), None);
        }
        let ok = round_trip(dest, Duration::from_millis(1500)).is_ok();
        let at = t0.elapsed();
        first.get_or_insert((at, ok));
        if ok {
            return (first.unwrap_or((at, ok)), Some(at));
        }
        if at >= deadline {
            return (first.unwrap_or((at, false)), None);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// One case in progress: a server (`kind`, restartable with the same arguments and log), a
/// client, and where to connect.
struct Run {
    label: String,
    limit: Duration,
    kind: Server,
    sargs: Vec<String>,
    slog: std::path::PathBuf,
    server: Proc,
    client: Proc,
    dest: Dest,
    _target: Target,
    _dir: TempDir,
}

impl Run {
    /// Starts `kind` on a fresh port with a fresh target, and the client `client(lp, udp)` gives
    /// (`udp` is the server's port, or whatever `via(udp)` puts in front of it).
    fn start(
        label: String,
        limit: Duration,
        kind: Server,
        via: impl FnOnce(u16) -> u16,
        client: impl FnOnce(u16, u16) -> Proc,
    ) -> Run {
        let target = Target::start();
        let udp = free_udp_port();
        let lp = free_tcp_port();
        let dir = TempDir::new("restart");
        let slog = dir.join("server.log");
        let sargs = kind.args(udp, &target.arg());
        let server = kind.spawn(&sargs, &slog);
        let client = client(lp, via(udp));
        Run {
            label,
            limit,
            kind,
            sargs,
            slog,
            server,
            client,
            dest: local(lp).into(),
            _target: target,
            _dir: dir,
        }
    }

    /// Until a round trip through the tunnel works (30 s at most).
    fn ready(&mut self) -> Result<(), String> {
        let (s, c) = (&mut self.server, &mut self.client);
        wait_for_tunnel_with(self.dest.clone(), Duration::from_secs(30), || {
            check_alive(&mut [&mut *s, &mut *c])
        })
        .map(|_| ())
    }

    /// [`Run::ready`], then one tiny request and its answer.
    fn tiny(&mut self) -> Result<(), String> {
        self.ready()?;
        transfer(self.dest.clone(), 100, 1500).map(|_| ())
    }

    /// SIGKILL, `gap`, and the same server again on the same port.
    fn restart_server(&mut self, gap: Duration) {
        self.server.kill();
        thread::sleep(gap);
        self.server = self.kind.spawn(&self.sargs, &self.slog);
    }

    fn logs(&mut self) -> String {
        logs(&mut [&mut self.client, &mut self.server])
    }

    /// The case could not even start.
    fn failed(mut self, e: String) -> Outcome {
        Outcome {
            first: (Duration::ZERO, false),
            answered: None,
            limit: self.limit,
            problem: Some(format!("setup failed: {e}")),
            logs: self.logs(),
            label: self.label,
        }
    }

    /// [`measure`] from `t0`; with `check`, a full transfer must work after the recovery.
    fn outcome(mut self, t0: Instant, deadline: Duration, check: bool) -> Outcome {
        let (first, answered) = {
            let (s, c) = (&mut self.server, &mut self.client);
            measure(&self.dest, t0, deadline, || {
                check_alive(&mut [&mut *s, &mut *c])
            })
        };
        let problem = answered.filter(|_| check).and_then(|_| {
            transfer(self.dest.clone(), 256 * 1024, 256 * 1024)
                .err()
                .map(|e| format!("transfer after recovery failed: {e}"))
        });
        Outcome {
            first,
            answered,
            limit: self.limit,
            problem,
            logs: self.logs(),
            label: self.label,
        }
    }
}

fn our_client(server: Server) -> impl FnOnce(u16, u16) -> Proc {
    move |lp, udp| Proc::spawn("our client", &ours(), &client_args(lp, udp, server))
}

/// A server restart with our client: see the module doc.
fn restart_case(c: Case) -> Outcome {
    let label = format!(
        "{}, {:?}, gap {:.1} s",
        c.server.name(),
        c.before,
        c.gap.as_secs_f64()
    );
    let limit = if c.server == Server::Ours {
        LIMIT_OURS
    } else {
        LIMIT
    };
    let mut run = Run::start(label, limit, c.server, |u| u, our_client(c.server));
    let mut bulk = None;
    let prep = match c.before {
        Before::Tiny => run.tiny(),
        Before::Early => {
            // Let both ends start without a session, so that the first connection opens it.
            thread::sleep(Duration::from_millis(500));
            let est = Instant::now();
            let r = run.ready();
            thread::sleep(Duration::from_millis(300).saturating_sub(est.elapsed()));
            r
        }
        Before::Bulk => run.ready().map(|_| {
            let d = run.dest.clone();
            bulk = Some(thread::spawn(move || {
                let o = Opts {
                    deadline: Duration::from_secs(20),
                    idle: Duration::from_secs(10),
                    half_close: false,
                };
                transfer_with(d, 1 << 30, 1 << 30, o).err()
            }));
            thread::sleep(Duration::from_millis(600));
        }),
    };
    if let Err(e) = prep {
        return run.failed(e);
    }
    run.restart_server(c.gap);
    let o = run.outcome(Instant::now(), Duration::from_secs(30), true);
    if let Some(h) = bulk {
        if let Ok(Some(e)) = h.join() {
            eprintln!(
                "restart: {}: the bulk transfer ended as expected: {e}",
                o.label
            );
        }
    }
    o
}

/// Debian's Go client against our server, restarted after 1 s: measured and reported (Go's
/// client notices only through smux's keep-alive timeout, see the README).
fn go_client_case() -> Outcome {
    let go_client =
        |lp: u16, udp: u16| Proc::spawn("Go client", Path::new(GO_CLIENT), &client_base(lp, udp));
    let label = "Go client, our server, Tiny, gap 1.0 s".to_string();
    let mut run = Run::start(label, GO_CLIENT_LIMIT, Server::Ours, |u| u, go_client);
    if let Err(e) = run.tiny() {
        return run.failed(e);
    }
    run.restart_server(Duration::from_secs(1));
    run.outcome(Instant::now(), Duration::from_secs(110), false)
}

/// Go's client recovers through its smux keep-alive check (every 30 s, closing after a whole
/// period without a frame): 30 to 60 s after the restart, or up to 90 s; the bound leaves slack.
const GO_CLIENT_LIMIT: Duration = Duration::from_secs(100);

/// Our client and server through a relay that drops every datagram for 45 s, then forwards
/// again: a new connection must answer within [`LIMIT_BLACKHOLE`].
fn blackhole_case() -> Outcome {
    let relay = Arc::new(Mutex::new(None::<Relay>));
    let r2 = relay.clone();
    let via = move |udp: u16| {
        let r = Relay::start(local(udp), Impair::none());
        let port = r.addr.port();
        *r2.lock().unwrap() = Some(r);
        port
    };
    let label = "our server, Tiny, 45 s black hole".to_string();
    let mut run = Run::start(
        label,
        LIMIT_BLACKHOLE,
        Server::Ours,
        via,
        our_client(Server::Ours),
    );
    let relay = relay.lock().unwrap().take().expect("relay started");
    if let Err(e) = run.tiny() {
        return run.failed(e);
    }
    relay.set_blackhole(true);
    thread::sleep(Duration::from_secs(45));
    relay.set_blackhole(false);
    let mut o = run.outcome(Instant::now(), Duration::from_secs(30), false);
    o.logs = format!("{}\n{}", relay.summary(), o.logs);
    o
}

/// Measured alongside the matrix (cargo runs the two tests in parallel): it takes a minute.
#[test]
fn go_client_against_our_restarted_server() {
    require_go();
    let o = go_client_case();
    eprintln!("{}", o.logs);
    report(&[o]);
}

#[test]
fn restart_matrix_and_blackhole() {
    require_go();
    let mut cases = Vec::new();
    // The slowest first, so that everything else runs while they wait.
    for gap_ms in [40_000, 10_000] {
        for server in [Server::Ours, Server::GoV1, Server::GoV2] {
            cases.push(Case {
                server,
                before: Before::Tiny,
                gap: Duration::from_millis(gap_ms),
            });
        }
    }
    for (before, gap_ms) in [
        (Before::Tiny, 1000),
        (Before::Early, 1000),
        (Before::Bulk, 1000),
        (Before::Tiny, 200),
        (Before::Bulk, 200),
    ] {
        for server in [Server::Ours, Server::GoV1, Server::GoV2] {
            cases.push(Case {
                server,
                before,
                gap: Duration::from_millis(gap_ms),
            });
        }
    }
    let results: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let mut hs = Vec::new();
    {
        let r = results.clone();
        hs.push(thread::spawn(move || {
            let o = blackhole_case();
            r.lock().unwrap().push(o);
        }));
    }
    for c in cases {
        let r = results.clone();
        hs.push(thread::spawn(move || {
            let o = restart_case(c);
            r.lock().unwrap().push(o);
        }));
        // Staggered starts: the bulk transfers and process start-ups do not all coincide.
        thread::sleep(Duration::from_millis(300));
    }
    for h in hs {
        h.join().expect("case thread panicked");
    }
    let mut results = std::mem::take(&mut *results.lock().unwrap());
    results.sort_by(|a, b| a.label.cmp(&b.label));
    report(&results);
}

/// Prints the table of outcomes, then fails naming every case over its bound, with its logs.
fn report(results: &[Outcome]) {
    eprintln!(
        "restart: {:<48} {:>22} {:>12}",
        "case", "first try", "answered"
    );
    for o in results {
        eprintln!(
            "restart: {:<48} {:>13} {:>6.2} s {:>10}",
            o.label,
            if o.first.1 { "answered" } else { "failed" },
            o.first.0.as_secs_f64(),
            o.answered
                .map_or("never".to_string(), |d| format!("{:.2} s", d.as_secs_f64()))
        );
    }
    let mut failures = Vec::new();
    for o in results {
        let ok = o.answered.is_some_and(|d| d <= o.limit) && o.problem.is_none();
        if !ok {
            failures.push(format!(
                "{}: a new connection answered {} (limit {:.1} s){}\n{}",
                o.label,
                o.answered.map_or("never".to_string(), |d| format!(
                    "after {:.2} s",
                    d.as_secs_f64()
                )),
                o.limit.as_secs_f64(),
                o.problem
                    .as_ref()
                    .map_or(String::new(), |p| format!("; {p}")),
                o.logs
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A healthy session is not killed by a stale datagram: the first datagram of each direction
/// (the client's carries `una` 0) is replayed 1.5 s after it was first sent, after 1 MiB moved
/// each way; a stream opened before the replay must carry its data after it, and neither end
/// may take its peer for a restarted one.
#[test]
fn stale_first_datagram_replayed_late_keeps_the_session() {
    let target = Target::start();
    let udp = free_udp_port();
    let lp = free_tcp_port();
    let dir = TempDir::new("replay");
    let sargs = Server::Ours.args(udp, &target.arg());
    let mut server = Server::Ours.spawn(&sargs, &dir.join("server.log"));
    let relay = Relay::start(local(udp), Impair::none());
    let mut client = Proc::spawn(
        "our client",
        &ours(),
        &client_args(lp, relay.addr.port(), Server::Ours),
    );
    let dest: Dest = local(lp).into();
    let fail = |what: &str, e: &dyn std::fmt::Display, s: &mut Proc, c: &mut Proc| -> ! {
        panic!("{what}: {e}\n{}", logs(&mut [c, s]))
    };
    let r = {
        let (s, c) = (&mut server, &mut client);
        wait_for_tunnel_with(dest.clone(), Duration::from_secs(30), || {
            check_alive(&mut [&mut *s, &mut *c])
        })
    };
    if let Err(e) = r {
        fail("tunnel not ready", &e, &mut server, &mut client);
    }
    if let Err(e) = transfer(dest.clone(), MIB, MIB) {
        fail("1 MiB each way", &e, &mut server, &mut client);
    }
    // A stream that lives across the replay: header and half its data now, the rest after.
    let seed = 0x5eed_u64;
    let (up, down) = (32u64, 16u64);
    let mut data = [0u8; 32];
    Stream::new(seed).fill(&mut data);
    let mut conn = Conn::connect(&dest, Duration::from_secs(10))
        .unwrap_or_else(|e| fail("connect", &e, &mut server, &mut client));
    let mut hdr = [0u8; 24];
    hdr[0..8].copy_from_slice(&up.to_le_bytes());
    hdr[8..16].copy_from_slice(&down.to_le_bytes());
    hdr[16..24].copy_from_slice(&seed.to_le_bytes());
    conn.write_all(&hdr)
        .and_then(|_| conn.write_all(&data[..16]))
        .unwrap_or_else(|e| fail("first half", &e, &mut server, &mut client));

    let first = relay.first_seen().expect("the relay saw the session start");
    let late = first + Duration::from_millis(1500);
    thread::sleep(late.saturating_duration_since(Instant::now()));
    eprintln!(
        "restart: replaying the first datagrams {:.2} s after the first was sent",
        first.elapsed().as_secs_f64()
    );
    assert_eq!(relay.replay_first(), 2, "both first datagrams replayed");
    // Longer than a confirmation needs (two signs at least 100 ms apart).
    thread::sleep(Duration::from_secs(1));

    conn.write_all(&data[16..])
        .unwrap_or_else(|e| fail("second half", &e, &mut server, &mut client));
    let mut reply = vec![0u8; down as usize + 40];
    conn.read_exact(&mut reply)
        .unwrap_or_else(|e| fail("reply", &e, &mut server, &mut client));
    let mut expect = vec![0u8; down as usize];
    Stream::new(!seed).fill(&mut expect);
    assert_eq!(&reply[..down as usize], &expect[..], "down data");
    let trailer = &reply[down as usize..];
    assert_eq!(
        u64::from_le_bytes(trailer[32..40].try_into().unwrap()),
        up,
        "the target received the whole stream"
    );
    {
        use sha2::{Digest, Sha256};
        let sha: [u8; 32] = Sha256::digest(data).into();
        assert_eq!(&trailer[..32], &sha[..], "up data");
    }
    if let Err(e) = transfer(dest.clone(), 64 * 1024, 64 * 1024) {
        fail("transfer after the replay", &e, &mut server, &mut client);
    }
    let text = logs(&mut [&mut client, &mut server]);
    assert!(
        !text.contains("peer restarted"),
        "a session was taken for a restarted peer after the replay\n{text}"
    );
    assert!(
        relay
            .counts
            .forwarded
            .load(std::sync::atomic::Ordering::Relaxed)
            > 100
    );
}
