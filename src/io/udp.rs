//! UDP sockets for KCP sessions: creation with the kcptun socket options, and batched send and
//! receive with Linux segmentation offload.
//!
//! A [`UdpSock`] wraps a non-blocking `mio::net::UdpSocket` built through socket2 with
//! `--sockbuf` (SO_RCVBUF/SO_SNDBUF, forced past the sysctl cap when running as root) and
//! `--dscp` (IPv4 TOS = dscp<<2, IPv6 traffic class = dscp, as Go kcptun does). Register
//! [`UdpSock::socket`] with mio, then on READABLE call [`UdpSock::recv_batch`] until it returns
//! `WouldBlock`, and send through [`UdpSock::send_batch`].
//!
//! Batches are caller-owned: a [`TxBatch`] is a ring of up to [`TX_CAP`] datagrams of at most
//! [`MAX_DGRAM`] bytes, each with its own destination, whose arena grows with use and can be
//! released when quiet; an [`RxBatch`] is a 1 MiB arena, allocated once, that one event loop
//! shares between all its sockets.
//!
//! Invariants:
//! * `send_batch` never drops a datagram because the socket is full: what it could not send stays
//!   at the front of the batch, in order (back-pressure). After it returns, a non-empty batch
//!   means the socket refused more; watch it for WRITABLE. The only datagrams it discards are ones
//!   the kernel rejected with an ICMP-caused or routing error (counted, see
//!   [`UdpSock::skipped_errors`]); KCP retransmits them like any loss.
//! * On Linux, runs of equal-size datagrams to one destination go out as one UDP_SEGMENT (GSO)
//!   message, and all messages of a call go through one `sendmmsg`. GSO support is probed once
//!   per process; an EIO/EINVAL on a GSO message turns it off for good and the same datagrams
//!   are sent again without it. Reception uses `recvmmsg`, with UDP_GRO when the kernel has it;
//!   coalesced buffers are split by the reported segment size.
//! * Every received datagram is at most [`MAX_DGRAM`] bytes: longer ones are truncated, as Go's
//!   1500-byte read buffer truncates them (they then fail the integrity check).
//! * `EINTR` is retried. `ECONNREFUSED`, `ECONNRESET` and `EMSGSIZE` (which ICMP causes, and an
//!   attacker can forge) are skipped and counted, never returned.
//! * A dual-stack IPv6 socket sends to IPv4 destinations through v4-mapped addresses and reports
//!   v4-mapped sources as plain IPv4, so callers only ever see one form of an address.
//! * Other unix systems get the same API over plain `send_to`/`recv_from`.
//!
//! `UdpSock` counts `InPkts`/`InBytes`/`OutPkts`/`OutBytes` in its own [`Snmp`]; sessions must not
//! count these again.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
#[cfg(target_os = "linux")]
use std::os::fd::AsRawFd;
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicU8, Ordering};

use socket2::{Domain, Protocol, Socket, Type};

use crate::proto::snmp::Snmp;

mod batch;
pub use batch::{RxBatch, TxBatch, TxFull};

/// Largest datagram kcptun sends or delivers (Go's `mtuLimit`).
pub const MAX_DGRAM: usize = 1500;
/// Capacity of a [`TxBatch`] in datagrams.
pub const TX_CAP: usize = 64;
/// Datagrams per receive call without GRO.
const RX_MSGS: usize = 64;
/// Receive buffer per message with GRO (the kernel coalesces up to 64 KiB).
const GRO_BUF: usize = 65536;
/// Size of the [`RxBatch`] arena.
const RX_ARENA: usize = 16 * GRO_BUF;
/// Largest UDP payload one GSO message may carry (below the 65507 of IPv4).
#[cfg(target_os = "linux")]
const GSO_MAX_BYTES: usize = 65000;
/// Most segments per GSO message (the kernel's UDP_MAX_SEGMENTS is at least 64).
#[cfg(target_os = "linux")]
const GSO_MAX_SEGS: usize = 64;
/// Receive calls retried in one `recv_batch` after skipped ICMP errors.
const MAX_SKIPS: usize = 16;

#[cfg(target_os = "linux")]
const SOL_UDP: libc::c_int = 17;
#[cfg(target_os = "linux")]
const UDP_SEGMENT: libc::c_int = 103;
#[cfg(target_os = "linux")]
const UDP_GRO: libc::c_int = 104;

/// Socket options from the command line (SPEC §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockOpts {
    /// SO_RCVBUF and SO_SNDBUF in bytes (`--sockbuf`); 0 leaves the system default.
    pub sockbuf: usize,
    /// DSCP code point (`--dscp`); 0 leaves TOS/traffic class alone.
    pub dscp: u8,
    /// For IPv6 sockets: refuse IPv4 (IPV6_V6ONLY).
    pub v6only: bool,
    /// SO_REUSEPORT.
    pub reuse_port: bool,
}

impl Default for SockOpts {
    fn default() -> Self {
        SockOpts {
            sockbuf: 4 * 1024 * 1024,
            dscp: 0,
            v6only: false,
            reuse_port: false,
        }
    }
}

/// GSO probe result for the process: 0 unknown, 1 available, 2 unavailable.
#[cfg(target_os = "linux")]
static GSO_STATE: AtomicU8 = AtomicU8::new(0);

/// A non-blocking UDP socket with batched, offloaded send and receive. See the module docs.
#[derive(Debug)]
pub struct UdpSock {
    sock: mio::net::UdpSocket,
    /// The socket is IPv6 (IPv4 destinations must be v4-mapped).
    v6: bool,
    gso: bool,
    gro: bool,
    batching: bool,
    stats: Snmp,
    skipped: u64,
}

fn is_skippable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED) | Some(libc::ECONNRESET) | Some(libc::EMSGSIZE)
    )
}

/// Send errors that mean "this datagram cannot go now" rather than "the socket is broken":
/// ICMP-caused ones, plus routing and firewall refusals. The datagram is dropped like a loss.
fn is_droppable_send(e: &io::Error) -> bool {
    is_skippable(e)
        || matches!(
            e.raw_os_error(),
            Some(libc::EHOSTUNREACH)
                | Some(libc::ENETUNREACH)
                | Some(libc::EPERM)
                | Some(libc::ENOBUFS)
                | Some(libc::EADDRNOTAVAIL)
        )
}

impl UdpSock {
    /// Binds a socket to `addr` with `opts` (for a server listener: see
    /// [`crate::io::net::resolve`] for how `":port"` becomes a dual-stack `[::]`).
    pub fn bind(addr: SocketAddr, opts: &SockOpts) -> io::Result<UdpSock> {
        let domain = Domain::for_address(addr);
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            s.set_only_v6(opts.v6only)?;
        }
        if opts.reuse_port {
            s.set_reuse_port(true)?;
        }
        apply_opts(&s, addr.is_ipv6() && !opts.v6only, addr.is_ipv6(), opts)?;
        s.bind(&addr.into())?;
        s.set_nonblocking(true)?;
        Ok(Self::from_socket(s, addr.is_ipv6()))
    }

    /// A fresh socket on an ephemeral port for a client session to `remote`: IPv4 for an IPv4
    /// remote, IPv6 for an IPv6 one. Not connected (Go's client is not either): the session
    /// filters sources itself.
    pub fn connect_unbound(remote: SocketAddr, opts: &SockOpts) -> io::Result<UdpSock> {
        let local = match remote {
            SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        };
        let opts = SockOpts {
            v6only: remote.is_ipv6(),
            reuse_port: false,
            ..*opts
        };
        Self::bind(local, &opts)
    }

    fn from_socket(s: Socket, v6: bool) -> UdpSock {
        let std_sock: std::net::UdpSocket = s.into();
        let sock = mio::net::UdpSocket::from_std(std_sock);
        let mut u = UdpSock {
            sock,
            v6,
            gso: false,
            gro: false,
            batching: true,
            stats: Snmp::default(),
            skipped: 0,
        };
        #[cfg(target_os = "linux")]
        {
            u.gso = gso_supported(u.sock.as_raw_fd());
            u.gro = set_int_opt(u.sock.as_raw_fd(), SOL_UDP, UDP_GRO, 1).is_ok();
        }
        #[cfg(not(target_os = "linux"))]
        {
            u.batching = false;
        }
        u
    }

    /// The mio socket, to register with a `Registry` and for `local_addr`.
    pub fn socket(&self) -> &mio::net::UdpSocket {
        &self.sock
    }

    /// The mio socket, mutable (for `Registry::register`).
    pub fn socket_mut(&mut self) -> &mut mio::net::UdpSocket {
        &mut self.sock
    }

    /// Local address (v4-mapped forms unmapped).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr().map(unmap)
    }

    /// Packet and byte counters of this socket.
    pub fn stats(&self) -> &Snmp {
        &self.stats
    }

    /// Datagrams and errors skipped: ICMP-caused receive errors, and datagrams dropped because
    /// the kernel refused them (see module docs).
    pub fn skipped_errors(&self) -> u64 {
        self.skipped
    }

    /// GSO is in use for sends.
    pub fn gso(&self) -> bool {
        self.gso
    }

    /// GRO is in use for receives.
    pub fn gro(&self) -> bool {
        self.gro
    }

    /// Turns GSO off, or back on if the kernel supports it (for benchmarks and tests).
    pub fn set_gso(&mut self, on: bool) {
        #[cfg(target_os = "linux")]
        {
            self.gso = on && gso_supported(self.sock.as_raw_fd());
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = on;
        }
    }

    /// Turns GRO off, or back on if the kernel supports it (for benchmarks and tests).
    pub fn set_gro(&mut self, on: bool) {
        #[cfg(target_os = "linux")]
        {
            let r = set_int_opt(self.sock.as_raw_fd(), SOL_UDP, UDP_GRO, on as libc::c_int);
            self.gro = on && r.is_ok();
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = on;
        }
    }

    /// Turns `sendmmsg`/`recvmmsg` off (one syscall per datagram), or back on where available.
    /// Turning batching off turns GSO and GRO off too.
    pub fn set_batching(&mut self, on: bool) {
        #[cfg(target_os = "linux")]
        {
            self.batching = on;
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = on;
        }
        if !self.batching {
            self.set_gso(false);
            self.set_gro(false);
        }
    }

    /// Sends datagrams from the front of `tx` until it is empty or the socket is full; returns
    /// how many were sent. Afterwards a non-empty `tx` means the socket is full: wait for
    /// WRITABLE and call again. Errors other than back-pressure and skippable ones are returned
    /// with the failing datagram still at the front.
    pub fn send_batch(&mut self, tx: &mut TxBatch) -> io::Result<usize> {
        let mut sent = 0;
        while !tx.is_empty() {
            match self.send_some(tx) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    /// One send call; Ok(datagrams sent or dropped) with errors already handled.
    fn send_some(&mut self, tx: &mut TxBatch) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        if self.batching {
            return self.send_mmsg(tx);
        }
        self.send_plain(tx)
    }

    fn send_plain(&mut self, tx: &mut TxBatch) -> io::Result<usize> {
        let (dst, data) = match tx.get(0) {
            Some(d) => d,
            None => return Ok(0),
        };
        let dst = self.map_dst(dst);
        loop {
            match self.sock.send_to(data, dst) {
                Ok(_) => {
                    self.stats.out_pkts += 1;
                    self.stats.out_bytes += data.len() as u64;
                    tx.advance(1);
                    return Ok(1);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_droppable_send(&e) => {
                    self.skipped += 1;
                    tx.advance(1);
                    return Ok(1);
                }
                Err(e) => return Err(e),
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn send_mmsg(&mut self, tx: &mut TxBatch) -> io::Result<usize> {
        self.send_mmsg_via(tx, &mut sys_sendmmsg)
    }

    /// Builds the messages for the front of `tx` and hands them to `sys` (`sendmmsg`, or a fake
    /// in tests), then does the bookkeeping for what it reports.
    #[cfg(target_os = "linux")]
    fn send_mmsg_via<F>(&mut self, tx: &mut TxBatch, sys: &mut F) -> io::Result<usize>
    where
        F: FnMut(libc::c_int, &mut [libc::mmsghdr]) -> io::Result<usize>,
    {
        use std::mem::zeroed;
        use std::ptr;
        // Scratch lives on the stack (about 14 KiB): no allocation and no raw pointers kept.
        // SAFETY: all-zero bytes are valid values of these plain C structs.
        let mut hdrs: [libc::mmsghdr; TX_CAP] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut iovs: [libc::iovec; TX_CAP] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut addrs: [libc::sockaddr_storage; TX_CAP] = unsafe { zeroed() };
        let mut cmsgs = [[0u64; 4]; TX_CAP];
        let mut counts = [0usize; TX_CAP];

        let base = tx.buf.as_ptr();
        let mut i = 0; // datagram index into tx
        let mut m = 0; // message index
        while i < tx.len && m < TX_CAP {
            let s = tx.slot(i);
            let (dst, seg) = (tx.dsts[s], tx.lens[s] as usize);
            let mut k = 1;
            if self.gso && seg > 0 {
                let max = (GSO_MAX_BYTES / seg).min(GSO_MAX_SEGS);
                while i + k < tx.len && k < max {
                    let s2 = tx.slot(i + k);
                    let l2 = tx.lens[s2] as usize;
                    if tx.dsts[s2] != dst || l2 > seg || l2 == 0 {
                        break;
                    }
                    k += 1;
                    if l2 < seg {
                        break; // a shorter datagram may only end a GSO run
                    }
                }
            }
            for j in 0..k {
                let sj = tx.slot(i + j);
                // SAFETY: a slot holding a datagram lies inside `tx.buf` (push grew it to cover the
                // slot; sj < TX_CAP, len <= MAX_DGRAM).
                iovs[i + j].iov_base = unsafe { base.add(sj * MAX_DGRAM) } as *mut libc::c_void;
                iovs[i + j].iov_len = tx.lens[sj] as usize;
            }
            let alen = write_sockaddr(self.map_dst(dst), &mut addrs[m]);
            let h = &mut hdrs[m].msg_hdr;
            h.msg_name = &mut addrs[m] as *mut _ as *mut libc::c_void;
            h.msg_namelen = alen;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = k as _;
            if k > 1 {
                h.msg_control = cmsgs[m].as_mut_ptr() as *mut libc::c_void;
                // SAFETY: CMSG_SPACE is a pure size computation.
                h.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as _;
                // SAFETY: msg_control points to 32 bytes, at least CMSG_SPACE(2); the header and
                // its 2-byte payload fit there.
                unsafe {
                    let c = libc::CMSG_FIRSTHDR(h);
                    (*c).cmsg_level = SOL_UDP;
                    (*c).cmsg_type = UDP_SEGMENT;
                    (*c).cmsg_len = libc::CMSG_LEN(2) as _;
                    ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, seg as u16);
                }
            }
            counts[m] = k;
            i += k;
            m += 1;
        }
        if m == 0 {
            return Ok(0);
        }
        // `hdrs[..m]` point into `iovs`, `addrs`, `cmsgs` and `tx.buf`, all alive and unmoved
        // until `sys` returns.
        let r = sys(self.sock.as_raw_fd(), &mut hdrs[..m]);
        match r {
            Ok(n) => {
                let n = n.min(m);
                let dgrams: usize = counts[..n].iter().sum();
                for j in 0..dgrams {
                    self.stats.out_bytes += tx.lens[tx.slot(j)] as u64;
                }
                self.stats.out_pkts += dgrams as u64;
                tx.advance(dgrams);
                Ok(dgrams)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
            Err(e)
                if counts[0] > 1
                    && matches!(e.raw_os_error(), Some(libc::EIO) | Some(libc::EINVAL)) =>
            {
                // GSO is refused (device without checksum offload, old kernel): never again.
                GSO_STATE.store(2, Ordering::Relaxed);
                self.gso = false;
                log::debug!("UDP GSO disabled after send error: {e}");
                self.send_mmsg_via(tx, sys)
            }
            Err(e) if is_droppable_send(&e) => {
                self.skipped += counts[0] as u64;
                tx.advance(counts[0]);
                Ok(counts[0])
            }
            Err(e) => Err(e),
        }
    }

    /// Receives one batch into `rx`; returns the number of datagrams (see
    /// [`RxBatch::iter_mut`]). `Err(WouldBlock)` when nothing is waiting: call until then on each
    /// READABLE event.
    pub fn recv_batch(&mut self, rx: &mut RxBatch) -> io::Result<usize> {
        let mut skips = 0;
        loop {
            let r = self.recv_some(rx);
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_skippable(&e) && skips < MAX_SKIPS => {
                    self.skipped += 1;
                    skips += 1;
                }
                Err(e) if is_skippable(&e) => {
                    self.skipped += 1;
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Err(e) => return Err(e),
                Ok(n) => {
                    self.stats.in_pkts += n as u64;
                    self.stats.in_bytes += rx.msgs[..rx.n_msgs]
                        .iter()
                        .map(|m| m.len as u64)
                        .sum::<u64>();
                    return Ok(n);
                }
            }
        }
    }

    fn recv_some(&mut self, rx: &mut RxBatch) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        if self.batching {
            return self.recv_mmsg(rx);
        }
        self.recv_plain(rx)
    }

    fn recv_plain(&mut self, rx: &mut RxBatch) -> io::Result<usize> {
        let cap = rx.reset(MAX_DGRAM);
        for i in 0..cap {
            let start = i * MAX_DGRAM;
            match self.sock.recv_from(&mut rx.buf[start..start + MAX_DGRAM]) {
                Ok((n, src)) => rx.set_msg(i, unmap(src), n, 0),
                Err(e) if i > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if i > 0 && is_skippable(&e) => {
                    self.skipped += 1;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(rx.n_dgrams)
    }

    #[cfg(target_os = "linux")]
    fn recv_mmsg(&mut self, rx: &mut RxBatch) -> io::Result<usize> {
        use std::mem::zeroed;
        let slot = if self.gro { GRO_BUF } else { MAX_DGRAM };
        let cap = rx.reset(slot);
        // SAFETY: all-zero bytes are valid values of these plain C structs.
        let mut hdrs: [libc::mmsghdr; RX_MSGS] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut iovs: [libc::iovec; RX_MSGS] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut addrs: [libc::sockaddr_storage; RX_MSGS] = unsafe { zeroed() };
        let mut cmsgs = [[0u64; 8]; RX_MSGS];
        let base = rx.buf.as_mut_ptr();
        for i in 0..cap {
            // SAFETY: i * slot + slot <= RX_ARENA by construction of `cap`.
            iovs[i].iov_base = unsafe { base.add(i * slot) } as *mut libc::c_void;
            iovs[i].iov_len = slot;
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = &mut addrs[i] as *mut _ as *mut libc::c_void;
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
            if self.gro {
                h.msg_control = cmsgs[i].as_mut_ptr() as *mut libc::c_void;
                h.msg_controllen = std::mem::size_of_val(&cmsgs[i]) as _;
            }
        }
        let fd = self.sock.as_raw_fd();
        // SAFETY: `hdrs[..cap]` point into `iovs`, `addrs`, `cmsgs` and `rx.buf`, all alive and
        // unmoved for the duration of the call; lengths match the buffers.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                cap as _,
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (r as usize).min(cap);
        for i in 0..n {
            let len = hdrs[i].msg_len as usize;
            let h = &hdrs[i].msg_hdr;
            let mut seg = 0usize;
            if self.gro && !h.msg_control.is_null() {
                // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG_* walk stays
                // within msg_controllen; the payload is read unaligned.
                unsafe {
                    let mut c = libc::CMSG_FIRSTHDR(h);
                    while !c.is_null() {
                        if (*c).cmsg_level == SOL_UDP && (*c).cmsg_type == UDP_GRO {
                            let v =
                                std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                            seg = v.max(0) as usize;
                        }
                        c = libc::CMSG_NXTHDR(h, c);
                    }
                }
            }
            let src = read_sockaddr(&addrs[i], h.msg_namelen as usize)
                .unwrap_or(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)));
            rx.set_msg(i, unmap(src), len, seg);
        }
        Ok(rx.n_dgrams)
    }

    /// The address to hand the kernel for `dst` (v4-mapped on an IPv6 socket).
    fn map_dst(&self, dst: SocketAddr) -> SocketAddr {
        match dst {
            SocketAddr::V4(a) if self.v6 => {
                SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
            }
            d => d,
        }
    }
}

/// `::ffff:a.b.c.d` → `a.b.c.d`; everything else unchanged.
fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, v6.port())),
            None => a,
        },
        a => a,
    }
}

/// Buffer sizes and DSCP. `dual`: an IPv6 socket that also carries IPv4.
fn apply_opts(s: &Socket, dual: bool, v6: bool, opts: &SockOpts) -> io::Result<()> {
    if opts.sockbuf > 0 {
        set_buf(s, opts.sockbuf, true)?;
        set_buf(s, opts.sockbuf, false)?;
    }
    if opts.dscp > 0 {
        if v6 {
            s.set_tclass_v6(opts.dscp as u32)?;
            if dual {
                // IPv4 traffic of a dual-stack socket takes IP_TOS; not every system allows it.
                let _ = s.set_tos((opts.dscp as u32) << 2);
            }
        } else {
            s.set_tos((opts.dscp as u32) << 2)?;
        }
    }
    Ok(())
}

/// SO_RCVBUF/SO_SNDBUF; first the FORCE variant, which lets root pass `net.core.*mem_max`.
fn set_buf(s: &Socket, size: usize, recv: bool) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::AsRawFd;
        let opt = if recv {
            libc::SO_RCVBUFFORCE
        } else {
            libc::SO_SNDBUFFORCE
        };
        let v = size.min(i32::MAX as usize) as libc::c_int;
        if set_int_opt(s.as_raw_fd(), libc::SOL_SOCKET, opt, v).is_ok() {
            return Ok(());
        }
    }
    if recv {
        s.set_recv_buffer_size(size)
    } else {
        s.set_send_buffer_size(size)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_int_opt(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int and its exact size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `sendmmsg(2)` with EINTR retried; `Ok(messages sent)`.
#[cfg(target_os = "linux")]
fn sys_sendmmsg(fd: libc::c_int, hdrs: &mut [libc::mmsghdr]) -> io::Result<usize> {
    loop {
        // SAFETY: the caller initialised every header in `hdrs` to point at live buffers (see
        // `send_mmsg_via`); the count passed is the slice length.
        let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), hdrs.len() as _, 0) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Probes UDP_SEGMENT once per process.
#[cfg(target_os = "linux")]
fn gso_supported(fd: libc::c_int) -> bool {
    match GSO_STATE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let mut v: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: passes a pointer to a live c_int and its size, which the kernel updates.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    SOL_UDP,
                    UDP_SEGMENT,
                    &mut v as *mut _ as *mut libc::c_void,
                    &mut len,
                )
            };
            let ok = r == 0;
            GSO_STATE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

/// Writes `a` as a C socket address; returns its length. Byte order is explicit.
#[cfg(target_os = "linux")]
fn write_sockaddr(a: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match a {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_flowinfo = v6.flowinfo().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: v6.ip().octets(),
            };
            sin6.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Reads a C socket address the kernel wrote; `None` for an unknown family or short length.
#[cfg(target_os = "linux")]
fn read_sockaddr(s: &libc::sockaddr_storage, len: usize) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: family and length say the storage holds a sockaddr_in.
            let sin = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: family and length say the storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                u32::from_be(sin6.sin6_flowinfo),
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests;
