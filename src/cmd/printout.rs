//! The start-up printout of `kcptun client` / `kcptun server`: the resolved settings as
//! "name: value" lines (the key is never printed), then the warnings.

use std::path::PathBuf;

use super::settings::{ClientSettings, CommonSettings, ServerSettings};

fn common_lines(c: &CommonSettings, out: &mut Vec<String>) {
    let nd = c.nodelay;
    out.push(format!("encryption: {}", c.crypt));
    out.push(format!("QPP: {}", c.qpp));
    out.push(format!("QPP count: {}", c.qpp_count));
    out.push(format!("mode: {}", c.mode.name()));
    out.push(format!(
        "nodelay parameters: {} {} {} {}",
        u8::from(nd.nodelay),
        nd.interval,
        nd.resend,
        u8::from(nd.nc)
    ));
    out.push(format!("sndwnd: {} rcvwnd: {}", c.sndwnd, c.rcvwnd));
    out.push(format!("compression: {}", !c.nocomp));
    out.push(format!("mtu: {}", c.mtu));
    out.push(format!("ratelimit: {}", c.ratelimit));
    out.push(format!(
        "datashard: {} parityshard: {}",
        c.datashard, c.parityshard
    ));
    out.push(format!("acknodelay: {}", c.acknodelay));
    if c.delaywnd {
        out.push("delaywnd: true".to_string());
    }
    out.push(format!("dscp: {}", c.dscp));
    out.push(format!("sockbuf: {}", c.sockbuf));
    out.push(format!("smuxbuf: {}", c.smuxbuf));
    out.push(format!("framesize: {}", c.framesize));
    out.push(format!("streambuf: {}", c.streambuf));
    out.push(format!("keepalive: {}", c.keepalive.as_secs()));
    out.push(format!("closewait: {}", c.closewait.as_secs()));
    out.push(format!("halfclose: {}", c.halfclose.as_secs()));
    let p = |o: &Option<PathBuf>| {
        o.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    out.push(format!("snmplog: {}", p(&c.snmplog)));
    out.push(format!("snmpperiod: {}", c.snmpperiod.as_secs()));
    out.push(format!("log: {}", p(&c.log)));
    out.push(format!("quiet: {}", c.quiet));
    out.push(format!("ctl: {}", p(&c.ctl)));
    out.push(format!(
        "metrics: {}",
        c.metrics.as_deref().unwrap_or_default()
    ));
    if c.plugin {
        out.push("plugin: SIP003 (addresses from SS_REMOTE_*/SS_LOCAL_*)".to_string());
    }
    out.push(format!("config: {}", p(&c.config)));
}

/// The "name: value" lines describing client settings (the key is never printed).
pub fn client_settings_lines(s: &ClientSettings) -> Vec<String> {
    let mut out = vec![
        format!("version: {}", env!("CARGO_PKG_VERSION")),
        format!("smux version: {}", s.smuxver),
        format!("listening on: {}", s.localaddr),
        format!("remote address: {}", s.remoteaddr),
        format!("conn: {}", s.conn),
        format!("autoexpire: {}", s.autoexpire.map_or(0, |d| d.as_secs())),
        format!("scavengettl: {}", s.scavengettl.as_secs()),
    ];
    common_lines(&s.common, &mut out);
    out
}

/// The "name: value" lines describing server settings (the key is never printed).
pub fn server_settings_lines(s: &ServerSettings) -> Vec<String> {
    let mut out = vec![
        format!("version: {}", env!("CARGO_PKG_VERSION")),
        format!(
            "smux version: {}",
            s.smuxver
                .map_or_else(|| "auto".to_string(), |v| v.to_string())
        ),
        format!("listening on: {}", s.listen),
        format!("target: {}", s.target),
    ];
    common_lines(&s.common, &mut out);
    out
}

/// Logs the client settings at info level, then the warnings at warn level.
pub fn log_client_settings(s: &ClientSettings) {
    client_settings_lines(s)
        .iter()
        .for_each(|l| log::info!("{l}"));
    s.common.warnings.iter().for_each(|w| log::warn!("{w}"));
}

/// Logs the server settings at info level, then the warnings at warn level.
pub fn log_server_settings(s: &ServerSettings) {
    server_settings_lines(s)
        .iter()
        .for_each(|l| log::info!("{l}"));
    s.common.warnings.iter().for_each(|w| log::warn!("{w}"));
}
