//! SIP003 plugin mode: kcptun started by shadowsocks (shadowsocks-libev, shadowsocks-rust).
//!
//! Shadowsocks starts its plugin with the environment variables `SS_REMOTE_HOST`,
//! `SS_REMOTE_PORT`, `SS_LOCAL_HOST`, `SS_LOCAL_PORT` and `SS_PLUGIN_OPTIONS`, often without any
//! argument. When `SS_REMOTE_HOST` is set and the command line gives none of `-l/-r/-t`, kcptun
//! runs as a plugin:
//!
//! * client: listens on `SS_LOCAL_HOST:SS_LOCAL_PORT`, dials `SS_REMOTE_HOST:SS_REMOTE_PORT`;
//! * server: listens on `SS_REMOTE_HOST:SS_REMOTE_PORT`, forwards to `SS_LOCAL_HOST:SS_LOCAL_PORT`.
//!
//! The role comes from the subcommand or program name (`kcptun server`, `kcptun-server`); a plain
//! `kcptun` is a server when the options hold the bare key `server`, a client otherwise.
//!
//! `SS_PLUGIN_OPTIONS` is `key=value;key2;…` with SIP003's escapes (a backslash takes the next
//! character literally, so `\;`, `\=` and `\\` stand for themselves). [`parse_options`] splits
//! it; [`option_args`] turns each pair into a `--name=value` flag of the one flag table, so every
//! flag name (and JSON key) works with the validation and error text of the flag itself. A bare
//! key means `true`.

use std::ffi::OsString;

use super::args::{Kind, SPECS};
use super::error::CliError;

/// The SIP003 variables of the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginEnv {
    pub remote_host: Option<String>,
    pub remote_port: Option<String>,
    pub local_host: Option<String>,
    pub local_port: Option<String>,
    pub options: Option<String>,
}

impl PluginEnv {
    /// Reads the `SS_*` variables; `None` unless `SS_REMOTE_HOST` is set (no plugin mode).
    pub fn from_env() -> Option<PluginEnv> {
        let var = |n: &str| std::env::var_os(n).map(|v| v.to_string_lossy().into_owned());
        let env = PluginEnv {
            remote_host: var("SS_REMOTE_HOST"),
            remote_port: var("SS_REMOTE_PORT"),
            local_host: var("SS_LOCAL_HOST"),
            local_port: var("SS_LOCAL_PORT"),
            options: var("SS_PLUGIN_OPTIONS"),
        };
        env.remote_host.is_some().then_some(env)
    }

    /// `host:port` of `SS_REMOTE_*` (`remote`) or `SS_LOCAL_*`, brackets around IPv6.
    pub(crate) fn addr(&self, remote: bool) -> Result<String, CliError> {
        let (hv, pv, host, port) = if remote {
            let (h, p) = (&self.remote_host, &self.remote_port);
            ("SS_REMOTE_HOST", "SS_REMOTE_PORT", h, p)
        } else {
            let (h, p) = (&self.local_host, &self.local_port);
            ("SS_LOCAL_HOST", "SS_LOCAL_PORT", h, p)
        };
        let missing = |v: &str| {
            CliError::Usage(format!(
                "plugin mode: {v} is not set; shadowsocks sets it when it starts kcptun as a SIP003 plugin (otherwise give -l/-r/-t)"
            ))
        };
        let host = host.as_deref().ok_or_else(|| missing(hv))?.trim();
        let port = port.as_deref().ok_or_else(|| missing(pv))?.trim();
        if host.is_empty() {
            return Err(missing(hv));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => {
                return Err(CliError::Usage(format!(
                    "plugin mode: {pv}={port:?} is not a port number in 1..=65535"
                )))
            }
        }
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Ok(if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        })
    }
}

/// An error in `SS_PLUGIN_OPTIONS`, as one line.
fn opt_err(msg: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("SS_PLUGIN_OPTIONS: {msg}"))
}

/// Splits `SS_PLUGIN_OPTIONS` into `(key, value)` pairs in order; a bare key has no value. Empty
/// items (`a;;b`, a trailing `;`) are skipped; whitespace around a key is ignored.
pub fn parse_options(s: &str) -> Result<Vec<(String, Option<String>)>, CliError> {
    let mut out = Vec::new();
    let mut key = String::new();
    let mut value: Option<String> = None;
    let mut chars = s.chars();
    let mut finish = |key: &mut String, value: &mut Option<String>| -> Result<(), CliError> {
        let k = key.trim().to_string();
        let v = value.take();
        key.clear();
        if k.is_empty() {
            return match v {
                Some(v) => Err(opt_err(format!("value {v:?} has no key; write key=value"))),
                None => Ok(()),
            };
        }
        out.push((k, v));
        Ok(())
    };
    while let Some(c) = chars.next() {
        let lit = match c {
            '\\' => match chars.next() {
                Some(n) => n,
                None => {
                    return Err(opt_err(
                        "ends in a lone backslash; write \\\\ for a backslash",
                    ))
                }
            },
            ';' => {
                finish(&mut key, &mut value)?;
                continue;
            }
            '=' if value.is_none() => {
                value = Some(String::new());
                continue;
            }
            c => c,
        };
        match &mut value {
            Some(v) => v.push(lit),
            None => key.push(lit),
        }
    }
    finish(&mut key, &mut value)?;
    Ok(out)
}

/// Keys the plugin environment decides, refused in the options.
const FROM_ENV: [&str; 4] = ["localaddr", "remoteaddr", "listen", "target"];

/// The role named by the options: `Some(false)` for a bare `server`, `Some(true)` for `client`.
pub fn role_in(opts: &[(String, Option<String>)]) -> Option<bool> {
    opts.iter().rev().find_map(|(k, _)| match k.as_str() {
        "server" => Some(false),
        "client" => Some(true),
        _ => None,
    })
}

/// Turns option pairs into flags of `kcptun client` (`client`) or `kcptun server`.
pub fn option_args(
    opts: &[(String, Option<String>)],
    client: bool,
) -> Result<Vec<OsString>, CliError> {
    let mut out = Vec::new();
    for (k, v) in opts {
        if k == "server" || k == "client" {
            if (k == "client") != client {
                let role = if client { "client" } else { "server" };
                return Err(opt_err(format!(
                    "{k:?} contradicts the role {role} given by the command line or program name; drop it"
                )));
            }
            continue;
        }
        if k == "c" || k.eq_ignore_ascii_case("config") {
            let path = v
                .as_deref()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| opt_err(format!("{k} needs a file: {k}=/path/to/config.json")))?;
            out.push(OsString::from(format!("--c={path}")));
            continue;
        }
        let spec = SPECS.iter().find(|s| {
            s.side.has(client)
                && (s.name == k
                    || s.aliases.contains(&k.as_str())
                    || s.json.is_some_and(|j| j.eq_ignore_ascii_case(k)))
        });
        let Some(spec) = spec else {
            let other = SPECS
                .iter()
                .any(|s| s.name == k || s.json == Some(k.as_str()));
            let role = if client { "client" } else { "server" };
            return Err(opt_err(if other {
                format!("unknown option {k:?} for the {role}")
            } else {
                format!("unknown option {k:?}; options are the flag names (key, crypt, mode, mtu, nocomp, metrics, …; see kcptun {role} -h)")
            }));
        };
        if FROM_ENV.contains(&spec.name) {
            return Err(opt_err(format!(
                "{k:?} is set by shadowsocks through SS_REMOTE_HOST/SS_LOCAL_HOST in plugin mode; drop it"
            )));
        }
        if spec.name == "daemon" {
            return Err(opt_err(
                "\"daemon\" is not allowed in plugin mode: shadowsocks must remain the parent; drop it",
            ));
        }
        let flag = match (spec.kind, v) {
            (_, Some(v)) => format!("--{}={v}", spec.name),
            (Kind::Bool, None) => format!("--{}", spec.name),
            (_, None) => {
                return Err(opt_err(format!(
                    "{k} needs a value: {k}=VALUE (see kcptun {} -h)",
                    if client { "client" } else { "server" }
                )))
            }
        };
        out.push(OsString::from(flag));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, Option<String>)> {
        parse_options(s).unwrap()
    }

    fn kv(k: &str, v: Option<&str>) -> (String, Option<String>) {
        (k.to_string(), v.map(str::to_string))
    }

    #[test]
    fn options_split_with_escapes_and_bare_keys() {
        assert_eq!(
            pairs("key=abc;crypt=aes;nocomp"),
            [
                kv("key", Some("abc")),
                kv("crypt", Some("aes")),
                kv("nocomp", None)
            ]
        );
        assert_eq!(
            pairs(r"key=a\;b\=c\\d;mode=fast3"),
            [kv("key", Some(r"a;b=c\d")), kv("mode", Some("fast3"))]
        );
        // only the first unescaped '=' separates; later ones belong to the value
        assert_eq!(pairs("key=a=b"), [kv("key", Some("a=b"))]);
        assert_eq!(pairs(r"k\=x=1"), [kv("k=x", Some("1"))]);
        assert_eq!(pairs("key="), [kv("key", Some(""))]);
        assert_eq!(
            pairs(";; server ;mtu=1400;"),
            [kv("server", None), kv("mtu", Some("1400"))]
        );
        assert_eq!(pairs(""), []);
        assert_eq!(
            pairs(r"key=\q"),
            [kv("key", Some("q"))],
            "any escaped char is literal"
        );
    }

    #[test]
    fn option_errors_are_one_line_and_name_the_problem() {
        let e = parse_options(r"key=abc\").unwrap_err().to_string();
        assert!(e.contains("lone backslash"), "{e}");
        let e = parse_options("=5").unwrap_err().to_string();
        assert!(e.contains("no key"), "{e}");
        let e = option_args(&pairs("frob=1"), true).unwrap_err().to_string();
        assert!(
            e.starts_with("SS_PLUGIN_OPTIONS: unknown option \"frob\""),
            "{e}"
        );
        let e = option_args(&pairs("conn=2"), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown option \"conn\" for the server"), "{e}");
        let e = option_args(&pairs("mtu"), true).unwrap_err().to_string();
        assert!(e.contains("mtu needs a value"), "{e}");
        let e = option_args(&pairs("listen=:1"), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("set by shadowsocks"), "{e}");
        let e = option_args(&pairs("daemon"), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("daemon"), "{e}");
        let e = option_args(&pairs("server"), true).unwrap_err().to_string();
        assert!(e.contains("contradicts"), "{e}");
        for e in [
            option_args(&pairs("frob"), true).unwrap_err(),
            parse_options("a\\").unwrap_err(),
        ] {
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn options_become_flags_of_the_table() {
        let a = option_args(
            &pairs("server;key=s;nocomp;QPP=false;qpp-count=7;ds=5;c=/x.json;mtu=1400"),
            false,
        )
        .unwrap();
        let a: Vec<String> = a.into_iter().map(|o| o.into_string().unwrap()).collect();
        assert_eq!(
            a,
            [
                "--key=s",
                "--nocomp",
                "--QPP=false",
                "--QPPCount=7",
                "--datashard=5",
                "--c=/x.json",
                "--mtu=1400"
            ]
        );
        assert_eq!(role_in(&pairs("key=1;server")), Some(false));
        assert_eq!(role_in(&pairs("client")), Some(true));
        assert_eq!(role_in(&pairs("key=server")), None);
    }

    #[test]
    fn addresses_from_the_environment() {
        let env = PluginEnv {
            remote_host: Some("::1".into()),
            remote_port: Some("8388".into()),
            local_host: Some("127.0.0.1".into()),
            local_port: Some("1080".into()),
            options: None,
        };
        assert_eq!(env.addr(true).unwrap(), "[::1]:8388");
        assert_eq!(env.addr(false).unwrap(), "127.0.0.1:1080");
        let env = PluginEnv {
            remote_host: Some("[fe80::1]".into()),
            remote_port: Some("0".into()),
            ..PluginEnv::default()
        };
        let e = env.addr(true).unwrap_err().to_string();
        assert!(e.contains("SS_REMOTE_PORT=\"0\""), "{e}");
        let e = env.addr(false).unwrap_err().to_string();
        assert!(e.contains("SS_LOCAL_HOST is not set"), "{e}");
    }
}
