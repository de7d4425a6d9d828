//! Command line, continued: config files (SPEC §7.5), the key from the environment, and the
//! binary's own behaviour (exit codes, one-line errors, version, help, multi-call symlinks).

mod common;

use std::path::Path;
use std::process::Command as Proc;
use std::time::Duration;

use common::cli::*;
use kcptun::cmd::{exit_code, parse_env, CliError, Command, Mode, NoDelay, StreamAddr};

// ------------------------------------------------------------------------------------------
// config files

#[test]
fn json_overrides_flags_and_keeps_absent_keys() {
    let p = write(
        "c.json",
        r#"{"mtu": 1400, "key": "from-file", "remoteaddr": "10.0.0.1:4000-4010"}"#,
    );
    let c = client(&[
        "-mtu",
        "1200",
        "-sndwnd",
        "300",
        "-key",
        "flag",
        "-c",
        s(&p),
    ]);
    assert_eq!(c.common.mtu, 1400, "file wins over flag");
    assert_eq!(c.common.key, "from-file");
    assert_eq!(c.common.sndwnd, 300, "flag kept where the file is silent");
    assert_eq!(c.remoteaddr, ep("10.0.0.1", 4000, 4010));
    assert_eq!(c.common.config.as_deref(), Some(p.as_path()));
    // the flag order does not matter: -c first
    let c = client(&["-c", s(&p), "-mtu", "1200"]);
    assert_eq!(c.common.mtu, 1400);
}

#[test]
fn json_keys_case_insensitive_and_mode_after_merge() {
    let p = write(
        "c.json",
        r#"{"MTU": 1300, "NoComp": true, "QPP": true, "Qpp-Count": 13, "Mode": "manual",
            "Interval": 20, "NODELAY": 1, "DataShard": 4, "parityShard": 1, "SmuxVer": 1}"#,
    );
    let c = client(&["-c", s(&p), "-mode", "fast"]);
    assert_eq!(c.common.mtu, 1300);
    assert!(c.common.nocomp && c.common.qpp);
    assert_eq!(c.common.qpp_count, 13);
    assert_eq!(c.common.mode, Mode::Manual);
    assert_eq!(
        c.common.nodelay,
        NoDelay {
            nodelay: true,
            interval: 20,
            resend: 0,
            nc: false
        }
    );
    assert_eq!((c.common.datashard, c.common.parityshard), (4, 1));
    assert_eq!(c.smuxver, 1);
}

#[test]
fn server_json_keys() {
    let p = write(
        "s.json",
        r#"{"listen": ":5000-5005", "target": "127.0.0.1:22", "sndwnd": 2048, "closewait": 0,
            "crypt": "aes-128-gcm", "quiet": true, "localaddr": ":1"}"#,
    );
    let sv = server(&["-c", s(&p)]);
    assert_eq!(sv.listen, ep("", 5000, 5005));
    assert_eq!(sv.target, StreamAddr::Tcp(ep("127.0.0.1", 22, 22)));
    assert_eq!(sv.common.sndwnd, 2048);
    assert_eq!(sv.common.closewait, Duration::ZERO);
    assert_eq!(sv.common.crypt, "aes-128-gcm");
    assert!(sv.common.quiet);
    // localaddr is a client key: unknown to the server
    assert!(
        sv.common.warnings.iter().any(|w| w.contains("localaddr")),
        "{:?}",
        sv.common.warnings
    );
}

#[test]
fn unknown_keys_are_ignored_with_a_warning() {
    let p = write(
        "c.json",
        r#"{"mtu": 1300, "frobnicate": 1, "ds": 3, "nested": {"a": 1}}"#,
    );
    let c = client(&["-c", s(&p)]);
    assert_eq!(c.common.mtu, 1300);
    assert_eq!(c.common.datashard, 10, "json key is datashard, not ds");
    let w = c.common.warnings.join("\n");
    assert!(
        w.contains("frobnicate") && w.contains("ds") && w.contains("nested"),
        "{w}"
    );
}

#[test]
fn null_keeps_the_flag_value() {
    let p = write("c.json", r#"{"mtu": null}"#);
    assert_eq!(client(&["-mtu", "1234", "-c", s(&p)]).common.mtu, 1234);
}

#[test]
fn type_mismatch_names_file_key_and_line() {
    for (text, key) in [
        ("{\n  \"crypt\": \"aes\",\n  \"mtu\": \"1350\"\n}", "mtu"),
        ("{\n  \"nocomp\": 1\n}", "nocomp"),
        ("{\n \"key\": 5\n}", "key"),
        ("{\n \"conn\": 1.5\n}", "conn"),
    ] {
        let p = write("bad.json", text);
        match run(&["client", "-c", s(&p)]) {
            Err(e @ CliError::Config { .. }) => {
                assert_eq!(exit_code(&e), 1);
                let m = e.to_string();
                assert!(
                    m.contains(s(&p)) && m.contains(&format!("\"{key}\"")),
                    "{m}"
                );
                assert!(m.contains("line"), "{m}");
                assert!(!m.contains('\n'));
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn malformed_and_unreadable_files() {
    let p = write("m.json", "{\n \"mtu\": 1350,\n");
    match run(&["client", "-c", s(&p)]) {
        Err(e @ CliError::Config { .. }) => {
            assert_eq!(exit_code(&e), 1);
            let m = e.to_string();
            assert!(
                m.contains("malformed JSON") && m.contains("line") && m.contains(s(&p)),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    let p = write("arr.json", "[1, 2]");
    assert!(matches!(
        run(&["client", "-c", s(&p)]),
        Err(CliError::Config { .. })
    ));
    let missing = temp_dir().join("nope.json");
    match run(&["server", "-c", s(&missing)]) {
        Err(e @ CliError::Config { .. }) => {
            assert_eq!(exit_code(&e), 1);
            assert!(e.to_string().contains("nope.json"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn yaml_config() {
    let p = write(
        "c.yaml",
        "mtu: 1300\nNoComp: true\nremoteaddr: \"[::1]:4000\"\nkey: yamlkey\nunknownthing: 3\n",
    );
    let c = client(&["-mtu", "1000", "-c", s(&p)]);
    assert_eq!(c.common.mtu, 1300);
    assert!(c.common.nocomp);
    assert_eq!(c.remoteaddr, ep("::1", 4000, 4000));
    assert_eq!(c.common.key, "yamlkey");
    assert!(c.common.warnings.iter().any(|w| w.contains("unknownthing")));
    let p = write("c.yml", "sndwnd: 64\n");
    assert_eq!(client(&["-c", s(&p)]).common.sndwnd, 64);
    let p = write("bad.yml", "a: 1\nmtu: [1, 2]\n");
    match run(&["client", "-c", s(&p)]) {
        Err(e @ CliError::Config { .. }) => {
            let m = e.to_string();
            assert!(m.contains("\"mtu\"") && m.contains("line 2"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let p = write("broken.yaml", "mtu: [\n");
    assert!(matches!(
        run(&["client", "-c", s(&p)]),
        Err(CliError::Config { .. })
    ));
}

#[test]
fn delaywnd_from_flag_json_and_yaml() {
    assert!(!client(&[]).common.delaywnd, "off by default");
    assert!(client(&["--delaywnd"]).common.delaywnd);
    assert!(server(&["-delaywnd"]).common.delaywnd);
    let p = write("d.json", "{\"delaywnd\": true}");
    assert!(client(&["-c", s(&p)]).common.delaywnd);
    let p = write("d.yaml", "delaywnd: true\n");
    assert!(server(&["-c", s(&p)]).common.delaywnd);
}

#[test]
fn tcp_and_pprof_are_refused() {
    for args in [&["--tcp"][..], &["-tcp=true"], &["--pprof"]] {
        let e = client_err(args);
        assert!(
            e.contains("not supported by this kcptun") && e.contains("remove"),
            "{e}"
        );
    }
    assert!(client_err(&["--tcp"]).contains("--tcp (fake-TCP transport)"));
    let p = write("t.json", r#"{"tcp": true}"#);
    assert!(client_err(&["-c", s(&p)]).contains("--tcp"));
    let p = write("p.json", r#"{"pprof": true}"#);
    assert!(
        matches!(run(&["server", "-c", s(&p)]), Err(CliError::Usage(m)) if m.contains("pprof"))
    );
    let p = write("f.json", r#"{"tcp": false, "pprof": false}"#);
    client(&["-c", s(&p)]);
}

// ------------------------------------------------------------------------------------------
// key from the environment

#[test]
fn kcptun_key_env() {
    let env = |args: &[&str], k: &str| match parse_env(argv("kcptun", args), Some(k.into())) {
        Ok(Command::Client(c)) => c.common.key,
        other => panic!("{other:?}"),
    };
    assert_eq!(env(&["client"], "envkey"), "envkey");
    assert_eq!(env(&["client", "-key", "flagkey"], "envkey"), "flagkey");
    let p = write("k.json", r#"{"key": "filekey"}"#);
    assert_eq!(
        env(&["client", "-key", "flagkey", "-c", s(&p)], "envkey"),
        "filekey"
    );
}

// ------------------------------------------------------------------------------------------
// the binary

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kcptun")
}

fn exec(argv0: Option<&Path>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Proc::new(argv0.unwrap_or(Path::new(bin())));
    cmd.args(args).env_remove("KCPTUN_KEY");
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn binary_usage_errors_exit_2_with_one_line() {
    let bad: &[&[&str]] = &[
        &["client", "-crypt", "rot13"],
        &["client", "-mode", "turbo"],
        &["client", "-r", "h:9-1"],
        &["server", "-l", "h:0"],
        &["client", "-conn", "0"],
        &["client", "-QPPCount", "0"],
        &["server", "-ds", "250", "-ps", "10"],
        &["server", "-sndwnd", "0"],
        &["client", "-rcvwnd", "70000"],
        &["client", "-keepalive", "0"],
        &["server", "-smuxver", "3"],
        &["client", "-mtu", "2000"],
        &["client", "-framesize", "0"],
        &["client", "-snmpperiod", "0"],
        &["client", "-tcp"],
        &["server", "--pprof"],
        &["client", "--no-such-flag"],
        &["client", "-mtu", "abc"],
        &["nosuchcommand"],
        &["bench"],
        &["client", "stray"],
        &[],
    ];
    for args in bad {
        let (code, out, err) = exec(None, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(err.starts_with("kcptun: "), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn binary_config_errors_exit_1() {
    let missing = temp_dir().join("missing.json");
    let (code, _, err) = exec(None, &["client", "-c", s(&missing)]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("kcptun: config file ") && err.contains("missing.json"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    let p = write("b.json", "{\"mtu\": true}");
    let (code, _, err) = exec(None, &["server", "-c", s(&p)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("\"mtu\""), "{err}");
}

#[test]
fn binary_version_help_and_multicall_symlink() {
    let (code, out, _) = exec(None, &["-v"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("kcptun version "), "{out}");
    let (code, out, _) = exec(None, &["client", "-h"]);
    assert_eq!(code, 0);
    assert!(out.contains("--remoteaddr"));
    let dir = temp_dir();
    for (name, flag) in [
        ("kcptun-client", "--remoteaddr"),
        ("server_linux_amd64", "--target"),
    ] {
        let link = dir.join(name);
        std::os::unix::fs::symlink(bin(), &link).unwrap();
        let (code, out, _) = exec(Some(&link), &["-version"]);
        assert_eq!(code, 0);
        assert!(out.contains("kcptun"), "{out}");
        let (code, out, _) = exec(Some(&link), &["--help"]);
        assert_eq!(code, 0);
        assert!(out.contains(flag), "{name}: {out}");
        let (code, _, err) = exec(Some(&link), &["-mtu", "9999"]);
        assert_eq!(code, 2);
        assert!(err.contains("--mtu"), "{err}");
    }
}

#[test]
fn config_flag_spellings() {
    let p = write("c.json", r#"{"mtu": 1111}"#);
    for args in [
        vec!["-c", s(&p)],
        vec!["--c", s(&p)],
        vec!["--config", s(&p)],
        vec!["-config", s(&p)],
    ] {
        assert_eq!(client(&args).common.mtu, 1111, "{args:?}");
    }
    let eq = format!("-c={}", s(&p));
    assert_eq!(client(&[&eq]).common.mtu, 1111);
}
