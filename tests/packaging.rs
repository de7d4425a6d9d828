//! Checks of `packaging/` that run on any Linux box, without OpenWrt or a running systemd.
//!
//! * Every shell file parses (`sh -n`, and under busybox/bash --posix when present).
//! * The OpenWrt UCI→JSON conversion (`kcptun-uci2json.sh`) runs under plain POSIX shells against
//!   the sample configs in `tests/data/uci/`, with the stand-ins of `tests/data/openwrt-stubs.sh`
//!   for `/lib/functions.sh` and jshn; its JSON is parsed and compared whole (values and types).
//! * The procd init script's `start_service` runs with the same stand-ins and a temporary directory.
//! * The package Makefile's install recipe runs against the stand-in SDK in `tests/data/openwrt-sdk`.
//! * The systemd units hold the directives the packaging promises, `systemd-analyze verify` finds
//!   nothing to say about them (pointed at the built `kcptun`), and the offline security score is low.
//!   Without `systemd-analyze` (Debian package `systemd`) these fail with an install hint.

use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn path(rel: &str) -> PathBuf {
    root().join(rel)
}

const UCI2JSON: &str = "packaging/openwrt/files/kcptun-uci2json.sh";
const INIT: &str = "packaging/openwrt/files/kcptun.init";
const STUBS: &str = "tests/data/openwrt-stubs.sh";

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null 2>&1")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The POSIX shells to run the OpenWrt scripts under: `sh` always (dash on Debian), plus busybox
/// ash (OpenWrt's shell) and bash in POSIX mode when installed.
fn shells() -> Vec<Vec<&'static str>> {
    let mut v = vec![vec!["sh"]];
    if have("busybox") {
        v.push(vec!["busybox", "sh"]);
    }
    if have("bash") {
        v.push(vec!["bash", "--posix"]);
    }
    v
}

fn run_sh(shell: &[&str], script: &str, envs: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(shell[0]);
    c.args(&shell[1..])
        .arg("-c")
        .arg(script)
        .current_dir(root());
    c.env("STUBS", path(STUBS)).env("UCI2JSON", path(UCI2JSON));
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("run shell")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A private scratch directory under the system temp dir, emptied first.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kcptun-pkg-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

// ---------------------------------------------------------------------------------------------
// JSON keys of Go kcptun (SPEC §7.5, latest) plus ours ("ctl", "metrics"), with their JSON types.

#[derive(Clone, Copy, PartialEq, Debug)]
enum Ty {
    Str,
    Int,
    Bool,
}

const COMMON_KEYS: &[(&str, Ty)] = &[
    ("key", Ty::Str),
    ("crypt", Ty::Str),
    ("mode", Ty::Str),
    ("mtu", Ty::Int),
    ("ratelimit", Ty::Int),
    ("sndwnd", Ty::Int),
    ("rcvwnd", Ty::Int),
    ("datashard", Ty::Int),
    ("parityshard", Ty::Int),
    ("dscp", Ty::Int),
    ("nocomp", Ty::Bool),
    ("acknodelay", Ty::Bool),
    ("nodelay", Ty::Int),
    ("interval", Ty::Int),
    ("resend", Ty::Int),
    ("nc", Ty::Int),
    ("sockbuf", Ty::Int),
    ("smuxver", Ty::Int),
    ("smuxbuf", Ty::Int),
    ("framesize", Ty::Int),
    ("streambuf", Ty::Int),
    ("keepalive", Ty::Int),
    ("log", Ty::Str),
    ("snmplog", Ty::Str),
    ("snmpperiod", Ty::Int),
    ("quiet", Ty::Bool),
    ("tcp", Ty::Bool),
    ("pprof", Ty::Bool),
    ("qpp", Ty::Bool),
    ("qpp-count", Ty::Int),
    ("closewait", Ty::Int),
    ("ctl", Ty::Str),
    ("metrics", Ty::Str),
];
const CLIENT_KEYS: &[(&str, Ty)] = &[
    ("localaddr", Ty::Str),
    ("remoteaddr", Ty::Str),
    ("conn", Ty::Int),
    ("autoexpire", Ty::Int),
    ("scavengettl", Ty::Int),
];
const SERVER_KEYS: &[(&str, Ty)] = &[("listen", Ty::Str), ("target", Ty::Str)];

/// Every key of `v` is a kcptun key of `role` ("client"/"server") with the right JSON type.
fn assert_known_keys(role: &str, v: &Value, what: &str) {
    let own = if role == "client" {
        CLIENT_KEYS
    } else {
        SERVER_KEYS
    };
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not a JSON object: {v}"));
    for (k, val) in obj {
        let ty = COMMON_KEYS
            .iter()
            .chain(own)
            .find(|(name, _)| name == k)
            .map(|&(_, t)| t)
            .unwrap_or_else(|| panic!("{what}: '{k}' is not a {role} key"));
        let ok = match ty {
            Ty::Str => val.is_string(),
            Ty::Int => val.is_i64(),
            Ty::Bool => val.is_boolean(),
        };
        assert!(ok, "{what}: '{k}' should be {ty:?}, is {val}");
    }
}

// ---------------------------------------------------------------------------------------------
// Shell syntax

#[test]
fn shell_files_parse() {
    for shell in shells() {
        for f in [UCI2JSON, INIT, STUBS] {
            let out = Command::new(shell[0])
                .args(&shell[1..])
                .arg("-n")
                .arg(path(f))
                .output()
                .expect("run shell");
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{shell:?} -n {f}: {}",
                text(&out.stderr)
            );
        }
    }
}

#[test]
fn init_script_is_an_rc_common_procd_script() {
    let s = fs::read_to_string(path(INIT)).unwrap();
    assert!(s.starts_with("#!/bin/sh /etc/rc.common\n"));
    for line in ["START=99", "USE_PROCD=1"] {
        assert!(s.lines().any(|l| l == line), "{INIT} lacks {line}");
    }
    for f in ["start_service()", "service_triggers()"] {
        assert!(s.contains(f), "{INIT} lacks {f}");
    }
}

// ---------------------------------------------------------------------------------------------
// UCI → JSON

/// `kcptun_section_json SECTION` on `config` under `shell`: Ok(JSON) or Err(stderr).
fn convert_with(shell: &[&str], config: &str, section: &str) -> Result<Value, String> {
    let script = format!(
        ". \"$STUBS\" && . \"$UCI2JSON\" && config_load \"$CONF\" && kcptun_section_json {section}"
    );
    let out = run_sh(shell, &script, &[("CONF", &path(config))]);
    if !out.status.success() {
        assert!(
            out.stdout.is_empty(),
            "failed conversion printed: {}",
            text(&out.stdout)
        );
        return Err(text(&out.stderr));
    }
    assert!(
        out.stderr.is_empty(),
        "{config} [{section}]: {}",
        text(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{config} [{section}]: bad JSON ({e}): {}",
            text(&out.stdout)
        )
    });
    Ok(v)
}

/// The conversion under every available shell, which must all agree.
fn convert(config: &str, section: &str) -> Result<Value, String> {
    let mut first: Option<Result<Value, String>> = None;
    for shell in shells() {
        let r = convert_with(&shell, config, section);
        match &first {
            None => first = Some(r),
            Some(f) => assert_eq!(
                f.as_ref().ok(),
                r.as_ref().ok(),
                "{shell:?} disagrees on {config} [{section}]"
            ),
        }
    }
    first.unwrap()
}

/// "SECTION TYPE USER" for every instance `kcptun_foreach_instance` yields.
fn instances(config: &str) -> Vec<String> {
    let script = ". \"$STUBS\" && . \"$UCI2JSON\" && config_load \"$CONF\" && \
                  cb() { printf '%s %s %s\\n' \"$1\" \"$2\" \"$(kcptun_section_user \"$1\")\"; } && \
                  kcptun_foreach_instance cb";
    let out = run_sh(&["sh"], script, &[("CONF", &path(config))]);
    assert!(out.status.success(), "{config}: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect()
}

#[test]
fn uci_full_client_every_option_kind() {
    let v = convert("tests/data/uci/full.config", "home").unwrap();
    assert_known_keys("client", &v, "full.config home");
    assert_eq!(
        v,
        json!({
            "localaddr": "127.0.0.1:12948",
            "remoteaddr": "203.0.113.7:29900-29910",
            "key": "it's a \"secret\" with \\ and spaces",
            "crypt": "aes-128",
            "mode": "fast2",
            "conn": 4,
            "autoexpire": 300,
            "scavengettl": -1,
            "mtu": 1400,
            "ratelimit": -5,
            "sndwnd": 256,
            "rcvwnd": 2048,
            "datashard": 0,
            "parityshard": 0,
            "dscp": 46,
            "nocomp": true,
            "acknodelay": false,
            "nodelay": 1,
            "interval": 20,
            "resend": 2,
            "nc": 1,
            "sockbuf": 16777216,
            "smuxver": 1,
            "smuxbuf": 8388608,
            "framesize": 16384,
            "streambuf": 4194304,
            "keepalive": 5,
            "log": "/tmp/kcptun-home.log",
            "snmplog": "/tmp/snmp-20060102.log",
            "snmpperiod": 30,
            "quiet": true,
            "tcp": false,
            "pprof": false,
            "qpp": true,
            "qpp-count": 113,
            "closewait": 3,
            "ctl": "/var/run/kcptun-home.sock",
            "metrics": "127.0.0.1:9100"
        })
    );
}

#[test]
fn uci_full_server_and_anonymous_client() {
    let v = convert("tests/data/uci/full.config", "vps").unwrap();
    assert_known_keys("server", &v, "full.config vps");
    assert_eq!(
        v,
        json!({
            "listen": "0.0.0.0:29900-29910",
            "target": "/run/app.sock",
            "key": "double quoted",
            "crypt": "null",
            "mode": "manual",
            "nodelay": 0,
            "interval": 40,
            "nocomp": false,
            "tcp": false,
            "qpp-count": 61
        })
    );
    // The fifth section is anonymous: the stand-in names it cfg5, as functions.sh would.
    assert_eq!(
        convert("tests/data/uci/full.config", "cfg5").unwrap(),
        json!({ "remoteaddr": "[2001:db8::1]:4000" })
    );
    // enabled beats disabled; neither means enabled; servers come first.
    assert_eq!(
        instances("tests/data/uci/full.config"),
        ["vps server", "home client", "cfg5 client"]
    );
}

#[test]
fn uci_openwrt_packages_go_schema() {
    let cfg = "tests/data/uci/openwrt-packages.config";
    let server = convert(cfg, "cfg1").unwrap();
    assert_known_keys("server", &server, "openwrt-packages server");
    assert_eq!(
        server,
        json!({
            "listen": ":29900",
            "target": "127.0.0.1:12948",
            "key": "secret",
            "crypt": "aes",
            "mode": "fast",
            "datashard": 10,
            "parityshard": 3,
            "dscp": 46,
            "nocomp": true,
            "snmplog": "/var/log/snmp.log",
            "snmpperiod": 60,
            "pprof": true,
            "quiet": true
        })
    );
    let client = convert(cfg, "cfg2").unwrap();
    assert_known_keys("client", &client, "openwrt-packages client");
    assert_eq!(
        client,
        json!({
            "localaddr": "[::]:12948",
            "remoteaddr": "vps:29900",
            "key": "secret",
            "crypt": "aes",
            "mode": "fast",
            "conn": 1,
            "autoexpire": 0,
            "scavengettl": 600,
            "mtu": 1350,
            "sndwnd": 128,
            "rcvwnd": 512,
            "nocomp": true,
            "sockbuf": 4194304,
            "smuxbuf": 4194304,
            "keepalive": 10,
            "quiet": true
        })
    );
    assert_eq!(instances(cfg), ["cfg1 server nobody", "cfg2 client nobody"]);
}

#[test]
fn uci_luci_app_kcptun_schema() {
    let cfg = "tests/data/uci/luci-app-kcptun.config";
    let v = convert(cfg, "cfg033bd2").unwrap();
    assert_known_keys("client", &v, "luci-app-kcptun");
    assert_eq!(
        v,
        json!({
            "localaddr": "0.0.0.0:12948",
            "remoteaddr": "[2001:db8::7]:29900",
            "key": "luci key",
            "crypt": "salsa20",
            "mode": "fast3",
            "conn": 2,
            "nocomp": true,
            "acknodelay": false,
            "nodelay": 1,
            "nc": 1,
            "smuxver": 2
        })
    );
    // Only the servers section that general.server selects runs, as the general's daemon_user.
    assert_eq!(instances(cfg), ["cfg033bd2 client kcptun"]);
    assert!(convert(cfg, "general")
        .unwrap_err()
        .contains("type 'general'"));
}

#[test]
fn uci_bad_values_are_refused() {
    let e = convert("tests/data/uci/bad-int.config", "c").unwrap_err();
    assert!(
        e.contains("'mtu' must be an integer") && e.contains("1350 bytes"),
        "{e}"
    );
    let e = convert("tests/data/uci/bad-bool.config", "s").unwrap_err();
    assert!(
        e.contains("'nocomp' must be a boolean") && e.contains("maybe"),
        "{e}"
    );
    let e = convert("tests/data/uci/bad-type.config", "t").unwrap_err();
    assert!(e.contains("type 'tunnel'"), "{e}");
    // A section of another type is never started.
    assert!(instances("tests/data/uci/bad-type.config").is_empty());
}

#[test]
fn uci_default_config_is_disabled_but_valid() {
    let cfg = "packaging/openwrt/files/kcptun.config";
    assert!(
        instances(cfg).is_empty(),
        "the shipped config must start nothing"
    );
    let c = convert(cfg, "client").unwrap();
    assert_known_keys("client", &c, "default client");
    assert_eq!(c["remoteaddr"], "vps.example.com:29900");
    assert_eq!(c["conn"], 1);
    assert_eq!(c["nocomp"], false);
    let s = convert(cfg, "server").unwrap();
    assert_known_keys("server", &s, "default server");
    assert_eq!(s["listen"], ":29900");
    assert_eq!(s["sndwnd"], 1024);
}

// ---------------------------------------------------------------------------------------------
// procd init script

#[test]
fn init_start_service_writes_configs_and_instances() {
    let d = scratch("init");
    fs::create_dir_all(d.join("etc")).unwrap();
    fs::copy(path("tests/data/uci/init.config"), d.join("etc/kcptun")).unwrap();
    let conf = d.join("conf");
    fs::create_dir_all(&conf).unwrap();
    fs::write(conf.join("stale.json"), "{}").unwrap();
    let script = ". \"$STUBS\" && . \"$INIT\" && start_service && service_triggers";
    let envs: [(&str, &Path); 4] = [
        ("INIT", &path(INIT)),
        ("UCI_CONFIG_DIR", &d.join("etc")),
        ("KCPTUN_CONF_DIR", &conf),
        ("KCPTUN_UCI2JSON", &path(UCI2JSON)),
    ];
    let out = run_sh(&["sh"], script, &envs);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The broken section is reported and skipped; the others still start.
    assert!(stderr.contains("section 'broken' not started"), "{stderr}");
    assert!(!conf.join("stale.json").exists(), "stale configs must go");
    assert!(!conf.join("broken.json").exists() && !conf.join("broken.json.tmp").exists());

    let calls = text(&out.stdout);
    let mut expected = String::new();
    for (sec, role) in [("srv", "server"), ("cli", "client")] {
        let json = conf.join(format!("{sec}.json"));
        let j = json.display();
        expected += &format!(
            "procd_open_instance [{sec}]\n\
             procd_set_param [command] [/usr/bin/kcptun] [{role}] [-c] [{j}]\n\
             procd_set_param [respawn]\n\
             procd_set_param [stdout] [1]\n\
             procd_set_param [stderr] [1]\n\
             procd_set_param [file] [{j}]\n\
             procd_set_param [limits] [nofile=65536 65536]\n\
             procd_set_param [reload_signal] [HUP]\n\
             procd_close_instance\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&json).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{j} holds the key; mode {mode:o}");
        let v: Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
        assert_known_keys(role, &v, &json.display().to_string());
    }
    expected += "procd_add_reload_trigger [kcptun]\n";
    assert_eq!(calls, expected);
    let cli: Value = serde_json::from_slice(&fs::read(conf.join("cli.json")).unwrap()).unwrap();
    assert_eq!(
        cli,
        json!({"localaddr": ":12948", "remoteaddr": "vps:29900", "key": "k2", "quiet": true})
    );

    let out = run_sh(
        &["sh"],
        ". \"$STUBS\" && . \"$INIT\" && stop_service",
        &envs,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_dir(&conf).unwrap().count(),
        0,
        "stop_service leaves keys behind"
    );
    let _ = fs::remove_dir_all(&d);
}

// ---------------------------------------------------------------------------------------------
// OpenWrt package Makefile

#[test]
fn openwrt_makefile_installs_the_package() {
    let mk = fs::read_to_string(path("packaging/openwrt/Makefile")).unwrap();
    for needle in [
        "include $(INCLUDE_DIR)/package.mk",
        "lang/rust/rust-package.mk",
        "$(eval $(call RustBinPackage,kcptun))",
        "$(eval $(call BuildPackage,kcptun))",
        "PKG_LICENSE:=MIT",
        "PKG_BUILD_DEPENDS:=rust/host",
    ] {
        assert!(mk.contains(needle), "Makefile lacks {needle}");
    }
    assert!(
        have("make"),
        "make is missing: install it (apt-get install -y make) to test packaging/openwrt/Makefile"
    );
    let d = scratch("opkg");
    fs::create_dir_all(d.join("inst/bin")).unwrap();
    fs::write(d.join("inst/bin/kcptun"), "#!/bin/sh\n").unwrap();
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(path("packaging/openwrt"))
        .arg(format!(
            "TOPDIR={}",
            path("tests/data/openwrt-sdk").display()
        ))
        .arg(format!("PKG_INSTALL_DIR={}", d.join("inst").display()))
        .arg(format!("BUILD_DIR={}", d.join("build").display()))
        .arg(format!("DESTDIR={}", d.join("root").display()))
        .args(["install-kcptun", "prepare"])
        .output()
        .unwrap();
    assert!(out.status.success(), "make: {}", text(&out.stderr));
    let r = d.join("root");
    use std::os::unix::fs::PermissionsExt;
    for (f, mode) in [
        ("usr/bin/kcptun", 0o755),
        ("etc/init.d/kcptun", 0o755),
        ("etc/config/kcptun", 0o600),
        ("usr/share/kcptun/kcptun-uci2json.sh", 0o644),
    ] {
        let m = fs::metadata(r.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(m.permissions().mode() & 0o777, mode, "{f}");
    }
    for link in ["usr/bin/kcptun-client", "usr/bin/kcptun-server"] {
        assert_eq!(
            fs::read_link(r.join(link)).unwrap(),
            Path::new("kcptun"),
            "{link}"
        );
    }
    assert_eq!(
        fs::read(r.join("usr/share/kcptun/kcptun-uci2json.sh")).unwrap(),
        fs::read(path(UCI2JSON)).unwrap()
    );
    // Build/Prepare copies this crate, without packaging/ or target/.
    let b = d.join("build/kcptun-0.1.0");
    assert!(
        b.join("Cargo.toml").exists() && b.join("Cargo.lock").exists() && b.join("src").is_dir()
    );
    assert!(!b.join("target").exists() && !b.join("packaging").exists());
    let _ = fs::remove_dir_all(&d);
}

// ---------------------------------------------------------------------------------------------
// systemd

const UNITS: &[(&str, &str, bool)] = &[
    ("kcptun-server.service", "server", false),
    ("kcptun-client.service", "client", false),
    ("kcptun-server@.service", "server", true),
    ("kcptun-client@.service", "client", true),
];

/// (key, value) of every assignment in a unit file, in order.
fn unit_assignments(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn systemd_units_hold_the_promised_settings() {
    for &(name, role, template) in UNITS {
        let t = fs::read_to_string(path(&format!("packaging/systemd/{name}"))).unwrap();
        let a = unit_assignments(&t);
        let has = |k: &str, v: &str| a.iter().any(|(kk, vv)| kk == k && vv == v);
        let cfg = if template {
            "%i".to_string()
        } else {
            role.to_string()
        };
        let rundir = if template {
            format!("kcptun/{role}-%i")
        } else {
            format!("kcptun/{role}")
        };
        let cred = format!("config.json:/etc/kcptun/{cfg}.json");
        let exec = format!("/usr/bin/kcptun {role} -c %d/config.json --ctl %t/{rundir}/ctl.sock");
        for (k, v) in [
            ("Type", "simple"),
            ("DynamicUser", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("NoNewPrivileges", "yes"),
            ("CapabilityBoundingSet", ""),
            ("AmbientCapabilities", ""),
            ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
            ("LimitNOFILE", "65536"),
            ("Restart", "on-failure"),
            ("RestartSec", "2"),
            ("ExecReload", "/bin/kill -HUP $MAINPID"),
            ("SystemCallFilter", "@system-service"),
            ("After", "network-online.target"),
            ("Wants", "network-online.target"),
            ("WantedBy", "multi-user.target"),
            ("LoadCredential", cred.as_str()),
            ("RuntimeDirectory", rundir.as_str()),
            ("ExecStart", exec.as_str()),
        ] {
            assert!(has(k, v), "{name}: missing {k}={v}");
        }
        let mut keys: Vec<&str> = a.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        // SystemCallFilter is given twice on purpose (allow list, then deny list); nothing else.
        assert_eq!(before - keys.len(), 1, "{name}: a key is set twice");
    }
}

#[test]
fn systemd_example_configs_are_valid() {
    for role in ["server", "client"] {
        let f = format!("packaging/systemd/{role}.json.example");
        let v: Value = serde_json::from_slice(&fs::read(path(&f)).unwrap()).unwrap();
        assert_known_keys(role, &v, &f);
        let addr = if role == "server" {
            "listen"
        } else {
            "remoteaddr"
        };
        assert!(v[addr].is_string(), "{f} lacks {addr}");
    }
}

fn systemd_analyze() -> &'static str {
    assert!(
        have("systemd-analyze"),
        "systemd-analyze is missing: install it with `apt-get install -y systemd` to test \
         packaging/systemd"
    );
    "systemd-analyze"
}

/// Copies of the units in a scratch directory, ExecStart pointing at the built kcptun.
fn unit_copies(name: &str) -> PathBuf {
    let d = scratch(name);
    let bin = d.join("kcptun");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kcptun"), &bin).unwrap();
    for &(unit, _, _) in UNITS {
        let t = fs::read_to_string(path(&format!("packaging/systemd/{unit}"))).unwrap();
        let t = t.replace("/usr/bin/kcptun", &bin.display().to_string());
        fs::write(d.join(unit), t).unwrap();
    }
    d
}

#[test]
fn systemd_analyze_verify_is_silent() {
    let sa = systemd_analyze();
    let d = unit_copies("verify");
    // Templates are verified through an instance (the template file sits beside it).
    for unit in [
        "kcptun-server.service",
        "kcptun-client.service",
        "kcptun-server@test.service",
        "kcptun-client@home-vps.service",
    ] {
        let out = Command::new(sa)
            .arg("verify")
            .arg(d.join(unit))
            .output()
            .unwrap();
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        let ours: Vec<&str> = all.lines().filter(|l| l.contains("kcptun")).collect();
        assert!(
            out.status.success() && ours.is_empty(),
            "systemd-analyze verify {unit} (exit {:?}):\n{all}",
            out.status.code()
        );
    }
    // The low-port drop-in, applied to a unit and a template instance, is clean too.
    for unit in ["kcptun-server.service", "kcptun-client@.service"] {
        let dropin = d.join(format!("{unit}.d"));
        fs::create_dir_all(&dropin).unwrap();
        fs::copy(
            path("packaging/systemd/low-port.conf"),
            dropin.join("low-port.conf"),
        )
        .unwrap();
    }
    for unit in ["kcptun-server.service", "kcptun-client@lan.service"] {
        let out = Command::new(sa)
            .env("SYSTEMD_UNIT_PATH", format!("{}:", d.display()))
            .arg("verify")
            .arg(d.join(unit))
            .output()
            .unwrap();
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success() && !all.contains("kcptun"),
            "verify {unit} with low-port.conf:\n{all}"
        );
    }
    // And it does complain about a broken copy, so the silence above means something.
    let bad = d.join("kcptun-broken.service");
    let t = fs::read_to_string(d.join("kcptun-server.service")).unwrap();
    fs::write(
        &bad,
        t.replace("ProtectSystem=strict", "ProtectSystem=stricter"),
    )
    .unwrap();
    let out = Command::new(sa).arg("verify").arg(&bad).output().unwrap();
    assert!(
        text(&out.stderr).contains("kcptun-broken.service"),
        "verify saw nothing wrong"
    );
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn systemd_security_exposure_is_low() {
    let sa = systemd_analyze();
    let d = unit_copies("security");
    for &(unit, _, template) in UNITS {
        let unit = if template {
            unit.replace("@.", "@x.")
        } else {
            unit.to_string()
        };
        let out = Command::new(sa)
            .args(["security", "--offline=true", "--no-pager"])
            .arg(d.join(&unit))
            .output()
            .unwrap();
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        if all.contains("unrecognized option") || all.contains("Unknown option") {
            eprintln!("systemd-analyze too old for `security --offline`; score not checked");
            return;
        }
        let score: f64 = all
            .lines()
            .find_map(|l| {
                l.split_once("Overall exposure level for ")?
                    .1
                    .split_once(": ")
            })
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no exposure score for {unit}:\n{all}"));
        assert!(score <= 2.0, "{unit}: exposure {score} > 2.0\n{all}");
    }
    let _ = fs::remove_dir_all(&d);
}
