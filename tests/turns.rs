//! The event loop's send budget, turn by turn: our client's loop runs in this process, stepped
//! one turn at a time against our server (a child process) on loopback. A window-bound transfer
//! must leave in bursts of at most 128 datagrams per turn (so that the loop reads its sockets
//! between bursts), and the rest must follow in the next turns: the transfer completes.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use kcptun::cmd::{launch, parse, Command};
use support::*;

/// The driver's `SEND_BUDGET`.
const BUDGET: u64 = 128;
/// Bytes the transfer moves.
const TOTAL: u64 = 8 << 20;

#[test]
fn a_session_sends_at_most_its_budget_per_turn_and_the_transfer_completes() {
    let _g = serial();
    // The target: reads and counts.
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let target_addr = target.local_addr().unwrap();
    let sunk = Arc::new(AtomicU64::new(0));
    let counter = sunk.clone();
    thread::spawn(move || {
        let (mut c, _) = target.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n @ 1..) = c.read(&mut buf) {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    let udp = free_udp_port();
    let tuning = [
        "--mode", "fast3", "--crypt", "none", "--nocomp", "--sndwnd", "1024", "--rcvwnd", "1024",
        "--ds", "0", "--ps", "0", "--quiet",
    ];
    let mut server_args = vec![
        "server".to_string(),
        "-l".to_string(),
        format!("127.0.0.1:{udp}"),
        "-t".to_string(),
        target_addr.to_string(),
    ];
    server_args.extend(tuning.iter().map(|s| s.to_string()));
    let mut server = Proc::spawn("our server", &ours(), &server_args);

    let listen = free_tcp_port();
    let mut argv = vec![
        "kcptun".to_string(),
        "client".to_string(),
        "-r".to_string(),
        format!("127.0.0.1:{udp}"),
        "-l".to_string(),
        format!("127.0.0.1:{listen}"),
    ];
    argv.extend(tuning.iter().map(|s| s.to_string()));
    let Command::Client(settings) = parse(argv.into_iter().map(Into::into).collect()).unwrap()
    else {
        panic!("not a client command line");
    };
    let mut client = launch::client_driver(&settings).unwrap();

    // The application: writes TOTAL bytes into the client, then closes.
    let writer = thread::spawn(move || {
        let mut c = TcpStream::connect(("127.0.0.1", listen)).unwrap();
        let chunk = vec![0x5au8; 1 << 16];
        let mut left = TOTAL;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            c.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
    });

    let (mut most, mut turns, mut full_turns) = (0, 0u64, 0u64);
    let t0 = Instant::now();
    while sunk.load(Ordering::Relaxed) < TOTAL {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the transfer stalled at {} of {TOTAL} bytes after {turns} turns\n{}",
            sunk.load(Ordering::Relaxed),
            logs(&mut [&mut server])
        );
        let before = client.snapshot().out_pkts;
        assert!(client.step(Duration::from_millis(200)).unwrap());
        let sent = client.snapshot().out_pkts - before;
        most = most.max(sent);
        turns += 1;
        full_turns += u64::from(sent == BUDGET);
    }
    writer.join().unwrap();
    println!("{turns} turns, {full_turns} of them full");
    assert!(
        most <= BUDGET,
        "a turn sent {most} datagrams (budget {BUDGET})"
    );
    assert!(
        full_turns >= 10,
        "only {full_turns} turns used the whole budget: the transfer never had more to send"
    );
}
