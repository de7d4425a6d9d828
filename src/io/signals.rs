//! SIGUSR1, SIGTERM, SIGINT and SIGHUP delivered to the event loop through a self-pipe.
//!
//! [`Signals::new`] creates a non-blocking pipe, registers its read end with mio under the
//! given token, installs handlers that write one byte (the signal number) to the write end, and
//! sets SIGPIPE to ignored (a closed TCP peer must surface as `EPIPE`, not kill the process).
//! On a READABLE event for that token, call [`Signals::drain`], which empties the pipe and yields
//! each signal that arrived (repeats of one signal within a drain are coalesced, as the kernel
//! coalesces pending signals anyway).
//!
//! Invariants: the handler only calls `write(2)` (async-signal-safe) and preserves `errno`; a
//! full pipe just drops the byte (the reader is already due to wake). One `Signals` may exist per
//! process at a time; a second `new` fails with `AlreadyExists`. Dropping it restores the default
//! dispositions of the four signals before closing the pipe.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// A signal the loop acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Print the SNMP counters.
    Usr1,
    /// Shut down.
    Term,
    /// Shut down (Ctrl-C).
    Int,
    /// Hang-up (reload or ignore, as the caller decides).
    Hup,
}

impl Signal {
    const ALL: [Signal; 4] = [Signal::Usr1, Signal::Term, Signal::Int, Signal::Hup];

    /// The C signal number.
    pub fn number(self) -> libc::c_int {
        match self {
            Signal::Usr1 => libc::SIGUSR1,
            Signal::Term => libc::SIGTERM,
            Signal::Int => libc::SIGINT,
            Signal::Hup => libc::SIGHUP,
        }
    }

    fn bit(self) -> u8 {
        match self {
            Signal::Usr1 => 1,
            Signal::Term => 2,
            Signal::Int => 4,
            Signal::Hup => 8,
        }
    }

    fn from_number(n: libc::c_int) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.number() == n)
    }
}

/// Write end of the self-pipe for the handler; -1 when no `Signals` exists.
static PIPE_WR: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_WR.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // errno is thread-local; save and restore it around write(2) (nix does it portably).
    let saved = nix::errno::Errno::last_raw();
    let b = sig as u8;
    // SAFETY: write(2) is async-signal-safe; the pointer is to one live byte.
    unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    nix::errno::Errno::set_raw(saved);
}

fn set_handler(sig: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: zeroed sigaction is valid; sigemptyset initialises the mask; sigaction gets
    // pointers to live structs. The handler is async-signal-safe (see `on_signal`).
    let r = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut())
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn nonblocking_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The self-pipe and its registration. See the module docs.
#[derive(Debug)]
pub struct Signals {
    rd: OwnedFd,
    wr: OwnedFd,
}

impl Signals {
    /// Creates the pipe, registers it READABLE under `token`, installs the handlers and ignores
    /// SIGPIPE.
    pub fn new(registry: &Registry, token: Token) -> io::Result<Signals> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe(2) writes two descriptors into the live 2-element array.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe(2) succeeded, so both descriptors are open and now owned only here.
        let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        nonblocking_cloexec(rd.as_raw_fd())?;
        nonblocking_cloexec(wr.as_raw_fd())?;
        if PIPE_WR
            .compare_exchange(-1, wr.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "signal pipe already installed",
            ));
        }
        let s = Signals { rd, wr };
        registry.register(&mut SourceFd(&s.rd.as_raw_fd()), token, Interest::READABLE)?;
        set_handler(libc::SIGPIPE, libc::SIG_IGN)?;
        for sig in Signal::ALL {
            set_handler(
                sig.number(),
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )?;
        }
        Ok(s)
    }

    /// Empties the pipe and yields the signals that arrived since the last drain (each once, in
    /// the order USR1, TERM, INT, HUP).
    pub fn drain(&mut self) -> impl Iterator<Item = Signal> {
        let mut seen = 0u8;
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: read(2) into a live buffer of the stated length.
            let n = unsafe {
                libc::read(
                    self.rd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                )
            };
            if n > 0 {
                for &b in &buf[..n as usize] {
                    if let Some(s) = Signal::from_number(b as libc::c_int) {
                        seen |= s.bit();
                    }
                }
                continue;
            }
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break; // 0 (cannot happen: we hold the write end) or WouldBlock or an error
        }
        Signal::ALL.into_iter().filter(move |s| seen & s.bit() != 0)
    }

    /// Deregisters the pipe from `registry` (optional before drop).
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut SourceFd(&self.rd.as_raw_fd()))
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for sig in Signal::ALL {
            let _ = set_handler(sig.number(), libc::SIG_DFL);
        }
        let _ =
            PIPE_WR.compare_exchange(self.wr.as_raw_fd(), -1, Ordering::SeqCst, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::time::{Duration, Instant};

    fn wait_for(poll: &mut Poll, sigs: &mut Signals, want: Signal) -> Vec<Signal> {
        let mut events = Events::with_capacity(8);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while Instant::now() < deadline && !got.contains(&want) {
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            for e in events.iter() {
                assert_eq!(e.token(), Token(7));
                got.extend(sigs.drain());
            }
        }
        got
    }

    /// One test for everything: only one `Signals` may exist per process.
    #[test]
    fn delivers_raised_signals_through_the_pipe() {
        let mut poll = Poll::new().unwrap();
        let mut sigs = Signals::new(poll.registry(), Token(7)).unwrap();
        assert_eq!(
            Signals::new(poll.registry(), Token(8)).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        for s in Signal::ALL {
            // SAFETY: raising a signal to our own process; a handler is installed.
            assert_eq!(unsafe { libc::raise(s.number()) }, 0);
            let got = wait_for(&mut poll, &mut sigs, s);
            assert_eq!(got, vec![s], "raised {s:?}");
        }
        // Two signals before one drain: both reported, repeats coalesced.
        // SAFETY: as above.
        unsafe {
            libc::raise(libc::SIGHUP);
            libc::raise(libc::SIGUSR1);
            libc::raise(libc::SIGUSR1);
        }
        let got = wait_for(&mut poll, &mut sigs, Signal::Hup);
        assert_eq!(got, vec![Signal::Usr1, Signal::Hup]);
        // SIGPIPE is ignored: raising it must not kill the test process.
        // SAFETY: as above.
        assert_eq!(unsafe { libc::raise(libc::SIGPIPE) }, 0);
        assert_eq!(sigs.drain().count(), 0);
        drop(sigs);
        assert_eq!(PIPE_WR.load(Ordering::SeqCst), -1);
    }
}
