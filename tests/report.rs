//! The process logger of `kcptun::io::report` end to end: Go's line format, `--log` append,
//! logrotate-style reopen, `--quiet`, unopenable files, and stderr output (in a child process).
//!
//! The logger is process-global, so every test here takes `SERIAL` first. The in-process tests
//! expect `RUST_LOG` unset (or at least `info`); the child-process tests set it themselves.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kcptun::io::report::{self, init_logging, reopen_log, sigusr1_line, STREAM_TARGET};
use kcptun::proto::snmp::Snmp;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d .+$`
fn is_go_log_line(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 20
        && b[..20].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'/',
            10 | 19 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
        && !b.contains(&b'\n')
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kcptun-report-it-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("temp dir");
    d
}

fn lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Message part of a Go log line.
fn msg(line: &str) -> &str {
    &line[20..]
}

#[test]
fn matcher_rejects_non_go_lines() {
    assert!(is_go_log_line("2026/11/25 03:08:40 hello"));
    assert!(!is_go_log_line("2026-11-25 03:08:40 hello"));
    assert!(!is_go_log_line("2026/11/25 03:08:40 "));
    assert!(!is_go_log_line("[2026-11-25T03:08:40Z INFO kcptun] hello"));
}

#[test]
fn log_file_appends_go_lines() {
    let _g = serial();
    let dir = temp_dir("append");
    let path = dir.join("kcptun.log");
    fs::write(&path, "earlier line\n").expect("seed");
    init_logging(Some(&path), false).expect("open log");
    log::info!("listening on {}", "127.0.0.1:12948");
    log::warn!("a warning");
    log::debug!("debug is off by default");
    let s = Snmp {
        bytes_sent: 571,
        ..Snmp::default()
    };
    log::info!("{}", sigusr1_line(&s));
    let got = lines(&path);
    assert_eq!(got[0], "earlier line", "append, not truncate");
    let logged: Vec<&str> = got[1..].iter().map(String::as_str).collect();
    for l in &logged {
        assert!(is_go_log_line(l), "{l:?}");
    }
    let msgs: Vec<&str> = logged.iter().map(|l| msg(l)).collect();
    assert_eq!(&msgs[..2], ["listening on 127.0.0.1:12948", "a warning"]);
    assert!(msgs
        .last()
        .unwrap()
        .starts_with("KCP SNMP:&{BytesSent:571 "));
    if std::env::var_os("RUST_LOG").is_none() {
        assert_eq!(msgs.len(), 3, "debug filtered: {msgs:?}");
    }
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn new_log_file_is_0644() {
    use std::os::unix::fs::PermissionsExt;
    let _g = serial();
    let dir = temp_dir("mode");
    let path = dir.join("new.log");
    init_logging(Some(&path), false).expect("create log");
    let mode = fs::metadata(&path).expect("exists").permissions().mode() & 0o777;
    // 0644 minus whatever the umask removes: never group/other writable.
    assert_eq!(mode & 0o600, 0o600, "{mode:o}");
    assert_eq!(mode & 0o133, 0, "{mode:o}");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn reopen_after_rename_follows_logrotate() {
    let _g = serial();
    let dir = temp_dir("rotate");
    let path = dir.join("kcptun.log");
    let rotated = dir.join("kcptun.log.1");
    init_logging(Some(&path), false).expect("open log");
    log::info!("one");
    fs::rename(&path, &rotated).expect("rotate");
    log::info!("two"); // still the old handle, now named .1
    reopen_log();
    log::info!("three"); // the new file
    reopen_log(); // reopening the current file again is harmless
    log::info!("four");
    let old: Vec<String> = lines(&rotated).iter().map(|l| msg(l).to_owned()).collect();
    let new: Vec<String> = lines(&path).iter().map(|l| msg(l).to_owned()).collect();
    assert_eq!(old, ["one", "two"]);
    assert_eq!(new, ["three", "four"]);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn failed_reopen_keeps_the_old_handle() {
    let _g = serial();
    let dir = temp_dir("reopenfail");
    fs::create_dir(dir.join("a")).expect("mkdir");
    let path = dir.join("a/kcptun.log");
    init_logging(Some(&path), false).expect("open log");
    log::info!("before");
    // The whole directory moves away: reopening `a/kcptun.log` must fail.
    fs::rename(dir.join("a"), dir.join("b")).expect("move dir");
    reopen_log();
    log::info!("after");
    let got = lines(&dir.join("b/kcptun.log"));
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(msg(&got[0]), "before");
    assert!(
        msg(&got[1]).starts_with("cannot reopen log file ")
            && msg(&got[1]).contains("a/kcptun.log: no such file or directory"),
        "{got:?}"
    );
    assert_eq!(msg(&got[2]), "after");
    assert!(!path.exists());
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn unopenable_log_file_is_a_clear_error_and_changes_nothing() {
    let _g = serial();
    let dir = temp_dir("unopenable");
    let good = dir.join("good.log");
    init_logging(Some(&good), false).expect("open log");
    let bad = dir.join("no/such/dir/kcptun.log");
    let e = init_logging(Some(&bad), false).expect_err("must fail");
    let text = e.to_string();
    assert!(
        text.contains(&bad.display().to_string()) && text.contains("no such file or directory"),
        "{text}"
    );
    assert!(matches!(e, report::LogError::Open { ref path, .. } if path == &bad));
    // The previous configuration is still in force.
    log::info!("still here");
    assert_eq!(
        lines(&good).iter().map(|l| msg(l)).collect::<Vec<_>>(),
        ["still here"]
    );
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn quiet_drops_stream_lines_only() {
    let _g = serial();
    let dir = temp_dir("quiet");
    let path = dir.join("q.log");
    init_logging(Some(&path), true).expect("open log");
    log::info!(target: STREAM_TARGET, "stream opened in: a out: b");
    log::warn!(target: STREAM_TARGET, "stream warning");
    log::info!("other");
    init_logging(Some(&path), false).expect("reopen");
    log::info!(target: STREAM_TARGET, "stream closed in: a out: b");
    let msgs: Vec<String> = lines(&path).iter().map(|l| msg(l).to_owned()).collect();
    assert_eq!(
        msgs,
        ["stream warning", "other", "stream closed in: a out: b"]
    );
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn concurrent_lines_never_interleave() {
    let _g = serial();
    let dir = temp_dir("threads");
    let path = dir.join("t.log");
    init_logging(Some(&path), false).expect("open log");
    let long = "x".repeat(3000);
    std::thread::scope(|s| {
        for t in 0..4 {
            let long = &long;
            s.spawn(move || {
                for i in 0..200 {
                    log::info!("thread {t} line {i} {long}");
                }
            });
        }
    });
    let got = lines(&path);
    assert_eq!(got.len(), 800);
    for l in &got {
        assert!(is_go_log_line(l) && l.ends_with(&long), "torn line");
    }
    fs::remove_dir_all(&dir).ok();
}

/// Child half of `stderr_logging_in_a_child`: logs to stderr and exits.
#[test]
#[ignore = "run by stderr_logging_in_a_child"]
fn stderr_child() {
    if std::env::var_os("KCPTUN_REPORT_CHILD").is_none() {
        return;
    }
    init_logging(None, false).expect("stderr needs no file");
    log::info!("to stderr");
    log::error!("and an error");
    reopen_log(); // no file: a no-op
    log::trace!("not shown");
}

#[test]
fn stderr_logging_in_a_child() {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args(["--ignored", "--exact", "stderr_child", "--nocapture"])
        .env("KCPTUN_REPORT_CHILD", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("spawn");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let logged: Vec<&str> = err.lines().filter(|l| is_go_log_line(l)).collect();
    assert_eq!(
        logged.iter().map(|l| msg(l)).collect::<Vec<_>>(),
        ["to stderr", "and an error"],
        "{err}"
    );
    // RUST_LOG overrides the level.
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args(["--ignored", "--exact", "stderr_child", "--nocapture"])
        .env("KCPTUN_REPORT_CHILD", "1")
        .env("RUST_LOG", "error")
        .output()
        .expect("spawn");
    let err = String::from_utf8_lossy(&out.stderr);
    let logged: Vec<&str> = err.lines().filter(|l| is_go_log_line(l)).collect();
    assert_eq!(
        logged.iter().map(|l| msg(l)).collect::<Vec<_>>(),
        ["and an error"],
        "{err}"
    );
}
