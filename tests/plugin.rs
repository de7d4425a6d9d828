//! SIP003 plugin mode against the real shadowsocks-libev (Debian package `shadowsocks-libev`):
//! `ss-local` and `ss-server` start our binary as their plugin (`--plugin`, `--plugin-opts`),
//! the test speaks SOCKS5 to ss-local and moves 8 MiB each way to a checking target, SHA-256
//! verified at both ends. Also: the UDP port belongs to our process, the plugin goes away with its
//! parent (SIGTERM to ss-local, SIGKILL to ss-server), IPv6 hosts, and the one-line errors of
//! plugin mode without shadowsocks.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const SS_SERVER: &str = "/usr/bin/ss-server";
const SS_LOCAL: &str = "/usr/bin/ss-local";

/// Fails (never skips) when shadowsocks-libev is missing.
fn require_ss() {
    for p in [SS_SERVER, SS_LOCAL] {
        assert!(
            Path::new(p).is_file(),
            "shadowsocks-libev not found: install it with `apt-get install -y shadowsocks-libev` ({p} is missing)"
        );
    }
}

/// SOCKS5 CONNECT (no authentication) to `target` through the proxy at `proxy`.
fn socks5(proxy: SocketAddr, target: SocketAddr) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect_timeout(&proxy, Duration::from_secs(5))
        .map_err(|e| format!("connect to ss-local {proxy}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&[5, 1, 0])
        .map_err(|e| format!("socks hello: {e}"))?;
    let mut r = [0u8; 2];
    s.read_exact(&mut r)
        .map_err(|e| format!("socks hello reply: {e}"))?;
    if r != [5, 0] {
        return Err(format!("socks hello refused: {r:?}"));
    }
    let mut req = vec![5, 1, 0];
    match target {
        SocketAddr::V4(a) => {
            req.push(1);
            req.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            req.push(4);
            req.extend_from_slice(&a.ip().octets());
        }
    }
    req.extend_from_slice(&target.port().to_be_bytes());
    s.write_all(&req)
        .map_err(|e| format!("socks connect: {e}"))?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head)
        .map_err(|e| format!("socks connect reply: {e}"))?;
    if head[1] != 0 {
        return Err(format!("socks connect failed with code {}", head[1]));
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut n = [0u8; 1];
            s.read_exact(&mut n).map_err(|e| e.to_string())?;
            usize::from(n[0]) + 2
        }
        t => return Err(format!("socks reply with address type {t}")),
    };
    let mut skip = vec![0u8; rest];
    s.read_exact(&mut skip).map_err(|e| e.to_string())?;
    Ok(s)
}

/// Parent pid and state letter of `pid` from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(u32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    let mut it = after.split(' ');
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Running processes of our binary whose parent is `parent` (the plugin ss started).
fn our_children(parent: u32) -> Vec<u32> {
    let ours = std::fs::canonicalize(ours()).unwrap();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        if exe.as_deref() == Some(ours.as_path())
            && stat(pid).is_some_and(|(pp, st)| pp == parent && st != 'Z')
        {
            out.push(pid);
        }
    }
    out
}

/// Waits until ss started its plugin (our binary) and returns its pid.
fn plugin_of(ss: &mut Proc) -> u32 {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        if let [pid] = our_children(ss.pid())[..] {
            return pid;
        }
        if let Some(st) = ss.exited() {
            panic!("{} exited ({st})\n{}", ss.name, ss.log());
        }
        assert!(
            Instant::now() < end,
            "{} did not start kcptun as its plugin within 15 s\n{}",
            ss.name,
            ss.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Socket inodes of the UDP sockets bound to `port` (`/proc/net/udp` and `udp6`).
fn udp_inodes(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for f in ["/proc/net/udp", "/proc/net/udp6"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let Some(local) = cols.get(1) else { continue };
            let p = local.rsplit(':').next().unwrap_or("");
            if u16::from_str_radix(p, 16).ok() == Some(port) {
                if let Some(inode) = cols.get(9) {
                    out.push(inode.to_string());
                }
            }
        }
    }
    out
}

/// Whether `pid` holds an open socket with one of `inodes`.
fn holds_socket(pid: u32, inodes: &[String]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|l| {
            let l = l.to_string_lossy().into_owned();
            inodes.iter().any(|i| l == format!("socket:[{i}]"))
        })
    })
}

/// Waits (bounded) until `pid` is gone (or a zombie nobody reaps).
fn wait_gone(pid: u32, what: &str, logs: &str) -> Duration {
    let t0 = Instant::now();
    while stat(pid).is_some_and(|(_, st)| st != 'Z') {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{what}: plugin {pid} still running 10 s later\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    t0.elapsed()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// ss-server and ss-local on `host` (an IP literal), each with our binary as plugin; 8 MiB each
/// way through SOCKS5; the server plugin's `metrics` option; then the plugins must leave with
/// their parents. `by_name`: the plugins are the symlinks `kcptun-server`/`kcptun-client` (the
/// role from the name); otherwise the plain binary, a server by its `server` option.
fn through_shadowsocks(host: &str, target: &Target, by_name: bool) {
    require_ss();
    let _g = serial();
    let server_port = free_port_on(host);
    let socks_port = free_port_on(host);
    let metrics: SocketAddr = format!("{}:{}", bracket(host), free_port_on(host))
        .parse()
        .unwrap();
    let ss_method = "chacha20-ietf-poly1305";
    // The kcptun key holds a ';' and a '\' to exercise SIP003's escapes end to end.
    let key_opt = r"key=k\;cp\\tun";
    let role = if by_name { "" } else { "server;" };
    let server_opts =
        format!("{role}{key_opt};crypt=aes-128;mode=fast3;nocomp;mtu=1400;metrics={metrics}");
    let client_opts = format!("{key_opt};crypt=aes-128;mode=fast3;nocomp;mtu=1400;conn=2");
    let links = TempDir::new("plugin-names");
    let (server_plugin_path, client_plugin_path) = if by_name {
        let (s, c) = (links.join("kcptun-server"), links.join("kcptun-client"));
        std::os::unix::fs::symlink(ours(), &s).unwrap();
        std::os::unix::fs::symlink(ours(), &c).unwrap();
        (s, c)
    } else {
        (ours(), ours())
    };
    let (server_plugin_path, client_plugin_path) = (
        server_plugin_path.display().to_string(),
        client_plugin_path.display().to_string(),
    );
    let server_port_s = server_port.to_string();
    // ss-server and ss-local share every flag but their own listen address and plugin options.
    let ss = |name: &str, prog: &str, own: &[&str], plugin: &str, opts: &str| {
        let mut args = vec![
            "-s",
            host,
            "-p",
            &server_port_s,
            "-k",
            "sspass",
            "-m",
            ss_method,
        ];
        args.extend_from_slice(own);
        args.extend_from_slice(&["--plugin", plugin, "--plugin-opts", opts]);
        Proc::spawn(name, Path::new(prog), &strs(&args))
    };
    let mut ss_server = ss(
        "ss-server",
        SS_SERVER,
        &[],
        &server_plugin_path,
        &server_opts,
    );
    let socks_port_s = socks_port.to_string();
    let mut ss_local = ss(
        "ss-local",
        SS_LOCAL,
        &["-l", &socks_port_s, "-b", host],
        &client_plugin_path,
        &client_opts,
    );
    let server_plugin = plugin_of(&mut ss_server);
    let client_plugin = plugin_of(&mut ss_local);
    let logs = |a: &Proc, b: &Proc| format!("{}{}", a.log(), b.log());

    // The kcptun UDP port is the shadowsocks server port, owned by the plugin.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let inodes = udp_inodes(server_port);
        if !inodes.is_empty() && holds_socket(server_plugin, &inodes) {
            assert!(
                !holds_socket(ss_server.pid(), &inodes),
                "ss-server itself holds UDP port {server_port}"
            );
            break;
        }
        assert!(
            Instant::now() < end,
            "UDP port {server_port} is not held by the plugin {server_plugin}\n{}",
            logs(&ss_server, &ss_local)
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let proxy: SocketAddr = format!("{}:{socks_port}", bracket(host)).parse().unwrap();
    // ss-local may need a moment until its plugin listens.
    let end = Instant::now() + Duration::from_secs(15);
    let stats = loop {
        let r = socks5(proxy, target.addr())
            .and_then(|s| transfer_over(Conn::Tcp(s), 8 * MIB, 8 * MIB, Opts::default()));
        match r {
            Ok(st) => break st,
            Err(e) if Instant::now() > end => {
                panic!(
                    "transfer through shadowsocks + kcptun: {e}\n{}",
                    logs(&ss_server, &ss_local)
                )
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    assert_eq!((stats.up, stats.down), (8 * MIB, 8 * MIB));
    eprintln!(
        "{host}: 8 MiB each way through ss-local → kcptun → kcptun → ss-server at {:.1} MB/s",
        stats.mbps()
    );
    let log = ss_server.log();
    assert!(
        log.contains("plugin: SIP003"),
        "the server plugin logs its mode to stderr\n{log}"
    );
    // `metrics=…` among the plugin options: the server plugin counts what it carried.
    let (status, body) = http_get(metrics, "/metrics").unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let received = body
        .lines()
        .find_map(|l| l.strip_prefix("kcptun_bytes_received_total "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        received.is_some_and(|v| v >= 8 * MIB),
        "server plugin metrics after 8 MiB up: {received:?}\n{body}"
    );
    assert!(body.contains("role=\"server\""), "{body}");

    // Parent gone: ss-local is stopped with SIGTERM (it stops its plugin), ss-server is killed
    // outright (the plugin notices it was reparented).
    let all = logs(&ss_server, &ss_local);
    Command::new("kill")
        .args(["-TERM", &ss_local.pid().to_string()])
        .status()
        .unwrap();
    let t = wait_gone(client_plugin, "ss-local got SIGTERM", &all);
    eprintln!(
        "client plugin gone {:.2} s after SIGTERM to ss-local",
        t.as_secs_f64()
    );
    ss_server.kill();
    let t = wait_gone(server_plugin, "ss-server was SIGKILLed", &all);
    eprintln!(
        "server plugin gone {:.2} s after SIGKILL to ss-server",
        t.as_secs_f64()
    );
    let log = ss_server.log();
    assert!(
        log.contains(&format!(
            "parent process {} is gone, shutting down",
            ss_server.pid()
        )),
        "the orphaned plugin says why it stops\n{log}"
    );
    // Nothing left behind: the kcptun UDP port is free again.
    let end = Instant::now() + Duration::from_secs(5);
    while !udp_inodes(server_port).is_empty() {
        assert!(
            Instant::now() < end,
            "UDP port {server_port} still bound after the plugin left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

#[test]
fn shadowsocks_libev_with_kcptun_plugin_ipv4() {
    let target = Target::start();
    through_shadowsocks("127.0.0.1", &target, false);
}

#[test]
fn shadowsocks_libev_with_kcptun_plugin_ipv6_by_name() {
    let target = Target::start_v6();
    through_shadowsocks("::1", &target, true);
}

/// Runs our binary with the SIP003 variables (no shadowsocks) and returns (exit code, stderr).
fn run_plugin_env(args: &[&str], opts: &str) -> (Option<i32>, String) {
    let out = Command::new(ours())
        .args(args)
        .env("SS_REMOTE_HOST", "127.0.0.1")
        .env("SS_REMOTE_PORT", "1")
        .env("SS_LOCAL_HOST", "127.0.0.1")
        .env("SS_LOCAL_PORT", "1")
        .env("SS_PLUGIN_OPTIONS", opts)
        .env_remove("KCPTUN_KEY")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plugin_option_errors_are_one_line_with_exit_2() {
    for (opts, want) in [
        (
            "frob=1",
            "kcptun: SS_PLUGIN_OPTIONS: unknown option \"frob\"",
        ),
        (
            "mtu=abc",
            "kcptun: SS_PLUGIN_OPTIONS: invalid value \"abc\" for --mtu: expected an integer",
        ),
        ("mtu=9000", "kcptun: SS_PLUGIN_OPTIONS: invalid --mtu 9000"),
        (
            "crypt=rot13",
            "kcptun: SS_PLUGIN_OPTIONS: invalid --crypt \"rot13\"",
        ),
        (
            "key=a\\",
            "kcptun: SS_PLUGIN_OPTIONS: ends in a lone backslash",
        ),
        ("sndwnd", "kcptun: SS_PLUGIN_OPTIONS: sndwnd needs a value"),
        (
            "metrics=nowhere",
            "kcptun: SS_PLUGIN_OPTIONS: invalid --metrics \"nowhere\"",
        ),
    ] {
        let (code, err) = run_plugin_env(&[], opts);
        assert_eq!(code, Some(2), "{opts}: {err}");
        assert!(err.starts_with(want), "{opts}: got {err:?}, want {want:?}…");
        assert_eq!(err.lines().count(), 1, "{opts}: {err}");
    }
    let (code, err) = run_plugin_env(&["server"], "client");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("contradicts the role server"), "{err}");
}

#[test]
fn plugin_mode_is_chosen_by_role_and_flags() {
    use kcptun::cmd::{parse_with, Command as Cmd, PluginEnv};
    let env = PluginEnv {
        remote_host: Some("::1".into()),
        remote_port: Some("8388".into()),
        local_host: Some("127.0.0.1".into()),
        local_port: Some("40000".into()),
        options: Some("mode=fast2;key=x".into()),
    };
    let argv = |v: &[&str]| v.iter().map(Into::into).collect::<Vec<_>>();
    // plain `kcptun` (as shadowsocks-libev starts it): a client unless `server` is an option
    let Ok(Cmd::Client(c)) = parse_with(argv(&["kcptun"]), None, Some(&env)) else {
        panic!("plain kcptun in plugin mode is a client");
    };
    assert_eq!(c.localaddr.to_string(), "127.0.0.1:40000");
    assert_eq!(c.remoteaddr.to_string(), "[::1]:8388");
    assert_eq!(c.common.key, "x");
    assert_eq!(c.common.mode.name(), "fast2");
    assert!(c.common.plugin);
    let srv = PluginEnv {
        options: Some("server;key=y".into()),
        ..env.clone()
    };
    let Ok(Cmd::Server(s)) = parse_with(argv(&["kcptun"]), None, Some(&srv)) else {
        panic!("`server` among the options makes a server");
    };
    assert_eq!(s.listen.to_string(), "[::1]:8388");
    assert_eq!(s.target.to_string(), "127.0.0.1:40000");
    assert!(s.common.plugin);
    for name in [
        &["kcptun-server"][..],
        &["kcptun", "server"][..],
        &["/x/kcptun_server"][..],
    ] {
        let Ok(Cmd::Server(s)) = parse_with(argv(name), None, Some(&env)) else {
            panic!("{name:?} is a server");
        };
        assert!(
            s.common.plugin && s.listen.to_string() == "[::1]:8388",
            "{name:?}"
        );
    }
    let Ok(Cmd::Client(c)) = parse_with(argv(&["kcptun-client", "--conn", "3"]), None, Some(&env))
    else {
        panic!("kcptun-client is a client");
    };
    assert!(c.common.plugin && c.conn == 3);
    // -l/-r/-t on the command line: not plugin mode, the SS_* variables are ignored
    let Ok(Cmd::Server(s)) =
        parse_with(argv(&["kcptun", "server", "-l", ":5000"]), None, Some(&env))
    else {
        panic!("an explicit server");
    };
    assert!(!s.common.plugin);
    assert_eq!(s.listen.to_string(), ":5000");
    // flags given to a plain `kcptun` (shadowsocks-rust's plugin_args) apply, options win
    let Ok(Cmd::Client(c)) = parse_with(
        argv(&["kcptun", "--mtu", "1300", "-mode", "fast3"]),
        None,
        Some(&env),
    ) else {
        panic!("plain kcptun with flags in plugin mode is a client");
    };
    assert!(c.common.plugin && c.common.mtu == 1300, "{c:?}");
    assert_eq!(
        c.common.mode.name(),
        "fast2",
        "SS_PLUGIN_OPTIONS overrides the flag"
    );
    assert!(matches!(
        parse_with(argv(&["kcptun", "-v"]), None, Some(&env)),
        Ok(Cmd::Version)
    ));
    // without SS_REMOTE_HOST nothing changes: a bare `kcptun` is still a usage error
    assert!(parse_with(argv(&["kcptun"]), None, None).is_err());
}
