//! Command line: flag spellings, defaults (SPEC §7.3), modes, addresses (§7.6), validation errors
//! and exit codes, multi-call names. Config files and the binary itself: `cli_config.rs`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::cli::*;
use kcptun::cmd::{
    parse_env, BenchCmd, CliError, ClientSettings, Command, Mode, NoDelay, StreamAddr,
};

// ------------------------------------------------------------------------------------------
// defaults

#[test]
fn client_defaults_match_go() {
    let c = client(&[]);
    assert_eq!(c.localaddr, StreamAddr::Tcp(ep("", 12948, 12948)));
    assert_eq!(c.remoteaddr, ep("vps", 29900, 29900));
    assert_eq!(c.conn, 1);
    assert_eq!(c.autoexpire, None);
    assert_eq!(c.scavengettl, Duration::from_secs(600));
    assert_eq!(c.smuxver, 2);
    let m = &c.common;
    assert_eq!(m.key, "it's a secrect");
    assert_eq!(m.crypt, "aes");
    assert_eq!(m.mode, Mode::Fast);
    assert_eq!(
        m.nodelay,
        NoDelay {
            nodelay: false,
            interval: 30,
            resend: 2,
            nc: true
        }
    );
    assert!(!m.qpp);
    assert_eq!(m.qpp_count, 61);
    assert_eq!(m.mtu, 1350);
    assert_eq!(m.ratelimit, 0);
    assert_eq!((m.sndwnd, m.rcvwnd), (128, 512));
    assert_eq!((m.datashard, m.parityshard), (10, 3));
    assert_eq!(m.dscp, 0);
    assert!(!m.nocomp && !m.acknodelay && !m.quiet && !m.daemon);
    assert_eq!(m.sockbuf, 4194304);
    assert_eq!(m.smuxbuf, 4194304);
    assert_eq!(m.framesize, 8192);
    assert_eq!(m.streambuf, 2097152);
    assert_eq!(m.keepalive, Duration::from_secs(10));
    assert_eq!(m.closewait, Duration::ZERO);
    assert_eq!(m.halfclose, Duration::from_secs(120));
    assert_eq!(m.snmpperiod, Duration::from_secs(60));
    assert_eq!(
        (&m.snmplog, &m.log, &m.ctl, &m.pidfile, &m.config),
        (&None, &None, &None, &None, &None)
    );
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn server_defaults_match_go() {
    let sv = server(&[]);
    assert_eq!(sv.listen, ep("", 29900, 29900));
    assert_eq!(sv.target, StreamAddr::Tcp(ep("127.0.0.1", 12948, 12948)));
    assert_eq!(
        sv.smuxver, None,
        "server detects the smux version unless given"
    );
    let m = &sv.common;
    assert_eq!((m.sndwnd, m.rcvwnd), (1024, 1024));
    assert_eq!(m.closewait, Duration::from_secs(30));
    assert_eq!(m.mtu, 1350);
    assert_eq!(m.mode, Mode::Fast);
    assert_eq!(m.crypt, "aes");
    assert_eq!(m.keepalive, Duration::from_secs(10));
    assert_eq!((m.datashard, m.parityshard), (10, 3));
    assert_eq!(server(&["--smuxver", "1"]).smuxver, Some(1));
}

// ------------------------------------------------------------------------------------------
// spellings

#[test]
fn every_value_flag_in_every_spelling() {
    // (flag, value, check)
    type Check = fn(&ClientSettings) -> bool;
    let cases: &[(&str, &str, Check)] = &[
        ("localaddr", "127.0.0.1:1111", |c| {
            c.localaddr == StreamAddr::Tcp(ep("127.0.0.1", 1111, 1111))
        }),
        ("remoteaddr", "h:2-3", |c| c.remoteaddr == ep("h", 2, 3)),
        ("key", "k1", |c| c.common.key == "k1"),
        ("crypt", "sm4", |c| c.common.crypt == "sm4"),
        ("mode", "fast3", |c| c.common.mode == Mode::Fast3),
        ("QPPCount", "7", |c| c.common.qpp_count == 7),
        ("conn", "4", |c| c.conn == 4),
        ("autoexpire", "900", |c| {
            c.autoexpire == Some(Duration::from_secs(900))
        }),
        ("scavengettl", "30", |c| {
            c.scavengettl == Duration::from_secs(30)
        }),
        ("mtu", "1400", |c| c.common.mtu == 1400),
        ("ratelimit", "1000", |c| c.common.ratelimit == 1000),
        ("sndwnd", "256", |c| c.common.sndwnd == 256),
        ("rcvwnd", "1000", |c| c.common.rcvwnd == 1000),
        ("datashard", "5", |c| c.common.datashard == 5),
        ("ds", "6", |c| c.common.datashard == 6),
        ("parityshard", "2", |c| c.common.parityshard == 2),
        ("ps", "1", |c| c.common.parityshard == 1),
        ("dscp", "46", |c| c.common.dscp == 46),
        ("sockbuf", "1000", |c| c.common.sockbuf == 1000),
        ("smuxver", "1", |c| c.smuxver == 1),
        ("smuxbuf", "8388608", |c| c.common.smuxbuf == 8388608),
        ("framesize", "65535", |c| c.common.framesize == 65535),
        ("streambuf", "65536", |c| c.common.streambuf == 65536),
        ("keepalive", "5", |c| {
            c.common.keepalive == Duration::from_secs(5)
        }),
        ("closewait", "3", |c| {
            c.common.closewait == Duration::from_secs(3)
        }),
        ("halfclose", "0", |c| c.common.halfclose == Duration::ZERO),
        ("snmplog", "./snmp-20060102.log", |c| {
            c.common.snmplog == Some("./snmp-20060102.log".into())
        }),
        ("snmpperiod", "5", |c| {
            c.common.snmpperiod == Duration::from_secs(5)
        }),
        ("log", "/tmp/x.log", |c| {
            c.common.log == Some("/tmp/x.log".into())
        }),
        ("ctl", "/run/k.sock", |c| {
            c.common.ctl == Some("/run/k.sock".into())
        }),
        ("pidfile", "/run/k.pid", |c| {
            c.common.pidfile == Some("/run/k.pid".into())
        }),
    ];
    for &(flag, value, check) in cases {
        let one = format!("-{flag}");
        let two = format!("--{flag}");
        let one_eq = format!("-{flag}={value}");
        let two_eq = format!("--{flag}={value}");
        for args in [
            vec![one.as_str(), value],
            vec![two.as_str(), value],
            vec![&one_eq],
            vec![&two_eq],
        ] {
            let c = client(&args);
            assert!(check(&c), "{args:?} not applied: {c:?}");
        }
    }
}

#[test]
fn short_aliases() {
    let c = client(&["-l", ":5000", "-r", "1.2.3.4:9"]);
    assert_eq!(c.localaddr, StreamAddr::Tcp(ep("", 5000, 5000)));
    assert_eq!(c.remoteaddr, ep("1.2.3.4", 9, 9));
    let c = client(&["--l", ":5001", "-l=:5002"]);
    assert_eq!(
        c.localaddr,
        StreamAddr::Tcp(ep("", 5002, 5002)),
        "last wins"
    );
    let c = client(&["-l:5003"]);
    assert_eq!(c.localaddr, StreamAddr::Tcp(ep("", 5003, 5003)));
    let sv = server(&["-l", ":4000-4002", "-t", "/run/app.sock"]);
    assert_eq!(sv.listen, ep("", 4000, 4002));
    assert_eq!(sv.target, StreamAddr::Unix("/run/app.sock".into()));
    let sv = server(&["-listen", "[::1]:29900", "--target=[::1]:80"]);
    assert_eq!(sv.listen, ep("::1", 29900, 29900));
    assert_eq!(sv.target, StreamAddr::Tcp(ep("::1", 80, 80)));
}

#[test]
fn bool_flags_like_urfave() {
    for (flag, get) in [
        (
            "nocomp",
            (|c: &ClientSettings| c.common.nocomp) as fn(&ClientSettings) -> bool,
        ),
        ("acknodelay", |c| c.common.acknodelay),
        ("quiet", |c| c.common.quiet),
        ("QPP", |c| c.common.qpp),
        ("daemon", |c| c.common.daemon),
    ] {
        for on in [
            format!("-{flag}"),
            format!("--{flag}"),
            format!("--{flag}=true"),
            format!("-{flag}=1"),
        ] {
            assert!(get(&client(&[&on])), "{on}");
        }
        for off in [
            format!("--{flag}=false"),
            format!("-{flag}=false"),
            format!("-{flag}=0"),
        ] {
            assert!(!get(&client(&[&off])), "{off}");
        }
    }
    // a bool flag does not swallow the next token
    let c = client(&["--nocomp", "-mtu", "1300"]);
    assert!(c.common.nocomp);
    assert_eq!(c.common.mtu, 1300);
    assert!(client_err(&["--nocomp=maybe"]).contains("--nocomp"));
    assert!(
        client_err(&["--nocomp", "yes"]).contains("yes"),
        "stray positional refused"
    );
}

#[test]
fn values_that_look_like_flags() {
    let c = client(&["-key", "-mtu", "-mtu", "1200"]);
    assert_eq!(
        c.common.key, "-mtu",
        "a value flag takes the next token whatever it is"
    );
    assert_eq!(c.common.mtu, 1200);
    let c = client(&["--key", "-", "-ratelimit", "-5"]);
    assert_eq!(c.common.key, "-");
    assert_eq!(c.common.ratelimit, 0, "negative ratelimit becomes 0");
    assert!(c.common.warnings.iter().any(|w| w.contains("ratelimit")));
    let c = client(&["--key=--x"]);
    assert_eq!(c.common.key, "--x");
    assert!(
        client_err(&["--", "-mtu", "5"]).contains("-mtu"),
        "nothing after -- is a flag"
    );
    assert!(client_err(&["-nosuchflag"]).contains("nosuchflag"));
}

#[test]
fn int_syntax_like_go() {
    assert_eq!(client(&["-sockbuf", "0x100"]).common.sockbuf, 256);
    let e = client_err(&["-mtu", "1350.5"]);
    assert!(e.contains("--mtu") && e.contains("integer"), "{e}");
    let e = client_err(&["-mtu", ""]);
    assert!(e.contains("--mtu"), "{e}");
}

// ------------------------------------------------------------------------------------------
// modes

#[test]
fn mode_table() {
    let nd = |m: &str| client(&["-mode", m]).common.nodelay;
    assert_eq!(
        nd("normal"),
        NoDelay {
            nodelay: false,
            interval: 40,
            resend: 2,
            nc: true
        }
    );
    assert_eq!(
        nd("fast"),
        NoDelay {
            nodelay: false,
            interval: 30,
            resend: 2,
            nc: true
        }
    );
    assert_eq!(
        nd("fast2"),
        NoDelay {
            nodelay: true,
            interval: 20,
            resend: 2,
            nc: true
        }
    );
    assert_eq!(
        nd("fast3"),
        NoDelay {
            nodelay: true,
            interval: 10,
            resend: 2,
            nc: true
        }
    );
    assert_eq!(
        nd("manual"),
        NoDelay {
            nodelay: false,
            interval: 50,
            resend: 0,
            nc: false
        }
    );
    let c = client(&[
        "-mode",
        "manual",
        "-nodelay",
        "1",
        "-interval",
        "15",
        "-resend",
        "3",
        "-nc",
        "1",
    ]);
    assert_eq!(
        c.common.nodelay,
        NoDelay {
            nodelay: true,
            interval: 15,
            resend: 3,
            nc: true
        }
    );
    // the hidden flags do nothing outside manual mode
    let c = client(&["-mode", "fast2", "-interval", "99"]);
    assert_eq!(c.common.nodelay.interval, 20);
    let c = client(&["-mode", "manual", "-interval", "1"]);
    assert_eq!(c.common.nodelay.interval, 10);
    assert!(c.common.warnings.iter().any(|w| w.contains("clamped")));
    assert_eq!(
        client(&["-mode", "manual", "-interval", "99999"])
            .common
            .nodelay
            .interval,
        5000
    );
    let e = client_err(&["-mode", "turbo"]);
    assert!(
        e.contains("--mode") && e.contains("fast3") && e.contains("manual"),
        "{e}"
    );
}

// ------------------------------------------------------------------------------------------
// multi-call

#[test]
fn multicall_names() {
    for name in [
        "kcptun-client",
        "/usr/bin/kcptun-client",
        "client_linux_amd64",
        "kcptun_client",
        "client_darwin_arm64.exe",
    ] {
        assert!(
            matches!(parse_env(argv(name, &["-mtu", "1400"]), None), Ok(Command::Client(c)) if c.common.mtu == 1400),
            "{name}"
        );
    }
    for name in ["kcptun-server", "./server_linux_amd64", "server_linux_arm7"] {
        assert!(
            matches!(
                parse_env(argv(name, &["-t", "/s"]), None),
                Ok(Command::Server(_))
            ),
            "{name}"
        );
    }
    assert_eq!(
        parse_env(argv("kcptun-client", &["-v"]), None),
        Ok(Command::Version)
    );
    for h in ["help", "h"] {
        assert!(
            matches!(parse_env(argv("kcptun-client", &[h]), None), Ok(Command::Help(t)) if t.contains("--remoteaddr")),
            "urfave's help command"
        );
    }
    assert!(
        matches!(parse_env(argv("kcptun-server", &["-h"]), None), Ok(Command::Help(h)) if h.contains("--target"))
    );
    // a plain name needs a subcommand
    assert!(matches!(
        parse_env(argv("/usr/local/bin/kcptun", &["-mtu", "1"]), None),
        Err(CliError::Usage(_))
    ));
    assert!(matches!(
        parse_env(argv("kcptun", &[]), None),
        Err(CliError::Usage(_))
    ));
    assert!(matches!(
        parse_env(argv("myclient", &["client"]), None),
        Ok(Command::Client(_))
    ));
}

#[test]
fn version_and_help() {
    for args in [
        &["-v"][..],
        &["--version"],
        &["-version"],
        &["client", "-v"],
        &["server", "--version"],
        &["client", "-version"],
    ] {
        assert_eq!(run(args), Ok(Command::Version), "{args:?}");
    }
    for args in [
        &["-h"][..],
        &["--help"],
        &["client", "-h"],
        &["client", "-help"],
        &["server", "--help"],
    ] {
        assert!(matches!(run(args), Ok(Command::Help(_))), "{args:?}");
    }
    let Ok(Command::Help(h)) = run(&["client", "-h"]) else {
        panic!()
    };
    assert!(
        h.contains("--localaddr") && h.contains("--ds") && !h.contains("--acknodelay"),
        "hidden flags hidden"
    );
    assert!(kcptun::cmd::version_line().starts_with("kcptun version "));
}

// ------------------------------------------------------------------------------------------
// addresses

#[test]
fn addresses() {
    let c = client(&["-l", "/tmp/k.sock", "-r", "example.com:100-200"]);
    assert_eq!(c.localaddr, StreamAddr::Unix("/tmp/k.sock".into()));
    assert_eq!(c.remoteaddr, ep("example.com", 100, 200));
    assert_eq!(c.remoteaddr.port_count(), 101);
    assert_eq!(c.remoteaddr.with_port(150), "example.com:150");
    let c = client(&["-l", "[::]:8080", "-r", "[2001:db8::1]:443"]);
    assert_eq!(c.localaddr, StreamAddr::Tcp(ep("::", 8080, 8080)));
    assert_eq!(c.remoteaddr.with_port(443), "[2001:db8::1]:443");
    for (args, needle) in [
        (&["-r", "host"][..], "--remoteaddr"),
        (&["-r", "host:0"], "out of range"),
        (&["-r", "host:65536"], "out of range"),
        (&["-r", "host:20-10"], "min is larger"),
        (&["-r", "host:1-70000"], "out of range"),
        (&["-r", "host:x"], "bad port"),
        (&["-r", "::1:80"], "brackets"),
        (&["-l", ":1000-1001"], "--localaddr"),
        (&["-l", ""], "--localaddr"),
    ] {
        let e = client_err(args);
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    let e = run(&["server", "-l", "h:5-1"]).unwrap_err();
    assert!(e.to_string().contains("--listen"), "{e}");
    let e = run(&["server", "-t", "h:1-2"]).unwrap_err();
    assert!(
        e.to_string().contains("--target") && e.to_string().contains("range"),
        "{e}"
    );
}

// ------------------------------------------------------------------------------------------
// validation

#[test]
fn validation_errors_name_the_flag_and_range() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["-crypt", "rot13"],
            &["--crypt", "aes-128-gcm", "sm4", "null"],
        ),
        (&["-conn", "0"], &["--conn", "1..=65535"]),
        (&["-conn", "65536"], &["--conn"]),
        (&["-QPPCount", "0"], &["--QPPCount", "1..=65535"]),
        (&["-QPPCount", "70000"], &["--QPPCount"]),
        (
            &["-ds", "200", "-ps", "57"],
            &["--datashard", "--parityshard", "256"],
        ),
        (&["-ds", "-1"], &["--datashard"]),
        (&["-ps", "-1"], &["--parityshard"]),
        (&["-sndwnd", "0"], &["--sndwnd", "1..=65535"]),
        (&["-rcvwnd", "65536"], &["--rcvwnd"]),
        (&["-keepalive", "0"], &["--keepalive"]),
        (&["-keepalive", "-3"], &["--keepalive"]),
        (&["-smuxver", "3"], &["--smuxver", "1", "2"]),
        (&["-smuxver", "0"], &["--smuxver"]),
        (&["-mtu", "1501"], &["--mtu", "1500"]),
        (&["-mtu", "50"], &["--mtu", "100"]),
        (&["-framesize", "0"], &["--framesize", "65535"]),
        (&["-framesize", "65536"], &["--framesize"]),
        (&["-snmpperiod", "0"], &["--snmpperiod"]),
        (&["-dscp", "64"], &["--dscp", "63"]),
        (&["-sockbuf", "-1"], &["--sockbuf"]),
        (&["-smuxbuf", "0"], &["--smuxbuf"]),
        (&["-streambuf", "-1"], &["--streambuf"]),
        (&["-streambuf", "8388608"], &["--streambuf", "--smuxbuf"]),
        (&["-closewait", "-1"], &["--closewait"]),
        (&["-halfclose", "-1"], &["--halfclose"]),
        (&["-autoexpire", "-1"], &["--autoexpire"]),
        (&["-scavengettl", "-1"], &["--scavengettl"]),
        (&["-mode", "manual", "-nodelay", "-1"], &["--nodelay"]),
        (&["-mode", "manual", "-interval", "-1"], &["--interval"]),
        (&["-mode", "manual", "-resend", "-1"], &["--resend"]),
        (&["-mode", "manual", "-nc", "-1"], &["--nc"]),
    ];
    for (args, needles) in cases {
        let e = client_err(args);
        for n in *needles {
            assert!(e.contains(n), "{args:?}: {e:?} lacks {n:?}");
        }
    }
    // edges that are fine
    client(&[
        "-ds", "128", "-ps", "128", "-mtu", "100", "-conn", "65535", "-ds", "0",
    ]);
    client(&["-mtu", "1500", "-dscp", "63", "-framesize", "1"]);
}

#[test]
fn file_values_are_validated_and_named() {
    let p = write("v.json", r#"{"mtu": 9000}"#);
    let e = client_err(&["-c", s(&p)]);
    assert!(
        e.contains("\"mtu\"") && e.contains(s(&p)) && e.contains("1500"),
        "{e}"
    );
}

#[test]
fn warnings() {
    let w = |args: &[&str]| client(args).common.warnings.join("\n");
    assert!(w(&["-keepalive", "30"]).contains("30 s"));
    assert!(w(&["-keepalive", "29"]).is_empty());
    assert!(w(&["-autoexpire", "60", "-scavengettl", "600"]).contains("scavengettl"));
    assert!(w(&["-autoexpire", "600", "-scavengettl", "60"]).is_empty());
    assert!(w(&["-QPP", "-QPPCount", "4"]).contains("QPPCount"));
    assert!(
        w(&["-QPPCount", "4"]).is_empty(),
        "QPP warnings only with QPP on"
    );
}

#[test]
fn metrics_flag_and_config_key() {
    assert_eq!(client(&[]).common.metrics, None, "off by default");
    assert_eq!(
        client(&["--metrics", "127.0.0.1:9100"])
            .common
            .metrics
            .as_deref(),
        Some("127.0.0.1:9100")
    );
    assert_eq!(
        server(&["-metrics", "[::1]:9100"])
            .common
            .metrics
            .as_deref(),
        Some("[::1]:9100")
    );
    let json = write("m.json", r#"{"metrics": ":9101"}"#);
    assert_eq!(
        server(&["-c", s(&json), "--metrics", "127.0.0.1:1"])
            .common
            .metrics
            .as_deref(),
        Some(":9101"),
        "the config file wins, as for every key"
    );
    let yaml = write("m.yaml", "metrics: 127.0.0.1:9102\n");
    assert_eq!(
        client(&["-c", s(&yaml)]).common.metrics.as_deref(),
        Some("127.0.0.1:9102")
    );
    let e = client_err(&["--metrics", "9100"]);
    assert_eq!(e, "invalid --metrics \"9100\": expected host:port");
    let e = client_err(&["--metrics", "h:1-2"]);
    assert!(e.contains("a port range (1-2) is not allowed here"), "{e}");
    let lines = kcptun::cmd::client_settings_lines(&client(&["--metrics", "127.0.0.1:9"]));
    assert!(
        lines.iter().any(|l| l == "metrics: 127.0.0.1:9"),
        "{lines:?}"
    );
}

#[test]
fn settings_printout() {
    let lines = kcptun::cmd::client_settings_lines(&client(&["-key", "SECRET", "-r", "h:1-2"]));
    let all = lines.join("\n");
    assert!(
        all.contains("remote address: h:1-2") && all.contains("encryption: aes"),
        "{all}"
    );
    assert!(all.contains("nodelay parameters: 0 30 2 1"));
    assert!(!all.contains("SECRET"), "the key is never printed");
    assert!(lines.iter().all(|l| l.contains(": ")));
    let sv = kcptun::cmd::server_settings_lines(&server(&[])).join("\n");
    assert!(
        sv.contains("smux version: auto") && sv.contains("target: 127.0.0.1:12948"),
        "{sv}"
    );
}

// ------------------------------------------------------------------------------------------
// bench and snmp

#[test]
fn bench_and_snmp_args() {
    let Ok(Command::Bench(b)) = run(&[
        "bench",
        "tunnel",
        "-crypt",
        "salsa20",
        "--mode",
        "fast2",
        "-ds",
        "0",
        "--ps",
        "0",
        "--nocomp",
        "--duration",
        "3",
        "-vs-go",
    ]) else {
        panic!()
    };
    let BenchCmd::Tunnel(t) = b.which else {
        panic!()
    };
    assert_eq!(
        (
            t.crypt.as_str(),
            t.mode.as_str(),
            t.datashard,
            t.parityshard
        ),
        ("salsa20", "fast2", 0, 0)
    );
    assert!(t.nocomp && t.vs_go);
    assert_eq!(t.duration, 3);
    let Ok(Command::Bench(b)) = run(&["bench", "crypt", "--size", "512", "--json"]) else {
        panic!()
    };
    assert!(matches!(b.which, BenchCmd::Crypt(c) if c.size == 512 && c.json));
    let Ok(Command::Bench(b)) = run(&["bench", "fec"]) else {
        panic!()
    };
    assert!(matches!(b.which, BenchCmd::Fec(f) if !f.json));
    assert!(matches!(
        run(&["bench", "tunnel", "--crypt", "rot13"]),
        Err(CliError::Usage(_))
    ));
    assert!(matches!(run(&["bench"]), Err(CliError::Usage(m)) if m.contains("tunnel")));
    let Ok(Command::Snmp(sn)) = run(&[
        "snmp",
        "-ctl",
        "/run/k.sock",
        "--watch",
        "-json",
        "--svg",
        "o.svg",
    ]) else {
        panic!()
    };
    assert_eq!(sn.ctl.as_deref(), Some(Path::new("/run/k.sock")));
    assert!(sn.watch && sn.json);
    assert_eq!(sn.svg.as_deref(), Some(Path::new("o.svg")));
    let Ok(Command::Snmp(sn)) = run(&["snmp", "--file", "x.csv"]) else {
        panic!()
    };
    assert_eq!(sn.file.as_deref(), Some(Path::new("x.csv")));
    assert!(matches!(run(&["frobnicate"]), Err(CliError::Usage(m)) if m.contains("frobnicate")));
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    const WORDS: &[&str] = &[
        "client",
        "server",
        "bench",
        "snmp",
        "tunnel",
        "-",
        "--",
        "-l",
        "-r",
        "-t",
        "-c",
        "-mtu",
        "--mtu=",
        "-nocomp",
        "--nocomp=",
        "-key",
        "-ds",
        "--ps",
        "-mode",
        "manual",
        "-interval",
        "-5",
        "0",
        "65536",
        "[::1]:1-2",
        ":",
        "h:",
        "-v",
        "-h",
        "-QPP",
        "-QPPCount",
        "-crypt",
        "null",
        "-smuxver",
        "-frob",
        "=",
        "-=x",
        "---x",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Any argv parses or fails with a one-line error; it never panics.
        #[test]
        fn never_panics(
            toks in proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(WORDS).prop_map(str::to_string),
                    "[-=:a-z0-9\\[\\]]{0,8}",
                ],
                0..8,
            ),
            name in proptest::sample::select(&["kcptun", "kcptun-client", "server_linux_amd64"][..]),
        ) {
            let args: Vec<&str> = toks.iter().map(String::as_str).collect();
            if let Err(e) = parse_env(argv(name, &args), None) {
                let m = e.to_string();
                prop_assert!(!m.is_empty() && !m.contains('\n'), "{:?}", m);
            }
        }
    }
}
