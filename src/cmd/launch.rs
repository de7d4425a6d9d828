//! Turns validated settings into the event loop's configuration and runs client or server.

use std::sync::Arc;
use std::time::Duration;

use log::{info, warn};

use super::endpoint::StreamAddr;
use super::settings::{ClientSettings, CommonSettings, ServerSettings};
use super::RunError;
use crate::io::daemon::{self, PidFile};
use crate::io::driver::{ClientConfig, CommonConfig, Driver, LocalAddr, ServerConfig};
use crate::io::udp::SockOpts;
use crate::proto::crypt::{derive_key, Method};
use crate::proto::kcp::KcpConfig;
use crate::proto::qpp::{self, Qpp};
use crate::proto::smux::{SmuxConfig, Version};
use crate::proto::tunnel::TunnelConfig;

/// Go's smux keep-alive timeout, fixed in kcptun.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Silence with data outstanding after which a client stops opening streams on a session.
const STALE_AFTER: Duration = Duration::from_secs(3);

fn kcp_config(c: &CommonSettings, snd: u16, rcv: u16) -> KcpConfig {
    KcpConfig {
        nodelay: c.nodelay.nodelay,
        interval_ms: c.nodelay.interval,
        resend: c.nodelay.resend,
        nc: c.nodelay.nc,
        snd_wnd: snd,
        rcv_wnd: rcv,
        mtu: usize::from(c.mtu),
        ack_nodelay: c.acknodelay,
        dup_lone: true,
        repair_ahead: true,
        short_path_cap: true,
        delay_window: c.delaywnd,
    }
}

fn common_config(c: &CommonSettings, smuxver: Option<u8>) -> Result<CommonConfig, RunError> {
    let method: Method = c
        .crypt
        .parse()
        .map_err(|e| RunError::Other(format!("{e}")))?;
    let fec = (c.datashard > 0 && c.parityshard > 0)
        .then_some((usize::from(c.datashard), usize::from(c.parityshard)));
    let version = match smuxver {
        Some(1) => Some(Version::V1),
        Some(_) => Some(Version::V2),
        None => None,
    };
    let tunnel = TunnelConfig {
        method,
        pass: derive_key(c.key.as_bytes()),
        fec,
        udp_mtu: usize::from(c.mtu),
        kcp: kcp_config(c, c.sndwnd, c.rcvwnd),
        compress: !c.nocomp,
        smux: SmuxConfig {
            version,
            keepalive: c.keepalive,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
            max_receive_buffer: c.smuxbuf,
            max_stream_buffer: u32::try_from(c.streambuf).unwrap_or(u32::MAX),
            max_frame_size: c.framesize,
        },
        stale_after: STALE_AFTER,
    };
    let qpp = if c.qpp {
        for w in qpp::warnings(c.key.as_bytes(), c.qpp_count) {
            warn!("{w}");
        }
        Some((
            Arc::new(Qpp::new(c.key.as_bytes(), c.qpp_count)),
            c.key.as_bytes().to_vec(),
        ))
    } else {
        None
    };
    Ok(CommonConfig {
        tunnel,
        sock: SockOpts {
            sockbuf: c.sockbuf,
            dscp: c.dscp,
            ..SockOpts::default()
        },
        quiet: c.quiet,
        halfclose: if c.halfclose.is_zero() {
            Duration::from_secs(u64::from(u32::MAX))
        } else {
            c.halfclose
        },
        snmplog: c.snmplog.as_ref().map(|p| p.display().to_string()),
        snmpperiod: c.snmpperiod,
        ctl: c.ctl.clone(),
        metrics: c.metrics.clone(),
        watch_parent: c.plugin,
        qpp,
        ratelimit: c.ratelimit,
    })
}

fn local_addr(a: &StreamAddr) -> LocalAddr {
    match a {
        StreamAddr::Tcp(e) => LocalAddr::Tcp(e.with_port(e.port_min)),
        StreamAddr::Unix(p) => LocalAddr::Unix(p.clone()),
    }
}

/// Builds the client loop (binds the local listener); `run` it afterwards.
pub fn client_driver(s: &ClientSettings) -> Result<Driver, RunError> {
    let common = common_config(&s.common, Some(s.smuxver))?;
    let cfg = ClientConfig {
        common,
        listen: local_addr(&s.localaddr),
        remote_host: s.remoteaddr.host.clone(),
        remote_ports: (s.remoteaddr.port_min, s.remoteaddr.port_max),
        conns: usize::from(s.conn),
        autoexpire: s.autoexpire,
        scavenge_ttl: s.scavengettl,
    };
    Driver::client(cfg).map_err(|e| RunError::Other(e.to_string()))
}

/// Builds the server loop (binds the UDP ports); `run` it afterwards.
pub fn server_driver(s: &ServerSettings) -> Result<Driver, RunError> {
    let common = common_config(&s.common, s.smuxver)?;
    let kcp = common.tunnel.kcp.clone();
    let cfg = ServerConfig {
        common,
        listen_host: s.listen.host.clone(),
        listen_ports: (s.listen.port_min, s.listen.port_max),
        target: local_addr(&s.target),
        kcp,
    };
    Driver::server(cfg).map_err(|e| RunError::Other(e.to_string()))
}

/// Pidfile, then (with `--daemon`) detach, then run until SIGTERM/SIGINT. Sockets are bound
/// before detaching, so every user error is reported on the terminal.
fn run_driver(mut d: Driver, c: &CommonSettings) -> Result<(), RunError> {
    let mut pidfile = match &c.pidfile {
        Some(p) => Some(PidFile::lock(p).map_err(|e| RunError::Other(e.to_string()))?),
        None => None,
    };
    if c.daemon {
        if c.log.is_none() {
            warn!("--daemon without --log: log lines are discarded");
        }
        daemon::detach().map_err(|e| RunError::Other(e.to_string()))?;
        if let Some(p) = &mut pidfile {
            p.write_pid()
                .map_err(|e| RunError::Other(format!("pidfile: {e}")))?;
        }
    }
    let r = d.run().map_err(|e| RunError::Other(e.to_string()));
    drop(pidfile);
    r
}

/// Raises the open-files soft limit to the hard one, with one log line when it changes.
fn raise_nofile() {
    match daemon::raise_nofile() {
        daemon::NofileRaise::Raised { from, to } => {
            info!("open-files limit raised from {from} to {to} (the hard limit)")
        }
        daemon::NofileRaise::Unchanged(_) => {}
        daemon::NofileRaise::Failed { soft, err } => {
            warn!("cannot raise the open-files limit above {soft}: {err}")
        }
    }
}

/// Runs a client until SIGTERM/SIGINT.
pub fn run_client(s: &ClientSettings) -> Result<(), RunError> {
    raise_nofile();
    run_driver(client_driver(s)?, &s.common)
}

/// Runs a server until SIGTERM/SIGINT.
pub fn run_server(s: &ServerSettings) -> Result<(), RunError> {
    raise_nofile();
    run_driver(server_driver(s)?, &s.common)
}
