//! KCP against `vectors/kcp.json`: segment encodings and the captured kcp-go exchange.

mod common;

use std::time::{Duration, Instant};

use kcptun::proto::kcp::{Header, Kcp, KcpConfig};

#[test]
fn segments_encode_and_decode_byte_exact() {
    let v = common::load("kcp.json");
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 4);
    for s in segs {
        let want = common::unhex(&s["hex"]);
        let f = |k: &str| s[k].as_u64().unwrap();
        let h = Header {
            conv: f("conv") as u32,
            cmd: f("cmd") as u8,
            frg: f("frg") as u8,
            wnd: f("wnd") as u16,
            ts: f("ts") as u32,
            sn: f("sn") as u32,
            una: f("una") as u32,
            len: f("len") as u32,
        };
        let mut buf = vec![0xAAu8; want.len()];
        h.write(&mut buf);
        buf[24..].copy_from_slice(&want[24..]);
        assert_eq!(buf, want, "{}", s["name"]);
        let (back, data, rest) = Header::parse(&want, h.conv).unwrap();
        assert_eq!(back, h);
        assert_eq!(data.len(), h.len as usize);
        assert!(rest.is_empty());
    }
}

fn drain(k: &mut Kcp, now: Instant, mtu: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; mtu];
    while let Some(n) = k.poll_transmit(now, &mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

#[test]
fn exchange_matches_kcp_go() {
    let v = common::load("kcp.json");
    let ex = &v["exchange"];
    let msg = common::unhex(&ex["message_hex"]);
    let want_tx: Vec<Vec<u8>> = ex["sender_datagrams_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::unhex)
        .collect();
    let want_rx: Vec<Vec<u8>> = ex["receiver_datagrams_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::unhex)
        .collect();

    // Drive our clock so the ts fields match the capture exactly.
    let ts = u32::from_le_bytes(want_tx[0][8..12].try_into().unwrap());
    let t0 = Instant::now();
    let mut cfg = KcpConfig::from_mode("fast", (0, 0, 0, 0));
    assert_eq!(
        (cfg.nodelay, cfg.interval_ms, cfg.resend, cfg.nc),
        (false, 30, 2, true)
    );
    cfg.mtu = 1322;
    cfg.snd_wnd = 128;
    cfg.rcv_wnd = 512;
    let mut tx = Kcp::new(0xdeadbeef, &cfg, t0);
    assert_eq!(tx.mss(), ex["mss"].as_u64().unwrap() as usize);
    let mut off = 0;
    while off < msg.len() {
        let end = (off + tx.mss()).min(msg.len());
        assert_eq!(tx.send(&msg[off..end]), end - off);
        off = end;
    }
    let now = t0 + Duration::from_millis(ts as u64);
    let got = drain(&mut tx, now, 1322);
    assert_eq!(got, want_tx);

    let mut rcfg = cfg.clone();
    rcfg.rcv_wnd = 1024;
    let r0 = Instant::now();
    let mut rx = Kcp::new(0xdeadbeef, &rcfg, r0);
    let rnow = r0 + Duration::from_millis(5000);
    for d in &want_tx {
        rx.handle_packet(rnow, d, false).unwrap();
    }
    // Three PUSHes leave 3 ACKs pending (< mtu/24): they go with the next interval flush.
    assert!(drain(&mut rx, rnow, 1322).is_empty());
    let tick = rx.poll_timeout().expect("ACKs pending");
    assert!(tick > rnow && tick <= rnow + Duration::from_millis(30));
    rx.handle_timeout(tick);
    let got = drain(&mut rx, tick, 1322);
    assert_eq!(got, want_rx);
    let mut back = vec![0u8; 4000];
    assert_eq!(rx.recv(&mut back), 3000);
    assert_eq!(&back[..3000], &msg[..]);
    assert_eq!(rx.stats().in_segs, 3);

    // The sender takes the ACK: una=3 releases everything.
    tx.handle_packet(now + Duration::from_millis(20), &want_rx[0], false)
        .unwrap();
    assert_eq!(tx.unacked(), 0);
    assert_eq!(tx.wait_snd(), 0);
}

// ------------------------------------------------------------------ steady-state allocations

mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        /// Allocations made by this thread (each test runs on its own thread).
        pub static ALLOCS: Cell<u64> = const { Cell::new(0) };
    }

    pub struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    pub fn count() -> u64 {
        ALLOCS.with(|c| c.get())
    }
}

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

/// After warm-up, moving data between two sessions allocates nothing.
#[test]
fn steady_state_does_not_allocate() {
    let t0 = Instant::now();
    let mut c = KcpConfig::from_mode("fast2", (0, 0, 0, 0));
    c.mtu = 1350;
    c.snd_wnd = 256;
    c.rcv_wnd = 256;
    let mut a = Kcp::new(1, &c, t0);
    let mut b = Kcp::new(1, &c, t0);
    let chunk = vec![0x33u8; 16 * 1024];
    let mut rbuf = vec![0u8; 64 * 1024];
    // Link: reusable datagram slots, delivered the next millisecond.
    let slots = 4096;
    let mut ab = vec![vec![0u8; 1500]; slots];
    let mut ba = vec![vec![0u8; 1500]; slots];
    let mut ab_len: Vec<usize> = Vec::with_capacity(slots);
    let mut ba_len: Vec<usize> = Vec::with_capacity(slots);
    let mut ms = 0u64;
    let mut got = 0usize;
    let mut step = |a: &mut Kcp, b: &mut Kcp, ms: &mut u64, got: &mut usize| {
        let now = t0 + Duration::from_millis(*ms);
        for (i, &n) in ab_len.iter().enumerate() {
            b.handle_packet(now, &ab[i][..n], false).unwrap();
        }
        for (i, &n) in ba_len.iter().enumerate() {
            a.handle_packet(now, &ba[i][..n], false).unwrap();
        }
        ab_len.clear();
        ba_len.clear();
        a.handle_timeout(now);
        b.handle_timeout(now);
        while a.send(&chunk) > 0 {}
        loop {
            let n = b.recv(&mut rbuf);
            if n == 0 {
                break;
            }
            *got += n;
        }
        while ab_len.len() < slots {
            let i = ab_len.len();
            match a.poll_transmit(now, &mut ab[i]) {
                Some(n) => ab_len.push(n),
                None => break,
            }
        }
        while ba_len.len() < slots {
            let i = ba_len.len();
            match b.poll_transmit(now, &mut ba[i]) {
                Some(n) => ba_len.push(n),
                None => break,
            }
        }
        *ms += 1;
    };
    while got < 20 << 20 {
        step(&mut a, &mut b, &mut ms, &mut got);
    }
    let before = counting::count();
    assert!(before > 0, "the counter sees the warm-up allocations");
    let start = got;
    while got < start + (20 << 20) {
        step(&mut a, &mut b, &mut ms, &mut got);
    }
    let allocs = counting::count() - before;
    assert_eq!(allocs, 0, "steady state allocated {allocs} times");
}
