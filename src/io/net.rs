//! Addresses and listeners: resolving `host:port`, binding UDP, TCP and unix-socket listeners
//! with errors a user can act on, non-blocking connects to the target, TCP options.
//!
//! Resolution follows Go: an empty host (`":4000"`) means every address of both families, which
//! becomes `[::]:4000` bound with IPV6_V6ONLY off (falling back to `0.0.0.0` where IPv6 is
//! unavailable); a named host resolves with the system resolver, IPv4 answers first. Resolution
//! blocks (it may ask DNS): call it at start-up or off the event loop.
//!
//! Listeners and streams come back as non-blocking mio types, ready to register. A unix-socket
//! listener removes an existing socket file only when nothing accepts connections on it.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};

use crate::io::udp::{SockOpts, UdpSock};

/// Why `host:port` did not resolve.
#[derive(Debug)]
pub enum ResolveError {
    /// Not of the form `host:port` with a numeric port.
    Malformed(String),
    /// The resolver failed or returned no address.
    NotFound(String, Option<io::Error>),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Malformed(s) => {
                write!(
                    f,
                    "address {s:?} is not host:port (for example 127.0.0.1:4000 or :4000)"
                )
            }
            ResolveError::NotFound(s, Some(e)) => write!(f, "cannot resolve {s:?}: {e}"),
            ResolveError::NotFound(s, None) => write!(f, "cannot resolve {s:?}: no address"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// Splits `host:port` (`[v6]:port` for IPv6 literals); the host may be empty.
pub fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']')?,
        None if host.contains(':') => return None, // bare IPv6 needs brackets
        None => host,
    };
    Some((host, port))
}

/// Resolves `host:port` to one address: `[::]:port` for an empty host (see module docs), the
/// literal for an IP, else the first IPv4 answer of the resolver, else its first answer.
pub fn resolve(s: &str) -> Result<SocketAddr, ResolveError> {
    let (host, port) = split_host_port(s).ok_or_else(|| ResolveError::Malformed(s.to_string()))?;
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| ResolveError::NotFound(s.to_string(), Some(e)))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| ResolveError::NotFound(s.to_string(), None))
}

/// Where a server forwards streams (`--target`): a TCP `host:port`, or else a unix-socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `host:port`, resolved at each connect.
    Tcp(String),
    /// Path of a unix stream socket.
    Unix(PathBuf),
}

impl Endpoint {
    /// `host:port` (with a numeric port) is TCP; anything else is taken as a unix-socket path.
    pub fn parse(s: &str) -> Endpoint {
        if split_host_port(s).is_some() {
            Endpoint::Tcp(s.to_string())
        } else {
            Endpoint::Unix(PathBuf::from(s))
        }
    }
}

/// Why a listener could not be set up. `Display` names the mistake and the fix.
#[derive(Debug)]
pub enum BindError {
    /// Something else listens there already.
    InUse(String),
    /// The address is not one of this machine's.
    NotAvailable(String),
    /// Privileged port or unwritable socket directory.
    Denied(String),
    /// The unix-socket path exists and is not a socket.
    NotASocket(PathBuf),
    /// Any other failure.
    Other(String, io::Error),
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::InUse(a) => match a.rsplit_once(':') {
                Some((_, port)) if !a.starts_with('/') && port.parse::<u16>().is_ok() => write!(
                    f,
                    "port {port} is already in use; pick another --listen or stop the other process"
                ),
                _ => write!(
                    f,
                    "{a} is already in use; pick another path or stop the other process"
                ),
            },
            BindError::NotAvailable(a) => {
                write!(
                    f,
                    "{a} is not an address of this machine; use one of its addresses or :port"
                )
            }
            BindError::Denied(a) => write!(
                f,
                "permission denied binding {a}; use a port above 1023 or a writable directory"
            ),
            BindError::NotASocket(p) => write!(
                f,
                "{} exists and is not a unix socket; remove it or pick another path",
                p.display()
            ),
            BindError::Other(a, e) => write!(f, "cannot listen on {a}: {e}"),
        }
    }
}

impl std::error::Error for BindError {}

fn bind_error(what: String, e: io::Error) -> BindError {
    match e.kind() {
        io::ErrorKind::AddrInUse => BindError::InUse(what),
        io::ErrorKind::AddrNotAvailable => BindError::NotAvailable(what),
        io::ErrorKind::PermissionDenied => BindError::Denied(what),
        _ => BindError::Other(what, e),
    }
}

/// Binds a non-blocking TCP listener. `[::]` gets IPV6_V6ONLY off (both families); if IPv6 is
/// unavailable, the IPv4 wildcard is used instead.
pub fn bind_tcp(addr: SocketAddr) -> Result<mio::net::TcpListener, BindError> {
    match try_bind_tcp(addr) {
        Err(e)
            if addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                && matches!(
                    e.raw_os_error(),
                    Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL)
                ) =>
        {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            try_bind_tcp(v4).map_err(|e| bind_error(v4.to_string(), e))
        }
        r => r.map_err(|e| bind_error(addr.to_string(), e)),
    }
}

/// Binds the UDP socket of a server listener with `opts`. `[::]` is dual-stack unless
/// `opts.v6only`; if IPv6 is unavailable, the IPv4 wildcard is used instead.
pub fn bind_udp(addr: SocketAddr, opts: &SockOpts) -> Result<UdpSock, BindError> {
    match UdpSock::bind(addr, opts) {
        Err(e)
            if addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                && matches!(
                    e.raw_os_error(),
                    Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL)
                ) =>
        {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            UdpSock::bind(v4, opts).map_err(|e| bind_error(v4.to_string(), e))
        }
        r => r.map_err(|e| bind_error(addr.to_string(), e)),
    }
}

fn try_bind_tcp(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        // Dual-stack where the wildcard is asked for; a specific v6 address is v6 anyway.
        s.set_only_v6(false)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(mio::net::TcpListener::from_std(s.into()))
}

/// Binds a non-blocking unix-socket listener at `path`. An existing socket file is removed only
/// if connecting to it is refused (a stale file from a dead process); if something accepts,
/// this is [`BindError::InUse`].
pub fn bind_unix(path: &Path) -> Result<mio::net::UnixListener, BindError> {
    use std::os::unix::fs::FileTypeExt;
    let what = || path.display().to_string();
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(BindError::NotASocket(path.to_path_buf()));
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(BindError::InUse(what())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path).map_err(|e| bind_error(what(), e))?;
            }
            Err(e) => return Err(bind_error(what(), e)),
        }
    }
    mio::net::UnixListener::bind(path).map_err(|e| bind_error(what(), e))
}

/// Starts a non-blocking TCP connect to `addr` with TCP_NODELAY (as Go sets by default). The
/// result is known on the first WRITABLE event: then check `take_error()` / `peer_addr()`.
pub fn connect_tcp(addr: SocketAddr) -> io::Result<mio::net::TcpStream> {
    let s = mio::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Starts a non-blocking connect to a unix stream socket.
pub fn connect_unix(path: &Path) -> io::Result<mio::net::UnixStream> {
    mio::net::UnixStream::connect(path)
}

/// Sets TCP_NODELAY on an accepted or connected stream.
pub fn set_nodelay(s: &mio::net::TcpStream, on: bool) -> io::Result<()> {
    s.set_nodelay(on)
}

/// Turns TCP keep-alive on with `idle` before the first probe and between probes, or off for
/// `None`.
pub fn set_keepalive(s: &mio::net::TcpStream, idle: Option<Duration>) -> io::Result<()> {
    let r = SockRef::from(s);
    match idle {
        None => r.set_keepalive(false),
        Some(d) => {
            let ka = TcpKeepalive::new().with_time(d);
            #[cfg(any(
                target_os = "linux",
                target_os = "android",
                target_os = "macos",
                target_os = "freebsd"
            ))]
            let ka = ka.with_interval(d);
            r.set_tcp_keepalive(&ka)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_resolves() {
        assert_eq!(split_host_port(":4000"), Some(("", 4000)));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", 80)));
        assert_eq!(split_host_port("::1:80"), None);
        assert_eq!(split_host_port("host:99999"), None);
        assert_eq!(split_host_port("/tmp/x.sock"), None);
        assert_eq!(resolve(":4000").unwrap(), "[::]:4000".parse().unwrap());
        assert_eq!(
            resolve("127.0.0.1:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!(resolve("[::1]:9").unwrap(), "[::1]:9".parse().unwrap());
        assert!(resolve("localhost:9").unwrap().ip().is_loopback());
        assert!(matches!(
            resolve("nonsense"),
            Err(ResolveError::Malformed(_))
        ));
        assert_eq!(
            Endpoint::parse("127.0.0.1:22"),
            Endpoint::Tcp("127.0.0.1:22".into())
        );
        assert_eq!(
            Endpoint::parse("/run/x.sock"),
            Endpoint::Unix("/run/x.sock".into())
        );
    }

    #[test]
    fn port_in_use_is_reported_clearly() {
        let a = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = a.local_addr().unwrap();
        let e = bind_tcp(addr).unwrap_err();
        assert!(matches!(e, BindError::InUse(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "port {} is already in use; pick another --listen or stop the other process",
                addr.port()
            )
        );
    }

    #[test]
    fn udp_port_in_use_and_dual_stack_wildcard() {
        let opts = SockOpts::default();
        let a = bind_udp("127.0.0.1:0".parse().unwrap(), &opts).unwrap();
        let addr = a.local_addr().unwrap();
        let e = bind_udp(addr, &opts).unwrap_err();
        assert!(matches!(e, BindError::InUse(_)), "{e:?}");
        assert!(e
            .to_string()
            .starts_with(&format!("port {} is already in use", addr.port())));
        let w = bind_udp(resolve(":0").unwrap(), &opts).unwrap();
        let port = w.local_addr().unwrap().port();
        // The wildcard socket also holds the IPv4 port.
        let e = bind_udp(format!("127.0.0.1:{port}").parse().unwrap(), &opts).unwrap_err();
        assert!(matches!(e, BindError::InUse(_)), "{e:?}");
    }

    #[test]
    fn connect_and_options() {
        let l = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let s = connect_tcp(l.local_addr().unwrap()).unwrap();
        assert!(s.nodelay().unwrap());
        set_keepalive(&s, Some(Duration::from_secs(10))).unwrap();
        assert!(SockRef::from(&s).keepalive().unwrap());
        set_keepalive(&s, None).unwrap();
        assert!(!SockRef::from(&s).keepalive().unwrap());
    }

    #[test]
    fn unix_listener_replaces_only_stale_sockets() {
        let dir = std::env::temp_dir().join(format!("kcptun-io-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let l = bind_unix(&path).unwrap();
        assert!(matches!(bind_unix(&path), Err(BindError::InUse(_))));
        let _c = connect_unix(&path).unwrap();
        drop(l); // the file stays behind, stale
        assert!(path.exists());
        let _l2 = bind_unix(&path).unwrap();
        let plain = dir.join("plain");
        std::fs::write(&plain, b"x").unwrap();
        assert!(matches!(bind_unix(&plain), Err(BindError::NotASocket(_))));
        assert!(plain.exists(), "a regular file is never removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
