//! Interoperability with Go kcptun (Debian's 2021 build, `/usr/bin/kcptun-client` and
//! `/usr/bin/kcptun-server`; SPEC §7.4, §8.3, §9).
//!
//! A pairwise matrix over direction (our client ⇄ Go server, Go client ⇄ our server) × every
//! cipher the 2021 build knows × FEC (10/3, off, 5/2) × compression (on, `--nocomp` on both
//! sides) × smux version (1, 2) × `--conn` (1, 4): every pair of values of any two factors appears
//! in some case, so each value appears in some case of each direction. Each case moves 8 MiB up
//! and 8 MiB down (over 4 concurrent connections when conn = 4), SHA-256 checked at both ends.
//!
//! smux version: the Go peer and our client get `--smuxver N`; our server gets none, so its
//! per-session v1/v2 detection is exercised.
//!
//! `KCPTUN_INTEROP_SELFCHECK=1` replaces our binary with Go's (Go ⇄ Go) to prove the harness
//! itself; the 2021 build cannot detect the smux version, so both sides get `--smuxver` then.
//! `KCPTUN_INTEROP_CASES=3,7` runs only those case numbers. `KCPTUN_BIN=/path/to/kcptun` tests
//! another build of ours (e.g. a release binary) instead of the one cargo built.
//! The MB/s table is printed (see it with `-- --nocapture`) and written to
//! `target/tmp/interop-matrix.txt`.

mod support;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::*;

const CIPHERS: &[&str] = &[
    "aes", "aes-128", "aes-192", "salsa20", "blowfish", "twofish", "cast5", "3des", "tea", "xtea",
    "xor", "sm4", "none",
];
const FECS: &[(u16, u16)] = &[(10, 3), (0, 0), (5, 2)];
const PER_CASE: u64 = 8 * MIB;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// Our client → Go server.
    OursToGo,
    /// Go client → our server.
    GoToOurs,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    n: usize,
    dir: Dir,
    cipher: &'static str,
    fec: (u16, u16),
    comp: bool,
    smux: u8,
    conn: usize,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.dir {
            Dir::OursToGo => "ours→go",
            Dir::GoToOurs => "go→ours",
        };
        write!(
            f,
            "#{:02} {dir:<8} {:<9} fec {:>2}/{:<1} {:<6} smux{} conn{}",
            self.n,
            self.cipher,
            self.fec.0,
            self.fec.1,
            if self.comp { "comp" } else { "nocomp" },
            self.smux,
            self.conn
        )
    }
}

/// A deterministic greedy all-pairs generator: returns rows of value indices (one per factor)
/// such that every pair of values of every two factors appears in some row.
fn pairwise(sizes: &[usize]) -> Vec<Vec<usize>> {
    let k = sizes.len();
    // uncovered[(i, a, j, b)] for i < j
    let mut uncovered = std::collections::BTreeSet::new();
    for i in 0..k {
        for j in i + 1..k {
            for a in 0..sizes[i] {
                for b in 0..sizes[j] {
                    uncovered.insert((i, a, j, b));
                }
            }
        }
    }
    let gain = |row: &[Option<usize>], f: usize, v: usize, unc: &std::collections::BTreeSet<_>| {
        (0..k)
            .filter(|&g| g != f)
            .filter_map(|g| row[g].map(|w| (g, w)))
            .filter(|&(g, w)| {
                let key = if f < g { (f, v, g, w) } else { (g, w, f, v) };
                unc.contains(&key)
            })
            .count()
    };
    let mut rng = 0x5eed_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut rows = Vec::new();
    while let Some(&(i, a, j, b)) = uncovered.iter().next() {
        let mut best: Option<(usize, Vec<usize>)> = None;
        for _ in 0..40 {
            let mut row: Vec<Option<usize>> = vec![None; k];
            row[i] = Some(a);
            row[j] = Some(b);
            let mut order: Vec<usize> = (0..k).filter(|&f| f != i && f != j).collect();
            for x in (1..order.len()).rev() {
                order.swap(x, next() as usize % (x + 1));
            }
            for &f in &order {
                let start = next() as usize % sizes[f];
                let v = (0..sizes[f])
                    .map(|d| (start + d) % sizes[f])
                    .max_by_key(|&v| gain(&row, f, v, &uncovered))
                    .unwrap();
                row[f] = Some(v);
            }
            let row: Vec<usize> = row.into_iter().map(Option::unwrap).collect();
            let mut covered = 0;
            for x in 0..k {
                for y in x + 1..k {
                    covered += usize::from(uncovered.contains(&(x, row[x], y, row[y])));
                }
            }
            if best.as_ref().map_or(true, |(c, _)| covered > *c) {
                best = Some((covered, row));
            }
        }
        let (_, row) = best.unwrap();
        for x in 0..k {
            for y in x + 1..k {
                uncovered.remove(&(x, row[x], y, row[y]));
            }
        }
        rows.push(row);
    }
    rows
}

fn cases() -> Vec<Case> {
    let sizes = [2, CIPHERS.len(), FECS.len(), 2, 2, 2];
    pairwise(&sizes)
        .into_iter()
        .enumerate()
        .map(|(n, r)| Case {
            n: n + 1,
            dir: [Dir::OursToGo, Dir::GoToOurs][r[0]],
            cipher: CIPHERS[r[1]],
            fec: FECS[r[2]],
            comp: r[3] == 0,
            smux: [1, 2][r[4]],
            conn: [1, 4][r[5]],
        })
        .collect()
}

#[test]
fn pairwise_matrix_covers_every_pair() {
    let sizes = [2, CIPHERS.len(), FECS.len(), 2, 2, 2];
    let rows = pairwise(&sizes);
    assert!(rows.len() <= 45, "{} cases", rows.len());
    for i in 0..sizes.len() {
        for j in i + 1..sizes.len() {
            for a in 0..sizes[i] {
                for b in 0..sizes[j] {
                    assert!(
                        rows.iter().any(|r| r[i] == a && r[j] == b),
                        "factor {i}={a} with factor {j}={b} missing"
                    );
                }
            }
        }
    }
    // Hence every value appears in some case of each direction.
    let cs = cases();
    for dir in [Dir::OursToGo, Dir::GoToOurs] {
        let mine: Vec<_> = cs.iter().filter(|c| c.dir == dir).collect();
        assert!(CIPHERS.iter().all(|k| mine.iter().any(|c| c.cipher == *k)));
        assert!(FECS.iter().all(|f| mine.iter().any(|c| c.fec == *f)));
        assert!([1, 2].iter().all(|v| mine.iter().any(|c| c.smux == *v)));
        assert!([1, 4].iter().all(|v| mine.iter().any(|c| c.conn == *v)));
        assert!([true, false]
            .iter()
            .all(|v| mine.iter().any(|c| c.comp == *v)));
    }
}

/// Which program plays "ours": our binary, or Go's in selfcheck mode.
fn selfcheck() -> bool {
    std::env::var("KCPTUN_INTEROP_SELFCHECK").is_ok_and(|v| v == "1")
}

/// (program, leading args) of one side.
fn side(go: bool, client: bool) -> (PathBuf, Vec<String>) {
    match (go, client) {
        (true, true) => (GO_CLIENT.into(), vec![]),
        (true, false) => (GO_SERVER.into(), vec![]),
        (false, true) => (ours(), vec!["client".into()]),
        (false, false) => (ours(), vec!["server".into()]),
    }
}

fn run_case(c: &Case, sc: bool) -> Result<Stats, String> {
    run_case_via(c, sc, None, None)
}

/// One case; with `impair`, the client reaches the server through a lossy [`Relay`].
/// `pause`: after the transfer, stay silent this long (past the sessions' memory release), then
/// move an eighth as much again over the same sessions.
fn run_case_via(
    c: &Case,
    sc: bool,
    impair: Option<Impair>,
    pause: Option<Duration>,
) -> Result<Stats, String> {
    let target = Target::start();
    let udp = free_udp_port();
    let local_port = free_tcp_port();
    let key = format!("interop key {}", c.n);
    // Go-style single-dash flags for the Go peer, double-dash for ours.
    let flags = |go: bool| -> Vec<String> {
        let d = if go { "-" } else { "--" };
        let mut v = vec![
            format!("{d}key"),
            key.clone(),
            format!("{d}crypt"),
            c.cipher.into(),
            format!("{d}mode"),
            "fast".into(),
            format!("{d}ds"),
            c.fec.0.to_string(),
            format!("{d}ps"),
            c.fec.1.to_string(),
        ];
        if !c.comp {
            v.push(format!("{d}nocomp"));
        }
        v
    };
    let (client_go, server_go) = match c.dir {
        Dir::OursToGo => (sc, true),
        Dir::GoToOurs => (true, sc),
    };
    // The server: the Go peer (or ours in selfcheck) gets --smuxver; our server detects it.
    let (prog, mut args) = side(server_go, false);
    let d = if server_go { "-" } else { "--" };
    args.extend([
        "-l".to_string(),
        format!("127.0.0.1:{udp}"),
        "-t".to_string(),
        target.arg(),
    ]);
    args.extend(flags(server_go));
    if server_go {
        args.extend([format!("{d}smuxver"), c.smux.to_string()]);
    }
    let mut server = Proc::spawn(&format!("server ({})", prog.display()), &prog, &args);

    let relay = impair.map(|i| Relay::start(local(udp), i));
    let remote = relay.as_ref().map_or(local(udp), |r| r.addr);
    let (prog, mut args) = side(client_go, true);
    let d = if client_go { "-" } else { "--" };
    args.extend([
        "-l".to_string(),
        format!("127.0.0.1:{local_port}"),
        "-r".to_string(),
        remote.to_string(),
        format!("{d}conn"),
        c.conn.to_string(),
        format!("{d}smuxver"),
        c.smux.to_string(),
    ]);
    args.extend(flags(client_go));
    let mut client = Proc::spawn(&format!("client ({})", prog.display()), &prog, &args);

    let dest = local(local_port);
    let fail = |e: String, s: &mut Proc, cl: &mut Proc| -> String {
        format!("case {c}: {e}\n{}", logs(&mut [cl, s]))
    };
    if let Err(e) = wait_for_tunnel_with(dest, Duration::from_secs(10), || {
        check_alive(&mut [&mut server, &mut client])
    }) {
        return Err(fail(e, &mut server, &mut client));
    }
    let mut r = transfer_many(dest, c.conn, PER_CASE, PER_CASE);
    if let (Ok(first), Some(p)) = (&r, pause) {
        std::thread::sleep(p);
        r = transfer_many(dest, c.conn, PER_CASE / 8, PER_CASE / 8).map(|s| Stats {
            up: first.up + s.up,
            down: first.down + s.down,
            elapsed: first.elapsed + s.elapsed,
        });
    }
    if let Some(relay) = &relay {
        eprintln!("case {c}: {}", relay.summary());
    }
    match r {
        Ok(s) => match check_alive(&mut [&mut server, &mut client]) {
            Ok(()) => Ok(s),
            Err(e) => Err(fail(e, &mut server, &mut client)),
        },
        Err(e) => Err(fail(e, &mut server, &mut client)),
    }
}

#[test]
fn interop_matrix() {
    require_go();
    let _g = serial();
    let sc = selfcheck();
    let only: Option<Vec<usize>> = std::env::var("KCPTUN_INTEROP_CASES")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect());
    let all = cases();
    let t0 = Instant::now();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for c in all
        .iter()
        .filter(|c| only.as_ref().map_or(true, |o| o.contains(&c.n)))
    {
        let mut r = run_case(c, sc);
        // A port taken between our probe and the child's bind (other tests run on this
        // machine too): retry once with fresh ports.
        if r.as_ref().is_err_and(|e| e.contains("in use")) {
            eprintln!("{c}: port collision, retrying");
            r = run_case(c, sc);
        }
        match &r {
            Ok(s) => eprintln!("{c}: {:.1} MB/s", s.mbps()),
            Err(e) => {
                eprintln!("{c}: FAILED: {}", e.lines().next().unwrap_or(""));
                failures.push(e.clone());
            }
        }
        rows.push((*c, r));
    }
    let mode = if sc {
        "SELFCHECK: Go 2021 ⇄ Go 2021 (\"ours\" is Go)"
    } else {
        "ours ⇄ Go 2021"
    };
    let mut table = format!(
        "\ninterop matrix, {mode}: {} cases, {:.1} s, 8 MiB up + 8 MiB down each\n",
        rows.len(),
        t0.elapsed().as_secs_f64()
    );
    for (c, r) in &rows {
        let v = match r {
            Ok(s) => format!("{:>7.1} MB/s", s.mbps()),
            Err(_) => "   FAILED".to_string(),
        };
        table.push_str(&format!("  {c}  {v}\n"));
    }
    eprintln!("{table}");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-matrix.txt");
    let _ = std::fs::write(&out, &table);
    eprintln!("(table also written to {})", out.display());
    if !failures.is_empty() {
        // Full logs for the first three failures; one line for the rest.
        let mut msg = format!("{} of {} cases failed\n", failures.len(), rows.len());
        for (i, f) in failures.iter().enumerate() {
            if i < 3 {
                msg.push_str(f);
                msg.push('\n');
            } else {
                msg.push_str(f.lines().next().unwrap_or(""));
                msg.push('\n');
            }
        }
        panic!("{msg}{table}");
    }
}

/// Cross-implementation FEC recovery and retransmission: 8 MiB each way through 10% loss, 1%
/// duplicates and 5% of datagrams held back 2–15 ms, in both directions of the pairing.
#[test]
fn interop_lossy_link() {
    require_go();
    let _g = serial();
    let sc = selfcheck();
    let cases = [
        Case {
            n: 101,
            dir: Dir::OursToGo,
            cipher: "aes",
            fec: (10, 3),
            comp: true,
            smux: 1,
            conn: 1,
        },
        Case {
            n: 102,
            dir: Dir::GoToOurs,
            cipher: "salsa20",
            fec: (10, 3),
            comp: true,
            smux: 2,
            conn: 2,
        },
    ];
    run_lossy(&cases, sc, None);
}

/// Runs `cases` through the lossy relay (10 % loss, 1 % duplication, 5 % held back 2-15 ms),
/// optionally with a pause and a second transfer (see [`run_case_via`]); fails with every
/// failing case.
fn run_lossy(cases: &[Case], sc: bool, pause: Option<Duration>) {
    let mut failures = Vec::new();
    for c in cases {
        let imp = Impair {
            loss: 0.10,
            duplicate: 0.01,
            reorder: 0.05,
            hold_ms: (2, 15),
            seed: c.n as u64,
        };
        match run_case_via(c, sc, Some(imp), pause) {
            Ok(s) => eprintln!("case {c} through 10% loss: {:.1} MB/s", s.mbps()),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// the harness itself (no kcptun processes)

/// A TCP proxy to `to` that flips the byte at `at` of the direction `up` (client → target) or
/// down; returns its address.
fn corrupting_proxy(to: std::net::SocketAddr, up: bool, at: u64) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let s = std::net::TcpStream::connect(to).unwrap();
            let pipe = move |mut a: std::net::TcpStream, mut b: std::net::TcpStream, flip: bool| {
                move || {
                    let mut buf = vec![0u8; 16384];
                    let mut pos = 0u64;
                    while let Ok(n) = a.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if flip && (pos..pos + n as u64).contains(&at) {
                            buf[(at - pos) as usize] ^= 0x20;
                        }
                        pos += n as u64;
                        if b.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = b.shutdown(std::net::Shutdown::Write);
                }
            };
            std::thread::spawn(pipe(c.try_clone().unwrap(), s.try_clone().unwrap(), up));
            std::thread::spawn(pipe(s, c, !up));
        }
    });
    addr
}

#[test]
fn harness_transfer_checks_both_directions() {
    let t = Target::start();
    let s = transfer(t.addr(), 8 * MIB, 8 * MIB).unwrap();
    assert_eq!((s.up, s.down), (8 * MIB, 8 * MIB));
    transfer_many(t.addr(), 4, 3 * MIB + 1, MIB + 3).unwrap();
    transfer(t.addr(), 0, 0).unwrap();
    // 24-byte header + 1 MiB: the flip lands in the payload.
    let e = transfer(corrupting_proxy(t.addr(), true, 24 + 777_777), MIB, MIB).unwrap_err();
    assert!(e.contains("up data corrupted"), "{e}");
    let e = transfer(corrupting_proxy(t.addr(), false, 123_456), MIB, MIB).unwrap_err();
    assert!(
        e.contains("down data corrupted") && e.contains("offset 123456"),
        "{e}"
    );
    let recs = t.records.lock().unwrap();
    assert!(recs
        .iter()
        .any(|r| r.received == 8 * MIB && r.error.is_none()));
}

#[test]
fn harness_half_close_and_unix_targets() {
    let t = Target::start_after_eof();
    let o = Opts {
        half_close: true,
        ..Opts::default()
    };
    transfer_with(t.addr(), MIB, 2 * MIB, o).unwrap();
    // Without shutdown(Write) this target never answers: the transfer must time out, not hang.
    let o = Opts {
        deadline: Duration::from_secs(2),
        idle: Duration::from_millis(500),
        half_close: false,
    };
    let e = transfer_with(t.addr(), 1000, 1000, o).unwrap_err();
    assert!(e.contains("socket timeout"), "{e}");
    let dir = TempDir::new("harness");
    let u = Target::start_unix(&dir.join("t.sock"));
    transfer(dir.join("t.sock"), MIB, MIB).unwrap();
    assert_eq!(u.conns.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn harness_relay_impairs_as_configured() {
    // A UDP echo server behind the relay: 10% loss in each direction → about 19% of round trips
    // lost, some reordered, none corrupted.
    let echo = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let eaddr = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut b) {
            let _ = echo.send_to(&b[..n], from);
        }
    });
    let relay = Relay::start(
        eaddr,
        Impair {
            loss: 0.10,
            duplicate: 0.0,
            reorder: 0.05,
            hold_ms: (2, 10),
            seed: 7,
        },
    );
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.connect(relay.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let n = 2000u32;
    let rx = c.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut b = [0u8; 16];
        while let Ok(k) = rx.recv(&mut b) {
            assert_eq!(k, 4);
            got.push(u32::from_le_bytes(b[..4].try_into().unwrap()));
        }
        got
    });
    for i in 0..n {
        c.send(&i.to_le_bytes()).unwrap();
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let got = reader.join().unwrap();
    let lost = n as usize - got.len();
    let inversions = got.windows(2).filter(|w| w[1] < w[0]).count();
    eprintln!(
        "relay self-test: {} of {n} echoed, {inversions} inversions; {}",
        got.len(),
        relay.summary()
    );
    assert!((200..=600).contains(&lost), "lost {lost} of {n}");
    assert!(inversions > 10, "{inversions} inversions");
}

/// After a quiet spell our sessions give their buffers back: a half-filled FEC group is
/// abandoned (its numbers skipped), the decoder's groups dropped, KCP's receive ring freed. The Go
/// peer must take that as ordinary loss: through 10 % loss (FEC 10/3 both ways), a transfer
/// after a 4 s pause (twice the release delay) still arrives intact, SHA-256 checked.
#[test]
fn interop_transfer_after_quiet_release_through_loss() {
    require_go();
    let _g = serial();
    let sc = selfcheck();
    let cases = [
        Case {
            n: 111,
            dir: Dir::OursToGo,
            cipher: "aes",
            fec: (10, 3),
            comp: true,
            smux: 1,
            conn: 1,
        },
        Case {
            n: 112,
            dir: Dir::GoToOurs,
            cipher: "aes",
            fec: (10, 3),
            comp: false,
            smux: 1,
            conn: 1,
        },
    ];
    run_lossy(&cases, sc, Some(Duration::from_secs(4)));
}
