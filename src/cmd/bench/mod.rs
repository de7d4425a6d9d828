//! `kcptun bench`: measurements of this build, printed as aligned tables or JSON.
//!
//! * [`tunnel`]: our client and server as child processes on loopback, an embedded TCP target in
//!   this process, incompressible data each way through the real UDP tunnel; goodput, CPU per GB,
//!   RSS, round-trip latency, and with `--vs-go` the same measurement of Go kcptun's binaries.
//! * [`sessions`]: memory (RSS per session idle, after traffic, once quiet) and idle CPU of N
//!   sessions, each carrying one echoed connection; `--vs-go` adds Go kcptun's binaries.
//! * [`crypt`]: seal+open throughput of every `--crypt` method.
//! * [`fec`]: Reed-Solomon encode/recover throughput.
//! * [`soak`]: client + server for minutes to hours through an emulated lossy [`path`] with
//!   connection churn; RSS and open fds must stay flat.
//!
//! Call order: [`run_bench`] with the parsed [`BenchArgs`]. Progress goes to stderr as one
//! `\r`-rewritten line, only when stderr is a terminal; results go to stdout.

mod crypt;
mod fec;
pub mod path;
mod procs;
mod sessions;
mod soak;
mod tunnel;

use std::io::{IsTerminal, Write};

use super::{BenchArgs, BenchCmd, RunError};

/// Runs one `kcptun bench …` subcommand.
pub fn run_bench(args: &BenchArgs) -> Result<(), RunError> {
    match &args.which {
        BenchCmd::Tunnel(t) => tunnel::run(t),
        BenchCmd::Crypt(c) => crypt::run(c),
        BenchCmd::Fec(f) => fec::run(f),
        BenchCmd::Soak(s) => soak::run(s),
        BenchCmd::Sessions(s) => sessions::run(s),
    }
}

/// A bench failure as a one-line (or, with a child's stderr, a few-line) message.
fn err(msg: impl Into<String>) -> RunError {
    RunError::Other(msg.into())
}

/// A one-line progress indicator on stderr (`\r`-rewritten), silent unless stderr is a terminal.
struct Progress {
    on: bool,
    width: usize,
}

impl Progress {
    fn new() -> Self {
        Progress {
            on: std::io::stderr().is_terminal(),
            width: 0,
        }
    }

    /// Replaces the line with `msg`.
    fn show(&mut self, msg: &str) {
        if !self.on {
            return;
        }
        let pad = self.width.saturating_sub(msg.len());
        self.width = msg.len();
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r{msg}{:pad$}", "");
        let _ = e.flush();
    }

    /// Erases the line.
    fn clear(&mut self) {
        if self.on && self.width > 0 {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r{:w$}\r", "", w = self.width);
            let _ = e.flush();
            self.width = 0;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Renders rows as an aligned table: the first column left-aligned, the others right-aligned,
/// two spaces between columns, a dashed rule under the header.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = w[i].saturating_sub(c.chars().count());
            if i == 0 {
                s.push_str(c);
                s.extend(std::iter::repeat(' ').take(pad));
            } else {
                s.extend(std::iter::repeat(' ').take(pad));
                s.push_str(c);
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(&mut header.iter().copied());
    let total = w.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out
}

/// CPU time consumed by the calling thread. The micro-benchmarks divide by it rather than by
/// wall time, so other load on a shared machine does not lower their figures.
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; the clock id is a valid constant.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU seconds of the calling thread since `start` (a [`thread_cpu`] reading), never zero.
fn cpu_secs_since(start: std::time::Duration) -> f64 {
    thread_cpu().saturating_sub(start).as_secs_f64().max(1e-9)
}

/// A number with a precision that suits its size (3 significant digits or more).
fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Prints a JSON value to stdout.
fn print_json(v: &serde_json::Value) -> Result<(), RunError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| RunError::Other(format!("json: {e}")))?;
    println!("{s}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["name", "MB/s"],
            &[
                vec!["aes".into(), "123.4".into()],
                vec!["aes-128-gcm".into(), "7.0".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "name          MB/s");
        assert_eq!(lines[1], "-".repeat(18));
        assert_eq!(lines[2], "aes          123.4");
        assert_eq!(lines[3], "aes-128-gcm    7.0");
    }

    #[test]
    fn thread_cpu_advances_with_work() {
        let t0 = thread_cpu();
        let mut x = 1u64;
        for i in 0..50_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(i | 1));
        }
        assert!(thread_cpu() > t0, "{x}");
        assert!(cpu_secs_since(t0) > 0.0);
    }

    #[test]
    fn num_precision() {
        assert_eq!(num(1234.56), "1235");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(1.2345), "1.23");
        assert_eq!(num(0.01234), "0.012");
    }
}
