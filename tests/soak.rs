//! `kcptun bench soak` as CI runs it: 60 s of our client and server through the default lossy
//! path (20 ms each way, 2 ms jitter, 1 % loss, 1 % reordering, 40 Mbit/s with a queue) with
//! connections churning. It must pass its own verdict with the CI threshold: no fd growth and
//! at most 25 % RSS growth after warm-up, no corrupted data, connection errors within 0.1 %.
//! The figures are printed (`cargo test --test soak -- --nocapture`).

use std::process::Command;

#[test]
fn soak_60_seconds_keeps_fds_and_rss_flat() {
    let out = Command::new(env!("CARGO_BIN_EXE_kcptun"))
        .args(["bench", "soak", "--seconds", "60", "--max-rss-growth", "25"])
        .output()
        .expect("run kcptun bench soak");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "kcptun bench soak failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    assert!(stdout.lines().any(|l| l == "soak: PASS"), "{stdout}");
    // Six samples (every 10 s) and the growth of all four series were reported.
    let rows = stdout
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 8 && f[0].parse::<u32>().is_ok_and(|t| t % 10 == 0 && t > 0)
        })
        .count();
    assert_eq!(rows, 6, "{stdout}");
    for what in ["client RSS", "server RSS", "client fds", "server fds"] {
        assert!(
            stdout.contains(&format!("growth after warm-up: {what} ")),
            "{what} missing: {stdout}"
        );
    }
    let conns: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("connections: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no connection count: {stdout}"));
    assert!(conns > 0, "{stdout}");
}

#[test]
fn soak_refuses_a_bad_path_in_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_kcptun"))
        .args(["bench", "soak", "--seconds", "10", "--path", "loss=200%"])
        .output()
        .expect("run kcptun");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("loss=200%: not a probability"), "{stderr}");
}
