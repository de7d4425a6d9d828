//! Daemon mode, pidfile, signals and log reopening of the real binary.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kcptun")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kcptun-daemon-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn server_args(port: u16) -> Vec<String> {
    vec![
        "server".into(),
        "-l".into(),
        format!("127.0.0.1:{port}"),
        "-t".into(),
        "127.0.0.1:9".into(),
    ]
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[String]) -> Kill {
    Kill(
        Command::new(bin())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kcptun"),
    )
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    // SAFETY-free probe: signal 0 checks existence only.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

fn signal(pid: i32, s: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s).expect("send signal");
}

#[test]
fn unwritable_pidfile_fails_before_starting() {
    let mut args = server_args(free_udp());
    args.extend(["--pidfile".into(), "/nonexistent-dir/kcptun.pid".into()]);
    let out = Command::new(bin()).args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("kcptun: cannot open pidfile /nonexistent-dir/kcptun.pid"),
        "{err}"
    );
}

#[test]
fn live_pidfile_is_refused_and_stale_one_taken_over() {
    let d = tmpdir("pid");
    let pidfile = d.join("k.pid");
    std::fs::write(&pidfile, "999999\n").unwrap(); // stale: nobody holds the lock
    let mut args = server_args(free_udp());
    args.extend(["--pidfile".into(), pidfile.display().to_string()]);
    let first = spawn(&args);
    let pid = first.0.id() as i32;
    wait_for("pidfile rewritten", || read_pid(&pidfile) == Some(pid));

    let mut args2 = server_args(free_udp());
    args2.extend(["--pidfile".into(), pidfile.display().to_string()]);
    let out = Command::new(bin()).args(&args2).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("held by a running kcptun (pid {pid})")),
        "{err}"
    );
    assert_eq!(
        read_pid(&pidfile),
        Some(pid),
        "the live pidfile was touched"
    );
    drop(first);
}

#[test]
fn sigterm_stops_gracefully_with_exit_0() {
    let d = tmpdir("term");
    let pidfile = d.join("k.pid");
    let mut args = server_args(free_udp());
    args.extend(["--pidfile".into(), pidfile.display().to_string()]);
    let mut k = spawn(&args);
    let pid = k.0.id() as i32;
    wait_for("pidfile", || read_pid(&pidfile) == Some(pid));
    let t = Instant::now();
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    let status = k.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM must exit 0");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert!(
        !pidfile.exists(),
        "pidfile left behind after a graceful stop"
    );
}

#[test]
fn daemon_detaches_writes_pid_and_reopens_log_on_sighup() {
    // Relative paths, as a user types them: the daemon changes directory to "/", and the log
    // reopened on SIGHUP and the pidfile removed at exit must still be these files.
    let d = tmpdir("daemon");
    let pidfile = d.join("k.pid");
    let log = d.join("k.log");
    let mut args = server_args(free_udp());
    args.extend([
        "--daemon".into(),
        "--pidfile".into(),
        "k.pid".into(),
        "--log".into(),
        "k.log".into(),
    ]);
    let out = Command::new(bin())
        .args(&args)
        .current_dir(&d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "parent: {out:?}");
    wait_for("daemon pid", || read_pid(&pidfile).is_some_and(alive));
    let pid = read_pid(&pidfile).unwrap();
    assert_ne!(pid as u32, std::process::id());

    // logrotate: move the file away, SIGHUP, then a new line lands in a new file.
    std::fs::rename(&log, d.join("k.log.1")).unwrap();
    signal(pid, nix::sys::signal::Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(200));
    signal(pid, nix::sys::signal::Signal::SIGUSR1);
    wait_for("SNMP line in the reopened log", || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.contains("KCP SNMP:&{BytesSent:"))
    });

    signal(pid, nix::sys::signal::Signal::SIGTERM);
    wait_for("daemon exit", || !alive(pid));
    assert!(!pidfile.exists());
    assert!(!Path::new("/k.log").exists() && !Path::new("/k.pid").exists());
}

#[test]
fn daemon_with_unwritable_log_fails_before_detaching() {
    let mut args = server_args(free_udp());
    args.extend([
        "--daemon".into(),
        "--log".into(),
        "/nonexistent-dir/k.log".into(),
    ]);
    let out = Command::new(bin()).args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent-dir/k.log"), "{err}");
}

#[test]
fn ctl_socket_answers_kcptun_snmp_and_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmpdir("ctl");
    let ctl = d.join("k.ctl");
    let mut args = server_args(free_udp());
    args.extend(["--ctl".into(), ctl.display().to_string()]);
    let k = spawn(&args);
    wait_for("ctl socket", || ctl.exists());
    let mode = std::fs::metadata(&ctl).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "control socket must be private");
    let out = Command::new(bin())
        .args(["snmp", "--ctl", &ctl.display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("server, pid "), "{text}");
    assert!(text.contains("KCP SNMP:&{BytesSent:0 "), "{text}");
    drop(k);
}
