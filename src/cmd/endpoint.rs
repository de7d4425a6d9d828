//! Endpoints of the command line: `host:port` / `host:min-max` for UDP and TCP, and stream
//! addresses (a TCP endpoint or a unix socket path). Parsers return a message without the flag
//! name; the settings resolver adds it.

use std::fmt;
use std::path::PathBuf;

/// A UDP/TCP endpoint, possibly a port range (`host:min-max`, SPEC §7.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP, IPv6 without brackets; empty = all addresses (listen) / localhost.
    pub host: String,
    pub port_min: u16,
    /// `== port_min` for a single port.
    pub port_max: u16,
}

impl Endpoint {
    /// Number of ports in the range (>= 1).
    pub fn port_count(&self) -> u32 {
        u32::from(self.port_max) - u32::from(self.port_min) + 1
    }

    /// Every port of the range.
    pub fn ports(&self) -> std::ops::RangeInclusive<u16> {
        self.port_min..=self.port_max
    }

    /// `host:port` for dialling/binding with `ToSocketAddrs` (brackets around IPv6).
    pub fn with_port(&self, port: u16) -> String {
        if self.host.contains(':') {
            format!("[{}]:{port}", self.host)
        } else {
            format!("{}:{port}", self.host)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_port(self.port_min))?;
        if self.port_max != self.port_min {
            write!(f, "-{}", self.port_max)?;
        }
        Ok(())
    }
}

/// A stream address: TCP endpoint (single port) or unix socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamAddr {
    Tcp(Endpoint),
    Unix(PathBuf),
}

impl fmt::Display for StreamAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamAddr::Tcp(e) => e.fmt(f),
            StreamAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Parses `host:port` or `host:min-max` (SPEC §7.6): host is everything before the last `:`;
/// `[v6]` loses its brackets; ports in 1..=65535 with min <= max. `allow_range == false` refuses
/// ranges. Returns a message (without the flag name) on error.
pub fn parse_endpoint(s: &str, allow_range: bool) -> Result<Endpoint, String> {
    let Some((host, ports)) = s.rsplit_once(':') else {
        return Err("expected host:port".into());
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (ports, None),
    };
    let port = |p: &str| -> Result<u16, String> {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad port {p:?}: expected a number in 1..=65535"));
        }
        match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
            _ => Err(format!("port {p} out of range 1..=65535")),
        }
    };
    let port_min = port(lo)?;
    let port_max = match hi {
        Some(h) if !allow_range => {
            return Err(format!(
                "a port range ({lo}-{h}) is not allowed here; give one port"
            ))
        }
        Some(h) => port(h)?,
        None => port_min,
    };
    if port_min > port_max {
        return Err(format!(
            "port range {port_min}-{port_max}: min is larger than max"
        ));
    }
    let host = if let Some(inner) = host.strip_prefix('[') {
        match inner.strip_suffix(']') {
            Some(h) if !h.is_empty() && !h.contains(['[', ']']) => h.to_string(),
            _ => return Err(format!("bad bracketed host {host:?}")),
        }
    } else if host.contains(':') {
        return Err(format!(
            "IPv6 address {host:?} needs brackets: [{host}]:{ports}"
        ));
    } else if host.contains(['[', ']', '/', ' ']) {
        return Err(format!("bad host {host:?}"));
    } else {
        host.to_string()
    };
    Ok(Endpoint {
        host,
        port_min,
        port_max,
    })
}

/// Parses a stream address: a value without `:port` (or starting with `/` or `.`) is a unix socket
/// path, otherwise a single-port endpoint.
pub fn parse_stream_addr(s: &str) -> Result<StreamAddr, String> {
    if s.is_empty() {
        return Err("empty address".into());
    }
    if s.starts_with('/') || s.starts_with('.') || !s.contains(':') {
        return Ok(StreamAddr::Unix(PathBuf::from(s)));
    }
    parse_endpoint(s, false).map(StreamAddr::Tcp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = parse_endpoint("[::1]:4000-4010", true).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port_min, e.port_max),
            ("::1", 4000, 4010)
        );
        assert_eq!(e.to_string(), "[::1]:4000-4010");
        assert_eq!(e.port_count(), 11);
        assert_eq!(parse_endpoint(":4000", true).unwrap().host, "");
        assert!(parse_endpoint("h:0", true).is_err());
        assert!(parse_endpoint("h:65536", true).is_err());
        assert!(parse_endpoint("h:10-5", true).is_err());
        assert!(parse_endpoint("h:5-10", false).is_err());
        assert!(parse_endpoint("::1:80", true).is_err());
        assert!(parse_endpoint("h:80x", true).is_err());
        assert!(parse_endpoint("h:-80", true).is_err());
        assert_eq!(
            parse_stream_addr("/tmp/s").unwrap(),
            StreamAddr::Unix("/tmp/s".into())
        );
        assert_eq!(
            parse_stream_addr("sock").unwrap(),
            StreamAddr::Unix("sock".into())
        );
    }
}
