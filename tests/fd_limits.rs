//! Running out of descriptors: the server survives, gives every descriptor back and writes at most
//! one line per second per cause (with the count of the ones left out); at start-up the open-files
//! soft limit is raised to the hard limit.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const PRLIMIT: &str = "/usr/bin/prlimit";

fn require_prlimit() {
    assert!(
        Path::new(PRLIMIT).is_file(),
        "{PRLIMIT} not found: install it with `apt-get install -y util-linux`"
    );
}

/// `kcptun server` under `prlimit --nofile=SOFT:HARD`.
fn server_limited(limit: &str, args: &[String]) -> Proc {
    let mut full = vec![format!("--nofile={limit}"), "--".into()];
    full.push(ours().display().to_string());
    full.push("server".into());
    full.extend_from_slice(args);
    Proc::spawn("our server", Path::new(PRLIMIT), &full)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// An echo target on loopback: every connection gets back what it sends.
fn echo_target() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            thread::spawn(move || {
                let mut b = [0u8; 4096];
                while let Ok(n) = c.read(&mut b) {
                    if n == 0 || c.write_all(&b[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// One echoed round trip through the client's local port; `true` when it came back whole.
fn echo_once(port: u16, msg: &[u8], timeout: Duration) -> bool {
    let Ok(mut c) = TcpStream::connect(local(port)) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(timeout));
    if c.write_all(msg).is_err() {
        return false;
    }
    let mut got = vec![0u8; msg.len()];
    c.read_exact(&mut got).is_ok() && got == msg
}

#[test]
fn descriptor_exhaustion_is_survived_and_logged_once_a_second() {
    require_prlimit();
    let target = echo_target();
    let udp = free_udp_port();
    let lp = free_tcp_port();
    let mut server = server_limited(
        "64:64",
        &strs(&["-l", &format!("127.0.0.1:{udp}"), "-t", &target.to_string()]),
    );
    let mut full = strs(&[
        "client",
        "-l",
        &format!("127.0.0.1:{lp}"),
        "-r",
        &format!("127.0.0.1:{udp}"),
    ]);
    full.push("--quiet".into());
    let mut client = Proc::spawn("our client", &ours(), &full);
    let logs = |s: &mut Proc, c: &mut Proc| support::logs(&mut [s, c]);

    let deadline = Instant::now() + Duration::from_secs(20);
    while !echo_once(lp, b"hello", Duration::from_secs(2)) {
        assert!(
            Instant::now() < deadline,
            "tunnel never came up\n{}",
            logs(&mut server, &mut client)
        );
        thread::sleep(Duration::from_millis(200));
    }
    thread::sleep(Duration::from_millis(500));
    let before = open_fds(server.pid());
    assert!(before > 0, "cannot read the server's descriptors");

    // 300 connections at once, each holding its stream open until all have tried.
    let conns: Vec<_> = (0..300)
        .map(|i| {
            thread::spawn(move || {
                let mut c = TcpStream::connect(local(lp)).ok()?;
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let msg = format!("connection {i}");
                c.write_all(msg.as_bytes()).ok()?;
                let mut got = vec![0u8; msg.len()];
                let ok = c.read_exact(&mut got).is_ok() && got == msg.as_bytes();
                thread::sleep(Duration::from_secs(1));
                Some(ok)
            })
        })
        .collect();
    let answered = conns
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|r| *r == Some(true))
        .count();
    eprintln!("{answered} of 300 connections were answered under a 64-descriptor server");
    assert!(
        answered < 300,
        "every connection was answered: the limit did not bite, the test proves nothing"
    );

    // It survived, and it gives every descriptor back.
    if let Err(e) = check_alive(&mut [&mut server, &mut client]) {
        panic!("{e}\n{}", logs(&mut server, &mut client));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now_fds = open_fds(server.pid());
        if now_fds <= before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server holds {now_fds} descriptors, {before} before the flood\n{}",
            logs(&mut server, &mut client)
        );
        thread::sleep(Duration::from_millis(200));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !echo_once(lp, b"after the flood", Duration::from_secs(2)) {
        assert!(
            Instant::now() < deadline,
            "no answer after the flood\n{}",
            logs(&mut server, &mut client)
        );
        thread::sleep(Duration::from_millis(200));
    }

    // The log: a handful of lines for the flood, and the count of the ones left out.
    thread::sleep(Duration::from_millis(1500)); // the once-a-second flush of the last count
    let log = server.full_log();
    let emfile = log
        .lines()
        .filter(|l| l.contains("Too many open files"))
        .count();
    let summaries: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("more in the last second"))
        .collect();
    let left_out: u64 = summaries
        .iter()
        .filter_map(|l| {
            let i = l.find("… and ")? + "… and ".len();
            l[i..].split(' ').next()?.parse::<u64>().ok()
        })
        .sum();
    eprintln!(
        "server log: {emfile} 'Too many open files' lines, {} summary lines counting {left_out} more",
        summaries.len()
    );
    assert!(emfile >= 1, "no descriptor error was logged\n{log}");
    assert!(
        emfile <= 10,
        "{emfile} 'Too many open files' lines: a flood floods the log\n{log}"
    );
    assert!(
        left_out > 0,
        "the failures left out of the log were not counted\n{log}"
    );
}

#[test]
fn open_files_soft_limit_is_raised_to_the_hard_limit() {
    require_prlimit();
    let udp = free_udp_port();
    let mut server = server_limited(
        "256:4096",
        &strs(&["-l", &format!("127.0.0.1:{udp}"), "-t", "127.0.0.1:9"]),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.full_log();
        if log.contains("open-files limit raised from 256 to 4096") {
            break;
        }
        if let Some(st) = server.exited() {
            panic!("server exited ({st})\n{log}");
        }
        assert!(
            Instant::now() < deadline,
            "no log line about the limit\n{log}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&fields[3..5], &["4096", "4096"], "{line}");

    // Already at the hard limit: nothing changes and nothing is logged.
    let udp = free_udp_port();
    let mut server = server_limited(
        "512:512",
        &strs(&["-l", &format!("127.0.0.1:{udp}"), "-t", "127.0.0.1:9"]),
    );
    thread::sleep(Duration::from_millis(500));
    assert!(server.exited().is_none(), "{}", server.log());
    assert!(
        !server.full_log().contains("open-files limit"),
        "{}",
        server.log()
    );
}
