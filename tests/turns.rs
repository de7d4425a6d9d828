//! The event loop's send budget, turn by turn: our client's loop runs in this process, stepped
//! one turn at a time against our server (a child process) on loopback. A window-bound transfer
//! must leave in bursts of at most 128 datagrams per turn (so that the loop reads its sockets
//! between bursts), and the rest must follow in the next turns: the transfer completes, its data
//! checked at the target.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use kcptun::cmd::{launch, parse, Command};
use kcptun::io::driver::SEND_BUDGET;
use support::*;

/// Bytes the transfer moves (client to target, SHA-256 checked at the target).
const TOTAL: u64 = 8 * MIB;

#[test]
fn a_session_sends_at_most_its_budget_per_turn_and_the_transfer_completes() {
    let _g = serial();
    let target = Target::start();
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
        target.arg(),
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

    // The application, on its own thread: the loop under test runs on this one.
    let app = thread::spawn(move || transfer(local(listen), TOTAL, 0));

    let budget = SEND_BUDGET as u64;
    let (mut most, mut turns, mut full_turns) = (0, 0u64, 0u64);
    let t0 = Instant::now();
    while !app.is_finished() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the transfer stalled after {turns} turns\n{}",
            logs(&mut [&mut server])
        );
        let before = client.snapshot().out_pkts;
        assert!(client.step(Duration::from_millis(200)).unwrap());
        let sent = client.snapshot().out_pkts - before;
        most = most.max(sent);
        turns += 1;
        full_turns += u64::from(sent == budget);
    }
    let stats = app.join().unwrap().unwrap_or_else(|e| {
        panic!(
            "transfer through the stepped client: {e}\n{}",
            logs(&mut [&mut server])
        )
    });
    assert_eq!(stats.up, TOTAL);
    println!("{turns} turns, {full_turns} of them full");
    assert!(
        most <= budget,
        "a turn sent {most} datagrams (budget {budget})"
    );
    assert!(
        full_turns >= 10,
        "only {full_turns} turns used the whole budget: the transfer never had more to send"
    );
}
