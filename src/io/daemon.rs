//! `--pidfile` and `--daemon`.
//!
//! The pidfile is held with an exclusive `flock` for the life of the process, so a stale file
//! (its process gone, the lock with it) is simply taken over, while a live one is refused with the
//! pid that holds it. Everything that can fail for a user reason (pidfile, log file, sockets) is
//! done *before* detaching, so `--daemon` never fails silently in the background.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the pidfile or daemon mode could not be set up; one line each.
#[derive(Debug)]
pub enum DaemonError {
    /// Another live process holds the pidfile.
    Running {
        path: PathBuf,
        pid: String,
    },
    Open {
        path: PathBuf,
        err: io::Error,
    },
    Detach(String),
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::Running { path, pid } => write!(
                f,
                "pidfile {} is held by a running kcptun (pid {pid}); stop it or choose another --pidfile",
                path.display()
            ),
            DaemonError::Open { path, err } => {
                write!(f, "cannot open pidfile {}: {err}", path.display())
            }
            DaemonError::Detach(e) => write!(f, "cannot detach (--daemon): {e}"),
        }
    }
}

impl std::error::Error for DaemonError {}

/// A locked pidfile; removed when dropped.
#[derive(Debug)]
pub struct PidFile {
    file: File,
    path: PathBuf,
}

impl PidFile {
    /// Opens and locks `path`; refuses if a live process holds it.
    pub fn lock(path: &Path) -> Result<PidFile, DaemonError> {
        let open_err = |err| DaemonError::Open {
            path: path.to_path_buf(),
            err,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(open_err)?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        #[allow(unsafe_code)]
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(DaemonError::Running {
                    path: path.to_path_buf(),
                    pid: pid.trim().to_string(),
                });
            }
            return Err(open_err(err));
        }
        let mut p = PidFile {
            file,
            path: path.to_path_buf(),
        };
        p.write_pid().map_err(open_err)?;
        Ok(p)
    }

    /// Writes the current process id (again after `detach`, which changes it).
    pub fn write_pid(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        writeln!(self.file, "{}", std::process::id())?;
        self.file.flush()
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Detaches from the terminal (fork, setsid, chdir /, stdio to /dev/null). Returns in the
/// child only; the parent exits 0. Sockets, the lock on the pidfile and the log file stay open.
pub fn detach() -> Result<(), DaemonError> {
    daemonize::Daemonize::new()
        .working_directory("/")
        .umask(0o022)
        .start()
        .map_err(|e| DaemonError::Detach(e.to_string()))
}

/// What [`raise_nofile`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum NofileRaise {
    /// The soft limit was raised from `from` to `to`.
    Raised { from: u64, to: u64 },
    /// Already at the hard limit (or the limit could not be read); nothing changed.
    Unchanged(u64),
    /// Raising was refused by the system.
    Failed { soft: u64, err: String },
}

/// The highest descriptor count the kernel allows a process (`fs.nr_open`), the cap when the hard
/// limit is "unlimited" (a soft limit above it is refused).
fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// Raises `RLIMIT_NOFILE`'s soft limit to the hard limit, so that a server carrying thousands of
/// connections does not need `ulimit -n` by hand (each connection holds one descriptor, each
/// client session one more). An administrator's hard limit (`prlimit`, `LimitNOFILE=`) is kept.
pub fn raise_nofile() -> NofileRaise {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return NofileRaise::Unchanged(0);
    };
    let target = if hard == RLIM_INFINITY {
        nr_open()
    } else {
        hard
    };
    if soft >= target {
        return NofileRaise::Unchanged(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => NofileRaise::Raised {
            from: soft,
            to: target,
        },
        Err(e) => NofileRaise::Failed {
            soft,
            err: e.to_string(),
        },
    }
}
