//! A network path emulated in userspace: a UDP relay between a kcptun client and server that
//! delays, jitters, loses, rate-limits (with a drop-tail queue) and reorders datagrams, each
//! direction on its own terms. `kcptun bench tunnel --path …` and `kcptun bench soak` put it
//! between the two children so a user can see what to expect on a path like their own.
//!
//! Three parts: this module parses and prints a [`PathSpec`], and
//! * [`Link`] (`link.rs`): one direction's decisions, deterministic: [`Link::offer`] takes the
//!   arrival time, the datagram size and a seeded `Rng` and answers "drop (lost / queue full)"
//!   or "deliver at this instant". No clock, no sockets, so the unit tests check it exactly.
//! * [`Relay`] (`relay.rs`): two UDP sockets on 127.0.0.1 (one faces the client, one the
//!   server) and, per direction, a receiving thread that asks the [`Link`] and a sending thread
//!   that releases datagrams from a delivery-time heap. The sender sleeps on a condition variable
//!   until the earliest delivery time (woken early only when a datagram becomes the new
//!   earliest), so an idle or slow path costs no CPU and a 100 Mbit/s one a few percent of a
//!   core.
//!
//! The model, per direction: a datagram is first lost with probability `loss` (independently, or
//! in bursts of mean length `burst`); a survivor enters the rate limiter, a FIFO serializer at
//! `rate` bit/s whose backlog may hold at most `queue` bytes (drop-tail beyond); once serialized
//! it travels `delay` plus a uniform `0..=jitter`, never overtaking an earlier datagram; with
//! probability `reorder` it is instead held back an extra 1–10 ms and overtaken by those behind.
//!
//! Invariant: memory is bounded. With a rate the queue bounds what waits; without one, at most
//! `relay::MAX_IN_FLIGHT` datagrams are in the delay line (more are dropped as queue drops).

mod link;
mod relay;

use std::fmt;
use std::time::Duration;

pub use self::link::{Link, LinkStats, Verdict};
pub use self::relay::Relay;

const KEYS: &str = "delay, jitter, loss, burst, rate, queue, reorder";
const EXAMPLE: &str = "e.g. delay=20ms,jitter=2ms,loss=1%,rate=100mbit,queue=1mb,reorder=1%";

/// One direction of a path. `Default` is a clean path (no delay, loss, limit or reordering).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathSpec {
    /// One-way delay every datagram gets (the minimum).
    pub delay: Duration,
    /// Extra delay, uniform in `0..=jitter`.
    pub jitter: Duration,
    /// Loss probability in parts per million.
    pub loss_ppm: u32,
    /// Mean length of a loss burst in datagrams (1: independent losses).
    pub burst: u32,
    /// Bottleneck rate in bit/s; `None`: unlimited.
    pub rate_bps: Option<u64>,
    /// Drop-tail queue ahead of the bottleneck, bytes (only with a rate).
    pub queue_bytes: u64,
    /// Reordering probability in parts per million.
    pub reorder_ppm: u32,
}

impl PathSpec {
    /// Whether the path changes nothing.
    pub fn is_clean(&self) -> bool {
        self.delay.is_zero()
            && self.jitter.is_zero()
            && self.loss_ppm == 0
            && self.rate_bps.is_none()
            && self.reorder_ppm == 0
    }

    /// Parses `key=value,…` (`none` or an empty string: a clean path). Errors are one line
    /// naming the part at fault and the accepted form.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut p = PathSpec {
            burst: 1,
            ..PathSpec::default()
        };
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("none") {
            return Ok(p);
        }
        let mut queue = None;
        for part in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!(
                    "{part:?} is not key=value; keys are {KEYS} ({EXAMPLE})"
                ));
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            let bad = |what: &str| format!("{k}={v}: {what} ({EXAMPLE})");
            match k.as_str() {
                "delay" => {
                    p.delay =
                        duration(v).ok_or_else(|| bad("not a duration like 20ms, 1.5s or 500us"))?
                }
                "jitter" => p.jitter = duration(v).ok_or_else(|| bad("not a duration like 2ms"))?,
                "loss" => {
                    p.loss_ppm = fraction_ppm(v)
                        .ok_or_else(|| bad("not a probability like 2% or 0.02 (at most 100%)"))?
                }
                "reorder" => {
                    p.reorder_ppm = fraction_ppm(v)
                        .ok_or_else(|| bad("not a probability like 1% or 0.01 (at most 100%)"))?
                }
                "burst" => {
                    p.burst = v
                        .parse::<u32>()
                        .ok()
                        .filter(|b| (1..=1000).contains(b))
                        .ok_or_else(|| bad("not a mean burst length in datagrams, 1 to 1000"))?
                }
                "rate" => {
                    p.rate_bps = Some(rate(v).ok_or_else(|| {
                        bad("not a rate like 100mbit, 512kbit or 1gbit (bits per second, above 0)")
                    })?)
                }
                "queue" => {
                    queue = Some(bytes(v).ok_or_else(|| {
                        bad("not a size like 1mb, 256kb or 64kib (at least 1500 bytes)")
                    })?)
                }
                _ => return Err(format!("unknown key {k:?}; keys are {KEYS} ({EXAMPLE})")),
            }
        }
        match (p.rate_bps, queue) {
            (None, Some(_)) => {
                return Err(format!(
                    "queue= needs a rate= (the queue sits ahead of the bottleneck; {EXAMPLE})"
                ))
            }
            // Default queue: 50 ms at the rate, at least 64 KiB.
            (Some(r), None) => p.queue_bytes = (r / 8 / 20).max(64 * 1024),
            (_, Some(q)) => p.queue_bytes = q,
            (None, None) => {}
        }
        Ok(p)
    }
}

impl fmt::Display for PathSpec {
    /// The compact form [`PathSpec::parse`] reads back (`none` for a clean path).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let ms = |d: Duration| {
            let us = d.as_micros();
            if us % 1000 == 0 {
                format!("{}ms", us / 1000)
            } else {
                format!("{us}us")
            }
        };
        let pct = |ppm: u32| {
            let s = format!("{:.4}", f64::from(ppm) / 1e4);
            let s = s.trim_end_matches('0').trim_end_matches('.');
            format!("{s}%")
        };
        if !self.delay.is_zero() {
            parts.push(format!("delay={}", ms(self.delay)));
        }
        if !self.jitter.is_zero() {
            parts.push(format!("jitter={}", ms(self.jitter)));
        }
        if self.loss_ppm > 0 {
            parts.push(format!("loss={}", pct(self.loss_ppm)));
            if self.burst > 1 {
                parts.push(format!("burst={}", self.burst));
            }
        }
        if let Some(r) = self.rate_bps {
            parts.push(if r % 1_000_000 == 0 {
                format!("rate={}mbit", r / 1_000_000)
            } else if r % 1000 == 0 {
                format!("rate={}kbit", r / 1000)
            } else {
                format!("rate={r}bit")
            });
            let q = self.queue_bytes;
            parts.push(if q % 1_000_000 == 0 {
                format!("queue={}mb", q / 1_000_000)
            } else if q % (1 << 20) == 0 {
                format!("queue={}mib", q >> 20)
            } else if q % 1000 == 0 {
                format!("queue={}kb", q / 1000)
            } else if q % 1024 == 0 {
                format!("queue={}kib", q / 1024)
            } else {
                format!("queue={q}b")
            });
        }
        if self.reorder_ppm > 0 {
            parts.push(format!("reorder={}", pct(self.reorder_ppm)));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

/// Splits `"20ms"` into (20.0, "ms").
fn number_unit(v: &str) -> Option<(f64, String)> {
    let at = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let n: f64 = v[..at].parse().ok()?;
    (n.is_finite() && n >= 0.0).then(|| (n, v[at..].trim().to_ascii_lowercase()))
}

fn duration(v: &str) -> Option<Duration> {
    let (n, u) = number_unit(v)?;
    let us = match u.as_str() {
        "us" | "µs" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => return None,
    };
    // At most an hour: anything longer is a typo, and it keeps the arithmetic far from overflow.
    (us <= 3.6e9).then(|| Duration::from_micros(us.round() as u64))
}

fn fraction_ppm(v: &str) -> Option<u32> {
    let f = match v.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => v.parse::<f64>().ok()?,
    };
    (0.0..=1.0).contains(&f).then(|| (f * 1e6).round() as u32)
}

fn rate(v: &str) -> Option<u64> {
    let (n, u) = number_unit(v)?;
    let mult = match u.as_str() {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => return None,
    };
    let r = n * mult;
    (1.0..=1e12).contains(&r).then(|| r.round() as u64)
}

fn bytes(v: &str) -> Option<u64> {
    let (n, u) = number_unit(v)?;
    let mult = match u.as_str() {
        "b" | "" => 1.0,
        "kb" => 1e3,
        "kib" => 1024.0,
        "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "gb" => 1e9,
        _ => return None,
    };
    let b = n * mult;
    (1500.0..=1e11).contains(&b).then(|| b.round() as u64)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_compact_form() {
        let p = PathSpec::parse("delay=20ms,jitter=2ms,loss=2%,rate=100mbit,queue=1mb,reorder=1%")
            .unwrap();
        assert_eq!(p.delay, Duration::from_millis(20));
        assert_eq!(p.jitter, Duration::from_millis(2));
        assert_eq!(p.loss_ppm, 20_000);
        assert_eq!(p.burst, 1);
        assert_eq!(p.rate_bps, Some(100_000_000));
        assert_eq!(p.queue_bytes, 1_000_000);
        assert_eq!(p.reorder_ppm, 10_000);
        let q = PathSpec::parse(" Delay=1.5s , loss=0.001, burst=4, rate=512kbit ").unwrap();
        assert_eq!(q.delay, Duration::from_millis(1500));
        assert_eq!(q.loss_ppm, 1000);
        assert_eq!(q.burst, 4);
        // Default queue: 50 ms at the rate, at least 64 KiB.
        assert_eq!(q.queue_bytes, 64 * 1024);
        assert_eq!(
            PathSpec::parse("rate=1gbit").unwrap().queue_bytes,
            6_250_000
        );
        assert_eq!(
            PathSpec::parse("delay=500us").unwrap().delay,
            Duration::from_micros(500)
        );
        assert_eq!(
            PathSpec::parse("queue=64kib,rate=1mbit")
                .unwrap()
                .queue_bytes,
            65536
        );
        assert!(PathSpec::parse("none").unwrap().is_clean());
        assert!(PathSpec::parse("").unwrap().is_clean());
        assert!(!p.is_clean());
    }

    #[test]
    fn display_reads_back() {
        for s in [
            "delay=20ms,jitter=2ms,loss=2%,rate=100mbit,queue=1mb,reorder=1%",
            "delay=50ms,loss=10%,burst=3",
            "delay=250us,loss=0.05%,rate=1500kbit,queue=3000b",
            "none",
        ] {
            let p = PathSpec::parse(s).unwrap();
            let shown = p.to_string();
            assert_eq!(PathSpec::parse(&shown).unwrap(), p, "{s} → {shown}");
        }
        assert_eq!(
            PathSpec::parse("delay=20ms,loss=1%,reorder=0.5%")
                .unwrap()
                .to_string(),
            "delay=20ms,loss=1%,reorder=0.5%"
        );
    }

    #[test]
    fn parse_errors_are_one_line_and_name_the_part() {
        for (s, needle) in [
            ("dely=20ms", "unknown key \"dely\""),
            ("delay=20", "delay=20: not a duration"),
            ("delay=2h", "delay=2h: not a duration"),
            ("loss=120%", "loss=120%: not a probability"),
            ("loss=-1%", "loss=-1%: not a probability"),
            ("reorder=x", "reorder=x: not a probability"),
            ("rate=100mbps", "rate=100mbps: not a rate"),
            ("rate=0mbit", "rate=0mbit: not a rate"),
            ("rate=1mbit,queue=100b", "queue=100b: not a size"),
            ("queue=1mb", "queue= needs a rate="),
            ("burst=0", "burst=0: not a mean burst length"),
            ("delay", "\"delay\" is not key=value"),
        ] {
            let e = PathSpec::parse(s).unwrap_err();
            assert!(e.contains(needle), "{s}: {e}");
            assert!(!e.contains('\n'), "{s}: {e}");
            assert!(e.contains("e.g. delay=20ms"), "{s}: {e}");
        }
    }
}
