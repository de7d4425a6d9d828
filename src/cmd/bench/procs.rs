//! Child processes of the benches: a client or server started from a binary with its stderr in a
//! temp file, killed and reaped on drop; and readers of their CPU time, memory and open fds
//! from `/proc`.
//!
//! Invariant: a child never outlives the bench: [`ChildProc`]'s `Drop` kills it, and on Linux
//! the kernel kills it if the bench dies without unwinding (`PR_SET_PDEATHSIG`).

use std::fs::File;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::err;
use crate::cmd::RunError;

/// A running client or server; killed and reaped on drop. Its stderr goes to `log`.
pub(super) struct ChildProc {
    pub(super) what: String,
    child: Child,
    pub(super) log: PathBuf,
}

impl ChildProc {
    pub(super) fn spawn(what: String, prog: &Path, args: &[String]) -> Result<Self, RunError> {
        let log = std::env::temp_dir().join(format!(
            "kcptun-bench-{}-{}.log",
            std::process::id(),
            what.replace(' ', "-")
        ));
        let f = File::create(&log)
            .map_err(|e| err(format!("bench: cannot create {}: {e}", log.display())))?;
        let mut cmd = Command::new(prog);
        // If the bench dies without unwinding (SIGKILL, SIGTERM), the kernel kills the child.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        #[cfg(target_os = "linux")]
        #[allow(unsafe_code)]
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .map_err(|e| err(format!("bench: cannot start {}: {e}", prog.display())))?;
        Ok(ChildProc { what, child, log })
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the child's stderr.
    pub(super) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(15)..];
        if tail.is_empty() {
            "(no output)".into()
        } else {
            tail.join("\n  ")
        }
    }

    /// `Err` with the child's stderr if it has exited.
    pub(super) fn check(&mut self) -> Result<(), RunError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(err(format!(
                "bench: {} exited ({status}); its stderr ({}):\n  {}",
                self.what,
                self.log.display(),
                self.log_tail()
            ))),
            _ => Ok(()),
        }
    }

    pub(super) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

pub(super) fn check_all(children: &mut [&mut ChildProc]) -> Result<(), RunError> {
    children.iter_mut().try_for_each(|c| c.check())
}

/// utime+stime of `pid` in clock ticks.
pub(super) fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

pub(super) fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    #[allow(unsafe_code)]
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// A `/proc/<pid>/status` field in kB (VmRSS, VmHWM), as MiB.
pub(super) fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line[field.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Open file descriptors of `pid` (entries of `/proc/<pid>/fd`).
pub(super) fn fd_count(pid: u32) -> Option<u64> {
    let d = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(d.filter(|e| e.is_ok()).count() as u64)
}

pub(super) fn free_tcp_port() -> Result<u16, RunError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| err(format!("bench: no free TCP port: {e}")))
}

pub(super) fn free_udp_port() -> Result<u16, RunError> {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| err(format!("bench: no free UDP port: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_readers_see_this_process() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(status_mib(me, "VmRSS").unwrap() > 0.0);
        assert!(status_mib(me, "VmHWM").unwrap() > 0.0);
        assert!(clock_ticks() > 0.0);
        // A child with stdin, stdout and stderr open (and whatever non-close-on-exec fds this
        // test inherited), then gone.
        let mut c = Command::new("sleep")
            .arg("5")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let n = fd_count(c.id());
        let _ = c.kill();
        let _ = c.wait();
        assert!(n.unwrap() >= 3, "{n:?}");
        assert_eq!(fd_count(c.id()), None);
    }
}
