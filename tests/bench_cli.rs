//! `kcptun bench …` end to end through the binary: each subcommand runs, exits 0 and prints JSON
//! with every expected entry and positive figures. No timing thresholds: the machine is shared.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_kcptun"))
        .arg("bench")
        .args(args)
        .output()
        .expect("run kcptun");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kcptun bench {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn positive(v: &Value, key: &str) -> f64 {
    let x = v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"));
    assert!(x > 0.0 && x.is_finite(), "{key} = {x} in {v}");
    x
}

#[test]
fn crypt_json_lists_every_cipher() {
    let v = bench(&["crypt", "--size", "200", "--json"]);
    assert_eq!(v["size"], 200);
    let ciphers = v["ciphers"].as_array().expect("ciphers array");
    let names: Vec<&str> = ciphers
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "aes",
            "aes-128",
            "aes-192",
            "aes-128-gcm",
            "salsa20",
            "blowfish",
            "twofish",
            "cast5",
            "3des",
            "tea",
            "xtea",
            "xor",
            "sm4",
            "none",
            "null"
        ]
    );
    for c in ciphers {
        positive(c, "MBps");
        positive(c, "ns_per_packet");
    }
}

#[test]
fn fec_json_has_three_codes() {
    let v = bench(&["fec", "--json"]);
    assert_eq!(v["packet_bytes"], 1350);
    let codes = v["codes"].as_array().expect("codes array");
    let params: Vec<(u64, u64)> = codes
        .iter()
        .map(|c| (c["ds"].as_u64().unwrap(), c["ps"].as_u64().unwrap()))
        .collect();
    assert_eq!(params, [(10, 3), (5, 2), (20, 10)]);
    for c in codes {
        positive(c, "encode_MBps");
        positive(c, "recover_MBps");
    }
}

#[test]
fn tunnel_json_moves_data_both_ways() {
    let v = bench(&["tunnel", "--duration", "1", "--json"]);
    let runs = v["runs"].as_array().expect("runs array");
    assert_eq!(runs.len(), 1);
    let cfg = &runs[0]["config"];
    assert_eq!(cfg["crypt"], "aes");
    assert_eq!(cfg["mode"], "fast3");
    assert_eq!(cfg["compression"], false);
    let ours = &runs[0]["ours"];
    positive(ours, "up_MBps");
    positive(ours, "down_MBps");
    positive(ours, "rtt_idle_p50_ms");
    positive(ours, "rss_peak_client_MiB");
    positive(ours, "rss_peak_server_MiB");
    assert!(runs[0].get("go").is_none());
}

#[test]
fn tunnel_vs_go_json_has_both_mixed_pairs_and_ratios() {
    assert!(
        std::path::Path::new("/usr/bin/kcptun-client").exists()
            && std::path::Path::new("/usr/bin/kcptun-server").exists(),
        "Debian's Go kcptun is needed: apt-get install -y kcptun"
    );
    // A non-default flag: one configuration only, to keep the test short.
    let v = bench(&[
        "tunnel",
        "--vs-go",
        "--mixed",
        "--duration",
        "1",
        "--crypt",
        "none",
        "--ds",
        "0",
        "--ps",
        "0",
        "--json",
    ]);
    let runs = v["runs"].as_array().expect("runs array");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["config"]["crypt"], "none");
    for side in ["ours", "go", "ours-go", "go-ours"] {
        positive(&runs[0][side], "up_MBps");
        positive(&runs[0][side], "down_MBps");
    }
    positive(&runs[0]["ratio"], "up_MBps");
    positive(&runs[0]["ratio"], "down_MBps");
}

#[test]
fn tunnel_through_a_path_moves_data_and_reports_it() {
    let v = bench(&[
        "tunnel",
        "--duration",
        "1",
        "--path",
        "delay=5ms,jitter=1ms,loss=1%,reorder=1%",
        "--path-down",
        "delay=10ms,rate=100mbit,queue=256kb",
        "--json",
    ]);
    let runs = v["runs"].as_array().expect("runs array");
    assert_eq!(runs.len(), 1);
    let cfg = &runs[0]["config"];
    assert_eq!(cfg["path_up"], "delay=5ms,jitter=1ms,loss=1%,reorder=1%");
    assert_eq!(cfg["path_down"], "delay=10ms,rate=100mbit,queue=256kb");
    let ours = &runs[0]["ours"];
    positive(ours, "up_MBps");
    positive(ours, "down_MBps");
    // How many round trips under load the percentiles stand on.
    positive(ours, "rtt_load_samples");
    // Both directions' delays are in every round trip.
    let rtt = positive(ours, "rtt_idle_p50_ms");
    assert!(rtt >= 15.0, "idle RTT {rtt} ms through a 5 + 10 ms path");
}

#[test]
fn mixed_pairs_need_vs_go() {
    let out = Command::new(env!("CARGO_BIN_EXE_kcptun"))
        .args(["bench", "tunnel", "--mixed"])
        .output()
        .expect("run kcptun");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--vs-go"), "{stderr}");
}

#[test]
fn tunnel_path_errors_are_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_kcptun"))
        .args(["bench", "tunnel", "--path-up", "delay=20ms,queue=1mb"])
        .output()
        .expect("run kcptun");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--path-up"), "{stderr}");
    assert!(stderr.contains("queue= needs a rate="), "{stderr}");
}

#[test]
fn sessions_vs_go_json_reports_memory_per_session_for_both() {
    for p in ["/usr/bin/kcptun-client", "/usr/bin/kcptun-server"] {
        assert!(
            std::path::Path::new(p).exists(),
            "{p} missing: install Debian's Go kcptun (apt-get install -y kcptun)"
        );
    }
    let v = bench(&["sessions", "3", "--bytes", "8192", "--vs-go", "--json"]);
    assert_eq!(v["sessions"], 3);
    for side in ["ours", "go"] {
        let r = &v[side];
        for proc_ in ["server", "clients"] {
            let rss = &r[proc_]["rss_mib"];
            for step in ["before", "idle", "after", "quiet"] {
                positive(rss, step);
            }
            for step in ["idle", "after", "quiet"] {
                let kb = r[proc_]["kb_per_session"][step]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{side} {proc_} {step} missing in {r}"));
                assert!(kb.is_finite(), "{side} {proc_} {step} = {kb}");
            }
        }
        positive(r, "server_private_mib");
        assert!(r["server_idle_cpu"].as_f64().is_some_and(|c| c >= 0.0));
    }
}
